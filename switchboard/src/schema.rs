//! JSON Schemas (draft 2020-12) of rules.yaml and of the world file, for
//! editors (`# yaml-language-server: $schema=...`), generated — never
//! written by hand — from the registry (each rule's options with their
//! types, defaults and docs, plugins included) and from [`WORLD`], the
//! declarative description of the world file that the tests hold against
//! the world loader.
//!
//! A schema checks a file's shape: keys, types, allowed words. What needs
//! the whole file (unique indexes, one default per channel, a rule listed
//! twice) is left to `switchboard check`, which reports it with its line.

use serde_json::{json, Map, Value};

use crate::{InputLimits, OptionKind, OptionSpec, Registry, RuleInfo};

/// The `$schema` of every generated schema.
pub const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The type of a field of a data file.
#[derive(Debug, Clone, Copy)]
pub enum FieldType {
    /// Any string.
    Text,
    /// A string with a non-blank character.
    NonBlankText,
    /// A whole number from 1, or `null` (the same as absent).
    OptionalPositiveInteger,
    /// `true` or `false`.
    Bool,
    /// A list of strings.
    TextList,
    /// A registered channel id (compared case-insensitively).
    Channel,
    /// A list of maps of this shape.
    List(&'static Shape),
    /// A map of this shape, or `null` (the same as absent).
    Map(&'static Shape),
    /// An IANA timezone name (the loader checks the name).
    TimeZone,
    /// The id of a pool of the same location (the loader checks it names
    /// one).
    PoolId,
    /// A duration: a whole number from 1 and a unit `s`, `m`, `h` or `d`,
    /// or `null` (the same as absent).
    Duration,
    /// An ISO 3166 alpha-2 country code, in any letter case (the loader
    /// checks the code), or `null` (the same as absent).
    Country,
    /// A warm-up schedule: `since` (a date or an RFC 3339 time) and
    /// `per_day` (a list of day limits, each 1 or more), or `null`.
    Warmup,
}

/// One key of a map in a data file.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The key.
    pub name: &'static str,
    /// Its value's type.
    pub ty: FieldType,
    /// Whether the map must have it.
    pub required: bool,
    /// The value used when it is absent, as JSON text.
    pub default: Option<&'static str>,
    /// One line for a person.
    pub doc: &'static str,
}

/// A map with a closed set of keys.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// What the map is.
    pub title: &'static str,
    /// Its keys.
    pub fields: &'static [Field],
}

/// An instance of a world file (and of a request's inline `instances`).
pub const INSTANCE: Shape = Shape {
    title: "an instance: one sender on one channel",
    fields: &[
        Field {
            name: "id",
            ty: FieldType::NonBlankText,
            required: true,
            default: None,
            doc: "stable identifier, unique within its location",
        },
        Field {
            name: "channel",
            ty: FieldType::Channel,
            required: true,
            default: None,
            doc: "the channel id (built-in or a plugin's)",
        },
        Field {
            name: "index",
            ty: FieldType::OptionalPositiveInteger,
            required: false,
            default: None,
            doc: "the N in { WA#N }, unique per location and channel; omit it for all instances of a channel to number them 1, 2, … in file order",
        },
        Field {
            name: "phone",
            ty: FieldType::Text,
            required: false,
            default: Some("\"\""),
            doc: "the sender's number in any format; letters map to keypad digits",
        },
        Field {
            name: "connected",
            ty: FieldType::Bool,
            required: false,
            default: Some("false"),
            doc: "only connected instances are ever selected",
        },
        Field {
            name: "default",
            ty: FieldType::Bool,
            required: false,
            default: Some("false"),
            doc: "the location's default on this channel (at most one per channel)",
        },
        Field {
            name: "users",
            ty: FieldType::TextList,
            required: false,
            default: Some("[]"),
            doc: "CRM user ids this instance is assigned to",
        },
        Field {
            name: "weight",
            ty: FieldType::OptionalPositiveInteger,
            required: false,
            default: Some("1"),
            doc: "the instance's share for the `weighted` strategy",
        },
        Field {
            name: "pool",
            ty: FieldType::PoolId,
            required: false,
            default: None,
            doc: "a pool of this location whose limits this instance also counts against",
        },
        Field {
            name: "limits",
            ty: FieldType::Map(&LIMITS),
            required: false,
            default: None,
            doc: "the instance's own capacity limits (calendar windows of the location's timezone)",
        },
        Field {
            name: "reply_window",
            ty: FieldType::Duration,
            required: false,
            default: None,
            doc: "how long after the contact's last message to this instance it may answer free-form (WhatsApp Business: 24h)",
        },
        Field {
            name: "warmup",
            ty: FieldType::Warmup,
            required: false,
            default: None,
            doc: "a warm-up schedule: the per_day limit on each local day since `since` (the smaller of it and limits.per_day applies)",
        },
    ],
};

