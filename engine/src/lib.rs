//! # switchboard-engine
//!
//! The engine of Switchboard, built on the contract in `switchboard-core`:
//!
//! - the compiled rules file, an immutable [`Plan`] of one rule [`Chain`]
//!   of [`Step`]s per channel, with its `capacity:` section
//!   ([`CapacityConfig`]);
//! - the pure evaluator, [`Plan::select`] (and [`Plan::preview`]): one
//!   request in, one [`Decision`] out, with no I/O but the capacity store
//!   the host attached;
//! - the [`Decision`], its coded [`SelectionError`] and [`TraceEntry`]s,
//!   and its JSON writer (the `select` output line, byte for byte; [`json`]
//!   for hosts that write JSON by hand).
//!
//! The rules.yaml compiler that builds a plan is `switchboard-files`; the
//! host that loads files, plugins and stores is the `switchboard` library.
//!
//! ```
//! use std::sync::Arc;
//! use switchboard_core::*;
//! use switchboard_engine::{Chain, Plan, PlanParts, Step};
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

mod decision;
pub mod diagnostic;
mod eval;
mod plan;

pub use decision::json;
pub use decision::{
    Decision, SelectionError, TraceEntry, TraceOutcome, CODE_INVALID_REQUEST, CODE_NO_INSTANCE, CODE_STORE_UNAVAILABLE,
};
pub use diagnostic::{Diagnostic, FileErrors, Severity};
pub use plan::{content_hash, CapacityConfig, Chain, EntrySummary, OnStoreError, Plan, PlanParts, Step, StoreKind};
