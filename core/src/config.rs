//! The rules.yaml compiler: reads the file against a [`Registry`], checks
//! every id, option and channel, reports *all* problems with line and column,
//! and produces an immutable [`Plan`].
//!
//! The two phases of the style guide (raw file, then resolved plan) meet in
//! the deserializer's visitors: names are resolved while the node is being
//! read so that serde_yaml can locate each error (see [`crate::diag`]); the
//! visitors return resolved entries, and [`Plan`] is assembled from them
//! only when the whole file is clean.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::diag::{self, Ctx, Diagnostic, FileErrors, KeySeed};
use crate::rule::{OnUnavailable, OptionKind, OptionSpec, OptionValue, RuleOptions, SelectionRule};
use crate::{Registry, RuleInfo};

/// One enabled rule in a chain, built with its options.
#[derive(Clone)]
pub(crate) struct Step {
    pub(crate) id: &'static str,
    pub(crate) code: u32,
    pub(crate) on_unavailable: Option<OnUnavailable>,
    pub(crate) rule: Arc<dyn SelectionRule>,
}

/// One entry of a rule list as configured, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntrySummary {
    /// The rule id.
    pub id: String,
    /// `false` when listed with `enabled: false`.
    pub enabled: bool,
    /// The effective `on_unavailable`, if the rule has it.
    pub on_unavailable: Option<OnUnavailable>,
    /// The options given, rendered `name=value`.
    pub options: Vec<String>,
}

#[derive(Clone)]
struct Entry {
    summary: EntrySummary,
    step: Option<Step>,
}

/// A plugin listed in rules.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEntry {
    /// The path as written (relative to the rules file).
    pub path: String,
    /// The expected SHA-256 of the file, lower-case hex.
    pub sha256: Option<String>,
}

/// What one plugin adds to the registry.
#[derive(Debug, Clone, Default)]
pub struct Contribution {
    /// Its rules.
    pub rules: Vec<crate::RuleInfo>,
    /// Its channels.
    pub channels: Vec<crate::ChannelInfo>,
}

/// Loads the plugins a rules file lists (the host loader implements this;
/// core does no I/O). `rules_file` is the file as named, for resolving
/// relative paths.
pub trait PluginLoader {
    /// Loads one plugin; the error names the file and what to do.
    fn load(&self, entry: &PluginEntry, rules_file: &str) -> Result<Contribution, String>;
}

/// Input limits (rules.yaml `limits:`): what a request or a data file may
/// hold before it is refused with a clear error rather than processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest message body, in bytes.
    pub max_body_bytes: usize,
    /// Most tags on one contact.
    pub max_tags: usize,
    /// Longest tag, in bytes.
    pub max_tag_bytes: usize,
    /// Most override / temporary-switch patterns in one body.
    pub max_patterns: usize,
    /// Largest world file, in bytes.
    pub max_world_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 64 * 1024,
            max_tags: 1000,
            max_tag_bytes: 1024,
            max_patterns: 100,
            max_world_bytes: 1 << 30,
        }
    }
}

const LIMIT_KEYS: [&str; 5] = ["max_body_bytes", "max_tags", "max_tag_bytes", "max_patterns", "max_world_bytes"];

/// The rule chain of one channel.
#[derive(Clone)]
pub(crate) struct Chain {
    pub(crate) steps: Vec<Step>,
    pub(crate) entries: Vec<EntrySummary>,
    pub(crate) overridden: bool,
}

/// A compiled rules.yaml: one rule chain per registered channel, ready to
/// evaluate from many threads. Immutable; a reload builds a new one.
#[derive(Clone)]
pub struct Plan {
    pub(crate) registry: Arc<Registry>,
    pub(crate) chains: Vec<Chain>,
    plugins: Vec<PluginEntry>,
    content_hash: u64,
    pub(crate) limits: Limits,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_map();
        for (channel, chain) in self.registry.channel_ids().zip(&self.chains) {
            d.entry(&channel, &chain.entries.iter().map(|e| e.id.as_str()).collect::<Vec<_>>());
        }
        d.finish()
    }
}

