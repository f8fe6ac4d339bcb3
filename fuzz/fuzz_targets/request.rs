//! Fuzz target `request`: see `switchboard::fuzz::request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::request(data));
