//! `send_window` (code 109, docs/recipient-rules.md; not in the default order): quiet
//! hours in the recipient's local time.
//!
//! ```yaml
//! rules:
//!   - rule: send_window
//!     start: "08:00"            # local time, inclusive (default 08:00)
//!     end: "21:00"              # exclusive (default 21:00)
//!     days: [mon, tue, wed, thu, fri, sat, sun]   # default every day
//!     on_unknown_timezone: allow                  # allow | deny
//!     exempt_replies: 24h       # 0 turns the exemption off
//!   - any_available
//! ```
//!
//! `preset: us_federal` names the US federal calling window (08:00–21:00
//! every day, the defaults); `start`, `end` and `days` given with it must
//! agree with it.
//!
//! The recipient's timezone is the contact's `timezone`, else the
//! location's when the world file names one, else unknown. Inside the
//! window the rule answers `no_match` (the chain goes on); outside it fails
//! with `outside_send_window` and `retry_at`, the next opening of the
//! window ([`Window::next_opening`]), which follows the timezone's rules:
//! a window opening at 08:00 opens at 08:00 local on the days clocks
//! change, too.

use std::time::Duration;

use switchboard_core::capacity::jiff::civil::{Date, DateTime, Time, Weekday};
use switchboard_core::capacity::jiff::tz::{AmbiguousOffset, TimeZone};
use switchboard_core::capacity::jiff::{Timestamp, ToSpan};
use switchboard_core::recipient::{human_duration, parse_duration};
use switchboard_core::{
    register_rule, ErrorKind, Inbound, OptionKind, OptionSpec, Outcome, RuleContext, RuleOptions, SelectionRule,
};

/// The rule id.
pub const ID: &str = "send_window";
/// Its error code.
pub const CODE: u32 = 109;

/// The days of the week as rules.yaml writes them, Monday first.
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The days of the week as messages write them.
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Windows with a name (`preset:`).
const PRESETS: &[&str] = &["none", "us_federal"];

/// A daily window of local time on some days of the week: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Seconds after local midnight, inclusive.
    start: u32,
    /// Seconds after local midnight, exclusive; at most 24 h.
    end: u32,
    /// Bit `n` set: open on the weekday `n` days after Monday.
    days: u8,
}

const ALL_DAYS: u8 = 0b111_1111;

impl Window {
    /// The US federal calling window (47 CFR § 64.1200(c)(1)): 08:00 to
    /// 21:00 at the called party's location, every day.
    pub const US_FEDERAL: Window = Window { start: 8 * 3600, end: 21 * 3600, days: ALL_DAYS };

    /// A window from `start` to `end` (`HH:MM`; `end` may be `24:00`) on
    /// `days` (`mon` … `sun`).
    pub fn parse(start: &str, end: &str, days: &[String]) -> Result<Window, String> {
        let start = clock("start", start, false)?;
        let end = clock("end", end, true)?;
        if start >= end {
            return Err(format!(
                "`start` ({}) must be before `end` ({}); a window does not run past midnight",
                hhmm(start),
                hhmm(end)
            ));
        }
        let mut mask = 0u8;
        for day in days {
            let name = day.trim().to_ascii_lowercase();
            let Some(n) = DAY_NAMES.iter().position(|d| *d == name) else {
                return Err(format!("`days`: unknown day `{day}`; days are {}", DAY_NAMES.join(", ")));
            };
            mask |= 1 << n;
        }
        if mask == 0 {
            return Err("`days` is empty: the window would never open; list at least one day".into());
        }
        Ok(Window { start, end, days: mask })
    }

    fn open_on(&self, day: Weekday) -> bool {
        self.days & (1 << day.to_monday_zero_offset()) != 0
    }

    /// Whether the local date and time `dt` is inside the window.
    #[inline]
    fn holds(&self, dt: DateTime) -> bool {
        self.holds_at(Clock::of(dt))
    }

    /// Whether the local time of day and day of the week `clock` is inside
    /// the window.
    #[inline]
    fn holds_at(&self, clock: Clock) -> bool {
        self.start <= clock.second && clock.second < self.end && self.days & (1 << clock.weekday) != 0
    }

    /// Whether the instant `t` is inside the window in `tz`.
    #[inline]
    pub fn contains(&self, t: Timestamp, tz: &TimeZone) -> bool {
        self.holds(tz.to_datetime(t))
    }

