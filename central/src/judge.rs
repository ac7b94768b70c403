//! The rule engine over the store: judges a batch of one dealer's new records against the
//! catalogue and re-judges every record whose verdict the batch changes, at any dealer.
//!
//! For each new record, in seq order: its own findings (R00 from the wire edge, then the
//! one-record rules), the history groups it joins, and, for a correction, the target record
//! re-judged on the amended content (or withdrawn). Then each group touched by the batch is
//! judged once: a dealer month, a mobile or a national ID from its state
//! ([`group_state`], only the members the batch touched unless what fires in the group
//! flips), a VIN or an RO number as a whole ([`history::judge_group`], also the reference for
//! the others); a member whose findings' keys change has its verdict recomputed. A changed
//! verdict of a record stored before this batch gets a new version and is queued on its
//! dealer's verdict feed (the store numbers it); the reliability tallies follow every verdict.
//! Everything lands in one [`Change`], applied atomically by the caller.
//!
//! **Invariant:** the verdicts after any set of batches depend on the set of records, not on
//! the order dealers' batches arrived in (each dealer's own records always come in seq order).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::content::Content;
use crate::domain::{
    ChangeEntry, Finding, FlagEntry, FlagReview, Outcome, Reason, RecordOrigin, Severity,
    StoredRecord, Verdict,
};
use crate::merge::resolve::{RecordSource, Resolver};
use crate::merge::{content_in_force, DecisionEntry, HqDecision, MergeChange};
use crate::rules::group_state;
use crate::rules::history::{self, At, GroupKey, Member};
use crate::rules::record::{self, PartyIds, RecordContext};
use crate::rules::registry::DealerRegistry;
use crate::rules::score::{day_of, DayTally};
use crate::rules::{RuleConfig, Scope};
use crate::store::{Change, DealerDelta, HubStore, StoreError};
use crate::wire::Arrival;

/// What the rules need besides the store.
pub struct Rulebook<'a> {
    pub config: &'a RuleConfig,
    pub registry: &'a DealerRegistry,
}

/// A record being judged, and the verdict it had before this batch (`None`: new).
struct Entry {
    record: StoredRecord,
    before: Option<Verdict>,
    /// The record's flag-index entries as stored (empty: new).
    before_flags: Vec<(String, FlagEntry)>,
    /// Changed besides its verdict (a correction, an HQ review): saved even if the verdict
    /// stays.
    dirty: bool,
    /// The customer refs its content named before a correction in this batch moved it (the
    /// contact index keeps no trace of what a record stopped naming).
    named_before: Vec<String>,
}

impl Entry {
    /// Puts the record in `change`, with the index entries that follow it: the flag index
    /// where its findings or reviews moved, and the contact index for a new or corrected record
    /// (the customer refs of its content in force).
    fn save(&self, change: &mut Change) {
        let record = &self.record;
        let now = record.flag_entries();
        for (rule, _) in &self.before_flags {
            if !now.iter().any(|(r, _)| r == rule) {
                change
                    .flag_index
                    .push((rule.clone(), record.dealer_id.clone(), record.seq, None));
            }
        }
        for (rule, entry) in now {
            if !self.before_flags.contains(&(rule.clone(), entry.clone())) {
                change
                    .flag_index
                    .push((rule, record.dealer_id.clone(), record.seq, Some(entry)));
            }
        }
        if self.before.is_none() || self.dirty {
            if let Some(content) = content_in_force(record) {
                for customer_ref in content.customer_refs() {
                    change.contacts.push((
                        (record.dealer_id.clone(), customer_ref.to_owned()),
                        record.seq,
                    ));
                }
            }
        }
        change.unnamed.extend(
            self.named_before
                .iter()
                .map(|r| (record.dealer_id.clone(), r.clone())),
        );
        change.records.push(record.clone());
    }
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

/// When a record was made, as its one-record rules read it.
#[derive(Debug, Clone, Copy)]
struct Made {
    at_ms: i64,
    /// An imported record's source time, not the agent's stamp.
    imported: bool,
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

struct Work<'s, S: HubStore> {
    store: &'s S,
    rules: &'s Rulebook<'s>,
    /// The merge's inputs, gathered while admitting (taken when the merge runs).
    resolver: Option<Resolver<'s, S>>,
    /// The merge's part of the change, once it ran.
    merged: MergeChange,
    entries: BTreeMap<At, Entry>,
    /// Record ids of this batch.
    ids: HashMap<String, u64>,
    joined: BTreeMap<(GroupKey, At), Member>,
    left: BTreeSet<(GroupKey, At)>,
    touched: BTreeSet<GroupKey>,
    /// VINs whose history a correction moved a record out of, with the record.
    vins_left: BTreeSet<(String, At)>,
    /// The state of each incrementally judged group the batch touched.
    group_states: BTreeMap<GroupKey, group_state::GroupState>,
    parties: BTreeMap<(String, String), PartyIds>,
}

impl<'s, S: HubStore> Work<'s, S> {
    fn new(store: &'s S, rules: &'s Rulebook<'s>) -> Self {
        Work {
            store,
            rules,
            resolver: Some(Resolver::new(store, rules.config)),
            merged: MergeChange::default(),
            entries: BTreeMap::new(),
            ids: HashMap::new(),
            joined: BTreeMap::new(),
            left: BTreeSet::new(),
            touched: BTreeSet::new(),
            vins_left: BTreeSet::new(),
            group_states: BTreeMap::new(),
            parties: BTreeMap::new(),
        }
    }

