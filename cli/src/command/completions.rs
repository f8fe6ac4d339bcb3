//! `switchboard completions SHELL`: a completion script for the shell.

use clap_complete::Shell;

use super::{Fatal, Status};

/// Print a shell completion script (e.g. `switchboard completions bash > /etc/bash_completion.d/switchboard`).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &Args, command: &mut clap::Command) -> Result<Status, Fatal> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, command, "switchboard", &mut out);
    std::io::Write::flush(&mut out)?;
    Ok(Status::Success)
}
