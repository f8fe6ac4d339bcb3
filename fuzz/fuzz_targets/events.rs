//! Fuzz target `events`: see `switchboard::fuzz::events`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::events(data));