impl Plan {
    /// Compiles the text of a rules file. `file` names it in errors. A
    /// `plugins:` entry is an error here (no loader); see [`Plan::compile_with`].
    pub fn compile(text: &str, file: &str, registry: Arc<Registry>) -> Result<Plan, FileErrors> {
        Plan::compile_with(text, file, registry, None)
    }

    /// Compiles a rules file, first loading the plugins it lists with
    /// `loader` and adding their rules and channels to `base`: the plan's
    /// registry is then `base` plus the plugins. Plugin errors (a library
    /// that cannot be loaded, a duplicate rule id or channel code) are
    /// located at their entry.
    pub fn compile_with(
        text: &str,
        file: &str,
        base: Arc<Registry>,
        loader: Option<&dyn PluginLoader>,
    ) -> Result<Plan, FileErrors> {
        let fail = |diagnostics| FileErrors { file: file.to_owned(), diagnostics };
        if text.trim().is_empty() {
            return Err(FileErrors::whole_file(
                file,
                "the rules file is empty; expected at least `rules:` with a list of rule ids",
            ));
        }
        // Phase 1: the plugins, each admitted into the registry where it stands.
        let with_plugins = diag::collect(
            diag::max_diagnostics(text),
            |cx| {
                PluginsOnlySeed { cx, loader, file, text, base: &base }
                    .deserialize(serde_yaml::Deserializer::from_str(text))
            },
            Diagnostic::from_yaml,
        )
        .map_err(fail)?;
        let registry = match with_plugins {
            None => base,
            Some(builder) => Arc::new(
                builder.build().map_err(|e| fail(e.problems.into_iter().map(Diagnostic::unlocated).collect()))?,
            ),
        };
        // Phase 2: everything else, against that registry.
        Plan::compile_against(text, file, registry)
    }

    /// The second phase of [`Plan::compile_with`] (the text is not empty).
    fn compile_against(text: &str, file: &str, registry: Arc<Registry>) -> Result<Plan, FileErrors> {
        let raw = diag::collect(
            diag::max_diagnostics(text),
            |cx| ConfigSeed { cx, registry: &registry }.deserialize(serde_yaml::Deserializer::from_str(text)),
            Diagnostic::from_yaml,
        )
        .map_err(|diagnostics| FileErrors { file: file.to_owned(), diagnostics })?;
        let assemble = |entries: &[Entry], overridden: bool| Chain {
            steps: entries.iter().filter_map(|e| e.step.clone()).collect(),
            entries: entries.iter().map(|e| e.summary.clone()).collect(),
            overridden,
        };
        let chains = registry
            .channel_ids()
            .map(|id| match raw.channels.iter().find(|(c, _)| c == id) {
                Some((_, entries)) => assemble(entries, true),
                None => assemble(&raw.rules, false),
            })
            .collect();
        Ok(Plan {
            registry,
            chains,
            plugins: raw.plugins,
            content_hash: content_hash(text.as_bytes()),
            limits: raw.limits,
        })
    }

    /// The input limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The registry this plan was compiled against.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The plugins the file lists.
    pub fn plugins(&self) -> &[PluginEntry] {
        &self.plugins
    }

    /// A stable 64-bit hash of the file's text.
    pub fn content_hash(&self) -> u64 {
        self.content_hash
    }

    /// The configured entries for a channel, disabled ones included.
    pub fn entries(&self, channel: &str) -> &[EntrySummary] {
        self.registry.channel_position(channel).and_then(|p| self.chains.get(p)).map_or(&[], |c| &c.entries)
    }

