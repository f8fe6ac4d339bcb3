//! One module per subcommand, and what they share: the file arguments, the
//! output format, loading the plan and the world, and the ways a command ends.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use switchboard::{FileErrors, Plan, Registry, World};

pub mod check;
pub mod completions;
pub mod explain;
pub mod man;
pub mod record;
pub mod replay;
pub mod rules;
pub mod schema;
pub mod select;
pub mod serve;
pub mod test;

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

/// The command could not run (exit 2).
#[derive(Debug)]
pub enum Fatal {
    /// Located problems of files, as `file:line:column: message` lines.
    Files(String),
    /// Any other reason, one or more lines.
    Message(String),
    /// Output could not be written (a closed pipe ends quietly).
    Write(io::Error),
}

impl From<FileErrors> for Fatal {
    fn from(e: FileErrors) -> Fatal {
        Fatal::Files(e.to_string())
    }
}

impl From<switchboard::LoadErrors> for Fatal {
    fn from(e: switchboard::LoadErrors) -> Fatal {
        Fatal::Files(e.to_string())
    }
}

impl From<io::Error> for Fatal {
    fn from(e: io::Error) -> Fatal {
        Fatal::Write(e)
    }
}

/// `--rules` and `--world`, as every selecting command takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct Files {
    /// rules.yaml: rule order, enabled flags, options, plugins.
    #[arg(long, value_name = "R")]
    pub rules: PathBuf,
    /// World file (YAML, or JSON by its .json name): locations and instances;
    /// may be omitted when every request carries its `instances`.
    #[arg(long, value_name = "W")]
    pub world: Option<PathBuf>,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// For people (colour on a terminal).
    #[default]
    Text,
    /// For programs.
    Json,
}

pub(crate) fn registry() -> Result<Arc<Registry>, Fatal> {
    switchboard::registry().map_err(|e| Fatal::Message(format!("the built-in registry is inconsistent:\n{e}")))
}

/// The plan and world a selecting command needs.
pub(crate) fn load(files: &Files) -> Result<(Plan, World), Fatal> {
    let registry = registry()?;
    let plan = switchboard::load_rules(&files.rules, &registry)?;
    let world = match &files.world {
        Some(path) => switchboard::load_world(path, &plan)?,
        None => World::empty(),
    };
    Ok((plan, world))
}

/// Reads the single request of `--request` (`-` is standard input).
pub(crate) fn read_request(path: &Path) -> Result<String, Fatal> {
    if path == Path::new("-") {
        let mut text = String::new();
        io::Read::read_to_string(&mut io::stdin().lock(), &mut text)
            .map_err(|e| Fatal::Message(format!("<stdin>: cannot read the request: {e}")))?;
        return Ok(text);
    }
    Ok(switchboard::read_text(path)?)
}
