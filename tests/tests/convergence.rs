//! Convergence: the hub's whole state (verdicts, customers, links, review pairs, vehicles,
//! conflicts, tallies) depends on the set of records, not on how they arrived. Generated
//! multi-dealer histories (variant spellings and digit forms, concurrent edits, transfers, a
//! double sale, corrections) are delivered in random interleavings and batchings with
//! duplicated batches, each to a real hub on sled; every delivery must give the identical state
//! digest. The seed of a failing case is printed by proptest.

use hamgam_central::store::HubStore;
use hamgam_central::SledStore;
use hamgam_central::{rules::registry::DealerRegistry, Hub};
use hamgam_tests::{history, judged};
use proptest::prelude::*;

/// 2026-11-18 11:06 UTC: histories are generated and judged at this moment, whatever day it is.
const NOW_MS: i64 = 1_795_000_000_000;

async fn delivered(
    logs: &std::collections::BTreeMap<String, Vec<hamgam_proto::record::v1::Record>>,
    order_seed: u64,
) -> (hamgam_central::merge::digest::StateDigest, Summary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = judged::hub(dir.path(), DealerRegistry::default(), NOW_MS);
    judged::feed(&hub, logs, order_seed).await;
    let digest = hub.digest().expect("digest");
    let summary = summary(&hub);
    hub.close().await;
    (digest, summary)
}

/// What the merge made of a history, to check the property is not vacuous.
#[derive(Debug, Default)]
struct Summary {
    customers_across_dealers: usize,
    conflicts: usize,
    reviews: usize,
    double_sales: usize,
}

fn summary(hub: &Hub<SledStore>) -> Summary {
    let store = hub.store().expect("store");
    let customers = store.customers("", 100_000).expect("customers");
    let conflicts = store.conflicts("", 100_000).expect("conflicts");
    Summary {
        customers_across_dealers: customers
            .iter()
            .filter(|c| {
                c.parties
                    .iter()
                    .map(|p| &p.0)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len()
                    > 1
            })
            .count(),
        conflicts: conflicts.iter().map(|(_, c)| c.len()).sum(),
        reviews: store.reviews(None, 100_000).expect("reviews").len(),
        double_sales: conflicts
            .iter()
            .flat_map(|(_, c)| c)
            .filter(|c| c.field == "sold_by")
            .count(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_delivery_order_batching_and_duplication_gives_the_same_state(
        seed in 1u64..u64::MAX,
        dealers in 2usize..5,
        people in 6usize..30,
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let history = history::generate(seed, dealers, people, NOW_MS);
            let (reference, summary) = delivered(&history.logs, 0).await;
            prop_assert!(summary.customers_across_dealers > 0, "{summary:?}");
            prop_assert!(summary.conflicts > 0 && summary.double_sales == 1, "{summary:?}");
            prop_assert!(summary.reviews > 0, "{summary:?}");
            for order_seed in [seed ^ 1, seed ^ 2] {
                let (digest, _) = delivered(&history.logs, order_seed.max(1)).await;
                let differing: Vec<_> = reference
                    .sections
                    .iter()
                    .filter(|(name, d)| digest.sections.get(*name) != Some(d))
                    .map(|(name, _)| *name)
                    .collect();
                prop_assert!(
                    differing.is_empty(),
                    "history seed {seed}, order seed {order_seed}: sections {differing:?} differ\nreference {reference}\ngot {digest}"
                );
            }
            Ok(())
        })?;
    }
}
