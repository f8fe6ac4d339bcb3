//! The stable C ABI between the Switchboard host and a plugin (version 1).
//!
//! Only `#[repr(C)]` data, plain integers, borrowed byte slices and
//! `extern "C"` function pointers cross the boundary: no `dyn Trait`,
//! `String`, `Vec` or other Rust-ABI types, so a plugin built with another
//! rustc than the host works. Ownership never crosses either: text from the
//! plugin reaches the host through a host callback that copies it at once,
//! and a rule object built by the plugin is freed by the plugin
//! (`free_rule`). The host reads the [`Header`] (magic, then version)
//! before touching anything else.

use std::ffi::c_void;

/// The symbol every plugin exports (`extern "C" fn() -> *const Header`).
pub const ENTRY_SYMBOL: &str = "switchboard_plugin_entry";
/// The first 8 bytes of a [`Header`]: `SWBPLUG1`.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SWBPLUG1");
/// The ABI major version: a host refuses any other.
pub const ABI_MAJOR: u16 = 1;
/// The ABI minor version: a host accepts plugins up to its own minor.
pub const ABI_MINOR: u16 = 0;

/// A borrowed UTF-8 string: valid for the duration of the call it is
/// passed to (or, inside descriptors, for the life of the loaded library).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Str {
    /// First byte; may be null when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl Str {
    /// The empty string.
    pub const EMPTY: Str = Str { ptr: std::ptr::null(), len: 0 };

    /// Borrows a `&str` (the caller keeps it alive while the `Str` is used).
    pub const fn new(s: &str) -> Str {
        Str { ptr: s.as_ptr(), len: s.len() }
    }
}

/// What `switchboard_plugin_entry` returns: checked field by field, magic first.
#[repr(C)]
#[derive(Debug)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`ABI_MAJOR`] of the SDK the plugin was built with.
    pub abi_major: u16,
    /// [`ABI_MINOR`] of that SDK.
    pub abi_minor: u16,
    /// The plugin's contents; read only once the version matched.
    pub plugin: *const PluginV1,
}

/// A plugin's contents (ABI 1.x).
#[repr(C)]
#[derive(Debug)]
pub struct PluginV1 {
    /// The plugin's name.
    pub name: Str,
    /// The plugin's own version.
    pub version: Str,
    /// Rule descriptors.
    pub rules: *const RuleV1,
    /// How many.
    pub rule_count: usize,
    /// Channel descriptors.
    pub channels: *const ChannelV1,
    /// How many.
    pub channel_count: usize,
}

/// A channel's syntax.
#[repr(C)]
#[derive(Debug)]
pub struct ChannelV1 {
    /// Channel id (`telegram`).
    pub id: Str,
    /// Pattern code (`TG`).
    pub code: Str,
    /// Tag prefix (`tg:`).
    pub tag_prefix: Str,
    /// One line for `switchboard rules`.
    pub summary: Str,
    /// 1 if `{ C#N }` is an override.
    pub has_override: u8,
    /// 1 if `{TEMP-C#N}` is a temporary switch.
    pub has_temporary_switch: u8,
}

/// Option kinds.
pub mod option_kind {
    /// One of `choices`.
    pub const CHOICE: u8 = 0;
    /// `true` / `false`.
    pub const BOOL: u8 = 1;
    /// A whole number.
    pub const INTEGER: u8 = 2;
    /// Any string.
    pub const STRING: u8 = 3;
    /// A list of strings.
    pub const STRING_LIST: u8 = 4;
}

/// One option a rule accepts.
#[repr(C)]
#[derive(Debug)]
pub struct OptionV1 {
    /// Key in rules.yaml.
    pub name: Str,
    /// One of [`option_kind`].
    pub kind: u8,
    /// For `CHOICE`: the allowed words.
    pub choices: *const Str,
    /// How many.
    pub choice_count: usize,
    /// The default, as written in YAML.
    pub default: Str,
    /// One line of documentation.
    pub doc: Str,
}

/// An option value given in rules.yaml (borrowed for the `build` call).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OptionValueV1 {
    /// The key.
    pub name: Str,
    /// One of [`option_kind`].
    pub kind: u8,
    /// For `BOOL`.
    pub boolean: u8,
    /// For `INTEGER`.
    pub integer: i64,
    /// For `CHOICE` and `STRING`.
    pub string: Str,
    /// For `STRING_LIST`.
    pub list: *const Str,
    /// How many.
    pub list_len: usize,
}

/// `on_unavailable` defaults.
pub mod on_unavailable {
    /// The rule has no unusable case.
    pub const NONE: u8 = 0;
    /// Fail by default.
    pub const ERROR: u8 = 1;
    /// Fall through by default.
    pub const SKIP: u8 = 2;
}

/// Hands text to the host, which copies it before returning.
pub type SinkFn = extern "C" fn(sink: *mut c_void, text: Str);

