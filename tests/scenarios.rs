//! `switchboard test` on scenario files (docs/operator-tools.md): the shipped scenarios,
//! failing cases, located file errors, `--format json`, `--filter`, and the
//! coverage lines.

use crate::util::*;

const WORLD: &str = "\
locations:
  - id: shop
    instances:
      - {id: wa-orders,  channel: whatsapp, index: 1, phone: '+1-555-ORDERS',  connected: true, users: [u_orders]}
      - {id: wa-support, channel: whatsapp, index: 2, phone: '+1-555-SUPPORT', connected: true, default: true}
      - {id: wa-legacy,  channel: whatsapp, index: 4, phone: '+1-555-0104',    connected: false}
";

const CASES: &str = "\
cases:
  - name: override picks instance 1
    request: {location: shop, channel: whatsapp, body: 'Hi { WA#1 }'}
    expect: {instance: wa-orders, rule: manual_override, body: Hi}
  - name: a disconnected tag is an error
    request: {location: shop, channel: whatsapp, body: Hi, contact: {id: c2, tags: ['wa: +1 555 0104']}}
    expect: {instance: wa-support, rule: default_instance}
  - name: plain message goes to the default
    request: {location: shop, channel: whatsapp, body: Hello}
    expect: {instance: wa-support, rule: default_instance, body: Hello}
";

fn scenario_dir(scenario: &str) -> tempfile::TempDir {
    let dir = temp_with(&[("world.yaml", WORLD), ("scenario.yaml", scenario)]);
    std::fs::copy(repo_file("rules.yaml"), dir.path().join("rules.yaml")).unwrap();
    dir
}

