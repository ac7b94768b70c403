//! The agent side of the sync stream, over an [`Outbox`] that holds the dealer's records.
//!
//! A session resumes from what both ends hold: it sends from `min(agent acked, hub stored) + 1`,
//! so a hub restored from an older backup gets the records again, and records the hub stored but
//! the agent never saw acked are re-sent and get their stored verdicts back. Up to
//! `max_batches_in_flight` batches travel before the session waits for an ack. The outbox drops
//! nothing: it only learns which seq the hub holds durably.
//!
//! Verdict changes (a record re-judged after later evidence, a correction, an HQ review) come
//! down on the same stream from the agent's stored feed cursor on; the agent stores them and
//! acks the cursor. A drained session (`dealer-agent sync`) also waits for the changes up to the
//! cursor the hub announced in its hello and acks.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use hamgam_proto::record::v1::{Record, Verdict};
use hamgam_proto::sync::v1::dealer_sync_client::DealerSyncClient;
use hamgam_proto::sync::v1::{
    agent_message, hub_message, AgentHello, AgentMessage, Ping, RecordBatch, VerdictAck,
};
use prost::Message as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::identity::DealerId;

/// An error of the outbox's own storage.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OutboxError(pub String);

/// The agent's side of the log. Implemented by `dealer-agent`'s store.
pub trait Outbox: Send + Sync {
    fn dealer_id(&self) -> &DealerId;

    /// Highest seq the hub has acknowledged, as stored locally.
    fn acked_seq(&self) -> Result<u64, OutboxError>;

    /// Highest seq in the local log (told to the hub at hello, for its sync-lag figure).
    fn last_seq(&self) -> Result<u64, OutboxError>;

    /// Up to `limit` records with seq greater than `after`, ascending.
    fn records_after(
        &self,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Record>, OutboxError>> + Send;

    /// The hub holds every record up to `stored_seq` durably; `verdicts` are its judgements of
    /// the records of the acknowledged batch. Must be durable before it returns.
    fn acknowledge(
        &self,
        stored_seq: u64,
        verdicts: Vec<Verdict>,
    ) -> impl Future<Output = Result<(), OutboxError>> + Send;

    /// Resolves once a record with seq greater than `after` exists.
    fn wait_for_records_after(&self, after: u64) -> impl Future<Output = ()> + Send;

    /// The verdict-feed cursor stored locally (0 when no verdict change was received).
    fn verdict_cursor(&self) -> Result<u64, OutboxError>;

    /// Stores verdict changes the hub sent, up to feed position `cursor`. Must be durable
    /// before it returns: the session acks `cursor` to the hub next.
    fn store_verdict_changes(
        &self,
        cursor: u64,
        verdicts: Vec<Verdict>,
    ) -> impl Future<Output = Result<(), OutboxError>> + Send;
}

/// When a session ends by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionMode {
    /// Once every record that existed or appeared meanwhile is acked (`dealer-agent sync`).
    UntilDrained,
    /// Never: keep sending new records as they are made, ping when idle (`dealer-agent run`).
    Continuous,
}

/// How the agent behaves on the stream.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub mode: SessionMode,
    pub agent_version: String,
    /// The agent asks for at most this many records per batch (the hub's limit wins if lower).
    pub batch_records: u32,
    /// The agent keeps at most this many batches in flight (the hub's limit wins if lower).
    pub batches_in_flight: u32,
    /// No answer from the hub for this long while batches are in flight ends the session.
    pub ack_timeout: Duration,
    /// Idle sessions ping this often so dead links are noticed.
    pub ping_interval: Duration,
    /// The agent's clock, sent at hello and in pings for the hub to measure the offset.
    pub clock: crate::Clock,
    /// A batch is cut before it grows past this many encoded bytes (at least one record), so
    /// it stays under the hub's message limit whatever the records weigh.
    pub max_batch_bytes: usize,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            mode: SessionMode::UntilDrained,
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            batch_records: 500,
            batches_in_flight: 4,
            ack_timeout: Duration::from_secs(60),
            ping_interval: Duration::from_secs(30),
            clock: crate::Clock::System,
            max_batch_bytes: hamgam_proto::limits::MAX_BATCH_BYTES,
        }
    }
}

/// One page of this dealer's records (or only their verdicts) as the hub holds them durably,
/// after `after_seq` (the `Restore` RPC): the dealer is the one the channel's certificate
/// proves.
pub async fn restore_page(
    channel: Channel,
    after_seq: u64,
    limit: u32,
    verdicts_only: bool,
    timeout: Duration,
) -> Result<hamgam_proto::sync::v1::RestoreResponse, SyncError> {
    let request = hamgam_proto::sync::v1::RestoreRequest {
        after_seq,
        limit,
        verdicts_only,
    };
    let answer = tokio::time::timeout(timeout, DealerSyncClient::new(channel).restore(request))
        .await
        .map_err(|_| SyncError::Timeout(timeout))?
        .map_err(|s| SyncError::Refused {
            code: s.code(),
            message: s.message().to_owned(),
        })?;
    Ok(answer.into_inner())
}

