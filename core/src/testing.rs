//! Fixtures shared by the crate's unit tests.

/// A WhatsApp-like channel: id `whatsapp`, code `WA`, tags `wa:`.
pub(crate) struct Wa;

impl crate::ChannelSyntax for Wa {
    fn id(&self) -> &str {
        "whatsapp"
    }
    fn code(&self) -> &str {
        "WA"
    }
    fn tag_prefix(&self) -> &str {
        "wa:"
    }
}
