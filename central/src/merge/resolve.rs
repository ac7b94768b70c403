//! The merge, incrementally: given the customer records and vehicles a batch (or an HQ
//! decision) touched, recompute exactly the parties, customers, review pairs and vehicles that
//! can have changed, reading the rest from the store through index lookups.
//!
//! A touched party's view is rebuilt from its records; its customer is recomputed as the
//! connected component of "same customer" links ([`identity::relate`]) reached through the
//! block index, starting from the party and from every party of its old customer (so a split
//! is seen as well as a merge). Vehicles are recomputed when one of their records changed or a
//! party in their history moved to another customer. The result is one [`MergeChange`] plus the
//! H01 findings to set on records, applied by the caller in the same atomic change.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use hamgam_proto::text::normalize;
use hamgam_proto::values::{CompanyId, Mobile, NationalId, PostalCode};

use super::golden::{self, Disagreement};
use super::identity::{self, Match, ReviewItem};
use super::vehicle::{self, VehicleEvent, VehicleFact, VehicleSales};
use super::{
    content_in_force, field_spoiled, trust_of, Confirmed, DecisionEntry, HqDecision, MergeChange,
    Party, PartyKey, PartyView, Provenance, Stamp, Subject, VehicleDecisions,
};
use crate::content::Content;
use crate::domain::{Finding, Reason, StoredRecord};
use crate::rules::history::{At, GroupKey};
use crate::rules::{finding, RuleConfig};
use crate::store::{HubStore, StoreError};

/// Records as the caller sees them now (its batch's changes over the store).
pub trait RecordSource {
    fn record(&mut self, at: &At) -> Result<Option<StoredRecord>, StoreError>;
}

/// The merge of one batch or decision.
pub struct Resolver<'a, S: HubStore> {
    store: &'a S,
    config: &'a RuleConfig,
    parties: BTreeMap<PartyKey, Party>,
    /// Parties whose stored state is replaced.
    dirty: BTreeSet<PartyKey>,
    /// The name words each party had when this unit read it from the store (the search index
    /// holds them already: only new words are written).
    indexed_words: BTreeMap<PartyKey, Vec<String>>,
    /// Block index changes over the store.
    blocks: BTreeMap<String, BTreeMap<PartyKey, bool>>,
    /// Each block's members as the store holds them, read once per unit of work: a component's
    /// parties share their blocks, and each asks for them (the store is not written before the
    /// unit is applied, so what it holds does not change meanwhile).
    stored_blocks: BTreeMap<String, Vec<PartyKey>>,
    links: BTreeMap<PartyKey, Option<String>>,
    touched: BTreeSet<PartyKey>,
    /// Parties whose customer must be recomputed although their view did not change.
    reseed: BTreeSet<PartyKey>,
    vins: BTreeSet<String>,
    /// The records of each VIN in `vins` that this unit changed (their facts are read again).
    vin_records: BTreeMap<String, BTreeSet<At>>,
    vehicle_decisions: BTreeMap<String, VehicleDecisions>,
    /// Customer records whose ref changed: `(seq, from, to)`.
    moves: Vec<(Option<PartyKey>, Option<PartyKey>, u64)>,
    change: MergeChange,
    /// H01 findings wanted on records (an empty list clears them).
    findings: BTreeMap<At, Vec<Finding>>,
}

/// What the merge asks of the caller's atomic change.
pub struct Resolved {
    pub change: MergeChange,
    /// The `Customer`-scope findings each record must now carry (empty: none).
    pub findings: BTreeMap<At, Vec<Finding>>,
}

impl<'a, S: HubStore> Resolver<'a, S> {
    pub fn new(store: &'a S, config: &'a RuleConfig) -> Self {
        Resolver {
            store,
            config,
            parties: BTreeMap::new(),
            dirty: BTreeSet::new(),
            indexed_words: BTreeMap::new(),
            blocks: BTreeMap::new(),
            stored_blocks: BTreeMap::new(),
            links: BTreeMap::new(),
            touched: BTreeSet::new(),
            reseed: BTreeSet::new(),
            vins: BTreeSet::new(),
            vin_records: BTreeMap::new(),
            vehicle_decisions: BTreeMap::new(),
            moves: Vec::new(),
            change: MergeChange::default(),
            findings: BTreeMap::new(),
        }
    }

