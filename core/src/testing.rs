//! Fixtures shared by the unit tests of this crate and of the engine
//! (the `testing` feature); not part of the contract.

/// A WhatsApp-like channel: id `whatsapp`, code `WA`, tags `wa:`.
pub struct Wa;

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

/// An instance of `channel` with this id and phone, connected, with
/// nothing else set.
pub fn instance(id: &str, channel: &str, phone: &str) -> crate::InstanceSpec {
    crate::InstanceSpec {
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
