//! WebAssembly plugins (docs/wasm-plugins.md) through the binary: real modules written
//! in WAT (the docs' complete example among them), assembled here with the
//! `wat` crate; `select`, `check`, `rules`, `schema`, `explain` and `serve`
//! with a reload that swaps the module.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::serve::{get, post, Server};
use crate::util::*;

const WORLD: &str = "locations:
  - id: l
    instances:
      - {id: wa-1, channel: whatsapp, index: 1, phone: '+1 555 0001', connected: false}
      - {id: wa-2, channel: whatsapp, index: 2, phone: '+1 555 0002', connected: true}
      - {id: wa-3, channel: whatsapp, index: 3, phone: '+1 555 0003', connected: true, default: true}
      - {id: sms-1, channel: sms, index: 1, phone: '+1 555 0101', connected: true, default: true}
";

/// The complete WAT example of docs/wasm-plugins.md, assembled.
fn docs_module() -> Vec<u8> {
    let docs = fs::read_to_string(repo_file("docs/wasm-plugins.md")).unwrap();
    let start = docs.find("```wat\n").expect("the docs have a ```wat block") + "```wat\n".len();
    let end = start + docs[start..].find("```").unwrap();
    wat::parse_str(&docs[start..end]).unwrap_or_else(|e| panic!("the docs' WAT does not assemble: {e}"))
}

/// A module of ABI 1 with one rule, `id` (code 1500), whose `sb_select`
/// body is `select` (its input is at `$ptr`, `$len` bytes); `sb_error`
/// answers `closed_for_lunch`.
fn probe(id: &str, select: &str) -> Vec<u8> {
    let manifest =
        format!(r#"{{"name":"probe","version":"0.1.0","rules":[{{"id":"{id}","code":1500,"options":[]}}]}}"#);
    let error = r#"{"kind":"closed_for_lunch","message":"back at two"}"#;
    let esc = |s: &str| s.replace('"', "\\\"");
    let wat = format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{m}")
  (data (i32.const 2048) "{e}")
  (func (export "sb_abi_version") (result i32) (i32.const 1))
  (func (export "sb_alloc") (param $len i32) (result i32) (i32.const 4096))
  (func (export "sb_manifest") (result i64) (i64.const {ml}))
  (func (export "sb_configure") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "sb_error") (result i64) (i64.const {el}))
  (func (export "sb_select") (param $handle i32) (param $ptr i32) (param $len i32) (result i64) {select}))"#,
        m = esc(&manifest),
        e = esc(error),
        ml = manifest.len(),
        el = (2048i64 << 32) | error.len() as i64,
    );
    wat::parse_str(wat).unwrap()
}

/// `(outcome << 32) | value` as a WAT constant.
fn answer(outcome: i64, value: i64) -> String {
    format!("(i64.const {})", (outcome << 32) | value)
}

/// A temp dir with `world.yaml`, `rules.yaml` and `plugins/<name>` modules.
fn setup(rules: &str, modules: &[(&str, Vec<u8>)]) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = temp_with(&[("world.yaml", WORLD), ("rules.yaml", rules)]);
    fs::create_dir(dir.path().join("plugins")).unwrap();
    for (name, bytes) in modules {
        fs::write(dir.path().join("plugins").join(name), bytes).unwrap();
    }
    let (rules, world) = (dir.path().join("rules.yaml"), dir.path().join("world.yaml"));
    (dir, rules, world)
}

const VIP: &str = r#"{"location":"l","channel":"whatsapp","body":"Hi","contact":{"id":"c","tags":["new","vip"]}}"#;
const PLAIN: &str = r#"{"location":"l","channel":"whatsapp","body":"Hi","contact":{"id":"c","tags":["new"]}}"#;
const SMS: &str = r#"{"location":"l","channel":"sms","body":"Hi"}"#;
/// (With a budget no loaded machine exceeds: the module answers at once.)
const VIP_RULES: &str =
    "plugins:\n  - wasm: plugins/vip_first.wasm\n    timeout_ms: 1000\nrules: [vip_first, default_instance]\n";

