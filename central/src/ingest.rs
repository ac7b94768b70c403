//! The hub's ingest pipeline for one dealer's batch:
//! `decode (wire) -> validate (R00) -> judge (rules, re-judging what the batch affects) ->
//! store (atomically) -> wait until durable -> verdicts, and verdict changes on the feeds`.
//!
//! Idempotent by `(dealer, seq)`: a record whose seq the hub already holds is not applied again
//! and gets its stored verdict back; a *different* record at a held seq is refused. Units of
//! work are judged one at a time (the judging lock), because a batch of one dealer can change
//! the verdicts of another's records (a VIN's history spans dealers); but a batch holds the
//! lock for one *slice* at a time (`[limits] judging_slice_ms`, about 2 ms of judging), and the
//! lock is fair, so a flooding dealer's 500-record batch never holds another dealer's batch
//! back for longer than a slice. Large batches' slices take turns in a bulk lane before the
//! lock, one waiting at a time, so a small batch (a branch committing as it works) waits for
//! the slice running and one bulk slice at most, however many dealers are catching up. Each
//! slice is its own atomic unit of work; the batch is acked once every slice is applied and a
//! flush that began after the last one has ended. Session
//! hellos and verdict acknowledgements never take the lock. Every record that is not refused
//! outright is stored, rejected ones in quarantine, so nothing a dealer sends is lost.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hamgam_gateway::sync::{Ingest, IngestError, IngestOutcome, RestorePage, VerdictFeed};
use hamgam_gateway::{Clock, DealerId};
use hamgam_proto::record::v1 as pb;
use tokio::sync::watch;

use crate::domain::{FlagStatus, Severity};
use crate::durability::Durability;
use crate::judge::{self, Rulebook};
use crate::merge::digest::StateDigest;
use crate::merge::{golden, DecisionEntry, HqDecision, PartyKey, Subject};
use crate::metrics::{self, HubMetrics};
use crate::rules::registry::DealerRegistry;
use crate::rules::score::{self, day_of, ReliabilityScore};
use crate::rules::RuleConfig;
use crate::store::{HubStore, StoreError};
use crate::wire;
use hamgam_proto::values::{CompanyId, NationalId};

/// The reliability trend compares the score with the one this many days ago.
pub const TREND_DAYS: i64 = 30;

/// How long one slice of a batch holds the judging lock, by default.
pub const DEFAULT_JUDGING_SLICE: std::time::Duration = std::time::Duration::from_millis(2);

/// A slice is never smaller than this many records (a slice has a fixed cost), nor larger
/// than a batch.
const MIN_SLICE_RECORDS: usize = 4;

/// A batch of this many records or fewer is judged whole: slicing it would only add its fixed
/// costs to a short wait (a branch syncing as it works sends a few records at a time).
const WHOLE_BATCH_RECORDS: usize = 32;

/// The hub: ingest over a store, with the rules in force and group commit.
pub struct Hub<S: HubStore> {
    /// `None` once closed: the store is dropped as soon as in-flight work ends, so it can be
    /// reopened (a restart in the same process, as tests do).
    store: std::sync::RwLock<Option<Arc<S>>>,
    durability: Durability,
    /// Held while a slice of a batch (or an HQ decision) is judged and applied; fair (FIFO).
    judging: tokio::sync::Mutex<()>,
    /// The bulk lane: a slice of a large batch (over [`WHOLE_BATCH_RECORDS`]) queues here
    /// first, and lets go once it holds the judging lock, so at most one bulk slice waits for
    /// the judging lock at a time. A small batch (a branch committing as it works, an HQ
    /// decision) queues for the judging lock directly: it waits for the slice running and
    /// one bulk slice at most, not for a slice of every dealer catching up.
    bulk: tokio::sync::Mutex<()>,
    /// How long a slice should take, and what judging one record has been taking (ns, a
    /// moving average) to size the next slice.
    judging_slice: std::time::Duration,
    ns_per_record: std::sync::atomic::AtomicU64,
    /// Shared with the judging task of every batch (no copy per batch).
    config: Arc<RuleConfig>,
    /// HQ's dealer registry in force: replaced whole when its file changes (`central dealers`).
    registry: std::sync::RwLock<Arc<DealerRegistry>>,
    /// Counts registry replacements, for whoever waits for one.
    registry_version: watch::Sender<u64>,
    /// Each dealer's verdict feed: the last cursor that is durable.
    feeds: Mutex<HashMap<String, watch::Sender<u64>>>,
    /// The change stream's last durable cursor.
    changes: watch::Sender<u64>,
    /// "Now" for the rules (T01, received times), decisions and the session's clock offset.
    clock: Clock,
    metrics: Arc<HubMetrics>,
}

