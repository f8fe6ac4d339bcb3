//! Fuzz target `world`: see `switchboard::fuzz::world`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::world(data));