    /// The first instant after `now` at which the window opens in `tz`:
    /// the earliest `t > now` inside the window such that the instant just
    /// before `t` is not. `None` only when it opens on none of the next
    /// eight days (a timezone that skips the whole window).
    ///
    /// The local clock passes `start` once a day, except on the days the
    /// clocks change: `start` may fall in the hour skipped in spring (the
    /// window then opens at the change), or in the hour repeated in autumn
    /// (it then opens twice). A change may also put the clock back inside
    /// the window. So the candidates are each day's passing of `start`, in
    /// every form it takes, and every change of offset; the earliest inside
    /// the window is the answer.
    pub fn next_opening(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        const HORIZON_DAYS: i64 = 8;
        let mut best: Option<Timestamp> = None;
        let mut offer = |t: Timestamp| {
            if t > now && self.contains(t, tz) && best.is_none_or(|b| t < b) {
                best = Some(t);
            }
        };
        let today = tz.to_datetime(now).date();
        let start = Time::new((self.start / 3600) as i8, (self.start / 60 % 60) as i8, (self.start % 60) as i8, 0)
            .unwrap_or(Time::midnight());
        for k in 0..=HORIZON_DAYS {
            let Ok(date) = today.checked_add(k.days()) else { break };
            if !self.open_on(date.weekday()) {
                continue;
            }
            let dt = Date::to_datetime(date, start);
            match tz.to_ambiguous_timestamp(dt).offset() {
                AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).into_iter().for_each(&mut offer),
                AmbiguousOffset::Gap { after, .. } => {
                    // `start` is skipped: the window opens at the change.
                    if let Ok(before_change) = after.to_timestamp(dt) {
                        if let Some(change) = tz.following(before_change).next() {
                            offer(change.timestamp());
                        }
                    }
                }
                AmbiguousOffset::Fold { before, after } => {
                    before.to_timestamp(dt).into_iter().for_each(&mut offer);
                    after.to_timestamp(dt).into_iter().for_each(&mut offer);
                }
            }
        }
        let Ok(horizon) = now.checked_add((HORIZON_DAYS + 1).days()) else { return best };
        for change in tz.following(now) {
            let t = change.timestamp();
            if t > horizon {
                break;
            }
            offer(t);
        }
        best
    }

    /// `08:00–21:00, every day` / `09:00–17:30, mon–fri`.
    pub fn describe(&self) -> String {
        let days = match self.days {
            ALL_DAYS => "every day".to_owned(),
            0b001_1111 => "mon–fri".to_owned(),
            mask => DAY_NAMES
                .iter()
                .enumerate()
                .filter(|(n, _)| mask & (1 << n) != 0)
                .map(|(_, d)| *d)
                .collect::<Vec<_>>()
                .join(", "),
        };
        format!("{}–{}, {days}", hhmm(self.start), hhmm(self.end))
    }
}

/// A local time of day and day of the week: what a window is decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clock {
    /// Seconds after local midnight.
    second: u32,
    /// Days after Monday, 0–6.
    weekday: u8,
}

impl Clock {
    /// The clock of a local date and time.
    fn of(dt: DateTime) -> Clock {
        Clock { second: seconds_of_day(dt.time()), weekday: dt.weekday().to_monday_zero_offset().unsigned_abs() % 7 }
    }

    /// The clock at the instant `t` under a UTC offset of `offset` seconds:
    /// integer arithmetic on the seconds since 1970-01-01T00:00Z, a Thursday.
    fn at(t: Timestamp, offset: i32) -> Clock {
        // Whole seconds, rounded down (`as_second` rounds toward zero).
        let second = t.as_second() - i64::from(t.subsec_nanosecond() < 0) + i64::from(offset);
        let day = second.div_euclid(86_400);
        Clock { second: second.rem_euclid(86_400) as u32, weekday: (day + 3).rem_euclid(7) as u8 }
    }

    fn hour(self) -> u32 {
        self.second / 3600
    }

    fn minute(self) -> u32 {
        self.second / 60 % 60
    }

    /// `Mon` … `Sun`.
    fn day(self) -> &'static str {
        WEEKDAYS[usize::from(self.weekday) % 7]
    }
}

fn seconds_of_day(t: Time) -> u32 {
    u32::from(t.hour().unsigned_abs()) * 3600
        + u32::from(t.minute().unsigned_abs()) * 60
        + u32::from(t.second().unsigned_abs())
}

/// `HH:MM` as seconds after midnight; `24:00` only where `end_ok`.
fn clock(field: &str, text: &str, end_ok: bool) -> Result<u32, String> {
    let problem = || format!("`{field}` must be a local time `HH:MM` such as \"08:00\"; got `{text}`");
    let (h, m) = text.trim().split_once(':').ok_or_else(problem)?;
    let two =
        |s: &str| (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten();
    let (Some(h), Some(m)) = (two(h), two(m)) else { return Err(problem()) };
    match (h, m) {
        (24, 0) if end_ok => Ok(86_400),
        (0..=23, 0..=59) => Ok(h * 3600 + m * 60),
        _ => Err(problem()),
    }
}

fn hhmm(seconds: u32) -> String {
    format!("{:02}:{:02}", seconds / 3600, seconds / 60 % 60)
}

/// What the rule does when it cannot tell the recipient's timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnknownTimezone {
    /// Send (answer `no_match`).
    Allow,
    /// Refuse with code 109, without `retry_at`.
    Deny,
}

