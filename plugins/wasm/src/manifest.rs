//! The manifest a module answers from `sb_manifest` (docs/wasm-plugins.md), read and
//! checked: every problem is a sentence naming the rule or option at fault.

use serde::Deserialize;
use serde_json::Value;
use switchboard_core::{OptionKind, OptionSpec};

/// `{"name","version","rules":[...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) rules: Vec<Rule>,
}

/// One rule: `{"id","code","options"}` (and an optional `summary`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rule {
    pub(crate) id: String,
    pub(crate) code: i64,
    #[serde(default)]
    pub(crate) options: Vec<Option_>,
    /// One line for `switchboard rules` (an addition to the ABI's fields).
    #[serde(default)]
    pub(crate) summary: Option<String>,
}

/// One option: `{"name","kind","default"}` (and an optional `doc`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Option_ {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    #[serde(default)]
    pub(crate) default: Value,
    /// One line for `switchboard rules` (an addition to the ABI's fields).
    #[serde(default)]
    pub(crate) doc: Option<String>,
}

/// An option's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    String,
    Integer,
    Boolean,
    List,
    Duration,
}

impl Kind {
    /// The kind of rules.yaml value it takes (a duration is written as text).
    pub(crate) fn option_kind(self) -> OptionKind {
        match self {
            Kind::String => OptionKind::String,
            Kind::Duration => OptionKind::Duration,
            Kind::Integer => OptionKind::Integer,
            Kind::Boolean => OptionKind::Bool,
            Kind::List => OptionKind::StringList,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::List => "list",
            Kind::Duration => "duration",
        }
    }

    /// Whether `value` is a value of this kind.
    fn holds(self, value: &Value) -> bool {
        match (self, value) {
            (Kind::String, Value::String(_)) | (Kind::Boolean, Value::Bool(_)) => true,
            (Kind::Integer, Value::Number(n)) => n.is_i64(),
            (Kind::List, Value::Array(items)) => items.iter().all(Value::is_string),
            (Kind::Duration, Value::String(s)) => parse_duration(s).is_ok(),
            _ => false,
        }
    }
}

/// Reads a manifest's text and checks it.
pub(crate) fn read(text: &str) -> Result<Manifest, String> {
    let manifest: Manifest = serde_json::from_str(text).map_err(|e| {
        format!(
            "its manifest (`sb_manifest`) is invalid: {e}; expected {{\"name\",\"version\",\"rules\":[{{\"id\",\"code\",\
             \"options\":[{{\"name\",\"kind\",\"default\"}}]}}]}}"
        )
    })?;
    if manifest.name.trim().is_empty() {
        return Err("its manifest has an empty `name`".into());
    }
    for (n, rule) in manifest.rules.iter().enumerate() {
        let id = &rule.id;
        if !is_id(id) {
            return Err(format!(
                "its manifest's rule {n} has id `{id}`; a rule id is snake_case: lower-case letters, digits and `_`, \
                 starting with a letter"
            ));
        }
        if manifest.rules[..n].iter().any(|r| r.id == *id) {
            return Err(format!("its manifest lists rule `{id}` twice"));
        }
        if !(1000..=i64::from(u32::MAX)).contains(&rule.code) {
            return Err(format!("rule `{id}` declares error code {}; plugin rule codes start at 1000", rule.code));
        }
        for (k, option) in rule.options.iter().enumerate() {
            let name = &option.name;
            if !is_id(name) || matches!(name.as_str(), "rule" | "enabled" | "on_unavailable") {
                return Err(format!(
                    "rule `{id}`: option {k} is named `{name}`; an option name is snake_case and not `rule`, \
                     `enabled` or `on_unavailable`"
                ));
            }
            if rule.options[..k].iter().any(|o| o.name == *name) {
                return Err(format!("rule `{id}` lists option `{name}` twice"));
            }
            if !option.default.is_null() && !option.kind.holds(&option.default) {
                return Err(format!(
                    "rule `{id}`: the default of option `{name}` is {}, which is not of kind `{}`",
                    option.default,
                    option.kind.name()
                ));
            }
        }
    }
    Ok(manifest)
}

fn is_id(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// An option as core declares it. The default is written as JSON, which
/// rules.yaml's reader reads as the same value; strings are leaked once
/// per loaded module.
pub(crate) fn option_spec(option: &Option_, leak: &mut impl FnMut(String) -> &'static str) -> OptionSpec {
    let default = if option.default.is_null() { String::new() } else { option.default.to_string() };
    let doc = option.doc.clone().unwrap_or_else(|| format!("a {} (declared by the module)", option.kind.name()));
    OptionSpec {
        name: leak(option.name.clone()),
        kind: option.kind.option_kind(),
        default: leak(default),
        doc: leak(doc),
    }
}

/// A duration as rules.yaml writes one: a whole number and a unit (`ms`,
/// `s`, `m`, `h`, `d`), or several (`1h30m`).
pub(crate) fn parse_duration(text: &str) -> Result<(), String> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("an empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let unit = rest[digits..].bytes().take_while(u8::is_ascii_alphabetic).count();
        if digits == 0 || !matches!(&rest[digits..digits + unit], "ms" | "s" | "m" | "h" | "d") {
            return Err(format!("`{text}` is not a duration like `500ms`, `30s`, `15m`, `2h` or `7d`"));
        }
        rest = rest[digits + unit..].trim_start();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_good_manifest_reads() {
        let m = read(r#"{"name":"vip","version":"1.0","rules":[{"id":"vip_first","code":1100,"options":[{"name":"tag","kind":"string","default":"vip"},{"name":"window","kind":"duration","default":"7d"}]}]}"#).unwrap();
        assert_eq!((m.name.as_str(), m.rules[0].options.len()), ("vip", 2));
    }

    #[test]
    fn each_problem_is_named() {
        let cases = [
            ("not json", "its manifest (`sb_manifest`) is invalid"),
            (r#"{"name":"x","version":"1","rules":[],"extra":1}"#, "unknown field `extra`"),
            (r#"{"name":"x","version":"1","rules":[{"id":"a","code":999}]}"#, "declares error code 999"),
            (r#"{"name":"x","version":"1","rules":[{"id":"A b","code":1000}]}"#, "has id `A b`"),
            (r#"{"name":"x","version":"1","rules":[{"id":"a","code":1000},{"id":"a","code":1001}]}"#, "twice"),
            (
                r#"{"name":"x","version":"1","rules":[{"id":"a","code":1000,"options":[{"name":"n","kind":"integer","default":"3"}]}]}"#,
                "is \"3\", which is not of kind `integer`",
            ),
            (
                r#"{"name":"x","version":"1","rules":[{"id":"a","code":1000,"options":[{"name":"n","kind":"float"}]}]}"#,
                "unknown variant `float`",
            ),
            (
                r#"{"name":"x","version":"1","rules":[{"id":"a","code":1000,"options":[{"name":"w","kind":"duration","default":"soon"}]}]}"#,
                "which is not of kind `duration`",
            ),
        ];
        for (text, want) in cases {
            let e = read(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn durations() {
        for good in ["7d", "500ms", "1h30m", "15m"] {
            assert!(parse_duration(good).is_ok(), "{good}");
        }
        for bad in ["", "7", "d", "7 days", "-1s", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
