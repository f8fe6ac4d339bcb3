//! Integration tests: the library against its documented behaviour
//! (docs/), the rules.yaml and world loaders' errors, the `switchboard`
//! binary on fixture files, property tests of the selection invariants, and
//! the docs' links.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod util;

/// The `redis-server` helper of the store tests, shared (not copied).
#[path = "../state/tests/support/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

mod bad_inputs;
mod capacity;
mod catalogue;
mod cli;
mod cli_ux;
mod config_errors;
mod conversation;
mod docs_links;
mod fleet;
mod fuzz_regressions;
mod health;
mod live_state;
mod plugins;
mod properties;
mod recipient;
mod reload;
mod replay;
mod scenarios;
mod schema;
mod serve;
mod snapshots;
mod spec;
mod warmup;
mod wasm_plugins;
mod world_errors;
