//! Warm-up schedules (docs/live-state.md): a new number earns its volume.
//!
//! An instance's `warmup: {since, per_day: [20, 50, 120, …]}` makes its
//! `per_day` limit `per_day[k]` on the k-th calendar day since `since`, in
//! the location's timezone (day 0 is the day `since` falls in, and any day
//! before it counts as day 0), and the last value from then on. With an
//! explicit `limits.per_day` the smaller applies. It is a limit like any
//! other: the store counts and enforces it exactly as it does
//! `limits.per_day`, so a schedule holds across a fleet.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::capacity::Limits;

/// A warm-up schedule, read and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warmup {
    since: Since,
    per_day: Box<[u32]>,
}

/// Where day 0 is: a calendar date, or the local day an instant falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Since {
    Date(Date),
    Time(Timestamp),
}

impl Warmup {
    /// Reads a schedule: `since` a date (`2026-12-01`) or an RFC 3339
    /// time, `per_day` one limit a day, each 1 or more. The message of an
    /// error names the field (`warmup.since`, `warmup.per_day[2]`).
    pub fn new(since: &str, per_day: &[u32]) -> Result<Warmup, String> {
        let since = match (since.parse::<Date>(), since.parse::<Timestamp>()) {
            (_, Ok(time)) => Since::Time(time),
            (Ok(date), _) => Since::Date(date),
            _ => {
                return Err(format!(
                    "`warmup.since` must be a date (`2026-12-01`) or an RFC 3339 time (`2026-12-01T09:00:00Z`); \
                     got `{since}`"
                ))
            }
        };
        if per_day.is_empty() {
            return Err("`warmup.per_day` is empty; list the day limits, e.g. `[20, 50, 120, 300, 600, 1000]`".into());
        }
        if let Some(at) = per_day.iter().position(|&n| n == 0) {
            return Err(format!("`warmup.per_day[{at}]` is 0; a limit is a whole number, 1 or more"));
        }
        Ok(Warmup { since, per_day: per_day.into() })
    }

    /// The day of the schedule at `now` in `tz` (0 on the day `since`
    /// falls in and before it), and that day's `per_day` limit.
    pub fn at(&self, now: Timestamp, tz: &TimeZone) -> (u64, u32) {
        let start = match self.since {
            Since::Date(date) => date,
            Since::Time(time) => tz.to_datetime(time).date(),
        };
        let today = tz.to_datetime(now).date();
        let day = start.until(today).map_or(0, |span| span.get_days().max(0).unsigned_abs());
        let at = usize::try_from(day).unwrap_or(usize::MAX).min(self.per_day.len() - 1);
        (u64::from(day), self.per_day.get(at).copied().unwrap_or(u32::MAX))
    }

    /// `limits` with the schedule's `per_day` at `now` applied: the smaller
    /// of the two.
    pub fn apply(&self, limits: &Limits, now: Timestamp, tz: &TimeZone) -> Limits {
        let (_, scheduled) = self.at(now, tz);
        Limits { per_day: Some(limits.per_day.map_or(scheduled, |own| own.min(scheduled))), ..*limits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn ny() -> TimeZone {
        crate::capacity::timezone("America/New_York").unwrap()
    }

    const RAMP: [u32; 6] = [20, 50, 120, 300, 600, 1000];

    #[test]
    fn each_local_day_takes_its_limit_and_the_last_holds() {
        let warmup = Warmup::new("2026-12-01", &RAMP).unwrap();
        let tz = ny();
        assert_eq!(warmup.at(ts("2026-12-01T05:00:00Z"), &tz), (0, 20), "midnight in New York");
        assert_eq!(warmup.at(ts("2026-12-02T04:59:59Z"), &tz), (0, 20), "still the 1st locally");
        assert_eq!(warmup.at(ts("2026-12-02T05:00:00Z"), &tz), (1, 50));
        assert_eq!(warmup.at(ts("2026-12-06T15:00:00Z"), &tz), (5, 1000));
        assert_eq!(warmup.at(ts("2027-03-01T15:00:00Z"), &tz), (90, 1000), "the last value from then on");
        assert_eq!(warmup.at(ts("2026-11-20T15:00:00Z"), &tz), (0, 20), "before `since`: day 0");
    }

    #[test]
    fn a_time_starts_on_the_local_day_it_falls_in() {
        // 03:00 UTC on the 2nd is still the 1st in New York.
        let warmup = Warmup::new("2026-12-02T03:00:00Z", &RAMP).unwrap();
        assert_eq!(warmup.at(ts("2026-12-02T06:00:00Z"), &ny()), (1, 50));
        let utc = TimeZone::UTC;
        assert_eq!(warmup.at(ts("2026-12-02T06:00:00Z"), &utc), (0, 20));
    }

    #[test]
    fn the_smaller_of_the_schedule_and_the_own_limit_applies() {
        let warmup = Warmup::new("2026-12-01", &RAMP).unwrap();
        let tz = TimeZone::UTC;
        let own = Limits { per_day: Some(100), per_minute: Some(5), ..Limits::NONE };
        let day1 = warmup.apply(&own, ts("2026-12-02T12:00:00Z"), &tz);
        assert_eq!((day1.per_day, day1.per_minute), (Some(50), Some(5)));
        assert_eq!(warmup.apply(&own, ts("2026-12-09T12:00:00Z"), &tz).per_day, Some(100));
        assert_eq!(warmup.apply(&Limits::NONE, ts("2026-12-09T12:00:00Z"), &tz).per_day, Some(1000));
    }

    #[test]
    fn bad_schedules_are_refused_naming_the_field() {
        assert!(Warmup::new("yesterday", &RAMP).unwrap_err().contains("`warmup.since` must be a date"));
        assert!(Warmup::new("2026-12-01", &[]).unwrap_err().contains("`warmup.per_day` is empty"));
        assert!(Warmup::new("2026-12-01", &[20, 0]).unwrap_err().contains("`warmup.per_day[1]` is 0"));
    }
}
