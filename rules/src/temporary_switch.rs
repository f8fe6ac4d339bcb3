//! `temporary_switch` (priority 2, code 102): `{TEMP-IM#N}` routes one
//! message through another instance without touching the contact's normal
//! assignment (the rule keeps no state: the next message goes the normal way).

use switchboard_core::{register_rule, OnUnavailable, Outcome, PatternKind, RuleContext, SelectionRule};

/// The rule id.
pub const ID: &str = "temporary_switch";
/// Its error code.
pub const CODE: u32 = 102;

/// Selects the instance a temporary-switch pattern of the sending channel
/// names; same checks as [`crate::manual_override::ManualOverride`].
#[derive(Debug, Clone, Copy, Default)]
pub struct TemporarySwitch;

impl SelectionRule for TemporarySwitch {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        crate::pattern_rule::resolve(cx, PatternKind::TemporarySwitch, "temporary switch")
    }

    fn needs_patterns(&self) -> bool {
        true
    }

    /// A temporary switch is not remembered as the contact's conversation
    /// (docs/capacity.md): the next message goes the normal way.
    fn is_remembered(&self) -> bool {
        false
    }
}

register_rule! {
    id: ID,
    summary: "one message through another instance: {TEMP-IM#N}",
    code: CODE,
    on_unavailable: Some(OnUnavailable::Error),
    options: &[],
    build: |_| Ok(Box::new(TemporarySwitch)),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run, Answer::*};

    const WORLD: &str = r#"[
        {"id":"im-main","channel":"imessage","index":1,"phone":"+1 555 0101","connected":true},
        {"id":"im-support","channel":"imessage","index":3,"phone":"+1 555 0103","connected":true},
        {"id":"im-off","channel":"imessage","index":4,"phone":"+1 555 0104","connected":false},
        {"id":"wa-1","channel":"whatsapp","index":1,"phone":"+1 555 0001","connected":true}
    ]"#;

    #[test]
    fn selected_by_the_named_index() {
        assert_eq!(
            run(&TemporarySwitch, WORLD, "imessage", "Quick update from our support line {TEMP-IM#3}", None),
            Selected("im-support")
        );
        assert_eq!(run(&TemporarySwitch, WORLD, "imessage", "{{ temp-im#1 }}", None), Selected("im-main"));
    }

    #[test]
    fn no_match_without_the_pattern_or_on_a_channel_without_it() {
        assert_eq!(run(&TemporarySwitch, WORLD, "imessage", "{IM#3}", None), NoMatch);
        assert_eq!(run(&TemporarySwitch, WORLD, "whatsapp", "{TEMP-WA#1} {TEMP-IM#3}", None), NoMatch);
    }

    #[test]
    fn unusable_and_failed() {
        assert_eq!(run(&TemporarySwitch, WORLD, "imessage", "{TEMP-IM#2}", None), Unusable("instance_not_found"));
        assert_eq!(run(&TemporarySwitch, WORLD, "imessage", "{TEMP-IM#4}", None), Unusable("instance_disconnected"));
        assert_eq!(
            run(&TemporarySwitch, WORLD, "imessage", "{TEMP-IM#1}{TEMP-IM#3}", None),
            Failed("conflicting_override")
        );
    }

    #[test]
    fn conflicting_switches_are_named_in_plain_english() {
        let (answer, message) =
            crate::testing::run_with_message(&TemporarySwitch, WORLD, "imessage", "{TEMP-IM#1} {TEMP-IM#3}", None);
        assert_eq!(answer, Failed("conflicting_override"));
        assert!(
            message.starts_with("the body has conflicting temporary switches `{TEMP-IM#1}` and `{TEMP-IM#3}`"),
            "{message}"
        );
    }
}
