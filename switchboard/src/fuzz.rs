//! The bodies of the fuzz targets (`fuzz/`), kept in the library so that
//! the seed corpus and every input a fuzzer ever crashed on are replayed as
//! ordinary tests (`tests/fuzz_regressions.rs`) on the stable toolchain.
//! Each function must return normally for any input: a panic is a bug.

use std::sync::{Arc, OnceLock};

use switchboard_core::{Registry, World};
use switchboard_engine::Plan;

fn registry() -> Option<&'static Arc<Registry>> {
    static REGISTRY: OnceLock<Option<Arc<Registry>>> = OnceLock::new();
    REGISTRY.get_or_init(|| crate::registry().ok()).as_ref()
}

fn plan() -> Option<&'static Plan> {
    static PLAN: OnceLock<Option<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let text =
            "rules: [manual_override, temporary_switch, contact_tag, user_assignment, default_instance, any_available]";
        switchboard_files::compile(text, "rules.yaml", registry()?.clone()).ok()
    })
    .as_ref()
}

/// The pattern scanner and stripper on any text: matches are in order and
/// disjoint, the stripped body is never longer, and a body without `{`
/// comes back unchanged.
pub fn scan_and_strip(data: &[u8]) {
    let (Some(registry), Ok(body)) = (registry(), std::str::from_utf8(data)) else { return };
    let scan = registry.scanner().scan(body);
    let mut end = 0;
    for m in scan.matches() {
        assert!(m.start >= end && m.end > m.start && m.end <= body.len(), "overlapping or out-of-range match");
        end = m.end;
    }
    let stripped = scan.stripped();
    assert!(stripped.len() <= body.len());
    if !body.contains('{') {
        assert_eq!(stripped, body);
    }
}

/// rules.yaml compilation on any text: a plan or located errors.
pub fn rules_yaml(data: &[u8]) {
    let (Some(registry), Ok(text)) = (registry(), std::str::from_utf8(data)) else { return };
    if let Err(e) = switchboard_files::compile(text, "rules.yaml", registry.clone()) {
        assert!(!e.diagnostics.is_empty());
    }
}

/// World loading on any text, as YAML and as JSON.
pub fn world(data: &[u8]) {
    let (Some(registry), Ok(text)) = (registry(), std::str::from_utf8(data)) else { return };
    for file in ["world.yaml", "world.json"] {
        if let Err(e) = switchboard_files::read_world(text, file, registry) {
            assert!(!e.diagnostics.is_empty());
        }
    }
}

/// One request line through parsing and selection (inline instances
/// included): a decision whose selected instance is connected.
pub fn request(data: &[u8]) {
    let (Some(plan), Ok(text)) = (plan(), std::str::from_utf8(data)) else { return };
    let decision = crate::decide_text(text, |r| plan.select(&World::empty(), r));
    if let Some(instance) = decision.instance() {
        assert!(instance.is_connected());
    }
    let _ = decision.to_json();
}

/// An events body (docs/live-state.md) through reading, checking and applying, on a
/// fresh memory store over a small world: every line is accepted or
/// rejected with a message, and an accepted `instance_status` shows in the
/// instances' live state.
pub fn events(data: &[u8]) {
    let (Some(registry), Ok(text)) = (registry(), std::str::from_utf8(data)) else { return };
    let world = "locations:\n  - id: shop\n    instances:\n      - {id: wa-1, channel: whatsapp, phone: '1', connected: true}\n      - {id: wa-2, channel: whatsapp, phone: '2'}\n";
    let (Ok(plan), Ok(world)) = (
        crate::compile_rules(
            "rules: [manual_override, conversation, any_available]",
            std::path::Path::new("rules.yaml"),
            registry,
        ),
        switchboard_files::read_world(world, "world.yaml", registry),
    ) else {
        return;
    };
    let snapshot = crate::Snapshot {
        plan: Arc::new(plan),
        world: Arc::new(world),
        generation: 1,
        rules_sha256: String::new(),
        world_sha256: None,
    };
    let now = "2026-12-07T15:00:00Z".parse().unwrap_or(switchboard_core::capacity::jiff::Timestamp::UNIX_EPOCH);
    let recorded = crate::live::record_on(&snapshot.plan, &snapshot.world, text, now);
    for (line, rejection) in &recorded.rejected {
        assert!(*line >= 1 && !rejection.message.is_empty(), "a rejection without a line or a message");
    }
    let answer = recorded.to_json();
    assert_eq!(answer["accepted"].as_u64(), Some(recorded.accepted.len() as u64));
    let _ = crate::live::instances_on(&snapshot, "shop", now);
}
