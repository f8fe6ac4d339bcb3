//! The command line as operators expect it: help per subcommand, JSON
//! formats, `-` for stdin, located messages without a prefix, colour only
//! on a terminal, closed pipes and full disks, completions.

use std::process::{Command, Stdio};

use crate::util::*;

fn shop(command: &str) -> Vec<String> {
    vec![
        command.into(),
        "--rules".into(),
        s(&repo_file("rules.yaml")).into(),
        "--world".into(),
        s(&fixture("shop.yaml")).into(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn each_subcommand_has_its_own_help() {
    for (command, flag) in [
        ("select", "--max-line-bytes"),
        ("explain", "--format"),
        ("check", "--quiet"),
        ("rules", "--rules"),
        ("completions", "<SHELL>"),
    ] {
        let help = text(&run(&["help", command], "").stdout);
        assert!(help.contains(&format!("Usage: switchboard {command}")), "{command}: {help}");
        assert!(help.contains(flag), "{command}: {help}");
        assert_eq!(help, text(&run(&[command, "--help"], "").stdout), "`help {command}` = `{command} --help`");
    }
    let top = text(&run(&["--help"], "").stdout);
    assert!(!top.contains("--max-line-bytes"), "the global help is not a subcommand's");
    let version = run(&["--version"], "");
    assert_eq!(text(&version.stdout).trim(), format!("switchboard {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_stands_on_its_own_and_says_what_serve_options_do() {
    for command in ["select", "serve", "explain", "check", "rules", "test", "replay", "schema"] {
        let help = text(&run(&["help", command], "").stdout);
        assert!(help.contains(&format!("Usage: switchboard {command}")), "{command}: {help}");
        assert!(
            !help.contains("SPEC") && !help.contains("shared/"),
            "{command}'s help points outside the repository: {help}"
        );
    }
    let serve = text(&run(&["serve", "--help"], "").stdout).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(serve.contains("without counting against capacity limits"), "--dry-run: {serve}");
    assert!(!serve.contains("no effect"), "--dry-run has an effect: {serve}");
    assert!(
        serve.contains("/v1/reload") && serve.contains("/v1/forget"),
        "--admin-token-file names the admin routes: {serve}"
    );
}

#[test]
fn completions_and_the_man_page() {
    for (shell, marker) in
        [("bash", "_switchboard()"), ("zsh", "#compdef switchboard"), ("fish", "complete -c switchboard")]
    {
        let out = run(&["completions", shell], "");
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker) && script.contains("explain"), "{shell}: {}", &script[..200.min(script.len())]);
    }
    let man = text(&run(&["man"], "").stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH switchboard"), "{}", &man[..100.min(man.len())]);
}

#[test]
fn check_format_json_lists_every_problem_located() {
    let out = run(
        &[
            "check",
            "--format",
            "json",
            "--rules",
            s(&fixture("rules-bad.yaml")),
            "--world",
            s(&fixture("world-bad.yaml")),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = problems.as_array().unwrap();
    let human = text(
        &run(&["check", "--rules", s(&fixture("rules-bad.yaml")), "--world", s(&fixture("world-bad.yaml"))], "").stderr,
    );
    assert_eq!(problems.len(), human.lines().count(), "one object per problem: {human}");
    for p in problems {
        let file = p["file"].as_str().unwrap();
        assert!(file.ends_with("rules-bad.yaml") || file.ends_with("world-bad.yaml"), "{p}");
        assert!(p["line"].as_u64().is_some() && p["column"].as_u64().is_some(), "{p}");
        assert_eq!(p["severity"], "error");
        let line = format!("{file}:{}:{}: {}", p["line"], p["column"], p["message"].as_str().unwrap());
        assert!(human.lines().any(|l| l == line), "{line} is in the text output");
    }
    let valid = run(&["check", "--format", "json", "--rules", s(&repo_file("rules.yaml"))], "");
    assert_eq!(valid.status.code(), Some(0));
    assert_eq!(text(&valid.stdout).trim(), "[]");
}

#[test]
fn check_quiet_prints_only_problems() {
    let quiet = run(&["check", "--quiet", "--rules", s(&repo_file("rules.yaml"))], "");
    assert_eq!(quiet.status.code(), Some(0));
    assert!(quiet.stdout.is_empty() && quiet.stderr.is_empty());
    let loud = run(&["check", "--rules", s(&repo_file("rules.yaml"))], "");
    assert!(text(&loud.stdout).contains(": ok"));
    let bad = run(&["check", "-q", "--rules", s(&fixture("rules-bad.yaml"))], "");
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stdout.is_empty() && !bad.stderr.is_empty());
}

#[test]
fn explain_format_json_is_the_decision_and_stdin_is_a_dash() {
    let request = std::fs::read_to_string(fixture("request-disconnected-tag.json")).unwrap();
    let mut argv = shop("explain");
    argv.extend(["--format".into(), "json".into(), "--request".into(), "-".into()]);
    let out = run(&args(&argv), &request);
    assert_eq!(out.status.code(), Some(1));
    let decision: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut select = shop("select");
    select.extend(["--request".into(), "-".into()]);
    let selected = run(&args(&select), &request);
    assert_eq!(selected.status.code(), Some(1));
    assert_eq!(decision, serde_json::from_slice::<serde_json::Value>(&selected.stdout).unwrap());
    assert_eq!(decision["error"]["code"], 103);
}

#[test]
fn explain_says_nothing_is_sent_for_an_error() {
    let mut argv = shop("explain");
    argv.extend(["--request".into(), s(&fixture("request-disconnected-tag.json")).into()]);
    let table = text(&run(&args(&argv), "").stdout);
    assert!(table.contains("delivered nothing: no instance was selected"), "{table}");
    let mut argv = shop("explain");
    argv.extend(["--request".into(), s(&fixture("request-override.json")).into()]);
    let table = text(&run(&args(&argv), "").stdout);
    assert!(table.contains("delivered \""), "{table}");
}

#[test]
fn rules_format_json_lists_rules_channels_and_chains() {
    let out = run(&["rules", "--format", "json", "--rules", s(&fixture("rules-skip.yaml"))], "");
    assert_eq!(out.status.code(), Some(0));
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listing["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"manual_override") && ids.contains(&"any_available"), "{ids:?}");
    let codes: Vec<&str> =
        listing["channels"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["IM", "SMS", "WA"]);
    assert_eq!(listing["chains"]["whatsapp"][1]["rule"], "temporary_switch");
    assert_eq!(listing["chains"]["whatsapp"][1]["enabled"], false);
    assert!(!listing["order"]["whatsapp"].as_array().unwrap().contains(&"temporary_switch".into()));
}

#[test]
fn located_messages_start_with_the_location() {
    let bad = fixture("rules-bad.yaml");
    for command in
        [vec!["select", "--rules", s(&bad)], vec!["rules", "--rules", s(&bad)], vec!["check", "--rules", s(&bad)]]
    {
        let out = run(&command, "");
        let err = text(&out.stderr);
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("{}:", bad.display())), "{command:?}: {err}");
        assert!(!err.contains("switchboard: "), "no prefix before a location: {err}");
    }
}

#[test]
fn colour_only_on_request_of_the_environment_never_in_pipes() {
    let mut argv = shop("explain");
    argv.extend(["--request".into(), s(&fixture("request-disconnected-tag.json")).into()]);
    let run_env = |env: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command.args(args(&argv)).env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            command.env(k, v);
        }
        text(&command.output().unwrap().stdout)
    };
    assert!(!run_env(&[]).contains('\x1b'), "a pipe gets no colour");
    assert!(run_env(&[("CLICOLOR_FORCE", "1")]).contains("\x1b["), "forced colour is honoured");
    assert!(!run_env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\x1b'), "NO_COLOR wins");
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // `switchboard rules | head -1`, and a batch whose reader goes away.
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("rules")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // closed before the first write
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn decisions_that_cannot_be_written_are_reported() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let input: String = "{\"location\":\"loc_1\",\"channel\":\"sms\",\"body\":\"x\"}\n".repeat(2000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args(&shop("select")))
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = std::io::Write::write_all(&mut stdin, input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot write decisions: No space left on device"), "{}", text(&out.stderr));
}

#[test]
fn an_unknown_request_field_gets_did_you_mean() {
    let mut argv = shop("select");
    argv.extend(["--request".into(), "-".into()]);
    let out = run(&args(&argv), r#"{"location":"loc_1","channel":"sms","body":"x","contact":{"assigned_usr":"u"}}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("(did you mean `assigned_user`?)"), "{}", text(&out.stdout));
}

#[test]
fn an_unreadable_request_file_is_named() {
    let mut argv = shop("select");
    argv.extend(["--request".into(), "/nonexistent/request.json".into()]);
    let out = run(&args(&argv), "");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("/nonexistent/request.json: no such file"), "{}", text(&out.stderr));
}

#[test]
fn select_without_a_world_file_says_so() {
    let out = run(
        &["select", "--rules", s(&repo_file("rules.yaml"))],
        "{\"location\":\"shop\",\"channel\":\"sms\",\"body\":\"hi\"}\n",
    );
    let line = text(&out.stdout);
    assert!(line.contains("no world file was given (`--world`) and the request carries no `instances`"), "{line}");
    let mut argv = shop("select");
    argv.extend(["--request".into(), "-".into()]);
    let out = run(&args(&argv), "{\"location\":\"nowhere\",\"channel\":\"sms\",\"body\":\"hi\"}");
    assert!(text(&out.stdout).contains("location `nowhere` is not in the world file"), "{}", text(&out.stdout));
}
