//! One module per subcommand, and what they share: loading the registry,
//! the plan and the world, and the two ways a command ends.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use switchboard::{FileErrors, Plan, Registry, World};

use crate::args::{Command, Kind};

mod check;
mod explain;
mod rules;
mod select;
mod serve;

/// How a command that ran ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0: selected, or valid.
    Success,
    /// Exit 1: a selection error, or an invalid file.
    Failure,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        match s {
            Status::Success => ExitCode::SUCCESS,
            Status::Failure => ExitCode::from(1),
        }
    }
}

/// The command could not run (exit 2); the message names file, line and reason.
#[derive(Debug)]
pub struct Fatal(pub String);

impl From<FileErrors> for Fatal {
    fn from(e: FileErrors) -> Fatal {
        Fatal(e.to_string())
    }
}

pub fn run(command: Command) -> Result<Status, Fatal> {
    match command.kind {
        Kind::Select => select::run(&command),
        Kind::Explain => explain::run(&command),
        Kind::Check => check::run(&command),
        Kind::Rules => rules::run(&command),
        Kind::Serve => serve::run(&command),
    }
}

pub(crate) fn registry() -> Result<Arc<Registry>, Fatal> {
    switchboard::registry().map_err(|e| Fatal(format!("the built-in registry is inconsistent:\n{e}")))
}

/// The registry, plan and world a selecting command needs.
pub(crate) fn load(command: &Command) -> Result<(Plan, World), Fatal> {
    let registry = registry()?;
    let rules = command.rules.as_deref().ok_or_else(|| Fatal("`--rules` is required".into()))?;
    let plan = switchboard::load_rules(rules, &registry)?;
    let world = match &command.world {
        Some(path) => switchboard::load_world_for(path, &plan)?,
        None => World::empty(),
    };
    Ok((plan, world))
}

/// Reads the single request of `--request`.
pub(crate) fn read_request(path: &Path) -> Result<String, Fatal> {
    Ok(switchboard::read_text(path)?)
}
