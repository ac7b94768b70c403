//! The hub side of the sync stream, over an [`Ingest`] that judges and stores records.
//!
//! The session checks identity (rule R01: every record must belong to the dealer the
//! certificate proves; a mismatch refuses the whole batch before anything is stored), enforces
//! the protocol and its limits, and maps [`IngestError`] to gRPC status codes in one place.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hamgam_proto::record::v1::{Record, Verdict};
use hamgam_proto::sync::v1::dealer_sync_server::DealerSync;
use hamgam_proto::sync::v1::{
    agent_message, hub_message, AgentMessage, BatchAck, HubHello, HubMessage, Pong, RestoreRequest,
    RestoreResponse, RestoredRecord, VerdictUpdate,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use crate::audit::{SecurityAudit, SecurityEventKind};
use crate::identity::{DealerId, PeerIdentity};
use crate::limits::TokenBucket;
use crate::metrics::SyncMetrics;
use crate::server::PeerInfo;

/// What the hub does with the records of a sync session. Implemented by `central`.
pub trait Ingest: Send + Sync + 'static {
    /// A dealer's session opens; `clock_offset_ms` is agent clock minus hub clock, and
    /// `agent_last_seq` the highest seq in the agent's log as its hello says. Returns the
    /// highest seq of this dealer held durably (0 when none).
    fn open_session(
        &self,
        dealer: &DealerId,
        clock_offset_ms: i64,
        agent_last_seq: u64,
    ) -> impl Future<Output = Result<u64, IngestError>> + Send;

    /// Judges and applies consecutive records of `dealer` (all already checked to belong to
    /// it). Records whose seq is already held are not applied again; their stored verdicts are
    /// returned. The outcome is not durable yet: [`IngestOutcome::durable`] resolves once it is,
    /// and the session acks only then, while it goes on applying the next batch.
    fn ingest(
        &self,
        dealer: &DealerId,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<IngestOutcome, IngestError>> + Send;

    /// The dealer's verdict feed: the last cursor whose verdict change is durable.
    fn verdict_feed(&self, dealer: &DealerId) -> VerdictFeed;

    /// Up to `limit` verdict changes of the dealer after `cursor`, with their cursors.
    fn verdict_updates(
        &self,
        dealer: &DealerId,
        cursor: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(u64, Verdict)>, IngestError>> + Send;

    /// The agent has stored the verdict changes up to `cursor`.
    fn verdicts_acknowledged(
        &self,
        dealer: &DealerId,
        cursor: u64,
    ) -> impl Future<Output = Result<(), IngestError>> + Send;

    /// Up to `limit` of `dealer`'s own records after `after_seq` that the hub holds durably,
    /// each with its current verdict (the record left out when `verdicts_only`), with the
    /// highest seq held durably and the dealer's verdict-feed cursor.
    fn restore_page(
        &self,
        dealer: &DealerId,
        after_seq: u64,
        limit: usize,
        verdicts_only: bool,
    ) -> impl Future<Output = Result<RestorePage, IngestError>> + Send;

    /// The hub's clock: the session measures the agent's offset against the same clock the
    /// records are judged by.
    fn clock(&self) -> crate::Clock {
        crate::Clock::System
    }
}

/// A page of a dealer's records for a restore: `(seq, record, verdict)`, ascending by seq.
pub struct RestorePage {
    pub records: Vec<(u64, Option<Record>, Verdict)>,
    pub stored_seq: u64,
    pub verdict_cursor: u64,
}

/// The most records one restore page carries, and the most bytes (under a client's default
/// 4 MiB message limit).
pub const RESTORE_PAGE_RECORDS: usize = 1_000;
const RESTORE_PAGE_BYTES: usize = 3 * 1024 * 1024;

/// Watches a dealer's verdict-feed cursor.
pub struct VerdictFeed(pub tokio::sync::watch::Receiver<u64>);

/// Resolves once a batch's records are durable, to the dealer's verdict-feed cursor then.
pub type Durable = Pin<Box<dyn Future<Output = Result<u64, IngestError>> + Send>>;

/// What an ingested batch came to.
pub struct IngestOutcome {
    /// Highest seq of this dealer held once `durable` resolves.
    pub stored_seq: u64,
    /// One verdict per record, in the batch's order.
    pub verdicts: Vec<Verdict>,
    /// Resolves once every record of the batch (and everything applied before it) is durable,
    /// to the dealer's verdict-feed cursor.
    pub durable: Durable,
}

impl std::fmt::Debug for IngestOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestOutcome")
            .field("stored_seq", &self.stored_seq)
            .field("verdicts", &self.verdicts.len())
            .finish_non_exhaustive()
    }
}

