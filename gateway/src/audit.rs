//! Security events: every refusal at the edge (a failed handshake, a certificate without a valid
//! identity, a role calling another role's service, a dealer pushing another dealer's records) is
//! logged under the `hamgam::security` target and counted, never silently dropped.
//!
//! A flood from one peer (its certificate identity, or its IP address before it has one) is
//! throttled: the first event of each kind (and, for handshakes, each reason) per peer and
//! second is logged in full; the others are held and counted, and a second after the first of
//! them one summary line names them by kind ("3 more: 2 HandshakeRefused (Expired),
//! 1 ProtocolViolation"). The summary goes out on time whether or not the peer sends anything
//! more: a background task started by the first held event (inside a tokio runtime) logs it
//! when due, and every later event logs the summaries due before it. What is logged is a pure
//! function of the events and their times ([`LogThrottle`]), tested without a clock.
//!
//! Events name the peer by its certificate identity and address; they never carry record
//! contents or personal data.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::time::Instant;

/// What kind of refusal happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    /// An enrolment was refused: an unknown, expired or used token, a token for another
    /// dealer, a bad signing request, or too many attempts from one address.
    EnrolmentRefused,
    /// A certificate was issued: enrolment or renewal (not a refusal; kept in the same log so
    /// every certificate the hub signed is on record).
    CertificateIssued,
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
/// Log lines kept for [`SecurityAudit::logged`].
const LOGGED_KEPT: usize = 256;

/// The hub's security log: counts per kind, the most recent events, and the throttled log.
#[derive(Debug, Clone)]
pub struct SecurityAudit {
    inner: Arc<Mutex<AuditState>>,
    recorded_tx: Arc<tokio::sync::watch::Sender<u64>>,
    /// `hamgam_security_events_total{kind, reason}` (reason: a refused handshake's).
    events_total: Family<Vec<(&'static str, String)>, Counter>,
}

impl Default for SecurityAudit {
    fn default() -> Self {
        SecurityAudit {
            inner: Arc::default(),
            recorded_tx: Arc::new(tokio::sync::watch::channel(0).0),
            events_total: Family::default(),
        }
    }
}

#[derive(Debug, Default)]
struct AuditState {
    counts: HashMap<SecurityEventKind, u64>,
    recent: VecDeque<SecurityEvent>,
    throttle: LogThrottle,
    /// The lines the log got, most recent last.
    logged: VecDeque<String>,
    /// A task is waiting to log the next due summary.
    flusher_running: bool,
}

/// At most one full log line per kind (and reason) and peer in this time; the others are held
/// and summarised at most this long after the first of them.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

impl SecurityAudit {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `hamgam_security_events_total{kind, reason}` in `registry`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register(
            "hamgam_security_events",
            "Security events (refusals) by kind, and a refused handshake's reason (Expired, NotValidYet, Revoked, UnknownIssuer, NoCertificate, Timeout, other)",
            self.events_total.clone(),
        );
    }

    /// Logs (or holds for the next summary) and counts one event.
    pub fn record(
        &self,
        kind: SecurityEventKind,
        peer: Option<String>,
        remote_addr: Option<SocketAddr>,
        detail: impl Into<String>,
    ) {
        self.record_at(Instant::now(), kind, peer, remote_addr, detail.into());
    }

    fn record_at(
        &self,
        now: Instant,
        kind: SecurityEventKind,
        peer: Option<String>,
        remote_addr: Option<SocketAddr>,
        detail: String,
    ) {
        let reason = match kind {
            SecurityEventKind::HandshakeRefused => handshake_reason(&detail).unwrap_or("other"),
            _ => "",
        };
        self.events_total
            .get_or_create(&vec![
                ("kind", format!("{kind:?}")),
                ("reason", reason.to_owned()),
            ])
            .inc();
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *state.counts.entry(kind).or_default() += 1;
        let lines = state
            .throttle
            .event(now, kind, peer.as_deref(), remote_addr, &detail);
        state.log(lines);
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
        // Outside a runtime (a CLI, a sync test) the held events are summarised by the next
        // event or by `flush_due`.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let start_flusher = runtime.is_some()
            && state.throttle.next_due().is_some()
            && !std::mem::replace(&mut state.flusher_running, true);
        drop(state);
        if let (true, Some(runtime)) = (start_flusher, runtime) {
            // Spawned without the lock held: a runtime shutting down drops the task at once,
            // and its guard takes the lock to clear the flag.
            let running = Running {
                audit: Arc::downgrade(&self.inner),
                armed: true,
            };
            runtime.spawn(flush_when_due(running));
        }
        self.recorded_tx.send_modify(|n| *n += 1);
    }

