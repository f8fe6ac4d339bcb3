//! Integration tests: the library against SPEC.md, the rules.yaml and world
//! loaders' errors, the `switchboard` binary on fixture files, and property
//! tests of the selection invariants.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod util;

mod bad_inputs;
mod capacity;
mod catalogue;
mod cli;
mod cli_ux;
mod config_errors;
mod conversation;
mod fuzz_regressions;
mod plugins;
mod properties;
mod reload;
mod replay;
mod scenarios;
mod schema;
mod serve;
mod snapshots;
mod spec;
mod world_errors;
