//! Property tests of the selection invariants.

use proptest::prelude::*;
use switchboard::{InstanceSpec, Request, World};

use crate::util::*;

fn instance() -> impl Strategy<Value = (String, u8, bool, bool, bool)> {
    (
        prop::sample::select(vec!["whatsapp", "imessage", "sms"]).prop_map(str::to_owned),
        1u8..6,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
}

/// Bodies mixing plain text (no braces, so stripping cannot assemble a new
/// pattern) with patterns of every channel in every spelling.
fn body() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[a-z .,!\t]{0,8}",
        (
            prop::sample::select(vec!["WA", "wa", "IM", "Im", "TEMP-IM", "temp-im", "SMS", "TEMP-WA"]),
            0u32..8,
            "[ \t]{0,2}",
            "[ \t]{0,2}",
            any::<bool>()
        )
            .prop_map(|(code, n, a, b, double)| if double {
                format!("{{{{{a}{code}#{n}{b}}}}}")
            } else {
                format!("{{{a}{code}#{n}{b}}}")
            }),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn contact() -> impl Strategy<Value = Option<switchboard::Contact>> {
    prop::option::of(
        (
            "[a-z0-9]{1,6}",
            prop::collection::vec(
                prop::sample::select(vec![
                    "vip",
                    "wa: +1 555 0001",
                    "wa: 1 555 0003",
                    "im: +1 555 0002",
                    "sms: 15550004",
                    "wa: none",
                ]),
                0..4,
            ),
            prop::option::of(prop::sample::select(vec!["u1", "u2"])),
        )
            .prop_map(|(id, tags, user)| switchboard::Contact {
                id: Some(id),
                tags: tags.into_iter().map(str::to_owned).collect(),
                assigned_user: user.map(str::to_owned),
                phone: None,
                timezone: None,
            }),
    )
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::collection::vec(instance(), 0..10),
        prop::sample::select(vec!["whatsapp", "imessage", "sms"]),
        body(),
        contact(),
    )
        .prop_map(|(specs, channel, body, contact)| {
            let mut seen = std::collections::HashSet::new();
            let mut defaults = std::collections::HashSet::new();
            let instances = specs
                .into_iter()
                .enumerate()
                .filter(|(_, (ch, idx, ..))| seen.insert((ch.clone(), *idx)))
                .map(|(i, (channel, index, connected, default, user))| InstanceSpec {
                    id: format!("i{i}"),
                    default: default && defaults.insert(channel.clone()),
                    phone: format!("+1 555 000{}", i % 5),
                    users: if user { vec![format!("u{}", i % 2 + 1)] } else { vec![] },
                    channel,
                    index: Some(u64::from(index)),
                    connected,
                    weight: None,
                    pool: None,
                    limits: None,
                    reply_window: None,
                    warmup: None,
                })
                .collect();
            Request {
                location: "l".into(),
                channel: channel.into(),
                body,
                contact,
                instances: Some(instances),
                now: None,
                message_id: None,
            }
        })
}

/// What live state says of each instance of a request's set: nothing, an
/// `instance_status` override down, a quarantine, or both.
fn live_marks() -> impl Strategy<Value = Vec<(bool, bool)>> {
    prop::collection::vec((any::<bool>(), any::<bool>()), 10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Live state (docs/live-state.md): an instance overridden down or
    /// quarantined is never selected, whatever the rules, the body and the
    /// contact; every error is one the chain can give.
    #[test]
    fn an_overridden_down_or_quarantined_instance_is_never_selected(req in request(), marks in live_marks()) {
        use switchboard::capacity::{DeliveryUpdate, HealthPolicy, StatusUpdate};
        let plan = default_plan();
        let store = plan.store().unwrap().clone();
        let specs = req.instances.clone().unwrap_or_default();
        let mut world = World::empty();
        world.insert(switchboard::Location::from_specs("l", &specs, &registry()).unwrap());
        let t0: switchboard::capacity::jiff::Timestamp = "2026-12-07T15:00:00Z".parse().unwrap();
        let policy = HealthPolicy { quarantine_after: 1, ..HealthPolicy::default() };
        let mut unusable = std::collections::HashSet::new();
        for (spec, (down, quarantined)) in specs.iter().zip(&marks) {
            if *down {
                let update = StatusUpdate { location: "l", instance: &spec.id, time: t0, set: Some((false, None, None)) };
                store.apply_status(&update).unwrap();
                unusable.insert(spec.id.clone());
            }
            if *quarantined {
                let update = DeliveryUpdate { location: "l", instance: &spec.id, time: t0, failed: true };
                prop_assert!(store.record_delivery(&update, &policy).unwrap().quarantined);
                unusable.insert(spec.id.clone());
            }
        }
        // One minute in: every quarantine (5 minutes) is in force.
        let request = Request { instances: None, now: Some(t0 + std::time::Duration::from_secs(60)), ..req };
        let d = plan.select(&world, &request);
        if let Ok(instance) = &d.result {
            prop_assert!(!unusable.contains(instance.id()), "{} was selected", instance.id());
            prop_assert!(instance.is_connected());
        }
        prop_assert!(d.is_ok() || d.error().is_some_and(|e| (100..=107).contains(&e.code)), "{:?}", d.error());
    }

    #[test]
    fn a_selected_instance_is_connected_and_on_the_requests_channel(req in request()) {
        let d = default_plan().select(&World::empty(), &req);
        if let Ok(instance) = &d.result {
            prop_assert!(instance.is_connected());
            prop_assert_eq!(instance.channel(), req.channel.as_str());
        }
        prop_assert!(d.is_ok() || d.error().is_some_and(|e| (100..=106).contains(&e.code)));
    }

    #[test]
    fn no_registered_pattern_survives_in_the_delivered_body(req in request()) {
        let registry = registry();
        let d = default_plan().select(&World::empty(), &req);
        let body = d.body.unwrap();
        prop_assert!(registry.scanner().scan(&body).matches().is_empty(), "{:?} -> {:?}", req.body, body);
    }

    #[test]
    fn the_same_input_gives_the_same_decision(req in request()) {
        let plan = default_plan();
        let world = World::empty();
        prop_assert_eq!(plan.select(&world, &req), plan.select(&world, &req));
    }

    #[test]
    fn stripping_any_text_never_panics_and_only_removes(body in "\\PC{0,60}") {
        let registry = registry();
        let scan = registry.scanner().scan(&body);
        let stripped = scan.stripped();
        prop_assert!(stripped.len() <= body.len());
        prop_assert_eq!(scan.matches().is_empty(), stripped == body);
    }
}
