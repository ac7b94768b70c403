//! `central health`: asks a running hub's `grpc.health.v1.Health/Check` over mutual TLS, for
//! probes (Kubernetes exec probes, the container's HEALTHCHECK, compose, scripts).
//!
//! The hub serves health only to a client with a certificate of its CA (it asks every
//! connection for one), so a plain TCP check or Kubernetes' built-in `grpc` probe (which cannot
//! present a client certificate) cannot see it; this command can. Use an ops certificate
//! (`central pki issue ops probe`): the access policy lets ops, dealer and HQ certificates call
//! health, and an ops certificate can call nothing else.
//!
//! Exit status: 0 when the hub answers SERVING, 1 otherwise (unreachable, TLS refused, another
//! status, no answer within `--timeout-secs`), with the reason on stderr.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::tls::{self, TlsFiles};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

#[derive(Args)]
pub(crate) struct HealthArgs {
    /// Hub address, host:port.
    #[arg(long, env = "HAMGAM_HUB", default_value = "127.0.0.1:7443")]
    hub: String,
    /// Name the hub's certificate carries.
    #[arg(long, env = "HAMGAM_HUB_NAME", default_value = "localhost")]
    server_name: String,
    /// The deployment's CA certificate (PEM).
    #[arg(long, env = "HAMGAM_CA", default_value = "pki/ca.crt")]
    ca: PathBuf,
    /// A client certificate of that CA (PEM): an ops one, e.g. `central pki issue ops probe`.
    #[arg(long, env = "HAMGAM_CERT")]
    cert: PathBuf,
    /// Its private key (PEM, 0600); default: the .key beside the certificate.
    #[arg(long, env = "HAMGAM_KEY")]
    key: Option<PathBuf>,
    /// The service to ask about; empty (the default): the hub as a whole.
    #[arg(long, default_value = "")]
    service: String,
    /// Give up after this long (connect, handshake and answer together).
    #[arg(long, default_value_t = 5)]
    timeout_secs: u64,
}

/// Checks the hub once; `Ok` only for SERVING.
pub(crate) async fn run(args: HealthArgs) -> Result<()> {
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| args.cert.with_extension("key"));
    let material = TlsFiles {
        ca: args.ca.clone(),
        cert: args.cert.clone(),
        key,
    }
    .load()?;
    let timeout = Duration::from_secs(args.timeout_secs.max(1));
    let mut endpoint = HubEndpoint::new(
        args.hub.clone(),
        args.server_name.clone(),
        tls::client_config(&material)?,
    );
    endpoint.connect_timeout = timeout;
    let check = async {
        let channel = endpoint.connect().await?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: args.service.clone(),
            })
            .await
            .map_err(|status| {
                anyhow::anyhow!("{:?}: {}", status.code(), status.message().trim())
            })?;
        anyhow::Ok(answer.into_inner().status)
    };
    let what = if args.service.is_empty() {
        "the hub".to_string()
    } else {
        format!("service {}", args.service)
    };
    let status = tokio::time::timeout(timeout, check)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {} s", timeout.as_secs()))
        .and_then(|r| r)
        .with_context(|| format!("health check of {what} at {} failed", args.hub))?;
    match ServingStatus::try_from(status) {
        Ok(ServingStatus::Serving) => {
            println!("{what} at {}: SERVING", args.hub);
            Ok(())
        }
        Ok(other) => bail!("{what} at {}: {}", args.hub, other.as_str_name()),
        Err(_) => bail!("{what} at {}: unknown status {status}", args.hub),
    }
}
