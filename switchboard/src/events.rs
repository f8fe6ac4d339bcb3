//! Events from the send path (docs/live-state.md): `instance_status`, `delivery` and
//! `inbound`, read and checked against the world in force, then applied to
//! the capacity store of the configuration in force ([`crate::Live::record`]).
//!
//! A body is one event (a JSON object, on one line or several) or JSON
//! Lines; every valid line is applied, in order, even when others are
//! rejected, and each rejected line is reported with its (1-based) number
//! and a message naming what is wrong:
//!
//! ```
//! use switchboard::events::parse_body;
//! let now = "2026-12-07T15:00:00Z".parse().unwrap();
//! let lines = parse_body(
//!     "{\"type\":\"delivery\",\"location\":\"shop\",\"instance\":\"wa-1\",\"status\":\"failed\"}\n{\"type\":\"nap\"}\n",
//!     now,
//! );
//! assert!(lines[0].1.is_ok());
//! assert!(lines[1].1.as_ref().unwrap_err().message.contains("unknown event type `nap`"));
//! ```

use std::time::Duration;

use serde_json::{Map, Value};
use switchboard_core::capacity::jiff::Timestamp;
use switchboard_core::{suggest, World};

/// The event types, as `type` spells them.
pub const TYPES: [&str; 3] = ["instance_status", "delivery", "inbound"];

/// A `delivery` event's `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// The message reached the recipient.
    Delivered,
    /// The message failed.
    Failed,
}

/// What an event says, its fields checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// The instance's `connected` is overridden (`Some`) or the override
    /// cleared (`None`), for `ttl` when given.
    InstanceStatus {
        /// The new `connected`, or `None` (`null`) to clear the override.
        connected: Option<bool>,
        /// Why, as the send path says.
        reason: Option<String>,
        /// How long the override holds.
        ttl: Option<Duration>,
    },
    /// A message sent through the instance was delivered or failed.
    Delivery {
        /// `delivered` or `failed`.
        status: DeliveryStatus,
    },
    /// The contact wrote to the instance on `channel`.
    Inbound {
        /// The channel id.
        channel: String,
        /// The contact id.
        contact: String,
    },
}

impl EventKind {
    /// The event's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::InstanceStatus { .. } => TYPES[0],
            EventKind::Delivery { .. } => TYPES[1],
            EventKind::Inbound { .. } => TYPES[2],
        }
    }
}

/// One event, read: where, when and what, and the event as JSON with its
/// `time` filled in (what the decision log keeps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The location id.
    pub location: String,
    /// The instance id.
    pub instance: String,
    /// The event's `time`, or when it was received.
    pub time: Timestamp,
    /// What it says.
    pub kind: EventKind,
    /// The event object with `time` filled in.
    pub json: Map<String, Value>,
}

/// Why a line was rejected: its type (`unknown` when it cannot be read, for
/// the metrics) and a message naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The event type, or `unknown`.
    pub type_name: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Rejection {
    fn new(type_name: &'static str, message: impl Into<String>) -> Rejection {
        Rejection { type_name, message: message.into() }
    }
}

/// The fields of each type: (name, required).
fn fields(type_name: &str) -> &'static [(&'static str, bool)] {
    match type_name {
        "instance_status" => &[
            ("type", true),
            ("location", true),
            ("instance", true),
            ("connected", true),
            ("reason", false),
            ("ttl", false),
            ("time", false),
        ],
        "delivery" => &[
            ("type", true),
            ("location", true),
            ("instance", true),
            ("status", true),
            ("error", false),
            ("contact", false),
            ("decision_id", false),
            ("message_id", false),
            ("time", false),
        ],
        _ => &[
            ("type", true),
            ("location", true),
            ("channel", true),
            ("instance", true),
            ("contact", true),
            ("time", false),
        ],
    }
}

