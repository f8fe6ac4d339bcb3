//! The channel-syntax trait: what a messaging network writes in bodies and
//! tags, and the descriptor that registers a channel.

/// The syntax of one messaging channel (docs/rules.md).
///
/// Only three methods are required; the two pattern capabilities default to
/// "override yes, temporary switch no". The registry compiles every
/// registered channel's patterns into one scanner, so a body is scanned once
/// per request whatever the number of channels.
///
/// ```
/// use switchboard_core::ChannelSyntax;
///
/// struct Telegram;
/// impl ChannelSyntax for Telegram {
///     fn id(&self) -> &str { "telegram" }
///     fn code(&self) -> &str { "TG" }
///     fn tag_prefix(&self) -> &str { "tg:" }
/// }
/// assert!(Telegram.has_override());
/// assert!(!Telegram.has_temporary_switch());
/// ```
pub trait ChannelSyntax: Send + Sync {
    /// The channel id used in requests, world files and rules.yaml
    /// (lower-case ASCII letters, digits and `_`).
    fn id(&self) -> &str;
    /// The pattern code: `WA` in `{ WA#2 }` (ASCII letters and digits,
    /// matched case-insensitively).
    fn code(&self) -> &str;
    /// The contact tag prefix, `wa:` for WhatsApp (matched case-insensitively).
    fn tag_prefix(&self) -> &str;
    /// One line for `switchboard rules`.
    fn summary(&self) -> &str {
        ""
    }
    /// Whether `{ C#N }` is a manual override on this channel.
    fn has_override(&self) -> bool {
        true
    }
    /// Whether `{TEMP-C#N}` is a temporary switch on this channel.
    fn has_temporary_switch(&self) -> bool {
        false
    }
}

/// A channel submitted with [`crate::register_channel!`]; collected by
/// `inventory` and frozen into a [`crate::Registry`] at start-up.
pub struct ChannelDescriptor {
    /// The channel's syntax.
    pub syntax: &'static dyn ChannelSyntax,
    /// The crate that registered it (shown by `switchboard rules`).
    pub source: &'static str,
}

inventory::collect!(ChannelDescriptor);

/// Registers a channel with every registry built from inventory.
///
/// ```ignore
/// struct Sms;
/// impl switchboard_core::ChannelSyntax for Sms { /* … */ }
/// switchboard_core::register_channel!(Sms);
/// ```
#[macro_export]
macro_rules! register_channel {
    ($syntax:expr) => {
        $crate::inventory::submit! {
            $crate::ChannelDescriptor { syntax: &$syntax, source: env!("CARGO_PKG_NAME") }
        }
    };
}

/// Whether a tag belongs to a channel: trimmed, it starts with the prefix
/// (case-insensitive). Returns the rest, trimmed: the tagged phone number.
///
/// ```
/// assert_eq!(switchboard_core::tag_number(" WA: +1 555 ", "wa:"), Some("+1 555"));
/// assert_eq!(switchboard_core::tag_number("vip", "wa:"), None);
/// ```
#[inline]
pub fn tag_number<'t>(tag: &'t str, prefix: &str) -> Option<&'t str> {
    // Fast path: most tags (`vip`, `newsletter`) start with a letter that
    // is neither the prefix's first letter nor whitespace.
    if let (Some(t), Some(p)) = (tag.as_bytes().first(), prefix.as_bytes().first()) {
        if t.is_ascii_graphic() && !t.eq_ignore_ascii_case(p) {
            return None;
        }
    }
    let tag = tag.trim();
    let head = tag.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        tag.get(prefix.len()..).map(str::trim)
    } else {
        None
    }
}
