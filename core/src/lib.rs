//! # switchboard-core
//!
//! The contract of Switchboard, the engine that decides which sender
//! instance (a WhatsApp number, an iMessage account, an SMS number) carries
//! each outbound message. Rule and channel authors compile against this
//! crate only:
//!
//! - [`SelectionRule`] and [`ChannelSyntax`], the two extension traits, and
//!   the descriptors that register them ([`register_rule!`],
//!   [`register_channel!`]);
//! - the data model ([`Request`], [`Contact`], [`InstanceSpec`],
//!   [`Instance`], [`Location`], [`World`]);
//! - the [`Registry`] frozen from descriptors;
//! - the compiled rules file, an immutable [`Plan`] of one rule [`Chain`]
//!   per channel, and the [`LocationBuilder`] every world is built with;
//! - the pure evaluator, [`Plan::select`], returning a [`Decision`];
//! - the [`capacity`] boundary: limits, calendar windows and the
//!   [`CapacityStore`] trait whose stores live in `switchboard-state`.
//!
//! Reading files is not here: the rules.yaml compiler and the world file
//! readers are `switchboard-files`. File watching, plugin loading and the
//! capacity stores are I/O and live in other crates.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard_core::*;
//!
//! struct Sms;
//! impl ChannelSyntax for Sms {
//!     fn id(&self) -> &str { "sms" }
//!     fn code(&self) -> &str { "SMS" }
//!     fn tag_prefix(&self) -> &str { "sms:" }
//!     fn has_override(&self) -> bool { false }
//! }
//!
//! // A tiny rule: the lowest-indexed connected instance.
//! fn first(_: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
//!     Ok(Box::new(rule_fn(|cx| match cx.instances().iter().find(|i| i.is_connected()) {
//!         Some(i) => Outcome::selected(i),
//!         None => Outcome::no_match(),
//!     })))
//! }
//! let descriptor = RuleDescriptor {
//!     id: "first", summary: "first connected", code: 1000, on_unavailable: None,
//!     options: &[], build: first, source: "doc",
//! };
//! static SMS: Sms = Sms;
//! let registry = RegistryBuilder::new()
//!     .rule(RuleInfo::from_descriptor(&descriptor))
//!     .channel(ChannelInfo::from_descriptor(&ChannelDescriptor { syntax: &SMS, source: "doc" }))
//!     .build()
//!     .unwrap();
//! let registry = Arc::new(registry);
//! // What `rules: [first]` compiles to.
//! let rule = registry.rule("first").unwrap();
//! let first = Step::new(rule, None, (rule.build)(&RuleOptions::default()).unwrap());
//! let plan = Plan::new(PlanParts {
//!     registry: registry.clone(),
//!     chains: vec![Chain::new(vec![first], Vec::new(), false)],
//!     plugins: Vec::new(),
//!     content_hash: 0,
//!     limits: InputLimits::default(),
//!     warnings: Vec::new(),
//!     capacity: None,
//!     health: None,
//! });
//! // What a world file with one location and one instance reads into.
//! let mut builder = LocationBuilder::new(&registry);
//! builder.push(InstanceFields {
//!     id: "s1", channel: "sms", index: None, phone: "+1 555", connected: true, default: false,
//!     users: Users::new(), weight: None, pool: None, limits: None, reply_window: None, warmup: None,
//! }).unwrap();
//! let mut world = World::default();
//! world.insert(builder.finish("l1".into()));
//! let request = Request::from_json(r#"{"location":"l1","channel":"sms","body":"hi"}"#).unwrap();
//! let decision = plan.select(&world, &request);
//! assert_eq!(decision.instance().map(|i| i.id()), Some("s1"));
//! ```

pub mod capacity;
mod channel;
mod decision;
pub mod diag;
mod eval;
pub mod health;
mod model;
pub mod pattern;
mod plan;
pub mod recipient;
mod registry;
mod rule;
#[cfg(test)]
mod testing;
pub mod warmup;
mod world;

/// Interns a rule id: rule ids live as `&'static str` so that a decision's
/// trace copies pointers, not reference counts. The set only grows with
/// distinct ids ever registered (built-ins and plugins), which is bounded.
pub(crate) fn intern(id: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static IDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut ids = IDS.get_or_init(Mutex::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = ids.get(id) {
        return known;
    }
    let leaked: &'static str = Box::leak(id.to_owned().into_boxed_str());
    ids.insert(leaked);
    leaked
}

#[doc(hidden)]
pub use inventory;

pub use capacity::{
    AtCapacity, CapacityStore, ConversationKey, LiveState, Reservation, ReservationRequest, StatusOverride,
    StatusUpdate, StoreError, StoreErrorKind,
};
pub use channel::{tag_number, ChannelDescriptor, ChannelSyntax};
pub use decision::json;
pub use decision::{
    Decision, SelectionError, TraceEntry, TraceOutcome, CODE_INVALID_REQUEST, CODE_NO_INSTANCE, CODE_STORE_UNAVAILABLE,
};
pub use diag::{Diagnostic, FileErrors, Severity};
pub use health::{DeliveryUpdate, HealthPolicy, HealthRecord, HealthState, WindowCounts};
pub use model::{
    checked_message_id, normalize_phone, normalize_phone_into, salvage_message_id, Contact, Instance, InstanceSpec,
    MapOnly, Request, Users, WarmupSpec, MAX_MESSAGE_ID_BYTES,
};
pub use pattern::{PatternKind, PatternMatch, Scan, Scanner};
pub use plan::{
    content_hash, CapacityConfig, Chain, Contribution, EntrySummary, InputLimits, OnStoreError, Plan, PlanParts,
    PluginEntry, PluginKind, PluginLoader, Step, StoreKind,
};
pub use recipient::{Inbound, InboundLog, LastInbound};
pub use registry::{ChannelInfo, Registry, RegistryBuilder, RegistryError, RuleInfo, SharedBuild, Source};
pub use rule::{
    rule_fn, BuildFn, ErrorKind, OnUnavailable, OptionKind, OptionSpec, OptionValue, Outcome, Recall, RuleContext,
    RuleDescriptor, RuleFn, RuleOptions, SelectionRule, Written,
};
pub use warmup::Warmup;
pub use world::{InstanceFields, InstanceView, Location, LocationBuilder, NoLocation, World};