/// How many of `records`, from the first, fit in `max_bytes` once encoded in a batch (at least
/// one: a single record is bounded by `hamgam_proto::limits::MAX_RECORD_BYTES` at capture).
fn fitting(records: &[Record], max_bytes: usize) -> usize {
    let mut total = 0usize;
    for (i, record) in records.iter().enumerate() {
        // The record's own length plus its field tag and length prefix in the batch.
        let len = record.encoded_len();
        total += len + prost::length_delimiter_len(len) + 1;
        if total > max_bytes && i > 0 {
            return i;
        }
    }
    records.len()
}

/// What a session achieved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Records sent (re-sent ones included).
    pub records_sent: u64,
    /// Highest seq the hub acknowledged in this session.
    pub acked_seq: u64,
    /// Agent clock minus hub clock, as the hub measured it.
    pub clock_offset_ms: i64,
    /// Verdict changes received (records the hub re-judged).
    pub verdict_changes: u64,
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Connect(#[from] crate::GatewayError),
    #[error("the hub refused the session: {code:?}: {message}")]
    Refused { code: tonic::Code, message: String },
    #[error("the hub broke the protocol: {0}")]
    Protocol(String),
    #[error("no answer from the hub within {0:?}")]
    Timeout(Duration),
    #[error("the hub closed the stream")]
    Closed,
    #[error("local store: {0}")]
    Outbox(#[from] OutboxError),
    /// The hub's verdict feed ends before this agent's cursor: the hub was restored from a
    /// backup older than what the agent received. The agent takes the hub's verdicts again
    /// ([`restore_page`] with `verdicts_only`) and resets its cursor, then syncs.
    #[error("the hub's verdict feed ends at {hub} but this agent holds changes up to {local}: the hub was restored from an older backup; taking its verdicts again")]
    HubFeedBehind {
        hub: u64,
        local: u64,
        hub_stored_seq: u64,
    },
}

impl SyncError {
    /// True when trying again later cannot help without someone changing something
    /// (a certificate, the agent's store).
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            SyncError::Refused {
                code: tonic::Code::PermissionDenied
                    | tonic::Code::FailedPrecondition
                    | tonic::Code::InvalidArgument
                    | tonic::Code::Unauthenticated,
                ..
            }
        )
    }
}

impl From<tonic::Status> for SyncError {
    fn from(status: tonic::Status) -> Self {
        SyncError::Refused {
            code: status.code(),
            message: status.message().to_owned(),
        }
    }
}

