//! The rule engine on realistic data: a simulated multi-dealer network with injected faults,
//! judged by a real hub (sled on disk). The hub's findings must equal the simulator's labels
//! record by record (no misses, no false flags), whatever order and batching the records
//! arrive in.

use std::collections::BTreeSet;

use hamgam_dealer_agent::simulate::{date_of, simulate, FaultRates, SimulationConfig};
use hamgam_tests::dealer;
use hamgam_tests::judged::{self, Judgements};

/// 2026-12-01 14:20 UTC: the day the simulator once labelled a W01 that an S01 on the same
/// vehicle hid (seed 11); `date_sweep.rs` runs the comparison over many more dates.
const NOW_MS: i64 = 1_796_134_800_000;

fn network(seed: u64) -> (hamgam_dealer_agent::simulate::SimulatedNetwork, i64) {
    let now = NOW_MS;
    let mut c = SimulationConfig::small(
        seed,
        vec![dealer("D-1042"), dealer("D-2077"), dealer("D-3155")],
        now,
    );
    c.faults = FaultRates::uniform(0.03).with("S04", 0.5).expect("rate");
    c.days = 5;
    c.start = date_of(now) - time::Duration::days(40);
    (simulate(&c).expect("simulates"), now)
}

fn describe(mismatch: &[judged::Disagreement]) -> String {
    mismatch
        .iter()
        .take(30)
        .map(|(at, labelled, found)| {
            format!("\n  {at:?}: labelled {labelled:?}, hub found {found:?}")
        })
        .collect()
}

async fn judge(
    net: &hamgam_dealer_agent::simulate::SimulatedNetwork,
    now: i64,
    order_seed: u64,
) -> (Judgements, judged::Labels) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = judged::hub(dir.path(), judged::registry(net), now);
    judged::feed(&hub, &judged::wire_logs(net, now), order_seed).await;
    let found = judged::judgements(&hub);
    hub.close().await;
    (found, judged::labels(net))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_findings_equal_the_injected_faults_record_by_record() {
    for seed in [11, 12] {
        let (net, now) = network(seed);
        let (found, labels) = judge(&net, now, 0).await;
        let found = judged::rules_found(&found);
        let mismatch = judged::disagreements(&labels, &found);
        let rules: BTreeSet<&String> = labels.values().flatten().collect();
        assert!(
            rules.len() >= 24,
            "seed {seed}: too few rules exercised to mean anything: {rules:?}"
        );
        assert!(
            mismatch.is_empty(),
            "seed {seed}: {} of {} labelled records disagree with the hub:{}",
            mismatch.len(),
            labels.len(),
            describe(&mismatch)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_order_and_batching_ends_with_the_same_verdicts() {
    let (net, now) = network(21);
    let (reference, _) = judge(&net, now, 0).await;
    for order_seed in [1, 2, 3] {
        let (found, _) = judge(&net, now, order_seed).await;
        let differ: Vec<_> = reference
            .iter()
            .filter(|(at, v)| found.get(*at) != Some(*v))
            .take(10)
            .collect();
        assert!(
            differ.is_empty() && found.len() == reference.len(),
            "order seed {order_seed}: {} records judged differently than in seq order, e.g. {differ:?}",
            reference.iter().filter(|(at, v)| found.get(*at) != Some(*v)).count()
        );
    }
}
