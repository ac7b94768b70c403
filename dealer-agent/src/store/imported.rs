//! Records from another system (the dealer's DMS): each carries its [`Origin`], and the store
//! keeps one record per (source system, source record id). The same id again with the same
//! content saves nothing; with other content it saves a correction of the record made before
//! (which the hub judges again on the new content). That is what makes an import safe to run
//! twice, and to run again after it was killed: no row is saved twice and none is skipped.
//!
//! The index lives under the `o` prefix of the store's tree, written in the same atomic batch
//! as the records it points at: key `o` + source system + `0x00` + source record id, value the
//! seq of the record first made for it and the seq of its latest version (16 bytes, BE).

use std::collections::HashMap;

use hamgam_proto::record::v1::correction::Amended;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::record::v1::{Correction, Origin, Record};

use super::{AgentStore, NewRecord, Saved, StoreError};

const ORIGIN: u8 = b'o';

/// A record from another system, with where it came from.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The staff code the record carries (the DMS's user, or the importer's).
    pub staff_id: String,
    pub payload: Payload,
    pub origin: Origin,
}

/// What became of one imported record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// Saved as a new record.
    Saved(Saved),
    /// Its source id is stored with this content already (at `seq`): nothing saved.
    Unchanged { seq: u64 },
    /// Its source id is stored with other content: saved as a correction of `original_seq`.
    Corrected { original_seq: u64, saved: Saved },
}

fn origin_key(origin: &Origin) -> Vec<u8> {
    let mut key =
        Vec::with_capacity(2 + origin.source_system.len() + origin.source_record_id.len());
    key.push(ORIGIN);
    key.extend_from_slice(origin.source_system.as_bytes());
    key.push(0);
    key.extend_from_slice(origin.source_record_id.as_bytes());
    key
}

/// (first seq, latest seq) of an index entry.
fn decode_entry(bytes: &[u8]) -> Option<(u64, u64)> {
    let first = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let latest = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
    Some((first, latest))
}

fn encode_entry(first: u64, latest: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&first.to_be_bytes());
    out[8..].copy_from_slice(&latest.to_be_bytes());
    out
}

/// The content a correction puts in place of its target's.
pub fn amended_payload(correction: &Correction) -> Option<Payload> {
    Some(match correction.amended.clone()? {
        Amended::Customer(x) => Payload::Customer(x),
        Amended::RetailDelivery(x) => Payload::RetailDelivery(x),
        Amended::RepairOrder(x) => Payload::RepairOrder(x),
        Amended::Lead(x) => Payload::Lead(x),
        Amended::Complaint(x) => Payload::Complaint(x),
        Amended::Survey(x) => Payload::Survey(x),
        Amended::OdometerReplacement(x) => Payload::OdometerReplacement(x),
        Amended::VehicleStatus(x) => Payload::VehicleStatus(x),
    })
}

/// `payload` as a correction's amended content (a correction itself cannot be one).
fn as_amended(payload: Payload) -> Option<Amended> {
    Some(match payload {
        Payload::Customer(x) => Amended::Customer(x),
        Payload::RetailDelivery(x) => Amended::RetailDelivery(x),
        Payload::RepairOrder(x) => Amended::RepairOrder(x),
        Payload::Lead(x) => Amended::Lead(x),
        Payload::Complaint(x) => Amended::Complaint(x),
        Payload::Survey(x) => Amended::Survey(x),
        Payload::OdometerReplacement(x) => Amended::OdometerReplacement(x),
        Payload::VehicleStatus(x) => Amended::VehicleStatus(x),
        Payload::Correction(_) => return None,
    })
}

/// The content a stored record stands for: its payload, or a correction's amended one.
fn content_of(record: &Record) -> Option<Payload> {
    match record.payload.as_ref()? {
        Payload::Correction(c) => amended_payload(c),
        other => Some(other.clone()),
    }
}

/// What the index says of one source id while a batch is resolved.
#[derive(Debug, Clone)]
struct Known {
    first_seq: u64,
    first_record_id: String,
    content: Option<Payload>,
}