    /// A customer record (new, corrected, or with a changed verdict) of `dealer` at `seq`:
    /// `before` is the ref its content in force had, `after` the ref it has now.
    pub fn customer_record(
        &mut self,
        dealer: &str,
        seq: u64,
        before: Option<&str>,
        after: Option<&str>,
    ) {
        let key = |r: &str| (dealer.to_owned(), r.to_owned());
        if before != after {
            self.moves.push((before.map(key), after.map(key), seq));
            if let Some(b) = before {
                self.touched.insert(key(b));
            }
        }
        if let Some(a) = after {
            self.touched.insert(key(a));
        }
    }

    /// The record at `at` changed and may say something about `vin` (or no longer does).
    pub fn vehicle_record(&mut self, vin: &str, at: &At) {
        self.vins.insert(vin.to_owned());
        self.vin_records
            .entry(vin.to_owned())
            .or_default()
            .insert(at.clone());
    }

    /// Takes an HQ decision into account (the caller logs it in the same change).
    pub fn decide(&mut self, entry: &DecisionEntry) -> Result<(), StoreError> {
        let confirmed = Confirmed {
            value: String::new(),
            decision: entry.no,
            at_ms: entry.at_ms,
        };
        match &entry.decision {
            HqDecision::Confirm {
                subject: Subject::Vehicle(vin),
                value,
                ..
            } => {
                let mut d = self.vehicle_decisions_of(vin)?;
                d.seller = Some(Confirmed {
                    value: value.clone(),
                    ..confirmed
                });
                self.vehicle_decisions.insert(vin.clone(), d);
                self.vins.insert(vin.clone());
            }
            HqDecision::Confirm {
                field,
                value,
                parties,
                ..
            } => {
                for p in parties {
                    let party = self.party_mut(p)?;
                    party.decisions.confirmed.insert(
                        field.clone(),
                        Confirmed {
                            value: value.clone(),
                            ..confirmed.clone()
                        },
                    );
                    self.dirty.insert(p.clone());
                    self.reseed.insert(p.clone());
                }
            }
            HqDecision::Link { a, b } | HqDecision::KeepApart { a, b } => {
                let link = matches!(entry.decision, HqDecision::Link { .. });
                for (x, y) in [(a, b), (b, a)] {
                    let party = self.party_mut(x)?;
                    if link {
                        party.decisions.apart.remove(y);
                        party.decisions.linked.insert(y.clone());
                    } else {
                        party.decisions.linked.remove(y);
                        party.decisions.apart.insert(y.clone());
                    }
                    self.dirty.insert(x.clone());
                    self.reseed.insert(x.clone());
                }
            }
            HqDecision::Detach { party } | HqDecision::Reattach { party } => {
                let detach = matches!(entry.decision, HqDecision::Detach { .. });
                let state = self.party_mut(party)?;
                state.decisions.detached = detach;
                // Detaching also undoes the links HQ made explicitly.
                let linked: Vec<PartyKey> = if detach {
                    std::mem::take(&mut state.decisions.linked)
                        .into_iter()
                        .collect()
                } else {
                    Vec::new()
                };
                for other in linked {
                    self.party_mut(&other)?.decisions.linked.remove(party);
                    self.dirty.insert(other.clone());
                    self.reseed.insert(other);
                }
                self.dirty.insert(party.clone());
                self.reseed.insert(party.clone());
            }
            // The judge applies it to the record; the merge sees the record's new trust.
            HqDecision::ReviewFlag { .. } => {}
        }
        self.change.decisions.push(entry.clone());
        Ok(())
    }

    fn vehicle_decisions_of(&mut self, vin: &str) -> Result<VehicleDecisions, StoreError> {
        if let Some(d) = self.vehicle_decisions.get(vin) {
            return Ok(d.clone());
        }
        Ok(self.store.vehicle_decisions(vin)?.unwrap_or_default())
    }

