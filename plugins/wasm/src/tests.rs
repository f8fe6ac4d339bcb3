//! The host against real modules, written in WAT and assembled here: the
//! load checks, a selection, and each misbehaviour's kind.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::{Registry, Request};
use switchboard_engine::Plan;

use super::*;

/// A module's text: ABI 1 with this manifest, `sb_select` body and
/// `sb_error` text (the input buffer is at 4096, in one page of memory).
pub(crate) fn guest(manifest: &str, select: &str, error: &str) -> String {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{m}")
  (data (i32.const 2048) "{e}")
  (func (export "sb_abi_version") (result i32) (i32.const 1))
  (func (export "sb_alloc") (param $len i32) (result i32) (i32.const 4096))
  (func (export "sb_manifest") (result i64) (i64.const {ml}))
  (func (export "sb_configure") (param $rule i32) (param $ptr i32) (param $len i32) (result i32) (i32.const 0))
  (func (export "sb_error") (result i64) (i64.const {el}))
  (func (export "sb_select") (param $handle i32) (param $ptr i32) (param $len i32) (result i64) {select})
)"#,
        m = esc(manifest),
        e = esc(error),
        ml = manifest.len(),
        el = (2048i64 << 32) | error.len() as i64,
    )
}

pub(crate) const MANIFEST: &str =
    r#"{"name":"probe","version":"0.1.0","rules":[{"id":"probe","code":1500,"options":[]}]}"#;
const ERROR: &str = r#"{"kind":"closed_for_lunch","message":"back at two"}"#;

/// A temp dir with `probe.wasm` assembled from `wat`.
fn module(wat: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.wasm");
    std::fs::write(&path, wat::parse_str(wat).unwrap()).unwrap();
    (dir, path)
}

/// The built-in rules and channels.
fn registry() -> Registry {
    switchboard_rules::link();
    switchboard_channels::link();
    Registry::from_inventory().unwrap_or_else(|e| panic!("{e}"))
}

fn plan_for(dir: &Path, entry: &str, rules: &str) -> Result<Plan, String> {
    let base = Arc::new(registry());
    let text = format!("plugins:\n  - {entry}\nrules: {rules}\n");
    let file = dir.join("rules.yaml");
    switchboard_files::compile_with(&text, &file.display().to_string(), base, Some(&Loader)).map_err(|e| e.to_string())
}

const WORLD: &str = "locations:
  - id: l
    instances:
      - {id: wa-1, channel: whatsapp, index: 1, phone: '+1 555 0001', connected: true}
      - {id: wa-2, channel: whatsapp, index: 2, phone: '+1 555 0002', connected: false}
      - {id: wa-3, channel: whatsapp, index: 3, phone: '+1 555 0003', connected: true, default: true}
";

