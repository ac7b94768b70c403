//! Prometheus metrics both ends expose: the sync sessions' own figures ([`SyncMetrics`]), and
//! the HTTP listener that serves a text exposition at `GET /metrics` ([`serve`]). What each
//! binary measures beyond the sessions (the hub's ingest, the agent's outbox) it registers
//! itself; metric names are listed in docs/operations.md, "Metrics".
//!
//! The exposition is OpenMetrics text (`prometheus_client`), which Prometheus scrapes as is.
//! The listener is separate from the gRPC port and meant for loopback or a monitoring network:
//! it serves figures, never records or personal data (dealer ids are the only labels).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Latency buckets: 0.5 ms to about 65 s, doubling.
pub fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0005, 2.0, 18)
}

/// A latency histogram with [`latency_buckets`].
pub fn latency_histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// What the hub's sync sessions measure.
#[derive(Debug, Clone)]
pub struct SyncMetrics {
    /// Sync sessions open now (one per connected dealer agent).
    pub sessions_open: Gauge,
    /// Records received in batches (re-sent ones included).
    pub records_received: Counter,
    /// From a batch's arrival to its ack leaving: judged, stored, durable.
    pub batch_ack_seconds: Histogram,
}

impl Default for SyncMetrics {
    fn default() -> Self {
        SyncMetrics {
            sessions_open: Gauge::default(),
            records_received: Counter::default(),
            batch_ack_seconds: latency_histogram(),
        }
    }
}

impl SyncMetrics {
    /// Registers the families under `hamgam_sync_`.
    pub fn register(&self, registry: &mut Registry) {
        let sync = registry.sub_registry_with_prefix("hamgam_sync");
        sync.register(
            "sessions_open",
            "Sync sessions open now (connected dealer agents)",
            self.sessions_open.clone(),
        );
        sync.register(
            "records_received",
            "Records received in sync batches, re-sent ones included",
            self.records_received.clone(),
        );
        sync.register(
            "batch_ack_seconds",
            "From a batch's arrival to its ack: judged, stored and durable",
            self.batch_ack_seconds.clone(),
        );
    }

    /// Counts a session open until the returned guard drops.
    pub fn session(&self) -> SessionGuard {
        self.sessions_open.inc();
        SessionGuard(self.sessions_open.clone())
    }

    /// Observes one batch's time to ack.
    pub fn acked(&self, received: Instant) {
        self.batch_ack_seconds
            .observe(received.elapsed().as_secs_f64());
    }
}

/// An open session, counted in `hamgam_sync_sessions_open` while it lives.
#[derive(Debug)]
pub struct SessionGuard(Gauge);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// `registry` in the text exposition format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, registry) {
        tracing::error!("cannot encode the metrics: {e}");
    }
    out
}

/// What a scrape renders: called once per `GET /metrics`, on the blocking pool (it may read a
/// store).
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `render()` at `GET /metrics` on a bound `listener` until `shutdown` resolves (any
/// other path is 404). HTTP/1.1, one task per connection.
pub async fn serve(
    listener: TcpListener,
    render: Render,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics listening");
    }
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = &mut shutdown => return Ok(()),
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(answer(request.uri().path(), render).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!("metrics connection ended: {e}");
            }
        });
    }
}

async fn answer(path: &str, render: Render) -> hyper::Response<Full<Bytes>> {
    let response = hyper::Response::builder();
    if path != "/metrics" {
        return response
            .status(404)
            .body(Full::new(Bytes::from_static(b"only /metrics is here\n")))
            .unwrap_or_default();
    }
    let text = tokio::task::spawn_blocking(move || render())
        .await
        .unwrap_or_else(|e| format!("# the metrics could not be rendered: {e}\n"));
    response
        .header(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default()
}
