//! Keeps the customer summaries ([`CustomerSummary`]) current, so a report reads one stored
//! summary per customer instead of gathering every customer's records, vehicles and repair
//! orders on every call.
//!
//! The store logs what each unit of work touched ([`Touched`]: records, vehicles, parties,
//! customers) in the same atomic write as the work. [`refresh`] reads that log from where the
//! summaries are current to, works out whose summaries it affects, gathers those again and
//! writes them with the log position in one atomic write, then forgets what it read.
//!
//! A touched record affects the customers its content names (before and after a correction)
//! and everyone on the vehicles of its history groups; a touched vehicle, everyone on it; a
//! touched party or customer, that customer and everyone on their vehicles (whether someone
//! else is a known customer decides when a holding ends). Gathering again is a pure read of
//! what the store holds now, so reading the log twice, or a summary gathered after later
//! work, is harmless.
//!
//! When the summaries were never built (a new store, a rebuilt one, an upgrade) or were
//! written in another [`super::summary::SUMMARY_VERSION`], [`refresh`] builds them all: the
//! log position is taken first, every customer is gathered, and the log is read on from there.
//!
//! One refresh runs at a time in a process (a lock); the hub's keeper task runs it every few
//! seconds and every report runs it before reading, so a report counts everything applied
//! before it began.

use std::collections::BTreeSet;

use crate::merge::vehicle;
use crate::rules::history::GroupKey;
use crate::store::{HubStore, ReadTo, StoreError, Touched};
use crate::wire;

use super::summary::CustomerSummary;

/// Touched-log entries read per atomic write of summaries.
const ENTRIES_PER_WRITE: usize = 20;
/// Customers gathered per atomic write when building.
const CUSTOMERS_PER_WRITE: usize = 500;

/// One refresh at a time in this process: two would race to write older gatherings over newer.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Every summary was built (they were absent or of another version).
    pub built: bool,
    /// Touched-log entries read.
    pub entries: u64,
    /// Summaries written or removed.
    pub summaries: u64,
}

