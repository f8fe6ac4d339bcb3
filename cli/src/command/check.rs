//! `switchboard check`: validates the rules file and the world file and
//! reports every problem with its line and column.

use std::io::Write as _;
use std::path::Path;

use serde_json::json;
use switchboard::{FileErrors, Plan};

use super::{registry, Fatal, Files, Format, Status};
use crate::output::{located, paint, stdout, GOOD};

/// Validate the rules file (and world file); every problem as `file:line:column: message`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: Files,
    /// `text`: problems on stderr, a summary on stdout; `json`: an array of
    /// `{file, line, column, severity, message}` on stdout.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Print only the problems, no summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// What checking one file found.
enum Checked {
    /// Valid: the summary, and the warnings (valid but surely not meant).
    Valid(String, FileErrors),
    Invalid(FileErrors),
}

fn no_warnings(path: &Path) -> FileErrors {
    FileErrors { file: path.display().to_string(), diagnostics: Vec::new() }
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let registry = registry()?;
    let mut results = Vec::new();
    let loaded = switchboard::load_rules(&args.files.rules, &registry);
    let plan = match loaded {
        Ok(plan) => {
            let warnings = FileErrors { diagnostics: plan.warnings().to_vec(), ..no_warnings(&args.files.rules) };
            results.push(Checked::Valid(summary(&args.files.rules, &plan), warnings));
            Some(plan)
        }
        Err(e) => {
            results.push(checked_err(e)?);
            None
        }
    };
    if let Some(path) = &args.files.world {
        let world = match &plan {
            Some(plan) => switchboard::load_world(path, plan),
            None => switchboard::load_world(path, &registry),
        };
        results.push(match world {
            Ok(world) => {
                let count = world.len();
                let noun = if count == 1 { "location" } else { "locations" };
                let checked = Checked::Valid(format!("{}: ok ({count} {noun})", path.display()), no_warnings(path));
                // Not freed: the process ends soon, and freeing a world of a
                // million instances (then the allocator merging what was
                // freed) took a third of `check` on a large world.
                std::mem::forget(world);
                checked
            }
            Err(e) => checked_err(e)?,
        });
    }
    let status =
        if results.iter().any(|r| matches!(r, Checked::Invalid(_))) { Status::Failure } else { Status::Success };
    let mut out = stdout();
    match args.format {
        Format::Json => {
            let problems: Vec<_> = results
                .iter()
                .map(|r| match r {
                    Checked::Invalid(e) | Checked::Valid(_, e) => e,
                })
                .flat_map(|e| {
                    e.diagnostics.iter().map(|d| {
                        let severity = d.severity.as_str();
                        json!({"file": e.file, "line": d.line, "column": d.column, "severity": severity, "message": d.message})
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::Value::Array(problems))?;
        }
        Format::Text => {
            let mut err = anstream::stderr();
            for result in &results {
                match result {
                    Checked::Valid(summary, warnings) => {
                        if !args.quiet {
                            let (first, rest) = summary.split_once('\n').unwrap_or((summary, ""));
                            writeln!(out, "{}", paint(GOOD, first))?;
                            if !rest.is_empty() {
                                writeln!(out, "{rest}")?;
                            }
                        }
                        if !warnings.diagnostics.is_empty() {
                            for line in warnings.to_string().lines() {
                                writeln!(err, "{}", located(line))?;
                            }
                        }
                    }
                    Checked::Invalid(e) => {
                        for line in e.to_string().lines() {
                            writeln!(err, "{}", located(line))?;
                        }
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok(status)
}

/// An invalid file is a finding (exit 1); a file that cannot be read at all
/// means the check could not run (exit 2).
fn checked_err(e: FileErrors) -> Result<Checked, Fatal> {
    if e.diagnostics.iter().all(|d| d.line.is_none()) && !readable(&e.file) {
        return Err(e.into());
    }
    Ok(Checked::Invalid(e))
}

/// `rules.yaml: ok` and each channel's chain (plugin channels included).
fn summary(path: &Path, plan: &Plan) -> String {
    let mut s = format!("{}: ok", path.display());
    for channel in plan.registry().channel_ids() {
        let note = if plan.has_channel_order(channel) { " (own order)" } else { "" };
        s.push_str(&format!("\n  {channel}{note}: {}", plan.order(channel).join(" → ")));
    }
    s
}

fn readable(file: &str) -> bool {
    std::fs::File::open(file).is_ok() && !Path::new(file).is_dir()
}