fn lines(out: &std::process::Output) -> Vec<String> {
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn shipped_scenarios_pass_through_the_binary() {
    let dir = repo_file("tests/scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    let mut args = vec!["test"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    let lines = lines(&out);
    let cases = lines.iter().filter(|l| l.starts_with("ok ")).count();
    assert!(cases >= 30, "{lines:?}");
    assert_eq!(lines.last().unwrap(), &format!("{cases} passed, 0 failed"));
    // Every rule decides some case on some channel; the only gaps are the
    // patterns a channel has no syntax for.
    let text = lines.join("\n");
    assert!(
        text.contains(
            "rules that decided no case:\n  sms: manual_override, temporary_switch\n  whatsapp: temporary_switch\n"
        ),
        "{text}"
    );
}

#[test]
fn failing_case_shows_expected_got_and_the_explain_table_and_exits_1() {
    let dir = scenario_dir(&format!("rules: rules.yaml\nworld: world.yaml\n{CASES}"));
    let out = run(&["test", s(&dir.path().join("scenario.yaml"))], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines = lines(&out);
    assert_eq!(lines[0], "ok override picks instance 1");
    assert_eq!(lines[1], "FAILED a disconnected tag is an error");
    let failure = lines.join("\n");
    assert!(failure.contains(r#"    expected: {"instance":"wa-support","rule":"default_instance"}"#), "{failure}");
    assert!(
        failure.contains(r#"    got:      {"instance":null,"rule":"contact_tag","body":"Hi","error":103,"kind":"instance_disconnected"}"#),
        "{failure}"
    );
    assert!(failure.contains("3  contact_tag       failed        instance_disconnected"), "{failure}");
    assert!(failure.contains("decision  error 103 instance_disconnected raised by contact_tag"), "{failure}");
    assert!(lines.contains(&"ok plain message goes to the default".to_owned()));
    assert_eq!(lines.last().unwrap(), "2 passed, 1 failed");
}

#[test]
fn rules_and_world_come_from_the_scenario_file_else_the_flags() {
    // Relative to the scenario file, not to the working directory.
    let dir = scenario_dir(&format!("rules: ../rules.yaml\nworld: ../world.yaml\n{CASES}"));
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::rename(dir.path().join("scenario.yaml"), dir.path().join("sub/scenario.yaml")).unwrap();
    let out = run(&["test", s(&dir.path().join("sub/scenario.yaml"))], "");
    assert_eq!(lines(&out).last().unwrap(), "2 passed, 1 failed", "{}", text(&out.stderr));

    let bare = scenario_dir(CASES);
    let scenario = bare.path().join("scenario.yaml");
    let (rules, world) = (bare.path().join("rules.yaml"), bare.path().join("world.yaml"));
    let out = run(&["test", "--rules", s(&rules), "--world", s(&world), s(&scenario)], "");
    assert_eq!(lines(&out).last().unwrap(), "2 passed, 1 failed", "{}", text(&out.stderr));

    let out = run(&["test", s(&scenario)], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("names no rules file"), "{}", text(&out.stderr));
}

#[test]
fn a_scenario_with_a_yaml_error_exits_2_with_its_line_and_column() {
    let dir = scenario_dir(
        "rules: rules.yaml\ncases:\n  - name: x\n    request: {location: shop\n    expect: {rule: null}\n",
    );
    let path = dir.path().join("scenario.yaml");
    let out = run(&["test", s(&path)], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{}:5:11: ", path.display())), "{stderr}");

    // Unknown and missing keys are located too, and every bad file is named.
    std::fs::write(
        dir.path().join("typo.yaml"),
        "rules: rules.yaml\ncases:\n  - name: x\n    request: {}\n    expect: {instanse: a}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("empty.yaml"),
        "rules: rules.yaml\ncases:\n  - name: x\n    request: {}\n    expect: {}\n",
    )
    .unwrap();
    let (typo, empty) = (dir.path().join("typo.yaml"), dir.path().join("empty.yaml"));
    let out = run(&["test", s(&typo), s(&empty), s(&dir.path().join("missing.yaml"))], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:5:14: cases[0].expect: unknown field `instanse`", typo.display())),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{}:3:5: cases[0]: `expect` is empty", empty.display())), "{stderr}");
    assert!(stderr.contains("missing.yaml: no such file"), "{stderr}");
}

#[test]
fn a_bad_rules_file_named_by_a_scenario_exits_2_located() {
    let dir = scenario_dir(&format!("rules: bad.yaml\n{CASES}"));
    std::fs::write(dir.path().join("bad.yaml"), "rules:\n  - manul_override\n").unwrap();
    let out = run(&["test", s(&dir.path().join("scenario.yaml"))], "");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.yaml:2:5: rules[0]: unknown rule `manul_override`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_format_prints_one_object_per_case() {
    let dir = scenario_dir(&format!("rules: rules.yaml\nworld: world.yaml\n{CASES}"));
    let out = run(&["test", "--format", "json", s(&dir.path().join("scenario.yaml"))], "");
    assert_eq!(out.status.code(), Some(1));
    let cases: Vec<serde_json::Value> = lines(&out).iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(cases.len(), 3);
    assert_eq!(cases[0]["name"], "override picks instance 1");
    assert_eq!(cases[0]["ok"], true);
    assert_eq!(cases[1]["ok"], false);
    assert_eq!(cases[1]["status"], "FAILED");
    assert_eq!(cases[1]["expected"], serde_json::json!({"instance": "wa-support", "rule": "default_instance"}));
    assert_eq!(cases[1]["got"]["error"], 103);
    assert_eq!(cases[1]["mismatches"], serde_json::json!(["instance", "rule"]));
    assert_eq!(cases[1]["decision"]["error"]["kind"], "instance_disconnected");
    assert!(text(&out.stderr).ends_with("2 passed, 1 failed\n"), "{}", text(&out.stderr));
}

#[test]
fn filter_runs_only_matching_cases() {
    let dir = scenario_dir(&format!("rules: rules.yaml\nworld: world.yaml\n{CASES}"));
    let out = run(&["test", "--filter", "default", s(&dir.path().join("scenario.yaml"))], "");
    assert_eq!(out.status.code(), Some(0));
    let lines = lines(&out);
    assert_eq!(lines[0], "ok plain message goes to the default");
    assert_eq!(lines.last().unwrap(), "1 passed, 0 failed");
}

#[test]
fn coverage_names_the_rules_that_decided_no_case_per_channel() {
    let dir = scenario_dir(&format!("rules: rules.yaml\nworld: world.yaml\n{CASES}"));
    let out = run(&["test", s(&dir.path().join("scenario.yaml"))], "");
    let lines = lines(&out);
    let n = lines.len();
    assert_eq!(
        lines[n - 5..],
        [
            "rules that decided no case:",
            "  imessage: no case on this channel (manual_override, temporary_switch, contact_tag, user_assignment, default_instance, any_available)",
            "  sms: no case on this channel (manual_override, temporary_switch, contact_tag, user_assignment, default_instance, any_available)",
            "  whatsapp: temporary_switch, user_assignment, any_available",
            "2 passed, 1 failed",
        ]
    );
}

#[test]
fn rule_null_and_error_expectations_are_checked() {
    let scenario = "\
rules: rules.yaml
world: world.yaml
cases:
  - name: unknown location has no rule
    request: {location: nowhere, channel: whatsapp, body: Hi}
    expect: {rule: null, error: 100, kind: unknown_location}
  - name: a selection is not rule null
    request: {location: shop, channel: whatsapp, body: Hi}
    expect: {rule: null}
  - name: a selection is not an error
    request: {location: shop, channel: whatsapp, body: Hi}
    expect: {error: 106}
  - name: a bad request is code 100, not a file error
    request: {location: shop}
    expect: {error: 100, kind: invalid_request}
";
    let dir = scenario_dir(scenario);
    let out = run(&["test", s(&dir.path().join("scenario.yaml"))], "");
    assert_eq!(out.status.code(), Some(1));
    let lines = lines(&out);
    assert_eq!(lines[0], "ok unknown location has no rule");
    assert_eq!(lines[1], "FAILED a selection is not rule null");
    assert!(lines.contains(&"FAILED a selection is not an error".to_owned()));
    assert!(lines.contains(&"ok a bad request is code 100, not a file error".to_owned()));
    assert_eq!(lines.last().unwrap(), "2 passed, 2 failed");
}

#[test]
fn events_apply_before_the_cases_of_their_own_file_and_a_bad_one_exits_2() {
    let with_events = "events:\n  - {type: instance_status, location: shop, instance: wa-support, connected: false, time: '2026-12-07T14:00:00Z'}\n\
         cases:\n  - name: the default reported down is skipped\n    \
         request: {location: shop, channel: whatsapp, body: Hello, now: '2026-12-07T15:00:00Z'}\n    \
         expect: {instance: wa-orders, rule: any_available}\n";
    let dir = scenario_dir(&format!("rules: rules.yaml\nworld: world.yaml\n{with_events}"));
    // A second file on the same rules and world does not see the event.
    let other = "rules: rules.yaml\nworld: world.yaml\ncases:\n  - name: the default is up here\n    \
                 request: {location: shop, channel: whatsapp, body: Hello, now: '2026-12-07T15:00:00Z'}\n    \
                 expect: {instance: wa-support, rule: default_instance}\n";
    std::fs::write(dir.path().join("other.yaml"), other).unwrap();
    let (scenario, other) = (dir.path().join("scenario.yaml"), dir.path().join("other.yaml"));
    let out = run(&["test", s(&scenario), s(&other)], "");
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(lines(&out).last().unwrap(), "2 passed, 0 failed");
    let bad = with_events.replace("instance: wa-support", "instance: wa-nine");
    std::fs::write(&scenario, format!("rules: rules.yaml\nworld: world.yaml\n{bad}")).unwrap();
    let out = run(&["test", s(&scenario)], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("events[0]: ") && stderr.contains("wa-nine"), "{stderr}");
}
