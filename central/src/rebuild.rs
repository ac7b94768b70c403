//! `central admin rebuild`: recomputes every projection (verdicts, history groups, tallies,
//! customers, vehicles, conflicts, review pairs) from the stored record log and HQ's decision
//! log into a fresh store, and compares its [`digest`](crate::merge::digest) with the live one.
//!
//! Each dealer's records are replayed in seq order, in the batches they arrived in (same
//! receive time and measured clock offset, so T01 and T02 judge as they did); then HQ's
//! decisions in their order. Because every projection depends only on the set of records and
//! decisions, equal digests prove the live state is what the rules and the merge in force
//! compute; after a rule or merge change, the rebuilt store is the state to switch to.

use crate::domain::DealerState;
use crate::judge::{self, Rulebook};
use crate::merge::digest::{digest, StateDigest};
use crate::store::{HubStore, StoreError};
use crate::wire;

/// Records replayed per batch at most.
const BATCH: usize = 500;

/// What a rebuild found.
#[derive(Debug, Clone)]
pub struct RebuildReport {
    pub records: u64,
    pub decisions: u64,
    pub live: StateDigest,
    pub rebuilt: StateDigest,
}

impl RebuildReport {
    /// The sections whose digests differ (empty: the live state is exactly the rebuilt one).
    pub fn differing(&self) -> Vec<&'static str> {
        self.live
            .sections
            .iter()
            .filter(|(name, digest)| self.rebuilt.sections.get(*name) != Some(digest))
            .map(|(name, _)| *name)
            .collect()
    }
}

/// Replays `live`'s record and decision logs into the empty store `into` with `rules`;
/// `progress(done, total)` is called after each batch.
pub fn rebuild<L: HubStore, R: HubStore>(
    live: &L,
    into: &R,
    rules: &Rulebook<'_>,
    mut progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, StoreError> {
    if !into.dealers()?.is_empty() {
        return Err(StoreError::Engine(
            "the rebuild target already holds a hub: give an empty directory".into(),
        ));
    }
    let dealers = live.dealers()?;
    let total: u64 = dealers.iter().map(|(_, s)| s.stored_seq).sum();
    let mut done = 0;
    for (dealer, _) in &dealers {
        let mut after = 0;
        loop {
            let page = live.records(dealer, after, BATCH)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            // Batches as they arrived: same receive time and session clock offset.
            let mut start = 0;
            while start < page.len() {
                let first = &page[start];
                let end = page[start..]
                    .iter()
                    .position(|r| {
                        r.received_at_ms != first.received_at_ms
                            || r.clock_offset_ms != first.clock_offset_ms
                    })
                    .map_or(page.len(), |n| start + n);
                let mut arrivals = Vec::with_capacity(end - start);
                for stored in &page[start..end] {
                    let record = wire::record_to_wire(stored).map_err(|e| StoreError::Corrupt {
                        key: format!("{dealer}/{}", stored.seq),
                        detail: e.to_string(),
                    })?;
                    let mut arrival = wire::arrival(&record);
                    // The bytes as the dealer sent them (a re-encoding would drop fields this
                    // hub's schema does not know).
                    arrival.wire = stored.wire.clone();
                    arrivals.push(arrival);
                }
                let now = first.received_at_ms;
                let mut state: DealerState = into.dealer(dealer)?.unwrap_or_default();
                state.clock_offset_ms = first.clock_offset_ms;
                state.stored_seq = page[end - 1].seq;
                state.record_count += (end - start) as u64;
                state.last_seen_ms = now;
                if state.first_seen_ms == 0 {
                    state.first_seen_ms = now;
                }
                let judged = judge::judge_batch(into, rules, dealer, state, arrivals, now)?;
                into.apply(&judged.change)?;
                done += (end - start) as u64;
                progress(done, total);
                start = end;
            }
            after = last;
        }
    }
    let mut decisions = 0;
    let mut after = 0;
    loop {
        let page = live.decisions(after, BATCH)?;
        for entry in &page {
            let judged = judge::judge_decision(into, rules, entry, entry.at_ms)?;
            into.apply(&judged.change)?;
            decisions += 1;
            after = entry.no;
        }
        if page.len() < BATCH {
            break;
        }
    }
    into.flush()?;
    Ok(RebuildReport {
        records: done,
        decisions,
        live: digest(live)?,
        rebuilt: digest(into)?,
    })
}
