//! A customer across the network as the hub stores it: dealer records as parties, their views
//! and HQ's decisions about them, the golden record, conflicts, identity review pairs, and the
//! merge's share of a unit of work. Decided by [`crate::merge`]; stored by [`crate::store`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::vehicle::{VehicleDecisions, VehicleFact, VehicleSales};
use super::At;

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
    pub vehicle_facts: Vec<((String, At), Option<VehicleFact>)>,
    /// A vehicle's deliveries and losing sales (`None`: it has neither).
    pub vehicle_sales: Vec<(String, Option<VehicleSales>)>,
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

/// One field of the golden record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldValue {
    pub value: String,
    pub source: Provenance,
    /// Every other value claimed for the field, best first.
    pub alternatives: Vec<(String, Provenance)>,
}

/// One customer across the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoldenCustomer {
    pub customer_id: String,
    /// The dealer records linked to this customer.
    pub parties: Vec<PartyKey>,
    pub organization: bool,
    /// By field name (see [`crate::merge::golden::FIELDS`]); a field nobody gave is absent.
    pub fields: BTreeMap<String, FieldValue>,
    pub conflicts: Vec<Conflict>,
}

/// An uncertain pair waiting for HQ: two dealer records that may be one customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    pub a: PartyKey,
    pub b: PartyKey,
    /// Name similarity of the two, `0.0..=1.0`.
    pub similarity: f64,
    /// Why they were compared (`shared mobile`).
    pub reason: String,
}