/// Capacity limits of an instance or a pool (docs/capacity.md); every limit is
/// optional.
pub const LIMITS: Shape = Shape {
    title: "capacity limits, counted in calendar windows of the location's timezone",
    fields: &[
        Field {
            name: "per_minute",
            ty: FieldType::OptionalPositiveInteger,
            required: false,
            default: None,
            doc: "decisions per calendar minute",
        },
        Field {
            name: "per_hour",
            ty: FieldType::OptionalPositiveInteger,
            required: false,
            default: None,
            doc: "decisions per calendar hour",
        },
        Field {
            name: "per_day",
            ty: FieldType::OptionalPositiveInteger,
            required: false,
            default: None,
            doc: "decisions per calendar day",
        },
        Field {
            name: "contacts_per_day",
            ty: FieldType::OptionalPositiveInteger,
            required: false,
            default: None,
            doc: "distinct contacts per calendar day (a contact already messaged that day still goes through)",
        },
    ],
};

/// A pool of a location: limits shared by several of its instances.
pub const POOL: Shape = Shape {
    title: "a pool: limits shared by several instances (a WhatsApp portfolio, a 10DLC brand)",
    fields: &[
        Field {
            name: "id",
            ty: FieldType::NonBlankText,
            required: true,
            default: None,
            doc: "the pool id, unique in its location",
        },
        Field {
            name: "limits",
            ty: FieldType::Map(&LIMITS),
            required: false,
            default: None,
            doc: "the pool's limits, counted over all its instances",
        },
    ],
};

/// A location of a world file.
pub const LOCATION: Shape = Shape {
    title: "a location (CRM sub-account) and its instances",
    fields: &[
        Field {
            name: "id",
            ty: FieldType::Text,
            required: true,
            default: None,
            doc: "the location id, unique in the file",
        },
        Field {
            name: "timezone",
            ty: FieldType::TimeZone,
            required: false,
            default: Some("\"UTC\""),
            doc: "IANA timezone name; capacity windows are calendar windows here, and send_window takes a contact without a timezone to be here",
        },
        Field {
            name: "country",
            ty: FieldType::Country,
            required: false,
            default: None,
            doc: "ISO 3166 alpha-2 country code: phone numbers in national format are read as this country's",
        },
        Field {
            name: "pools",
            ty: FieldType::List(&POOL),
            required: false,
            default: Some("[]"),
            doc: "limits shared by several instances of this location",
        },
        Field {
            name: "instances",
            ty: FieldType::List(&INSTANCE),
            required: false,
            default: Some("[]"),
            doc: "its sender instances",
        },
    ],
};

/// The world file (docs/world.md): the one description the world schema is
/// generated from.
pub const WORLD: Shape = Shape {
    title: "Switchboard world file",
    fields: &[Field {
        name: "locations",
        ty: FieldType::List(&LOCATION),
        required: true,
        default: None,
        doc: "every location, each with its instances",
    }],
};

/// A pattern matching `id` in any letter case (channel ids compare
/// case-insensitively).
fn case_insensitive(id: &str) -> String {
    let mut out = String::new();
    for c in id.chars() {
        if c.is_ascii_alphabetic() {
            out.push('[');
            out.push(c.to_ascii_lowercase());
            out.push(c.to_ascii_uppercase());
            out.push(']');
        } else if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            out.push('\\');
            out.push(c);
        }
    }
    out
}

/// A channel id: the registered ids (offered by editors), or the same in
/// another letter case.
fn channel_id(registry: &Registry) -> Value {
    let ids: Vec<&str> = registry.channel_ids().collect();
    let any_case = ids.iter().map(|id| case_insensitive(id)).collect::<Vec<_>>().join("|");
    json!({
        "type": "string",
        "anyOf": [{"enum": ids}, {"pattern": format!("^({any_case})$")}],
    })
}

