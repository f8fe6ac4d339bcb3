//! `switchboard replay` (docs/operator-tools.md) on decision logs (docs/service.md) written here:
//! transitions checked against counts computed independently with the
//! library, the same configuration giving 0 changed, the `--max-changed`
//! gate, JSON output, and unreadable lines and logs. Capacity counts and
//! conversation memory come from the log's own earlier decisions, in a
//! private store: never from the replay's own decisions, nor the
//! configured store (docs/capacity.md).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::util::*;

/// The shipped chain with `default_instance` moved above the contact's tag
/// and assigned user.
const DEFAULT_FIRST: &str = "\
rules:
  - manual_override
  - temporary_switch
  - default_instance
  - contact_tag
  - user_assignment
  - any_available
";

/// Requests over the example world: every rule, some errors, some bad.
fn requests() -> Vec<String> {
    let mut out: Vec<String> =
        std::fs::read_to_string(example("requests.jsonl")).unwrap().lines().map(str::to_owned).collect();
    for i in 0..40 {
        let contact = match i % 5 {
            0 => json!({"id": format!("c{i}"), "tags": ["wa: +1-555-BILLING"]}),
            1 => json!({"id": format!("c{i}"), "assigned_user": "u_orders"}),
            2 => json!({"id": format!("c{i}"), "tags": ["wa: +1 555 0104"]}),
            3 => json!({"id": format!("c{i}")}),
            _ => json!({"id": format!("c{i}"), "assigned_user": "u_team_b1"}),
        };
        let location = if i % 5 == 4 { "agency" } else { "shop" };
        out.push(
            json!({"location": location, "channel": "whatsapp", "body": format!("msg {i}"), "contact": contact})
                .to_string(),
        );
    }
    out
}

/// A decision log line of docs/service.md for `request`, decided with `plan`.
fn log_line(n: usize, plan: &switchboard::Plan, world: &switchboard::World, request: &str) -> String {
    let decision = switchboard::decide_text(request, |r| plan.select(world, r));
    let request: Value = serde_json::from_str(request).unwrap_or_else(|_| json!(request));
    let decision: Value = serde_json::from_str(&decision.to_json()).unwrap();
    json!({
        "decision_id": format!("d{n}"),
        "time": "2026-11-25T14:03:07.123Z",
        "generation": 1,
        "rules_sha256": "0".repeat(64),
        "world_sha256": "1".repeat(64),
        "request": request,
        "decision": decision,
    })
    .to_string()
}