/// The hub's keeper task: refreshes the summaries now and then every `every` until `stop`,
/// logging a build's progress. A failed refresh is logged and tried again next time.
pub async fn keep<S: HubStore>(
    hub: std::sync::Arc<crate::Hub<S>>,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        let Ok(store) = hub.store() else { return };
        let started = std::time::Instant::now();
        let stopping = stop.clone();
        let refreshed = tokio::task::spawn_blocking(move || {
            let mut next_log = BUILD_LOG_EVERY;
            refresh_unless(&*store, &|| stopping.is_cancelled(), |written| {
                if written >= next_log {
                    tracing::info!(summaries = written, "building HQ's customer summaries");
                    next_log = written + BUILD_LOG_EVERY;
                }
            })
        })
        .await;
        match refreshed {
            Ok(Ok(done)) if done.built => tracing::info!(
                summaries = done.summaries,
                secs = started.elapsed().as_secs_f64(),
                "HQ's customer summaries built"
            ),
            Ok(Ok(done)) => tracing::debug!(
                entries = done.entries,
                summaries = done.summaries,
                ms = started.elapsed().as_millis() as u64,
                "HQ's customer summaries refreshed"
            ),
            Ok(Err(e)) => tracing::warn!("cannot refresh HQ's customer summaries: {e}"),
            Err(e) => tracing::warn!("the customer summaries' refresh stopped: {e}"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// A build logs its progress after every this many summaries.
const BUILD_LOG_EVERY: u64 = 50_000;

/// Brings the customer summaries up to everything applied before the call;
/// `progress(summaries_written)` after each atomic write.
pub fn refresh<S: HubStore>(store: &S, progress: impl FnMut(u64)) -> Result<Refreshed, StoreError> {
    refresh_unless(store, &|| false, progress)
}

/// [`refresh`], stopping between two atomic writes once `stop()` says so (a server shutting
/// down): what was written stays, and a build that stopped starts again next time.
pub fn refresh_unless<S: HubStore>(
    store: &S,
    stop: &dyn Fn() -> bool,
    mut progress: impl FnMut(u64),
) -> Result<Refreshed, StoreError> {
    // A poisoned lock guards nothing broken: the summaries are read again from the store.
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let mut done = Refreshed::default();
    let read_to = match store.summaries_read_to()? {
        Some(n) if current_version(store)? => n,
        _ => {
            done.built = true;
            match build(store, stop, &mut done, &mut progress)? {
                Some(read_to) => read_to,
                None => return Ok(done),
            }
        }
    };
    catch_up(store, read_to, stop, &mut done, &mut progress)?;
    Ok(done)
}

/// The stored summaries are of this build's version (or there are none).
fn current_version<S: HubStore>(store: &S) -> Result<bool, StoreError> {
    Ok(match store.summaries("", 1)?.first() {
        Some((id, bytes)) => CustomerSummary::decode(id, bytes)?.is_some(),
        None => true,
    })
}

/// Gathers every customer's summary; returns the log position they are current to (`None`
/// when stopped before the end).
fn build<S: HubStore>(
    store: &S,
    stop: &dyn Fn() -> bool,
    done: &mut Refreshed,
    progress: &mut impl FnMut(u64),
) -> Result<Option<u64>, StoreError> {
    let from = store.last_touched()?;
    // Not built until the end: a build stopped half-way starts again, whatever it found.
    store.put_summaries(&[], ReadTo::Unbuilt)?;
    // Summaries left by an earlier build that did not finish, or of another version.
    loop {
        let old = store.summaries("", CUSTOMERS_PER_WRITE)?;
        if old.is_empty() {
            break;
        }
        let removes: Vec<_> = old.into_iter().map(|(id, _)| (id, None)).collect();
        store.put_summaries(&removes, ReadTo::Keep)?;
    }
    let mut after = String::new();
    loop {
        if stop() {
            return Ok(None);
        }
        let page = store.customers(&after, CUSTOMERS_PER_WRITE)?;
        let Some(last) = page.last() else { break };
        after = last.customer_id.clone();
        let mut writes = Vec::with_capacity(page.len());
        for customer in &page {
            let summary = CustomerSummary::gather(store, customer)?;
            writes.push((customer.customer_id.clone(), Some(summary.encode()?)));
        }
        store.put_summaries(&writes, ReadTo::Keep)?;
        done.summaries += writes.len() as u64;
        progress(done.summaries);
    }
    store.put_summaries(&[], ReadTo::At(from))?;
    store.forget_touched(from)?;
    Ok(Some(from))
}

/// Reads the touched log after `read_to` and gathers the summaries it affects again.
fn catch_up<S: HubStore>(
    store: &S,
    mut read_to: u64,
    stop: &dyn Fn() -> bool,
    done: &mut Refreshed,
    progress: &mut impl FnMut(u64),
) -> Result<(), StoreError> {
    loop {
        if stop() {
            return Ok(());
        }
        let entries = store.touched(read_to, ENTRIES_PER_WRITE)?;
        let Some((last, _)) = entries.last() else {
            return Ok(());
        };
        let last = *last;
        let mut customers = BTreeSet::new();
        for (_, touched) in &entries {
            affected(store, touched, &mut customers)?;
        }
        let mut writes = Vec::with_capacity(customers.len());
        for id in customers {
            let summary = match store.customer(&id)? {
                Some(customer) => Some(CustomerSummary::gather(store, &customer)?.encode()?),
                None => None, // merged into another, or no usable record left
            };
            writes.push((id, summary));
        }
        store.put_summaries(&writes, ReadTo::At(last))?;
        store.forget_touched(last)?;
        read_to = last;
        done.entries += entries.len() as u64;
        done.summaries += writes.len() as u64;
        progress(done.summaries);
    }
}

/// Adds to `out` the customers whose summaries `touched` may change.
pub fn affected<S: HubStore>(
    store: &S,
    touched: &Touched,
    out: &mut BTreeSet<String>,
) -> Result<(), StoreError> {
    let mut vins: BTreeSet<String> = touched.vins.iter().cloned().collect();
    let mut parties: BTreeSet<_> = touched.parties.iter().cloned().collect();
    for (dealer, seq) in &touched.records {
        let Some(record) = store.record(dealer, *seq)? else {
            continue;
        };
        for content in [wire::stored_content(&record), record.amended.clone()]
            .into_iter()
            .flatten()
        {
            for customer_ref in content.customer_refs() {
                parties.insert((dealer.clone(), customer_ref.to_owned()));
            }
        }
        vins.extend(record.groups.iter().filter_map(|g| match g {
            GroupKey::Vin(vin) => Some(vin.clone()),
            _ => None,
        }));
    }
    for id in &touched.customers {
        out.insert(id.clone());
        if let Some(customer) = store.customer(id)? {
            parties.extend(customer.parties.iter().cloned());
        }
    }
    for party in &parties {
        if let Some(id) = store.link(party)? {
            out.insert(id);
        }
        vins.extend(store.party_vins(party)?);
    }
    for vin in &vins {
        let Some(view) = vehicle::read(store, vin)? else {
            continue;
        };
        for entry in &view.timeline {
            match &entry.customer_id {
                Some(id) => {
                    out.insert(id.clone());
                }
                None => {
                    if let Some(id) = store.link(&entry.party)? {
                        out.insert(id);
                    }
                }
            }
        }
    }
    Ok(())
}

/// The customers whose stored summary is not the one gathered from the store now (missing,
/// of another version, different), and summaries of customers that no longer exist: empty
/// when the keeper is right. For tests and checks; reads every customer.
pub fn stale<S: HubStore>(store: &S) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.customers(&after, CUSTOMERS_PER_WRITE)?;
        let Some(last) = page.last() else { break };
        after = last.customer_id.clone();
        for customer in &page {
            let fresh = CustomerSummary::gather(store, customer)?;
            let stored = match store.summary(&customer.customer_id)? {
                Some(bytes) => CustomerSummary::decode(&customer.customer_id, &bytes)?,
                None => None,
            };
            if stored.as_ref() != Some(&fresh) {
                out.push(customer.customer_id.clone());
            }
        }
    }
    let mut after = String::new();
    loop {
        let page = store.summaries(&after, CUSTOMERS_PER_WRITE)?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (id, _) in page {
            if store.customer(&id)?.is_none() {
                out.push(id);
            }
        }
    }
    Ok(out)
}