    fn resolver(&mut self) -> Result<&mut Resolver<'s, S>, StoreError> {
        self.resolver
            .as_mut()
            .ok_or_else(|| StoreError::Engine("the merge already ran".into()))
    }

    /// Runs the merge over every record this batch touched, and puts the H01 findings it
    /// wants on the records concerned.
    fn merge(&mut self) -> Result<(), StoreError> {
        let mut resolver = self
            .resolver
            .take()
            .ok_or_else(|| StoreError::Engine("the merge already ran".into()))?;
        for (vin, at) in &self.vins_left {
            resolver.vehicle_record(vin, at);
        }
        for (at, entry) in &self.entries {
            match content_in_force(&entry.record) {
                Some(Content::Customer(c)) => resolver.customer_record(
                    &at.0,
                    at.1,
                    Some(&c.customer_ref),
                    Some(&c.customer_ref),
                ),
                Some(content) => {
                    if let Some(vin) = vehicle_of(&content) {
                        resolver.vehicle_record(&vin, at);
                    }
                }
                None => {}
            }
        }
        let resolved = resolver.run(self)?;
        for (at, wanted) in resolved.findings {
            if let Some(entry) = self.load(&at)? {
                let current = entry.record.group_findings.get(&Scope::Customer);
                if current.map(Vec::as_slice).unwrap_or_default() != wanted.as_slice() {
                    if wanted.is_empty() {
                        entry.record.group_findings.remove(&Scope::Customer);
                    } else {
                        entry.record.group_findings.insert(Scope::Customer, wanted);
                    }
                }
            }
        }
        self.merged = resolved.change;
        Ok(())
    }

    /// Loads a stored record into the working set.
    fn load(&mut self, at: &At) -> Result<Option<&mut Entry>, StoreError> {
        if !self.entries.contains_key(at) {
            let Some(record) = self.store.record(&at.0, at.1)? else {
                return Ok(None);
            };
            let before = Some(record.verdict.clone());
            let before_flags = record.flag_entries();
            self.entries.insert(
                at.clone(),
                Entry {
                    record,
                    before,
                    before_flags,
                    dirty: false,
                    named_before: Vec::new(),
                },
            );
        }
        Ok(self.entries.get_mut(at))
    }

    /// The customers a delivery names, as the dealer registered them (this batch first).
    fn parties_of(
        &self,
        dealer: &str,
        content: &Content,
    ) -> Result<HashMap<String, PartyIds>, StoreError> {
        let mut out = HashMap::new();
        if let Content::Delivery(d) = content {
            for (_, customer_ref) in &d.parties {
                let key = (dealer.to_owned(), customer_ref.clone());
                let ids = match self.parties.get(&key) {
                    Some(ids) => Some(ids.clone()),
                    None => self.store.party(dealer, customer_ref)?,
                };
                if let Some(ids) = ids {
                    out.insert(customer_ref.clone(), ids);
                }
            }
        }
        Ok(out)
    }

