//! `switchboard rules`: what the registry holds, and the chains of a rules file.

use std::io::Write as _;
use std::path::PathBuf;

use switchboard::{OptionKind, Plan, Registry};

use super::{registry, Fatal, Format, Status};
use crate::output::{paint, stdout, BOLD};

/// List the registered rules and channels (plugins included) and, with R, each channel's chain.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// rules.yaml: adds its plugins and shows each channel's chain.
    #[arg(long, value_name = "R")]
    pub rules: Option<PathBuf>,
    /// `text` for people, `json` for programs.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let registry = registry()?;
    let plan = args.rules.as_ref().map(|path| switchboard::load_rules(path, &registry)).transpose()?;
    let mut out = stdout();
    match args.format {
        Format::Json => writeln!(out, "{}", switchboard::report::rules_json(&registry, plan.as_ref()))?,
        Format::Text => {
            write!(out, "{}", describe(plan.as_ref().map_or(&registry, |p| p.registry())))?;
            if let (Some(path), Some(plan)) = (&args.rules, &plan) {
                write!(out, "{}", chains(path, plan))?;
            }
        }
    }
    out.flush()?;
    Ok(Status::Success)
}

/// Each channel's configured chain (plugin channels included), and the plugins.
fn chains(path: &std::path::Path, plan: &Plan) -> String {
    let mut out = format!("\n{}\n", paint(BOLD, &format!("CHAINS ({})", path.display())));
    for channel in plan.registry().channel_ids() {
        out.push_str(&format!("  {channel}:\n"));
        for (i, e) in plan.entries(channel).iter().enumerate() {
            let mut notes = Vec::new();
            if !e.enabled {
                notes.push("disabled".to_owned());
            }
            if let Some(on) = e.on_unavailable {
                notes.push(format!("on_unavailable={}", on.as_str()));
            }
            notes.extend(e.options.iter().cloned());
            let notes = if notes.is_empty() { String::new() } else { format!(" ({})", notes.join(", ")) };
            out.push_str(&format!("    {}. {}{notes}\n", i + 1, e.id));
        }
    }
    if !plan.plugins().is_empty() {
        out.push_str(&format!("\n{}\n", paint(BOLD, "PLUGINS")));
        for p in plan.plugins() {
            let (name, version) = p.loaded.clone().unwrap_or_default();
            let pin = p.sha256.as_ref().map_or(String::new(), |h| format!(" (sha256 {h})"));
            out.push_str(&format!("  {name} {version}  {}{pin}\n", p.path));
        }
    }
    out
}

fn describe(registry: &Registry) -> String {
    let mut out = format!("{}\n", paint(BOLD, "RULES"));
    for r in registry.rules() {
        let on = r.on_unavailable.map_or("—", |o| o.as_str());
        // 0: a rule that never fails has no code (`geomatch`).
        let code = if r.code == 0 { "—".to_owned() } else { r.code.to_string() };
        out.push_str(&format!(
            "  {:18} code {:<5} on_unavailable {:6} {}  [{}]\n",
            r.id, code, on, r.summary, r.source
        ));
        for o in &r.options {
            let kind = match o.kind {
                OptionKind::Choice(c) => c.join(" | "),
                OptionKind::Bool => "true | false".into(),
                OptionKind::Integer => "integer".into(),
                OptionKind::String => "string".into(),
                OptionKind::Duration => "duration".into(),
                OptionKind::StringList => "list of strings".into(),
            };
            out.push_str(&format!("      option {}: {kind} (default {}) {}\n", o.name, o.default, o.doc));
        }
    }
    out.push_str(&format!("\n{}\n", paint(BOLD, "CHANNELS")));
    for c in registry.channels() {
        let mut patterns = Vec::new();
        if c.has_override() {
            patterns.push(format!("{{{}#N}}", c.code()));
        }
        if c.has_temporary_switch() {
            patterns.push(format!("{{TEMP-{}#N}}", c.code()));
        }
        let patterns = if patterns.is_empty() { "no patterns".to_owned() } else { patterns.join(" ") };
        out.push_str(&format!(
            "  {:10} code {:4} tags {:5} {patterns}  [{}]\n",
            c.id(),
            c.code(),
            c.tag_prefix(),
            c.source
        ));
    }
    out
}
