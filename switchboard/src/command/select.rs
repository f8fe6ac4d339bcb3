//! `switchboard select`: one decision, or a JSON Lines batch on stdin.

use std::io::{self, BufRead, BufWriter, Write};
use std::sync::{mpsc, Arc, Mutex};

use switchboard::decision_log::{DecisionIds, DecisionLog, Entry, Overflow, Target};
use switchboard::{Decision, ErrorKind, Live, Plan, ReloadEvent, Request, Snapshot, World};

use super::{load, read_request, Fatal, Status};
use crate::args::Command;

pub fn run(command: &Command) -> Result<Status, Fatal> {
    if command.watch {
        return watch(command);
    }
    if command.decision_log.is_some() {
        return logged(command);
    }
    let (plan, world) = load(command)?;
    match &command.request {
        Some(path) => {
            let text = read_request(path)?;
            let decision = switchboard::decide_text(&text, |r| plan.select(&world, r));
            println!("{}", decision.to_json());
            Ok(if decision.is_ok() { Status::Success } else { Status::Failure })
        }
        None => {
            let input = io::BufReader::with_capacity(1 << 16, io::stdin());
            batch(&plan, &world, input, &mut BufWriter::new(io::stdout().lock()), command.max_line_bytes, None)
        }
    }
}

/// `--decision-log FILE`: where decisions are logged, with their ids. A
/// batch must lose no line, so a recorder waits for the writer when it is
/// behind ([`Overflow::Block`]).
struct Recorder {
    log: DecisionLog,
    ids: DecisionIds,
}

impl Recorder {
    fn open(command: &Command) -> Result<Option<Recorder>, Fatal> {
        let Some(path) = &command.decision_log else { return Ok(None) };
        let target = Target::parse(path);
        let log = DecisionLog::open(&target, 4096, Overflow::Block)
            .map_err(|e| Fatal(format!("--decision-log {target}: cannot open: {e}")))?;
        Ok(Some(Recorder { log, ids: DecisionIds::new() }))
    }

    fn record(&self, snapshot: &Arc<Snapshot>, request: &str, decision: String) {
        self.log.record(Entry::new(self.ids.next(), snapshot.clone(), request.trim(), decision));
    }

    /// Flushes the log; every line recorded is on disk when this returns.
    fn close(&self) -> Result<(), Fatal> {
        self.log.close().map(|_| ()).map_err(|e| Fatal(format!("--decision-log {}: {e}", self.log.target())))
    }
}

/// `select --decision-log`: the configuration is loaded as a snapshot (for
/// the files' hashes and its generation, 1), and each decision is logged.
fn logged(command: &Command) -> Result<Status, Fatal> {
    let registry = super::registry()?;
    let rules = command.rules.clone().ok_or_else(|| Fatal("`--rules` is required".into()))?;
    let live = Live::open(registry, rules, command.world.clone()).map_err(|e| Fatal(e.to_string()))?;
    let snapshot = live.snapshot();
    let request = command.request.as_deref().map(read_request).transpose()?;
    let recorder = Recorder::open(command)?.ok_or_else(|| Fatal("`--decision-log` is required".into()))?;
    let status = match request {
        Some(text) => {
            let decision = switchboard::decide_text(&text, |r| snapshot.plan.select(&snapshot.world, r));
            let json = decision.to_json();
            println!("{json}");
            recorder.record(&snapshot, &text, json);
            if decision.is_ok() {
                Status::Success
            } else {
                Status::Failure
            }
        }
        None => {
            let input = io::BufReader::with_capacity(1 << 16, io::stdin());
            let mut out = BufWriter::new(io::stdout().lock());
            let log = Some((&recorder, &snapshot));
            batch(&snapshot.plan, &snapshot.world, input, &mut out, command.max_line_bytes, log)?
        }
    };
    recorder.close()?;
    Ok(status)
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
    let recorder = Recorder::open(command)?;
    let mut out = io::stdout().lock();
    let status = each_line(io::stdin().lock(), &mut out, &live, recorder.as_ref(), command.max_line_bytes)?;
    if let Some(recorder) = &recorder {
        recorder.close()?;
    }
    Ok(status)
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

/// Reads JSON Lines, writes one decision line per non-blank input line, in
/// order, using every core: a reader cuts the input into numbered chunks,
/// workers decide chunks in parallel, and the writer puts them back in
/// order. A line that cannot be read (bad JSON, bad UTF-8, longer than the
/// limit) gets a code-100 decision and the batch goes on.
fn batch(
    plan: &Plan,
    world: &World,
    input: impl BufRead + Send,
    out: &mut impl Write,
    max_line: usize,
    log: Option<(&Recorder, &Arc<Snapshot>)>,
) -> Result<Status, Fatal> {
    let logging = log.is_some();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Vec<Line>)>(workers * 2);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, String, Vec<(String, String)>)>(workers * 2);
    let work_rx = Mutex::new(work_rx);
    std::thread::scope(|scope| {
        let reader = scope.spawn(move || read_chunks(input, max_line, &work_tx));
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || loop {
                let job = work_rx.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ()));
                let Ok((seq, lines)) = job else { break };
                let mut text = String::with_capacity(lines.len() * 256);
                let mut logged = Vec::new();
                for line in lines {
                    let decision = line.decide(|r| plan.select(world, r));
                    let json = decision.to_json();
                    text.push_str(&json);
                    text.push('\n');
                    if logging {
                        logged.push((line.request_text(), json));
                    }
                }
                if done_tx.send((seq, text, logged)).is_err() {
                    break;
                }
            });
        }
        drop(done_tx);
        // The writer: chunks arrive in any order and leave in input order.
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0u64;
        let mut closed = false;
        for (seq, text, logged) in done_rx {
            pending.insert(seq, (text, logged));
            while let Some((text, logged)) = pending.remove(&next) {
                if !closed && out.write_all(text.as_bytes()).is_err() {
                    closed = true; // the reader went away (a closed pipe)
                }
                if let Some((recorder, snapshot)) = log {
                    for (request, decision) in logged {
                        recorder.record(snapshot, &request, decision);
                    }
                }
                next += 1;
            }
        }
        if !closed {
            let _ = out.flush();
        }
        match reader.join() {
            Ok(Ok(())) => Ok(Status::Success),
            Ok(Err(e)) => Err(Fatal(format!("<stdin>: cannot read input: {e}"))),
            Err(_) => Err(Fatal("<stdin>: the reader thread failed".into())),
        }
    })
}

