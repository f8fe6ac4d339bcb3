//! The channel syntax, the six rules and rules.yaml (docs/rules.md), example
//! by example, through the whole engine.

use crate::util::*;

fn shop() -> switchboard::World {
    switchboard::load_world(fixture("shop.yaml"), &registry()).unwrap()
}

fn wa(body: &str) -> String {
    format!(r#"{{"location":"loc_1","channel":"whatsapp","body":{}}}"#, serde_json::to_string(body).unwrap())
}

#[test]
fn stripping_examples_of_section_2() {
    let (plan, world) = (default_plan(), shop());
    for (body, delivered) in [
        ("go via the 2nd instance { WA#2 }", "go via the 2nd instance"),
        ("Hello {IM#2} world", "Hello world"),
        ("{WA#2} Hi", "Hi"),
        ("a{WA#1}b", "ab"),
        ("sent {IM#2}.", "sent."),
    ] {
        let d = decide(&plan, &world, &wa(body));
        assert_eq!(d.body.as_deref(), Some(delivered), "{body}");
    }
}

#[test]
fn override_single_double_braces_case_and_tabs() {
    let (plan, world) = (default_plan(), shop());
    for body in ["{ WA#2 }", "{{ WA#2 }}", "{wa#2}", "{\tWa#02\t}", "{{WA#2}}", "x {WA#2} y {{ wa#2 }}"] {
        let d = decide(&plan, &world, &wa(body));
        assert_eq!(summary(&d), "wa-support", "{body}");
        assert_eq!(d.rule, Some("manual_override"));
        assert!(!d.body.as_deref().unwrap().contains('{'), "{body}");
    }
}

#[test]
fn override_errors_are_code_101() {
    let (plan, world) = (default_plan(), shop());
    assert_eq!(summary(&decide(&plan, &world, &wa("{WA#7}"))), "101/instance_not_found");
    assert_eq!(summary(&decide(&plan, &world, &wa("{WA#4}"))), "101/instance_disconnected");
    assert_eq!(summary(&decide(&plan, &world, &wa("{WA#1}{WA#2}"))), "101/conflicting_override");
    assert_eq!(summary(&decide(&plan, &world, &wa("{WA#123456789012345678901234567890}"))), "101/instance_not_found");
}

#[test]
fn conflicting_override_fails_even_with_skip() {
    let plan = plan("rules: [{rule: manual_override, on_unavailable: skip}, default_instance]");
    let world = shop();
    assert_eq!(summary(&decide(&plan, &world, &wa("{WA#1}{WA#2}"))), "101/conflicting_override");
    let d = decide(&plan, &world, &wa("{WA#9}"));
    assert_eq!(summary(&d), "wa-support");
    assert_eq!(outcomes(&d), ["manual_override:fell_through", "default_instance:selected"]);
}

#[test]
fn temporary_switch_is_one_message_only() {
    let (plan, world) = (default_plan(), shop());
    let contact = r#""contact":{"id":"c9","assigned_user":"u_orders"}"#;
    let with = format!(r#"{{"location":"loc_1","channel":"imessage","body":"Quick update {{TEMP-IM#2}}",{contact}}}"#);
    let without = format!(r#"{{"location":"loc_1","channel":"imessage","body":"Next one",{contact}}}"#);
    let d = decide(&plan, &world, &with);
    assert_eq!((summary(&d), d.body.clone().unwrap()), ("im-2".to_owned(), "Quick update".to_owned()));
    assert_eq!(d.rule, Some("temporary_switch"));
    let next = decide(&plan, &world, &without);
    assert_eq!((summary(&next), next.rule), ("im-1".to_owned(), Some("user_assignment")));
}

#[test]
fn temporary_switch_errors_are_code_102() {
    let (plan, world) = (default_plan(), shop());
    let im = |body: &str| format!(r#"{{"location":"loc_1","channel":"imessage","body":"{body}"}}"#);
    assert_eq!(summary(&decide(&plan, &world, &im("{TEMP-IM#3}"))), "102/instance_disconnected");
    assert_eq!(summary(&decide(&plan, &world, &im("{TEMP-IM#8}"))), "102/instance_not_found");
    assert_eq!(summary(&decide(&plan, &world, &im("{TEMP-IM#1} {TEMP-IM#2}"))), "102/conflicting_override");
}

#[test]
fn override_beats_temporary_switch() {
    let (plan, world) = (default_plan(), shop());
    let d = decide(&plan, &world, r#"{"location":"loc_1","channel":"imessage","body":"{TEMP-IM#1} hi {IM#2}"}"#);
    assert_eq!((summary(&d), d.rule), ("im-2".to_owned(), Some("manual_override")));
    assert_eq!(d.body.as_deref(), Some("hi"));
}

#[test]
fn other_channels_patterns_are_stripped_not_interpreted() {
    let (plan, world) = (default_plan(), shop());
    let d = decide(
        &plan,
        &world,
        r#"{"location":"loc_1","channel":"sms","body":"Reminder { WA#2 } {TEMP-IM#3} tomorrow"}"#,
    );
    assert_eq!(d.body.as_deref(), Some("Reminder tomorrow"));
    assert_eq!(summary(&d), "sms-2");
    assert_eq!(d.rule, Some("default_instance"));
}

#[test]
fn contact_tag_spec_example_and_code_103() {
    let (plan, world) = (default_plan(), shop());
    let tagged = |tags: &str| {
        format!(r#"{{"location":"loc_1","channel":"whatsapp","body":"Hi","contact":{{"id":"c1","tags":{tags}}}}}"#)
    };
    assert_eq!(summary(&decide(&plan, &world, &tagged(r#"["vip","wa: +1-555-BILLING"]"#))), "wa-billing");
    assert_eq!(summary(&decide(&plan, &world, &tagged(r#"["WA: +1555673377"]"#))), "wa-orders");
    assert_eq!(summary(&decide(&plan, &world, &tagged(r#"["wa: +1 555 0004"]"#))), "103/instance_disconnected");
    let d = decide(&plan, &world, &tagged(r#"["wa: +1 999 0000", "wa: ???"]"#));
    assert_eq!(summary(&d), "wa-support");
    let note = d.trace[2].detail.clone().unwrap();
    assert!(note.contains("names no whatsapp instance") && note.contains("has no digit"), "{note}");
}

#[test]
fn user_assignment_and_code_104() {
    let (plan, world) = (default_plan(), shop());
    let user = |u: &str| {
        format!(
            r#"{{"location":"loc_1","channel":"whatsapp","body":"Hi","contact":{{"id":"c1","assigned_user":"{u}"}}}}"#
        )
    };
    assert_eq!(summary(&decide(&plan, &world, &user("u_orders"))), "wa-orders");
    assert_eq!(summary(&decide(&plan, &world, &user("u_down"))), "104/instance_disconnected");
    assert_eq!(summary(&decide(&plan, &world, &user("u_nobody"))), "wa-support");
}

#[test]
fn default_instance_skips_by_default_and_errors_with_105_when_asked() {
    let world = shop();
    let req = r#"{"location":"loc_down","channel":"whatsapp","body":"Hi"}"#;
    let d = decide(&default_plan(), &world, req);
    assert_eq!(summary(&d), "106/no_instance_available", "wa-y has no phone");
    assert_eq!(d.rule, Some("any_available"));
    assert!(outcomes(&d).contains(&"default_instance:fell_through".to_owned()));
    let strict = plan("rules: [{rule: default_instance, on_unavailable: error}, any_available]");
    assert_eq!(summary(&decide(&strict, &world, req)), "105/instance_disconnected");
}

#[test]
fn exhausted_chain_is_106_with_null_rule() {
    let plan = plan("rules: [manual_override, {rule: default_instance, on_unavailable: skip}]");
    let d = decide(&plan, &shop(), r#"{"location":"loc_down","channel":"whatsapp","body":"Hi"}"#);
    assert_eq!(summary(&d), "106/no_instance_available");
    assert_eq!(d.rule, None);
    assert_eq!(outcomes(&d), ["manual_override:no_match", "default_instance:fell_through"]);
    let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(json["rule"], serde_json::Value::Null);
    assert_eq!(json["ok"], false);
}

#[test]
fn decision_json_matches_section_7() {
    let d = decide(&default_plan(), &shop(), &std::fs::read_to_string(fixture("request-override.json")).unwrap());
    let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"ok":true,"rule":"manual_override","body":"Hi",
            "instance":{"id":"wa-support","channel":"whatsapp","index":2,"phone":"+1 555 SUPPORT"},
            "trace":[{"rule":"manual_override","outcome":"selected","detail":"`{ WA#2 }` names #2"}]})
    );
}

#[test]
fn per_channel_order_disabled_rules_and_skip() {
    let plan = switchboard::load_rules(fixture("rules-skip.yaml"), &registry()).unwrap();
    let world = shop();
    assert_eq!(
        plan.order("whatsapp"),
        ["manual_override", "contact_tag", "user_assignment", "default_instance", "any_available"]
    );
    assert_eq!(plan.order("sms"), ["user_assignment", "any_available"]);
    // temporary_switch is disabled: the pattern is still stripped, not interpreted.
    let d = decide(&plan, &world, r#"{"location":"loc_1","channel":"imessage","body":"Hi {TEMP-IM#2}"}"#);
    assert_eq!((summary(&d), d.body.as_deref()), ("im-1".to_owned(), Some("Hi")));
    // contact_tag skips a disconnected tagged instance.
    let d = decide(&plan, &world, &std::fs::read_to_string(fixture("request-disconnected-tag.json")).unwrap());
    assert_eq!(summary(&d), "wa-support");
    assert_eq!(d.trace[1].outcome.as_str(), "fell_through");
    // sms uses its own chain: no default_instance, lowest index wins.
    let d = decide(&plan, &world, r#"{"location":"loc_1","channel":"sms","body":"Hi"}"#);
    assert_eq!(
        (summary(&d), outcomes(&d)),
        ("sms-1".to_owned(), vec!["user_assignment:no_match".to_owned(), "any_available:selected".to_owned()])
    );
}

#[test]
fn inline_instances_replace_the_world() {
    let d = decide(
        &default_plan(),
        &switchboard::World::empty(),
        r#"{"location":"anywhere","channel":"whatsapp","body":"{WA#2}","instances":[
            {"id":"x1","channel":"whatsapp","phone":"1","connected":true},
            {"id":"x2","channel":"whatsapp","phone":"2","connected":true}]}"#,
    );
    assert_eq!(summary(&d), "x2");
    let bad = decide(
        &default_plan(),
        &switchboard::World::empty(),
        r#"{"location":"a","channel":"whatsapp","body":"","instances":[{"id":"x","channel":"fax"}]}"#,
    );
    assert_eq!(summary(&bad), "100/invalid_request");
}

#[test]
fn request_errors_are_code_100() {
    let (plan, world) = (default_plan(), shop());
    assert_eq!(
        summary(&decide(&plan, &world, r#"{"location":"nope","channel":"whatsapp","body":""}"#)),
        "100/unknown_location"
    );
    assert_eq!(
        summary(&decide(&plan, &world, r#"{"location":"loc_1","channel":"fax","body":""}"#)),
        "100/unknown_channel"
    );
    let bad = switchboard::parse_request(r#"{"location":"loc_1"}"#).unwrap_err();
    assert_eq!(summary(&bad), "100/invalid_request");
}

#[test]
fn unknown_channel_and_unknown_location_decisions_both_carry_the_cleaned_body() {
    let (plan, world) = (default_plan(), shop());
    for json in [
        r#"{"location":"loc_1","channel":"fax","body":"Hi { WA#2 } there {TEMP-IM#1}"}"#,
        r#"{"location":"nope","channel":"whatsapp","body":"Hi { WA#2 } there {TEMP-IM#1}"}"#,
    ] {
        let d = decide(&plan, &world, json);
        assert!(summary(&d).starts_with("100/unknown_"), "{}", summary(&d));
        assert_eq!(d.body.as_deref(), Some("Hi there"), "{json}");
        assert!(d.to_json().contains(r#""body":"Hi there""#), "{}", d.to_json());
    }
}

#[test]
fn any_available_strategies_from_rules_yaml() {
    let world = world(
        "locations: [{id: l, instances: [
            {id: a, channel: whatsapp, phone: '1', connected: true},
            {id: b, channel: whatsapp, phone: '2', connected: true},
            {id: c, channel: whatsapp, phone: '3', connected: true}]}]",
    );
    let req = r#"{"location":"l","channel":"whatsapp","body":"x","contact":{"id":"c42"}}"#;
    let rr = plan("rules: [{rule: any_available, strategy: round_robin}]");
    let picks: Vec<String> = (0..4).map(|_| summary(&decide(&rr, &world, req))).collect();
    assert_eq!(picks, ["a", "b", "c", "a"]);
    let sticky = plan("rules: [{rule: any_available, strategy: sticky}]");
    let first = summary(&decide(&sticky, &world, req));
    assert!((0..10).all(|_| summary(&decide(&sticky, &world, req)) == first));
    let random = plan("rules: [{rule: any_available, strategy: random}]");
    assert!((0..20).all(|_| ["a", "b", "c"].contains(&summary(&decide(&random, &world, req)).as_str())));
}

#[test]
fn every_registered_rule_builds_with_default_options_and_has_a_spec_code() {
    let registry = registry();
    let ids: Vec<&str> = registry.rule_ids().collect();
    assert_eq!(
        ids,
        [
            "any_available",
            "contact_tag",
            "conversation",
            "default_instance",
            "geomatch",
            "manual_override",
            "send_window",
            "temporary_switch",
            "user_assignment"
        ]
    );
    for rule in registry.rules() {
        // `geomatch` never fails: it has no code (docs/recipient-rules.md).
        assert!((101..=109).contains(&rule.code) || (rule.id.as_str(), rule.code) == ("geomatch", 0), "{}", rule.id);
        let defaults = switchboard::files::options_with_defaults(Vec::new(), &rule.options);
        assert!((rule.build)(&defaults).is_ok(), "{}", rule.id);
        assert!(!rule.summary.is_empty());
    }
}