    /// The ids of the enabled rules for a channel, in priority order.
    pub fn order(&self, channel: &str) -> Vec<&str> {
        self.registry
            .channel_position(channel)
            .and_then(|p| self.chains.get(p))
            .map_or_else(Vec::new, |c| c.steps.iter().map(|s| s.id).collect())
    }

    /// Whether a channel has its own `channels.<id>.rules` list.
    pub fn has_channel_order(&self, channel: &str) -> bool {
        self.registry.channel_position(channel).and_then(|p| self.chains.get(p)).is_some_and(|c| c.overridden)
    }
}

/// FNV-1a, 64 bits: a stable fingerprint of a file's content (what
/// [`Plan::content_hash`] and reload status report).
pub fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

struct RawConfig {
    rules: Vec<Entry>,
    channels: Vec<(String, Vec<Entry>)>,
    plugins: Vec<PluginEntry>,
    limits: Limits,
}

const TOP_KEYS: [&str; 5] = ["version", "plugins", "rules", "channels", "limits"];

struct ConfigSeed<'a> {
    cx: &'a Ctx,
    registry: &'a Registry,
}

impl<'de> DeserializeSeed<'de> for ConfigSeed<'_> {
    type Value = RawConfig;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawConfig, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ConfigSeed<'_> {
    type Value = RawConfig;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with `version`, `plugins`, `rules` and `channels`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawConfig, A::Error> {
        let cx = self.cx;
        let mut raw =
            RawConfig { rules: Vec::new(), channels: Vec::new(), plugins: Vec::new(), limits: Limits::default() };
        let mut seen_rules = false;
        let mut seen_keys: Vec<String> = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed { cx, allowed: &TOP_KEYS, section: "rules.yaml" })? {
            let Some(key) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if seen_keys.contains(&key) {
                cx.report(format!("`{key}` appears twice; keep one"))?;
            }
            seen_keys.push(key.clone());
            match key.as_str() {
                "version" => {
                    let check = |v: &Raw| match v {
                        Raw::Int(1) => Ok(OptionValue::Int(1)),
                        other => Err(format!("unsupported `version` {other}; this Switchboard reads version 1")),
                    };
                    map.next_value_seed(ValueSeed { cx, check: &check })?;
                }
                "plugins" => {
                    raw.plugins = map.next_value_seed(PluginsSeed { cx, load: None })?;
                }
                "rules" => {
                    seen_rules = true;
                    raw.rules = map.next_value_seed(ListSeed { cx, registry: self.registry })?;
                }
                "limits" => raw.limits = map.next_value_seed(LimitsSeed { cx })?,
                _ => raw.channels = map.next_value_seed(ChannelsSeed { cx, registry: self.registry })?,
            }
        }
        if !seen_rules {
            cx.report("missing `rules`: list the rules in priority order, e.g. `rules: [manual_override, default_instance, any_available]`")?;
        }
        Ok(raw)
    }
}