fn lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn the_docs_module_selects_checks_and_is_listed_through_the_binary() {
    let (_dir, rules, world) = setup(VIP_RULES, &[("vip_first.wasm", docs_module())]);
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &format!("{VIP}\n{PLAIN}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let d = lines(&out);
    // wa-1 is disconnected: the first usable instance is wa-2.
    assert_eq!((d[0]["instance"]["id"].as_str(), d[0]["rule"].as_str()), (Some("wa-2"), Some("vip_first")), "{}", d[0]);
    assert_eq!((d[1]["instance"]["id"].as_str(), d[1]["rule"].as_str()), (Some("wa-3"), Some("default_instance")));
    let out = run(&["check", "--rules", s(&rules), "--world", s(&world)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(&["rules", "--rules", s(&rules)], "");
    let listing = text(&out.stdout);
    let line = listing.lines().find(|l| l.trim_start().starts_with("vip_first")).unwrap();
    assert!(line.contains("code 1100") && line.contains("wasm plugin ") && line.contains("vip_first.wasm"), "{line}");
    assert!(listing.contains("vip-first 1.0.0"), "{listing}");
    let out = run(&["rules", "--format", "json", "--rules", s(&rules)], "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = json["rules"].as_array().unwrap().iter().find(|r| r["id"] == "vip_first").unwrap().clone();
    assert_eq!((rule["code"].as_u64(), rule["source"]["kind"].as_str()), (Some(1100), Some("wasm")), "{rule}");
    assert!(rule["source"]["path"].as_str().unwrap().ends_with("plugins/vip_first.wasm"), "{rule}");
    let out = run(&["schema", "rules", "--rules", s(&rules)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["$defs"]["rule_id"]["enum"].as_array().unwrap().iter().any(|id| id == "vip_first"), "{schema}");
    let request = rules.with_file_name("request.json");
    fs::write(&request, VIP).unwrap();
    let out = run(&["explain", "--rules", s(&rules), "--world", s(&world), "--request", s(&request)], "");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("vip_first"), "{}", text(&out.stdout));
}

#[test]
fn an_instance_found_at_capacity_reaches_the_module_as_not_usable() {
    // wa-2 takes one message a day: the second vip request finds it full,
    // and vip_first, consulted again, reads it as not usable and picks wa-3.
    let (dir, rules, _) = setup(VIP_RULES, &[("vip_first.wasm", docs_module())]);
    let world = dir.path().join("limited.yaml");
    fs::write(
        &world,
        WORLD.replace(
            "connected: true}\n      - {id: wa-3",
            "connected: true, limits: {per_day: 1}}\n      - {id: wa-3",
        ),
    )
    .unwrap();
    assert!(fs::read_to_string(&world).unwrap().contains("per_day: 1"));
    let vip = VIP.replace("\"body\"", "\"now\":\"2026-12-07T12:00:00Z\",\"body\"");
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &format!("{vip}\n{vip}\n{vip}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let picked: Vec<_> = lines(&out).iter().map(|d| (d["instance"]["id"].clone(), d["rule"].clone())).collect();
    let want = |id: &str| (serde_json::json!(id), serde_json::json!("vip_first"));
    assert_eq!(picked, [want("wa-2"), want("wa-3"), want("wa-3")]);
}

#[test]
fn every_sandbox_row_fails_with_the_rules_code_and_the_next_request_is_answered() {
    let rows = [
        ("unreachable".to_owned(), "plugin_trap"),
        ("(loop $l (br $l)) (i64.const 0)".to_owned(), "plugin_timeout"),
        ("(drop (memory.grow (i32.const 4096))) (i64.const 0)".to_owned(), "plugin_out_of_memory"),
        (answer(9, 0), "plugin_invalid_answer"),
        (answer(1, 7), "plugin_invalid_answer"),
        (answer(3, 12), "plugin_invalid_answer"),
    ];
    for (select, kind) in rows {
        // A budget that only the runaway row reaches, however loaded the machine.
        let rules = "plugins:\n  - wasm: plugins/probe.wasm\n    timeout_ms: 1000\nrules: [probe, default_instance]\nchannels:\n  sms:\n    rules: [default_instance]\n";
        let (_dir, rules, world) = setup(rules, &[("probe.wasm", probe("probe", &select))]);
        let started = Instant::now();
        let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &format!("{PLAIN}\n{PLAIN}\n{SMS}\n"));
        assert_eq!(out.status.code(), Some(0), "{select}: {}", text(&out.stderr));
        let d = lines(&out);
        for decision in &d[..2] {
            assert_eq!(
                (decision["error"]["code"].as_u64(), decision["error"]["kind"].as_str(), decision["rule"].as_str()),
                (Some(1500), Some(kind), Some("probe")),
                "{select}: {decision}"
            );
        }
        assert_eq!(d[2]["instance"]["id"], "sms-1", "every other request is answered");
        assert!(started.elapsed() < Duration::from_secs(10), "{select}");
    }
    // Failed with its code and sb_error's kind and message.
    let (_dir, rules, world) = setup(
        "plugins: [{wasm: plugins/probe.wasm, timeout_ms: 1000}]\nrules: [probe]\n",
        &[("probe.wasm", probe("probe", &answer(3, 1501)))],
    );
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &format!("{PLAIN}\n"));
    let d = &lines(&out)[0];
    assert_eq!(
        (d["error"]["code"].as_u64(), d["error"]["kind"].as_str(), d["error"]["message"].as_str()),
        (Some(1501), Some("closed_for_lunch"), Some("back at two"))
    );
}

const ABI_1: &str = r#"(func (export "sb_abi_version") (result i32) (i32.const 1))"#;
const ABI_2: &str = r#"(func (export "sb_abi_version") (result i32) (i32.const 2))"#;

#[test]
fn every_load_refusal_is_located_and_named_by_check() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not a module".to_vec(), "is not a WebAssembly module (no `\\0asm` header)"),
        (wat::parse_str(module_with("", 1500)).unwrap(), "does not export `sb_abi_version`; ABI 1 needs"),
        (
            wat::parse_str(module_with(ABI_2, 1500)).unwrap(),
            "speaks WebAssembly plugin ABI 2, but this Switchboard speaks ABI 1",
        ),
        (wat::parse_str(module_with(ABI_1, 999)).unwrap(), "declares error code 999; plugin rule codes start at 1000"),
        (probe("Bad Id", &answer(0, 0)), "has id `Bad Id`"),
        (probe("any_available", &answer(0, 0)), "rule `any_available` from wasm plugin"),
    ];
    for (bytes, want) in cases {
        let (_dir, rules, world) =
            setup("plugins:\n  - wasm: plugins/probe.wasm\nrules: [any_available]\n", &[("probe.wasm", bytes)]);
        let out = run(&["check", "--rules", s(&rules), "--world", s(&world)], "");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{want}: {stderr}");
        assert!(
            stderr.contains("rules.yaml:2:") && stderr.contains("probe.wasm") && stderr.contains(want),
            "{want}: {stderr}"
        );
    }
}

/// A module with one rule `probe` of `code` that never applies, whose
/// `sb_abi_version` export is `abi` (empty: not exported at all).
fn module_with(abi: &str, code: u32) -> String {
    let manifest =
        format!(r#"{{"name":"probe","version":"0.1.0","rules":[{{"id":"probe","code":{code},"options":[]}}]}}"#);
    format!(
        r#"(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{m}")
  {abi}
  (func (export "sb_alloc") (param i32) (result i32) (i32.const 4096))
  (func (export "sb_manifest") (result i64) (i64.const {ml}))
  (func (export "sb_configure") (param i32 i32 i32) (result i32) (i32.const 0))
  (func (export "sb_error") (result i64) (i64.const 0))
  (func (export "sb_select") (param i32 i32 i32) (result i64) (i64.const 0)))"#,
        m = manifest.replace('"', "\\\""),
        ml = manifest.len()
    )
}

/// Replaces a file as a deploy tool does: a temporary beside it, renamed over.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn serve_reload_swaps_the_module_and_a_refused_module_keeps_the_previous_configuration() {
    let (dir, rules, world) = setup(VIP_RULES, &[("vip_first.wasm", docs_module())]);
    let module = dir.path().join("plugins/vip_first.wasm");
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world)]);
    let (status, d) = post(&server.url("/v1/select"), VIP);
    assert_eq!(
        (status, d["instance"]["id"].as_str(), d["rule"].as_str()),
        (200, Some("wa-2"), Some("vip_first")),
        "{d}"
    );
    let (_, listing) = get(&server.url("/v1/rules"));
    let rule = listing["rules"].as_array().unwrap().iter().find(|r| r["id"] == "vip_first").unwrap().clone();
    assert_eq!(rule["source"]["kind"], "wasm", "{rule}");
    // A new build of the module (same rule id) always picks position 2.
    replace(&module, &probe("vip_first", &answer(1, 2)));
    let (status, body) = post(&server.url("/v1/reload"), "");
    assert_eq!(status, 200, "{body}");
    let generation = body["generation"].as_u64().unwrap();
    assert!(generation >= 2, "{body}");
    let (_, d) = post(&server.url("/v1/select"), PLAIN);
    assert_eq!((d["instance"]["id"].as_str(), d["rule"].as_str()), (Some("wa-3"), Some("vip_first")), "{d}");
    // A module that is refused: 422 naming it; the previous one stays.
    let broken = wat::parse_str(module_with(ABI_2, 1500)).unwrap();
    replace(&module, &broken);
    let (status, body) = post(&server.url("/v1/reload"), "");
    assert_eq!(status, 422, "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("vip_first.wasm") && message.contains("ABI 2"), "{body}");
    assert_eq!(body["errors"][0]["line"].as_u64(), Some(2), "{body}");
    let (_, d) = post(&server.url("/v1/select"), PLAIN);
    assert_eq!(
        (d["instance"]["id"].as_str(), d["rule"].as_str(), d["generation"].as_u64()),
        (Some("wa-3"), Some("vip_first"), Some(generation)),
        "{d}"
    );
}

