//! Authorisation: a tower layer in front of every gRPC service that lets each role call only
//! the services and methods meant for it. Dealers sync; HQ readers query; HQ reviewers also
//! decide; ops administer. Anything not listed in the [`AccessPolicy`] is refused (default
//! deny), with PERMISSION_DENIED naming the role it needs, and recorded as a security event.
//!
//! It sits inside the TLS edge (which proved the identity) and outside the services (which then
//! never see a caller of the wrong role).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_layer::Layer;
use tower_service::Service;

use crate::audit::{SecurityAudit, SecurityEventKind};
use crate::identity::Role;
use crate::server::PeerInfo;

/// Which roles may call which gRPC services (by path prefix, `/hamgam.hq.v1.HqService/`) and
/// methods (by whole path, `/hamgam.hq.v1.HqService/Decide`). A method's own rule wins over
/// its service's, so a service can be open to readers with a few methods narrowed.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    services: Vec<(String, Vec<Role>)>,
    methods: Vec<(String, Vec<Role>)>,
}

impl AccessPolicy {
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `roles` call every method of the service with this fully qualified name
    /// (`hamgam.sync.v1.DealerSync`).
    pub fn allow(mut self, service: &str, roles: &[Role]) -> Self {
        self.services.push((format!("/{service}/"), roles.to_vec()));
        self
    }

    /// Lets only `roles` call one method (`hamgam.hq.v1.HqService/Decide`), whatever its
    /// service's rule says.
    pub fn allow_method(mut self, method: &str, roles: &[Role]) -> Self {
        self.methods.push((format!("/{method}"), roles.to_vec()));
        self
    }

    /// The roles allowed on `path`, if any rule covers it: the method's rule, else its
    /// service's.
    pub fn roles_for(&self, path: &str) -> Option<&[Role]> {
        self.methods
            .iter()
            .find(|(method, _)| path == method.as_str())
            .or_else(|| {
                self.services
                    .iter()
                    .find(|(prefix, _)| path.starts_with(prefix.as_str()))
            })
            .map(|(_, roles)| roles.as_slice())
    }
}

/// Applies an [`AccessPolicy`].
#[derive(Debug, Clone)]
pub struct AuthorizeLayer {
    policy: Arc<AccessPolicy>,
    audit: SecurityAudit,
}

impl AuthorizeLayer {
    pub fn new(policy: AccessPolicy, audit: SecurityAudit) -> Self {
        AuthorizeLayer {
            policy: Arc::new(policy),
            audit,
        }
    }
}

impl<S> Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Authorize {
            inner,
            policy: self.policy.clone(),
            audit: self.audit.clone(),
        }
    }
}

/// The service [`AuthorizeLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    policy: Arc<AccessPolicy>,
    audit: SecurityAudit,
}

