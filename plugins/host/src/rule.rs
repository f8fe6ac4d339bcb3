//! A plugin rule as the engine sees it: a [`SelectionRule`] whose
//! `evaluate` hands the plugin a borrowed [`abi::ContextV1`] and checks the
//! answer. A panic, an unknown outcome or an index the location does not
//! have becomes this rule's failure (with the rule's plugin code), never a
//! crash and never a wrong selection.

use std::borrow::Cow;
use std::ffi::c_void;

use smallvec::SmallVec;
use switchboard_core::{
    ErrorKind, Instance, InstanceView, OptionValue, Outcome, PatternKind, RuleContext, RuleOptions, SelectionRule,
};
use switchboard_plugin_sdk::abi::{self, Str};

use crate::v1_0;

/// How a rule is built: ABI 1.1 hands `user_data` back to `build`.
#[derive(Clone, Copy)]
pub(crate) enum Build {
    /// ABI 1.0.
    V1_0(v1_0::BuildFnV1_0),
    /// ABI 1.1: the builder and the rule's `user_data`.
    V1_1(abi::BuildFn, *const c_void),
}

/// How a rule is evaluated: the context layout differs by minor version.
#[derive(Clone, Copy)]
pub(crate) enum Evaluate {
    /// ABI 1.0: the context without `struct_size`.
    V1_0(v1_0::EvaluateFnV1_0),
    /// ABI 1.1.
    V1_1(abi::EvaluateFn),
}

/// A plugin rule's functions; `build` and `evaluate` were checked non-null
/// at load.
#[derive(Clone, Copy)]
pub(crate) struct Calls {
    pub(crate) build: Build,
    pub(crate) evaluate: Evaluate,
    pub(crate) free: abi::FreeFn,
}

// SAFETY: function pointers into a library that is never unloaded, and the
// plugin's `user_data`, which the ABI's threading contract says `build`
// may receive on any thread; nothing here is mutated by the host.
unsafe impl Send for Calls {}
// SAFETY: as above.
unsafe impl Sync for Calls {}

extern "C" fn write_sink(sink: *mut c_void, text: Str) {
    if sink.is_null() || text.ptr.is_null() || text.len == 0 {
        return;
    }
    // SAFETY: every sink the host passes is a `&mut String` living on the
    // host's stack for the duration of the call, and `text` is a borrowed
    // slice of `len` bytes the plugin keeps alive while this runs.
    let (sink, bytes) = unsafe { (&mut *sink.cast::<String>(), std::slice::from_raw_parts(text.ptr, text.len)) };
    sink.push_str(&String::from_utf8_lossy(bytes));
}

pub(crate) fn build(d: Calls, id: &str, options: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
    let lists: Vec<Vec<Str>> = options
        .iter()
        .map(|(_, v)| match v {
            OptionValue::List(items) => items.iter().map(|s| Str::new(s)).collect(),
            _ => Vec::new(),
        })
        .collect();
    let values: Vec<abi::OptionValueV1> = options
        .iter()
        .zip(&lists)
        .map(|((name, value), list)| {
            let mut v = abi::OptionValueV1 {
                name: Str::new(name),
                kind: abi::option_kind::STRING,
                boolean: 0,
                integer: 0,
                string: Str::EMPTY,
                list: list.as_ptr(),
                list_len: list.len(),
            };
            match value {
                OptionValue::Str(s) => v.string = Str::new(s),
                OptionValue::Bool(b) => (v.kind, v.boolean) = (abi::option_kind::BOOL, u8::from(*b)),
                OptionValue::Int(i) => (v.kind, v.integer) = (abi::option_kind::INTEGER, *i),
                OptionValue::List(_) => v.kind = abi::option_kind::STRING_LIST,
            }
            v
        })
        .collect();
    let mut message = String::new();
    let sink: *mut String = &mut message;
    let object = match d.build {
        Build::V1_0(Some(build)) => build(values.as_ptr(), values.len(), sink.cast(), Some(write_sink)),
        Build::V1_1(Some(build), user_data) => {
            build(user_data, values.as_ptr(), values.len(), sink.cast(), Some(write_sink))
        }
        Build::V1_0(None) | Build::V1_1(None, _) => return Err("the plugin's `build` function pointer is NULL".into()),
    };
    if object.is_null() {
        return Err(if message.is_empty() { "the plugin refused these options".into() } else { message });
    }
    Ok(Box::new(PluginRule { d, object, id: id.to_owned() }))
}

/// A built plugin rule.
struct PluginRule {
    d: Calls,
    object: *mut c_void,
    id: String,
}

// SAFETY: the ABI's threading contract (switchboard_plugin.h, and the
// SDK's `trait Rule: Send + Sync`) requires a rule object to be usable from
// many threads at once; the host only reads `object` through the plugin's
// `evaluate` and frees it once, in `drop`.
unsafe impl Send for PluginRule {}
// SAFETY: as above.
unsafe impl Sync for PluginRule {}

impl Drop for PluginRule {
    fn drop(&mut self) {
        // Freed by the library that allocated it (if it asks to be).
        if let Some(free) = self.d.free {
            free(self.object);
        }
    }
}

fn view<'a>(host: *const c_void) -> &'a InstanceView<'a> {
    // SAFETY: `host` is the `InstanceView` on `evaluate`'s stack; the
    // plugin only calls back during that call.
    unsafe { &*host.cast::<InstanceView<'a>>() }
}

extern "C" fn instance_count(host: *const c_void) -> usize {
    view(host).len()
}

