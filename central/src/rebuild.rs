//! `central admin rebuild`: recomputes every projection (verdicts, history groups, tallies,
//! customers, vehicles, conflicts, review pairs) from the stored record log and HQ's decision
//! log into a fresh store, and compares its [`digest`](crate::merge::digest) with the live one.
//!
//! Each dealer's records are replayed in seq order, in the batches they arrived in (same
//! receive time and measured clock offset, so T01 and T02 judge as they did); then HQ's
//! decisions in their order. Because every projection depends only on the set of records and
//! decisions, equal digests prove the live state is what the rules and the merge in force
//! compute; after a rule or merge change, the rebuilt store is the state to switch to.
//!
//! [`check_groups`] (`--check`) judges every history group again with the reference, the
//! whole-group judge, and compares it with what the incremental engine stored.

use std::collections::BTreeSet;

use crate::domain::{finding_keys, Finding};
use crate::judge::{self, Rulebook};
use crate::merge::digest::{digest, StateDigest};
use crate::rules::group_state::{self, GroupState};
use crate::rules::history::{self, At, GroupKey};
use crate::rules::RuleConfig;
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
                let sender = judge::Sender {
                    dealer,
                    stored_seq: into.dealer(dealer)?.unwrap_or_default().stored_seq,
                    clock_offset_ms: first.clock_offset_ms,
                };
                let judged = judge::judge_batch(into, rules, &sender, arrivals, now)?;
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

/// A member whose stored findings differ from the reference judge's.
#[derive(Debug, Clone)]
pub struct GroupDifference {
    pub group: GroupKey,
    pub at: At,
    /// `rule/field` of the stored findings and of the reference's.
    pub stored: Vec<String>,
    pub reference: Vec<String>,
}

/// What [`check_groups`] found.
#[derive(Debug, Clone, Default)]
pub struct GroupCheck {
    pub groups: u64,
    pub members: u64,
    /// Members whose stored findings (on the member or its record) differ from the reference.
    pub differing: Vec<GroupDifference>,
    /// Incrementally judged groups whose stored state is not the one counted from the members.
    pub states_differing: Vec<GroupKey>,
}

/// `central admin rebuild --check`: every history group the store's records belong to judged
/// again by the reference ([`history::judge_group`] on the whole group), compared with what
/// the incremental engine stored. `progress(groups done)` is called now and then.
pub fn check_groups<S: HubStore>(
    store: &S,
    config: &RuleConfig,
    mut progress: impl FnMut(u64),
) -> Result<GroupCheck, StoreError> {
    let mut groups: BTreeSet<GroupKey> = BTreeSet::new();
    for (dealer, _) in store.dealers()? {
        let mut after = 0;
        loop {
            let page = store.records(&dealer, after, BATCH)?;
            let Some(last) = page.last().map(|r| r.seq) else {
                break;
            };
            for r in page {
                groups.extend(r.groups);
            }
            after = last;
        }
    }
    let keys = |findings: &[Finding]| -> Vec<String> {
        finding_keys(findings)
            .into_iter()
            .map(|(rule, _, field)| format!("{rule}/{field}"))
            .collect()
    };
    let mut check = GroupCheck::default();
    for group in groups {
        let members = store.members(&group)?;
        let mut reference = history::judge_group(&group, &members, config);
        for m in &members {
            let at: At = (m.dealer_id.clone(), m.seq);
            let expected = keys(&reference.remove(&at).unwrap_or_default());
            let on_record = match store.record(&m.dealer_id, m.seq)? {
                Some(r) => keys(
                    &r.group_findings
                        .get(&group.scope())
                        .cloned()
                        .unwrap_or_default(),
                ),
                None => vec!["(record missing)".into()],
            };
            for stored in [keys(&m.current), on_record] {
                if stored != expected {
                    check.differing.push(GroupDifference {
                        group: group.clone(),
                        at: at.clone(),
                        stored,
                        reference: expected.clone(),
                    });
                    break;
                }
            }
        }
        if group_state::is_incremental(&group) {
            let mut counted = GroupState::default();
            for m in &members {
                counted.count(&group, m, config, true);
            }
            if store.group_state(&group)?.unwrap_or_default() != counted {
                check.states_differing.push(group.clone());
            }
        }
        check.groups += 1;
        check.members += members.len() as u64;
        if check.groups % 10_000 == 0 {
            progress(check.groups);
        }
    }
    progress(check.groups);
    Ok(check)
}
