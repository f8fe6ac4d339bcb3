//! Replay of a decision log (docs/service.md, docs/operator-tools.md, `switchboard replay`): every
//! logged request is decided again with a new configuration and compared
//! with the logged decision, giving the share that changed and each
//! transition (`old rule/instance → new rule/instance`) with its count and
//! one example request.
//!
//! Each request is decided as of its logged `time` (unless it carries its
//! own `now`) with [`Plan::preview`], so a replay never counts against
//! capacity. Capacity and conversation state in a replay come from the
//! log's own earlier decisions, in a private store; the live store is never
//! read or written. Before line N is decided, a private [`MemoryStore`]
//! attached to a clone of the new plan holds exactly what the *logged*
//! decisions of lines 1 to N−1 did: each one that selected an instance is counted against that
//! instance (and its pool, when the world gives it one) with its contact at
//! its time, and is remembered as the contact's conversation instance (with
//! the `ttl` of the new chain's `conversation` rule, when it has one)
//! unless `temporary_switch` decided it. So a new `conversation` rule
//! recalls what the log's traffic would have left, and new limits are
//! measured against the log's own traffic, not against an empty store nor
//! against a production Redis as it is now.
//!
//! That history needs log order: when the new plan counts capacity or
//! remembers conversations ([`Plan::counts_capacity`]), the log is decided
//! by one thread in log order while another reads ahead; otherwise the log
//! streams through in chunks decided on every core. Either way memory is
//! bounded by the chunk queue and the number of distinct transitions (plus,
//! with history, the private store: counts per instance and the
//! conversations still within their `ttl`), not by the log's length.
//!
//! ```no_run
//! use switchboard::replay::{replay, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = switchboard::registry()?;
//! let plan = switchboard::load_rules("rules.new.yaml", &registry)?;
//! let world = switchboard::load_world("examples/world.yaml", &plan)?;
//! let log = std::io::BufReader::new(std::fs::File::open("decisions.jsonl")?);
//! let summary = replay(&plan, &world, log, &Options::default(), &|_bytes| {})?;
//! println!("{}", summary.headline());
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead};
use std::sync::{mpsc, Arc, Mutex};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

// A logged rule the new chain no longer has cannot answer for itself
// (`SelectionRule::is_remembered`): only temporary switches are not
// remembered.
use switchboard_state::MemoryStore;

use crate::capacity::{clock, jiff::Timestamp, Limits, PoolRef, Remember};
use crate::{CapacityStore, Decision, Diagnostic, Plan, Request, ReservationRequest, World};

/// What a decision is compared on: the deciding rule and the selected
/// instance, or, for an error, its code and kind (the rule that raised it
/// is shown but not compared: code 106 from `any_available` and from an
/// exhausted chain is the same outcome for the message).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// An instance was selected.
    Selected {
        /// The deciding rule.
        rule: Option<String>,
        /// The instance id.
        instance: String,
    },
    /// A coded error.
    Error {
        /// The code.
        code: u32,
        /// The kind.
        kind: String,
    },
}

impl Outcome {
    /// The comparable outcome of a decision made now.
    pub fn of(decision: &Decision) -> Outcome {
        match &decision.result {
            Ok(instance) => {
                Outcome::Selected { rule: decision.rule.map(str::to_owned), instance: instance.id().to_owned() }
            }
            Err(e) => Outcome::Error { code: e.code, kind: e.kind.as_str().to_owned() },
        }
    }

    /// Whether `decision` has this outcome (without building its own).
    pub fn is(&self, decision: &Decision) -> bool {
        match (self, &decision.result) {
            (Outcome::Selected { rule, instance }, Ok(i)) => rule.as_deref() == decision.rule && instance == i.id(),
            (Outcome::Error { code, kind }, Err(e)) => *code == e.code && kind == e.kind.as_str(),
            _ => false,
        }
    }

    /// As JSON: `{"rule","instance"}` or `{"error","kind"}`.
    pub fn to_json(&self) -> Value {
        match self {
            Outcome::Selected { rule, instance } => json!({"rule": rule, "instance": instance}),
            Outcome::Error { code, kind } => json!({"error": code, "kind": kind}),
        }
    }
}

