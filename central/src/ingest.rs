//! The hub's ingest pipeline for one dealer's batch:
//! `decode (wire) -> validate (R00) -> store (atomically) -> wait until durable -> verdicts`.
//!
//! Idempotent by `(dealer, seq)`: a record whose seq the hub already holds is not applied again
//! and gets its stored verdict back; a *different* record at a held seq is refused. Batches of one
//! dealer are applied one at a time (a per-dealer lock), so two sessions of the same dealer
//! cannot interleave. Every record that is not refused outright is stored, rejected ones in
//! quarantine, so nothing a dealer sends is lost.
//!
//! The rule engine (RULES.md beyond R00/R01) plugs in between validation and store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hamgam_gateway::sync::{Ingest, IngestError, IngestOutcome};
use hamgam_gateway::DealerId;
use hamgam_proto::record::v1 as pb;

use crate::domain::{DealerState, Outcome, StoredRecord, Verdict};
use crate::durability::Durability;
use crate::store::{Append, HubStore, StoreError};
use crate::wire;

/// The hub: ingest over a store, with group commit.
pub struct Hub<S: HubStore> {
    /// `None` once closed: the store is dropped as soon as in-flight work ends, so it can be
    /// reopened (a restart in the same process, as tests do).
    store: std::sync::RwLock<Option<Arc<S>>>,
    durability: Durability,
    dealer_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl<S: HubStore> Hub<S> {
    /// A hub over `store`; starts the flusher task (call inside a tokio runtime).
    pub fn new(store: Arc<S>) -> Self {
        Hub {
            durability: Durability::start(store.clone()),
            store: std::sync::RwLock::new(Some(store)),
            dealer_locks: Mutex::new(HashMap::new()),
        }
    }

    /// The store, unless the hub is closed.
    pub fn store(&self) -> Result<Arc<S>, StoreError> {
        self.store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Engine("the hub is shutting down".into()))
    }

    /// Stops the flusher after a last flush and lets go of the store; once in-flight work has
    /// ended the store is dropped and can be reopened.
    pub async fn close(&self) {
        self.durability.stop().await;
        self.store.write().unwrap_or_else(|p| p.into_inner()).take();
    }

    fn dealer_lock(&self, dealer: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.dealer_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(dealer.to_owned()).or_default().clone()
    }

