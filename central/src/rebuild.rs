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

use std::collections::{BTreeMap, BTreeSet};

use crate::domain::{finding_keys, Finding};
use crate::judge::{self, Rulebook};
use crate::merge::digest::{digest, StateDigest};
use crate::merge::DecisionEntry;
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

/// One record of a record log, as a replay needs it: whose, where, how it arrived, and the
/// bytes the dealer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRecord {
    pub dealer_id: String,
    pub seq: u64,
    pub received_at_ms: i64,
    pub clock_offset_ms: i64,
    pub wire: Vec<u8>,
}

/// Where a replay reads the record and decision logs: a store ([`StoreLog`]) or a backup
/// folder (`crate::backup`).
pub trait ReplaySource {
    type Error: From<StoreError>;
    /// How many records the log holds (for progress).
    fn total_records(&mut self) -> Result<u64, Self::Error>;
    /// The next page of records: one dealer's, consecutive seqs ascending, dealers one after
    /// another; `None` at the end.
    fn next_records(&mut self) -> Result<Option<Vec<LoggedRecord>>, Self::Error>;
    /// The next HQ decisions, in order; empty at the end.
    fn next_decisions(&mut self) -> Result<Vec<DecisionEntry>, Self::Error>;
}

/// A store's record and decision logs, whole or up to a point (each dealer's seq, the last
/// decision number): what a backup of a running hub reads.
pub struct StoreLog<'a, S: HubStore> {
    store: &'a S,
    /// Each dealer and the last seq to read, in id order.
    dealers: Vec<(String, u64)>,
    dealer: usize,
    after_seq: u64,
    last_decision: u64,
    after_decision: u64,
}

impl<'a, S: HubStore> StoreLog<'a, S> {
    /// Everything the store holds now.
    pub fn whole(store: &'a S) -> Result<Self, StoreError> {
        let dealers = store
            .dealers()?
            .into_iter()
            .map(|(d, state)| (d, state.stored_seq))
            .collect();
        Ok(Self::up_to(store, dealers, u64::MAX))
    }

    /// The records of `dealers` up to each one's seq, and the decisions up to `last_decision`.
    pub fn up_to(store: &'a S, dealers: Vec<(String, u64)>, last_decision: u64) -> Self {
        StoreLog {
            store,
            dealers,
            dealer: 0,
            after_seq: 0,
            last_decision,
            after_decision: 0,
        }
    }
}

impl<S: HubStore> ReplaySource for StoreLog<'_, S> {
    type Error = StoreError;

    fn total_records(&mut self) -> Result<u64, StoreError> {
        Ok(self.dealers.iter().map(|(_, seq)| seq).sum())
    }

    fn next_records(&mut self) -> Result<Option<Vec<LoggedRecord>>, StoreError> {
        while let Some((dealer, last)) = self.dealers.get(self.dealer) {
            let room = last.saturating_sub(self.after_seq).min(BATCH as u64) as usize;
            let page = match room {
                0 => Vec::new(),
                n => self.store.records(dealer, self.after_seq, n)?,
            };
            let Some(end) = page.last().map(|r| r.seq) else {
                self.dealer += 1;
                self.after_seq = 0;
                continue;
            };
            self.after_seq = end;
            return Ok(Some(
                page.into_iter()
                    .map(|r| LoggedRecord {
                        dealer_id: r.dealer_id,
                        seq: r.seq,
                        received_at_ms: r.received_at_ms,
                        clock_offset_ms: r.clock_offset_ms,
                        wire: r.wire,
                    })
                    .collect(),
            ));
        }
        Ok(None)
    }

    fn next_decisions(&mut self) -> Result<Vec<DecisionEntry>, StoreError> {
        let mut page = self.store.decisions(self.after_decision, BATCH)?;
        page.retain(|d| d.no <= self.last_decision);
        if let Some(last) = page.last() {
            self.after_decision = last.no;
        }
        Ok(page)
    }
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replayed {
    pub records: u64,
    pub decisions: u64,
}

/// Replays `live`'s record and decision logs into the empty store `into` with `rules`, and
/// compares the digests; `progress(done, total)` is called after each batch.
pub fn rebuild<L: HubStore, R: HubStore>(
    live: &L,
    into: &R,
    rules: &Rulebook<'_>,
    progress: impl FnMut(u64, u64),
) -> Result<RebuildReport, StoreError> {
    let replayed = replay(&mut StoreLog::whole(live)?, into, rules, progress)?;
    Ok(RebuildReport {
        records: replayed.records,
        decisions: replayed.decisions,
        live: digest(live)?,
        rebuilt: digest(into)?,
    })
}

