//! Who HQ should call: held vehicles due for service, and active customers about to become
//! `recently_lost`.
//!
//! A held vehicle is due `lifecycle.service_interval_days` after its last service visit (its
//! delivery when it has none), or when its odometer, projected from its readings, has run
//! `lifecycle.service_interval_km` since that visit, whichever comes first. The projection is a
//! straight line through the first and the latest reading, given two readings at least
//! [`MIN_SERIES_DAYS`] apart that rise.

use crate::content::Content;
use crate::lifecycle::{Facts, LifecycleConfig, DAY_MS};

use super::journey::touchpoints;
use super::Profile;

/// The shortest span of readings a km projection is drawn from.
pub const MIN_SERIES_DAYS: i64 = 30;

/// One held vehicle due for service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDue {
    pub customer_id: String,
    pub vin: String,
    pub model: String,
    pub last_service_ms: Option<i64>,
    /// The last service, or the delivery.
    pub since_ms: i64,
    pub last_dealer_id: String,
    /// `time` or `km`.
    pub due_by: &'static str,
    pub due_since_ms: i64,
    pub days_overdue: f64,
    pub km_at_since: Option<u32>,
    pub projected_km: Option<u32>,
}

/// The vehicle's odometer readings `(at, km)` counted in `mode`, oldest first.
fn readings(profile: &Profile, vin: &str, mode: Facts, as_of: i64) -> Vec<(i64, u32)> {
    let mut out: Vec<(i64, u32)> = profile
        .contacts(mode, as_of)
        .filter_map(|c| match &c.content {
            Content::RepairOrder(ro) if ro.vin == vin && ro.odometer_in_km > 0 => {
                Some((ro.opened_at_ms, ro.odometer_in_km))
            }
            Content::Delivery(d) if d.vin == vin => Some((c.at_ms, d.odometer_km)),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

/// The held vehicles of `profile` due for service at `as_of` in `mode`.
pub fn service_due(
    profile: &Profile,
    config: &LifecycleConfig,
    mode: Facts,
    as_of: i64,
) -> Vec<ServiceDue> {
    let facts = &profile.facts;
    let holdings = match mode {
        Facts::All => &facts.holdings_all,
        Facts::TrustedOnly => &facts.holdings_trusted,
    };
    let mut out = Vec::new();
    for vehicle in &profile.vehicles {
        let vin = vehicle.vin.as_str();
        let Some(holding) = holdings
            .iter()
            .find(|h| h.vin == vin && h.from_ms <= as_of && h.until_ms.is_none_or(|u| u > as_of))
        else {
            continue;
        };
        let last = facts
            .services
            .iter()
            .filter(|s| {
                s.vin == vin
                    && (mode == Facts::All || s.trusted)
                    && s.opened_ms <= as_of
                    && s.opened_ms >= holding.from_ms
            })
            .max_by_key(|s| s.opened_ms);
        let (since_ms, dealer) = match last {
            Some(s) => (s.opened_ms, s.dealer_id.clone()),
            None => (holding.from_ms, holding.dealer_id.clone()),
        };
        let by_time = since_ms + config.service_interval_days * DAY_MS;
        let series = readings(profile, vin, mode, as_of);
        let at_since = series
            .iter()
            .rev()
            .find(|(at, _)| *at <= since_ms)
            .map(|r| r.1);
        let projection = match (series.first(), series.last()) {
            (Some(&(t0, k0)), Some(&(t1, k1)))
                if t1 - t0 >= MIN_SERIES_DAYS * DAY_MS && k1 > k0 =>
            {
                let per_ms = f64::from(k1 - k0) / (t1 - t0) as f64;
                Some((t1, k1, per_ms))
            }
            _ => None,
        };
        let projected = projection.map(|(t1, k1, per_ms)| {
            (f64::from(k1) + per_ms * (as_of - t1).max(0) as f64).round() as u32
        });
        let by_km = match (projection, at_since) {
            (Some((t1, k1, per_ms)), Some(k)) => {
                let target = f64::from(k) + f64::from(config.service_interval_km);
                let at = t1 as f64 + (target - f64::from(k1)) / per_ms;
                Some((at.round() as i64).max(since_ms))
            }
            _ => None,
        };
        let (due_by, due_since_ms) = match by_km {
            Some(km) if km < by_time => ("km", km),
            _ => ("time", by_time),
        };
        if due_since_ms > as_of {
            continue;
        }
        out.push(ServiceDue {
            customer_id: profile.customer_id.clone(),
            vin: vin.to_owned(),
            model: vehicle.model.clone(),
            last_service_ms: last.map(|s| s.opened_ms),
            since_ms,
            last_dealer_id: dealer,
            due_by,
            due_since_ms,
            days_overdue: (as_of - due_since_ms) as f64 / DAY_MS as f64,
            km_at_since: at_since,
            projected_km: projected,
        });
    }
    out
}

/// An active customer who becomes `recently_lost` at `crosses_at_ms` unless they come back.
#[derive(Debug, Clone, PartialEq)]
pub struct ChurnRisk {
    pub customer_id: String,
    pub crosses_at_ms: i64,
    pub last_activity_ms: i64,
    pub last_dealer_id: String,
}

/// `profile` as a churn risk within `within_days` of `as_of` in `mode`, if they are one.
pub fn churn_risk(
    profile: &Profile,
    config: &LifecycleConfig,
    mode: Facts,
    as_of: i64,
    within_days: i64,
) -> Option<ChurnRisk> {
    let crosses = profile.facts.active_until(config, as_of, mode)?;
    if crosses - as_of > within_days * DAY_MS {
        return None;
    }
    let last_activity_ms = crosses - 1 - config.active_days * DAY_MS;
    let last_dealer_id = touchpoints(profile, mode, as_of)
        .into_iter()
        .rfind(|t| matches!(t.kind, "service" | "delivery") && t.at_ms <= last_activity_ms)
        .map(|t| t.dealer_id)
        .unwrap_or_default();
    Some(ChurnRisk {
        customer_id: profile.customer_id.clone(),
        crosses_at_ms: crosses,
        last_activity_ms,
        last_dealer_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::summary::VehicleSummary;
    use crate::analytics::test_profiles::{delivery, of};
    use crate::analytics::Contact;
    use crate::content::{PayType, RepairOrder};
    use crate::lifecycle::{Holding, Service};

    const T0: i64 = 1_790_000_000_000;

    fn visit(at_ms: i64, km: u32) -> Contact {
        let mut c = delivery(at_ms);
        c.content = Content::RepairOrder(RepairOrder {
            ro_number: format!("RO-{at_ms}"),
            vin: "V1".into(),
            opened_at_ms: at_ms,
            completed_at_ms: at_ms + 3_600_000,
            odometer_in_km: km,
            odometer_out_km: km,
            pay_type: PayType::Customer,
            job_lines: Vec::new(),
            owner_ref: "C1".into(),
            driver_ref: "C1".into(),
            total_rials: 0,
        });
        c
    }

    /// A customer holding V1 since `T0` (delivered at 5 km), serviced at `visits`.
    fn holder(visits: &[(i64, u32)]) -> Profile {
        let mut contacts = vec![delivery(T0)];
        contacts.extend(visits.iter().map(|(at, km)| visit(*at, *km)));
        let mut p = of(contacts);
        let holding = Holding {
            vin: "V1".into(),
            model: "Tara".into(),
            dealer_id: "D-1".into(),
            from_ms: T0,
            until_ms: None,
            delivered: true,
        };
        p.facts.holdings_all = vec![holding.clone()];
        p.facts.holdings_trusted = vec![holding];
        p.facts.services = visits
            .iter()
            .map(|(at, _)| Service {
                vin: "V1".into(),
                dealer_id: "D-2".into(),
                opened_ms: *at,
                total_rials: 0,
                trusted: true,
            })
            .collect();
        p.vehicles = vec![VehicleSummary {
            vin: "V1".into(),
            model: "Tara".into(),
            roles: Vec::new(),
        }];
        p
    }

    #[test]
    fn a_vehicle_never_serviced_is_due_on_the_day_its_interval_ends_and_not_before() {
        let config = LifecycleConfig::default();
        let due_at = T0 + config.service_interval_days * DAY_MS;
        let p = holder(&[]);
        assert!(service_due(&p, &config, Facts::All, due_at - 1).is_empty());
        let due = service_due(&p, &config, Facts::All, due_at);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].due_by, due[0].due_since_ms, due[0].days_overdue),
            ("time", due_at, 0.0)
        );
        assert_eq!(
            (due[0].last_service_ms, due[0].last_dealer_id.as_str()),
            (None, "D-1")
        );
    }

    #[test]
    fn a_vehicle_driven_far_is_due_by_its_projected_km_before_its_time() {
        let config = LifecycleConfig::default();
        // 5 km at delivery, 10,005 km 50 days later: 200 km a day, so the next 10,000 km are
        // run 50 days after that visit.
        let visit_at = T0 + 50 * DAY_MS;
        let p = holder(&[(visit_at, 10_005)]);
        let as_of = visit_at + 60 * DAY_MS;
        let due = service_due(&p, &config, Facts::All, as_of);
        assert_eq!(due.len(), 1, "{due:?}");
        assert_eq!(due[0].due_by, "km");
        assert_eq!(due[0].due_since_ms, visit_at + 50 * DAY_MS);
        assert_eq!(
            (due[0].km_at_since, due[0].projected_km),
            (Some(10_005), Some(22_005))
        );
        assert_eq!(due[0].last_dealer_id, "D-2");
        // Ten days earlier it was not due yet.
        assert!(service_due(&p, &config, Facts::All, visit_at + 50 * DAY_MS - 1).is_empty());
    }
}
