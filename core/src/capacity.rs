//! The capacity boundary: limits, calendar windows and the store trait that
//! checks and counts them (docs/capacity.md). Pure: no I/O lives here.
//!
//! Selection asks a [`CapacityStore`] one atomic question per candidate —
//! [`CapacityStore::reserve`]: *does this instance, and its pool, still have
//! room in every current window? then count it* — and never does the
//! arithmetic itself. The stores (`switchboard-state`: a per-process memory
//! store and a Redis store shared by a fleet) implement the trait; the
//! evaluator cannot tell them apart.
//!
//! Time is an input: every call carries `now`, and windows are computed by
//! the pure [`Window::span`] in the location's IANA timezone, so tests and
//! replays set the clock instead of sleeping.
//!
//! ```
//! use switchboard_core::capacity::{timezone, Limits, Window, jiff::Timestamp};
//!
//! let tz = timezone("America/New_York").unwrap();
//! // 2026-11-01 is the fall-back day in New York: 25 hours long.
//! let now: Timestamp = "2026-11-01T12:00:00Z".parse().unwrap();
//! let day = Window::Day.span(now, &tz);
//! assert_eq!(day.end.as_second() - day.start.as_second(), 25 * 3600);
//! assert_eq!(day.key(), "d20261101");
//!
//! let limits = Limits { per_day: Some(1000), ..Limits::NONE };
//! assert_eq!(limits.get(Window::Day), Some(1000));
//! ```
//!
//! # Why the trait is synchronous
//!
//! The evaluator (`Plan::select`, in `switchboard-engine`) is synchronous
//! and is called from the CLI, from batch workers and from the service. A
//! reservation happens in the middle of rule evaluation (a rule's candidate
//! becomes a selection only if it can be reserved; a lost race moves on to
//! the next candidate), so an `async` trait would colour the whole evaluator
//! and every rule. The memory store answers in well under a microsecond;
//! the Redis store does one blocking round trip over a pooled connection
//! with connect and I/O timeouts, so an async caller (an axum handler) runs
//! the decision inside `tokio::task::spawn_blocking`, exactly as it would
//! any CPU-bound work.

use std::fmt;
use std::time::Duration;

pub use jiff;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

pub use crate::health::{DeliveryUpdate, HealthPolicy, HealthRecord, HealthState, Transition, WindowCounts};

/// The clock of a decision whose request carries no `now`: the coarse wall
/// clock (`CLOCK_REALTIME_COARSE`, a few milliseconds of resolution, read
/// from the vDSO in a few nanoseconds) where the platform has one, else
/// [`Timestamp::now`]. Windows are minutes or longer and TTLs seconds or
/// longer, so milliseconds of resolution change no decision, while the
/// precise clock alone cost about a fifth of a decision with limits.
#[inline]
pub fn clock() -> Timestamp {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        let nanos = i32::try_from(ts.tv_nsec).unwrap_or(0);
        if let Ok(now) = Timestamp::new(ts.tv_sec, nanos) {
            return now;
        }
    }
    Timestamp::now()
}

/// Looks up an IANA timezone name (`America/New_York`, `UTC`) in the tzdb
/// bundled with this build.
///
/// The bundled copy is used even where the host has `/usr/share/zoneinfo`,
/// so that every process of a fleet, on any host, computes the same calendar
/// windows and therefore the same store keys.
pub fn timezone(name: &str) -> Result<TimeZone, UnknownTimeZone> {
    TimeZone::get(name).map_err(|_| UnknownTimeZone { name: name.to_owned() })
}

/// A timezone name the bundled tzdb does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTimeZone {
    pub(crate) name: String,
}

impl UnknownTimeZone {
    /// The name that was looked up.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for UnknownTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown timezone `{}` (expected an IANA name such as `America/New_York` or `UTC`)", self.name)
    }
}

impl std::error::Error for UnknownTimeZone {}

/// The limits of one instance or one pool. Every limit is optional; `None`
/// means unlimited. As written in a world file (`limits:` of an instance or
/// a pool), every key is optional and a limit is a whole number from 1; the
/// world loader refuses 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Decisions per calendar minute.
    pub per_minute: Option<u32>,
    /// Decisions per calendar hour.
    pub per_hour: Option<u32>,
    /// Decisions per calendar day.
    pub per_day: Option<u32>,
    /// Distinct contacts per calendar day (a request without a contact
    /// counts as a new contact each time).
    pub contacts_per_day: Option<u32>,
}

impl Limits {
    /// No limit at all.
    pub const NONE: Limits = Limits { per_minute: None, per_hour: None, per_day: None, contacts_per_day: None };

    /// Whether every limit is absent.
    #[inline]
    pub fn is_unlimited(&self) -> bool {
        *self == Limits::NONE
    }

    /// The key names of a `limits:` map, in the order of
    /// [`Limits::first_reached`].
    pub const KEYS: [&'static str; 4] = ["per_minute", "per_hour", "per_day", "contacts_per_day"];

    /// The first limit written as 0 (a limit is a whole number from 1), by
    /// its key name.
    pub fn zero_key(&self) -> Option<&'static str> {
        let values = [self.per_minute, self.per_hour, self.per_day, self.contacts_per_day];
        Limits::KEYS.iter().zip(values).find(|(_, v)| *v == Some(0)).map(|(k, _)| *k)
    }

    /// The decision-count limit of one window.
    #[inline]
    pub fn get(&self, window: Window) -> Option<u32> {
        match window {
            Window::Minute => self.per_minute,
            Window::Hour => self.per_hour,
            Window::Day => self.per_day,
        }
    }

