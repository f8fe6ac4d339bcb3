//! # switchboard-rules
//!
//! The six built-in selection rules of docs/rules.md, `conversation` of
//! docs/capacity.md and `geomatch` and `send_window` of
//! docs/recipient-rules.md,
//! each registered through `inventory` with
//! [`switchboard_core::register_rule!`], exactly as a plugin would register
//! its own:
//!
//! | # | rule id | code | `on_unavailable` default |
//! |---|---|---|---|
//! | 1 | [`manual_override`] | 101 | error |
//! | 2 | [`temporary_switch`] | 102 | error |
//! | 3 | [`contact_tag`] | 103 | error |
//! | 4 | [`user_assignment`] | 104 | error |
//! | 5 | [`default_instance`] | 105 | skip |
//! | 6 | [`any_available`] | 106 | — |
//! | — | [`conversation`] (listed where wanted, typically after `temporary_switch`) | 107 | skip |
//! | — | [`geomatch`] (docs/recipient-rules.md, listed where wanted) | — | — |
//! | — | [`send_window`] (docs/recipient-rules.md, listed where wanted) | 109 | — |
//!
//! ```
//! switchboard_rules::link();
//! let registry = switchboard_core::Registry::from_inventory().unwrap();
//! assert_eq!(registry.rule("contact_tag").map(|r| r.code), Some(103));
//! ```

pub mod any_available;
pub mod contact_tag;
pub mod conversation;
pub mod default_instance;
pub mod geomatch;
pub mod manual_override;
mod pattern_rule;
pub mod send_window;
pub mod temporary_switch;
pub mod user_assignment;

#[cfg(test)]
mod testing;

/// Makes sure this crate is linked, so that its rules reach inventory.
/// Call it (or name any item of this crate) from the binary.
pub fn link() {}

/// What an operator does about an instance a rule cannot use: reconnect
/// it, or wait out its quarantine (docs/live-state.md).
pub(crate) fn remedy(instance: &switchboard_core::Instance) -> &'static str {
    match instance.quarantined_until() {
        Some(_) => "wait for its quarantine to end",
        None => "reconnect it",
    }
}

/// The instances a rule found but cannot use, each with why (`wa-1 (#1)
/// quarantined until …, wa-2 (#2) disconnected`), when one of them is
/// quarantined: the rule's error is then `instance_quarantined`. `None`
/// when none is: the rule's message for disconnected instances applies.
pub(crate) fn quarantined_among<'a>(
    instances: impl Iterator<Item = &'a std::sync::Arc<switchboard_core::Instance>>,
) -> Option<String> {
    let all: Vec<&std::sync::Arc<switchboard_core::Instance>> = instances.collect();
    if all.iter().all(|i| i.quarantined_until().is_none()) {
        return None;
    }
    Some(all.iter().map(|i| format!("{} {}", i.label(), i.unusable_state())).collect::<Vec<_>>().join(", "))
}

/// Lists instances for a message: `a (#1, …), b (#2, …)`, at most five.
pub(crate) fn labels<'a>(instances: impl Iterator<Item = &'a std::sync::Arc<switchboard_core::Instance>>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut more = 0usize;
    for instance in instances {
        if out.len() < 5 {
            out.push(instance.label());
        } else {
            more += 1;
        }
    }
    if more > 0 {
        out.push(format!("and {more} more"));
    }
    out.join(", ")
}
