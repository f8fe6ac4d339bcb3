//! The data model: instances, contacts and requests as they arrive, and the
//! normalized phone numbers rules compare.

use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::capacity::jiff::Timestamp;
use crate::capacity::{jiff, Limits};
use crate::recipient::{Country, Geo, GeoCell, Phone};
use crate::warmup::Warmup;

/// Reads `T` from a map only. serde's derived struct impls also accept a
/// sequence (fields by position), which would let `["loc", "sms", "hi"]`
/// pass for a request; requests, contacts and instances are JSON objects.
pub struct MapOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for MapOnly<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for MapVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(MapVisitor(PhantomData)).map(MapOnly)
    }
}

fn contact_object<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Contact>, D::Error> {
    Ok(Option::<MapOnly<Contact>>::deserialize(d)?.map(|o| o.0))
}

/// `now`: an RFC 3339 time, or `null`; anything else is refused naming the
/// field.
fn rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
    struct Now;
    impl<'de> Visitor<'de> for Now {
        type Value = Option<Timestamp>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("`now` as an RFC 3339 time such as \"2026-11-25T14:00:00Z\"")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(Now)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            text.parse::<Timestamp>().map(Some).map_err(|e| {
                E::custom(format!(
                    "`now` must be an RFC 3339 time such as \"2026-11-25T14:00:00Z\"; got {text:?} ({e})"
                ))
            })
        }
    }
    d.deserialize_option(Now)
}

fn rfc3339_out<S: serde::Serializer>(now: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match now {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

/// The longest `message_id` a request may carry, in bytes (docs/world.md).
pub const MAX_MESSAGE_ID_BYTES: usize = 256;

/// `message_id`: a string of at most [`MAX_MESSAGE_ID_BYTES`] bytes, or
/// `null`; anything else is refused naming the field.
fn message_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Id;
    impl<'de> Visitor<'de> for Id {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "`message_id` as a string of at most {MAX_MESSAGE_ID_BYTES} bytes")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(Id)
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
            checked_message_id(text).map(|id| Some(id.to_owned())).map_err(E::custom)
        }
    }
    d.deserialize_option(Id)
}

/// `text` when it can be a `message_id` (at most [`MAX_MESSAGE_ID_BYTES`]
/// bytes), else why not, naming the field.
pub fn checked_message_id(text: &str) -> Result<&str, String> {
    if text.len() > MAX_MESSAGE_ID_BYTES {
        return Err(format!(
            "`message_id` is {} bytes; the limit is {MAX_MESSAGE_ID_BYTES}: send a shorter id",
            text.len()
        ));
    }
    Ok(text)
}

/// The `message_id` of a request text that could not be read as a request
/// but is a JSON object with a usable `message_id` string (so that its
/// code-100 decision still carries it).
pub fn salvage_message_id(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct IdOnly {
        #[serde(default)]
        message_id: Option<serde_json::Value>,
    }
    let found = serde_json::from_str::<MapOnly<IdOnly>>(text).ok()?.0.message_id?;
    let id = found.as_str()?;
    checked_message_id(id).ok().map(str::to_owned)
}

fn instance_objects<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<InstanceSpec>>, D::Error> {
    Ok(Option::<Vec<MapOnly<InstanceSpec>>>::deserialize(d)?.map(|v| v.into_iter().map(|o| o.0).collect()))
}

/// One sender instance as written in a world file or carried inline in a
/// request (docs/world.md). [`crate::Location`] compiles these into [`Instance`]s.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSpec {
    /// Stable identifier, unique within its location.
    pub id: String,
    /// The channel id (`whatsapp`, `imessage`, `sms`, or a plugin's).
    pub channel: String,
    /// The N in `{ WA#N }`; omitted for all instances of a channel means
    /// 1, 2, … in file order.
    #[serde(default)]
    pub index: Option<u64>,
    /// The sender's phone number, in any human format.
    #[serde(default)]
    pub phone: String,
    /// Only connected instances are ever selected.
    #[serde(default)]
    pub connected: bool,
    /// The location's default instance for this channel.
    #[serde(default)]
    pub default: bool,
    /// CRM user ids this instance is assigned to.
    #[serde(default)]
    pub users: Vec<String>,
    /// The instance's share for the `weighted` strategy: a whole number from
    /// 1; absent means 1 (docs/capacity.md).
    #[serde(default)]
    pub weight: Option<u32>,
    /// The id of a pool of the same location whose limits this instance also
    /// counts against (docs/capacity.md).
    #[serde(default)]
    pub pool: Option<String>,
    /// The instance's own capacity limits (docs/capacity.md); absent means none.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// How long after the contact's last message to this instance it may
    /// answer free-form (`24h`; docs/recipient-rules.md); absent means no such window.
    #[serde(default)]
    pub reply_window: Option<String>,
    /// A warm-up schedule (docs/live-state.md): the instance's `per_day`
    /// limit day by day since `since`; absent means none.
    #[serde(default)]
    pub warmup: Option<WarmupSpec>,
}

