//! What manual overrides and temporary switches share: find the sending
//! channel's patterns of one kind, insist they agree, resolve the index.

use switchboard_core::{ErrorKind, Outcome, PatternKind, RuleContext};

pub(crate) fn resolve<'a>(cx: &RuleContext<'a>, kind: PatternKind, what: &str) -> Outcome<'a> {
    let channel = cx.channel();
    let supported = match kind {
        PatternKind::Override => channel.has_override(),
        PatternKind::TemporarySwitch => channel.has_temporary_switch(),
    };
    if !supported {
        return Outcome::no_match();
    }
    let mut patterns = cx.patterns(kind);
    let Some(first) = patterns.next() else {
        return Outcome::no_match();
    };
    found(cx, what, first, patterns)
}

/// [`resolve`] once the body has a pattern of the kind: kept out of line so
/// that the common case (no pattern) stays a short call.
#[inline(never)]
fn found<'a>(
    cx: &RuleContext<'a>,
    what: &str,
    first: &'a switchboard_core::PatternMatch,
    mut patterns: impl Iterator<Item = &'a switchboard_core::PatternMatch>,
) -> Outcome<'a> {
    let channel = cx.channel();
    let key = |m: &switchboard_core::PatternMatch| {
        // Too large for u64: compare the digits themselves.
        let digits = || {
            let text = cx.pattern_text(m);
            let after = text.rsplit('#').next().unwrap_or_default();
            after.trim_end_matches(['}', ' ', '\t']).trim_start_matches('0').to_owned()
        };
        m.index.map_or_else(digits, |i| i.to_string())
    };
    let first_key = key(first);
    if let Some(other) = patterns.find(|m| key(m) != first_key) {
        let plural = if what.ends_with("ch") { "es" } else { "s" };
        return Outcome::failed(
            ErrorKind::ConflictingOverride,
            format!(
                "the body has conflicting {what}{plural} `{}` and `{}`; keep one {what} (or several naming the same index)",
                cx.pattern_text(first),
                cx.pattern_text(other)
            ),
        );
    }
    let text = cx.pattern_text(first);
    let instances = cx.instances();
    let Some(index) = first.index else {
        return Outcome::unusable(
            ErrorKind::InstanceNotFound,
            format!(
                "{what} `{text}` names an index too large for any {} instance of location `{}` (instances: {})",
                channel.id(),
                cx.location(),
                instances.describe_indexes()
            ),
        );
    };
    match instances.by_index(index) {
        None => Outcome::unusable(
            ErrorKind::InstanceNotFound,
            format!(
                "{what} `{text}` names {} instance #{index}, but location `{}` has no such instance (instances: {}); \
                 fix the index in the template",
                channel.id(),
                cx.location(),
                instances.describe_indexes()
            ),
        ),
        Some(instance) if !instance.is_connected() => Outcome::unusable(
            ErrorKind::unusable(instance),
            format!(
                "{what} `{text}` names {}, which is {}; {} or change the {what}",
                instance.label(),
                instance.unusable_state(),
                crate::remedy(instance),
            ),
        ),
        Some(instance) => Outcome::selected(instance).with_detail(format!("`{text}` names #{index}")),
    }
}
