//! `contact_tag` (priority 3, code 103): a contact tagged `wa: +1 555 …`
//! goes out on the instance with that number.

use switchboard_core::{
    normalize_phone_into, register_rule, tag_number, ErrorKind, OnUnavailable, Outcome, RuleContext, SelectionRule,
};

/// The rule id.
pub const ID: &str = "contact_tag";
/// Its error code.
pub const CODE: u32 = 103;

/// Scans the contact's tags in order for the sending channel's prefix and
/// selects the first *connected* instance whose normalized phone matches.
/// Tags with no digit, or naming no instance of this location and channel,
/// are ignored and noted in the trace. If tags name instances but all are
/// disconnected, the rule is unusable.
#[derive(Debug, Clone, Copy, Default)]
pub struct ContactTag;

impl SelectionRule for ContactTag {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        let Some(contact) = cx.contact() else {
            return Outcome::no_match();
        };
        let channel = cx.channel();
        let prefix = channel.tag_prefix();
        // `tag_number`'s fast path with the prefix's first letter read once:
        // most tags (`vip`) start with another visible character, and most
        // contacts have no other tag, so nothing is set up for them.
        let Some(&first) = prefix.as_bytes().first() else {
            return resolve(cx, &contact.tags, prefix);
        };
        let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
        let may_name = |tag: &String| match tag.as_bytes().first() {
            Some(&t) => t == lower || t == upper || !t.is_ascii_graphic(),
            None => true,
        };
        match contact.tags.iter().position(may_name) {
            None => Outcome::no_match(),
            Some(start) => resolve(cx, &contact.tags[start..], prefix),
        }
    }
}

/// The rule's answer for `tags`, the first of which may name an instance
/// (kept out of `evaluate`, whose fast path then sets up nothing).
#[inline(never)]
fn resolve<'a>(cx: &RuleContext<'a>, tags: &'a [String], prefix: &str) -> Outcome<'a> {
    let channel = cx.channel();
    let instances = cx.instances();
    let mut notes: Vec<String> = Vec::new();
    let mut disconnected = Vec::new();
    // Connected but at capacity in this decision (docs/capacity.md): passed over
    // as a disconnected instance is.
    let mut full: Vec<&str> = Vec::new();
    let mut digits = String::new();
    for tag in tags {
        let Some(number) = tag_number(tag, prefix) else { continue };
        if !number.bytes().any(|b| b.is_ascii_digit()) {
            notes.push(format!("tag `{tag}` has no digit; ignored"));
            continue;
        }
        digits.clear();
        normalize_phone_into(number, &mut digits);
        let mut named = false;
        for instance in instances.with_phone_digits(&digits) {
            named = true;
            if let Some(why) = cx.at_capacity(instance) {
                full.push(why);
                continue;
            }
            if instance.is_connected() {
                let mut detail = format!("tag `{tag}` names {}", instance.label());
                for note in &notes {
                    detail.push_str("; ");
                    detail.push_str(note);
                }
                return Outcome::selected(instance).with_detail(detail);
            }
            disconnected.push(instance);
        }
        if !named {
            notes.push(format!(
                "tag `{tag}` names no {} instance of location `{}`; ignored",
                channel.id(),
                cx.location()
            ));
        }
    }
    if !full.is_empty() {
        return Outcome::unusable(ErrorKind::InstanceAtCapacity, full.join("; "));
    }
    if disconnected.is_empty() {
        return match notes.is_empty() {
            true => Outcome::no_match(),
            false => Outcome::no_match_because(notes.join("; ")),
        };
    }
    if let Some(listed) = crate::quarantined_among(disconnected.iter().copied()) {
        return Outcome::unusable(
            ErrorKind::InstanceQuarantined,
            format!(
                "the contact's {} tags name no usable instance: {listed}; wait for a quarantine to end, reconnect one \
                 or update the contact's tags",
                channel.id(),
            ),
        );
    }
    Outcome::unusable(
        ErrorKind::InstanceDisconnected,
        format!(
            "the contact's {} tags name only disconnected instances: {}; reconnect one or update the contact's tags",
            channel.id(),
            crate::labels(disconnected.into_iter())
        ),
    )
}

register_rule! {
    id: ID,
    summary: "the contact is tagged with a number: wa: / im: / sms: +1…",
    code: CODE,
    on_unavailable: Some(OnUnavailable::Error),
    options: &[],
    build: |_| Ok(Box::new(ContactTag)),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, run, Answer::*};

    const WORLD: &str = r#"[
        {"id":"wa-orders","channel":"whatsapp","index":1,"phone":"+1-555-ORDERS","connected":true},
        {"id":"wa-support","channel":"whatsapp","index":2,"phone":"+1 555 SUPPORT","connected":true,"default":true},
        {"id":"wa-billing","channel":"whatsapp","index":3,"phone":"+1 555 BILLING","connected":true},
        {"id":"wa-old","channel":"whatsapp","index":4,"phone":"+1 555 0004","connected":false},
        {"id":"wa-old2","channel":"whatsapp","index":5,"phone":"+1 555 0005","connected":false},
        {"id":"sms-1","channel":"sms","index":1,"phone":"+1 555 0201","connected":true}
    ]"#;

    #[test]
    fn spec_example_keypad_letters_match() {
        let vip = contact("c1", &["vip", "wa: +1-555-BILLING"], None);
        assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", vip), Selected("wa-billing"));
        let c = contact("c1", &["wa: +1555673377"], None);
        assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", c), Selected("wa-orders"));
    }

    #[test]
    fn prefix_is_case_insensitive_and_trimmed() {
        let c = contact("c1", &["  WA:   +1 (555) 673-377  "], None);
        assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", c), Selected("wa-orders"));
        // The first letter in either case, with nothing before it.
        for tag in ["WA:+1 (555) 673-377", "wA: +1 (555) 673-377"] {
            let c = contact("c1", &["vip", tag], None);
            assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", c), Selected("wa-orders"), "{tag}");
        }
    }

    #[test]
    fn first_connected_in_tag_order_wins() {
        let c = contact("c1", &["wa: +1 555 0004", "wa: +1 555 SUPPORT", "wa: +1-555-ORDERS"], None);
        assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", c), Selected("wa-support"));
    }

    #[test]
    fn no_match_when_no_tag_applies() {
        assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", None), NoMatch);
        let c = contact("c1", &["vip", "sms: +1 555 0201", "wa: +1 999 0000", "wa: none", "wa:"], None);
        assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", c), NoMatch);
    }

    #[test]
    fn tags_of_another_channel_apply_there() {
        let c = contact("c1", &["wa: +1-555-ORDERS", "SMS: 15550201"], None);
        assert_eq!(run(&ContactTag, WORLD, "sms", "hi", c), Selected("sms-1"));
    }

    #[test]
    fn unusable_when_every_tagged_instance_is_disconnected() {
        let c = contact("c1", &["wa: +1 555 0004", "wa: 1 555 0005", "wa: +1 999"], None);
        assert_eq!(run(&ContactTag, WORLD, "whatsapp", "hi", c), Unusable("instance_disconnected"));
    }
}
