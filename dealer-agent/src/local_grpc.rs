//! The local capture API over gRPC (`hamgam.agent.v1.LocalCapture`, docs/local-api.md): what a
//! DMS vendor's integration or a script on the branch PC uses to put records into the running
//! agent's store, and to read the hub's verdicts back.
//!
//! It runs the same entry checks and store path as `dealer-agent record`, the staff screen and
//! the import: [`hamgam_proto::entry::check`] for the warnings, [`AgentStore::capture_many`]
//! for live records and [`AgentStore::capture_imported`] for imported history (one record per
//! source id), each one atomic and durable before the answer.
//!
//! Served on a loopback address only; every call (reflection included) must carry
//! `authorization: Bearer <token>`, the token in the agent's token file ([`load_or_make_token`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hamgam_proto::agent::v1 as api;
use hamgam_proto::agent::v1::local_capture_server::{LocalCapture, LocalCaptureServer};
use hamgam_proto::entry::Warning;
use hamgam_proto::record::v1::record::Payload;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::store::{AgentStore, ImportOutcome, Imported, StoreError};

/// Where the API listens unless `[local_api] grpc_listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50761";
/// The most submissions one `SubmitBatch` may carry.
pub const MAX_BATCH: usize = 10_000;
/// The longest `Verdicts` waits for a new verdict.
const MAX_WAIT_MS: u32 = 60_000;
const DEFAULT_VERDICTS: u32 = 1_000;
const MAX_VERDICTS: u32 = 10_000;

/// Why the API cannot start.
#[derive(Debug, thiserror::Error)]
pub enum LocalGrpcError {
    #[error("[local_api] grpc_listen = {0:?} is not a loopback address (127.0.0.1:PORT or [::1]:PORT): the local API serves this PC only")]
    NotLoopback(String),
    #[error("the local API token file {path}: {source}")]
    Token {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the local API token file {0} is empty: delete it and start the agent again to make a new one")]
    EmptyToken(String),
    #[error("server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving the local API: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Reads `grpc_listen`, which must be a loopback address (port 0: any free port).
pub fn loopback_addr(listen: &str) -> Result<SocketAddr, LocalGrpcError> {
    listen
        .parse::<SocketAddr>()
        .ok()
        .filter(|a| a.ip().is_loopback())
        .ok_or_else(|| LocalGrpcError::NotLoopback(listen.to_owned()))
}

/// The token in `path`, made there (32 random bytes as hex, owner-only) when the file does not
/// exist yet.
pub fn load_or_make_token(path: &Path) -> Result<String, LocalGrpcError> {
    let failed = |source| LocalGrpcError::Token {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_owned();
            if token.is_empty() {
                return Err(LocalGrpcError::EmptyToken(path.display().to_string()));
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            hamgam_gateway::files::write_private(path, format!("{token}\n").as_bytes())
                .map_err(failed)?;
            Ok(token)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled, then lets calls in progress
/// finish. Only callers presenting `token` get an answer.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: AgentStore,
    token: String,
    shutdown: CancellationToken,
) -> Result<(), LocalGrpcError> {
    // Both reflection versions: grpcurl asks v1, some clients (Python's grpcio-reflection) v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(hamgam_proto::FILE_DESCRIPTOR_SET)
            .with_service_name("hamgam.agent.v1.LocalCapture")
    };
    let (reflection_v1, reflection_v1alpha) =
        (reflection().build_v1()?, reflection().build_v1alpha()?);
    let expected = digest(&token);
    let check = move |request: Request<()>| authorize(&request, &expected).map(|()| request);
    tracing::info!(addr = ?listener.local_addr().ok(), "local capture API serving");
    tonic::transport::Server::builder()
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_service(LocalCaptureServer::new(LocalCaptureApi { store }))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await?;
    Ok(())
}

fn digest(token: &str) -> Arc<[u8]> {
    Arc::from(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref())
}

/// The caller's bearer token must be the agent's (compared by digest, so the time taken says
/// nothing about the token).
fn authorize(request: &Request<()>, expected: &[u8]) -> Result<(), Status> {
    let Some(header) = request.metadata().get("authorization") else {
        return Err(Status::unauthenticated(
            "no `authorization: Bearer <token>` header: send the token from the agent's local API token file (docs/local-api.md)",
        ));
    };
    let presented = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    if digest(presented).as_ref() != expected {
        return Err(Status::unauthenticated(
            "the bearer token is not this agent's: read it again from the agent's local API token file (it changes when the file is deleted)",
        ));
    }
    Ok(())
}

/// The service: a handle on the store.
#[derive(Clone)]
pub struct LocalCaptureApi {
    store: AgentStore,
}

impl LocalCaptureApi {
    pub fn new(store: AgentStore) -> Self {
        LocalCaptureApi { store }
    }

    /// Checks and saves `submissions` as one atomic unit.
    async fn save(
        &self,
        submissions: Vec<api::Submission>,
    ) -> Result<Vec<api::SubmitResult>, Status> {
        if submissions.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "{} submissions in one batch: at most {MAX_BATCH}; send them in several batches",
                submissions.len()
            )));
        }
        let with_origin = submissions.iter().filter(|s| s.origin.is_some()).count();
        if with_origin != 0 && with_origin != submissions.len() {
            return Err(Status::invalid_argument(format!(
                "{with_origin} of {} submissions carry an origin: in one batch either every submission is imported history (with origin) or none is; send them as two batches",
                submissions.len()
            )));
        }
        let mut problems = Vec::new();
        let mut entries = Vec::with_capacity(submissions.len());
        for (i, s) in submissions.into_iter().enumerate() {
            if s.staff_id.trim().is_empty() {
                problems.push(format!("submissions[{i}].staff_id is empty: give the staff code of whoever made the record"));
            }
            if let Some(origin) = &s.origin {
                for (field, value) in [
                    ("source_system", &origin.source_system),
                    ("source_record_id", &origin.source_record_id),
                ] {
                    if value.trim().is_empty() {
                        problems.push(format!("submissions[{i}].origin.{field} is empty: imported history needs its source system and the source's own record id (that is what makes sending it again safe)"));
                    }
                }
                if origin.created_at_ms < 0 {
                    problems.push(format!("submissions[{i}].origin.created_at_ms is negative: give milliseconds since 1970 (UTC), or 0 when the source does not say"));
                }
            }
            match s.payload.map(payload) {
                Some(p) => entries.push((s.staff_id, p, s.origin)),
                None => problems.push(format!("submissions[{i}] has no record: set one of customer, retail_delivery, repair_order, lead, complaint, survey, odometer_replacement, vehicle_status, correction")),
            }
        }
        if !problems.is_empty() {
            return Err(Status::invalid_argument(format!(
                "nothing saved: {}",
                problems.join("; ")
            )));
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || save_blocking(&store, entries))
            .await
            .map_err(|e| Status::internal(format!("the capture task failed: {e}")))?
    }
}

