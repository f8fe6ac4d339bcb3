//! `switchboard select`: one decision, or a JSON Lines batch on stdin
//! (optionally on a live configuration that reloads).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use switchboard::decision_log::{DecisionIds, DecisionLog, Entry, Overflow, Target};
use switchboard::lines::{decide_lines, Line, LinesError, Mode};
use switchboard::{Decision, Intent, Live, Snapshot};

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
    /// Also append one decision-log line per decision to FILE (the input of
    /// `replay`).
    #[arg(long, value_name = "FILE")]
    pub decision_log: Option<PathBuf>,
    /// Decide without counting against capacity limits or remembering
    /// conversations: every decision is a preview.
    #[arg(long)]
    pub dry_run: bool,
}

pub(crate) fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("takes a positive number of bytes; got `{text}`")),
    }
}

pub fn run(args: &Args) -> Result<Status, Fatal> {
    if args.decision_log.as_deref() == Some(Path::new("-")) {
        return Err(Fatal::Message("`select --decision-log` needs a file: stdout carries the decisions".into()));
    }
    if args.watch {
        return watch(args);
    }
    if args.decision_log.is_some() {
        return logged(args);
    }
    let (plan, world) = load(&args.files)?;
    let intent = Intent::dry_run(args.dry_run);
    if let Some(note) = intent.one_shot_note(&plan, &world) {
        eprintln!("switchboard: {note}");
    }
    match &args.request {
        Some(path) => {
            let text = read_request(path)?;
            let decision = switchboard::decide_text(&text, |r| intent.decide(&plan, &world, r));
            let mut out = io::stdout().lock();
            writeln!(out, "{}", decision.to_json()).and_then(|()| out.flush())?;
            Ok(if decision.is_ok() { Status::Success } else { Status::Failure })
        }
        None => {
            let input = io::BufReader::with_capacity(1 << 16, io::stdin());
            let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            let one = |line: &Line| line.decide(|r| intent.decide(&plan, &world, r));
            let mode = if intent.in_order(&plan, &world) { Mode::Stream } else { Mode::Parallel };
            decide_lines(input, &mut out, mode, args.max_line_bytes, &one).map_err(fatal)?;
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

/// `--decision-log FILE`: where decisions are logged, with their ids. A
/// command must lose no line, so a recorder waits for the writer when it
/// is behind ([`Overflow::Block`]).
struct Recorder {
    log: DecisionLog,
    ids: DecisionIds,
    /// Counted, or with `--dry-run` a preview.
    intent: Intent,
}

impl Recorder {
    fn open(args: &Args) -> Result<Option<Recorder>, Fatal> {
        let Some(path) = &args.decision_log else { return Ok(None) };
        let target = Target::parse(path);
        let log = DecisionLog::open(&target, 4096, Overflow::Block)
            .map_err(|e| Fatal::Message(format!("--decision-log {target}: cannot open: {e}")))?;
        Ok(Some(Recorder { log, ids: DecisionIds::new(), intent: Intent::dry_run(args.dry_run) }))
    }

    fn record(&self, snapshot: &Arc<Snapshot>, request: &str, decision: &Decision) {
        let entry = Entry::new(self.ids.next(), snapshot.clone(), request.trim(), decision.to_json());
        self.log.record(entry.with_message_id(decision.message_id.clone()));
    }

    /// Decides `line` on `snapshot` and logs the decision.
    fn decide(&self, snapshot: &Arc<Snapshot>, line: &Line) -> Decision {
        let decision = line.decide(|r| snapshot.decide(r, self.intent));
        let request = match line {
            Line::Text(text) => text.as_str(),
            Line::NotUtf8 { why, .. } | Line::Unreadable(why) => why.as_str(),
        };
        self.record(snapshot, request, &decision);
        decision
    }

    /// Flushes the log; every line recorded is on disk when this returns.
    fn close(&self) -> Result<(), Fatal> {
        self.log.close().map(|_| ()).map_err(|e| Fatal::Message(format!("--decision-log {}: {e}", self.log.target())))
    }
}

/// `select --decision-log`: the configuration is loaded as a snapshot (for
/// the files' hashes and its generation, 1), and each decision is logged
/// (in a batch, as decided on every core: not necessarily in input order).
fn logged(args: &Args) -> Result<Status, Fatal> {
    let live = Live::open(super::registry()?, args.files.rules.clone(), args.files.world.clone())?;
    let snapshot = live.snapshot();
    let request = args.request.as_deref().map(read_request).transpose()?;
    let recorder = Recorder::open(args)?.ok_or_else(|| Fatal::Message("`--decision-log` is required".into()))?;
    if let Some(note) = recorder.intent.one_shot_note(&snapshot.plan, &snapshot.world) {
        eprintln!("switchboard: {note}");
    }
    let status = match request {
        Some(text) => {
            let decision = recorder.decide(&snapshot, &Line::Text(text));
            let mut out = io::stdout().lock();
            writeln!(out, "{}", decision.to_json()).and_then(|()| out.flush())?;
            if decision.is_ok() {
                Status::Success
            } else {
                Status::Failure
            }
        }
        None => {
            let input = io::BufReader::with_capacity(1 << 16, io::stdin());
            let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
            let decide = |line: &Line| recorder.decide(&snapshot, line);
            let mode =
                if recorder.intent.in_order(&snapshot.plan, &snapshot.world) { Mode::Stream } else { Mode::Parallel };
            decide_lines(input, &mut out, mode, args.max_line_bytes, &decide).map_err(fatal)?;
            Status::Success
        }
    };
    recorder.close()?;
    Ok(status)
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
            eprintln!("switchboard: {event}");
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
    let recorder = Recorder::open(args)?;
    let decide = |line: &Line| match &recorder {
        Some(recorder) => recorder.decide(&live.snapshot(), line),
        None => line.decide(|r| live.decide(r, Intent::dry_run(args.dry_run))),
    };
    decide_lines(io::BufReader::new(io::stdin()), &mut io::stdout().lock(), Mode::Stream, args.max_line_bytes, &decide)
        .map_err(fatal)?;
    if let Some(recorder) = &recorder {
        recorder.close()?;
    }
    Ok(Status::Success)
}