impl<S: HubStore> Hub<S> {
    /// A hub over `store` with the default rules and no dealer registry; starts the flusher
    /// task (call inside a tokio runtime).
    pub fn new(store: Arc<S>) -> Self {
        Self::with_rules(store, RuleConfig::default(), DealerRegistry::default())
    }

    /// A hub over `store` applying `config` with `registry`.
    pub fn with_rules(store: Arc<S>, config: RuleConfig, registry: DealerRegistry) -> Self {
        // Whatever the store holds at open survived: it is durable.
        let last_change = store.last_change().unwrap_or_else(|e| {
            tracing::error!("cannot read the change stream's cursor: {e}");
            0
        });
        let metrics = Arc::new(HubMetrics::default());
        Hub {
            changes: watch::Sender::new(last_change),
            durability: Durability::start(store.clone(), metrics.flush_seconds.clone()),
            metrics,
            store: std::sync::RwLock::new(Some(store)),
            judging: tokio::sync::Mutex::new(()),
            bulk: tokio::sync::Mutex::new(()),
            judging_slice: DEFAULT_JUDGING_SLICE,
            ns_per_record: std::sync::atomic::AtomicU64::new(100_000),
            config: Arc::new(config),
            registry: std::sync::RwLock::new(Arc::new(registry)),
            registry_version: watch::Sender::new(0),
            feeds: Mutex::new(HashMap::new()),
            clock: Clock::System,
        }
    }

    /// The same hub reading the time from `clock` (tests run on a date they choose).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same hub judging a batch in slices of about `slice` each (zero: whole batches).
    pub fn with_judging_slice(mut self, slice: std::time::Duration) -> Self {
        self.judging_slice = slice;
        self
    }