    /// The first limit that `counts` has reached, in the order per minute,
    /// per hour, per day, contacts per day — or `None` when one more
    /// decision fits. `contact_is_new` is false only for a contact already
    /// messaged in the current day, which passes a reached
    /// `contacts_per_day`.
    ///
    /// Every store uses this order, so an explanation names the same limit
    /// whichever store answered.
    #[inline]
    pub fn first_reached(&self, counts: &Counts, contact_is_new: bool) -> Option<(LimitKind, u64, u32)> {
        for window in Window::ALL {
            if let Some(limit) = self.get(window) {
                let count = counts.get(window);
                if count >= u64::from(limit) {
                    return Some((LimitKind::from(window), count, limit));
                }
            }
        }
        if let Some(limit) = self.contacts_per_day {
            if contact_is_new && counts.contacts >= u64::from(limit) {
                return Some((LimitKind::ContactsPerDay, counts.contacts, limit));
            }
        }
        None
    }
}

/// A calendar window of the location's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Window {
    /// The calendar minute.
    Minute,
    /// The calendar hour.
    Hour,
    /// The calendar day (23, 24 or 25 hours long across DST changes).
    Day,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 3] = [Window::Minute, Window::Hour, Window::Day];

    /// `minute`, `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
        }
    }

    /// The calendar window of this kind containing `now` in `tz`.
    ///
    /// Minutes and hours are the local clock's, truncated with the offset in
    /// force at `now`: across a fall-back change the repeated local hour is
    /// two distinct windows (their keys differ by offset), and across a
    /// spring-forward change the hour after the gap starts at the gap's end.
    /// A day runs from the local start of one date to the local start of
    /// the next, so it lasts 23, 24 or 25 hours. In a zone whose offset
    /// changes by less than an hour, the window around the change is cut
    /// short at the change. Windows partition time: the
    /// `end` of one window is the `start` of the next.
    pub fn span(self, now: Timestamp, tz: &TimeZone) -> WindowSpan {
        let offset = tz.to_offset(now);
        let mut second = now.as_second();
        if now.subsec_nanosecond() < 0 {
            second -= 1;
        }
        let (start, end) = match self {
            Window::Minute | Window::Hour => {
                let length: i64 = if self == Window::Minute { 60 } else { 3600 };
                let local = second.saturating_add(i64::from(offset.seconds()));
                let start = from_second(second.saturating_sub(local.rem_euclid(length)));
                let end = from_second(start.as_second().saturating_add(length));
                // An offset change inside the truncated window (a zone that
                // shifts by 30 minutes, such as Australia/Lord_Howe) cuts it
                // at the change, so windows never overlap.
                let start = if tz.to_offset(start) == offset {
                    start
                } else {
                    tz.preceding(from_second(second.saturating_add(1)))
                        .next()
                        .map_or(start, |t| t.timestamp().max(start))
                };
                let end = if tz.to_offset(from_second(end.as_second().saturating_sub(1))) == offset {
                    end
                } else {
                    tz.following(now).next().map_or(end, |t| t.timestamp().min(end))
                };
                (start, end)
            }
            Window::Day => {
                let date = offset.to_datetime(now).date();
                let start_of = |date: jiff::civil::Date| {
                    tz.to_ambiguous_timestamp(date.to_datetime(jiff::civil::Time::midnight())).compatible()
                };
                let start = start_of(date).unwrap_or(Timestamp::MIN);
                let end = date.tomorrow().and_then(start_of).unwrap_or(Timestamp::MAX);
                (start, end)
            }
        };
        let start_offset = tz.to_offset(start);
        WindowSpan { window: self, start, end, local_start: start_offset.to_datetime(start), offset: start_offset }
    }
}

