//! Identity resolution cost per record as the network grows: customer records resolved by the
//! hub's merge ([`hamgam_central::merge::resolve::Resolver`]) against a sled store already
//! holding 10k ... 1M customers. A third of each measured sample shares a national ID with a
//! customer of another dealer, a third shares a mobile and a similar name, a third is new; the
//! figure includes the store writes (parties, blocks, links, golden records). Blocking keeps the
//! cost flat: the ratio of the largest to the smallest size is printed.

use std::collections::HashMap;
use std::time::Instant;

use hamgam_central::domain::{StoredRecord, Verdict};
use hamgam_central::merge::resolve::{RecordSource, Resolver};
use hamgam_central::rules::history::At;
use hamgam_central::rules::RuleConfig;
use hamgam_central::store::{Change, HubStore, StoreError};
use hamgam_central::SledStore;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::values::national_id_check_digit;
use prost::Message;
use serde_json::{json, Value};

use super::Sizes;
use crate::history::{FAMILY, GIVEN};

const DEALERS: u64 = 200;
const BATCH: usize = 1_000;

/// Person `n` of the generated world: a valid national ID and a mobile of its own.
fn person(n: u64) -> (String, String, String, String) {
    let nine = format!("{:09}", 100_000_000 + n);
    let id = format!("{nine}{}", national_id_check_digit(&nine));
    let mobile = format!("0912{:07}", n % 10_000_000);
    let given = GIVEN[(n % GIVEN.len() as u64) as usize].to_owned();
    let family = FAMILY[((n / 7) % FAMILY.len() as u64) as usize].to_owned();
    (id, given, family, mobile)
}

struct Batch(HashMap<At, StoredRecord>);

impl RecordSource for Batch {
    fn record(&mut self, at: &At) -> Result<Option<StoredRecord>, StoreError> {
        Ok(self.0.get(at).cloned())
    }
}

struct World {
    store: SledStore,
    config: RuleConfig,
    next_seq: HashMap<String, u64>,
    /// Customers registered so far (people, not records).
    people: u64,
}

impl World {
    fn record(&mut self, dealer: &str, customer: pb::CustomerUpsert) -> StoredRecord {
        let seq = self.next_seq.entry(dealer.to_owned()).or_insert(0);
        *seq += 1;
        let record_id = uuid::Uuid::now_v7().to_string();
        let wire = pb::Record {
            record_id: record_id.clone(),
            dealer_id: dealer.to_owned(),
            seq: *seq,
            recorded_at_ms: 1_790_000_000_000,
            hlc: None,
            staff_id: "S-1".into(),
            schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
            withheld: String::new(),
            origin: None,
            payload: Some(pb::record::Payload::Customer(customer)),
        }
        .encode_to_vec();
        StoredRecord {
            record_id: record_id.clone(),
            dealer_id: dealer.to_owned(),
            seq: *seq,
            kind: "customer".into(),
            recorded_at_ms: 1_790_000_000_000,
            received_at_ms: 1_790_000_000_000,
            origin: None,
            wire,
            own_findings: Vec::new(),
            group_findings: Default::default(),
            groups: Vec::new(),
            corrected_by: None,
            retracted: false,
            amended: None,
            hlc: (0, 0),
            clock_offset_ms: 0,
            flag_reviews: Default::default(),
            verdict: Verdict::from_findings(record_id, *seq, Vec::new(), 0),
        }
    }

    /// Resolves `records` (one batch) and applies the merge's change.
    fn resolve(&mut self, records: Vec<StoredRecord>) -> Result<(), StoreError> {
        let mut resolver = Resolver::new(&self.store, &self.config);
        let mut batch = HashMap::new();
        for r in records {
            let customer_ref = match hamgam_central::wire::stored_content(&r) {
                Some(hamgam_central::content::Content::Customer(c)) => c.customer_ref,
                _ => continue,
            };
            resolver.customer_record(&r.dealer_id, r.seq, None, Some(&customer_ref));
            batch.insert((r.dealer_id.clone(), r.seq), r);
        }
        let resolved = resolver.run(&mut Batch(batch))?;
        self.store
            .apply(&Change {
                merge: resolved.change,
                ..Default::default()
            })
            .map(|_| ())
    }