impl fmt::Display for Outcome {
    /// `rule/instance` (`-` for no rule), or `error CODE KIND`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Selected { rule, instance } => write!(f, "{}/{instance}", rule.as_deref().unwrap_or("-")),
            Outcome::Error { code, kind } => write!(f, "error {code} {kind}"),
        }
    }
}

/// One line of a decision log, as docs/service.md writes it. Unknown keys are
/// ignored (a newer writer may add some); `decision` is required.
#[derive(Deserialize)]
struct LogLine<'a> {
    /// Missing or `null` for a line that could not be read as a request
    /// (as a writer may log it): decided again, that is code 100.
    #[serde(borrow, default)]
    request: Option<&'a RawValue>,
    decision: LoggedDecision,
    /// RFC 3339 UTC: when the decision was made (see [`decide_as_of`]).
    #[serde(default, borrow)]
    time: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct LoggedDecision {
    #[serde(default)]
    ok: Option<bool>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    instance: Option<LoggedInstance>,
    #[serde(default)]
    error: Option<LoggedError>,
}

#[derive(Deserialize)]
struct LoggedInstance {
    id: String,
}

#[derive(Deserialize)]
struct LoggedError {
    code: u32,
    kind: String,
}

impl LoggedDecision {
    fn outcome(self) -> Result<Outcome, String> {
        match (self.ok, self.instance, self.error) {
            (Some(true) | None, Some(i), None) => Ok(Outcome::Selected { rule: self.rule, instance: i.id }),
            (Some(false) | None, None, Some(e)) => Ok(Outcome::Error { code: e.code, kind: e.kind }),
            _ => Err("`decision` must have either `instance` (`ok: true`) or `error` (`ok: false`)".to_owned()),
        }
    }
}

/// How to read the log.
#[derive(Debug, Clone)]
pub struct Options {
    /// The log's name, for located messages.
    pub file: String,
    /// The longest line read; a longer one is unreadable (and not stored).
    pub max_line_bytes: usize,
    /// Lines per chunk handed to a worker.
    pub chunk: usize,
    /// Worker threads (0: one per core, at most 8); one, whatever this says,
    /// when the new plan counts capacity or remembers conversations (the
    /// log's history is then kept in log order).
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { file: "<log>".to_owned(), max_line_bytes: 16 << 20, chunk: 512, workers: 0 }
    }
}

/// One kind of change, with its count and the first example in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The logged outcome.
    pub from: Outcome,
    /// The outcome now.
    pub to: Outcome,
    /// How many decisions made this change.
    pub count: u64,
    /// The line number (1-based) of the first one.
    pub example_line: u64,
    /// Its request, as logged (JSON text).
    pub example: String,
}

/// The result of a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Decisions read and decided again.
    pub decisions: u64,
    /// Those that decided the same.
    pub unchanged: u64,
    /// Those that changed.
    pub changed: u64,
    /// Lines that could not be read as a logged decision (skipped).
    pub unreadable: u64,
    /// The first unreadable line, located (`line`, `column`, why).
    pub first_unreadable: Option<Diagnostic>,
    /// Every transition, most frequent first (ties by their text).
    pub transitions: Vec<Transition>,
}

impl Summary {
    /// The changed share in percent (0 for an empty log).
    pub fn changed_percent(&self) -> f64 {
        if self.decisions == 0 {
            0.0
        } else {
            self.changed as f64 * 100.0 / self.decisions as f64
        }
    }

    /// `N decisions, N unchanged, N changed (P%)`, P with one decimal.
    pub fn headline(&self) -> String {
        format!(
            "{} decisions, {} unchanged, {} changed ({:.1}%)",
            self.decisions,
            self.unchanged,
            self.changed,
            self.changed_percent()
        )
    }

