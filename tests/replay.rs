//! `switchboard replay` (SPEC §12) on decision logs (SPEC §9) written here:
//! transitions checked against counts computed independently with the
//! library, the same configuration giving 0 changed, the `--max-changed`
//! gate, JSON output, and unreadable lines and logs.

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

/// A decision log line of SPEC §9 for `request`, decided with `plan`.
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
    let world = switchboard::load_world_for(example("world.yaml"), &plan).unwrap();
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
    let world = switchboard::load_world_for(example("world.yaml"), &old_plan).unwrap();
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
