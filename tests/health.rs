//! Instance health (docs/live-state.md): `delivery` events quarantine a
//! failing instance, every rule treats it as it treats a disconnected one
//! with kind `instance_quarantined`, and probation lets the next delivery
//! decide. Through the library, the real binary on a real port, and two
//! processes sharing a real Redis. Time is the events' `time` and the
//! requests' `now`: nothing here sleeps out a cooldown.

use serde_json::{json, Value};

use crate::serve::{get, post, Server};
use crate::util::{example, s, summary};

const HEALTH: &str = "health: {quarantine_after: 3, cooldown: 5m, max_cooldown: 20m}\n";

/// A `Live` on the example world with `rules`.
fn live(rules: &str) -> (tempfile::TempDir, switchboard::Live) {
    let dir = crate::util::temp_with(&[
        ("rules.yaml", rules),
        ("world.yaml", &std::fs::read_to_string(example("world.yaml")).unwrap()),
    ]);
    let live = switchboard::Live::open(
        crate::util::registry(),
        dir.path().join("rules.yaml"),
        Some(&dir.path().join("world.yaml")),
    )
    .unwrap();
    (dir, live)
}

fn decide(live: &switchboard::Live, body: &str, now: &str) -> switchboard::Decision {
    let json = format!(r#"{{"location":"shop","channel":"whatsapp","body":"{body}","now":"{now}"}}"#);
    live.select(&crate::util::request(&json))
}

fn pick(live: &switchboard::Live, body: &str, now: &str) -> String {
    summary(&decide(live, body, now))
}

fn delivery(instance: &str, status: &str, time: &str) -> String {
    format!(r#"{{"type":"delivery","location":"shop","instance":"{instance}","status":"{status}","time":"{time}"}}"#)
}

/// `n` failed deliveries of `instance` in the last `n` seconds (for what
/// reads the clock: `/v1/status`, `/v1/instances`).
fn recent_failures(instance: &str, n: u64) -> String {
    use switchboard::capacity::jiff::{SignedDuration, Timestamp};
    let now = Timestamp::now();
    (0..n)
        .map(|k| {
            let time = now - SignedDuration::from_millis(i64::try_from(1000 * (n - k)).unwrap());
            delivery(instance, "failed", &time.to_string()) + "\n"
        })
        .collect()
}

/// `n` failed deliveries of `instance`, a second apart from `hh:mm`.
fn failures(instance: &str, n: usize, at: &str) -> String {
    (0..n).map(|k| delivery(instance, "failed", &format!("2026-12-07T{at}:{k:02}Z")) + "\n").collect()
}

#[test]
fn consecutive_failures_quarantine_then_probation_decides() {
    let (_dir, live) = live(&format!("rules: [manual_override, default_instance, any_available]\n{HEALTH}"));
    let recorded = live.record(&failures("wa-orders", 3, "15:00"));
    assert_eq!(recorded.to_json(), json!({"accepted": 3, "rejected": []}));
    assert_eq!(recorded.quarantines, 1);
    // Quarantined for 5 minutes from the third failure (15:00:02).
    let decision = decide(&live, "{ WA#1 }", "2026-12-07T15:03:00Z");
    let error = decision.result.as_ref().unwrap_err();
    assert_eq!((error.code, error.kind.as_str()), (101, "instance_quarantined"));
    assert!(error.message.contains("quarantined until 2026-12-07T15:05:02Z"), "{}", error.message);
    // Other instances are untouched; the end is exclusive.
    assert_eq!(pick(&live, "{ WA#2 }", "2026-12-07T15:03:00Z"), "wa-support");
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:05:01Z"), "101/instance_quarantined");
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:05:02Z"), "wa-orders", "on probation: selectable");
    // A failure on probation: quarantined again for twice as long.
    assert_eq!(live.record(&delivery("wa-orders", "failed", "2026-12-07T15:06:00Z")).quarantines, 1);
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:15:59Z"), "101/instance_quarantined");
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:16:00Z"), "wa-orders");
    // A delivery on probation: healthy, and the next quarantine is 5m again.
    live.record(&delivery("wa-orders", "delivered", "2026-12-07T15:17:00Z"));
    let health = &live.instances("shop").unwrap()["instances"][0]["health"];
    assert_eq!(health["state"], "healthy", "{health}");
    live.record(&failures("wa-orders", 3, "15:20"));
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:25:01Z"), "101/instance_quarantined");
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:25:02Z"), "wa-orders");
}

#[test]
fn late_receipts_neither_end_nor_lengthen_a_quarantine() {
    let (_dir, live) = live(&format!("rules: [manual_override, any_available]\n{HEALTH}"));
    live.record(&failures("wa-orders", 3, "15:00"));
    let late = format!(
        "{}\n{}\n",
        delivery("wa-orders", "delivered", "2026-12-07T15:01:00Z"),
        delivery("wa-orders", "failed", "2026-12-07T15:02:00Z")
    );
    assert_eq!(live.record(&late).quarantines, 0);
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:05:01Z"), "101/instance_quarantined");
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:05:02Z"), "wa-orders");
    let health = &live.instances("shop").unwrap()["instances"][0]["health"];
    assert_eq!(health["consecutive_failures"], 3, "the late ones did not count as in a row: {health}");
}

#[test]
fn a_skipping_rule_skips_a_quarantined_instance_and_any_available_passes_it_over() {
    let rules =
        format!("rules: [manual_override, {{rule: default_instance, on_unavailable: skip}}, any_available]\n{HEALTH}");
    let (_dir, live) = live(&rules);
    live.record(&failures("wa-support", 3, "15:00"));
    let decision = decide(&live, "hi", "2026-12-07T15:01:00Z");
    assert_eq!(summary(&decision), "wa-orders");
    let skipped = decision.trace.iter().find(|t| t.rule == "default_instance").unwrap();
    assert_eq!(skipped.outcome.as_str(), "fell_through");
    assert!(skipped.detail.as_deref().unwrap_or("").contains("quarantined until"), "{:?}", skipped.detail);
}

#[test]
fn every_usable_instance_quarantined_is_106_naming_each_and_until_when() {
    let (_dir, live) = live(&format!("rules: [any_available]\n{HEALTH}"));
    let all = ["wa-orders", "wa-support", "wa-billing"].map(|i| failures(i, 3, "15:00")).concat();
    assert_eq!(live.record(&all).quarantines, 3);
    let decision = decide(&live, "hi", "2026-12-07T15:01:00Z");
    let error = decision.result.as_ref().unwrap_err();
    assert_eq!((error.code, error.kind.as_str()), (106, "no_instance_available"));
    for instance in ["wa-orders", "wa-support", "wa-billing"] {
        assert!(error.message.contains(&format!("{instance} (#")), "{}", error.message);
    }
    assert_eq!(error.message.matches("quarantined until 2026-12-07T15:05:02Z").count(), 3, "{}", error.message);
}

#[test]
fn the_failure_rate_quarantines_once_the_window_holds_enough() {
    let rules = "rules: [manual_override, any_available]\nhealth: {quarantine_after: 100, failure_rate: 0.5, min_deliveries: 4, window: 10m}\n";
    let (_dir, live) = live(rules);
    // Alternating: never two failures in a row, half of them failed.
    let events: String = ["failed", "delivered", "failed"]
        .iter()
        .enumerate()
        .map(|(k, status)| delivery("wa-orders", status, &format!("2026-12-07T15:0{k}:00Z")) + "\n")
        .collect();
    assert_eq!(live.record(&events).quarantines, 0, "3 deliveries: too few for the rate");
    assert_eq!(live.record(&delivery("wa-orders", "delivered", "2026-12-07T15:03:00Z")).quarantines, 0);
    assert_eq!(live.record(&delivery("wa-orders", "failed", "2026-12-07T15:04:00Z")).quarantines, 1, "3 of 5");
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:05:00Z"), "101/instance_quarantined");
}

#[test]
fn without_a_health_section_deliveries_change_nothing() {
    let (_dir, live) = live("rules: [manual_override, any_available]\n");
    assert_eq!(live.record(&failures("wa-orders", 20, "15:00")).to_json()["accepted"], 20);
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:01:00Z"), "wa-orders");
    assert_eq!(live.instances("shop").unwrap()["instances"][0]["health"], Value::Null);
}

#[test]
fn a_disconnected_instance_stays_disconnected_whatever_its_health() {
    let (_dir, live) = live(&format!("rules: [manual_override, any_available]\n{HEALTH}"));
    let down = r#"{"type":"instance_status","location":"shop","instance":"wa-orders","connected":false,"time":"2026-12-07T14:00:00Z"}"#;
    live.record(&format!("{down}\n{}", failures("wa-orders", 3, "15:00")));
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:01:00Z"), "101/instance_disconnected");
}

#[test]
fn serve_shows_health_in_instances_status_metrics_and_explain() {
    let rules = format!("rules: [manual_override, any_available]\n{HEALTH}");
    let dir = crate::util::temp_with(&[
        ("rules.yaml", &rules),
        ("world.yaml", &std::fs::read_to_string(example("world.yaml")).unwrap()),
    ]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world)]);
    // Now, so that the quarantine is in force for the clock of /v1/status.
    let events = recent_failures("wa-orders", 3);
    let (status, answer) = post(&server.url("/v1/events"), &events);
    assert_eq!((status, answer), (200, json!({"accepted": 3, "rejected": []})));
    let (_, shop) = get(&server.url("/v1/instances?location=shop"));
    let health = &shop["instances"][0]["health"];
    assert_eq!(health["state"], "quarantined", "{shop}");
    assert_eq!((health["consecutive_failures"].clone(), health["deliveries"].clone()), (json!(3), json!(3)));
    assert_eq!(health["failures"], 3);
    assert!(health["until"].is_string(), "{health}");
    assert_eq!(shop["instances"][1]["health"]["state"], "healthy");
    assert_eq!(get(&server.url("/v1/status")).1["live"]["quarantined"], 1);
    // The OpenAPI document names every field of the answer.
    let (_, doc) = get(&server.url("/openapi.json"));
    let schemas = &doc["components"]["schemas"];
    for key in shop["instances"][0].as_object().unwrap().keys() {
        assert!(schemas["InstanceState"]["properties"].get(key).is_some(), "InstanceState lacks `{key}`");
    }
    for key in health.as_object().unwrap().keys() {
        assert!(schemas["InstanceHealth"]["properties"].get(key).is_some(), "InstanceHealth lacks `{key}`");
    }
    assert!(schemas["LiveStatus"]["properties"].get("quarantined").is_some());
    let (_, metrics) = crate::serve::get_text(&server.url("/metrics"));
    assert!(metrics.contains("switchboard_instance_quarantines_total 1"), "{metrics}");
    assert!(metrics.contains("switchboard_instances_quarantined 1"), "{metrics}");
    assert!(metrics.contains(r#"switchboard_events_total{type="delivery",result="accepted"} 3"#), "{metrics}");
    let (_, decision) =
        post(&server.url("/v1/select"), r#"{"location":"shop","channel":"whatsapp","body":"{ WA#1 }"}"#);
    assert_eq!(decision["error"]["kind"], "instance_quarantined", "{decision}");
    let (_, explained) =
        post(&server.url("/v1/explain"), r#"{"location":"shop","channel":"whatsapp","body":"{ WA#1 }"}"#);
    let text = explained.to_string();
    assert!(text.contains("wa-orders  quarantined until"), "{text}");
}

#[test]
fn a_fleet_on_redis_shares_quarantines() {
    let redis = crate::redis_server::RedisServer::start();
    let rules = format!(
        "rules: [manual_override, any_available]\ncapacity: {{store: redis, redis_url: '{}', key_prefix: 'health:'}}\n{HEALTH}",
        redis.url()
    );
    let dir = crate::util::temp_with(&[
        ("rules.yaml", &rules),
        ("world.yaml", &std::fs::read_to_string(example("world.yaml")).unwrap()),
    ]);
    let open = || {
        switchboard::Live::open(
            crate::util::registry(),
            dir.path().join("rules.yaml"),
            Some(&dir.path().join("world.yaml")),
        )
        .unwrap()
    };
    let (a, b) = (open(), open());
    // Failures reported to both processes add up to one count.
    a.record(&delivery("wa-orders", "failed", "2026-12-07T15:00:00Z"));
    b.record(&delivery("wa-orders", "failed", "2026-12-07T15:00:01Z"));
    assert_eq!(pick(&a, "{ WA#1 }", "2026-12-07T15:01:00Z"), "wa-orders");
    assert_eq!(a.record(&delivery("wa-orders", "failed", "2026-12-07T15:00:02Z")).quarantines, 1);
    let posted = std::time::Instant::now();
    while pick(&b, "{ WA#1 }", "2026-12-07T15:01:00Z") != "101/instance_quarantined" {
        assert!(posted.elapsed() < std::time::Duration::from_secs(1), "b never saw the quarantine");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(b);
    let c = open();
    assert_eq!(pick(&c, "{ WA#1 }", "2026-12-07T15:01:00Z"), "101/instance_quarantined", "after a restart");
    assert_eq!(pick(&c, "{ WA#1 }", "2026-12-07T15:05:02Z"), "wa-orders");
    let health = &c.instances("shop").unwrap()["instances"][0]["health"];
    assert_eq!(health["consecutive_failures"], 3, "{health}");
    // Concurrent failures from two processes are each counted once.
    let events = recent_failures("wa-billing", 20);
    std::thread::scope(|scope| {
        for live in [&a, &c] {
            let events = &events;
            scope.spawn(move || assert_eq!(live.record(events).to_json()["accepted"], 20));
        }
    });
    let shop = a.instances("shop").unwrap();
    let billing = shop["instances"].as_array().unwrap().iter().find(|i| i["id"] == "wa-billing").unwrap().clone();
    assert_eq!(billing["health"]["deliveries"], 40, "{billing}");
    assert_eq!(billing["health"]["state"], "quarantined", "{billing}");
}

#[test]
fn a_logged_quarantine_replays_with_no_change() {
    let rules = format!("rules: [manual_override, any_available]\n{HEALTH}");
    let dir = crate::util::temp_with(&[
        ("rules.yaml", &rules),
        ("world.yaml", &std::fs::read_to_string(example("world.yaml")).unwrap()),
    ]);
    let (rules, world, log) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"), dir.path().join("log"));
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log)]);
    let select = r#"{"location":"shop","channel":"whatsapp","body":"{ WA#1 }"}"#;
    assert_eq!(post(&server.url("/v1/select"), select).1["instance"]["id"], "wa-orders");
    assert_eq!(post(&server.url("/v1/events"), &recent_failures("wa-orders", 3)).1["accepted"], 3);
    assert_eq!(post(&server.url("/v1/select"), select).1["error"]["kind"], "instance_quarantined");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 5 {
        assert!(std::time::Instant::now() < end, "the log never got its 5 lines");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(server);
    let out = crate::util::run(&["replay", "--rules", s(&rules), "--world", s(&world), "--log", s(&log)], "");
    let stdout = crate::util::text(&out.stdout);
    assert!(stdout.starts_with("2 decisions, 2 unchanged, 0 changed"), "{stdout}");
}
