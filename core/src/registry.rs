//! The registry: every rule and channel the engine knows, frozen from
//! descriptors (inventory's, a plugin's, or a test's) into an owned, sorted
//! value. Priority never comes from here: only rules.yaml orders rules.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::pattern::Scanner;
use crate::rule::{BuildFn, OnUnavailable, OptionSpec, RuleDescriptor, RuleOptions, SelectionRule};
use crate::{ChannelDescriptor, ChannelSyntax};

/// Where a rule or channel comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// Linked into the binary; the crate name.
    Builtin(String),
    /// A plugin shared library.
    Plugin(PathBuf),
    /// A WebAssembly plugin module.
    Wasm(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin(krate) => write!(f, "built-in ({krate})"),
            Source::Plugin(path) => write!(f, "plugin {}", path.display()),
            Source::Wasm(path) => write!(f, "wasm plugin {}", path.display()),
        }
    }
}

/// A function building a rule from its options; plugins supply closures.
pub type SharedBuild = Arc<dyn Fn(&RuleOptions) -> Result<Box<dyn SelectionRule>, String> + Send + Sync>;

/// A registered rule.
#[derive(Clone)]
pub struct RuleInfo {
    /// The rule id.
    pub id: String,
    /// One line of description.
    pub summary: String,
    /// The error code of its failures.
    pub code: u32,
    /// The default of `on_unavailable`, if the rule has that option.
    pub on_unavailable: Option<OnUnavailable>,
    /// Its other options.
    pub options: Vec<OptionSpec>,
    /// Where it comes from.
    pub source: Source,
    /// How to build it.
    pub build: SharedBuild,
}

impl fmt::Debug for RuleInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleInfo")
            .field("id", &self.id)
            .field("code", &self.code)
            .field("source", &self.source)
            .finish()
    }
}

impl RuleInfo {
    /// The registry entry for a static descriptor.
    pub fn from_descriptor(d: &RuleDescriptor) -> RuleInfo {
        let build: BuildFn = d.build;
        RuleInfo {
            id: d.id.to_owned(),
            summary: d.summary.to_owned(),
            code: d.code,
            on_unavailable: d.on_unavailable,
            options: d.options.to_vec(),
            source: Source::Builtin(d.source.to_owned()),
            build: Arc::new(build),
        }
    }
}

/// A registered channel: its syntax, read once from the [`ChannelSyntax`]
/// that registered it and kept as plain data (the evaluator calls these on
/// every request; no dynamic dispatch), and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Shared with the worlds built with this registry: a location finds
    /// its instances on a channel by this pointer first.
    id: Arc<str>,
    code: String,
    tag_prefix: String,
    summary: String,
    has_override: bool,
    has_temporary_switch: bool,
    /// Where it comes from.
    pub source: Source,
}

impl ChannelInfo {
    /// Reads a channel's syntax.
    pub fn new(syntax: &dyn ChannelSyntax, source: Source) -> ChannelInfo {
        ChannelInfo {
            id: Arc::from(syntax.id()),
            code: syntax.code().to_owned(),
            tag_prefix: syntax.tag_prefix().to_owned(),
            summary: syntax.summary().to_owned(),
            has_override: syntax.has_override(),
            has_temporary_switch: syntax.has_temporary_switch(),
            source,
        }
    }

    /// The registry entry for a static descriptor.
    pub fn from_descriptor(d: &ChannelDescriptor) -> ChannelInfo {
        ChannelInfo::new(d.syntax, Source::Builtin(d.source.to_owned()))
    }

    /// A channel from plain data (a plugin's descriptor): id, code, tag
    /// prefix, summary, and the two pattern capabilities.
    pub fn from_parts(
        [id, code, tag_prefix, summary]: [String; 4],
        has_override: bool,
        has_temporary_switch: bool,
        source: Source,
    ) -> ChannelInfo {
        ChannelInfo { id: Arc::from(id), code, tag_prefix, summary, has_override, has_temporary_switch, source }
    }

    /// See [`ChannelSyntax::id`].
    #[inline]
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The id as shared with the worlds built with this registry.
    pub(crate) fn shared_id(&self) -> &Arc<str> {
        &self.id
    }
    /// See [`ChannelSyntax::code`].
    #[inline]
    pub fn code(&self) -> &str {
        &self.code
    }
    /// See [`ChannelSyntax::tag_prefix`].
    #[inline]
    pub fn tag_prefix(&self) -> &str {
        &self.tag_prefix
    }
    /// See [`ChannelSyntax::summary`].
    pub fn summary(&self) -> &str {
        &self.summary
    }
    /// See [`ChannelSyntax::has_override`].
    #[inline]
    pub fn has_override(&self) -> bool {
        self.has_override
    }
    /// See [`ChannelSyntax::has_temporary_switch`].
    #[inline]
    pub fn has_temporary_switch(&self) -> bool {
        self.has_temporary_switch
    }
}

