//! Example plugin: the Telegram channel. Code `TG`: `{ TG#N }` overrides
//! and `{TEMP-TG#N}` switches one message; contacts are tagged `tg: +1…`.
//! Once listed in rules.yaml, its patterns are stripped from every
//! channel's bodies like the built-in ones, and every built-in rule works
//! on it.

use switchboard_plugin_sdk::{export_plugin, ChannelSpec};

export_plugin! {
    name: "telegram",
    version: env!("CARGO_PKG_VERSION"),
    rules: [],
    channels: [ChannelSpec {
        id: "telegram",
        code: "TG",
        tag_prefix: "tg:",
        summary: "Telegram bots and accounts: override { TG#N }, temporary switch {TEMP-TG#N}, tags tg:",
        has_override: true,
        has_temporary_switch: true,
    }],
}