/// Why a batch could not be ingested. Nothing of the batch is stored when one is returned.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("records must continue from seq {expected}, but the batch has seq {got}")]
    Gap { expected: u64, got: u64 },
    #[error("seq {seq} is already stored as record {stored_record_id}, not {sent_record_id}: the agent's store was probably reset or replaced: on the branch PC, run `dealer-agent restore --from-hub --force`: it keeps a copy of the current store and rebuilds it from the hub")]
    SeqConflict {
        seq: u64,
        stored_record_id: String,
        sent_record_id: String,
    },
    #[error("batch is not in seq order at position {position}")]
    Unordered { position: usize },
    #[error("hub storage unavailable: {0}")]
    Storage(String),
    #[error("dealer {dealer} is suspended in HQ's dealer registry ({reason}): ask HQ to lift the suspension; the records stay in the agent until then")]
    Suspended { dealer: String, reason: String },
}

impl IngestError {
    fn into_status(self) -> Status {
        match &self {
            IngestError::Gap { .. } | IngestError::Unordered { .. } => {
                Status::invalid_argument(self.to_string())
            }
            IngestError::SeqConflict { .. } => Status::failed_precondition(self.to_string()),
            IngestError::Storage(_) => Status::unavailable(self.to_string()),
            IngestError::Suspended { .. } => Status::permission_denied(self.to_string()),
        }
    }
}

/// Bounds of one session.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    pub max_batch_records: u32,
    pub max_batches_in_flight: u32,
    /// The agent must say hello within this time.
    pub hello_timeout: Duration,
    /// A session with no message from the agent for this long is closed.
    pub idle_timeout: Duration,
    /// Records per second one dealer may send, over all its sessions, on average (0 = no
    /// limit). A faster dealer is slowed down, not refused: the hub reads its next batch
    /// only when the dealer's budget allows, so one dealer's backlog cannot crowd out the
    /// others' live records.
    pub dealer_records_per_sec: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_batch_records: 500,
            max_batches_in_flight: 4,
            hello_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            dealer_records_per_sec: 2000,
        }
    }
}

/// The `hamgam.sync.v1.DealerSync` service.
pub struct DealerSyncService<I> {
    ingest: std::sync::Arc<I>,
    limits: SessionLimits,
    audit: SecurityAudit,
    stop: CancellationToken,
    sessions: TaskTracker,
    record_budgets: RecordBudgets,
    metrics: SyncMetrics,
}

/// Each dealer's record budget, shared by all its sessions.
type RecordBudgets = Arc<Mutex<HashMap<DealerId, TokenBucket>>>;

impl<I: Ingest> DealerSyncService<I> {
    pub fn new(ingest: std::sync::Arc<I>, limits: SessionLimits, audit: SecurityAudit) -> Self {
        DealerSyncService {
            ingest,
            limits,
            audit,
            stop: CancellationToken::new(),
            sessions: TaskTracker::new(),
            record_budgets: Arc::default(),
            metrics: SyncMetrics::default(),
        }
    }

    /// The sessions count into `metrics` (registered by the caller).
    pub fn with_metrics(mut self, metrics: SyncMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sessions end (with UNAVAILABLE, so agents reconnect later) once `stop` is cancelled.
    pub fn with_stop(mut self, stop: CancellationToken) -> Self {
        self.stop = stop;
        self
    }

    /// The running sessions, to wait for at shutdown.
    pub fn sessions(&self) -> TaskTracker {
        self.sessions.clone()
    }
}

type HubStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<HubMessage, Status>> + Send>>;

#[tonic::async_trait]
impl<I: Ingest> DealerSync for DealerSyncService<I> {
    type SyncStream = HubStream;

