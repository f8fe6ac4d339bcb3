//! Warm-up schedules (docs/live-state.md): an instance's `per_day` limit
//! grows day by day in the location's timezone, the smaller of it and
//! `limits.per_day` applies, and explain and `/v1/instances` show it.
//! Through the real binary and the library.

use serde_json::{json, Value};

use crate::util::{run, s, temp_with, text};

const RULES: &str = "rules: [manual_override, any_available]\n";

/// A world whose `shop` (New York) has one warming instance and one spare.
fn world(warmup: &str, limits: &str) -> String {
    format!(
        "locations:\n  - id: shop\n    timezone: America/New_York\n    instances:\n      \
         - {{id: wa-new, channel: whatsapp, index: 1, phone: '+1 212 555 0101', connected: true, warmup: {warmup}{limits}}}\n      \
         - {{id: wa-old, channel: whatsapp, index: 2, phone: '+1 212 555 0102', connected: true}}\n"
    )
}

/// `n` requests for `{ WA#1 }` at `now`, each line's instance or error kind.
fn picks(dir: &tempfile::TempDir, n: usize, now: &str) -> Vec<String> {
    let request = format!(r#"{{"location":"shop","channel":"whatsapp","body":"{{ WA#1 }}","now":"{now}"}}"#);
    let input = format!("{request}\n").repeat(n);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &input);
    text(&out.stdout)
        .lines()
        .map(|l| {
            let d: Value = serde_json::from_str(l).unwrap();
            d["instance"]["id"].as_str().map_or_else(|| d["error"]["kind"].as_str().unwrap().to_owned(), str::to_owned)
        })
        .collect()
}

#[test]
fn each_local_day_has_its_limit_and_the_last_holds() {
    let dir = temp_with(&[("rules.yaml", RULES), ("world.yaml", &world("{since: 2026-12-01, per_day: [2, 3]}", ""))]);
    let full = "instance_at_capacity";
    // Day 0 in New York (the 1st, 10:00 local).
    assert_eq!(picks(&dir, 3, "2026-12-01T15:00:00Z"), ["wa-new", "wa-new", full]);
    // 23:30 on the 1st locally is still day 0, 04:30 UTC on the 2nd.
    assert_eq!(picks(&dir, 3, "2026-12-02T04:30:00Z"), ["wa-new", "wa-new", full]);
    assert_eq!(picks(&dir, 4, "2026-12-02T15:00:00Z"), ["wa-new", "wa-new", "wa-new", full], "day 1");
    assert_eq!(picks(&dir, 4, "2027-01-15T15:00:00Z"), ["wa-new", "wa-new", "wa-new", full], "the last holds");
    assert_eq!(picks(&dir, 3, "2026-11-20T15:00:00Z"), ["wa-new", "wa-new", full], "before since: day 0");
}

#[test]
fn the_smaller_of_the_schedule_and_the_own_limit_applies() {
    let world = world("{since: 2026-12-01, per_day: [2, 50]}", ", limits: {per_day: 3}");
    let dir = temp_with(&[("rules.yaml", RULES), ("world.yaml", &world)]);
    assert_eq!(picks(&dir, 3, "2026-12-01T15:00:00Z")[2], "instance_at_capacity", "the schedule's 2");
    assert_eq!(picks(&dir, 4, "2026-12-03T15:00:00Z")[3], "instance_at_capacity", "the own 3");
    // any_available passes a warming instance at its day's limit over.
    let dir = temp_with(&[("rules.yaml", "rules: [any_available]\n"), ("world.yaml", &world)]);
    let request = r#"{"location":"shop","channel":"whatsapp","body":"hi","now":"2026-12-01T15:00:00Z"}"#;
    let out = run(
        &["select", "--rules", s(&dir.path().join("rules.yaml")), "--world", s(&dir.path().join("world.yaml"))],
        &format!("{request}\n").repeat(3),
    );
    let ids: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["instance"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["wa-new", "wa-new", "wa-old"]);
}

