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
    /// `count` records of `dealer` cycling through `payloads`. Each cycle, and each dealer, gets
    /// its own customers, vehicles and numbers ([`variant`]), so the hub's history rules see a
    /// realistic network, not one car sold a thousand times.
    pub fn new(dealer: DealerId, payloads: &[Payload], count: usize) -> Self {
        let dealer_salt = dealer.as_str().bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        let records = (0..count)
            .map(|i| Record {
                record_id: uuid::Uuid::now_v7().to_string(),
                dealer_id: dealer.to_string(),
                seq: i as u64 + 1,
                recorded_at_ms: 1_760_000_000_000 + i as i64,
                hlc: None,
                staff_id: "S-1".into(),
                schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
                withheld: String::new(),
                origin: None,
                payload: Some(variant(
                    &payloads[i % payloads.len()],
                    dealer_salt ^ (i / payloads.len()) as u64,
                )),
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

    fn last_seq(&self) -> Result<u64, OutboxError> {
        Ok(self.records.len() as u64)
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

/// `payload` with its identities made distinct for `salt`: customer, deal, RO and survey refs
/// get a suffix, VINs a new serial (check digit recomputed), mobiles and national IDs new
/// digits (national ID check digit recomputed). The same original value maps to the same new
/// one within a salt, so a car's delivery and its repair orders still meet.
pub fn variant(payload: &Payload, salt: u64) -> Payload {
    use hamgam_proto::values::{national_id_check_digit, Vin};
    let mix = |text: &str| {
        text.bytes().fold(salt ^ 0x9e3779b97f4a7c15, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        })
    };
    let suffix = |r: &str| {
        if r.is_empty() {
            String::new()
        } else {
            format!("{r}~{salt:x}")
        }
    };
    let vin = |v: &str| {
        if v.len() != 17 {
            return v.to_owned();
        }
        let serial = format!("{:06}", mix(v) % 1_000_000);
        let body = format!("{}{}", &v[..11], serial);
        Vin::with_check_digit(&body)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|_| v.to_owned())
    };
    let mobile = |m: &str| {
        let digits: String = hamgam_proto::text::normalize_digits(m)
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        if digits.len() < 10 {
            return m.to_owned();
        }
        format!("0935{:07}", mix(&digits) % 10_000_000)
    };
    let national_id = |n: &str| {
        if n.len() != 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return n.to_owned();
        }
        let first = format!("{}{:06}", &n[..3], mix(n) % 1_000_000);
        format!("{first}{}", national_id_check_digit(&first))
    };
    // A company (fleet customer) of one cycle is another company in the next: else every
    // cycle's organisations would be one customer with thousands of dealer records.
    let company_id = |n: &str| {
        let n = hamgam_proto::text::normalize_digits(n);
        if n.len() != 11 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return n;
        }
        let first = format!("{}{:07}", &n[..3], mix(&n) % 10_000_000);
        format!(
            "{first}{}",
            hamgam_proto::values::company_id_check_digit(&first)
        )
    };
    let mut p = payload.clone();
    match &mut p {
        Payload::Customer(c) => {
            c.customer_ref = suffix(&c.customer_ref);
            c.national_id = national_id(&hamgam_proto::text::normalize_digits(&c.national_id));
            c.mobile = mobile(&c.mobile);
            c.company_national_id = company_id(&c.company_national_id);
        }
        Payload::RetailDelivery(d) => {
            d.vin = vin(&d.vin);
            d.deal_ref = suffix(&d.deal_ref);
            for party in &mut d.parties {
                party.customer_ref = suffix(&party.customer_ref);
            }
        }
        Payload::RepairOrder(ro) => {
            ro.vin = vin(&ro.vin);
            ro.ro_number = suffix(&ro.ro_number);
            ro.owner_ref = suffix(&ro.owner_ref);
            ro.driver_ref = suffix(&ro.driver_ref);
        }
        Payload::Lead(l) => l.customer_ref = suffix(&l.customer_ref),
        Payload::Complaint(c) => {
            c.case_ref = suffix(&c.case_ref);
            c.customer_ref = suffix(&c.customer_ref);
            c.vin = vin(&c.vin);
        }
        Payload::Survey(s) => {
            s.customer_ref = suffix(&s.customer_ref);
            s.subject_ref = suffix(&s.subject_ref);
            s.respondent_mobile = mobile(&s.respondent_mobile);
        }
        Payload::OdometerReplacement(o) => o.vin = vin(&o.vin),
        Payload::VehicleStatus(v) => v.vin = vin(&v.vin),
        Payload::Correction(_) => {}
    }
    p
}
