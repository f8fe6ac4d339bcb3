//! Live state (SPEC §13) and the correlation `message_id` (SPEC §7):
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
