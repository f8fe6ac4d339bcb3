//! `switchboard select`: one decision, or a JSON Lines batch on stdin
//! (optionally on a live configuration that reloads).

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use switchboard::lines::{decide_lines, LinesError, Mode};
use switchboard::{Live, ReloadEvent};

use super::{load, read_request, Fatal, Files, Status};

/// The default `--max-line-bytes`: 16 MiB, room for a request carrying a
/// large location's instances, far below what would strain memory.
pub const DEFAULT_MAX_LINE: usize = 16 << 20;

/// One decision (JSON) for the request in F; without --request, JSON Lines on
/// stdin, one decision line per request, in order (exit 0).
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub files: Files,
    /// One request as a JSON object (`-`: standard input); exit 0 selected, 1 selection error.
    #[arg(long, value_name = "F", conflicts_with = "watch")]
    pub request: Option<PathBuf>,
    /// Reload R and W when they change and on SIGHUP; one line per reload on stderr.
    #[arg(long)]
    pub watch: bool,
    /// The longest request line read in batch mode; a longer line is answered
    /// with code 100 without being stored.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LINE, value_parser = positive)]
    pub max_line_bytes: usize,
}

fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("takes a positive number of bytes; got `{text}`")),
    }
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    if args.watch {
        return watch(args);
    }
    let (plan, world) = load(&args.files)?;
    match &args.request {
        Some(path) => {
            let text = read_request(path)?;
            let decision = switchboard::decide_text(&text, |r| plan.select(&world, r));
            let mut out = io::stdout().lock();
            writeln!(out, "{}", decision.to_json()).and_then(|()| out.flush())?;
            Ok(if decision.is_ok() { Status::Success } else { Status::Failure })
        }
        None => {
            let input = io::BufReader::with_capacity(1 << 16, io::stdin());
            let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            let decide = |line: &switchboard::lines::Line| line.decide(|r| plan.select(&world, r));
            decide_lines(input, &mut out, Mode::Parallel, args.max_line_bytes, &decide).map_err(fatal)?;
            Ok(Status::Success)
        }
    }
}

fn fatal(e: LinesError) -> Fatal {
    match e {
        LinesError::Read(e) => Fatal::Message(format!("<stdin>: cannot read input: {e}")),
        LinesError::Write(e) => Fatal::Message(format!("cannot write decisions: {e}")),
    }
}

/// `select --watch`: the JSON Lines loop on a live configuration that
/// reloads on file changes and SIGHUP. Reload events go to stderr, one line
/// each (a failure: one line, then its located problems); stdout carries
/// only decisions, flushed line by line.
fn watch(args: &Args) -> Result<Status, Fatal> {
    let live = Live::open(super::registry()?, args.files.rules.clone(), args.files.world.clone())?;
    let events = live.subscribe();
    std::thread::spawn(move || {
        for event in events {
            eprintln!("{}", describe(&event));
        }
    });
    let _watch = live.watch().map_err(|e| Fatal::Message(format!("cannot watch the configuration files: {e}")))?;
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .map_err(|e| Fatal::Message(format!("cannot listen for SIGHUP: {e}")))?;
    let on_hup = live.clone();
    std::thread::spawn(move || {
        for _ in signals.forever() {
            on_hup.reload();
        }
    });
    let decide = |line: &switchboard::lines::Line| line.decide(|r| live.select(r));
    decide_lines(io::BufReader::new(io::stdin()), &mut io::stdout().lock(), Mode::Stream, args.max_line_bytes, &decide)
        .map_err(fatal)?;
    Ok(Status::Success)
}

/// The stderr text of one reload event.
fn describe(event: &ReloadEvent) -> String {
    match event {
        ReloadEvent::Reloaded { generation } => format!("switchboard: reloaded: generation {generation} in force"),
        ReloadEvent::Unchanged { generation } => {
            format!("switchboard: files unchanged: generation {generation} stays")
        }
        ReloadEvent::Failed { generation, error } => {
            format!("switchboard: reload failed, generation {generation} stays:\n{error}")
        }
    }
}
