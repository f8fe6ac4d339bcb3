//! The compiled rules file: one rule chain per channel, the input limits,
//! the plugins listed and the `capacity:` section, immutable once built.
//! The rules.yaml compiler (in `switchboard-files`) builds a [`Plan`] with
//! [`Plan::new`]; the evaluator ([`Plan::select`]) reads it.

use std::fmt;
use std::sync::Arc;

use crate::Diagnostic;
use switchboard_core::{
    CapacityStore, HealthPolicy, InputLimits, OnUnavailable, PluginEntry, Registry, RuleInfo, SelectionRule,
};

/// One enabled rule in a chain, built with its options.
#[derive(Clone)]
pub struct Step {
    pub(crate) id: &'static str,
    pub(crate) code: u32,
    pub(crate) on_unavailable: Option<OnUnavailable>,
    pub(crate) rule: Arc<dyn SelectionRule>,
    /// [`SelectionRule::needs_patterns`], asked once.
    pub(crate) needs_patterns: bool,
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

/// Where capacity counts live (rules.yaml `capacity.store`, docs/capacity.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    /// This process's memory (the default).
    Memory,
    /// A Redis server shared by every process that uses it.
    Redis,
}

impl StoreKind {
    /// The word written in rules.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Redis => "redis",
        }
    }
}

/// What a selection does when the capacity store cannot answer
/// (rules.yaml `capacity.on_store_error`, docs/capacity.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OnStoreError {
    /// Answer code 108 `store_unavailable` (the default).
    FailClosed,
    /// Decide as if there were no limits, and say so in the trace.
    FailOpen,
}

impl OnStoreError {
    /// The word written in rules.yaml.
    pub fn as_str(self) -> &'static str {
        match self {
            OnStoreError::FailClosed => "fail_closed",
            OnStoreError::FailOpen => "fail_open",
        }
    }
}

/// The `capacity:` section of rules.yaml (docs/capacity.md). Core only describes
/// the store; the host (the `switchboard` library) builds it and attaches it
/// with [`Plan::with_store`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CapacityConfig {
    /// Where the counts live.
    pub store: StoreKind,
    /// The Redis server (`store: redis`): `redis://` or `rediss://`
    /// (TLS), with an optional `user:password@`.
    pub redis_url: String,
    /// The seed nodes of a Redis Cluster (`redis_cluster`), used instead
    /// of `redis_url` when not empty.
    pub redis_cluster: Vec<String>,
    /// A PEM file of CAs to trust for `rediss://` (`tls_ca_file`), as
    /// written (relative to the rules file).
    pub tls_ca_file: Option<String>,
    /// The prefix of every Redis key.
    pub key_prefix: String,
    /// What to do when the store cannot answer.
    pub on_store_error: OnStoreError,
}

impl Default for CapacityConfig {
    fn default() -> Self {
        CapacityConfig {
            store: StoreKind::Memory,
            redis_url: "redis://127.0.0.1:6379/0".to_owned(),
            redis_cluster: Vec::new(),
            tls_ca_file: None,
            key_prefix: "switchboard:".to_owned(),
            on_store_error: OnStoreError::FailClosed,
        }
    }
}

/// The rule chain of one channel.
#[derive(Clone)]
pub struct Chain {
    pub(crate) steps: Vec<Step>,
    pub(crate) entries: Vec<EntrySummary>,
    pub(crate) overridden: bool,
    /// Whether a step reads the store's day counts (`least_used`).
    pub(crate) reads_usage: bool,
    /// How long selections are remembered, when a step reads conversation
    /// memory (`conversation`): the first such step's `ttl`.
    pub(crate) memory_ttl: Option<std::time::Duration>,
}

/// A compiled rules.yaml: one rule chain per registered channel, ready to
/// evaluate from many threads. Immutable; a reload builds a new one.
#[derive(Clone)]
pub struct Plan {
    pub(crate) registry: Arc<Registry>,
    pub(crate) chains: Vec<Chain>,
    plugins: Vec<PluginEntry>,
    content_hash: u64,
    pub(crate) limits: InputLimits,
    warnings: Vec<Diagnostic>,
    /// The `capacity:` section, when the file has one.
    capacity: Option<CapacityConfig>,
    /// The `health:` section, when the file has one.
    health: Option<HealthPolicy>,
    /// The capacity store the host attached ([`Plan::with_store`]).
    pub(crate) store: Option<Arc<dyn CapacityStore>>,
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

impl Step {
    /// `rule` enabled in a chain, built with its options as `built`.
    pub fn new(rule: &RuleInfo, on_unavailable: Option<OnUnavailable>, built: Box<dyn SelectionRule>) -> Step {
        Step {
            id: switchboard_core::intern(&rule.id),
            code: rule.code,
            on_unavailable,
            needs_patterns: built.needs_patterns(),
            rule: Arc::from(built),
        }
    }

    /// The rule id.
    pub fn id(&self) -> &'static str {
        self.id
    }
}

impl Chain {
    /// The chain of enabled `steps`, in priority order; `entries` are every
    /// configured entry, disabled ones included (for display), and
    /// `overridden` says whether the channel has its own list.
    pub fn new(steps: Vec<Step>, entries: Vec<EntrySummary>, overridden: bool) -> Chain {
        Chain {
            reads_usage: steps.iter().any(|s| s.rule.reads_usage()),
            memory_ttl: steps.iter().find_map(|s| s.rule.memory_ttl()),
            steps,
            entries,
            overridden,
        }
    }

