//! # switchboard-plugin-sdk
//!
//! Write Switchboard rules and channels as a shared library. A plugin is a
//! `cdylib` crate depending on this SDK only; one [`export_plugin!`] call
//! exports the single entry symbol the host looks for. Rules feel like
//! built-ins: implement [`Rule`] (one method, reading a [`Context`],
//! answering an [`Answer`]) and describe it with a [`RuleSpec`] whose
//! options come from rules.yaml.
//!
//! ```
//! use switchboard_plugin_sdk::*;
//!
//! /// Routes to the lowest-indexed connected instance.
//! struct FirstConnected;
//!
//! impl Rule for FirstConnected {
//!     fn evaluate(&self, cx: &Context<'_>) -> Answer {
//!         match cx.instances().find(|i| i.connected) {
//!             Some(i) => Answer::Selected(i.index),
//!             None => Answer::NoMatch,
//!         }
//!     }
//! }
//!
//! export_plugin! {
//!     name: "first-connected",
//!     version: "1.0.0",
//!     rules: [RuleSpec {
//!         id: "first_connected",
//!         summary: "the lowest-indexed connected instance",
//!         code: 1001,
//!         on_unavailable: OnUnavailable::None,
//!         options: &[],
//!         build: |_| Ok(Box::new(FirstConnected)),
//!     }],
//!     channels: [],
//! }
//! ```
//!
//! Between host and plugin only `#[repr(C)]` data crosses ([`abi`], ABI
//! 1.1; the same definitions as the C header
//! `plugins/sdk/include/switchboard_plugin.h`); a plugin built with a
//! different rustc than the host works, and so does one written in C. Every
//! exported function catches panics: a panicking rule becomes that rule's
//! failure in the host, never a crash. A plugin may export any number of
//! rules and channels.
//!
//! # Threading
//!
//! The host decides on many threads at once, so [`Rule`] is `Send + Sync`:
//! [`Rule::evaluate`] is called on the **same rule object from many threads
//! at the same time**. Keep a rule immutable after `build` (options parsed
//! into plain fields), or guard what it changes with atomics or a mutex;
//! the same goes for any `static` the plugin keeps. `build` runs on any
//! thread, while rules of the previous configuration are still deciding on
//! others (a reload), and a rule is dropped on any thread once no decision
//! uses it. The [`Context`] and everything borrowed from it live only for
//! the one `evaluate` call.
//!
//! # Unsafe code in your crate
//!
//! [`export_plugin!`] expands to one `#[no_mangle] extern "C"` function,
//! the entry symbol the host looks up. Rust counts `#[no_mangle]` as unsafe
//! code (two symbols of one name are undefined behaviour), so that one
//! generated function carries `#[allow(unsafe_code)]`, with a `SAFETY`
//! comment; nothing else in your crate is touched. A plugin crate can keep
//! `unsafe_code = "deny"` for its own code, but not `forbid`, which no
//! `allow` may lift. Export one plugin per library, and do not define a
//! `switchboard_plugin_entry` of your own.

pub mod abi;

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use abi::{AnswerV1, ContextV1, InstanceV1, OptionValueV1, PatternV1, Str};

/// What a rule answers (the same four outcomes as a built-in rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The instance with this index carries the message.
    Selected(u64),
    /// The rule does not apply.
    NoMatch,
    /// The rule applies but its instance is unusable; `on_unavailable`
    /// decides between failing and falling through.
    Unusable {
        /// The error kind (`instance_disconnected`, or the plugin's own).
        kind: String,
        /// What happened and what to do.
        message: String,
    },
    /// The selection fails.
    Failed {
        /// The error kind.
        kind: String,
        /// What happened and what to do.
        message: String,
    },
}

/// A plugin rule. Built once per configuration and shared across threads.
pub trait Rule: Send + Sync + 'static {
    /// Decides for one request.
    fn evaluate(&self, cx: &Context<'_>) -> Answer;
}

/// The default of a rule's `on_unavailable`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnUnavailable {
    /// The rule has no unusable case (the option is refused).
    None,
    /// Fail by default.
    Error,
    /// Fall through by default.
    Skip,
}

/// The type of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionKind {
    /// One of these words.
    Choice(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Integer,
    /// A string.
    String,
    /// A list of strings.
    StringList,
}

