//! The `conversation` rule (docs/capacity.md, code 107) through the library and the
//! binary: every counted selection is remembered (a temporary switch's is
//! not), memory expires after `ttl` as of the request's `now`, moves when
//! the remembered instance is unusable, and previews never write it.

use std::path::Path;

use switchboard::{Decision, Plan, World};

use crate::util::*;

const RULES: &str = "rules:\n  - manual_override\n  - temporary_switch\n  - rule: conversation\n    ttl: 1h\n  - rule: any_available\n    strategy: round_robin\n";

fn plan_of(text: &str) -> Plan {
    switchboard::compile_rules(text, Path::new("rules.yaml"), &registry()).unwrap_or_else(|e| panic!("{e}"))
}

fn shop(instances: &str) -> World {
    world(&format!("locations:\n  - id: shop\n    instances:\n{instances}"))
}

const THREE: &str = "      - {id: im-1, channel: imessage, index: 1, phone: '1', connected: true}\n      - {id: im-2, channel: imessage, index: 2, phone: '2', connected: true}\n      - {id: im-3, channel: imessage, index: 3, phone: '3', connected: true}\n";

fn message(plan: &Plan, world: &World, now: &str, contact: &str, body: &str) -> Decision {
    let contact = if contact.is_empty() { String::new() } else { format!(r#","contact":{{"id":"{contact}"}}"#) };
    decide(
        plan,
        world,
        &format!(r#"{{"location":"shop","channel":"imessage","body":"{body}","now":"{now}"{contact}}}"#),
    )
}

const T0: &str = "2026-11-25T14:00:00Z";

#[test]
fn a_contact_keeps_the_instance_that_last_carried_a_message_to_it() {
    let (plan, w) = (plan_of(RULES), shop(THREE));
    // Round robin hands out im-1, im-2, im-3 to three new contacts…
    let first: Vec<String> = ["a", "b", "c"].iter().map(|c| summary(&message(&plan, &w, T0, c, "hi"))).collect();
    assert_eq!(first, ["im-1", "im-2", "im-3"]);
    // …and each keeps its own afterwards, decided by `conversation`.
    for (contact, id) in [("b", "im-2"), ("a", "im-1"), ("c", "im-3"), ("b", "im-2")] {
        let d = message(&plan, &w, T0, contact, "hi");
        assert_eq!((summary(&d), d.rule), (id.to_owned(), Some("conversation")));
        assert!(d.trace.last().unwrap().detail.as_deref().unwrap().contains("in a conversation with"));
    }
    // A request without a contact has nothing to recall.
    let d = message(&plan, &w, T0, "", "hi");
    assert_eq!(outcomes(&d)[2], "conversation:no_match");
    // Memory is per channel: an SMS to `a` does not recall iMessage.
    let sms = shop("      - {id: sms-1, channel: sms, phone: '9', connected: true}\n");
    let d = decide(&plan, &sms, r#"{"location":"shop","channel":"sms","body":"hi","contact":{"id":"a"}}"#);
    assert_eq!(d.rule, Some("any_available"));
}

#[test]
fn memory_expires_after_the_ttl_from_the_last_message() {
    let (plan, w) = (plan_of(RULES), shop(THREE));
    assert_eq!(summary(&message(&plan, &w, T0, "a", "hi")), "im-1");
    // 59 minutes later the conversation holds and its TTL starts again…
    let d = message(&plan, &w, "2026-11-25T14:59:00Z", "a", "hi");
    assert_eq!(d.rule, Some("conversation"));
    let d = message(&plan, &w, "2026-11-25T15:58:59Z", "a", "hi");
    assert_eq!(d.rule, Some("conversation"));
    // …and one hour after the last message it is gone.
    let d = message(&plan, &w, "2026-11-25T16:59:00Z", "a", "hi");
    assert_eq!(d.rule, Some("any_available"));
    assert!(d.trace[2].detail.as_deref().unwrap().contains("none in the last 1h"), "{:?}", d.trace);
}

#[test]
fn an_override_is_remembered_and_a_temporary_switch_is_not() {
    let (plan, w) = (plan_of(RULES), shop(THREE));
    assert_eq!(summary(&message(&plan, &w, T0, "a", "hi")), "im-1");
    // A temporary switch carries one message through im-3…
    let d = message(&plan, &w, T0, "a", "hi {TEMP-IM#3}");
    assert_eq!((summary(&d), d.rule), ("im-3".to_owned(), Some("temporary_switch")));
    // …and the conversation stays on im-1.
    assert_eq!(summary(&message(&plan, &w, T0, "a", "hi")), "im-1");
    // A manual override moves the conversation.
    let d = message(&plan, &w, T0, "a", "hi {IM#2}");
    assert_eq!((summary(&d), d.rule), ("im-2".to_owned(), Some("manual_override")));
    let d = message(&plan, &w, T0, "a", "hi");
    assert_eq!((summary(&d), d.rule), ("im-2".to_owned(), Some("conversation")));
}

#[test]
fn an_unusable_conversation_instance_is_skipped_and_the_memory_moves() {
    let plan = plan_of(RULES);
    assert_eq!(summary(&message(&plan, &shop(THREE), T0, "a", "hi")), "im-1");
    // im-1 disconnects (a new world, as a reload would bring).
    let w = shop(&THREE.replacen("phone: '1', connected: true", "phone: '1', connected: false", 1));
    let d = message(&plan, &w, T0, "a", "hi");
    assert_eq!(
        outcomes(&d),
        [
            "manual_override:no_match",
            "temporary_switch:no_match",
            "conversation:fell_through",
            "any_available:selected"
        ]
    );
    let moved = summary(&d);
    assert_ne!(moved, "im-1");
    assert!(d.trace[2].detail.as_deref().unwrap().contains("disconnected"));
    // The memory moved to the instance chosen, and stays there once im-1 is back.
    let d = message(&plan, &shop(THREE), T0, "a", "hi");
    assert_eq!((summary(&d), d.rule), (moved, Some("conversation")));
    // An instance removed from the world is no memory at all.
    let plan = plan_of(RULES);
    assert_eq!(summary(&message(&plan, &shop(THREE), T0, "a", "hi")), "im-1");
    let d = message(&plan, &shop(&THREE.replace("id: im-1", "id: im-9")), T0, "a", "hi");
    assert_eq!(outcomes(&d)[2], "conversation:no_match");
    assert!(d.trace[2].detail.as_deref().unwrap().contains("no longer"), "{:?}", d.trace);
}

#[test]
fn with_on_unavailable_error_an_unusable_conversation_is_107() {
    let rules = RULES.replace("    ttl: 1h\n", "    ttl: 1h\n    on_unavailable: error\n");
    let plan = plan_of(&rules);
    let limited = THREE.replacen("connected: true}", "connected: true, limits: {per_day: 1}}", 1);
    let w = shop(&limited);
    assert_eq!(summary(&message(&plan, &w, T0, "a", "hi")), "im-1");
    // im-1 has used its one decision today: the conversation is at capacity.
    let d = message(&plan, &w, T0, "a", "hi");
    assert_eq!((summary(&d), d.rule), ("107/instance_at_capacity".to_owned(), Some("conversation")));
    assert!(d.error().unwrap().message.contains("im-1 at capacity: 1/1 today"), "{}", d.error().unwrap().message);
    let w = shop(&THREE.replacen("phone: '1', connected: true", "phone: '1', connected: false", 1));
    assert_eq!(summary(&message(&plan, &w, T0, "a", "hi")), "107/instance_disconnected");
    // By default (skip) the conversation moves on instead.
    let plan = plan_of(RULES);
    let w = shop(&limited);
    assert_eq!(summary(&message(&plan, &w, T0, "a", "hi")), "im-1");
    let d = message(&plan, &w, T0, "a", "hi");
    assert_eq!(outcomes(&d)[2..], ["conversation:fell_through", "any_available:selected"]);
    assert!(d.trace[2].detail.as_deref().unwrap().contains("at capacity"));
}

#[test]
fn previews_never_remember() {
    let (plan, w) = (plan_of(RULES), shop(THREE));
    let preview = |contact: &str| {
        plan.preview(
            &w,
            &request(&format!(
                r#"{{"location":"shop","channel":"imessage","body":"hi {{IM#3}}","contact":{{"id":"{contact}"}}}}"#
            )),
        )
    };
    assert_eq!(summary(&preview("a")), "im-3");
    // The override was only previewed: `a` has no conversation yet.
    let d = message(&plan, &w, T0, "a", "hi");
    assert_eq!(d.rule, Some("any_available"));
}

#[test]
fn forget_erases_one_memory() {
    let dir = temp_with(&[
        ("rules.yaml", RULES),
        ("world.yaml", &format!("locations:\n  - id: shop\n    instances:\n{THREE}")),
    ]);
    let live = switchboard::Live::open(registry(), dir.path().join("rules.yaml"), Some(dir.path().join("world.yaml")))
        .unwrap_or_else(|e| panic!("{e}"));
    let select = |contact: &str| {
        live.select(&request(&format!(
            r#"{{"location":"shop","channel":"imessage","body":"hi","now":"{T0}","contact":{{"id":"{contact}"}}}}"#
        )))
    };
    assert_eq!(summary(&select("a")), "im-1");
    assert_eq!(summary(&select("b")), "im-2");
    assert_eq!(select("a").rule, Some("conversation"));
    assert_eq!(live.forget("shop", "imessage", "a").ok(), Some(true));
    assert_eq!(live.forget("shop", "imessage", "a").ok(), Some(false));
    // `a` is a new contact again; `b` keeps its conversation.
    assert_eq!(select("a").rule, Some("any_available"));
    assert_eq!(select("b").rule, Some("conversation"));
}

#[test]
fn fail_open_decides_without_memory_and_fail_closed_answers_108() {
    let w = shop(THREE);
    let closed = plan_of(&format!("{RULES}capacity: {{store: redis, redis_url: 'redis://127.0.0.1:1/0'}}\n"));
    let d = message(&closed, &w, T0, "a", "hi");
    assert_eq!((summary(&d), d.rule), ("108/store_unavailable".to_owned(), Some("conversation")));
    assert!(d.error().unwrap().message.contains("cannot recall"), "{}", d.error().unwrap().message);
    let open = plan_of(&format!(
        "{RULES}capacity: {{store: redis, redis_url: 'redis://127.0.0.1:1/0', on_store_error: fail_open}}\n"
    ));
    let d = message(&open, &w, T0, "a", "hi");
    assert_eq!(summary(&d), "im-1");
    assert_eq!(outcomes(&d)[2], "conversation:no_match");
    assert!(d.trace[2].detail.as_deref().unwrap().contains("fail_open: decided without memory"), "{:?}", d.trace);
    assert!(d.trace[3].detail.as_deref().unwrap().contains("the conversation is not remembered"), "{:?}", d.trace);
    // Without a contact nothing is read or written: no store error.
    assert_eq!(summary(&message(&closed, &w, T0, "", "hi")), "im-1");
}

#[test]
fn bad_ttls_are_located_errors() {
    let dir = temp_with(&[("rules.yaml", "rules:\n  - rule: conversation\n    ttl: 2w\n  - any_available\n")]);
    let out = run(&["check", "--rules", s(&dir.path().join("rules.yaml"))], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("rules.yaml:2:5: rules[0]: rule `conversation`") && err.contains("`ttl` must be a whole number"),
        "{err}"
    );
}

#[test]
fn a_batch_with_conversations_is_decided_in_input_order() {
    let dir = temp_with(&[
        ("rules.yaml", RULES),
        ("world.yaml", &format!("locations:\n  - id: shop\n    instances:\n{THREE}")),
    ]);
    let line = |c: usize| {
        format!(r#"{{"location":"shop","channel":"imessage","body":"hi","now":"{T0}","contact":{{"id":"c{c}"}}}}"#)
    };
    // 300 contacts, then the same 300 again: the second round recalls the first.
    let input: String = (0..600).map(|n| line(n % 300) + "\n").collect();
    let out = run(
        &["select", "--rules", s(&dir.path().join("rules.yaml")), "--world", s(&dir.path().join("world.yaml"))],
        &input,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 600);
    for n in 0..300 {
        let id = |l: &str| l.split(r#""id":""#).nth(1).map(|r| r.split('"').next().unwrap_or("").to_owned());
        assert_eq!(id(&lines[n + 300]), id(&lines[n]), "line {}", n + 300);
        assert!(lines[n + 300].contains(r#""rule":"conversation""#));
    }
}
