//! Live state (docs/live-state.md) and the correlation `message_id` (docs/world.md):
//! through the real binary (`select`, `record`, `serve` on a real port) and
//! the library.

use serde_json::{json, Value};

use crate::serve::{post, Server};
use crate::util::{example, repo_file, run, s, text};

fn json_lines(out: &[u8]) -> Vec<Value> {
    text(out).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn select_carries_the_message_id_back_on_every_decision() {
    let rules = repo_file("rules.yaml");
    let world = example("world.yaml");
    let input = concat!(
        r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#2 }","message_id":"crm-1"}"#,
        "\n",
        r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#4 }","message_id":"crm-2"}"#,
        "\n",
        r#"{"location":"shop","channel":"whatsapp","message_id":"crm-3"}"#,
        "\n",
        r#"{"location":"shop","channel":"sms","body":"x","message_id":12}"#,
        "\n",
        r#"{"location":"shop","channel":"sms","body":"x"}"#,
        "\n",
    );
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 5);
    assert_eq!((lines[0]["ok"].clone(), lines[0]["message_id"].clone()), (json!(true), json!("crm-1")));
    assert_eq!((lines[1]["error"]["code"].clone(), lines[1]["message_id"].clone()), (json!(101), json!("crm-2")));
    // A request that cannot be read still carries the id it gave.
    assert_eq!((lines[2]["error"]["code"].clone(), lines[2]["message_id"].clone()), (json!(100), json!("crm-3")));
    // A wrong-typed id is a code-100 naming the field, and carries none.
    assert_eq!(lines[3]["error"]["code"], 100);
    assert!(lines[3]["error"]["message"].as_str().unwrap().contains("message_id"), "{}", lines[3]);
    assert!(lines[3].get("message_id").is_none());
    assert!(lines[4].get("message_id").is_none(), "no id, no field: {}", lines[4]);
}

#[test]
fn a_message_id_over_256_bytes_is_refused_naming_the_field() {
    let rules = repo_file("rules.yaml");
    let world = example("world.yaml");
    let dir = tempfile::tempdir().unwrap();
    let request = dir.path().join("request.json");
    let long = "m".repeat(257);
    std::fs::write(&request, format!(r#"{{"location":"shop","channel":"sms","body":"x","message_id":"{long}"}}"#))
        .unwrap();
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world), "--request", s(&request)], "");
    assert_eq!(out.status.code(), Some(1));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["error"]["code"], 100);
    assert_eq!(decision["error"]["kind"], "invalid_request");
    let message = decision["error"]["message"].as_str().unwrap();
    assert!(message.contains("`message_id` is 257 bytes; the limit is 256"), "{message}");
    let exact = "m".repeat(256);
    std::fs::write(&request, format!(r#"{{"location":"shop","channel":"sms","body":"x","message_id":"{exact}"}}"#))
        .unwrap();
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world), "--request", s(&request)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let decision: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(decision["message_id"], exact.as_str());
}

#[test]
fn the_decision_log_line_carries_the_message_id() {
    let rules = repo_file("rules.yaml");
    let world = example("world.yaml");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let input = concat!(
        r#"{"location":"shop","channel":"sms","body":"x","message_id":"crm-7"}"#,
        "\n",
        r#"{"location":"shop","channel":"sms","message_id":"crm-8"}"#,
        "\n",
    );
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log)], input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = json_lines(&std::fs::read(&log).unwrap());
    assert_eq!(lines.len(), 2);
    for (line, id) in lines.iter().zip(["crm-7", "crm-8"]) {
        assert_eq!(line["message_id"], id, "{line}");
        assert_eq!(line["decision"]["message_id"], id, "{line}");
    }
}

