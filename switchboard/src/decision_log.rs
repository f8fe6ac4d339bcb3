//! The decision log (SPEC §9): one JSON line per decision, written off the
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
//! was given); `decision` is the SPEC §7 decision object. Lines are written
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
        Entry { decision_id, time: SystemTime::now(), snapshot, request: request.into(), decision: decision.into() }
    }

    /// The log line (without its newline).
    pub fn to_line(&self) -> String {
        let request = match serde_json::from_str::<serde_json::Value>(&self.request) {
            Ok(value) => value,
            Err(_) => serde_json::Value::String(self.request.clone()),
        };
        let mut line = String::with_capacity(self.request.len() + self.decision.len() + 256);
        let _ = write!(
            line,
            "{{\"decision_id\":{},\"time\":\"{}\",\"generation\":{},\"rules_sha256\":\"{}\",\"world_sha256\":{},\"request\":{},\"decision\":{}}}",
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
        let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
        let writer = std::thread::Builder::new()
            .name("decision-log".into())
            .spawn(move || write_lines(&receiver, BufWriter::with_capacity(1 << 16, out)))?;
        Ok(DecisionLog {
            target: target.clone(),
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

    #[test]
    fn target_dash_is_stdout() {
        assert_eq!(Target::parse("-"), Target::Stdout);
        assert_eq!(Target::parse("log.jsonl"), Target::File("log.jsonl".into()));
    }
}