fn decide(plan: &Plan, body: &str) -> switchboard_engine::Decision {
    let world = switchboard_files::read_world(WORLD, "world.yaml", plan.registry()).unwrap_or_else(|e| panic!("{e}"));
    let request = Request::from_json(&format!(r#"{{"location":"l","channel":"whatsapp","body":"{body}"}}"#)).unwrap();
    plan.select(&world, &request)
}

fn summary(d: &switchboard_engine::Decision) -> String {
    match &d.result {
        Ok(i) => i.id().to_owned(),
        Err(e) => format!("{}/{}", e.code, e.kind),
    }
}

fn run(select: &str) -> switchboard_engine::Decision {
    let (dir, path) = module(&guest(MANIFEST, select, ERROR));
    // A budget no loaded machine exceeds: these guests answer at once.
    let plan =
        plan_for(dir.path(), &format!("wasm: {}\n    timeout_ms: 1000", path.display()), "[probe, default_instance]")
            .unwrap_or_else(|e| panic!("{e}"));
    decide(&plan, "Hi")
}

/// `(outcome << 32) | value`.
fn answer(outcome: i64, value: i64) -> String {
    format!("(i64.const {})", (outcome << 32) | value)
}

#[test]
fn each_outcome_of_the_abi_reaches_the_decision() {
    let d = run(&answer(1, 0));
    assert_eq!((summary(&d), d.rule), ("wa-1".to_owned(), Some("probe")));
    assert_eq!(summary(&run(&answer(1, 2))), "wa-3");
    assert_eq!(summary(&run(&answer(0, 0))), "wa-3", "no_match: the default decides");
    let d = run(&answer(2, 1));
    let trace: Vec<_> = d.trace.iter().map(|t| (t.rule, t.outcome.as_str())).collect();
    assert_eq!(trace, [("probe", "fell_through"), ("default_instance", "selected")]);
    let d = run(&answer(3, 1500));
    let e = d.error().unwrap();
    assert_eq!((e.code, e.kind.as_str(), e.message.as_str()), (1500, "closed_for_lunch", "back at two"));
    // The code is the guest's own (at least 1000), not only the declared one.
    let d = run(&answer(3, 4321));
    assert_eq!(summary(&d), "4321/closed_for_lunch");
    // Selecting a disconnected instance is refused as for any rule: it is
    // unusable, and a WebAssembly rule skips by default.
    let d = run(&answer(1, 1));
    let trace: Vec<_> = d.trace.iter().map(|t| (t.rule, t.outcome.as_str())).collect();
    assert_eq!(trace, [("probe", "fell_through"), ("default_instance", "selected")]);
}

#[test]
fn the_input_is_the_json_of_the_spec() {
    // Answers the byte at offset 4096 + 2 of the input (`l` of `location`)
    // as a failed code 1000 + that byte, to show what reached the guest.
    let select = "(i64.or (i64.const 0x300000000) (i64.add (i64.const 1000) (i64.load8_u (i32.const 4098))))";
    let d = run(select);
    assert_eq!(d.error().unwrap().kind.as_str(), "closed_for_lunch");
    let registry = registry();
    let world = switchboard_files::read_world(WORLD, "world.yaml", &registry).unwrap();
    let request = Request::from_json(
        r#"{"location":"l","channel":"whatsapp","body":"Hi \"there\" {WA#2}","contact":{"id":"c1","tags":["vip"]}}"#,
    )
    .unwrap();
    let location = world.location("l").unwrap();
    let position = registry.channel_position("whatsapp").unwrap();
    let channel = &registry.channels()[position];
    let scan = registry.scanner().scan(&request.body);
    let cx = switchboard_core::RuleContext::new(&request, channel, position, location.channel("whatsapp"), &scan);
    let mut out = Vec::new();
    input::write(&mut out, &cx);
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let want = serde_json::json!({
        "location": "l", "channel": "whatsapp", "body": "Hi \"there\" {WA#2}",
        "contact": {"id": "c1", "tags": ["vip"], "assigned_user": null, "phone": null, "timezone": null},
        "instances": [
            {"id": "wa-1", "index": 1, "phone": "+1 555 0001", "connected": true, "usable": true, "users": [], "weight": 1},
            {"id": "wa-2", "index": 2, "phone": "+1 555 0002", "connected": false, "usable": false, "users": [], "weight": 1},
            {"id": "wa-3", "index": 3, "phone": "+1 555 0003", "connected": true, "usable": true, "users": [], "weight": 1},
        ]
    });
    assert_eq!(json, want);
    // A quarantined instance (live state) is connected and not usable.
    let until: switchboard_core::capacity::jiff::Timestamp = "2026-12-07T15:05:00Z".parse().unwrap();
    let quarantined = location.with_live(|i| (None, (i.id() == "wa-1").then_some(until))).unwrap();
    let cx = switchboard_core::RuleContext::new(&request, channel, position, quarantined.channel("whatsapp"), &scan);
    input::write(&mut out, &cx);
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (&json["instances"][0]["connected"], &json["instances"][0]["usable"]),
        (&serde_json::json!(true), &serde_json::json!(false))
    );
    assert_eq!(json["instances"][2]["usable"], true);
    let request = Request::from_json(r#"{"location":"l","channel":"whatsapp","body":""}"#).unwrap();
    let cx = switchboard_core::RuleContext::new(&request, channel, position, location.channel("whatsapp"), &scan);
    input::write(&mut out, &cx);
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        json["contact"],
        serde_json::json!({"id": null, "tags": null, "assigned_user": null, "phone": null, "timezone": null})
    );
    // The recipient's phone and timezone, as the request wrote them.
    let request = Request::from_json(
        r#"{"location":"l","channel":"whatsapp","body":"","contact":{"id":"c2","phone":"+1 646 555 0100","timezone":"America/New_York"}}"#,
    )
    .unwrap();
    let cx = switchboard_core::RuleContext::new(&request, channel, position, location.channel("whatsapp"), &scan);
    input::write(&mut out, &cx);
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (json["contact"]["phone"].as_str(), json["contact"]["timezone"].as_str()),
        (Some("+1 646 555 0100"), Some("America/New_York"))
    );
    // The instances as first written (kept, then copied), not as the
    // quarantined location's.
    assert_eq!(json["instances"], want["instances"]);
}