/// A warm-up schedule as written: `{since: 2026-12-01, per_day: [20, 50, …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupSpec {
    /// Day 0: a date, or an RFC 3339 time (the local day it falls in).
    pub since: String,
    /// The `per_day` limit of day 0, 1, …; the last holds from then on.
    pub per_day: Vec<u32>,
}

/// A compiled instance: the spec with its index resolved and its phone
/// number normalized once.
///
/// Compact, since a world holds millions: the channel id, the instance id,
/// the phone as written and its digits share one allocation, and what most
/// instances lack (a pool, limits) costs a pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The channel id, the id, the phone and its digits, end to end.
    text: Box<str>,
    /// Where the channel id, the id and the phone end in `text`.
    ends: [u32; 3],
    pub(crate) weight: u32,
    pub(crate) index: u64,
    pub(crate) connected: bool,
    pub(crate) default: bool,
    /// Nearly always one user: kept inline.
    pub(crate) users: Users,
    pub(crate) pool: Option<Box<str>>,
    limits: Option<Box<Limits>>,
    /// The reply window in seconds (docs/recipient-rules.md).
    pub(crate) reply_window: Option<std::num::NonZeroU32>,
    /// The phone parsed with libphonenumber's metadata, the first time a
    /// rule asks ([`Instance::geo`]); `None` inside when it does not parse.
    geo: GeoCell,
    /// When its quarantine ends, on a location that live state overlaid
    /// (docs/live-state.md); such an instance is also not connected.
    pub(crate) quarantined: Option<Box<Timestamp>>,
    /// Its warm-up schedule, if it has one.
    warmup: Option<Box<Warmup>>,
}

/// An instance's users.
pub type Users = smallvec::SmallVec<[String; 1]>;

/// What [`Instance::new`] needs besides the texts.
pub(crate) struct InstanceParts {
    pub(crate) index: u64,
    pub(crate) connected: bool,
    pub(crate) default: bool,
    pub(crate) users: Users,
    pub(crate) weight: u32,
    pub(crate) pool: Option<Box<str>>,
    pub(crate) limits: Limits,
    pub(crate) reply_window: Option<std::num::NonZeroU32>,
    pub(crate) warmup: Option<Warmup>,
}

impl Instance {
    /// Packs an instance; `None` when its texts are too long to index with
    /// 32 bits (4 GiB).
    pub(crate) fn new(channel: &str, id: &str, phone: &str, parts: InstanceParts) -> Option<Instance> {
        let mut text = String::with_capacity(channel.len() + id.len() + 2 * phone.len());
        text.push_str(channel);
        let channel_end = u32::try_from(text.len()).ok()?;
        text.push_str(id);
        let id_end = u32::try_from(text.len()).ok()?;
        text.push_str(phone);
        let phone_end = u32::try_from(text.len()).ok()?;
        normalize_phone_into(phone, &mut text);
        u32::try_from(text.len()).ok()?;
        let InstanceParts { index, connected, default, users, weight, pool, limits, reply_window, warmup } = parts;
        Some(Instance {
            text: text.into_boxed_str(),
            ends: [channel_end, id_end, phone_end],
            weight,
            index,
            connected,
            default,
            users,
            pool,
            limits: (!limits.is_unlimited()).then(|| Box::new(limits)),
            reply_window,
            geo: GeoCell::default(),
            quarantined: None,
            warmup: warmup.map(Box::new),
        })
    }

    #[inline]
    fn part(&self, from: u32, to: Option<u32>) -> &str {
        let to = to.map_or(self.text.len(), |t| t as usize);
        self.text.get(from as usize..to).unwrap_or_default()
    }