    /// The enabled steps, in priority order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether an enabled step can select for any request
    /// ([`SelectionRule::is_fallback`]): else the chain can run out.
    pub fn has_fallback(&self) -> bool {
        self.steps.iter().any(|s| s.rule.is_fallback())
    }
}

/// What a compiler hands to [`Plan::new`].
pub struct PlanParts {
    /// The registry the file was compiled against (plugins included).
    pub registry: Arc<Registry>,
    /// One chain per channel of `registry`, in its order.
    pub chains: Vec<Chain>,
    /// The plugins the file lists.
    pub plugins: Vec<PluginEntry>,
    /// [`content_hash`] of the file's text.
    pub content_hash: u64,
    /// The input limits in force.
    pub limits: InputLimits,
    /// Valid but surely unintended configuration, in file order.
    pub warnings: Vec<Diagnostic>,
    /// The `capacity:` section, when the file has one.
    pub capacity: Option<CapacityConfig>,
    /// The `health:` section, when the file has one.
    pub health: Option<HealthPolicy>,
}

impl Plan {
    /// The plan a compiler built, with no capacity store attached.
    pub fn new(parts: PlanParts) -> Plan {
        let PlanParts { registry, chains, plugins, content_hash, limits, warnings, capacity, health } = parts;
        Plan { registry, chains, plugins, content_hash, limits, warnings, capacity, health, store: None }
    }

    /// The `health:` section of the file, if it has one: without it,
    /// `delivery` events change no instance's health (docs/live-state.md).
    pub fn health(&self) -> Option<&HealthPolicy> {
        self.health.as_ref()
    }

    /// The `capacity:` section of the file, if it has one.
    pub fn capacity(&self) -> Option<&CapacityConfig> {
        self.capacity.as_ref()
    }

    /// What the plan does when its store cannot answer (the section's
    /// `on_store_error`, else `fail_closed`).
    pub fn on_store_error(&self) -> OnStoreError {
        self.capacity.as_ref().map_or(OnStoreError::FailClosed, |c| c.on_store_error)
    }

    /// This plan with `store` counting its instances' limits. Core never
    /// builds a store: the host builds the one [`Plan::capacity`] describes
    /// (a plan without a store never counts, and treats limits as absent).
    pub fn with_store(mut self, store: Arc<dyn CapacityStore>) -> Plan {
        self.store = Some(store);
        self
    }

    /// Whether decisions on `world` may write to the capacity store: the
    /// plan has a store, and a `capacity:` section, a world with limits, a
    /// chain that reads day counts (`least_used`) or one that remembers
    /// conversations (`conversation`). Batches then decide in input order.
    pub fn counts_capacity(&self, world: &switchboard_core::World) -> bool {
        self.store.is_some()
            && (self.capacity.is_some()
                || world.has_limits()
                || self.chains.iter().any(|c| c.reads_usage || c.memory_ttl.is_some()))
    }

    /// The chain of `channel` (its id in any case), if it is registered.
    fn chain(&self, channel: &str) -> Option<&Chain> {
        self.registry.channel_position(channel).and_then(|p| self.chains.get(p))
    }

    /// Whether the chain of `channel` has a rule that reads the store's day
    /// counts (`any_available` `strategy: least_used`), so that every
    /// selected decision there is counted, limits or not.
    pub fn reads_usage(&self, channel: &str) -> bool {
        self.chain(channel).is_some_and(|c| c.reads_usage)
    }

    /// How long the chain of `channel` remembers a selected decision as the
    /// contact's conversation instance: the `ttl` of its first rule that
    /// reads conversation memory (`conversation`); `None` when it has none
    /// (or the channel is unknown), and then nothing is remembered there.
    pub fn memory_ttl(&self, channel: &str) -> Option<std::time::Duration> {
        self.chain(channel).and_then(|c| c.memory_ttl)
    }

    /// Whether a decision selected by the rule `rule` is remembered as the
    /// contact's conversation instance in the chain of `channel`
    /// ([`SelectionRule::is_remembered`]: `temporary_switch` is not);
    /// `None` when that chain has no enabled rule `rule`.
    pub fn is_remembered(&self, channel: &str, rule: &str) -> Option<bool> {
        let chain = self.chain(channel)?;
        chain.steps.iter().find(|s| s.id == rule).map(|s| s.rule.is_remembered())
    }

    /// The capacity store attached to this plan, if any.
    pub fn store(&self) -> Option<&Arc<dyn CapacityStore>> {
        self.store.as_ref()
    }

    /// Valid but surely unintended configuration, e.g. `rules: []` or a
    /// chain without a rule that can always select. `check` prints them; they
    /// never make the compilation fail.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The input limits in force.
    pub fn limits(&self) -> &InputLimits {
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
        self.chain(channel).map_or(&[], |c| &c.entries)
    }

    /// The ids of the enabled rules for a channel, in priority order.
    pub fn order(&self, channel: &str) -> Vec<&str> {
        self.chain(channel).map_or_else(Vec::new, |c| c.steps.iter().map(|s| s.id).collect())
    }

    /// Whether a channel has its own `channels.<id>.rules` list.
    pub fn has_channel_order(&self, channel: &str) -> bool {
        self.chain(channel).is_some_and(|c| c.overridden)
    }
}

/// FNV-1a, 64 bits: a stable fingerprint of a file's content (what
/// [`Plan::content_hash`] and reload status report).
pub fn content_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}
