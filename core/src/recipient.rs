//! What the recipient-aware rules read (docs/recipient-rules.md): phone numbers parsed
//! with libphonenumber's metadata (the `phonenumber` crate), countries,
//! durations, and the source of a contact's last inbound message.
//!
//! Parsing a number with libphonenumber's metadata costs microseconds, so
//! an instance's number is parsed once, the first time a rule asks for it,
//! and kept on the instance ([`crate::Instance::geo`]); a world of a million
//! instances loads no slower for it, and a world whose chains never ask
//! pays nothing.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHasher};

use phonenumber::country::Id;

use crate::capacity::jiff::Timestamp;
use crate::capacity::{ConversationKey, StoreError};

pub use phonenumber::country::Id as Country;

/// The calling code of the North American Numbering Plan, whose national
/// numbers begin with a three-digit area code.
pub const NANP: u16 = 1;

/// Reads an ISO 3166 alpha-2 country code (`US`, `gb`), as libphonenumber's
/// metadata knows it.
pub fn parse_country(text: &str) -> Result<Country, String> {
    let code = text.trim().to_ascii_uppercase();
    if code.len() == 2 {
        if let Ok(id) = code.parse::<Id>() {
            return Ok(id);
        }
    }
    Err(format!("`country` must be an ISO 3166 alpha-2 country code such as `US`, `GB` or `DE`; got `{text}`"))
}

/// Where a parsed number is: its calling code, its area code when it is a
/// North American number, and its region (the country libphonenumber's
/// metadata places it in, when it can).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geo {
    /// The country calling code (`1`, `44`, …).
    pub calling_code: u16,
    /// For a North American (+1) number of ten national digits, the first
    /// three of them; `None` otherwise.
    pub area_code: Option<u16>,
    /// The region, when the metadata places the number in one.
    pub region: Option<Country>,
}

impl Geo {
    /// The area code as written: three digits.
    pub fn area_text(&self) -> Option<String> {
        self.area_code.map(|a| format!("{a:03}"))
    }
}

/// An instance's [`Geo`], worked out once. A cache, not part of the
/// instance's value: two instances equal but for it are equal, and it is
/// not shown.
#[derive(Clone, Default)]
pub(crate) struct GeoCell(pub(crate) std::sync::OnceLock<Option<Geo>>);

impl PartialEq for GeoCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for GeoCell {}

impl fmt::Debug for GeoCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("_")
    }
}

/// A phone number parsed with libphonenumber's metadata.
#[derive(Debug, Clone)]
pub struct Phone {
    number: phonenumber::PhoneNumber,
}

/// Why a phone number could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneError {
    text: String,
    reason: String,
}

impl fmt::Display for PhoneError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "phone `{}` does not parse ({})", self.text, self.reason)
    }
}

impl std::error::Error for PhoneError {}

impl Phone {
    /// Parses `text`: an international number (`+1 212 555 0101`), or, with
    /// `country`, one in that country's national format (`(212) 555-0101`,
    /// `020 7946 0958`). An international number is read as such whatever
    /// `country` says.
    pub fn parse(text: &str, country: Option<Country>) -> Result<Phone, PhoneError> {
        let error = |e: phonenumber::ParseError| PhoneError { text: text.to_owned(), reason: e.to_string() };
        // Read without a country first: given one, the crate also applies
        // that country's national prefix to an international number.
        match phonenumber::parse(None, text) {
            Ok(number) => Ok(Phone { number }),
            Err(first) => match country {
                Some(country) => phonenumber::parse(Some(country), text).map(|number| Phone { number }).map_err(error),
                None => Err(error(first)),
            },
        }
    }

    /// The country calling code.
    pub fn calling_code(&self) -> u16 {
        self.number.code().value()
    }

    /// The area code of a North American number of ten national digits.
    pub fn area_code(&self) -> Option<u16> {
        let national = self.number.national().value();
        (self.calling_code() == NANP && (1_000_000_000..10_000_000_000).contains(&national))
            .then(|| u16::try_from(national / 10_000_000).ok())
            .flatten()
    }

    /// The region the metadata places the number in (microseconds: asked
    /// only when needed).
    pub fn region(&self) -> Option<Country> {
        self.number.country().id()
    }

    /// All of [`Geo`] at once.
    pub fn geo(&self) -> Geo {
        Geo { calling_code: self.calling_code(), area_code: self.area_code(), region: self.region() }
    }
}

