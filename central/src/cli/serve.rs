//! `central serve`: the hub's config, TLS material, store and listeners put together.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hamgam_central::config::HubConfig;
use hamgam_central::enrolment::{EnrolmentSetup, Lockout, Signer};
use hamgam_central::server::{self, ServeOptions};
use hamgam_central::{Hub, SledStore};
use hamgam_gateway::audit::SecurityAudit;
use hamgam_gateway::metrics::SyncMetrics;
use hamgam_gateway::pki::CertificateAuthority;
use hamgam_gateway::server::EdgeConfig;
use hamgam_gateway::sync::SessionLimits;
use hamgam_gateway::tls::{self, TlsFiles};

use super::admin::registry_of;

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// TOML config file; flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port; see --addr-file).
    #[arg(long)]
    listen: Option<String>,
    /// Folder of the hub's sled store.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long)]
    trust_domain: Option<String>,
    /// CA certificate (PEM) client certificates must chain to.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The hub's certificate (PEM).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// The hub's private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// The CA's certificate revocation list (PEM, from `central pki revoke`); the hub re-reads
    /// it when it changes (every `crl_reload_secs`, default 30) without a restart.
    #[arg(long)]
    crl: Option<PathBuf>,
    /// Write the bound address here once listening (for scripts using port 0).
    #[arg(long)]
    addr_file: Option<PathBuf>,
    /// Serve Prometheus metrics on this address (default: the config's `[metrics] listen`;
    /// off when neither is set). See docs/metrics.md.
    #[arg(long)]
    metrics_listen: Option<String>,
    /// HQ's dealer registry (JSON: company IDs, staff, suspensions), for S03, C05, Q01 and
    /// suspended dealers.
    #[arg(long)]
    registry: Option<PathBuf>,
    /// Serve enrolment (`dealer-agent enroll`) on this address (default: the config's
    /// `[enrolment] listen`; off when neither is set). Needs `[enrolment] issuing_cert` and
    /// `issuing_key`.
    #[arg(long)]
    enrolment_listen: Option<String>,
}