fn from_second(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap_or(if second < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The window starts of one timezone, remembered around the last instant
/// asked, so that a stream of reservations does integer arithmetic instead
/// of timezone look-ups (which cost most of a memory-store reservation).
///
/// [`Calendar::starts`] always equals the starts of [`Window::span`]: it
/// keeps the current day and the interval in which the UTC offset is
/// constant, and falls back to `span` when an instant leaves them.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    /// The last answer and the seconds `[from, until)` it holds for: the
    /// intersection of its three windows, so any instant inside has the
    /// same starts (two comparisons for a stream of reservations).
    last: Option<LastStarts>,
    cached: Option<CachedDay>,
}

#[derive(Debug, Clone, Copy)]
struct LastStarts {
    from: i64,
    until: i64,
    starts: [i64; 3],
}

#[derive(Debug, Clone, Copy)]
struct CachedDay {
    day_start: i64,
    day_end: i64,
    offset: i64,
    /// The offset is `offset` on `[stable_from, stable_until)`.
    stable_from: i64,
    stable_until: i64,
}

impl Calendar {
    /// A calendar of `tz`, empty.
    pub fn new(tz: TimeZone) -> Calendar {
        Calendar { tz, last: None, cached: None }
    }

    /// The timezone.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether this is the calendar of `tz` (cheap when both have IANA
    /// names).
    #[inline]
    pub fn is_of(&self, tz: &TimeZone) -> bool {
        match (self.tz.iana_name(), tz.iana_name()) {
            // Clones of one zone share their name: no comparison of bytes.
            (Some(mine), Some(theirs)) => std::ptr::eq(mine, theirs) || mine == theirs,
            _ => self.tz == *tz,
        }
    }

    /// The start (Unix seconds) of the minute, hour and day windows
    /// containing `now`: `Window::ALL.map(|w| w.span(now, tz).start)`.
    #[inline]
    pub fn starts(&mut self, now: Timestamp) -> [i64; 3] {
        let mut second = now.as_second();
        if now.subsec_nanosecond() < 0 {
            second -= 1;
        }
        match self.last {
            Some(last) if last.from <= second && second < last.until => last.starts,
            _ => self.starts_anew(second, now),
        }
    }

    /// [`Calendar::starts`] outside the last answer's windows.
    #[cold]
    fn starts_anew(&mut self, second: i64, now: Timestamp) -> [i64; 3] {
        if let Some(c) = self.cached {
            if (c.day_start..c.day_end).contains(&second) && (c.stable_from..c.stable_until).contains(&second) {
                let local = second.saturating_add(c.offset);
                let hour = second - local.rem_euclid(3600);
                if hour >= c.stable_from {
                    // The offset holds on [stable_from, stable_until), which
                    // contains the whole local hour: the minute is the local
                    // clock's, inside the hour and the day.
                    let minute = second - local.rem_euclid(60);
                    let starts = [minute, hour, c.day_start];
                    let until = minute.saturating_add(60).min(c.stable_until).min(c.day_end);
                    self.last = Some(LastStarts { from: minute.max(c.day_start), until, starts });
                    return starts;
                }
            }
        }
        let spans = Window::ALL.map(|window| window.span(now, &self.tz));
        let stable_from = self
            .tz
            .preceding(from_second(second.saturating_add(1)))
            .next()
            .map_or(i64::MIN, |t| t.timestamp().as_second());
        let stable_until = self.tz.following(now).next().map_or(i64::MAX, |t| t.timestamp().as_second());
        self.cached = Some(CachedDay {
            day_start: spans[2].start.as_second(),
            day_end: spans[2].end.as_second(),
            offset: i64::from(self.tz.to_offset(now).seconds()),
            stable_from,
            stable_until,
        });
        let starts = spans.map(|span| span.start.as_second());
        // Windows partition time: every instant in all three windows has
        // these starts.
        let from = spans.iter().map(|span| span.start.as_second()).max().unwrap_or(i64::MAX);
        let until = spans.iter().map(|span| span.end.as_second()).min().unwrap_or(i64::MIN);
        self.last = (from <= second && second < until).then_some(LastStarts { from, until, starts });
        starts
    }
}

/// One calendar window: `[start, end)` and the local clock at its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpan {
    /// Which window.
    pub window: Window,
    /// The first instant of the window.
    pub start: Timestamp,
    /// The first instant after the window.
    pub end: Timestamp,
    /// The local date and time at `start`.
    pub local_start: jiff::civil::DateTime,
    /// The UTC offset in force at `start`.
    pub offset: Offset,
}

impl WindowSpan {
    /// A stable key naming this window within its timezone, readable in a
    /// store: `d20261101` (a day), `h20261101T01-0400` (an hour),
    /// `m20261101T0130-0500` (a minute). Minute and hour keys carry the
    /// offset, so the local hour repeated by a fall-back change is two
    /// keys. Keys never contain `:`.
    pub fn key(&self) -> String {
        let d = self.local_start;
        let date = format!("{:04}{:02}{:02}", d.year(), d.month(), d.day());
        let seconds = self.offset.seconds();
        let sign = if seconds < 0 { '-' } else { '+' };
        let abs = seconds.unsigned_abs();
        let mut offset = format!("{sign}{:02}{:02}", abs / 3600, abs % 3600 / 60);
        if !abs.is_multiple_of(60) {
            offset.push_str(&format!("{:02}", abs % 60));
        }
        match self.window {
            Window::Day => format!("d{date}"),
            Window::Hour => format!("h{date}T{:02}{offset}", d.hour()),
            Window::Minute => format!("m{date}T{:02}{:02}{offset}", d.hour(), d.minute()),
        }
    }

    /// Milliseconds from `now` to the end of the window (at least 1): what
    /// is left of the window's life as seen by a request dated `now`.
    pub fn remaining_ms(&self, now: Timestamp) -> u64 {
        let ms = self.end.as_millisecond().saturating_sub(now.as_millisecond());
        u64::try_from(ms).unwrap_or(0).max(1)
    }
}

/// Which limit a count is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// `per_minute`.
    PerMinute,
    /// `per_hour`.
    PerHour,
    /// `per_day`.
    PerDay,
    /// `contacts_per_day`.
    ContactsPerDay,
}

impl LimitKind {
    /// The limit's name in the world file.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::PerMinute => "per_minute",
            LimitKind::PerHour => "per_hour",
            LimitKind::PerDay => "per_day",
            LimitKind::ContactsPerDay => "contacts_per_day",
        }
    }

    /// The window the limit is counted in.
    pub fn window(self) -> Window {
        match self {
            LimitKind::PerMinute => Window::Minute,
            LimitKind::PerHour => Window::Hour,
            LimitKind::PerDay | LimitKind::ContactsPerDay => Window::Day,
        }
    }

    /// How an explanation words the window: `this minute`, `this hour`,
    /// `today`, `new contacts today`.
    pub fn describe(self) -> &'static str {
        match self {
            LimitKind::PerMinute => "this minute",
            LimitKind::PerHour => "this hour",
            LimitKind::PerDay => "today",
            LimitKind::ContactsPerDay => "new contacts today",
        }
    }
}

