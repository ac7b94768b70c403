//! One oversized record never stops a branch: a field over its bound is refused at capture by
//! the real `dealer-agent record` (naming the field, its size and the limit, in Persian and
//! English) with nothing saved; a record stored over a bound anyway (as an older agent did) is
//! sent as a stand-in that the hub keeps in quarantine, and every record after it syncs; heavy
//! records go in batches sized in bytes, under the hub's message limit.

use std::process::Command;

use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::processes::binaries;
use hamgam_tests::*;

fn customer(given: String) -> Payload {
    Payload::Customer(pb::CustomerUpsert {
        customer_ref: "C-1".into(),
        party_type: pb::PartyType::Person as i32,
        given_name: given,
        family_name: "احمدی".into(),
        mobile: "09121593574".into(),
        ..Default::default()
    })
}

#[test]
fn a_field_over_its_bound_is_refused_at_capture_naming_it_in_both_languages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("agent");
    for (size, label) in [(17_000_000usize, "17 MB"), (1_000_000, "1 MB")] {
        let json = dir.path().join("big.json");
        let document = serde_json::json!({
            "customerRef": "C-1",
            "partyType": "PARTY_TYPE_PERSON",
            "givenName": "a".repeat(size),
            "familyName": "احمدی",
        });
        std::fs::write(&json, document.to_string()).expect("write");
        let out = Command::new(&binaries().agent)
            .args(["--dealer", "D-1042", "--data-dir"])
            .arg(&data)
            .args(["record", "customer", "--json"])
            .arg(&json)
            .output()
            .expect("dealer-agent runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{label}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "customer.given_name is {size} bytes, over the limit of 256 bytes"
            )),
            "{label}: {stderr}"
        );
        assert!(stderr.contains("بیش از حد مجاز"), "{label}: {stderr}");
        assert!(stderr.contains("not saved"), "{label}: {stderr}");
    }
    let status = Command::new(&binaries().agent)
        .args(["--dealer", "D-1042", "--data-dir"])
        .arg(&data)
        .args(["status", "--json"])
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status is JSON");
    assert_eq!(status["last_seq"], 0, "nothing was saved: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_record_the_hub_can_never_accept_goes_to_cannot_send_and_the_rest_syncs() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let d = dealer("D-1042");
    let store = AgentStore::open(&dirs.path().join("agent"), d.clone())
        .expect("store")
        .with_clock(test_clock());
    record_samples(&store, 5);
    // As an agent from before the bounds stored them: 17 MB and 1 MB names.
    let big = store
        .capture_unbounded("S-1", customer("a".repeat(17_000_000)))
        .expect("stored");
    let one_mb = store
        .capture_unbounded("S-1", customer("b".repeat(1_000_000)))
        .expect("stored");
    record_samples(&store, 20);
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(d.clone()));
    let report = within(
        60,
        "sync",
        sync_loop::sync_once(&store, &endpoint, &session_options()),
    )
    .await
    .expect("the sync gets past the records it cannot send");
    assert_eq!(report.acked_seq, 27, "{report:?}");

    // The agent lists them, keeps them in its log, and says so in its status.
    let cannot: Vec<u64> = store
        .cannot_send()
        .expect("list")
        .into_iter()
        .map(|(seq, why)| {
            assert!(why.contains("customer.given_name is"), "{why}");
            seq
        })
        .collect();
    assert_eq!(cannot, vec![big.seq, one_mb.seq]);
    assert!(store.record(big.seq).expect("read").is_some());
    let status = store.status().expect("status");
    assert_eq!((status.pending(), status.cannot_send), (0, 2));

    // The hub holds every seq once: the stand-ins in quarantine (R00 naming the reason), the
    // records behind them as they were sent.
    let mut hq = pki.hq_client(hub.addr).await;
    let held = hub_records(&mut hq, "D-1042").await;
    assert_eq!(held.len(), 27);
    for r in &held {
        let verdict = r.verdict.as_ref().expect("verdict");
        let seq = verdict.seq;
        if seq == big.seq || seq == one_mb.seq {
            assert_eq!(verdict.outcome(), pb::Outcome::Rejected);
            let finding = &verdict.findings[0];
            assert_eq!(
                (finding.rule_id.as_str(), finding.field.as_str()),
                ("R00", "withheld")
            );
            assert!(
                finding.reason_en.contains("customer.given_name is"),
                "{finding:?}"
            );
        } else {
            assert_ne!(verdict.outcome(), pb::Outcome::Rejected, "seq {seq}");
        }
    }
    // Staff see them among the records to fix, with the hub's reason.
    let to_fix: Vec<u64> = store
        .verdicts()
        .expect("verdicts")
        .into_iter()
        .filter(|v| v.outcome() == pb::Outcome::Rejected)
        .map(|v| v.seq)
        .collect();
    assert_eq!(to_fix, vec![big.seq, one_mb.seq]);

    // Syncing again sends the same stand-ins: nothing is refused as a different record.
    record_samples(&store, 1);
    let again = sync_loop::sync_once(&store, &endpoint, &session_options())
        .await
        .expect("syncs again");
    assert_eq!(again.acked_seq, 28);
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_records_go_in_batches_sized_in_bytes() {
    let dirs = tempfile::tempdir().expect("tempdir");
    let pki = TestPki::new();
    let hub = TestHub::start(&pki, &dirs.path().join("hub")).await;
    let d = dealer("D-2077");
    let store = AgentStore::open(&dirs.path().join("agent"), d.clone())
        .expect("store")
        .with_clock(test_clock());
    // 300 repair orders of ~60 KB each (15 job lines of 4 KB of text: every field and the
    // record within bounds): 18 MB in all, more than the hub's 16 MiB message limit would take
    // in one batch of 500.
    let line = |i: u32| pb::JobLine {
        line_number: i,
        labor_op_code: format!("OP-{i}"),
        complaint: "ص".repeat(2_000),
        ..Default::default()
    };
    let records: Vec<(String, Payload)> = (0..300)
        .map(|n| {
            let Payload::RepairOrder(mut ro) = history::repair_order(
                &format!("RO-{n}"),
                "NAAP41FE0RJ000007",
                "C-1",
                TEST_NOW_MS - 86_400_000,
                10_000,
            ) else {
                unreachable!("a repair order")
            };
            ro.job_lines = (1..=15).map(line).collect();
            ("S-1".to_owned(), Payload::RepairOrder(ro))
        })
        .collect();
    store.capture_many(records).expect("within bounds");
    let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(d.clone()));
    let report = within(
        120,
        "sync",
        sync_loop::sync_once(&store, &endpoint, &session_options()),
    )
    .await
    .expect("syncs");
    assert_eq!(report.acked_seq, 300);
    let mut hq = pki.hq_client(hub.addr).await;
    assert_eq!(hub_records(&mut hq, "D-2077").await.len(), 300);
    hub.stop().await;
}
