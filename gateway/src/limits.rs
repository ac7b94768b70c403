//! Per-dealer limits: one dealer, buggy or hostile, must not take the hub from the others.
//!
//! [`DealerLimitLayer`] is a tower layer in front of the gRPC services. For every call made
//! with a dealer certificate it checks, across all of that dealer's connections:
//!
//! - **concurrent calls**: at most [`DealerLimits::max_concurrent_calls`] open at once. A call
//!   counts until its response ends, so a sync stream holds its place for as long as it lives;
//! - **call rate**: new calls refill at [`DealerLimits::calls_per_sec`] per second, up to
//!   [`DealerLimits::call_burst`] saved up.
//!
//! A call over either limit is refused at once with `RESOURCE_EXHAUSTED` naming the limit, and
//! counted as a [`SecurityEventKind::RateLimited`] event; it never queues, so a flood costs the
//! hub one refusal per call. HQ and ops certificates are not limited here.
//!
//! The records a dealer sends *inside* its sync stream are paced by the session itself
//! ([`crate::sync::SessionLimits::dealer_records_per_sec`]) with the same [`TokenBucket`]: a
//! stream is one call to tower.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_layer::Layer;
use tower_service::Service;

use crate::audit::{SecurityAudit, SecurityEventKind};
use crate::identity::{DealerId, PeerIdentity};
use crate::server::PeerInfo;

/// A token bucket: `rate` tokens per second, at most `burst` saved up. Taking more than there
/// is leaves a debt that later takers wait out, so a large take is paced rather than refused.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` must be above zero.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            at: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens, running into debt if needed; returns how long the taker must wait
    /// before acting so that the rate holds (zero when there were enough).
    pub fn take(&mut self, n: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// What one dealer may do at once and per second (`[limits]` in the hub's config).
#[derive(Debug, Clone, PartialEq)]
pub struct DealerLimits {
    /// Calls (a sync stream counts until it ends) one dealer may have open, over all its
    /// connections; 0 = no limit.
    pub max_concurrent_calls: u32,
    /// New calls per second one dealer may start, on average; 0 = no limit.
    pub calls_per_sec: u32,
    /// New calls one dealer may start at once after a quiet spell.
    pub call_burst: u32,
}

impl Default for DealerLimits {
    fn default() -> Self {
        // An agent holds one sync stream and now and then looks a vehicle up; reconnects
        // after a dropped link may leave a dead stream open until keepalive ends it.
        DealerLimits {
            max_concurrent_calls: 8,
            calls_per_sec: 20,
            call_burst: 40,
        }
    }
}

/// Applies [`DealerLimits`] to every call made with a dealer certificate.
#[derive(Debug, Clone)]
pub struct DealerLimitLayer {
    limits: Arc<DealerLimits>,
    dealers: Arc<Mutex<HashMap<DealerId, DealerUse>>>,
    audit: SecurityAudit,
}

/// One dealer's open calls and call budget.
#[derive(Debug)]
struct DealerUse {
    open: Arc<Semaphore>,
    calls: Option<TokenBucket>,
}

impl DealerLimitLayer {
    pub fn new(limits: DealerLimits, audit: SecurityAudit) -> Self {
        DealerLimitLayer {
            limits: Arc::new(limits),
            dealers: Arc::default(),
            audit,
        }
    }

    /// Admits one call of `dealer`, or says which limit it is over. The permit (if the
    /// concurrency limit is on) must live as long as the call.
    fn admit(&self, dealer: &DealerId) -> Result<Option<OwnedSemaphorePermit>, String> {
        let limits = &self.limits;
        let now = Instant::now();
        let mut dealers = self.dealers.lock().unwrap_or_else(|p| p.into_inner());
        let usage = dealers.entry(dealer.clone()).or_insert_with(|| DealerUse {
            open: Arc::new(Semaphore::new(limits.max_concurrent_calls as usize)),
            calls: (limits.calls_per_sec > 0).then(|| {
                TokenBucket::new(
                    f64::from(limits.calls_per_sec),
                    f64::from(limits.call_burst.max(1)),
                    now,
                )
            }),
        });
        let permit = if limits.max_concurrent_calls > 0 {
            match usage.open.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return Err(format!(
                        "dealer {dealer} already has {} calls open, the most this hub allows one dealer; \
                         close one (an agent needs one sync stream) or wait for dead ones to time out",
                        limits.max_concurrent_calls
                    ))
                }
            }
        } else {
            None
        };
        if let Some(bucket) = usage.calls.as_mut() {
            if !bucket.try_take(1.0, now) {
                return Err(format!(
                    "dealer {dealer} starts calls faster than this hub allows one dealer \
                     ({} per second, {} at once); retry with backoff",
                    limits.calls_per_sec, limits.call_burst
                ));
            }
        }
        Ok(permit)
    }
}

