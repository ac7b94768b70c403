//! A vehicle as the hub stores it: one fact per usable record about it, its deliveries and
//! losing sales, and the history HQ reads, projected from them by [`crate::merge::vehicle`].

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::customer::{Confirmed, Conflict, PartyKey, Provenance};
use super::At;
use crate::content::{PartyRole, SaleCategory, VehicleCondition};

/// A party's role towards a vehicle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Owner,
    Buyer,
    CoBuyer,
    Driver,
    FleetAccount,
}

/// One role held from a date on, as one dealer record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleEntry {
    pub from_ms: i64,
    pub role: Role,
    pub party: PartyKey,
    /// The customer the party is linked to, when it has a usable customer record.
    pub customer_id: Option<String>,
    /// `delivery` or `repair-order`.
    pub via: String,
    pub source: Provenance,
}

/// A vehicle across the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleView {
    pub vin: String,
    /// Every role entry, in event order.
    pub timeline: Vec<RoleEntry>,
    /// The owner now (the rule is in [`crate::merge::vehicle`]'s module doc).
    pub owner: Option<RoleEntry>,
    /// The latest condition reported and since when.
    pub condition: Option<(VehicleCondition, i64)>,
    /// The dealer whose sale stands (HQ's choice, else the first clean sale).
    pub sold_by: Option<String>,
    pub conflicts: Vec<Conflict>,
}

/// What one record says about a vehicle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VehicleEvent {
    Delivery {
        category: SaleCategory,
        parties: Vec<(PartyRole, String)>,
    },
    RepairOrder {
        owner_ref: String,
        driver_ref: String,
    },
    Status {
        condition: VehicleCondition,
    },
}

/// One usable record about a vehicle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleFact {
    pub event_ms: i64,
    pub event: VehicleEvent,
    pub source: Provenance,
}

impl VehicleFact {
    /// The dealer's customer refs this fact names (none for a status change).
    pub fn party_refs(&self) -> Vec<&str> {
        let refs: Vec<&str> = match &self.event {
            VehicleEvent::Delivery { parties, .. } => {
                parties.iter().map(|(_, r)| r.as_str()).collect()
            }
            VehicleEvent::RepairOrder {
                owner_ref,
                driver_ref,
            } => vec![owner_ref.as_str(), driver_ref.as_str()],
            VehicleEvent::Status { .. } => Vec::new(),
        };
        refs.into_iter().filter(|r| !r.is_empty()).collect()
    }

    /// The parties (dealer, customer ref) this fact names.
    pub fn parties(&self) -> impl Iterator<Item = PartyKey> + '_ {
        self.party_refs()
            .into_iter()
            .map(|r| (self.source.dealer_id.clone(), r.to_owned()))
    }
}

/// What the merge keeps of a vehicle beside the facts (one stored per usable record), so
/// that who sold it is decided without reading its repair orders: the records among its
/// facts that are deliveries, and the deliveries the last projection found losing to HQ's
/// confirmed seller (they carry H01 until a projection finds them standing). Stored while
/// either is non-empty. The reference is the same read from the VIN history group's records
/// (`central admin rebuild --check`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleSales {
    pub deliveries: BTreeSet<At>,
    pub losing: BTreeSet<At>,
}

impl VehicleSales {
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty() && self.losing.is_empty()
    }
}

/// A delivery of a seller HQ did not confirm: `(dealer, seq, confirmed seller)`.
pub type LosingSale = (String, u64, String);

/// HQ's decisions about one vehicle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleDecisions {
    /// The dealer whose sale HQ confirmed when several dealers reported selling the VIN.
    pub seller: Option<Confirmed>,
}