/// The log of `requests()` decided with the shipped rules and example world.
fn write_log(dir: &std::path::Path) -> std::path::PathBuf {
    let plan = default_plan();
    let world = switchboard::load_world(example("world.yaml"), &plan).unwrap();
    let lines: Vec<String> = requests().iter().enumerate().map(|(n, r)| log_line(n, &plan, &world, r)).collect();
    let path = dir.join("decisions.jsonl");
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// `rule/instance` or `error CODE KIND`, computed here from a decision.
fn label(d: &switchboard::Decision) -> String {
    match &d.result {
        Ok(i) => format!("{}/{}", d.rule.unwrap_or("-"), i.id()),
        Err(e) => format!("error {} {}", e.code, e.kind),
    }
}

fn replay_args<'a>(rules: &'a str, log: &'a str) -> Vec<&'a str> {
    vec!["replay", "--rules", rules, "--world", "", "--log", log]
}

#[test]
fn transitions_match_an_independent_count() {
    let dir = temp_with(&[("new.yaml", DEFAULT_FIRST)]);
    let log = write_log(dir.path());
    let new = dir.path().join("new.yaml");

    // Independently: decide every request with both plans and count.
    let (old_plan, new_plan) = (default_plan(), plan(DEFAULT_FIRST));
    let world = switchboard::load_world(example("world.yaml"), &old_plan).unwrap();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    let all = requests();
    for r in &all {
        let old = label(&switchboard::decide_text(r, |q| old_plan.select(&world, q)));
        let new = label(&switchboard::decide_text(r, |q| new_plan.select(&world, q)));
        if old != new {
            let key = format!("{old} → {new}");
            *counts.entry(key.clone()).or_default() += 1;
            first.entry(key).or_insert_with(|| r.clone());
        }
    }
    let changed: usize = counts.values().sum();
    assert!(counts.len() >= 4 && changed >= 20, "{counts:?}");

    let world_path = example("world.yaml");
    let mut args = replay_args(s(&new), s(&log));
    args[4] = s(&world_path);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let pct = changed as f64 * 100.0 / all.len() as f64;
    assert_eq!(
        lines[0],
        format!("{} decisions, {} unchanged, {changed} changed ({pct:.1}%)", all.len(), all.len() - changed)
    );
    // Each transition: its count and label, then one example request;
    // most frequent first.
    let mut shown = Vec::new();
    for pair in lines[1..].chunks(2) {
        let (count, label) = pair[0].trim_start().split_once("  ").unwrap();
        let count: usize = count.parse().unwrap();
        assert_eq!(counts.get(label), Some(&count), "{label}: {stdout}");
        let example = pair[1].trim_start().strip_prefix("e.g. line ").unwrap().split_once(": ").unwrap().1;
        let example: Value = serde_json::from_str(example).unwrap();
        let want: Value = serde_json::from_str(&first[label]).unwrap();
        assert_eq!(example, want, "{label}");
        shown.push(count);
    }
    assert_eq!(shown.len(), counts.len());
    assert!(shown.windows(2).all(|w| w[0] >= w[1]), "{shown:?}");
}

#[test]
fn same_configuration_changes_nothing() {
    let dir = temp_with(&[]);
    let log = write_log(dir.path());
    let (rules, world) = (repo_file("rules.yaml"), example("world.yaml"));
    let mut args = replay_args(s(&rules), s(&log));
    args[4] = s(&world);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let n = requests().len();
    assert_eq!(text(&out.stdout), format!("{n} decisions, {n} unchanged, 0 changed (0.0%)\n"));
    assert!(out.stderr.is_empty(), "no progress bar in a pipe: {}", text(&out.stderr));
    args.extend(["--max-changed", "0"]);
    assert_eq!(run(&args, "").status.code(), Some(0));
}

#[test]
fn max_changed_gates_and_json_reports_the_same() {
    let dir = temp_with(&[("new.yaml", DEFAULT_FIRST)]);
    let log = write_log(dir.path());
    let (new, world) = (dir.path().join("new.yaml"), example("world.yaml"));
    let mut args = replay_args(s(&new), s(&log));
    args[4] = s(&world);
    args.extend(["--format", "json"]);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(text(&out.stdout).lines().count(), 1);
    let pct = report["changed_percent"].as_f64().unwrap();
    assert!(pct > 10.0 && pct < 90.0, "{report}");
    assert_eq!(report["decisions"], requests().len());
    assert_eq!(
        report["decisions"].as_u64().unwrap(),
        report["unchanged"].as_u64().unwrap() + report["changed"].as_u64().unwrap()
    );
    let t = &report["transitions"][0];
    assert!(t["count"].as_u64().unwrap() > 0 && t["old"].is_object() && t["new"].is_object());
    assert_eq!(t["label"], format!("{} → {}", t["from"].as_str().unwrap(), t["to"].as_str().unwrap()));
    assert!(t["example"]["location"].is_string(), "{t}");

    let below = format!("{}", pct.floor() - 1.0);
    let above = format!("{}%", pct.ceil());
    let mut gate = args.clone();
    gate.extend(["--max-changed", &below]);
    assert_eq!(run(&gate, "").status.code(), Some(1));
    let mut gate = args.clone();
    gate.extend(["--max-changed", &above]);
    assert_eq!(run(&gate, "").status.code(), Some(0));
    let mut bad = args.clone();
    bad.extend(["--max-changed", "lots"]);
    assert_eq!(run(&bad, "").status.code(), Some(2));
}

#[test]
fn unreadable_lines_are_counted_and_skipped_and_unreadable_logs_exit_2() {
    let dir = temp_with(&[]);
    let plan = default_plan();
    let world = switchboard::World::empty();
    let inline = r#"{"location":"popup","channel":"whatsapp","body":"Hi","instances":[{"id":"p1","channel":"whatsapp","phone":"+1 555 7000","connected":true}]}"#;
    let good = log_line(1, &plan, &world, inline);
    let unparsable_request = log_line(2, &plan, &world, "this line is not JSON");
    let log = dir.path().join("log.jsonl");
    let null_request = r#"{"request":null,"decision":{"ok":false,"rule":null,"error":{"code":100,"kind":"invalid_request","message":"x"},"trace":[]}}"#;
    let no_instance = r#"{"request":{},"decision":{"ok":true}}"#;
    let content = format!(
        "{good}\nnot json at all\n\n{{\"request\":{{}}}}\n{unparsable_request}\n{null_request}\n{no_instance}\n"
    );
    std::fs::write(&log, content).unwrap();
    let rules = repo_file("rules.yaml");
    let mut args = replay_args(s(&rules), s(&log));
    args.drain(3..5); // no --world: the request carries its instances
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "3 decisions, 3 unchanged, 0 changed (0.0%)");
    assert!(
        lines[1].starts_with(&format!(
            "3 unreadable lines skipped; the first: {}:2:2: not a decision log line",
            log.display()
        )),
        "{}",
        lines[1]
    );

    std::fs::write(&log, "{\"a\":1}\nrules: []\n").unwrap();
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no line is a decision log line"), "{}", text(&out.stderr));

    let missing = dir.path().join("missing.jsonl");
    let mut args = replay_args(s(&rules), s(&missing));
    args.drain(3..5);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.jsonl: no such file"), "{}", text(&out.stderr));

    std::fs::write(&log, "").unwrap();
    let mut args = replay_args(s(&rules), s(&log));
    args.drain(3..5);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "0 decisions, 0 unchanged, 0 changed (0.0%)\n");
}