impl From<Window> for LimitKind {
    #[inline]
    fn from(window: Window) -> LimitKind {
        match window {
            Window::Minute => LimitKind::PerMinute,
            Window::Hour => LimitKind::PerHour,
            Window::Day => LimitKind::PerDay,
        }
    }
}

/// Whose limit: the instance's own, or its pool's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The instance's own limits.
    Instance,
    /// The limits of the pool the instance belongs to.
    Pool,
}

/// The counts of one instance or pool in the current windows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Decisions in the current minute.
    pub minute: u64,
    /// Decisions in the current hour.
    pub hour: u64,
    /// Decisions in the current day.
    pub day: u64,
    /// Distinct contacts (plus requests without a contact) in the current
    /// day. Tracked only while a `contacts_per_day` limit is set.
    pub contacts: u64,
}

impl Counts {
    /// The decision count of one window.
    #[inline]
    pub fn get(&self, window: Window) -> u64 {
        match window {
            Window::Minute => self.minute,
            Window::Hour => self.hour,
            Window::Day => self.day,
        }
    }
}

/// The conversation memory a successful reservation also writes (one round
/// trip for both): (location, `channel`, contact) → the reserved instance,
/// for `ttl`. Ignored when the request has no contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remember<'a> {
    /// The request's channel.
    pub channel: &'a str,
    /// How long the memory lasts from `now`.
    pub ttl: Duration,
}

/// A pool the instance belongs to, with the pool's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolRef<'a> {
    /// The pool's id (unique per location).
    pub id: &'a str,
    /// The pool's limits, shared by every instance of the pool.
    pub limits: Limits,
}

/// One check-and-count: may `instance` carry one more decision at `now`?
#[derive(Debug, Clone, Copy)]
pub struct ReservationRequest<'a> {
    /// The location (every key of a location shares one shard).
    pub location: &'a str,
    /// The location's timezone: windows are its calendar windows.
    pub timezone: &'a TimeZone,
    /// The instance's id.
    pub instance: &'a str,
    /// The instance's own limits.
    pub limits: Limits,
    /// The instance's pool, if any.
    pub pool: Option<PoolRef<'a>>,
    /// The contact's id; `None` counts as a new contact each time.
    pub contact: Option<&'a str>,
    /// The instant the decision is made at (a request's `now`, or the clock).
    pub now: Timestamp,
    /// Conversation memory to write on success, if any.
    pub remember: Option<Remember<'a>>,
}

impl<'a> ReservationRequest<'a> {
    /// A request for `instance` of `location` with no limits, no pool, no
    /// contact and no memory; fill the rest with struct update syntax.
    #[inline]
    pub fn new(location: &'a str, timezone: &'a TimeZone, instance: &'a str, now: Timestamp) -> Self {
        ReservationRequest {
            location,
            timezone,
            instance,
            limits: Limits::NONE,
            pool: None,
            contact: None,
            now,
            remember: None,
        }
    }

    /// The minute, hour and day windows containing `now`.
    pub fn windows(&self) -> [WindowSpan; 3] {
        Window::ALL.map(|window| window.span(self.now, self.timezone))
    }
}

/// Why a reservation was refused: which limit, whose, and the count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtCapacity {
    /// The instance's limit or its pool's.
    pub scope: Scope,
    /// Which limit was reached.
    pub kind: LimitKind,
    /// The count in the current window.
    pub count: u64,
    /// The limit.
    pub limit: u32,
}

impl AtCapacity {
    /// The sentence an explanation shows, e.g. `wa-1 at capacity: 1000/1000
    /// today` or `wa-1 at capacity: pool brand-a 2000/2000 today`.
    pub fn message(&self, instance: &str, pool: Option<&str>) -> String {
        match (self.scope, pool) {
            (Scope::Pool, Some(pool)) => format!("{instance} at capacity: pool {pool} {self}"),
            (Scope::Pool, None) => format!("{instance} at capacity: pool {self}"),
            (Scope::Instance, _) => format!("{instance} at capacity: {self}"),
        }
    }
}

impl fmt::Display for AtCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} {}", self.count, self.limit, self.kind.describe())
    }
}

/// The answer to [`CapacityStore::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Every window had room; the decision is now counted in all of them.
    Reserved,
    /// A limit is reached; nothing was counted.
    AtCapacity(AtCapacity),
}

impl Reservation {
    /// Whether the reservation succeeded.
    pub fn is_reserved(&self) -> bool {
        matches!(self, Reservation::Reserved)
    }
}

/// The current counts of an instance and its pool, read without counting
/// (explain, `--dry-run`, `least_used`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// The instance's counts.
    pub instance: Counts,
    /// The pool's counts, when the request names a pool.
    pub pool: Option<Counts>,
    /// Whether the request's contact was already messaged today by this
    /// instance (only known while `contacts_per_day` is set).
    pub contact_seen: bool,
    /// Whether the request's contact was already messaged today by the
    /// pool (only known while the pool's `contacts_per_day` is set).
    pub pool_contact_seen: bool,
}

impl Usage {
    /// The usage from the instance's `(counts, contact seen)` and, when the
    /// request names a pool, the pool's.
    pub fn from_parts(instance: (Counts, bool), pool: Option<(Counts, bool)>) -> Usage {
        Usage {
            instance: instance.0,
            pool: pool.map(|(counts, _)| counts),
            contact_seen: instance.1,
            pool_contact_seen: pool.is_some_and(|(_, seen)| seen),
        }
    }

