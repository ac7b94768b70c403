//! The hub's Prometheus metrics: what ingest counts and times as it goes ([`HubMetrics`]), and
//! what a scrape reads from the store (per-dealer sync lag, clock offset, verdict backlog, the
//! store's size on disk) in [`render`]. Served by `gateway::metrics::serve` on the `[metrics]
//! listen` address; names and meanings in docs/operations.md, "Metrics".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hamgam_gateway::audit::SecurityAudit;
use hamgam_gateway::metrics::{encode, latency_histogram, Render, SyncMetrics};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::{Outcome, Verdict};
use crate::ingest::Hub;
use crate::store::HubStore;

/// A label set: `[(name, value)]`.
type Labels = Vec<(&'static str, String)>;

/// What ingest counts and times.
#[derive(Debug)]
pub struct HubMetrics {
    /// New records judged and stored, by outcome (re-sent ones are not counted again).
    pub records_ingested: Family<Labels, Counter>,
    /// Findings on new records, by rule.
    pub findings: Family<Labels, Counter>,
    /// Waiting for the judging lock before a batch is judged.
    pub judging_lock_wait_seconds: Histogram,
    /// Judging and applying one batch (rules, merge, the store's write).
    pub judging_seconds: Histogram,
    /// One group-commit flush.
    pub flush_seconds: Histogram,
    /// What the store was asked to write, by kind (`Change::writes`).
    pub store_writes: Family<Labels, Counter>,
    /// Bytes the store handed its engine, by kind (`Applied::bytes_written`).
    pub store_write_bytes: Family<Labels, Counter>,
    /// Keys the store handed its engine to put or remove, by kind (`Applied::keys_written`).
    pub store_keys: Family<Labels, Counter>,
    /// Where a batch's time goes, by stage (`lock_wait`, `rules`, `groups`, `merge`,
    /// `verdicts`, `apply`): one observation per slice of a batch and stage.
    pub stage_seconds: Family<Labels, Histogram>,
    /// What each dealer's agent said its log holds, at its last hello.
    reported_last_seq: Mutex<HashMap<String, u64>>,
    // Read from the store at each scrape.
    dealer_stored_seq: Family<Labels, Gauge>,
    dealer_pending: Family<Labels, Gauge>,
    dealer_since_sync: Family<Labels, Gauge<f64, AtomicU64>>,
    dealer_clock_offset: Family<Labels, Gauge<f64, AtomicU64>>,
    dealer_verdict_backlog: Family<Labels, Gauge>,
    dealers: Gauge,
    store_bytes: Gauge,
    store_log_unwritten: Gauge,
}

impl Default for HubMetrics {
    fn default() -> Self {
        HubMetrics {
            records_ingested: Family::default(),
            findings: Family::default(),
            judging_lock_wait_seconds: latency_histogram(),
            judging_seconds: latency_histogram(),
            flush_seconds: latency_histogram(),
            stage_seconds: Family::new_with_constructor(latency_histogram),
            store_writes: Family::default(),
            store_write_bytes: Family::default(),
            store_keys: Family::default(),
            reported_last_seq: Mutex::default(),
            dealer_stored_seq: Family::default(),
            dealer_pending: Family::default(),
            dealer_since_sync: Family::default(),
            dealer_clock_offset: Family::default(),
            dealer_verdict_backlog: Family::default(),
            dealers: Gauge::default(),
            store_bytes: Gauge::default(),
            store_log_unwritten: Gauge::default(),
        }
    }
}

impl HubMetrics {
    /// Counts the verdicts of a batch's new records.
    pub fn judged(&self, verdicts: &[Verdict]) {
        for v in verdicts {
            let outcome = match v.outcome {
                Outcome::Accepted => "accepted",
                Outcome::AcceptedWithFlags => "accepted_with_flags",
                Outcome::Rejected => "rejected",
            };
            self.records_ingested
                .get_or_create(&vec![("outcome", outcome.to_owned())])
                .inc();
            for f in &v.findings {
                self.findings
                    .get_or_create(&vec![("rule", f.rule_id.clone())])
                    .inc();
            }
        }
    }

    /// Counts what a unit of work wrote: entries by kind, and the bytes the store wrote.
    pub fn wrote(&self, change: &crate::store::Change, applied: &crate::store::Applied) {
        for (kind, n) in change.writes() {
            self.store_writes
                .get_or_create(&vec![("kind", kind.to_owned())])
                .inc_by(n as u64);
        }
        for (kind, n) in &applied.bytes_written {
            self.store_write_bytes
                .get_or_create(&vec![("kind", (*kind).to_owned())])
                .inc_by(*n);
        }
        for (kind, n) in &applied.keys_written {
            self.store_keys
                .get_or_create(&vec![("kind", (*kind).to_owned())])
                .inc_by(*n);
        }
    }

    /// Observes a batch's stage timings (and logs them at debug level).
    pub fn stages(
        &self,
        dealer: &str,
        records: usize,
        lock_wait: Duration,
        judged: &crate::judge::Timings,
        apply: Duration,
    ) {
        let stages = [
            ("lock_wait", lock_wait),
            ("rules", judged.rules),
            ("groups", judged.groups),
            ("merge", judged.merge),
            ("verdicts", judged.verdicts),
            ("apply", apply),
        ];
        for (stage, elapsed) in stages {
            observe(
                &self
                    .stage_seconds
                    .get_or_create(&vec![("stage", stage.to_owned())]),
                elapsed,
            );
        }
        tracing::debug!(
            dealer_id = dealer,
            records,
            lock_wait_us = lock_wait.as_micros() as u64,
            rules_us = judged.rules.as_micros() as u64,
            groups_us = judged.groups.as_micros() as u64,
            merge_us = judged.merge.as_micros() as u64,
            verdicts_us = judged.verdicts.as_micros() as u64,
            apply_us = apply.as_micros() as u64,
            "batch judged"
        );
    }

    /// Remembers the agent's own last seq from its hello.
    pub fn reported(&self, dealer: &str, last_seq: u64) {
        self.reported_last_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dealer.to_owned(), last_seq);
    }

    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("hamgam");
        r.register(
            "records_ingested",
            "New records judged and stored, by outcome",
            self.records_ingested.clone(),
        );
        r.register(
            "findings",
            "Findings on new records, by rule",
            self.findings.clone(),
        );
        r.register(
            "judging_lock_wait_seconds",
            "Waiting for the judging lock before a batch is judged",
            self.judging_lock_wait_seconds.clone(),
        );
        r.register(
            "judging_seconds",
            "Judging and applying one batch: rules, merge, the store's write",
            self.judging_seconds.clone(),
        );
        r.register(
            "flush_seconds",
            "One group-commit flush of the store",
            self.flush_seconds.clone(),
        );
        r.register(
            "store_writes",
            "Keys, rows or index entries the store was asked to write or remove, by kind",
            self.store_writes.clone(),
        );
        r.register(
            "store_write_bytes",
            "Bytes (keys and values) the store handed its engine, by kind",
            self.store_write_bytes.clone(),
        );
        r.register(
            "store_keys",
            "Keys the store handed its engine to put or remove in units of work, by kind (a unit's change-stream chunk is one)",
            self.store_keys.clone(),
        );
        r.register(
            "ingest_stage_seconds",
            "Where a slice of a batch spends its time, by stage: lock_wait, rules, groups, merge, verdicts, apply (the flush is flush_seconds)",
            self.stage_seconds.clone(),
        );
        r.register(
            "dealers",
            "Dealers the hub holds records of",
            self.dealers.clone(),
        );
        r.register(
            "dealer_stored_seq",
            "Highest seq of each dealer the hub holds",
            self.dealer_stored_seq.clone(),
        );
        r.register("dealer_pending_records", "Records at each dealer not at the hub yet, as its agent last reported (its log's last seq at hello minus the hub's stored seq)", self.dealer_pending.clone());
        r.register(
            "dealer_seconds_since_sync",
            "Seconds since each dealer's agent was last seen (hello or batch)",
            self.dealer_since_sync.clone(),
        );
        r.register(
            "dealer_clock_offset_seconds",
            "Each dealer agent's clock minus the hub's, measured at its last hello",
            self.dealer_clock_offset.clone(),
        );
        r.register(
            "dealer_verdict_backlog",
            "Verdict changes queued for each dealer that its agent has not acknowledged",
            self.dealer_verdict_backlog.clone(),
        );
        r.register(
            "store_bytes",
            "Size of the hub's store folder on disk",
            self.store_bytes.clone(),
        );
        r.register(
            "store_log_unwritten_bytes",
            "Bytes of acked writes in the store's write-ahead log not yet written into its tree (the checkpointer's backlog; writes wait above about 128 MiB)",
            self.store_log_unwritten.clone(),
        );
    }

    /// Reads the store's figures into the scrape-time gauges.
    fn refresh<S: HubStore>(&self, hub: &Hub<S>, data_dir: &Path) {
        let Ok(store) = hub.store() else { return };
        let dealers = match store.dealers() {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!("metrics: cannot read the dealers: {e}");
                return;
            }
        };
        let now = hub.clock().now_ms();
        let reported = self
            .reported_last_seq
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.dealers.set(dealers.len() as i64);
        for (dealer, state) in dealers {
            let labels = vec![("dealer", dealer.clone())];
            self.dealer_stored_seq
                .get_or_create(&labels)
                .set(state.stored_seq as i64);
            let pending = reported
                .get(&dealer)
                .map_or(0, |r| r.saturating_sub(state.stored_seq));
            self.dealer_pending
                .get_or_create(&labels)
                .set(pending as i64);
            self.dealer_since_sync
                .get_or_create(&labels)
                .set(((now - state.last_seen_ms).max(0)) as f64 / 1000.0);
            self.dealer_clock_offset
                .get_or_create(&labels)
                .set(state.clock_offset_ms as f64 / 1000.0);
            self.dealer_verdict_backlog
                .get_or_create(&labels)
                .set(state.verdict_cursor.saturating_sub(state.verdicts_acked) as i64);
        }
        self.store_bytes.set(folder_bytes(data_dir) as i64);
        if let Some(unwritten) = store.unwritten_log_bytes() {
            self.store_log_unwritten.set(unwritten as i64);
        }
    }
}

fn folder_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The render function of the hub's metrics endpoint: the hub's counters and timings, the sync
/// sessions', the security log's, and the store's figures read at each scrape.
pub fn render<S: HubStore>(
    hub: Arc<Hub<S>>,
    sync: SyncMetrics,
    audit: SecurityAudit,
    data_dir: PathBuf,
) -> Render {
    let mut registry = Registry::default();
    hub.metrics().register(&mut registry);
    sync.register(&mut registry);
    audit.register_metrics(&mut registry);
    let registry = Arc::new(registry);
    Arc::new(move || {
        hub.metrics().refresh(&hub, &data_dir);
        encode(&registry)
    })
}

/// Observes `elapsed` in `histogram`.
pub fn observe(histogram: &Histogram, elapsed: Duration) {
    histogram.observe(elapsed.as_secs_f64());
}