    fn party_mut(&mut self, key: &PartyKey) -> Result<&mut Party, StoreError> {
        if !self.parties.contains_key(key) {
            let party = self.store.merge_party(key)?.unwrap_or_default();
            let words = party
                .view
                .as_ref()
                .map(|v| v.name_words())
                .unwrap_or_default();
            self.indexed_words.insert(key.clone(), words);
            self.parties.insert(key.clone(), party);
        }
        self.parties
            .get_mut(key)
            .ok_or_else(|| StoreError::Engine("party lost while merging".into()))
    }

    fn party(&mut self, key: &PartyKey) -> Result<&Party, StoreError> {
        Ok(&*self.party_mut(key)?)
    }

    fn link_of(&self, key: &PartyKey) -> Result<Option<String>, StoreError> {
        match self.links.get(key) {
            Some(link) => Ok(link.clone()),
            None => self.store.link(key),
        }
    }

    /// A block's members as the store holds them (read once per unit of work).
    fn stored_block(&mut self, block: &str) -> Result<&[PartyKey], StoreError> {
        if !self.stored_blocks.contains_key(block) {
            let members = self.store.block(block)?;
            self.stored_blocks.insert(block.to_string(), members);
        }
        Ok(self.stored_blocks.get(block).map_or(&[][..], |m| &m[..]))
    }

    fn block_members(&mut self, block: &str) -> Result<Vec<PartyKey>, StoreError> {
        let stored = self.stored_block(block)?.to_vec();
        let Some(overlay) = self.blocks.get(block) else {
            return Ok(stored);
        };
        let mut members: BTreeSet<PartyKey> = stored.into_iter().collect();
        {
            for (p, present) in overlay {
                if *present {
                    members.insert(p.clone());
                } else {
                    members.remove(p);
                }
            }
        }
        Ok(members.into_iter().collect())
    }

