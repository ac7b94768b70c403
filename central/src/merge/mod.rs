//! The hub's merge: one customer across the network, one history per vehicle, and the
//! disagreements HQ must settle. Everything here is a *projection* of the stored record log and
//! HQ's decisions: [`resolve::Resolver`] keeps it up to date batch by batch, and
//! `central admin rebuild` ([`crate::rebuild`]) recomputes it from the log and compares
//! [`digest`]s.
//!
//! - [`identity`]: which dealer customer records are the same customer (blocking, linking,
//!   uncertain pairs for HQ review);
//! - [`golden`]: the golden customer record, field by field, with provenance, the losing
//!   values, and conflicts;
//! - [`vehicle`]: ownership and role timeline per VIN, and double sales;
//! - [`resolve`]: the incremental step over the store, run inside the judge's batch;
//! - [`digest`]: a hash of the whole hub state that does not depend on arrival order.
//!
//! **Invariants:** a dealer record is *linked* to a customer, never merged away (its record is
//! untouched; unlinking it is an HQ decision that re-resolves); every projection is a function
//! of the *set* of records and decisions, so any delivery order, batching or duplication gives
//! the same state and the same digest; a value from a flagged record never beats a clean one,
//! and an HQ-confirmed value beats both.

pub mod digest;
pub mod golden;
pub mod identity;
pub mod resolve;
pub mod vehicle;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::content::Content;
use crate::domain::{Severity, StoredRecord};
use crate::rules::history::At;
use crate::rules::Scope;

pub use golden::GoldenCustomer;
pub use identity::ReviewItem;
pub use vehicle::VehicleView;

/// A dealer's customer as the dealer knows it: `(dealer_id, customer_ref)`.
pub type PartyKey = (String, String);

/// How far a value can be trusted, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Trust {
    /// From a record the rules flagged.
    Flagged,
    /// From a record no rule fired on.
    Clean,
    /// Confirmed by HQ.
    HqConfirmed,
}

/// When a value was recorded, on the hub's clock: the agent's hybrid logical clock stamp
/// minus the clock offset the hub measured for that session, and never later than the hub
/// received it. A skewed agent clock cannot win a conflict by lying about time.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    pub wall_ms: i64,
    pub logical: u32,
}

impl Stamp {
    /// The trusted stamp of a stored record: for an imported one, the source's time of making
    /// it (an import tonight of a 2019 upsert is not newer than a 2024 record), else the
    /// agent's clock on the hub's; never later than the hub received it.
    pub fn of(record: &StoredRecord) -> Stamp {
        if let Some(origin) = &record.origin {
            return Stamp {
                wall_ms: origin.created_at_ms.min(record.received_at_ms),
                logical: record.hlc.1,
            };
        }
        let (wall, logical) = if record.hlc.0 > 0 {
            record.hlc
        } else {
            (record.recorded_at_ms, 0)
        };
        let on_hub_clock = wall.saturating_sub(record.clock_offset_ms);
        Stamp {
            wall_ms: on_hub_clock.min(record.received_at_ms),
            logical,
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The dealer whose record says it (`HQ` for a value HQ confirmed).
    pub dealer_id: String,
    /// The record (or, for HQ, `decision-<n>`).
    pub record_id: String,
    pub seq: u64,
    pub stamp: Stamp,
    pub trust: Trust,
}

/// What a dealer's current customer record says, as the merge reads it: names normalised,
/// IDs and mobile only when valid and not rejected by a rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyView {
    pub seq: u64,
    pub record_id: String,
    pub organization: bool,
    pub national_id: Option<String>,
    pub company_id: Option<String>,
    pub given_name: String,
    pub family_name: String,
    pub organization_name: String,
    /// E.164.
    pub mobile: Option<String>,
    pub postal_code: Option<String>,
    pub trust: Trust,
    pub stamp: Stamp,
}

impl PartyView {
    /// The full name as compared and shown.
    /// The normalised words of the party's name (search index keys), without repeats.
    pub fn name_words(&self) -> Vec<String> {
        let mut words: Vec<String> = hamgam_proto::text::normalize(&self.name())
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        words.sort_unstable();
        words.dedup();
        words
    }

    pub fn name(&self) -> String {
        if self.organization {
            self.organization_name.clone()
        } else {
            format!("{} {}", self.given_name, self.family_name)
                .trim()
                .to_owned()
        }
    }
}

/// A value HQ confirmed for a customer field (or a vehicle's seller).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    pub value: String,
    pub decision: u64,
    pub at_ms: i64,
}

/// HQ's decisions that concern one party.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyDecisions {
    /// Parties HQ said are the same customer as this one.
    pub linked: BTreeSet<PartyKey>,
    /// Parties HQ said are not.
    pub apart: BTreeSet<PartyKey>,
    /// HQ undid this party's automatic links: it stands alone unless explicitly linked.
    pub detached: bool,
    /// Field values HQ confirmed for the customer this party belonged to, by field.
    pub confirmed: BTreeMap<String, Confirmed>,
}

/// Everything the hub keeps about one party: the records of the dealer under this ref, the
/// view of the latest usable one, and HQ's decisions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Party {
    /// Seqs of the dealer's customer records whose content in force has this ref.
    pub sources: BTreeSet<u64>,
    pub view: Option<PartyView>,
    pub decisions: PartyDecisions,
}

/// What a conflict is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Subject {
    Customer(String),
    Vehicle(String),
}

