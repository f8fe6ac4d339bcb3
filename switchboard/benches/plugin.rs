//! The cost of a plugin rule (run: `cargo bench --bench plugin`). Not a test.
//!
//! The same rule, `business_hours` with an always-open window (so it
//! answers `no_match` and `default_instance` decides), consulted two ways:
//! through the plugin's C ABI from the release-built shared library, and as
//! a built-in made of the very same code (the plugin crate is also an
//! rlib). The difference is what the plugin boundary costs per selection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;
use common::measure;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use switchboard::{rule_fn, Outcome, Request, RuleInfo, Source};
use switchboard_business_hours::BusinessHours;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/plugin-bench");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "-q", "--release", "-p", "switchboard-plugin-business-hours"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(&root)
        .status()
        .unwrap();
    assert!(status.success());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(target.join("release/libswitchboard_business_hours.so"), dir.path().join("libbh.so")).unwrap();

    let window = "days: [sun, mon, tue, wed, thu, fri, sat], open: '00:00', close: '24:00', after_hours_instance: 1";
    let plugin_rules =
        format!("plugins: [{{path: libbh.so}}]\nrules: [{{rule: business_hours, {window}}}, default_instance]\n");
    let base = switchboard::registry().unwrap();
    let plugin_plan = switchboard::compile_rules(&plugin_rules, &dir.path().join("rules.yaml"), &base).unwrap();

    // The same code as a built-in.
    let native = base
        .to_builder()
        .rule(RuleInfo {
            id: "business_hours_native".into(),
            summary: "business_hours, linked in".into(),
            code: 1001,
            on_unavailable: None,
            options: Vec::new(),
            source: Source::Builtin("bench".into()),
            build: Arc::new(|_| {
                let rule = BusinessHours {
                    open: 0,
                    close: 24 * 60,
                    days: [true; 7],
                    utc_offset_minutes: 0,
                    after_hours_instance: 1,
                };
                Ok(Box::new(rule_fn(move |cx| {
                    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
                    if rule.is_open_at(now) {
                        Outcome::no_match()
                    } else {
                        cx.instances()
                            .by_index(rule.after_hours_instance)
                            .map_or_else(Outcome::no_match, Outcome::selected)
                    }
                })))
            }),
        })
        .build()
        .unwrap();
    let native_plan =
        switchboard::files::compile("rules: [business_hours_native, default_instance]", "rules.yaml", Arc::new(native))
            .unwrap();

    let world = switchboard::files::read_world(
        "locations: [{id: l, instances: [
            {id: a, channel: whatsapp, phone: '1', connected: true}, {id: b, channel: whatsapp, phone: '2', connected: true},
            {id: c, channel: whatsapp, phone: '3', connected: true}, {id: d, channel: whatsapp, phone: '4', connected: true},
            {id: e, channel: whatsapp, phone: '5', connected: true}, {id: f, channel: whatsapp, phone: '6', connected: true, default: true}]}]",
        "w.yaml",
        plugin_plan.registry(),
    )
    .unwrap();
    let request = Request::from_json(
        r#"{"location":"l","channel":"whatsapp","body":"Hello from the shop","contact":{"id":"c1","tags":["vip","newsletter","lang:en","wa: +1 999","b2b"]}}"#,
    )
    .unwrap();
    let (p, n) = (plugin_plan.select(&world, &request), native_plan.select(&world, &request));
    assert_eq!(p.instance().map(|i| i.id()), Some("f"), "{}", p.to_json());
    assert_eq!(n.instance().map(|i| i.id()), Some("f"));

    let plugin_ns = measure(|| drop(black_box(plugin_plan.select(black_box(&world), black_box(&request)))), 2_000, 201);
    let native_ns = measure(|| drop(black_box(native_plan.select(black_box(&world), black_box(&request)))), 2_000, 201);
    println!("business_hours as a plugin:   median {plugin_ns:7.1} ns/selection");
    println!("business_hours as a built-in: median {native_ns:7.1} ns/selection");
    println!(
        "plugin boundary:                     {:+7.1} ns per consultation (target < 1000 ns)",
        plugin_ns - native_ns
    );
}