/// A YAML value read generically, before it is checked against a schema.
#[derive(Debug, Clone, PartialEq)]
enum Raw {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Raw>),
    Other(&'static str),
}

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::Bool(b) => write!(f, "`{b}`"),
            Raw::Int(i) => write!(f, "`{i}`"),
            Raw::Str(s) => write!(f, "`{s}`"),
            Raw::List(_) => f.write_str("a list"),
            Raw::Other(what) => f.write_str(what),
        }
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(i64::try_from(v).map_or(Raw::Other("a number too large"), Raw::Int))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Raw, E> {
        Ok(Raw::Other("a decimal number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Str(v.to_owned()))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Other("an empty value"))
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Other("an empty value"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(RawSeed)? {
            items.push(item);
        }
        Ok(Raw::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Other("a map"))
    }
}

struct RawSeed;

impl<'de> DeserializeSeed<'de> for RawSeed {
    type Value = Raw;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Raw, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

type Check<'c> = dyn Fn(&Raw) -> Result<OptionValue, String> + 'c;

/// Reads one value and checks it while the deserializer is on its node, so
/// that a problem is located at the value.
struct ValueSeed<'a, 'c> {
    cx: &'a Ctx,
    check: &'a Check<'c>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Option<OptionValue>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_, '_> {
    fn finish<E: de::Error>(self, raw: Raw) -> Result<Option<OptionValue>, E> {
        match (self.check)(&raw) {
            Ok(v) => Ok(Some(v)),
            Err(message) => self.cx.report(message).map(|()| None),
        }
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Option<OptionValue>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.finish(Raw::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.finish(Raw::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        let raw = RawVisitor.visit_u64::<E>(v)?;
        self.finish(raw)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        self.finish(Raw::Other("a decimal number"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.finish(Raw::Str(v.to_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.finish(Raw::Other("an empty value"))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.finish(Raw::Other("an empty value"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let raw = RawVisitor.visit_seq(seq)?;
        self.finish(raw)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let raw = RawVisitor.visit_map(map)?;
        self.finish(raw)
    }
}

fn check_option(rule: &RuleInfo, key: &str, raw: &Raw) -> Result<OptionValue, String> {
    let Some(spec) = rule.options.iter().find(|o| o.name == key) else {
        let mut names: Vec<&str> = vec!["rule", "enabled"];
        if rule.on_unavailable.is_some() {
            names.push("on_unavailable");
        }
        names.extend(rule.options.iter().map(|o| o.name));
        let extra = if key == "on_unavailable" {
            format!("; `{}` never finds an unusable instance, so it has no `on_unavailable`", rule.id)
        } else {
            String::new()
        };
        return Err(format!(
            "rule `{}` has no option `{key}`{}{extra}; its options are: {}",
            rule.id,
            diag::suggestion(key, names.iter().copied()),
            names.join(", ")
        ));
    };
    check_value(&rule.id, spec, raw)
}

fn check_value(rule: &str, spec: &OptionSpec, raw: &Raw) -> Result<OptionValue, String> {
    let name = spec.name;
    match (spec.kind, raw) {
        (OptionKind::Choice(choices), Raw::Str(s)) if choices.contains(&s.as_str()) => Ok(OptionValue::Str(s.clone())),
        (OptionKind::Choice(choices), other) => {
            let hint = match other {
                Raw::Str(s) => diag::suggestion(s, choices.iter().copied()),
                _ => String::new(),
            };
            Err(format!("`{rule}.{name}` must be one of {}; got {other}{hint}", choices.join(", ")))
        }
        (OptionKind::Bool, Raw::Bool(b)) => Ok(OptionValue::Bool(*b)),
        (OptionKind::Integer, Raw::Int(i)) => Ok(OptionValue::Int(*i)),
        (OptionKind::String, Raw::Str(s)) => Ok(OptionValue::Str(s.clone())),
        (OptionKind::StringList, Raw::List(items)) => items
            .iter()
            .map(|i| match i {
                Raw::Str(s) => Ok(s.clone()),
                other => Err(format!("`{rule}.{name}` is a list of strings; found {other} in it")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(OptionValue::List),
        (kind, other) => {
            let want = match kind {
                OptionKind::Bool => "`true` or `false`",
                OptionKind::Integer => "a whole number",
                OptionKind::String => "a string",
                _ => "a list of strings",
            };
            Err(format!("`{rule}.{name}` must be {want}; got {other}"))
        }
    }
}

fn unknown_rule(registry: &Registry, id: &str) -> String {
    format!(
        "unknown rule `{id}`{}; registered rules: {}",
        diag::suggestion(id, registry.rule_ids()),
        registry.rule_ids().collect::<Vec<_>>().join(", ")
    )
}

/// A list of rule entries (the top-level `rules` or a channel's).
struct ListSeed<'a> {
    cx: &'a Ctx,
    registry: &'a Registry,
}

impl<'de> DeserializeSeed<'de> for ListSeed<'_> {
    type Value = Vec<Entry>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Vec<Entry>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed<'_> {
    type Value = Vec<Entry>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of rules (ids, or maps with `rule:` and options)")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Entry>, A::Error> {
        let seen = RefCell::new(Vec::new());
        let mut out = Vec::new();
        while let Some(entry) =
            seq.next_element_seed(EntrySeed { cx: self.cx, registry: self.registry, seen: &seen })?
        {
            out.extend(entry);
        }
        Ok(out)
    }
}

struct EntrySeed<'a> {
    cx: &'a Ctx,
    registry: &'a Registry,
    seen: &'a RefCell<Vec<String>>,
}

impl EntrySeed<'_> {
    fn first_use<E: de::Error>(&self, id: &str) -> Result<bool, E> {
        if self.seen.borrow().iter().any(|s| s == id) {
            self.cx.report(format!(
                "rule `{id}` is listed twice in this list; keep one entry (use `enabled: false` to turn it off)"
            ))?;
            return Ok(false);
        }
        self.seen.borrow_mut().push(id.to_owned());
        Ok(true)
    }

    fn build<E: de::Error>(
        &self,
        rule: &RuleInfo,
        enabled: bool,
        on_unavailable: Option<OnUnavailable>,
        options: RuleOptions,
    ) -> Result<Option<Entry>, E> {
        let on_unavailable = on_unavailable.or(rule.on_unavailable);
        let summary = EntrySummary {
            id: rule.id.clone(),
            enabled,
            on_unavailable,
            options: options.iter().map(|(n, v)| format!("{n}={}", render(v))).collect(),
        };
        let built = match (rule.build)(&options) {
            Ok(built) => built,
            Err(message) => {
                self.cx.report(format!("rule `{}`: {message}", rule.id))?;
                return Ok(None);
            }
        };
        let step = enabled.then(|| Step {
            id: crate::intern(&rule.id),
            code: rule.code,
            on_unavailable,
            rule: Arc::from(built),
        });
        Ok(Some(Entry { summary, step }))
    }
}

fn render(v: &OptionValue) -> String {
    match v {
        OptionValue::Str(s) => s.clone(),
        OptionValue::Bool(b) => b.to_string(),
        OptionValue::Int(i) => i.to_string(),
        OptionValue::List(l) => format!("[{}]", l.join(", ")),
    }
}

impl<'de> DeserializeSeed<'de> for EntrySeed<'_> {
    type Value = Option<Entry>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed<'_> {
    type Value = Option<Entry>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rule id, or a map with `rule:` and options")
    }

    fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
        let Some(rule) = self.registry.rule(id) else {
            self.cx.report(unknown_rule(self.registry, id))?;
            return Ok(None);
        };
        if !self.first_use(id)? {
            return Ok(None);
        }
        self.build(rule, true, None, RuleOptions::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let cx = self.cx;
        let registry = self.registry;
        let mut rule: Option<&RuleInfo> = None;
        let mut named = false;
        let mut enabled = true;
        let mut on_unavailable = None;
        let mut options = Vec::new();
        // Options read before `rule:` are checked once the rule is known.
        let mut pending: Vec<(String, Raw)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key != "rule" && (options.iter().any(|(k, _)| *k == key) || pending.iter().any(|(k, _)| *k == key)) {
                cx.report(format!("option `{key}` is given twice; keep one"))?;
            }
            match key.as_str() {
                "rule" => {
                    named = true;
                    let check = |raw: &Raw| match raw {
                        Raw::Str(id) if registry.rule(id).is_some() => Ok(OptionValue::Str(id.clone())),
                        Raw::Str(id) => Err(unknown_rule(registry, id)),
                        other => Err(format!("`rule` must be a rule id; got {other}")),
                    };
                    if let Some(OptionValue::Str(id)) = map.next_value_seed(ValueSeed { cx, check: &check })? {
                        rule = registry.rule(&id);
                    }
                }
                "enabled" => {
                    let check = |raw: &Raw| match raw {
                        Raw::Bool(b) => Ok(OptionValue::Bool(*b)),
                        other => Err(format!("`enabled` must be `true` or `false`; got {other}")),
                    };
                    if let Some(OptionValue::Bool(b)) = map.next_value_seed(ValueSeed { cx, check: &check })? {
                        enabled = b;
                    }
                }
                "on_unavailable" if rule.is_none_or(|r| r.on_unavailable.is_some()) => {
                    let check = |raw: &Raw| match raw {
                        Raw::Str(s) if s == "error" || s == "skip" => Ok(OptionValue::Str(s.clone())),
                        other => Err(format!("`on_unavailable` must be `error` or `skip`; got {other}")),
                    };
                    if let Some(OptionValue::Str(s)) = map.next_value_seed(ValueSeed { cx, check: &check })? {
                        on_unavailable = Some(if s == "skip" { OnUnavailable::Skip } else { OnUnavailable::Error });
                        pending.push((key.clone(), Raw::Str(s)));
                    }
                }
                _ => match rule {
                    Some(r) => {
                        let check = |raw: &Raw| check_option(r, &key, raw);
                        if let Some(v) = map.next_value_seed(ValueSeed { cx, check: &check })? {
                            options.push((key.clone(), v));
                        }
                    }
                    None => pending.push((key.clone(), map.next_value_seed(RawSeed)?)),
                },
            }
        }
        let Some(rule) = rule else {
            if !named {
                cx.report("this entry has no `rule:`; name the rule, e.g. `- rule: contact_tag`")?;
            }
            return Ok(None);
        };
        for (key, raw) in pending {
            if key == "on_unavailable" {
                if rule.on_unavailable.is_none() {
                    cx.report(check_option(rule, &key, &raw).err().unwrap_or_default())?;
                }
                continue;
            }
            match check_option(rule, &key, &raw) {
                Ok(v) => options.push((key, v)),
                Err(message) => cx.report(message)?,
            }
        }
        if !self.first_use(&rule.id)? {
            return Ok(None);
        }
        self.build(rule, enabled, on_unavailable, RuleOptions { values: options })
    }
}

struct ChannelsSeed<'a> {
    cx: &'a Ctx,
    registry: &'a Registry,
}

impl<'de> DeserializeSeed<'de> for ChannelsSeed<'_> {
    type Value = Vec<(String, Vec<Entry>)>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChannelsSeed<'_> {
    type Value = Vec<(String, Vec<Entry>)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map from channel id to `{rules: [...]}`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let cx = self.cx;
        let registry = self.registry;
        let mut out: Vec<(String, Vec<Entry>)> = Vec::new();
        loop {
            let check = |raw: &Raw| match raw {
                Raw::Str(id) => match registry.channel_id(id) {
                    Some(canonical) => Ok(OptionValue::Str(canonical.to_owned())),
                    None => Err(format!(
                        "unknown channel `{id}`{}; registered channels: {}",
                        diag::suggestion(id, registry.channel_ids()),
                        registry.channel_ids().collect::<Vec<_>>().join(", ")
                    )),
                },
                other => Err(format!("a channel id must be a string; got {other}")),
            };
            let Some(key) = map.next_key_seed(ValueSeed { cx, check: &check })? else { break };
            let entries = map.next_value_seed(ChannelSeed { cx, registry })?;
            if let Some(OptionValue::Str(channel)) = key {
                if out.iter().any(|(c, _)| *c == channel) {
                    cx.report(format!("channel `{channel}` is configured twice; merge the two"))?;
                    continue;
                }
                out.extend(entries.map(|e| (channel, e)));
            }
        }
        Ok(out)
    }
}

struct ChannelSeed<'a> {
    cx: &'a Ctx,
    registry: &'a Registry,
}

impl<'de> DeserializeSeed<'de> for ChannelSeed<'_> {
    type Value = Option<Vec<Entry>>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ChannelSeed<'_> {
    type Value = Option<Vec<Entry>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with `rules`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut rules = None;
        while let Some(key) =
            map.next_key_seed(KeySeed { cx: self.cx, allowed: &["rules"], section: "a channel section" })?
        {
            match key {
                Some(_) => rules = Some(map.next_value_seed(ListSeed { cx: self.cx, registry: self.registry })?),
                None => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        Ok(rules)
    }
}

type LoadFn<'a> = dyn Fn(&PluginEntry) -> Result<(), String> + 'a;

struct PluginsSeed<'a> {
    cx: &'a Ctx,
    /// Set in the first phase only: load each entry where it stands.
    load: Option<&'a LoadFn<'a>>,
}

impl<'de> DeserializeSeed<'de> for PluginsSeed<'_> {
    type Value = Vec<PluginEntry>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PluginsSeed<'_> {
    type Value = Vec<PluginEntry>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of `{path: ..., sha256: ...}`")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(p) = seq.next_element_seed(PluginSeed { cx: self.cx, load: self.load })? {
            out.extend(p);
        }
        Ok(out)
    }
}