    /// The report as text: the headline, a line for unreadable lines if
    /// any, then each transition with its count and example request.
    pub fn to_text(&self, file: &str) -> String {
        let mut out = self.headline();
        out.push('\n');
        if let Some(first) = &self.first_unreadable {
            let located = crate::FileErrors { file: file.to_owned(), diagnostics: vec![first.clone()] };
            out.push_str(&format!("{} unreadable lines skipped; the first: {located}\n", self.unreadable));
        }
        for t in &self.transitions {
            out.push_str(&format!("{:>8}  {} → {}\n", t.count, t.from, t.to));
            out.push_str(&format!("          e.g. line {}: {}\n", t.example_line, t.example));
        }
        out
    }

    /// The report as one JSON object: `decisions`, `unchanged`, `changed`,
    /// `changed_percent`, `unreadable`, `first_unreadable`, and
    /// `transitions` (`from` and `to` as `rule/instance` or `error CODE
    /// KIND`, `old` and `new` as objects, `label`, `count`, `example_line`,
    /// `example`: the logged request).
    pub fn to_json(&self, file: &str) -> Value {
        let transitions: Vec<Value> = self
            .transitions
            .iter()
            .map(|t| {
                let example: Value = serde_json::from_str(&t.example).unwrap_or_else(|_| json!(t.example));
                json!({
                    "from": t.from.to_string(),
                    "to": t.to.to_string(),
                    "old": t.from.to_json(),
                    "new": t.to.to_json(),
                    "label": format!("{} → {}", t.from, t.to),
                    "count": t.count,
                    "example_line": t.example_line,
                    "example": example,
                })
            })
            .collect();
        let first = self
            .first_unreadable
            .as_ref()
            .map(|d| json!({"file": file, "line": d.line, "column": d.column, "message": d.message}));
        json!({
            "decisions": self.decisions,
            "unchanged": self.unchanged,
            "changed": self.changed,
            "changed_percent": self.changed_percent(),
            "unreadable": self.unreadable,
            "first_unreadable": first,
            "transitions": transitions,
        })
    }
}

/// Counts one worker gathers.
#[derive(Default)]
struct Tally {
    decisions: u64,
    changed: u64,
    unreadable: u64,
    first_unreadable: Option<(u64, Diagnostic)>,
    transitions: HashMap<(Outcome, Outcome), (u64, u64, String)>,
}

impl Tally {
    fn unreadable(&mut self, line: u64, diagnostic: Diagnostic) {
        self.unreadable += 1;
        if self.first_unreadable.as_ref().is_none_or(|(l, _)| line < *l) {
            self.first_unreadable = Some((line, diagnostic));
        }
    }

    /// Decides line `number` again with `plan` and compares; with a
    /// `history`, then records what its logged decision did.
    fn line(&mut self, plan: &Plan, world: &World, history: Option<&History>, number: u64, text: &str) {
        let parsed: LogLine<'_> = match serde_json::from_str(text) {
            Ok(p) => p,
            Err(e) => return self.unreadable(number, located(number, &e)),
        };
        let old = match parsed.decision.outcome() {
            Ok(o) => o,
            Err(message) => {
                return self
                    .unreadable(number, Diagnostic { line: Some(number as usize), ..Diagnostic::unlocated(message) })
            }
        };
        // A request logged as a string is the raw line a batch could not
        // read; it is decided again from that text.
        let raw = parsed.request.map_or("null", RawValue::get);
        let request_text = match raw.starts_with('"').then(|| serde_json::from_str::<String>(raw)) {
            Some(Ok(text)) => std::borrow::Cow::Owned(text),
            _ => std::borrow::Cow::Borrowed(raw),
        };
        let (decision, request) = decide_as_of(plan, world, &request_text, parsed.time.as_deref());
        if let (Some(history), Some(request)) = (history, &request) {
            history.record(plan, world, request, &old);
        }
        self.decisions += 1;
        if !old.is(&decision) {
            let new = Outcome::of(&decision);
            self.changed += 1;
            let entry = self.transitions.entry((old, new)).or_insert_with(|| (0, number, String::new()));
            entry.0 += 1;
            if entry.2.is_empty() || number < entry.1 {
                entry.1 = number;
                entry.2 = raw.to_owned();
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.decisions += other.decisions;
        self.changed += other.changed;
        self.unreadable += other.unreadable;
        if let Some((line, d)) = other.first_unreadable {
            if self.first_unreadable.as_ref().is_none_or(|(l, _)| line < *l) {
                self.first_unreadable = Some((line, d));
            }
        }
        for (key, (count, line, example)) in other.transitions {
            let entry = self.transitions.entry(key).or_insert_with(|| (0, line, example.clone()));
            entry.0 += count;
            if line < entry.1 {
                entry.1 = line;
                entry.2 = example;
            }
        }
    }

    fn finish(self) -> Summary {
        let mut transitions: Vec<Transition> = self
            .transitions
            .into_iter()
            .map(|((from, to), (count, example_line, example))| Transition { from, to, count, example_line, example })
            .collect();
        transitions.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| (&a.from, &a.to).cmp(&(&b.from, &b.to))));
        Summary {
            decisions: self.decisions,
            unchanged: self.decisions - self.changed,
            changed: self.changed,
            unreadable: self.unreadable,
            first_unreadable: self.first_unreadable.map(|(_, d)| d),
            transitions,
        }
    }
}

