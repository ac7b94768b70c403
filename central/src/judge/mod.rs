//! The rule engine over the store: judges a batch of one dealer's new records against the
//! catalogue and re-judges every record whose verdict the batch changes, at any dealer.
//!
//! For each new record, in seq order: its own findings (R00 from the wire edge, then the
//! one-record rules), the history groups it joins, and, for a correction, the target record
//! re-judged on the amended content (or withdrawn). Then each group touched by the batch is
//! judged once: a dealer month, a mobile or a national ID from its state
//! ([`group_state`], only the members the batch touched unless what fires in the group
//! flips), a VIN or an RO number as a whole
//! ([`judge_group`](crate::rules::history::judge_group), also the reference for the others);
//! a member whose findings' keys change has its verdict recomputed. A changed
//! verdict of a record stored before this batch gets a new version and is queued on its
//! dealer's verdict feed (the store numbers it); the reliability tallies follow every verdict.
//! Everything lands in one [`Change`], applied atomically by the caller.
//!
//! **Invariant:** the verdicts after any set of batches depend on the set of records, not on
//! the order dealers' batches arrived in (each dealer's own records always come in seq order).

use std::collections::BTreeMap;

use crate::domain::{ChangeEntry, FlagReview, Outcome, Verdict};
use crate::merge::{DecisionEntry, HqDecision};
use crate::rules::group_state;
use crate::rules::history::At;
use crate::rules::registry::DealerRegistry;
use crate::rules::score::{day_of, DayTally};
use crate::rules::RuleConfig;
use crate::store::{Change, DealerDelta, HubStore, StoreError};
use crate::wire::Arrival;

mod groups;
mod work;

use work::Work;

/// What the rules need besides the store.
pub struct Rulebook<'a> {
    pub config: &'a RuleConfig,
    pub registry: &'a DealerRegistry,
}

/// Where one batch's judging time went (the hub's stage timings, `hamgam_ingest_stage_seconds`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// Admitting the records: the one-record rules, corrections, group memberships.
    pub rules: std::time::Duration,
    /// The history groups the batch touched, decided.
    pub groups: std::time::Duration,
    /// The merge: parties, customers, vehicles, review pairs.
    pub merge: std::time::Duration,
    /// Verdicts, versions, feeds, tallies and the change stream.
    pub verdicts: std::time::Duration,
}

/// The outcome of judging one batch.
pub struct Judged {
    /// Where the time went.
    pub timings: Timings,
    pub change: Change,
    /// The final verdict of each new record, in the batch's order.
    pub verdicts: Vec<Verdict>,
}

/// Judges `arrivals`, new records of `sender` (consecutive seqs after its stored seq).
pub fn judge_batch<S: HubStore>(
    store: &S,
    rules: &Rulebook<'_>,
    sender: &Sender<'_>,
    arrivals: Vec<Arrival>,
    now_ms: i64,
) -> Result<Judged, StoreError> {
    let dealer = sender.dealer;
    let mut work = Work::new(store, rules);
    let order: Vec<At> = arrivals
        .iter()
        .map(|a| (dealer.to_owned(), a.seq))
        .collect();
    let mut timings = Timings::default();
    let started = std::time::Instant::now();
    for arrival in arrivals {
        work.admit(sender, arrival, now_ms)?;
    }
    let admitted = std::time::Instant::now();
    timings.rules = admitted - started;
    work.judge_groups()?;
    let grouped = std::time::Instant::now();
    timings.groups = grouped - admitted;
    work.merge()?;
    let merged = std::time::Instant::now();
    timings.merge = merged - grouped;
    let mut judged = finish(store, work, Some(sender), &order, now_ms)?;
    timings.verdicts = merged.elapsed();
    judged.timings = timings;
    Ok(judged)
}

/// Applies an HQ decision (a conflict settled, an identity review decided, a link undone):
/// the merge re-resolves what it concerns, and records whose H01 findings change get new
/// verdicts on their dealers' feeds.
pub fn judge_decision<S: HubStore>(
    store: &S,
    rules: &Rulebook<'_>,
    decision: &DecisionEntry,
    now_ms: i64,
) -> Result<Judged, StoreError> {
    let mut work = Work::new(store, rules);
    if let HqDecision::ReviewFlag {
        dealer_id,
        seq,
        rule_id,
        status,
    } = &decision.decision
    {
        let at: At = (dealer_id.clone(), *seq);
        if let Some(entry) = work.load(&at)? {
            entry.record.flag_reviews.insert(
                rule_id.clone(),
                FlagReview {
                    status: *status,
                    decision: decision.no,
                    by: decision.by.clone(),
                    comment: decision.comment.clone(),
                },
            );
            entry.dirty = true;
        }
    }
    work.resolver
        .as_mut()
        .ok_or_else(|| StoreError::Engine("resolver missing".into()))?
        .decide(decision)?;
    work.merge()?;
    finish(store, work, None, &[], now_ms)
}

