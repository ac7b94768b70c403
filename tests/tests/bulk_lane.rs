//! A branch committing a few records waits for the slice running and one bulk slice at most,
//! not for a slice of every dealer catching up (`Hub`'s bulk lane, ARCHITECTURE.md "The data
//! path"). The order in which units of work were applied is read back from the change stream,
//! whose cursors the store numbers in apply order, so nothing here depends on timing: the
//! judging lock is held while the batches queue, on a single-threaded runtime where each
//! spawned batch runs to the lock it waits for before the next is spawned.

use std::sync::Arc;

use hamgam_central::domain::ChangeEntry;
use hamgam_central::rules::registry::DealerRegistry;
use hamgam_central::store::HubStore;
use hamgam_gateway::sync::Ingest;
use hamgam_tests::bench::outbox::MemoryOutbox;
use hamgam_tests::bench::sections::payloads;
use hamgam_tests::{dealer, judged, TEST_NOW_MS};

/// Lets every task the test spawned run until it waits (single-threaded runtime).
async fn settle() {
    for _ in 0..32 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_small_batch_waits_for_one_bulk_slice_not_one_per_dealer_catching_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hub = Arc::new(judged::hub(
        dir.path(),
        DealerRegistry::default(),
        TEST_NOW_MS,
    ));
    let payloads = payloads();

    // Hold the judging lock (as a backup's point does) until every batch is queued.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held_tx, held) = tokio::sync::oneshot::channel();
    let holder = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.with_units_held(move |_| {
                let _ = held_tx.send(());
                let _ = released.recv();
            })
            .await
        })
    };
    held.await.expect("the judging lock is held");

    let send = |id: &'static str, count: usize| {
        let hub = hub.clone();
        let records = MemoryOutbox::new(dealer(id), &payloads, count)
            .records()
            .to_vec();
        tokio::spawn(async move {
            let outcome = hub.ingest(&dealer(id), records).await.expect("ingested");
            outcome.durable.await.expect("durable");
        })
    };
    // Two dealers catching up (200 records each: about ten slices), then a branch's commit.
    let bulk_a = send("D-BULK-A", 200);
    settle().await;
    let bulk_b = send("D-BULK-B", 200);
    settle().await;
    let small = send("D-SMALL", 5);
    settle().await;
    release.send(()).expect("the holder waits");
    holder.await.expect("holder").expect("held");
    for task in [small, bulk_a, bulk_b] {
        task.await.expect("batch");
    }

    // Apply order: the first and last change-stream cursor of each dealer's stored records.
    let store = hub.store().expect("store");
    let mut span = std::collections::BTreeMap::<String, (u64, u64)>::new();
    for change in store.changes(0, 10_000).expect("change stream") {
        if let ChangeEntry::RecordStored { dealer_id, .. } = change.entry {
            let e = span
                .entry(dealer_id)
                .or_insert((change.cursor, change.cursor));
            e.1 = change.cursor;
        }
    }
    let (a, b, s) = (span["D-BULK-A"], span["D-BULK-B"], span["D-SMALL"]);
    assert_eq!(
        s.1 - s.0,
        4,
        "the small batch is one unit of work: {span:?}"
    );
    assert!(
        a.0 < s.0,
        "the bulk slice queued first is applied first: {span:?}"
    );
    assert!(
        s.1 < b.0,
        "the small batch went before the second bulk dealer's first slice: {span:?}"
    );
    assert!(
        a.1 > s.1,
        "the first bulk dealer was only one slice in when the small batch went: {span:?}"
    );
    for id in ["D-BULK-A", "D-BULK-B", "D-SMALL"] {
        let state = store.dealer(id).expect("dealer").expect("known");
        let expected = if id == "D-SMALL" { 5 } else { 200 };
        assert_eq!(state.stored_seq, expected, "{id} holds every record");
    }
    hub.close().await;
}
