//! `switchboard check`: validates the rules file and the world file and
//! reports every problem with its line and column.

use switchboard::FileErrors;

use super::{registry, Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let registry = registry()?;
    let mut status = Status::Success;
    let mut report = |result: Result<String, FileErrors>| -> Result<(), Fatal> {
        match result {
            Ok(summary) => println!("{summary}"),
            // A file that cannot be read at all means the check could not run.
            Err(e) if e.diagnostics.iter().all(|d| d.line.is_none()) && !readable(&e.file) => return Err(e.into()),
            Err(e) => {
                status = Status::Failure;
                eprintln!("{e}");
            }
        }
        Ok(())
    };
    let mut plan = None;
    if let Some(path) = &command.rules {
        let loaded = switchboard::load_rules(path, &registry);
        if let Ok(plan) = &loaded {
            // Warnings: valid, but surely not what was meant; the check still passes.
            let file = path.display().to_string();
            let warnings = FileErrors { file, diagnostics: plan.warnings().to_vec() };
            if !warnings.diagnostics.is_empty() {
                eprintln!("{warnings}");
            }
        }
        report(loaded.as_ref().map(|plan| summary(path, plan)).map_err(Clone::clone))?;
        plan = loaded.ok();
    }
    if let Some(path) = &command.world {
        let world = match &plan {
            Some(plan) => switchboard::load_world_for(path, plan),
            None => switchboard::load_world(path, &registry),
        };
        report(world.map(|world| format!("{}: ok ({} locations)", path.display(), world.len())))?;
    }
    Ok(status)
}

/// `rules.yaml: ok` and each channel's chain (plugin channels included).
fn summary(path: &std::path::Path, plan: &switchboard::Plan) -> String {
    let mut s = format!("{}: ok", path.display());
    for channel in plan.registry().channel_ids() {
        let note = if plan.has_channel_order(channel) { " (own order)" } else { "" };
        s.push_str(&format!("\n  {channel}{note}: {}", plan.order(channel).join(" → ")));
    }
    s
}

fn readable(file: &str) -> bool {
    std::fs::File::open(file).is_ok() && !std::path::Path::new(file).is_dir()
}
