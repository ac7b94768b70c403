//! The working set of one unit of work: the records it judges (new, corrected, re-judged),
//! each with the verdict it had, and what admitting them changed: group memberships joined and
//! left, parties, the merge's inputs. [`Work::admit`] runs a new record's own rules and puts it
//! in its groups; [`Work::correct`] applies a correction or withdrawal to its target.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Rulebook, Sender};
use crate::content::Content;
use crate::domain::{Finding, FlagEntry, Reason, RecordOrigin, Severity, StoredRecord, Verdict};
use crate::merge::resolve::{RecordSource, Resolver};
use crate::merge::{content_in_force, MergeChange};
use crate::rules::group_state;
use crate::rules::history::{self, At, GroupKey, Member};
use crate::rules::record::{self, PartyIds, RecordContext};
use crate::rules::Scope;
use crate::store::{Change, HubStore, StoreError};
use crate::wire::Arrival;

/// A record being judged, and the verdict it had before this batch (`None`: new).
pub(super) struct Entry {
    pub(super) record: StoredRecord,
    pub(super) before: Option<Verdict>,
    /// The record's flag-index entries as stored (empty: new).
    pub(super) before_flags: Vec<(String, FlagEntry)>,
    /// Changed besides its verdict (a correction, an HQ review): saved even if the verdict
    /// stays.
    pub(super) dirty: bool,
    /// The customer refs its content named before a correction in this batch moved it (the
    /// contact index keeps no trace of what a record stopped naming).
    pub(super) named_before: Vec<String>,
}

impl Entry {
    /// Puts the record in `change`, with the index entries that follow it: the flag index
    /// where its findings or reviews moved, and the contact index for a new or corrected record
    /// (the customer refs of its content in force).
    pub(super) fn save(&self, change: &mut Change) {
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

/// When a record was made, as its one-record rules read it.
#[derive(Debug, Clone, Copy)]
struct Made {
    at_ms: i64,
    /// An imported record's source time, not the agent's stamp.
    imported: bool,
}

pub(super) struct Work<'s, S: HubStore> {
    pub(super) store: &'s S,
    pub(super) rules: &'s Rulebook<'s>,
    /// The merge's inputs, gathered while admitting (taken when the merge runs).
    pub(super) resolver: Option<Resolver<'s, S>>,
    /// The merge's part of the change, once it ran.
    pub(super) merged: MergeChange,
    pub(super) entries: BTreeMap<At, Entry>,
    /// Record ids of this batch.
    pub(super) ids: HashMap<String, u64>,
    pub(super) joined: BTreeMap<(GroupKey, At), Member>,
    pub(super) left: BTreeSet<(GroupKey, At)>,
    pub(super) touched: BTreeSet<GroupKey>,
    /// VINs whose history a correction moved a record out of, with the record.
    pub(super) vins_left: BTreeSet<(String, At)>,
    /// The state of each incrementally judged group the batch touched.
    pub(super) group_states: BTreeMap<GroupKey, group_state::GroupState>,
    pub(super) parties: BTreeMap<(String, String), PartyIds>,
}

impl<'s, S: HubStore> Work<'s, S> {
    pub(super) fn new(store: &'s S, rules: &'s Rulebook<'s>) -> Self {
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
    pub(super) fn merge(&mut self) -> Result<(), StoreError> {
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
    pub(super) fn load(&mut self, at: &At) -> Result<Option<&mut Entry>, StoreError> {
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
    pub(super) fn admit(
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
