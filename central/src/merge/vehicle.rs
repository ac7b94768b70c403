//! One history per vehicle: who owned, bought, drove or ran it in a fleet, and when, from every
//! dealer's deliveries and repair orders; its condition (scrapped, stolen, ...); and the conflict
//! HQ must settle when two dealers report selling it.
//!
//! The store keeps one [`VehicleFact`] per usable record and the vehicle's [`VehicleSales`];
//! the merge writes a record's fact once and decides the sale from the deliveries alone, and
//! [`read`] projects the whole history when HQ asks for it.
//!
//! Parties are dealer records; each entry also names the customer the party resolves to, so
//! the history reads across dealers. The current owner follows the golden-record rule: an
//! entry from a clean record beats one from a flagged record, then the latest event wins.

use std::collections::BTreeMap;

use super::{Conflict, ConflictValue, PartyKey, Subject, VehicleDecisions};
use crate::content::{PartyRole, SaleCategory};
use crate::store::{HubStore, StoreError};

pub use crate::model::vehicle::{
    LosingSale, Role, RoleEntry, VehicleEvent, VehicleFact, VehicleSales, VehicleView,
};

/// The vehicle `vin` as HQ reads it, projected from its stored facts when asked (so that a
/// record about it writes one fact, not the vehicle's whole timeline again), with each party
/// resolved to the customer it is linked to now. `None`: no usable record names the VIN.
pub fn read<S: HubStore>(store: &S, vin: &str) -> Result<Option<VehicleView>, StoreError> {
    let facts: Vec<VehicleFact> = store.vehicle_facts(vin)?.into_values().collect();
    if facts.is_empty() {
        return Ok(None);
    }
    let decisions = store.vehicle_decisions(vin)?.unwrap_or_default();
    let mut links: BTreeMap<PartyKey, Option<String>> = BTreeMap::new();
    for party in facts.iter().flat_map(VehicleFact::parties) {
        if let std::collections::btree_map::Entry::Vacant(slot) = links.entry(party) {
            let link = store.link(slot.key())?;
            slot.insert(link);
        }
    }
    let customer = |p: &PartyKey| links.get(p).cloned().flatten();
    Ok(Some(project(vin, &facts, &customer, &decisions).0))
}

