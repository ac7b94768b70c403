//! The sync protocol session of both ends.
//!
//! One long-lived bidirectional stream per agent (`hamgam.sync.v1.DealerSync/Sync`):
//!
//! 1. the agent sends `AgentHello`; the hub checks the dealer named there is the dealer the
//!    certificate proves, measures the clock offset, and answers `HubHello` with the highest
//!    `seq` it holds durably for that dealer;
//! 2. the agent sends `RecordBatch`es of consecutive records from there, up to
//!    `max_batches_in_flight` before it waits for an ack;
//! 3. the hub answers each batch with a `BatchAck` (verdicts included) only once every record of
//!    the batch is durable (it applies the next batch meanwhile); re-sent records (seq already held) change nothing and get their
//!    stored verdicts again.
//!
//! [`server`] runs the hub side over an [`Ingest`]; [`client`] runs the agent side over an
//! [`Outbox`]. Neither knows how records are stored or judged.

pub mod client;
pub mod server;

pub use client::{Outbox, OutboxError, SessionMode, SessionOptions, SessionReport, SyncError};
pub use server::{
    DealerSyncService, Durable, Ingest, IngestError, IngestOutcome, RestorePage, SessionLimits,
    VerdictFeed, RESTORE_PAGE_RECORDS,
};

/// Milliseconds since the Unix epoch by this machine's clock ([`crate::Clock::System`]; parts
/// that judge by time take a [`crate::Clock`] instead).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
