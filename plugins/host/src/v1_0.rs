//! The ABI 1.0 layouts, which this host still loads: the 1.1 structs less
//! their leading `struct_size`, rule builders without `user_data`. Function
//! pointers are `Option`s here too (same layout), so a C plugin's NULL is
//! caught at load like a 1.1 plugin's.

use std::ffi::c_void;

use switchboard_plugin_sdk::abi::{AnswerV1, FreeFn, OptionValueV1, PatternV1, SinkFn, Str};
use switchboard_plugin_sdk::abi::{FindIndexFn, InstanceAtFn, InstanceCountFn, UserAtFn};

/// A 1.0 plugin's contents.
#[repr(C)]
pub(crate) struct PluginV1_0 {
    pub(crate) name: Str,
    pub(crate) version: Str,
    pub(crate) rules: *const RuleV1_0,
    pub(crate) rule_count: usize,
    pub(crate) channels: *const ChannelV1_0,
    pub(crate) channel_count: usize,
}

/// A 1.0 channel.
#[repr(C)]
pub(crate) struct ChannelV1_0 {
    pub(crate) id: Str,
    pub(crate) code: Str,
    pub(crate) tag_prefix: Str,
    pub(crate) summary: Str,
    pub(crate) has_override: u8,
    pub(crate) has_temporary_switch: u8,
}

/// A 1.0 option.
#[repr(C)]
pub(crate) struct OptionV1_0 {
    pub(crate) name: Str,
    pub(crate) kind: u8,
    pub(crate) choices: *const Str,
    pub(crate) choice_count: usize,
    pub(crate) default_value: Str,
    pub(crate) doc: Str,
}

/// A 1.0 builder: no `user_data`.
pub(crate) type BuildFnV1_0 =
    Option<extern "C" fn(options: *const OptionValueV1, count: usize, sink: *mut c_void, write: SinkFn) -> *mut c_void>;

/// A 1.0 evaluator: takes the 1.0 context.
pub(crate) type EvaluateFnV1_0 =
    Option<extern "C" fn(rule: *const c_void, cx: *const ContextV1_0, answer: *mut AnswerV1) -> u32>;

/// A 1.0 rule.
#[repr(C)]
pub(crate) struct RuleV1_0 {
    pub(crate) id: Str,
    pub(crate) summary: Str,
    pub(crate) code: u32,
    pub(crate) on_unavailable: u8,
    pub(crate) options: *const OptionV1_0,
    pub(crate) option_count: usize,
    pub(crate) build: BuildFnV1_0,
    pub(crate) evaluate: EvaluateFnV1_0,
    pub(crate) free: FreeFn,
}

/// The 1.0 context: the 1.1 one without `struct_size`.
#[repr(C)]
pub(crate) struct ContextV1_0 {
    pub(crate) location: Str,
    pub(crate) channel: Str,
    pub(crate) body: Str,
    pub(crate) has_contact: u8,
    pub(crate) contact_id: Str,
    pub(crate) tags: *const Str,
    pub(crate) tag_count: usize,
    pub(crate) has_assigned_user: u8,
    pub(crate) assigned_user: Str,
    pub(crate) patterns: *const PatternV1,
    pub(crate) pattern_count: usize,
    pub(crate) host: *const c_void,
    pub(crate) instance_count: InstanceCountFn,
    pub(crate) instance_at: InstanceAtFn,
    pub(crate) find_index: FindIndexFn,
    pub(crate) user_at: UserAtFn,
    pub(crate) kind_sink: *mut c_void,
    pub(crate) message_sink: *mut c_void,
    pub(crate) write: SinkFn,
}

impl ContextV1_0 {
    /// The same request, in the 1.0 layout.
    pub(crate) fn from_current(c: &switchboard_plugin_sdk::abi::ContextV1) -> ContextV1_0 {
        ContextV1_0 {
            location: c.location,
            channel: c.channel,
            body: c.body,
            has_contact: c.has_contact,
            contact_id: c.contact_id,
            tags: c.tags,
            tag_count: c.tag_count,
            has_assigned_user: c.has_assigned_user,
            assigned_user: c.assigned_user,
            patterns: c.patterns,
            pattern_count: c.pattern_count,
            host: c.host,
            instance_count: c.instance_count,
            instance_at: c.instance_at,
            find_index: c.find_index,
            user_at: c.user_at,
            kind_sink: c.kind_sink,
            message_sink: c.message_sink,
            write: c.write,
        }
    }
}
