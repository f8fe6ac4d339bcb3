//! `switchboard man`: the manual page, as roff.

use super::{Fatal, Status};

/// Print the man page (roff; e.g. `switchboard man > switchboard.1`).
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_: &Args, command: clap::Command) -> Result<Status, Fatal> {
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command).render(&mut out)?;
    Ok(Status::Success)
}