/// Runs the hub until SIGINT or SIGTERM.
pub(crate) async fn run(args: ServeArgs) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => HubConfig::from_file(path)?,
        None => HubConfig::default(),
    };
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if let Some(v) = args.data_dir {
        config.data_dir = v;
    }
    if let Some(v) = args.trust_domain {
        config.trust_domain = v;
    }
    if let Some(v) = args.ca {
        config.tls.ca = v;
    }
    if let Some(v) = args.registry {
        config.registry = Some(v);
    }
    if let Some(v) = args.cert {
        config.tls.cert = v;
    }
    if let Some(v) = args.key {
        config.tls.key = v;
    }
    if let Some(v) = args.crl {
        config.tls.crl = Some(v);
    }
    if let Some(v) = args.enrolment_listen {
        config.enrolment.listen = Some(v);
    }
    let material = TlsFiles {
        ca: config.tls.ca.clone(),
        cert: config.tls.cert.clone(),
        key: config.tls.key.clone(),
    }
    .load()?;
    let ((tls, server_cert), crl) = match &config.tls.crl {
        None => (
            tls::server_config_reloadable(&material, tls::client_verifier(&material.ca_pem)?)?,
            None,
        ),
        Some(path) => {
            use hamgam_gateway::revocation::{CrlReload, CrlWatch, RevocableVerifier};
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the revocation list {}", path.display()))?;
            let verifier = RevocableVerifier::new(&material.ca_pem, Some(&pem))
                .with_context(|| format!("revocation list {}", path.display()))?;
            let tls = tls::server_config_reloadable(&material, verifier.clone())?;
            let watch = CrlWatch {
                path: path.clone(),
                every: Duration::from_secs(config.tls.crl_reload_secs.max(1)),
            };
            (tls, Some(CrlReload { verifier, watch }))
        }
    };
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data folder {}",
            config.data_dir.display()
        )
    })?;
    let store = SledStore::open(&config.data_dir, config.storage.cache_mb * 1024 * 1024)?;
    let registry = registry_of(&config)?;
    config.rules.check().map_err(anyhow::Error::msg)?;
    config.lifecycle.check().map_err(anyhow::Error::msg)?;
    let hub = Hub::with_rules(std::sync::Arc::new(store), config.rules.clone(), registry)
        .with_judging_slice(std::time::Duration::from_millis(
            config.limits.judging_slice_ms,
        ));
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr()?;
    if let Some(path) = &args.addr_file {
        // Written whole under a temporary name, then renamed, so a script never reads half.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bound.to_string())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    tracing::info!(%bound, data_dir = %config.data_dir.display(), "central listening");
    let options = ServeOptions {
        edge: EdgeConfig::new(tls, config.trust_domain.clone()),
        limits: SessionLimits {
            max_batch_records: config.limits.max_batch_records,
            max_batches_in_flight: config.limits.max_batches_in_flight,
            hello_timeout: Duration::from_secs(config.limits.hello_timeout_secs),
            idle_timeout: Duration::from_secs(config.limits.idle_timeout_secs),
            dealer_records_per_sec: config.limits.dealer_records_per_sec,
        },
        dealer_limits: config.limits.dealer_limits(),
        max_streams_per_connection: config.limits.max_streams_per_connection,
        max_message_bytes: config.limits.max_message_bytes,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        lifecycle: config.lifecycle.clone(),
        crl,
        sync_metrics: SyncMetrics::default(),
        registry_watch: config
            .registry
            .clone()
            .map(|path| hamgam_central::server::RegistryWatch {
                path,
                every: Duration::from_secs(config.registry_reload_secs.max(1)),
            }),
        enrolment: enrolment_setup(&config)?,
    };
    let hub = std::sync::Arc::new(hub);
    let audit = SecurityAudit::new();
    let stop = tokio_util::sync::CancellationToken::new();
    let metrics = match args.metrics_listen.or(config.metrics.listen.clone()) {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?;
            let render = hamgam_central::metrics::render(
                hub.clone(),
                options.sync_metrics.clone(),
                audit.clone(),
                config.data_dir.clone(),
            );
            Some(tokio::spawn(hamgam_gateway::metrics::serve(
                listener,
                render,
                stop.clone().cancelled_owned(),
            )))
        }
        None => None,
    };
    // The hub's own certificate: reloaded on SIGHUP and when its files change.
    tokio::spawn(hamgam_gateway::server_cert::watch_server_cert(
        server_cert,
        hamgam_gateway::server_cert::ServerCertWatch {
            cert: config.tls.cert.clone(),
            key: config.tls.key.clone(),
            every: Duration::from_secs(config.tls.crl_reload_secs.max(1)),
        },
        stop.clone(),
    ));
    if let (Some(addr), Some(setup)) = (&config.enrolment.listen, options.enrolment.clone()) {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for enrolment on {addr}"))?;
        let edge = EdgeConfig::new(
            hamgam_gateway::enrolment_tls::server_config(
                &material.cert_pem,
                &material.key_pem,
                &material.ca_pem,
            )?,
            config.trust_domain.clone(),
        );
        tokio::spawn(server::run_enrolment(
            listener,
            hub.clone(),
            setup,
            edge,
            audit.clone(),
            stop.clone().cancelled_owned(),
        ));
    }
    if config.summary_refresh_secs > 0 {
        tokio::spawn(hamgam_central::analytics::keeper::keep(
            hub.clone(),
            Duration::from_secs(config.summary_refresh_secs),
            stop.clone(),
        ));
    }
    if let Some(addr) = &config.console.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for the HQ console on {addr}"))?;
        let router = hamgam_central::console::router(hub.clone(), config.lifecycle.clone())
            .context("the HQ console's templates")?;
        tokio::spawn(hamgam_central::console::serve(
            listener,
            router,
            hamgam_central::console::tls(&options.edge.tls),
            config.trust_domain.clone(),
            stop.clone(),
        ));
    }
    let served = server::run(listener, hub, options, audit, async move {
        hamgam_gateway::shutdown::signal().await;
    })
    .await
    .context("the hub's server failed");
    stop.cancel();
    if let Some(metrics) = metrics {
        if let Ok(Err(e)) = metrics.await {
            tracing::warn!("the metrics listener failed: {e}");
        }
    }
    served?;
    Ok(())
}

/// The issuing CA and tokens of `[enrolment]`, when configured; an enrolment listener without
/// them is a config error, said before anything listens.
fn enrolment_setup(config: &HubConfig) -> Result<Option<EnrolmentSetup>> {
    let e = &config.enrolment;
    let (cert, key) = match (&e.issuing_cert, &e.issuing_key) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) if e.listen.is_none() => return Ok(None),
        _ => anyhow::bail!(
            "[enrolment] needs both issuing_cert and issuing_key (the issuing CA `central pki \
             init` wrote: issuing.crt, issuing.key) to enrol or renew"
        ),
    };
    hamgam_gateway::files::check_owner_only(key)
        .with_context(|| format!("the issuing CA key {}", key.display()))?;
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let issuing = CertificateAuthority::from_pem(&config.trust_domain, &read(cert)?, &read(key)?)
        .with_context(|| format!("the issuing CA {}", cert.display()))?;
    let tokens = match (&e.tokens, &config.registry) {
        (Some(path), _) => path.clone(),
        (None, Some(registry)) => hamgam_central::enrolment::tokens::tokens_path(registry),
        (None, None) => anyhow::bail!(
            "[enrolment] needs a tokens file: set `registry` (the tokens are kept beside it) or \
             `[enrolment] tokens`"
        ),
    };
    Ok(Some(EnrolmentSetup {
        signer: std::sync::Arc::new(Signer {
            issuing,
            root_pem: read(&config.tls.ca)?,
            tokens,
            certificate_days: e.certificate_days,
        }),
        lockout: Lockout {
            max_refusals: e.max_refusals.max(1),
            wait: Duration::from_secs(e.lockout_secs),
        },
    }))
}
