//! Instance health (docs/live-state.md): `delivery` events from the send path
//! quarantine a failing instance for a while, then let its next delivery
//! decide.
//!
//! An instance is [`healthy`](HealthState::Healthy),
//! [`quarantined`](HealthState::Quarantined) until some time, or on
//! [`probation`](HealthState::Probation). The rules are those of the
//! `health:` section of rules.yaml ([`HealthPolicy`]):
//!
//! - `quarantine_after` consecutive `failed` deliveries, or the failure rate
//!   of the last `window` reaching `failure_rate` (once it holds at least
//!   `min_deliveries`), quarantine a healthy instance for `cooldown`;
//! - when the quarantine ends the instance is on probation: selectable, and
//!   its next delivery decides: `delivered` makes it healthy (the next
//!   quarantine lasts `cooldown` again), `failed` quarantines it again for
//!   twice the last quarantine, at most `max_cooldown`;
//! - a delivery whose `time` falls inside a quarantine (a late receipt of an
//!   earlier message) is counted in the window and changes nothing else.
//!
//! Time is the events' `time` and the reader's `now`: nothing here reads a
//! clock, so a test replays a day of events without sleeping.
//!
//! The transition is one pure function, [`HealthRecord::deliver`], that every
//! [`CapacityStore`](crate::CapacityStore) applies, so the stores cannot
//! disagree on what a delivery does; a store keeps the record
//! ([`HealthRecord::encode`] gives a store its text form) and the window's
//! deliveries.

use std::fmt;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// The `health:` section of rules.yaml, with its defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Consecutive `failed` deliveries that quarantine a healthy instance.
    pub quarantine_after: u32,
    /// The failure rate (failed / all deliveries in `window`) that
    /// quarantines a healthy instance, if set.
    pub failure_rate: Option<f64>,
    /// How many deliveries the window must hold before `failure_rate` applies.
    pub min_deliveries: u32,
    /// How far back the failure rate (and the counts shown) look.
    pub window: Duration,
    /// The first quarantine's length.
    pub cooldown: Duration,
    /// The longest quarantine: each one after a failed probation doubles
    /// the last, up to this.
    pub max_cooldown: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            quarantine_after: 5,
            failure_rate: None,
            min_deliveries: 20,
            window: Duration::from_secs(10 * 60),
            cooldown: Duration::from_secs(5 * 60),
            max_cooldown: Duration::from_secs(60 * 60),
        }
    }
}

/// Where an instance stands at some instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Selectable; failures are being counted.
    Healthy,
    /// Not selectable until `until` (kind `instance_quarantined`).
    Quarantined {
        /// When the quarantine ends.
        until: Timestamp,
    },
    /// Selectable; its next delivery decides.
    Probation,
}

impl HealthState {
    /// The state's name in `/v1/instances` and explain.
    pub fn as_str(&self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Quarantined { .. } => "quarantined",
            HealthState::Probation => "probation",
        }
    }
}

/// The deliveries of one instance within a window, this one included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowCounts {
    /// Every delivery event.
    pub deliveries: u64,
    /// The `failed` ones.
    pub failures: u64,
}

/// What the health of one instance remembers between events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthRecord {
    /// `failed` deliveries since the last `delivered` one.
    pub consecutive_failures: u32,
    /// The end of the latest quarantine, if there was one.
    pub until: Option<Timestamp>,
    /// The latest quarantine's length while the instance is quarantined or
    /// on probation; `None` once a delivery made it healthy again.
    pub cooldown: Option<Duration>,
}

/// What a delivery did to an instance's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The record after the delivery.
    pub record: HealthRecord,
    /// Whether the delivery started a quarantine.
    pub quarantined: bool,
}

/// One `delivery` event for a store to apply.
#[derive(Debug, Clone, Copy)]
pub struct DeliveryUpdate<'a> {
    /// The location id.
    pub location: &'a str,
    /// The instance id.
    pub instance: &'a str,
    /// The event's time.
    pub time: Timestamp,
    /// Whether the message failed (`status: failed`).
    pub failed: bool,
}

