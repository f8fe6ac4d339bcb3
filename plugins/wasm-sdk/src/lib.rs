//! # switchboard-wasm-sdk
//!
//! Write Switchboard rules as WebAssembly modules (ABI 1, docs/wasm-plugins.md;
//! docs/wasm-plugins.md). A rule is a struct and an impl of [`Rule`]: its
//! id, code and options, how it is configured from rules.yaml, and how it
//! answers one consultation. One [`export_rules!`] call exports the six
//! functions and the memory the host looks for.
//!
//! ```
//! use switchboard_wasm_sdk::*;
//!
//! /// Contacts tagged `vip` go to the first usable instance.
//! struct VipFirst;
//!
//! impl Rule for VipFirst {
//!     const ID: &'static str = "vip_first";
//!     const CODE: u32 = 1100;
//!
//!     fn configure(_: &Options) -> Result<Self, String> {
//!         Ok(VipFirst)
//!     }
//!
//!     fn select(&self, input: &Input) -> Answer {
//!         if !input.contact.has_tag("vip") {
//!             return Answer::NoMatch;
//!         }
//!         match input.instances.iter().position(|i| i.usable) {
//!             Some(position) => Answer::Selected(position),
//!             None => Answer::NoMatch,
//!         }
//!     }
//! }
//!
//! export_rules! { name: "vip-first", version: "1.0.0", rules: [VipFirst] }
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-unknown-unknown` (see the
//! docs) and list the `.wasm` in rules.yaml with `wasm:`. The SDK is
//! `no_std` (it needs `alloc`); a rule crate may use `std`, whose
//! `wasm32-unknown-unknown` build imports nothing. A panic in a rule
//! aborts the call, which the host reports as `plugin_trap`.
//!
//! A module instance runs one call at a time on one thread (the host never
//! shares an instance between decisions), so rules need no locking.

#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use serde::Deserialize;
pub use serde_json::{Map, Value};

/// The ABI version this SDK speaks.
pub const ABI_VERSION: i32 = 1;

/// One consultation: the request, the contact and the channel's instances
/// at the location, in index order.
#[derive(Debug, Clone, Deserialize)]
pub struct Input {
    /// The location id.
    pub location: String,
    /// The channel id.
    pub channel: String,
    /// The body as received, patterns included.
    pub body: String,
    /// The contact (every field `None` without one).
    pub contact: Contact,
    /// The channel's instances at the location, in index order.
    pub instances: Vec<Instance>,
}

impl Input {
    /// Reads an input from its JSON (as `sb_select` receives it): for a
    /// rule's unit tests.
    pub fn from_json(text: &str) -> Result<Input, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

/// The request's contact; absent fields are `None`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Contact {
    /// The CRM contact id.
    pub id: Option<String>,
    /// The contact's tags, in CRM order (`None` without a contact).
    pub tags: Option<Vec<String>>,
    /// The CRM user the contact is assigned to.
    pub assigned_user: Option<String>,
    /// The contact's phone number.
    pub phone: Option<String>,
    /// The contact's timezone.
    pub timezone: Option<String>,
}

impl Contact {
    /// Whether one of the contact's tags, trimmed, is `tag` (ignoring ASCII
    /// case).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().flatten().any(|t| t.trim().eq_ignore_ascii_case(tag.trim()))
    }
}

/// One instance of the channel at the location.
#[derive(Debug, Clone, Deserialize)]
pub struct Instance {
    /// The instance id.
    pub id: String,
    /// Its index on the channel (1 is the first).
    pub index: u64,
    /// Its phone number as written.
    pub phone: String,
    /// Whether it is connected.
    pub connected: bool,
    /// Connected, and not found at capacity earlier in this decision.
    pub usable: bool,
    /// The CRM users assigned to it.
    pub users: Vec<String>,
    /// Its weight for the `weighted` strategy.
    pub weight: u32,
}

/// What a rule answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The rule does not apply; the next one is consulted.
    NoMatch,
    /// This position in [`Input::instances`] carries the message.
    Selected(usize),
    /// The rule applies, but the instance at this position is unusable.
    FellThrough(usize),
    /// The decision fails with `code` (≥ 1000), `kind` and `message`.
    Failed {
        /// The error code.
        code: u32,
        /// The error kind (snake_case).
        kind: String,
        /// What happened and what to do, for a person.
        message: String,
    },
}

impl Answer {
    /// `(outcome << 32) | value`, as `sb_select` returns it.
    pub fn encode(&self) -> i64 {
        let (outcome, value): (i64, u64) = match self {
            Answer::NoMatch => (0, 0),
            Answer::Selected(p) => (1, *p as u64),
            Answer::FellThrough(p) => (2, *p as u64),
            Answer::Failed { code, .. } => (3, u64::from(*code)),
        };
        (outcome << 32) | (value & 0xffff_ffff) as i64
    }
}

/// An option's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any text.
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A list of strings.
    List,
    /// A duration written as text (`30s`, `15m`, `7d`).
    Duration,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
            Kind::List => "list",
            Kind::Duration => "duration",
        }
    }
}

/// An option's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// None: absent from the options unless rules.yaml gives it.
    None,
    /// A string or a duration.
    Str(&'static str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    List(&'static [&'static str]),
}

impl Default {
    fn to_value(self) -> Value {
        match self {
            Default::None => Value::Null,
            Default::Str(s) => Value::String(s.to_string()),
            Default::Int(i) => Value::from(i),
            Default::Bool(b) => Value::Bool(b),
            Default::List(items) => Value::Array(items.iter().map(|s| Value::String(s.to_string())).collect()),
        }
    }
}

/// One option a rule accepts in rules.yaml.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionSpec {
    /// The key in rules.yaml.
    pub name: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Its default.
    pub default: Default,
    /// One line of documentation.
    pub doc: &'static str,
}

/// The options of one rule occurrence, defaults filled in by the host.
#[derive(Debug, Clone, Default)]
pub struct Options(pub Map<String, Value>);

impl Options {
    /// A string or duration option.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }
    /// An integer option.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Value::as_i64)
    }
    /// A boolean option.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.0.get(name).and_then(Value::as_bool)
    }
    /// A list option.
    pub fn list(&self, name: &str) -> Option<Vec<&str>> {
        self.0.get(name).and_then(Value::as_array).map(|items| items.iter().filter_map(Value::as_str).collect())
    }
}

/// A rule: its declaration, its configuration, its answer.
pub trait Rule: Sized + 'static {
    /// The id used in rules.yaml and in decisions (snake_case).
    const ID: &'static str;
    /// The code of its failures (≥ 1000).
    const CODE: u32;
    /// One line for `switchboard rules`.
    const SUMMARY: &'static str = "";
    /// The options it accepts.
    const OPTIONS: &'static [OptionSpec] = &[];

    /// Builds the rule for one occurrence in rules.yaml; an `Err` refuses
    /// the options, with a message shown at the rule's entry.
    fn configure(options: &Options) -> Result<Self, String>;

    /// Answers one consultation.
    fn select(&self, input: &Input) -> Answer;
}

/// A configured rule, behind a pointer.
trait Select {
    fn select(&self, input: &Input) -> Answer;
}

impl<R: Rule> Select for R {
    fn select(&self, input: &Input) -> Answer {
        Rule::select(self, input)
    }
}

type Configure = fn(&Options) -> Result<Box<dyn Select>, String>;

fn configure_boxed<R: Rule>(options: &Options) -> Result<Box<dyn Select>, String> {
    R::configure(options).map(|r| Box::new(r) as Box<dyn Select>)
}

/// A rule's entry in a module (made by [`export_rules!`]).
pub struct RuleEntry {
    id: &'static str,
    code: u32,
    summary: &'static str,
    options: &'static [OptionSpec],
    configure: Configure,
}

impl RuleEntry {
    /// The entry of `R`.
    pub const fn of<R: Rule>() -> RuleEntry {
        RuleEntry {
            id: R::ID,
            code: R::CODE,
            summary: R::SUMMARY,
            options: R::OPTIONS,
            configure: configure_boxed::<R>,
        }
    }
}

/// A module: its name, version and rules (made by [`export_rules!`]).
pub struct Module {
    /// The module's name.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
    /// Its rules, in manifest order.
    pub rules: &'static [RuleEntry],
}

impl Module {
    /// The manifest `sb_manifest` answers.
    pub fn manifest(&self) -> String {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|r| {
                let options: Vec<Value> = r
                    .options
                    .iter()
                    .map(|o| {
                        let mut option = Map::new();
                        option.insert("name".into(), o.name.into());
                        option.insert("kind".into(), o.kind.name().into());
                        option.insert("default".into(), o.default.to_value());
                        if !o.doc.is_empty() {
                            option.insert("doc".into(), o.doc.into());
                        }
                        Value::Object(option)
                    })
                    .collect();
                let mut rule = Map::new();
                rule.insert("id".into(), r.id.into());
                rule.insert("code".into(), r.code.into());
                rule.insert("options".into(), Value::Array(options));
                if !r.summary.is_empty() {
                    rule.insert("summary".into(), r.summary.into());
                }
                Value::Object(rule)
            })
            .collect();
        let mut manifest = Map::new();
        manifest.insert("name".into(), self.name.into());
        manifest.insert("version".into(), self.version.into());
        manifest.insert("rules".into(), Value::Array(rules));
        Value::Object(manifest).to_string()
    }
}

/// What a module instance keeps between calls.
#[derive(Default)]
pub struct State {
    /// The buffer `sb_alloc` hands out.
    buffer: Vec<u8>,
    /// The text a `ptr_len` answer points at (manifest).
    out: String,
    /// The last refusal's or failure's JSON.
    error: String,
    /// The configured rules, by handle, with their codes.
    configured: Vec<(u32, Box<dyn Select>)>,
}

impl State {
    /// An empty state.
    pub const fn new() -> State {
        State { buffer: Vec::new(), out: String::new(), error: String::new(), configured: Vec::new() }
    }

    /// `sb_alloc`: a buffer of `len` bytes; its address.
    pub fn alloc(&mut self, len: i32) -> i32 {
        self.buffer.clear();
        self.buffer.resize(usize::try_from(len).unwrap_or(0), 0);
        self.buffer.as_mut_ptr() as usize as i32
    }

    /// The `len` bytes the host wrote into the buffer.
    fn written(&self, len: i32) -> &[u8] {
        let len = usize::try_from(len).unwrap_or(0).min(self.buffer.len());
        &self.buffer[..len]
    }

    /// `sb_manifest`.
    pub fn manifest(&mut self, module: &Module) -> i64 {
        self.out = module.manifest();
        ptr_len(&self.out)
    }

    fn set_error(&mut self, kind: &str, message: &str) {
        let mut error = Map::new();
        error.insert("kind".into(), kind.into());
        error.insert("message".into(), message.into());
        self.error = Value::Object(error).to_string();
    }

    /// `sb_configure`: the handle, or -1 with the refusal in `sb_error`.
    pub fn configure(&mut self, module: &Module, rule: i32, len: i32) -> i32 {
        let Some(entry) = usize::try_from(rule).ok().and_then(|r| module.rules.get(r)) else {
            self.set_error("invalid_options", &format!("this module has no rule number {rule}"));
            return -1;
        };
        let options = match serde_json::from_slice::<Map<String, Value>>(self.written(len)) {
            Ok(map) => Options(map),
            Err(e) => {
                self.set_error("invalid_options", &format!("the options are not a JSON object: {e}"));
                return -1;
            }
        };
        match (entry.configure)(&options) {
            Ok(rule) => {
                self.configured.push((entry.code, rule));
                i32::try_from(self.configured.len() - 1).unwrap_or(-1)
            }
            Err(message) => {
                self.set_error("invalid_options", &message);
                -1
            }
        }
    }

    /// `sb_select`.
    pub fn select(&mut self, handle: i32, len: i32) -> i64 {
        let Some((code, _)) = usize::try_from(handle).ok().and_then(|h| self.configured.get(h)) else {
            self.set_error("unknown_handle", &format!("no rule was configured with handle {handle}"));
            return Answer::Failed { code: 1000, kind: String::new(), message: String::new() }.encode();
        };
        let code = *code;
        let answer = match serde_json::from_slice::<Input>(self.written(len)) {
            Ok(input) => match usize::try_from(handle).ok().and_then(|h| self.configured.get(h)) {
                Some((_, rule)) => rule.select(&input),
                None => Answer::NoMatch,
            },
            Err(e) => {
                Answer::Failed { code, kind: "invalid_input".into(), message: format!("the input is not ABI 1's: {e}") }
            }
        };
        if let Answer::Failed { kind, message, .. } = &answer {
            let (kind, message) = (kind.clone(), message.clone());
            self.set_error(&kind, &message);
        }
        answer.encode()
    }

    /// `sb_error`.
    pub fn error(&self) -> i64 {
        ptr_len(&self.error)
    }
}

/// `(ptr << 32) | len` of `text` in this module's memory.
fn ptr_len(text: &str) -> i64 {
    ((text.as_ptr() as usize as i64) << 32) | (text.len() as i64 & 0xffff_ffff)
}

/// The module's one state (a module instance runs one call at a time).
#[doc(hidden)]
pub struct Global(RefCell<State>);

// SAFETY: a WebAssembly module instance is single-threaded: the host calls
// one export at a time, and wasm32-unknown-unknown without the threads
// proposal has no other thread. On other targets (a host build of a rule
// crate, for its unit tests) the exports are never called.
#[allow(unsafe_code)]
unsafe impl Sync for Global {}

impl Global {
    /// The empty state.
    pub const fn new() -> Global {
        Global(RefCell::new(State::new()))
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.borrow_mut())
    }
}

impl core::default::Default for Global {
    fn default() -> Global {
        Global::new()
    }
}

/// Exports ABI 1 for a module of these rules: `sb_abi_version`,
/// `sb_alloc`, `sb_manifest`, `sb_configure`, `sb_select` and `sb_error`
/// (the memory is exported by the toolchain). Use it once per crate.
///
/// The exports are `#[no_mangle]` functions, which Rust counts as unsafe
/// code; each carries `#[allow(unsafe_code)]`, so a rule crate can keep
/// `unsafe_code = "deny"` (not `forbid`).
#[macro_export]
macro_rules! export_rules {
    (name: $name:expr, version: $version:expr, rules: [$($rule:ty),* $(,)?] $(,)?) => {
        static __SB_MODULE: $crate::Module =
            $crate::Module { name: $name, version: $version, rules: &[$($crate::RuleEntry::of::<$rule>()),*] };
        static __SB_STATE: $crate::Global = $crate::Global::new();

        /// ABI: the version.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn sb_abi_version() -> i32 {
            $crate::ABI_VERSION
        }
        /// ABI: a buffer for the host's input.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn sb_alloc(len: i32) -> i32 {
            __SB_STATE.with(|s| s.alloc(len))
        }
        /// ABI: the manifest.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn sb_manifest() -> i64 {
            __SB_STATE.with(|s| s.manifest(&__SB_MODULE))
        }
        /// ABI: configures one rule occurrence.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn sb_configure(rule: i32, _ptr: i32, len: i32) -> i32 {
            __SB_STATE.with(|s| s.configure(&__SB_MODULE, rule, len))
        }
        /// ABI: one consultation.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn sb_select(handle: i32, _ptr: i32, len: i32) -> i64 {
            __SB_STATE.with(|s| s.select(handle, len))
        }
        /// ABI: the last refusal or failure.
        #[allow(unsafe_code)]
        #[no_mangle]
        pub extern "C" fn sb_error() -> i64 {
            __SB_STATE.with(|s| s.error())
        }
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    struct Tagged(String);

    impl Rule for Tagged {
        const ID: &'static str = "tagged";
        const CODE: u32 = 1200;
        const OPTIONS: &'static [OptionSpec] =
            &[OptionSpec { name: "tag", kind: Kind::String, default: Default::Str("vip"), doc: "the tag" }];

        fn configure(options: &Options) -> Result<Self, String> {
            match options.str("tag") {
                Some("") => Err("`tag` is empty".into()),
                Some(tag) => Ok(Tagged(tag.into())),
                None => Err("`tag` is missing".into()),
            }
        }

        fn select(&self, input: &Input) -> Answer {
            if input.contact.has_tag(&self.0) {
                return Answer::Failed { code: 1200, kind: "tagged".into(), message: self.0.clone() };
            }
            match input.instances.iter().position(|i| i.usable) {
                Some(p) => Answer::Selected(p),
                None => Answer::NoMatch,
            }
        }
    }

    static MODULE: Module = Module { name: "t", version: "1", rules: &[RuleEntry::of::<Tagged>()] };

    fn write(state: &mut State, bytes: &[u8]) -> i32 {
        state.alloc(bytes.len() as i32);
        state.buffer.copy_from_slice(bytes);
        bytes.len() as i32
    }

    #[test]
    fn the_manifest_declares_the_rules_and_options() {
        let manifest: Value = serde_json::from_str(&MODULE.manifest()).unwrap();
        assert_eq!(manifest["rules"][0]["id"], "tagged");
        assert_eq!(manifest["rules"][0]["code"], 1200);
        assert_eq!(manifest["rules"][0]["options"][0]["kind"], "string");
        assert_eq!(manifest["rules"][0]["options"][0]["default"], "vip");
    }

    #[test]
    fn configure_and_select_speak_abi_1() {
        let mut state = State::new();
        let len = write(&mut state, br#"{"tag":"gold"}"#);
        assert_eq!(state.configure(&MODULE, 0, len), 0);
        let len = write(&mut state, br#"{"tag":""}"#);
        assert_eq!(state.configure(&MODULE, 0, len), -1);
        assert!(state.error.contains("`tag` is empty"), "{}", state.error);
        let input = br#"{"location":"l","channel":"whatsapp","body":"Hi","contact":{"id":null,"tags":["Gold"],"assigned_user":null,"phone":null,"timezone":null},"instances":[{"id":"a","index":1,"phone":"1","connected":false,"usable":false,"users":[],"weight":1},{"id":"b","index":2,"phone":"2","connected":true,"usable":true,"users":[],"weight":1}]}"#;
        let len = write(&mut state, input);
        assert_eq!(state.select(0, len), (3 << 32) | 1200);
        assert_eq!(state.error, r#"{"kind":"tagged","message":"gold"}"#);
        let untagged = core::str::from_utf8(input).unwrap().replace("\"Gold\"", "\"x\"");
        let len = write(&mut state, untagged.as_bytes());
        assert_eq!(state.select(0, len), (1 << 32) | 1);
        let len = write(&mut state, b"not json");
        assert_eq!(state.select(0, len) >> 32, 3);
        assert!(state.error.contains("invalid_input"));
    }

    #[test]
    fn answers_encode_as_the_abi_says() {
        assert_eq!(Answer::NoMatch.encode(), 0);
        assert_eq!(Answer::Selected(2).encode(), (1 << 32) | 2);
        assert_eq!(Answer::FellThrough(0).encode(), 2 << 32);
        let failed = Answer::Failed { code: 1234, kind: "k".into(), message: "m".into() };
        assert_eq!(failed.encode(), (3 << 32) | 1234);
    }
}
