//! The HQ console: a read-only web page the hub serves on its own listener (`[console]`), for
//! HQ's people in a browser. Mutual TLS like the gRPC API: the browser presents an `hq/*`
//! certificate from the deployment's CA (docs/hq-console.md says how to install one); any other
//! certificate (a dealer's, ops') is refused with 403 on every page, and a browser without one
//! never completes the handshake.
//!
//! Pages are rendered on the server (minijinja templates built into the binary, charts as SVG
//! by [`charts`]), in Persian (right to left, Jalali dates) or English (`?lang=en`), from all
//! facts or clean facts only (`?trusted=1`), as of now or a date (`?as_of=YYYY-MM-DD`). Every
//! number links to the customers behind it ([`people::customers`]), and each customer to their
//! 360 and the records behind it. Answers naming customers are written to the access audit
//! first, as the gRPC API's are.
//!
//! - [`charts`]: SVG bars, scatter and lines;
//! - [`view`]: what every page shares (the reader's choices, rendering, errors);
//! - [`pages`]: the chart pages;
//! - [`people`]: the service-due list, the drill-down to customers, a customer's 360;
//! - [`words`]: the words of both languages and how dates are written.

pub mod charts;
pub mod pages;
pub mod people;
pub mod view;
pub mod words;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hamgam_gateway::{PeerIdentity, Role};
use minijinja::Environment;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ingest::Hub;
use crate::lifecycle::LifecycleConfig;
use crate::store::HubStore;

/// What every request of the console shares.
pub struct ConsoleState<S: HubStore> {
    pub hub: Arc<Hub<S>>,
    pub lifecycle: Arc<LifecycleConfig>,
    pub templates: Environment<'static>,
}

/// Who is calling: the identity of the connection's client certificate, if the hub could read
/// one it knows.
#[derive(Debug, Clone)]
pub struct Caller(pub Option<PeerIdentity>);

impl Caller {
    /// The name the access audit records.
    pub fn name(&self) -> String {
        self.0
            .as_ref()
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string())
    }
}

/// The console's templates.
fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.add_template("base.html", include_str!("templates/base.html"))?;
    env.add_template("page.html", include_str!("templates/page.html"))?;
    Ok(env)
}

/// The console's routes over `hub`.
pub fn router<S: HubStore>(
    hub: Arc<Hub<S>>,
    lifecycle: LifecycleConfig,
) -> Result<Router, minijinja::Error> {
    let state = Arc::new(ConsoleState {
        hub,
        lifecycle: Arc::new(lifecycle),
        templates: templates()?,
    });
    Ok(Router::new()
        .route("/", get(pages::overview::<S>))
        .route("/funnel", get(pages::funnel::<S>))
        .route("/dealers", get(pages::dealers::<S>))
        .route("/dealers/{id}", get(pages::scorecard::<S>))
        .route("/dealers/{id}/flags", get(people::flagged::<S>))
        .route("/cohorts", get(pages::cohorts::<S>))
        .route("/complaints", get(pages::complaints::<S>))
        .route("/leads", get(pages::leads::<S>))
        .route("/service-due", get(people::service_due::<S>))
        .route("/customers", get(people::customers::<S>))
        .route("/customers/{id}", get(people::customer::<S>))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found / پیدا نشد") })
        .layer(axum::middleware::from_fn(only_hq))
        .layer(axum::middleware::map_response(headers))
        .with_state(state))
}

/// Only HQ certificates see a page; every other certificate gets 403 naming the role needed.
async fn only_hq(request: Request, next: Next) -> Response {
    let caller = request.extensions().get::<Caller>().cloned();
    match caller
        .as_ref()
        .and_then(|c| c.0.as_ref())
        .map(PeerIdentity::role)
    {
        Some(Role::HqReader | Role::HqReviewer) => next.run(request).await,
        _ => {
            let who = caller.map_or_else(|| "unknown".to_owned(), |c| c.name());
            tracing::warn!(caller = %who, "HQ console refused a certificate that is not HQ's");
            (
                StatusCode::FORBIDDEN,
                format!(
                    "403: the HQ console needs an HQ certificate (hq/NAME, hq/reader/NAME or \
                     hq/reviewer/NAME); this one is {who}\n\
                     ۴۰۳: کنسول ستاد گواهی ستاد لازم دارد"
                ),
            )
                .into_response()
        }
    }
}

/// Read-only pages: no caching of customers' data, no framing, no scripts from elsewhere.
async fn headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'",
        ),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    }
    response
}

/// The console's TLS: the hub's own server config (its certificate, the CA's client
/// verifier with the revocation list) speaking HTTP/1.1 for browsers.
pub fn tls(hub_tls: &ServerConfig) -> Arc<ServerConfig> {
    let mut config = hub_tls.clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves the console on `listener` until `shutdown`, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Arc<ServerConfig>,
    trust_domain: String,
    shutdown: CancellationToken,
) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "HQ console listening (HTTPS, HQ certificates)");
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("HQ console: accept failed: {e}");
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        let shutdown = shutdown.clone();
        let trust_domain = trust_domain.clone();
        connections.spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "HQ console: TLS handshake refused: {e}");
                    return;
                }
                Err(_) => return,
            };
            let identity = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| PeerIdentity::from_certificate(leaf, &trust_domain).ok());
            let app = router.layer(axum::Extension(Caller(identity)));
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}