#[test]
fn a_runaway_module_costs_its_budget_and_other_chains_keep_their_speed() {
    let rules = "plugins:\n  - wasm: plugins/spin.wasm\n    timeout_ms: 20\nrules: [default_instance]\nchannels:\n  whatsapp:\n    rules: [spin, default_instance]\n";
    let (_dir, rules, world) = setup(rules, &[("spin.wasm", probe("spin", "(loop $l (br $l)) (i64.const 0)"))]);
    let server = Server::start(&["--rules", s(&rules), "--world", s(&world)]);
    let url = server.url("/v1/select");
    let spinning = {
        let url = url.clone();
        std::thread::spawn(move || {
            (0..20)
                .map(|_| {
                    let started = Instant::now();
                    let (status, d) = post(&url, PLAIN);
                    assert_eq!((status, d["error"]["kind"].as_str()), (200, Some("plugin_timeout")), "{d}");
                    started.elapsed()
                })
                .max()
                .unwrap()
        })
    };
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let started = Instant::now();
        let (status, d) = post(&url, SMS);
        slowest = slowest.max(started.elapsed());
        assert_eq!((status, d["instance"]["id"].as_str()), (200, Some("sms-1")), "{d}");
    }
    let runaway = spinning.join().unwrap();
    // Bounds, not timings (a loaded machine stretches every call; the
    // figures are in docs/performance.md): a spinning call ends after its
    // budget, not never, and the SMS chain never waits for one to end.
    assert!(runaway >= Duration::from_millis(19) && runaway < Duration::from_secs(5), "{runaway:?}");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
}

