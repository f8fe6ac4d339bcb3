//! `conversation` (code 107, docs/capacity.md; not in the default order): the
//! contact keeps the instance that last carried a message to it on this
//! channel, for `ttl`.
//!
//! The rule only reads memory. The evaluator writes it: in a chain with this
//! rule, every counted selection (whichever rule made it, except
//! `temporary_switch`) remembers (location, channel, contact id) → instance
//! in the plan's capacity store, in the same round trip as the capacity
//! reservation. Previews (`explain`, `--dry-run`) neither count nor
//! remember. So when the remembered instance is unusable and the rule skips
//! (the default), the memory moves to the instance chosen next.
//!
//! ```yaml
//! rules:
//!   - manual_override
//!   - temporary_switch
//!   - rule: conversation
//!     ttl: 7d            # s, m, h or d; default 7d
//!   - contact_tag
//!   - any_available
//! ```

use std::time::Duration;

use switchboard_core::{
    register_rule, ErrorKind, OnUnavailable, OptionKind, OptionSpec, Outcome, Recall, RuleContext, RuleOptions,
    SelectionRule,
};

/// The rule id.
pub const ID: &str = "conversation";
/// Its error code.
pub const CODE: u32 = 107;
/// The default `ttl`.
pub const DEFAULT_TTL: &str = "7d";

/// Selects the instance remembered for the contact on the sending channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conversation {
    ttl: Duration,
}

impl Conversation {
    /// The rule with memories lasting `ttl`.
    pub fn new(ttl: Duration) -> Conversation {
        Conversation { ttl }
    }

    /// How long a memory lasts after the message that wrote it.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl Default for Conversation {
    fn default() -> Conversation {
        Conversation { ttl: Duration::from_secs(7 * 86_400) }
    }
}

/// Reads a `ttl`: a whole number from 1 followed by one unit, `s`, `m`,
/// `h` or `d` (`90s`, `30m`, `12h`, `7d`), as every duration of rules.yaml
/// and of events is read.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    switchboard_core::recipient::parse_duration(text, "ttl", false)
}

impl SelectionRule for Conversation {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        let Some(contact) = cx.contact_id() else {
            return Outcome::no_match_because("the request has no contact id: no conversation to recall");
        };
        let channel = cx.channel().id();
        match cx.recall() {
            Recall::Nothing => Outcome::no_match_because(format!(
                "no {channel} conversation remembered for contact `{contact}` (none in the last {})",
                human(self.ttl)
            )),
            Recall::Gone(id) => Outcome::no_match_because(format!(
                "contact `{contact}` last had {channel} messages from `{id}`, which is no longer a {channel} instance \
                 of location `{}`",
                cx.location()
            )),
            Recall::Unavailable(e) => Outcome::failed(
                ErrorKind::StoreUnavailable,
                format!("cannot recall the {channel} conversation of contact `{contact}`: {e}"),
            ),
            Recall::Instance(instance) if !instance.is_connected() => Outcome::unusable(
                ErrorKind::unusable(instance),
                format!(
                    "contact `{contact}` is in a conversation with {}, which is {}; {}, or set \
                     `on_unavailable: skip` on conversation to move the conversation to another instance",
                    instance.label(),
                    instance.unusable_state(),
                    crate::remedy(instance),
                ),
            ),
            Recall::Instance(instance) => match cx.at_capacity(instance) {
                Some(why) => Outcome::unusable(
                    ErrorKind::InstanceAtCapacity,
                    format!("contact `{contact}` is in a conversation with {}, but {why}", instance.label()),
                ),
                None => Outcome::selected(instance)
                    .with_detail(format!("contact `{contact}` is in a conversation with {}", instance.id())),
            },
        }
    }

    fn memory_ttl(&self) -> Option<Duration> {
        Some(self.ttl)
    }
}

/// `7d`, `12h`, `30m`, `90s`: the largest unit that divides `ttl`.
fn human(ttl: Duration) -> String {
    let s = ttl.as_secs();
    [(86_400, 'd'), (3_600, 'h'), (60, 'm')]
        .into_iter()
        .find(|(unit, _)| s > 0 && s.is_multiple_of(*unit))
        .map_or_else(|| format!("{s}s"), |(unit, letter)| format!("{}{letter}", s / unit))
}

fn build(options: &RuleOptions) -> Result<Box<dyn SelectionRule>, String> {
    let ttl = parse_ttl(options.str("ttl").unwrap_or(DEFAULT_TTL)).map_err(|e| {
        if e.contains("at least") {
            format!("{e} (remove the rule to keep no memory)")
        } else {
            e
        }
    })?;
    Ok(Box::new(Conversation::new(ttl)))
}