    /// Runs the merge over everything touched; `source` gives records as they are now.
    pub fn run(mut self, source: &mut dyn RecordSource) -> Result<Resolved, StoreError> {
        // 1. Party sources and views.
        for (from, to, seq) in std::mem::take(&mut self.moves) {
            if let Some(from) = from {
                self.party_mut(&from)?.sources.remove(&seq);
            }
            if let Some(to) = to {
                self.party_mut(&to)?.sources.insert(seq);
            }
        }
        let touched: Vec<PartyKey> = self.touched.iter().cloned().collect();
        for key in &touched {
            // The newest usable record is the view: read back from the newest until found
            // (a party's records are read once each at most, not all on every touch).
            let sources: Vec<u64> = self.party(key)?.sources.iter().copied().collect();
            let mut view = None;
            for seq in sources.iter().rev() {
                let at = (key.0.clone(), *seq);
                if let Some(record) = source.record(&at)? {
                    view = view_of(&record, &key.1);
                    if view.is_some() {
                        break;
                    }
                }
            }
            let old = self.party(key)?.view.clone();
            let old_blocks: BTreeSet<String> = old
                .as_ref()
                .map(identity::blocks)
                .unwrap_or_default()
                .into_iter()
                .collect();
            let new_blocks: BTreeSet<String> = view
                .as_ref()
                .map(identity::blocks)
                .unwrap_or_default()
                .into_iter()
                .collect();
            for b in old_blocks.difference(&new_blocks) {
                self.blocks
                    .entry(b.clone())
                    .or_default()
                    .insert(key.clone(), false);
            }
            for b in new_blocks.difference(&old_blocks) {
                self.blocks
                    .entry(b.clone())
                    .or_default()
                    .insert(key.clone(), true);
            }
            // Review pairs through a mobile or national ID the party no longer has are dropped
            // (pairs through its current ones are re-checked in step 3, which comes later and
            // wins).
            for b in old_blocks
                .difference(&new_blocks)
                .filter(|b| b.starts_with("m:") || b.starts_with("n:"))
            {
                for q in self.stored_block(b)?.to_vec() {
                    if q != *key {
                        self.change.reviews.push((pair(key, &q), None));
                    }
                }
            }
            // HQ corrections only ever sit on the view's record: clear the previous view's.
            let view_seq = view.as_ref().map(|v| v.seq);
            if let Some(old_seq) = old.as_ref().map(|v| v.seq).filter(|s| Some(*s) != view_seq) {
                let at = (key.0.clone(), old_seq);
                if source
                    .record(&at)?
                    .is_some_and(|r| has_customer_findings(&r))
                {
                    self.findings.insert(at, Vec::new());
                }
            }
            self.party_mut(key)?.view = view;
            self.dirty.insert(key.clone());
        }

        // 2. Customers: recompute the components reached from every touched party and from
        // every party of the customers they were in.
        let mut seeds: BTreeSet<PartyKey> = self.touched.clone();
        seeds.extend(self.reseed.iter().cloned());
        for key in seeds.clone() {
            if let Some(old) = self.link_of(&key)? {
                if let Some(customer) = self.store.customer(&old)? {
                    seeds.extend(customer.parties);
                }
            }
        }
        let mut visited: BTreeSet<PartyKey> = BTreeSet::new();
        let mut components: Vec<Vec<PartyKey>> = Vec::new();
        for seed in &seeds {
            if visited.contains(seed) {
                continue;
            }
            visited.insert(seed.clone());
            if self.party(seed)?.view.is_none() {
                continue;
            }
            let mut component = vec![seed.clone()];
            let mut queue = VecDeque::from([seed.clone()]);
            while let Some(p) = queue.pop_front() {
                for q in self.neighbours(&p)? {
                    if visited.insert(q.clone()) {
                        component.push(q.clone());
                        queue.push_back(q);
                    }
                }
            }
            components.push(component);
        }
        let mut old_customers: BTreeSet<String> = BTreeSet::new();
        for p in &visited {
            if let Some(old) = self.link_of(p)? {
                old_customers.insert(old);
            }
        }
        let mut new_customers: BTreeSet<String> = BTreeSet::new();
        for p in &visited {
            if self.party(p)?.view.is_none() && self.link_of(p)?.is_some() {
                self.links.insert(p.clone(), None);
            }
        }
        for component in components {
            let id = identity::customer_id(&component)
                .ok_or_else(|| StoreError::Engine("empty customer".into()))?;
            let mut members = Vec::with_capacity(component.len());
            for p in &component {
                // The view and decisions, not the sources (which grow with the history).
                let party = self.party(p)?;
                if let Some(view) = &party.view {
                    members.push((p.clone(), view.clone(), party.decisions.clone()));
                }
            }
            let list: Vec<(PartyKey, &PartyView, &super::PartyDecisions)> =
                members.iter().map(|(k, v, d)| (k.clone(), v, d)).collect();
            let (golden, disagreements) = golden::golden(&id, &list);
            self.customer_findings(&list, &disagreements);
            for p in &component {
                if self.link_of(p)?.as_deref() != Some(id.as_str()) {
                    self.links.insert(p.clone(), Some(id.clone()));
                }
            }
            // Written once: a customer the batch did not change is not rewritten (nor sent
            // on the change stream).
            let before = self.store.customer(&id)?;
            if before.as_ref() != Some(&golden) {
                let old_conflicts = before.as_ref().map_or(&[][..], |b| &b.conflicts[..]);
                if old_conflicts != golden.conflicts.as_slice() {
                    self.change.conflicts.push((
                        Subject::Customer(id.clone()).key(),
                        golden.conflicts.clone(),
                    ));
                }
                self.change.customers.push((id.clone(), Some(golden)));
            }
            new_customers.insert(id);
        }
        for old in old_customers.difference(&new_customers) {
            self.change.customers.push((old.clone(), None));
            self.change
                .conflicts
                .push((Subject::Customer(old.clone()).key(), Vec::new()));
        }

        // 3. Review pairs of every visited party.
        for p in &visited {
            let Some(view) = self.party(p)?.view.clone() else {
                continue;
            };
            let decisions = self.party(p)?.decisions.clone();
            // Uncertain pairs share a mobile (similar names) or a national ID (C07).
            let mut others = BTreeSet::new();
            for block in identity::blocks(&view)
                .into_iter()
                .filter(|b| b.starts_with("m:") || b.starts_with("n:"))
            {
                others.extend(self.block_members(&block)?);
            }
            for q in &others {
                self.party_mut(q)?;
            }
            for q in others {
                if q == *p {
                    continue;
                }
                // Compared in place, not cloned: a party's sources grow with its history.
                let relation = self.parties.get(&q).and_then(|other| {
                    other.view.as_ref().map(|other_view| {
                        identity::relate(
                            (p, &view, &decisions),
                            (&q, other_view, &other.decisions),
                            self.config,
                        )
                    })
                });
                let Some(relation) = relation else {
                    self.change.reviews.push((pair(p, &q), None));
                    continue;
                };
                let apart = self.link_of(p)? != self.link_of(&q)?;
                let item = match relation {
                    Match::Uncertain(similarity) if apart => {
                        let (a, b) = pair(p, &q);
                        Some(ReviewItem {
                            a,
                            b,
                            similarity: (similarity * 1000.0).round() / 1000.0,
                            reason: "shared mobile, similar names".into(),
                        })
                    }
                    Match::NamesDisagree(similarity) if apart => {
                        let (a, b) = pair(p, &q);
                        Some(ReviewItem {
                            a,
                            b,
                            similarity: (similarity * 1000.0).round() / 1000.0,
                            reason: "one national ID under different names (C07)".into(),
                        })
                    }
                    _ => None,
                };
                self.change.reviews.push((pair(p, &q), item));
            }
        }

        // 4. Vehicles of changed records (a party that moved to another customer changes no
        // stored vehicle: its history is resolved to customers when read).
        for vin in std::mem::take(&mut self.vins) {
            self.vehicle(source, &vin)?;
        }

        // 5. Everything into the change.
        for key in &self.dirty {
            if let Some(party) = self.parties.get(key) {
                let indexed = self.indexed_words.get(key);
                let words = party
                    .view
                    .as_ref()
                    .map(|v| v.name_words())
                    .unwrap_or_default();
                for word in words {
                    if !indexed.is_some_and(|had| had.contains(&word)) {
                        self.change.name_words.push((word, key.clone()));
                    }
                }
                self.change.parties.push((key.clone(), party.clone()));
            }
        }
        for (block, members) in &self.blocks {
            for (p, present) in members {
                self.change
                    .blocks
                    .push((block.clone(), p.clone(), *present));
            }
        }
        self.change.links = self.links.into_iter().collect();
        self.change.vehicle_decisions = self.vehicle_decisions.into_iter().collect();
        // One entry per pair, the last one pushed: a pair judged from both of its sides gets
        // the same answer (`relate` is symmetric), and step 3 comes after step 1's drops.
        let reviews: BTreeMap<(PartyKey, PartyKey), Option<ReviewItem>> =
            self.change.reviews.drain(..).collect();
        self.change.reviews = reviews.into_iter().collect();
        Ok(Resolved {
            change: self.change,
            findings: self.findings,
        })
    }

