//! The stable C ABI between the Switchboard host and a plugin (version 1.1).
//!
//! Only `#[repr(C)]` data, plain integers, borrowed byte slices and
//! `extern "C"` function pointers cross the boundary: no `dyn Trait`,
//! `String`, `Vec` or other Rust-ABI types, so a plugin built with another
//! rustc than the host, or written in C, works. Ownership never crosses
//! either: text from the plugin reaches the host through a host callback
//! that copies it at once, and a rule object built by the plugin is freed
//! by the plugin (`free`). The host reads the [`Header`] (magic, then
//! version) before touching anything else.
//!
//! This file is the single definition of the ABI: the C header
//! `plugins/sdk/include/switchboard_plugin.h` is generated from it with
//! cbindgen (a test fails when the checked-in header is stale and prints
//! the command that regenerates it).
//!
//! # Versions
//!
//! A host speaking 1.N loads plugins of ABI 1.0 to 1.N. ABI 1.1 added, over
//! 1.0: a leading `struct_size` in [`PluginV1`], [`RuleV1`], [`ChannelV1`],
//! [`OptionV1`] and [`ContextV1`], so that a later minor version can append
//! fields (a reader uses only the fields that fit in `struct_size`, and
//! arrays of descriptors are laid out with a stride of their first
//! element's `struct_size`); nullable function pointers, checked by the
//! host when it loads the plugin; and [`RuleV1::user_data`], handed back to
//! `build`, so that one builder serves any number of rules.
//!
//! # Threading
//!
//! The host decides on many threads at once. A plugin must allow:
//!
//! - `evaluate` called on the **same rule object from many threads at the
//!   same time**: a rule object must be immutable after `build`, or guard
//!   what it changes (atomics, a mutex). The same holds for any global
//!   state the plugin keeps.
//! - `build` and `free` called on any thread, while other rule objects of
//!   the same plugin are being evaluated on other threads (a reload builds
//!   the new configuration's rules while the old one still decides). `free`
//!   is called exactly once per object built, never while that object is
//!   being evaluated.
//! - the entry function called more than once, from any thread; it returns
//!   the same header each time.
//!
//! Everything the host passes to a call (the context, its strings, arrays,
//! sinks and callbacks) is valid only during that call and only on the
//! thread that made it. Everything the plugin hands to the host
//! (descriptors, strings in them) must stay valid and unchanged for the
//! life of the process: libraries are never unloaded.

use std::ffi::c_void;

/// The symbol every plugin exports (`extern "C" fn() -> *const Header`).
pub const ENTRY_SYMBOL: &str = "switchboard_plugin_entry";
/// The first 8 bytes of a [`Header`]: `SWBPLUG1` read as a little-endian
/// integer.
pub const MAGIC: u64 = 0x3147_554C_5042_5753;
/// The ABI major version: a host refuses any other.
pub const ABI_MAJOR: u16 = 1;
/// The ABI minor version: a host accepts plugins from minor 0 up to its own.
pub const ABI_MINOR: u16 = 1;

/// A borrowed UTF-8 string (not NUL-terminated): valid for the duration of
/// the call it is passed to or, inside descriptors, for the life of the
/// loaded library.
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

/// What `switchboard_plugin_entry` returns: checked field by field, magic
/// first. Its layout is the same in every 1.x version.
#[repr(C)]
#[derive(Debug)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: u64,
    /// [`ABI_MAJOR`] of the SDK or header the plugin was built with.
    pub abi_major: u16,
    /// [`ABI_MINOR`] of that SDK or header.
    pub abi_minor: u16,
    /// The plugin's contents; read only once the version matched.
    pub plugin: *const PluginV1,
}

/// A plugin's contents (ABI 1.1).
#[repr(C)]
#[derive(Debug)]
pub struct PluginV1 {
    /// `sizeof` this struct as the plugin was built (ABI 1.1 and later).
    pub struct_size: usize,
    /// The plugin's name.
    pub name: Str,
    /// The plugin's own version.
    pub version: Str,
    /// Rule descriptors (an array with the stride of its first element's
    /// `struct_size`); may be null when `rule_count` is 0.
    pub rules: *const RuleV1,
    /// How many.
    pub rule_count: usize,
    /// Channel descriptors (as `rules`).
    pub channels: *const ChannelV1,
    /// How many.
    pub channel_count: usize,
}

