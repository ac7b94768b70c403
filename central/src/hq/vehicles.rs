//! Vehicle history by VIN (HQ) and the narrow service summary a dealer may read: both from the
//! vehicle projection and the VIN's history group (an index lookup).

use hamgam_proto::calendar::DAY_MS;
use hamgam_proto::hq::v1 as hq;
use hamgam_proto::values::Vin;
use tonic::Status;

use crate::content::{Content, PayType, VehicleCondition};
use crate::domain::{Outcome, StoredRecord};
use crate::merge::content_in_force;
use crate::merge::vehicle::VehicleView;
use crate::rules::history::{GroupKey, Replacement};
use crate::store::HubStore;

use super::{convert, unavailable};

/// Every usable record of a VIN's history (deliveries, repair orders, odometer replacements,
/// status changes) at any dealer, with its content in force, in event order.
fn records<S: HubStore>(store: &S, vin: &str) -> Result<Vec<(StoredRecord, Content)>, Status> {
    let mut out = Vec::new();
    for m in store
        .members(&GroupKey::Vin(vin.to_owned()))
        .map_err(unavailable)?
    {
        if let Some(r) = store.record(&m.dealer_id, m.seq).map_err(unavailable)? {
            if let Some(c) = content_in_force(&r) {
                out.push((r, c));
            }
        }
    }
    Ok(out)
}

fn parse_vin(raw: &str) -> Result<String, Status> {
    Vin::parse(raw)
        .map(|v| v.as_str().to_owned())
        .map_err(|e| Status::invalid_argument(format!("vin: {raw:?} is not a VIN: {e}")))
}

fn condition_name(c: VehicleCondition) -> &'static str {
    match c {
        VehicleCondition::Unspecified => "",
        VehicleCondition::Scrapped => "scrapped",
        VehicleCondition::Stolen => "stolen",
        VehicleCondition::Recovered => "recovered",
        VehicleCondition::Exported => "exported",
    }
}

fn pay_type_name(p: PayType) -> &'static str {
    match p {
        PayType::Unspecified => "",
        PayType::Customer => "customer",
        PayType::Warranty => "warranty",
        PayType::Internal => "internal",
        PayType::Goodwill => "goodwill",
        PayType::Campaign => "campaign",
        PayType::PreDelivery => "pre-delivery",
    }
}

/// The vehicle, or NOT_FOUND naming the VIN.
fn view<S: HubStore>(store: &S, vin: &str) -> Result<VehicleView, Status> {
    crate::merge::vehicle::read(store, vin)
        .map_err(unavailable)?
        .ok_or_else(|| Status::not_found(format!("no vehicle {vin} in the network's records")))
}

/// What a vehicle-history report shows.
/// The customers a vehicle history names (its timeline and owner): what its access-audit
/// entry lists.
pub fn customers_of(history: &hq::VehicleHistory) -> Vec<String> {
    history
        .timeline
        .iter()
        .chain(history.owner.iter())
        .filter(|e| !e.customer_id.is_empty())
        .map(|e| e.customer_id.clone())
        .collect()
}