struct PluginSeed<'a> {
    cx: &'a Ctx,
    load: Option<&'a LoadFn<'a>>,
}

impl<'de> DeserializeSeed<'de> for PluginSeed<'_> {
    type Value = Option<PluginEntry>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PluginSeed<'_> {
    type Value = Option<PluginEntry>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plugin: a map with `path` and an optional `sha256`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut path: Option<String> = None;
        let mut sha256: Option<String> = None;
        while let Some(key) =
            map.next_key_seed(KeySeed { cx: self.cx, allowed: &["path", "sha256"], section: "a plugin entry" })?
        {
            match key.as_deref() {
                Some("path") => path = Some(map.next_value()?),
                Some(_) => {
                    let v: String = map.next_value()?;
                    if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                        self.cx.report("`sha256` must be 64 hexadecimal digits (run `sha256sum` on the library)")?;
                    }
                    sha256 = Some(v.to_ascii_lowercase());
                }
                None => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        let Some(path) = path else {
            self.cx.report("a plugin entry needs `path`")?;
            return Ok(None);
        };
        let entry = PluginEntry { path, sha256 };
        if let Some(Err(message)) = self.load.map(|load| load(&entry)) {
            self.cx.report(message)?;
        }
        Ok(Some(entry))
    }
}

/// The first phase: reads only `plugins:`, loads each entry and admits
/// its rules and channels into a builder started from the base registry
/// (errors, duplicates included, located at the entry); everything else is
/// left to the second phase. `None` when the file lists no plugin.
struct PluginsOnlySeed<'a> {
    cx: &'a Ctx,
    loader: Option<&'a dyn PluginLoader>,
    file: &'a str,
    /// The file's text, to find the line of an earlier entry.
    text: &'a str,
    base: &'a Registry,
}

