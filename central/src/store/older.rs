//! Reading a record of an older store format, for `central admin rebuild --into` from a store
//! written before format 5.
//!
//! - Formats 1-3 (their records are alike) have no [`StoredRecord::origin`] (format 4 added
//!   imported history's source and time), so the origin is read back from the record's own
//!   wire bytes (agents sent `Record.origin` before the hub kept it).
//! - Formats 1-4 keep a finding's reason as its Persian and English sentences, where format 5
//!   keeps it as data (a catalogue code and its values). An old finding is read as a
//!   [`Reason::written`], which renders its sentences as they were stored. A rebuild judges
//!   every record again, so its findings are the catalogue's from then on.

use std::collections::BTreeMap;

use hamgam_proto::record::v1 as pb;
use prost::Message;
use serde::Deserialize;

use crate::content::Content;
use crate::domain::{
    Finding, FlagReview, Outcome, Reason, RecordOrigin, Severity, StoredRecord, Verdict,
};
use crate::model::groups::{GroupKey, Scope};

/// [`Finding`] as formats 1-4 wrote it (postcard: field order is the format).
#[derive(Deserialize)]
struct FindingV4 {
    rule_id: String,
    severity: Severity,
    field: String,
    reason_fa: String,
    reason_en: String,
}

impl From<FindingV4> for Finding {
    fn from(old: FindingV4) -> Self {
        Finding {
            rule_id: old.rule_id,
            severity: old.severity,
            field: old.field,
            reason: Reason::written(old.reason_en, old.reason_fa),
        }
    }
}

fn findings(old: Vec<FindingV4>) -> Vec<Finding> {
    old.into_iter().map(Finding::from).collect()
}

/// [`Verdict`] as formats 1-4 wrote it.
#[derive(Deserialize)]
struct VerdictV4 {
    record_id: String,
    seq: u64,
    outcome: Outcome,
    findings: Vec<FindingV4>,
    version: u32,
    decided_at_ms: i64,
}

impl From<VerdictV4> for Verdict {
    fn from(old: VerdictV4) -> Self {
        Verdict {
            record_id: old.record_id,
            seq: old.seq,
            outcome: old.outcome,
            findings: findings(old.findings),
            version: old.version,
            decided_at_ms: old.decided_at_ms,
        }
    }
}

/// [`StoredRecord`] as formats 1-3 wrote it.
#[derive(Deserialize)]
pub struct StoredRecordV3 {
    record_id: String,
    dealer_id: String,
    seq: u64,
    kind: String,
    recorded_at_ms: i64,
    received_at_ms: i64,
    wire: Vec<u8>,
    own_findings: Vec<FindingV4>,
    group_findings: BTreeMap<Scope, Vec<FindingV4>>,
    groups: Vec<GroupKey>,
    corrected_by: Option<String>,
    retracted: bool,
    amended: Option<Content>,
    hlc: (i64, u32),
    clock_offset_ms: i64,
    flag_reviews: BTreeMap<String, FlagReview>,
    verdict: VerdictV4,
}

/// [`StoredRecord`] as format 4 wrote it: format 3's with the origin.
#[derive(Deserialize)]
pub struct StoredRecordV4 {
    record_id: String,
    dealer_id: String,
    seq: u64,
    kind: String,
    recorded_at_ms: i64,
    received_at_ms: i64,
    origin: Option<RecordOrigin>,
    wire: Vec<u8>,
    own_findings: Vec<FindingV4>,
    group_findings: BTreeMap<Scope, Vec<FindingV4>>,
    groups: Vec<GroupKey>,
    corrected_by: Option<String>,
    retracted: bool,
    amended: Option<Content>,
    hlc: (i64, u32),
    clock_offset_ms: i64,
    flag_reviews: BTreeMap<String, FlagReview>,
    verdict: VerdictV4,
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
        StoredRecord::from(StoredRecordV4 {
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
        })
    }
}

impl From<StoredRecordV4> for StoredRecord {
    fn from(old: StoredRecordV4) -> Self {
        StoredRecord {
            record_id: old.record_id,
            dealer_id: old.dealer_id,
            seq: old.seq,
            kind: old.kind,
            recorded_at_ms: old.recorded_at_ms,
            received_at_ms: old.received_at_ms,
            origin: old.origin,
            wire: old.wire,
            own_findings: findings(old.own_findings),
            group_findings: old
                .group_findings
                .into_iter()
                .map(|(scope, f)| (scope, findings(f)))
                .collect(),
            groups: old.groups,
            corrected_by: old.corrected_by,
            retracted: old.retracted,
            amended: old.amended,
            hlc: old.hlc,
            clock_offset_ms: old.clock_offset_ms,
            flag_reviews: old.flag_reviews,
            verdict: old.verdict.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A format-4 record (findings with their sentences) reads back with the same sentences.
    #[test]
    fn a_format_4_record_keeps_its_written_reasons() {
        #[derive(serde::Serialize)]
        struct OldFinding<'a>(&'a str, Severity, &'a str, &'a str, &'a str);
        let finding = OldFinding(
            "O02",
            Severity::Flag,
            "repair_order.odometer_in_km",
            "کیلومتر خارج از بازه است",
            "the reading is out of range",
        );
        let verdict = (
            "r-1",
            7u64,
            Outcome::AcceptedWithFlags,
            vec![&finding],
            1u32,
            5i64,
        );
        let record = (
            ("r-1", "D-1", 7u64, "repair-order", 1i64, 2i64),
            (None::<RecordOrigin>, Vec::<u8>::new(), vec![&finding]),
            (
                BTreeMap::<Scope, Vec<&OldFinding>>::new(),
                Vec::<GroupKey>::new(),
                None::<String>,
                false,
                None::<Content>,
            ),
            (
                (3i64, 0u32),
                0i64,
                BTreeMap::<String, FlagReview>::new(),
                verdict,
            ),
        );
        let bytes = postcard::to_allocvec(&record).expect("encode");
        let read: StoredRecordV4 = postcard::from_bytes(&bytes).expect("decode");
        let read = StoredRecord::from(read);
        assert_eq!(read.seq, 7);
        assert_eq!(
            read.own_findings[0].reason_en(),
            "the reading is out of range"
        );
        assert_eq!(read.own_findings[0].reason_fa(), "کیلومتر خارج از بازه است");
        assert_eq!(
            read.verdict.findings[0].field,
            "repair_order.odometer_in_km"
        );
    }
}