/// One input line, read.
enum Line {
    Text(String),
    Unreadable(String),
}

const CHUNK: usize = 256;

fn read_chunks(input: impl BufRead, max_line: usize, work: &mpsc::SyncSender<(u64, Vec<Line>)>) -> io::Result<()> {
    let mut lines = Lines::new(input, max_line);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut seq = 0u64;
    while let Some(line) = lines.next_line()? {
        chunk.push(line);
        if chunk.len() == CHUNK {
            if work.send((seq, std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)))).is_err() {
                return Ok(());
            }
            seq += 1;
        }
    }
    if !chunk.is_empty() {
        let _ = work.send((seq, chunk));
    }
    Ok(())
}

/// JSON Lines input: numbered lines of at most `max` bytes, blank lines
/// skipped, each read as a request text or as the reason it cannot be.
struct Lines<R> {
    input: R,
    buf: Vec<u8>,
    max: usize,
    number: usize,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R, max: usize) -> Self {
        Lines { input, buf: Vec::new(), max, number: 0 }
    }

    fn next_line(&mut self) -> io::Result<Option<Line>> {
        while let Some(overlong) = read_capped(&mut self.input, &mut self.buf, self.max)? {
            self.number += 1;
            let number = self.number;
            if overlong {
                return Ok(Some(Line::Unreadable(format!(
                    "line {number} is longer than the {}-byte limit (--max-line-bytes); it was skipped",
                    self.max
                ))));
            }
            match String::from_utf8(std::mem::take(&mut self.buf)) {
                Ok(text) if text.trim().is_empty() => self.buf = text.into_bytes(),
                Ok(text) => return Ok(Some(Line::Text(text))),
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    self.buf = e.into_bytes();
                    return Ok(Some(Line::Unreadable(format!(
                        "line {number} is not valid UTF-8 (first bad byte at offset {at})"
                    ))));
                }
            }
        }
        Ok(None)
    }
}

impl Line {
    /// The request as the decision log keeps it: the line's text, or why
    /// it could not be read.
    fn request_text(&self) -> String {
        match self {
            Line::Text(text) => text.trim().to_owned(),
            Line::Unreadable(message) => message.clone(),
        }
    }

    /// The decision for this line: `select` on its request, or code 100.
    fn decide(&self, select: impl FnOnce(&Request) -> Decision) -> Decision {
        match self {
            Line::Text(text) => switchboard::decide_text(text, select),
            Line::Unreadable(message) => Decision::request_error(ErrorKind::InvalidRequest, message.clone(), None),
        }
    }
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `max`
/// bytes: a longer line is consumed to its end without being stored, and
/// reported as overlong. `None` at the end of the input.
fn read_capped(input: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    buf.clear();
    let (mut overlong, mut any) = (false, false);
    loop {
        let available = match input.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(any.then_some(overlong));
        }
        any = true;
        let (end, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        if !overlong {
            if buf.len() + end > max {
                overlong = true;
                buf.clear();
                buf.shrink_to(64 * 1024);
            } else {
                buf.extend_from_slice(&available[..end]);
            }
        }
        input.consume(if done { end + 1 } else { end });
        if done {
            return Ok(Some(overlong));
        }
    }
}

/// The sequential JSON Lines loop of `--watch`: one decision line per
/// non-blank input line, flushed at once (a live stream).
fn each_line(
    input: impl BufRead,
    out: &mut impl Write,
    live: &Live,
    recorder: Option<&Recorder>,
    max_line: usize,
) -> Result<Status, Fatal> {
    let mut lines = Lines::new(input, max_line);
    while let Some(line) = lines.next_line().map_err(|e| Fatal(format!("<stdin>: cannot read input: {e}")))? {
        let snapshot = live.snapshot();
        let decision = line.decide(|r| snapshot.plan.select(&snapshot.world, r));
        let json = decision.to_json();
        if writeln!(out, "{json}").and_then(|()| out.flush()).is_err() {
            return Ok(Status::Success); // the reader went away
        }
        if let Some(recorder) = recorder {
            recorder.record(&snapshot, &line.request_text(), json);
        }
    }
    Ok(Status::Success)
}
