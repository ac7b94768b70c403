//! A digest of the hub's whole state that depends only on the set of records and HQ decisions,
//! not on the order they came in: what `central admin rebuild` compares and what the
//! convergence tests assert equal.
//!
//! Left out on purpose, because they record *how* the state was reached: verdict versions and
//! decision times, receive times, verdict-feed cursors and contents, session times, and dealers
//! known only from a session hello (no records). Everything
//! else is in: each record's verdict, findings (their keys: rule, severity, field; a reason's
//! words are how a finding was explained when it fired), groups and correction state; dealers' counts;
//! reliability tallies; parties, customers, links, review pairs, vehicles, conflicts, decisions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::store::{HubStore, StoreError};

const PAGE: usize = 1_000;

/// The digest of each section of the state, and of the whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDigest {
    /// Section name -> (items, SHA-256 hex).
    pub sections: BTreeMap<&'static str, (u64, String)>,
    pub total: String,
}

impl std::fmt::Display for StateDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "state digest {}", self.total)?;
        for (name, (count, hex)) in &self.sections {
            writeln!(f, "  {name:<10} {count:>10} items  {}", &hex[..16])?;
        }
        Ok(())
    }
}

struct Section {
    context: ring::digest::Context,
    count: u64,
}

impl Section {
    fn new() -> Self {
        Section {
            context: ring::digest::Context::new(&ring::digest::SHA256),
            count: 0,
        }
    }

    fn add<T: Serialize>(&mut self, item: &T) -> Result<(), StoreError> {
        let bytes =
            postcard::to_allocvec(item).map_err(|e| StoreError::Engine(format!("digest: {e}")))?;
        self.context.update(&(bytes.len() as u64).to_be_bytes());
        self.context.update(&bytes);
        self.count += 1;
        Ok(())
    }

    fn finish(self) -> (u64, String) {
        (self.count, hex(self.context.finish().as_ref()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Computes the digest of everything `store` holds.
pub fn digest<S: HubStore + ?Sized>(store: &S) -> Result<StateDigest, StoreError> {
    digest_until(store, None)?
        .ok_or_else(|| StoreError::Engine("digest abandoned without a deadline".into()))
}

/// [`digest`], abandoned (`None`) once `deadline` has passed: a caller holding writers back
/// while it reads (a backup of a running hub) bounds how long it holds them.
pub fn digest_until<S: HubStore + ?Sized>(
    store: &S,
    deadline: Option<std::time::Instant>,
) -> Result<Option<StateDigest>, StoreError> {
    let past = || deadline.is_some_and(|d| std::time::Instant::now() >= d);
    let mut sections = BTreeMap::new();

    let mut records = Section::new();
    let mut dealers = Section::new();
    for (dealer, state) in store.dealers()? {
        // A dealer known only from a session hello holds no records: the hello is how the
        // state was reached, and is written without the judging lock.
        if state.stored_seq == 0 && state.record_count == 0 && state.rejected_count == 0 {
            continue;
        }
        dealers.add(&(
            &dealer,
            state.stored_seq,
            state.record_count,
            state.rejected_count,
        ))?;
        let mut after = 0;
        loop {
            let page = store.records(&dealer, after, PAGE)?;
            if past() {
                return Ok(None);
            }
            for r in &page {
                records.add(&(
                    &r.dealer_id,
                    r.seq,
                    &r.record_id,
                    &r.kind,
                    &r.wire,
                    r.verdict.outcome,
                    crate::domain::finding_keys(&r.findings()),
                    &r.groups,
                    &r.corrected_by,
                    r.retracted,
                    &r.amended,
                    r.hlc,
                    r.clock_offset_ms,
                ))?;
            }
            match page.last() {
                Some(last) if page.len() == PAGE => after = last.seq,
                _ => break,
            }
        }
    }
    sections.insert("records", records.finish());
    sections.insert("dealers", dealers.finish());

    let mut tallies = Section::new();
    for t in store.tallies(i64::MIN / 2)? {
        tallies.add(&t)?;
    }
    sections.insert("tallies", tallies.finish());

    let mut parties = Section::new();
    let mut links = Section::new();
    let mut after = None;
    loop {
        let page = store.merge_parties(after.as_ref(), PAGE)?;
        if past() {
            return Ok(None);
        }
        for (key, party) in &page {
            parties.add(&(key, party))?;
            links.add(&(key, store.link(key)?))?;
        }
        match page.last() {
            Some((key, _)) if page.len() == PAGE => after = Some(key.clone()),
            _ => break,
        }
    }
    sections.insert("parties", parties.finish());
    sections.insert("links", links.finish());

    let mut customers = Section::new();
    let mut after = String::new();
    loop {
        let page = store.customers(&after, PAGE)?;
        if past() {
            return Ok(None);
        }
        for c in &page {
            customers.add(c)?;
        }
        match page.last() {
            Some(c) if page.len() == PAGE => after = c.customer_id.clone(),
            _ => break,
        }
    }
    sections.insert("customers", customers.finish());

    let mut vehicles = Section::new();
    let mut after = String::new();
    loop {
        let page = store.vehicle_vins(&after, PAGE)?;
        if past() {
            return Ok(None);
        }
        for vin in &page {
            // What is stored of it: each record's fact and its sales (the history HQ reads is
            // projected from these, the links and the decisions, all digested).
            vehicles.add(&(vin, store.vehicle_facts(vin)?, store.vehicle_sales(vin)?))?;
        }
        match page.last() {
            Some(vin) if page.len() == PAGE => after = vin.clone(),
            _ => break,
        }
    }
    sections.insert("vehicles", vehicles.finish());

    let mut reviews = Section::new();
    let mut after = None;
    loop {
        let page = store.reviews(after.as_ref(), PAGE)?;
        if past() {
            return Ok(None);
        }
        for r in &page {
            reviews.add(r)?;
        }
        match page.last() {
            Some(r) if page.len() == PAGE => after = Some((r.a.clone(), r.b.clone())),
            _ => break,
        }
    }
    sections.insert("reviews", reviews.finish());

    let mut conflicts = Section::new();
    let mut after = String::new();
    loop {
        let page = store.conflicts(&after, PAGE)?;
        if past() {
            return Ok(None);
        }
        for c in &page {
            conflicts.add(c)?;
        }
        match page.last() {
            Some((subject, _)) if page.len() == PAGE => after = subject.clone(),
            _ => break,
        }
    }
    sections.insert("conflicts", conflicts.finish());

    let mut decisions = Section::new();
    let mut after = 0;
    loop {
        let page = store.decisions(after, PAGE)?;
        if past() {
            return Ok(None);
        }
        for d in &page {
            decisions.add(&(d.no, &d.decision, &d.by, &d.comment))?;
        }
        match page.last() {
            Some(d) if page.len() == PAGE => after = d.no,
            _ => break,
        }
    }
    sections.insert("decisions", decisions.finish());

    let mut total = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, (count, hex)) in &sections {
        total.update(name.as_bytes());
        total.update(&count.to_be_bytes());
        total.update(hex.as_bytes());
    }
    Ok(Some(StateDigest {
        sections,
        total: hex(total.finish().as_ref()),
    }))
}
