//! Fuzz target `scan_strip`: see `switchboard::fuzz::scan_and_strip`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard::fuzz::scan_and_strip(data));