/// Decides a logged request again, as of the time it was logged (the
/// logged `time`, unless the request carries its own `now`; a missing or
/// unreadable `time` leaves the clock), without counting against capacity
/// or remembering anything. Also answers the request as decided, when it
/// could be read.
fn decide_as_of(plan: &Plan, world: &World, request: &str, time: Option<&str>) -> (Decision, Option<Request>) {
    let mut request = match crate::parse_request(request) {
        Ok(request) => request,
        Err(decision) => return (decision, None),
    };
    if request.now.is_none() {
        request.now = time.and_then(|t| t.parse::<Timestamp>().ok());
    }
    (plan.preview(world, &request), Some(request))
}

/// The log's own history: what the logged decisions read so far did to
/// capacity counts and conversation memory, in a private store that the
/// replayed plan reads (see the module docs).
struct History {
    store: Arc<MemoryStore>,
    /// Whether a registered rule that is not in the new chain is
    /// remembered, by id (see [`History::is_remembered`]).
    remembered: Mutex<HashMap<String, bool>>,
}

impl History {
    /// Records the logged decision of `request`, decided `logged`: when it
    /// selected an instance, counts it (and its pool) at the request's time
    /// with its contact, and remembers it as the contact's conversation
    /// instance when the new chain of its channel remembers and the logged
    /// rule is remembered. A request whose location is not known (in the
    /// world, or inline) records nothing: the new configuration cannot
    /// decide it either.
    /// Whether the choice of rule `id`, which the new chain does not have,
    /// is remembered: the registry's rule of that id, built with its
    /// defaults, is asked once ([`switchboard_core::SelectionRule::is_remembered`]). A rule
    /// the registry does not know, or that cannot be built without options,
    /// is remembered (the trait's default).
    fn is_remembered(&self, plan: &Plan, id: &str) -> bool {
        let ask = || {
            let info = plan.registry().rule(id)?;
            let options = switchboard_files::options_with_defaults(Vec::new(), &info.options);
            (info.build)(&options).ok().map(|rule| rule.is_remembered())
        };
        let Ok(mut known) = self.remembered.lock() else { return ask().unwrap_or(true) };
        *known.entry(id.to_owned()).or_insert_with(|| ask().unwrap_or(true))
    }

    fn record(&self, plan: &Plan, world: &World, request: &Request, logged: &Outcome) {
        let Outcome::Selected { rule, instance } = logged else { return };
        let Ok(location) = world.location_of(request, plan.registry()) else { return };
        let selected = location.instances().iter().find(|i| i.id() == instance);
        let pool = selected.and_then(|i| i.pool()).and_then(|p| location.pool(p));
        let contact = request.contact_id();
        let remember = plan.registry().channel_id(&request.channel).and_then(|channel| {
            let ttl = plan.memory_ttl(channel)?;
            let remembered = rule
                .as_deref()
                .is_none_or(|rule| plan.is_remembered(channel, rule).unwrap_or_else(|| self.is_remembered(plan, rule)));
            remembered.then_some(Remember { channel, ttl })
        });
        let now = request.now.unwrap_or_else(clock);
        let reservation = ReservationRequest {
            limits: selected.map_or(Limits::NONE, |i| counting(&i.limits_at(now, location.timezone()))),
            pool: pool.map(|p| PoolRef { id: p.id(), limits: counting(p.limits()) }),
            contact,
            remember,
            ..ReservationRequest::new(location.id(), location.timezone(), instance, now)
        };
        // Limits that are never reached: the memory store always counts,
        // and never fails.
        let _ = self.store.reserve(&reservation);
    }
}

