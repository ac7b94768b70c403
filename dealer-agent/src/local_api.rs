//! The running agent's local API: while `dealer-agent run` holds the store (sled allows one
//! process), `record`, `status` and `verdicts` from other processes on the same PC go through a
//! Unix socket in the data folder (`agent.sock`, mode 0600) to the running agent, which does
//! exactly what the command would have done on the store itself.
//!
//! One JSON request per line, one JSON response per line. Capture is durable before the answer,
//! as always.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hamgam_proto::RecordKind;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::capture;
use crate::store::{AgentStore, SyncStatus};

/// The socket of the agent whose data folder is `data_dir`.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("agent.sock")
}

/// What another process asks the running agent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum LocalRequest {
    Capture {
        staff_id: String,
        kind: String,
        /// The payload in proto3 JSON.
        payload: serde_json::Value,
    },
    Status,
    Verdicts,
    /// One of the dealer's records, by seq or record id.
    Record {
        reference: String,
    },
}

/// The running agent's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum LocalResponse {
    Saved {
        seq: u64,
        record_id: String,
        /// What the shared entry checks found (the record is saved all the same).
        #[serde(default)]
        warnings: Vec<hamgam_proto::entry::Warning>,
    },
    Status {
        status: SyncStatus,
    },
    /// Verdicts in proto3 JSON.
    Verdicts {
        verdicts: Vec<serde_json::Value>,
    },
    /// A record in proto3 JSON.
    Record {
        record: serde_json::Value,
    },
    Error {
        message: String,
    },
}

/// Why a local request failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalApiError {
    #[error("the store is in use but no running agent answers at {path}: {source}")]
    NotRunning {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the running agent's answer could not be read: {0}")]
    Protocol(String),
    #[error("{0}")]
    Refused(String),
}

/// Binds the socket at `path` (only the agent holding the store should: a socket left by a
/// crashed agent is replaced), readable by this user only. Call inside a tokio runtime.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    // The trust boundary: whoever can reach the socket can record as any staff code. Its
    // owner and group (the agent's, `hamgam` under the systemd unit) may.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
    Ok(listener)
}

/// The local API socket's mode: the agent's user and group.
pub const SOCKET_MODE: u32 = 0o660;

/// How long a stopping agent waits for the answers it is still writing.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// Serves the local API on a bound `listener` until `shutdown`, then removes the socket at `path`.
/// A request already being handled when `shutdown` comes still gets its answer (a capture that
/// failed because the disk filled up tells the person so before the agent stops).
pub async fn serve(
    store: AgentStore,
    listener: UnixListener,
    path: PathBuf,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(socket = %path.display(), "local API listening");
    let connections = TaskTracker::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = shutdown.cancelled() => break,
        };
        let store = store.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            if let Err(e) = answer(store, stream, shutdown).await {
                tracing::warn!("local API connection failed: {e}");
            }
        });
    }
    let _ = std::fs::remove_file(&path);
    connections.close();
    if tokio::time::timeout(ANSWER_GRACE, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("stopping with local API answers unwritten (a client did not read them)");
    }
    Ok(())
}

async fn answer(
    store: AgentStore,
    stream: UnixStream,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    loop {
        let line = tokio::select! {
            line = lines.next_line() => line?,
            _ = shutdown.cancelled() => None,
        };
        let Some(line) = line else {
            break;
        };
        let response = match serde_json::from_str::<LocalRequest>(&line) {
            Ok(request) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || handle(&store, request))
                    .await
                    .unwrap_or_else(|e| LocalResponse::Error {
                        message: format!("the request failed: {e}"),
                    })
            }
            Err(e) => LocalResponse::Error {
                message: format!("not a request: {e}"),
            },
        };
        let mut text = serde_json::to_string(&response).unwrap_or_else(|e| {
            format!(r#"{{"result":"error","message":"cannot encode the answer: {e}"}}"#)
        });
        text.push('\n');
        write.write_all(text.as_bytes()).await?;
    }
    Ok(())
}

/// Does what the command would do on the store. Blocking.
pub fn handle(store: &AgentStore, request: LocalRequest) -> LocalResponse {
    let error = |message: String| LocalResponse::Error { message };
    match request {
        LocalRequest::Capture {
            staff_id,
            kind,
            payload,
        } => {
            let kind: RecordKind = match kind.parse() {
                Ok(k) => k,
                Err(e) => return error(e),
            };
            let payload = match capture::payload_from_json(kind, payload) {
                Ok(p) => p,
                Err(e) => return error(e.to_string()),
            };
            match capture::save_checked(store, &staff_id, payload) {
                Ok((saved, warnings)) => LocalResponse::Saved {
                    seq: saved.seq,
                    record_id: saved.record_id,
                    warnings,
                },
                Err(e) => error(e.staff_message()),
            }
        }
        LocalRequest::Status => match store.status() {
            Ok(status) => LocalResponse::Status { status },
            Err(e) => error(e.to_string()),
        },
        LocalRequest::Record { reference } => match find_record(store, &reference) {
            Ok(record) => match serde_json::to_value(&record) {
                Ok(record) => LocalResponse::Record { record },
                Err(e) => error(format!("cannot encode the record: {e}")),
            },
            Err(e) => error(e.to_string()),
        },
        LocalRequest::Verdicts => match store.verdicts() {
            Ok(verdicts) => LocalResponse::Verdicts {
                verdicts: verdicts
                    .iter()
                    .filter_map(|v| serde_json::to_value(v).ok())
                    .collect(),
            },
            Err(e) => error(e.to_string()),
        },
    }
}