/// The dealer whose batch is judged: its id, the seq it held before, and its session's clock
/// offset (agent - hub).
pub struct Sender<'a> {
    pub dealer: &'a str,
    pub stored_seq: u64,
    pub clock_offset_ms: i64,
}

/// Final verdicts, version bumps, feed entries and tallies of everything `work` touched;
/// `sender` is the dealer whose batch this is (none for an HQ decision), `order` its new
/// records.
fn finish<S: HubStore>(
    store: &S,
    mut work: Work<'_, S>,
    sender: Option<&Sender<'_>>,
    order: &[At],
    now_ms: i64,
) -> Result<Judged, StoreError> {
    let mut change = Change {
        at_ms: now_ms,
        ..Change::default()
    };
    let mut deltas: BTreeMap<String, DealerDelta> = BTreeMap::new();
    if let Some(sender) = sender {
        deltas.insert(
            sender.dealer.to_owned(),
            DealerDelta {
                expect_stored_seq: Some(sender.stored_seq),
                stored_seq: order.last().map_or(0, |at| at.1),
                records_added: order.len() as u64,
                rejected_delta: 0,
                seen_ms: now_ms,
            },
        );
    }
    let mut tallies: BTreeMap<(String, i64), DayTally> = BTreeMap::new();
    for ((owner, _), entry) in work.entries.iter_mut() {
        let findings = entry.record.findings_in_force();
        let mut verdict = Verdict::from_findings(
            entry.record.record_id.clone(),
            entry.record.seq,
            findings,
            now_ms,
        );
        match &entry.before {
            Some(before)
                if before.outcome == verdict.outcome
                    && crate::domain::same_findings(&before.findings, &verdict.findings) =>
            {
                if entry.dirty {
                    entry.save(&mut change);
                }
                continue; // touched, verdict unchanged
            }
            Some(before) => verdict.version = before.version + 1,
            None => {}
        }
        let day = day_of(entry.record.made_at_ms());
        let tally = match tallies.entry((owner.clone(), day)) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(store.tally(owner, day)?.unwrap_or_default())
            }
        };
        let was_rejected = entry
            .before
            .as_ref()
            .is_some_and(|b| b.outcome == Outcome::Rejected);
        match &entry.before {
            Some(before) => tally.count(before, false),
            None => *tally.kinds.entry(entry.record.kind.clone()).or_default() += 1,
        }
        tally.count(&verdict, true);
        let is_rejected = verdict.outcome == Outcome::Rejected;
        let moved = i64::from(is_rejected) - i64::from(was_rejected);
        if moved != 0 {
            deltas.entry(owner.clone()).or_default().rejected_delta += moved;
        }
        if entry.before.is_some() {
            change
                .verdict_updates
                .push((owner.clone(), verdict.clone()));
            tracing::debug!(dealer_id = %owner, record_id = %verdict.record_id, seq = verdict.seq, version = verdict.version, outcome = ?verdict.outcome, "verdict changed");
        }
        entry.record.verdict = verdict;
        entry.save(&mut change);
    }
    change.dealers = deltas.into_iter().collect();
    change.merge = std::mem::take(&mut work.merged);
    change.tallies = tallies
        .into_iter()
        .map(|((d, day), t)| (d, day, t))
        .collect();
    change.joined = work.joined.into_iter().map(|((g, _), m)| (g, m)).collect();
    change.group_states = work
        .group_states
        .into_iter()
        .map(|(g, state)| {
            let kept = (state != group_state::GroupState::default()).then_some(state);
            (g, kept)
        })
        .collect();
    change.left = work
        .left
        .into_iter()
        .map(|(g, (d, seq))| (g, d, seq))
        .collect();
    change.parties = work
        .parties
        .into_iter()
        .map(|((d, r), ids)| (d, r, ids))
        .collect();
    let verdicts = order
        .iter()
        .map(|at| {
            work.entries
                .get(at)
                .map(|e| e.record.verdict.clone())
                .ok_or_else(|| StoreError::Engine(format!("record {at:?} lost while judging")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    change_log(&mut change, order, &verdicts);
    Ok(Judged {
        timings: Timings::default(),
        change,
        verdicts,
    })
}

/// Appends to `change` the change-stream entries of what it does: records stored, verdicts
/// changed, customers changed (the store numbers them).
fn change_log(change: &mut Change, order: &[At], verdicts: &[Verdict]) {
    for ((dealer, seq), verdict) in order.iter().zip(verdicts) {
        change.changes.push(ChangeEntry::RecordStored {
            dealer_id: dealer.clone(),
            seq: *seq,
            verdict: verdict.clone(),
        });
    }
    for (dealer, verdict) in &change.verdict_updates {
        change.changes.push(ChangeEntry::VerdictChanged {
            dealer_id: dealer.clone(),
            verdict: verdict.clone(),
        });
    }
    for (customer_id, customer) in &change.merge.customers {
        change.changes.push(ChangeEntry::CustomerChanged {
            customer_id: customer_id.clone(),
            parties: customer
                .iter()
                .flat_map(|c| c.parties.iter().cloned())
                .collect(),
        });
    }
}