    /// How many records the next slice takes: about [`Self::with_judging_slice`]'s time at
    /// what a record has been costing.
    fn slice_records(&self, remaining: usize) -> usize {
        if self.judging_slice.is_zero() || remaining <= WHOLE_BATCH_RECORDS {
            return remaining;
        }
        let per_record = self
            .ns_per_record
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1);
        let fits = (self.judging_slice.as_nanos() as u64 / per_record) as usize;
        fits.max(MIN_SLICE_RECORDS).min(remaining)
    }

    /// Learns what judging `records` took.
    fn learn_cost(&self, records: usize, took: std::time::Duration) {
        let sample = took.as_nanos() as u64 / records.max(1) as u64;
        let ema = &self.ns_per_record;
        let old = ema.load(std::sync::atomic::Ordering::Relaxed);
        ema.store((old * 7 + sample) / 8, std::sync::atomic::Ordering::Relaxed);
    }

    /// The clock the hub judges by.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// What ingest counts and times (served by `metrics::render`).
    pub fn metrics(&self) -> &HubMetrics {
        &self.metrics
    }

    /// The rule thresholds in force.
    pub fn rules(&self) -> &RuleConfig {
        &self.config
    }

    /// Every dealer's reliability score at `now_ms`, from the day tallies.
    pub fn reliability(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::BTreeMap<String, ReliabilityScore>, StoreError> {
        let window = self.config.score_window_days;
        let from_day = day_of(now_ms) - window - TREND_DAYS;
        let tallies = self.store()?.tallies(from_day)?;
        Ok(score::scores(
            &tallies,
            now_ms,
            window,
            TREND_DAYS,
            self.config.score_prior_records,
        ))
    }

    /// The store, unless the hub is closed.
    pub fn store(&self) -> Result<Arc<S>, StoreError> {
        self.store
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Engine("the hub is shutting down".into()))
    }

    /// Judges and applies one slice of a dealer's batch (under the judging lock, held by the
    /// caller): what was judged, what the store numbered, and how long the apply took.
    async fn judge_slice(
        &self,
        store: &Arc<S>,
        dealer_id: &str,
        stored_before: u64,
        clock_offset_ms: i64,
        slice: Vec<wire::Arrival>,
        now: i64,
    ) -> Result<(judge::Judged, crate::store::Applied, std::time::Duration), IngestError> {
        let judging = store.clone();
        let dealer_owned = dealer_id.to_owned();
        let config = Arc::clone(&self.config);
        let registry = self.registry();
        tokio::task::spawn_blocking(move || {
            let rules = Rulebook {
                config: &config,
                registry: &registry,
            };
            let sender = judge::Sender {
                dealer: &dealer_owned,
                stored_seq: stored_before,
                clock_offset_ms,
            };
            let judged = judge::judge_batch(&*judging, &rules, &sender, slice, now)?;
            let applying = std::time::Instant::now();
            let applied = judging.apply(&judged.change)?;
            Ok::<_, StoreError>((judged, applied, applying.elapsed()))
        })
        .await
        .map_err(|e| IngestError::Storage(format!("judging task failed: {e}")))?
        .map_err(|e| match e {
            // Another writer moved this dealer's log since it was read: the session resends
            // from the hub's stored seq, and nothing of this slice was applied.
            StoreError::Conflict(why) => IngestError::Storage(format!(
                "{why}; nothing of the batch's rest was stored, the agent sends it again"
            )),
            e => storage(e),
        })
    }

    /// Stops the flusher after a last flush and lets go of the store; once in-flight work has
    /// ended the store is dropped and can be reopened.
    pub async fn close(&self) {
        self.durability.stop().await;
        self.store.write().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// The dealer registry in force.
    pub fn registry(&self) -> Arc<DealerRegistry> {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `registry` in force for what is judged and opened from now on (records judged
    /// before keep their verdicts; a rebuild judges everything with the file then in force).
    pub fn replace_registry(&self, registry: DealerRegistry) {
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(registry);
        self.registry_version.send_modify(|v| *v += 1);
    }

    /// Changes each time the registry is replaced.
    pub fn registry_changes(&self) -> watch::Receiver<u64> {
        self.registry_version.subscribe()
    }

    /// The change stream's last durable cursor; it changes as batches become durable.
    pub fn durable_changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn publish_changes(changes: &watch::Sender<u64>, cursor: Option<u64>) {
        if let Some(cursor) = cursor {
            changes.send_if_modified(|c| {
                let newer = cursor > *c;
                if newer {
                    *c = cursor;
                }
                newer
            });
        }
    }

    fn feed(&self, dealer: &str) -> watch::Sender<u64> {
        let mut feeds = self.feeds.lock().unwrap_or_else(|p| p.into_inner());
        feeds
            .entry(dealer.to_owned())
            .or_insert_with(|| watch::Sender::new(0))
            .clone()
    }

    async fn ingest_batch(
        &self,
        dealer: &DealerId,
        records: Vec<pb::Record>,
    ) -> Result<IngestOutcome, IngestError> {
        let dealer_id = dealer.as_str();
        let store = self.store().map_err(storage)?;
        // A dealer's batches come one at a time from its session, so what it holds is read
        // without the judging lock; a second session of the same dealer racing this one meets
        // a conflict when it applies, and nothing of it is stored.
        let state = store
            .dealer(dealer_id)
            .map_err(storage)?
            .unwrap_or_default();
        let now = self.clock.now_ms();
        let mut verdicts = Vec::with_capacity(records.len());
        let mut fresh = Vec::new();
        let mut next_seq = state.stored_seq + 1;

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
                // Re-sent: change nothing, answer as before (with the verdict in force).
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
            fresh.push(wire::arrival(record));
            next_seq += 1;
        }

        let judging_started = std::time::Instant::now();
        let mut feeds: std::collections::BTreeMap<String, u64> = Default::default();
        let mut last_change = None;
        let first_new = verdicts.len();
        let mut stored_before = state.stored_seq;
        let small = fresh.len() <= WHOLE_BATCH_RECORDS;
        let mut fresh = std::collections::VecDeque::from(fresh);
        while !fresh.is_empty() {
            let waited = std::time::Instant::now();
            let judging = if small {
                self.judging.lock().await
            } else {
                let _lane = self.bulk.lock().await;
                self.judging.lock().await
            };
            let lock_wait = waited.elapsed();
            metrics::observe(&self.metrics.judging_lock_wait_seconds, lock_wait);
            let take = self.slice_records(fresh.len());
            let slice: Vec<wire::Arrival> = fresh.drain(..take).collect();
            let slice_started = std::time::Instant::now();
            let (judged, applied, apply) = self
                .judge_slice(
                    &store,
                    dealer_id,
                    stored_before,
                    state.clock_offset_ms,
                    slice,
                    now,
                )
                .await?;
            drop(judging);
            self.learn_cost(take, slice_started.elapsed());
            self.metrics
                .stages(dealer_id, take, lock_wait, &judged.timings, apply);
            self.metrics.judged(&judged.verdicts);
            self.metrics.wrote(&judged.change, &applied);
            // An earlier slice's record whose verdict this slice changed: the ack carries the
            // newest (its change also goes down the feed, as any verdict change).
            for r in judged.change.records.iter().filter(|r| {
                r.dealer_id == dealer_id && r.seq > state.stored_seq && r.seq <= stored_before
            }) {
                let at = first_new + (r.seq - state.stored_seq - 1) as usize;
                if let Some(slot) = verdicts.get_mut(at) {
                    *slot = wire::verdict_to_wire(&r.verdict);
                }
            }
            verdicts.extend(judged.verdicts.iter().map(wire::verdict_to_wire));
            stored_before += take as u64;
            for (d, cursor) in applied.verdict_cursors {
                let c = feeds.entry(d).or_default();
                *c = (*c).max(cursor);
            }
            last_change = applied.last_change.or(last_change);
        }
        metrics::observe(&self.metrics.judging_seconds, judging_started.elapsed());
        let stored_seq = (next_seq - 1).max(state.stored_seq);
        // Even an all-duplicate batch waits: its records may have been applied by a session
        // whose flush has not finished yet.
        let durable = self.durability.request();
        let senders: Vec<(watch::Sender<u64>, u64)> = feeds
            .into_iter()
            .map(|(d, cursor)| (self.feed(d.as_str()), cursor))
            .collect();
        let own_feed = self.feed(dealer_id);
        let changes = self.changes.clone();
        Ok(IngestOutcome {
            stored_seq,
            verdicts,
            durable: Box::pin(async move {
                durable.await.map_err(storage)?;
                Self::publish_changes(&changes, last_change);
                // Verdict changes go out only once durable, so a cursor an agent holds
                // always exists at the hub.
                for (sender, cursor) in senders {
                    sender.send_if_modified(|c| {
                        let newer = cursor > *c;
                        if newer {
                            *c = cursor;
                        }
                        newer
                    });
                }
                Ok(*own_feed.borrow())
            }),
        })
    }
}

/// Why HQ's decision cannot be taken: what is wrong, in words the reviewer can act on.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no customer {0}")]
    UnknownCustomer(String),
    #[error("no vehicle {0} at the hub")]
    UnknownVehicle(String),
    #[error("no usable customer record {} of dealer {}", .0.1, .0.0)]
    UnknownParty(PartyKey),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an HQ decision did.
#[derive(Debug, Clone)]
pub struct DecisionTaken {
    /// The decision's number in the hub's decision log.
    pub no: u64,
    /// Dealer records whose verdict changed (each sent down to its dealer).
    pub verdicts_changed: usize,
}

impl<S: HubStore> Hub<S> {
    /// Takes an HQ decision: checks it against the state, logs it, re-resolves what it
    /// concerns and sends the verdicts it changes to the dealers, all in one atomic change.
    /// `Confirm` on a customer applies to the dealer records linked to it now.
    pub async fn decide(
        &self,
        mut decision: HqDecision,
        by: &str,
        comment: &str,
    ) -> Result<DecisionTaken, DecisionError> {
        let _judging = self.judging.lock().await;
        let store = self.store()?;
        check_decision(&*store, &mut decision)?;
        let entry = DecisionEntry {
            no: store.next_decision_no()?,
            decision,
            by: by.to_owned(),
            comment: comment.to_owned(),
            at_ms: self.clock.now_ms(),
        };
        let config = Arc::clone(&self.config);
        let registry = self.registry();
        let judging = store.clone();
        let no = entry.no;
        let judged = tokio::task::spawn_blocking(move || {
            let rules = Rulebook {
                config: &config,
                registry: &registry,
            };
            let judged = judge::judge_decision(&*judging, &rules, &entry, entry.at_ms)?;
            let applied = judging.apply(&judged.change)?;
            Ok::<_, StoreError>((judged, applied))
        })
        .await
        .map_err(|e| StoreError::Engine(format!("decision task failed: {e}")))??;
        let (judged, applied) = judged;
        // Applied: other batches may be judged while the flush runs, as after a batch.
        drop(_judging);
        self.durability.request().await?;
        Self::publish_changes(&self.changes, applied.last_change);
        for (dealer, cursor) in &applied.verdict_cursors {
            self.feed(dealer).send_if_modified(|c| {
                let newer = *cursor > *c;
                if newer {
                    *c = *cursor;
                }
                newer
            });
        }
        tracing::info!(
            decision = no,
            by,
            verdicts_changed = judged.change.verdict_updates.len(),
            "HQ decision taken"
        );
        Ok(DecisionTaken {
            no,
            verdicts_changed: judged.change.verdict_updates.len(),
        })
    }

    /// Runs `f` on the store while no unit of work is judged or applied (the judging lock is
    /// held): what `f` reads is one state. Batches and decisions wait meanwhile; reads, session
    /// hellos and the access audit do not (a backup fixes its point this way).
    pub async fn with_units_held<T: Send + 'static>(
        &self,
        f: impl FnOnce(&S) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let _judging = self.judging.lock().await;
        let store = self.store()?;
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Engine(format!("task under the judging lock failed: {e}")))
    }

    /// Waits until everything applied so far is durable.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.durability.request().await
    }

    /// The digest of the hub's whole state (see [`crate::merge::digest`]).
    pub fn digest(&self) -> Result<StateDigest, StoreError> {
        crate::merge::digest::digest(&*self.store()?)
    }
}

