//! # switchboard-files
//!
//! The readers of Switchboard's two data files, apart from the contract in
//! `switchboard-core` (which a rule or plugin author reads, and which has
//! no parser):
//!
//! - a YAML (or JSON) document read once into a tree that keeps the line
//!   and column of every node;
//! - the rules.yaml compiler: [`compile`] (or [`compile_with`], which also
//!   loads the plugins the file lists) validates the tree against a
//!   [`Registry`] and reports every problem, located, or returns an
//!   immutable [`Plan`] (of `switchboard-engine`);
//! - the world file readers: [`read_world`] takes the fast path (a JSON
//!   world streamed a location at a time, or plain serde for YAML) and
//!   falls back to the located slow path ([`diagnose_world`]) to say what
//!   is wrong.
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
//! let plan = switchboard_files::compile("rules: [first]", "rules.yaml", registry.clone()).unwrap();
//! let world = switchboard_files::read_world(
//!     "locations: [{id: l1, instances: [{id: s1, channel: sms, phone: '+1 555', connected: true}]}]",
//!     "world.yaml",
//!     &registry,
//! ).unwrap();
//! let request = Request::from_json(r#"{"location":"l1","channel":"sms","body":"hi"}"#).unwrap();
//! let decision = plan.select(&world, &request);
//! assert_eq!(decision.instance().map(|i| i.id()), Some("s1"));
//! ```

#[cfg(doc)]
use switchboard_core::Registry;
use switchboard_engine::Diagnostic;
#[cfg(doc)]
use switchboard_engine::Plan;

mod plugin_file;
mod rules;
mod tree;
mod world;

pub use plugin_file::{read_plugin_file, sha256_hex, PluginFile};
pub use rules::{compile, compile_with, option_default, options_with_defaults};
pub use world::{diagnose_world, is_json_file, read_json_world, read_world};

/// An error from serde_yaml (a file read with plain serde, such as a
/// scenario file), its position moved out of the text.
pub fn yaml_diagnostic(err: &serde_yaml::Error) -> Diagnostic {
    Diagnostic::from_serde(err.to_string(), err.location().map(|l| (l.line(), l.column())))
}