/// The rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendWindow {
    window: Window,
    /// [`Window::describe`], once.
    described: Box<str>,
    /// The end of the note of a decision inside the window, once:
    /// `) is inside the send window 08:00–21:00, every day`.
    inside: Box<str>,
    on_unknown: OnUnknownTimezone,
    /// A contact who wrote in within this is exempt; zero: no exemption.
    exempt_replies: Duration,
}

impl SendWindow {
    /// The rule with `window`.
    pub fn new(window: Window, on_unknown: OnUnknownTimezone, exempt_replies: Duration) -> SendWindow {
        let described = window.describe();
        let inside = format!(") is inside the send window {described}").into();
        SendWindow { window, described: described.into(), inside, on_unknown, exempt_replies }
    }
}

impl Default for SendWindow {
    fn default() -> SendWindow {
        SendWindow::new(Window::US_FEDERAL, OnUnknownTimezone::Allow, Duration::from_secs(86_400))
    }
}

/// The recipient's timezone, where it came from, and the local time there.
struct Zone<'a> {
    name: &'a str,
    whose: &'static str,
    /// A note when the contact's own timezone was unusable.
    note: Option<String>,
    local: Local,
}

/// The recipient's local time, and whether it is inside the window.
enum Local {
    Inside(Clock),
    /// Outside, with the timezone (a refusal works out when the window
    /// opens there).
    Outside(Clock, TimeZone),
}

impl Local {
    fn of(window: &Window, clock: Clock, tz: &TimeZone) -> Local {
        if window.holds_at(clock) {
            Local::Inside(clock)
        } else {
            Local::Outside(clock, tz.clone())
        }
    }
}

impl SendWindow {
    /// The recipient's zone and local time at `now`.
    fn zone<'a>(&self, cx: &RuleContext<'a>, now: Timestamp) -> Result<Zone<'a>, String> {
        let window = &self.window;
        let location = cx.site();
        let fallback = |note: Option<String>| match location.and_then(|l| l.named_timezone()) {
            Some(tz) => {
                let (name, local) = match tz.iana_name() {
                    // Kept by name, as the contacts' zones are (the
                    // location's was looked up by that name too).
                    Some(name) => (name, in_zone(name, Some(tz), |kept| Local::of(window, kept.clock(now), &kept.tz))),
                    None => ("the location's timezone", Ok(Local::of(window, Clock::of(tz.to_datetime(now)), tz))),
                };
                let local = local.map_err(|e| format!("the location's timezone `{name}`: {e}"))?;
                Ok(Zone { name, whose: "the location's timezone", note, local })
            }
            None => Err(note.unwrap_or_else(|| "the contact has no timezone and the location names none".to_owned())),
        };
        match cx.contact().and_then(|c| c.timezone.as_deref()).map(trimmed).filter(|t| !t.is_empty()) {
            Some(name) => match in_zone(name, None, |kept| Local::of(window, kept.clock(now), &kept.tz)) {
                Ok(local) => Ok(Zone { name, whose: "the contact's timezone", note: None, local }),
                Err(_) => fallback(Some(format!("the contact's timezone `{name}` is not an IANA timezone name"))),
            },
            None => fallback(None),
        }
    }

    /// Why the contact is exempt, if it wrote in within `exempt_replies`.
    fn exempt(&self, cx: &RuleContext<'_>, now: Timestamp) -> Option<String> {
        if self.exempt_replies.is_zero() {
            return None;
        }
        let Inbound::Last(last) = cx.last_inbound() else { return None };
        let since = now.as_second().checked_sub(last.time.as_second())?;
        (0..i64::try_from(self.exempt_replies.as_secs()).unwrap_or(i64::MAX)).contains(&since).then(|| {
            format!(
                "the contact wrote in to `{}` at {} (within exempt_replies {}): exempt",
                last.instance,
                last.time,
                human_duration(self.exempt_replies)
            )
        })
    }
}