/// The example rule of plugins/wasm-example built for
/// wasm32-unknown-unknown with the command the docs give (into its own
/// target directory); `None` when that target is not installed (then
/// `rustup target add wasm32-unknown-unknown` enables the test).
fn rust_guest() -> Option<PathBuf> {
    let sysroot = std::process::Command::new("rustc").args(["--print", "sysroot"]).output().ok()?;
    let sysroot = PathBuf::from(text(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib/wasm32-unknown-unknown").is_dir() {
        return None;
    }
    let target = repo_file("target/plugin-tests/wasm");
    let out = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "--target", "wasm32-unknown-unknown", "-p", "switchboard-wasm-example"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(repo_file(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "building the example guest failed:\n{}", text(&out.stderr));
    Some(target.join("wasm32-unknown-unknown/release/tag_first.wasm"))
}

#[test]
fn the_rust_example_guest_built_with_the_sdk_decides() {
    let Some(module) = rust_guest() else {
        eprintln!("skipped: the wasm32-unknown-unknown target is not installed");
        return;
    };
    let rules =
        "plugins:\n  - wasm: plugins/tag_first.wasm\nrules:\n  - rule: tag_first\n    tag: VIP\n  - default_instance\n";
    let (_dir, rules, world) = setup(rules, &[("tag_first.wasm", fs::read(module).unwrap())]);
    let out = run(&["select", "--rules", s(&rules), "--world", s(&world)], &format!("{VIP}\n{PLAIN}\n"));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let d = lines(&out);
    assert_eq!((d[0]["instance"]["id"].as_str(), d[0]["rule"].as_str()), (Some("wa-2"), Some("tag_first")), "{}", d[0]);
    assert_eq!(d[1]["rule"], "default_instance");
    let listing = text(&run(&["rules", "--rules", s(&rules)], "").stdout);
    assert!(listing.contains("tag_first") && listing.contains("code 1100"), "{listing}");
    assert!(listing.contains("option tag: string"), "{listing}");
    // Its `configure` refuses an empty tag, at the rule's entry.
    fs::write(&rules, "plugins:\n  - wasm: plugins/tag_first.wasm\nrules:\n  - rule: tag_first\n    tag: ' '\n")
        .unwrap();
    let out = run(&["check", "--rules", s(&rules)], "");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("rules.yaml:4:") && stderr.contains("`tag` must not be empty"), "{stderr}");
}