    /// The one-record findings of `content` as `dealer` recorded it, `made` when it was made
    /// (and whether that is an imported record's source time).
    fn own_findings(
        &self,
        dealer: &str,
        clock_offset_ms: i64,
        content: &Content,
        made: Made,
        now_ms: i64,
    ) -> Result<Vec<Finding>, StoreError> {
        let parties = self.parties_of(dealer, content)?;
        let party = |customer_ref: &str| parties.get(customer_ref).cloned();
        let ctx = RecordContext {
            dealer_id: dealer,
            made_at_ms: made.at_ms,
            imported: made.imported,
            received_at_ms: now_ms,
            clock_offset_ms,
            dealer: self.rules.registry.dealer(dealer),
            config: self.rules.config,
            party: &party,
        };
        Ok(record::judge(content, &ctx))
    }

    /// Joins the groups of `content` and, for imported history, its source's sequence (and
    /// records the customer under its ref).
    fn join(
        &mut self,
        at: &At,
        content: &Content,
        origin: Option<&RecordOrigin>,
        findings: &[Finding],
    ) -> Vec<GroupKey> {
        let mut memberships = history::memberships(&at.0, content, findings);
        memberships.extend(history::source_membership(&at.0, origin, findings));
        let mut groups = Vec::with_capacity(memberships.len());
        for (group, fact) in memberships {
            self.left.remove(&(group.clone(), at.clone()));
            self.touched.insert(group.clone());
            self.joined.insert(
                (group.clone(), at.clone()),
                Member {
                    dealer_id: at.0.clone(),
                    seq: at.1,
                    fact,
                    current: Vec::new(),
                },
            );
            groups.push(group);
        }
        if let Content::Customer(c) = content {
            if !findings.iter().any(|f| f.severity == Severity::Reject) {
                let ids = PartyIds {
                    national_id: hamgam_proto::values::NationalId::parse(&c.national_id)
                        .ok()
                        .map(|n| n.as_str().to_owned()),
                    company_id: hamgam_proto::values::CompanyId::parse(&c.company_id)
                        .ok()
                        .map(|n| n.as_str().to_owned()),
                };
                self.parties
                    .insert((at.0.clone(), c.customer_ref.clone()), ids);
            }
        }
        groups
    }

    fn leave(&mut self, at: &At, groups: &[GroupKey]) {
        for group in groups {
            if let GroupKey::Vin(vin) = group {
                self.vins_left.insert((vin.clone(), at.clone()));
            }
            self.joined.remove(&(group.clone(), at.clone()));
            self.left.insert((group.clone(), at.clone()));
            self.touched.insert(group.clone());
        }
    }

    /// Takes one new record in.
    fn admit(
        &mut self,
        sender: &Sender<'_>,
        arrival: Arrival,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (dealer, clock_offset_ms) = (sender.dealer, sender.clock_offset_ms);
        let at: At = (dealer.to_owned(), arrival.seq);
        let mut own = arrival.malformed.clone();
        if !arrival.record_id.is_empty() {
            let reused = match self.ids.get(&arrival.record_id) {
                Some(seq) => Some((dealer.to_owned(), *seq)),
                None => self.store.locate(&arrival.record_id)?,
            };
            if let Some((other_dealer, other_seq)) = reused {
                own.push(Finding {
                    rule_id: "R00".into(),
                    severity: Severity::Reject,
                    field: "record_id".into(),
                    reason: Reason::new("R00.record_id_reused")
                        .arg("dealer", other_dealer)
                        .arg("seq", other_seq),
                });
            }
        }
        let mut groups = Vec::new();
        if let Some(Content::Customer(c)) = &arrival.content {
            self.resolver()?
                .customer_record(dealer, arrival.seq, None, Some(&c.customer_ref));
        }
        match &arrival.content {
            Some(Content::Correction(correction)) => {
                if let Some(problem) =
                    self.correct(dealer, clock_offset_ms, &arrival, correction, now_ms)?
                {
                    own.push(problem);
                }
            }
            Some(content) => {
                let made = Made {
                    at_ms: arrival.made_at_ms(),
                    imported: arrival.origin.is_some(),
                };
                own.extend(self.own_findings(dealer, clock_offset_ms, content, made, now_ms)?);
                groups = self.join(&at, content, arrival.origin.as_ref(), &own);
            }
            None => {}
        }
        if own.iter().any(|f| f.severity == Severity::Reject) {
            tracing::info!(dealer_id = dealer, record_id = %arrival.record_id, seq = arrival.seq, rules = ?own.iter().map(|f| f.rule_id.as_str()).collect::<Vec<_>>(), "record quarantined");
        }
        self.ids.insert(arrival.record_id.clone(), arrival.seq);
        let record = StoredRecord {
            record_id: arrival.record_id,
            dealer_id: dealer.to_owned(),
            seq: arrival.seq,
            kind: arrival
                .kind
                .map(|k| k.name().to_owned())
                .unwrap_or_default(),
            recorded_at_ms: arrival.recorded_at_ms,
            received_at_ms: now_ms,
            origin: arrival.origin,
            wire: arrival.wire,
            own_findings: own,
            group_findings: BTreeMap::new(),
            groups,
            corrected_by: None,
            retracted: false,
            amended: None,
            hlc: arrival.hlc,
            clock_offset_ms,
            flag_reviews: BTreeMap::new(),
            verdict: Verdict::from_findings(String::new(), 0, Vec::new(), now_ms),
        };
        self.entries.insert(
            at,
            Entry {
                record,
                before: None,
                before_flags: Vec::new(),
                dirty: true,
                named_before: Vec::new(),
            },
        );
        Ok(())
    }

