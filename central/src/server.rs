//! `central serve`: the hub's gRPC server, assembled in one place.
//!
//! [`run`] takes a bound listener and a shutdown future (tests bind `127.0.0.1:0`; the binary
//! passes SIGINT/SIGTERM). On shutdown it stops accepting, tells every sync session to end (their
//! agents reconnect later), waits up to the grace period for connections to drain, then stops the
//! flusher after a last flush so the store can be reopened.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hamgam_gateway::audit::SecurityAudit;
use hamgam_gateway::authz::{AccessPolicy, AuthorizeLayer};
use hamgam_gateway::limits::{DealerLimitLayer, DealerLimits};
use hamgam_gateway::server::{incoming, EdgeConfig};
use hamgam_gateway::sync::{DealerSyncService, SessionLimits};
use hamgam_gateway::Role;
use hamgam_proto::hq::v1::hq_service_server::HqServiceServer;
use hamgam_proto::hq::v1::vehicle_lookup_server::VehicleLookupServer;
use hamgam_proto::ops::v1::hub_admin_server::HubAdminServer;
use hamgam_proto::sync::v1::dealer_sync_server::DealerSyncServer;
use tokio::net::TcpListener;

use hamgam_proto::enrol::v1::enrolment_server::EnrolmentServer;

use crate::enrolment::{EnrolmentApi, EnrolmentSetup};
use crate::hq::{HqApi, VehicleLookupApi};
use crate::ingest::Hub;
use crate::ops::HubAdminApi;
use crate::store::HubStore;

/// Everything `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub edge: EdgeConfig,
    pub limits: SessionLimits,
    /// What one dealer may have open and start per second, over all its connections.
    pub dealer_limits: DealerLimits,
    /// HTTP/2 streams one connection may have open at once.
    pub max_streams_per_connection: u32,
    /// Largest gRPC message accepted, bytes.
    pub max_message_bytes: usize,
    /// How long shutdown waits for connections to drain.
    pub grace: Duration,
    /// Lifecycle thresholds for HQ's customer 360 and reports.
    pub lifecycle: crate::lifecycle::LifecycleConfig,
    /// The revocation list the edge's verifier checks, re-read while the hub runs.
    pub crl: Option<hamgam_gateway::revocation::CrlReload>,
    /// Where the sync sessions count (the caller registers them for its metrics endpoint:
    /// [`crate::metrics::render`]).
    pub sync_metrics: hamgam_gateway::metrics::SyncMetrics,
    /// The dealer registry file to re-read when it changes (`central dealers` edits it).
    pub registry_watch: Option<RegistryWatch>,
    /// The issuing CA for renewals on this listener (and enrolments on the enrolment
    /// listener, [`run_enrolment`]); None: agents cannot renew here.
    pub enrolment: Option<EnrolmentSetup>,
}

/// Where the registry file is and how often to look at it.
#[derive(Debug, Clone)]
pub struct RegistryWatch {
    pub path: std::path::PathBuf,
    pub every: Duration,
}