impl<'de> DeserializeSeed<'de> for PluginsOnlySeed<'_> {
    type Value = Option<crate::RegistryBuilder>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PluginsOnlySeed<'_> {
    type Value = Option<crate::RegistryBuilder>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map with `version`, `plugins`, `rules` and `channels`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let builder = RefCell::new(self.base.to_builder());
        // The library each entry loaded (its rules' and channels' source)
        // and the path it was listed as: a second entry for the same
        // library is "listed twice", not a clash of the plugin with itself.
        let loaded: RefCell<Vec<(crate::Source, String)>> = RefCell::default();
        let load = |entry: &PluginEntry| -> Result<(), String> {
            let Some(loader) = self.loader else {
                return Err(format!(
                    "plugin `{}`: this program cannot load plugins (it embeds switchboard-core without a loader)",
                    entry.path
                ));
            };
            let contribution = loader.load(entry, self.file)?;
            let source = contribution.rules.first().map(|r| &r.source);
            let source = source.or_else(|| contribution.channels.first().map(|c| &c.source)).cloned();
            if let Some(source) = source {
                if let Some((_, first)) = loaded.borrow().iter().find(|(s, _)| *s == source) {
                    let line = plugin_entry_line(self.text, first).map_or(String::new(), |l| format!(" at line {l}"));
                    let same = if *first == entry.path { "it".to_owned() } else { format!("it as `{first}`") };
                    return Err(format!(
                        "plugin `{}` is listed twice: the entry{line} already lists {same} ({source}); \
                         remove one of the two entries",
                        entry.path
                    ));
                }
                loaded.borrow_mut().push((source, entry.path.clone()));
            }
            builder.borrow_mut().admit(contribution)
        };
        let mut listed = false;
        while let Some(key) = map.next_key::<String>()? {
            if key == "plugins" {
                listed = true;
                map.next_value_seed(PluginsSeed { cx: self.cx, load: Some(&load) })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(listed.then(|| builder.into_inner()))
    }
}