fn fill(instance: &Instance, out: *mut abi::InstanceV1) {
    let value = abi::InstanceV1 {
        id: Str::new(instance.id()),
        index: instance.index(),
        phone: Str::new(instance.phone()),
        phone_digits: Str::new(instance.phone_digits()),
        connected: u8::from(instance.is_connected()),
        is_default: u8::from(instance.is_default()),
        user_count: instance.users().len(),
    };
    // SAFETY: `out` points to an `InstanceV1` the plugin owns for this call
    // (checked non-null by the callers).
    unsafe { out.write(value) };
}

extern "C" fn instance_at(host: *const c_void, rank: usize, out: *mut abi::InstanceV1) -> u8 {
    match view(host).nth(rank) {
        Some(instance) if !out.is_null() => {
            fill(instance, out);
            1
        }
        _ => 0,
    }
}

extern "C" fn find_index(host: *const c_void, index: u64) -> usize {
    view(host).rank_of_index(index).unwrap_or(usize::MAX)
}

extern "C" fn user_at(host: *const c_void, rank: usize, k: usize, out: *mut Str) -> u8 {
    match view(host).nth(rank).and_then(|i| i.users().get(k)) {
        Some(user) if !out.is_null() => {
            // SAFETY: `out` points to a `Str` the plugin owns for this call.
            unsafe { out.write(Str::new(user)) };
            1
        }
        _ => 0,
    }
}

/// The kind a plugin wrote: core's mapping, and `plugin_error` for none.
fn kind(name: &str) -> ErrorKind {
    if name.is_empty() {
        return ErrorKind::Custom(Cow::Borrowed("plugin_error"));
    }
    ErrorKind::from_name(name)
}

impl SelectionRule for PluginRule {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        let request = cx.request();
        let contact = request.contact.as_ref();
        let tags: SmallVec<[Str; 8]> =
            contact.map(|c| c.tags.iter().map(|t| Str::new(t)).collect()).unwrap_or_default();
        let mut found: SmallVec<[(usize, abi::PatternV1); 4]> = SmallVec::new();
        for (kind, code) in [(PatternKind::Override, 0u8), (PatternKind::TemporarySwitch, 1)] {
            for m in cx.patterns(kind) {
                let p =
                    abi::PatternV1 { kind: code, has_index: u8::from(m.index.is_some()), index: m.index.unwrap_or(0) };
                found.push((m.start, p));
            }
        }
        found.sort_by_key(|(start, _)| *start);
        let patterns: SmallVec<[abi::PatternV1; 4]> = found.into_iter().map(|(_, p)| p).collect();
        let instances = cx.instances();
        let (mut kind_text, mut message) = (String::new(), String::new());
        let (kind_sink, message_sink): (*mut String, *mut String) = (&mut kind_text, &mut message);
        let context = abi::ContextV1 {
            struct_size: size_of::<abi::ContextV1>(),
            location: Str::new(cx.location()),
            channel: Str::new(cx.channel().id()),
            body: Str::new(cx.body()),
            has_contact: u8::from(contact.is_some()),
            contact_id: Str::new(contact.and_then(|c| c.id.as_deref()).unwrap_or("")),
            tags: tags.as_ptr(),
            tag_count: tags.len(),
            has_assigned_user: u8::from(contact.and_then(|c| c.assigned_user.as_ref()).is_some()),
            assigned_user: Str::new(contact.and_then(|c| c.assigned_user.as_deref()).unwrap_or("")),
            patterns: patterns.as_ptr(),
            pattern_count: patterns.len(),
            host: (&instances as *const InstanceView<'_>).cast(),
            instance_count: Some(instance_count),
            instance_at: Some(instance_at),
            find_index: Some(find_index),
            user_at: Some(user_at),
            kind_sink: kind_sink.cast(),
            message_sink: message_sink.cast(),
            write: Some(write_sink),
        };
        let id = &self.id;
        let mut answer = abi::AnswerV1 { outcome: u8::MAX, instance_index: 0 };
        let status = match self.d.evaluate {
            Evaluate::V1_1(Some(evaluate)) => evaluate(self.object, &context, &mut answer),
            Evaluate::V1_0(Some(evaluate)) => {
                let legacy = v1_0::ContextV1_0::from_current(&context);
                evaluate(self.object, &legacy, &mut answer)
            }
            Evaluate::V1_0(None) | Evaluate::V1_1(None) => {
                return invalid(id, "has a NULL `evaluate` function pointer".into())
            }
        };
        if status == abi::status::PANICKED {
            return Outcome::failed(
                ErrorKind::Custom(Cow::Borrowed("plugin_panic")),
                format!("plugin rule `{id}` panicked: {message}; the plugin needs fixing"),
            );
        }
        if status != abi::status::OK {
            return invalid(id, format!("returned status {status}"));
        }
        match answer.outcome {
            abi::outcome::SELECTED => match instances.by_index(answer.instance_index) {
                Some(instance) => Outcome::selected(instance),
                None => invalid(
                    id,
                    format!(
                        "selected instance #{}, which location `{}` does not have on {} (instances: {})",
                        answer.instance_index,
                        cx.location(),
                        cx.channel().id(),
                        instances.describe_indexes()
                    ),
                ),
            },
            abi::outcome::NO_MATCH => Outcome::no_match(),
            abi::outcome::UNUSABLE => Outcome::unusable(kind(&kind_text), message),
            abi::outcome::FAILED => Outcome::failed(kind(&kind_text), message),
            other => invalid(id, format!("answered outcome {other}, which ABI {}.x does not define", abi::ABI_MAJOR)),
        }
    }
}

fn invalid<'a>(id: &str, what: String) -> Outcome<'a> {
    Outcome::failed(
        ErrorKind::Custom(Cow::Borrowed("plugin_invalid_answer")),
        format!("plugin rule `{id}` {what}; the plugin needs fixing"),
    )
}
