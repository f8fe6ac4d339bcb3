//! Test fixture: rules that misbehave on purpose, to show that the host
//! contains them. `always_panics` panics; `phantom_instance` selects an
//! index no location has; `selects_disconnected` selects the first
//! instance whether or not it is connected. Each must become that rule's
//! failure (its code ≥ 1000), never a crash or a wrong selection.

use switchboard_plugin_sdk::{export_plugin, Answer, Context, OnUnavailable, Rule, RuleSpec};

struct AlwaysPanics;
impl Rule for AlwaysPanics {
    fn evaluate(&self, cx: &Context<'_>) -> Answer {
        #[allow(clippy::panic)]
        {
            panic!("deliberate panic for {}", cx.location())
        }
    }
}

struct PhantomInstance;
impl Rule for PhantomInstance {
    fn evaluate(&self, _: &Context<'_>) -> Answer {
        Answer::Selected(999_999)
    }
}

struct SelectsDisconnected;
impl Rule for SelectsDisconnected {
    fn evaluate(&self, cx: &Context<'_>) -> Answer {
        match cx.instances().find(|i| !i.connected) {
            Some(i) => Answer::Selected(i.index),
            None => Answer::NoMatch,
        }
    }
}

export_plugin! {
    name: "misbehave",
    version: "0.0.0",
    rules: [
        RuleSpec { id: "always_panics", summary: "panics", code: 1900, on_unavailable: OnUnavailable::None, options: &[], build: |_| Ok(Box::new(AlwaysPanics)) },
        RuleSpec { id: "phantom_instance", summary: "selects #999999", code: 1901, on_unavailable: OnUnavailable::None, options: &[], build: |_| Ok(Box::new(PhantomInstance)) },
        RuleSpec { id: "selects_disconnected", summary: "selects a disconnected instance", code: 1902, on_unavailable: OnUnavailable::Error, options: &[], build: |_| Ok(Box::new(SelectsDisconnected)) },
    ],
    channels: [],
}