    /// The instance id.
    #[inline]
    pub fn id(&self) -> &str {
        self.part(self.ends[0], Some(self.ends[1]))
    }
    /// The channel id, as registered (lower case).
    #[inline]
    pub fn channel(&self) -> &str {
        self.part(0, Some(self.ends[0]))
    }
    /// [`Instance::channel`]'s bytes (read without a check that the end is
    /// a character boundary, which it is by construction).
    #[inline]
    pub(crate) fn channel_bytes(&self) -> &[u8] {
        self.text.as_bytes().get(..self.ends[0] as usize).unwrap_or_default()
    }
    /// Whether the instance is on `channel` (an id in its exact spelling),
    /// compared as the registry compares channel ids. For the evaluator
    /// (`switchboard-engine`), which checks every rule's choice with it.
    #[doc(hidden)]
    #[inline]
    pub fn is_on_channel(&self, channel: &str) -> bool {
        crate::registry::same_bytes(self.channel_bytes(), channel.as_bytes())
    }
    /// The instance index on its channel (1 is the first).
    #[inline]
    pub fn index(&self) -> u64 {
        self.index
    }
    /// The phone number as written.
    #[inline]
    pub fn phone(&self) -> &str {
        self.part(self.ends[1], Some(self.ends[2]))
    }
    /// The phone number reduced by [`normalize_phone`].
    #[inline]
    pub fn phone_digits(&self) -> &str {
        self.part(self.ends[2], None)
    }
    /// Whether the instance may be selected at all.
    #[inline]
    pub fn is_connected(&self) -> bool {
        self.connected
    }
    /// When the quarantine in force ends, if the instance's health
    /// quarantined it (docs/live-state.md). A quarantined instance is not
    /// [connected](Instance::is_connected): every rule skips it as it skips
    /// a disconnected one, and names it with
    /// [`ErrorKind::unusable`](crate::ErrorKind::unusable) and
    /// [`Instance::unusable_state`].
    #[inline]
    pub fn quarantined_until(&self) -> Option<Timestamp> {
        self.quarantined.as_deref().copied()
    }
    /// Whether the number itself is connected (as the file or an
    /// `instance_status` override says), quarantined or not: what a
    /// WebAssembly rule reads as `connected`, beside `usable`.
    #[inline]
    pub fn is_online(&self) -> bool {
        self.connected || self.quarantined.is_some()
    }
    /// Why an instance that is not connected cannot be used, for messages:
    /// `disconnected`, or `quarantined until <time>`.
    pub fn unusable_state(&self) -> String {
        match self.quarantined_until() {
            Some(until) => format!("quarantined until {until}"),
            None => "disconnected".to_owned(),
        }
    }
    /// Whether this is its location's default on its channel.
    #[inline]
    pub fn is_default(&self) -> bool {
        self.default
    }
    /// Whether the instance has a phone number (`any_available` needs one).
    pub fn has_phone(&self) -> bool {
        // (`!trim().is_empty()`, stopping at the first character that is not
        // whitespace rather than trimming both ends.)
        self.phone().chars().any(|c| !c.is_whitespace())
    }
    /// The CRM users assigned to this instance.
    #[inline]
    pub fn users(&self) -> &[String] {
        &self.users
    }
    /// The instance's weight for the `weighted` strategy (1 unless the
    /// world file says otherwise).
    #[inline]
    pub fn weight(&self) -> u32 {
        self.weight
    }
    /// The id of the pool this instance counts against, if any.
    #[inline]
    pub fn pool(&self) -> Option<&str> {
        self.pool.as_deref()
    }
    /// Whether a capacity store may have to count this instance: it has
    /// limits of its own or counts against a pool's.
    /// (Public for the evaluator, `switchboard-engine`, which asks the
    /// store only about such instances.)
    #[doc(hidden)]
    #[inline]
    pub fn may_be_limited(&self) -> bool {
        self.limits.is_some() || self.pool.is_some() || self.warmup.is_some()
    }
    /// The instance's own capacity limits as the world file writes them
    /// ([`Limits::NONE`] when it has none); [`Instance::limits_at`] adds
    /// the warm-up schedule.
    #[inline]
    pub fn limits(&self) -> &Limits {
        self.limits.as_deref().unwrap_or(&Limits::NONE)
    }
    /// The limits in force at `now` in the location's timezone `tz`: its
    /// own, with the warm-up schedule's `per_day` of that day when smaller
    /// (docs/live-state.md).
    #[inline]
    pub fn limits_at(&self, now: Timestamp, tz: &jiff::tz::TimeZone) -> Limits {
        match &self.warmup {
            None => *self.limits(),
            Some(warmup) => warmup.apply(self.limits(), now, tz),
        }
    }
    /// Whether it has limits of its own: `limits`, or a warm-up schedule.
    #[inline]
    pub fn has_own_limits(&self) -> bool {
        !self.limits().is_unlimited() || self.warmup.is_some()
    }
    /// Its warm-up schedule, if it has one.
    #[inline]
    pub fn warmup(&self) -> Option<&Warmup> {
        self.warmup.as_deref()
    }
    /// The instance's reply window (docs/recipient-rules.md), if it has one.
    #[inline]
    pub fn reply_window(&self) -> Option<std::time::Duration> {
        self.reply_window.map(|s| std::time::Duration::from_secs(u64::from(s.get())))
    }
    /// Where the instance's phone number is (calling code, area code,
    /// region), parsed with libphonenumber's metadata once, the first time
    /// it is asked, and kept: `country` (the location's) reads a number in
    /// national format. `None` when the instance has no phone or it does
    /// not parse.
    pub fn geo(&self, country: Option<Country>) -> Option<Geo> {
        *self.geo.0.get_or_init(|| {
            if !self.has_phone() {
                return None;
            }
            Phone::parse(self.phone(), country).ok().map(|p| p.geo())
        })
    }
    /// A short human label: `wa-support (#2, +1 555 SUPPORT)`.
    pub fn label(&self) -> String {
        if self.has_phone() {
            format!("{} (#{}, {})", self.id(), self.index, self.phone())
        } else {
            format!("{} (#{}, no phone)", self.id(), self.index)
        }
    }
}

