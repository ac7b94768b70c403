//! The hub's domain vocabulary for what it stores: a record as held at the hub, its verdict and
//! findings, and each dealer's sync state. No prost or tonic types here; [`crate::wire`]
//! converts at the edge.

use std::collections::BTreeMap;

use hamgam_proto::reason::Lang;
pub use hamgam_proto::reason::{Arg, Reason};
use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::model::groups::{GroupKey, Scope};

/// How severe a finding is (RULES.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    /// Stored and used, marked unreliable.
    Flag,
    /// As `Flag`, counted heavier.
    FlagHigh,
    /// The field cannot be used; the rest of the record can.
    RejectField,
    /// The record cannot be used at all; it is kept in quarantine.
    Reject,
}

/// What the hub decided about a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Accepted,
    AcceptedWithFlags,
    Rejected,
}

/// One rule that fired: the rule, how severe, which field, and why as data (a catalogue code
/// and the values it cites, [`Reason`]). The Persian and English sentences are rendered from
/// the reason where they are shown (the verdict feed, the HQ API, the CLI), never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub rule_id: String,
    pub severity: Severity,
    /// The field concerned (`retail_delivery.vin`), empty for the record as a whole.
    pub field: String,
    pub reason: Reason,
}

impl Finding {
    /// Why, in Persian (rendered from [`Finding::reason`]).
    pub fn reason_fa(&self) -> String {
        self.reason.render_on(Lang::Fa, Some(&self.field))
    }

    /// Why, in English (rendered from [`Finding::reason`]).
    pub fn reason_en(&self) -> String {
        self.reason.render_on(Lang::En, Some(&self.field))
    }

    /// What the finding *is*: the rule, how severe, which field. A verdict changes (new
    /// version, sent down the feed) only when its set of keys changes; the reason's words and
    /// figures are how the finding is explained, and stay as they were when it first fired.
    pub fn key(&self) -> (&str, Severity, &str) {
        (&self.rule_id, self.severity, &self.field)
    }
}

/// The sorted, deduplicated keys of `findings` ([`Finding::key`]).
pub fn finding_keys(findings: &[Finding]) -> Vec<(&str, Severity, &str)> {
    let mut keys: Vec<_> = findings.iter().map(Finding::key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Whether two lists of findings say the same thing (the same [`Finding::key`]s).
pub fn same_findings(a: &[Finding], b: &[Finding]) -> bool {
    finding_keys(a) == finding_keys(b)
}

/// The hub's current judgement of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    pub record_id: String,
    pub seq: u64,
    pub outcome: Outcome,
    pub findings: Vec<Finding>,
    pub version: u32,
    pub decided_at_ms: i64,
}

impl Verdict {
    /// The verdict that follows from `findings`: any `Reject` rejects the record, any other
    /// finding flags it.
    pub fn from_findings(
        record_id: String,
        seq: u64,
        findings: Vec<Finding>,
        decided_at_ms: i64,
    ) -> Self {
        let outcome = if findings.iter().any(|f| f.severity == Severity::Reject) {
            Outcome::Rejected
        } else if findings.is_empty() {
            Outcome::Accepted
        } else {
            Outcome::AcceptedWithFlags
        };
        Verdict {
            record_id,
            seq,
            outcome,
            findings,
            version: 1,
            decided_at_ms,
        }
    }
}

/// A record as the hub holds it: the header fields the hub indexes, the record exactly as the
/// dealer sent it (encoded), the findings behind its current verdict, and the verdict.
/// Rejected records are held too (quarantine): nothing a dealer sends is dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRecord {
    pub record_id: String,
    pub dealer_id: String,
    pub seq: u64,
    /// `customer`, `retail-delivery`, ... or empty when the payload is missing.
    pub kind: String,
    /// The agent's stamp at capture (sync order; the hub's sync-health figures).
    pub recorded_at_ms: i64,
    pub received_at_ms: i64,
    /// Where an imported record came from (`Record.origin`), when it says when it was made.
    pub origin: Option<RecordOrigin>,
    /// The record as received, protobuf-encoded; opaque to the domain.
    pub wire: Vec<u8>,
    /// Findings of the one-record rules (R00 included) on the content in force.
    pub own_findings: Vec<Finding>,
    /// Findings of the history rules, by the kind of group they came from.
    pub group_findings: BTreeMap<Scope, Vec<Finding>>,
    /// The history groups the content in force belongs to.
    pub groups: Vec<GroupKey>,
    /// The correction in force (its record id), if the dealer corrected this record.
    pub corrected_by: Option<String>,
    /// The dealer withdrew this record with a correction: it is no longer history.
    pub retracted: bool,
    /// The content in force when a correction amended the record (else the wire's).
    pub amended: Option<Content>,
    /// The agent's hybrid logical clock stamp `(wall ms, logical)`.
    pub hlc: (i64, u32),
    /// The agent's clock offset measured at the session the record came in (agent - hub).
    pub clock_offset_ms: i64,
    /// HQ's reviews of this record's findings, by rule id.
    pub flag_reviews: BTreeMap<String, FlagReview>,
    pub verdict: Verdict,
}

