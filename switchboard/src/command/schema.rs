//! `switchboard schema rules|world`: the JSON Schema of a file, generated
//! from the registry (plugins of `--rules` included) and the world model.

use std::io::Write;

use super::{registry, Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let base = registry()?;
    let plan = match &command.rules {
        Some(path) => Some(switchboard::load_rules(path, &base)?),
        None => None,
    };
    let registry = plan.as_ref().map_or(&base, |p| p.registry());
    let schema = match command.positional.first().and_then(|p| p.to_str()) {
        Some("world") => switchboard::schema::world_schema(registry),
        _ => switchboard::schema::rules_schema(registry),
    };
    let text = serde_json::to_string_pretty(&schema).map_err(|e| Fatal(format!("cannot encode the schema: {e}")))?;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}"); // a closed pipe is the reader's choice

    Ok(Status::Success)
}