/// Saves what [`LocalCaptureApi::save`] checked: one atomic store call.
fn save_blocking(
    store: &AgentStore,
    entries: Vec<(String, Payload, Option<hamgam_proto::record::v1::Origin>)>,
) -> Result<Vec<api::SubmitResult>, Status> {
    let now = store.now_ms();
    let warnings: Vec<Vec<api::EntryWarning>> = entries
        .iter()
        .map(|(_, p, origin)| {
            // Made when the source says (imported history), else now, as the hub reads it.
            let made = origin
                .as_ref()
                .map(|o| o.created_at_ms)
                .filter(|t| *t > 0)
                .unwrap_or(now);
            hamgam_proto::entry::check(p, now, made)
                .into_iter()
                .map(entry_warning)
                .collect()
        })
        .collect();
    let imported = entries.first().is_some_and(|(_, _, o)| o.is_some());
    let results: Vec<api::SubmitResult> = if imported {
        let entries = entries
            .into_iter()
            .map(|(staff_id, payload, origin)| Imported {
                staff_id,
                payload,
                origin: origin.unwrap_or_default(),
            })
            .collect();
        let outcomes = store.capture_imported(entries).map_err(refused)?;
        outcomes
            .into_iter()
            .map(|o| imported_result(store, o))
            .collect::<Result<_, _>>()?
    } else {
        let records = entries.into_iter().map(|(s, p, _)| (s, p)).collect();
        store
            .capture_many(records)
            .map_err(refused)?
            .into_iter()
            .map(|saved| api::SubmitResult {
                outcome: api::SubmitOutcome::Saved as i32,
                seq: saved.seq,
                record_id: saved.record_id,
                ..Default::default()
            })
            .collect()
    };
    Ok(results
        .into_iter()
        .zip(warnings)
        .map(|(mut r, w)| {
            r.warnings = w;
            r
        })
        .collect())
}

