//! Text normalisation (RULES.md): idempotent, nothing left that it maps away.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    hamgam_tests::fuzz_checks::text_normalisation(data);
});
