//! An in-memory outbox for load generators: holds pre-built records of one dealer and counts
//! acks, so ingest figures measure the hub rather than the generator's disk.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hamgam_gateway::sync::{Outbox, OutboxError};
use hamgam_gateway::DealerId;
use hamgam_proto::record::v1::{record::Payload, Record, Verdict};
use tokio::sync::Notify;

/// Counts sessions that reached the hub's hello, across many outboxes.
#[derive(Debug, Default)]
pub struct Opened {
    pub count: AtomicU64,
    pub notify: Notify,
}

pub struct MemoryOutbox {
    dealer: DealerId,
    records: Vec<Record>,
    acked: AtomicU64,
    verdict_cursor: AtomicU64,
    opened: Option<Arc<Opened>>,
}

impl MemoryOutbox {
    /// `count` records of `dealer` cycling through `payloads`.
    pub fn new(dealer: DealerId, payloads: &[Payload], count: usize) -> Self {
        let records = (0..count)
            .map(|i| Record {
                record_id: uuid::Uuid::now_v7().to_string(),
                dealer_id: dealer.to_string(),
                seq: i as u64 + 1,
                recorded_at_ms: 1_760_000_000_000 + i as i64,
                hlc: None,
                staff_id: "S-1".into(),
                schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
                payload: Some(payloads[i % payloads.len()].clone()),
            })
            .collect();
        MemoryOutbox {
            dealer,
            records,
            acked: AtomicU64::new(0),
            verdict_cursor: AtomicU64::new(0),
            opened: None,
        }
    }

    /// Reports each session that reached the hub's hello to `opened`.
    pub fn reporting_to(mut self, opened: Arc<Opened>) -> Self {
        self.opened = Some(opened);
        self
    }

    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::SeqCst)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Total encoded bytes of the records.
    pub fn wire_bytes(&self) -> usize {
        use prost::Message;
        self.records.iter().map(|r| r.encoded_len()).sum()
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }
}

impl Outbox for MemoryOutbox {
    fn dealer_id(&self) -> &DealerId {
        &self.dealer
    }

    fn acked_seq(&self) -> Result<u64, OutboxError> {
        if let Some(opened) = &self.opened {
            opened.count.fetch_add(1, Ordering::SeqCst);
            opened.notify.notify_waiters();
        }
        Ok(self.acked.load(Ordering::SeqCst))
    }

    async fn records_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, OutboxError> {
        let from = (after as usize).min(self.records.len());
        let to = (from + limit).min(self.records.len());
        Ok(self.records[from..to].to_vec())
    }

    async fn acknowledge(
        &self,
        stored_seq: u64,
        _verdicts: Vec<Verdict>,
    ) -> Result<(), OutboxError> {
        self.acked.fetch_max(stored_seq, Ordering::SeqCst);
        Ok(())
    }

    async fn wait_for_records_after(&self, _after: u64) {
        std::future::pending::<()>().await
    }

    fn verdict_cursor(&self) -> Result<u64, OutboxError> {
        Ok(self.verdict_cursor.load(Ordering::SeqCst))
    }

    async fn store_verdict_changes(
        &self,
        cursor: u64,
        _verdicts: Vec<Verdict>,
    ) -> Result<(), OutboxError> {
        self.verdict_cursor.fetch_max(cursor, Ordering::SeqCst);
        Ok(())
    }
}