fn imported_result(
    store: &AgentStore,
    outcome: ImportOutcome,
) -> Result<api::SubmitResult, Status> {
    Ok(match outcome {
        ImportOutcome::Saved(saved) => api::SubmitResult {
            outcome: api::SubmitOutcome::Saved as i32,
            seq: saved.seq,
            record_id: saved.record_id,
            ..Default::default()
        },
        ImportOutcome::Unchanged { seq } => api::SubmitResult {
            outcome: api::SubmitOutcome::Unchanged as i32,
            seq,
            record_id: store
                .record(seq)
                .map_err(refused)?
                .map(|r| r.record_id)
                .unwrap_or_default(),
            ..Default::default()
        },
        ImportOutcome::Corrected {
            original_seq,
            saved,
        } => api::SubmitResult {
            outcome: api::SubmitOutcome::Corrected as i32,
            seq: saved.seq,
            record_id: saved.record_id,
            corrected_seq: original_seq,
            ..Default::default()
        },
    })
}

/// A store refusal as the caller should see it: their input, or the PC.
fn refused(e: StoreError) -> Status {
    match e {
        StoreError::OverBound { .. } | StoreError::ImportRefused(_) => {
            Status::invalid_argument(e.to_string())
        }
        StoreError::DiskFull => Status::resource_exhausted(e.to_string()),
        other => Status::unavailable(other.to_string()),
    }
}

fn entry_warning(w: Warning) -> api::EntryWarning {
    api::EntryWarning {
        reason_en: w.reason_en(),
        reason_fa: w.reason_fa(),
        reason_code: w.reason.code.clone(),
        reason_args: w.reason.rendered_args().into_iter().collect(),
        rule_id: w.rule_id,
        field: w.field,
    }
}

/// A submission's payload as the record's.
fn payload(p: api::submission::Payload) -> Payload {
    use api::submission::Payload as P;
    match p {
        P::Customer(v) => Payload::Customer(v),
        P::RetailDelivery(v) => Payload::RetailDelivery(v),
        P::RepairOrder(v) => Payload::RepairOrder(v),
        P::Lead(v) => Payload::Lead(v),
        P::Complaint(v) => Payload::Complaint(v),
        P::Survey(v) => Payload::Survey(v),
        P::OdometerReplacement(v) => Payload::OdometerReplacement(v),
        P::VehicleStatus(v) => Payload::VehicleStatus(v),
        P::Correction(v) => Payload::Correction(v),
    }
}

#[tonic::async_trait]
impl LocalCapture for LocalCaptureApi {
    async fn submit(
        &self,
        request: Request<api::SubmitRequest>,
    ) -> Result<Response<api::SubmitResponse>, Status> {
        let submission = request
            .into_inner()
            .submission
            .ok_or_else(|| Status::invalid_argument("submission is missing: nothing to save"))?;
        let result = self.save(vec![submission]).await?.into_iter().next();
        Ok(Response::new(api::SubmitResponse { result }))
    }

    async fn submit_batch(
        &self,
        request: Request<api::SubmitBatchRequest>,
    ) -> Result<Response<api::SubmitBatchResponse>, Status> {
        let results = self.save(request.into_inner().submissions).await?;
        Ok(Response::new(api::SubmitBatchResponse { results }))
    }

    async fn verdicts(
        &self,
        request: Request<api::VerdictsRequest>,
    ) -> Result<Response<api::VerdictsResponse>, Status> {
        let request = request.into_inner();
        let limit = match request.limit {
            0 => DEFAULT_VERDICTS,
            n => n.min(MAX_VERDICTS),
        } as usize;
        let wait = Duration::from_millis(u64::from(request.wait_ms.min(MAX_WAIT_MS)));
        // Subscribed before the first read (a new receiver has seen the current position), so a
        // verdict stored between that read and the wait still wakes the wait.
        let mut arrivals = self.store.watch_verdicts();
        let read = |store: AgentStore| async move {
            tokio::task::spawn_blocking(move || store.verdicts_since(request.after_cursor, limit))
                .await
                .map_err(|e| Status::internal(format!("the verdict read failed: {e}")))?
                .map_err(refused)
        };
        let (mut verdicts, mut cursor) = read(self.store.clone()).await?;
        if verdicts.is_empty() && !wait.is_zero() {
            let deadline = tokio::time::Instant::now() + wait;
            while verdicts.is_empty() {
                match tokio::time::timeout_at(deadline, arrivals.changed()).await {
                    Ok(Ok(())) => (verdicts, cursor) = read(self.store.clone()).await?,
                    Ok(Err(_)) | Err(_) => break,
                }
            }
        }
        Ok(Response::new(api::VerdictsResponse { verdicts, cursor }))
    }