impl AgentStore {
    /// Saves records from another system in one atomic, durable batch, one record per source
    /// id (see the module docs): what `dealer-agent import` commits per chunk. Blocking.
    /// Nothing is saved if any record is over a size bound, or if a source id's content is a
    /// correction (corrections are made of the original's source id, not imported).
    pub fn capture_imported(
        &self,
        entries: Vec<Imported>,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let _held = self.capture_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut next_seq = self.read_u64("next_seq")?.unwrap_or(1);
        let mut known: HashMap<Vec<u8>, Known> = HashMap::new();
        let mut batch = sled::Batch::default();
        let mut to_save = Vec::new();
        // Per entry: the outcome, with the saved record's place in `to_save` to fill in.
        let mut planned = Vec::with_capacity(entries.len());
        for entry in entries {
            let key = origin_key(&entry.origin);
            if !known.contains_key(&key) {
                if let Some(found) = self.known_origin(&key)? {
                    known.insert(key.clone(), found);
                }
            }
            match known.get(&key).cloned() {
                Some(found) if found.content.as_ref() == Some(&entry.payload) => {
                    planned.push(Plan::Unchanged {
                        seq: found.first_seq,
                    });
                }
                Some(found) => {
                    let amended = as_amended(entry.payload.clone()).ok_or_else(|| {
                        StoreError::ImportRefused(format!(
                            "source id {} of {} is a correction: import the corrected record itself",
                            entry.origin.source_record_id, entry.origin.source_system
                        ))
                    })?;
                    let correction = Payload::Correction(Correction {
                        target_record_id: found.first_record_id.clone(),
                        reason: format!(
                            "changed in {} (record {})",
                            entry.origin.source_system, entry.origin.source_record_id
                        ),
                        retract: false,
                        amended: Some(amended),
                    });
                    batch.insert(key.clone(), &encode_entry(found.first_seq, next_seq));
                    known.insert(
                        key,
                        Known {
                            content: Some(entry.payload),
                            ..found.clone()
                        },
                    );
                    planned.push(Plan::Corrected {
                        original_seq: found.first_seq,
                        at: to_save.len(),
                    });
                    to_save.push(NewRecord {
                        record_id: uuid::Uuid::now_v7().to_string(),
                        staff_id: entry.staff_id,
                        payload: correction,
                        origin: Some(entry.origin),
                    });
                    next_seq += 1;
                }
                None => {
                    // The id is made here, so a later entry of this batch with the same source
                    // id and other content can name it in its correction.
                    let record_id = uuid::Uuid::now_v7().to_string();
                    batch.insert(key.clone(), &encode_entry(next_seq, next_seq));
                    known.insert(
                        key,
                        Known {
                            first_seq: next_seq,
                            first_record_id: record_id.clone(),
                            content: Some(entry.payload.clone()),
                        },
                    );
                    planned.push(Plan::Saved { at: to_save.len() });
                    to_save.push(NewRecord {
                        record_id,
                        staff_id: entry.staff_id,
                        payload: entry.payload,
                        origin: Some(entry.origin),
                    });
                    next_seq += 1;
                }
            }
        }
        let saved = self.capture_held(to_save, true, batch)?;
        Ok(planned
            .into_iter()
            .map(|plan| match plan {
                Plan::Unchanged { seq } => ImportOutcome::Unchanged { seq },
                Plan::Saved { at } => ImportOutcome::Saved(saved[at].clone()),
                Plan::Corrected { original_seq, at } => ImportOutcome::Corrected {
                    original_seq,
                    saved: saved[at].clone(),
                },
            })
            .collect())
    }

    /// The index entry of `key`: the first record made for it and the content of its latest
    /// version.
    fn known_origin(&self, key: &[u8]) -> Result<Option<Known>, StoreError> {
        let Some(bytes) = self.tree.get(key).map_err(|e| self.engine(e))? else {
            return Ok(None);
        };
        let (first_seq, latest_seq) = decode_entry(&bytes).ok_or_else(|| StoreError::Corrupt {
            key: "origin index".into(),
            detail: format!("{} bytes, not 16", bytes.len()),
        })?;
        let read = |seq: u64| -> Result<Record, StoreError> {
            self.record(seq)?.ok_or_else(|| StoreError::Corrupt {
                key: format!("origin index -> seq {seq}"),
                detail: "the record it names is not in the store".into(),
            })
        };
        let first = read(first_seq)?;
        let latest = if latest_seq == first_seq {
            first.clone()
        } else {
            read(latest_seq)?
        };
        Ok(Some(Known {
            first_seq,
            first_record_id: first.record_id,
            content: content_of(&latest),
        }))
    }
}

/// One entry's planned outcome while a batch is resolved.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Unchanged { seq: u64 },
    Saved { at: usize },
    Corrected { original_seq: u64, at: usize },
}

/// The origin index rebuilt while a store is restored from the hub's copy of its records.
#[derive(Default)]
pub(super) struct RestoredOrigins {
    first: HashMap<Vec<u8>, u64>,
}

