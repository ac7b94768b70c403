//! Hamgam's secure edge, shared by the hub and the dealership agent.
//!
//! - [`pki`]: the deployment's private CA and the certificates it issues;
//! - [`backup_dir`]: backup folders written atomically (manifest last) and checked on read;
//! - [`files`]: owner-only modes for data folders and private keys (0700 / 0600);
//! - [`identity`]: who a client certificate proves its holder to be (dealer / HQ / ops);
//! - [`tls`]: the rustls mutual-TLS configs of both ends (TLS 1.3, client certificate required);
//! - [`enrolment_tls`]: TLS before an agent has a certificate: the hub authenticated, the
//!   deployment's root pinned by fingerprint;
//! - [`server`]: the hub's TLS accept loop that hands every RPC the verified peer identity,
//!   and graceful serving with a shutdown signal;
//! - [`authz`]: the tower layer that lets each role call only its own services;
//! - [`limits`]: the tower layer that keeps one dealer's calls from crowding out the others;
//! - [`audit`]: security events (refused handshakes, impersonation attempts), logged and counted;
//! - [`client`]: a gRPC channel to the hub over mutual TLS;
//! - [`sync`]: the sync protocol session, hub side over an [`sync::Ingest`] trait and agent side
//!   over an [`sync::Outbox`] trait.
//!
//! What is *not* here: storage, validation rules, anything about what a record means.
//! **Only this crate knows about TLS.**

pub mod audit;
pub mod authz;
pub mod backup_dir;
pub mod client;
pub mod clock;
pub mod enrolment_tls;
pub mod files;
pub mod identity;
pub mod limits;
pub mod metrics;
pub mod pki;
pub mod refused;
pub mod revocation;
pub mod server;
pub mod server_cert;
pub mod shutdown;
pub mod sync;
pub mod tls;

pub use clock::Clock;
pub use identity::{DealerId, PeerIdentity, Role};

use std::path::PathBuf;

/// Errors of the secure edge.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid {what} `{value}`: expected {rule}")]
    InvalidName {
        what: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("certificate identity refused: {0}")]
    BadIdentity(String),
    #[error("pki: {0}")]
    Pki(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("cannot read {what} file {}: {source}", path.display())]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reach the hub at {addr}: {detail}")]
    Connect { addr: String, detail: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
