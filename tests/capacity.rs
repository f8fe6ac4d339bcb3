//! Capacity (docs/capacity.md) through the library and the binary: limits per
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
    assert_eq!(text(&out.stderr), "", "a dry run counts nothing: nothing to say");
    let out = run(&[&["select"][..], &args].concat(), &format!("{line}\n{line}\n"));
    let oks: Vec<bool> = text(&out.stdout).lines().map(|l| l.contains(r#""ok":true"#)).collect();
    assert_eq!(oks, [true, false], "the dry runs left the day's one decision");
    // The counts end with the run, and the run says so, once.
    let note = "switchboard: note: capacity counts and conversation memory are kept in this process's memory";
    assert_eq!(text(&out.stderr).matches(note).count(), 1, "{}", text(&out.stderr));
    let out = run(&[&["select"][..], &args, &["--request", s(&req)]].concat(), "");
    assert_eq!(out.status.code(), Some(0), "a new run starts from nothing: {}", text(&out.stdout));
    assert!(text(&out.stderr).starts_with(note), "{}", text(&out.stderr));
    let out = run(&["select", "--rules", s(&repo_file("rules.yaml")), "--world", s(&example("world.yaml"))], line);
    assert_eq!(text(&out.stderr), "", "nothing counted, nothing said");
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

/// One instance of the property test's world: its limits (per minute, per
/// hour, per day, contacts per day), whether it is in the pool, whether it
/// is connected.
type Spec = ((Option<u32>, Option<u32>, Option<u32>, Option<u32>), bool, bool);

/// What the property test does at one instant: decide and count, preview,
/// or explain; on the plain body or a manual override to an index.
#[derive(Debug, Clone, Copy)]
enum Op {
    Select,
    Preview,
    Explain,
}

fn limits_yaml((m, h, d, c): (Option<u32>, Option<u32>, Option<u32>, Option<u32>)) -> String {
    let l = |k: &str, v: Option<u32>| v.map_or(String::new(), |v| format!("{k}: {v}, "));
    format!("{{{}{}{}{}}}", l("per_minute", m), l("per_hour", h), l("per_day", d), l("contacts_per_day", c))
}

fn limits_of((m, h, d, c): (Option<u32>, Option<u32>, Option<u32>, Option<u32>)) -> switchboard::capacity::Limits {
    switchboard::capacity::Limits { per_minute: m, per_hour: h, per_day: d, contacts_per_day: c }
}

/// The counts a subject (an instance, or the pool) must have: decisions by
/// (window, window start), and per day start the contacts seen and the
/// requests without a contact.
#[derive(Default, Debug)]
struct Model {
    decisions: HashMap<(usize, i64), u64>,
    contacts: HashMap<i64, (std::collections::HashSet<u8>, u64)>,
}

impl Model {
    fn counts(&self, starts: &[i64; 3]) -> switchboard::capacity::Counts {
        let get = |w: usize| self.decisions.get(&(w, starts[w])).copied().unwrap_or(0);
        let contacts = self.contacts.get(&starts[2]).map_or(0, |(seen, anonymous)| seen.len() as u64 + anonymous);
        switchboard::capacity::Counts { minute: get(0), hour: get(1), day: get(2), contacts }
    }

    fn seen(&self, starts: &[i64; 3], contact: Option<u8>) -> bool {
        contact.is_some_and(|c| self.contacts.get(&starts[2]).is_some_and(|(seen, _)| seen.contains(&c)))
    }

    fn count(&mut self, starts: &[i64; 3], contact: Option<u8>, track_contacts: bool) {
        for (w, start) in starts.iter().enumerate() {
            *self.decisions.entry((w, *start)).or_default() += 1;
        }
        if track_contacts {
            let (seen, anonymous) = self.contacts.entry(starts[2]).or_default();
            match contact {
                Some(c) => {
                    seen.insert(c);
                }
                None => *anonymous += 1,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the limits, the strategy and the requests (times across New
    /// York's midnight and its fall-back night, contacts, manual overrides),
    /// with previews and explanations interleaved:
    ///
    /// - every selected instance is connected and was within its limits and
    ///   its pool's when it was selected;
    /// - every selected decision is counted exactly once: after each step the
    ///   store's counts (`CapacityStore::usage`) of every instance and of the
    ///   pool, in the current minute, hour and day, and their distinct
    ///   contacts of the day, equal those of the selected decisions (on an
    ///   instance with limits, or its pool's; every one in a `least_used`
    ///   chain), and at the end so do the day counts of every day seen;
    /// - a preview (and an explanation, which reads the store) changes no
    ///   count, and decides exactly what the next selection decides.
    #[test]
    fn every_selected_decision_is_counted_exactly_once_and_previews_count_nothing(
        specs in proptest::collection::vec(
            ((proptest::option::of(1u32..4), proptest::option::of(1u32..6), proptest::option::of(1u32..8),
              proptest::option::of(1u32..4)), any::<bool>(), proptest::bool::weighted(0.85)),
            1..5),
        pool in (proptest::option::of(1u32..6), proptest::option::of(1u32..10), proptest::option::of(1u32..5)),
        strategy in proptest::sample::select(vec!["lowest_index", "least_used", "weighted"]),
        steps in proptest::collection::vec(
            ((0i64..3, 3i64..8, 0i64..4, 0i64..60),
             proptest::option::of(0u8..5),
             proptest::option::of(1usize..6),
             proptest::sample::select(vec![Op::Select, Op::Select, Op::Select, Op::Preview, Op::Explain])),
            1..70),
    ) {
        let specs: Vec<Spec> = specs;
        let pool_limits = limits_of((pool.0, None, pool.1, pool.2));
        let mut instances = String::new();
        for (i, (limits, in_pool, connected)) in specs.iter().enumerate() {
            instances.push_str(&format!(
                "      - {{id: i{i}, channel: whatsapp, phone: '{i}', connected: {connected}{}, limits: {}}}\n",
                if *in_pool { ", pool: p" } else { "" },
                limits_yaml(*limits)
            ));
        }
        let w = world(&format!(
            "locations:\n  - id: shop\n    timezone: America/New_York\n    pools: [{{id: p, limits: {}}}]\n    instances:\n{instances}",
            limits_yaml((pool.0, None, pool.1, pool.2))
        ));
        let plan = counting_plan(&format!(
            "rules: [manual_override, {{rule: any_available, strategy: {strategy}}}]\n"
        ));
        let store = plan.store().unwrap().clone();
        let tz = switchboard::capacity::timezone("America/New_York").unwrap();
        let least_used = strategy == "least_used";
        let pool_limited = !pool_limits.is_unlimited();
        // Index 0..n: the instances; n: the pool.
        let mut models: Vec<Model> = (0..=specs.len()).map(|_| Model::default()).collect();
        let mut steps = steps;
        steps.sort_by_key(|s| s.0);
        let mut days = Vec::new();
        for ((day, hour, minute, second), contact, target, op) in steps {
            // 2026-10-31 to 2026-11-02, 03:00-07:59 UTC: New York's midnight
            // (04:00 or 05:00 UTC) and the fall-back night of 2026-11-01.
            let now = format!("2026-{}T{hour:02}:{minute:02}:{second:02}Z", ["10-31", "11-01", "11-02"][day as usize]);
            let ts: switchboard::capacity::jiff::Timestamp = now.parse().unwrap();
            let starts = switchboard::capacity::Window::ALL.map(|w| w.span(ts, &tz).start.as_second());
            days.push(ts);
            let body = target.map_or("hi".to_owned(), |k| format!("hi {{ WA#{k} }}"));
            let contact_json = contact.map_or(String::new(), |c| format!(r#","contact":{{"id":"c{c}"}}"#));
            let req = request(&format!(
                r#"{{"location":"shop","channel":"whatsapp","body":"{body}","now":"{now}"{contact_json}}}"#
            ));
            match op {
                Op::Preview => {
                    let preview = plan.preview(&w, &req);
                    prop_assert_eq!(plan.preview(&w, &req), preview);
                }
                Op::Explain => {
                    let decision = plan.preview(&w, &req);
                    let table = switchboard::report::explain_table_with_capacity(&plan, &w, Some(&req), &decision);
                    let limited = specs.iter().any(|(l, in_pool, _)| {
                        !limits_of(*l).is_unlimited() || (*in_pool && pool_limited)
                    });
                    prop_assert_eq!(table.contains("\ncapacity  as of "), limited || least_used, "{}", table);
                }
                Op::Select => {
                    let preview = plan.preview(&w, &req);
                    let decision = plan.select(&w, &req);
                    prop_assert_eq!(&preview, &decision, "a preview decides what the selection decides");
                    if let Some(instance) = decision.instance() {
                        let i: usize = instance.id()[1..].parse().unwrap();
                        let (limits, in_pool, connected) = specs[i];
                        prop_assert!(connected && instance.is_connected(), "{} is disconnected", instance.id());
                        let limits = limits_of(limits);
                        let before = models[i].counts(&starts);
                        prop_assert_eq!(
                            limits.first_reached(&before, !models[i].seen(&starts, contact)), None,
                            "{} selected over its limits: {:?}", instance.id(), before
                        );
                        let n = specs.len();
                        if in_pool {
                            let pool_before = models[n].counts(&starts);
                            prop_assert_eq!(
                                pool_limits.first_reached(&pool_before, !models[n].seen(&starts, contact)), None,
                                "{} selected over its pool's limits: {:?}", instance.id(), pool_before
                            );
                        }
                        if !limits.is_unlimited() || (in_pool && pool_limited) {
                            models[i].count(&starts, contact, limits.contacts_per_day.is_some());
                            if in_pool {
                                models[n].count(&starts, contact, pool_limits.contacts_per_day.is_some());
                            }
                        } else if least_used {
                            // Counted without limits, to rank by the day's count.
                            models[i].count(&starts, contact, false);
                        }
                    }
                }
            }
            // The store's counts now, for every subject, equal the model's.
            for (i, model) in models.iter().enumerate() {
                let usage = usage_at(&*store, &tz, i, specs.len(), ts, pool_limits);
                prop_assert_eq!(usage, model.counts(&starts), "subject {} after {:?} at {}", i, op, now);
            }
        }
        // The day count of every day seen, at the end (contact sets are
        // kept two days only: they were checked at each step).
        for ts in days {
            let starts = switchboard::capacity::Window::ALL.map(|w| w.span(ts, &tz).start.as_second());
            for (i, model) in models.iter().enumerate() {
                let usage = usage_at(&*store, &tz, i, specs.len(), ts, pool_limits);
                prop_assert_eq!(usage.day, model.counts(&starts).day, "subject {} on the day of {}", i, ts);
            }
        }
    }
}

/// The store's counts of instance `i{subject}`, or of the pool when
/// `subject` is `n`, at `now`, read without counting.
fn usage_at(
    store: &dyn switchboard::CapacityStore,
    tz: &switchboard::capacity::jiff::tz::TimeZone,
    subject: usize,
    n: usize,
    now: switchboard::capacity::jiff::Timestamp,
    pool_limits: switchboard::capacity::Limits,
) -> switchboard::capacity::Counts {
    use switchboard::capacity::{PoolRef, ReservationRequest};
    if subject == n {
        let pool = PoolRef { id: "p", limits: pool_limits };
        let request = ReservationRequest { pool: Some(pool), ..ReservationRequest::new("shop", tz, "i0", now) };
        store.usage(&request).unwrap().pool.unwrap()
    } else {
        let id = format!("i{subject}");
        store.usage(&ReservationRequest::new("shop", tz, &id, now)).unwrap().instance
    }
}

#[test]
fn explain_through_the_binary_shows_counts_and_limits_and_json_stays_the_decision() {
    let world_yaml = "locations:\n  - id: shop\n    timezone: America/New_York\n    pools: [{id: brand-a, limits: {per_day: 2000}}]\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, pool: brand-a, limits: {per_minute: 20, per_hour: 300, per_day: 1000, contacts_per_day: 250}}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: false, limits: {per_day: 5}}\n      - {id: wa-3, channel: whatsapp, phone: '3', connected: true}\n";
    let request =
        r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z","contact":{"id":"c1"}}"#;
    let dir = temp_with(&[("rules.yaml", RULES), ("world.yaml", world_yaml), ("req.json", request)]);
    let (rules, world, req) =
        (dir.path().join("rules.yaml"), dir.path().join("world.yaml"), dir.path().join("req.json"));
    let args = ["explain", "--rules", s(&rules), "--world", s(&world), "--request", s(&req)];
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let section = "capacity  as of 2026-11-25T14:00:00Z · 2026-11-25 09:00 America/New_York\n  \
                   wa-1  0/20 this minute, 0/300 this hour, 0/1000 today, contacts 0/250 today; pool brand-a 0/2000 today\n  \
                   wa-2  0/5 today · disconnected\n  \
                   wa-3  no limits\n\ndecision  selected wa-1";
    assert!(table.contains(section), "{table}");
    // `--format json` is the decision, as a dry run decides it.
    let json = run(&[&args[..], &["--format", "json"]].concat(), "");
    let dry = run(&["select", "--dry-run", "--rules", s(&rules), "--world", s(&world)], &format!("{request}\n"));
    assert_eq!(text(&json.stdout), text(&dry.stdout));
    assert!(!text(&json.stdout).contains("capacity  as of"));
}

/// The library in one process: counts made by earlier selections show in
/// the explanation the bindings and `/v1/explain` give.
#[test]
fn explain_in_process_shows_the_counts_of_earlier_selections() {
    let dir = temp_with(&[
        ("rules.yaml", RULES),
        ("world.yaml", "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true, limits: {per_day: 2}}\n      - {id: wa-2, channel: whatsapp, phone: '2', connected: true, limits: {per_hour: 10}}\n"),
    ]);
    let live = switchboard::Live::open(registry(), dir.path().join("rules.yaml"), Some(dir.path().join("world.yaml")))
        .unwrap();
    let line = r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-11-25T14:00:00Z"}"#;
    let decided: Vec<String> = (0..3).map(|_| switchboard::embed::select_text(&live, line)).collect();
    assert!(decided[2].contains(r#""id":"wa-2""#), "{decided:?}");
    let table = switchboard::embed::explain_text(&live, line);
    assert!(
        table.contains("  wa-1  2/2 today (at capacity)\n  wa-2  1/10 this hour\n\ndecision  selected wa-2"),
        "{table}"
    );
    // Explaining never counts.
    assert_eq!(switchboard::embed::explain_text(&live, line), table);
}
