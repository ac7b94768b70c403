//! The fuzz targets' inputs as regression tests: every hand-made seed (`fuzz/seeds`) and every
//! input the fuzzers kept (`fuzz/corpus`, minimised after each run of `fuzz/run.sh`) goes
//! through the same checks as under the fuzzer, on the stable toolchain.

use std::path::PathBuf;

use hamgam_tests::fuzz_checks::{seeds, TARGETS};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut found: Vec<(String, Vec<u8>)> = seeds(target)
        .into_iter()
        .enumerate()
        .map(|(i, s)| (format!("seed {i}"), s))
        .collect();
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            found.push((path.display().to_string(), bytes));
        }
    }
    found
}

fn replay(target: &str) {
    let check = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .expect("a known target")
        .1;
    let inputs = inputs(target);
    for (name, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| check(bytes));
        assert!(outcome.is_ok(), "{target}: input {name} fails its check");
    }
    println!("{target}: {} inputs replayed", inputs.len());
}

#[test]
fn text_normalisation_corpus() {
    replay("text_normalisation");
}

#[test]
fn identifiers_corpus() {
    replay("identifiers");
}

#[test]
fn record_corpus() {
    replay("record");
}

#[test]
fn sync_session_corpus() {
    replay("sync_session");
}

#[test]
fn the_session_target_reaches_the_hub_and_sees_its_refusals() {
    use hamgam_tests::fuzz_checks::{sync_body_of, sync_session_as};
    let stored = sync_session_as("D-FUZZCHECK", &sync_body_of("D-FUZZCHECK", 1, &[3, 2]));
    assert_eq!(stored.acked, 5, "{stored:?}");
    assert!(stored.status.is_none(), "{stored:?}");
    let gap = sync_session_as("D-FUZZCHECK", &sync_body_of("D-FUZZCHECK", 9, &[1]));
    let status = gap.status.expect("a gap is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status}");
    let foreign = sync_session_as("D-FUZZCHECK", &sync_body_of("D-OTHER", 6, &[1]));
    let status = foreign.status.expect("another dealer's hello is refused");
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status}");
}

#[test]
fn every_target_has_a_regression_test_here_and_seeds() {
    let here = include_str!("fuzz_corpora.rs");
    for (target, _) in TARGETS {
        assert!(here.contains(&format!("replay(\"{target}\")")), "{target}");
        assert!(!seeds(target).is_empty(), "{target} has seeds");
    }
}