#[test]
fn a_bad_new_rules_file_exits_2_located() {
    let dir = temp_with(&[("new.yaml", "rules:\n  - manul_override\n")]);
    let log = write_log(dir.path());
    let new = dir.path().join("new.yaml");
    let mut args = replay_args(s(&new), s(&log));
    args.drain(3..5);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("new.yaml:2:5: rules[0]: unknown rule"), "{}", text(&out.stderr));
}

/// A chain that remembers conversations (docs/capacity.md), with both overrides.
const CONVERSATION: &str = "\
rules:
  - manual_override
  - temporary_switch
  - {rule: conversation, ttl: 1h}
  - {rule: any_available, strategy: round_robin}
";

const IMESSAGE: &str = "\
locations:
  - id: shop
    instances:
      - {id: im-1, channel: imessage, index: 1, phone: '1', connected: true}
      - {id: im-2, channel: imessage, index: 2, phone: '2', connected: true}
      - {id: im-3, channel: imessage, index: 3, phone: '3', connected: true}
";

/// An iMessage request to `contact` dated `now` (none when empty).
fn imessage(contact: &str, body: &str, now: &str) -> String {
    let mut r = json!({"location": "shop", "channel": "imessage", "body": body, "contact": {"id": contact}});
    if !now.is_empty() {
        r["now"] = json!(now);
    }
    r.to_string()
}

/// `switchboard select --decision-log` over `requests`: the log's path.
fn select_log(dir: &std::path::Path, rules: &str, world: &str, requests: &[String]) -> std::path::PathBuf {
    let log = dir.join("decisions.jsonl");
    let (rules, world) = (dir.join(rules), dir.join(world));
    let input: String = requests.iter().map(|r| format!("{r}\n")).collect();
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log)], &input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    log
}

/// The decisions of a log, as `rule/instance` or `error CODE KIND`.
fn logged(log: &std::path::Path) -> Vec<String> {
    let content = std::fs::read_to_string(log).unwrap();
    content
        .lines()
        .map(|l| {
            let d = &serde_json::from_str::<Value>(l).unwrap()["decision"];
            match d["instance"]["id"].as_str() {
                Some(id) => format!("{}/{id}", d["rule"].as_str().unwrap_or("-")),
                None => format!("error {} {}", d["error"]["code"], d["error"]["kind"].as_str().unwrap()),
            }
        })
        .collect()
}