/// Parsed contact numbers, kept: parsing one with libphonenumber's
/// metadata costs microseconds, and a CRM writes to the same contacts again
/// and again. Bounded (each of its shards is emptied when it fills up), and
/// shared by every thread (the shards are locked apart).
pub struct PhoneCache {
    shards: Box<[Mutex<Shard>]>,
}

type Shard = FxHashMap<Box<str>, (Option<Country>, Result<Geo, PhoneError>)>;

/// Shards of a [`PhoneCache`], and numbers kept per shard.
const SHARDS: usize = 64;
const PER_SHARD: usize = 1024;

impl Default for PhoneCache {
    fn default() -> PhoneCache {
        PhoneCache { shards: (0..SHARDS).map(|_| Mutex::default()).collect() }
    }
}

impl fmt::Debug for PhoneCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneCache")
    }
}

impl PhoneCache {
    /// Where `text` is, as [`Phone::parse`] with `country` and then
    /// [`Phone::geo`] say, from the cache when it was asked before.
    pub fn geo(&self, text: &str, country: Option<Country>) -> Result<Geo, PhoneError> {
        let mut h = FxHasher::default();
        text.hash(&mut h);
        let shard = self.shards.get(h.finish() as usize % SHARDS);
        let lock = || shard.map(|s| s.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        if let Some(map) = lock() {
            if let Some((c, found)) = map.get(text) {
                if *c == country {
                    return found.clone();
                }
            }
        }
        let found = Phone::parse(text, country).map(|p| p.geo());
        if let Some(mut map) = lock() {
            if map.len() >= PER_SHARD {
                map.clear();
            }
            map.insert(text.into(), (country, found.clone()));
        }
        found
    }
}

/// Reads a duration: a whole number followed by one unit, `s`, `m`, `h` or
/// `d` (`90s`, `30m`, `24h`, `7d`). `0` (with or without a unit) is allowed
/// only with `zero_ok`. `field` names the option in messages.
pub fn parse_duration(text: &str, field: &str, zero_ok: bool) -> Result<Duration, String> {
    let text = text.trim();
    let problem = || {
        format!(
            "`{field}` must be a whole number followed by a unit s, m, h or d (e.g. `30m`, `24h`, `7d`); got `{text}`"
        )
    };
    if zero_ok && text == "0" {
        return Ok(Duration::ZERO);
    }
    let unit = text.chars().last().ok_or_else(problem)?;
    let seconds: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return Err(problem()),
    };
    let digits = &text[..text.len() - 1];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem());
    }
    let n: u64 = digits.parse().map_err(|_| problem())?;
    if n == 0 && !zero_ok {
        return Err(format!("`{field}` must be at least 1{unit}; got `{text}`"));
    }
    match n.checked_mul(seconds) {
        Some(s) if s <= u64::from(u32::MAX) => Ok(Duration::from_secs(s)),
        _ => Err(format!("`{field}` `{text}` is too long; give at most a few years in days (e.g. `365d`)")),
    }
}

/// `7d`, `24h`, `30m`, `90s`: the largest unit that divides `d`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    [(86_400, 'd'), (3_600, 'h'), (60, 'm')]
        .into_iter()
        .find(|(unit, _)| s > 0 && s.is_multiple_of(*unit))
        .map_or_else(|| format!("{s}s"), |(unit, letter)| format!("{}{letter}", s / unit))
}

/// A contact's last inbound message on a channel of a location (an
/// `inbound` event, docs/live-state.md): which instance it wrote to, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastInbound {
    /// The instance id the contact wrote to.
    pub instance: String,
    /// When.
    pub time: Timestamp,
}

/// Where rules read the time of a contact's last inbound message (the
/// `send_window` exemption and reply windows, docs/recipient-rules.md).
///
/// A separate trait, not a method of the capacity store, so that a rule
/// depends only on this one question, and a host or a test can answer it
/// from anything that records inbound events. The evaluator answers it from
/// the plan's capacity store ([`StoreInbound`]), where `inbound` events are
/// kept; a plan without a store hands rules none, and
/// [`crate::RuleContext::last_inbound`] then answers [`Inbound::NoSource`].
pub trait InboundLog: Send + Sync {
    /// The contact's last inbound message on this (location, channel).
    fn last_inbound(&self, key: &ConversationKey<'_>) -> Result<Option<LastInbound>, StoreError>;
}

/// A capacity store as an [`InboundLog`]: the store keeps the last inbound
/// message of every contact ([`crate::CapacityStore::last_inbound`]).
#[derive(Clone, Copy)]
pub struct StoreInbound<'a>(pub &'a dyn crate::CapacityStore);