impl Subject {
    /// The stable text form, as hq.proto documents it: `customer:CU-...` or `vehicle:<VIN>`.
    pub fn key(&self) -> String {
        match self {
            Subject::Customer(id) => format!("customer:{id}"),
            Subject::Vehicle(vin) => format!("vehicle:{vin}"),
        }
    }
}

/// One value in a conflict and who said it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictValue {
    pub value: String,
    pub sources: Vec<Provenance>,
}

/// A material disagreement between dealers about one field, for HQ to settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub subject: Subject,
    /// `national_id`, `company_id`, `name` (customers) or `sold_by` (vehicles).
    pub field: String,
    /// The value in force (the merge's choice, or HQ's).
    pub chosen: String,
    /// Every value claimed, each with its sources.
    pub values: Vec<ConflictValue>,
    /// HQ confirmed `chosen`: the dealers still saying otherwise are asked to correct.
    pub resolved: bool,
}

/// HQ's decisions about one vehicle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleDecisions {
    /// The dealer whose sale HQ confirmed when several dealers reported selling the VIN.
    pub seller: Option<Confirmed>,
}

/// A decision HQ took, as logged (the log is replayed by a rebuild).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HqDecision {
    /// A conflict settled: `value` is right for `field` of the customer the `parties` form
    /// (listed at decision time), or of the vehicle.
    Confirm {
        subject: Subject,
        field: String,
        value: String,
        parties: Vec<PartyKey>,
    },
    /// An identity review settled: the two are one customer.
    Link { a: PartyKey, b: PartyKey },
    /// An identity review settled: the two are different customers.
    KeepApart { a: PartyKey, b: PartyKey },
    /// A link undone: the party stands alone (unless explicitly linked).
    Detach { party: PartyKey },
    /// A detach undone.
    Reattach { party: PartyKey },
    /// A flag reviewed: HQ confirms or dismisses what `rule_id` found on a dealer record. A
    /// dismissal takes the finding out of the record's verdict.
    ReviewFlag {
        dealer_id: String,
        seq: u64,
        rule_id: String,
        status: crate::domain::FlagStatus,
    },
}

/// One logged HQ decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEntry {
    pub no: u64,
    pub decision: HqDecision,
    /// Who decided (the HQ certificate's name).
    pub by: String,
    pub comment: String,
    pub at_ms: i64,
}

/// The merge's share of one atomic store change.
#[derive(Debug, Clone, Default)]
pub struct MergeChange {
    pub parties: Vec<(PartyKey, Party)>,
    /// Block index entries: `(block, party, present)`.
    pub blocks: Vec<(String, PartyKey, bool)>,
    /// The customer each party is linked to (`None`: none, no usable record).
    pub links: Vec<(PartyKey, Option<String>)>,
    pub customers: Vec<(String, Option<GoldenCustomer>)>,
    /// Uncertain pairs: `(a, b)` with `a < b`; `None` removes the pair from the queue.
    pub reviews: Vec<((PartyKey, PartyKey), Option<ReviewItem>)>,
    /// A usable record's fact about a vehicle, by VIN and record (`None`: the record no
    /// longer says one).
    pub vehicle_facts: Vec<((String, At), Option<vehicle::VehicleFact>)>,
    /// A vehicle's deliveries and losing sales (`None`: it has neither).
    pub vehicle_sales: Vec<(String, Option<vehicle::VehicleSales>)>,
    /// Vehicles a party appears in (an index that only grows; stale entries are harmless).
    pub party_vins: Vec<(PartyKey, String)>,
    /// Name search index entries to add: a word of a party's name that the party's stored
    /// state did not have (an index that only grows; a search checks each hit against the
    /// party's name now, so stale entries are harmless).
    pub name_words: Vec<(String, PartyKey)>,
    /// Open and resolved conflicts by subject key; an empty list removes the subject.
    pub conflicts: Vec<(String, Vec<Conflict>)>,
    pub vehicle_decisions: Vec<(String, VehicleDecisions)>,
    pub decisions: Vec<DecisionEntry>,
}

/// The content a stored record says now: the amended content if corrected, nothing if
/// retracted.
pub fn content_in_force(record: &StoredRecord) -> Option<Content> {
    if record.retracted {
        return None;
    }
    if let Some(amended) = &record.amended {
        return Some(amended.clone());
    }
    crate::wire::stored_content(record)
}

/// How far a stored record's content can be trusted, by the rules alone (HQ's own
/// corrections, scope `Customer`, do not count): `None` for a record in quarantine or
/// withdrawn.
pub fn trust_of(record: &StoredRecord) -> Option<Trust> {
    if record.retracted {
        return None;
    }
    let mut findings = record
        .own_findings
        .iter()
        .chain(
            record
                .group_findings
                .iter()
                .filter(|(scope, _)| **scope != Scope::Customer)
                .flat_map(|(_, f)| f),
        )
        .filter(|f| !record.dismissed(&f.rule_id));
    let mut flagged = false;
    for f in &mut findings {
        if f.severity == Severity::Reject {
            return None;
        }
        flagged = true;
    }
    Some(if flagged {
        Trust::Flagged
    } else {
        Trust::Clean
    })
}

/// True when a rule rejected the field ending with `field` (or C04 marked it a placeholder).
pub fn field_spoiled(record: &StoredRecord, field: &str) -> bool {
    record
        .own_findings
        .iter()
        .chain(record.group_findings.values().flatten())
        .any(|f| {
            f.field.ends_with(field) && (f.severity == Severity::RejectField || f.rule_id == "C04")
        })
}