#[test]
fn serve_answers_and_logs_the_message_id() {
    let rules = repo_file("rules.yaml");
    let world = example("world.yaml");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("decisions.jsonl");
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world), "--decision-log", s(&log)]);
    let (status, decision) =
        post(&server.url("/v1/select"), r#"{"location":"shop","channel":"sms","body":"x","message_id":"crm-1"}"#);
    assert_eq!((status, decision["message_id"].clone()), (200, json!("crm-1")));
    let (status, decision) = post(&server.url("/v1/select"), r#"{"location":"shop","body":"x","message_id":"crm-2"}"#);
    assert_eq!((status, decision["message_id"].clone()), (400, json!("crm-2")));
    assert_eq!(decision["error"]["code"], 100);
    let lines = wait_lines(&log, 2);
    drop(server);
    let ids: Vec<&Value> = lines.iter().map(|l| &l["message_id"]).collect();
    assert_eq!(ids, [&json!("crm-1"), &json!("crm-2")]);
}

/// The lines of a log file once it holds `n` (the writer flushes whenever
/// its queue is empty), with a deadline.
fn wait_lines(path: &std::path::Path, n: usize) -> Vec<Value> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines = std::fs::read(path).map(|b| json_lines(&b)).unwrap_or_default();
        if lines.len() >= n {
            return lines;
        }
        assert!(std::time::Instant::now() < end, "{} lines never came: {lines:?}", n);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A `Live` on copies of the repository's rules and the example world.
fn live() -> (tempfile::TempDir, switchboard::Live) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    let world = dir.path().join("world.yaml");
    std::fs::copy(repo_file("rules.yaml"), &rules).unwrap();
    std::fs::copy(example("world.yaml"), &world).unwrap();
    let live = switchboard::Live::open(crate::util::registry(), &rules, Some(&world)).unwrap();
    (dir, live)
}