#[test]
fn every_misbehaviour_fails_with_the_rules_code_and_its_kind() {
    let cases = [
        ("unreachable", "plugin_trap", "unreachable"),
        ("(loop $l (br $l)) (i64.const 0)", "plugin_timeout", "ran past its budget of 1000 ms"),
        ("(drop (memory.grow (i32.const 1000))) (i64.const 0)", "plugin_out_of_memory", "past 16 MiB"),
        (&answer(7, 0), "plugin_invalid_answer", "outcome 7"),
        (&answer(1, 3), "plugin_invalid_answer", "position 3, but the input lists 3 instance(s)"),
        (&answer(2, 9), "plugin_invalid_answer", "position 9"),
        (&answer(3, 999), "plugin_invalid_answer", "code 999"),
        ("(i64.const -1)", "plugin_invalid_answer", "outcome -1"),
    ];
    for (select, kind, says) in cases {
        let d = run(select);
        let e = d.error().unwrap_or_else(|| panic!("{select}: {}", summary(&d)));
        assert_eq!((e.code, e.kind.as_str()), (1500, kind), "{select}");
        assert!(e.message.contains(says) && e.message.contains("probe"), "{select}: {}", e.message);
    }
    // An `sb_error` that is not the JSON of the ABI.
    for error in ["not json", r#"{"message":"no kind"}"#, r#"{"kind":"","message":"x"}"#] {
        let (dir, path) = module(&guest(MANIFEST, &answer(3, 1500), error));
        let plan = plan_for(dir.path(), &format!("wasm: {}\n    timeout_ms: 1000", path.display()), "[probe]").unwrap();
        let e = decide(&plan, "Hi").error().cloned().unwrap();
        assert_eq!((e.code, e.kind.as_str()), (1500, "plugin_invalid_answer"), "{error}");
    }
}

#[test]
fn a_runaway_guest_costs_its_budget_and_the_next_call_gets_a_fresh_instance() {
    // Loops when the body says so, else selects #1: one instance, spoiled
    // by the loop, is replaced before the next consultation.
    let select = "(if (i32.eq (i32.load8_u (i32.add (local.get $ptr) (i32.const 45))) (i32.const 0x21)) \
                  (then (loop $l (br $l)))) (i64.const 0x100000000)";
    let (dir, path) = module(&guest(MANIFEST, select, ERROR));
    let plan = plan_for(dir.path(), &format!("wasm: {}\n    timeout_ms: 50", path.display()), "[probe]").unwrap();
    // `{"location":"l","channel":"whatsapp","body":"` is 45 bytes.
    let started = Instant::now();
    let d = decide(&plan, "!loop");
    let took = started.elapsed();
    assert_eq!(summary(&d), "1500/plugin_timeout");
    assert!(took >= Duration::from_millis(45) && took < Duration::from_millis(1000), "{took:?}");
    for _ in 0..3 {
        assert_eq!(summary(&decide(&plan, "calm")), "wa-1");
    }
}

#[test]
fn out_of_memory_is_reported_even_when_the_guest_carries_on() {
    // memory.grow answers -1 past the cap; the guest then selects anyway.
    let select = "(drop (memory.grow (i32.const 64))) (i64.const 0x100000000)";
    let (dir, path) = module(&guest(MANIFEST, select, ERROR));
    let plan = plan_for(dir.path(), &format!("wasm: {}\n    max_memory_mb: 2", path.display()), "[probe]").unwrap();
    assert_eq!(summary(&decide(&plan, "Hi")), "1500/plugin_out_of_memory");
    // Under the cap, the same growth is fine.
    let plan = plan_for(dir.path(), &format!("wasm: {}\n    max_memory_mb: 8", path.display()), "[probe]").unwrap();
    assert_eq!(summary(&decide(&plan, "Hi")), "wa-1");
}

