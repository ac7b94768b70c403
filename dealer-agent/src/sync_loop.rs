//! The agent's sync loops: [`sync_once`] (connect, send everything pending, wait for the acks,
//! return) and [`run`] (stay connected, send records as they are made, reconnect with jittered
//! exponential backoff after any failure, stop on the shutdown signal). Both record the outcome
//! in the store so `dealer-agent status` can say when the last sync was and why it failed.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use hamgam_gateway::client::HubEndpoint;
use hamgam_gateway::sync::client::run_session;
use hamgam_gateway::sync::{SessionMode, SessionOptions, SessionReport, SyncError};

use crate::certificate::{CertificateError, Renewal};
use crate::restore;
use crate::store::AgentStore;

/// A session that lasted this long resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(60);

/// Reconnect delays: full jitter over an exponentially growing ceiling.
#[derive(Debug, Clone)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            attempt: 0,
        }
    }

    /// The next delay: uniform in [0, min(max, initial * 2^attempt)], so a network of agents
    /// that lost the hub together does not come back together.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(rand::random::<f64>())
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// One session that sends everything pending and returns once the hub acked it.
pub async fn sync_once(
    store: &AgentStore,
    endpoint: &HubEndpoint,
    options: &SessionOptions,
) -> Result<SessionReport, SyncError> {
    let options = SessionOptions {
        mode: SessionMode::UntilDrained,
        ..options.clone()
    };
    let result = async {
        let channel = endpoint.connect().await?;
        match run_session(channel.clone(), store, &options, std::future::pending()).await {
            Err(SyncError::HubFeedBehind { hub_stored_seq, .. }) => {
                restore::take_hub_verdicts(store, endpoint, hub_stored_seq).await?;
                run_session(channel, store, &options, std::future::pending()).await
            }
            other => other,
        }
    }
    .await;
    if let Err(e) = &result {
        remember_error(store, e);
    }
    result
}

/// Keeps syncing until `shutdown` resolves. With a [`Renewal`], the certificate is renewed
/// over the session once it is due (2/3 of its lifetime), and the agent reconnects with the
/// new one at once; a renewal that fails is tried again at the next connection.
pub async fn run(
    store: AgentStore,
    mut endpoint: HubEndpoint,
    options: SessionOptions,
    mut backoff: Backoff,
    renewal: Option<Renewal>,
    shutdown: CancellationToken,
) {
    let options = SessionOptions {
        mode: SessionMode::Continuous,
        ..options
    };
    loop {
        let started = Instant::now();
        // A session ends (to renew) when the certificate comes due while it runs.
        let renew_in = renewal
            .as_ref()
            .and_then(|r| r.due_at().ok())
            .map(|due| Duration::from_secs((due - now_secs()).max(0) as u64));
        let attempt = async {
            let channel = endpoint.connect().await?;
            tracing::info!(hub = %endpoint.addr, "connected to the hub");
            if let (Some(renewal), Some(Duration::ZERO)) = (&renewal, renew_in) {
                return Ok(Ended::Renew(renewal.renew(channel, &endpoint).await));
            }
            let until = async {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = sleep_or_forever(renew_in) => {}
                }
            };
            match run_session(channel.clone(), &store, &options, until).await {
                Err(SyncError::HubFeedBehind { hub_stored_seq, .. }) => {
                    restore::take_hub_verdicts(&store, &endpoint, hub_stored_seq).await?;
                    run_session(channel, &store, &options, shutdown.cancelled())
                        .await
                        .map(Ended::Stopped)
                }
                other => other.map(Ended::Stopped),
            }
        };
        let ended = tokio::select! {
            result = attempt => result,
            _ = shutdown.cancelled() => return,
        };
        match ended {
            Ok(Ended::Renew(Ok((renewed, issued)))) => {
                tracing::info!(
                    not_after = %crate::certificate_time(issued.not_after_ms),
                    "certificate renewed; reconnecting with it"
                );
                endpoint = renewed;
                continue;
            }
            Ok(Ended::Renew(Err(e))) => {
                tracing::warn!(
                    "certificate renewal failed, trying again at the next connection: {e}"
                );
                if let Err(e) = store.set_last_error(&format!("certificate renewal failed: {e}")) {
                    tracing::error!("cannot record the renewal error in the store: {e}");
                }
            }
            Ok(Ended::Stopped(report)) if shutdown.is_cancelled() => {
                tracing::info!(acked_seq = report.acked_seq, "sync stopped");
                return;
            }
            // The certificate came due during the session: reconnect and renew.
            Ok(Ended::Stopped(_)) => continue,
            Err(e) => {
                remember_error(&store, &e);
                if e.is_permanent() {
                    tracing::error!(
                        "the hub refuses this agent; retrying slowly until someone fixes it: {e}"
                    );
                } else {
                    tracing::warn!("sync interrupted: {e}");
                }
            }
        }
        // A session that lived a while was a working link: start the backoff from the bottom.
        if started.elapsed() > HEALTHY_SESSION {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::info!("reconnecting in {:.1}s", delay.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

/// How a connection of [`run`] ended.
enum Ended {
    Stopped(SessionReport),
    Renew(Result<(HubEndpoint, hamgam_proto::enrol::v1::CertificateIssued), CertificateError>),
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The real time, Unix seconds: certificates are dated by it.
fn now_secs() -> i64 {
    hamgam_gateway::sync::now_ms() / 1000
}

fn remember_error(store: &AgentStore, error: &SyncError) {
    if let Err(e) = store.set_last_error(&error.to_string()) {
        tracing::error!("cannot record the sync error in the store: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_ceiling_and_stays_jittered_below_it() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        for attempt in 0..20 {
            let ceiling =
                Duration::from_millis(100 * (1u64 << attempt.min(16))).min(Duration::from_secs(2));
            assert!(backoff.next_delay() <= ceiling);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(100));
    }
}
