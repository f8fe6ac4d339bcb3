//! The decision log (docs/service.md): one JSON line per decision, written off the
//! request path by a writer thread fed through a bounded channel.
//!
//! Each line carries what `replay` needs to re-decide it and compare:
//!
//! ```json
//! {"decision_id":"5f0c2a9e41d7b3c8-1","time":"2026-11-25T14:03:07.123Z","generation":1,
//!  "rules_sha256":"…","world_sha256":"…","request":{…},"decision":{…}}
//! ```
//!
//! `request` is the request as received (a JSON value; a text that is not
//! JSON is kept as a JSON string, so a code-100 decision still says what it
//! was given); `decision` is the docs/world.md decision object. Lines are written
//! in the order they are recorded.
//!
//! When the writer falls behind, [`Overflow`] says what a recorder does:
//! [`Overflow::Block`] waits for room (a batch command that must lose
//! nothing), [`Overflow::Drop`] drops the line and counts it
//! ([`DecisionLog::dropped`]; a service that must never stall a request).
//!
//! ```no_run
//! use switchboard::decision_log::{DecisionIds, DecisionLog, Entry, Overflow, Target};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let live = switchboard::Live::open(switchboard::registry()?, "rules.yaml", Some("world.yaml"))?;
//! let log = DecisionLog::open(&Target::parse("decisions.jsonl"), 4096, Overflow::Block)?;
//! let ids = DecisionIds::new();
//! let text = r#"{"location":"shop","channel":"sms","body":"hi"}"#;
//! let snapshot = live.snapshot();
//! let decision = switchboard::decide_text(text, |r| snapshot.plan.select(&snapshot.world, r));
//! log.record(Entry::new(ids.next(), snapshot.clone(), text, decision.to_json()));
//! log.close()?;                                   // flushes every line recorded
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::SystemTime;

use crate::Snapshot;

/// Where the log goes: a file (appended to, created if missing) or stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Standard output (`-` on the command line).
    Stdout,
    /// A file, appended to.
    File(PathBuf),
}

impl Target {
    /// `-` is stdout; anything else a file path.
    pub fn parse(arg: impl Into<PathBuf>) -> Target {
        let path = arg.into();
        if path.as_os_str() == "-" {
            Target::Stdout
        } else {
            Target::File(path)
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Stdout => f.write_str("<stdout>"),
            Target::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What [`DecisionLog::record`] does when the channel to the writer is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overflow {
    /// Wait for room: no line is ever lost; the recorder slows to the
    /// writer's pace.
    Block,
    /// Drop the line and count it: the recorder never waits.
    Drop,
}

/// Unique decision ids for this process: a random per-process prefix and a
/// counter (`5f0c2a9e41d7b3c8-1`, `5f0c2a9e41d7b3c8-2`, …). Two processes
/// (or two restarts) draw different prefixes.
#[derive(Debug)]
pub struct DecisionIds {
    prefix: String,
    next: AtomicU64,
}

impl Default for DecisionIds {
    fn default() -> Self {
        Self::new()
    }
}

impl DecisionIds {
    /// A new sequence with a fresh random prefix.
    pub fn new() -> DecisionIds {
        use std::hash::{BuildHasher, Hasher};
        // `RandomState` is seeded from the OS per process; mix in the pid and
        // the time so that even a fixed seed differs between runs.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        hasher.write_u128(nanos);
        DecisionIds { prefix: format!("{:016x}", hasher.finish()), next: AtomicU64::new(1) }
    }

    /// The next id.
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
    }
}

/// One decision to log: its id, when it was made, the configuration it ran
/// on, the request text and the decision's JSON.
#[derive(Debug)]
pub struct Entry {
    decision_id: String,
    time: SystemTime,
    snapshot: Arc<Snapshot>,
    request: String,
    decision: String,
    message_id: Option<String>,
    /// An accepted event (docs/live-state.md) instead of a decision: its JSON.
    event: Option<String>,
}

impl Entry {
    /// An entry made now. `request` is the request text as received;
    /// `decision` is [`Decision::to_json`](crate::Decision::to_json).
    pub fn new(
        decision_id: String,
        snapshot: Arc<Snapshot>,
        request: impl Into<String>,
        decision: impl Into<String>,
    ) -> Entry {
        Entry {
            decision_id,
            time: SystemTime::now(),
            snapshot,
            request: request.into(),
            decision: decision.into(),
            message_id: None,
            event: None,
        }
    }

    /// An entry for an accepted event (docs/live-state.md): the line
    /// `{"time": "…", "event": {…}}` (`event` is the event's JSON, its
    /// `time` filled in), which `replay` applies in log order.
    pub fn event(snapshot: Arc<Snapshot>, event: impl Into<String>) -> Entry {
        Entry {
            decision_id: String::new(),
            time: SystemTime::now(),
            snapshot,
            request: String::new(),
            decision: String::new(),
            message_id: None,
            event: Some(event.into()),
        }
    }

    /// The entry with the request's `message_id` (docs/world.md), written as the
    /// line's own `"message_id"` after `decision_id`.
    #[must_use]
    pub fn with_message_id(mut self, message_id: Option<String>) -> Entry {
        self.message_id = message_id;
        self
    }

    /// The log line (without its newline).
    pub fn to_line(&self) -> String {
        if let Some(event) = &self.event {
            return format!("{{\"time\":\"{}\",\"event\":{}}}", crate::report::rfc3339(self.time), event.trim());
        }
        // A request that is JSON on one line goes in as sent (validated
        // without building a value); other JSON is re-encoded on one line,
        // and text that is not JSON becomes a JSON string.
        let text = self.request.trim();
        let one_line = !text.contains(['\n', '\r']);
        let request: std::borrow::Cow<'_, str> =
            if one_line && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
                text.into()
            } else {
                match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(value) => value.to_string().into(),
                    Err(_) => serde_json::Value::String(self.request.clone()).to_string().into(),
                }
            };
        let mut line = String::with_capacity(self.request.len() + self.decision.len() + 256);
        let message_id = match &self.message_id {
            Some(id) => format!("\"message_id\":{},", serde_json::Value::String(id.clone())),
            None => String::new(),
        };
        let _ = write!(
            line,
            "{{\"decision_id\":{},{message_id}\"time\":\"{}\",\"generation\":{},\"rules_sha256\":\"{}\",\"world_sha256\":{},\"request\":{},\"decision\":{}}}",
            serde_json::Value::String(self.decision_id.clone()),
            crate::report::rfc3339(self.time),
            self.snapshot.generation,
            self.snapshot.rules_sha256,
            self.snapshot.world_sha256.as_ref().map_or("null".to_owned(), |h| format!("\"{h}\"")),
            request,
            self.decision.trim(),
        );
        line
    }
}

