//! `switchboard select`: one decision, or a JSON Lines batch on stdin.

use std::io::{self, BufRead, BufWriter, Write};

use switchboard::{Decision, ErrorKind, Plan, World};

use super::{load, read_request, Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    let (plan, world) = load(command)?;
    match &command.request {
        Some(path) => {
            let text = read_request(path)?;
            let decision = decide(&plan, &world, &text);
            println!("{}", decision.to_json());
            Ok(if decision.is_ok() { Status::Success } else { Status::Failure })
        }
        None => batch(&plan, &world, io::stdin().lock(), &mut BufWriter::new(io::stdout().lock())),
    }
}

/// One decision for one request text.
pub(crate) fn decide(plan: &Plan, world: &World, text: &str) -> Decision {
    match switchboard::parse_request(text) {
        Ok(request) => plan.select(world, &request),
        Err(decision) => decision,
    }
}

/// Reads JSON Lines, writes one decision line per non-blank input line, in
/// order. A line that cannot be read (bad JSON, bad UTF-8) gets a code-100
/// decision and the batch goes on.
fn batch(plan: &Plan, world: &World, mut input: impl BufRead, out: &mut impl Write) -> Result<Status, Fatal> {
    let mut line = Vec::new();
    let mut number = 0usize;
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => return Err(Fatal(format!("<stdin>: cannot read input: {e}"))),
        }
        number += 1;
        let decision = match std::str::from_utf8(&line) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => decide(plan, world, text),
            Err(e) => Decision::request_error(
                ErrorKind::InvalidRequest,
                format!("line {number} is not valid UTF-8 (first bad byte at offset {})", e.valid_up_to()),
                None,
            ),
        };
        if writeln!(out, "{}", decision.to_json()).is_err() {
            // The reader went away (a closed pipe): nothing more to say.
            return Ok(Status::Success);
        }
    }
    if out.flush().is_err() {
        return Ok(Status::Success);
    }
    Ok(Status::Success)
}
