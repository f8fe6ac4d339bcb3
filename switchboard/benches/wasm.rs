//! The cost of a WebAssembly rule (run: `cargo bench --bench wasm`). Not a
//! test.
//!
//! One rule, `vip_first` (a contact tagged `vip` goes to the first usable
//! instance), three ways in one run: as the WebAssembly module of
//! docs/wasm-plugins.md (WAT, reading the JSON input as bytes), as a native
//! plugin in C (release-built with `cc -O2`), and as a built-in closure;
//! plus, when the wasm32-unknown-unknown target is installed, the SDK's
//! example `tag_first` (Rust, serde_json). Each is measured on a tagged
//! request (the rule selects) and an untagged one (no_match, then
//! `default_instance`). Then: instantiation time and resident memory per
//! instance, and a runaway module's cost per call and its effect on another
//! chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::measure;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard::{rule_fn, Outcome, Plan, Request, RuleInfo, Source};

const NATIVE: &str = r#"#include "switchboard_plugin.h"
#include <string.h>
static void *build(const void *u, const SbOptionValue *o, size_t n, void *s, SbSinkFn w) { (void)u; (void)o; (void)n; (void)s; (void)w; return (void *)1; }
static uint32_t evaluate(const void *r, const SbContext *cx, SbAnswer *a) {
    size_t t, p, n;
    (void)r;
    for (t = 0; t < cx->tag_count; t++) {
        if (cx->tags[t].len == 3 && memcmp(cx->tags[t].ptr, "vip", 3) == 0) {
            n = cx->instance_count(cx->host);
            for (p = 0; p < n; p++) {
                SbInstance i;
                if (cx->instance_at(cx->host, p, &i) && i.connected) { a->outcome = SB_OUTCOME_SELECTED; a->instance_index = i.index; return SB_STATUS_OK; }
            }
            break;
        }
    }
    a->outcome = SB_OUTCOME_NO_MATCH;
    return SB_STATUS_OK;
}
static const SbRule rules[] = { { sizeof(SbRule), SB_STR("vip_first"), SB_STR("vip first"), 1100, SB_ON_UNAVAILABLE_NONE, NULL, 0, NULL, build, evaluate, NULL } };
static const SbPlugin plugin = { sizeof(SbPlugin), SB_STR("vip-native"), SB_STR("1"), rules, 1, NULL, 0 };
static const SbHeader header = { SB_MAGIC, SB_ABI_MAJOR, SB_ABI_MINOR, &plugin };
const SbHeader *switchboard_plugin_entry(void) { return &header; }
"#;

const WORLD: &str = "locations: [{id: l, instances: [
    {id: a, channel: whatsapp, phone: '1', connected: false}, {id: b, channel: whatsapp, phone: '2', connected: true},
    {id: c, channel: whatsapp, phone: '3', connected: true}, {id: d, channel: whatsapp, phone: '4', connected: true},
    {id: e, channel: whatsapp, phone: '5', connected: true}, {id: f, channel: whatsapp, phone: '6', connected: true, default: true},
    {id: s, channel: sms, phone: '7', connected: true, default: true}]}]";
const TAGGED: &str = r#"{"location":"l","channel":"whatsapp","body":"Hello from the shop","contact":{"id":"c1","tags":["newsletter","lang:en","wa: +1 999","b2b","vip"]}}"#;
const UNTAGGED: &str = r#"{"location":"l","channel":"whatsapp","body":"Hello from the shop","contact":{"id":"c1","tags":["newsletter","lang:en","wa: +1 999","b2b"]}}"#;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The complete WAT module of docs/wasm-plugins.md.
fn docs_wat() -> String {
    let docs = std::fs::read_to_string(root().join("docs/wasm-plugins.md")).unwrap();
    let start = docs.find("```wat\n").unwrap() + "```wat\n".len();
    let end = start + docs[start..].find("```").unwrap();
    docs[start..end].to_owned()
}

/// The docs' WAT module, assembled.
fn docs_module() -> Vec<u8> {
    wat::parse_str(docs_wat()).unwrap()
}