impl SelectionRule for SendWindow {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        let now = cx.now();
        let window = &*self.described;
        let zone = match self.zone(cx, now) {
            Ok(zone) => zone,
            Err(why) => {
                return match self.on_unknown {
                    OnUnknownTimezone::Allow => Outcome::no_match_because(format!(
                        "{why}: the recipient's local time is unknown; sent (on_unknown_timezone: allow)"
                    )),
                    OnUnknownTimezone::Deny => Outcome::failed(
                        ErrorKind::OutsideSendWindow,
                        format!(
                            "{why}: the recipient's local time is unknown and on_unknown_timezone is deny; give the \
                             contact a `timezone` or the location one, or set `on_unknown_timezone: allow`"
                        ),
                    ),
                };
            }
        };
        let (clock, tz) = match zone.local {
            Local::Inside(clock) => {
                // The common answer, `local time Mon 10:00 (America/New_York,
                // the contact's timezone) is inside the send window …`,
                // written piece by piece into one allocation of its exact
                // size (the formatting machinery cost more than the rest of
                // the rule).
                let note = zone.note.as_deref().unwrap_or_default();
                let noted = if note.is_empty() { 0 } else { note.len() + 2 };
                let length = noted + "local time Mon 10:00 (".len() + zone.name.len() + 2 + zone.whose.len();
                let mut detail = String::with_capacity(length + self.inside.len());
                if !note.is_empty() {
                    detail.push_str(note);
                    detail.push_str("; ");
                }
                detail.push_str("local time ");
                detail.push_str(clock.day());
                detail.push(' ');
                two_digits(&mut detail, clock.hour());
                detail.push(':');
                two_digits(&mut detail, clock.minute());
                detail.push_str(" (");
                detail.push_str(zone.name);
                detail.push_str(", ");
                detail.push_str(zone.whose);
                detail.push_str(&self.inside);
                return Outcome::no_match_because(detail);
            }
            Local::Outside(clock, tz) => (clock, tz),
        };
        let (day, hour, minute) = (clock.day(), clock.hour(), clock.minute());
        let note = zone.note.map_or_else(String::new, |n| format!("{n}; "));
        let at = format!("{day} {hour:02}:{minute:02} ({}, {})", zone.name, zone.whose);
        if let Some(why) = self.exempt(cx, now) {
            return Outcome::no_match_because(format!("{note}local time {at} is outside {window}, but {why}"));
        }
        let message = format!("{note}the recipient's local time is {at}, outside the send window {window}");
        match self.window.next_opening(now, &tz) {
            Some(retry_at) => {
                let opens = tz.to_datetime(retry_at);
                Outcome::failed_until(
                    ErrorKind::OutsideSendWindow,
                    format!(
                        "{message}; it opens at {} local ({retry_at}): retry then",
                        opens.strftime("%a %Y-%m-%d %H:%M")
                    ),
                    retry_at,
                )
            }
            None => Outcome::failed(
                ErrorKind::OutsideSendWindow,
                format!("{message}; it does not open in the next 8 days there"),
            ),
        }
    }
}

/// A timezone kept per thread (see [`in_zone`]), with the UTC offset it
/// had at the last instant asked and the instants over which that offset
/// holds, from one of the zone's transitions to the next: most decisions
/// fall inside and work out the local time with integer arithmetic.
struct Kept {
    name: Box<str>,
    tz: TimeZone,
    /// Seconds east of UTC over `[from, until)`.
    offset: i32,
    from: Timestamp,
    until: Timestamp,
}

impl Kept {
    fn new(name: &str, tz: TimeZone) -> Kept {
        // An empty interval: the first question fills it in.
        Kept { name: name.into(), tz, offset: 0, from: Timestamp::MAX, until: Timestamp::MIN }
    }

    /// The local clock at `t`.
    fn clock(&mut self, t: Timestamp) -> Clock {
        if !(self.from <= t && t < self.until) {
            self.offset = self.tz.to_offset(t).seconds();
            // The last transition at or before `t` (`preceding` yields
            // those strictly before its argument) and the first after it;
            // none: the offset holds that way for good.
            self.from = match t.checked_add(1.nanosecond()) {
                Ok(after) => self.tz.preceding(after).next().map_or(Timestamp::MIN, |change| change.timestamp()),
                // `t` is the last instant there is: nothing is kept.
                Err(_) => t,
            };
            self.until = self.tz.following(t).next().map_or(Timestamp::MAX, |change| change.timestamp());
        }
        Clock::at(t, self.offset)
    }
}