    /// Logs every summary due at `now` (the background task calls this; so may a caller that
    /// runs without a tokio runtime, or a test with a time of its own).
    pub fn flush_due(&self, now: Instant) {
        let mut state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let lines = state.throttle.flush_due(now);
        state.log(lines);
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

    /// The most recent lines the security log got (full events and summaries), oldest first.
    pub fn logged(&self) -> Vec<String> {
        let state = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        state.logged.iter().cloned().collect()
    }
}

impl AuditState {
    fn log(&mut self, lines: Vec<LogLine>) {
        for line in lines {
            let text = line.to_string();
            tracing::warn!(
                target: "hamgam::security",
                kind = %line.kinds(),
                peer = %line.peer,
                remote_addr = %line.remote_addr.map(|a| a.to_string()).unwrap_or_else(|| "-".into()),
                "{text}"
            );
            if self.logged.len() == LOGGED_KEPT {
                self.logged.pop_front();
            }
            self.logged.push_back(text);
        }
    }
}

/// The flusher task's claim on `flusher_running`. A runtime shutting down drops the task
/// (even before its first poll); the flag is cleared then, so the next held event starts
/// another task (no other can be running while it is set).
struct Running {
    audit: Weak<Mutex<AuditState>>,
    armed: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let (true, Some(inner)) = (self.armed, self.audit.upgrade()) {
            inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .flusher_running = false;
        }
    }
}

/// Sleeps until the next summary is due and logs it, until nothing is held; ends when the
/// audit is dropped. Holds the audit weakly, so a dropped hub does not stay alive for it.
async fn flush_when_due(mut running: Running) {
    let audit = running.audit.clone();
    loop {
        let due = {
            let Some(inner) = audit.upgrade() else { return };
            let mut state = inner.lock().unwrap_or_else(|p| p.into_inner());
            match state.throttle.next_due() {
                Some(due) => due,
                None => {
                    // Cleared under the same lock that found nothing held: an event held
                    // after this starts a new task.
                    state.flusher_running = false;
                    running.armed = false;
                    return;
                }
            }
        };
        tokio::time::sleep_until(due).await;
        let Some(inner) = audit.upgrade() else { return };
        let mut state = inner.lock().unwrap_or_else(|p| p.into_inner());
        let lines = state.throttle.flush_due(Instant::now());
        state.log(lines);
    }
}

/// Which log lines a stream of events makes, given when each happened: full lines and
/// summaries of what was held. Pure (times are passed in), so tests choose them.
#[derive(Debug, Default)]
pub struct LogThrottle {
    peers: HashMap<String, PeerLines>,
    /// The earliest summary due, if any is.
    next_due: Option<Instant>,
    /// When peers with nothing held and no line in the last second are next forgotten.
    next_prune: Option<Instant>,
}

#[derive(Debug, Default)]
struct PeerLines {
    /// When the last full line of each kind and reason was logged.
    last_full: HashMap<Label, Instant>,
    /// Events held since the last summary, by kind and reason.
    held: BTreeMap<Label, u64>,
    /// When the summary of `held` is due: a second after the first held event.
    due: Option<Instant>,
    /// The address of the last held event.
    remote_addr: Option<SocketAddr>,
}

/// What a log line counts events by: their kind, and for handshakes the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Label {
    kind: SecurityEventKind,
    reason: Option<&'static str>,
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            Some(reason) => write!(f, "{:?} ({reason})", self.kind),
            None => write!(f, "{:?}", self.kind),
        }
    }
}