/// The log: recorders on any thread, one writer thread.
#[derive(Debug)]
pub struct DecisionLog {
    target: Target,
    overflow: Overflow,
    sender: Mutex<Option<SyncSender<Entry>>>,
    dropped: AtomicU64,
    writer: Mutex<Option<JoinHandle<io::Result<u64>>>>,
}

impl DecisionLog {
    /// Opens the target (a file is created or appended to) and starts the
    /// writer; at most `capacity` lines wait for it.
    pub fn open(target: &Target, capacity: usize, overflow: Overflow) -> io::Result<DecisionLog> {
        let out: Box<dyn Write + Send> = match target {
            Target::Stdout => Box::new(io::stdout()),
            Target::File(path) => Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?),
        };
        Self::with_writer(target.clone(), out, capacity, overflow)
    }

    /// Like [`open`](Self::open), writing to `out` (named `target` in
    /// messages): a pipe, a socket, a test's writer.
    pub fn with_writer(
        target: Target,
        out: Box<dyn Write + Send>,
        capacity: usize,
        overflow: Overflow,
    ) -> io::Result<DecisionLog> {
        let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_lines(&receiver, BufWriter::with_capacity(1 << 16, out)))?;
        Ok(DecisionLog {
            target,
            overflow,
            sender: Mutex::new(Some(sender)),
            dropped: AtomicU64::new(0),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Where the lines go.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Queues one line for the writer (see [`Overflow`]). After
    /// [`close`](Self::close), or if the writer stopped on an I/O error,
    /// the entry is counted as dropped.
    pub fn record(&self, entry: Entry) {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let sent = match (sender, self.overflow) {
            (Some(tx), Overflow::Block) => tx.send(entry).is_ok(),
            (Some(tx), Overflow::Drop) => match tx.try_send(entry) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            (None, _) => false,
        };
        if !sent {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped so far (the writer was behind with [`Overflow::Drop`],
    /// or had stopped).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Stops accepting lines, writes and flushes every line queued, and
    /// waits for the writer; returns the number of lines written, or the
    /// writer's I/O error. Calling it again returns `Ok(0)`.
    pub fn close(&self) -> io::Result<u64> {
        drop(self.sender.lock().unwrap_or_else(PoisonError::into_inner).take());
        let writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take();
        match writer.map(JoinHandle::join) {
            None => Ok(0),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the decision-log writer thread failed")),
        }
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

/// The writer: lines in arrival order; flushed whenever the queue is empty
/// (so a quiet log is always complete on disk) and at the end.
fn write_lines(receiver: &Receiver<Entry>, mut out: BufWriter<Box<dyn Write + Send>>) -> io::Result<u64> {
    let mut written = 0u64;
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(entry) = next {
            let mut line = entry.to_line();
            line.push('\n');
            out.write_all(line.as_bytes())?;
            written += 1;
            next = receiver.try_recv().ok();
        }
        out.flush()?;
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_share_the_process_prefix() {
        let ids = DecisionIds::new();
        let (a, b) = (ids.next(), ids.next());
        assert_ne!(a, b);
        assert_eq!(a.split('-').next(), b.split('-').next());
        assert_ne!(DecisionIds::new().next(), a, "another sequence draws another prefix");
    }

    /// A writer that blocks until the test lets it go, and keeps the lines.
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        lines: Arc<Mutex<Vec<u8>>>,
        entered: Arc<AtomicU64>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, opened) = &*self.open;
            let mut open = lock.lock().unwrap();
            self.entered.fetch_add(1, Ordering::SeqCst);
            while !*open {
                open = opened.wait(open).unwrap();
            }
            self.lines.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn snapshot() -> Arc<Snapshot> {
        let plan =
            switchboard_files::compile("rules: [any_available]\n", "rules.yaml", crate::registry().unwrap()).unwrap();
        Arc::new(Snapshot {
            plan: Arc::new(plan),
            world: Arc::new(crate::World::empty()),
            generation: 3,
            rules_sha256: "ab".into(),
            world_sha256: None,
        })
    }

    type Gated = (DecisionLog, Arc<(Mutex<bool>, std::sync::Condvar)>, Arc<Mutex<Vec<u8>>>, Arc<AtomicU64>);

    fn log_with_gate(overflow: Overflow) -> Gated {
        let open = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let entered = Arc::new(AtomicU64::new(0));
        let gate = Gate { open: open.clone(), lines: lines.clone(), entered: entered.clone() };
        // The BufWriter in front passes lines through at 64 KiB; these are
        // small, so the gate is met at the first flush.
        let log = DecisionLog::with_writer(Target::Stdout, Box::new(gate), 2, overflow).unwrap();
        (log, open, lines, entered)
    }

    #[test]
    fn a_full_queue_drops_and_counts_with_drop_and_loses_nothing_on_close() {
        let (log, open, lines, entered) = log_with_gate(Overflow::Drop);
        let snap = snapshot();
        let entry = |i: usize| Entry::new(format!("id-{i}"), snap.clone(), "{\"a\":1}", "{\"ok\":false}");
        log.record(entry(0));
        // Wait (bounded) until the writer is stuck in the gate with entry 0.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while entered.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "the writer never wrote");
            std::thread::yield_now();
        }
        for i in 1..50 {
            log.record(entry(i));
        }
        // The queue holds two; the other 47 are dropped, and counted.
        assert_eq!(log.dropped(), 47);
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
        let written = log.close().unwrap();
        assert_eq!(written, 3);
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count() as u64, written);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["decision_id"], "id-0");
        assert_eq!(first["generation"], 3);
        assert_eq!(first["request"], serde_json::json!({"a": 1}));
        assert_eq!(first["world_sha256"], serde_json::Value::Null);
        assert_eq!(log.close().unwrap(), 0, "a second close is a no-op");
    }

    #[test]
    fn block_waits_for_the_writer_and_drops_nothing() {
        let (log, open, lines, _) = log_with_gate(Overflow::Block);
        let log = Arc::new(log);
        let snap = snapshot();
        let recorder = {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    log.record(Entry::new(format!("id-{i}"), snap.clone(), "not json", "{}"));
                }
            })
        };
        *open.0.lock().unwrap() = true;
        open.1.notify_all();
        recorder.join().unwrap();
        assert_eq!(log.close().unwrap(), 20);
        assert_eq!(log.dropped(), 0);
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["decision_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(ids, (0..20).map(|i| format!("id-{i}")).collect::<Vec<_>>(), "in record order");
        assert!(text.contains(r#""request":"not json""#));
    }

    #[test]
    fn a_line_keeps_one_line_json_as_sent_and_puts_anything_else_on_one_line() {
        let line = |request: &str| -> serde_json::Value {
            let text = Entry::new("x-1".into(), snapshot(), request, "{\"ok\":true}").to_line();
            assert!(!text.contains('\n'), "{text}");
            serde_json::from_str(&text).unwrap()
        };
        let sent = r#"{"location":"shop","channel":"sms","body":"a\nb"}"#;
        let text = Entry::new("x-1".into(), snapshot(), sent, "{}").to_line();
        assert!(text.contains(&format!("\"request\":{sent},")), "kept as sent: {text}");
        assert_eq!(line("{\n  \"location\": \"shop\"\n}\n")["request"], serde_json::json!({"location": "shop"}));
        assert_eq!(line("not {json")["request"], "not {json");
        assert_eq!(line("{\"a\":1} trailing")["request"], "{\"a\":1} trailing");
    }

    #[test]
    fn target_dash_is_stdout() {
        assert_eq!(Target::parse("-"), Target::Stdout);
        assert_eq!(Target::parse("log.jsonl"), Target::File("log.jsonl".into()));
    }
}