/// What the hub keeps of a record's origin: the source system and the source's own time of
/// making it (an origin without a time is not kept: the record was made when it was recorded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordOrigin {
    pub source_system: String,
    pub created_at_ms: i64,
}

impl StoredRecord {
    /// When the record was made: the source's time for an imported record, else the agent's
    /// stamp at capture. What S01, T01 and the reliability window mean by it (RULES.md).
    pub fn made_at_ms(&self) -> i64 {
        self.origin
            .as_ref()
            .map_or(self.recorded_at_ms, |o| o.created_at_ms)
    }

    /// Every finding in force, in a stable order.
    /// The findings that count in the verdict: every finding except those HQ dismissed.
    pub fn findings_in_force(&self) -> Vec<Finding> {
        let mut findings = self.findings();
        findings.retain(|f| !self.dismissed(&f.rule_id));
        findings
    }

    /// HQ dismissed the findings of `rule_id` on this record.
    pub fn dismissed(&self, rule_id: &str) -> bool {
        self.flag_reviews
            .get(rule_id)
            .is_some_and(|r| r.status == FlagStatus::Dismissed)
    }

    /// The flag index entries of this record: one per rule that fired on it.
    pub fn flag_entries(&self) -> Vec<(String, FlagEntry)> {
        let mut entries: Vec<(String, FlagEntry)> = Vec::new();
        for f in self.findings() {
            if entries.last().is_some_and(|(rule, _)| *rule == f.rule_id) {
                continue;
            }
            entries.push((
                f.rule_id.clone(),
                FlagEntry {
                    severity: f.severity,
                    received_at_ms: self.received_at_ms,
                    status: self
                        .flag_reviews
                        .get(&f.rule_id)
                        .map_or(FlagStatus::Open, |r| r.status),
                    quarantined: self.verdict.outcome == Outcome::Rejected,
                },
            ));
        }
        entries
    }

    /// Every finding, in force or dismissed, sorted by rule.
    pub fn findings(&self) -> Vec<Finding> {
        let mut all: Vec<Finding> = self
            .own_findings
            .iter()
            .chain(self.group_findings.values().flatten())
            .cloned()
            .collect();
        all.sort_by(|a, b| {
            (&a.rule_id, &a.field, &a.reason).cmp(&(&b.rule_id, &b.field, &b.reason))
        });
        all.dedup();
        all
    }
}

/// What the hub knows about a dealer's sync.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealerState {
    /// Highest seq held (durable once the batch that wrote it was acked).
    pub stored_seq: u64,
    pub record_count: u64,
    /// Records of this dealer in quarantine now (rejected, not yet corrected).
    pub rejected_count: u64,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    /// Agent clock minus hub clock at the last connect.
    pub clock_offset_ms: i64,
    /// The last verdict change queued for this dealer (its change feed's cursor).
    pub verdict_cursor: u64,
    /// The cursor the dealer's agent last acknowledged.
    pub verdicts_acked: u64,
}

/// Where HQ's review of a flag stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlagStatus {
    /// Not reviewed.
    Open,
    /// HQ agrees the record is wrong; the finding stays.
    Confirmed,
    /// HQ overruled the rule for this record; the finding no longer counts.
    Dismissed,
}

/// HQ's review of one rule's findings on one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagReview {
    pub status: FlagStatus,
    /// The HQ decision that reviewed it.
    pub decision: u64,
    pub by: String,
    pub comment: String,
}

/// One entry of the flag index: a rule that fired on a record, for listing flags by rule and
/// dealer without reading the records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagEntry {
    pub severity: Severity,
    pub received_at_ms: i64,
    pub status: FlagStatus,
    /// The record is rejected and in quarantine.
    pub quarantined: bool,
}

/// One entry of the hub's change stream (HQ's BI and downstream systems read it in order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeEntry {
    /// A record was stored (with its verdict at that time; rejected ones too, so a later verdict
    /// change always refers to a record already sent).
    RecordStored {
        dealer_id: String,
        seq: u64,
        verdict: Verdict,
    },
    /// The hub changed its verdict on a stored record.
    VerdictChanged { dealer_id: String, verdict: Verdict },
    /// A customer was created or changed (`parties` linked to it), or no longer exists under
    /// this id (merged into another or split: `parties` empty).
    CustomerChanged {
        customer_id: String,
        parties: Vec<(String, String)>,
    },
}

/// A change-stream entry with its cursor and the time it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeLogEntry {
    pub cursor: u64,
    pub at_ms: i64,
    pub entry: ChangeEntry,
}
