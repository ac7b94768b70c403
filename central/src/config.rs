//! The hub's configuration: a TOML file (all keys optional, defaults below), then command-line
//! flags on top. Parsed once into [`HubConfig`].
//!
//! ```toml
//! listen = "0.0.0.0:7443"
//! data_dir = "/var/lib/hamgam/hub"
//! trust_domain = "hamgam"
//! shutdown_grace_secs = 10
//!
//! [tls]
//! ca = "/etc/hamgam/pki/ca.crt"
//! cert = "/etc/hamgam/pki/hub.crt"
//! key = "/etc/hamgam/pki/hub.key"
//! crl = "/etc/hamgam/pki/ca.crl"   # optional; re-read when it changes
//! crl_reload_secs = 30
//!
//! [limits]
//! max_batch_records = 500
//! max_batches_in_flight = 4
//! max_message_bytes = 16777216
//! hello_timeout_secs = 10
//! idle_timeout_secs = 120
//! dealer_records_per_sec = 2000   # per dealer, all its sessions; slowed down above it
//! dealer_max_open_calls = 8       # per dealer; RESOURCE_EXHAUSTED above it
//! dealer_calls_per_sec = 20
//! dealer_call_burst = 40
//! max_streams_per_connection = 32
//! judging_slice_ms = 2            # a batch is judged in slices of about this long
//!
//! [storage]
//! cache_mb = 256
//!
//! # HQ's dealer registry (company IDs, staff): rules S03, C05 and Q01 read it.
//! registry = "/etc/hamgam/registry.json"
//!
//! [rules]            # thresholds; `central rules` prints those in force
//! max_km_per_day = 1500
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The whole configuration of `central serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    pub listen: String,
    pub data_dir: PathBuf,
    pub trust_domain: String,
    pub shutdown_grace_secs: u64,
    pub tls: TlsPaths,
    pub limits: Limits,
    pub storage: Storage,
    /// HQ's dealer registry (JSON); without one, the registry parts of S03, C05 and Q01 are
    /// not checked.
    pub registry: Option<PathBuf>,
    /// How often a running hub looks at the registry file for changes, seconds.
    pub registry_reload_secs: u64,
    /// How often a running hub brings HQ's customer summaries up to date, seconds (a report
    /// brings them up to date itself too, so this bounds how much one report has to do); 0:
    /// only when a report asks.
    pub summary_refresh_secs: u64,
    pub rules: crate::rules::RuleConfig,
    /// Lifecycle stage thresholds (days).
    pub lifecycle: crate::lifecycle::LifecycleConfig,
    /// `[metrics]`: the Prometheus listener (off unless `listen` is set).
    pub metrics: Metrics,
    /// `[console]`: the HQ console for browsers (docs/hq-console.md); off unless `listen` is set.
    pub console: Console,
    /// `[enrolment]`: branches enrol and renew with signing requests (off unless `listen` is
    /// set; renewal needs the issuing CA too).
    pub enrolment: Enrolment,
}

/// Enrolment of branches without copying keys (docs/operations.md "Enrolling a branch").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Enrolment {
    /// Where `dealer-agent enroll` connects, e.g. `0.0.0.0:7444`: TLS that authenticates the
    /// hub only, serving nothing but enrolment. Off when unset.
    pub listen: Option<String>,
    /// The issuing CA that signs enrolled and renewed certificates (`central pki init` writes
    /// `issuing.crt` / `issuing.key`). Without it the hub neither enrols nor renews.
    pub issuing_cert: Option<PathBuf>,
    pub issuing_key: Option<PathBuf>,
    /// The enrolment tokens file (default: the registry's, `<registry>.tokens`).
    pub tokens: Option<PathBuf>,
    /// Days an enrolled or renewed dealer certificate is valid; agents renew at 2/3 of it.
    pub certificate_days: i64,
    /// Refused enrolments from one address before it must wait `lockout_secs`.
    pub max_refusals: u32,
    pub lockout_secs: u64,
}

impl Default for Enrolment {
    fn default() -> Self {
        Enrolment {
            listen: None,
            issuing_cert: None,
            issuing_key: None,
            tokens: None,
            certificate_days: 90,
            max_refusals: 5,
            lockout_secs: 600,
        }
    }
}

/// Where the hub serves its Prometheus metrics (docs/metrics.md).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// e.g. `127.0.0.1:9463`; a separate port from gRPC, for loopback or a monitoring network.
    pub listen: Option<String>,
}

/// Where the hub serves the HQ console (HTTPS, HQ client certificates only).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Console {
    /// e.g. `0.0.0.0:7445`: HQ's browsers reach it with their `hq/*` certificate.
    pub listen: Option<String>,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            listen: "127.0.0.1:7443".into(),
            data_dir: PathBuf::from("hub-data"),
            trust_domain: "hamgam".into(),
            shutdown_grace_secs: 10,
            tls: TlsPaths::default(),
            limits: Limits::default(),
            storage: Storage::default(),
            registry: None,
            registry_reload_secs: 10,
            summary_refresh_secs: 5,
            rules: crate::rules::RuleConfig::default(),
            lifecycle: crate::lifecycle::LifecycleConfig::default(),
            metrics: Metrics::default(),
            console: Console::default(),
            enrolment: Enrolment::default(),
        }
    }
}

/// Where the hub's PEM files are.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA's certificate revocation list (PEM, `central pki revoke` writes it); re-read
    /// while the hub runs when it changes.
    pub crl: Option<PathBuf>,
    /// How often the revocation list file is checked for changes, seconds.
    pub crl_reload_secs: u64,
}

impl Default for TlsPaths {
    fn default() -> Self {
        TlsPaths {
            ca: PathBuf::from("pki/ca.crt"),
            cert: PathBuf::from("pki/hub.crt"),
            key: PathBuf::from("pki/hub.key"),
            crl: None,
            crl_reload_secs: 30,
        }
    }
}

/// Bounds on what one agent (and one dealer, over all its connections) may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_batch_records: u32,
    pub max_batches_in_flight: u32,
    pub max_message_bytes: usize,
    pub hello_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    /// Records per second one dealer may sync, on average; a faster dealer is slowed down,
    /// not refused (0 = no limit).
    pub dealer_records_per_sec: u32,
    /// Calls one dealer may have open at once (its sync stream counts); 0 = no limit.
    pub dealer_max_open_calls: u32,
    /// New calls per second one dealer may start (0 = no limit), and how many at once.
    pub dealer_calls_per_sec: u32,
    pub dealer_call_burst: u32,
    /// HTTP/2 streams one connection may have open at once.
    pub max_streams_per_connection: u32,
    /// How long one dealer's batch may hold the judging lock at a stretch, ms: a larger
    /// batch is judged in slices of about this long, so other dealers' batches go in between.
    pub judging_slice_ms: u64,
}

impl Limits {
    /// The per-dealer call limits the edge applies.
    pub fn dealer_limits(&self) -> hamgam_gateway::limits::DealerLimits {
        hamgam_gateway::limits::DealerLimits {
            max_concurrent_calls: self.dealer_max_open_calls,
            calls_per_sec: self.dealer_calls_per_sec,
            call_burst: self.dealer_call_burst,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch_records: 500,
            max_batches_in_flight: 4,
            max_message_bytes: 16 * 1024 * 1024,
            hello_timeout_secs: 10,
            idle_timeout_secs: 120,
            dealer_records_per_sec: 2000,
            dealer_max_open_calls: 8,
            dealer_calls_per_sec: 20,
            dealer_call_burst: 40,
            max_streams_per_connection: 32,
            judging_slice_ms: 2,
        }
    }
}

/// The embedded store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    /// sled page cache; the hub's RSS follows it.
    pub cache_mb: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Storage { cache_mb: 256 }
    }
}

impl HubConfig {
    /// Reads a config file; unknown keys are errors so typos do not pass silently.
    pub fn from_file(path: &Path) -> Result<Self, crate::CentralError> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::CentralError::Config {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        let config: HubConfig = toml::from_str(&text).map_err(|e| crate::CentralError::Config {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        config
            .rules
            .check()
            .and_then(|()| config.lifecycle.check())
            .map_err(|detail| crate::CentralError::Config {
                path: path.to_owned(),
                detail,
            })?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_keeps_defaults_and_a_typo_is_refused() {
        let config: HubConfig =
            toml::from_str("listen = \"0.0.0.0:9000\"\n[limits]\nmax_batch_records = 50\n")
                .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.limits.max_batch_records, 50);
        assert_eq!(config.limits.max_batches_in_flight, 4);
        let err = toml::from_str::<HubConfig>("listne = \"x\"").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
        let rules: HubConfig = toml::from_str("[rules]\nmax_km_per_day = 900\n").unwrap();
        assert_eq!(rules.rules.max_km_per_day, 900);
        assert_eq!(rules.rules.warranty_km, 60_000);
        let err = toml::from_str::<HubConfig>("[rules]\nmax_km_per_dya = 900\n").unwrap_err();
        assert!(err.to_string().contains("max_km_per_dya"), "{err}");
        let zero: HubConfig = toml::from_str("[rules]\nbunching_tail_days = 0\n").unwrap();
        assert!(zero
            .rules
            .check()
            .unwrap_err()
            .contains("bunching_tail_days"));
    }

    #[test]
    fn the_shipped_example_config_parses() {
        let config: HubConfig =
            toml::from_str(include_str!("../../deploy/hub.example.toml")).unwrap();
        assert_eq!(config.listen, "0.0.0.0:7443");
        assert_eq!(
            config.limits.max_batch_records,
            Limits::default().max_batch_records
        );
        // The example lists the rule defaults: it must not drift from them.
        assert_eq!(config.rules, crate::rules::RuleConfig::default());
    }
}