    /// What [`CapacityStore::reserve`] would answer now for `request`
    /// (without counting): the first reached limit of the instance, then of
    /// its pool.
    pub fn verdict(&self, request: &ReservationRequest<'_>) -> Reservation {
        let refused = |scope, (kind, count, limit)| Reservation::AtCapacity(AtCapacity { scope, kind, count, limit });
        if let Some(reached) = request.limits.first_reached(&self.instance, !self.contact_seen) {
            return refused(Scope::Instance, reached);
        }
        if let (Some(pool), Some(counts)) = (request.pool, self.pool) {
            if let Some(reached) = pool.limits.first_reached(&counts, !self.pool_contact_seen) {
                return refused(Scope::Pool, reached);
            }
        }
        Reservation::Reserved
    }
}

/// The (location, channel, contact) a conversation memory is kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConversationKey<'a> {
    /// The location.
    pub location: &'a str,
    /// The channel.
    pub channel: &'a str,
    /// The contact's id.
    pub contact: &'a str,
}

/// What went wrong with a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreErrorKind {
    /// The store cannot be reached (connection refused or dropped).
    Unavailable,
    /// The store did not answer in time.
    Timeout,
    /// The store answered something unexpected.
    Protocol,
    /// The store's configuration is invalid (a malformed URL).
    Config,
}

/// A capacity store failed; the selection answers code 108
/// `store_unavailable` (`fail_closed`) or decides without limits
/// (`fail_open`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError {
    pub(crate) kind: StoreErrorKind,
    pub(crate) message: String,
}

impl StoreError {
    /// A store error of `kind` with a message a person can act on.
    pub fn new(kind: StoreErrorKind, message: impl Into<String>) -> StoreError {
        StoreError { kind, message: message.into() }
    }

    /// What went wrong.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Timeout => "timed out",
            StoreErrorKind::Protocol => "answered unexpectedly",
            StoreErrorKind::Config => "misconfigured",
        };
        write!(f, "capacity store {what}: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

/// A `connected` override of one instance, as an `instance_status` event
/// set it (docs/live-state.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusOverride {
    /// The instance's `connected` while the override is in force.
    pub connected: bool,
    /// The event's `reason`, if it gave one.
    pub reason: Option<String>,
    /// The event's `time`.
    pub time: Timestamp,
    /// When the override lapses (`time + ttl`); `None` without a `ttl`.
    pub until: Option<Timestamp>,
}

impl StatusOverride {
    /// Whether the override is in force at `now` (it has not lapsed).
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// One `instance_status` event to apply: `set` is the override, or `None`
/// to clear it, as of `time`.
#[derive(Debug, Clone, Copy)]
pub struct StatusUpdate<'a> {
    /// The location id.
    pub location: &'a str,
    /// The instance id.
    pub instance: &'a str,
    /// The event's time: an update older than the last one applied to the
    /// instance (a clear included) is stale and changes nothing.
    pub time: Timestamp,
    /// The new override (`connected`, `reason`, `until`), or `None` to clear.
    pub set: Option<(bool, Option<&'a str>, Option<Timestamp>)>,
}

/// The health of a location's instances, by instance id, with each one's
/// deliveries in a window ([`CapacityStore::health`]).
pub type HealthList = Vec<(String, HealthRecord, WindowCounts)>;

/// How long a store keeps a contact's last inbound message
/// ([`CapacityStore::last_inbound`]): longer than any reply window.
pub const INBOUND_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// The live state of one location's instances (docs/live-state.md): what the send
/// path said since the world file was read. Keyed by instance id, so it
/// outlives reloads of the world (an instance keeps its state while its id
/// stays).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveState {
    /// The `connected` overrides, by instance id, lapsed ones included (the
    /// reader checks [`StatusOverride::in_force`] at its own `now`).
    pub overrides: Vec<(String, StatusOverride)>,
    /// The health of the instances quarantined or on probation, by
    /// instance id (the reader asks [`HealthRecord::state`] at its own
    /// `now`); healthy instances are not listed.
    pub health: Vec<(String, HealthRecord)>,
}

impl LiveState {
    /// The override of `instance` in force at `now`, if any.
    pub fn override_of(&self, instance: &str, now: Timestamp) -> Option<&StatusOverride> {
        self.overrides.iter().find(|(id, o)| id == instance && o.in_force(now)).map(|(_, o)| o)
    }

    /// When the quarantine of `instance` in force at `now` ends, if one is.
    pub fn quarantined_until(&self, instance: &str, now: Timestamp) -> Option<Timestamp> {
        self.health.iter().find(|(id, _)| id == instance).and_then(|(_, h)| h.quarantined_until(now))
    }

    /// Whether nothing here can change a decision.
    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty() && self.health.is_empty()
    }
}

