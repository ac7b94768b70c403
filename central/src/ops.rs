//! `hamgam.ops.v1.HubAdmin`: what ops ask of a running hub, over the same mutual-TLS edge as
//! everything else; ops certificates only (`server::access_policy`). Today: `Backup`, which
//! takes the point under the judging lock ([`crate::backup::write::capture`]), waits until
//! what it covers is durable, and streams the backup's files while batches go on. One backup
//! at a time.

use std::sync::Arc;
use std::time::Duration;

use hamgam_gateway::server::PeerInfo;
use hamgam_proto::ops::v1 as ops;
use hamgam_proto::ops::v1::hub_admin_server::HubAdmin;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::backup::write::{capture, write_backup, DigestAt, Sink};
use crate::backup::BackupError;
use crate::ingest::Hub;
use crate::store::{HubStore, StoreError};

/// How long a backup may hold batches back for the state digest, unless the request says.
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_secs(10);

/// The ops service over a hub.
pub struct HubAdminApi<S: HubStore> {
    hub: Arc<Hub<S>>,
    /// One backup at a time: a second would only double the reads.
    backups: Arc<Semaphore>,
}

impl<S: HubStore> HubAdminApi<S> {
    pub fn new(hub: Arc<Hub<S>>) -> Self {
        HubAdminApi {
            hub,
            backups: Arc::new(Semaphore::new(1)),
        }
    }
}

fn unavailable(e: StoreError) -> Status {
    tracing::error!("backup failed: {e}");
    Status::unavailable(format!("hub storage unavailable: {e}"))
}

/// Sends a backup's chunks down the RPC's stream (waiting while the client is slow).
struct ChannelSink {
    tx: mpsc::Sender<Result<ops::BackupChunk, Status>>,
}

impl Sink for ChannelSink {
    fn chunk(&mut self, file: &str, data: &[u8], last: bool) -> Result<(), BackupError> {
        let chunk = ops::BackupChunk {
            body: Some(ops::backup_chunk::Body::File(ops::FileChunk {
                name: file.to_owned(),
                data: data.to_vec(),
                last,
            })),
        };
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| BackupError::Stopped("the client went away".into()))
    }
}

#[tonic::async_trait]
impl<S: HubStore> HubAdmin for HubAdminApi<S> {
    type BackupStream = ReceiverStream<Result<ops::BackupChunk, Status>>;

    async fn backup(
        &self,
        request: Request<ops::BackupRequest>,
    ) -> Result<Response<Self::BackupStream>, Status> {
        let who = PeerInfo::of(&request)
            .map(|p| p.identity.to_string())
            .unwrap_or_else(|_| "unknown certificate".into());
        let asked = request.into_inner();
        let permit = self.backups.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(
                "a backup of this hub is already running: wait for it to end",
            )
        })?;
        let digest_at = match (asked.without_digest, asked.max_pause_ms) {
            (true, _) => DigestAt::Skip,
            (false, 0) => DigestAt::Within(DEFAULT_MAX_PAUSE),
            (false, ms) => DigestAt::Within(Duration::from_millis(u64::from(ms))),
        };
        let captured = self
            .hub
            .with_units_held(move |store| capture(store, digest_at))
            .await
            .map_err(unavailable)?
            .map_err(unavailable)?;
        // Only what the hub holds durably goes into the backup.
        self.hub.durable().await.map_err(unavailable)?;
        let store = self.hub.store().map_err(unavailable)?;
        let taken_at_ms = self.hub.clock().now_ms();
        tracing::info!(
            by = %who,
            dealers = captured.point.dealers.len(),
            last_decision = captured.point.last_decision,
            pause_ms = captured.pause_ms,
            live_digest = captured.digest.is_some(),
            "backup point taken; batches go on while the logs are streamed"
        );
        let (tx, rx) = mpsc::channel(4);
        let started = ops::BackupStarted {
            records: captured.point.dealers.values().sum(),
            decisions: captured.point.last_decision,
            pause_ms: captured.pause_ms,
            live_digest: captured.digest.is_some(),
        };
        tx.send(Ok(ops::BackupChunk {
            body: Some(ops::backup_chunk::Body::Started(started)),
        }))
        .await
        .map_err(|_| Status::cancelled("the client went away"))?;
        tokio::task::spawn_blocking(move || {
            let _one_at_a_time = permit;
            let mut sink = ChannelSink { tx: tx.clone() };
            match write_backup(&*store, captured, taken_at_ms, &mut sink, &mut |_| {}) {
                Ok(m) => tracing::info!(
                    by = %who,
                    records = m.records,
                    decisions = m.decisions,
                    access_entries = m.access_entries,
                    "backup streamed"
                ),
                Err(e) => {
                    tracing::warn!(by = %who, "backup stopped: {e}");
                    let _ = tx.blocking_send(Err(Status::unavailable(format!(
                        "the backup stopped: {e}"
                    ))));
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}