    /// The parties `p` is the same customer as, found through its blocks and HQ's links.
    fn neighbours(&mut self, p: &PartyKey) -> Result<Vec<PartyKey>, StoreError> {
        let party = self.party(p)?;
        let Some(view) = &party.view else {
            return Ok(Vec::new());
        };
        let mut candidates: BTreeSet<PartyKey> = party.decisions.linked.clone();
        for block in identity::blocks(view) {
            candidates.extend(self.block_members(&block)?);
        }
        candidates.remove(p);
        // Every candidate read once, then compared in place: a party's sources grow with its
        // history, so cloning it per comparison would cost O(history) each.
        for q in &candidates {
            self.party_mut(q)?;
        }
        let (Some(party), config) = (self.parties.get(p), self.config) else {
            return Ok(Vec::new());
        };
        let Some(view) = &party.view else {
            return Ok(Vec::new());
        };
        Ok(candidates
            .into_iter()
            .filter(|q| {
                self.parties.get(q).is_some_and(|other| {
                    other.view.as_ref().is_some_and(|other_view| {
                        identity::relate(
                            (p, view, &party.decisions),
                            (q, other_view, &other.decisions),
                            config,
                        ) == Match::Same
                    })
                })
            })
            .collect())
    }

    /// H01 on the records that disagree with what HQ confirmed; none on the others.
    fn customer_findings(
        &mut self,
        members: &[(PartyKey, &PartyView, &super::PartyDecisions)],
        disagreements: &[Disagreement],
    ) {
        for (key, view, _) in members {
            let mut wanted: Vec<Finding> = disagreements
                .iter()
                .filter(|d| d.party == *key)
                .map(|d| {
                    let field = format!("customer.{}", d.field);
                    finding(
                        "H01",
                        &field,
                        Reason::new("H01.confirmed")
                            .arg("what", &d.field)
                            .arg("confirmed", &d.confirmed)
                            .arg("stated", &d.stated),
                    )
                })
                .collect();
            wanted.sort_by(|a, b| a.field.cmp(&b.field));
            self.findings.insert((key.0.clone(), view.seq), wanted);
        }
    }

