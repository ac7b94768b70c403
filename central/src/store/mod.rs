//! The hub's storage, behind a narrow trait so that rules, merge and the HQ API never see the
//! engine. sled ([`sled_store::SledStore`]) is the embedded default; a PostgreSQL-compatible
//! backend for a multi-node hub is on the roadmap and would implement the same trait.
//!
//! **Invariant:** [`HubStore::apply`] is atomic (all of a change or none of it) and
//! [`HubStore::flush`] makes everything applied before it durable. The hub acks a batch only
//! after a flush that began after the batch was applied.

pub mod sled_store;

use crate::domain::{DealerState, StoredRecord};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("stored value under {key} does not decode: {detail}")]
    Corrupt { key: String, detail: String },
}

/// One atomic change: new records of one dealer and the dealer's new state.
#[derive(Debug, Clone)]
pub struct Append {
    pub dealer_id: String,
    pub state: DealerState,
    pub records: Vec<StoredRecord>,
}

/// What the hub needs from its storage.
pub trait HubStore: Send + Sync + 'static {
    /// A dealer's sync state, if the hub has heard from it.
    fn dealer(&self, dealer_id: &str) -> Result<Option<DealerState>, StoreError>;
    /// Every dealer, ordered by id.
    fn dealers(&self) -> Result<Vec<(String, DealerState)>, StoreError>;
    /// Saves a dealer's state alone (a session opened).
    fn save_dealer(&self, dealer_id: &str, state: &DealerState) -> Result<(), StoreError>;
    /// The record a dealer holds at `seq`.
    fn record(&self, dealer_id: &str, seq: u64) -> Result<Option<StoredRecord>, StoreError>;
    /// Up to `limit` records of a dealer with seq greater than `after_seq`, ascending.
    fn records(
        &self,
        dealer_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Where a record id is stored: its dealer and seq.
    fn locate(&self, record_id: &str) -> Result<Option<(String, u64)>, StoreError>;
    /// Applies a change atomically; it is durable only after the next [`HubStore::flush`].
    fn apply(&self, change: &Append) -> Result<(), StoreError>;
    /// Makes everything applied so far durable. Blocking; call it from one flusher task.
    fn flush(&self) -> Result<(), StoreError>;
}