/// A channel's syntax (ABI 1.1).
#[repr(C)]
#[derive(Debug)]
pub struct ChannelV1 {
    /// `sizeof` this struct as the plugin was built.
    pub struct_size: usize,
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

/// Option kinds ([`OptionV1::kind`], [`OptionValueV1::kind`]).
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

/// One option a rule accepts (ABI 1.1).
#[repr(C)]
#[derive(Debug)]
pub struct OptionV1 {
    /// `sizeof` this struct as the plugin was built.
    pub struct_size: usize,
    /// Key in rules.yaml.
    pub name: Str,
    /// One of [`option_kind`].
    pub kind: u8,
    /// For `CHOICE`: the allowed words.
    pub choices: *const Str,
    /// How many.
    pub choice_count: usize,
    /// The default, as written in YAML (shown by `switchboard rules`; the
    /// host does not apply it: an option not given is absent from `build`'s
    /// options).
    pub default_value: Str,
    /// One line of documentation.
    pub doc: Str,
}

/// An option value given in rules.yaml (borrowed for the `build` call).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct OptionValueV1 {
    /// The key.
    pub name: Str,
    /// One of [`option_kind`] (`STRING` for both `CHOICE` and `STRING`).
    pub kind: u8,
    /// For `BOOL`: 1 or 0.
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

/// `on_unavailable` defaults ([`RuleV1::on_unavailable`]).
pub mod on_unavailable {
    /// The rule has no unusable case.
    pub const NONE: u8 = 0;
    /// Fail by default.
    pub const ERROR: u8 = 1;
    /// Fall through by default.
    pub const SKIP: u8 = 2;
}

/// Hands text to the host, which copies it before returning. (Every
/// function pointer type of the ABI is nullable, so that C can spell it;
/// the host checks at load which ones a plugin must provide.)
pub type SinkFn = Option<extern "C" fn(sink: *mut c_void, text: Str)>;

/// Builds a rule object from its options: called with the rule's
/// [`RuleV1::user_data`]. Returns the rule object (any non-null pointer the
/// plugin chooses), or null with a message written to `sink` (shown at the
/// rule's entry in rules.yaml). May run on any thread.
pub type BuildFn = Option<
    extern "C" fn(
        user_data: *const c_void,
        options: *const OptionValueV1,
        count: usize,
        sink: *mut c_void,
        write: SinkFn,
    ) -> *mut c_void,
>;

/// Evaluates a rule object for one request: returns a [`status`] and fills
/// `answer`. Called from many threads at once, on the same object too.
pub type EvaluateFn = Option<extern "C" fn(rule: *const c_void, cx: *const ContextV1, answer: *mut AnswerV1) -> u32>;

/// Frees a rule object built by this plugin; called once per object, on
/// any thread, never while the object is being evaluated.
pub type FreeFn = Option<extern "C" fn(rule: *mut c_void)>;

/// A rule descriptor (ABI 1.1).
#[repr(C)]
#[derive(Debug)]
pub struct RuleV1 {
    /// `sizeof` this struct as the plugin was built.
    pub struct_size: usize,
    /// Rule id (`business_hours`): lower-case ASCII letters, digits, `_`.
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
    /// Anything the plugin wants `build` to receive (may be null).
    pub user_data: *const c_void,
    /// Builds a rule object. Required: null is a load error.
    pub build: BuildFn,
    /// Evaluates one. Required: null is a load error.
    pub evaluate: EvaluateFn,
    /// Frees one. Optional: null when rule objects need no freeing.
    pub free: FreeFn,
}

/// Return values of `evaluate`.
pub mod status {
    /// `answer` is filled.
    pub const OK: u32 = 0;
    /// The rule panicked (or failed in a way it cannot answer); the message
    /// was written to the context's `message_sink`.
    pub const PANICKED: u32 = 1;
}

/// What a rule answers ([`AnswerV1::outcome`]).
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
    /// How many users it is assigned to (see `ContextV1::user_at`).
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

/// The number of instances on the sending channel.
pub type InstanceCountFn = Option<extern "C" fn(host: *const c_void) -> usize>;
/// Fills `out` with the `position`th instance (by ascending index); returns
/// 0 past the end.
pub type InstanceAtFn = Option<extern "C" fn(host: *const c_void, position: usize, out: *mut InstanceV1) -> u8>;
/// The position of the instance with this index, or `SIZE_MAX`.
pub type FindIndexFn = Option<extern "C" fn(host: *const c_void, index: u64) -> usize>;
/// Fills `out` with user `k` of the `position`th instance; returns 0 if none.
pub type UserAtFn = Option<extern "C" fn(host: *const c_void, position: usize, k: usize, out: *mut Str) -> u8>;

/// Everything a rule may read about one request, borrowed for the call
/// (ABI 1.1). Instances are reached through callbacks so that a large
/// location costs nothing until it is read. The host fills every callback;
/// they are nullable only so that C can spell the type.
#[repr(C)]
#[derive(Debug)]
pub struct ContextV1 {
    /// `sizeof` this struct as the host was built: a plugin reads only the
    /// fields it knows, and the host only ever appends.
    pub struct_size: usize,
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
    /// See [`InstanceCountFn`].
    pub instance_count: InstanceCountFn,
    /// See [`InstanceAtFn`].
    pub instance_at: InstanceAtFn,
    /// See [`FindIndexFn`].
    pub find_index: FindIndexFn,
    /// See [`UserAtFn`].
    pub user_at: UserAtFn,
    /// Where a failing answer's kind goes (`write(kind_sink, ...)`).
    pub kind_sink: *mut c_void,
    /// Where a failing answer's message (or a panic message) goes.
    pub message_sink: *mut c_void,
    /// Writes to a sink.
    pub write: SinkFn,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_spells_swbplug1() {
        assert_eq!(MAGIC, u64::from_le_bytes(*b"SWBPLUG1"));
    }
}