impl Label {
    fn of(kind: SecurityEventKind, detail: &str) -> Label {
        let reason = match kind {
            SecurityEventKind::HandshakeRefused => handshake_reason(detail),
            _ => None,
        };
        Label { kind, reason }
    }
}

/// The reason of a refused handshake, from rustls's error text: a few stable names, so a
/// flood of expired certificates does not hide the first one from another CA.
fn handshake_reason(detail: &str) -> Option<&'static str> {
    let d = detail.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| d.contains(w));
    if has(&["not finished within"]) {
        Some("Timeout")
    } else if has(&["notvalidyet", "not valid yet", "not valid before"]) {
        Some("NotValidYet")
    } else if has(&["expired", "not valid after"]) {
        Some("Expired")
    } else if has(&["revoked"]) {
        Some("Revoked")
    } else if has(&["unknownissuer", "unknown issuer"]) {
        Some("UnknownIssuer")
    } else if has(&[
        "no certificates",
        "no client certificate",
        "certificaterequired",
    ]) {
        Some("NoCertificate")
    } else {
        None
    }
}

/// One line for the security log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The peer's identity, its IP address, or `-`.
    pub peer: String,
    pub remote_addr: Option<SocketAddr>,
    pub what: LineKind,
}

/// A full event, or a summary of held ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    Event {
        kind: SecurityEventKind,
        detail: String,
    },
    /// `(kind and reason, count)`, most first.
    Summary { held: Vec<(String, u64)> },
}

impl LogLine {
    fn kinds(&self) -> String {
        match &self.what {
            LineKind::Event { kind, .. } => format!("{kind:?}"),
            LineKind::Summary { held } => held
                .iter()
                .map(|(label, _)| label.as_str())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.what {
            LineKind::Event { detail, .. } => write!(f, "security event: {detail}"),
            LineKind::Summary { held } => {
                let total: u64 = held.iter().map(|(_, n)| n).sum();
                let parts: Vec<String> = held.iter().map(|(l, n)| format!("{n} {l}")).collect();
                write!(
                    f,
                    "security events from {} not logged one by one: {total} more: {}",
                    self.peer,
                    parts.join(", ")
                )
            }
        }
    }
}

impl LogThrottle {
    /// The lines one event at `now` makes: the summaries due by then (of any peer), then the
    /// event itself unless one like it from this peer was logged less than a second ago.
    pub fn event(
        &mut self,
        now: Instant,
        kind: SecurityEventKind,
        peer: Option<&str>,
        remote_addr: Option<SocketAddr>,
        detail: &str,
    ) -> Vec<LogLine> {
        let mut lines = self.flush_due(now);
        // Before a handshake there is no identity; every connection has a new port.
        let key = match (peer, remote_addr) {
            (Some(peer), _) => peer.to_owned(),
            (None, Some(addr)) => addr.ip().to_string(),
            (None, None) => "-".to_owned(),
        };
        let label = Label::of(kind, detail);
        let entry = self.peers.entry(key.clone()).or_default();
        let last = entry.last_full.get(&label).copied();
        if last.is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY) {
            entry.last_full.insert(label, now);
            lines.push(LogLine {
                peer: key,
                remote_addr,
                what: LineKind::Event {
                    kind,
                    detail: detail.to_owned(),
                },
            });
        } else {
            *entry.held.entry(label).or_default() += 1;
            entry.remote_addr = remote_addr;
            let due = *entry.due.get_or_insert(now + LOG_EVERY);
            self.next_due = Some(self.next_due.map_or(due, |d| d.min(due)));
        }
        if self.next_prune.is_none() {
            self.next_prune = Some(now + LOG_EVERY);
        }
        lines
    }

