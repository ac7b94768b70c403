//! A branch PC that was replaced or reset gets its store back from the hub: the dealer's own
//! records exactly as it sent them, each with the hub's current verdict, page by page over the
//! sync service's `Restore` RPC under the dealer's certificate. The next record made gets the
//! next seq, and the verdict feed goes on from where the hub stood when the restore began.
//!
//! Resumable: every page is one durable batch, and a restore that stopped (power cut, `kill
//! -9`) goes on from the last page when run again. A store mid-restore is marked, and the CLI
//! refuses to record or sync into it until the restore finished.
//!
//! The same RPC (verdicts only) serves the opposite case: a hub restored from a backup older
//! than the agent's verdict cursor. [`take_hub_verdicts`] takes the hub's verdicts as they are
//! and resets the cursor, so the agent receives every change again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::sync::client::restore_page;
use hamgam_gateway::sync::SyncError;
use hamgam_gateway::DealerId;
use hamgam_proto::record::v1::{Record, Verdict};

use crate::store::{AgentStore, StoreError};

/// How long one page may take.
const PAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a restore did not happen or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("the store at {path} already holds {records} record(s) of {dealer}; a restore would replace it. If this PC's store is really lost or wrong, run again with --force: the current store is kept as {backup}")]
    UsableStoreExists {
        path: String,
        dealer: String,
        records: u64,
        backup: String,
    },
    #[error("cannot keep a copy of the store at {path}: {source}")]
    Backup {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the hub sent seq {got} where seq {expected} was next; nothing after seq {stored} was written, run the restore again")]
    OutOfOrder {
        got: u64,
        expected: u64,
        stored: u64,
    },
    #[error("the hub sent seq {0} without the record's content")]
    Incomplete(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sync(#[from] SyncError),
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Records the store holds after the restore.
    pub records: u64,
    /// Records written by this run (fewer than `records` when it resumed an earlier one).
    pub written: u64,
    /// Where the store that was there before was kept (`--force`).
    pub kept_copy: Option<PathBuf>,
}

/// The name the store at `dir` is kept under by `--force`.
pub fn backup_path(dir: &Path, now_ms: i64) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    dir.with_file_name(format!("{name}.before-restore-{now_ms}"))
}

/// Rebuilds the store at `dir` for `dealer` from the hub at `endpoint`, `page` records a
/// call; `progress(done, total)` after each page. Refused when `dir` holds a store with
/// records, unless `force` (then that store is moved aside first, see [`backup_path`]).
pub async fn restore_from_hub(
    dir: &Path,
    dealer: DealerId,
    endpoint: &HubEndpoint,
    force: bool,
    page: u32,
    now_ms: i64,
    mut progress: impl FnMut(u64, u64),
) -> Result<RestoreReport, RestoreError> {
    let kept_copy = clear_store(dir, &dealer, force, now_ms, true)?;
    let store = AgentStore::open_waiting(dir, dealer, Duration::from_secs(10))?;
    let channel = endpoint.connect().await.map_err(SyncError::from)?;
    let mut written = 0;
    loop {
        let after = store.status()?.last_seq;
        let answer = page_paced(&channel, after, page, false).await?;
        // The hub's cursor before any verdict of the restore was read: the feed sends every
        // change after it.
        store.begin_restore(answer.verdict_cursor)?;
        let mut rows: Vec<(Record, Verdict)> = Vec::with_capacity(answer.records.len());
        for (expected, r) in (after + 1..).zip(answer.records) {
            if r.seq != expected {
                return Err(RestoreError::OutOfOrder {
                    got: r.seq,
                    expected,
                    stored: after,
                });
            }
            let record = r.record.ok_or(RestoreError::Incomplete(r.seq))?;
            rows.push((record, r.verdict.unwrap_or_default()));
        }
        let count = rows.len() as u64;
        store.restore_records_blocking(&rows)?;
        written += count;
        let done = after + count;
        progress(done, answer.stored_seq);
        if count == 0 || done >= answer.stored_seq {
            break;
        }
    }
    store.finish_restore()?;
    let records = store.status()?.last_seq;
    tracing::info!(dealer_id = %store.dealer(), records, written, "store restored from the hub");
    Ok(RestoreReport {
        records,
        written,
        kept_copy,
    })
}

/// One page, asked again with growing pauses while the hub paces this dealer's calls
/// (RESOURCE_EXHAUSTED) or is briefly unavailable: a restore of a large store is many calls.
async fn page_paced(
    channel: &tonic::transport::Channel,
    after: u64,
    limit: u32,
    verdicts_only: bool,
) -> Result<hamgam_proto::sync::v1::RestoreResponse, SyncError> {
    let mut pause = Duration::from_millis(100);
    let mut tries = 0;
    loop {
        match restore_page(channel.clone(), after, limit, verdicts_only, PAGE_TIMEOUT).await {
            Err(SyncError::Refused {
                code: tonic::Code::ResourceExhausted | tonic::Code::Unavailable,
                message,
            }) if tries < PACED_TRIES => {
                tracing::debug!("restore page after seq {after} deferred: {message}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
                tries += 1;
            }
            other => return other,
        }
    }
}

/// How often one page is asked again while the hub paces the dealer.
const PACED_TRIES: u32 = 30;

/// Makes the store folder `dir` ready to be restored into: a store holding records is refused
/// unless `force`, which keeps it aside first (see [`backup_path`]) and returns where. A store
/// mid-restore from the hub counts as empty when `resume_hub_restore` (the restore goes on).
/// Opens the store without waiting: a held lock is a running agent.
pub fn clear_store(
    dir: &Path,
    dealer: &DealerId,
    force: bool,
    now_ms: i64,
    resume_hub_restore: bool,
) -> Result<Option<PathBuf>, RestoreError> {
    // An agent stopped a moment ago may still hold the store's lock for a few milliseconds.
    let store = AgentStore::open_waiting(dir, dealer.clone(), std::time::Duration::from_secs(10))?;
    let held = store.status()?.last_seq;
    if held == 0 || (resume_hub_restore && store.is_restoring()?) {
        return Ok(None);
    }
    let backup = backup_path(dir, now_ms);
    if !force {
        return Err(RestoreError::UsableStoreExists {
            path: dir.display().to_string(),
            dealer: dealer.to_string(),
            records: held,
            backup: backup.display().to_string(),
        });
    }
    drop(store);
    move_aside(dir, &backup)?;
    Ok(Some(backup))
}

fn move_aside(dir: &Path, backup: &Path) -> Result<(), RestoreError> {
    std::fs::rename(dir, backup).map_err(|source| RestoreError::Backup {
        path: dir.display().to_string(),
        source,
    })?;
    std::fs::create_dir_all(dir).map_err(|source| RestoreError::Backup {
        path: dir.display().to_string(),
        source,
    })
}

/// Takes every verdict the hub holds for this dealer's records as it is, and the hub's
/// verdict cursor: after [`SyncError::HubFeedBehind`]. `hub_stored_seq` is the hub's highest
/// seq: verdicts of records beyond it are dropped here (they are sent again).
pub async fn take_hub_verdicts(
    store: &AgentStore,
    endpoint: &HubEndpoint,
    hub_stored_seq: u64,
) -> Result<(), SyncError> {
    let channel = endpoint.connect().await?;
    let mut after = 0;
    let mut cursor = None;
    loop {
        let answer = page_paced(&channel, after, 1_000, true).await?;
        let cursor = *cursor.get_or_insert(answer.verdict_cursor);
        let verdicts: Vec<Verdict> = answer
            .records
            .iter()
            .filter_map(|r| r.verdict.clone())
            .collect();
        let last = answer.records.last().map(|r| r.seq);
        let end = match last {
            Some(seq) if seq < answer.stored_seq.min(hub_stored_seq) => None,
            _ => Some((hub_stored_seq.min(answer.stored_seq), cursor)),
        };
        let writer = store.clone();
        let finished = end.is_some();
        tokio::task::spawn_blocking(move || writer.replace_verdicts_blocking(&verdicts, end))
            .await
            .map_err(|e| SyncError::Protocol(format!("verdict task failed: {e}")))?
            .map_err(|e| SyncError::Outbox(hamgam_gateway::sync::OutboxError(e.to_string())))?;
        if finished {
            tracing::warn!(dealer_id = %store.dealer(), cursor, "took the hub's verdicts again: its feed was behind this agent's cursor");
            return Ok(());
        }
        after = last.unwrap_or(after);
    }
}
