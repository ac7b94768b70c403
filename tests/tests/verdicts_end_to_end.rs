//! Verdicts end to end over mutual TLS: three dealer agents sync a simulated network with known
//! faults to a real hub; every agent ends up showing exactly the injected faults on its own
//! records (verdict changes caused by other dealers' records come down the stream), and a
//! correction made at the dealership takes a record out of quarantine.

use std::collections::{BTreeMap, BTreeSet};

use hamgam_dealer_agent::simulate::{date_of, simulate, FaultRates, SimulationConfig};
use hamgam_dealer_agent::{sync_loop, AgentStore};
use hamgam_gateway::PeerIdentity;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_tests::{dealer, dealer_summaries, judged, session_options, TestHub, TestPki};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_show_exactly_the_injected_faults_and_a_correction_clears_a_rejection() {
    // 2026-11-18 11:06 UTC for the simulated network, the agents and the hub alike.
    let now = 1_795_000_000_000;
    let clock = hamgam_gateway::Clock::Fixed(now);
    let ids = ["D-1042", "D-2077", "D-3155"];
    let mut config = SimulationConfig::small(31, ids.iter().map(|d| dealer(d)).collect(), now);
    config.faults = FaultRates::uniform(0.03).with("S04", 0.5).expect("rate");
    config.start = date_of(now) - time::Duration::days(20);
    let network = simulate(&config).expect("simulates");
    let labels = judged::labels(&network);

    let dirs = tempfile::tempdir().unwrap();
    let pki = TestPki::new();
    let hub = TestHub::start_at(
        &pki,
        &dirs.path().join("hub"),
        judged::registry(&network),
        clock,
    )
    .await;
    let mut agents = Vec::new();
    for id in ids {
        let store = AgentStore::open(&dirs.path().join(id), dealer(id))
            .unwrap()
            .with_clock(clock);
        let records = network
            .log(&dealer(id))
            .iter()
            .map(|r| (r.staff_id.clone(), r.payload.clone()))
            .collect();
        store.capture_many(records).unwrap();
        let endpoint = pki.endpoint(hub.addr, PeerIdentity::Dealer(dealer(id)));
        agents.push((id, store, endpoint));
    }
    let opts = hamgam_gateway::sync::SessionOptions {
        clock,
        ..session_options()
    };
    // Everyone syncs, then everyone again: the second round brings down the verdicts that
    // changed because of records other dealers sent after the first.
    for _ in 0..2 {
        for (_, store, endpoint) in &agents {
            sync_loop::sync_once(store, endpoint, &opts)
                .await
                .expect("syncs");
        }
    }

    let mut shown: BTreeMap<judged::At, BTreeSet<String>> = BTreeMap::new();
    let mut changed = 0;
    for (id, store, _) in &agents {
        for v in store.verdicts().unwrap() {
            changed += usize::from(v.version > 1);
            if !v.findings.is_empty() {
                shown.insert(
                    (id.to_string(), v.seq),
                    v.findings.iter().map(|f| f.rule_id.clone()).collect(),
                );
            }
        }
        let status = store.status().unwrap();
        assert_eq!(status.pending(), 0, "{id} has records left to sync");
    }
    let wrong: Vec<_> = judged::disagreements(&labels, &shown)
        .into_iter()
        .take(20)
        .collect();
    assert!(
        wrong.is_empty(),
        "agents show other findings than injected (at, injected, shown): {wrong:?}"
    );
    assert!(
        changed > 0,
        "some verdicts must have changed after their first ack (cross-dealer rules)"
    );

    // A customer rejected for a missing name (R00) at D-1042 is corrected by its staff.
    let (_, store, endpoint) = &agents[0];
    let rejected = store
        .verdicts()
        .unwrap()
        .into_iter()
        .find(|v| {
            v.outcome() == pb::Outcome::Rejected
                && v.findings.iter().any(|f| f.field == "customer.family_name")
        })
        .expect("a customer rejected for its name");
    let original = store.record(rejected.seq).unwrap().expect("the record");
    let Some(Payload::Customer(mut customer)) = original.payload.clone() else {
        panic!("not a customer record");
    };
    customer.family_name = "احمدی".into();
    store
        .capture(
            "D-1042-S1",
            Payload::Correction(pb::Correction {
                target_record_id: original.record_id.clone(),
                reason: "نام خانوادگی جا افتاده بود".into(),
                retract: false,
                amended: Some(pb::correction::Amended::Customer(customer)),
            }),
        )
        .unwrap();
    let report = sync_loop::sync_once(store, endpoint, &opts)
        .await
        .expect("syncs");
    assert!(report.verdict_changes >= 1, "{report:?}");
    let now_shown = store
        .verdicts()
        .unwrap()
        .into_iter()
        .find(|v| v.seq == rejected.seq)
        .expect("verdict");
    assert_eq!(
        now_shown.outcome(),
        pb::Outcome::Accepted,
        "the corrected record is accepted: {now_shown:?}"
    );
    assert!(now_shown.version > rejected.version);
    // HQ's quarantine list no longer holds it.
    let quarantined = pki
        .hq_client(hub.addr)
        .await
        .list_dealer_records(hq::ListDealerRecordsRequest {
            dealer_id: "D-1042".into(),
            page_size: 1000,
            page_token: String::new(),
            quarantined_only: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!quarantined.records.is_empty());
    assert!(quarantined
        .records
        .iter()
        .all(|r| r.record.as_ref().map(|r| r.seq) != Some(rejected.seq)));
    assert!(quarantined.records.iter().all(|r| r
        .verdict
        .as_ref()
        .is_some_and(|v| v.outcome() == pb::Outcome::Rejected)));
    // The reliability tallies follow every verdict, changes and the correction included: the
    // score's window counts equal the hub's own counts and what the agents hold.
    let dealers = dealer_summaries(&pki, &hub).await;
    assert_eq!(dealers.len(), 3);
    for (id, store, _) in &agents {
        let summary = dealers.iter().find(|d| d.dealer_id == *id).expect("dealer");
        let reliability = summary.reliability.as_ref().expect("a reliability score");
        let verdicts = store.verdicts().unwrap();
        let count = |o: pb::Outcome| verdicts.iter().filter(|v| v.outcome() == o).count() as u64;
        assert_eq!(reliability.window_records, summary.record_count, "{id}");
        assert_eq!(reliability.window_records, verdicts.len() as u64, "{id}");
        assert_eq!(reliability.rejected, count(pb::Outcome::Rejected), "{id}");
        assert_eq!(summary.rejected_count, reliability.rejected, "{id}");
        assert_eq!(
            reliability.flagged,
            count(pb::Outcome::AcceptedWithFlags),
            "{id}"
        );
        assert!(
            reliability.score > 0.0 && reliability.score < 100.0,
            "{id}: {reliability:?}"
        );
        assert_eq!(reliability.top_rules.len(), 3, "{id}: {reliability:?}");
        assert_eq!(summary.verdicts_acked, summary.verdict_cursor, "{id}");
    }
    hub.stop().await;
}
