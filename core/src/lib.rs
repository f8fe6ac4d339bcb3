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
//! - the [`Registry`] frozen from descriptors, and the [`LocationBuilder`]
//!   every world is built with;
//! - the plugin loading contract ([`PluginLoader`], [`PluginEntry`],
//!   [`Contribution`]) and the [`InputLimits`];
//! - the [`capacity`] boundary: limits, calendar windows and the
//!   [`CapacityStore`] trait whose stores live in `switchboard-state`.
//!
//! The compiled rules file (the plan), the pure evaluator and the decision
//! it returns are `switchboard-engine`. Reading files is not here either:
//! the rules.yaml compiler and the world file readers are
//! `switchboard-files`. File watching, plugin loading and the capacity
//! stores are I/O and live in other crates.

pub mod capacity;
mod channel;
pub mod health;
mod limits;
mod model;
pub mod pattern;
mod plugin;
pub mod recipient;
mod registry;
mod rule;
pub mod suggest;
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;
pub mod warmup;
mod world;

/// Interns a rule id: rule ids live as `&'static str` so that a decision's
/// trace copies pointers, not reference counts. The set only grows with
/// distinct ids ever registered (built-ins and plugins), which is bounded.
/// (Public for the engine, whose plan steps hold interned ids.)
#[doc(hidden)]
pub fn intern(id: &str) -> &'static str {
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
pub use health::{DeliveryUpdate, HealthPolicy, HealthRecord, HealthState, WindowCounts};
pub use limits::InputLimits;
pub use model::{
    checked_message_id, normalize_phone, normalize_phone_into, salvage_message_id, Contact, Instance, InstanceSpec,
    MapOnly, Request, Users, WarmupSpec, MAX_MESSAGE_ID_BYTES,
};
pub use pattern::{PatternKind, PatternMatch, Scan, Scanner};
pub use plugin::{Contribution, PluginEntry, PluginKind, PluginLoader};
pub use recipient::{Inbound, InboundLog, LastInbound};
pub use registry::{ChannelInfo, Registry, RegistryBuilder, RegistryError, RuleInfo, SharedBuild, Source};
pub use rule::{
    rule_fn, BuildFn, ErrorKind, OnUnavailable, OptionKind, OptionSpec, OptionValue, Outcome, Recall, RuleContext,
    RuleDescriptor, RuleFn, RuleOptions, SelectionRule, Written,
};
pub use warmup::Warmup;
pub use world::{InstanceFields, InstanceView, Location, LocationBuilder, NoLocation, World};
