//! Test fixture for the plugin ABI.
//!
//! - `echo` answers what the request body says, so that a test can send
//!   every outcome and every error kind through the ABI and check what the
//!   engine makes of it: `selected N`, `no_match`, `unusable KIND MESSAGE`,
//!   `failed KIND MESSAGE` (`-` as KIND writes no kind).
//! - `nth_0` … `nth_19`: twenty rules, more than the sixteen the SDK's old
//!   fixed table of builders held; `nth_N` fails with code `2000 + N` and
//!   kind `nth_N`, so a test sees that each id reaches its own rule.

use switchboard_plugin_sdk::{export_plugin, Answer, Context, OnUnavailable, Rule, RuleSpec};

/// Answers what the body says.
struct Echo;

impl Rule for Echo {
    fn evaluate(&self, cx: &Context<'_>) -> Answer {
        let mut words = cx.body().splitn(3, ' ');
        let (verb, kind, message) =
            (words.next().unwrap_or(""), words.next().unwrap_or(""), words.next().unwrap_or(""));
        let kind = if kind == "-" { String::new() } else { kind.to_owned() };
        match verb {
            "selected" => Answer::Selected(kind.parse().unwrap_or(0)),
            "unusable" => Answer::Unusable { kind, message: message.to_owned() },
            "failed" => Answer::Failed { kind, message: message.to_owned() },
            _ => Answer::NoMatch,
        }
    }
}

/// Fails with its own number.
struct Nth(u32);

impl Rule for Nth {
    fn evaluate(&self, _: &Context<'_>) -> Answer {
        Answer::Failed { kind: format!("nth_{}", self.0), message: format!("rule nth_{} answered", self.0) }
    }
}

macro_rules! nth {
    ($($n:literal),*) => {
        [$(RuleSpec {
            id: concat!("nth_", $n),
            summary: "fails with its own number",
            code: 2000 + $n,
            on_unavailable: OnUnavailable::None,
            options: &[],
            build: |_| Ok(Box::new(Nth($n))),
        }),*]
    };
}

/// The twenty `nth_N` rules.
const NTH: [RuleSpec; 20] = nth!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19);

export_plugin! {
    name: "abi-fixture",
    version: "0.0.0",
    rules: [
        RuleSpec {
            id: "echo",
            summary: "answers what the body says",
            code: 1950,
            on_unavailable: OnUnavailable::Error,
            options: &[],
            build: |_| Ok(Box::new(Echo)),
        },
        NTH[0], NTH[1], NTH[2], NTH[3], NTH[4], NTH[5], NTH[6], NTH[7], NTH[8], NTH[9],
        NTH[10], NTH[11], NTH[12], NTH[13], NTH[14], NTH[15], NTH[16], NTH[17], NTH[18], NTH[19],
    ],
    channels: [],
}