fn field_schema(field: &Field, registry: &Registry) -> Value {
    let mut schema = match field.ty {
        FieldType::Text => json!({"type": "string"}),
        FieldType::NonBlankText => json!({"type": "string", "pattern": "\\S"}),
        FieldType::OptionalPositiveInteger => json!({"type": ["integer", "null"], "minimum": 1}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::TextList => json!({"type": "array", "items": {"type": "string"}}),
        FieldType::Channel => channel_id(registry),
        FieldType::List(shape) => json!({"type": "array", "items": shape_schema(shape, registry)}),
        FieldType::Map(shape) => {
            let mut map = shape_schema(shape, registry);
            map["type"] = json!(["object", "null"]);
            map
        }
        FieldType::TimeZone => json!({"type": "string", "pattern": "\\S"}),
        FieldType::PoolId => json!({"type": "string"}),
        FieldType::Duration => json!({"type": ["string", "null"], "pattern": "^\\s*0*[1-9][0-9]*[smhd]\\s*$"}),
        FieldType::Country => json!({"type": ["string", "null"], "pattern": "^\\s*[A-Za-z]{2}\\s*$"}),
        FieldType::Warmup => json!({
            "type": ["object", "null"],
            "required": ["since", "per_day"],
            "additionalProperties": false,
            "properties": {
                "since": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}", "description": "day 0: a date, or an RFC 3339 time (the local day it falls in)"},
                "per_day": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 1}, "description": "the per_day limit of day 0, 1, …; the last holds from then on"},
            },
        }),
    };
    schema["description"] = json!(field.doc);
    if let Some(default) = field.default.and_then(|d| serde_json::from_str::<Value>(d).ok()) {
        schema["default"] = default;
    }
    schema
}

