//! Hamgam's dealership agent: records every staff action durably in a local sled store before
//! saying "saved", and syncs the dealer's log to the hub over mutual-TLS gRPC whenever the link
//! allows. Capture never waits for the network.
//!
//! - [`store`]: the local log (gap-free seq), the outbox position, the hub's verdicts;
//! - [`capture`]: payloads from JSON or `--field name=value` pairs;
//! - [`certificate`]: enrolment with a one-time token and renewal before expiry;
//! - [`jalali`]: Jalali dates in Tehran time and Persian digits, for staff;
//! - [`lang`]: Persian or English, for what staff read;
//! - [`record_form`]: a record as a form: every kind's fields, typed values to payloads and
//!   back (the staff screen's forms, the import's mapping);
//! - [`hlc`]: the hybrid logical clock that stamps every record;
//! - [`import`]: `import FILE --mapping MAP.toml`: a DMS export (CSV, JSON Lines), one record
//!   per source id, resumable;
//! - [`sync_loop`]: `sync` once, or `run` with reconnects and jittered backoff;
//! - [`local_api`]: how `record` / `status` / `verdicts` reach a running agent;
//! - [`local_grpc`]: the local capture API for the dealer's own systems (`hamgam.agent.v1`,
//!   loopback, a token): single and batch capture, verdicts from a cursor, status;
//! - [`restore`]: rebuilding a lost or reset store from the hub, and taking the hub's verdicts
//!   again when the hub is behind;
//! - [`backup`]: `backup --to DIR` and `restore --from DIR`: a copy of the branch's own store;
//! - [`metrics`]: the branch's Prometheus figures for `run`;
//! - [`web`]: the staff screen `run` serves (`[web]`): Persian, right to left, logins;
//! - [`staff`]: the staff accounts it logs in (`dealer-agent staff ...`);
//! - [`config`]: the agent's configuration.
//!
//! The `dealer-agent` binary (`src/main.rs`) adds the command line.

pub mod backup;
pub mod capture;
pub mod certificate;
pub mod config;
pub mod hlc;
pub mod import;
/// The Jalali calendar, shared with the hub's HQ console (`hamgam_proto::jalali`).
pub use hamgam_proto::jalali;
pub mod lang;
pub mod local_api;
pub mod local_grpc;
pub mod metrics;
pub mod record_form;
pub mod restore;
pub mod staff;
pub mod store;
pub mod sync_loop;
pub mod web;

pub use store::AgentStore;
pub mod simulate;

/// A certificate time (Unix ms) for logs and messages: RFC 3339, UTC.
pub fn certificate_time(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}