impl RestoredOrigins {
    /// Indexes `record` if it came from another system.
    pub(super) fn restored(
        &mut self,
        store: &AgentStore,
        batch: &mut sled::Batch,
        record: &Record,
    ) -> Result<(), StoreError> {
        let Some(origin) = &record.origin else {
            return Ok(());
        };
        let key = origin_key(origin);
        let first = match self.first.get(&key) {
            Some(first) => *first,
            None => match store.tree.get(&key).map_err(|e| store.engine(e))? {
                Some(bytes) => decode_entry(&bytes).map(|(f, _)| f).unwrap_or(record.seq),
                None => record.seq,
            },
        };
        self.first.insert(key.clone(), first);
        batch.insert(key, &encode_entry(first, record.seq));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamgam_gateway::DealerId;
    use hamgam_proto::record::v1::RepairOrder;

    fn order(ro: &str, km: u32) -> Payload {
        Payload::RepairOrder(RepairOrder {
            ro_number: ro.into(),
            vin: "NAAN01CE5KK123456".into(),
            odometer_in_km: km,
            opened_at_ms: 1_600_000_000_000,
            pay_type: 1,
            ..Default::default()
        })
    }

    fn row(id: &str, payload: Payload) -> Imported {
        Imported {
            staff_id: "dms".into(),
            payload,
            origin: Origin {
                source_system: "dms:test".into(),
                source_record_id: id.into(),
                created_at_ms: 1_600_000_000_000,
            },
        }
    }

    fn open(dir: &std::path::Path) -> AgentStore {
        AgentStore::open(dir, DealerId::new("D-1042").unwrap()).unwrap()
    }

    #[test]
    fn the_same_source_id_again_saves_nothing_and_a_changed_one_saves_a_correction() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let first = store
            .capture_imported(vec![
                row("7", order("RO-7", 1000)),
                row("8", order("RO-8", 2000)),
            ])
            .unwrap();
        assert!(
            matches!(&first[..], [ImportOutcome::Saved(a), ImportOutcome::Saved(b)] if a.seq == 1 && b.seq == 2)
        );
        let stored = store.record(1).unwrap().unwrap();
        assert_eq!(stored.origin.as_ref().unwrap().source_record_id, "7");

        // The same file again: nothing saved.
        let again = store
            .capture_imported(vec![
                row("7", order("RO-7", 1000)),
                row("8", order("RO-8", 2000)),
            ])
            .unwrap();
        assert_eq!(
            again,
            [
                ImportOutcome::Unchanged { seq: 1 },
                ImportOutcome::Unchanged { seq: 2 }
            ]
        );
        assert_eq!(store.status().unwrap().last_seq, 2);

        // One row changed: one correction of the record made for it, carrying the origin.
        let changed = store
            .capture_imported(vec![
                row("7", order("RO-7", 1500)),
                row("8", order("RO-8", 2000)),
            ])
            .unwrap();
        let [ImportOutcome::Corrected {
            original_seq: 1,
            saved,
        }, ImportOutcome::Unchanged { seq: 2 }] = &changed[..]
        else {
            panic!("{changed:?}")
        };
        assert_eq!(saved.seq, 3);
        let correction = store.record(3).unwrap().unwrap();
        let Some(Payload::Correction(c)) = &correction.payload else {
            panic!("{correction:?}")
        };
        assert_eq!(c.target_record_id, stored.record_id);
        assert!(!c.retract);
        assert_eq!(amended_payload(c), Some(order("RO-7", 1500)));
        assert_eq!(correction.origin.as_ref().unwrap().source_record_id, "7");
        // The corrected content is now the one compared: importing it again saves nothing,
        // and the original content again is a second correction.
        let same = store
            .capture_imported(vec![row("7", order("RO-7", 1500))])
            .unwrap();
        assert_eq!(same, [ImportOutcome::Unchanged { seq: 1 }]);
        let back = store
            .capture_imported(vec![row("7", order("RO-7", 1000))])
            .unwrap();
        assert!(
            matches!(&back[..], [ImportOutcome::Corrected { original_seq: 1, saved }] if saved.seq == 4)
        );

        // The index survives a reopen.
        drop(store);
        let store = open(dir.path());
        let reopened = store
            .capture_imported(vec![row("7", order("RO-7", 1000))])
            .unwrap();
        assert_eq!(reopened, [ImportOutcome::Unchanged { seq: 1 }]);
    }

    #[test]
    fn a_source_id_twice_in_one_batch_is_saved_then_corrected_and_nothing_is_half_saved() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let outcomes = store
            .capture_imported(vec![
                row("9", order("RO-9", 100)),
                row("9", order("RO-9", 100)),
                row("9", order("RO-9", 150)),
            ])
            .unwrap();
        let first_id = store.record(1).unwrap().unwrap().record_id;
        assert!(matches!(&outcomes[..], [
            ImportOutcome::Saved(a),
            ImportOutcome::Unchanged { seq: 1 },
            ImportOutcome::Corrected { original_seq: 1, saved },
        ] if a.seq == 1 && saved.seq == 2));
        let Some(Payload::Correction(c)) = store.record(2).unwrap().unwrap().payload else {
            panic!("not a correction")
        };
        assert_eq!(c.target_record_id, first_id);

        // A batch with a record over a size bound saves nothing, index included.
        let huge = order(&"X".repeat(100_000), 1);
        let refused = store.capture_imported(vec![row("10", order("RO-10", 1)), row("11", huge)]);
        assert!(
            matches!(refused, Err(StoreError::OverBound { .. })),
            "{refused:?}"
        );
        assert_eq!(store.status().unwrap().last_seq, 2);
        let retried = store
            .capture_imported(vec![row("10", order("RO-10", 1))])
            .unwrap();
        assert!(
            matches!(&retried[..], [ImportOutcome::Saved(s)] if s.seq == 3),
            "{retried:?}"
        );
    }
}
