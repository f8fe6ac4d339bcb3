//! Fuzz target `rules_yaml`: see `switchboard::fuzz::rules_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::rules_yaml(data));