/// One option a rule accepts in rules.yaml.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// The key.
    pub name: &'static str,
    /// Its type (the host checks values against it, with line and column).
    pub kind: OptionKind,
    /// The default, as written in YAML.
    pub default: &'static str,
    /// One line of documentation.
    pub doc: &'static str,
}

/// A rule a plugin contributes.
#[derive(Debug, Clone, Copy)]
pub struct RuleSpec {
    /// The id used in rules.yaml (lower-case letters, digits, `_`).
    pub id: &'static str,
    /// One line for `switchboard rules`.
    pub summary: &'static str,
    /// The error code of its failures; plugin codes start at 1000.
    pub code: u32,
    /// The default of `on_unavailable`.
    pub on_unavailable: OnUnavailable,
    /// Its options.
    pub options: &'static [OptionSpec],
    /// Builds the rule from checked options; an `Err` is shown at the
    /// rule's entry in rules.yaml.
    pub build: fn(&Options<'_>) -> Result<Box<dyn Rule>, String>,
}

/// A channel a plugin contributes.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSpec {
    /// Channel id (`telegram`).
    pub id: &'static str,
    /// Pattern code (`TG`).
    pub code: &'static str,
    /// Contact tag prefix (`tg:`).
    pub tag_prefix: &'static str,
    /// One line for `switchboard rules`.
    pub summary: &'static str,
    /// Whether `{ C#N }` overrides.
    pub has_override: bool,
    /// Whether `{TEMP-C#N}` switches one message.
    pub has_temporary_switch: bool,
}

fn text<'a>(s: Str) -> &'a str {
    if s.ptr.is_null() || s.len == 0 {
        return "";
    }
    // SAFETY: the host hands out `Str`s that point to `len` initialized
    // bytes which stay alive for the duration of the call; `'a` never
    // outlives that call (every borrow below is tied to a `Context` or
    // `Options` that lives on the call's stack).
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    std::str::from_utf8(bytes).unwrap_or("")
}

fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: as in `text`: the host passes arrays of `len` initialized
    // elements that outlive the call.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

/// The options given to one rule entry.
#[derive(Debug, Clone, Copy)]
pub struct Options<'a> {
    values: &'a [OptionValueV1],
}

impl<'a> Options<'a> {
    fn find(&self, name: &str) -> Option<&'a OptionValueV1> {
        self.values.iter().find(|v| text(v.name) == name)
    }
    /// A string or choice option.
    pub fn str(&self, name: &str) -> Option<&'a str> {
        self.find(name).map(|v| text(v.string))
    }
    /// A boolean option.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.find(name).map(|v| v.boolean != 0)
    }
    /// An integer option.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.find(name).map(|v| v.integer)
    }
    /// A list option.
    pub fn list(&self, name: &str) -> Option<Vec<&'a str>> {
        self.find(name).map(|v| slice(v.list, v.list_len).iter().map(|s| text(*s)).collect())
    }
}

/// One instance of the location on the sending channel.
#[derive(Debug, Clone, Copy)]
pub struct Instance<'a> {
    cx: &'a Context<'a>,
    position: usize,
    /// The instance id.
    pub id: &'a str,
    /// Its index (what `Answer::Selected` names).
    pub index: u64,
    /// The phone as written.
    pub phone: &'a str,
    /// The phone's normalized digits.
    pub phone_digits: &'a str,
    /// Whether it is connected.
    pub connected: bool,
    /// Whether it is the location's default on this channel.
    pub is_default: bool,
    user_count: usize,
}

impl<'a> Instance<'a> {
    /// The users it is assigned to.
    pub fn users(&self) -> impl Iterator<Item = &'a str> + 'a {
        let (cx, position) = (self.cx, self.position);
        (0..self.user_count).filter_map(move |k| {
            let mut out = Str::EMPTY;
            let user_at = cx.raw.user_at?;
            (user_at(cx.raw.host, position, k, &mut out) != 0).then(|| text(out))
        })
    }
}

/// A pattern of the sending channel found in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pattern {
    /// `true` for `{TEMP-C#N}`, `false` for `{ C#N }`.
    pub temporary: bool,
    /// The index named; `None` when too large for any index.
    pub index: Option<u64>,
}