/// One of the dealer's records, by seq (`42`) or record id.
pub fn find_record(
    store: &AgentStore,
    reference: &str,
) -> Result<hamgam_proto::record::v1::Record, LocalApiError> {
    let missing = || {
        LocalApiError::Refused(format!("this dealer has no record `{reference}`; give a seq or a record id as `verdicts` shows them"))
    };
    let failed = |e: crate::store::StoreError| LocalApiError::Refused(e.to_string());
    if let Ok(seq) = reference.parse::<u64>() {
        return store.record(seq).map_err(failed)?.ok_or_else(missing);
    }
    let mut after = 0;
    loop {
        let page = store.records_after_blocking(after, 1000).map_err(failed)?;
        let Some(last) = page.last().map(|r| r.seq) else {
            return Err(missing());
        };
        if let Some(found) = page.into_iter().find(|r| r.record_id == reference) {
            return Ok(found);
        }
        after = last;
    }
}

/// Sends one request to the agent running on `data_dir`.
pub async fn request(
    data_dir: &Path,
    request: &LocalRequest,
) -> Result<LocalResponse, LocalApiError> {
    let path = socket_path(data_dir);
    let stream = UnixStream::connect(&path)
        .await
        .map_err(|source| LocalApiError::NotRunning {
            path: path.display().to_string(),
            source,
        })?;
    let (read, mut write) = stream.into_split();
    let mut text =
        serde_json::to_string(request).map_err(|e| LocalApiError::Protocol(e.to_string()))?;
    text.push('\n');
    write
        .write_all(text.as_bytes())
        .await
        .map_err(|e| LocalApiError::Protocol(e.to_string()))?;
    let line = BufReader::new(read)
        .lines()
        .next_line()
        .await
        .map_err(|e| LocalApiError::Protocol(e.to_string()))?
        .ok_or_else(|| LocalApiError::Protocol("the running agent closed the connection".into()))?;
    match serde_json::from_str(&line).map_err(|e| LocalApiError::Protocol(e.to_string()))? {
        LocalResponse::Error { message } => Err(LocalApiError::Refused(message)),
        response => Ok(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamgam_gateway::DealerId;

    #[tokio::test]
    async fn a_running_agent_records_and_reports_for_other_processes() {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(dir.path(), DealerId::new("D-9").unwrap()).unwrap();
        // The store is held: another open is told so, which is how the CLI picks this API.
        let locked = AgentStore::open(dir.path(), DealerId::new("D-9").unwrap());
        assert!(
            matches!(locked, Err(crate::store::StoreError::Locked { .. })),
            "{:?}",
            locked.err()
        );

        let shutdown = CancellationToken::new();
        let path = socket_path(dir.path());
        let listener = bind(&path).unwrap();
        let server = tokio::spawn(serve(store.clone(), listener, path, shutdown.clone()));
        let capture = LocalRequest::Capture {
            staff_id: "S-1".into(),
            kind: "lead".into(),
            payload: serde_json::json!({"customerRef": "C-1", "contactedAtMs": "1700000000000"}),
        };
        let saved = request(dir.path(), &capture).await.unwrap();
        assert!(
            matches!(saved, LocalResponse::Saved { seq: 1, .. }),
            "{saved:?}"
        );

        let bad = LocalRequest::Capture {
            staff_id: "S-1".into(),
            kind: "invoice".into(),
            payload: serde_json::json!({}),
        };
        let err = request(dir.path(), &bad).await.unwrap_err();
        assert!(err.to_string().contains("repair-order"), "{err}");

        match request(dir.path(), &LocalRequest::Status).await.unwrap() {
            LocalResponse::Status { status } => {
                assert_eq!((status.last_seq, status.pending()), (1, 1))
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            request(dir.path(), &LocalRequest::Verdicts).await.unwrap(),
            LocalResponse::Verdicts { verdicts } if verdicts.is_empty()
        ));
        shutdown.cancel();
        server.await.unwrap().unwrap();
        assert!(
            !socket_path(dir.path()).exists(),
            "the socket is removed on shutdown"
        );
    }
}
