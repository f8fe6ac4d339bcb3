//! `user_assignment` (priority 4, code 104): the contact's assigned CRM user
//! has instances on this channel.

use std::sync::Arc;

use switchboard_core::{register_rule, ErrorKind, Instance, OnUnavailable, Outcome, RuleContext, SelectionRule};

/// The rule id.
pub const ID: &str = "user_assignment";
/// Its error code.
pub const CODE: u32 = 104;

/// Selects the connected instance with the lowest index among those whose
/// `users` list the contact's `assigned_user`; no such instance → `no_match`;
/// all disconnected → unusable.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserAssignment;

impl SelectionRule for UserAssignment {
    fn evaluate<'a>(&self, cx: &RuleContext<'a>) -> Outcome<'a> {
        let Some(user) = cx.contact().and_then(|c| c.assigned_user.as_deref()).filter(|u| !u.is_empty()) else {
            return Outcome::no_match();
        };
        let instances = cx.instances();
        let mut candidates = instances.assigned_to(user);
        let Some(first) = candidates.next() else {
            return Outcome::no_match();
        };
        // The lowest connected index, without collecting the candidates;
        // only the error message lists them all.
        let connected = if first.is_connected() { Some(first) } else { candidates.find(|i| i.is_connected()) };
        answer(cx, user, connected)
    }
}

/// The answer once the user has instances on the channel: the first
/// connected, else unusable (kept out of `evaluate`, whose common path, a
/// user with no instance here, then sets up no formatting).
#[inline(never)]
fn answer<'a>(cx: &RuleContext<'a>, user: &str, connected: Option<&'a Arc<Instance>>) -> Outcome<'a> {
    match connected {
        Some(instance) => Outcome::selected(instance).with_detail(format!("assigned user `{user}`")),
        None => match crate::quarantined_among(cx.instances().assigned_to(user)) {
            Some(listed) => Outcome::unusable(
                ErrorKind::InstanceQuarantined,
                format!(
                    "the contact's assigned user `{user}` has no usable {} instance: {listed}; wait for a quarantine \
                     to end, reconnect one or reassign the contact",
                    cx.channel().id(),
                ),
            ),
            None => Outcome::unusable(
                ErrorKind::InstanceDisconnected,
                format!(
                    "the contact's assigned user `{user}` has only disconnected {} instances: {}; reconnect one or reassign the contact",
                    cx.channel().id(),
                    crate::labels(cx.instances().assigned_to(user))
                ),
            ),
        },
    }
}

register_rule! {
    id: ID,
    summary: "the contact's assigned user has an instance on this channel",
    code: CODE,
    on_unavailable: Some(OnUnavailable::Error),
    options: &[],
    build: |_| Ok(Box::new(UserAssignment)),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{contact, run, Answer::*};

    const WORLD: &str = r#"[
        {"id":"wa-a","channel":"whatsapp","index":3,"phone":"+1 555 0003","connected":true,"users":["u_team"]},
        {"id":"wa-b","channel":"whatsapp","index":2,"phone":"+1 555 0002","connected":true,"users":["u_team","u_other"]},
        {"id":"wa-c","channel":"whatsapp","index":1,"phone":"+1 555 0001","connected":false,"users":["u_team"]},
        {"id":"wa-d","channel":"whatsapp","index":4,"phone":"+1 555 0004","connected":false,"users":["u_gone"]},
        {"id":"im-1","channel":"imessage","index":1,"phone":"+1 555 0101","connected":true,"users":["u_im"]}
    ]"#;

    #[test]
    fn lowest_connected_index_wins() {
        assert_eq!(run(&UserAssignment, WORLD, "whatsapp", "hi", contact("c", &[], Some("u_team"))), Selected("wa-b"));
    }

    #[test]
    fn no_match_without_user_or_candidates() {
        assert_eq!(run(&UserAssignment, WORLD, "whatsapp", "hi", contact("c", &[], None)), NoMatch);
        assert_eq!(run(&UserAssignment, WORLD, "whatsapp", "hi", contact("c", &[], Some("u_im"))), NoMatch);
        assert_eq!(run(&UserAssignment, WORLD, "whatsapp", "hi", None), NoMatch);
    }

    #[test]
    fn unusable_when_all_are_disconnected() {
        assert_eq!(
            run(&UserAssignment, WORLD, "whatsapp", "hi", contact("c", &[], Some("u_gone"))),
            Unusable("instance_disconnected")
        );
    }
}
