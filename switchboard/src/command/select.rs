//! `switchboard select`: one decision, or a JSON Lines batch on stdin.

use std::io::{self, BufRead, BufWriter, Write};

use switchboard::{Decision, ErrorKind, Live, Plan, ReloadEvent, World};

use super::{load, read_request, Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    if command.watch {
        return watch(command);
    }
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

/// `select --watch`: the batch loop on a live configuration that reloads
/// on file changes and SIGHUP. Reload events go to stderr, one line each;
/// stdout carries only decisions, flushed line by line.
fn watch(command: &Command) -> Result<Status, Fatal> {
    let registry = super::registry()?;
    let rules = command.rules.clone().ok_or_else(|| Fatal("`--rules` is required".into()))?;
    let live = Live::open(registry, rules, command.world.clone()).map_err(|e| Fatal(e.to_string()))?;
    let events = live.subscribe();
    std::thread::spawn(move || {
        for event in events {
            eprintln!("switchboard: {}", describe(&event));
        }
    });
    let _watch = live.watch().map_err(|e| Fatal(format!("cannot watch the configuration files: {e}")))?;
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| Fatal(format!("cannot listen for SIGHUP: {e}")))?;
    let on_hup = live.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            on_hup.reload();
        }
    });
    let mut out = io::stdout().lock();
    let mut decide_line = |text: &str| match switchboard::parse_request(text) {
        Ok(request) => live.select(&request),
        Err(decision) => decision,
    };
    each_line(io::stdin().lock(), &mut out, &mut decide_line, true)
}

/// One line for stderr per reload event.
fn describe(event: &ReloadEvent) -> String {
    match event {
        ReloadEvent::Reloaded { generation } => format!("reloaded: generation {generation} in force"),
        ReloadEvent::Unchanged { generation } => format!("files unchanged: generation {generation} stays"),
        ReloadEvent::Failed { generation, error } => {
            format!("reload failed, generation {generation} stays: {}", error.replace('\n', " | "))
        }
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
fn batch(plan: &Plan, world: &World, input: impl BufRead, out: &mut impl Write) -> Result<Status, Fatal> {
    each_line(input, out, &mut |text| decide(plan, world, text), false)
}

/// The JSON Lines loop: one decision line per non-blank input line.
fn each_line(
    mut input: impl BufRead,
    out: &mut impl Write,
    decide_text: &mut dyn FnMut(&str) -> Decision,
    flush_each: bool,
) -> Result<Status, Fatal> {
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
            Ok(text) => decide_text(text),
            Err(e) => Decision::request_error(
                ErrorKind::InvalidRequest,
                format!("line {number} is not valid UTF-8 (first bad byte at offset {})", e.valid_up_to()),
                None,
            ),
        };
        let written =
            writeln!(out, "{}", decision.to_json()).and_then(|()| if flush_each { out.flush() } else { Ok(()) });
        if written.is_err() {
            // The reader went away (a closed pipe): nothing more to say.
            return Ok(Status::Success);
        }
    }
    if out.flush().is_err() {
        return Ok(Status::Success);
    }
    Ok(Status::Success)
}