/// The vehicle `vin` from its usable records, with parties resolved by `customer`.
pub fn project(
    vin: &str,
    facts: &[VehicleFact],
    customer: &dyn Fn(&PartyKey) -> Option<String>,
    decisions: &VehicleDecisions,
) -> (VehicleView, Vec<LosingSale>) {
    let mut facts: Vec<&VehicleFact> = facts.iter().collect();
    facts.sort_by(|a, b| {
        (a.event_ms, &a.source.dealer_id, a.source.seq).cmp(&(
            b.event_ms,
            &b.source.dealer_id,
            b.source.seq,
        ))
    });
    // Sales to customers, by dealer.
    let mut sales: BTreeMap<String, Vec<&VehicleFact>> = BTreeMap::new();
    for f in &facts {
        if let VehicleEvent::Delivery { category, .. } = &f.event {
            if matches!(category, SaleCategory::Retail | SaleCategory::Fleet) {
                sales.entry(f.source.dealer_id.clone()).or_default().push(f);
            }
        }
    }
    let confirmed = decisions.seller.as_ref().map(|c| c.value.clone());
    let first_clean_sale = sales
        .iter()
        .map(|(dealer, list)| {
            let first = list[0];
            (
                std::cmp::Reverse(first.source.trust),
                first.event_ms,
                dealer,
            )
        })
        .min()
        .map(|(.., dealer)| dealer.clone());
    let sold_by = confirmed.clone().or(first_clean_sale);
    let mut conflicts = Vec::new();
    let mut losing = Vec::new();
    if sales.len() > 1 {
        conflicts.push(Conflict {
            subject: Subject::Vehicle(vin.to_owned()),
            field: "sold_by".into(),
            chosen: sold_by.clone().unwrap_or_default(),
            values: sales
                .iter()
                .map(|(dealer, list)| ConflictValue {
                    value: dealer.clone(),
                    sources: list.iter().map(|f| f.source.clone()).collect(),
                })
                .collect(),
            resolved: confirmed.is_some(),
        });
    }
    if let Some(seller) = &confirmed {
        for (dealer, list) in &sales {
            if dealer != seller {
                losing.extend(
                    list.iter()
                        .map(|f| (dealer.clone(), f.source.seq, seller.clone())),
                );
            }
        }
    }

    let mut timeline = Vec::new();
    let mut condition = None;
    for f in &facts {
        let dealer = &f.source.dealer_id;
        let mut entry = |role: Role, customer_ref: &str, via: &str| {
            if customer_ref.is_empty() {
                return;
            }
            let party = (dealer.clone(), customer_ref.to_owned());
            timeline.push(RoleEntry {
                from_ms: f.event_ms,
                role,
                customer_id: customer(&party),
                party,
                via: via.into(),
                source: f.source.clone(),
            });
        };
        match &f.event {
            VehicleEvent::Delivery { parties, .. } => {
                let lost = losing
                    .iter()
                    .any(|(d, seq, _)| d == dealer && *seq == f.source.seq);
                if lost {
                    continue; // HQ said this sale did not happen
                }
                let has_owner = parties.iter().any(|(r, _)| *r == PartyRole::Owner);
                for (role, customer_ref) in parties {
                    let role = match role {
                        PartyRole::Owner => Role::Owner,
                        PartyRole::Buyer if !has_owner => Role::Owner,
                        PartyRole::Buyer | PartyRole::Unspecified => Role::Buyer,
                        PartyRole::CoBuyer => Role::CoBuyer,
                        PartyRole::PrimaryDriver => Role::Driver,
                        PartyRole::FleetAccount => Role::FleetAccount,
                    };
                    entry(role, customer_ref, "delivery");
                }
            }
            VehicleEvent::RepairOrder {
                owner_ref,
                driver_ref,
            } => {
                entry(Role::Owner, owner_ref, "repair-order");
                if driver_ref != owner_ref {
                    entry(Role::Driver, driver_ref, "repair-order");
                }
            }
            VehicleEvent::Status { condition: c } => {
                if condition.is_none_or(|(_, at)| f.event_ms >= at) {
                    condition = Some((*c, f.event_ms));
                }
            }
        }
    }
    let owner = timeline
        .iter()
        .filter(|e| e.role == Role::Owner)
        .max_by(|a, b| {
            (
                a.source.trust,
                a.from_ms,
                a.source.stamp,
                &a.source.dealer_id,
                a.source.seq,
            )
                .cmp(&(
                    b.source.trust,
                    b.from_ms,
                    b.source.stamp,
                    &b.source.dealer_id,
                    b.source.seq,
                ))
        })
        .cloned();
    (
        VehicleView {
            vin: vin.to_owned(),
            timeline,
            owner,
            condition,
            sold_by,
            conflicts,
        },
        losing,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{Confirmed, Provenance, Stamp, Trust};

    fn fact(dealer: &str, seq: u64, at: i64, event: VehicleEvent, trust: Trust) -> VehicleFact {
        VehicleFact {
            event_ms: at,
            event,
            source: Provenance {
                dealer_id: dealer.into(),
                record_id: format!("{dealer}-{seq}"),
                seq,
                stamp: Stamp {
                    wall_ms: at,
                    logical: 0,
                },
                trust,
            },
        }
    }

    fn sale(dealer: &str, seq: u64, at: i64, buyer: &str) -> VehicleFact {
        fact(
            dealer,
            seq,
            at,
            VehicleEvent::Delivery {
                category: SaleCategory::Retail,
                parties: vec![(PartyRole::Buyer, buyer.into())],
            },
            Trust::Clean,
        )
    }

    fn customer_of(p: &PartyKey) -> Option<String> {
        Some(format!("CU-{}", p.1))
    }

    #[test]
    fn a_fleet_car_has_an_owner_a_driver_and_later_a_new_owner() {
        let facts = vec![
            fact(
                "D-1",
                1,
                100,
                VehicleEvent::Delivery {
                    category: SaleCategory::Fleet,
                    parties: vec![
                        (PartyRole::Buyer, "acme".into()),
                        (PartyRole::Owner, "acme".into()),
                        (PartyRole::PrimaryDriver, "ali".into()),
                        (PartyRole::FleetAccount, "acme".into()),
                    ],
                },
                Trust::Clean,
            ),
            fact(
                "D-2",
                9,
                500,
                VehicleEvent::RepairOrder {
                    owner_ref: "sara".into(),
                    driver_ref: "sara".into(),
                },
                Trust::Clean,
            ),
        ];
        let (v, losing) = project("VIN", &facts, &customer_of, &VehicleDecisions::default());
        assert!(losing.is_empty() && v.conflicts.is_empty());
        let roles: Vec<(Role, &str)> = v
            .timeline
            .iter()
            .map(|e| (e.role, e.party.1.as_str()))
            .collect();
        assert!(roles.contains(&(Role::Driver, "ali")));
        assert!(roles.contains(&(Role::Buyer, "acme")));
        assert!(roles.contains(&(Role::FleetAccount, "acme")));
        let owner = v.owner.expect("an owner");
        assert_eq!(owner.party, ("D-2".to_owned(), "sara".to_owned()));
        assert_eq!(owner.customer_id.as_deref(), Some("CU-sara"));
    }

    #[test]
    fn a_vin_sold_by_two_dealers_is_a_conflict_until_hq_names_the_seller() {
        let facts = vec![sale("D-1", 1, 100, "ali"), sale("D-2", 4, 200, "reza")];
        let (v, losing) = project("VIN", &facts, &customer_of, &VehicleDecisions::default());
        assert_eq!(v.conflicts.len(), 1);
        assert_eq!(v.conflicts[0].field, "sold_by");
        assert_eq!(v.sold_by.as_deref(), Some("D-1"), "the first clean sale");
        assert!(losing.is_empty());

        let decided = VehicleDecisions {
            seller: Some(Confirmed {
                value: "D-2".into(),
                decision: 3,
                at_ms: 900,
            }),
        };
        let (v, losing) = project("VIN", &facts, &customer_of, &decided);
        assert!(v.conflicts[0].resolved);
        assert_eq!(v.sold_by.as_deref(), Some("D-2"));
        assert_eq!(losing, vec![("D-1".into(), 1, "D-2".into())]);
        assert_eq!(v.owner.map(|o| o.party.1), Some("reza".into()));
    }
}