    /// Registers new people until the network holds `target` customers.
    fn grow(&mut self, target: u64) -> Result<(), StoreError> {
        while self.people < target {
            let mut records = Vec::with_capacity(BATCH);
            for _ in 0..BATCH.min((target - self.people) as usize) {
                let n = self.people;
                let (id, given, family, mobile) = person(n);
                let dealer = format!("D-{}", n % DEALERS);
                records.push(self.record(
                    &dealer,
                    pb::CustomerUpsert {
                        customer_ref: format!("P{n}"),
                        party_type: pb::PartyType::Person as i32,
                        national_id: id,
                        given_name: given,
                        family_name: family,
                        mobile,
                        ..Default::default()
                    },
                ));
                self.people += 1;
            }
            self.resolve(records)?;
        }
        Ok(())
    }

    /// Resolves `count` records about existing and new people; returns µs per record.
    fn sample(&mut self, count: usize) -> Result<f64, StoreError> {
        let mut records = Vec::with_capacity(count);
        for k in 0..count as u64 {
            let known = (k * 7_919) % self.people.max(1);
            let dealer = format!("D-{}", (known + 1 + k % 5) % DEALERS);
            let customer = match k % 3 {
                // The same person at another dealer, by national ID.
                0 => {
                    let (id, given, family, _) = person(known);
                    pb::CustomerUpsert {
                        customer_ref: format!("S{k}-{known}"),
                        national_id: id,
                        given_name: given,
                        family_name: family,
                        ..Default::default()
                    }
                }
                // The same person by mobile and a variant spelling, no ID.
                1 => {
                    let (_, given, family, mobile) = person(known);
                    pb::CustomerUpsert {
                        customer_ref: format!("S{k}-{known}"),
                        given_name: given.replace('ی', "ي"),
                        family_name: family.replace('ک', "ك"),
                        mobile,
                        ..Default::default()
                    }
                }
                // Someone new.
                _ => {
                    let n = self.people;
                    self.people += 1;
                    let (id, given, family, mobile) = person(n);
                    pb::CustomerUpsert {
                        customer_ref: format!("P{n}"),
                        national_id: id,
                        given_name: given,
                        family_name: family,
                        mobile,
                        ..Default::default()
                    }
                }
            };
            let customer = pb::CustomerUpsert {
                party_type: pb::PartyType::Person as i32,
                ..customer
            };
            records.push(self.record(&dealer, customer));
        }
        let started = Instant::now();
        for chunk in records.chunks(BATCH) {
            self.resolve(chunk.to_vec())?;
        }
        Ok(started.elapsed().as_secs_f64() * 1e6 / count as f64)
    }
}

/// The identity section: µs per resolved record at each network size.
pub fn identity(sizes: &Sizes) -> Value {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let store = match SledStore::open(dir.path(), 512 * 1024 * 1024) {
        Ok(s) => s,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut world = World {
        store,
        config: RuleConfig::default(),
        next_seq: HashMap::new(),
        people: 0,
    };
    let mut rows = Vec::new();
    let grown = Instant::now();
    for &size in &sizes.identity_customers {
        if let Err(e) = world.grow(size as u64) {
            return json!({ "error": e.to_string() });
        }
        let customers = world.people;
        match world.sample(sizes.identity_sample) {
            Ok(micros) => {
                println!(
                    "identity: {micros:>8.1} µs per record resolved at {customers} customers (sample {}, built in {:.0} s so far)",
                    sizes.identity_sample,
                    grown.elapsed().as_secs_f64()
                );
                rows.push(json!({ "customers": customers, "micros_per_record": micros }));
            }
            Err(e) => return json!({ "error": e.to_string() }),
        }
    }
    let first = rows.first().and_then(|r| r["micros_per_record"].as_f64());
    let last = rows.last().and_then(|r| r["micros_per_record"].as_f64());
    if let (Some(a), Some(b)) = (first, last) {
        println!(
            "identity: cost at the largest size / the smallest = {:.2}x",
            b / a
        );
    }
    json!({ "sizes": rows, "sample": sizes.identity_sample })
}