    /// Writes the facts of the records this unit changed about `vin` (no other record of the
    /// VIN is read, no fact written again), and decides who sold it from its deliveries.
    fn vehicle(&mut self, source: &mut dyn RecordSource, vin: &str) -> Result<(), StoreError> {
        let stored = self.store.vehicle_sales(vin)?.unwrap_or_default();
        let mut sales = VehicleSales {
            deliveries: stored.deliveries.clone(),
            losing: BTreeSet::new(),
        };
        let mut changed: BTreeMap<At, Option<VehicleFact>> = BTreeMap::new();
        let mut named: BTreeSet<PartyKey> = BTreeSet::new();
        for at in self.vin_records.remove(vin).unwrap_or_default() {
            let before = self.store.vehicle_fact(vin, &at)?;
            let after = source.record(&at)?.and_then(|r| vehicle_fact(&r, vin));
            sales.deliveries.remove(&at);
            if let Some(f) = &after {
                if matches!(f.event, VehicleEvent::Delivery { .. }) {
                    sales.deliveries.insert(at.clone());
                }
                let known: BTreeSet<PartyKey> = before.iter().flat_map(|b| b.parties()).collect();
                named.extend(f.parties().filter(|p| !known.contains(p)));
            }
            if before != after {
                changed.insert(at, after);
            }
        }
        // The party index only grows: a party is added the first time a fact names it here.
        for party in named {
            if !self.store.party_names_vin(&party, vin)? {
                self.change.party_vins.push((party, vin.to_owned()));
            }
        }
        // Who sold it, from the deliveries alone (as their facts are after this unit).
        let mut deliveries = Vec::new();
        for at in &sales.deliveries {
            let fact = match changed.get(at) {
                Some(fact) => fact.clone(),
                None => self.store.vehicle_fact(vin, at)?,
            };
            deliveries.extend(fact);
        }
        let decisions = self.vehicle_decisions_of(vin)?;
        let (view, losing) = vehicle::project(vin, &deliveries, &|_| None, &decisions);
        sales.losing = losing
            .iter()
            .map(|(dealer, seq, _)| (dealer.clone(), *seq))
            .collect();
        // H01 for a delivery is decided here; clear it on the usable deliveries that lost
        // before (what `has_customer_findings` finds on their records).
        for at in stored.losing.intersection(&sales.deliveries) {
            self.findings.insert(at.clone(), Vec::new());
        }
        for (dealer, seq, seller) in losing {
            self.findings.insert(
                (dealer, seq),
                vec![finding(
                    "H01",
                    "retail_delivery.vin",
                    Reason::new("H01.vin_sold_by")
                        .arg("vin", vin)
                        .arg("seller", seller),
                )],
            );
        }
        if sales != stored {
            let keep = (!sales.is_empty()).then_some(sales);
            self.change.vehicle_sales.push((vin.to_owned(), keep));
        }
        let subject = Subject::Vehicle(vin.to_owned()).key();
        let before_conflicts = if stored.deliveries.len() > 1 || !view.conflicts.is_empty() {
            self.store.subject_conflicts(&subject)?
        } else {
            Vec::new() // one delivery or none was never a conflict
        };
        if before_conflicts != view.conflicts {
            self.change.conflicts.push((subject, view.conflicts));
        }
        for (at, fact) in changed {
            self.change.vehicle_facts.push(((vin.to_owned(), at), fact));
        }
        Ok(())
    }
}