impl ChannelSyntax for ChannelInfo {
    fn id(&self) -> &str {
        &self.id
    }
    fn code(&self) -> &str {
        &self.code
    }
    fn tag_prefix(&self) -> &str {
        &self.tag_prefix
    }
    fn summary(&self) -> &str {
        &self.summary
    }
    fn has_override(&self) -> bool {
        self.has_override
    }
    fn has_temporary_switch(&self) -> bool {
        self.has_temporary_switch
    }
}

/// Why a set of descriptors cannot form a registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct RegistryError {
    /// One line per problem, naming both sources of a duplicate.
    pub problems: Vec<String>,
}

/// Collects descriptors, then checks and freezes them.
#[derive(Default)]
pub struct RegistryBuilder {
    rules: Vec<RuleInfo>,
    channels: Vec<ChannelInfo>,
}

impl RegistryBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every rule and channel submitted through `inventory` by the
    /// crates linked into this binary.
    pub fn inventory(mut self) -> Self {
        self.rules.extend(inventory::iter::<RuleDescriptor>.into_iter().map(RuleInfo::from_descriptor));
        self.channels.extend(inventory::iter::<ChannelDescriptor>.into_iter().map(ChannelInfo::from_descriptor));
        self
    }

    /// Adds a rule.
    pub fn rule(mut self, rule: RuleInfo) -> Self {
        self.rules.push(rule);
        self
    }

    /// Adds a channel.
    pub fn channel(mut self, channel: ChannelInfo) -> Self {
        self.channels.push(channel);
        self
    }

    /// Whether `rule` may join the entries so far: a well-formed id that
    /// no entry has yet. The error names both sources of a duplicate.
    pub fn admit_rule(&self, rule: &RuleInfo) -> Result<(), String> {
        if !is_identifier(&rule.id) {
            return Err(format!(
                "rule id `{}` from {} must be lower-case ASCII letters, digits and `_`",
                rule.id, rule.source
            ));
        }
        match self.rules.iter().find(|r| r.id == rule.id) {
            Some(other) => {
                Err(format!("rule `{}` from {} is already registered by {}", rule.id, rule.source, other.source))
            }
            None => Ok(()),
        }
    }

    /// Whether `channel` may join the entries so far: a well-formed id,
    /// code and tag prefix, and an id and code (case-insensitive) that no
    /// entry has yet. The error names both sources of a clash.
    pub fn admit_channel(&self, ch: &ChannelInfo) -> Result<(), String> {
        if !is_identifier(ch.id()) {
            return Err(format!(
                "channel id `{}` from {} must be lower-case ASCII letters, digits and `_`",
                ch.id(),
                ch.source
            ));
        }
        if ch.code().is_empty() || ch.code().len() > 16 || !ch.code().bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(format!(
                "channel `{}` from {}: code `{}` must be 1 to 16 ASCII letters or digits",
                ch.id(),
                ch.source,
                ch.code()
            ));
        }
        if ch.tag_prefix().trim().is_empty() {
            return Err(format!("channel `{}` from {}: the tag prefix is empty", ch.id(), ch.source));
        }
        match self.channels.iter().find(|o| o.id() == ch.id() || o.code().eq_ignore_ascii_case(ch.code())) {
            Some(o) => Err(format!(
                "channel `{}` (code `{}`) from {} clashes with channel `{}` (code `{}`) of {}",
                ch.id(),
                ch.code(),
                ch.source,
                o.id(),
                o.code(),
                o.source
            )),
            None => Ok(()),
        }
    }

    /// Adds every rule and channel of a plugin, or none: the first entry
    /// that [`RegistryBuilder::admit_rule`] or [`RegistryBuilder::admit_channel`]
    /// refuses is the error.
    pub fn admit(&mut self, contribution: crate::Contribution) -> Result<(), String> {
        let (rules, channels) = (self.rules.len(), self.channels.len());
        let result = (|| {
            for rule in contribution.rules {
                self.admit_rule(&rule)?;
                self.rules.push(rule);
            }
            for channel in contribution.channels {
                self.admit_channel(&channel)?;
                self.channels.push(channel);
            }
            Ok(())
        })();
        if result.is_err() {
            self.rules.truncate(rules);
            self.channels.truncate(channels);
        }
        result
    }

    /// Checks every entry with the `admit_*` checks, in the order added, and
    /// freezes the registry, sorted by id.
    pub fn build(self) -> Result<Registry, RegistryError> {
        let mut problems = Vec::new();
        let mut checked = RegistryBuilder::new();
        for rule in self.rules {
            match checked.admit_rule(&rule) {
                Ok(()) => checked.rules.push(rule),
                Err(problem) => problems.push(problem),
            }
        }
        for channel in self.channels {
            match checked.admit_channel(&channel) {
                Ok(()) => checked.channels.push(channel),
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(RegistryError { problems });
        }
        let RegistryBuilder { mut rules, mut channels } = checked;
        rules.sort_by(|a, b| a.id.cmp(&b.id));
        channels.sort_by(|a, b| a.id.cmp(&b.id));
        let scanner = Scanner::new(channels.iter().map(|c| c as &dyn ChannelSyntax));
        let keys = channels.iter().map(|c| WordKey::of(c.id()).unwrap_or(WordKey::NONE)).collect();
        Ok(Registry { rules, channels, keys, scanner })
    }
}

