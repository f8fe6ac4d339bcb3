//! The JSON input of one consultation (docs/wasm-plugins.md), written by hand into a
//! reused buffer: the request's location, channel and body, the contact
//! (an object whose absent fields are `null`) and the channel's instances
//! at the location, in index order.

use switchboard_core::RuleContext;
use switchboard_engine::json::{string, unsigned as number};

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
    out.extend_from_slice(b"},\"instances\":[");
    for (n, instance) in cx.instances().iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        string(out, instance.id());
        out.extend_from_slice(b",\"index\":");
        number(out, instance.index());
        out.extend_from_slice(b",\"phone\":");
        string(out, instance.phone());
        let usable = instance.is_connected() && cx.at_capacity(instance).is_none();
        out.extend_from_slice(if instance.is_online() { b",\"connected\":true" } else { b",\"connected\":false" });
        out.extend_from_slice(if usable { b",\"usable\":true" } else { b",\"usable\":false" });
        out.extend_from_slice(b",\"users\":");
        strings(out, instance.users().iter().map(String::as_str));
        out.extend_from_slice(b",\"weight\":");
        number(out, u64::from(instance.weight()));
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
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
