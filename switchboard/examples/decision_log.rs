//! Writes a decision log (docs/service.md) for the replay benchmark: every request
//! of a JSON Lines file decided with a rules file and a world, one log line
//! each.
//!
//! ```text
//! cargo run --release --example generate -- 1000 10 1000000 /tmp/scale
//! cargo run --release --example decision_log -- rules.yaml /tmp/scale/world.json \
//!     /tmp/scale/requests.jsonl /tmp/scale/decisions.jsonl
//! /usr/bin/time -v target/release/switchboard replay --rules NEW.yaml \
//!     --world /tmp/scale/world.json --log /tmp/scale/decisions.jsonl
//! ```
//!
//! The lines carry the fields of docs/service.md; `time` is one fixed instant and
//! the hashes are those of the files, so the output is deterministic.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rules, world, requests, out] = args.as_slice() else {
        return Err("usage: decision_log RULES WORLD REQUESTS.jsonl OUT.jsonl".into());
    };
    let registry = switchboard::registry()?;
    let plan = switchboard::load_rules(rules, &registry)?;
    let world_data = switchboard::load_world(world, &plan)?;
    let rules_sha = switchboard::sha256_hex(&std::fs::read(rules)?);
    let world_sha = switchboard::sha256_hex(&std::fs::read(world)?);
    let mut log = BufWriter::new(File::create(out)?);
    for (n, line) in BufReader::new(File::open(requests)?).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let decision = switchboard::decide_text(&line, |r| plan.select(&world_data, r));
        let request = if serde_json::from_str::<serde_json::Value>(&line).is_ok() {
            line.clone()
        } else {
            serde_json::to_string(&line)?
        };
        writeln!(
            log,
            r#"{{"decision_id":"d{n}","time":"2026-11-25T14:03:07.123Z","generation":1,"rules_sha256":"{rules_sha}","world_sha256":"{world_sha}","request":{request},"decision":{}}}"#,
            decision.to_json()
        )?;
    }
    log.flush()?;
    Ok(())
}
