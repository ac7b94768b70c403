//! Gathers what the hub holds about one customer: the records naming any of its dealer records
//! (the contact index), its vehicles (the parties' VIN index) with their repair orders (the VIN
//! history group), turned into [`CustomerFacts`] and a contact timeline. Index lookups only; no
//! scan of the store.

use std::collections::{BTreeMap, BTreeSet};

use crate::content::{Content, VehicleCondition};
use crate::domain::{Outcome, StoredRecord};
use crate::merge::vehicle::{Role, RoleEntry, VehicleView};
use crate::merge::{content_in_force, trust_of, GoldenCustomer, PartyKey, Trust};
use crate::rules::history::GroupKey;
use crate::store::{HubStore, StoreError};

use super::{ComplaintEvent, CustomerFacts, Facts, Holding, Service, SurveyAnswer, Touch};

/// One record in a customer's timeline.
#[derive(Debug, Clone)]
pub struct TimelineRecord {
    pub at_ms: i64,
    pub record: StoredRecord,
    pub content: Content,
}

/// A vehicle of the customer with the roles they held.
#[derive(Debug, Clone)]
pub struct CustomerVehicle {
    pub view: VehicleView,
    pub model: String,
    pub roles: Vec<Role>,
    pub since_ms: i64,
    pub held: bool,
}

/// Everything gathered about one customer.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    pub facts: CustomerFacts,
    /// Every contact, oldest first.
    pub timeline: Vec<TimelineRecord>,
    pub vehicles: Vec<CustomerVehicle>,
}

/// The roles that make a customer the holder of a vehicle.
fn holds(role: Role) -> bool {
    matches!(
        role,
        Role::Owner | Role::Buyer | Role::CoBuyer | Role::FleetAccount
    )
}

/// Reads records by `(dealer, seq)` once.
struct Reader<'s, S: HubStore> {
    store: &'s S,
    cache: BTreeMap<(String, u64), Option<(StoredRecord, Content)>>,
}

impl<S: HubStore> Reader<'_, S> {
    /// The record and its content in force, unless rejected-and-unusable or withdrawn.
    fn get(
        &mut self,
        dealer: &str,
        seq: u64,
    ) -> Result<Option<&(StoredRecord, Content)>, StoreError> {
        let key = (dealer.to_owned(), seq);
        if !self.cache.contains_key(&key) {
            let value = match self.store.record(dealer, seq)? {
                Some(r) if r.verdict.outcome != Outcome::Rejected => {
                    content_in_force(&r).map(|c| (r, c))
                }
                _ => None,
            };
            self.cache.insert(key.clone(), value);
        }
        Ok(self.cache.get(&key).and_then(Option::as_ref))
    }
}

fn trusted(record: &StoredRecord) -> bool {
    matches!(trust_of(record), Some(Trust::Clean | Trust::HqConfirmed))
}