/// Splits a body into its events: the whole text when it is one JSON
/// object, else one per non-blank line (numbered from 1). Each comes back
/// read, or with why not. `now` is the `time` of events that give none.
pub fn parse_body(text: &str, now: Timestamp) -> Vec<(usize, Result<Event, Rejection>)> {
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) {
        return vec![(1, Event::from_map(map, now))];
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| (n + 1, Event::parse(line, now)))
        .collect()
}

impl Event {
    /// Reads one event from its JSON text.
    pub fn parse(text: &str, now: Timestamp) -> Result<Event, Rejection> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Event::from_map(map, now),
            Ok(_) => Err(Rejection::new("unknown", "an event must be a JSON object with a `type`")),
            Err(e) => Err(Rejection::new("unknown", format!("not JSON: {e}"))),
        }
    }

    /// Reads one event from a JSON object.
    pub fn from_map(mut map: Map<String, Value>, now: Timestamp) -> Result<Event, Rejection> {
        let type_name = match map.get("type") {
            Some(Value::String(t)) => match TYPES.iter().find(|known| **known == t.as_str()) {
                Some(known) => *known,
                None => {
                    let hint =
                        suggest::did_you_mean(t, TYPES).map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
                    return Err(Rejection::new(
                        "unknown",
                        format!("unknown event type `{t}`{hint}; the types are {}", TYPES.join(", ")),
                    ));
                }
            },
            Some(_) => {
                return Err(Rejection::new(
                    "unknown",
                    "`type` must be a string: one of instance_status, delivery, inbound",
                ))
            }
            None => {
                return Err(Rejection::new(
                    "unknown",
                    "missing field `type`: one of instance_status, delivery, inbound",
                ))
            }
        };
        let reject = |message: String| Rejection::new(type_name, format!("{type_name} event: {message}"));
        let known = fields(type_name);
        if let Some(unknown) = map.keys().find(|k| !known.iter().any(|(name, _)| name == k)) {
            let names = known.iter().map(|(n, _)| *n);
            let hint = suggest::did_you_mean(unknown, names.clone())
                .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
            let expected = names.map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            return Err(reject(format!("unknown field `{unknown}`{hint}; expected one of {expected}")));
        }
        if let Some((missing, _)) = known.iter().find(|(name, required)| *required && !map.contains_key(*name)) {
            return Err(reject(format!("missing field `{missing}`")));
        }
        let text = |name: &str| -> Result<Option<String>, Rejection> {
            match map.get(name) {
                None | Some(Value::Null) if !known.iter().any(|(n, required)| *n == name && *required) => Ok(None),
                Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
                Some(Value::String(_)) => Err(reject(format!("`{name}` must not be empty"))),
                Some(other) => Err(reject(format!("`{name}` must be a string; got {}", kind_of(other)))),
                None => Err(reject(format!("missing field `{name}`"))),
            }
        };
        let required = |name: &str| -> Result<String, Rejection> {
            text(name)?.ok_or_else(|| reject(format!("`{name}` must be a string; got null")))
        };
        let location = required("location")?;
        let instance = required("instance")?;
        let time = match map.get("time") {
            None | Some(Value::Null) => now,
            Some(Value::String(s)) => s.parse::<Timestamp>().map_err(|e| {
                reject(format!("`time` must be an RFC 3339 time such as \"2026-12-07T15:04:05Z\"; got {s:?} ({e})"))
            })?,
            Some(other) => {
                return Err(reject(format!("`time` must be an RFC 3339 time (a string); got {}", kind_of(other))))
            }
        };
        let kind = match type_name {
            "instance_status" => {
                let connected = match map.get("connected") {
                    Some(Value::Bool(b)) => Some(*b),
                    Some(Value::Null) => None,
                    Some(other) => {
                        return Err(reject(format!(
                            "`connected` must be true, false or null (null clears the override); got {}",
                            kind_of(other)
                        )))
                    }
                    None => return Err(reject("missing field `connected`".to_owned())),
                };
                let ttl = match text("ttl")? {
                    Some(ttl) => Some(switchboard_rules::conversation::parse_ttl(&ttl).map_err(reject)?),
                    None => None,
                };
                if connected.is_none() && ttl.is_some() {
                    return Err(reject(
                        "`ttl` needs `connected` true or false; a clear (`null`) takes none".to_owned(),
                    ));
                }
                EventKind::InstanceStatus { connected, reason: text("reason")?, ttl }
            }
            "delivery" => {
                let status = match required("status")?.as_str() {
                    "delivered" => DeliveryStatus::Delivered,
                    "failed" => DeliveryStatus::Failed,
                    other => return Err(reject(format!("`status` must be `delivered` or `failed`; got `{other}`"))),
                };
                for optional in ["error", "contact", "decision_id"] {
                    text(optional)?;
                }
                if let Some(id) = text("message_id")? {
                    switchboard_core::checked_message_id(&id).map_err(reject)?;
                }
                EventKind::Delivery { status }
            }
            _ => EventKind::Inbound { channel: required("channel")?, contact: required("contact")? },
        };
        map.insert("time".to_owned(), Value::String(time.to_string()));
        Ok(Event { location, instance, time, kind, json: map })
    }

    /// Checks that the world in force has the event's location and instance
    /// (on the event's channel, for `inbound`).
    pub fn check(&self, world: &World) -> Result<(), Rejection> {
        let type_name = self.kind.type_name();
        let reject = |message: String| Rejection::new(type_name, format!("{type_name} event: {message}"));
        let Some(location) = world.location(&self.location) else {
            return Err(reject(format!("location `{}` is not in the world in force", self.location)));
        };
        let Some(instance) = location.instances().iter().find(|i| i.id() == self.instance) else {
            let hint = suggest::did_you_mean(&self.instance, location.instances().iter().map(|i| i.id()))
                .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
            return Err(reject(format!("location `{}` has no instance `{}`{hint}", self.location, self.instance)));
        };
        if let EventKind::Inbound { channel, .. } = &self.kind {
            if instance.channel() != channel.as_str() {
                return Err(reject(format!(
                    "instance `{}` of location `{}` is on {}, not on `{channel}`",
                    self.instance,
                    self.location,
                    instance.channel()
                )));
            }
        }
        Ok(())
    }

    /// The event as one line of JSON, `time` filled in.
    pub fn to_json(&self) -> String {
        Value::Object(self.json.clone()).to_string()
    }
}