/// Runs one session on `channel` until the mode says stop, `shutdown` resolves, or an error.
pub async fn run_session<O: Outbox>(
    channel: Channel,
    outbox: &O,
    options: &SessionOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<SessionReport, SyncError> {
    let (up_tx, up_rx) = mpsc::channel::<AgentMessage>(options.batches_in_flight as usize + 4);
    let hello = AgentMessage {
        body: Some(agent_message::Body::Hello(AgentHello {
            dealer_id: outbox.dealer_id().to_string(),
            agent_version: options.agent_version.clone(),
            agent_time_ms: options.clock.now_ms(),
            verdict_cursor: outbox.verdict_cursor()?,
            last_seq: outbox.last_seq()?,
        })),
    };
    up_tx.send(hello).await.map_err(|_| SyncError::Closed)?;
    let mut client = DealerSyncClient::new(channel)
        .max_decoding_message_size(16 * 1024 * 1024)
        .max_encoding_message_size(16 * 1024 * 1024);
    let mut inbound =
        tokio::time::timeout(options.ack_timeout, client.sync(ReceiverStream::new(up_rx)))
            .await
            .map_err(|_| SyncError::Timeout(options.ack_timeout))??
            .into_inner();

    let hub_hello = match tokio::time::timeout(options.ack_timeout, inbound.message())
        .await
        .map_err(|_| SyncError::Timeout(options.ack_timeout))??
    {
        Some(message) => match message.body {
            Some(hub_message::Body::Hello(hello)) => hello,
            _ => {
                return Err(SyncError::Protocol(
                    "the first message was not HubHello".into(),
                ))
            }
        },
        None => return Err(SyncError::Closed),
    };
    let batch_records = options
        .batch_records
        .min(hub_hello.max_batch_records)
        .max(1) as usize;
    let window = options
        .batches_in_flight
        .min(hub_hello.max_batches_in_flight)
        .max(1) as usize;
    let mut report = SessionReport {
        clock_offset_ms: hub_hello.clock_offset_ms,
        acked_seq: hub_hello.stored_seq,
        ..SessionReport::default()
    };
    // Resume from what both ends hold (see the module docs).
    let mut sent_up_to = outbox.acked_seq()?.min(hub_hello.stored_seq);
    // Verdict changes: the hub's feed position we know of, and what we hold.
    let mut verdicts_expected = hub_hello.verdict_cursor;
    let mut verdicts_held = outbox.verdict_cursor()?;
    if verdicts_expected < verdicts_held {
        return Err(SyncError::HubFeedBehind {
            hub: verdicts_expected,
            local: verdicts_held,
            hub_stored_seq: hub_hello.stored_seq,
        });
    }
    let mut in_flight: VecDeque<(u64, u64)> = VecDeque::new();
    let mut batch_no = 0u64;
    let mut ping = tokio::time::interval(options.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.reset();
    tokio::pin!(shutdown);

    loop {
        while in_flight.len() < window {
            let mut records = outbox.records_after(sent_up_to, batch_records).await?;
            records.truncate(fitting(&records, options.max_batch_bytes));
            let Some(last) = records.last().map(|r| r.seq) else {
                break;
            };
            batch_no += 1;
            report.records_sent += records.len() as u64;
            let batch = AgentMessage {
                body: Some(agent_message::Body::Batch(RecordBatch {
                    batch_no,
                    records,
                })),
            };
            up_tx.send(batch).await.map_err(|_| SyncError::Closed)?;
            in_flight.push_back((batch_no, last));
            sent_up_to = last;
        }
        let verdicts_pending = verdicts_held < verdicts_expected;
        if in_flight.is_empty() && !verdicts_pending && options.mode == SessionMode::UntilDrained {
            // Close our side and let the hub read what we sent last (a verdict ack) and end
            // the stream itself; dropping both ends at once could lose that ack.
            drop(up_tx);
            let _ = tokio::time::timeout(options.ack_timeout, async {
                while let Ok(Some(_)) = inbound.message().await {}
            })
            .await;
            return Ok(report);
        }
        let continuous_idle =
            options.mode == SessionMode::Continuous && in_flight.is_empty() && !verdicts_pending;
        let message = tokio::select! {
            _ = &mut shutdown => return Ok(report),
            _ = outbox.wait_for_records_after(sent_up_to), if in_flight.len() < window => continue,
            _ = ping.tick(), if continuous_idle => {
                let ping = AgentMessage { body: Some(agent_message::Body::Ping(Ping { agent_time_ms: options.clock.now_ms() })) };
                up_tx.send(ping).await.map_err(|_| SyncError::Closed)?;
                continue;
            }
            message = next_message(&mut inbound, (!continuous_idle).then_some(options.ack_timeout)) => message?,
        };
        let Some(message) = message else {
            return Err(SyncError::Closed);
        };
        match message.body {
            Some(hub_message::Body::BatchAck(ack)) => {
                let Some((expected_no, last_seq)) = in_flight.pop_front() else {
                    return Err(SyncError::Protocol(format!(
                        "ack for batch {} that was not sent",
                        ack.batch_no
                    )));
                };
                if ack.batch_no != expected_no || ack.stored_seq < last_seq {
                    return Err(SyncError::Protocol(format!(
                        "ack for batch {} (stored seq {}) while batch {expected_no} up to seq {last_seq} was expected",
                        ack.batch_no, ack.stored_seq
                    )));
                }
                // Acked up to this batch's end only, even when the hub already holds more
                // (records a previous session sent): their verdicts come with their own batches'
                // acks, and a record marked acked without its verdict would never get one.
                outbox.acknowledge(last_seq, ack.verdicts).await?;
                report.acked_seq = last_seq;
                verdicts_expected = verdicts_expected.max(ack.verdict_cursor);
            }
            Some(hub_message::Body::Pong(_)) => {}
            Some(hub_message::Body::VerdictUpdate(update)) => {
                if update.cursor <= verdicts_held {
                    continue; // already held (a resent feed after a reconnect)
                }
                report.verdict_changes += update.verdicts.len() as u64;
                outbox
                    .store_verdict_changes(update.cursor, update.verdicts)
                    .await?;
                verdicts_held = update.cursor;
                verdicts_expected = verdicts_expected.max(update.cursor);
                let ack = AgentMessage {
                    body: Some(agent_message::Body::VerdictAck(VerdictAck {
                        cursor: update.cursor,
                    })),
                };
                up_tx.send(ack).await.map_err(|_| SyncError::Closed)?;
            }
            Some(hub_message::Body::Hello(_)) | None => {
                return Err(SyncError::Protocol(
                    "unexpected message from the hub".into(),
                ))
            }
        }
    }
}

/// The next message from the hub, within `timeout` when one is given.
async fn next_message(
    inbound: &mut tonic::Streaming<hamgam_proto::sync::v1::HubMessage>,
    timeout: Option<Duration>,
) -> Result<Option<hamgam_proto::sync::v1::HubMessage>, SyncError> {
    match timeout {
        Some(limit) => Ok(tokio::time::timeout(limit, inbound.message())
            .await
            .map_err(|_| SyncError::Timeout(limit))??),
        None => Ok(inbound.message().await?),
    }
}