/// The line of the first `plugins:` entry whose `path` is `path`, found by
/// reading the file again up to that entry (only when reporting an error).
fn plugin_entry_line(text: &str, path: &str) -> Option<usize> {
    struct Top<'a>(&'a str);
    struct List<'a>(&'a str);
    struct Item<'a>(&'a str);
    /// Raised at the entry sought, so that the deserializer locates it.
    const FOUND: &str = "the plugin entry sought is here";
    impl<'de> DeserializeSeed<'de> for Top<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Top<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                if key == "plugins" {
                    map.next_value_seed(List(self.0))?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for List<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    impl<'de> Visitor<'de> for List<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(Item(self.0))?.is_some() {}
            Ok(())
        }
    }
    impl<'de> DeserializeSeed<'de> for Item<'_> {
        type Value = ();
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    impl<'de> Visitor<'de> for Item<'_> {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a plugin entry")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut found = false;
            while let Some(key) = map.next_key::<String>()? {
                if key == "path" {
                    found |= map.next_value::<String>().is_ok_and(|p| p == self.0);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if found {
                return Err(de::Error::custom(FOUND));
            }
            Ok(())
        }
    }
    let err = Top(path).deserialize(serde_yaml::Deserializer::from_str(text)).err()?;
    if !err.to_string().contains(FOUND) {
        return None;
    }
    err.location().map(|l| l.line())
}