impl HealthRecord {
    /// The state at `now`.
    pub fn state(&self, now: Timestamp) -> HealthState {
        match (self.until, self.cooldown) {
            (Some(until), Some(_)) if now < until => HealthState::Quarantined { until },
            (_, Some(_)) => HealthState::Probation,
            _ => HealthState::Healthy,
        }
    }

    /// When the quarantine in force at `now` ends, if one is.
    pub fn quarantined_until(&self, now: Timestamp) -> Option<Timestamp> {
        match self.state(now) {
            HealthState::Quarantined { until } => Some(until),
            _ => None,
        }
    }

    /// Whether the record can matter to a decision: the instance is
    /// quarantined or on probation (a store keeps such records where
    /// decisions read live state, and the others apart).
    pub fn in_cycle(&self) -> bool {
        self.cooldown.is_some()
    }

    /// Applies one delivery at `time`; `window` counts the deliveries of
    /// the policy's window ending at `time`, this one included.
    pub fn deliver(&self, policy: &HealthPolicy, time: Timestamp, failed: bool, window: WindowCounts) -> Transition {
        let unchanged = Transition { record: *self, quarantined: false };
        // A late receipt of a message sent before or during the quarantine.
        if self.cooldown.is_some() && self.until.is_some_and(|until| time < until) {
            return unchanged;
        }
        let mut record = *self;
        if !failed {
            record.consecutive_failures = 0;
            // Healthy again (from probation), or still healthy.
            record.cooldown = None;
            return Transition { record, quarantined: false };
        }
        record.consecutive_failures = record.consecutive_failures.saturating_add(1);
        let length = match self.cooldown {
            // On probation: quarantined again, for twice as long.
            Some(last) => Some(last.saturating_mul(2).min(policy.max_cooldown)),
            None => {
                let consecutive = record.consecutive_failures >= policy.quarantine_after;
                let rate = policy.failure_rate.is_some_and(|rate| {
                    window.deliveries >= u64::from(policy.min_deliveries)
                        && window.deliveries > 0
                        && window.failures as f64 / window.deliveries as f64 >= rate
                });
                (consecutive || rate).then_some(policy.cooldown.min(policy.max_cooldown))
            }
        };
        let Some(length) = length else { return Transition { record, quarantined: false } };
        let span = SignedDuration::try_from(length).unwrap_or(SignedDuration::MAX);
        record.until = Some(time.checked_add(span).unwrap_or(Timestamp::MAX));
        record.cooldown = Some(length);
        Transition { record, quarantined: true }
    }

    /// The record as a store keeps it: `<consecutive>:<until ms>:<cooldown
    /// ms>`, the last two empty when absent.
    pub fn encode(&self) -> String {
        let until = self.until.map_or(String::new(), |u| u.as_millisecond().to_string());
        let cooldown = self.cooldown.map_or(String::new(), |c| c.as_millis().to_string());
        format!("{}:{until}:{cooldown}", self.consecutive_failures)
    }

