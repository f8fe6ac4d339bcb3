//! The `switchboard` binary on fixture files: outputs, exit codes, messages.

use crate::util::*;

fn shop_args<'a>(command: &'a str, rules: &'a str, world: &'a str) -> Vec<&'a str> {
    vec![command, "--rules", rules, "--world", world]
}

#[test]
fn select_single_request_exit_0_and_decision_json() {
    let (rules, world, req) = (repo_file("rules.yaml"), fixture("shop.yaml"), fixture("request-override.json"));
    let mut args = shop_args("select", s(&rules), s(&world));
    args.extend(["--request", s(&req)]);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["instance"]["id"], "wa-support");
    assert_eq!(json["body"], "Hi");
    assert_eq!(text(&out.stdout).lines().count(), 1);
}

#[test]
fn select_single_request_selection_error_exit_1() {
    let (rules, world, req) = (repo_file("rules.yaml"), fixture("shop.yaml"), fixture("request-disconnected-tag.json"));
    let mut args = shop_args("select", s(&rules), s(&world));
    args.extend(["--request", s(&req)]);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(json["error"]["code"], 103);
    assert_eq!(json["error"]["kind"], "instance_disconnected");
    assert_eq!(json["rule"], "contact_tag");
}

#[test]
fn batch_keeps_order_and_goes_on_past_bad_lines() {
    let (rules, world) = (repo_file("rules.yaml"), fixture("shop.yaml"));
    let input = concat!(
        r#"{"location":"loc_1","channel":"whatsapp","body":"{WA#1}"}"#,
        "\n",
        "not json\n",
        "\n",
        r#"{"location":"loc_1","channel":"whatsapp","body":"{WA#9}"}"#,
        "\n",
        r#"{"location":"loc_1","channel":"whatsapp"}"#,
        "\n",
        r#"{"location":"loc_1","channel":"sms","body":"last"}"#,
    );
    let out = run(&shop_args("select", s(&rules), s(&world)), input);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 5, "one decision per non-blank line");
    assert_eq!(lines[0]["instance"]["id"], "wa-orders");
    assert_eq!(lines[1]["error"]["code"], 100);
    assert_eq!(lines[1]["error"]["kind"], "invalid_request");
    assert_eq!(lines[2]["error"]["code"], 101);
    assert_eq!(lines[3]["error"]["code"], 100);
    assert_eq!(lines[4]["instance"]["id"], "sms-2");
}

#[test]
fn batch_answers_invalid_utf8_with_code_100() {
    let (rules, world) = (repo_file("rules.yaml"), fixture("shop.yaml"));
    let input = b"{\"location\":\"\xff\"}\n{\"location\":\"loc_1\",\"channel\":\"sms\",\"body\":\"x\"}\n";
    let out = run_bytes(&shop_args("select", s(&rules), s(&world)), input);
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"code\":100") && lines[0].contains("not valid UTF-8"), "{}", lines[0]);
    assert!(lines[1].contains("sms-2"));
}