/// `f` of the timezone named `name` (an IANA name), from a few kept per
/// thread: a CRM's contacts share a handful of zones, and the look-up by
/// name and the local time (a walk through the zone's rules) cost more than
/// the rest of the rule's common path. `tz` is the zone when the caller has
/// it (the location's); otherwise it is looked up by name.
fn in_zone<R>(
    name: &str,
    tz: Option<&TimeZone>,
    f: impl FnOnce(&mut Kept) -> R,
) -> Result<R, switchboard_core::capacity::jiff::Error> {
    const KEPT: usize = 8;
    thread_local! {
        static ZONES: std::cell::RefCell<Vec<Kept>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    ZONES.with(|zones| {
        let mut zones = zones.borrow_mut();
        if let Some(kept) = zones.iter_mut().find(|kept| &*kept.name == name) {
            return Ok(f(kept));
        }
        let tz = match tz {
            Some(tz) => tz.clone(),
            None => TimeZone::get(name)?,
        };
        let mut kept = Kept::new(name, tz);
        let answer = f(&mut kept);
        if zones.len() == KEPT {
            zones.remove(0);
        }
        zones.push(kept);
        Ok(answer)
    })
}

/// `text` without the whitespace around it (`str::trim`, which the common
/// case, a name that starts and ends with a letter, skips).
fn trimmed(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// `n` (0–99) as two digits.
fn two_digits(out: &mut String, n: u32) {
    let n = n.min(99) as u8;
    out.push(char::from(b'0' + n / 10));
    out.push(char::from(b'0' + n % 10));
}

fn build(options: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
    // The compiler applies the declared defaults.
    let start = options.str("start").unwrap_or("08:00");
    let end = options.str("end").unwrap_or("21:00");
    let all: Vec<String> = DAY_NAMES.iter().map(|d| (*d).to_owned()).collect();
    let days = options.list("days").unwrap_or(&all);
    let window = Window::parse(start, end, days)?;
    if let Some(preset) = options.str("preset").filter(|p| *p != "none") {
        // The only preset is the defaults: what is given must agree.
        let named = Window::US_FEDERAL;
        if window != named {
            return Err(format!(
                "`preset: {preset}` is the window {}; `start`, `end` and `days` given with it must agree with it \
                 (here {}): remove the preset or those options",
                named.describe(),
                window.describe()
            ));
        }
    }
    let on_unknown = match options.str("on_unknown_timezone") {
        Some("deny") => OnUnknownTimezone::Deny,
        _ => OnUnknownTimezone::Allow,
    };
    let exempt = parse_duration(options.str("exempt_replies").unwrap_or("24h"), "exempt_replies", true)?;
    Ok(Box::new(SendWindow::new(window, on_unknown, exempt)))
}

register_rule! {
    id: ID,
    summary: "quiet hours: refuses (109, with retry_at) outside a window of the recipient's local time",
    code: CODE,
    on_unavailable: None,
    options: &[
        OptionSpec {
            name: "preset",
            kind: OptionKind::Choice(PRESETS),
            default: "none",
            doc: "a named window: us_federal is 08:00–21:00 every day (47 CFR 64.1200(c)(1)); none: start, end and days alone",
        },
        OptionSpec {
            name: "start",
            kind: OptionKind::String,
            default: "08:00",
            doc: "local time the window opens, HH:MM, inclusive",
        },
        OptionSpec {
            name: "end",
            kind: OptionKind::String,
            default: "21:00",
            doc: "local time the window closes, HH:MM (24:00 for midnight), exclusive",
        },
        OptionSpec {
            name: "days",
            kind: OptionKind::StringList,
            default: "[mon, tue, wed, thu, fri, sat, sun]",
            doc: "the days the window opens",
        },
        OptionSpec {
            name: "on_unknown_timezone",
            kind: OptionKind::Choice(&["allow", "deny"]),
            default: "allow",
            doc: "when neither the contact nor the location has a timezone: send, or refuse (109 without retry_at)",
        },
        OptionSpec {
            name: "exempt_replies",
            kind: OptionKind::Duration,
            default: "24h",
            doc: "a contact who wrote in within this is exempt (s, m, h or d; 0 turns it off)",
        },
    ],
    build: build,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{recipient, run_world, Answer::*, Seen};
    use proptest::prelude::*;
    use switchboard_core::capacity::ConversationKey;
    use switchboard_core::{InboundLog, LastInbound, StoreError};

    const NY: &str = r#"{"locations":[{"id":"loc_1","timezone":"America/New_York","instances":[
        {"id":"wa-1","channel":"whatsapp","phone":"+1 212 555 0101","connected":true}]}]}"#;
    const NO_ZONE: &str = r#"{"locations":[{"id":"loc_1","instances":[
        {"id":"wa-1","channel":"whatsapp","phone":"+1 212 555 0101","connected":true}]}]}"#;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn at(rule: &SendWindow, world: &str, timezone: Option<&str>, now: &str) -> Seen {
        let now = t(now);
        run_world(rule, world, recipient("c1", None, timezone), Some(now), None)
    }

    #[test]
    fn start_is_inclusive_end_exclusive() {
        let rule = SendWindow::default();
        // 08:00 EST is 13:00Z in December.
        assert_eq!(at(&rule, NY, None, "2026-12-07T12:59:59Z").answer, Failed("outside_send_window"));
        let open = at(&rule, NY, None, "2026-12-07T13:00:00Z");
        assert_eq!(open.answer, NoMatch);
        assert!(
            open.text.contains("local time Mon 08:00 (America/New_York, the location's timezone) is inside"),
            "{}",
            open.text
        );
        assert_eq!(at(&rule, NY, None, "2026-12-08T01:59:59Z").answer, NoMatch);
        let closed = at(&rule, NY, None, "2026-12-08T02:00:00Z");
        assert_eq!(closed.answer, Failed("outside_send_window"));
        assert_eq!(closed.retry_at, Some(t("2026-12-08T13:00:00Z")));
        assert!(closed.text.contains("local time is Mon 21:00 (America/New_York"), "{}", closed.text);
        assert!(closed.text.contains("outside the send window 08:00–21:00, every day"), "{}", closed.text);
    }

    #[test]
    fn the_notes_say_the_local_time_the_zone_and_the_window() {
        let rule = SendWindow::default();
        assert_eq!(
            at(&rule, NY, Some("Europe/London"), "2026-12-07T15:04:00Z").text,
            "local time Mon 15:04 (Europe/London, the contact's timezone) is inside the send window 08:00–21:00, \
             every day"
        );
        assert_eq!(
            at(&rule, NY, Some(" America/New_Yrok "), "2026-12-07T15:04:00Z").text,
            "the contact's timezone `America/New_Yrok` is not an IANA timezone name; local time Mon 10:04 \
             (America/New_York, the location's timezone) is inside the send window 08:00–21:00, every day"
        );
        let always = SendWindow::new(
            Window::parse("00:00", "24:00", &DAY_NAMES.map(String::from)).unwrap(),
            OnUnknownTimezone::Allow,
            Duration::ZERO,
        );
        assert_eq!(
            at(&always, NY, Some(" Asia/Kolkata\t"), "2026-12-06T20:00:00Z").text,
            "local time Mon 01:30 (Asia/Kolkata, the contact's timezone) is inside the send window 00:00–24:00, \
             every day"
        );
        assert_eq!(
            at(&rule, NY, Some("Pacific/Chatham"), "2026-12-07T18:00:00Z").text,
            "the recipient's local time is Tue 07:45 (Pacific/Chatham, the contact's timezone), outside the send \
             window 08:00–21:00, every day; it opens at Tue 2026-12-08 08:00 local (2026-12-07T18:15:00Z): retry then"
        );
    }

    #[test]
    fn the_contact_timezone_comes_before_the_location_one() {
        let rule = SendWindow::default();
        // 14:00Z: 09:00 in New York, 06:00 in Los Angeles.
        let la = at(&rule, NY, Some("America/Los_Angeles"), "2026-12-07T14:00:00Z");
        assert_eq!(la.answer, Failed("outside_send_window"));
        assert_eq!(la.retry_at, Some(t("2026-12-07T16:00:00Z")));
        // An unusable contact timezone: the location's, said so.
        let typo = at(&rule, NY, Some("America/New_Yrok"), "2026-12-07T14:00:00Z");
        assert_eq!(typo.answer, NoMatch);
        assert!(typo.text.starts_with("the contact's timezone `America/New_Yrok` is not an IANA"), "{}", typo.text);
    }

    #[test]
    fn unknown_timezone_allows_or_denies() {
        let allow = at(&SendWindow::default(), NO_ZONE, None, "2026-12-07T03:00:00Z");
        assert_eq!(allow.answer, NoMatch);
        assert!(allow.text.contains("on_unknown_timezone: allow"), "{}", allow.text);
        let deny = SendWindow::new(Window::US_FEDERAL, OnUnknownTimezone::Deny, Duration::ZERO);
        let denied = at(&deny, NO_ZONE, Some("Nowhere/Special"), "2026-12-07T03:00:00Z");
        assert_eq!(denied.answer, Failed("outside_send_window"));
        assert_eq!(denied.retry_at, None);
        assert!(denied.text.contains("`Nowhere/Special` is not an IANA timezone name"), "{}", denied.text);
        // With a timezone, deny changes nothing.
        assert_eq!(at(&deny, NO_ZONE, Some("UTC"), "2026-12-07T12:00:00Z").answer, NoMatch);
    }

    #[test]
    fn opens_at_eight_local_across_both_dst_changes() {
        let rule = SendWindow::default();
        // New York springs forward on Sunday 2026-03-08: 08:00 EDT is 12:00Z.
        let spring = at(&rule, NY, None, "2026-03-08T05:00:00Z");
        assert_eq!(spring.retry_at, Some(t("2026-03-08T12:00:00Z")));
        // … and falls back on Sunday 2026-11-01: 08:00 EST is 13:00Z.
        let autumn = at(&rule, NY, None, "2026-11-01T05:00:00Z");
        assert_eq!(autumn.retry_at, Some(t("2026-11-01T13:00:00Z")));
        // London: BST from Sunday 2026-03-29, GMT from Sunday 2026-10-25.
        let london = SendWindow::default();
        let lon_spring = at(&london, NY, Some("Europe/London"), "2026-03-29T02:00:00Z");
        assert_eq!(lon_spring.retry_at, Some(t("2026-03-29T07:00:00Z")));
        let lon_autumn = at(&london, NY, Some("Europe/London"), "2026-10-25T02:00:00Z");
        assert_eq!(lon_autumn.retry_at, Some(t("2026-10-25T08:00:00Z")));
        // The evening before each change: the opening follows the new offset.
        assert_eq!(at(&rule, NY, None, "2026-03-08T02:30:00Z").retry_at, Some(t("2026-03-08T12:00:00Z")));
        assert_eq!(at(&rule, NY, None, "2026-11-01T02:30:00Z").retry_at, Some(t("2026-11-01T13:00:00Z")));
    }

    #[test]
    fn a_start_inside_the_skipped_hour_opens_at_the_change() {
        // 02:30 does not exist in New York on 2026-03-08: the window opens
        // when the clocks jump to 03:00 EDT (07:00Z).
        let w = Window::parse("02:30", "05:00", &["sun".into()]).unwrap();
        let ny = TimeZone::get("America/New_York").unwrap();
        assert_eq!(w.next_opening(t("2026-03-08T05:00:00Z"), &ny), Some(t("2026-03-08T07:00:00Z")));
        // A start in the repeated hour opens twice: 01:30 EDT, then again at
        // 01:30 EST after the clock went back out of the window at 01:00.
        let w = Window::parse("01:30", "05:00", &["sun".into()]).unwrap();
        assert_eq!(w.next_opening(t("2026-11-01T04:00:00Z"), &ny), Some(t("2026-11-01T05:30:00Z")));
        assert_eq!(w.next_opening(t("2026-11-01T06:10:00Z"), &ny), Some(t("2026-11-01T06:30:00Z")));
    }

    #[test]
    fn days_skip_to_the_next_open_day() {
        let weekdays: Vec<String> = ["mon", "tue", "wed", "thu", "fri"].iter().map(|d| (*d).to_owned()).collect();
        let rule = SendWindow::new(
            Window::parse("09:00", "17:30", &weekdays).unwrap(),
            OnUnknownTimezone::Allow,
            Duration::ZERO,
        );
        // Friday 2026-12-11 18:00 EST → Monday 09:00 EST.
        let friday = at(&rule, NY, None, "2026-12-11T23:00:00Z");
        assert_eq!(friday.retry_at, Some(t("2026-12-14T14:00:00Z")));
        // Saturday noon is outside too, whatever the hour.
        let saturday = at(&rule, NY, None, "2026-12-12T17:00:00Z");
        assert_eq!(saturday.answer, Failed("outside_send_window"));
        assert!(saturday.text.contains("local time is Sat 12:00"), "{}", saturday.text);
        assert!(saturday.text.contains("09:00–17:30, mon–fri"), "{}", saturday.text);
    }

    /// Inbound messages, as a test's own log.
    struct Log(Vec<(String, LastInbound)>);
    impl InboundLog for Log {
        fn last_inbound(&self, key: &ConversationKey<'_>) -> Result<Option<LastInbound>, StoreError> {
            Ok(self.0.iter().find(|(c, _)| c == key.contact).map(|(_, l)| l.clone()))
        }
    }

    #[test]
    fn a_recent_inbound_message_exempts_the_contact() {
        let log = Log(vec![("c1".into(), LastInbound { instance: "wa-1".into(), time: t("2026-12-07T02:00:00Z") })]);
        let run = |rule: &SendWindow, now: &str| {
            let now = t(now);
            run_world(rule, NY, recipient("c1", None, None), Some(now), Some(&log))
        };
        let exempt = run(&SendWindow::default(), "2026-12-07T04:00:00Z");
        assert_eq!(exempt.answer, NoMatch);
        assert!(exempt.text.contains("wrote in to `wa-1` at 2026-12-07T02:00:00Z"), "{}", exempt.text);
        // 24 h later the exemption is over.
        assert_eq!(run(&SendWindow::default(), "2026-12-08T02:00:00Z").answer, Failed("outside_send_window"));
        // `0` turns it off.
        let off = SendWindow::new(Window::US_FEDERAL, OnUnknownTimezone::Allow, Duration::ZERO);
        assert_eq!(run(&off, "2026-12-07T04:00:00Z").answer, Failed("outside_send_window"));
        // No inbound source behind the context: nobody is exempt.
        assert_eq!(at(&SendWindow::default(), NY, None, "2026-12-07T04:00:00Z").answer, Failed("outside_send_window"));
    }

    #[test]
    fn options_are_checked() {
        let days = |d: &[&str]| d.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(Window::parse("8:00", "21:00", &days(&["mon"])).unwrap_err().contains("`start` must be a local time"));
        assert!(Window::parse("08:00", "24:01", &days(&["mon"])).unwrap_err().contains("`end`"));
        assert!(Window::parse("24:00", "24:00", &days(&["mon"])).unwrap_err().contains("`start`"));
        assert!(Window::parse("21:00", "08:00", &days(&["mon"])).unwrap_err().contains("must be before `end`"));
        assert!(Window::parse("08:00", "21:00", &days(&["monday"])).unwrap_err().contains("unknown day `monday`"));
        assert!(Window::parse("08:00", "21:00", &[]).unwrap_err().contains("`days` is empty"));
        assert_eq!(Window::parse("08:00", "21:00", &days(&DAY_NAMES)).unwrap(), Window::US_FEDERAL);
        assert_eq!(Window::parse("00:00", "24:00", &days(&["Sun"])).unwrap().describe(), "00:00–24:00, sun");
    }

    #[test]
    fn the_kept_offset_gives_the_local_time_at_and_around_each_change() {
        for zone in ["America/New_York", "Europe/London", "Australia/Lord_Howe", "Pacific/Chatham", "UTC"] {
            let tz = TimeZone::get(zone).unwrap();
            let mut kept = Kept::new(zone, tz.clone());
            let changes: Vec<Timestamp> =
                tz.following(t("2025-06-01T00:00:00Z")).take(6).map(|c| c.timestamp()).collect();
            for change in changes {
                // Asked in order, and then again out of order (from the
                // interval after the change back to the one before).
                for t in [-1_i64, 0, 1, 1_000_000_000, -3_600_000_000_000, 0, -1] {
                    let t = change.checked_add(t.nanoseconds()).unwrap();
                    assert_eq!(kept.clock(t), Clock::of(tz.to_datetime(t)), "{zone} at {t}");
                }
            }
        }
    }

    #[test]
    fn the_clock_counts_days_and_seconds_before_1970_too() {
        let tz = TimeZone::get("America/New_York").unwrap();
        let mut kept = Kept::new("America/New_York", tz.clone());
        for t in ["1969-12-31T23:59:59.5Z", "1960-02-29T05:00:00Z", "1970-01-01T00:00:00Z", "2026-12-07T15:00:00Z"] {
            let t = self::t(t);
            assert_eq!(kept.clock(t), Clock::of(tz.to_datetime(t)), "{t}");
        }
        assert_eq!(Clock::at(t("1969-12-31T23:59:59.5Z"), 0), Clock { second: 86_399, weekday: 2 });
    }

    fn zones() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe",
            "America/Sao_Paulo",
            "Asia/Kolkata",
            "Pacific/Chatham",
            "UTC",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// The local time from the kept offset is the zone's, whatever the
        /// instants asked before (in the same interval, or another).
        #[test]
        fn the_kept_offset_gives_the_zone_local_time(
            zone in zones(),
            seconds in prop::collection::vec(-2_000_000_000i64..4_000_000_000, 1..6),
            nanos in 0i32..1_000_000_000,
        ) {
            let tz = TimeZone::get(zone).unwrap();
            let mut kept = Kept::new(zone, tz.clone());
            for s in seconds {
                let t = Timestamp::new(s, nanos).unwrap();
                prop_assert_eq!(kept.clock(t), Clock::of(tz.to_datetime(t)), "{} at {}", zone, t);
            }
        }

        /// `retry_at` is in the future, inside the window, and no earlier
        /// opening lies between `now` and it (checked minute by minute, and
        /// just before it).
        #[test]
        fn retry_at_is_the_next_opening(
            zone in zones(),
            // 2026 and 2027, to the minute, DST changes included.
            minute in 0i64..(2 * 365 * 24 * 60),
            start in 0u32..(24 * 4),
            length in 1u32..(24 * 4),
            days in 1u8..=ALL_DAYS,
        ) {
            let tz = TimeZone::get(zone).unwrap();
            let start = start * 900;
            let end = (start + length * 900).min(86_400);
            prop_assume!(start < end);
            let window = Window { start, end, days };
            let now = t("2026-01-01T00:00:00Z").checked_add((minute * 60).seconds()).unwrap();
            prop_assume!(!window.contains(now, &tz));
            let next = window.next_opening(now, &tz);
            let next = next.expect("every window opens within a week");
            prop_assert!(next > now);
            prop_assert!(window.contains(next, &tz), "{next} is inside");
            prop_assert!(!window.contains(next.checked_sub(1.second()).unwrap(), &tz), "{next} is an opening");
            let mut probe = now;
            while probe < next {
                prop_assert!(!window.contains(probe, &tz), "open at {probe}, before {next}");
                probe = probe.checked_add(1.minute()).unwrap();
            }
        }
    }
}
