//! Example plugin rule `business_hours` (code 1001): outside a weekly
//! window, route to a configured "after hours" instance; inside it, answer
//! `no_match` so the rest of the chain decides.
//!
//! ```yaml
//! plugins:
//!   - path: target/release/libswitchboard_business_hours.so
//! rules:
//!   - manual_override
//!   - rule: business_hours
//!     open: "09:00"            # HH:MM, inclusive
//!     close: "17:30"           # HH:MM, exclusive
//!     days: [mon, tue, wed, thu, fri]
//!     utc_offset_minutes: -300 # the location's time zone
//!     after_hours_instance: 3  # the index that answers outside the window
//!   - default_instance
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use switchboard_plugin_sdk::{
    export_plugin, Answer, Context, OnUnavailable, OptionKind, OptionSpec, Options, Rule, RuleSpec,
};

const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// The rule with its window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// Minutes after midnight the window opens (inclusive).
    pub open: u32,
    /// Minutes after midnight it closes (exclusive).
    pub close: u32,
    /// Open days, 0 = Sunday.
    pub days: [bool; 7],
    /// The location's offset from UTC.
    pub utc_offset_minutes: i64,
    /// The instance index used outside the window.
    pub after_hours_instance: u64,
}

fn parse_time(name: &str, text: &str) -> Result<u32, String> {
    let bad = || format!("`{name}` must be a time HH:MM between 00:00 and 24:00; got `{text}`");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h * 60 + m > 24 * 60 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl BusinessHours {
    /// Builds the rule from rules.yaml options.
    pub fn from_options(options: &Options<'_>) -> Result<BusinessHours, String> {
        let open = parse_time("open", options.str("open").unwrap_or("09:00"))?;
        let close = parse_time("close", options.str("close").unwrap_or("17:00"))?;
        let mut days = [false; 7];
        let listed = options.list("days").unwrap_or_else(|| vec!["mon", "tue", "wed", "thu", "fri"]);
        for day in listed {
            let n = DAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day))
                .ok_or_else(|| format!("`days` takes sun, mon, tue, wed, thu, fri, sat; got `{day}`"))?;
            days[n] = true;
        }
        let after_hours_instance =
            match options.int("after_hours_instance") {
                Some(n) if n >= 1 => n as u64,
                Some(n) => return Err(format!("`after_hours_instance` must be an index, 1 or more; got {n}")),
                None => return Err(
                    "`after_hours_instance` is required: the index of the instance that answers outside business hours"
                        .into(),
                ),
            };
        let utc_offset_minutes = options.int("utc_offset_minutes").unwrap_or(0);
        if utc_offset_minutes.abs() > 14 * 60 {
            return Err(format!("`utc_offset_minutes` must be within ±840; got {utc_offset_minutes}"));
        }
        Ok(BusinessHours { open, close, days, utc_offset_minutes, after_hours_instance })
    }

    /// Whether the window is open at this Unix time (seconds).
    pub fn is_open_at(&self, unix_seconds: i64) -> bool {
        let local_minutes = unix_seconds.div_euclid(60) + self.utc_offset_minutes;
        let day = local_minutes.div_euclid(24 * 60);
        let minute = local_minutes.rem_euclid(24 * 60) as u32;
        let weekday = (day + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        self.days[weekday] && minute >= self.open && minute < self.close
    }
}

impl Rule for BusinessHours {
    fn evaluate(&self, cx: &Context<'_>) -> Answer {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        if self.is_open_at(now) {
            return Answer::NoMatch;
        }
        let index = self.after_hours_instance;
        match cx.instance_by_index(index) {
            Some(i) if i.connected => Answer::Selected(index),
            Some(i) => Answer::Unusable {
                kind: "instance_disconnected".into(),
                message: format!(
                    "the after-hours {} instance {} (#{index}) is disconnected; reconnect it",
                    cx.channel(),
                    i.id
                ),
            },
            None => Answer::Unusable {
                kind: "instance_not_found".into(),
                message: format!(
                    "business_hours routes to {} instance #{index} after hours, but location `{}` has none",
                    cx.channel(),
                    cx.location()
                ),
            },
        }
    }
}

/// The descriptor (also used by the plugin's own tests).
pub const SPEC: RuleSpec = RuleSpec {
    id: "business_hours",
    summary: "outside the weekly business window, route to the after-hours instance",
    code: 1001,
    on_unavailable: OnUnavailable::Error,
    options: &[
        OptionSpec { name: "open", kind: OptionKind::String, default: "09:00", doc: "opening time, HH:MM (inclusive)" },
        OptionSpec {
            name: "close",
            kind: OptionKind::String,
            default: "17:00",
            doc: "closing time, HH:MM (exclusive)",
        },
        OptionSpec {
            name: "days",
            kind: OptionKind::StringList,
            default: "[mon, tue, wed, thu, fri]",
            doc: "open days",
        },
        OptionSpec {
            name: "utc_offset_minutes",
            kind: OptionKind::Integer,
            default: "0",
            doc: "the location's UTC offset",
        },
        OptionSpec {
            name: "after_hours_instance",
            kind: OptionKind::Integer,
            default: "(required)",
            doc: "index used outside the window",
        },
    ],
    build: |options| Ok(Box::new(BusinessHours::from_options(options)?)),
};

export_plugin! {
    name: "business-hours",
    version: env!("CARGO_PKG_VERSION"),
    rules: [SPEC],
    channels: [],
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(open: u32, close: u32, days: [bool; 7], offset: i64) -> BusinessHours {
        BusinessHours { open, close, days, utc_offset_minutes: offset, after_hours_instance: 1 }
    }

    #[test]
    fn window_by_weekday_and_time() {
        let weekdays = [false, true, true, true, true, true, false];
        let r = rule(9 * 60, 17 * 60, weekdays, 0);
        // 2026-11-24 is a Tuesday; 1_795_996_800 is 00:00 UTC that day.
        let tuesday = 1_795_996_800;
        assert!(!r.is_open_at(tuesday + 8 * 3600 + 59 * 60));
        assert!(r.is_open_at(tuesday + 9 * 3600));
        assert!(r.is_open_at(tuesday + 16 * 3600 + 59 * 60));
        assert!(!r.is_open_at(tuesday + 17 * 3600));
        // Sunday is closed all day.
        assert!(!r.is_open_at(tuesday - 2 * 86400 + 12 * 3600));
    }

    #[test]
    fn utc_offset_shifts_the_window() {
        let every_day = [true; 7];
        let new_york = rule(9 * 60, 17 * 60, every_day, -300);
        let tuesday = 1_795_996_800;
        assert!(!new_york.is_open_at(tuesday + 9 * 3600), "09:00 UTC is 04:00 in New York");
        assert!(new_york.is_open_at(tuesday + 14 * 3600), "14:00 UTC is 09:00 in New York");
    }

    #[test]
    fn times_are_validated() {
        assert_eq!(parse_time("open", "09:30"), Ok(570));
        assert_eq!(parse_time("close", "24:00"), Ok(1440));
        assert!(parse_time("open", "9").is_err());
        assert!(parse_time("open", "25:00").is_err());
        assert!(parse_time("open", "10:60").is_err());
    }
}
