//! The hub's sync session over a real hub store: any request body ends with a status, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hamgam_tests::fuzz_checks::sync_session(data);
});
