//! The JSON input of one consultation (docs/wasm-plugins.md), written by hand into a
//! reused buffer: the request's location, channel and body, the contact
//! (an object whose absent fields are `null`) and the channel's instances
//! at the location, in index order.
//!
//! The instances are most of the input and change only with the world or
//! live state, so their JSON is kept, per thread, for each list of
//! instances met (see [`Written`]) and copied as is while nothing in this
//! decision found one of them at capacity.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use switchboard_core::{Instance, RuleContext};
use switchboard_engine::json::{string, unsigned as number};

/// How many lists of instances a thread keeps the JSON of; past it, one
/// is forgotten to make room.
const KEPT: usize = 256;

/// The JSON of one list of instances (`[...]`), written with `usable` =
/// connected (nothing at capacity). The list is held, so the instances it
/// was written from stay alive and their addresses (the key) cannot be
/// reused by others; an [`Instance`] never changes once shared (a world or
/// live-state change makes new ones).
struct Written {
    instances: Vec<Arc<Instance>>,
    json: Vec<u8>,
}

thread_local! {
    /// This thread's written lists, by the address of their first instance.
    static WRITTEN: RefCell<HashMap<usize, Written>> = RefCell::new(HashMap::new());
}

/// Writes the input of `cx` into `out` (cleared first).
pub(crate) fn write(out: &mut Vec<u8>, cx: &RuleContext<'_>) {
    out.clear();
    out.extend_from_slice(b"{\"location\":");
    string(out, cx.location());
    out.extend_from_slice(b",\"channel\":");
    string(out, cx.channel().id());
    out.extend_from_slice(b",\"body\":");
    string(out, cx.body());
    out.extend_from_slice(b",\"contact\":{\"id\":");
    let contact = cx.contact();
    optional(out, contact.and_then(|c| c.id.as_deref()));
    out.extend_from_slice(b",\"tags\":");
    match contact {
        Some(c) => strings(out, c.tags.iter().map(String::as_str)),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"assigned_user\":");
    optional(out, contact.and_then(|c| c.assigned_user.as_deref()));
    out.extend_from_slice(b",\"phone\":");
    optional(out, contact.and_then(|c| c.phone.as_deref()));
    out.extend_from_slice(b",\"timezone\":");
    optional(out, contact.and_then(|c| c.timezone.as_deref()));
    out.extend_from_slice(b"},\"instances\":");
    let instances = cx.instances();
    match instances.iter().next() {
        // Something at capacity in this decision: `usable` may differ from
        // what was kept, so the list is written afresh for this one.
        Some(_) if !cx.at_capacity_all().is_empty() => list(out, instances.iter(), |i| cx.at_capacity(i).is_none()),
        Some(first) => WRITTEN.with_borrow_mut(|written| {
            let key = Arc::as_ptr(first) as usize;
            let same = |w: &Written| {
                w.instances.len() == instances.len()
                    && w.instances.iter().zip(instances.iter()).all(|(a, b)| Arc::ptr_eq(a, b))
            };
            if let Some(w) = written.get(&key).filter(|w| same(w)) {
                out.extend_from_slice(&w.json);
                return;
            }
            if written.len() >= KEPT && !written.contains_key(&key) {
                if let Some(forgotten) = written.keys().next().copied() {
                    written.remove(&forgotten);
                }
            }
            let mut json = Vec::new();
            list(&mut json, instances.iter(), |_| true);
            out.extend_from_slice(&json);
            written.insert(key, Written { instances: instances.iter().cloned().collect(), json });
        }),
        None => out.extend_from_slice(b"[]"),
    }
    out.push(b'}');
}

/// Writes `instances` as a JSON array; an instance is `usable` when it is
/// connected and `free` says it is not at capacity.
fn list<'i>(out: &mut Vec<u8>, instances: impl Iterator<Item = &'i Arc<Instance>>, free: impl Fn(&Instance) -> bool) {
    out.push(b'[');
    for (n, instance) in instances.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        string(out, instance.id());
        out.extend_from_slice(b",\"index\":");
        number(out, instance.index());
        out.extend_from_slice(b",\"phone\":");
        string(out, instance.phone());
        let usable = instance.is_connected() && free(instance);
        out.extend_from_slice(if instance.is_online() { b",\"connected\":true" } else { b",\"connected\":false" });
        out.extend_from_slice(if usable { b",\"usable\":true" } else { b",\"usable\":false" });
        out.extend_from_slice(b",\"users\":");
        strings(out, instance.users().iter().map(String::as_str));
        out.extend_from_slice(b",\"weight\":");
        number(out, u64::from(instance.weight()));
        out.push(b'}');
    }
    out.push(b']');
}

fn optional(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn strings<'s>(out: &mut Vec<u8>, items: impl Iterator<Item = &'s str>) {
    out.push(b'[');
    for (n, s) in items.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        string(out, s);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn strings_are_escaped_as_json_reads_them() {
        for s in ["plain", "q\"uo\\te", "line\nbreak\ttab\r", "\u{1}\u{1f}", "émoji 🎉", ""] {
            let mut out = Vec::new();
            string(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
        for n in [0u64, 7, 10, 1234567890, u64::MAX] {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(String::from_utf8(out).unwrap(), n.to_string());
        }
    }
}
