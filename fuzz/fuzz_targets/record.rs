//! A record as the hub decodes and validates it: protobuf, R00, content, one-record rules.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hamgam_tests::fuzz_checks::record(data);
});
