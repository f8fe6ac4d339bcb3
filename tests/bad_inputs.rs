//! The catalogue of bad inputs, through the binary: for each, the exit
//! code of docs/cli.md, a message naming the file and line (or field), and
//! never any panic text (`util::run` asserts that on every call).

use crate::util::*;

const RULES: &str = "rules: [manual_override, contact_tag, default_instance, any_available]\n";
const WORLD: &str = "locations:\n  - id: l\n    instances:\n      - {id: a, channel: whatsapp, phone: '1', connected: true, default: true}\n";

/// A file to write: name, content.
type File<'a> = (&'a str, &'a str);

/// Runs `select` on `rules`/`world` files written to a temp dir (named as
/// given, so the suffix picks YAML or JSON), one request line on stdin.
fn select_with(rules: File<'_>, world: File<'_>, stdin: &str) -> (Option<i32>, String, String) {
    let dir = temp_with(&[rules, world]);
    let (r, w) = (dir.path().join(rules.0), dir.path().join(world.0));
    let out = run(&["select", "--rules", s(&r), "--world", s(&w)], stdin);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn malformed_or_wrongly_typed_files_exit_2_located() {
    let cases: &[(File<'static>, File<'static>, &str)] = &[
        (("rules.yaml", "rules: [manual_override\n"), ("w.yaml", WORLD), "rules.yaml:2:"),
        (("rules.yaml", "rules:\n\t- manual_override\n"), ("w.yaml", WORLD), "rules.yaml:2:"),
        (("rules.yaml", "rules: 5\n"), ("w.yaml", WORLD), "rules.yaml:1:8"),
        (("rules.yaml", "rules: [{rule: any_available, strategy: [a]}]\n"), ("w.yaml", WORLD), "got a list"),
        (("rules.yaml", "rules: [contact_tags]\n"), ("w.yaml", WORLD), "did you mean `contact_tag`"),
        (("rules.yaml", "rules: [any_available, any_available]\n"), ("w.yaml", WORLD), "listed twice"),
        (("rules.yaml", "rules: [any_available]\nlimits: {max_body_byte: 10}\n"), ("w.yaml", WORLD), "did you mean `max_body_bytes`"),
        (("rules.yaml", "rules: [any_available]\nlimits: {max_tags: -1}\n"), ("w.yaml", WORLD), "rules.yaml:2:"),
        (("r.yaml", RULES), ("w.json", "{\"locations\": [}"), "w.json:1:"),
        (("r.yaml", RULES), ("w.json", "{\"locations\":[{\"id\":\"l\",\"instances\":[{\"id\":\"a\",\"channel\":\"sms\",\"connected\":\"yes\"}]}]}"), "w.json:1:"),
        (("r.yaml", RULES), ("w.yaml", "locations:\n  - id: l\n    instances:\n      - {id: a, channel: fax}\n"), "w.yaml:4:"),
        (("r.yaml", RULES), ("w.yaml", "locations:\n  - id: l\n    instances:\n      - {id: a, channel: sms, index: 18446744073709551616}\n"), "w.yaml:4:"),
        (("r.yaml", RULES), ("w.yaml", "locations:\n  - id: l\n    instances:\n      - {id: a, channel: sms, index: -1}\n"), "w.yaml:4:"),
        (("r.yaml", RULES), ("w.yaml", "locations:\n  - {id: l, instances: [{id: a, channel: sms, default: true}, {id: b, channel: sms, default: true}]}\n"), "already is the sms default"),
        (("r.yaml", RULES), ("w.yaml", "locations:\n  - {id: l, instances: [{id: a, channel: sms, index: 1}, {id: b, channel: sms, index: 1}]}\n"), "index 1 on sms is already used by `a`"),
        (("r.yaml", RULES), ("w.yaml", "   \n"), "the world file is empty"),
        (("r.yaml", "rules: [any_available]\nlimits: {max_world_bytes: 20}\n"), ("w.yaml", WORLD), "the limit is 20 (limits.max_world_bytes in rules.yaml)"),
    ];
    for (rules, world, want) in cases {
        let (code, stdout, stderr) = select_with(*rules, *world, "");
        assert_eq!(code, Some(2), "{rules:?} {world:?}: {stderr}");
        assert!(stderr.contains(want), "{rules:?} {world:?}: wanted {want:?} in\n{stderr}");
        assert!(stdout.is_empty());
    }
}

#[test]
fn invalid_utf8_world_is_invalid_for_check_and_fatal_for_select() {
    let dir = temp_with(&[("r.yaml", RULES)]);
    std::fs::write(dir.path().join("w.yaml"), b"locations: [{id: caf\xe9}]\n").unwrap();
    let (r, w) = (dir.path().join("r.yaml"), dir.path().join("w.yaml"));
    // `check` reads the file and finds it invalid (1); `select` cannot run (2).
    for (command, code) in [("check", 1), ("select", 2)] {
        let out = run(&[command, "--rules", s(&r), "--world", s(&w)], "");
        assert_eq!(out.status.code(), Some(code), "{command}");
        assert!(
            text(&out.stderr).contains("w.yaml: is not valid UTF-8 (first bad byte at offset 20)"),
            "{}",
            text(&out.stderr)
        );
    }
}

#[test]
fn bad_event_bodies_are_rejected_by_line_naming_what_is_wrong() {
    let dir = temp_with(&[("r.yaml", RULES), ("w.yaml", WORLD)]);
    let (r, w) = (dir.path().join("r.yaml"), dir.path().join("w.yaml"));
    let long = "x".repeat(100_000);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(String, &str)> = vec![
        (r#"{"type":"nap"}"#.into(), "unknown event type `nap`"),
        (r#"{"location":"l"}"#.into(), "missing field `type`"),
        (r#"{"type":["delivery"]}"#.into(), "`type` must be a string"),
        ("[1,2]".into(), "an event must be a JSON object"),
        ("not json".into(), "not JSON"),
        (deep, "not JSON"),
        (r#"{"type":"delivery","location":"l","instance":"a"}"#.into(), "missing field `status`"),
        (r#"{"type":"delivery","location":"l","instance":"a","status":"failed","decision":"x"}"#.into(), "unknown field `decision` (did you mean `decision_id`?)"),
        (format!(r#"{{"type":"delivery","location":"l","instance":"a","status":"failed","message_id":"{}"}}"#, "m".repeat(300)), "`message_id` is 300 bytes"),
        (r#"{"type":"instance_status","location":"l","instance":"a","connected":1}"#.into(), "`connected` must be true, false or null"),
        (r#"{"type":"instance_status","location":"l","instance":"a","connected":false,"ttl":"0s"}"#.into(), "`ttl` must be at least 1s"),
        (r#"{"type":"instance_status","location":"l","instance":"a","connected":false,"ttl":"99999999999999999999d"}"#.into(), "`ttl`"),
        (r#"{"type":"instance_status","location":"l","instance":"a","connected":false,"time":"2026-13-45T99:00:00Z"}"#.into(), "`time` must be an RFC 3339 time"),
        (r#"{"type":"instance_status","location":"l","instance":"a","connected":false,"time":17}"#.into(), "`time` must be an RFC 3339 time (a string); got a number"),
        (format!(r#"{{"type":"instance_status","location":"{long}","instance":"a","connected":false}}"#), "is not in the world in force"),
        (r#"{"type":"instance_status","location":"l","instance":"b","connected":false}"#.into(), "location `l` has no instance `b`"),
        (r#"{"type":"inbound","location":"l","channel":"sms","instance":"a","contact":"c"}"#.into(), "is on whatsapp, not on `sms`"),
        (r#"{"type":"inbound","location":"l","channel":"whatsapp","instance":"a","contact":null}"#.into(), "`contact` must be a string; got null"),
    ];
    for (body, want) in &cases {
        let out = run(&["record", "--rules", s(&r), "--world", s(&w)], &format!("{body}\n"));
        assert_eq!(out.status.code(), Some(1), "{want}: {}", text(&out.stderr));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(answer["accepted"], 0, "{want}");
        assert_eq!(answer["rejected"][0]["line"], 1, "{want}");
        let message = answer["rejected"][0]["message"].as_str().unwrap();
        assert!(message.contains(want), "wanted {want:?} in {message}");
    }
    // All of them in one body: each rejected at its own line, the valid one applied.
    let mut body: Vec<String> = cases.into_iter().map(|(b, _)| b).collect();
    body.insert(3, r#"{"type":"instance_status","location":"l","instance":"a","connected":false}"#.into());
    let out = run(&["record", "--rules", s(&r), "--world", s(&w)], &body.join("\n"));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["accepted"], 1);
    let lines: Vec<u64> = answer["rejected"].as_array().unwrap().iter().map(|r| r["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, (1..=19).filter(|n| *n != 4).collect::<Vec<u64>>());
    // Not UTF-8: the command cannot run.
    let out = run_bytes(&["record", "--rules", s(&r), "--world", s(&w)], b"{\"type\":\"\xff\"}\n");
    assert_eq!(out.status.code(), Some(2));
}

/// One request through the shop world; returns the decision line.
fn decide_line(rules: &str, request: &str) -> String {
    let (code, stdout, stderr) = select_with(("r.yaml", rules), ("w.yaml", WORLD), &format!("{request}\n"));
    assert_eq!(code, Some(0), "{stderr}");
    stdout.trim().to_owned()
}

#[test]
fn hostile_requests_get_code_100_or_a_normal_decision() {
    let braces = "{".repeat(100_000);
    let big_body = format!(r#"{{"location":"l","channel":"whatsapp","body":"{braces}"}}"#);
    let line = decide_line(RULES, &big_body);
    assert!(line.contains(r#""code":100"#) && line.contains("the body is 100000 bytes; the limit is 65536"), "{line}");
    // With room for it, 100,000 braces are scanned (quickly) and delivered untouched.
    let roomy = format!("{RULES}limits: {{max_body_bytes: 200000}}\n");
    let line = decide_line(&roomy, &big_body);
    assert!(line.contains(r#""ok":true"#) && line.contains(&braces), "{}", &line[..200]);

    let many = "{WA#1} ".repeat(101);
    let line = decide_line(RULES, &format!(r#"{{"location":"l","channel":"whatsapp","body":"{many}"}}"#));
    assert!(line.contains("more than 100 override/switch patterns"), "{line}");

    let tags: Vec<String> = (0..1001).map(|n| format!("\"t{n}\"")).collect();
    let line = decide_line(
        RULES,
        &format!(r#"{{"location":"l","channel":"whatsapp","body":"x","contact":{{"tags":[{}]}}}}"#, tags.join(",")),
    );
    assert!(line.contains("the contact has 1001 tags; the limit is 1000"), "{line}");
    let long_tag = "x".repeat(2000);
    let line = decide_line(
        RULES,
        &format!(r#"{{"location":"l","channel":"whatsapp","body":"x","contact":{{"tags":["{long_tag}"]}}}}"#),
    );
    assert!(line.contains("tag 1 is 2000 bytes; the limit is 1024"), "{line}");

    // Tags that are only punctuation are ignored, noted, and the chain goes on.
    let line = decide_line(
        RULES,
        r#"{"location":"l","channel":"whatsapp","body":"x","contact":{"tags":["!!!","wa: ---","wa:","::"]}}"#,
    );
    assert!(line.contains(r#""ok":true"#) && line.contains("tag `wa: ---` has no digit; ignored"), "{line}");

    // Wrong types and unknown fields in a request.
    for (request, want) in [
        (r#"{"location":"l","channel":"whatsapp","body":5}"#, "invalid type: integer `5`, expected a string"),
        (r#"{"location":"l","channel":"whatsapp","body":"x","contcat":{}}"#, "unknown field `contcat`"),
        (r#"{"location":"l","channel":"whatsapp","body":"x","contact":{"tags":"vip"}}"#, "expected a sequence"),
        (r#"["not","an","object"]"#, "expected a JSON object"),
        (r#"{"location":"l","channel":"whatsapp","body":"{WA#18446744073709551616}"}"#, "instance_not_found"),
    ] {
        let line = decide_line(RULES, request);
        assert!(line.contains(want), "{request}: {line}");
    }
}