    async fn status(
        &self,
        _request: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        let store = self.store.clone();
        let (status, verdict_cursor) = tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((store.status()?, store.verdict_cursor()?))
        })
        .await
        .map_err(|e| Status::internal(format!("the status read failed: {e}")))?
        .map_err(refused)?;
        Ok(Response::new(api::StatusResponse {
            pending: status.pending(),
            dealer_id: status.dealer_id,
            last_seq: status.last_seq,
            acked_seq: status.acked_seq,
            last_sync_ms: status.last_sync_ms.unwrap_or_default(),
            last_error: status.last_error.unwrap_or_default(),
            verdict_cursor,
        }))
    }
}

/// A client of the running agent's local capture API, for `dealer-agent import` while
/// `dealer-agent run` holds the store: each chunk is one `SubmitBatch`. Blocking (it runs its
/// own small runtime), as the import is.
pub struct Client {
    runtime: tokio::runtime::Runtime,
    capture: api::local_capture_client::LocalCaptureClient<tonic::transport::Channel>,
    authorization: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
}

impl Client {
    /// Connects to the agent listening at `addr` with the token in `token_file`.
    pub fn connect(addr: SocketAddr, token_file: &Path) -> Result<Client, String> {
        let token = std::fs::read_to_string(token_file).map_err(|e| {
            format!(
                "cannot read the local API token file {}: {e} (run the import as the agent's user)",
                token_file.display()
            )
        })?;
        let authorization = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| format!("the token in {} is not text", token_file.display()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start a runtime: {e}"))?;
        let capture = runtime
            .block_on(
                tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .map_err(|e| e.to_string())?
                    .connect_timeout(Duration::from_secs(10))
                    .connect(),
            )
            .map(api::local_capture_client::LocalCaptureClient::new)
            .map(|c| {
                c.max_decoding_message_size(64 << 20)
                    .max_encoding_message_size(64 << 20)
            })
            .map_err(|e| {
                format!("the running agent's local capture API at {addr} does not answer: {e}")
            })?;
        Ok(Client {
            runtime,
            capture,
            authorization,
        })
    }
}

impl crate::import::ImportTarget for Client {
    fn save(&self, chunk: Vec<Imported>) -> Result<Vec<ImportOutcome>, crate::import::ImportError> {
        let submissions = chunk
            .into_iter()
            .map(|i| api::Submission {
                staff_id: i.staff_id,
                origin: Some(i.origin),
                payload: Some(submission_payload(i.payload)),
            })
            .collect();
        let mut request = Request::new(api::SubmitBatchRequest { submissions });
        request
            .metadata_mut()
            .insert("authorization", self.authorization.clone());
        let mut capture = self.capture.clone();
        let reply = self
            .runtime
            .block_on(capture.submit_batch(request))
            .map_err(|s| crate::import::ImportError::RunningAgent(s.message().to_owned()))?;
        Ok(reply
            .into_inner()
            .results
            .into_iter()
            .map(|r| {
                let saved = crate::store::Saved {
                    seq: r.seq,
                    record_id: r.record_id,
                };
                match api::SubmitOutcome::try_from(r.outcome) {
                    Ok(api::SubmitOutcome::Unchanged) => ImportOutcome::Unchanged { seq: r.seq },
                    Ok(api::SubmitOutcome::Corrected) => ImportOutcome::Corrected {
                        original_seq: r.corrected_seq,
                        saved,
                    },
                    _ => ImportOutcome::Saved(saved),
                }
            })
            .collect())
    }
}

/// A record's payload as a submission's.
fn submission_payload(p: Payload) -> api::submission::Payload {
    use api::submission::Payload as P;
    match p {
        Payload::Customer(v) => P::Customer(v),
        Payload::RetailDelivery(v) => P::RetailDelivery(v),
        Payload::RepairOrder(v) => P::RepairOrder(v),
        Payload::Lead(v) => P::Lead(v),
        Payload::Complaint(v) => P::Complaint(v),
        Payload::Survey(v) => P::Survey(v),
        Payload::OdometerReplacement(v) => P::OdometerReplacement(v),
        Payload::VehicleStatus(v) => P::VehicleStatus(v),
        Payload::Correction(v) => P::Correction(v),
    }
}