    /// The summaries due at `now`, one per peer, naming the held events by kind.
    pub fn flush_due(&mut self, now: Instant) -> Vec<LogLine> {
        let due = self.next_due.is_some_and(|d| d <= now);
        let prune = self.next_prune.is_some_and(|d| d <= now);
        if !due && !prune {
            return Vec::new();
        }
        let mut lines = Vec::new();
        let mut next_due: Option<Instant> = None;
        for (peer, entry) in &mut self.peers {
            match entry.due {
                Some(d) if d <= now => {
                    let mut held: Vec<(Label, u64)> =
                        std::mem::take(&mut entry.held).into_iter().collect();
                    held.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                    entry.due = None;
                    lines.push(LogLine {
                        peer: peer.clone(),
                        remote_addr: entry.remote_addr,
                        what: LineKind::Summary {
                            held: held.into_iter().map(|(l, n)| (l.to_string(), n)).collect(),
                        },
                    });
                }
                Some(d) => next_due = Some(next_due.map_or(d, |n| n.min(d))),
                None => {}
            }
        }
        self.next_due = next_due;
        if prune {
            self.peers.retain(|_, entry| {
                entry
                    .last_full
                    .retain(|_, at| now.saturating_duration_since(*at) < LOG_EVERY);
                entry.due.is_some() || !entry.last_full.is_empty()
            });
            self.next_prune = (!self.peers.is_empty()).then(|| now + LOG_EVERY);
        }
        // Summaries in a stable order (the map's is not).
        lines.sort_by(|a, b| a.peer.cmp(&b.peer));
        lines
    }

    /// When the next summary is due, if anything is held.
    pub fn next_due(&self) -> Option<Instant> {
        self.next_due
    }

    /// How many peers it remembers (those with a line in the last second or held events).
    pub fn peers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SecurityEventKind::*;

    const MS: Duration = Duration::from_millis(1);

    fn addr(last: u8, port: u16) -> Option<SocketAddr> {
        Some(SocketAddr::from(([10, 0, 0, last], port)))
    }