/// Refuses a decision about things the hub does not hold, and fills in the parties a
/// customer `Confirm` applies to.
fn check_decision<S: HubStore>(store: &S, decision: &mut HqDecision) -> Result<(), DecisionError> {
    let usable = |p: &PartyKey| -> Result<(), DecisionError> {
        match store.merge_party(p)? {
            Some(party) if party.view.is_some() => Ok(()),
            _ => Err(DecisionError::UnknownParty(p.clone())),
        }
    };
    match decision {
        HqDecision::Confirm {
            subject: Subject::Customer(id),
            field,
            value,
            parties,
        } => {
            let customer = store
                .customer(id)?
                .ok_or_else(|| DecisionError::UnknownCustomer(id.clone()))?;
            if !golden::MATERIAL.contains(&field.as_str()) {
                return Err(DecisionError::Invalid(format!(
                    "field must be one of {}, not {field:?}",
                    golden::MATERIAL.join(", ")
                )));
            }
            *value = match field.as_str() {
                "national_id" => NationalId::parse(value)
                    .map(|n| n.as_str().to_owned())
                    .map_err(|e| DecisionError::Invalid(format!("value: {e}")))?,
                "company_id" => CompanyId::parse(value)
                    .map(|n| n.as_str().to_owned())
                    .map_err(|e| DecisionError::Invalid(format!("value: {e}")))?,
                _ => {
                    let name = hamgam_proto::text::normalize(value);
                    if name.is_empty() {
                        return Err(DecisionError::Invalid(
                            "value: a name cannot be empty".into(),
                        ));
                    }
                    name
                }
            };
            *parties = customer.parties;
        }
        HqDecision::Confirm {
            subject: Subject::Vehicle(vin),
            field,
            value,
            ..
        } => {
            if store.vehicle_facts(vin)?.is_empty() {
                return Err(DecisionError::UnknownVehicle(vin.clone()));
            }
            if field != "sold_by" {
                return Err(DecisionError::Invalid(format!(
                    "a vehicle's confirmable field is sold_by, not {field:?}"
                )));
            }
            let conflicts = store.subject_conflicts(&Subject::Vehicle(vin.clone()).key())?;
            let sellers: Vec<&str> = conflicts
                .iter()
                .flat_map(|c| c.values.iter().map(|v| v.value.as_str()))
                .collect();
            if !sellers.contains(&value.as_str()) {
                return Err(DecisionError::Invalid(format!(
                    "value: dealer {value:?} did not report selling {vin}; the dealers that did: {}",
                    sellers.join(", ")
                )));
            }
        }
        HqDecision::Link { a, b } | HqDecision::KeepApart { a, b } => {
            if a == b {
                return Err(DecisionError::Invalid("a and b are the same record".into()));
            }
            usable(a)?;
            usable(b)?;
        }
        HqDecision::Detach { party } | HqDecision::Reattach { party } => usable(party)?,
        HqDecision::ReviewFlag {
            dealer_id,
            seq,
            rule_id,
            status,
        } => {
            let record = store.record(dealer_id, *seq)?.ok_or_else(|| {
                DecisionError::Invalid(format!("dealer {dealer_id} has no record at seq {seq}"))
            })?;
            let finding = record
                .findings()
                .into_iter()
                .find(|f| f.rule_id == *rule_id)
                .ok_or_else(|| {
                    DecisionError::Invalid(format!(
                        "rule_id: {rule_id} did not fire on {dealer_id} seq {seq}"
                    ))
                })?;
            match status {
                FlagStatus::Open => {
                    return Err(DecisionError::Invalid(
                        "status: a review confirms or dismisses a flag".into(),
                    ))
                }
                FlagStatus::Dismissed
                    if matches!(finding.severity, Severity::Reject | Severity::RejectField) =>
                {
                    return Err(DecisionError::Invalid(format!(
                        "rule_id: {rule_id} rejects the record or a field as unusable; only the \
                         dealer's correction can lift it, HQ can dismiss flags only"
                    )))
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn storage(e: StoreError) -> IngestError {
    IngestError::Storage(e.to_string())
}

impl<S: HubStore> Ingest for Hub<S> {
    fn clock(&self) -> Clock {
        self.clock
    }

    async fn restore_page(
        &self,
        dealer: &DealerId,
        after_seq: u64,
        limit: usize,
        verdicts_only: bool,
    ) -> Result<RestorePage, IngestError> {
        let store = self.store().map_err(storage)?;
        // What is read before the flush is durable after it: never hand a branch a record the
        // hub could still lose.
        let state = store
            .dealer(dealer.as_str())
            .map_err(storage)?
            .unwrap_or_default();
        self.durability.request().await.map_err(storage)?;
        let stored = store
            .records(dealer.as_str(), after_seq, limit)
            .map_err(storage)?;
        let mut records = Vec::with_capacity(stored.len());
        for s in stored.into_iter().filter(|s| s.seq <= state.stored_seq) {
            let record = if verdicts_only {
                None
            } else {
                Some(wire::record_to_wire(&s).map_err(|e| {
                    storage(StoreError::Corrupt {
                        key: format!("record {} of {}", s.seq, s.dealer_id),
                        detail: e.to_string(),
                    })
                })?)
            };
            records.push((s.seq, record, wire::verdict_to_wire(&s.verdict)));
        }
        Ok(RestorePage {
            records,
            stored_seq: state.stored_seq,
            verdict_cursor: state.verdict_cursor,
        })
    }

    async fn open_session(
        &self,
        dealer: &DealerId,
        clock_offset_ms: i64,
        agent_last_seq: u64,
    ) -> Result<u64, IngestError> {
        self.metrics.reported(dealer.as_str(), agent_last_seq);
        if let Some(reason) = self
            .registry()
            .dealer(dealer.as_str())
            .and_then(|d| d.suspended.clone())
        {
            return Err(IngestError::Suspended {
                dealer: dealer.to_string(),
                reason,
            });
        }
        let now = self.clock.now_ms();
        let store = self.store().map_err(storage)?;
        if clock_offset_ms.abs() > self.config.clock_offset_max_minutes * 60_000 {
            tracing::warn!(dealer_id = %dealer, clock_offset_ms, "agent clock beyond the T02 limit: this session's records are flagged");
        }
        // The session's facts are the store's own part of the dealer's state: no batch is
        // waited for, none overwritten.
        let state = store
            .open_session(dealer.as_str(), clock_offset_ms, now)
            .map_err(storage)?;
        // A previous session's last batches may be applied but not yet flushed; the hello
        // promises "held durably", so wait for the flush that covers them.
        self.durability.request().await.map_err(storage)?;
        let feed = self.feed(dealer.as_str());
        feed.send_if_modified(|c| {
            let newer = state.verdict_cursor > *c;
            if newer {
                *c = state.verdict_cursor;
            }
            newer
        });
        Ok(state.stored_seq)
    }

    fn verdict_feed(&self, dealer: &DealerId) -> VerdictFeed {
        VerdictFeed(self.feed(dealer.as_str()).subscribe())
    }

    async fn verdict_updates(
        &self,
        dealer: &DealerId,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, pb::Verdict)>, IngestError> {
        let store = self.store().map_err(storage)?;
        let dealer = dealer.as_str().to_owned();
        let updates =
            tokio::task::spawn_blocking(move || store.verdict_updates(&dealer, cursor, limit))
                .await
                .map_err(|e| IngestError::Storage(format!("read task failed: {e}")))?
                .map_err(storage)?;
        Ok(updates
            .iter()
            .map(|(c, v)| (*c, wire::verdict_to_wire(v)))
            .collect())
    }

    async fn verdicts_acknowledged(
        &self,
        dealer: &DealerId,
        cursor: u64,
    ) -> Result<(), IngestError> {
        let store = self.store().map_err(storage)?;
        store
            .acknowledge_verdicts(dealer.as_str(), cursor)
            .map_err(storage)?;
        Ok(())
    }

    async fn ingest(
        &self,
        dealer: &DealerId,
        records: Vec<pb::Record>,
    ) -> Result<IngestOutcome, IngestError> {
        self.ingest_batch(dealer, records).await
    }
}
