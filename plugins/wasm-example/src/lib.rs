//! `tag_first`, an example WebAssembly rule built with
//! switchboard-wasm-sdk: a contact with the configured tag (`vip` by
//! default) goes to the first usable instance; when the contact has the
//! tag but no instance is usable, the rule falls through on the first
//! instance (its `on_unavailable` decides). Build it for
//! `wasm32-unknown-unknown` (docs/wasm-plugins.md):
//!
//! ```text
//! cargo build --release --target wasm32-unknown-unknown -p switchboard-wasm-example
//! # target/wasm32-unknown-unknown/release/tag_first.wasm
//! ```

use switchboard_wasm_sdk::{export_rules, Answer, Default, Input, Kind, OptionSpec, Options, Rule};

/// The rule: the tag it looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagFirst {
    tag: String,
}

impl Rule for TagFirst {
    const ID: &'static str = "tag_first";
    const CODE: u32 = 1100;
    const SUMMARY: &'static str = "a contact with the tag goes to the first usable instance";
    const OPTIONS: &'static [OptionSpec] = &[OptionSpec {
        name: "tag",
        kind: Kind::String,
        default: Default::Str("vip"),
        doc: "the tag (trimmed, any letter case)",
    }];

    fn configure(options: &Options) -> Result<Self, String> {
        match options.str("tag").map(str::trim) {
            Some("") | None => Err("`tag` must not be empty".into()),
            Some(tag) => Ok(TagFirst { tag: tag.to_owned() }),
        }
    }

    fn select(&self, input: &Input) -> Answer {
        if !input.contact.has_tag(&self.tag) {
            return Answer::NoMatch;
        }
        match input.instances.iter().position(|i| i.usable) {
            Some(position) => Answer::Selected(position),
            None if input.instances.is_empty() => Answer::NoMatch,
            None => Answer::FellThrough(0),
        }
    }
}

export_rules! { name: "tag-first", version: env!("CARGO_PKG_VERSION"), rules: [TagFirst] }

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn input(tags: &str, usable: [bool; 2]) -> Input {
        let json = format!(
            r#"{{"location":"l","channel":"whatsapp","body":"Hi","contact":{{"id":"c","tags":{tags},"assigned_user":null,"phone":null,"timezone":null}},"instances":[{{"id":"a","index":1,"phone":"1","connected":true,"usable":{},"users":[],"weight":1}},{{"id":"b","index":2,"phone":"2","connected":true,"usable":{},"users":[],"weight":1}}]}}"#,
            usable[0], usable[1]
        );
        Input::from_json(&json).unwrap()
    }

    #[test]
    fn tagged_contacts_go_to_the_first_usable_instance() {
        let rule = TagFirst::configure(&Options::default()).err();
        assert_eq!(rule.as_deref(), Some("`tag` must not be empty"));
        let mut options = Options::default();
        options.0.insert("tag".into(), " VIP ".into());
        let rule = TagFirst::configure(&options).unwrap();
        assert_eq!(rule.select(&input(r#"["vip"]"#, [false, true])), Answer::Selected(1));
        assert_eq!(rule.select(&input(r#"["new"]"#, [true, true])), Answer::NoMatch);
        assert_eq!(rule.select(&input("null", [true, true])), Answer::NoMatch);
        assert_eq!(rule.select(&input(r#"["Vip"]"#, [false, false])), Answer::FellThrough(0));
    }
}