/// The SDK's example guest, when the wasm32 target is installed.
fn rust_guest() -> Option<Vec<u8>> {
    let target = root().join("target/plugin-bench/wasm");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "--target", "wasm32-unknown-unknown", "-p", "switchboard-wasm-example"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root())
        .stderr(std::process::Stdio::null())
        .status()
        .ok()?;
    status.success().then(|| std::fs::read(target.join("wasm32-unknown-unknown/release/tag_first.wasm")).ok())?
}

fn native_library(dir: &Path) {
    std::fs::write(dir.join("vip.c"), NATIVE).unwrap();
    let status = std::process::Command::new("cc")
        .args(["-O2", "-shared", "-fPIC", "-I"])
        .arg(root().join("plugins/sdk/include"))
        .arg("-o")
        .arg(dir.join("libvip.so"))
        .arg(dir.join("vip.c"))
        .status()
        .unwrap();
    assert!(status.success());
}

/// Resident memory of this process, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vip_first.wasm"), docs_module()).unwrap();
    native_library(dir.path());
    let rust = rust_guest();
    if let Some(bytes) = &rust {
        std::fs::write(dir.path().join("tag_first.wasm"), bytes).unwrap();
    }
    let base = switchboard::registry().unwrap();
    let rules_file = dir.path().join("rules.yaml");
    let compile = |text: &str| switchboard::compile_rules(text, &rules_file, &base).unwrap();
    let wasm_plan = compile("plugins: [{wasm: vip_first.wasm}]\nrules: [vip_first, default_instance]\n");
    let native_plan = compile("plugins: [{path: libvip.so}]\nrules: [vip_first, default_instance]\n");
    // The boundary alone: a module that answers no_match without reading.
    std::fs::write(dir.path().join("idle.wasm"), wat::parse_str(idle_wat()).unwrap()).unwrap();
    let idle_plan = compile("plugins: [{wasm: idle.wasm}]\nrules: [vip_first, default_instance]\n");
    let rust_plan =
        rust.as_ref().map(|_| compile("plugins: [{wasm: tag_first.wasm}]\nrules: [tag_first, default_instance]\n"));
    let builtin = base
        .to_builder()
        .rule(RuleInfo {
            id: "vip_first".into(),
            summary: "vip_first, linked in".into(),
            code: 1100,
            on_unavailable: None,
            options: Vec::new(),
            source: Source::Builtin("bench".into()),
            build: Arc::new(|_| {
                Ok(Box::new(rule_fn(|cx| {
                    if !cx.contact().is_some_and(|c| c.tags.iter().any(|t| t == "vip")) {
                        return Outcome::no_match();
                    }
                    cx.instances().iter().find(|i| i.is_connected()).map_or_else(Outcome::no_match, Outcome::selected)
                })))
            }),
        })
        .build()
        .unwrap();
    let builtin_plan =
        switchboard::files::compile("rules: [vip_first, default_instance]", "rules.yaml", Arc::new(builtin)).unwrap();
    let baseline_plan = compile("rules: [default_instance]\n");

    let world = switchboard::files::read_world(WORLD, "w.yaml", wasm_plan.registry()).unwrap();
    let (tagged, untagged) = (Request::from_json(TAGGED).unwrap(), Request::from_json(UNTAGGED).unwrap());
    let mut plans: Vec<(&str, &Plan)> =
        vec![("WebAssembly (WAT)", &wasm_plan), ("native plugin (C)", &native_plan), ("built-in", &builtin_plan)];
    if let Some(plan) = &rust_plan {
        plans.push(("WebAssembly (Rust SDK)", plan));
    }
    for (name, plan) in &plans {
        let d = plan.select(&world, &tagged);
        assert_eq!(
            (d.instance().map(|i| i.id()), d.rule.is_some_and(|r| r.ends_with("_first"))),
            (Some("b"), true),
            "{name}: {}",
            d.to_json()
        );
        let d = plan.select(&world, &untagged);
        assert_eq!(d.instance().map(|i| i.id()), Some("f"), "{name}: {}", d.to_json());
    }
    let baseline =
        measure(|| drop(black_box(baseline_plan.select(black_box(&world), black_box(&untagged)))), 2_000, 101);
    println!("vip_first, one consultation on a request with 5 tags and 6 instances (median ns per selection):");
    println!("  {:<24} {:>10} {:>12} {:>22}", "", "tagged", "untagged", "rule cost (untagged)");
    for (name, plan) in &plans {
        let t = measure(|| drop(black_box(plan.select(black_box(&world), black_box(&tagged)))), 2_000, 101);
        let u = measure(|| drop(black_box(plan.select(black_box(&world), black_box(&untagged)))), 2_000, 101);
        println!("  {name:<24} {t:>10.1} {u:>12.1} {:>22.1}", u - baseline);
    }
    let idle = measure(|| drop(black_box(idle_plan.select(black_box(&world), black_box(&untagged)))), 2_000, 101);
    println!("  {:<24} {:>10} {idle:>12.1} {:>22.1}", "WebAssembly, no reading", "", idle - baseline);
    println!("  (default_instance alone: {baseline:.1} ns; the rule cost is the untagged selection minus that;");
    println!("   `no reading`: a module that answers no_match at once, i.e. the host's side of a consultation)");

    // Instantiation and resident memory per instance.
    let modules: Vec<(&str, Vec<u8>)> =
        std::iter::once(("WAT module", docs_module())).chain(rust.clone().map(|b| ("Rust SDK module", b))).collect();
    for (name, bytes) in &modules {
        let count = 500;
        let before = resident();
        let (instances, each) = switchboard_plugin_wasm::measure::instantiate(bytes, 16, count).unwrap();
        let after = resident();
        println!(
            "{name}: instantiation {:.1} µs each; resident memory {:.1} KiB per instance ({count} live)",
            each.as_secs_f64() * 1e6,
            after.saturating_sub(before) as f64 / 1024.0 / count as f64
        );
        drop(instances);
    }

    // A runaway module: its cost per call, and another chain meanwhile.
    let spin = docs_wat().replace(
        "(local.set $end (i32.add (local.get $ptr) (local.get $len)))",
        "(loop $spin (br $spin)) (local.set $end (i32.add (local.get $ptr) (local.get $len)))",
    );
    std::fs::write(dir.path().join("spin.wasm"), wat::parse_str(spin).unwrap()).unwrap();
    let spin_plan = Arc::new(compile(
        "plugins: [{wasm: spin.wasm, timeout_ms: 10}]\nrules: [default_instance]\nchannels:\n  whatsapp:\n    rules: [vip_first, default_instance]\n",
    ));
    let world = Arc::new(switchboard::files::read_world(WORLD, "w.yaml", spin_plan.registry()).unwrap());
    let mut runaway: Vec<Duration> = (0..20)
        .map(|_| {
            let started = Instant::now();
            let d = spin_plan.select(&world, &tagged);
            assert_eq!(d.error().map(|e| e.kind.as_str()), Some("plugin_timeout"));
            started.elapsed()
        })
        .collect();
    runaway.sort();
    let sms = Request::from_json(r#"{"location":"l","channel":"sms","body":"Hi"}"#).unwrap();
    let quiet = measure(|| drop(black_box(spin_plan.select(&world, &sms))), 2_000, 101);
    let stop = Arc::new(AtomicBool::new(false));
    let spinner = {
        let (plan, world, stop, tagged) = (spin_plan.clone(), world.clone(), stop.clone(), tagged.clone());
        std::thread::spawn(move || {
            let mut calls = 0u32;
            while !stop.load(Ordering::Relaxed) {
                drop(plan.select(&world, &tagged));
                calls += 1;
            }
            calls
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let busy = measure(|| drop(black_box(spin_plan.select(&world, &sms))), 2_000, 101);
    stop.store(true, Ordering::Relaxed);
    let calls = spinner.join().unwrap();
    println!(
        "runaway module (timeout_ms 10): a consultation takes {:.1} ms (median of 20; max {:.1} ms); another chain: \
         {quiet:.1} ns per selection alone, {busy:.1} ns while a thread runs the runaway chain ({calls} runaway calls)",
        runaway[10].as_secs_f64() * 1e3,
        runaway[19].as_secs_f64() * 1e3
    );
}

/// A module of ABI 1 with one rule, `vip_first`, that answers no_match
/// without reading its input.
fn idle_wat() -> String {
    let wat = docs_wat();
    let start = wat.find("(local $end i32)").unwrap();
    let end = wat.rfind("(i64.const 0))").unwrap();
    format!("{}(i64.const 0)){}", &wat[..start], &wat[end + "(i64.const 0))".len()..])
}