impl InboundLog for StoreInbound<'_> {
    fn last_inbound(&self, key: &ConversationKey<'_>) -> Result<Option<LastInbound>, StoreError> {
        Ok(self.0.last_inbound(key)?.map(|(instance, time)| LastInbound { instance, time }))
    }
}

/// What [`crate::RuleContext::last_inbound`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// No inbound source behind this context: nothing is known.
    NoSource,
    /// The request has no contact id to look up.
    NoContact,
    /// The contact never wrote in on this channel (as far as the source
    /// remembers).
    Never,
    /// The contact's last inbound message.
    Last(LastInbound),
    /// The source cannot answer.
    Unavailable(StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_are_iso_alpha_2_in_any_case() {
        assert_eq!(parse_country("US"), Ok(Id::US));
        assert_eq!(parse_country(" gb "), Ok(Id::GB));
        for bad in ["USA", "XX", "", "U", "12"] {
            let e = parse_country(bad).unwrap_err();
            assert!(e.contains("ISO 3166 alpha-2"), "{bad}: {e}");
        }
    }

    #[test]
    fn north_american_numbers_have_an_area_code() {
        let p = Phone::parse("+1 (646) 555-0101", None).unwrap();
        assert_eq!((p.calling_code(), p.area_code(), p.region()), (1, Some(646), Some(Id::US)));
        let toronto = Phone::parse("+1 416 555 0101", None).unwrap().geo();
        assert_eq!(toronto, Geo { calling_code: 1, area_code: Some(416), region: Some(Id::CA) });
        assert_eq!(toronto.area_text().as_deref(), Some("416"));
        let london = Phone::parse("+44 20 7946 0958", None).unwrap().geo();
        assert_eq!(london, Geo { calling_code: 44, area_code: None, region: Some(Id::GB) });
        // Too few national digits for an area code.
        assert_eq!(Phone::parse("+1 555 0101", None).unwrap().area_code(), None);
    }

    #[test]
    fn national_numbers_need_the_country() {
        assert!(Phone::parse("(212) 555-0101", None).is_err());
        let p = Phone::parse("(212) 555-0101", Some(Id::US)).unwrap();
        assert_eq!((p.calling_code(), p.area_code()), (1, Some(212)));
        let uk = Phone::parse("020 7946 0958", Some(Id::GB)).unwrap();
        assert_eq!((uk.calling_code(), uk.region()), (44, Some(Id::GB)));
        // An international number keeps its own country.
        let fr = Phone::parse("+33 1 42 68 53 00", Some(Id::US)).unwrap();
        assert_eq!((fr.calling_code(), fr.region()), (33, Some(Id::FR)));
        let e = Phone::parse("call me", Some(Id::US)).unwrap_err().to_string();
        assert!(e.starts_with("phone `call me` does not parse"), "{e}");
    }

    #[test]
    fn the_cache_answers_as_the_parser_does() {
        let cache = PhoneCache::default();
        for (text, country) in
            [("+1 646 555 0101", None), ("(646) 555-0101", Some(Id::US)), ("(646) 555-0101", None), ("x", None)]
        {
            let direct = Phone::parse(text, country).map(|p| p.geo());
            assert_eq!(cache.geo(text, country), direct, "{text}");
            assert_eq!(cache.geo(text, country), direct, "{text}, cached");
        }
        for n in 0..(3 * SHARDS * PER_SHARD / 2) {
            let text = format!("+1 212 555 {:04}", n % 10_000);
            assert_eq!(cache.geo(&text, None).map(|g| g.area_code), Ok(Some(212)));
        }
        assert!(cache.shards.iter().all(|s| s.lock().unwrap().len() <= PER_SHARD));
    }

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("24h", "x", false), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("90s", "x", false), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0", "x", true), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0h", "x", true), Ok(Duration::ZERO));
        assert!(parse_duration("0h", "x", false).unwrap_err().contains("at least 1h"));
        for bad in ["", "h", "24", "1.5h", "-1h", "24 h", "1w", "99999999999d"] {
            assert!(parse_duration(bad, "reply_window", false).unwrap_err().contains("reply_window"), "{bad}");
        }
        assert_eq!(human_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(human_duration(Duration::from_secs(90)), "90s");
    }
}
