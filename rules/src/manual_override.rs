//! `manual_override` (priority 1, code 101): the body names the instance,
//! `{ WA#N }` on WhatsApp, `{IM#N}` on iMessage.

use switchboard_core::{register_rule, OnUnavailable, Outcome, PatternKind, RuleContext, SelectionRule};

/// The rule id.
pub const ID: &str = "manual_override";
/// Its error code.
pub const CODE: u32 = 101;

/// Selects the instance whose index an override pattern of the sending
/// channel names. Different indexes in one body fail with
/// `conflicting_override` whatever `on_unavailable` says.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualOverride;

impl SelectionRule for ManualOverride {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        crate::pattern_rule::resolve(cx, PatternKind::Override, "manual override")
    }

    fn needs_patterns(&self) -> bool {
        true
    }
}

register_rule! {
    id: ID,
    summary: "the body names the instance: { WA#N }, {IM#N}",
    code: CODE,
    on_unavailable: Some(OnUnavailable::Error),
    options: &[],
    build: |_| Ok(Box::new(ManualOverride)),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run, Answer::*};

    const WORLD: &str = r#"[
        {"id":"wa-orders","channel":"whatsapp","index":1,"phone":"+1 555 ORDERS","connected":true},
        {"id":"wa-support","channel":"whatsapp","index":2,"phone":"+1 555 SUPPORT","connected":true},
        {"id":"wa-off","channel":"whatsapp","index":3,"phone":"+1 555 0003","connected":false},
        {"id":"im-1","channel":"imessage","index":1,"phone":"+1 555 0101","connected":true},
        {"id":"sms-1","channel":"sms","index":1,"phone":"+1 555 0201","connected":true}
    ]"#;

    #[test]
    fn selected_by_the_named_index() {
        assert_eq!(
            run(&ManualOverride, WORLD, "whatsapp", "go via the 2nd instance { WA#2 }", None),
            Selected("wa-support")
        );
        assert_eq!(run(&ManualOverride, WORLD, "whatsapp", "old template {{ WA#1 }}", None), Selected("wa-orders"));
        assert_eq!(run(&ManualOverride, WORLD, "imessage", "hi {im#01}", None), Selected("im-1"));
    }

    #[test]
    fn no_match_without_a_pattern_of_the_sending_channel() {
        assert_eq!(run(&ManualOverride, WORLD, "whatsapp", "hello", None), NoMatch);
        assert_eq!(run(&ManualOverride, WORLD, "whatsapp", "hello {IM#1}", None), NoMatch);
        assert_eq!(run(&ManualOverride, WORLD, "sms", "hello {SMS#1} { WA#1 }", None), NoMatch);
        assert_eq!(run(&ManualOverride, WORLD, "imessage", "hello {TEMP-IM#1}", None), NoMatch);
    }

    #[test]
    fn unusable_when_the_index_is_missing_or_disconnected() {
        assert_eq!(run(&ManualOverride, WORLD, "whatsapp", "{WA#9}", None), Unusable("instance_not_found"));
        assert_eq!(
            run(&ManualOverride, WORLD, "whatsapp", "{WA#99999999999999999999999}", None),
            Unusable("instance_not_found")
        );
        assert_eq!(run(&ManualOverride, WORLD, "whatsapp", "{WA#3}", None), Unusable("instance_disconnected"));
    }

    #[test]
    fn same_index_twice_is_fine_different_indexes_fail() {
        assert_eq!(run(&ManualOverride, WORLD, "whatsapp", "{WA#2} and {{wa#002}}", None), Selected("wa-support"));
        assert_eq!(run(&ManualOverride, WORLD, "whatsapp", "{WA#1} {WA#2}", None), Failed("conflicting_override"));
    }
}
