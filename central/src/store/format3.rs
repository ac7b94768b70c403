//! Reading a record of store formats 1-3 (their records are alike), for `central admin rebuild --into` from a store written
//! before format 4. Format 4 added [`StoredRecord::origin`] (imported history's source and
//! time); a format-3 record has the same fields without it, so its origin is read back from
//! the record's own wire bytes (agents sent `Record.origin` before the hub kept it).

use std::collections::BTreeMap;

use hamgam_proto::record::v1 as pb;
use prost::Message;
use serde::Deserialize;

use crate::content::Content;
use crate::domain::Finding;
use crate::domain::{FlagReview, RecordOrigin, StoredRecord, Verdict};
use crate::rules::history::GroupKey;
use crate::rules::Scope;

/// [`StoredRecord`] as format 3 wrote it (postcard: field order is the format).
#[derive(Deserialize)]
pub struct StoredRecordV3 {
    record_id: String,
    dealer_id: String,
    seq: u64,
    kind: String,
    recorded_at_ms: i64,
    received_at_ms: i64,
    wire: Vec<u8>,
    own_findings: Vec<Finding>,
    group_findings: BTreeMap<Scope, Vec<Finding>>,
    groups: Vec<GroupKey>,
    corrected_by: Option<String>,
    retracted: bool,
    amended: Option<Content>,
    hlc: (i64, u32),
    clock_offset_ms: i64,
    flag_reviews: BTreeMap<String, FlagReview>,
    verdict: Verdict,
}

impl From<StoredRecordV3> for StoredRecord {
    fn from(old: StoredRecordV3) -> Self {
        let origin = pb::Record::decode(old.wire.as_slice())
            .ok()
            .and_then(|r| r.origin)
            .filter(|o| o.created_at_ms > 0 && !o.source_system.trim().is_empty())
            .map(|o| RecordOrigin {
                source_system: o.source_system,
                created_at_ms: o.created_at_ms,
            });
        StoredRecord {
            record_id: old.record_id,
            dealer_id: old.dealer_id,
            seq: old.seq,
            kind: old.kind,
            recorded_at_ms: old.recorded_at_ms,
            received_at_ms: old.received_at_ms,
            origin,
            wire: old.wire,
            own_findings: old.own_findings,
            group_findings: old.group_findings,
            groups: old.groups,
            corrected_by: old.corrected_by,
            retracted: old.retracted,
            amended: old.amended,
            hlc: old.hlc,
            clock_offset_ms: old.clock_offset_ms,
            flag_reviews: old.flag_reviews,
            verdict: old.verdict,
        }
    }
}