/// The JSON Schema of a map of `shape`: its keys and no other.
pub fn shape_schema(shape: &Shape, registry: &Registry) -> Value {
    let properties: Map<String, Value> =
        shape.fields.iter().map(|f| (f.name.to_owned(), field_schema(f, registry))).collect();
    let required: Vec<&str> = shape.fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    json!({
        "type": "object",
        "description": shape.title,
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The JSON Schema of the world file, for the channels of `registry`
/// (pass a plan's registry for plugin channels).
pub fn world_schema(registry: &Registry) -> Value {
    let mut schema = shape_schema(&WORLD, registry);
    let Value::Object(body) = &mut schema else { return schema };
    let mut out = Map::new();
    out.insert("$schema".into(), json!(DRAFT));
    out.insert("title".into(), json!(WORLD.title));
    out.append(body);
    Value::Object(out)
}

/// The limits of rules.yaml `limits:`, with their defaults.
pub fn limits() -> [(&'static str, u64, &'static str); 5] {
    let d = InputLimits::default();
    [
        ("max_body_bytes", d.max_body_bytes as u64, "longest message body, in bytes; a longer one is code 100"),
        ("max_tags", d.max_tags as u64, "most tags on one contact"),
        ("max_tag_bytes", d.max_tag_bytes as u64, "longest tag, in bytes"),
        ("max_patterns", d.max_patterns as u64, "most override/switch patterns in one body"),
        ("max_world_bytes", d.max_world_bytes, "largest world file, in bytes; a larger one is not read"),
    ]
}

/// An option's default as a JSON value of its type, when it reads as one.
fn option_default(spec: &OptionSpec) -> Option<Value> {
    match spec.kind {
        OptionKind::Choice(_) | OptionKind::String | OptionKind::Duration => Some(json!(spec.default)),
        OptionKind::Bool | OptionKind::Integer | OptionKind::StringList => {
            let v: serde_yaml::Value = serde_yaml::from_str(spec.default).ok()?;
            let v = serde_json::to_value(v).ok()?;
            let fits = match spec.kind {
                OptionKind::Bool => v.is_boolean(),
                OptionKind::Integer => v.is_i64() || v.is_u64(),
                _ => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            };
            fits.then_some(v)
        }
    }
}

fn option_schema(spec: &OptionSpec) -> Value {
    let mut schema = match spec.kind {
        OptionKind::Choice(values) => json!({"type": "string", "enum": values}),
        OptionKind::Bool => json!({"type": "boolean"}),
        OptionKind::Integer => json!({"type": "integer"}),
        OptionKind::String => json!({"type": "string"}),
        // A string with a unit, or the number 0 (the pattern binds strings,
        // the bounds numbers).
        OptionKind::Duration => {
            json!({"type": ["string", "integer"], "pattern": "^\\s*[0-9]+[smhd]?\\s*$", "minimum": 0, "maximum": 0})
        }
        OptionKind::StringList => json!({"type": "array", "items": {"type": "string"}}),
    };
    schema["description"] = json!(spec.doc);
    if let Some(default) = option_default(spec) {
        schema["default"] = default;
    }
    schema
}

/// The map form of one rule's entry: `rule:`, `enabled`, `on_unavailable`
/// where the rule has it, and its own options.
fn rule_map(rule: &RuleInfo) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "rule".into(),
        json!({"const": rule.id, "description": format!("{} (code {})", rule.summary, rule.code)}),
    );
    properties.insert(
        "enabled".into(),
        json!({"type": "boolean", "default": true, "description": "false keeps the rule listed but off"}),
    );
    if let Some(default) = rule.on_unavailable {
        properties.insert(
            "on_unavailable".into(),
            json!({
                "enum": ["error", "skip"],
                "default": default.as_str(),
                "description": "when the rule's instance is unusable: error (fail with the rule's code) or skip (try the next rule)",
            }),
        );
    }
    for option in &rule.options {
        properties.insert(option.name.to_owned(), option_schema(option));
    }
    json!({
        "type": "object",
        "description": rule.summary,
        "properties": properties,
        "required": ["rule"],
        "additionalProperties": false,
    })
}

/// The JSON Schema of rules.yaml for the rules and channels of `registry`
/// (pass a plan's registry to include the plugins its file lists).
pub fn rules_schema(registry: &Registry) -> Value {
    let mut defs = Map::new();
    let ids: Vec<&str> = registry.rule_ids().collect();
    let descriptions: Vec<String> =
        registry.rules().iter().map(|r| format!("{}: {} (code {})", r.id, r.summary, r.code)).collect();
    defs.insert(
        "rule_id".into(),
        json!({"type": "string", "enum": ids, "description": format!("a rule with its default options; {}", descriptions.join("; "))}),
    );
    let mut entry = vec![json!({"$ref": "#/$defs/rule_id"})];
    for rule in registry.rules() {
        defs.insert(format!("rule.{}", rule.id), rule_map(rule));
        entry.push(json!({"$ref": format!("#/$defs/rule.{}", rule.id)}));
    }
    defs.insert(
        "rule_entry".into(),
        json!({"description": "a rule id, or a map with `rule:` and options", "oneOf": entry}),
    );
    defs.insert(
        "rule_list".into(),
        json!({"type": "array", "items": {"$ref": "#/$defs/rule_entry"}, "description": "rules in priority order; each at most once"}),
    );
    // Channel keys: the registered ids (offered by editors), and the same
    // ids in any letter case, as the loader reads them.
    let mut channels = Map::new();
    let mut any_case = Map::new();
    for id in registry.channel_ids() {
        let section = json!({
            "type": "object",
            "properties": {"rules": {"$ref": "#/$defs/rule_list"}},
            "additionalProperties": false,
            "description": format!("the {id} channel's own order; it replaces `rules` for {id}"),
        });
        any_case.insert(format!("^{}$", case_insensitive(id)), section.clone());
        channels.insert(id.to_owned(), section);
    }
    let limits: Map<String, Value> = limits()
        .iter()
        .map(|(name, default, doc)| {
            ((*name).to_owned(), json!({"type": "integer", "minimum": 1, "default": default, "description": doc}))
        })
        .collect();
    json!({
        "$schema": DRAFT,
        "title": "Switchboard rules.yaml",
        "type": "object",
        "required": ["rules"],
        "additionalProperties": false,
        "properties": {
            "version": {"const": 1, "default": 1, "description": "the file format version; only 1 exists"},
            "plugins": {
                "type": "array",
                "description": "shared libraries adding rules or channels, and WebAssembly modules adding rules; paths relative to this file",
                "items": {"oneOf": [
                    {
                        "type": "object",
                        "required": ["path"],
                        "additionalProperties": false,
                        "properties": {
                            "path": {"type": "string", "description": "the library, relative to this file"},
                            "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "optional pin: `sha256sum` of the library"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["wasm"],
                        "additionalProperties": false,
                        "properties": {
                            "wasm": {"type": "string", "description": "the WebAssembly module, relative to this file; its rules run in a sandbox"},
                            "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$", "description": "optional pin: `sha256sum` of the module"},
                            "max_memory_mb": {"type": "integer", "minimum": 1, "maximum": 4096, "default": 16, "description": "the cap on the module's linear memory, in MiB"},
                            "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 60000, "default": 10, "description": "the wall-clock budget of one call into the module, in milliseconds"},
                        },
                    },
                ]},
            },
            "rules": {"$ref": "#/$defs/rule_list"},
            "channels": {
                "type": "object",
                "description": "optional per-channel orders",
                "properties": channels,
                "patternProperties": any_case,
                "additionalProperties": false,
            },
            "limits": {
                "type": "object",
                "description": "input limits; a request over one is answered with code 100",
                "properties": limits,
                "additionalProperties": false,
            },
            "capacity": {
                "type": "object",
                "description": "where capacity counts live (the world file's `limits`); without it, this process's memory",
                "additionalProperties": false,
                "properties": {
                    "store": {"enum": ["memory", "redis"], "default": "memory", "description": "memory: this process; redis: shared by every process using it"},
                    "redis_url": {"type": "string", "pattern": "^rediss?://", "default": "redis://127.0.0.1:6379/0", "description": "the Redis server (store: redis): redis:// or rediss:// (TLS), with an optional user:password@"},
                    "redis_cluster": {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^rediss?://"}, "description": "the seed nodes of a Redis Cluster, used instead of redis_url; the slots are discovered"},
                    "tls_ca_file": {"type": "string", "minLength": 1, "description": "a PEM file of the CAs to trust for rediss:// (relative to this file); without it, the system's roots"},
                    "key_prefix": {"type": "string", "default": "switchboard:", "description": "the prefix of every Redis key"},
                    "on_store_error": {"enum": ["fail_closed", "fail_open"], "default": "fail_closed", "description": "store unreachable: fail_closed answers code 108 store_unavailable; fail_open decides as if no limits"},
                },
            },
            "health": {
                "type": "object",
                "description": "instance health from delivery events: failing instances are quarantined (kind instance_quarantined), then on probation; without it, deliveries are only counted",
                "additionalProperties": false,
                "properties": {
                    "quarantine_after": {"type": "integer", "minimum": 1, "default": 5, "description": "consecutive failed deliveries that quarantine an instance"},
                    "failure_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "failed / all deliveries within window that quarantine an instance"},
                    "min_deliveries": {"type": "integer", "minimum": 1, "default": 20, "description": "deliveries the window must hold before failure_rate applies"},
                    "window": {"type": "string", "pattern": "^[0-9]*[1-9][0-9]*[smhd]$", "default": "10m", "description": "how far back failure_rate looks"},
                    "cooldown": {"type": "string", "pattern": "^[0-9]*[1-9][0-9]*[smhd]$", "default": "5m", "description": "the first quarantine's length"},
                    "max_cooldown": {"type": "string", "pattern": "^[0-9]*[1-9][0-9]*[smhd]$", "default": "1h", "description": "the longest quarantine: each one after a failed probation doubles the last, up to this"},
                },
            },
        },
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_patterns_match_any_letter_case_only() {
        assert_eq!(case_insensitive("sms"), "[sS][mM][sS]");
        assert_eq!(case_insensitive("x-1"), "[xX]\\-1");
    }

    #[test]
    fn option_defaults_are_typed_values() {
        let spec = |kind, default| OptionSpec { name: "o", kind, default, doc: "" };
        assert_eq!(option_default(&spec(OptionKind::Bool, "false")), Some(json!(false)));
        assert_eq!(option_default(&spec(OptionKind::Integer, "60")), Some(json!(60)));
        assert_eq!(option_default(&spec(OptionKind::StringList, "[mon, tue]")), Some(json!(["mon", "tue"])));
        assert_eq!(option_default(&spec(OptionKind::String, "09:00")), Some(json!("09:00")));
        assert_eq!(option_default(&spec(OptionKind::Integer, "")), None);
        assert_eq!(option_default(&spec(OptionKind::Bool, "maybe")), None);
    }
}