/// `replay --format json` of `log` with `rules` and `world` (in `dir`).
fn replay_json(dir: &std::path::Path, rules: &str, world: &str, log: &std::path::Path) -> Value {
    let (rules, world) = (dir.join(rules), dir.join(world));
    let out = run(&["replay", "--rules", s(&rules), "--world", s(&world), "--log", s(log), "--format", "json"], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `(label, count)` of every transition of a JSON report.
fn transitions(report: &Value) -> Vec<(String, u64)> {
    let all = report["transitions"].as_array().unwrap();
    all.iter().map(|t| (t["label"].as_str().unwrap().to_owned(), t["count"].as_u64().unwrap())).collect()
}

#[test]
fn a_conversation_log_replayed_with_its_own_rules_changes_nothing() {
    let dir = temp_with(&[("rules.yaml", CONVERSATION), ("world.yaml", IMESSAGE)]);
    let at = |minute: u32| format!("2026-11-25T14:{minute:02}:00Z");
    let mut requests: Vec<String> = Vec::new();
    for (n, contact) in ["a", "b", "c", "a", "b", "c", "d", "a", "d"].iter().enumerate() {
        requests.push(imessage(contact, "hi", &at(n as u32)));
    }
    // A temporary switch carries one message and is not remembered.
    requests.push(imessage("a", "hi {TEMP-IM#3}", &at(10)));
    requests.push(imessage("a", "hi", &at(11)));
    // An override moves the conversation.
    requests.push(imessage("b", "hi {IM#1}", &at(12)));
    requests.push(imessage("b", "hi", &at(13)));
    let log = select_log(dir.path(), "rules.yaml", "world.yaml", &requests);
    let decided = logged(&log);
    assert_eq!(
        decided,
        [
            "any_available/im-1",
            "any_available/im-2",
            "any_available/im-3",
            "conversation/im-1",
            "conversation/im-2",
            "conversation/im-3",
            "any_available/im-1",
            "conversation/im-1",
            "conversation/im-1",
            "temporary_switch/im-3",
            "conversation/im-1",
            "manual_override/im-1",
            "conversation/im-1",
        ]
    );
    let report = replay_json(dir.path(), "rules.yaml", "world.yaml", &log);
    assert_eq!((report["decisions"].as_u64(), report["changed"].as_u64()), (Some(13), Some(0)), "{report}");
}

#[test]
fn conversation_memory_comes_from_the_logged_decisions_not_the_replayed_ones() {
    let without_override = CONVERSATION.replace("  - manual_override\n", "");
    let dir = temp_with(&[("rules.yaml", CONVERSATION), ("new.yaml", &without_override), ("world.yaml", IMESSAGE)]);
    let requests = [
        imessage("a", "hi {IM#3}", "2026-11-25T14:00:00Z"),
        imessage("a", "hi", "2026-11-25T14:01:00Z"),
        imessage("a", "hi", "2026-11-25T14:02:00Z"),
    ];
    let log = select_log(dir.path(), "rules.yaml", "world.yaml", &requests);
    assert_eq!(logged(&log), ["manual_override/im-3", "conversation/im-3", "conversation/im-3"]);
    // Without `manual_override` the first message goes elsewhere, but the
    // log says im-3 carried it: the conversation stays there.
    let report = replay_json(dir.path(), "new.yaml", "world.yaml", &log);
    assert_eq!(transitions(&report), [("manual_override/im-3 → any_available/im-1".to_owned(), 1)], "{report}");
    assert_eq!(report["unchanged"], 2);
}

#[test]
fn requests_without_now_are_decided_as_of_their_logged_time() {
    // Logged at these times, without `now` in the request: memory expires
    // an hour after the last message, by the log's clock.
    let plan = switchboard::compile_rules(CONVERSATION, std::path::Path::new("rules.yaml"), &registry()).unwrap();
    let w = world(IMESSAGE);
    let times = ["2026-11-25T14:00:00Z", "2026-11-25T14:30:00Z", "2026-11-25T14:30:00Z", "2026-11-25T16:00:00Z"];
    let mut lines = Vec::new();
    let mut decided = Vec::new();
    for (n, (contact, time)) in ["a", "a", "b", "a"].iter().zip(times).enumerate() {
        let d = switchboard::decide_text(&imessage(contact, "hi", time), |r| plan.select(&w, r));
        decided.push(label(&d));
        let decision: Value = serde_json::from_str(&d.to_json()).unwrap();
        let request: Value = serde_json::from_str(&imessage(contact, "hi", "")).unwrap();
        lines.push(json!({"decision_id": format!("d{n}"), "time": time, "request": request, "decision": decision}));
    }
    assert_eq!(decided, ["any_available/im-1", "conversation/im-1", "any_available/im-2", "any_available/im-3"]);
    let dir = temp_with(&[("rules.yaml", CONVERSATION), ("world.yaml", IMESSAGE)]);
    let log = dir.path().join("decisions.jsonl");
    std::fs::write(&log, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    let report = replay_json(dir.path(), "rules.yaml", "world.yaml", &log);
    assert_eq!(report["changed"], 0, "{report}");
}

const UNLIMITED: &str = "\
locations:
  - id: shop
    instances:
      - {id: wa-1, channel: whatsapp, index: 1, phone: '1', connected: true}
      - {id: wa-2, channel: whatsapp, index: 2, phone: '2', connected: true}
";

/// Ten WhatsApp requests in one day, to contacts `contacts[i % len]`.
fn ten_requests(contacts: &[&str]) -> Vec<String> {
    (0..10)
        .map(|i| {
            json!({"location": "shop", "channel": "whatsapp", "body": "hi",
                   "contact": {"id": contacts[i % contacts.len()]}, "now": format!("2026-11-25T14:{i:02}:00Z")})
            .to_string()
        })
        .collect()
}

#[test]
fn new_limits_are_measured_against_the_logs_own_traffic() {
    let limited = UNLIMITED
        .replace("connected: true}\n      - {id: wa-2", "connected: true, limits: {per_day: 4}}\n      - {id: wa-2");
    let alone = "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, index: 1, phone: '1', connected: true, limits: {per_day: 4}}\n";
    let pooled = "\
locations:
  - id: shop
    pools: [{id: brand, limits: {per_day: 4}}]
    instances:
      - {id: wa-1, channel: whatsapp, index: 1, phone: '1', connected: true, pool: brand}
      - {id: wa-2, channel: whatsapp, index: 2, phone: '2', connected: true, pool: brand}
      - {id: wa-3, channel: whatsapp, index: 3, phone: '3', connected: true}
";
    let dir = temp_with(&[
        ("rules.yaml", "rules: [any_available]\n"),
        ("world.yaml", UNLIMITED),
        ("limited.yaml", &limited),
        ("alone.yaml", alone),
        ("pooled.yaml", pooled),
    ]);
    let requests = ten_requests(&["c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"]);
    let log = select_log(dir.path(), "rules.yaml", "world.yaml", &requests);
    assert!(logged(&log).iter().all(|d| d == "any_available/wa-1"), "{:?}", logged(&log));
    // wa-1 took 10 decisions that day; with room for 4, the other 6 move…
    let report = replay_json(dir.path(), "rules.yaml", "limited.yaml", &log);
    assert_eq!(transitions(&report), [("any_available/wa-1 → any_available/wa-2".to_owned(), 6)], "{report}");
    assert_eq!(report["transitions"][0]["example_line"], 5);
    // …or find nowhere to go…
    let report = replay_json(dir.path(), "rules.yaml", "alone.yaml", &log);
    let exhausted = "any_available/wa-1 → error 106 capacity_exhausted";
    assert_eq!(transitions(&report), [(exhausted.to_owned(), 6)], "{report}");
    // …and a pool counts what its instances took.
    let report = replay_json(dir.path(), "rules.yaml", "pooled.yaml", &log);
    assert_eq!(transitions(&report), [("any_available/wa-1 → any_available/wa-3".to_owned(), 6)], "{report}");
}

#[test]
fn contacts_per_day_counts_the_contacts_the_log_messaged() {
    let limited = UNLIMITED.replace(
        "connected: true}\n      - {id: wa-2",
        "connected: true, limits: {contacts_per_day: 3}}\n      - {id: wa-2",
    );
    let dir =
        temp_with(&[("rules.yaml", "rules: [any_available]\n"), ("world.yaml", UNLIMITED), ("limited.yaml", &limited)]);
    // c0…c4, then c0…c4 again: all on wa-1 in the log.
    let log = select_log(dir.path(), "rules.yaml", "world.yaml", &ten_requests(&["c0", "c1", "c2", "c3", "c4"]));
    // With room for 3 contacts, c3 and c4 are new contacts refused on their
    // first message; their second message reaches a contact the log had
    // wa-1 message that day, which passes, as c0…c2 do.
    let report = replay_json(dir.path(), "rules.yaml", "limited.yaml", &log);
    assert_eq!(transitions(&report), [("any_available/wa-1 → any_available/wa-2".to_owned(), 2)], "{report}");
    assert_eq!(report["transitions"][0]["example_line"], 4);
}

#[test]
fn replay_never_uses_the_configured_store() {
    // Nothing listens on port 1: any call to that Redis would answer 108.
    let redis = format!("{CONVERSATION}capacity: {{store: redis, redis_url: 'redis://127.0.0.1:1/0'}}\n");
    let limited =
        IMESSAGE.replace("phone: '1', connected: true}", "phone: '1', connected: true, limits: {per_day: 2}}");
    let dir = temp_with(&[("rules.yaml", CONVERSATION), ("redis.yaml", &redis), ("world.yaml", &limited)]);
    let requests: Vec<String> = ["a", "b", "c", "d", "a", "b", "e", "d"]
        .iter()
        .enumerate()
        .map(|(n, c)| imessage(c, "hi", &format!("2026-11-25T14:{n:02}:00Z")))
        .collect();
    let log = select_log(dir.path(), "rules.yaml", "world.yaml", &requests);
    assert!(logged(&log).iter().any(|d| d.starts_with("conversation/")), "{:?}", logged(&log));
    let report = replay_json(dir.path(), "redis.yaml", "world.yaml", &log);
    assert_eq!((report["decisions"].as_u64(), report["changed"].as_u64()), (Some(8), Some(0)), "{report}");
    assert!(!report.to_string().contains("108"), "{report}");
}
