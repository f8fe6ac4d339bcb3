//! `switchboard record`: applies events from the send path (docs/live-state.md) to the
//! store the rules file names and prints what was accepted and rejected.

use std::io::Write as _;
use std::path::PathBuf;

use super::{read_request, registry, Fatal, Files, Status};
use crate::output::stdout;

/// Apply events (`instance_status`, `delivery`, `inbound`) to the store of --rules; prints `{"accepted", "rejected"}`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: Files,
    /// One event (a JSON object) or JSON Lines of events; `-` or nothing
    /// reads standard input.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    let live = switchboard::Live::open(registry()?, &args.files.rules, args.files.world.as_ref())?;
    let body =
        read_request(args.file.as_deref().unwrap_or_else(|| std::path::Path::new("-"))).map_err(|e| match e {
            Fatal::Message(m) => Fatal::Message(m.replace("the request", "the events")),
            other => other,
        })?;
    if let Some(note) = switchboard::events_note(&live.snapshot().plan) {
        eprintln!("switchboard: {note}");
    }
    let recorded = live.record(&body);
    let mut out = stdout();
    writeln!(out, "{}", recorded.to_json())?;
    out.flush()?;
    Ok(if recorded.rejected.is_empty() { Status::Success } else { Status::Failure })
}