/// Replays a record and decision log into the empty store `into` with `rules`: each dealer's
/// records in the batches they arrived in (same receive time and session clock offset), then
/// HQ's decisions in order; flushed at the end. `progress(done, total)` after each batch.
pub fn replay<L: ReplaySource, R: HubStore>(
    log: &mut L,
    into: &R,
    rules: &Rulebook<'_>,
    mut progress: impl FnMut(u64, u64),
) -> Result<Replayed, L::Error> {
    if !into.dealers()?.is_empty() {
        return Err(StoreError::Engine(
            "the rebuild target already holds a hub: give an empty directory".into(),
        )
        .into());
    }
    let total = log.total_records()?;
    let mut done = 0;
    while let Some(page) = log.next_records()? {
        // Batches as they arrived: same receive time and session clock offset.
        for batch in page.chunk_by(|a, b| {
            a.received_at_ms == b.received_at_ms && a.clock_offset_ms == b.clock_offset_ms
        }) {
            replay_batch(into, rules, batch)?;
            done += batch.len() as u64;
            progress(done, total);
        }
    }
    let mut decisions = 0;
    loop {
        let page = log.next_decisions()?;
        if page.is_empty() {
            break;
        }
        for entry in &page {
            let judged = judge::judge_decision(into, rules, entry, entry.at_ms)?;
            into.apply(&judged.change)?;
            decisions += 1;
        }
    }
    into.flush()?;
    Ok(Replayed {
        records: done,
        decisions,
    })
}

/// Judges and applies one batch of one dealer as it arrived.
fn replay_batch<R: HubStore>(
    into: &R,
    rules: &Rulebook<'_>,
    batch: &[LoggedRecord],
) -> Result<(), StoreError> {
    let Some(first) = batch.first() else {
        return Ok(());
    };
    let dealer = &first.dealer_id;
    let mut arrivals = Vec::with_capacity(batch.len());
    for logged in batch {
        let record = wire::record_from_bytes(&logged.wire).map_err(|e| StoreError::Corrupt {
            key: format!("{dealer}/{}", logged.seq),
            detail: e.to_string(),
        })?;
        let mut arrival = wire::arrival(&record);
        // The bytes as the dealer sent them (a re-encoding would drop fields this hub's schema
        // does not know).
        arrival.wire = logged.wire.clone();
        arrivals.push(arrival);
    }
    let sender = judge::Sender {
        dealer,
        stored_seq: into.dealer(dealer)?.unwrap_or_default().stored_seq,
        clock_offset_ms: first.clock_offset_ms,
    };
    let judged = judge::judge_batch(into, rules, &sender, arrivals, first.received_at_ms)?;
    into.apply(&judged.change)?;
    Ok(())
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
    /// VINs whose stored vehicle facts (what the merge projects from, and the deliveries it
    /// found losing to HQ's confirmed seller) are not the ones their history group's records
    /// and HQ's decisions give.
    pub vehicles_differing: Vec<String>,
}

/// `central admin rebuild --check`: every history group the store's records belong to judged
/// again by the reference ([`history::judge_group`] on the whole group), compared with what
/// the incremental engine stored; and every VIN's vehicle facts read again from its group's
/// records, compared with the facts the merge keeps. `progress(groups done)` is called now and then.
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
        if let GroupKey::Vin(vin) = &group {
            let mut reference = BTreeMap::new();
            for m in &members {
                let fact = store
                    .record(&m.dealer_id, m.seq)?
                    .and_then(|r| crate::merge::resolve::vehicle_fact(&r, vin));
                if let Some(fact) = fact {
                    reference.insert((m.dealer_id.clone(), m.seq), fact);
                }
            }
            let facts: Vec<_> = reference.values().cloned().collect();
            let decisions = store.vehicle_decisions(vin)?.unwrap_or_default();
            let (_, losing) = crate::merge::vehicle::project(vin, &facts, &|_| None, &decisions);
            let losing: BTreeSet<At> = losing.into_iter().map(|(d, seq, _)| (d, seq)).collect();
            let deliveries: BTreeSet<At> = reference
                .iter()
                .filter(|(_, f)| {
                    matches!(
                        f.event,
                        crate::merge::vehicle::VehicleEvent::Delivery { .. }
                    )
                })
                .map(|(at, _)| at.clone())
                .collect();
            let sales = store.vehicle_sales(vin)?.unwrap_or_default();
            if store.vehicle_facts(vin)? != reference
                || sales.deliveries != deliveries
                || sales.losing != losing
            {
                check.vehicles_differing.push(vin.clone());
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
