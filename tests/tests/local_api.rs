//! The agent's local capture API (`hamgam.agent.v1`, docs/local-api.md) as a DMS vendor uses
//! it: a client whose stubs `grpc_tools.protoc` generates from the two .proto files alone
//! (Python grpcio, `tests/python/local_api_client.py`), against a running `dealer-agent run`
//! that syncs to a running `central serve` over mutual TLS.
//!
//! The client is refused with another token; submits a batch of imported repair orders (one
//! with a VIN one character short: saved, with the V01 warning); the same batch again saves
//! nothing; one changed record is saved as a correction of the first; a batch mixing imported
//! and live records is refused whole; then it follows the
//! verdicts from cursor 0 (each call waiting for new ones) until the hub's verdict on every
//! record is back: the short VIN rejected (V01), the others accepted; and server reflection
//! lists the service. Then `dealer-agent import` of the worked example while the agent runs
//! goes through the same API, and the same file again saves nothing.

use std::process::Command;

use hamgam_tests::processes::{binaries, AgentProcess, Deployment, HubProcess};
use hamgam_tests::TestPki;

#[test]
fn a_client_generated_from_the_proto_submits_a_batch_and_reads_its_verdicts_after_a_sync() {
    let python_ready = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, grpc_reflection"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        python_ready,
        "Python's grpcio, grpcio-tools and grpcio-reflection are needed: ./tests/run.sh installs them (pip)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let deployment = Deployment::new(&pki, dir.path(), &["D-1042"]);
    let hub = HubProcess::start(&deployment, &dir.path().join("hub"));
    let agent_dir = dir.path().join("agent");
    let agent = AgentProcess::start(&deployment, "D-1042", &agent_dir, hub.addr);
    let addr = agent.local_api_addr();
    let token_file = agent_dir.join("local-api.token");
    assert_eq!(
        hamgam_gateway::files::mode_of(&token_file).expect("mode"),
        Some(0o600),
        "the token file is its owner's only"
    );

    let vin = |n: u32| {
        hamgam_proto::values::Vin::with_check_digit(&format!("NAAN01CE0KK{n:06}"))
            .expect("a VIN")
            .as_str()
            .to_owned()
    };
    let vins = serde_json::json!([vin(1), "NAAN01CE5KK12345", vin(3)]).to_string();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(root.join("python/local_api_client.py"))
        .arg(root.join("../proto/proto"))
        .arg(addr.to_string())
        .arg(&token_file)
        .arg(&vins)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "the client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the client prints JSON");

    assert_eq!(seen["wrong_token"], "UNAUTHENTICATED", "{seen}");
    let first = seen["first"].as_array().expect("results");
    let outcomes: Vec<(&str, u64, Vec<&str>)> = first
        .iter()
        .map(|r| {
            (
                r["outcome"].as_str().unwrap_or_default(),
                r["seq"].as_u64().unwrap_or_default(),
                r["warnings"]
                    .as_array()
                    .map(|w| w.iter().filter_map(|x| x.as_str()).collect())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        vec![
            ("SUBMIT_OUTCOME_SAVED", 1, vec![]),
            ("SUBMIT_OUTCOME_SAVED", 2, vec!["V01"]),
            ("SUBMIT_OUTCOME_SAVED", 3, vec![]),
        ],
        "{seen}"
    );
    // The warning's reason as data beside its sentences: a program can act on the code.
    let reason = &first[1]["reasons"][0];
    assert_eq!(reason["code"], "V01.not_a_vin", "{seen}");
    assert_eq!(reason["args"]["vin"], "NAAN01CE5KK12345", "{seen}");
    assert!(
        reason["en"]
            .as_str()
            .is_some_and(|s| s.contains("NAAN01CE5KK12345")),
        "{seen}"
    );
    assert_eq!(
        seen["again"],
        serde_json::json!([
            "SUBMIT_OUTCOME_UNCHANGED",
            "SUBMIT_OUTCOME_UNCHANGED",
            "SUBMIT_OUTCOME_UNCHANGED"
        ]),
        "{seen}"
    );
    assert_eq!(
        seen["changed"],
        serde_json::json!({"outcome": "SUBMIT_OUTCOME_CORRECTED", "seq": 4, "corrected_seq": 1}),
        "{seen}"
    );
    assert_eq!(seen["mixed"][0], "INVALID_ARGUMENT", "{seen}");
    assert!(
        seen["mixed"][1]
            .as_str()
            .is_some_and(|d| d.contains("origin")),
        "the refusal says why: {seen}"
    );
    assert_eq!(
        seen["verdicts"],
        serde_json::json!({
            "1": {"outcome": "OUTCOME_ACCEPTED", "rules": []},
            "2": {"outcome": "OUTCOME_REJECTED", "rules": ["V01"]},
            "3": {"outcome": "OUTCOME_ACCEPTED", "rules": []},
            "4": {"outcome": "OUTCOME_ACCEPTED", "rules": []},
        }),
        "{seen}"
    );
    assert_eq!(
        seen["status"],
        serde_json::json!({"last_seq": 4, "acked_seq": 4, "pending": 0}),
        "{seen}"
    );
    let services = seen["services"].as_array().expect("services");
    assert!(
        services.iter().any(|s| s == "hamgam.agent.v1.LocalCapture"),
        "{seen}"
    );

    // `dealer-agent import` while the agent runs: through the same API, chunk by chunk; the
    // same file again saves nothing.
    let examples = root.join("../docs/examples");
    for name in ["rayan-repair-orders.csv", "rayan-repair-orders.toml"] {
        std::fs::copy(examples.join(name), dir.path().join(name)).expect("copy the example");
    }
    let import = || {
        let output = Command::new(&binaries().agent)
            .arg("--config")
            .arg(deployment.path("agent-D-1042.toml"))
            .arg("import")
            .arg(dir.path().join("rayan-repair-orders.csv"))
            .arg("--mapping")
            .arg(dir.path().join("rayan-repair-orders.toml"))
            .output()
            .expect("dealer-agent import runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        );
        assert!(output.status.success(), "{stdout}{stderr}");
        assert!(stderr.contains("through its local capture API"), "{stderr}");
        stdout
    };
    let first = import();
    assert!(
        first.contains("3 saved, 0 already there unchanged, 0 corrected, 2 refused"),
        "{first}"
    );
    let again = import();
    assert!(
        again.contains("0 saved, 3 already there unchanged"),
        "{again}"
    );
    agent.stop();
    hub.stop();
}