register_rule! {
    id: ID,
    summary: "the instance that last carried a message to the contact on this channel, for `ttl`",
    code: CODE,
    on_unavailable: Some(OnUnavailable::Skip),
    options: &[OptionSpec {
        name: "ttl",
        kind: OptionKind::Duration,
        default: DEFAULT_TTL,
        doc: "how long the conversation is remembered after its last message: a whole number and s, m, h or d",
    }],
    build: build,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, run_with_store, Answer::*};
    use switchboard_core::capacity::jiff::Timestamp;
    use switchboard_core::ConversationKey;
    use switchboard_state::MemoryStore;

    const WORLD: &str = r#"[
        {"id":"wa-1","channel":"whatsapp","index":1,"phone":"+1 555 0101","connected":true},
        {"id":"wa-2","channel":"whatsapp","index":2,"phone":"+1 555 0102","connected":true},
        {"id":"wa-off","channel":"whatsapp","index":3,"phone":"+1 555 0103","connected":false}]"#;

    fn now() -> Timestamp {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn remembering(instance: &str) -> MemoryStore {
        let store = MemoryStore::new();
        let key = ConversationKey { location: "loc_1", channel: "whatsapp", contact: "c1" };
        switchboard_core::CapacityStore::remember(&store, &key, instance, Duration::from_secs(3600), now()).unwrap();
        store
    }

    #[test]
    fn ttls_take_one_unit() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_ttl(" 12h "), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(604_800)));
        for bad in ["", "d", "7", "7w", "-1d", "1.5h", "7 d", "0s", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
        assert!(parse_ttl("0h").unwrap_err().contains("at least 1h"));
        assert_eq!(human(Duration::from_secs(604_800)), "7d");
        assert_eq!(human(Duration::from_secs(5_400)), "90m");
    }

    #[test]
    fn selects_the_remembered_instance() {
        let store = remembering("wa-2");
        let answer = run_with_store(&Conversation::default(), &store, now(), WORLD, contact("c1", &[], None));
        assert_eq!(answer, Selected("wa-2"));
    }

    #[test]
    fn no_match_without_memory_or_contact_or_after_the_ttl() {
        let store = remembering("wa-2");
        let rule = Conversation::default();
        assert_eq!(run_with_store(&rule, &store, now(), WORLD, contact("c2", &[], None)), NoMatch);
        assert_eq!(run_with_store(&rule, &store, now(), WORLD, None), NoMatch);
        let later: Timestamp = "2026-11-25T13:00:01Z".parse().unwrap();
        assert_eq!(run_with_store(&rule, &store, later, WORLD, contact("c1", &[], None)), NoMatch);
    }

    #[test]
    fn a_removed_instance_is_no_match_and_a_disconnected_one_unusable() {
        let rule = Conversation::default();
        let gone = remembering("wa-9");
        assert_eq!(run_with_store(&rule, &gone, now(), WORLD, contact("c1", &[], None)), NoMatch);
        let off = remembering("wa-off");
        assert_eq!(
            run_with_store(&rule, &off, now(), WORLD, contact("c1", &[], None)),
            Unusable("instance_disconnected")
        );
    }

    /// A store that cannot answer (what a Redis store says when Redis is
    /// down): the rule fails with `store_unavailable`, and the evaluator
    /// applies `on_store_error`.
    struct Down;

    impl switchboard_core::CapacityStore for Down {
        fn reserve(
            &self,
            _: &switchboard_core::ReservationRequest<'_>,
        ) -> Result<switchboard_core::Reservation, switchboard_core::StoreError> {
            Err(down())
        }
        fn usage(
            &self,
            _: &switchboard_core::ReservationRequest<'_>,
        ) -> Result<switchboard_core::capacity::Usage, switchboard_core::StoreError> {
            Err(down())
        }
        fn remember(
            &self,
            _: &ConversationKey<'_>,
            _: &str,
            _: Duration,
            _: Timestamp,
        ) -> Result<(), switchboard_core::StoreError> {
            Err(down())
        }
        fn recall(
            &self,
            _: &ConversationKey<'_>,
            _: Timestamp,
        ) -> Result<Option<String>, switchboard_core::StoreError> {
            Err(down())
        }
        fn forget(&self, _: &ConversationKey<'_>) -> Result<bool, switchboard_core::StoreError> {
            Err(down())
        }
    }

    fn down() -> switchboard_core::StoreError {
        switchboard_core::StoreError::new(switchboard_core::StoreErrorKind::Unavailable, "connection refused")
    }

    #[test]
    fn a_store_that_cannot_answer_fails_with_store_unavailable() {
        let answer = run_with_store(&Conversation::default(), &Down, now(), WORLD, contact("c1", &[], None));
        assert_eq!(answer, Failed("store_unavailable"));
    }

    #[test]
    fn memory_is_per_channel() {
        let store = remembering("wa-2");
        let sms = r#"[{"id":"wa-2","channel":"sms","index":1,"phone":"1","connected":true}]"#;
        // The same contact on another channel has no conversation there.
        assert_eq!(
            crate::testing::run_on_channel_with_store(
                &Conversation::default(),
                &store,
                now(),
                sms,
                "sms",
                contact("c1", &[], None)
            ),
            NoMatch
        );
    }
}