/// Everything a rule may read about one request.
#[derive(Debug)]
pub struct Context<'a> {
    raw: &'a ContextV1,
}

impl<'a> Context<'a> {
    /// The location id.
    pub fn location(&self) -> &'a str {
        text(self.raw.location)
    }
    /// The sending channel id.
    pub fn channel(&self) -> &'a str {
        text(self.raw.channel)
    }
    /// The original body (patterns included).
    pub fn body(&self) -> &'a str {
        text(self.raw.body)
    }
    /// The contact id, if there is a contact with one.
    pub fn contact_id(&self) -> Option<&'a str> {
        (self.raw.has_contact != 0).then(|| text(self.raw.contact_id)).filter(|s| !s.is_empty())
    }
    /// The contact's tags, in order.
    pub fn tags(&self) -> impl Iterator<Item = &'a str> + 'a {
        slice(self.raw.tags, self.raw.tag_count).iter().map(|s| text(*s))
    }
    /// The contact's assigned user.
    pub fn assigned_user(&self) -> Option<&'a str> {
        (self.raw.has_assigned_user != 0).then(|| text(self.raw.assigned_user))
    }
    /// The sending channel's patterns, in body order.
    pub fn patterns(&self) -> impl Iterator<Item = Pattern> + 'a {
        slice::<PatternV1>(self.raw.patterns, self.raw.pattern_count)
            .iter()
            .map(|p| Pattern { temporary: p.kind == 1, index: (p.has_index != 0).then_some(p.index) })
    }
    /// The number of instances on this channel.
    pub fn instance_count(&self) -> usize {
        self.raw.instance_count.map_or(0, |count| count(self.raw.host))
    }
    fn instance_at(&'a self, position: usize) -> Option<Instance<'a>> {
        let mut out = InstanceV1 {
            id: Str::EMPTY,
            index: 0,
            phone: Str::EMPTY,
            phone_digits: Str::EMPTY,
            connected: 0,
            is_default: 0,
            user_count: 0,
        };
        let instance_at = self.raw.instance_at?;
        (instance_at(self.raw.host, position, &mut out) != 0).then(|| Instance {
            cx: self,
            position,
            id: text(out.id),
            index: out.index,
            phone: text(out.phone),
            phone_digits: text(out.phone_digits),
            connected: out.connected != 0,
            is_default: out.is_default != 0,
            user_count: out.user_count,
        })
    }
    /// The instances on this channel, by ascending index.
    pub fn instances(&'a self) -> impl Iterator<Item = Instance<'a>> + 'a {
        (0..self.instance_count()).filter_map(move |p| self.instance_at(p))
    }
    /// The instance with this index.
    pub fn instance_by_index(&'a self, index: u64) -> Option<Instance<'a>> {
        let position = self.raw.find_index?(self.raw.host, index);
        self.instance_at(position)
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The plugin's contents, assembled once from the specs.
#[doc(hidden)]
pub struct Built {
    header: abi::Header,
    _plugin: Box<abi::PluginV1>,
    _rules: Vec<abi::RuleV1>,
    _channels: Vec<abi::ChannelV1>,
    _options: Vec<Vec<abi::OptionV1>>,
    _choices: Vec<Vec<Str>>,
}

// SAFETY: `Built` only holds pointers into its own boxed, never-mutated
// tables and into `'static` strings; sharing it between threads is sound.
#[allow(unsafe_code)]
unsafe impl Send for Built {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Built {}

#[doc(hidden)]
pub struct Registration {
    pub name: &'static str,
    pub version: &'static str,
    pub rules: &'static [RuleSpec],
    pub channels: &'static [ChannelSpec],
}

static REGISTRATION: OnceLock<&'static Registration> = OnceLock::new();
static BUILT: OnceLock<Built> = OnceLock::new();

fn build_tables(reg: &'static Registration) -> Built {
    let mut choices_all: Vec<Vec<Str>> = Vec::new();
    let mut options_all: Vec<Vec<abi::OptionV1>> = Vec::new();
    let mut rules = Vec::new();
    for spec in reg.rules {
        let mut options = Vec::new();
        for o in spec.options {
            let (kind, choices) = match o.kind {
                OptionKind::Choice(c) => (abi::option_kind::CHOICE, c.iter().map(|s| Str::new(s)).collect()),
                OptionKind::Bool => (abi::option_kind::BOOL, Vec::new()),
                OptionKind::Integer => (abi::option_kind::INTEGER, Vec::new()),
                OptionKind::String => (abi::option_kind::STRING, Vec::new()),
                OptionKind::StringList => (abi::option_kind::STRING_LIST, Vec::new()),
            };
            options.push(abi::OptionV1 {
                struct_size: size_of::<abi::OptionV1>(),
                name: Str::new(o.name),
                kind,
                choices: choices.as_ptr(),
                choice_count: choices.len(),
                default_value: Str::new(o.default),
                doc: Str::new(o.doc),
            });
            choices_all.push(choices);
        }
        rules.push(abi::RuleV1 {
            struct_size: size_of::<abi::RuleV1>(),
            id: Str::new(spec.id),
            summary: Str::new(spec.summary),
            code: spec.code,
            on_unavailable: match spec.on_unavailable {
                OnUnavailable::None => abi::on_unavailable::NONE,
                OnUnavailable::Error => abi::on_unavailable::ERROR,
                OnUnavailable::Skip => abi::on_unavailable::SKIP,
            },
            options: options.as_ptr(),
            option_count: options.len(),
            // `build_rule` finds the spec through this pointer into the
            // registration's `'static` rule table.
            user_data: (spec as *const RuleSpec).cast(),
            build: Some(build_rule),
            evaluate: Some(evaluate_rule),
            free: Some(free_rule),
        });
        options_all.push(options);
    }
    let channels: Vec<abi::ChannelV1> = reg
        .channels
        .iter()
        .map(|c| abi::ChannelV1 {
            struct_size: size_of::<abi::ChannelV1>(),
            id: Str::new(c.id),
            code: Str::new(c.code),
            tag_prefix: Str::new(c.tag_prefix),
            summary: Str::new(c.summary),
            has_override: u8::from(c.has_override),
            has_temporary_switch: u8::from(c.has_temporary_switch),
        })
        .collect();
    let plugin = Box::new(abi::PluginV1 {
        struct_size: size_of::<abi::PluginV1>(),
        name: Str::new(reg.name),
        version: Str::new(reg.version),
        rules: rules.as_ptr(),
        rule_count: rules.len(),
        channels: channels.as_ptr(),
        channel_count: channels.len(),
    });
    let header =
        abi::Header { magic: abi::MAGIC, abi_major: abi::ABI_MAJOR, abi_minor: abi::ABI_MINOR, plugin: &*plugin };
    Built { header, _plugin: plugin, _rules: rules, _channels: channels, _options: options_all, _choices: choices_all }
}

/// What [`export_plugin!`]'s entry function calls: builds the tables once
/// and returns the header. Also silences this library's panic hook, since
/// every panic is caught and reported to the host as the rule's error.
#[doc(hidden)]
pub fn entry(reg: &'static Registration) -> *const abi::Header {
    let result = catch_unwind(|| {
        let reg = *REGISTRATION.get_or_init(|| {
            std::panic::set_hook(Box::new(|_| {}));
            reg
        });
        let built = BUILT.get_or_init(|| build_tables(reg));
        &built.header as *const abi::Header
    });
    result.unwrap_or(std::ptr::null())
}

/// The rule object handed to the host: a boxed trait object, boxed again
/// so that the host holds one thin pointer.
type RuleBox = Box<dyn Rule>;

extern "C" fn build_rule(
    user_data: *const c_void,
    options: *const OptionValueV1,
    count: usize,
    sink: *mut c_void,
    write: abi::SinkFn,
) -> *mut c_void {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `build_tables` set `user_data` to a `&'static RuleSpec`
        // of this library's registration, and the host hands each rule's
        // `user_data` back unchanged; null (a host bug) is refused.
        let spec = unsafe { user_data.cast::<RuleSpec>().as_ref() }.ok_or("the host passed no rule to build")?;
        let options = Options { values: slice(options, count) };
        (spec.build)(&options).map_err(|e| e.to_string())
    }));
    match result {
        Ok(Ok(rule)) => Box::into_raw(Box::new(rule)).cast(),
        Ok(Err(message)) => {
            if let Some(write) = write {
                write(sink, Str::new(&message));
            }
            std::ptr::null_mut()
        }
        Err(payload) => {
            if let Some(write) = write {
                let message = format!("the plugin panicked while building the rule: {}", panic_message(&*payload));
                write(sink, Str::new(&message));
            }
            std::ptr::null_mut()
        }
    }
}

extern "C" fn evaluate_rule(rule: *const c_void, cx: *const ContextV1, answer: *mut AnswerV1) -> u32 {
    if rule.is_null() || cx.is_null() || answer.is_null() {
        return abi::status::PANICKED;
    }
    // SAFETY: `rule` came from `build_rule` (a `Box<RuleBox>` turned into a
    // raw pointer) and the host keeps it alive until it calls `free_rule`;
    // `cx` points to a `ContextV1` on the host's stack for this call.
    let (rule, raw) = unsafe { (&*rule.cast::<RuleBox>(), &*cx) };
    let context = Context { raw };
    let put = |sink: *mut c_void, text: &str| {
        if let Some(write) = raw.write {
            write(sink, Str::new(text));
        }
    };
    match catch_unwind(AssertUnwindSafe(|| rule.evaluate(&context))) {
        Ok(result) => {
            let (outcome, index) = match result {
                Answer::Selected(index) => (abi::outcome::SELECTED, index),
                Answer::NoMatch => (abi::outcome::NO_MATCH, 0),
                Answer::Unusable { kind, message } => {
                    put(raw.kind_sink, &kind);
                    put(raw.message_sink, &message);
                    (abi::outcome::UNUSABLE, 0)
                }
                Answer::Failed { kind, message } => {
                    put(raw.kind_sink, &kind);
                    put(raw.message_sink, &message);
                    (abi::outcome::FAILED, 0)
                }
            };
            // SAFETY: `answer` points to a host-owned `AnswerV1` for this call.
            unsafe { answer.write(AnswerV1 { outcome, instance_index: index }) };
            abi::status::OK
        }
        Err(payload) => {
            put(raw.message_sink, &panic_message(&*payload));
            abi::status::PANICKED
        }
    }
}

extern "C" fn free_rule(rule: *mut c_void) {
    if rule.is_null() {
        return;
    }
    // SAFETY: `rule` came from `Box::into_raw` in `build_rule` and the host
    // frees each rule exactly once; the drop runs in this library, whose
    // allocator made the box.
    let boxed = unsafe { Box::from_raw(rule.cast::<RuleBox>()) };
    let _ = catch_unwind(AssertUnwindSafe(move || drop(boxed)));
}

/// Exports the plugin: the `switchboard_plugin_entry` symbol the host
/// looks for. Call it once, at the crate root of a `cdylib`.
///
/// # Unsafe code
///
/// The expansion is one `#[no_mangle] pub extern "C" fn
/// switchboard_plugin_entry()`, and Rust counts `#[no_mangle]` as unsafe
/// code: if two exported functions share a name, which one runs is
/// undefined. So that function, and only it, carries
/// `#[allow(unsafe_code)]`. It is sound as long as the library exports one
/// plugin (one `export_plugin!` call) and defines no other
/// `switchboard_plugin_entry`. A crate may `deny` unsafe code for the rest
/// of its items; `forbid(unsafe_code)` cannot be lifted by any `allow` and
/// makes the expansion fail to compile.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:expr,
        version: $version:expr,
        rules: [$($rule:expr),* $(,)?],
        channels: [$($channel:expr),* $(,)?] $(,)?
    ) => {
        /// The plugin's entry point (see `switchboard_plugin_sdk::abi`).
        // SAFETY: `#[no_mangle]` is the unsafe part: this must be the only
        // `switchboard_plugin_entry` in the library, which one
        // `export_plugin!` call per crate guarantees (rustc refuses a
        // second symbol of the same name in one crate). Documented on
        // `export_plugin!`.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn switchboard_plugin_entry() -> *const $crate::abi::Header {
            static RULES: &[$crate::RuleSpec] = &[$($rule),*];
            static CHANNELS: &[$crate::ChannelSpec] = &[$($channel),*];
            static REGISTRATION: $crate::Registration =
                $crate::Registration { name: $name, version: $version, rules: RULES, channels: CHANNELS };
            $crate::entry(&REGISTRATION)
        }
    };
}