    fn texts(lines: &[LogLine]) -> Vec<String> {
        lines.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn held_events_are_summarised_a_second_after_the_first_without_another_event() {
        let t0 = Instant::now();
        let mut log = LogThrottle::default();
        let dealer = Some("dealer/D-1042");
        let mut lines = Vec::new();
        lines.extend(log.event(t0, RoleRefused, dealer, addr(1, 1), "first"));
        lines.extend(log.event(t0 + 100 * MS, RoleRefused, dealer, addr(1, 2), "second"));
        lines.extend(log.event(t0 + 200 * MS, ProtocolViolation, dealer, addr(1, 2), "p1"));
        lines.extend(log.event(t0 + 300 * MS, ProtocolViolation, dealer, addr(1, 2), "p2"));
        lines.extend(log.event(t0 + 400 * MS, RoleRefused, dealer, addr(1, 3), "third"));
        assert_eq!(
            texts(&lines),
            ["security event: first", "security event: p1"],
            "the first of each kind in full"
        );
        // The first held event came at 100 ms: its summary is due at 1100 ms, not before.
        assert_eq!(log.next_due(), Some(t0 + 1100 * MS));
        assert!(log.flush_due(t0 + 1099 * MS).is_empty());
        let summary = log.flush_due(t0 + 1100 * MS);
        assert_eq!(
            texts(&summary),
            [
                "security events from dealer/D-1042 not logged one by one: 3 more: \
              2 RoleRefused, 1 ProtocolViolation"
            ]
        );
        assert_eq!(summary[0].remote_addr, addr(1, 3));
        assert_eq!(log.next_due(), None, "nothing held any more");
        assert!(log.flush_due(t0 + 5000 * MS).is_empty());
    }

    #[test]
    fn every_event_is_either_logged_in_full_or_counted_in_a_summary() {
        let t0 = Instant::now();
        let mut log = LogThrottle::default();
        let kinds = [RoleRefused, DealerMismatch, RateLimited, StreamTimeout];
        let mut events = 0u64;
        let mut accounted = 0u64;
        for i in 0..5_000u32 {
            let at = t0 + Duration::from_millis(u64::from(i) * 7);
            let peer = format!("dealer/D-{}", i % 3);
            let lines = log.event(at, kinds[(i % 4) as usize], Some(&peer), None, "x");
            events += 1;
            for line in lines {
                accounted += match line.what {
                    LineKind::Event { .. } => 1,
                    LineKind::Summary { held } => held.iter().map(|(_, n)| n).sum(),
                };
            }
        }
        for line in log.flush_due(t0 + Duration::from_secs(3600)) {
            if let LineKind::Summary { held } = line.what {
                accounted += held.iter().map(|(_, n)| n).sum::<u64>();
            }
        }
        assert_eq!(accounted, events);
    }

    #[test]
    fn a_flood_of_one_handshake_refusal_does_not_hide_another_reason_from_the_same_address() {
        let t0 = Instant::now();
        let mut log = LogThrottle::default();
        let mut lines = Vec::new();
        for i in 0..3 {
            lines.extend(log.event(
                t0 + i * MS,
                HandshakeRefused,
                None,
                addr(7, 40_000 + i as u16),
                "TLS handshake failed: invalid peer certificate: Expired",
            ));
        }
        lines.extend(log.event(
            t0 + 10 * MS,
            HandshakeRefused,
            None,
            addr(7, 40_010),
            "TLS handshake failed: invalid peer certificate: UnknownIssuer",
        ));
        lines.extend(log.event(
            t0 + 20 * MS,
            HandshakeRefused,
            None,
            addr(8, 1),
            "TLS handshake failed: invalid peer certificate: Expired",
        ));
        assert_eq!(lines.len(), 3, "{:?}", texts(&lines));
        assert_eq!(lines[2].peer, "10.0.0.8", "another address is another peer");
        let summary = log.flush_due(t0 + 1001 * MS);
        assert_eq!(
            texts(&summary),
            [
                "security events from 10.0.0.7 not logged one by one: 2 more: \
              2 HandshakeRefused (Expired)"
            ]
        );
    }

    #[test]
    fn the_same_kind_a_second_later_is_logged_in_full_again() {
        let t0 = Instant::now();
        let mut log = LogThrottle::default();
        let peer = Some("ops/alice");
        assert_eq!(log.event(t0, RoleRefused, peer, None, "a").len(), 1);
        assert_eq!(
            log.event(t0 + 999 * MS, RoleRefused, peer, None, "b").len(),
            0
        );
        let lines = log.event(t0 + 1000 * MS, RoleRefused, peer, None, "c");
        assert_eq!(texts(&lines), ["security event: c"]);
        // The summary of "b" (due at 1999 ms) comes before the next event's own line.
        let lines = log.event(t0 + 2500 * MS, RoleRefused, peer, None, "d");
        assert_eq!(
            texts(&lines),
            [
                "security events from ops/alice not logged one by one: 1 more: 1 RoleRefused",
                "security event: d"
            ]
        );
    }

    #[test]
    fn quiet_peers_are_forgotten() {
        let t0 = Instant::now();
        let mut log = LogThrottle::default();
        for i in 0..1000u32 {
            log.event(t0, RateLimited, None, addr((i % 250) as u8, 1), "x");
            log.event(t0, RateLimited, Some(&format!("dealer/D-{i}")), None, "x");
        }
        assert_eq!(log.peers(), 1250);
        log.flush_due(t0 + 2 * LOG_EVERY);
        assert_eq!(log.peers(), 0);
    }

    #[test]
    fn handshake_reasons_are_named() {
        for (detail, reason) in [
            ("invalid peer certificate: Expired", Some("Expired")),
            (
                "certificate expired: verification time 1 (UNIX)",
                Some("Expired"),
            ),
            ("invalid peer certificate: NotValidYet", Some("NotValidYet")),
            (
                "invalid peer certificate: UnknownIssuer",
                Some("UnknownIssuer"),
            ),
            ("invalid peer certificate: Revoked", Some("Revoked")),
            ("peer sent no certificates", Some("NoCertificate")),
            ("TLS handshake not finished within 10s", Some("Timeout")),
            ("received corrupt message", None),
        ] {
            assert_eq!(handshake_reason(detail), reason, "{detail}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_background_task_logs_the_summary_when_due_on_tokio_time() {
        let audit = SecurityAudit::new();
        let peer = || Some("dealer/D-7".to_owned());
        audit.record(RoleRefused, peer(), addr(1, 1), "one");
        audit.record(RoleRefused, peer(), addr(1, 1), "two");
        audit.record(DealerMismatch, peer(), addr(1, 1), "three");
        audit.record(DealerMismatch, peer(), addr(1, 1), "four");
        audit.record(DealerMismatch, peer(), addr(1, 1), "five");
        assert_eq!(
            audit.logged(),
            ["security event: one", "security event: three"]
        );
        tokio::time::advance(LOG_EVERY - MS).await;
        tokio::task::yield_now().await;
        assert_eq!(audit.logged().len(), 2, "not due yet");
        // Past the due time the paused clock wakes the task; nothing else is recorded.
        tokio::time::sleep(2 * MS).await;
        assert_eq!(
            audit.logged()[2..],
            [
                "security events from dealer/D-7 not logged one by one: 3 more: \
              2 DealerMismatch, 1 RoleRefused"
            ]
        );
        assert_eq!(audit.count(RoleRefused), 2);
        assert_eq!(audit.count(DealerMismatch), 3);
        assert_eq!(
            audit.recent().len(),
            5,
            "every event is kept with its detail"
        );

        // Quiet again, the task has ended; the next held event starts another.
        tokio::time::sleep(LOG_EVERY).await;
        audit.record(RoleRefused, peer(), None, "six");
        audit.record(RoleRefused, peer(), None, "seven");
        tokio::time::sleep(LOG_EVERY + MS).await;
        assert_eq!(
            audit.logged()[3..],
            [
                "security event: six",
                "security events from dealer/D-7 not logged one by one: 1 more: 1 RoleRefused"
            ]
        );
    }

    #[test]
    fn a_runtime_dropping_the_flusher_lets_the_next_held_event_start_another() {
        let audit = SecurityAudit::new();
        let flusher_running = || audit.inner.lock().unwrap().flusher_running;
        for _ in 0..2 {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap();
            runtime.block_on(async {
                audit.record(RateLimited, Some("dealer/D-1".into()), None, "a");
                audit.record(RateLimited, Some("dealer/D-1".into()), None, "b");
            });
            assert!(
                flusher_running(),
                "a flusher was spawned for the held event"
            );
            drop(runtime);
            assert!(
                !flusher_running(),
                "its runtime dropped it, and the flag with it"
            );
        }
    }

    #[test]
    fn without_a_runtime_the_next_event_or_flush_due_logs_the_summary() {
        let audit = SecurityAudit::new();
        let t0 = Instant::now();
        let hq = || Some("hq/x".to_owned());
        audit.record_at(t0, RoleRefused, hq(), None, "a".into());
        audit.record_at(t0 + MS, RoleRefused, hq(), None, "b".into());
        assert_eq!(audit.logged().len(), 1);
        audit.flush_due(t0 + LOG_EVERY);
        assert_eq!(audit.logged().len(), 1, "due a second after the held event");
        audit.flush_due(t0 + LOG_EVERY + MS);
        assert_eq!(
            audit.logged()[1],
            "security events from hq/x not logged one by one: 1 more: 1 RoleRefused"
        );
        // Held again; this time another peer's event is what logs it.
        audit.record_at(t0 + 1500 * MS, RoleRefused, hq(), None, "c".into());
        audit.record_at(t0 + 1600 * MS, RoleRefused, hq(), None, "held".into());
        audit.record_at(
            t0 + 3000 * MS,
            RoleRefused,
            Some("hq/y".into()),
            None,
            "d".into(),
        );
        assert_eq!(
            audit.logged()[2..],
            [
                "security event: c",
                "security events from hq/x not logged one by one: 1 more: 1 RoleRefused",
                "security event: d"
            ]
        );
    }
}