/// Builds a rule from its options. Returns the rule object, or null with
/// a message written to `sink`.
pub type BuildFnV1 =
    extern "C" fn(options: *const OptionValueV1, count: usize, sink: *mut c_void, write: SinkFn) -> *mut c_void;

/// Evaluates a rule; returns a [`status`] and fills `answer`.
pub type EvaluateFnV1 = extern "C" fn(rule: *const c_void, cx: *const ContextV1, answer: *mut AnswerV1) -> u32;

/// Frees a rule object built by this plugin.
pub type FreeFnV1 = extern "C" fn(rule: *mut c_void);

/// A rule descriptor.
#[repr(C)]
#[derive(Debug)]
pub struct RuleV1 {
    /// Rule id (`business_hours`).
    pub id: Str,
    /// One line for `switchboard rules`.
    pub summary: Str,
    /// Error code of its failures (≥ 1000).
    pub code: u32,
    /// One of [`on_unavailable`].
    pub on_unavailable: u8,
    /// Its options.
    pub options: *const OptionV1,
    /// How many.
    pub option_count: usize,
    /// Builds a rule object.
    pub build: BuildFnV1,
    /// Evaluates one.
    pub evaluate: EvaluateFnV1,
    /// Frees one.
    pub free: FreeFnV1,
}

/// Return values of `evaluate`.
pub mod status {
    /// `answer` is filled.
    pub const OK: u32 = 0;
    /// The rule panicked; the message was written to the context's sink.
    pub const PANICKED: u32 = 1;
}

/// What a rule answers.
pub mod outcome {
    /// `instance_index` is selected.
    pub const SELECTED: u8 = 0;
    /// The rule does not apply.
    pub const NO_MATCH: u8 = 1;
    /// Unusable (`on_unavailable` decides); kind and message via the sinks.
    pub const UNUSABLE: u8 = 2;
    /// Failed; kind and message via the sinks.
    pub const FAILED: u8 = 3;
}

/// The answer a rule fills in.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct AnswerV1 {
    /// One of [`outcome`].
    pub outcome: u8,
    /// For `SELECTED`: the instance's index (the N in `{ C#N }`).
    pub instance_index: u64,
}

/// One instance, borrowed from the host for the duration of the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct InstanceV1 {
    /// Instance id.
    pub id: Str,
    /// Its index.
    pub index: u64,
    /// Phone as written.
    pub phone: Str,
    /// Normalized phone digits.
    pub phone_digits: Str,
    /// 1 if connected.
    pub connected: u8,
    /// 1 if the location's default on this channel.
    pub is_default: u8,
    /// How many users it is assigned to (see `ContextV1::user`).
    pub user_count: usize,
}

/// One pattern of the sending channel found in the body.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PatternV1 {
    /// 0 override, 1 temporary switch.
    pub kind: u8,
    /// 1 if `index` is set (0: a number too large for any index).
    pub has_index: u8,
    /// The index named.
    pub index: u64,
}

/// Everything a rule may read about one request, borrowed for the call.
/// Instances are reached through callbacks so that a large location costs
/// nothing until it is read.
#[repr(C)]
#[derive(Debug)]
pub struct ContextV1 {
    /// Location id.
    pub location: Str,
    /// Sending channel id.
    pub channel: Str,
    /// The original body.
    pub body: Str,
    /// 1 if the request has a contact.
    pub has_contact: u8,
    /// The contact id (empty if none).
    pub contact_id: Str,
    /// The contact's tags.
    pub tags: *const Str,
    /// How many.
    pub tag_count: usize,
    /// 1 if the contact has an assigned user.
    pub has_assigned_user: u8,
    /// The assigned user.
    pub assigned_user: Str,
    /// The sending channel's patterns, in body order.
    pub patterns: *const PatternV1,
    /// How many.
    pub pattern_count: usize,
    /// Opaque host state for the callbacks below.
    pub host: *const c_void,
    /// The number of instances on this channel.
    pub instance_count: extern "C" fn(host: *const c_void) -> usize,
    /// Fills `out` with the `position`th instance (by index); returns 0 past the end.
    pub instance_at: extern "C" fn(host: *const c_void, position: usize, out: *mut InstanceV1) -> u8,
    /// The position of the instance with this index, or `usize::MAX`.
    pub find_index: extern "C" fn(host: *const c_void, index: u64) -> usize,
    /// Fills `out` with user `k` of the `position`th instance; returns 0 if none.
    pub user_at: extern "C" fn(host: *const c_void, position: usize, k: usize, out: *mut Str) -> u8,
    /// Where a failing answer's kind goes.
    pub kind_sink: *mut c_void,
    /// Where a failing answer's message (or a panic message) goes.
    pub message_sink: *mut c_void,
    /// Writes to a sink.
    pub write: SinkFn,
}