fn is_identifier(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The frozen set of rules and channels a configuration compiles against.
#[derive(Debug, Clone)]
pub struct Registry {
    rules: Vec<RuleInfo>,
    channels: Vec<ChannelInfo>,
    /// Each channel's id as a [`WordKey`] ([`WordKey::NONE`] for ids of
    /// another length), in the order of `channels`.
    keys: Box<[WordKey]>,
    scanner: Scanner,
}

impl Registry {
    /// Everything submitted through `inventory` in this binary. The
    /// `switchboard` crate's `registry()` also makes sure the built-in crates
    /// are linked.
    pub fn from_inventory() -> Result<Registry, RegistryError> {
        RegistryBuilder::new().inventory().build()
    }

    /// A registry with nothing in it.
    pub fn empty() -> Registry {
        Registry {
            rules: Vec::new(),
            channels: Vec::new(),
            keys: Box::default(),
            scanner: Scanner::new(std::iter::empty()),
        }
    }

    /// A builder starting from this registry's entries (to add plugins).
    pub fn to_builder(&self) -> RegistryBuilder {
        RegistryBuilder { rules: self.rules.clone(), channels: self.channels.clone() }
    }

    /// Every rule, sorted by id.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// The rule with this id.
    pub fn rule(&self, id: &str) -> Option<&RuleInfo> {
        self.rules.binary_search_by(|r| r.id.as_str().cmp(id)).ok().map(|i| &self.rules[i])
    }

    /// Every rule id, sorted.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> + Clone {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// Every channel, sorted by id.
    #[inline]
    pub fn channels(&self) -> &[ChannelInfo] {
        &self.channels
    }

    /// Every channel id, sorted.
    pub fn channel_ids(&self) -> impl Iterator<Item = &str> + Clone {
        self.channels.iter().map(|c| c.id())
    }

    /// The position of a channel, its id compared case-insensitively.
    #[inline]
    pub fn channel_position(&self, id: &str) -> Option<usize> {
        // The exact spelling in line (every decision asks; an id of 8 to 16
        // bytes, `whatsapp`, compared as words without reading the
        // registered ids), any other case apart.
        match WordKey::of(id) {
            Some(key) => self.keys.iter().position(|k| *k == key),
            None => self.channels.iter().position(|c| same_str(c.id(), id)),
        }
        .or_else(|| self.channel_position_any_case(id))
    }

    #[inline(never)]
    fn channel_position_any_case(&self, id: &str) -> Option<usize> {
        self.channels.iter().position(|c| c.id().eq_ignore_ascii_case(id))
    }

    /// The registered spelling of a channel id.
    #[inline]
    pub fn channel_id(&self, id: &str) -> Option<&str> {
        self.channel_position(id).map(|p| self.channels[p].id())
    }

    /// The scanner for every registered channel's patterns.
    #[inline]
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }
}