/// The recipient of a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// The CRM contact id (the `sticky` strategy hashes it).
    #[serde(default)]
    pub id: Option<String>,
    /// The contact's tags, in CRM order.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The CRM user the contact is assigned to.
    #[serde(default)]
    pub assigned_user: Option<String>,
    /// The contact's phone number: E.164, or national digits when the
    /// location has a `country` (docs/recipient-rules.md). One that does not parse is not
    /// an invalid request: the rules that need it say so in the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The contact's IANA timezone (`America/New_York`; docs/recipient-rules.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// One outbound message to route (docs/world.md).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The CRM location (sub-account) sending the message.
    pub location: String,
    /// The channel id the message is sent on.
    pub channel: String,
    /// The message body, patterns included.
    pub body: String,
    /// The recipient, when known.
    #[serde(default, deserialize_with = "contact_object")]
    pub contact: Option<Contact>,
    /// The location's instances for this request alone; when present the
    /// world file is not consulted for this location.
    #[serde(default, deserialize_with = "instance_objects")]
    pub instances: Option<Vec<InstanceSpec>>,
    /// Decide as of this time instead of the clock (docs/capacity.md): RFC 3339 in
    /// JSON, such as `"2026-11-25T14:00:00Z"`.
    #[serde(
        default,
        deserialize_with = "rfc3339",
        serialize_with = "rfc3339_out",
        skip_serializing_if = "Option::is_none"
    )]
    pub now: Option<Timestamp>,
    /// The caller's own id for the message (docs/world.md): at most 256 bytes;
    /// the decision (and its decision-log line) carries it back.
    #[serde(default, deserialize_with = "message_id", skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

impl Request {
    /// Parses one request from a JSON text: one JSON object.
    pub fn from_json(text: &str) -> Result<Request, serde_json::Error> {
        serde_json::from_str::<MapOnly<Request>>(text).map(|o| o.0)
    }

    /// The contact's id when the request has a non-empty one: the key of
    /// `sticky`/`weighted` hashing, of `contacts_per_day` and of
    /// conversation memory.
    #[inline]
    pub fn contact_id(&self) -> Option<&str> {
        self.contact.as_ref().and_then(|c| c.id.as_deref()).filter(|id| !id.is_empty())
    }
}

