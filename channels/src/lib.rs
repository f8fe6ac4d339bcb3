//! # switchboard-channels
//!
//! The three built-in channels of docs/rules.md, registered through `inventory`
//! with the same [`ChannelSyntax`] trait and [`register_channel!`] macro a
//! plugin uses:
//!
//! | channel | code | override | temporary switch | tag prefix |
//! |---|---|---|---|---|
//! | `whatsapp` | `WA` | `{ WA#N }` | — | `wa:` |
//! | `imessage` | `IM` | `{IM#N}` | `{TEMP-IM#N}` | `im:` |
//! | `sms` | `SMS` | — | — | `sms:` |
//!
//! ```
//! use switchboard_core::{ChannelSyntax, Registry};
//! switchboard_channels::link();
//! let registry = Registry::from_inventory().unwrap();
//! let ids: Vec<&str> = registry.channel_ids().collect();
//! assert_eq!(ids, ["imessage", "sms", "whatsapp"]);
//! assert!(switchboard_channels::IMessage.has_temporary_switch());
//! ```

use switchboard_core::{register_channel, ChannelSyntax};

/// Makes sure this crate is linked, so that its channels reach inventory.
/// Call it (or name any item of this crate) from the binary.
pub fn link() {}

/// WhatsApp: `{ WA#N }` overrides, `wa:` tags.
#[derive(Debug, Clone, Copy, Default)]
pub struct WhatsApp;

impl ChannelSyntax for WhatsApp {
    fn id(&self) -> &str {
        "whatsapp"
    }
    fn code(&self) -> &str {
        "WA"
    }
    fn tag_prefix(&self) -> &str {
        "wa:"
    }
    fn summary(&self) -> &str {
        "WhatsApp numbers: override { WA#N }, tags wa:"
    }
}

/// iMessage: `{IM#N}` overrides, `{TEMP-IM#N}` temporary switches, `im:` tags.
#[derive(Debug, Clone, Copy, Default)]
pub struct IMessage;

impl ChannelSyntax for IMessage {
    fn id(&self) -> &str {
        "imessage"
    }
    fn code(&self) -> &str {
        "IM"
    }
    fn tag_prefix(&self) -> &str {
        "im:"
    }
    fn summary(&self) -> &str {
        "iMessage accounts: override {IM#N}, temporary switch {TEMP-IM#N}, tags im:"
    }
    fn has_temporary_switch(&self) -> bool {
        true
    }
}

/// SMS: no body patterns, `sms:` tags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sms;

impl ChannelSyntax for Sms {
    fn id(&self) -> &str {
        "sms"
    }
    fn code(&self) -> &str {
        "SMS"
    }
    fn tag_prefix(&self) -> &str {
        "sms:"
    }
    fn summary(&self) -> &str {
        "SMS numbers: no body patterns, tags sms:"
    }
    fn has_override(&self) -> bool {
        false
    }
}

register_channel!(WhatsApp);
register_channel!(IMessage);
register_channel!(Sms);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::{tag_number, Registry, Scanner};

    fn scanner() -> Scanner {
        Scanner::new([&WhatsApp as &dyn ChannelSyntax, &IMessage, &Sms])
    }

    #[test]
    fn whatsapp_syntax() {
        let s = scanner();
        let scan = s.scan("This message will go via the 2nd instance { WA#2 }");
        assert_eq!(scan.matches().len(), 1);
        assert_eq!(scan.matches()[0].index, Some(2));
        assert_eq!(scan.stripped(), "This message will go via the 2nd instance");
        assert_eq!(tag_number("wa: +15551234567", WhatsApp.tag_prefix()), Some("+15551234567"));
    }

    #[test]
    fn imessage_syntax() {
        let s = scanner();
        let scan = s.scan("Quick update from our support line {TEMP-IM#3}");
        assert_eq!(scan.matches()[0].kind, switchboard_core::PatternKind::TemporarySwitch);
        assert_eq!(scan.stripped(), "Quick update from our support line");
        assert_eq!(tag_number("IM: +1 555", IMessage.tag_prefix()), Some("+1 555"));
    }

    #[test]
    fn sms_has_no_patterns_but_strips_others() {
        let s = scanner();
        assert_eq!(s.scan("Reply {SMS#1} now { WA#2 }").stripped(), "Reply {SMS#1} now");
        assert_eq!(tag_number("sms:+1555", Sms.tag_prefix()), Some("+1555"));
    }

    #[test]
    fn every_registered_channel_has_a_distinct_code_and_prefix() {
        let registry = Registry::from_inventory().unwrap();
        let channels = registry.channels();
        assert_eq!(channels.len(), 3);
        for (i, a) in channels.iter().enumerate() {
            assert!(a.tag_prefix().ends_with(':'), "{}", a.id());
            for b in &channels[i + 1..] {
                assert!(!a.code().eq_ignore_ascii_case(b.code()));
                assert!(!a.tag_prefix().eq_ignore_ascii_case(b.tag_prefix()));
            }
        }
    }
}