    /// Reads what [`HealthRecord::encode`] wrote; `None` for anything else.
    pub fn decode(text: &str) -> Option<HealthRecord> {
        let mut parts = text.split(':');
        let consecutive_failures = parts.next()?.parse().ok()?;
        let until = match parts.next()? {
            "" => None,
            ms => Some(Timestamp::from_millisecond(ms.parse().ok()?).ok()?),
        };
        let cooldown = match parts.next()? {
            "" => None,
            ms => Some(Duration::from_millis(ms.parse().ok()?)),
        };
        parts.next().is_none().then_some(HealthRecord { consecutive_failures, until, cooldown })
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthState::Quarantined { until } => write!(f, "quarantined until {until}"),
            other => f.write_str(other.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> Timestamp {
        Timestamp::from_second(1_796_000_000 + minute * 60).unwrap()
    }

    fn counts(deliveries: u64, failures: u64) -> WindowCounts {
        WindowCounts { deliveries, failures }
    }

    /// Applies `failed`-ness in order at one minute apart from `start`.
    fn run(policy: &HealthPolicy, start: i64, events: &[bool]) -> (HealthRecord, usize) {
        let mut record = HealthRecord::default();
        let mut quarantines = 0;
        for (n, failed) in events.iter().enumerate() {
            let t = record.deliver(policy, at(start + n as i64), *failed, counts(0, 0));
            quarantines += usize::from(t.quarantined);
            record = t.record;
        }
        (record, quarantines)
    }

    #[test]
    fn consecutive_failures_quarantine_and_a_delivery_resets_the_count() {
        let policy = HealthPolicy::default();
        let (record, q) = run(&policy, 0, &[true, true, true, true, false, true]);
        assert_eq!((record.consecutive_failures, q), (1, 0));
        assert_eq!(record.state(at(10)), HealthState::Healthy);
        let (record, q) = run(&policy, 0, &[true; 5]);
        assert_eq!(q, 1);
        assert_eq!(record.state(at(4)), HealthState::Quarantined { until: at(9) }, "5 minutes from the fifth");
        assert_eq!(record.state(at(9)), HealthState::Probation, "the end is exclusive");
        assert_eq!(record.quarantined_until(at(8)), Some(at(9)));
    }

    #[test]
    fn probation_is_decided_by_the_next_delivery() {
        let policy = HealthPolicy::default();
        let (quarantined, _) = run(&policy, 0, &[true; 5]);
        // Delivered on probation: healthy, and the next quarantine is 5m again.
        let healed = quarantined.deliver(&policy, at(10), false, counts(0, 0)).record;
        assert_eq!(healed.state(at(10)), HealthState::Healthy);
        assert_eq!(healed.consecutive_failures, 0);
        // Failed on probation: 10m, then 20m, 40m, capped at 1h.
        let mut record = quarantined;
        let mut t = 10;
        for expected in [10, 20, 40, 60, 60] {
            let next = record.deliver(&policy, at(t), true, counts(0, 0));
            assert!(next.quarantined);
            assert_eq!(next.record.state(at(t)), HealthState::Quarantined { until: at(t + expected) });
            record = next.record;
            t += expected;
        }
    }

    #[test]
    fn late_receipts_neither_lengthen_nor_end_a_quarantine() {
        let policy = HealthPolicy::default();
        let (record, _) = run(&policy, 0, &[true; 5]);
        for failed in [true, false] {
            let t = record.deliver(&policy, at(6), failed, counts(9, 9));
            assert_eq!(t, Transition { record, quarantined: false });
        }
    }

    #[test]
    fn the_failure_rate_needs_enough_deliveries() {
        let policy = HealthPolicy { failure_rate: Some(0.5), min_deliveries: 4, ..HealthPolicy::default() };
        let record = HealthRecord::default();
        assert!(!record.deliver(&policy, at(0), true, counts(3, 3)).quarantined, "too few");
        assert!(!record.deliver(&policy, at(0), true, counts(10, 4)).quarantined, "40 %");
        assert!(record.deliver(&policy, at(0), true, counts(10, 5)).quarantined, "50 % reaches it");
        assert!(!record.deliver(&policy, at(0), false, counts(10, 9)).quarantined, "a delivery never quarantines");
        let without = HealthPolicy::default();
        assert!(!record.deliver(&without, at(0), true, counts(100, 100)).quarantined, "no rate set");
    }

    #[test]
    fn records_round_trip_through_their_text() {
        let (quarantined, _) = run(&HealthPolicy::default(), 0, &[true; 5]);
        for record in [HealthRecord::default(), quarantined, HealthRecord { consecutive_failures: 3, ..quarantined }] {
            assert_eq!(HealthRecord::decode(&record.encode()), Some(record));
        }
        for bad in ["", "x::", "1:2", "1:2:3:4", "1:abc:"] {
            assert_eq!(HealthRecord::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn states_display_with_their_end() {
        assert_eq!(HealthState::Quarantined { until: at(0) }.to_string(), format!("quarantined until {}", at(0)));
        assert_eq!(HealthState::Probation.to_string(), "probation");
    }
}