/// Limits that never refuse a reservation but make a store keep what
/// `limits` reads: the day's set of contacts when `contacts_per_day` is set
/// (a store counts distinct contacts only under that limit).
fn counting(limits: &Limits) -> Limits {
    Limits { contacts_per_day: limits.contacts_per_day.map(|_| u32::MAX), ..Limits::NONE }
}

fn located(number: u64, e: &serde_json::Error) -> Diagnostic {
    let d = Diagnostic::from_json(e);
    Diagnostic { line: Some(number as usize), message: format!("not a decision log line: {}", d.message), ..d }
}

/// One line of input: its number and text, or why it cannot be read.
enum Line {
    Text(u64, String),
    Unreadable(u64, String),
}

/// Replays the decision log read from `input` with `plan` and `world`.
/// `progress` is told the bytes read so far, now and then. An I/O error
/// ends the replay; a line that is not a logged decision (bad JSON, not
/// UTF-8, longer than the limit, missing `request` or `decision`) is
/// counted as unreadable and skipped. Blank lines are skipped.
///
/// The store attached to `plan` is never used: capacity counts and
/// conversation memory come from the log's own earlier decisions, in a
/// private memory store (see the module docs), and then the log is decided
/// in log order by one thread.
pub fn replay(
    plan: &Plan,
    world: &World,
    input: impl BufRead + Send,
    options: &Options,
    progress: &(dyn Fn(u64) + Sync),
) -> io::Result<Summary> {
    let store = Arc::new(MemoryStore::new());
    let plan = &plan.clone().with_store(store.clone());
    let history = plan.counts_capacity(world).then(|| History { store, remembered: Default::default() });
    let history = history.as_ref();
    let workers = match (history, options.workers) {
        (Some(_), _) => 1,
        (None, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8),
        (None, n) => n,
    };
    let chunk = options.chunk.max(1);
    let (work_tx, work_rx) = mpsc::sync_channel::<Vec<Line>>(workers * 2);
    let work_rx = Mutex::new(work_rx);
    // Chunks decided so far: an event line waits for every chunk before it.
    let done = &std::sync::atomic::AtomicU64::new(0);
    // An event line (docs/live-state.md) is applied to the private store once every
    // decision before it is made, and before any after it: the reader
    // waits for the chunks sent so far, then applies it.
    let apply_event = |sent: u64, text: &str| {
        while done.load(std::sync::atomic::Ordering::Acquire) < sent {
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
        replay_event(plan, world, text);
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let work_rx = &work_rx;
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    loop {
                        let job = work_rx.lock().map_err(|_| ()).and_then(|rx| rx.recv().map_err(|_| ()));
                        let Ok(lines) = job else { break };
                        for line in lines {
                            match line {
                                Line::Text(n, text) => tally.line(plan, world, history, n, &text),
                                Line::Unreadable(n, why) => tally
                                    .unreadable(n, Diagnostic { line: Some(n as usize), ..Diagnostic::unlocated(why) }),
                            }
                        }
                        done.fetch_add(1, std::sync::atomic::Ordering::Release);
                    }
                    tally
                })
            })
            .collect();
        let read = read_lines(input, options.max_line_bytes, chunk, &work_tx, progress, &apply_event);
        drop(work_tx);
        let mut total = Tally::default();
        for handle in handles {
            match handle.join() {
                Ok(tally) => total.merge(tally),
                Err(_) => return Err(io::Error::other("a replay worker failed")),
            }
        }
        read.map(|()| total.finish())
    })
}

