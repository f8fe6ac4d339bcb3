//! Recipient-aware rules (docs/recipient-rules.md) through the library and the binary:
//! `geomatch` across area codes, overlays, countries, national formats,
//! disconnected and at-capacity local numbers; `send_window` at both edges,
//! across the DST changes of New York and London, on weekends with `days`,
//! with the contact's or the location's timezone or none, with `retry_at`
//! in the decision and in `explain`.

use std::path::Path;

use serde_json::Value;
use switchboard::{Decision, Plan, World};

use crate::util::*;

fn rules() -> String {
    s(&fixture("recipient-rules.yaml")).to_owned()
}

fn world_file() -> String {
    s(&fixture("recipient-world.yaml")).to_owned()
}

/// The fixtures' plan and world, as the binary loads them.
fn fixtures() -> (Plan, World) {
    let plan = switchboard::load_rules(fixture("recipient-rules.yaml"), &registry()).unwrap();
    let text = std::fs::read_to_string(fixture("recipient-world.yaml")).unwrap();
    (plan, world(&text))
}

fn message(plan: &Plan, world: &World, location: &str, channel: &str, now: &str, contact: &str) -> Decision {
    decide(
        plan,
        world,
        &format!(r#"{{"location":"{location}","channel":"{channel}","body":"Hi","now":"{now}","contact":{contact}}}"#),
    )
}

/// The decision lines of `select` for JSON Lines requests.
fn select_lines(requests: &[String]) -> Vec<Value> {
    let out = run(&["select", "--rules", &rules(), "--world", &world_file()], &(requests.join("\n") + "\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn request_line(location: &str, channel: &str, now: &str, contact: &str) -> String {
    format!(r#"{{"location":"{location}","channel":"{channel}","body":"Hi","now":"{now}","contact":{contact}}}"#)
}

const MONDAY_10AM_NY: &str = "2026-12-07T15:00:00Z";

#[test]
fn geomatch_prefers_the_area_code_then_the_country_through_the_binary() {
    let cases = [
        // (contact, instance, rule)
        (r#"{"id":"a","phone":"+1 212 555 7000"}"#, "wa-212", "geomatch"),
        (r#"{"id":"a","phone":"+16465557000"}"#, "wa-646", "geomatch"),
        // 917 overlays 212/646 too, but no number has it: the country.
        (r#"{"id":"a","phone":"+1 917 555 7000"}"#, "wa-212", "geomatch"),
        (r#"{"id":"a","phone":"(310) 555-7000"}"#, "wa-310", "geomatch"),
        (r#"{"id":"a","phone":"+1 312 555 7000"}"#, "wa-212", "geomatch"),
        (r#"{"id":"a","phone":"+1 604 555 7000","timezone":"America/Toronto"}"#, "wa-416", "geomatch"),
        (r#"{"id":"a","phone":"+44 7400 123456","timezone":"Europe/London"}"#, "wa-uk", "geomatch"),
        (r#"{"id":"a","phone":"+49 30 901820","timezone":"Europe/Berlin"}"#, "wa-212", "any_available"),
        (r#"{"id":"a"}"#, "wa-212", "any_available"),
    ];
    let lines: Vec<String> = cases.iter().map(|(c, _, _)| request_line("nyc", "whatsapp", MONDAY_10AM_NY, c)).collect();
    for ((contact, instance, rule), d) in cases.iter().zip(select_lines(&lines)) {
        assert_eq!(
            (d["instance"]["id"].as_str(), d["rule"].as_str()),
            (Some(*instance), Some(*rule)),
            "{contact}: {d}"
        );
    }
}

#[test]
fn geomatch_explains_the_area_code_that_matched() {
    let dir = temp_with(&[(
        "r.json",
        &request_line("nyc", "whatsapp", MONDAY_10AM_NY, r#"{"id":"a","phone":"+1 646 555 7000"}"#),
    )]);
    let request = dir.path().join("r.json");
    let out = run(&["explain", "--rules", &rules(), "--world", &world_file(), "--request", s(&request)], "");
    let table = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{table}{}", text(&out.stderr));
    assert!(table.contains("recipient phone +1 646 555 7000"), "{table}");
    assert!(table.contains("area code 646 of the contact's +1 646 555 7000: wa-646"), "{table}");
    assert!(table.contains("local time Mon 10:00 (America/New_York, the location's timezone) is inside"), "{table}");
}

#[test]
fn geomatch_passes_over_a_local_number_at_capacity() {
    let rules =
        "rules:\n  - rule: geomatch\n    strategy: lowest_index\n  - any_available\ncapacity:\n  store: memory\n";
    let plan = switchboard::compile_rules(rules, Path::new("rules.yaml"), &registry()).unwrap();
    let w = world(
        "locations:\n  - id: nyc\n    instances:\n      - {id: ny-1, channel: whatsapp, phone: '+1 212 555 0101', connected: true, limits: {per_day: 1}}\n      - {id: la-1, channel: whatsapp, phone: '+1 310 555 0101', connected: true}\n",
    );
    let contact = r#"{"id":"a","phone":"+1 212 555 7000"}"#;
    let first = message(&plan, &w, "nyc", "whatsapp", MONDAY_10AM_NY, contact);
    assert_eq!((summary(&first), first.rule), ("ny-1".to_owned(), Some("geomatch")));
    let second = message(&plan, &w, "nyc", "whatsapp", MONDAY_10AM_NY, contact);
    assert_eq!((summary(&second), second.rule), ("la-1".to_owned(), Some("geomatch")));
    let detail = second.trace.last().and_then(|t| t.detail.as_deref()).unwrap();
    assert!(detail.contains("country US (+1)"), "{detail}");
    assert!(detail.contains("ny-1 at capacity: 1/1 today"), "{detail}");
}

#[test]
fn send_window_edges_and_retry_at_through_the_binary() {
    // (now, contact, error?, retry_at)
    let cases: [(&str, &str, Option<&str>); 6] = [
        // 07:59:59 and 08:00 in New York (EST): the start is inclusive.
        ("2026-12-07T12:59:59Z", r#"{"id":"a"}"#, Some("2026-12-07T13:00:00Z")),
        ("2026-12-07T13:00:00Z", r#"{"id":"a"}"#, None),
        // 20:59:59 and 21:00: the end is exclusive.
        ("2026-12-08T01:59:59Z", r#"{"id":"a"}"#, None),
        ("2026-12-08T02:00:00Z", r#"{"id":"a"}"#, Some("2026-12-08T13:00:00Z")),
        // The contact's timezone over the location's: 07:00 in Los Angeles.
        ("2026-12-07T15:00:00Z", r#"{"id":"a","timezone":"America/Los_Angeles"}"#, Some("2026-12-07T16:00:00Z")),
        // 22:00 in New York, but 03:00 in London for a London contact.
        ("2026-12-07T03:00:00Z", r#"{"id":"a","timezone":"Europe/London"}"#, Some("2026-12-07T08:00:00Z")),
    ];
    let lines: Vec<String> = cases.iter().map(|(now, c, _)| request_line("nyc", "whatsapp", now, c)).collect();
    for ((now, contact, retry), d) in cases.iter().zip(select_lines(&lines)) {
        match retry {
            None => assert_eq!(d["ok"], Value::Bool(true), "{now} {contact}: {d}"),
            Some(retry) => {
                assert_eq!(d["error"]["code"], 109, "{now} {contact}: {d}");
                assert_eq!(d["error"]["kind"], "outside_send_window");
                assert_eq!(d["rule"], "send_window");
                assert_eq!(d["error"]["retry_at"].as_str(), Some(*retry), "{now} {contact}: {d}");
            }
        }
    }
}

#[test]
fn send_window_opens_at_eight_local_on_both_dst_changes_in_new_york_and_london() {
    let (plan, w) = fixtures();
    let retry = |now: &str, timezone: &str| {
        let d = message(&plan, &w, "nyc", "whatsapp", now, &format!(r#"{{"id":"a","timezone":"{timezone}"}}"#));
        d.error().and_then(|e| e.retry_at.as_deref()).map(|t| t.to_string())
    };
    let ny = "America/New_York";
    let london = "Europe/London";
    // New York: EST→EDT on Sunday 2026-03-08, EDT→EST on Sunday 2026-11-01.
    assert_eq!(retry("2026-03-08T03:00:00Z", ny).as_deref(), Some("2026-03-08T12:00:00Z"));
    assert_eq!(retry("2026-03-07T02:30:00Z", ny).as_deref(), Some("2026-03-07T13:00:00Z"));
    assert_eq!(retry("2026-11-01T03:00:00Z", ny).as_deref(), Some("2026-11-01T13:00:00Z"));
    assert_eq!(retry("2026-10-31T02:30:00Z", ny).as_deref(), Some("2026-10-31T12:00:00Z"));
    // London: GMT→BST on Sunday 2026-03-29, BST→GMT on Sunday 2026-10-25.
    assert_eq!(retry("2026-03-29T00:30:00Z", london).as_deref(), Some("2026-03-29T07:00:00Z"));
    assert_eq!(retry("2026-03-28T22:00:00Z", london).as_deref(), Some("2026-03-29T07:00:00Z"));
    assert_eq!(retry("2026-10-25T00:30:00Z", london).as_deref(), Some("2026-10-25T08:00:00Z"));
    assert_eq!(retry("2026-10-24T21:00:00Z", london).as_deref(), Some("2026-10-25T08:00:00Z"));
    // Inside the window on the change days: no error.
    assert_eq!(retry("2026-03-08T12:00:00Z", ny), None);
    assert_eq!(retry("2026-10-25T08:00:00Z", london), None);
}

#[test]
fn send_window_days_skip_the_weekend_and_unknown_timezones_go_both_ways() {
    let (plan, w) = fixtures();
    // sms in nyc: 09:00–17:30 on weekdays. Friday 18:00 EST → Monday 09:00 EST.
    let friday = message(&plan, &w, "nyc", "sms", "2026-12-11T23:00:00Z", r#"{"id":"a"}"#);
    assert_eq!(
        friday.error().and_then(|e| e.retry_at.as_deref()).map(|t| t.to_string()).as_deref(),
        Some("2026-12-14T14:00:00Z")
    );
    let saturday = message(&plan, &w, "nyc", "sms", "2026-12-12T16:00:00Z", r#"{"id":"a"}"#);
    assert!(saturday.error().unwrap().message.contains("local time is Sat 11:00"), "{:?}", saturday.error());
    assert_eq!(summary(&message(&plan, &w, "nyc", "sms", "2026-12-14T14:00:00Z", r#"{"id":"a"}"#)), "sms-212");
    // London names no timezone: whatsapp allows the unknown, sms denies it
    // (without retry_at).
    let allowed = message(&plan, &w, "london", "whatsapp", "2026-12-07T03:00:00Z", r#"{"id":"a"}"#);
    assert_eq!(summary(&allowed), "ldn-wa");
    let detail = allowed.trace.iter().find(|t| t.rule == "send_window").and_then(|t| t.detail.clone()).unwrap();
    assert!(detail.contains("on_unknown_timezone: allow"), "{detail}");
    let denied = message(&plan, &w, "london", "sms", "2026-12-07T12:00:00Z", r#"{"id":"a"}"#);
    let e = denied.error().unwrap();
    assert_eq!((e.code, e.kind.as_str(), e.retry_at.is_some()), (109, "outside_send_window", false));
    assert!(e.message.contains("on_unknown_timezone is deny"), "{}", e.message);
    // JSON: no `retry_at` key at all.
    assert!(!denied.to_json().contains("retry_at"), "{}", denied.to_json());
    assert_eq!(denied.to_json(), serde_json::to_string(&denied).unwrap());
}

#[test]
fn recipient_fields_are_checked_where_they_are_read() {
    // A phone or timezone of the wrong type is an invalid request; one that
    // does not parse is not.
    let (plan, w) = fixtures();
    let bad =
        select_lines(&[r#"{"location":"nyc","channel":"whatsapp","body":"Hi","contact":{"phone":5551234}}"#.into()]);
    assert_eq!(
        (&bad[0]["error"]["code"], &bad[0]["error"]["kind"]),
        (&Value::from(100), &Value::from("invalid_request"))
    );
    let unparsed = message(&plan, &w, "nyc", "whatsapp", MONDAY_10AM_NY, r#"{"id":"a","phone":"n/a"}"#);
    assert_eq!(unparsed.rule, Some("any_available"));
    // The world's `country` and `reply_window`, and the rules' options.
    let dir = temp_with(&[
        ("w.yaml", "locations:\n  - id: l\n    country: USA\n    instances:\n      - {id: a, channel: sms, reply_window: 1w}\n"),
        (
            "r.yaml",
            "rules:\n  - rule: send_window\n    preset: us_federal\n    start: \"09:00\"\n  - rule: send_window\n    enabled: false\n",
        ),
        ("r2.yaml", "rules:\n  - rule: send_window\n    start: \"21:00\"\n    end: \"08:00\"\n  - rule: geomatch\n    level: city\n"),
    ]);
    let out =
        run(&["check", "--rules", s(&fixture("recipient-rules.yaml")), "--world", s(&dir.path().join("w.yaml"))], "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("w.yaml:3:14: ") && err.contains("`country` must be an ISO 3166 alpha-2"), "{err}");
    assert!(
        err.contains("w.yaml:5:9: ") && err.contains("instance `a`: `reply_window` must be a whole number"),
        "{err}"
    );
    let out = run(&["check", "--rules", s(&dir.path().join("r.yaml"))], "");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("`preset: us_federal` is the window 08:00–21:00, every day"), "{err}");
    let out = run(&["check", "--rules", s(&dir.path().join("r2.yaml"))], "");
    let err = text(&out.stderr);
    assert!(err.contains("must be before `end`"), "{err}");
    assert!(err.contains("got `city`"), "{err}");
    // `exempt_replies` is a duration: `0`, bare or quoted, turns the
    // exemption off; another bare number is refused naming what it wants.
    let dir = temp_with(&[
        ("off.yaml", "rules:\n  - rule: send_window\n    exempt_replies: \"0\"\n  - any_available\n"),
        ("bare.yaml", "rules:\n  - rule: send_window\n    exempt_replies: 0\n  - any_available\n"),
        ("five.yaml", "rules:\n  - rule: send_window\n    exempt_replies: 5\n  - any_available\n"),
    ]);
    for off in ["off.yaml", "bare.yaml"] {
        let out = run(&["check", "--rules", s(&dir.path().join(off))], "");
        assert_eq!(out.status.code(), Some(0), "{off}: {}", text(&out.stderr));
    }
    let out = run(&["check", "--rules", s(&dir.path().join("five.yaml"))], "");
    assert!(
        text(&out.stderr).contains("`send_window.exempt_replies` must be a duration: a whole number and a unit"),
        "{}",
        text(&out.stderr)
    );
    // The fixtures themselves are valid.
    let out = run(&["check", "--rules", &rules(), "--world", &world_file()], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
