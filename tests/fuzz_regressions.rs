//! Replays the fuzz seed corpus and every input a fuzzer crashed on
//! (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through the
//! targets' bodies, on the stable toolchain, in every CI run.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let data = std::fs::read(entry.path()).unwrap();
            body(&data);
            count += 1;
        }
    }
    assert!(count > 0, "no inputs for {target}");
}

#[test]
fn scan_strip_corpus_and_regressions() {
    replay("scan_strip", switchboard::fuzz::scan_and_strip);
}

#[test]
fn rules_yaml_corpus_and_regressions() {
    replay("rules_yaml", switchboard::fuzz::rules_yaml);
}

#[test]
fn world_corpus_and_regressions() {
    replay("world", switchboard::fuzz::world);
}

#[test]
fn request_corpus_and_regressions() {
    replay("request", switchboard::fuzz::request);
}

#[test]
fn events_corpus_and_regressions() {
    replay("events", switchboard::fuzz::events);
}