#[test]
fn explain_shows_the_day_and_its_limit() {
    let dir = temp_with(&[("rules.yaml", RULES), ("world.yaml", &world("{since: 2026-12-01, per_day: [20, 50]}", ""))]);
    let request = dir.path().join("request.json");
    std::fs::write(
        &request,
        r#"{"location":"shop","channel":"whatsapp","body":"{ WA#1 }","now":"2026-12-02T15:00:00Z"}"#,
    )
    .unwrap();
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let out = run(&["explain", "--rules", s(&rules), "--world", s(&world), "--request", s(&request)], "");
    let table = text(&out.stdout);
    assert!(table.contains("0/50 today (warm-up day 1: 50 a day)"), "{table}");
}

#[test]
fn instances_show_the_warmup_day_and_the_limit_in_force() {
    use switchboard::capacity::jiff::{tz::TimeZone, SignedDuration, Timestamp};
    // Two days ago in New York, whatever today is.
    let since = TimeZone::get("America/New_York")
        .unwrap()
        .to_datetime(Timestamp::now() - SignedDuration::from_hours(48))
        .date();
    let dir = temp_with(&[
        ("rules.yaml", RULES),
        ("world.yaml", &world(&format!("{{since: {since}, per_day: [10, 20, 30, 40]}}"), "")),
    ]);
    let live = switchboard::Live::open(
        crate::util::registry(),
        dir.path().join("rules.yaml"),
        Some(dir.path().join("world.yaml")),
    )
    .unwrap();
    let shop = live.instances("shop").unwrap();
    let new = &shop["instances"][0];
    assert_eq!(new["warmup"], json!({"day": 2, "per_day": 30}), "{new}");
    assert_eq!(new["usage"], json!({"per_day": {"used": 0, "limit": 30}}), "{new}");
    assert_eq!(shop["instances"][1]["warmup"], Value::Null);
}

#[test]
fn bad_schedules_are_located_errors() {
    for (warmup, expected) in [
        ("{since: 2026-12-01, per_day: []}", "`warmup.per_day` is empty"),
        ("{since: soon, per_day: [5]}", "`warmup.since` must be a date"),
        ("{since: 2026-12-01, per_day: [5, 0]}", "`per_day[1]` must be a whole number, 1 or more"),
        ("{since: 2026-12-01}", "a warm-up schedule needs `per_day`"),
        ("{since: 2026-12-01, per_day: [5], until: x}", "until"),
    ] {
        let dir = temp_with(&[("rules.yaml", RULES), ("world.yaml", &world(warmup, ""))]);
        let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
        let out = run(&["check", "--rules", s(&rules), "--world", s(&world)], "");
        assert_eq!(out.status.code(), Some(1), "{warmup}");
        let stderr = text(&out.stderr) + &text(&out.stdout);
        assert!(stderr.contains(expected), "{warmup}: {stderr}");
        assert!(stderr.contains("world.yaml:5:"), "located on the instance's line: {stderr}");
    }
}

#[test]
fn a_schedule_is_exact_across_processes_on_redis() {
    let redis = crate::redis_server::RedisServer::start();
    let rules = format!("{RULES}capacity: {{store: redis, redis_url: '{}', key_prefix: 'warm:'}}\n", redis.url());
    let dir = temp_with(&[("rules.yaml", &rules), ("world.yaml", &world("{since: 2026-12-01, per_day: [3, 5]}", ""))]);
    let open = || {
        switchboard::Live::open(
            crate::util::registry(),
            dir.path().join("rules.yaml"),
            Some(dir.path().join("world.yaml")),
        )
        .unwrap()
    };
    let (a, b) = (open(), open());
    let request = crate::util::request(
        r#"{"location":"shop","channel":"whatsapp","body":"{ WA#1 }","now":"2026-12-01T15:00:00Z"}"#,
    );
    // Two processes, eight threads, twenty decisions: day 0 allows three.
    let selected = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for live in [&a, &b, &a, &b, &a, &b, &a, &b] {
            let (request, selected) = (&request, &selected);
            scope.spawn(move || {
                for _ in 0..3 {
                    if live.select(request).is_ok() {
                        selected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(selected.into_inner(), 3);
}