/// What `record` says about `vin`, if it is a usable member of the VIN's history group: the
/// one place the merge decodes a record about a vehicle (the reference reads every member's
/// record through it, the merge only the records a unit of work changed).
pub fn vehicle_fact(record: &StoredRecord, vin: &str) -> Option<VehicleFact> {
    if !record
        .groups
        .iter()
        .any(|g| matches!(g, GroupKey::Vin(v) if v == vin))
    {
        return None;
    }
    let trust = trust_of(record)?;
    let (event_ms, event) = match content_in_force(record)? {
        Content::Delivery(d) => (
            d.delivery_date_ms.unwrap_or_default(),
            VehicleEvent::Delivery {
                category: d.category,
                parties: d.parties,
            },
        ),
        Content::RepairOrder(ro) => (
            ro.opened_at_ms,
            VehicleEvent::RepairOrder {
                owner_ref: ro.owner_ref,
                driver_ref: ro.driver_ref,
            },
        ),
        Content::VehicleStatus(s) => (
            s.effective_on_ms.unwrap_or_default(),
            VehicleEvent::Status {
                condition: s.condition,
            },
        ),
        _ => return None,
    };
    Some(VehicleFact {
        event_ms,
        event,
        source: Provenance {
            dealer_id: record.dealer_id.clone(),
            record_id: record.record_id.clone(),
            seq: record.seq,
            stamp: Stamp::of(record),
            trust,
        },
    })
}

fn pair(a: &PartyKey, b: &PartyKey) -> (PartyKey, PartyKey) {
    if a < b {
        (a.clone(), b.clone())
    } else {
        (b.clone(), a.clone())
    }
}

fn has_customer_findings(record: &StoredRecord) -> bool {
    record
        .group_findings
        .get(&crate::rules::Scope::Customer)
        .is_some_and(|f| !f.is_empty())
}

/// The view of a customer record under `customer_ref`, if it is usable and still has that ref.
pub fn view_of(record: &StoredRecord, customer_ref: &str) -> Option<PartyView> {
    let trust = trust_of(record)?;
    let Some(Content::Customer(c)) = content_in_force(record) else {
        return None;
    };
    if c.customer_ref != customer_ref {
        return None;
    }
    let national_id = (!c.organization && !field_spoiled(record, ".national_id"))
        .then(|| NationalId::parse(&c.national_id).ok())
        .flatten()
        .map(|n| n.as_str().to_owned());
    let company_id = CompanyId::parse(&c.company_id)
        .ok()
        .map(|n| n.as_str().to_owned());
    let mobile = (!field_spoiled(record, ".mobile"))
        .then(|| Mobile::parse(&c.mobile).ok())
        .flatten()
        .map(|m| m.e164().to_owned());
    let postal_code = c
        .postal_code
        .as_deref()
        .filter(|_| !field_spoiled(record, ".postal_code"))
        .and_then(|p| PostalCode::parse(p).ok())
        .map(|p| p.as_str().to_owned());
    Some(PartyView {
        seq: record.seq,
        record_id: record.record_id.clone(),
        organization: c.organization,
        national_id,
        company_id,
        given_name: normalize(&c.given_name),
        family_name: normalize(&c.family_name),
        organization_name: normalize(&c.organization_name),
        mobile,
        postal_code,
        trust,
        stamp: Stamp::of(record),
    })
}