/// Gathers `customer`'s facts from `store`.
pub fn gather<S: HubStore>(store: &S, customer: &GoldenCustomer) -> Result<Gathered, StoreError> {
    let mut reader = Reader {
        store,
        cache: BTreeMap::new(),
    };
    let parties: BTreeSet<&PartyKey> = customer.parties.iter().collect();
    let mine = |e: &RoleEntry| {
        e.customer_id.as_deref() == Some(customer.customer_id.as_str())
            || parties.contains(&e.party)
    };
    let mut out = Gathered::default();
    let mut seen: BTreeSet<(String, u64)> = BTreeSet::new();

    // Records naming the customer's dealer records.
    for party in &customer.parties {
        for seq in store.contacts(party)? {
            let Some((record, content)) = reader.get(&party.0, seq)? else {
                continue;
            };
            if !content.customer_refs().contains(&party.1.as_str()) {
                continue; // corrected to another customer since
            }
            if !seen.insert((party.0.clone(), seq)) {
                continue;
            }
            let trusted = trusted(record);
            let dealer_id = record.dealer_id.clone();
            let at_ms = match content {
                Content::Lead(l) => l.contacted_at_ms,
                Content::Complaint(c) => {
                    out.facts.complaints.push(ComplaintEvent {
                        case: format!("{dealer_id}/{}", c.case_ref),
                        at_ms: c.event_at_ms,
                        status: c.status,
                        trusted,
                    });
                    c.event_at_ms
                }
                Content::Survey(s) => {
                    out.facts.surveys.push(SurveyAnswer {
                        at_ms: s.submitted_at_ms,
                        csat: s.csat,
                        nps: s.nps,
                        trusted,
                    });
                    s.submitted_at_ms
                }
                Content::Delivery(d) => d
                    .delivery_date_ms
                    .or(d.sale_date_ms)
                    .unwrap_or(record.made_at_ms()),
                Content::RepairOrder(ro) => ro.opened_at_ms,
                _ => record.made_at_ms(),
            };
            // Leads, complaints and surveys are contacts; a registration alone is not.
            if matches!(
                content,
                Content::Lead(_) | Content::Complaint(_) | Content::Survey(_)
            ) {
                out.facts.touches.push(Touch {
                    at_ms,
                    dealer_id,
                    trusted,
                });
            }
            out.timeline.push(TimelineRecord {
                at_ms,
                record: record.clone(),
                content: content.clone(),
            });
        }
    }

    // Vehicles and their repair orders.
    let mut vins = BTreeSet::new();
    for party in &customer.parties {
        vins.extend(store.party_vins(party)?);
    }
    for vin in vins {
        let Some(view) = crate::merge::vehicle::read(store, &vin)? else {
            continue;
        };
        let mut model = String::new();
        for entry in view.timeline.iter().filter(|e| e.via == "delivery") {
            if let Some((_, Content::Delivery(d))) =
                reader.get(&entry.source.dealer_id, entry.source.seq)?
            {
                if !d.model.is_empty() {
                    model = d.model.clone();
                }
            }
        }
        let holdings_all = holdings(&view, &mine, &model, Facts::All);
        let holdings_trusted = holdings(&view, &mine, &model, Facts::TrustedOnly);
        let mut roles: Vec<Role> = view
            .timeline
            .iter()
            .filter(|e| mine(e))
            .map(|e| e.role)
            .collect();
        roles.sort();
        roles.dedup();
        let since_ms = view
            .timeline
            .iter()
            .filter(|e| mine(e))
            .map(|e| e.from_ms)
            .min()
            .unwrap_or_default();
        for member in store.members(&GroupKey::Vin(vin.clone()))? {
            let Some((record, content)) = reader.get(&member.dealer_id, member.seq)? else {
                continue;
            };
            let Content::RepairOrder(ro) = content else {
                continue;
            };
            let in_holding = holdings_all.iter().chain(&holdings_trusted).any(|h| {
                h.from_ms <= ro.opened_at_ms && h.until_ms.is_none_or(|u| ro.opened_at_ms < u)
            });
            if !in_holding {
                continue;
            }
            out.facts.services.push(Service {
                vin: vin.clone(),
                dealer_id: record.dealer_id.clone(),
                opened_ms: ro.opened_at_ms,
                total_rials: ro.total_rials,
                trusted: trusted(record),
            });
            if seen.insert((record.dealer_id.clone(), record.seq)) {
                out.timeline.push(TimelineRecord {
                    at_ms: ro.opened_at_ms,
                    record: record.clone(),
                    content: content.clone(),
                });
            }
        }
        let held = holdings_all.iter().any(|h| h.until_ms.is_none());
        out.facts.holdings_all.extend(holdings_all);
        out.facts.holdings_trusted.extend(holdings_trusted);
        out.vehicles.push(CustomerVehicle {
            view,
            model,
            roles,
            since_ms,
            held,
        });
    }
    out.timeline.sort_by(|a, b| {
        (a.at_ms, &a.record.dealer_id, a.record.seq).cmp(&(
            b.at_ms,
            &b.record.dealer_id,
            b.record.seq,
        ))
    });
    Ok(out)
}

/// The periods in which the customer (`mine`) held `view`'s vehicle, counting the facts of
/// `mode`: a holding starts with a delivery or a repair order naming them as owner, buyer,
/// co-buyer or fleet account, and ends when a later delivery (or a repair order naming a known
/// customer) gives the vehicle to someone else, or when it is scrapped, stolen or exported.
/// The other parties of the record that gave it to them (a fleet's owner beside its buyer) hold
/// it with them: they never end their holding.
pub fn holdings(
    view: &VehicleView,
    mine: &dyn Fn(&RoleEntry) -> bool,
    model: &str,
    mode: Facts,
) -> Vec<Holding> {
    let counts =
        |entry: &RoleEntry| holds(entry.role) && mode.admits(entry.source.trust != Trust::Flagged);
    let with_me: BTreeSet<(&str, u64)> = view
        .timeline
        .iter()
        .filter(|e| counts(e) && mine(e))
        .map(|e| (e.source.dealer_id.as_str(), e.source.seq))
        .collect();
    let mut out: Vec<Holding> = Vec::new();
    let mut open: Option<Holding> = None;
    for entry in &view.timeline {
        if !counts(entry) {
            continue;
        }
        let delivery = entry.via == "delivery";
        if mine(entry) {
            if open.is_none() {
                open = Some(Holding {
                    vin: view.vin.clone(),
                    model: model.to_owned(),
                    dealer_id: if delivery {
                        entry.source.dealer_id.clone()
                    } else {
                        String::new()
                    },
                    from_ms: entry.from_ms,
                    until_ms: None,
                    delivered: delivery,
                });
            }
        } else if (delivery || entry.customer_id.is_some())
            && !with_me.contains(&(entry.source.dealer_id.as_str(), entry.source.seq))
        {
            if let Some(mut h) = open.take() {
                h.until_ms = Some(entry.from_ms);
                out.push(h);
            }
        }
    }
    if let Some(mut h) = open {
        if let Some((condition, since)) = view.condition {
            if matches!(
                condition,
                VehicleCondition::Scrapped | VehicleCondition::Stolen | VehicleCondition::Exported
            ) && since >= h.from_ms
            {
                h.until_ms = Some(since.max(h.from_ms + 1));
            }
        }
        out.push(h);
    }
    out
}