#[test]
fn example_data_runs_and_exercises_every_rule_and_error() {
    let (rules, world, requests) = (repo_file("rules.yaml"), example("world.yaml"), example("requests.jsonl"));
    let out = run(&shop_args("select", s(&rules), s(&world)), &std::fs::read_to_string(requests).unwrap());
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for rule in
        ["manual_override", "temporary_switch", "contact_tag", "user_assignment", "default_instance", "any_available"]
    {
        assert!(stdout.contains(&format!(r#""ok":true,"rule":"{rule}""#)), "no selection by {rule}");
    }
    for code in [100, 101, 103, 104, 106] {
        assert!(stdout.contains(&format!(r#""code":{code}"#)), "no error {code}");
    }
}

#[test]
fn explain_prints_the_trace_table() {
    let (rules, world, req) = (repo_file("rules.yaml"), fixture("shop.yaml"), fixture("request-disconnected-tag.json"));
    let mut args = shop_args("explain", s(&rules), s(&world));
    args.extend(["--request", s(&req)]);
    let out = run(&args, "");
    assert_eq!(out.status.code(), Some(1));
    let table = text(&out.stdout);
    assert!(table.contains("manual_override") && table.contains("no_match"), "{table}");
    assert!(table.contains("contact_tag") && table.contains("failed"), "{table}");
    assert!(table.contains("decision  error 103 instance_disconnected raised by contact_tag"), "{table}");
}

#[test]
fn check_valid_and_invalid() {
    let (rules, world) = (repo_file("rules.yaml"), example("world.yaml"));
    let out = run(&shop_args("check", s(&rules), s(&world)), "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("world.yaml: ok (2 locations)"), "{}", text(&out.stdout));
    let one = temp_with(&[("one.yaml", "locations: [{id: l, instances: []}]\n")]);
    let out = run(&["check", "--rules", s(&rules), "--world", s(&one.path().join("one.yaml"))], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("one.yaml: ok (1 location)\n"), "{}", text(&out.stdout));
    let bad = fixture("rules-bad.yaml");
    let out = run(&["check", "--rules", s(&bad)], "");
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("rules-bad.yaml:3:") && err.contains("did you mean `manual_override`"), "{err}");
    assert_eq!(err.lines().count(), 6, "{err}");
    let out = run(&["check", "--rules", s(&rules), "--world", s(&fixture("world-bad.yaml"))], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("world-bad.yaml:5:"));
}

#[test]
fn unusable_files_and_arguments_exit_2_naming_the_file() {
    let rules = repo_file("rules.yaml");
    let dir = temp_with(&[("empty.yaml", ""), ("latin1.yaml", "")]);
    std::fs::write(dir.path().join("latin1.yaml"), b"rules: [caf\xe9]\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["select".into(), "--rules".into(), "/nonexistent/rules.yaml".into()],
            "/nonexistent/rules.yaml: no such file",
        ),
        (vec!["select".into(), "--rules".into(), s(dir.path()).into()], "is a directory"),
        (vec!["select".into(), "--rules".into(), s(&dir.path().join("empty.yaml")).into()], "the rules file is empty"),
        (vec!["select".into(), "--rules".into(), s(&dir.path().join("latin1.yaml")).into()], "not valid UTF-8"),
        (vec!["select".into(), "--rules".into(), s(&fixture("rules-bad.yaml")).into()], "rules-bad.yaml:3:"),
        (
            vec![
                "select".into(),
                "--rules".into(),
                s(&rules).into(),
                "--world".into(),
                s(&fixture("world-bad.yaml")).into(),
            ],
            "world-bad.yaml:5:",
        ),
        (vec!["select".into()], "the following required arguments were not provided:\n  --rules <R>"),
        (vec!["frobnicate".into()], "unrecognized subcommand 'frobnicate'"),
        (vec!["select".into(), "--rules".into(), s(&rules).into(), "--color".into()], "unexpected argument '--color'"),
        (vec!["explain".into(), "--rules".into(), s(&rules).into()], "--request <F>"),
        (
            vec![
                "select".into(),
                "--rules".into(),
                s(&rules).into(),
                "--request".into(),
                "/nonexistent/req.json".into(),
            ],
            "no such file",
        ),
    ];
    for (args, want) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&argv, "");
        assert_eq!(out.status.code(), Some(2), "{argv:?}");
        let err = text(&out.stderr);
        assert!(err.contains(want), "{argv:?}: {err}");
        assert!(text(&out.stdout).is_empty(), "{argv:?}");
    }
}

#[test]
fn rules_lists_rules_channels_and_chains() {
    let out = run(&["rules", "--rules", s(&fixture("rules-skip.yaml"))], "");
    assert_eq!(out.status.code(), Some(0));
    let listing = text(&out.stdout);
    for id in
        ["manual_override", "temporary_switch", "contact_tag", "user_assignment", "default_instance", "any_available"]
    {
        assert!(listing.contains(id), "{id}");
    }
    for (channel, code) in [("whatsapp", "WA"), ("imessage", "IM"), ("sms", "SMS")] {
        let line = listing.lines().find(|l| l.trim_start().starts_with(channel)).unwrap();
        assert!(line.contains(&format!("code {code} ")), "{line}");
    }
    assert!(listing.contains("option strategy: lowest_index | round_robin | sticky | random | least_used | weighted"));
    assert!(listing.contains("2. temporary_switch (disabled, on_unavailable=error)"), "{listing}");
    assert!(listing.contains("built-in (switchboard-rules)"));
    let out = run(&["rules"], "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn help_and_version() {
    assert!(text(&run(&["--help"], "").stdout).contains("Usage: switchboard <COMMAND>"));
    assert!(text(&run(&["--version"], "").stdout).starts_with("switchboard "));
}

#[test]
fn select_watch_reloads_while_serving_and_reports_on_stderr() {
    use std::io::{BufRead, BufReader, Write};
    use std::time::{Duration, Instant};
    let dir = temp_with(&[
        ("rules.yaml", "rules: [default_instance, any_available]\n"),
        ("world.yaml", "locations: [{id: l, instances: [{id: a, channel: sms, phone: '1', connected: true}, {id: b, channel: sms, phone: '2', connected: true, default: true}]}]\n"),
    ]);
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    let (mut child, mut stdin, mut stdout) = spawn(&["select", "--watch", "--rules", s(&rules), "--world", s(&world)]);
    // Reload events arrive on stderr as they happen.
    let (tx, events) = std::sync::mpsc::channel::<String>();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match events.recv_timeout(left) {
                Ok(line) if line.contains(want) => return line,
                Ok(_) => {}
                Err(_) => panic!("no stderr line containing {want:?}"),
            }
        }
    };
    let line = r#"{"location":"l","channel":"sms","body":"hi"}"#;
    let mut ask = |stdin: &mut std::process::ChildStdin| {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        let mut answer = String::new();
        stdout.read_line(&mut answer).unwrap();
        answer
    };
    assert!(ask(&mut stdin).contains(r#""id":"b""#));
    std::fs::write(&rules, "rules: [oops]\n").unwrap();
    wait_for("reload failed, generation 1 stays:");
    let located = wait_for("unknown rule `oops`");
    assert!(located.starts_with(&format!("{}:1:", rules.display())), "a located line, no prefix: {located}");
    assert!(ask(&mut stdin).contains(r#""id":"b""#), "an invalid file keeps the configuration");
    std::fs::write(&rules, "rules: [any_available]\n").unwrap();
    wait_for("reloaded: generation 2 in force");
    assert!(ask(&mut stdin).contains(r#""id":"a""#), "the new rules are used");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn select_watch_reloads_once_per_sighup_and_then_rests() {
    use std::io::{BufRead, BufReader, Write};
    use std::time::Duration;
    let dir = temp_with(&[("rules.yaml", "rules: [any_available]\n")]);
    let rules = dir.path().join("rules.yaml");
    let (mut child, mut stdin, mut stdout) = spawn(&["select", "--watch", "--rules", s(&rules)]);
    let (tx, events) = std::sync::mpsc::channel::<String>();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).for_each(|l| drop(tx.send(l))));
    // One answered request proves the signal handler is installed.
    writeln!(stdin, r#"{{"location":"l","channel":"sms","body":"x","instances":[{{"id":"s","channel":"sms","phone":"1","connected":true}}]}}"#).unwrap();
    stdin.flush().unwrap();
    let mut answer = String::new();
    stdout.read_line(&mut answer).unwrap();
    assert!(answer.contains(r#""ok":true"#), "{answer}");
    let hup = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status().unwrap();
    assert!(hup.success());
    let line = events.recv_timeout(Duration::from_secs(10)).expect("SIGHUP reloads");
    assert_eq!(line, "switchboard: files unchanged: generation 1 stays");
    let more: Vec<String> = std::iter::from_fn(|| events.recv_timeout(Duration::from_secs(2)).ok()).collect();
    assert!(more.is_empty(), "one SIGHUP, one reload line; then rest: {more:?}");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn parallel_batch_keeps_input_order() {
    let (rules, world) = (repo_file("rules.yaml"), fixture("shop.yaml"));
    // 5,000 lines cycling through four answers, so any reordering shows.
    let bodies = ["{WA#1}", "{WA#2}", "{WA#3}", "plain"];
    let want = ["wa-orders", "wa-support", "wa-billing", "wa-support"];
    let input: String = (0..5000)
        .map(|n| format!("{{\"location\":\"loc_1\",\"channel\":\"whatsapp\",\"body\":\"{} #{n}\"}}\n", bodies[n % 4]))
        .collect();
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &input);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5000);
    for (n, line) in lines.iter().enumerate() {
        assert!(
            line.contains(&format!(r#""id":"{}""#, want[n % 4])) && line.contains(&format!("#{n}\"")),
            "line {n}: {line}"
        );
    }
}

#[test]
fn an_overlong_line_is_answered_with_code_100_without_being_stored() {
    let (rules, world) = (repo_file("rules.yaml"), fixture("shop.yaml"));
    let good = r#"{"location":"loc_1","channel":"sms","body":"x"}"#;
    let mut input = format!("{good}\n").into_bytes();
    input.extend(std::iter::repeat_n(b'{', 3_000_000));
    input.extend(format!("\n{good}\n").as_bytes());
    let out = run_bytes(&["select", "--rules", s(&rules), "--world", s(&world), "--max-line-bytes", "1000000"], &input);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[1].contains(r#""code":100"#) && lines[1].contains("line 2 is longer than the 1000000-byte limit"),
        "{}",
        lines[1]
    );
    assert!(lines[0].contains("sms-2") && lines[2].contains("sms-2"));
}
