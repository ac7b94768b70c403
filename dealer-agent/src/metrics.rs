//! The branch's Prometheus metrics, served by `dealer-agent run` on `[metrics] listen`
//! (loopback): what is waiting to sync, when the last sync was and whether it failed, what the
//! hub rejected or flagged, what cannot be sent, and when the dealer certificate expires. Read
//! from the store at each scrape. Names in docs/operations.md, "Metrics".

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use hamgam_gateway::metrics::{encode, Render};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::store::AgentStore;

struct AgentGauges {
    last_seq: Gauge,
    pending: Gauge,
    since_sync: Gauge<f64, AtomicU64>,
    last_sync_failed: Gauge,
    rejected: Gauge,
    flagged: Gauge,
    cannot_send: Gauge,
    certificate_expires: Gauge,
}

/// The render function of the agent's metrics endpoint; `certificate` is the dealer
/// certificate's PEM file (its expiry is read at each scrape, so a renewed file shows).
pub fn render(store: AgentStore, certificate: PathBuf) -> Render {
    let gauges = AgentGauges {
        last_seq: Gauge::default(),
        pending: Gauge::default(),
        since_sync: Gauge::default(),
        last_sync_failed: Gauge::default(),
        rejected: Gauge::default(),
        flagged: Gauge::default(),
        cannot_send: Gauge::default(),
        certificate_expires: Gauge::default(),
    };
    let mut registry = Registry::default();
    let r = registry.sub_registry_with_prefix("hamgam_agent");
    r.register(
        "last_seq",
        "Highest seq in this branch's log",
        gauges.last_seq.clone(),
    );
    r.register(
        "pending_records",
        "Records made here that the hub has not acknowledged",
        gauges.pending.clone(),
    );
    r.register(
        "seconds_since_sync",
        "Seconds since the last successful sync (-1: never)",
        gauges.since_sync.clone(),
    );
    r.register(
        "last_sync_failed",
        "1 when the last sync attempt failed (see dealer-agent status), else 0",
        gauges.last_sync_failed.clone(),
    );
    r.register(
        "rejected_records",
        "Records the hub rejected, as its verdicts say",
        gauges.rejected.clone(),
    );
    r.register(
        "flagged_records",
        "Records the hub accepted with flags",
        gauges.flagged.clone(),
    );
    r.register(
        "cannot_send_records",
        "Stored records the hub can never accept as they are (sent as stand-ins)",
        gauges.cannot_send.clone(),
    );
    r.register(
        "certificate_expires_timestamp_seconds",
        "When the dealer certificate expires, seconds since the Unix epoch (0: unreadable)",
        gauges.certificate_expires.clone(),
    );
    let registry = Arc::new(registry);
    Arc::new(move || {
        match store.status() {
            Ok(status) => {
                gauges.last_seq.set(status.last_seq as i64);
                gauges.pending.set(status.pending() as i64);
                gauges.since_sync.set(
                    status
                        .last_sync_ms
                        .map(|t| ((store.now_ms() - t).max(0)) as f64 / 1000.0)
                        .unwrap_or(-1.0),
                );
                gauges
                    .last_sync_failed
                    .set(i64::from(status.last_error.is_some()));
                gauges.rejected.set(status.rejected as i64);
                gauges.flagged.set(status.flagged as i64);
                gauges.cannot_send.set(status.cannot_send as i64);
            }
            Err(e) => tracing::warn!("metrics: cannot read the store: {e}"),
        }
        let expires = std::fs::read(&certificate)
            .ok()
            .and_then(|pem| {
                hamgam_gateway::tls::parse_certificates(&pem, "dealer certificate").ok()
            })
            .and_then(|leaf| hamgam_gateway::PeerIdentity::validity_of(&leaf[0]).ok())
            .map_or(0, |(_, until)| until);
        gauges.certificate_expires.set(expires);
        encode(&registry)
    })
}