    async fn sync(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<HubStream>, Status> {
        let peer = PeerInfo::of(&request)?.clone();
        let PeerIdentity::Dealer(dealer) = peer.identity.clone() else {
            return Err(Status::permission_denied(format!(
                "{} may not sync records: it needs a dealer certificate",
                peer.identity
            )));
        };
        let inbound = request.into_inner();
        let (out_tx, out_rx) = mpsc::channel(self.limits.max_batches_in_flight as usize + 4);
        let session = Session {
            ingest: self.ingest.clone(),
            limits: self.limits.clone(),
            audit: self.audit.clone(),
            dealer: dealer.clone(),
            peer,
            out_tx,
            stop: self.stop.clone(),
            record_budgets: self.record_budgets.clone(),
            metrics: self.metrics.clone(),
        };
        let span = tracing::info_span!("sync_session", dealer_id = %dealer);
        self.sessions.spawn(
            async move {
                let out_tx = session.out_tx.clone();
                if let Err(status) = session.run(inbound).await {
                    tracing::info!(code = ?status.code(), "session ended: {}", status.message());
                    let _ = out_tx.send(Err(status)).await;
                }
            }
            .instrument(span),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn restore(
        &self,
        request: Request<RestoreRequest>,
    ) -> Result<Response<RestoreResponse>, Status> {
        let peer = PeerInfo::of(&request)?.clone();
        let PeerIdentity::Dealer(dealer) = peer.identity.clone() else {
            return Err(Status::permission_denied(format!(
                "{} may not restore a dealer's records: it needs that dealer's certificate",
                peer.identity
            )));
        };
        let req = request.into_inner();
        let limit = (req.limit as usize).clamp(1, RESTORE_PAGE_RECORDS);
        let page = self
            .ingest
            .restore_page(&dealer, req.after_seq, limit, req.verdicts_only)
            .await
            .map_err(IngestError::into_status)?;
        let mut records = Vec::with_capacity(page.records.len());
        let mut bytes = 0usize;
        for (seq, record, verdict) in page.records {
            let item = RestoredRecord {
                seq,
                record,
                verdict: Some(verdict),
            };
            bytes += prost::Message::encoded_len(&item) + 8;
            if bytes > RESTORE_PAGE_BYTES && !records.is_empty() {
                break;
            }
            records.push(item);
        }
        tracing::info!(dealer_id = %dealer, after_seq = req.after_seq, records = records.len(), stored_seq = page.stored_seq, "restore page served");
        Ok(Response::new(RestoreResponse {
            records,
            stored_seq: page.stored_seq,
            verdict_cursor: page.verdict_cursor,
        }))
    }
}

struct Session<I> {
    ingest: std::sync::Arc<I>,
    limits: SessionLimits,
    audit: SecurityAudit,
    dealer: DealerId,
    peer: PeerInfo,
    out_tx: mpsc::Sender<Result<HubMessage, Status>>,
    stop: CancellationToken,
    record_budgets: RecordBudgets,
    metrics: SyncMetrics,
}

/// A batch applied, waiting for its ack: number, outcome, and when it arrived.
type Pending = (u64, IngestOutcome, Instant);

/// Sends each batch's ack once the batch is durable, in the order the batches came.
async fn send_acks(
    mut ack_rx: mpsc::Receiver<Pending>,
    out_tx: mpsc::Sender<Result<HubMessage, Status>>,
    metrics: SyncMetrics,
) -> Result<(), Status> {
    while let Some((batch_no, outcome, received)) = ack_rx.recv().await {
        let verdict_cursor = outcome.durable.await.map_err(IngestError::into_status)?;
        let ack = HubMessage {
            body: Some(hub_message::Body::BatchAck(BatchAck {
                batch_no,
                stored_seq: outcome.stored_seq,
                verdicts: outcome.verdicts,
                verdict_cursor,
            })),
        };
        if out_tx.send(Ok(ack)).await.is_err() {
            return Ok(()); // the agent went away; it re-sends what it has no ack for
        }
        metrics.acked(received);
    }
    Ok(())
}

/// How many verdict changes go in one `VerdictUpdate`.
const VERDICTS_PER_UPDATE: usize = 500;

/// Sends the dealer's verdict changes after `cursor` as they become durable, until `stop`.
async fn push_verdicts<I: Ingest>(
    ingest: std::sync::Arc<I>,
    dealer: DealerId,
    mut cursor: u64,
    mut feed: tokio::sync::watch::Receiver<u64>,
    out_tx: mpsc::Sender<Result<HubMessage, Status>>,
    stop: CancellationToken,
) -> Result<(), Status> {
    loop {
        let latest = *feed.borrow_and_update();
        while cursor < latest {
            let updates = ingest
                .verdict_updates(&dealer, cursor, VERDICTS_PER_UPDATE)
                .await
                .map_err(IngestError::into_status)?;
            let Some(last) = updates.last().map(|(c, _)| *c) else {
                break;
            };
            let update = hub_message::Body::VerdictUpdate(VerdictUpdate {
                cursor: last,
                verdicts: updates.into_iter().map(|(_, v)| v).collect(),
            });
            tokio::select! {
                sent = out_tx.send(Ok(HubMessage { body: Some(update) })) => {
                    if sent.is_err() {
                        return Ok(());
                    }
                }
                _ = stop.cancelled() => return Ok(()),
            }
            tracing::debug!(cursor = last, "verdict changes sent");
            cursor = last;
        }
        tokio::select! {
            changed = feed.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            _ = stop.cancelled() => return Ok(()),
        }
    }
}

impl<I: Ingest> Session<I> {
    async fn run(&self, mut inbound: Streaming<AgentMessage>) -> Result<(), Status> {
        let first = tokio::time::timeout(self.limits.hello_timeout, inbound.message())
            .await
            .map_err(|_| {
                self.timed_out(format!(
                    "no AgentHello within the hello timeout ({}s)",
                    self.limits.hello_timeout.as_secs_f32()
                ))
            })?
            .map_err(|s| self.inbound_error(s))?;
        let hello = match first.and_then(|m| m.body) {
            Some(agent_message::Body::Hello(hello)) => hello,
            Some(_) => return Err(self.violation("the first message must be AgentHello")),
            None => return Ok(()),
        };
        if hello.dealer_id != self.dealer.as_str() {
            return Err(self.mismatch(format!(
                "hello names dealer `{}` but the certificate proves `{}`",
                hello.dealer_id, self.dealer
            )));
        }
        let hub_time_ms = self.ingest.clock().now_ms();
        let clock_offset_ms = hello.agent_time_ms.saturating_sub(hub_time_ms);
        let stored_seq = match self
            .ingest
            .open_session(&self.dealer, clock_offset_ms, hello.last_seq)
            .await
        {
            Ok(seq) => seq,
            Err(e @ IngestError::Suspended { .. }) => {
                self.audit.record(
                    SecurityEventKind::DealerSuspended,
                    Some(self.peer.identity.to_string()),
                    Some(self.peer.remote_addr),
                    e.to_string(),
                );
                return Err(e.into_status());
            }
            Err(e) => return Err(e.into_status()),
        };
        let _open = self.metrics.session();
        let mut feed = self.ingest.verdict_feed(&self.dealer).0;
        let verdict_cursor = *feed.borrow_and_update();
        tracing::info!(stored_seq, clock_offset_ms, verdict_cursor, agent_version = %hello.agent_version, "session opened");
        self.send(hub_message::Body::Hello(HubHello {
            stored_seq,
            hub_time_ms,
            clock_offset_ms,
            max_batch_records: self.limits.max_batch_records,
            max_batches_in_flight: self.limits.max_batches_in_flight,
            verdict_cursor,
        }))
        .await?;
        // Verdict changes go down on their own task, from the agent's cursor on.
        let pushing = self.stop.child_token();
        let pusher = tokio::spawn(push_verdicts(
            self.ingest.clone(),
            self.dealer.clone(),
            hello.verdict_cursor,
            feed,
            self.out_tx.clone(),
            pushing.clone(),
        ));

        // Acks go out in batch order, each once its batch is durable, while this loop already
        // applies the next batch: apply and flush overlap within one session.
        let (ack_tx, ack_rx) =
            mpsc::channel::<Pending>(self.limits.max_batches_in_flight as usize + 1);
        let acker = tokio::spawn(send_acks(ack_rx, self.out_tx.clone(), self.metrics.clone()));
        let result = self.receive(&mut inbound, &ack_tx).await;
        drop(ack_tx);
        let acked = acker
            .await
            .unwrap_or_else(|e| Err(Status::internal(format!("ack task failed: {e}"))));
        pushing.cancel();
        let pushed = pusher
            .await
            .unwrap_or_else(|e| Err(Status::internal(format!("verdict task failed: {e}"))));
        result.and(acked).and(pushed)
    }

    async fn receive(
        &self,
        inbound: &mut Streaming<AgentMessage>,
        ack_tx: &mpsc::Sender<Pending>,
    ) -> Result<(), Status> {
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout(self.limits.idle_timeout, inbound.message()) => next,
                _ = self.out_tx.closed() => return Ok(()),
                _ = self.stop.cancelled() => return Err(Status::unavailable("the hub is shutting down; reconnect later")),
            };
            let message = next
                .map_err(|_| {
                    self.timed_out(format!(
                        "no message from the agent within the idle timeout ({}s)",
                        self.limits.idle_timeout.as_secs_f32()
                    ))
                })?
                .map_err(|s| self.inbound_error(s))?;
            let Some(message) = message else {
                tracing::debug!("agent closed the stream");
                return Ok(());
            };
            match message.body {
                Some(agent_message::Body::Batch(batch)) => {
                    let received = Instant::now();
                    let count = batch.records.len();
                    self.metrics.records_received.inc_by(count as u64);
                    if count > self.limits.max_batch_records as usize {
                        let detail = format!(
                            "batch {} has {count} records; this hub takes at most {} per batch",
                            batch.batch_no, self.limits.max_batch_records
                        );
                        self.audit.record(
                            SecurityEventKind::ProtocolViolation,
                            Some(self.peer.identity.to_string()),
                            Some(self.peer.remote_addr),
                            detail.clone(),
                        );
                        return Err(Status::resource_exhausted(detail));
                    }
                    if let Some(foreign) = batch
                        .records
                        .iter()
                        .find(|r| r.dealer_id != self.dealer.as_str())
                    {
                        return Err(self.mismatch(format!(
                            "R01: batch {} holds record {} (seq {}) stamped with dealer `{}` but the certificate proves `{}`; nothing of the batch was stored",
                            batch.batch_no, foreign.record_id, foreign.seq, foreign.dealer_id, self.dealer
                        )));
                    }
                    if !self.pace(count).await {
                        return Ok(());
                    }
                    let outcome = self
                        .ingest
                        .ingest(&self.dealer, batch.records)
                        .await
                        .map_err(IngestError::into_status)?;
                    tracing::debug!(
                        batch_no = batch.batch_no,
                        count,
                        stored_seq = outcome.stored_seq,
                        "batch applied"
                    );
                    ack_tx
                        .send((batch.batch_no, outcome, received))
                        .await
                        .map_err(|_| Status::cancelled("agent went away"))?;
                }
                Some(agent_message::Body::Ping(_)) => {
                    self.send(hub_message::Body::Pong(Pong {
                        hub_time_ms: self.ingest.clock().now_ms(),
                    }))
                    .await?;
                }
                Some(agent_message::Body::VerdictAck(ack)) => {
                    self.ingest
                        .verdicts_acknowledged(&self.dealer, ack.cursor)
                        .await
                        .map_err(IngestError::into_status)?;
                }
                Some(agent_message::Body::Hello(_)) => {
                    return Err(self.violation("AgentHello sent twice"))
                }
                None => return Err(self.violation("empty AgentMessage")),
            }
        }
    }

    async fn send(&self, body: hub_message::Body) -> Result<(), Status> {
        self.out_tx
            .send(Ok(HubMessage { body: Some(body) }))
            .await
            .map_err(|_| Status::cancelled("agent went away"))
    }

    /// Waits until the dealer's record budget allows `count` more records. False when the
    /// session must end instead (the agent went away, or the hub is stopping).
    async fn pace(&self, count: usize) -> bool {
        if self.limits.dealer_records_per_sec == 0 {
            return true;
        }
        let wait = {
            let mut budgets = self
                .record_budgets
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            budgets
                .entry(self.dealer.clone())
                .or_insert_with(|| {
                    TokenBucket::new(
                        f64::from(self.limits.dealer_records_per_sec),
                        f64::from(self.limits.max_batch_records.max(1)),
                        now,
                    )
                })
                .take(count as f64, now)
        };
        if wait.is_zero() {
            return true;
        }
        tracing::debug!(?wait, "dealer over its record rate: pacing");
        tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = self.out_tx.closed() => false,
            _ = self.stop.cancelled() => false,
        }
    }

