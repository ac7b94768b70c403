//! What the rules keep about records as the hub stores it: the history groups a record
//! belongs to and what it tells each, an incrementally judged group's state, a dealer
//! customer's identifiers, a dealer day's tally of verdicts, and the scopes rules read.
//! Decided by [`crate::rules`]; stored by [`crate::store`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::content::PayType;
use crate::domain::Finding;

/// Which records a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// The record alone (with the hub clock and the registry).
    Record,
    /// The sync session the record came in.
    Session,
    /// Every record of one VIN, at any dealer.
    Vin,
    /// Every customer record carrying one mobile, at any dealer.
    Mobile,
    /// Every customer record carrying one national ID, at any dealer.
    NationalId,
    /// The repair orders (and surveys about them) of one dealer under one RO number.
    RoNumber,
    /// One dealer's deliveries and surveys of one calendar month.
    DealerMonth,
    /// The customer (or vehicle) the record is merged into, with HQ's confirmed values.
    Customer,
    /// The records one source system made for one dealer (imported history), in the dealer's
    /// order: T01's reading of a source clock set ahead.
    Source,
}

/// A group of records that history rules read together.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GroupKey {
    /// Every delivery, repair order, odometer replacement and status change of a VIN, at any
    /// dealer.
    Vin(String),
    /// Every customer record with this mobile (E.164), at any dealer.
    Mobile(String),
    /// Every person record with this national ID, at any dealer.
    NationalId(String),
    /// One dealer's repair orders under one number, and the surveys about them.
    RoNumber { dealer: String, number: String },
    /// One dealer's deliveries and surveys in one calendar month (`YYYY-MM`).
    DealerMonth { dealer: String, month: String },
    /// The records one source system made for one dealer (imported history with its times),
    /// read in the dealer's order (seq), each with the next.
    SourceSequence { dealer: String, source: String },
}

impl GroupKey {
    pub fn scope(&self) -> Scope {
        match self {
            GroupKey::Vin(_) => Scope::Vin,
            GroupKey::Mobile(_) => Scope::Mobile,
            GroupKey::NationalId(_) => Scope::NationalId,
            GroupKey::RoNumber { .. } => Scope::RoNumber,
            GroupKey::DealerMonth { .. } => Scope::DealerMonth,
            GroupKey::SourceSequence { .. } => Scope::Source,
        }
    }

    /// A stable text form, the store's index key (`\0` separates parts).
    pub fn encode(&self) -> String {
        match self {
            GroupKey::Vin(v) => format!("v\0{v}"),
            GroupKey::Mobile(m) => format!("m\0{m}"),
            GroupKey::NationalId(n) => format!("n\0{n}"),
            GroupKey::RoNumber { dealer, number } => format!("o\0{dealer}\0{number}"),
            GroupKey::DealerMonth { dealer, month } => format!("s\0{dealer}\0{month}"),
            GroupKey::SourceSequence { dealer, source } => format!("t\0{dealer}\0{source}"),
        }
    }
}

/// What one record tells a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Fact {
    Delivery {
        delivered_ms: i64,
        odometer_km: u32,
        retail: bool,
    },
    RepairOrder {
        vin: String,
        opened_ms: i64,
        completed_ms: i64,
        odometer_in_km: u32,
        pay_type: PayType,
        /// `(labour operation, part)` of every job line (part empty for labour only).
        jobs: Vec<(String, String)>,
    },
    OdometerReplacement {
        /// The day of the replacement (midnight UTC).
        replaced_ms: i64,
        /// When on that day, if recorded.
        at_ms: Option<i64>,
        /// The old cluster's last reading and the new one's first.
        before_km: u32,
        after_km: u32,
    },
    Customer {
        /// Who the customer is: a valid national or company ID, else the dealer's own ref.
        identity: String,
        /// Normalised full name.
        name: String,
    },
    Survey {
        submitted_ms: i64,
        top_score: bool,
    },
    /// A vehicle scrapped, stolen, recovered or exported (read by the vehicle projection).
    Status {
        effective_ms: i64,
    },
    /// An imported record: when its source says it made it.
    Made {
        created_ms: i64,
    },
}

/// A record in a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub dealer_id: String,
    pub seq: u64,
    pub fact: Fact,
    /// The findings this group gave the member when it was last judged.
    pub current: Vec<Finding>,
}

/// What an incrementally judged group keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// Members by dealer (their count): the dealers a finding names.
    pub dealers: BTreeMap<String, u64>,
    /// Mobile: the distinct customers (identities); national ID: the distinct names; with how
    /// many members carry each.
    pub values: BTreeMap<String, u64>,
    /// Dealer month: deliveries in the month's last days, and in the rest.
    pub tail_deliveries: u64,
    pub body_deliveries: u64,
    /// Dealer month: surveys, and those with the top score.
    pub surveys: u64,
    pub top_surveys: u64,
}

/// The identifiers of a customer a dealer registered, as a delivery party refers to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PartyIds {
    pub national_id: Option<String>,
    pub company_id: Option<String>,
}

/// One dealer's verdicts on the records it made on one day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTally {
    pub records: u64,
    pub flagged: u64,
    pub rejected: u64,
    /// Sum of the records' weights (0..=3 each).
    pub weight: u64,
    /// Records tripping each rule.
    pub rules: BTreeMap<String, u64>,
    /// Records received, by kind (`repair-order`, ...).
    pub kinds: BTreeMap<String, u64>,
}