fn read_lines(
    input: impl BufRead,
    max: usize,
    chunk: usize,
    work: &mpsc::SyncSender<Vec<Line>>,
    progress: &(dyn Fn(u64) + Sync),
    event: &dyn Fn(u64, &str),
) -> io::Result<()> {
    let mut lines = crate::lines::Lines::new(input, max);
    let mut batch = Vec::with_capacity(chunk);
    let mut sent = 0u64;
    while let Some(line) = lines.next_line()? {
        let number = lines.number() as u64;
        if let crate::lines::Line::Text(text) = &line {
            if is_event_line(text) {
                if !batch.is_empty() {
                    if work.send(std::mem::replace(&mut batch, Vec::with_capacity(chunk))).is_err() {
                        return Ok(());
                    }
                    sent += 1;
                }
                event(sent, text);
                continue;
            }
        }
        batch.push(match line {
            crate::lines::Line::Text(text) => Line::Text(number, text),
            crate::lines::Line::NotUtf8 { why, .. } | crate::lines::Line::Unreadable(why) => {
                Line::Unreadable(number, why)
            }
        });
        if batch.len() == chunk {
            progress(lines.bytes());
            if work.send(std::mem::replace(&mut batch, Vec::with_capacity(chunk))).is_err() {
                return Ok(());
            }
            sent += 1;
        }
    }
    if !batch.is_empty() {
        let _ = work.send(batch);
    }
    progress(lines.bytes());
    Ok(())
}

/// Whether a log line is an event line `{"time": …, "event": {…}}` (docs/live-state.md) rather than a decision. Decision lines as written start with
/// `{"decision_id"` and are told apart without parsing.
fn is_event_line(text: &str) -> bool {
    #[derive(Deserialize)]
    struct EventLine<'a> {
        #[serde(borrow, default)]
        event: Option<&'a RawValue>,
        #[serde(default)]
        decision: Option<serde::de::IgnoredAny>,
    }
    if text.trim_start().starts_with("{\"decision_id\"") || !text.contains("\"event\"") {
        return false;
    }
    serde_json::from_str::<EventLine<'_>>(text).is_ok_and(|l| l.event.is_some() && l.decision.is_none())
}