impl<S> Layer<S> for DealerLimitLayer {
    type Service = DealerLimit<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DealerLimit {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`DealerLimitLayer`] wraps around the gRPC routes.
#[derive(Debug, Clone)]
pub struct DealerLimit<S> {
    inner: S,
    layer: DealerLimitLayer,
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for DealerLimit<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let dealer = match req.extensions().get::<PeerInfo>() {
            Some(PeerInfo {
                identity: PeerIdentity::Dealer(dealer),
                remote_addr,
            }) => Some((dealer.clone(), *remote_addr)),
            _ => None,
        };
        let permit = match dealer {
            None => None,
            Some((dealer, remote_addr)) => match self.layer.admit(&dealer) {
                Ok(permit) => permit,
                Err(detail) => {
                    self.layer.audit.record(
                        SecurityEventKind::RateLimited,
                        Some(PeerIdentity::Dealer(dealer).to_string()),
                        Some(remote_addr),
                        detail.clone(),
                    );
                    let refusal = tonic::Status::resource_exhausted(detail).into_http();
                    return Box::pin(std::future::ready(Ok(refusal)));
                }
            },
        };
        // The clone is ready only after poll_ready; keep the ready one for this call.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let call = ready.call(req);
        Box::pin(async move {
            let response = call.await?;
            Ok(match permit {
                None => response,
                // The call holds its place until its response body (a whole stream) is done.
                Some(permit) => response.map(|body| {
                    tonic::body::Body::new(body.map_frame(move |frame| {
                        let _held = &permit;
                        frame
                    }))
                }),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn request(identity: PeerIdentity) -> http::Request<()> {
        let mut req = http::Request::builder()
            .uri("/hamgam.hq.v1.VehicleLookup/History")
            .body(())
            .unwrap();
        req.extensions_mut().insert(PeerInfo {
            identity,
            remote_addr: "127.0.0.1:1".parse().unwrap(),
        });
        req
    }

    fn dealer_request(id: &str) -> http::Request<()> {
        request(PeerIdentity::Dealer(DealerId::new(id).unwrap()))
    }

    type Answer = http::Response<tonic::body::Body>;

    /// A response body that has not ended: a call still open, like a live sync stream.
    struct OpenStream;

    impl http_body::Body for OpenStream {
        type Data = tonic::codegen::Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            Poll::Pending
        }
    }

    async fn call(layer: &DealerLimitLayer, req: http::Request<()>) -> Answer {
        let inner = tower::service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(tonic::body::Body::new(
                OpenStream,
            )))
        });
        layer.layer(inner).oneshot(req).await.unwrap()
    }

    fn refused(answer: &Answer) -> bool {
        // RESOURCE_EXHAUSTED is gRPC status 8.
        answer.headers().get("grpc-status").map(|v| v.as_bytes()) == Some(b"8")
    }

    #[tokio::test]
    async fn open_calls_over_the_limit_are_refused_until_one_ends_and_other_dealers_pass() {
        let audit = SecurityAudit::new();
        let layer = DealerLimitLayer::new(
            DealerLimits {
                max_concurrent_calls: 2,
                calls_per_sec: 0,
                call_burst: 0,
            },
            audit.clone(),
        );
        let first = call(&layer, dealer_request("D-1")).await;
        let second = call(&layer, dealer_request("D-1")).await;
        assert!(!refused(&first) && !refused(&second));
        let third = call(&layer, dealer_request("D-1")).await;
        assert!(refused(&third), "a third open call is refused");
        assert!(!refused(&call(&layer, dealer_request("D-2")).await));
        assert_eq!(audit.count(SecurityEventKind::RateLimited), 1);
        drop(first); // its body (the stream) ends
        assert!(!refused(&call(&layer, dealer_request("D-1")).await));
    }

    #[tokio::test]
    async fn calls_beyond_the_rate_are_refused_and_hq_is_not_limited() {
        let audit = SecurityAudit::new();
        let layer = DealerLimitLayer::new(
            DealerLimits {
                max_concurrent_calls: 0,
                calls_per_sec: 1,
                call_burst: 3,
            },
            audit.clone(),
        );
        let answers: Vec<bool> = futures::future::join_all(
            (0..5).map(|_| async { refused(&call(&layer, dealer_request("D-1")).await) }),
        )
        .await;
        assert_eq!(answers.iter().filter(|r| !**r).count(), 3, "{answers:?}");
        for _ in 0..10 {
            let hq = request(PeerIdentity::Hq("crm".into()));
            assert!(!refused(&call(&layer, hq).await));
        }
        assert_eq!(audit.count(SecurityEventKind::RateLimited), 2);
    }

    #[test]
    fn a_bucket_paces_large_takes_and_refills_up_to_its_burst() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(100.0, 50.0, start);
        assert_eq!(bucket.take(50.0, start), Duration::ZERO);
        // 100 more at 100/s: wait one second.
        assert_eq!(bucket.take(100.0, start), Duration::from_secs(1));
        // Ten idle seconds refill only to the burst.
        let later = start + Duration::from_secs(11);
        assert!(bucket.try_take(50.0, later));
        assert!(!bucket.try_take(1.0, later));
    }
}