#[test]
fn concurrent_decisions_each_get_their_own_instance() {
    // Marks itself busy in its memory for the length of a call and traps
    // if it finds the mark already set: an instance shared by two
    // decisions at once would trap.
    let select = "(local $i i32) \
                  (if (i32.load (i32.const 8192)) (then unreachable)) \
                  (i32.store (i32.const 8192) (i32.const 1)) \
                  (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) \
                    (br_if $l (i32.lt_u (local.get $i) (i32.const 2000)))) \
                  (i32.store (i32.const 8192) (i32.const 0)) \
                  (i64.const 0x100000000)";
    let (dir, path) = module(&guest(MANIFEST, select, ERROR));
    let entry = format!("wasm: {}\n    timeout_ms: 2000", path.display());
    let plan = Arc::new(plan_for(dir.path(), &entry, "[probe]").unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let plan = plan.clone();
            std::thread::spawn(move || (0..50).all(|_| summary(&decide(&plan, "Hi")) == "wa-1"))
        })
        .collect();
    assert!(threads.into_iter().all(|t| t.join().unwrap()));
}

#[test]
fn each_load_refusal_names_the_file_and_what_is_wrong() {
    let good = guest(MANIFEST, &answer(0, 0), ERROR);
    let cases: Vec<(String, &str)> = vec![
        (
            good.replace(r#"(export "sb_select")"#, ""),
            "does not export `sb_select`; ABI 1 needs `sb_select: (i32, i32, i32) -> i64`",
        ),
        (good.replace(r#"(memory (export "memory") 1)"#, "(memory 1)"), "does not export `memory`"),
        (good.replace("(result i32) (i32.const 1))", "(result i32) (i32.const 2))"), "speaks WebAssembly plugin ABI 2"),
        (
            good.replace(r#"(func (export "sb_error") (result i64)"#, r#"(func (export "sb_error") (result i32)"#)
                .replace(&format!("(i64.const {})", (2048i64 << 32) | ERROR.len() as i64), "(i32.const 0)"),
            "exports `sb_error` with the wrong signature",
        ),
        (
            guest(r#"{"name":"probe","version":"1","rules":[{"id":"probe","code":999}]}"#, "(i64.const 0)", ERROR),
            "declares error code 999; plugin rule codes start at 1000",
        ),
        (guest("{not json", "(i64.const 0)", ERROR), "its manifest (`sb_manifest`) is invalid"),
        (
            guest(
                r#"{"name":"probe","version":"1","rules":[{"id":"any_available","code":1000}]}"#,
                "(i64.const 0)",
                ERROR,
            ),
            "already registered",
        ),
        (
            good.replace(
                "(module",
                r#"(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32))) "#,
            ),
            "imports `wasi_snapshot_preview1::fd_write`",
        ),
        (
            good.replace(
                r#"(func (export "sb_abi_version") (result i32) (i32.const 1))"#,
                r#"(func (export "sb_abi_version") (result i32) (loop $l (br $l)) (i32.const 1))"#,
            ),
            "`sb_abi_version` failed: it ran past its budget",
        ),
        (
            good.replace(r#"(memory (export "memory") 1)"#, r#"(memory (export "memory") 512)"#),
            "cannot be started: it tried to grow its memory past 16 MiB",
        ),
    ];
    for (wat, want) in cases {
        let (dir, path) = module(&wat);
        let e = plan_for(dir.path(), "wasm: probe.wasm", "[any_available]").unwrap_err();
        assert!(e.contains("rules.yaml:2:") && e.contains("probe.wasm") && e.contains(want), "{want}: {e}");
        drop(path);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probe.wasm"), "(module)").unwrap();
    let e = plan_for(dir.path(), "wasm: probe.wasm", "[any_available]").unwrap_err();
    assert!(e.contains("is not a WebAssembly module (no `\\0asm` header)"), "{e}");
    std::fs::write(dir.path().join("probe.wasm"), b"\0asm\x0d\0\x01\0").unwrap();
    let e = plan_for(dir.path(), "wasm: probe.wasm", "[any_available]").unwrap_err();
    assert!(e.contains("is not a core WebAssembly module"), "{e}");
    std::fs::write(dir.path().join("probe.wasm"), b"\0asm\x01\0\0\0\x99").unwrap();
    let e = plan_for(dir.path(), "wasm: probe.wasm", "[any_available]").unwrap_err();
    assert!(e.contains("is not a valid WebAssembly module"), "{e}");
    let e = plan_for(dir.path(), "wasm: gone.wasm", "[any_available]").unwrap_err();
    assert!(e.contains("no such file; plugin paths are relative to the rules file"), "{e}");
}

#[test]
fn entries_are_checked_where_they_stand() {
    let (dir, _) = module(&guest(MANIFEST, &answer(0, 0), ERROR));
    let cases = [
        (
            "wasm: probe.wasm\n    max_memory: 4",
            "unknown field `max_memory` in a WebAssembly plugin entry (did you mean `max_memory_mb`?)",
        ),
        (
            "wasm: probe.wasm\n    timeout_ms: 0",
            "`timeout_ms` must be a whole number of milliseconds from 1 to 60000; got `0`",
        ),
        ("wasm: probe.wasm\n    max_memory_mb: lots", "`max_memory_mb` must be a whole number of MiB from 1 to 4096"),
        ("wasm: probe.wasm\n    sha256: abc", "`sha256` must be 64 hexadecimal digits (run `sha256sum` on the module)"),
        ("wasm: probe.wasm\n    path: x.so", "unknown field `path` in a WebAssembly plugin entry"),
        ("path: x.so\n    timeout_ms: 5", "unknown field `timeout_ms` in a plugin entry"),
        (&format!("wasm: probe.wasm\n    sha256: {}", "0".repeat(64)), "sha256 mismatch: the file's is"),
        (
            "wasm: probe.wasm\n  - wasm: ./probe.wasm",
            "plugin `./probe.wasm` is listed twice: the entry at line 2 already lists it as `probe.wasm`",
        ),
    ];
    for (entry, want) in cases {
        let e = plan_for(dir.path(), entry, "[any_available]").unwrap_err();
        assert!(e.contains("rules.yaml:") && e.contains(want), "{entry}: {e}");
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join("probe.wasm"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let e = plan_for(dir.path(), "wasm: probe.wasm", "[any_available]").unwrap_err();
    assert!(e.contains("is world-writable (mode 666)"), "{e}");
}

#[test]
fn options_reach_configure_as_json_and_a_refusal_is_the_operators_error() {
    // Refuses unless the options object is exactly the expected JSON.
    let manifest = r#"{"name":"opts","version":"1","rules":[{"id":"opts","code":1600,"options":[{"name":"tag","kind":"string","default":"vip"},{"name":"n","kind":"integer","default":3},{"name":"on","kind":"boolean","default":false},{"name":"tags","kind":"list","default":[]},{"name":"window","kind":"duration","default":"7d"}]}]}"#;
    let want = r#"{"n":5,"on":false,"tag":"vip","tags":["a","b"],"window":"2h"}"#;
    let wat = guest(manifest, &answer(0, 0), r#"{"kind":"bad_options","message":"these options are wrong"}"#).replace(
        "(param $rule i32) (param $ptr i32) (param $len i32) (result i32) (i32.const 0))",
        &format!(
            "(param $rule i32) (param $ptr i32) (param $len i32) (result i32) \
                 (if (result i32) (i32.and (i32.eq (local.get $len) (i32.const {len})) \
                   (i32.eq (i32.load8_u (i32.add (local.get $ptr) (i32.const 2))) (i32.const 0x6e))) \
                   (then (i32.const 7)) (else (i32.const -1))))",
            len = want.len()
        ),
    );
    let (dir, path) = module(&wat);
    let entry = format!("wasm: {}\n    timeout_ms: 1000", path.display());
    let plan = plan_for(dir.path(), &entry, "[{rule: opts, n: 5, tags: [a, b], window: 2h}]");
    assert!(plan.is_ok(), "{}", plan.err().unwrap_or_default());
    let e = plan_for(dir.path(), &entry, "[{rule: opts, n: 50}]").unwrap_err();
    assert!(
        e.contains("rules.yaml:4:") && e.contains("rule `opts` refused these options: these options are wrong"),
        "{e}"
    );
    let e = plan_for(dir.path(), &entry, "[{rule: opts, window: soon}]").unwrap_err();
    assert!(e.contains("option `window`: `soon` is not a duration"), "{e}");
    let e = plan_for(dir.path(), &entry, "[{rule: opts, n: five}]").unwrap_err();
    assert!(e.contains("rules.yaml:4:"), "{e}");
}

#[test]
fn a_changed_module_is_loaded_again_and_an_unchanged_one_reused() {
    let (dir, path) = module(&guest(MANIFEST, &answer(1, 0), ERROR));
    let entry = format!("wasm: {}", path.display());
    let rules = dir.path().join("rules.yaml").display().to_string();
    let plan = plan_for(dir.path(), &entry, "[probe]").unwrap();
    assert_eq!(summary(&decide(&plan, "Hi")), "wa-1");
    assert!(!modules_changed(plan.plugins(), &rules));
    std::fs::write(&path, wat::parse_str(guest(MANIFEST, &answer(1, 2), ERROR)).unwrap()).unwrap();
    assert!(modules_changed(plan.plugins(), &rules));
    assert_eq!(summary(&decide(&plan, "Hi")), "wa-1", "a plan keeps the module it was built with");
    let plan = plan_for(dir.path(), &entry, "[probe]").unwrap();
    assert_eq!(summary(&decide(&plan, "Hi")), "wa-3");
    assert!(!modules_changed(plan.plugins(), &rules));
}

/// A guest whose answer is the 16 lower-case hex digits of the body (the
/// body starts 45 bytes into the input).
const ECHO_HEX: &str = "(local $i i32) (local $v i64) (local $c i32)
  (loop $next
    (local.set $c (i32.load8_u (i32.add (local.get $ptr) (i32.add (i32.const 45) (local.get $i)))))
    (local.set $v (i64.or (i64.shl (local.get $v) (i64.const 4))
      (i64.extend_i32_u (select (i32.sub (local.get $c) (i32.const 48)) (i32.sub (local.get $c) (i32.const 87))
                                (i32.lt_u (local.get $c) (i32.const 58))))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br_if $next (i32.lt_u (local.get $i) (i32.const 16))))
  (local.get $v)";

/// The decision the contract allows for `answer` (in the world above:
/// #1 connected, #2 disconnected, #3 the connected default), as
/// [`summary`] writes it, with the trace.
fn contract(answer: i64) -> (String, Vec<(&'static str, &'static str)>) {
    let (outcome, value) = (answer >> 32, answer & 0xffff_ffff);
    let fallback = || ("wa-3".to_owned(), vec![("probe", "fell_through"), ("default_instance", "selected")]);
    let invalid = || ("1500/plugin_invalid_answer".to_owned(), vec![("probe", "failed")]);
    match (outcome, value) {
        (0, _) => ("wa-3".to_owned(), vec![("probe", "no_match"), ("default_instance", "selected")]),
        (1, 0) => ("wa-1".to_owned(), vec![("probe", "selected")]),
        (1, 2) => ("wa-3".to_owned(), vec![("probe", "selected")]),
        (1 | 2, 0..=2) => fallback(),
        (3, 1000..) => (format!("{value}/closed_for_lunch"), vec![("probe", "failed")]),
        _ => invalid(),
    }
}

fn echo_plan() -> &'static Plan {
    static PLAN: std::sync::OnceLock<(tempfile::TempDir, Plan)> = std::sync::OnceLock::new();
    let (_, plan) = PLAN.get_or_init(|| {
        let (dir, path) = module(&guest(MANIFEST, ECHO_HEX, ERROR));
        // A generous budget: this test is about answers, not time.
        let entry = format!("wasm: {}\n    timeout_ms: 1000", path.display());
        let plan = plan_for(dir.path(), &entry, "[probe, default_instance]").unwrap_or_else(|e| panic!("{e}"));
        (dir, plan)
    });
    plan
}

fn answers() -> impl proptest::strategy::Strategy<Value = i64> {
    use proptest::prelude::*;
    prop_oneof![
        any::<i64>(),
        (0i64..6, 0i64..5).prop_map(|(o, v)| (o << 32) | v),
        (0i64..6, any::<u32>()).prop_map(|(o, v)| (o << 32) | i64::from(v)),
        (3i64..4, 990i64..1010).prop_map(|(o, v)| (o << 32) | v),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Whatever i64 a guest answers, the decision is the one the contract
    /// gives: never a disconnected or foreign instance, never a code under
    /// 1000.
    #[test]
    fn a_guest_answering_any_i64_never_leaves_the_contract(answer in answers()) {
        let d = decide(echo_plan(), &format!("{:016x}", answer.cast_unsigned()));
        let trace: Vec<_> = d.trace.iter().map(|t| (t.rule, t.outcome.as_str())).collect();
        let (want, want_trace) = contract(answer);
        proptest::prop_assert_eq!(summary(&d), want);
        proptest::prop_assert_eq!(trace, want_trace);
        if let Ok(instance) = &d.result {
            proptest::prop_assert!(instance.is_connected());
        }
    }
}

/// The complete WAT module of docs/wasm-plugins.md, in a plan
/// `[vip_first]`.
fn docs_plan() -> &'static Plan {
    static PLAN: std::sync::OnceLock<(tempfile::TempDir, Plan)> = std::sync::OnceLock::new();
    let (_, plan) = PLAN.get_or_init(|| {
        let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/wasm-plugins.md")).unwrap();
        let start = docs.find("```wat\n").unwrap() + "```wat\n".len();
        let end = start + docs[start..].find("```").unwrap();
        let (dir, path) = module(&docs[start..end]);
        let entry = format!("wasm: {}\n    timeout_ms: 1000", path.display());
        let plan = plan_for(dir.path(), &entry, "[vip_first]").unwrap_or_else(|e| panic!("{e}"));
        (dir, plan)
    });
    plan
}

/// Text that JSON must escape or that looks like what the docs module
/// searches for.
fn tricky() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::strategy::Strategy as _;
    proptest::collection::vec(
        proptest::sample::select(vec![
            "vip",
            "\"vip\"",
            "v",
            "ip",
            "\"",
            "\\",
            "]",
            "[",
            ",",
            "\"tags\":[",
            "usable\":true",
            "é",
            " ",
            "x",
        ]),
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// The docs module decides as its description says, whatever the tags,
    /// the body and the instances' users hold, on inputs of every length
    /// (its search reads sixteen bytes at a time).
    #[test]
    fn the_docs_module_selects_the_first_usable_instance_for_a_vip_tag(
        tags in proptest::option::of(proptest::collection::vec(tricky(), 0..6)),
        body in tricky(),
        instances in proptest::collection::vec((proptest::bool::ANY, tricky()), 1..9),
    ) {
        use std::fmt::Write as _;
        let mut world = String::from("locations:\n  - id: l\n    instances:\n");
        for (n, (connected, user)) in instances.iter().enumerate() {
            let user = serde_json::to_string(user).unwrap();
            let index = n + 1;
            writeln!(world, "      - {{id: wa-{n}, channel: whatsapp, index: {index}, phone: '{index}', connected: {connected}, users: [{user}]}}").unwrap();
        }
        let world = switchboard_files::read_world(&world, "world.yaml", docs_plan().registry()).unwrap_or_else(|e| panic!("{e}"));
        let mut request = serde_json::json!({"location": "l", "channel": "whatsapp", "body": body});
        if let Some(tags) = &tags {
            request["contact"] = serde_json::json!({"id": "c", "tags": tags});
        }
        let parsed = Request::from_json(&request.to_string()).unwrap();
        let d = docs_plan().select(&world, &parsed);
        // (The tags as the request keeps them.)
        let vip = parsed.contact.as_ref().is_some_and(|c| c.tags.iter().any(|t| t == "vip"));
        let want = instances.iter().position(|(connected, _)| *connected).filter(|_| vip).map(|n| format!("wa-{n}"));
        let got = d.rule.filter(|r| *r == "vip_first").and_then(|_| d.instance().map(|i| i.id().to_owned()));
        proptest::prop_assert_eq!(got, want, "{}", request);
    }
}

#[test]
fn the_docs_module_reads_an_input_longer_than_its_first_page() {
    // A body of 62 000 bytes: the input (at 4096) does not fit the
    // module's first page, and `sb_alloc` grows its memory.
    let world = switchboard_files::read_world(WORLD, "world.yaml", docs_plan().registry()).unwrap();
    for (tags, want) in [(r#"["vip"]"#, Some("wa-1")), (r#"["vi"]"#, None)] {
        let body = "x".repeat(62_000);
        let request = format!(r#"{{"location":"l","channel":"whatsapp","body":"{body}","contact":{{"tags":{tags}}}}}"#);
        let d = docs_plan().select(&world, &Request::from_json(&request).unwrap());
        assert_eq!(
            d.rule.filter(|r| *r == "vip_first").and(d.instance().map(|i| i.id())),
            want,
            "{tags}: {:?}",
            d.result
        );
    }
}
