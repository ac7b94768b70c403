//! The agent's configuration: a TOML file, then flags on top. Parsed once into [`AgentConfig`].
//!
//! ```toml
//! dealer_id = "D-1042"
//! staff_id = "front-desk"          # default staff code for records made from this PC
//! data_dir = "/var/lib/hamgam/agent"
//! trust_domain = "hamgam"
//!
//! [hub]
//! addr = "hub.example.ir:7443"
//! server_name = "hub.example.ir"   # the name on the hub's certificate
//!
//! [tls]
//! ca = "/etc/hamgam/ca.crt"
//! cert = "/etc/hamgam/dealer-D-1042.crt"
//! key = "/etc/hamgam/dealer-D-1042.key"
//!
//! [local_api]                      # the local capture API (docs/local-api.md); these are the defaults
//! grpc_listen = "127.0.0.1:50761"
//! token_file = "/var/lib/hamgam/agent/local-api.token"
//!
//! [sync]
//! batch_records = 500
//! batches_in_flight = 4
//! backoff_initial_ms = 500
//! backoff_max_ms = 30000
//! ```

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The whole configuration of the agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentConfig {
    pub dealer_id: String,
    pub staff_id: String,
    pub data_dir: PathBuf,
    /// SPIFFE trust domain of the deployment's certificates.
    pub trust_domain: String,
    pub hub: HubAddress,
    pub tls: TlsPaths,
    pub sync: SyncSettings,
    pub metrics: MetricsSettings,
    /// `[web]`: the staff screen of `dealer-agent run`; off when the section is absent.
    pub web: Option<WebSettings>,
    /// `[local_api]`: the local capture API of `dealer-agent run` (docs/local-api.md).
    pub local_api: LocalApiSettings,
}

/// `[local_api]`: where `dealer-agent run` serves `hamgam.agent.v1.LocalCapture`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalApiSettings {
    /// A loopback host:port (default `127.0.0.1:50761`); empty turns the API off.
    pub grpc_listen: String,
    /// The bearer token's file (default: `local-api.token` in the data folder), made owner-only
    /// at the first run.
    pub token_file: Option<PathBuf>,
}

impl Default for LocalApiSettings {
    fn default() -> Self {
        LocalApiSettings {
            grpc_listen: crate::local_grpc::DEFAULT_LISTEN.into(),
            token_file: None,
        }
    }
}

impl AgentConfig {
    /// The local capture API's token file.
    pub fn local_api_token_file(&self) -> PathBuf {
        self.local_api
            .token_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("local-api.token"))
    }
}

/// `[web]`: where `dealer-agent run` serves the staff screen (`crate::web`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// host:port: a loopback address (plain HTTP, the staff PC's own browser), or a LAN address,
    /// which needs `tls_certificate` and `tls_key`.
    pub listen: String,
    /// A session unused this long is ended (staff log in again).
    pub idle_minutes: u64,
    /// PEM certificate chain for the screen's HTTPS (a LAN address needs it).
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key of `tls_certificate` (owner-only file).
    pub tls_key: Option<PathBuf>,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            listen: "127.0.0.1:8080".into(),
            idle_minutes: 30,
            tls_certificate: None,
            tls_key: None,
        }
    }
}

/// `[metrics]`: where `dealer-agent run` serves its Prometheus metrics (off when absent).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// e.g. `127.0.0.1:9464`: keep it on loopback (a node exporter or agent forwards it).
    pub listen: Option<String>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            dealer_id: String::new(),
            staff_id: "staff".into(),
            data_dir: PathBuf::from("agent-data"),
            trust_domain: "hamgam".into(),
            hub: HubAddress::default(),
            tls: TlsPaths::default(),
            sync: SyncSettings::default(),
            metrics: MetricsSettings::default(),
            web: None,
            local_api: LocalApiSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubAddress {
    pub addr: String,
    pub server_name: String,
}

impl Default for HubAddress {
    fn default() -> Self {
        HubAddress {
            addr: "127.0.0.1:7443".into(),
            server_name: "localhost".into(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    pub batch_records: u32,
    pub batches_in_flight: u32,
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            batch_records: 500,
            batches_in_flight: 4,
            backoff_initial_ms: 500,
            backoff_max_ms: 30_000,
        }
    }
}

impl AgentConfig {
    /// Reads a config file; unknown keys are errors so typos do not pass silently.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_config_parses_and_typos_are_refused() {
        let config: AgentConfig =
            toml::from_str(include_str!("../../deploy/agent.example.toml")).unwrap();
        assert_eq!(config.dealer_id, "D-1042");
        assert_eq!(config.hub.server_name, "hub.example.ir");
        assert!(toml::from_str::<AgentConfig>("dealer = \"D-1\"").is_err());
        // The example's `[web]` is commented out: the screen stays off until ops turn it on.
        assert!(config.web.is_none());
        let on: AgentConfig = toml::from_str("[web]\n").unwrap();
        let web = on.web.unwrap();
        assert_eq!(
            (web.listen.as_str(), web.idle_minutes),
            ("127.0.0.1:8080", 30)
        );
        assert!(toml::from_str::<AgentConfig>("[web]\nlisen = \"x\"").is_err());
    }
}