/// Re-reads the registry file whenever its modification time or size changes, and puts it in
/// force; a file that does not load keeps the previous registry (and says so). Until `stop`.
pub async fn watch_registry<S: HubStore>(
    hub: Arc<Hub<S>>,
    watch: RegistryWatch,
    stop: tokio_util::sync::CancellationToken,
) {
    let stamp = |path: &std::path::Path| {
        std::fs::metadata(path)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = stamp(&watch.path);
    let mut tick = tokio::time::interval(watch.every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = stamp(&watch.path);
        if now == seen {
            continue;
        }
        seen = now;
        match crate::rules::registry::DealerRegistry::load(&watch.path) {
            Ok(registry) => {
                tracing::info!(dealers = registry.len(), path = %watch.path.display(), "dealer registry reloaded");
                hub.replace_registry(registry);
            }
            Err(e) => tracing::warn!(
                "the dealer registry {} does not load, the previous one stays in force: {e}",
                watch.path.display()
            ),
        }
    }
}

/// Which role may call which service and method: the one place HQ's least privilege is
/// written. Everything else is refused (PERMISSION_DENIED naming the role needed, and a
/// `RoleRefused` security event).
///
/// HQ readers (`hq/reader/NAME`, and role-less `hq/NAME` certificates) query, export and
/// follow the change stream; reviewers (`hq/reviewer/NAME`) may also take decisions.
pub fn access_policy() -> AccessPolicy {
    const HQ: &[Role] = &[Role::HqReader, Role::HqReviewer];
    const REVIEWER: &[Role] = &[Role::HqReviewer];
    AccessPolicy::new()
        .allow("hamgam.sync.v1.DealerSync", &[Role::Dealer])
        // A dealer renews its own certificate over its mutual-TLS session. `Enroll` has no rule
        // here: it is served on the enrolment listener only.
        .allow_method("hamgam.enrol.v1.Enrolment/Renew", &[Role::Dealer])
        .allow("hamgam.hq.v1.HqService", HQ)
        // Decisions change verdicts dealers receive and the golden records: reviewers only.
        .allow_method("hamgam.hq.v1.HqService/Decide", REVIEWER)
        .allow_method("hamgam.hq.v1.HqService/ReviewFlag", REVIEWER)
        .allow(
            "hamgam.hq.v1.VehicleLookup",
            &[Role::Dealer, Role::HqReader, Role::HqReviewer],
        )
        // Backups of the running hub: ops certificates only.
        .allow("hamgam.ops.v1.HubAdmin", &[Role::Ops])
        // Standard tools (grpcurl, buf curl, grpcui, Postman) with an HQ or ops certificate.
        .allow(
            "grpc.health.v1.Health",
            &[Role::Dealer, Role::HqReader, Role::HqReviewer, Role::Ops],
        )
        .allow(
            "grpc.reflection.v1.ServerReflection",
            &[Role::HqReader, Role::HqReviewer, Role::Ops],
        )
        .allow(
            "grpc.reflection.v1alpha.ServerReflection",
            &[Role::HqReader, Role::HqReviewer, Role::Ops],
        )
}

/// Serves until `shutdown` resolves, then drains and closes the hub.
pub async fn run<S: HubStore>(
    listener: TcpListener,
    hub: impl Into<Arc<Hub<S>>>,
    options: ServeOptions,
    audit: SecurityAudit,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let hub: Arc<Hub<S>> = hub.into();
    let sessions_stop = tokio_util::sync::CancellationToken::new();
    let sync = DealerSyncService::new(hub.clone(), options.limits.clone(), audit.clone())
        .with_stop(sessions_stop.clone())
        .with_metrics(options.sync_metrics.clone());
    let sessions = sync.sessions();
    let hq = HqApi::new(
        hub.clone(),
        options.lifecycle.clone(),
        sessions_stop.clone(),
    );
    let lookup = VehicleLookupApi::new(hub.clone());
    let renewal = options.enrolment.clone().map(|setup| {
        EnrolmentServer::new(EnrolmentApi::new(
            hub.clone(),
            setup.signer,
            audit.clone(),
            setup.lockout,
        ))
    });
    let admin = HubAdminApi::new(hub.clone());
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<DealerSyncServer<DealerSyncService<Hub<S>>>>()
        .await;
    health_reporter
        .set_serving::<HqServiceServer<HqApi<S>>>()
        .await;
    health_reporter
        .set_serving::<VehicleLookupServer<VehicleLookupApi<S>>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hamgam_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| {
            tracing::error!("server reflection unavailable: {e}");
            e
        });
    let reflection_alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hamgam_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .ok();
    if let Some(watch) = options.registry_watch.clone() {
        tokio::spawn(watch_registry(hub.clone(), watch, sessions_stop.clone()));
    }
    if let Some(crl) = options.crl.clone() {
        tokio::spawn(hamgam_gateway::revocation::watch_crl(
            crl.verifier,
            crl.watch,
            sessions_stop.clone(),
        ));
    }
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let stopping = {
        let sessions_stop = sessions_stop.clone();
        async move {
            shutdown.await;
            sessions_stop.cancel();
            let _ = stopping_tx.send(());
        }
    };
    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, "hub serving");
    let mut server = Box::pin(
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(20)))
            .max_concurrent_streams(Some(options.max_streams_per_connection.max(1)))
            // Who may call what, before any service sees the request.
            .layer(AuthorizeLayer::new(access_policy(), audit.clone()))
            // Then: no dealer takes more than its share of calls.
            .layer(DealerLimitLayer::new(
                options.dealer_limits.clone(),
                audit.clone(),
            ))
            .add_service(
                DealerSyncServer::new(sync)
                    .max_decoding_message_size(options.max_message_bytes)
                    .max_encoding_message_size(options.max_message_bytes),
            )
            .add_service(
                HqServiceServer::new(hq)
                    .max_decoding_message_size(options.max_message_bytes)
                    .max_encoding_message_size(options.max_message_bytes),
            )
            .add_service(VehicleLookupServer::new(lookup))
            .add_optional_service(renewal)
            .add_service(
                HubAdminServer::new(admin).max_encoding_message_size(options.max_message_bytes),
            )
            .add_service(health)
            .add_optional_service(reflection.ok())
            .add_optional_service(reflection_alpha)
            .serve_with_incoming_shutdown(
                incoming(listener, options.edge.clone(), audit),
                stopping,
            ),
    );
    let result = tokio::select! {
        result = &mut server => result,
        _ = async {
            let _ = stopping_rx.await;
            tokio::time::sleep(options.grace).await;
        } => {
            tracing::warn!("connections did not drain within {:?}; closing them", options.grace);
            Ok(())
        }
    };
    // Dropping the server future closes connections that did not drain.
    drop(server);
    sessions.close();
    if tokio::time::timeout(options.grace, sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!("sync sessions did not end within {:?}", options.grace);
    }
    hub.close().await;
    tracing::info!("hub stopped");
    result
}

/// Serves enrolment (`Enroll` only) on its own listener, over TLS that authenticates the hub
/// only (`edge.tls` from `hamgam_gateway::enrolment_tls::server_config`), until `shutdown`.
pub async fn run_enrolment<S: HubStore>(
    listener: TcpListener,
    hub: Arc<Hub<S>>,
    setup: EnrolmentSetup,
    edge: EdgeConfig,
    audit: SecurityAudit,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tracing::info!(addr = ?listener.local_addr().ok(), "enrolment listener serving");
    let api = EnrolmentApi::new(hub, setup.signer, audit.clone(), setup.lockout);
    tonic::transport::Server::builder()
        // Enrolment is rare: a few calls at once are plenty, and a flood waits.
        .concurrency_limit_per_connection(4)
        .timeout(Duration::from_secs(30))
        .add_service(
            EnrolmentServer::new(api)
                .max_decoding_message_size(64 * 1024)
                .max_encoding_message_size(64 * 1024),
        )
        .serve_with_incoming_shutdown(
            hamgam_gateway::server::incoming_anonymous(listener, edge, audit),
            shutdown,
        )
        .await
}