pub fn history<S: HubStore>(store: &S, raw_vin: &str) -> Result<hq::VehicleHistory, Status> {
    let vin = parse_vin(raw_vin)?;
    let view = view(store, &vin)?;
    let mut out = hq::VehicleHistory {
        vin: vin.clone(),
        sold_by: view.sold_by.clone().unwrap_or_default(),
        timeline: view.timeline.iter().map(convert::role_entry).collect(),
        owner: view.owner.as_ref().map(convert::role_entry),
        condition: view
            .condition
            .map(|(c, _)| condition_name(c).to_owned())
            .unwrap_or_default(),
        condition_since_ms: view.condition.map(|(_, since)| since),
        conflicts: view.conflicts.iter().map(convert::conflict).collect(),
        ..Default::default()
    };
    let mut replacements = Vec::new();
    for (r, content) in records(store, &vin)? {
        let reading = |at_ms: i64, km: u32, kind: &str| hq::OdometerReading {
            at_ms,
            km,
            source_kind: kind.to_owned(),
            dealer_id: r.dealer_id.clone(),
            record_id: r.record_id.clone(),
            outcome: crate::wire::outcome_to_wire(r.verdict.outcome) as i32,
            rule_ids: convert::rule_ids(&r),
        };
        match &content {
            Content::Delivery(d) => {
                let at = d
                    .delivery_date_ms
                    .or(d.sale_date_ms)
                    .unwrap_or(r.made_at_ms());
                if r.verdict.outcome != Outcome::Rejected
                    && view.sold_by.as_deref() == Some(r.dealer_id.as_str())
                {
                    out.model = d.model.clone();
                    out.delivered_ms = Some(at);
                }
                out.odometer
                    .push(reading(at, d.odometer_km, "retail-delivery"));
            }
            Content::RepairOrder(ro) => {
                out.odometer
                    .push(reading(ro.opened_at_ms, ro.odometer_in_km, "repair-order"));
                out.services.push(hq::ServiceVisit {
                    opened_ms: ro.opened_at_ms,
                    completed_ms: ro.completed_at_ms,
                    dealer_id: r.dealer_id.clone(),
                    ro_number: ro.ro_number.clone(),
                    odometer_in_km: ro.odometer_in_km,
                    pay_type: pay_type_name(ro.pay_type).to_owned(),
                    labor_op_codes: ro
                        .job_lines
                        .iter()
                        .map(|j| j.labor_op_code.clone())
                        .collect(),
                    outcome: crate::wire::outcome_to_wire(r.verdict.outcome) as i32,
                    rule_ids: convert::rule_ids(&r),
                    record_id: r.record_id.clone(),
                });
            }
            Content::OdometerReplacement(o) => {
                if let Some(day_ms) = o.replaced_on_ms {
                    replacements.push((
                        Replacement {
                            day: day_ms.div_euclid(DAY_MS),
                            at_ms: o
                                .replaced_at_ms
                                .filter(|t| t.div_euclid(DAY_MS) == day_ms.div_euclid(DAY_MS)),
                            before_km: o.reading_before_km,
                            after_km: o.reading_after_km,
                        },
                        reading(day_ms, o.reading_after_km, "odometer-replacement"),
                    ));
                }
            }
            _ => {}
        }
    }
    // A replacement stands where the workshop made it: at its recorded time, else right after
    // the last reading of its day taken on the old cluster (as the rules place it).
    for (replacement, mut entry) in replacements {
        entry.at_ms = replacement.at_ms.unwrap_or_else(|| {
            out.odometer
                .iter()
                .filter(|o| {
                    o.at_ms.div_euclid(DAY_MS) == replacement.day
                        && !replacement.is_after(o.at_ms, o.km)
                })
                .map(|o| o.at_ms + 1)
                .max()
                .unwrap_or(entry.at_ms)
        });
        out.odometer.push(entry);
    }
    out.odometer.sort_by_key(|o| o.at_ms);
    out.services.sort_by_key(|s| s.opened_ms);
    Ok(out)
}

/// The dealer's narrow lookup: visits and odometer trust, no customer data and no other
/// dealer's customer refs or record ids. Rejected records are left out.
pub fn service_summary<S: HubStore>(
    store: &S,
    raw_vin: &str,
) -> Result<hq::ServiceSummary, Status> {
    let history = history(store, raw_vin)?;
    let usable = |o: i32| o != hamgam_proto::record::v1::Outcome::Rejected as i32;
    let odometer: Vec<&hq::OdometerReading> = history
        .odometer
        .iter()
        .filter(|o| usable(o.outcome))
        .collect();
    Ok(hq::ServiceSummary {
        vin: history.vin.clone(),
        model: history.model.clone(),
        delivered_ms: history.delivered_ms,
        condition: history.condition.clone(),
        // The latest reading by event time (a replaced cluster starts again low), not the
        // highest ever.
        last_odometer_km: odometer.last().map(|o| o.km).unwrap_or(0),
        odometer_suspect: odometer.iter().any(|o| {
            o.rule_ids
                .iter()
                .any(|r| crate::rules::ODOMETER_RULES.contains(&r.as_str()))
        }),
        visits: history
            .services
            .iter()
            .filter(|s| usable(s.outcome))
            .map(|s| hq::ServiceSummaryVisit {
                opened_ms: s.opened_ms,
                dealer_id: s.dealer_id.clone(),
                odometer_in_km: s.odometer_in_km,
                pay_type: s.pay_type.clone(),
                labor_op_codes: s.labor_op_codes.clone(),
            })
            .collect(),
    })
}
