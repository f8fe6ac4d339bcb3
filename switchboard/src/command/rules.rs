//! `switchboard rules`: what the registry holds, and the chains of a rules file.

use switchboard::{OptionKind, Registry};

use super::{registry, Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let registry = registry()?;
    let plan = command.rules.as_ref().map(|path| switchboard::load_rules(path, &registry)).transpose()?;
    print!("{}", describe(plan.as_ref().map_or(&registry, |p| p.registry())));
    if let (Some(path), Some(plan)) = (&command.rules, &plan) {
        println!("\nCHAINS ({})", path.display());
        for channel in registry.channel_ids() {
            println!("  {channel}:");
            for (i, e) in plan.entries(channel).iter().enumerate() {
                let mut notes = Vec::new();
                if !e.enabled {
                    notes.push("disabled".to_owned());
                }
                if let Some(on) = e.on_unavailable {
                    notes.push(format!("on_unavailable={}", on.as_str()));
                }
                notes.extend(e.options.iter().cloned());
                println!(
                    "    {}. {} {}",
                    i + 1,
                    e.id,
                    if notes.is_empty() { String::new() } else { format!("({})", notes.join(", ")) }
                );
            }
        }
    }
    Ok(Status::Success)
}

fn describe(registry: &Registry) -> String {
    let mut out = String::from("RULES\n");
    for r in registry.rules() {
        let on = r.on_unavailable.map_or("—", |o| o.as_str());
        out.push_str(&format!(
            "  {:18} code {:<5} on_unavailable {:6} {}  [{}]\n",
            r.id, r.code, on, r.summary, r.source
        ));
        for o in &r.options {
            let kind = match o.kind {
                OptionKind::Choice(c) => c.join(" | "),
                OptionKind::Bool => "true | false".into(),
                OptionKind::Integer => "integer".into(),
                OptionKind::String => "string".into(),
                OptionKind::StringList => "list of strings".into(),
            };
            out.push_str(&format!("      option {}: {kind} (default {}) {}\n", o.name, o.default, o.doc));
        }
    }
    out.push_str("\nCHANNELS\n");
    for c in registry.channels() {
        let s = c;
        let mut patterns = Vec::new();
        if s.has_override() {
            patterns.push(format!("{{{}#N}}", s.code()));
        }
        if s.has_temporary_switch() {
            patterns.push(format!("{{TEMP-{}#N}}", s.code()));
        }
        let patterns = if patterns.is_empty() { "no patterns".to_owned() } else { patterns.join(" ") };
        out.push_str(&format!(
            "  {:10} code {:4} tags {:5} {patterns}  [{}]\n",
            s.id(),
            s.code(),
            s.tag_prefix(),
            c.source
        ));
    }
    out
}
