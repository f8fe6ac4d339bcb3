//! `switchboard schema rules|world`: the JSON Schema of a file, generated
//! from the registry (plugins of `--rules` included) and the world model.

use std::io::Write;

use std::path::PathBuf;

use super::{registry, Fatal, Status};

/// Which file's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// rules.yaml.
    Rules,
    /// The world file.
    World,
}

/// Print the JSON Schema (draft 2020-12) of rules.yaml or of the world file, for editors.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `rules` or `world`.
    #[arg(value_enum)]
    pub which: Which,
    /// A rules.yaml whose plugins' rules, options and channels are included.
    #[arg(long, value_name = "R")]
    pub rules: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let base = registry()?;
    let plan = match &args.rules {
        Some(path) => Some(switchboard::load_rules(path, &base)?),
        None => None,
    };
    let registry = plan.as_ref().map_or(&base, |p| p.registry());
    let schema = match args.which {
        Which::World => switchboard::schema::world_schema(registry),
        Which::Rules => switchboard::schema::rules_schema(registry),
    };
    let text =
        serde_json::to_string_pretty(&schema).map_err(|e| Fatal::Message(format!("cannot encode the schema: {e}")))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush())?;

    Ok(Status::Success)
}