/// Applies a logged event to the replay's private store (the store of
/// `plan`), as of its own `time`; an event the new world cannot take (its
/// location or instance is gone) or that cannot be read is skipped.
fn replay_event(plan: &Plan, world: &World, text: &str) {
    #[derive(Deserialize)]
    struct EventLine {
        event: serde_json::Map<String, Value>,
        #[serde(default)]
        time: Option<String>,
    }
    let Ok(line) = serde_json::from_str::<EventLine>(text) else { return };
    let now = line.time.and_then(|t| t.parse::<Timestamp>().ok()).unwrap_or_else(clock);
    let Ok(event) = crate::events::Event::from_map(line.event, now) else { return };
    if event.check(world).is_ok() {
        let _ = crate::live::apply(plan, &event);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::capacity::{Reservation, Usage};
    use crate::{ConversationKey, StoreError};

    /// A store that counts every call made to it, and answers nothing.
    #[derive(Default)]
    struct Watched {
        calls: AtomicUsize,
    }

    impl Watched {
        fn called(&self) -> Result<(), StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Err(StoreError::new(crate::capacity::StoreErrorKind::Unavailable, "the configured store"))
        }
    }

    impl CapacityStore for Watched {
        fn reserve(&self, _: &ReservationRequest<'_>) -> Result<Reservation, StoreError> {
            self.called().map(|()| Reservation::Reserved)
        }
        fn usage(&self, _: &ReservationRequest<'_>) -> Result<Usage, StoreError> {
            self.called().map(|()| Usage::default())
        }
        fn remember(&self, _: &ConversationKey<'_>, _: &str, _: Duration, _: Timestamp) -> Result<(), StoreError> {
            self.called()
        }
        fn recall(&self, _: &ConversationKey<'_>, _: Timestamp) -> Result<Option<String>, StoreError> {
            self.called().map(|()| None)
        }
        fn forget(&self, _: &ConversationKey<'_>) -> Result<bool, StoreError> {
            self.called().map(|()| false)
        }
    }

    const WORLD: &str = "locations:\n  - id: shop\n    instances:\n      - {id: im-1, channel: imessage, index: 1, phone: '1', connected: true, limits: {per_day: 3}}\n      - {id: im-2, channel: imessage, index: 2, phone: '2', connected: true}\n";

    const RULES: &str =
        "rules: [temporary_switch, {rule: conversation, ttl: 1h}, {rule: any_available, strategy: round_robin}]\n";

    fn replay_text(plan: &Plan, world: &World, log: &str, workers: usize) -> Summary {
        let options = Options { chunk: 1, workers, ..Options::default() };
        replay(plan, world, io::Cursor::new(log.to_owned()), &options, &|_| {}).unwrap()
    }

    #[test]
    fn history_is_kept_in_a_private_store_in_log_order_whatever_the_plan_has_attached() {
        let registry = crate::registry().unwrap();
        let compile = || switchboard_files::compile(RULES, "rules.yaml", registry.clone()).unwrap();
        let world = switchboard_files::read_world(WORLD, "world.yaml", &registry).unwrap();
        // The log: decided with a store, logged at `time` without `now`.
        let original = compile().with_store(Arc::new(MemoryStore::new()));
        let mut log = String::new();
        let mut decided = Vec::new();
        for (minute, contact, body) in [
            (0, "a", "hi"),
            (1, "b", "hi"),
            (2, "b", "hi {TEMP-IM#1}"),
            (3, "b", "hi"),
            (4, "a", "hi"),
            (5, "a", "hi"),
            (6, "a", "hi"),
        ] {
            let time = format!("2026-11-25T14:{minute:02}:00Z");
            let request = json!({"location": "shop", "channel": "imessage", "body": body, "contact": {"id": contact}});
            let mut dated = request.clone();
            dated["now"] = json!(time);
            let decision = crate::decide_text(&dated.to_string(), |r| original.select(&world, r));
            decided.push(Outcome::of(&decision).to_string());
            let decision: Value = serde_json::from_str(&decision.to_json()).unwrap();
            log.push_str(&format!("{}\n", json!({"time": time, "request": request, "decision": decision})));
        }
        assert_eq!(
            decided,
            [
                "any_available/im-1",
                "any_available/im-2",
                "temporary_switch/im-1",
                "conversation/im-2",
                "conversation/im-1",
                "any_available/im-2",
                "conversation/im-2"
            ]
        );
        // Replayed with a plan without a store, and with one whose store
        // fails every call; asking for parallel workers or not.
        let watched = Arc::new(Watched::default());
        for attach in [false, true] {
            for workers in [0, 4] {
                let plan = if attach { compile().with_store(watched.clone()) } else { compile() };
                let summary = replay_text(&plan, &world, &log, workers);
                assert_eq!(
                    summary.headline(),
                    "7 decisions, 7 unchanged, 0 changed (0.0%)",
                    "{:?}",
                    summary.transitions
                );
            }
        }
        assert_eq!(watched.calls.load(Ordering::SeqCst), 0, "the configured store is never called");
        // A chain without `temporary_switch`: its logged choice is still not
        // remembered (the registry's rule says so), so only the line it
        // decided changes; were it remembered, contact b's next line would
        // recall im-1 and change too.
        let without = "rules: [{rule: conversation, ttl: 1h}, {rule: any_available, strategy: round_robin}]\n";
        let plan = switchboard_files::compile(without, "rules.yaml", registry.clone()).unwrap();
        let summary = replay_text(&plan, &world, &log, 0);
        assert_eq!(summary.headline(), "7 decisions, 6 unchanged, 1 changed (14.3%)", "{:?}", summary.transitions);
    }

    #[test]
    fn outcomes_render_as_rule_and_instance_or_error() {
        let selected = Outcome::Selected { rule: Some("contact_tag".into()), instance: "wa-billing".into() };
        assert_eq!(selected.to_string(), "contact_tag/wa-billing");
        let error = Outcome::Error { code: 103, kind: "instance_disconnected".into() };
        assert_eq!(error.to_string(), "error 103 instance_disconnected");
    }
}