impl<S> Authorize<S> {
    fn check<B>(&self, req: &http::Request<B>) -> Result<(), tonic::Status> {
        let path = req.uri().path();
        let peer = req.extensions().get::<PeerInfo>().ok_or_else(|| {
            tonic::Status::unauthenticated("no verified client certificate on this connection")
        })?;
        let role = peer.identity.role();
        let detail = match self.policy.roles_for(path) {
            Some(roles) if roles.contains(&role) => return Ok(()),
            Some(roles) => {
                let needed: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
                format!(
                    "{} may not call {path}: it needs a {} certificate",
                    peer.identity,
                    needed.join(" or ")
                )
            }
            None => format!(
                "{path} is not a service this hub offers to {}",
                peer.identity
            ),
        };
        self.audit.record(
            SecurityEventKind::RoleRefused,
            Some(peer.identity.to_string()),
            Some(peer.remote_addr),
            detail.clone(),
        );
        Err(tonic::Status::permission_denied(detail))
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Authorize<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        match self.check(&req) {
            Ok(()) => {
                // The clone is ready only after poll_ready; keep the ready one for this call.
                let clone = self.inner.clone();
                let mut ready = std::mem::replace(&mut self.inner, clone);
                Box::pin(ready.call(req))
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{DealerId, PeerIdentity};
    use tower::ServiceExt;

    fn request(path: &str, identity: Option<PeerIdentity>) -> http::Request<()> {
        let mut req = http::Request::builder().uri(path).body(()).unwrap();
        if let Some(identity) = identity {
            req.extensions_mut().insert(PeerInfo {
                identity,
                remote_addr: "127.0.0.1:1".parse().unwrap(),
            });
        }
        req
    }

    async fn call(layer: &AuthorizeLayer, req: http::Request<()>) -> Option<String> {
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::from("reached")))
        });
        let response = layer.layer(inner).oneshot(req).await.unwrap();
        response
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn each_role_reaches_only_its_services_and_everything_else_is_refused() {
        let audit = SecurityAudit::new();
        let layer = AuthorizeLayer::new(
            AccessPolicy::new()
                .allow("hamgam.sync.v1.DealerSync", &[Role::Dealer])
                .allow(
                    "hamgam.hq.v1.HqService",
                    &[Role::HqReader, Role::HqReviewer],
                )
                .allow_method("hamgam.hq.v1.HqService/Decide", &[Role::HqReviewer]),
            audit.clone(),
        );
        let dealer = Some(PeerIdentity::Dealer(DealerId::new("D-1").unwrap()));
        let hq = Some(PeerIdentity::Hq("crm".into()));
        let reviewer = Some(PeerIdentity::HqReviewer("quality".into()));
        let ops = Some(PeerIdentity::Ops("alice".into()));
        // Allowed: the inner service answers (no gRPC status from the layer).
        assert_eq!(
            call(
                &layer,
                request("/hamgam.sync.v1.DealerSync/Sync", dealer.clone())
            )
            .await,
            None
        );
        assert_eq!(
            call(
                &layer,
                request("/hamgam.hq.v1.HqService/ListDealers", hq.clone())
            )
            .await,
            None
        );
        assert_eq!(
            call(
                &layer,
                request("/hamgam.hq.v1.HqService/Decide", reviewer.clone())
            )
            .await,
            None
        );
        assert_eq!(
            call(
                &layer,
                request("/hamgam.hq.v1.HqService/ListDealers", reviewer)
            )
            .await,
            None
        );
        // Refused with PERMISSION_DENIED (7): wrong role, or a service nobody listed.
        assert_eq!(
            call(
                &layer,
                request("/hamgam.hq.v1.HqService/Decide", hq.clone())
            )
            .await
            .as_deref(),
            Some("7")
        );
        assert_eq!(
            call(
                &layer,
                request("/hamgam.hq.v1.HqService/ListDealers", dealer)
            )
            .await
            .as_deref(),
            Some("7")
        );
        assert_eq!(
            call(
                &layer,
                request("/hamgam.sync.v1.DealerSync/Sync", ops.clone())
            )
            .await
            .as_deref(),
            Some("7")
        );
        assert_eq!(
            call(
                &layer,
                request("/grpc.reflection.v1.ServerReflection/Info", hq)
            )
            .await
            .as_deref(),
            Some("7")
        );
        assert_eq!(
            call(&layer, request("/hamgam.sync.v1.DealerSyncX/Sync", ops))
                .await
                .as_deref(),
            Some("7")
        );
        // No verified identity at all: UNAUTHENTICATED (16).
        assert_eq!(
            call(&layer, request("/hamgam.hq.v1.HqService/ListDealers", None))
                .await
                .as_deref(),
            Some("16")
        );
        assert_eq!(audit.count(SecurityEventKind::RoleRefused), 5);
        let decide = audit
            .recent()
            .into_iter()
            .find(|e| e.detail.contains("Decide"))
            .unwrap();
        assert_eq!(decide.peer.as_deref(), Some("hq/reader/crm"));
        assert!(
            decide.detail.contains("it needs a hq/reviewer certificate"),
            "{}",
            decide.detail
        );
    }
}
