//! VIN, national ID and mobile parsing: canonical forms that parse again to themselves.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hamgam_tests::fuzz_checks::identifiers(data);
});
