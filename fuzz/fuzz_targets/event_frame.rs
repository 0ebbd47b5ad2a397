#![no_main]
//! Arbitrary bytes as a signed event frame: decode, verify, authorize, scope, fold.
libfuzzer_sys::fuzz_target!(|data: &[u8]| liandong::fuzzing::event_frame(data));
