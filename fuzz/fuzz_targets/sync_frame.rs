#![no_main]
//! Arbitrary bytes as a sync stream frame; every event of a batch as in `event_frame`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| liandong::fuzzing::sync_frame(data));