    fn timed_out(&self, detail: String) -> Status {
        self.audit.record(
            SecurityEventKind::StreamTimeout,
            Some(self.peer.identity.to_string()),
            Some(self.peer.remote_addr),
            detail.clone(),
        );
        Status::deadline_exceeded(detail)
    }

    fn mismatch(&self, detail: String) -> Status {
        self.audit.record(
            SecurityEventKind::DealerMismatch,
            Some(self.peer.identity.to_string()),
            Some(self.peer.remote_addr),
            detail.clone(),
        );
        Status::permission_denied(detail)
    }

    /// A message that could not be read: too large, not protobuf, or the stream broke. The
    /// first two are the peer's doing and logged as security events.
    fn inbound_error(&self, status: Status) -> Status {
        use tonic::Code;
        if matches!(
            status.code(),
            Code::Internal | Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument
        ) {
            self.audit.record(
                SecurityEventKind::ProtocolViolation,
                Some(self.peer.identity.to_string()),
                Some(self.peer.remote_addr),
                format!("unreadable message: {}", status.message()),
            );
        }
        status
    }

    fn violation(&self, detail: &str) -> Status {
        self.audit.record(
            SecurityEventKind::ProtocolViolation,
            Some(self.peer.identity.to_string()),
            Some(self.peer.remote_addr),
            detail,
        );
        Status::invalid_argument(detail.to_owned())
    }
}