    async fn ingest_batch(
        &self,
        dealer: &DealerId,
        records: Vec<pb::Record>,
    ) -> Result<IngestOutcome, IngestError> {
        let dealer_id = dealer.as_str();
        let lock = self.dealer_lock(dealer_id);
        let _held = lock.lock().await;
        let store = self.store().map_err(storage)?;
        let mut state = store
            .dealer(dealer_id)
            .map_err(storage)?
            .unwrap_or_default();
        let now = hamgam_gateway::sync::now_ms();
        let mut verdicts = Vec::with_capacity(records.len());
        let mut fresh: Vec<StoredRecord> = Vec::new();
        let mut next_seq = state.stored_seq + 1;
        let mut batch_ids: HashMap<&str, u64> = HashMap::new();

        for (position, record) in records.iter().enumerate() {
            if position > 0 && record.seq != records[position - 1].seq + 1 {
                return Err(IngestError::Unordered { position });
            }
            if record.seq == 0 || record.seq > next_seq {
                return Err(IngestError::Gap {
                    expected: next_seq,
                    got: record.seq,
                });
            }
            if record.seq <= state.stored_seq {
                // Re-sent: change nothing, answer as before.
                let stored = store
                    .record(dealer_id, record.seq)
                    .map_err(storage)?
                    .ok_or_else(|| {
                        IngestError::Storage(format!(
                            "seq {} is counted as stored but missing",
                            record.seq
                        ))
                    })?;
                if stored.record_id != record.record_id {
                    return Err(IngestError::SeqConflict {
                        seq: record.seq,
                        stored_record_id: stored.record_id,
                        sent_record_id: record.record_id.clone(),
                    });
                }
                verdicts.push(wire::verdict_to_wire(&stored.verdict));
                continue;
            }
            let span = tracing::debug_span!("record", dealer_id, record_id = %record.record_id, seq = record.seq);
            let _entered = span.enter();
            let arrival = wire::arrival(record);
            let mut findings = arrival.malformed;
            if !arrival.record_id.is_empty() {
                let reused = match batch_ids.get(arrival.record_id.as_str()) {
                    Some(seq) => Some((dealer_id.to_owned(), *seq)),
                    None => store.locate(&arrival.record_id).map_err(storage)?,
                };
                if let Some((other_dealer, other_seq)) = reused {
                    findings.push(crate::domain::Finding {
                        rule_id: "R00".into(),
                        severity: crate::domain::Severity::Reject,
                        field: "record_id".into(),
                        reason_fa: format!("شناسهٔ رکورد پیش‌تر برای رکورد دیگری (نمایندگی {other_dealer}، شمارهٔ {other_seq}) به کار رفته است"),
                        reason_en: format!("record_id is already used by another record (dealer {other_dealer}, seq {other_seq})"),
                    });
                }
            }
            let verdict =
                Verdict::from_findings(arrival.record_id.clone(), arrival.seq, findings, now);
            if verdict.outcome == Outcome::Rejected {
                state.rejected_count += 1;
                let rules: Vec<&str> = verdict
                    .findings
                    .iter()
                    .map(|f| f.rule_id.as_str())
                    .collect();
                tracing::info!(dealer_id, record_id = %arrival.record_id, seq = arrival.seq, ?rules, "record quarantined");
            }
            verdicts.push(wire::verdict_to_wire(&verdict));
            batch_ids.insert(record.record_id.as_str(), record.seq);
            fresh.push(StoredRecord {
                record_id: arrival.record_id,
                dealer_id: dealer_id.to_owned(),
                seq: arrival.seq,
                kind: arrival
                    .kind
                    .map(|k| k.name().to_owned())
                    .unwrap_or_default(),
                recorded_at_ms: arrival.recorded_at_ms,
                received_at_ms: now,
                wire: arrival.wire,
                verdict,
            });
            next_seq += 1;
        }

        if !fresh.is_empty() {
            state.stored_seq = next_seq - 1;
            state.record_count += fresh.len() as u64;
            state.last_seen_ms = now;
            if state.first_seen_ms == 0 {
                state.first_seen_ms = now;
            }
            let change = Append {
                dealer_id: dealer_id.to_owned(),
                state: state.clone(),
                records: fresh,
            };
            let applying = store.clone();
            tokio::task::spawn_blocking(move || applying.apply(&change))
                .await
                .map_err(|e| IngestError::Storage(format!("apply task failed: {e}")))?
                .map_err(storage)?;
        }
        // Even an all-duplicate batch waits: its records may have been applied by a session
        // whose flush has not finished yet.
        let durable = self.durability.request();
        Ok(IngestOutcome {
            stored_seq: state.stored_seq,
            verdicts,
            durable: Box::pin(async move { durable.await.map_err(storage) }),
        })
    }
}

fn storage(e: StoreError) -> IngestError {
    IngestError::Storage(e.to_string())
}

impl<S: HubStore> Ingest for Hub<S> {
    async fn open_session(
        &self,
        dealer: &DealerId,
        clock_offset_ms: i64,
    ) -> Result<u64, IngestError> {
        let lock = self.dealer_lock(dealer.as_str());
        let _held = lock.lock().await;
        let now = hamgam_gateway::sync::now_ms();
        let store = self.store().map_err(storage)?;
        let mut state: DealerState = store
            .dealer(dealer.as_str())
            .map_err(storage)?
            .unwrap_or_default();
        state.clock_offset_ms = clock_offset_ms;
        state.last_seen_ms = now;
        if state.first_seen_ms == 0 {
            state.first_seen_ms = now;
        }
        store
            .save_dealer(dealer.as_str(), &state)
            .map_err(storage)?;
        // A previous session's last batches may be applied but not yet flushed; the hello
        // promises "held durably", so wait for the flush that covers them.
        self.durability.request().await.map_err(storage)?;
        Ok(state.stored_seq)
    }

    async fn ingest(
        &self,
        dealer: &DealerId,
        records: Vec<pb::Record>,
    ) -> Result<IngestOutcome, IngestError> {
        self.ingest_batch(dealer, records).await
    }
}