/// The phone-keypad digit of an ASCII letter (`ABC`→2 … `WXYZ`→9).
fn keypad_digit(letter: u8) -> Option<u8> {
    Some(match letter.to_ascii_uppercase() {
        b'A'..=b'C' => b'2',
        b'D'..=b'F' => b'3',
        b'G'..=b'I' => b'4',
        b'J'..=b'L' => b'5',
        b'M'..=b'O' => b'6',
        b'P'..=b'S' => b'7',
        b'T'..=b'V' => b'8',
        b'W'..=b'Z' => b'9',
        _ => return None,
    })
}

/// Appends the normalized digits of `raw` to `out`: letters become their
/// phone-keypad digits, every other non-digit is dropped.
///
/// ```
/// let mut out = String::new();
/// switchboard_core::normalize_phone_into("+1-555-ORDERS", &mut out);
/// assert_eq!(out, "1555673377");
/// ```
pub fn normalize_phone_into(raw: &str, out: &mut String) {
    for b in raw.bytes() {
        if b.is_ascii_digit() {
            out.push(char::from(b));
        } else if let Some(d) = keypad_digit(b) {
            out.push(char::from(d));
        }
    }
}

/// The normalized digits of a phone number (see [`normalize_phone_into`]).
///
/// ```
/// assert_eq!(switchboard_core::normalize_phone("+1 555 SUPPORT"), "15557877678");
/// assert_eq!(switchboard_core::normalize_phone("n/a!"), "62");
/// ```
pub fn normalize_phone(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    normalize_phone_into(raw, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypad_letters_map_to_digits() {
        assert_eq!(normalize_phone("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), "22233344455566677778889999");
        assert_eq!(normalize_phone("abc xyz"), "222999");
    }

    #[test]
    fn punctuation_and_spaces_are_dropped() {
        assert_eq!(normalize_phone("+1 (555) 673-377"), "1555673377");
        assert_eq!(normalize_phone("  --  "), "");
    }

    #[test]
    fn requests_contacts_and_instances_must_be_objects() {
        let ok = r#"{"location":"l","channel":"sms","body":"x","contact":{"id":"c"},"instances":[{"id":"a","channel":"sms"}]}"#;
        assert!(Request::from_json(ok).is_ok());
        for bad in [
            r#"["l","sms","x"]"#,
            r#"{"location":"l","channel":"sms","body":"x","contact":["c",["vip"],null]}"#,
            r#"{"location":"l","channel":"sms","body":"x","instances":[["a","sms"]]}"#,
        ] {
            let e = Request::from_json(bad).unwrap_err().to_string();
            assert!(e.contains("expected a JSON object"), "{bad}: {e}");
        }
    }

    #[test]
    fn message_id_is_a_short_string() {
        let with = |id: &str| format!(r#"{{"location":"l","channel":"sms","body":"x","message_id":{id}}}"#);
        let r = Request::from_json(&with("\"m-1\"")).unwrap();
        assert_eq!(r.message_id.as_deref(), Some("m-1"));
        assert_eq!(Request::from_json(&with("null")).unwrap().message_id, None);
        let longest = "x".repeat(MAX_MESSAGE_ID_BYTES);
        assert!(Request::from_json(&with(&format!("\"{longest}\""))).is_ok());
        let e = Request::from_json(&with(&format!("\"{longest}y\""))).unwrap_err().to_string();
        assert!(e.contains("`message_id` is 257 bytes; the limit is 256"), "{e}");
        let e = Request::from_json(&with("12")).unwrap_err().to_string();
        assert!(e.contains("`message_id` as a string"), "{e}");
    }

    #[test]
    fn a_message_id_is_salvaged_from_a_request_that_cannot_be_read() {
        assert_eq!(salvage_message_id(r#"{"message_id":"m-9","location":3}"#).as_deref(), Some("m-9"));
        assert_eq!(salvage_message_id(r#"{"message_id":7}"#), None);
        assert_eq!(salvage_message_id(&format!(r#"{{"message_id":"{}"}}"#, "x".repeat(257))), None);
        assert_eq!(salvage_message_id("not json"), None);
    }

    #[test]
    fn spec_example_orders_matches() {
        assert_eq!(normalize_phone("+1-555-ORDERS"), normalize_phone("+1555673377"));
    }
}
