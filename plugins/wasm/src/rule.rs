//! A WebAssembly rule as the engine sees it: a [`SelectionRule`] that
//! writes the consultation's JSON into a guest, calls `sb_select` and
//! checks the answer. Every fault (a trap, the budget, the memory cap, an
//! answer the ABI does not allow) becomes this rule's failure with its
//! code, never a crash and never a wrong selection.
//!
//! Instances are pooled per built rule: a consultation takes one (or
//! instantiates and configures a fresh one), so concurrent decisions never
//! share an instance, and puts it back only if the call left it intact.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Deserialize;
use switchboard_core::{ErrorKind, OptionValue, Outcome, RuleContext, RuleOptions, SelectionRule};

use crate::manifest::{self, Kind};
use crate::sandbox::{Fault, Guest, Limits};

/// A loaded module, shared by the rules built from it.
pub(crate) struct Shared {
    pub(crate) engine: &'static wasmtime::Engine,
    pub(crate) module: wasmtime::Module,
    pub(crate) limits: Limits,
    /// The module's path as listed, for messages.
    pub(crate) file: String,
}

/// What a rule needs to know of its manifest entry.
#[derive(Clone)]
pub(crate) struct Declared {
    pub(crate) number: i32,
    pub(crate) id: String,
    pub(crate) kinds: Vec<(String, Kind)>,
}

/// A configured guest and its handle.
struct Pooled {
    /// Boxed: a guest is a few hundred bytes, and a consultation moves it
    /// out of the pool and back.
    guest: Box<Guest>,
    handle: i32,
}

/// A built WebAssembly rule: one occurrence in rules.yaml.
pub(crate) struct WasmRule {
    shared: Arc<Shared>,
    declared: Declared,
    /// The options as `sb_configure` reads them.
    options: Vec<u8>,
    pool: Mutex<Vec<Pooled>>,
}

/// `sb_error`'s JSON.
#[derive(Deserialize)]
struct GuestError {
    kind: String,
    message: String,
}

/// Reads `sb_error`'s text: `{"kind","message"}` with a non-empty kind.
fn guest_error(text: &str) -> Result<(String, String), Fault> {
    match serde_json::from_str::<GuestError>(text) {
        Ok(e) if !e.kind.trim().is_empty() => Ok((e.kind, e.message)),
        _ => Err(Fault::Invalid(format!(
            "answered `sb_error` with {}, which is not {{\"kind\":\"...\",\"message\":\"...\"}} with a kind",
            excerpt(text)
        ))),
    }
}

fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    if cut.len() < text.len() {
        format!("`{cut}…`")
    } else {
        format!("`{cut}`")
    }
}

/// Builds one occurrence of a rule: checks and encodes its options, and
/// configures a first instance (a refusal is the operator's error at the
/// rule's entry).
pub(crate) fn build(
    shared: Arc<Shared>,
    declared: Declared,
    options: &RuleOptions,
) -> Result<Box<dyn SelectionRule>, String> {
    let mut object = serde_json::Map::new();
    for (name, value) in options.iter() {
        let kind = declared.kinds.iter().find(|(n, _)| n == name).map(|(_, k)| *k);
        let json = match (value, kind) {
            (OptionValue::Str(s), Some(Kind::Duration)) => {
                manifest::parse_duration(s).map_err(|why| format!("option `{name}`: {why}"))?;
                serde_json::Value::String(s.clone())
            }
            (OptionValue::Str(s), _) => serde_json::Value::String(s.clone()),
            (OptionValue::Bool(b), _) => serde_json::Value::Bool(*b),
            (OptionValue::Int(i), _) => serde_json::Value::from(*i),
            (OptionValue::List(items), _) => items.iter().cloned().map(serde_json::Value::String).collect(),
        };
        object.insert(name.to_owned(), json);
    }
    let options = serde_json::Value::Object(object).to_string().into_bytes();
    let rule = WasmRule { shared, declared, options, pool: Mutex::new(Vec::new()) };
    let first = rule.fresh().map_err(|e| match e {
        Fresh::Refused(message) => format!("rule `{}` refused these options: {message}", rule.declared.id),
        Fresh::Fault(fault) => format!(
            "rule `{}` of {}: the module {} while configuring the rule",
            rule.declared.id,
            rule.shared.file,
            fault.describe(&rule.shared.limits)
        ),
    })?;
    rule.pool.lock().unwrap_or_else(PoisonError::into_inner).push(first);
    Ok(Box::new(rule))
}