/// Where capacity counts and conversation memory live.
///
/// One atomic verb, [`reserve`](CapacityStore::reserve): it checks every
/// window of the instance and of its pool, and only if all have room counts
/// the decision in all of them — a refused reservation changes nothing, and
/// no interleaving of threads or processes ever exceeds a limit. The other
/// methods read ([`usage`](CapacityStore::usage),
/// [`recall`](CapacityStore::recall)) or keep conversation memory.
///
/// Every method is synchronous (see the module docs for why) and takes
/// `now` as an input where time matters.
pub trait CapacityStore: Send + Sync {
    /// Checks every current window of the instance and its pool (and the
    /// contact for `contacts_per_day`), then counts them all — or, if any
    /// limit is reached, counts nothing and says which. On success also
    /// writes `request.remember`, if any (and the request has a contact).
    fn reserve(&self, request: &ReservationRequest<'_>) -> Result<Reservation, StoreError>;

    /// The current counts of the instance and its pool, without counting.
    /// [`Usage::verdict`] tells what `reserve` would answer.
    fn usage(&self, request: &ReservationRequest<'_>) -> Result<Usage, StoreError>;

    /// Remembers that `instance` carried the last message to the contact
    /// on this channel, until `now + ttl`.
    fn remember(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// The instance remembered for the contact on this channel, unless the
    /// memory expired by `now`.
    fn recall(&self, key: &ConversationKey<'_>, now: Timestamp) -> Result<Option<String>, StoreError>;

    /// Erases the memory of the contact on this channel; whether there was
    /// one.
    fn forget(&self, key: &ConversationKey<'_>) -> Result<bool, StoreError>;

    /// Whether the store answers (for a health check). The default answers
    /// `Ok`.
    fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether a call may wait on I/O (a network round trip, within the
    /// store's timeouts). A host asks this, not which store it holds, to
    /// decide where decisions that reach the store run: an async service
    /// keeps them off its event-loop workers when it answers `true`. The
    /// default answers `false`, for a store in memory, whose calls take well
    /// under a microsecond.
    fn may_block(&self) -> bool {
        false
    }

    /// Whether what the store counts, remembers and records outlives this
    /// process (a store shared by a fleet). A one-shot command (`select`,
    /// `record`) asks this, not which store it holds, to say on stderr that
    /// its counts end with it. The default answers `false`, for a store in
    /// the process's memory.
    fn outlives_process(&self) -> bool {
        false
    }

    // Live state (docs/live-state.md). Events change what the world file says about
    // an instance until the next event does; they live in the store so that
    // every process sharing it sees them, and so that they outlive reloads.
    // Reading is split in two because every decision asks: a cheap,
    // infallible, lock-free-in-the-common-case question first
    // (`has_live_state`: a store that never received an event answers
    // `false` from one atomic load, so a decision costs what it did without
    // live state), and the full read (`live_state`) only for a location
    // that has some. The defaults are those of a store that keeps no live
    // state: nothing to read, and a write is refused (the events are
    // rejected, never silently lost).

    /// Whether `location` may have live state: `false` only when it surely
    /// has none (a `true` may turn out to hold lapsed overrides only).
    fn has_live_state(&self, location: &str) -> bool {
        let _ = location;
        false
    }

    /// The live state of `location` (empty when it has none).
    fn live_state(&self, location: &str) -> Result<LiveState, StoreError> {
        let _ = location;
        Ok(LiveState::default())
    }

    /// Applies one `inbound` event: the contact wrote to `instance` on
    /// the key's channel at `time`. Keeps it as the contact's last inbound
    /// there (unless a later one is kept), and makes `instance` the
    /// contact's conversation memory for `ttl` from `time`, unless the
    /// memory is more recent: a memory's time is read as its expiry minus
    /// `ttl` (the chain's conversation `ttl` writes both). Whether the
    /// memory changed.
    fn record_inbound(
        &self,
        key: &ConversationKey<'_>,
        instance: &str,
        time: Timestamp,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let _ = (key, instance, time, ttl);
        Err(StoreError::new(StoreErrorKind::Config, "this capacity store keeps no live state (events)"))
    }

    /// The contact's last inbound message on the key's channel at the
    /// key's location: the instance it wrote to and when (docs/live-state.md, kept
    /// [`INBOUND_KEPT`]); what reply windows and `send_window`'s
    /// `exempt_replies` read (docs/recipient-rules.md).
    fn last_inbound(&self, key: &ConversationKey<'_>) -> Result<Option<(String, Timestamp)>, StoreError> {
        let _ = key;
        Ok(None)
    }

    /// The locations that have live state (for status counts; not on the
    /// decision path).
    fn live_locations(&self) -> Result<Vec<String>, StoreError> {
        Ok(Vec::new())
    }

    /// Applies one `instance_status` event; `Ok(false)` when it is stale
    /// (older than the last one applied to that instance) and changed
    /// nothing.
    fn apply_status(&self, update: &StatusUpdate<'_>) -> Result<bool, StoreError> {
        let _ = update;
        Err(StoreError::new(StoreErrorKind::Config, "this capacity store keeps no live state (events)"))
    }

    /// Applies one `delivery` event under the `health:` policy: counts it
    /// in the instance's window and moves its health by
    /// [`HealthRecord::deliver`], atomically (two processes applying
    /// deliveries of one instance at once both count). A store lists the
    /// record in [`LiveState::health`] while the instance is quarantined or
    /// on probation, and makes [`has_live_state`](CapacityStore::has_live_state)
    /// answer `true` for its location from the moment a quarantine starts.
    fn record_delivery(&self, update: &DeliveryUpdate<'_>, policy: &HealthPolicy) -> Result<Transition, StoreError> {
        let _ = (update, policy);
        Err(StoreError::new(StoreErrorKind::Config, "this capacity store keeps no live state (events)"))
    }

    /// The health of every instance of `location` that had a delivery
    /// event, with its deliveries in the `window` ending at `now` (for
    /// `/v1/instances` and explain; not on the decision path).
    fn health(&self, location: &str, window: Duration, now: Timestamp) -> Result<HealthList, StoreError> {
        let _ = (location, window, now);
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn tz(name: &str) -> TimeZone {
        timezone(name).unwrap()
    }

    fn hours(span: &WindowSpan) -> i64 {
        (span.end.as_second() - span.start.as_second()) / 3600
    }

    #[test]
    fn new_york_spring_forward_day_has_23_hours() {
        let span = Window::Day.span(ts("2026-03-08T15:00:00Z"), &tz("America/New_York"));
        assert_eq!(hours(&span), 23);
        assert_eq!(span.start, ts("2026-03-08T05:00:00Z"));
        assert_eq!(span.end, ts("2026-03-09T04:00:00Z"));
        assert_eq!(span.key(), "d20260308");
    }

    #[test]
    fn new_york_fall_back_day_has_25_hours() {
        let span = Window::Day.span(ts("2026-11-01T23:00:00Z"), &tz("America/New_York"));
        assert_eq!(hours(&span), 25);
        assert_eq!(span.start, ts("2026-11-01T04:00:00Z"));
        assert_eq!(span.end, ts("2026-11-02T05:00:00Z"));
    }

    #[test]
    fn new_york_day_is_local_not_utc() {
        // 02:00 UTC on the 25th is still the 24th in New York.
        let span = Window::Day.span(ts("2026-11-25T02:00:00Z"), &tz("America/New_York"));
        assert_eq!(span.key(), "d20261124");
        assert_eq!(hours(&span), 24);
    }

    #[test]
    fn london_days_across_both_changes() {
        let london = tz("Europe/London");
        assert_eq!(hours(&Window::Day.span(ts("2026-03-29T12:00:00Z"), &london)), 23);
        assert_eq!(hours(&Window::Day.span(ts("2026-10-25T12:00:00Z"), &london)), 25);
        let summer = Window::Day.span(ts("2026-07-01T23:30:00Z"), &london);
        assert_eq!(summer.key(), "d20260702", "00:30 BST is already the next day");
        assert_eq!(summer.start, ts("2026-07-01T23:00:00Z"));
    }

    #[test]
    fn utc_windows() {
        let utc = tz("UTC");
        let now = ts("2026-11-25T14:20:46.5Z");
        let minute = Window::Minute.span(now, &utc);
        assert_eq!((minute.start, minute.end), (ts("2026-11-25T14:20:00Z"), ts("2026-11-25T14:21:00Z")));
        assert_eq!(minute.key(), "m20261125T1420+0000");
        let hour = Window::Hour.span(now, &utc);
        assert_eq!((hour.start, hour.end), (ts("2026-11-25T14:00:00Z"), ts("2026-11-25T15:00:00Z")));
        assert_eq!(hour.key(), "h20261125T14+0000");
        let day = Window::Day.span(now, &utc);
        assert_eq!((day.start, day.end), (ts("2026-11-25T00:00:00Z"), ts("2026-11-26T00:00:00Z")));
    }

    #[test]
    fn the_repeated_fall_back_hour_is_two_windows() {
        let ny = tz("America/New_York");
        // 01:30 EDT, then 01:30 EST an hour later.
        let first = Window::Hour.span(ts("2026-11-01T05:30:00Z"), &ny);
        let second = Window::Hour.span(ts("2026-11-01T06:30:00Z"), &ny);
        assert_eq!((first.start, first.end), (ts("2026-11-01T05:00:00Z"), ts("2026-11-01T06:00:00Z")));
        assert_eq!((second.start, second.end), (ts("2026-11-01T06:00:00Z"), ts("2026-11-01T07:00:00Z")));
        assert_eq!(first.key(), "h20261101T01-0400");
        assert_eq!(second.key(), "h20261101T01-0500");
        let minute = Window::Minute.span(ts("2026-11-01T06:30:10Z"), &ny);
        assert_eq!(minute.key(), "m20261101T0130-0500");
    }

    #[test]
    fn the_hour_after_spring_forward_starts_at_three() {
        let ny = tz("America/New_York");
        let before = Window::Hour.span(ts("2026-03-08T06:59:59Z"), &ny);
        assert_eq!(before.key(), "h20260308T01-0500");
        assert_eq!(before.end, ts("2026-03-08T07:00:00Z"));
        let after = Window::Hour.span(ts("2026-03-08T07:00:00Z"), &ny);
        assert_eq!(after.key(), "h20260308T03-0400");
        assert_eq!(after.start, before.end);
    }

    #[test]
    fn half_hour_offsets_align_hours_locally() {
        let kolkata = tz("Asia/Kolkata");
        let hour = Window::Hour.span(ts("2026-11-25T14:20:00Z"), &kolkata);
        assert_eq!(hour.start, ts("2026-11-25T13:30:00Z"));
        assert_eq!(hour.key(), "h20261125T19+0530");
    }

    #[test]
    fn windows_partition_time_across_dst_weeks() {
        for name in ["America/New_York", "Europe/London", "UTC", "Australia/Lord_Howe", "Asia/Kolkata"] {
            let zone = tz(name);
            for start in ["2026-03-05T00:00:00Z", "2026-10-22T00:00:00Z", "2026-03-31T00:00:00Z"] {
                let mut t = ts(start);
                let stop = t.as_second() + 10 * 86_400;
                while t.as_second() < stop {
                    for window in Window::ALL {
                        let span = window.span(t, &zone);
                        assert!(span.start <= t && t < span.end, "{name} {window} {t}");
                        let next = window.span(span.end, &zone);
                        assert_eq!(next.start, span.end, "{name} {window} {t}");
                        assert_ne!(next.key(), span.key(), "{name} {window} {t}");
                        assert!(!span.key().contains(':'));
                    }
                    t = Timestamp::from_second(t.as_second() + 7 * 60 + 13).unwrap();
                }
            }
        }
    }

    #[test]
    fn calendar_starts_equal_window_spans_across_dst_weeks() {
        for name in ["America/New_York", "Europe/London", "UTC", "Australia/Lord_Howe", "Asia/Kolkata"] {
            let zone = tz(name);
            let mut calendar = Calendar::new(zone.clone());
            assert!(calendar.is_of(&zone) && !calendar.is_of(&tz("Europe/Paris")));
            for start in ["2026-03-05T00:00:00Z", "2026-10-22T00:00:00Z", "2026-03-31T00:00:00Z"] {
                let mut t = ts(start);
                let stop = t.as_second() + 10 * 86_400;
                while t.as_second() < stop {
                    let expected = Window::ALL.map(|window| window.span(t, &zone).start.as_second());
                    assert_eq!(calendar.starts(t), expected, "{name} {t}");
                    t = Timestamp::from_second(t.as_second() + 3 * 60 + 17).unwrap();
                }
                // And back in time: the cache is left, not trusted.
                let back = ts(start);
                assert_eq!(calendar.starts(back), Window::ALL.map(|w| w.span(back, &zone).start.as_second()));
            }
        }
    }

    #[test]
    fn calendar_starts_equal_window_spans_around_every_change() {
        let changes = [
            ("America/New_York", ["2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z"]),
            ("Europe/London", ["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"]),
            ("Australia/Lord_Howe", ["2026-04-04T15:00:00Z", "2026-10-03T15:30:00Z"]),
            ("Asia/Kolkata", ["2026-11-25T18:30:00Z", "2026-11-26T18:29:00Z"]),
        ];
        for (name, instants) in changes {
            let zone = tz(name);
            let mut calendar = Calendar::new(zone.clone());
            for at in instants {
                let around = ts(at).as_second();
                // Every 7 seconds for three hours either side, and back.
                for second in (around - 3 * 3600..around + 3 * 3600).step_by(7).chain([around - 1, around, around - 61])
                {
                    let t = Timestamp::from_second(second).unwrap();
                    let expected = Window::ALL.map(|window| window.span(t, &zone).start.as_second());
                    assert_eq!(calendar.starts(t), expected, "{name} {t}");
                }
            }
        }
    }

    #[test]
    fn the_clock_is_the_wall_clock_to_the_millisecond() {
        let before = Timestamp::now();
        let coarse = clock();
        let after = Timestamp::now();
        // The coarse clock lags by at most its resolution (a jiffy).
        assert!(coarse.as_millisecond() >= before.as_millisecond() - 100, "{before} {coarse}");
        assert!(coarse <= after, "{coarse} {after}");
    }

    #[test]
    fn unknown_timezones_are_refused() {
        let error = timezone("Mars/Olympus_Mons").unwrap_err();
        assert_eq!(error.name(), "Mars/Olympus_Mons");
        assert!(error.to_string().contains("IANA"));
    }

    #[test]
    fn first_reached_checks_windows_then_contacts() {
        let limits = Limits { per_minute: Some(2), per_day: Some(5), contacts_per_day: Some(1), ..Limits::NONE };
        let counts = Counts { minute: 1, hour: 1, day: 4, contacts: 1 };
        assert_eq!(limits.first_reached(&counts, false), None, "a known contact passes");
        assert_eq!(limits.first_reached(&counts, true), Some((LimitKind::ContactsPerDay, 1, 1)));
        let counts = Counts { minute: 2, hour: 2, day: 5, contacts: 1 };
        assert_eq!(limits.first_reached(&counts, false), Some((LimitKind::PerMinute, 2, 2)));
        assert_eq!(Limits::NONE.first_reached(&counts, true), None);
    }

    #[test]
    fn at_capacity_explains_itself() {
        let full = AtCapacity { scope: Scope::Instance, kind: LimitKind::PerDay, count: 1000, limit: 1000 };
        assert_eq!(full.message("wa-1", None), "wa-1 at capacity: 1000/1000 today");
        let pool = AtCapacity { scope: Scope::Pool, kind: LimitKind::PerMinute, count: 20, limit: 20 };
        assert_eq!(pool.message("wa-1", Some("brand-a")), "wa-1 at capacity: pool brand-a 20/20 this minute");
    }

    #[test]
    fn usage_verdict_names_the_instance_before_the_pool() {
        let utc = tz("UTC");
        let request = ReservationRequest {
            limits: Limits { per_day: Some(3), ..Limits::NONE },
            pool: Some(PoolRef { id: "p", limits: Limits { per_day: Some(3), ..Limits::NONE } }),
            ..ReservationRequest::new("l", &utc, "i", ts("2026-11-25T00:00:00Z"))
        };
        let full = Counts { day: 3, ..Counts::default() };
        let usage = Usage { instance: full, pool: Some(full), ..Usage::default() };
        assert!(matches!(usage.verdict(&request), Reservation::AtCapacity(AtCapacity { scope: Scope::Instance, .. })));
        let usage = Usage { instance: Counts::default(), pool: Some(full), ..Usage::default() };
        assert!(matches!(usage.verdict(&request), Reservation::AtCapacity(AtCapacity { scope: Scope::Pool, .. })));
        assert_eq!(Usage::default().verdict(&request), Reservation::Reserved);
    }
}
