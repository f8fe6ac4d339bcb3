//! Fixtures shared by the crate's unit tests.

/// A WhatsApp-like channel: id `whatsapp`, code `WA`, tags `wa:`.
pub(crate) struct Wa;

impl switchboard_core::ChannelSyntax for Wa {
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

/// An instance of `channel` with this id and phone, connected, with
/// nothing else set.
pub(crate) fn instance(id: &str, channel: &str, phone: &str) -> switchboard_core::InstanceSpec {
    switchboard_core::InstanceSpec {
        id: id.into(),
        channel: channel.into(),
        index: None,
        phone: phone.into(),
        connected: true,
        default: false,
        users: Vec::new(),
        weight: None,
        pool: None,
        limits: None,
        reply_window: None,
        warmup: None,
    }
}
