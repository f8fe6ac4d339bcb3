//! `default_instance` (priority 5, code 105): the location's default on
//! this channel. Skips by default when it is disconnected.

use switchboard_core::{register_rule, ErrorKind, OnUnavailable, Outcome, RuleContext, SelectionRule};

/// The rule id.
pub const ID: &str = "default_instance";
/// Its error code.
pub const CODE: u32 = 105;

/// Selects the instance marked `default: true` for the location and channel.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultInstance;

impl SelectionRule for DefaultInstance {
    /// The location's default, whatever the request says.
    fn is_fallback(&self) -> bool {
        true
    }

    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        match cx.instances().default_instance() {
            None => Outcome::no_match_because(format!(
                "location `{}` has no default {} instance",
                cx.location(),
                cx.channel().id()
            )),
            Some(instance) if instance.is_connected() => Outcome::selected(instance),
            Some(instance) => Outcome::unusable(
                ErrorKind::unusable(instance),
                format!(
                    "the default {} instance {} of location `{}` is {}; {} or mark another default",
                    cx.channel().id(),
                    instance.label(),
                    cx.location(),
                    instance.unusable_state(),
                    crate::remedy(instance),
                ),
            ),
        }
    }
}

register_rule! {
    id: ID,
    summary: "the location's default instance for the channel",
    code: CODE,
    on_unavailable: Some(OnUnavailable::Skip),
    options: &[],
    build: |_| Ok(Box::new(DefaultInstance)),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{run, Answer::*};

    #[test]
    fn selects_the_connected_default() {
        let world = r#"[{"id":"a","channel":"whatsapp","phone":"1","connected":true},
                        {"id":"b","channel":"whatsapp","phone":"2","connected":true,"default":true}]"#;
        assert_eq!(run(&DefaultInstance, world, "whatsapp", "hi", None), Selected("b"));
    }

    #[test]
    fn no_match_without_a_default_on_this_channel() {
        let world = r#"[{"id":"a","channel":"whatsapp","phone":"1","connected":true},
                        {"id":"s","channel":"sms","phone":"2","connected":true,"default":true}]"#;
        assert_eq!(run(&DefaultInstance, world, "whatsapp", "hi", None), NoMatch);
    }

    #[test]
    fn unusable_when_the_default_is_disconnected() {
        let world = r#"[{"id":"b","channel":"whatsapp","phone":"2","default":true}]"#;
        assert_eq!(run(&DefaultInstance, world, "whatsapp", "hi", None), Unusable("instance_disconnected"));
    }
}