/// `a number`, `an object`, … for messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// What [`crate::Live::record`] did with a body: how many events were
/// accepted, which lines were rejected and why, and the accepted events
/// (for the decision log and the metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The events accepted (stale `instance_status` events included: they
    /// are accepted and change nothing).
    pub accepted: Vec<Event>,
    /// The rejected lines: (line, why).
    pub rejected: Vec<(usize, Rejection)>,
    /// How many quarantines the accepted `delivery` events started.
    pub quarantines: u64,
}

impl Recorded {
    /// The answer of docs/live-state.md: `{"accepted": N, "rejected": [{"line", "message"}]}`.
    pub fn to_json(&self) -> Value {
        let rejected: Vec<Value> =
            self.rejected.iter().map(|(line, r)| serde_json::json!({"line": line, "message": r.message})).collect();
        serde_json::json!({"accepted": self.accepted.len(), "rejected": rejected})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-12-07T15:00:00Z".parse().unwrap()
    }

    fn message(text: &str) -> String {
        Event::parse(text, now()).unwrap_err().message
    }

    #[test]
    fn the_spec_examples_are_read() {
        let status = Event::parse(
            r#"{"type":"instance_status","location":"shop","instance":"wa-1","connected":false,"reason":"logged out","ttl":"30m"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(status.time, now(), "no time: the moment it is received");
        assert_eq!(
            status.kind,
            EventKind::InstanceStatus {
                connected: Some(false),
                reason: Some("logged out".into()),
                ttl: Some(Duration::from_secs(1800))
            }
        );
        assert_eq!(status.json["time"], "2026-12-07T15:00:00Z");
        let delivery = Event::parse(
            r#"{"type":"delivery","location":"shop","instance":"wa-1","status":"failed","error":"131049","contact":"c-7","decision_id":"9c37-12"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(delivery.kind, EventKind::Delivery { status: DeliveryStatus::Failed });
        let inbound = Event::parse(
            r#"{"type":"inbound","location":"shop","channel":"whatsapp","instance":"wa-2","contact":"c-7","time":"2026-12-07T15:04:05Z"}"#,
            now(),
        )
        .unwrap();
        assert_eq!(inbound.time, "2026-12-07T15:04:05Z".parse::<Timestamp>().unwrap());
        let clear = Event::parse(r#"{"type":"instance_status","location":"l","instance":"i","connected":null}"#, now());
        assert_eq!(clear.unwrap().kind, EventKind::InstanceStatus { connected: None, reason: None, ttl: None });
    }

    #[test]
    fn bad_events_are_rejected_naming_what_is_wrong() {
        let cases = [
            (r#"{"type":"nap"}"#, "unknown event type `nap`"),
            (r#"{"type":"delivry"}"#, "(did you mean `delivery`?)"),
            (r#"{"location":"l"}"#, "missing field `type`"),
            (r#"{"type":7}"#, "`type` must be a string"),
            ("[1]", "must be a JSON object"),
            ("{", "not JSON"),
            (r#"{"type":"delivery","location":"l","instance":"i"}"#, "delivery event: missing field `status`"),
            (
                r#"{"type":"delivery","location":"l","instance":"i","status":"lost"}"#,
                "`status` must be `delivered` or `failed`",
            ),
            (
                r#"{"type":"delivery","location":"l","instance":"i","status":"failed","eror":"x"}"#,
                "unknown field `eror` (did you mean `error`?)",
            ),
            (r#"{"type":"instance_status","location":"l","instance":"i"}"#, "missing field `connected`"),
            (
                r#"{"type":"instance_status","location":"l","instance":"i","connected":"no"}"#,
                "`connected` must be true, false or null",
            ),
            (
                r#"{"type":"instance_status","location":"l","instance":"i","connected":false,"ttl":"30x"}"#,
                "`ttl` must be a whole number",
            ),
            (
                r#"{"type":"instance_status","location":"l","instance":"i","connected":null,"ttl":"1m"}"#,
                "a clear (`null`) takes none",
            ),
            (
                r#"{"type":"instance_status","location":7,"instance":"i","connected":true}"#,
                "`location` must be a string; got a number",
            ),
            (
                r#"{"type":"instance_status","location":"l","instance":"i","connected":true,"time":"yesterday"}"#,
                "`time` must be an RFC 3339 time",
            ),
            (
                r#"{"type":"inbound","location":"l","channel":"sms","instance":"i"}"#,
                "inbound event: missing field `contact`",
            ),
            (
                r#"{"type":"inbound","location":"l","channel":"sms","instance":"i","contact":""}"#,
                "`contact` must not be empty",
            ),
        ];
        for (text, needle) in cases {
            let m = message(text);
            assert!(m.contains(needle), "{text}: {m}");
        }
        assert_eq!(Event::parse(r#"{"type":"nap"}"#, now()).unwrap_err().type_name, "unknown");
        assert_eq!(Event::parse(r#"{"type":"delivery"}"#, now()).unwrap_err().type_name, "delivery");
    }

    #[test]
    fn a_body_is_one_event_or_json_lines_numbered_from_one() {
        let pretty = "{\n  \"type\": \"delivery\",\n  \"location\": \"l\",\n  \"instance\": \"i\",\n  \"status\": \"delivered\"\n}\n";
        let one = parse_body(pretty, now());
        assert_eq!(one.len(), 1);
        assert!(one[0].1.is_ok());
        let lines = parse_body("{\"type\":\"nap\"}\n\n{\"type\":\"delivery\",\"location\":\"l\",\"instance\":\"i\",\"status\":\"failed\"}\n", now());
        assert_eq!(lines.iter().map(|(n, r)| (*n, r.is_ok())).collect::<Vec<_>>(), [(1, false), (3, true)]);
    }
}