    /// Applies a correction to its target; returns why the correction itself is refused.
    fn correct(
        &mut self,
        dealer: &str,
        clock_offset_ms: i64,
        arrival: &Arrival,
        correction: &crate::content::Correction,
        now_ms: i64,
    ) -> Result<Option<Finding>, StoreError> {
        let refuse = |reason: Reason| {
            Some(Finding {
                rule_id: "R00".into(),
                severity: Severity::Reject,
                field: "correction.target_record_id".into(),
                reason,
            })
        };
        let target = correction.target_record_id.as_str();
        let located = match self.ids.get(target) {
            Some(seq) => Some((dealer.to_owned(), *seq)),
            None => self.store.locate(target)?,
        };
        let Some(target_at) = located.filter(|(d, _)| d == dealer) else {
            return Ok(refuse(
                Reason::new("R00.correction_unknown_target")
                    .arg("target", target)
                    .arg("dealer", dealer),
            ));
        };
        let Some(entry) = self.load(&target_at)? else {
            return Ok(refuse(
                Reason::new("R00.correction_target_missing").arg("target", target),
            ));
        };
        let target_kind = entry.record.kind.clone();
        if target_kind == "correction" {
            return Ok(refuse(Reason::new("R00.correction_of_correction")));
        }
        if let Some(amended) = &correction.amended {
            if amended.kind_name() != target_kind {
                return Ok(refuse(
                    Reason::new("R00.correction_changes_kind")
                        .arg("amended", amended.field_prefix())
                        .arg("target", &target_kind),
                ));
            }
        }
        let in_force = content_in_force(&entry.record);
        let named_before: Vec<String> = in_force
            .iter()
            .flat_map(|c| c.customer_refs())
            .map(str::to_owned)
            .collect();
        let old_ref = match in_force {
            Some(Content::Customer(c)) => Some(c.customer_ref),
            _ => None,
        };
        let old_groups = std::mem::take(&mut entry.record.groups);
        let made = Made {
            at_ms: entry.record.made_at_ms(),
            imported: entry.record.origin.is_some(),
        };
        let origin = entry.record.origin.clone();
        let new_ref = match (&correction.amended, correction.retract) {
            (Some(amended), false) => match amended.as_ref() {
                Content::Customer(c) => Some(c.customer_ref.clone()),
                _ => None,
            },
            _ => None,
        };
        self.resolver()?.customer_record(
            dealer,
            target_at.1,
            old_ref.as_deref(),
            new_ref.as_deref(),
        );
        self.leave(&target_at, &old_groups);
        let (own, groups) = match (&correction.amended, correction.retract) {
            (Some(amended), false) => {
                let mut own = arrival.amended_malformed.clone();
                own.extend(self.own_findings(dealer, clock_offset_ms, amended, made, now_ms)?);
                let groups = self.join(&target_at, amended, origin.as_ref(), &own);
                (own, groups)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let entry = self
            .entries
            .get_mut(&target_at)
            .ok_or_else(|| StoreError::Engine("correction target lost".into()))?;
        entry.record.own_findings = own;
        entry.record.group_findings.clear();
        entry.record.groups = groups;
        entry.record.corrected_by = Some(arrival.record_id.clone());
        entry.record.retracted = correction.retract;
        entry.record.amended = match (&correction.amended, correction.retract) {
            (Some(amended), false) => Some(amended.as_ref().clone()),
            _ => None,
        };
        entry.dirty = true;
        entry.named_before.extend(named_before);
        tracing::info!(dealer_id = dealer, record_id = %arrival.record_id, target = %target, retract = correction.retract, "correction applied");
        Ok(None)
    }

    /// Judges every touched group once, and updates the members whose findings changed.
    fn judge_groups(&mut self) -> Result<(), StoreError> {
        let touched = std::mem::take(&mut self.touched);
        for group in touched {
            let judged = if matches!(group, GroupKey::SourceSequence { .. }) {
                self.judge_neighbours(&group)?
            } else if group_state::is_incremental(&group) {
                self.judge_incrementally(&group)?
            } else {
                self.judge_whole(&group)?
            };
            let scope = group.scope();
            for (at, member, findings) in judged {
                let fresh = self.joined.contains_key(&(group.clone(), at.clone()));
                if !fresh && crate::domain::same_findings(&member.current, &findings) {
                    continue;
                }
                let mut updated = member;
                updated.current = findings.clone();
                self.joined.insert((group.clone(), at.clone()), updated);
                if let Some(entry) = self.load(&at)? {
                    if findings.is_empty() {
                        entry.record.group_findings.remove(&scope);
                    } else {
                        entry.record.group_findings.insert(scope, findings);
                    }
                }
            }
        }
        Ok(())
    }

    /// The members of `group` this batch adds or replaces.
    fn joined_to(&self, group: &GroupKey) -> BTreeMap<At, Member> {
        self.joined
            .range((group.clone(), (String::new(), 0))..)
            .take_while(|((g, _), _)| g == group)
            .map(|((_, at), m)| (at.clone(), m.clone()))
            .collect()
    }

    /// The members of `group` this batch removes.
    fn left_from(&self, group: &GroupKey) -> Vec<At> {
        self.left
            .range((group.clone(), (String::new(), 0))..)
            .take_while(|(g, _)| g == group)
            .map(|(_, at)| at.clone())
            .collect()
    }

    /// Every member of `group` after this batch.
    fn all_members(&self, group: &GroupKey) -> Result<BTreeMap<At, Member>, StoreError> {
        let mut members: BTreeMap<At, Member> = self
            .store
            .members(group)?
            .into_iter()
            .map(|m| ((m.dealer_id.clone(), m.seq), m))
            .collect();
        for at in self.left_from(group) {
            members.remove(&at);
        }
        members.extend(self.joined_to(group));
        Ok(members)
    }

    /// The reference: the whole group read and judged (VIN and RO-number groups).
    fn judge_whole(&self, group: &GroupKey) -> Result<Vec<(At, Member, Vec<Finding>)>, StoreError> {
        let members = self.all_members(group)?;
        let list: Vec<Member> = members.values().cloned().collect();
        let mut judged = history::judge_group(group, &list, self.rules.config);
        Ok(members
            .into_iter()
            .map(|(at, m)| {
                let findings = judged.remove(&at).unwrap_or_default();
                (at, m, findings)
            })
            .collect())
    }

    /// A source's sequence: a member's T01 reads only the dealer's next record from the same
    /// source, so only the members this batch adds or moves and the member just before each
    /// are judged, from their nearest neighbours in the store. New records come after every
    /// stored one of their dealer, so they need the store's member before the first of them
    /// only; a correction's target is judged with both of its stored neighbours.
    fn judge_neighbours(
        &mut self,
        group: &GroupKey,
    ) -> Result<Vec<(At, Member, Vec<Finding>)>, StoreError> {
        let joined = self.joined_to(group);
        let left: BTreeSet<At> = self.left_from(group).into_iter().collect();
        let is_new = |at: &At| self.entries.get(at).is_some_and(|e| e.before.is_none());
        let mut view: BTreeMap<At, Member> = BTreeMap::new();
        let mut judge: BTreeSet<At> = joined.keys().cloned().collect();
        let first_new = joined.keys().find(|at| is_new(at)).cloned();
        let moved: Vec<At> = joined
            .keys()
            .filter(|at| !is_new(at))
            .chain(left.iter())
            .cloned()
            .collect();
        let places = first_new
            .iter()
            .map(|at| (at, false))
            .chain(moved.iter().map(|at| (at, true)));
        for (at, both_sides) in places {
            if let Some(before) = self.stored_neighbour(group, at, &left, false)? {
                let before_at = (before.dealer_id.clone(), before.seq);
                judge.insert(before_at.clone());
                view.entry(before_at).or_insert(before);
            }
            if both_sides {
                if let Some(after) = self.stored_neighbour(group, at, &left, true)? {
                    view.entry((after.dealer_id.clone(), after.seq))
                        .or_insert(after);
                }
            }
        }
        view.extend(joined);
        for at in &left {
            view.remove(at);
        }
        let config = self.rules.config;
        Ok(judge
            .into_iter()
            .filter_map(|at| {
                let member = view.get(&at)?.clone();
                let next = view
                    .range((at.0.clone(), at.1 + 1)..)
                    .next()
                    .map(|(_, m)| m);
                let findings = next
                    .and_then(|next| history::source_clock_finding(&member, next, config))
                    .into_iter()
                    .collect();
                Some((at, member, findings))
            })
            .collect())
    }

    /// The nearest stored member of `group` before (or `after`) `at` that this batch does not
    /// remove.
    fn stored_neighbour(
        &self,
        group: &GroupKey,
        at: &At,
        left: &BTreeSet<At>,
        after: bool,
    ) -> Result<Option<Member>, StoreError> {
        let mut place = at.clone();
        loop {
            let (before, next) = self.store.neighbours(group, &place.0, place.1)?;
            let Some(found) = (if after { next } else { before }) else {
                return Ok(None);
            };
            let found_at = (found.dealer_id.clone(), found.seq);
            if !left.contains(&found_at) {
                return Ok(Some(found));
            }
            place = found_at;
        }
    }

    /// A large group from its state ([`group_state`]): only the members this batch touched,
    /// unless what fires in the group changed.
    fn judge_incrementally(
        &mut self,
        group: &GroupKey,
    ) -> Result<Vec<(At, Member, Vec<Finding>)>, StoreError> {
        let config = self.rules.config;
        let mut state = self.store.group_state(group)?.unwrap_or_default();
        let before = state.firing(group, config);
        let joined = self.joined_to(group);
        for at in joined.keys().chain(self.left_from(group).iter()) {
            if let Some(old) = self.store.member(group, &at.0, at.1)? {
                state.count(group, &old, config, false);
            }
        }
        for member in joined.values() {
            state.count(group, member, config, true);
        }
        let after = state.firing(group, config);
        let members = if before == after {
            joined
        } else {
            self.all_members(group)?
        };
        let judged = members
            .into_iter()
            .map(|(at, m)| {
                let findings = state.findings(group, &m, after, config);
                (at, m, findings)
            })
            .collect();
        self.group_states.insert(group.clone(), state);
        Ok(judged)
    }
}

impl<S: HubStore> RecordSource for Work<'_, S> {
    /// A read only: records the merge merely reads (a party's records) do not join the set
    /// whose verdicts are recomputed and saved.
    fn record(&mut self, at: &At) -> Result<Option<StoredRecord>, StoreError> {
        match self.entries.get(at) {
            Some(entry) => Ok(Some(entry.record.clone())),
            None => self.store.record(&at.0, at.1),
        }
    }
}

/// The VIN a record about a vehicle names, normalised (none if it is not a valid VIN).
fn vehicle_of(content: &Content) -> Option<String> {
    let raw = match content {
        Content::Delivery(d) => &d.vin,
        Content::RepairOrder(ro) => &ro.vin,
        Content::VehicleStatus(v) => &v.vin,
        Content::OdometerReplacement(o) => &o.vin,
        _ => return None,
    };
    hamgam_proto::values::Vin::parse(raw)
        .ok()
        .map(|v| v.as_str().to_owned())
}