struct LimitsSeed<'a> {
    cx: &'a Ctx,
}

impl<'de> DeserializeSeed<'de> for LimitsSeed<'_> {
    type Value = Limits;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Limits, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LimitsSeed<'_> {
    type Value = Limits;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a map of limits: {}", LIMIT_KEYS.join(", "))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Limits, A::Error> {
        let mut limits = Limits::default();
        while let Some(key) = map.next_key_seed(KeySeed { cx: self.cx, allowed: &LIMIT_KEYS, section: "limits" })? {
            let Some(key) = key else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let check = |raw: &Raw| match raw {
                Raw::Int(n) if *n > 0 => Ok(OptionValue::Int(*n)),
                other => Err(format!("`limits.{key}` must be a whole number above 0; got {other}")),
            };
            if let Some(OptionValue::Int(n)) = map.next_value_seed(ValueSeed { cx: self.cx, check: &check })? {
                let n = n.unsigned_abs();
                let as_usize = usize::try_from(n).unwrap_or(usize::MAX);
                match key.as_str() {
                    "max_body_bytes" => limits.max_body_bytes = as_usize,
                    "max_tags" => limits.max_tags = as_usize,
                    "max_tag_bytes" => limits.max_tag_bytes = as_usize,
                    "max_patterns" => limits.max_patterns = as_usize,
                    _ => limits.max_world_bytes = n,
                }
            }
        }
        Ok(limits)
    }
}