enum Fresh {
    Refused(String),
    Fault(Fault),
}

impl WasmRule {
    /// A new instance, configured for this occurrence.
    fn fresh(&self) -> Result<Pooled, Fresh> {
        let mut guest =
            Guest::new(self.shared.engine, &self.shared.module, self.shared.limits).map_err(Fresh::Fault)?;
        match guest.configure(self.declared.number, &self.options).map_err(Fresh::Fault)? {
            Ok(handle) => Ok(Pooled { guest: Box::new(guest), handle }),
            Err(text) => {
                let (_, message) = guest_error(&text).map_err(Fresh::Fault)?;
                Err(Fresh::Refused(message))
            }
        }
    }

    /// One consultation on `pooled`; the outcome, or the fault.
    fn consult<'a>(&self, pooled: &mut Pooled, cx: &RuleContext<'a>, input: &[u8]) -> Result<Outcome<'a>, Fault> {
        let answer = pooled.guest.select(pooled.handle, input)?;
        let outcome = answer >> 32;
        let value = answer & 0xffff_ffff;
        let instances = cx.instances();
        let at = |what: &str| {
            usize::try_from(value).ok().and_then(|p| instances.nth(p)).ok_or_else(|| {
                Fault::Invalid(format!(
                    "answered {what} at position {value}, but the input lists {} instance(s)",
                    instances.len()
                ))
            })
        };
        match outcome {
            0 => Ok(Outcome::no_match()),
            1 => Ok(Outcome::selected(at("selected")?)),
            2 => {
                let instance = at("fell_through")?;
                let (kind, why) = if !instance.is_connected() {
                    (ErrorKind::unusable(instance), format!("is {}", instance.unusable_state()))
                } else if cx.at_capacity(instance).is_some() {
                    (ErrorKind::InstanceAtCapacity, "is at capacity".to_owned())
                } else {
                    (ErrorKind::InstanceDisconnected, "was judged unusable by the rule".to_owned())
                };
                Ok(Outcome::unusable(kind, format!("{}: {} {why}", self.declared.id, instance.label())))
            }
            3 if value < 1000 => Err(Fault::Invalid(format!("failed with code {value}; plugin codes start at 1000"))),
            3 => {
                let (kind, message) = guest_error(&pooled.guest.error()?)?;
                let code = u32::try_from(value).unwrap_or(u32::MAX);
                Ok(Outcome::FailedWithCode { code, kind: ErrorKind::from_name(&kind), message })
            }
            other => Err(Fault::Invalid(format!("answered outcome {other}, which ABI 1 does not define (0 to 3)"))),
        }
    }
}

impl SelectionRule for WasmRule {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        let taken = self.pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut pooled = match taken {
            Some(pooled) => pooled,
            None => match self.fresh() {
                Ok(pooled) => pooled,
                Err(Fresh::Fault(fault)) => return self.fail(&fault),
                Err(Fresh::Refused(message)) => {
                    let why = format!("refused the options it had accepted, on a fresh instance: {message}");
                    return self.fail(&Fault::Invalid(why));
                }
            },
        };
        let input = INPUT.with_borrow_mut(|buffer| {
            crate::input::write(buffer, cx);
            self.consult(&mut pooled, cx, buffer)
        });
        match input {
            Ok(outcome) => {
                self.pool.lock().unwrap_or_else(PoisonError::into_inner).push(pooled);
                outcome
            }
            Err(fault) => {
                if !fault.spoils() {
                    self.pool.lock().unwrap_or_else(PoisonError::into_inner).push(pooled);
                }
                self.fail(&fault)
            }
        }
    }
}

thread_local! {
    /// The consultation's JSON, written in a buffer each thread reuses.
    static INPUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl WasmRule {
    fn fail<'a>(&self, fault: &Fault) -> Outcome<'a> {
        let hint = match fault {
            Fault::Timeout => "; the module needs fixing, or a larger `timeout_ms`",
            Fault::OutOfMemory => "; the module needs fixing, or a larger `max_memory_mb`",
            _ => "; the module needs fixing",
        };
        Outcome::failed(
            ErrorKind::Custom(Cow::Borrowed(fault.kind())),
            format!(
                "WebAssembly rule `{}` ({}) {}{hint}",
                self.declared.id,
                self.shared.file,
                fault.describe(&self.shared.limits)
            ),
        )
    }
}