/// `a == b` for channel ids: the lengths and first bytes first (the few
/// channel ids differ there), then ids of 8 to 16 bytes (`whatsapp`,
/// `imessage`) as two overlapping words in line, where `==` calls `memcmp`.
#[inline]
pub(crate) fn same_str(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_str`] for bytes.
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() || a.first() != b.first() {
        return false;
    }
    if (8..=16).contains(&n) {
        word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8)
    } else {
        a == b
    }
}

/// `a == b` for short texts (location ids): 4 to 16 bytes compared in
/// line as two overlapping words of 4 or 8 bytes, others by `==`.
#[inline]
pub(crate) fn same_short(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    match n {
        4..8 => {
            let word = |s: &[u8], at: usize| bytes::<4>(s, at).map_or(0, u32::from_ne_bytes);
            word(a, 0) == word(b, 0) && word(a, n - 4) == word(b, n - 4)
        }
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// A text of 8 to 16 bytes as its length and two overlapping words (its
/// first 8 bytes and its last 8): two texts are equal exactly when their
/// keys are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WordKey {
    len: usize,
    head: u64,
    tail: u64,
}

impl WordKey {
    /// Equal to no key of a text (whose length is at least 8).
    const NONE: WordKey = WordKey { len: 0, head: 0, tail: 0 };

    /// The key of `s`, if it is 8 to 16 bytes long.
    #[inline]
    fn of(s: &str) -> Option<WordKey> {
        let s = s.as_bytes();
        let len = s.len();
        (8..=16).contains(&len).then(|| WordKey { len, head: word(s, 0), tail: word(s, len - 8) })
    }
}

/// The 8 bytes of `s` at `at` (in bounds at every call) as a word.
#[inline(always)]
fn word(s: &[u8], at: usize) -> u64 {
    bytes::<8>(s, at).map_or(0, u64::from_ne_bytes)
}

/// The `N` bytes of `s` at `at`.
#[inline(always)]
fn bytes<const N: usize>(s: &[u8], at: usize) -> Option<[u8; N]> {
    s.get(at..at + N).and_then(|w| <[u8; N]>::try_from(w).ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn word_keys_are_equal_exactly_when_the_texts_are() {
        use super::WordKey;
        let texts =
            ["whatsapp", "whatsapq", "imessage", "sms", "", "a_sixteen_byte_i", "a_sixteen_byte_j", "b_sixteen_byte_i"];
        for a in texts {
            assert_eq!(WordKey::of(a).is_some(), (8..=16).contains(&a.len()), "{a:?}");
            for b in texts {
                if let (Some(ka), Some(kb)) = (WordKey::of(a), WordKey::of(b)) {
                    assert_eq!(ka == kb, a == b, "{a:?} {b:?}");
                }
            }
            assert_ne!(WordKey::of(a), Some(WordKey::NONE), "{a:?}");
        }
        for n in 8..=16usize {
            let a: String = (0..n).map(|i| char::from(b'a' + i as u8)).collect();
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'#';
                let b = String::from_utf8(b).unwrap_or_default();
                assert_ne!(WordKey::of(&a), WordKey::of(&b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn channel_positions_are_found_by_any_spelling() {
        // Ids shorter than 8 bytes, of 8 to 16 and longer.
        let channel = |id: &str, code: &str| {
            let parts = [id.to_owned(), code.to_owned(), format!("{code}:"), String::new()];
            super::ChannelInfo::from_parts(parts, true, false, crate::Source::Builtin("t".into()))
        };
        let registry = super::RegistryBuilder::new()
            .channel(channel("whatsapp", "WA"))
            .channel(channel("sms", "SMS"))
            .channel(channel("twelve_bytes", "TB"))
            .channel(channel("more_than_sixteen_bytes", "LONG"))
            .build()
            .unwrap();
        for (p, channel) in registry.channels().iter().enumerate() {
            assert_eq!(registry.channel_position(channel.id()), Some(p));
            assert_eq!(registry.channel_position(&channel.id().to_ascii_uppercase()), Some(p));
        }
        assert_eq!(registry.channel_position("whatsap"), None);
        assert_eq!(registry.channel_position("whatsappp"), None);
    }

    #[test]
    fn the_in_line_comparisons_agree_with_eq_at_every_length_and_position() {
        fn same_str(a: &[u8], b: &[u8]) -> bool {
            super::same_str(std::str::from_utf8(a).unwrap_or_default(), std::str::from_utf8(b).unwrap_or_default())
        }
        type Same = fn(&[u8], &[u8]) -> bool;
        let comparisons: [(&str, Same); 2] = [("same_str", same_str), ("same_short", super::same_short)];
        for (name, same) in comparisons {
            for n in 0..40usize {
                let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
                assert!(same(a.as_bytes(), a.clone().as_bytes()), "{name} {a:?}");
                assert!(!same(a.as_bytes(), format!("{a}x").as_bytes()), "{name} {a:?}");
                for at in 0..n {
                    let mut b = a.clone().into_bytes();
                    b[at] = b'#';
                    assert!(!same(a.as_bytes(), &b), "{name} {a:?} {b:?}");
                }
            }
        }
    }
}
