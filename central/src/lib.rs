//! Hamgam's hub: receives every dealership's record log over the sync stream, checks it, stores
//! it durably, and answers headquarters' questions about it.
//!
//! - [`wire`]: the one conversion between the wire contract and the domain, and rule R00;
//! - [`domain`]: what the hub stores: records, verdicts, findings, dealer state;
//! - [`model`]: the rest of what the hub stores and its layers share (parties, customers,
//!   vehicles, history groups, tallies), below the store: the store imports nothing above it;
//! - [`content`]: what a record says, in the hub's types (decoded once by [`wire`]);
//! - [`rules`]: the catalogue of RULES.md, its thresholds, the rules, the dealer registry and
//!   the reliability score;
//! - [`judge`]: the rule engine over the store: judges a batch and re-judges what it affects;
//! - [`merge`]: one customer across dealers (identity resolution, golden record with
//!   provenance, conflicts), vehicle histories, and the state digest;
//! - [`rebuild`]: `central admin rebuild`: every projection recomputed from the record log;
//! - [`backup`]: `central admin backup` / `restore`: a consistent backup of the logs, restored
//!   by replaying them and checked by the state digest;
//! - [`ops`]: the ops gRPC API of a running hub (the backup's stream);
//! - [`ingest`]: the pipeline of one batch, idempotent by `(dealer, seq)`, implementing the
//!   gateway's `Ingest` trait;
//! - [`durability`]: group commit, so an ack means durable without an fsync per batch;
//! - [`store`]: the storage trait and its sled implementation;
//! - [`hq`]: the HQ gRPC API;
//! - [`server`]: the gRPC server assembled (TLS edge, authorisation, services, shutdown);
//! - [`config`]: `central serve`'s configuration.
//!
//! The `central` binary (`src/main.rs`) adds the command line: `pki`, `serve`, `query`.

pub mod admin_audit;
pub mod analytics;
pub mod backup;
pub mod config;
pub mod console;
pub mod content;
pub mod dealers;
pub mod domain;
pub mod durability;
pub mod enrolment;
pub mod hq;
pub mod ingest;
pub mod judge;
pub mod lifecycle;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod rebuild;
pub mod rules;
pub mod server;
pub mod store;
pub mod wire;

pub use ingest::Hub;
pub use store::sled_store::SledStore;

use std::path::PathBuf;

/// Errors of the hub library.
#[derive(Debug, thiserror::Error)]
pub enum CentralError {
    #[error("config file {}: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Gateway(#[from] hamgam_gateway::GatewayError),
}
