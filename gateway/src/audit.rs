//! Security events: every refusal at the edge (a failed handshake, a certificate without a valid
//! identity, a role calling another role's service, a dealer pushing another dealer's records) is
//! logged under the `hamgam::security` target and counted, never silently dropped. A flood of one
//! kind from one peer is logged once a second with the number of events since the last line.
//!
//! Events name the peer by its certificate identity and address; they never carry record
//! contents or personal data.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What kind of refusal happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityEventKind {
    /// The TLS handshake failed: no client certificate, a certificate from another CA, expired...
    HandshakeRefused,
    /// The certificate chained to our CA but carries no usable identity.
    IdentityRefused,
    /// A role called a service it may not call.
    RoleRefused,
    /// A dealer sent records (or a hello) naming another dealer (rule R01).
    DealerMismatch,
    /// The peer broke the sync protocol (wrong first message, oversized batch...).
    ProtocolViolation,
    /// A dealer HQ suspended in the dealer registry tried to sync.
    DealerSuspended,
    /// A dealer went over its limit of open calls or new calls per second.
    RateLimited,
    /// A stream sent nothing: no hello within the hello timeout, or silence past the idle
    /// timeout (a dead link looks the same; the agent reconnects).
    StreamTimeout,
}

/// One refusal.
#[derive(Debug, Clone)]
pub struct SecurityEvent {
    pub kind: SecurityEventKind,
    /// The certificate identity, when the handshake got that far.
    pub peer: Option<String>,
    pub remote_addr: Option<SocketAddr>,
    pub detail: String,
    pub at: SystemTime,
}

const RECENT_KEPT: usize = 1024;

/// The hub's security log: counts per kind and the most recent events.
#[derive(Debug, Clone)]
pub struct SecurityAudit {
    inner: Arc<Mutex<AuditState>>,
    recorded_tx: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for SecurityAudit {
    fn default() -> Self {
        SecurityAudit {
            inner: Arc::default(),
            recorded_tx: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

#[derive(Debug, Default)]
struct AuditState {
    counts: HashMap<SecurityEventKind, u64>,
    recent: VecDeque<SecurityEvent>,
    /// Per kind and peer: when a line was last logged, and how many were not logged since.
    log_lines: HashMap<(SecurityEventKind, String), (Option<Instant>, u64)>,
}

/// At most one log line per kind and peer in this time; the others are counted.
const LOG_EVERY: Duration = Duration::from_secs(1);

impl SecurityAudit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs and counts one event.
    pub fn record(
        &self,
        kind: SecurityEventKind,
        peer: Option<String>,
        remote_addr: Option<SocketAddr>,
        detail: impl Into<String>,
    ) {
        let detail = detail.into();
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *state.counts.entry(kind).or_default() += 1;
        // A flood of the same refusal from one peer is logged once a second with a count.
        let now = Instant::now();
        let key = (kind, peer.clone().unwrap_or_default());
        let line = state.log_lines.entry(key).or_insert((None, 0));
        if line.0.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            let similar = std::mem::take(&mut line.1);
            line.0 = Some(now);
            let also = if similar > 0 {
                format!(" (and {similar} more like it since the last line)")
            } else {
                String::new()
            };
            tracing::warn!(
                target: "hamgam::security",
                kind = ?kind,
                peer = peer.as_deref().unwrap_or("-"),
                remote_addr = %remote_addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                "security event: {detail}{also}"
            );
        } else {
            line.1 += 1;
        }
        if state.recent.len() == RECENT_KEPT {
            state.recent.pop_front();
        }
        state.recent.push_back(SecurityEvent {
            kind,
            peer,
            remote_addr,
            detail,
            at: SystemTime::now(),
        });
        drop(state);
        self.recorded_tx.send_modify(|n| *n += 1);
    }

    /// Resolves once at least `at_least` events of `kind` have been recorded (for tests and
    /// health checks that must not poll).
    pub async fn wait_for(&self, kind: SecurityEventKind, at_least: u64) {
        let mut recorded = self.recorded_tx.subscribe();
        while self.count(kind) < at_least {
            if recorded.changed().await.is_err() {
                return;
            }
        }
    }

    /// How many events of `kind` happened since start.
    pub fn count(&self, kind: SecurityEventKind) -> u64 {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.counts.get(&kind).copied().unwrap_or(0)
    }

    /// The most recent events, oldest first.
    pub fn recent(&self) -> Vec<SecurityEvent> {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.recent.iter().cloned().collect()
    }
}