fn pick(live: &switchboard::Live, body: &str, now: &str) -> String {
    let json = format!(r#"{{"location":"shop","channel":"whatsapp","body":"{body}","now":"{now}"}}"#);
    crate::util::summary(&live.select(&crate::util::request(&json)))
}

fn status_event(instance: &str, connected: &str, extra: &str) -> String {
    format!(r#"{{"type":"instance_status","location":"shop","instance":"{instance}","connected":{connected}{extra}}}"#)
}

#[test]
fn an_overridden_down_instance_is_disconnected_and_an_overridden_up_one_connected() {
    let (_dir, live) = live();
    let now = "2026-12-07T15:00:00Z";
    assert_eq!(pick(&live, "{ WA#1 }", now), "wa-orders");
    assert_eq!(pick(&live, "{ WA#4 }", now), "101/instance_disconnected");
    let recorded = live.record(&format!(
        "{}\n{}\n",
        status_event("wa-orders", "false", r#","reason":"logged out","time":"2026-12-07T14:00:00Z""#),
        status_event("wa-legacy", "true", r#","time":"2026-12-07T14:00:00Z""#)
    ));
    assert_eq!(recorded.to_json(), json!({"accepted": 2, "rejected": []}));
    assert_eq!(pick(&live, "{ WA#1 }", now), "101/instance_disconnected");
    assert_eq!(pick(&live, "{ WA#4 }", now), "wa-legacy");
    // Other locations and channels are untouched.
    let other = crate::util::request(r#"{"location":"agency","channel":"whatsapp","body":"{ WA#1 }"}"#);
    assert_eq!(crate::util::summary(&live.select(&other)), "wa-client-a");
}

#[test]
fn an_override_with_a_ttl_lapses_and_null_clears_one() {
    let (_dir, live) = live();
    let event = status_event("wa-orders", "false", r#","ttl":"30m","time":"2026-12-07T15:00:00Z""#);
    assert_eq!(live.record(&event).to_json()["accepted"], 1);
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:29:59Z"), "101/instance_disconnected");
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:30:00Z"), "wa-orders", "lapsed at time + ttl");
    let down = status_event("wa-orders", "false", r#","time":"2026-12-07T16:00:00Z""#);
    assert_eq!(live.record(&down).to_json()["accepted"], 1);
    assert_eq!(pick(&live, "{ WA#1 }", "2027-06-01T00:00:00Z"), "101/instance_disconnected", "no ttl: holds");
    let clear = status_event("wa-orders", "null", r#","time":"2026-12-07T16:05:00Z""#);
    assert_eq!(live.record(&clear).to_json()["accepted"], 1);
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T16:06:00Z"), "wa-orders", "cleared: the file's value");
}

#[test]
fn a_stale_status_event_is_accepted_and_ignored() {
    let (_dir, live) = live();
    let now = "2026-12-07T17:00:00Z";
    live.record(&status_event("wa-orders", "false", r#","time":"2026-12-07T16:00:00Z""#));
    let older = status_event("wa-orders", "true", r#","time":"2026-12-07T15:00:00Z""#);
    assert_eq!(live.record(&older).to_json(), json!({"accepted": 1, "rejected": []}));
    assert_eq!(pick(&live, "{ WA#1 }", now), "101/instance_disconnected", "the older event changed nothing");
    // A clear counts as applied: an event older than the clear is stale too.
    live.record(&status_event("wa-orders", "null", r#","time":"2026-12-07T16:30:00Z""#));
    live.record(&status_event("wa-orders", "false", r#","time":"2026-12-07T16:10:00Z""#));
    assert_eq!(pick(&live, "{ WA#1 }", now), "wa-orders");
}

#[test]
fn overrides_survive_reloads_of_both_files() {
    let (dir, live) = live();
    live.record(&status_event("wa-orders", "false", ""));
    let now = "2026-12-07T15:00:00Z";
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, "rules: [manual_override, any_available]\n").unwrap();
    let world = dir.path().join("world.yaml");
    let text = std::fs::read_to_string(&world).unwrap().replace("wa-billing", "wa-invoices");
    std::fs::write(&world, text).unwrap();
    assert!(matches!(live.reload(), switchboard::ReloadEvent::Reloaded { generation: 2 }));
    assert_eq!(pick(&live, "{ WA#1 }", now), "101/instance_disconnected");
    assert_eq!(pick(&live, "{ WA#3 }", now), "wa-invoices");
}

#[test]
fn events_naming_what_the_world_lacks_are_rejected_and_the_rest_applied() {
    let (_dir, live) = live();
    let body = [
        status_event("wa-orders", "false", ""),
        r#"{"type":"instance_status","location":"nowhere","instance":"wa-orders","connected":false}"#.to_owned(),
        status_event("wa-order", "false", ""),
        String::new(),
        r#"{"type":"inbound","location":"shop","channel":"sms","instance":"wa-orders","contact":"c-1"}"#.to_owned(),
        r#"{"type":"delivery","location":"shop","instance":"wa-support","status":"delivered"}"#.to_owned(),
    ]
    .join("\n");
    let recorded = live.record(&body).to_json();
    assert_eq!(recorded["accepted"], 2, "{recorded}");
    let rejected = recorded["rejected"].as_array().unwrap();
    let lines: Vec<&Value> = rejected.iter().map(|r| &r["line"]).collect();
    assert_eq!(lines, [&json!(2), &json!(3), &json!(5)]);
    let messages: Vec<&str> = rejected.iter().map(|r| r["message"].as_str().unwrap()).collect();
    assert!(messages[0].contains("location `nowhere` is not in the world in force"), "{}", messages[0]);
    assert!(messages[1].contains("has no instance `wa-order` (did you mean `wa-orders`?)"), "{}", messages[1]);
    assert!(messages[2].contains("is on whatsapp, not on `sms`"), "{}", messages[2]);
    assert_eq!(pick(&live, "{ WA#1 }", "2026-12-07T15:00:00Z"), "101/instance_disconnected", "line 1 applied");
}

mod property {
    use proptest::prelude::*;

    const SHOP: [&str; 7] =
        ["wa-orders", "wa-support", "wa-billing", "wa-legacy", "im-support", "im-billing", "sms-main"];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever the overrides, the body, the contact and the chain, an
        /// instance overridden down is never selected.
        #[test]
        fn an_overridden_down_instance_is_never_selected(
            states in prop::collection::vec(prop::option::of(any::<bool>()), SHOP.len()),
            channel in prop::sample::select(vec!["whatsapp", "imessage", "sms"]),
            pattern in prop::sample::select(vec!["", "{ WA#1 }", "{ WA#2 }", "{WA#4}", "{IM#1}", "{TEMP-IM#2}", "{IM#2}"]),
            tags in prop::collection::vec(prop::sample::select(vec!["wa: +1-555-ORDERS", "wa: +1-555-0104", "im: +1-555-0202", "sms: +1-555-0301"]), 0..3),
            user in prop::option::of(Just("u_orders")),
            skip in any::<bool>(),
        ) {
            let (_dir, live) = super::live();
            if skip {
                let rules = _dir.path().join("rules.yaml");
                std::fs::write(&rules, "rules:\n  - {rule: manual_override, on_unavailable: skip}\n  - {rule: contact_tag, on_unavailable: skip}\n  - {rule: user_assignment, on_unavailable: skip}\n  - default_instance\n  - any_available\n").unwrap();
                live.reload();
            }
            let mut body = String::new();
            for (id, state) in SHOP.iter().zip(&states) {
                if let Some(connected) = state {
                    body.push_str(&super::status_event(id, &connected.to_string(), ""));
                    body.push('\n');
                }
            }
            let recorded = live.record(&body);
            prop_assert!(recorded.rejected.is_empty(), "{:?}", recorded.rejected);
            let request = serde_json::json!({
                "location": "shop", "channel": channel, "body": format!("hi {pattern}"),
                "contact": {"id": "c1", "tags": tags, "assigned_user": user},
            });
            let decision = live.select(&crate::util::request(&request.to_string()));
            if let Some(chosen) = decision.instance() {
                let n = SHOP.iter().position(|id| *id == chosen.id()).unwrap();
                prop_assert_ne!(states[n], Some(false), "{} was overridden down: {}", chosen.id(), decision.to_json());
                prop_assert!(chosen.is_connected());
            }
        }
    }
}

fn send(server: &Server, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String) {
    let agent = crate::serve::agent();
    let url = server.url(path);
    let response = match method {
        "GET" => {
            let mut request = agent.get(&url);
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            request.call()
        }
        _ => {
            let mut request = agent.post(&url);
            if let Some(token) = token {
                request = request.header("Authorization", format!("Bearer {token}"));
            }
            request.send(body)
        }
    };
    crate::serve::answer(response.unwrap())
}

#[test]
fn serve_takes_events_shows_instances_counts_them_and_logs_them_for_replay() {
    let (dir, _live) = live();
    let rules = dir.path().join("rules.yaml");
    let world = dir.path().join("world.yaml");
    let log = dir.path().join("decisions.jsonl");
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let server = Server::start(&[
        "--rules",
        s(&rules),
        "--world",
        s(&world),
        "--decision-log",
        s(&log),
        "--admin-token-file",
        s(&token),
        "--max-body-bytes",
        "4096",
    ]);
    let select = r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#1 }"}"#;
    let (_, first) = post(&server.url("/v1/select"), select);
    assert_eq!(first["instance"]["id"], "wa-orders");
    let down = status_event("wa-orders", "false", r#","reason":"logged out","ttl":"1d""#);
    let body = format!("{down}\n{{\"type\":\"nap\"}}\n");
    // An admin route: the token or 401.
    assert_eq!(send(&server, "POST", "/v1/events", None, body.as_bytes()).0, 401);
    assert_eq!(send(&server, "POST", "/v1/events", Some("wrong"), body.as_bytes()).0, 401);
    let (status, answer) = send(&server, "POST", "/v1/events", Some("s3cret"), body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"][0]["line"], 2);
    assert!(answer["rejected"][0]["message"].as_str().unwrap().contains("unknown event type `nap`"));
    // Empty, not UTF-8, oversized.
    assert_eq!(send(&server, "POST", "/v1/events", Some("s3cret"), b"").0, 400);
    assert_eq!(send(&server, "POST", "/v1/events", Some("s3cret"), b" \n").0, 400);
    assert_eq!(send(&server, "POST", "/v1/events", Some("s3cret"), b"{\"type\":\"\xff\"}").0, 400);
    let huge = format!("{down}\n").repeat(100);
    assert_eq!(send(&server, "POST", "/v1/events", Some("s3cret"), huge.as_bytes()).0, 413);
    // The decision sees the override.
    let (_, second) = post(&server.url("/v1/select"), select);
    assert_eq!(
        (second["error"]["code"].clone(), second["error"]["kind"].clone()),
        (json!(101), json!("instance_disconnected"))
    );
    // Explain shows the override.
    let (_, explained) = post(&server.url("/v1/explain"), select);
    let table = explained["table"].as_str().unwrap();
    assert!(table.contains("live state  as of "), "{table}");
    assert!(table.contains("wa-orders  disconnected (the file says connected): logged out, since "), "{table}");
    // GET /v1/instances.
    let (status, page) = send(&server, "GET", "/v1/instances?location=shop", None, b"");
    assert_eq!(status, 200, "{page}");
    let shop: Value = serde_json::from_str(&page).unwrap();
    assert_eq!((shop["location"].clone(), shop["generation"].clone()), (json!("shop"), json!(1)));
    let orders = &shop["instances"][0];
    assert_eq!(orders["id"], "wa-orders");
    assert_eq!((orders["channel"].clone(), orders["index"].clone()), (json!("whatsapp"), json!(1)));
    assert_eq!((orders["connected"].clone(), orders["connected_in_file"].clone()), (json!(false), json!(true)));
    assert_eq!(orders["override"]["connected"], false);
    assert_eq!(orders["override"]["reason"], "logged out");
    let (time, until) = (orders["override"]["time"].as_str().unwrap(), orders["override"]["until"].as_str().unwrap());
    let (time, until): (switchboard::capacity::jiff::Timestamp, switchboard::capacity::jiff::Timestamp) =
        (time.parse().unwrap(), until.parse().unwrap());
    assert_eq!(until.as_second() - time.as_second(), 86_400);
    for field in ["health", "warmup"] {
        assert!(orders[field].is_null(), "{field}: {orders}");
    }
    assert_eq!(orders["usage"], json!({}));
    let support = &shop["instances"][1];
    assert_eq!((support["connected"].clone(), support["override"].clone()), (json!(true), Value::Null));
    assert_eq!(send(&server, "GET", "/v1/instances", None, b"").0, 400);
    assert_eq!(send(&server, "GET", "/v1/instances?location=", None, b"").0, 400);
    assert_eq!(send(&server, "GET", "/v1/instances?location=nowhere", None, b"").0, 404);
    // Status and metrics.
    let (_, status) = crate::serve::get(&server.url("/v1/status"));
    assert_eq!(status["live"]["overridden"], 1, "{status}");
    let (_, page) = crate::serve::get_text(&server.url("/metrics"));
    let metrics = crate::serve::parse_metrics(&page);
    assert_eq!(
        metrics.get(r#"switchboard_events_total{type="instance_status",result="accepted"}"#),
        Some(&1.0),
        "{page}"
    );
    assert_eq!(metrics.get(r#"switchboard_events_total{type="unknown",result="rejected"}"#), Some(&1.0), "{page}");
    // The log: decision, event, decision; replay applies the event between
    // them, so nothing changes.
    let lines = wait_lines(&log, 3);
    drop(server);
    assert!(lines[0].get("decision").is_some());
    assert_eq!(lines[1]["event"]["type"], "instance_status");
    assert_eq!(lines[1]["event"]["instance"], "wa-orders");
    assert!(lines[1]["event"]["time"].is_string() && lines[1]["time"].is_string(), "{}", lines[1]);
    let out = run(&["replay", "--rules", s(&rules), "--world", s(&world), "--log", s(&log)], "");
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with("2 decisions, 2 unchanged, 0 changed"), "{}", text(&out.stdout));
    // Without the event line the second decision would change.
    let without: String = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"event\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&log, without).unwrap();
    let out = run(&["replay", "--rules", s(&rules), "--world", s(&world), "--log", s(&log)], "");
    assert!(text(&out.stdout).starts_with("2 decisions, 1 unchanged, 1 changed"), "{}", text(&out.stdout));
}

#[test]
fn record_applies_events_and_exits_0_1_or_2() {
    let (dir, _live) = live();
    let rules = dir.path().join("rules.yaml");
    let world = dir.path().join("world.yaml");
    let events = dir.path().join("events.jsonl");
    std::fs::write(&events, format!("{}\n", status_event("wa-orders", "false", ""))).unwrap();
    let out = run(&["record", "--rules", s(&rules), "--world", s(&world), s(&events)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("end with this command"), "the memory store: {}", text(&out.stderr));
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!({"accepted": 1, "rejected": []}));
    let input = format!("{}\n{}\n", status_event("wa-orders", "false", ""), status_event("wa-nope", "true", ""));
    let out = run(&["record", "--rules", s(&rules), "--world", s(&world), "-"], &input);
    assert_eq!(out.status.code(), Some(1));
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((answer["accepted"].clone(), answer["rejected"][0]["line"].clone()), (json!(1), json!(2)));
    assert!(answer["rejected"][0]["message"].as_str().unwrap().contains("has no instance `wa-nope`"));
    // Without a world, every event names a location it lacks.
    let out = run(&["record", "--rules", s(&rules)], &input);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&["record", "--rules", s(&dir.path().join("missing.yaml")), s(&events)], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.yaml"), "{}", text(&out.stderr));
    let out = run(&["record", "--rules", s(&rules), s(&dir.path().join("none.jsonl"))], "");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_inbound_message_becomes_the_contacts_conversation_instance() {
    let (dir, live) = live();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules: [manual_override, {rule: conversation, ttl: 1d}, default_instance, any_available]\n",
    )
    .unwrap();
    assert!(matches!(live.reload(), switchboard::ReloadEvent::Reloaded { .. }));
    let ask = |contact: &str, now: &str| {
        let json = format!(
            r#"{{"location":"shop","channel":"whatsapp","body":"hi","contact":{{"id":"{contact}"}},"now":"{now}"}}"#
        );
        crate::util::summary(&live.select(&crate::util::request(&json)))
    };
    let inbound = |instance: &str, time: &str| {
        format!(
            r#"{{"type":"inbound","location":"shop","channel":"whatsapp","instance":"{instance}","contact":"c-7","time":"{time}"}}"#
        )
    };
    assert_eq!(live.record(&inbound("wa-billing", "2026-12-07T15:00:00Z")).to_json()["accepted"], 1);
    assert_eq!(ask("c-7", "2026-12-07T15:10:00Z"), "wa-billing", "the conversation rule recalls the inbound");
    assert_eq!(ask("c-8", "2026-12-07T15:10:00Z"), "wa-support", "another contact: the default");
    // Every selection is remembered too: the memory is renewed at 15:10.
    assert_eq!(ask("c-7", "2026-12-08T15:10:01Z"), "wa-support", "kept for the rule's ttl, then gone");
    // The selection at 15:10:01 is more recent than an inbound dated 15:00.
    assert_eq!(live.record(&inbound("wa-orders", "2026-12-08T15:00:00Z")).to_json()["accepted"], 1);
    assert_eq!(ask("c-7", "2026-12-08T15:20:00Z"), "wa-support");
    live.record(&inbound("wa-orders", "2026-12-08T15:30:00Z"));
    assert_eq!(ask("c-7", "2026-12-08T15:40:00Z"), "wa-orders");
}

/// Two `serve` processes on one Redis: an event posted to one is in force
/// in the other within a second, and a process started afterwards finds
/// it; the location's state sits under its hash tag.
#[test]
fn a_fleet_on_redis_sees_an_event_within_a_second_and_after_a_restart() {
    let redis = crate::redis_server::RedisServer::start();
    let dir = crate::util::temp_with(&[
        (
            "rules.yaml",
            &format!(
                "rules: [manual_override, any_available]\ncapacity: {{store: redis, redis_url: '{}', key_prefix: 'live:'}}\n",
                redis.url()
            ),
        ),
        ("world.yaml", &std::fs::read_to_string(example("world.yaml")).unwrap()),
    ]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let args = ["--rules", s(&rules), "--world", s(&world)];
    let (a, b) = (Server::start(&args), Server::start(&args));
    let select = r#"{"location":"shop","channel":"whatsapp","body":"{ WA#1 }"}"#;
    let pick = |server: &Server| {
        let (_, d) = post(&server.url("/v1/select"), select);
        d["instance"]["id"].as_str().map_or_else(|| format!("{}", d["error"]["kind"]), str::to_owned)
    };
    assert_eq!(pick(&b), "wa-orders");
    let (status, answer) = post(&a.url("/v1/events"), &status_event("wa-orders", "false", ""));
    assert_eq!((status, answer["accepted"].clone()), (200, json!(1)), "{answer}");
    assert_eq!(pick(&a), r#""instance_disconnected""#, "the process that took it: at once");
    let posted = std::time::Instant::now();
    while pick(&b) != r#""instance_disconnected""# {
        assert!(posted.elapsed() < std::time::Duration::from_secs(1), "b never saw the event");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(b);
    let c = Server::start(&args);
    assert_eq!(pick(&c), r#""instance_disconnected""#, "a restarted process finds it");
    let (_, shop) = crate::serve::get(&c.url("/v1/instances?location=shop"));
    assert_eq!(shop["instances"][0]["override"]["connected"], false);
    assert_eq!(crate::serve::get(&c.url("/v1/status")).1["live"]["overridden"], 1);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    std::io::Write::write_all(&mut stream, b"*2\r\n$6\r\nEXISTS\r\n$16\r\nlive:{shop}:live\r\n").unwrap();
    let mut reply = [0u8; 8];
    let n = std::io::Read::read(&mut stream, &mut reply).unwrap();
    assert_eq!(&reply[..n], b":1\r\n");
}

/// Replay on several workers, in small chunks: every decision before an
/// event line is made without it and every decision after it with it.
#[test]
fn replay_applies_an_event_line_between_the_decisions_around_it_on_every_worker() {
    let registry = crate::util::registry();
    let plan = switchboard::load_rules(repo_file("rules.yaml"), &registry).unwrap();
    let world = switchboard::load_world(example("world.yaml"), &plan).unwrap();
    let request = r#"{"location":"shop","channel":"whatsapp","body":"Hi { WA#1 }"}"#;
    let selected = r#"{"ok":true,"rule":"manual_override","instance":{"id":"wa-orders"}}"#;
    let refused = r#"{"ok":false,"rule":"manual_override","error":{"code":101,"kind":"instance_disconnected"}}"#;
    let line = |decision: &str| {
        format!(r#"{{"time":"2026-12-07T15:00:00Z","request":{request},"decision":{decision}}}"#) + "\n"
    };
    let event = format!(
        r#"{{"time":"2026-12-07T15:00:00Z","event":{}}}"#,
        status_event("wa-orders", "false", r#","time":"2026-12-07T15:00:00Z""#)
    ) + "\n";
    let with: String =
        (0..1000).map(|_| line(selected)).chain([event]).chain((0..1000).map(|_| line(refused))).collect();
    let without: String = with.lines().filter(|l| !l.contains("\"event\"")).map(|l| format!("{l}\n")).collect();
    let options = switchboard::replay::Options { workers: 4, chunk: 7, ..Default::default() };
    let run = |log: &str| switchboard::replay::replay(&plan, &world, log.as_bytes(), &options, &|_| {}).unwrap();
    let summary = run(&with);
    assert_eq!((summary.decisions, summary.changed, summary.unreadable), (2000, 0, 0), "{}", summary.headline());
    let summary = run(&without);
    assert_eq!((summary.decisions, summary.changed), (2000, 1000), "{}", summary.headline());
}

#[test]
fn an_inbound_memory_lasts_7_days_without_a_conversation_rule_and_instances_show_usage() {
    let (dir, live) = live();
    let inbound = |contact: &str| {
        format!(
            r#"{{"type":"inbound","location":"shop","channel":"whatsapp","instance":"wa-billing","contact":"{contact}","time":"2025-12-01T12:00:00Z"}}"#
        )
    };
    // The chain has no `conversation` rule: the memory is kept 7 days.
    assert_eq!(live.record(&format!("{}\n{}\n", inbound("c-7"), inbound("c-8"))).to_json()["accepted"], 2);
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules: [{rule: conversation, ttl: 30d}, default_instance, any_available]\n",
    )
    .unwrap();
    let world = dir.path().join("world.yaml");
    let text = std::fs::read_to_string(&world)
        .unwrap()
        .replace("connected: true, default: true}", "connected: true, default: true, limits: {per_day: 50}}");
    std::fs::write(&world, text).unwrap();
    assert!(matches!(live.reload(), switchboard::ReloadEvent::Reloaded { .. }));
    let ask = |contact: &str, now: &str| {
        let json = format!(
            r#"{{"location":"shop","channel":"whatsapp","body":"hi","contact":{{"id":"{contact}"}},"now":"{now}"}}"#
        );
        crate::util::summary(&live.select(&crate::util::request(&json)))
    };
    assert_eq!(ask("c-7", "2025-12-08T11:59:00Z"), "wa-billing");
    assert_eq!(ask("c-8", "2025-12-08T12:00:01Z"), "wa-support", "7 days after the inbound: gone");
    // /v1/instances' usage: each limit in force with its count today (a
    // decision on the clock counts today; the dates above are in a past
    // year, so their decisions never fall on today's day).
    let now = crate::util::request(r#"{"location":"shop","channel":"whatsapp","body":"hi","contact":{"id":"c-9"}}"#);
    assert_eq!(crate::util::summary(&live.select(&now)), "wa-support");
    let shop = live.instances("shop").unwrap();
    let support = shop["instances"].as_array().unwrap().iter().find(|i| i["id"] == "wa-support").unwrap();
    assert_eq!(support["usage"], json!({"per_day": {"used": 1, "limit": 50}}), "{support}");
    assert_eq!(shop["instances"][0]["usage"], json!({}), "no limits: nothing to show");
}

#[test]
fn an_inbound_message_exempts_the_contact_from_the_send_window_for_exempt_replies() {
    let (dir, live) = live();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules:\n  - rule: send_window\n    start: '08:00'\n    end: '21:00'\n    exempt_replies: 24h\n  - default_instance\n  - any_available\n",
    )
    .unwrap();
    assert!(matches!(live.reload(), switchboard::ReloadEvent::Reloaded { .. }));
    // 23:30 in New York: outside the window.
    let ask = |contact: &str, now: &str| {
        let json = format!(
            r#"{{"location":"shop","channel":"whatsapp","body":"hi","contact":{{"id":"{contact}","timezone":"America/New_York"}},"now":"{now}"}}"#
        );
        let decision = live.select(&crate::util::request(&json));
        let detail = decision.trace.first().and_then(|t| t.detail.clone()).unwrap_or_default();
        (crate::util::summary(&decision), detail)
    };
    let late = "2026-12-08T04:30:00Z";
    assert!(ask("c-7", late).0.contains("109"), "no inbound yet: {:?}", ask("c-7", late));
    let inbound = r#"{"type":"inbound","location":"shop","channel":"whatsapp","instance":"wa-billing","contact":"c-7","time":"2026-12-07T20:00:00Z"}"#;
    assert_eq!(live.record(inbound).to_json()["accepted"], 1);
    let (outcome, detail) = ask("c-7", late);
    assert_eq!(outcome, "wa-support", "{detail}");
    assert!(detail.contains("wrote in"), "the trace says why: {detail}");
    assert!(ask("c-8", late).0.contains("109"), "another contact is still held");
    // 24 h after the inbound, the exemption is over.
    assert!(ask("c-7", "2026-12-09T04:30:00Z").0.contains("109"));
}

#[test]
fn reply_windows_are_opened_by_an_inbound_message_and_expire() {
    let (dir, live) = live();
    std::fs::write(dir.path().join("rules.yaml"), "rules: [manual_override, default_instance, any_available]\n")
        .unwrap();
    std::fs::write(
        dir.path().join("world.yaml"),
        "locations:\n  - id: shop\n    instances:\n      \
         - {id: wa-1, channel: whatsapp, index: 1, phone: '+1 555 0101', connected: true, default: true, reply_window: 24h}\n      \
         - {id: wa-2, channel: whatsapp, index: 2, phone: '+1 555 0102', connected: true, reply_window: 24h}\n      \
         - {id: sms-1, channel: sms, index: 1, phone: '+1 555 0103', connected: true}\n",
    )
    .unwrap();
    assert!(matches!(live.reload(), switchboard::ReloadEvent::Reloaded { .. }));
    let ask = |channel: &str, body: &str, now: &str| {
        let json = format!(
            r#"{{"location":"shop","channel":"{channel}","body":"{body}","contact":{{"id":"c-7"}},"now":"{now}"}}"#
        );
        let decision: Value = serde_json::from_str(&live.select(&crate::util::request(&json)).to_json()).unwrap();
        (decision["instance"]["id"].as_str().unwrap_or("").to_owned(), decision.get("template_required").cloned())
    };
    // No inbound yet: a template is required.
    assert_eq!(ask("whatsapp", "hi", "2026-12-07T12:00:00Z"), ("wa-1".into(), Some(json!(true))));
    let inbound = r#"{"type":"inbound","location":"shop","channel":"whatsapp","instance":"wa-1","contact":"c-7","time":"2026-12-07T15:00:00Z"}"#;
    assert_eq!(live.record(inbound).to_json()["accepted"], 1);
    // Within 24 h of the contact's message to wa-1: free-form on wa-1 only.
    assert_eq!(ask("whatsapp", "hi", "2026-12-08T14:59:59Z"), ("wa-1".into(), Some(json!(false))));
    assert_eq!(ask("whatsapp", "hi {WA#2}", "2026-12-08T14:00:00Z"), ("wa-2".into(), Some(json!(true))));
    // Expired after 24 h.
    assert_eq!(ask("whatsapp", "hi", "2026-12-08T15:00:00Z"), ("wa-1".into(), Some(json!(true))));
    // An instance without a reply window: no field.
    assert_eq!(ask("sms", "hi", "2026-12-07T16:00:00Z"), ("sms-1".into(), None));
}
