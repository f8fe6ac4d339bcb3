//! Capacity (SPEC §10) through the library and the binary: limits per
//! instance and pool in calendar windows, decided with `now` (no sleeping),
//! explain and dry runs that never count, batches in input order, and store
//! errors.

use std::collections::HashMap;
use std::path::Path;

use proptest::prelude::*;
use switchboard::{Decision, Plan, World};

use crate::util::*;

const RULES: &str =
    "rules: [manual_override, temporary_switch, contact_tag, user_assignment, default_instance, any_available]\n";

/// A plan with the store its `capacity:` section describes (a memory store
/// without one), as the binary and the service build it.
fn counting_plan(text: &str) -> Plan {
    switchboard::compile_rules(text, Path::new("rules.yaml"), &registry()).unwrap_or_else(|e| panic!("{e}"))
}

fn shop(instances: &str, pools: &str) -> World {
    world(&format!(
        "locations:\n  - id: shop\n    timezone: America/New_York\n    pools: [{pools}]\n    instances:\n{instances}"
    ))
}

fn at(plan: &Plan, world: &World, now: &str, contact: Option<&str>) -> Decision {
    let contact = contact.map_or(String::new(), |c| format!(r#","contact":{{"id":"{c}"}}"#));
    decide(plan, world, &format!(r#"{{"location":"shop","channel":"whatsapp","body":"hi","now":"{now}"{contact}}}"#))
}

const TWO: &str = "      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {per_day: 2}}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true, limits: {per_day: 1}}\n";

#[test]
fn per_day_exhaustion_moves_any_available_on_then_answers_106_capacity_exhausted() {
    let (plan, w) = (counting_plan(RULES), shop(TWO, ""));
    let t = "2026-11-25T14:00:00Z";
    let got: Vec<String> = (0..4).map(|_| summary(&at(&plan, &w, t, None))).collect();
    assert_eq!(got, ["wa-1", "wa-1", "wa-2", "106/capacity_exhausted"]);
    let d = at(&plan, &w, t, None);
    let e = d.error().unwrap();
    assert_eq!(d.rule, Some("any_available"));
    assert!(
        e.message.contains("wa-1 at capacity: 2/2 today") && e.message.contains("wa-2 at capacity: 1/1 today"),
        "{}",
        e.message
    );
    // The next calendar day in New York (05:00 UTC) has room again.
    assert_eq!(summary(&at(&plan, &w, "2026-11-26T04:59:59Z", None)), "106/capacity_exhausted");
    assert_eq!(summary(&at(&plan, &w, "2026-11-26T05:00:00Z", None)), "wa-1");
    // The trace says which instance was passed over.
    let (plan, w) = (counting_plan(RULES), shop(TWO, ""));
    at(&plan, &w, t, None);
    at(&plan, &w, t, None);
    let d = at(&plan, &w, t, None);
    let detail = d.trace.last().unwrap().detail.clone().unwrap();
    assert!(detail.contains("wa-1 at capacity: 2/2 today"), "{detail}");
}

#[test]
fn per_minute_limits_free_up_in_the_next_minute() {
    let plan = counting_plan(RULES);
    let w = shop("      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {per_minute: 1}}\n", "");
    assert_eq!(summary(&at(&plan, &w, "2026-11-25T14:00:10Z", None)), "wa-1");
    assert_eq!(summary(&at(&plan, &w, "2026-11-25T14:00:59Z", None)), "106/capacity_exhausted");
    assert_eq!(summary(&at(&plan, &w, "2026-11-25T14:01:00Z", None)), "wa-1");
}

#[test]
fn a_tagged_instance_at_capacity_is_103_instance_at_capacity_or_skipped() {
    let instances = "      - {id: wa-1, channel: whatsapp, phone: '+1 555 0101', connected: true, limits: {per_day: 1}}\n      - {id: wa-2, channel: whatsapp, phone: '+1 555 0102', connected: true}\n";
    let w = shop(instances, "");
    let tagged = r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z","contact":{"id":"c","tags":["wa: +1 555 0101"]}}"#;
    let plan = counting_plan(RULES);
    assert_eq!(summary(&decide(&plan, &w, tagged)), "wa-1");
    let d = decide(&plan, &w, tagged);
    assert_eq!((summary(&d), d.rule), ("103/instance_at_capacity".to_owned(), Some("contact_tag")));
    assert_eq!(d.error().unwrap().message, "wa-1 at capacity: 1/1 today");
    let skip = counting_plan("rules: [{rule: contact_tag, on_unavailable: skip}, any_available]\n");
    assert_eq!(summary(&decide(&skip, &w, tagged)), "wa-1");
    let d = decide(&skip, &w, tagged);
    assert_eq!(summary(&d), "wa-2");
    assert_eq!(outcomes(&d), ["contact_tag:fell_through", "any_available:selected"]);
}

#[test]
fn pool_limits_are_shared_by_the_pool_s_instances() {
    let instances = "      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, pool: brand-a}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true, pool: brand-a}\n      - {id: wa-3, channel: whatsapp, phone: '3', connected: true}\n";
    let w = shop(instances, "{id: brand-a, limits: {per_hour: 2}}");
    let plan = counting_plan("rules: [{rule: any_available, strategy: round_robin}]\n");
    let t = "2026-11-25T14:10:00Z";
    let got: Vec<String> = (0..6).map(|_| summary(&at(&plan, &w, t, None))).collect();
    let pool = got.iter().filter(|id| *id == "wa-1" || *id == "wa-2").count();
    assert_eq!(pool, 2, "{got:?}");
    assert_eq!(got.iter().filter(|id| *id == "wa-3").count(), 4, "{got:?}");
    let w1 = shop(instances, "{id: brand-a, limits: {per_hour: 1}}");
    let plan = counting_plan(RULES);
    assert_eq!(summary(&at(&plan, &w1, t, None)), "wa-1");
    let d = at(&plan, &w1, t, None);
    assert_eq!(summary(&d), "wa-3");
    let detail = d.trace.last().and_then(|t| t.detail.clone()).unwrap_or_default();
    assert!(detail.contains("wa-1 at capacity: pool brand-a 1/1 this hour"), "{detail}");
}

#[test]
fn contacts_per_day_refuses_new_contacts_only() {
    let w =
        shop("      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {contacts_per_day: 2}}\n", "");
    let plan = counting_plan(RULES);
    let t = "2026-11-25T14:00:00Z";
    assert_eq!(summary(&at(&plan, &w, t, Some("a"))), "wa-1");
    assert_eq!(summary(&at(&plan, &w, t, Some("a"))), "wa-1");
    assert_eq!(summary(&at(&plan, &w, t, Some("b"))), "wa-1");
    assert_eq!(summary(&at(&plan, &w, t, Some("c"))), "106/capacity_exhausted");
    assert_eq!(summary(&at(&plan, &w, t, None)), "106/capacity_exhausted", "no contact is a new contact");
    assert_eq!(summary(&at(&plan, &w, t, Some("a"))), "wa-1", "a contact already messaged today goes through");
}

#[test]
fn explain_and_dry_runs_never_count() {
    let w = shop("      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {per_day: 1}}\n", "");
    let plan = counting_plan(RULES);
    let req = request(r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z"}"#);
    for _ in 0..3 {
        assert_eq!(summary(&plan.preview(&w, &req)), "wa-1");
    }
    assert_eq!(summary(&plan.select(&w, &req)), "wa-1");
    let d = plan.preview(&w, &req);
    assert_eq!(summary(&d), "106/capacity_exhausted");
    assert!(d.error().unwrap().message.contains("wa-1 at capacity: 1/1 today"));

    // The binary: explain and select --dry-run leave the count alone.
    let dir = temp_with(&[
        ("rules.yaml", RULES),
        ("world.yaml", "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {per_day: 1}}\n"),
        ("req.json", r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z"}"#),
    ]);
    let (rules, world, req) =
        (dir.path().join("rules.yaml"), dir.path().join("world.yaml"), dir.path().join("req.json"));
    let args = ["--rules", s(&rules), "--world", s(&world)];
    let line = r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z"}"#;
    let out = run(&[&["explain"][..], &args, &["--request", s(&req)]].concat(), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&[&["select", "--dry-run"][..], &args].concat(), &format!("{line}\n{line}\n{line}\n"));
    assert_eq!(text(&out.stdout).matches(r#""ok":true"#).count(), 3, "{}", text(&out.stdout));
    let out = run(&[&["select"][..], &args].concat(), &format!("{line}\n{line}\n"));
    let oks: Vec<bool> = text(&out.stdout).lines().map(|l| l.contains(r#""ok":true"#)).collect();
    assert_eq!(oks, [true, false], "the dry runs left the day's one decision");
}

#[test]
fn a_batch_is_decided_in_input_order() {
    let dir = temp_with(&[
        ("rules.yaml", RULES),
        ("world.yaml", "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {per_day: 50}}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true}\n"),
    ]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let line = r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z"}"#;
    let input: String = (0..2000).map(|_| format!("{line}\n")).collect();
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ids: Vec<bool> = text(&out.stdout).lines().map(|l| l.contains(r#""id":"wa-1""#)).collect();
    assert_eq!(ids.len(), 2000);
    assert!(ids[..50].iter().all(|x| *x) && ids[50..].iter().all(|x| !*x), "the first 50 lines take wa-1");
    // The same with a decision log, and a dry run that never counts.
    let log = dir.path().join("decisions.jsonl");
    let out =
        run(&["select", "--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log), "--dry-run"], &input);
    assert_eq!(text(&out.stdout).matches(r#""id":"wa-1""#).count(), 2000, "a dry run never counts");
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log)], &input);
    let ids: Vec<bool> = text(&out.stdout).lines().map(|l| l.contains(r#""id":"wa-1""#)).collect();
    assert!(ids[..50].iter().all(|x| *x) && ids[50..].iter().all(|x| !*x), "logged: the first 50 lines take wa-1");
}

#[test]
fn store_errors_fail_closed_with_108_or_open_without_limits() {
    let w = shop("      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {per_day: 1}}\n", "");
    // Nothing listens on port 1: every store call fails.
    let closed = counting_plan(&format!("{RULES}capacity: {{store: redis, redis_url: 'redis://127.0.0.1:1/0'}}\n"));
    let d = at(&closed, &w, "2026-11-25T14:00:00Z", None);
    assert_eq!(summary(&d), "108/store_unavailable");
    assert_eq!(d.rule, Some("any_available"));
    assert!(d.error().unwrap().message.contains("fail_closed"), "{}", d.error().unwrap().message);
    let open = counting_plan(&format!(
        "{RULES}capacity: {{store: redis, redis_url: 'redis://127.0.0.1:1/0', on_store_error: fail_open}}\n"
    ));
    for _ in 0..3 {
        let d = at(&open, &w, "2026-11-25T14:00:00Z", None);
        assert_eq!(summary(&d), "wa-1");
        assert!(d.trace.last().unwrap().detail.as_deref().unwrap_or("").contains("fail_open: decided without limits"));
    }
    // Without limits the store is never asked: no error.
    let free = shop("      - {id: wa-1, channel: whatsapp, phone: '1', connected: true}\n", "");
    assert_eq!(summary(&at(&closed, &free, "2026-11-25T14:00:00Z", None)), "wa-1");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Whatever the limits and the request times, the selections counted
    /// per instance and window never exceed a limit.
    #[test]
    fn counted_decisions_per_window_never_exceed_a_limit(
        limits in proptest::collection::vec((proptest::option::of(1u32..4), proptest::option::of(1u32..6), proptest::option::of(1u32..8)), 1..4),
        pool_day in proptest::option::of(1u32..8),
        times in proptest::collection::vec((0i64..3, 0i64..120), 1..60),
    ) {
        let mut instances = String::new();
        for (i, (m, h, d)) in limits.iter().enumerate() {
            let l = |k: &str, v: &Option<u32>| v.map_or(String::new(), |v| format!("{k}: {v}, "));
            instances.push_str(&format!(
                "      - {{id: i{i}, channel: whatsapp, phone: '{i}', connected: true, pool: p, limits: {{{}{}{}}}}}\n",
                l("per_minute", m), l("per_hour", h), l("per_day", d)
            ));
        }
        let pool = format!("{{id: p, limits: {{per_day: {}}}}}", pool_day.map_or("null".to_owned(), |d| d.to_string()));
        let w = world(&format!("locations:\n  - id: shop\n    pools: [{pool}]\n    instances:\n{instances}"));
        let plan = counting_plan("rules: [{rule: any_available, strategy: round_robin}]\n");
        let mut sorted = times.clone();
        sorted.sort();
        let mut minute: HashMap<(usize, i64, i64), u32> = HashMap::new();
        let mut day: HashMap<usize, u32> = HashMap::new();
        let mut pool_count = 0u32;
        for (d, m) in sorted {
            let now = format!("2026-11-{:02}T{:02}:{:02}:00Z", 10 + d, m / 60, m % 60);
            let decision = at(&plan, &w, &now, None);
            if let Some(instance) = decision.instance() {
                let i: usize = instance.id()[1..].parse().unwrap();
                *minute.entry((i, d, m)).or_default() += 1;
                *day.entry(i).or_default() += 1;
                pool_count += 1;
                let (pm, _, pd) = limits[i];
                if let Some(pm) = pm { prop_assert!(minute[&(i, d, m)] <= pm); }
                if let Some(pd) = pd { prop_assert!(day[&i] <= pd * 3); }
                if let Some(pd) = pool_day { prop_assert!(pool_count <= pd * 3); }
            } else {
                prop_assert_eq!(summary(&decision), "106/capacity_exhausted");
            }
        }
    }
}

#[test]
fn least_used_picks_the_fewest_decisions_today_and_skips_instances_at_capacity() {
    let instances = "      - {id: wa-1, channel: whatsapp, phone: '1', connected: true}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true}\n      - {id: wa-3, channel: whatsapp, phone: '3', connected: true, limits: {per_day: 1}}\n";
    let w = shop(instances, "");
    let plan = counting_plan("rules: [{rule: any_available, strategy: least_used}]\n");
    let t = "2026-11-25T14:00:00Z";
    let got: Vec<String> = (0..7).map(|_| summary(&at(&plan, &w, t, None))).collect();
    // Ties by lowest index; wa-3 reaches its limit after one decision.
    assert_eq!(got, ["wa-1", "wa-2", "wa-3", "wa-1", "wa-2", "wa-1", "wa-2"]);
    // A decision made by another rule counts too.
    let tagged = r#"{"location":"shop","channel":"whatsapp","body":"hi { WA#2 }","now":"2026-11-25T14:00:00Z"}"#;
    let both = counting_plan("rules: [manual_override, {rule: any_available, strategy: least_used}]\n");
    assert_eq!(summary(&decide(&both, &w, tagged)), "wa-2");
    assert_eq!(summary(&at(&both, &w, t, None)), "wa-1");
    // The next day in New York starts again from the lowest index.
    assert_eq!(summary(&at(&plan, &w, "2026-11-26T05:00:00Z", None)), "wa-1");
    assert_eq!(summary(&at(&plan, &w, "2026-11-26T05:00:01Z", None)), "wa-2");
}
