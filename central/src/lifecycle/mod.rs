//! Where a customer stands in their lifecycle with the network (DESIGN.md, "Customer
//! lifecycle"), and the KPIs HQ reads per customer and per dealer, region, model and period.
//!
//! Pure functions over [`CustomerFacts`] (gathered from the store by [`facts`]) and an `as_of`
//! time, so a report can be reproduced later. Every number is computed twice: from all usable
//! facts (clean and flagged) and from clean facts only ([`Facts::TrustedOnly`]), so HQ sees how
//! much an answer depends on data it cannot trust. Rejected and withdrawn records are never
//! facts.
//!
//! Stages (thresholds in [`LifecycleConfig`], days, a boundary belongs to the younger stage):
//! `former` (vehicles held before, none now) > `prospect` (contacts, never a vehicle) >
//! `new_owner` (latest delivery within `new_owner_days`, no service since) > `never_serviced`
//! (no service of a held vehicle, ever) > by the latest service or delivery: `active` (within
//! `active_days`), `recently_lost` (within `lost_days`), `defected` (longer).

pub mod facts;
pub mod report;

use serde::{Deserialize, Serialize};

use crate::content::ComplaintStatus;

pub const DAY_MS: i64 = 86_400_000;

/// The lifecycle thresholds (`[lifecycle]` in the hub's config).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LifecycleConfig {
    /// A delivery this recent, with no service since, makes a `new_owner`.
    pub new_owner_days: i64,
    /// The latest service (or delivery) this recent makes a customer `active`.
    pub active_days: i64,
    /// Beyond `active_days` and up to this: `recently_lost`; beyond: `defected`.
    pub lost_days: i64,
    /// A held vehicle is due for service this long after its last one (or its delivery).
    pub service_interval_days: i64,
    /// ... or once its projected odometer has run this far since.
    pub service_interval_km: u32,
    /// A complaint case open longer than this is past its SLA.
    pub complaint_sla_days: i64,
    /// A lead followed by a delivery to the customer within this many days converted.
    pub lead_conversion_days: i64,
    /// The churn-risk list's horizon when a request gives none.
    pub churn_within_days: i64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            new_owner_days: 180,
            active_days: 365,
            lost_days: 730,
            service_interval_days: 365,
            service_interval_km: 10_000,
            complaint_sla_days: 14,
            lead_conversion_days: 180,
            churn_within_days: 30,
        }
    }
}

impl LifecycleConfig {
    /// Refuses thresholds that cannot order the stages.
    pub fn check(&self) -> Result<(), String> {
        if self.new_owner_days <= 0
            || self.active_days <= 0
            || self.lost_days <= 0
            || self.service_interval_days <= 0
            || self.service_interval_km == 0
            || self.complaint_sla_days <= 0
            || self.lead_conversion_days <= 0
            || self.churn_within_days <= 0
        {
            return Err("lifecycle: every threshold must be a positive number of days".into());
        }
        if self.lost_days <= self.active_days {
            return Err(format!(
                "lifecycle.lost_days ({}) must be greater than lifecycle.active_days ({})",
                self.lost_days, self.active_days
            ));
        }
        Ok(())
    }
}

/// A customer's lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    Prospect,
    NewOwner,
    NeverServiced,
    Active,
    RecentlyLost,
    Defected,
    Former,
}

impl Stage {
    pub const ALL: [Stage; 7] = [
        Stage::Prospect,
        Stage::NewOwner,
        Stage::NeverServiced,
        Stage::Active,
        Stage::RecentlyLost,
        Stage::Defected,
        Stage::Former,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Prospect => "prospect",
            Stage::NewOwner => "new_owner",
            Stage::NeverServiced => "never_serviced",
            Stage::Active => "active",
            Stage::RecentlyLost => "recently_lost",
            Stage::Defected => "defected",
            Stage::Former => "former",
        }
    }
}

/// Which facts count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facts {
    /// Clean and flagged facts.
    All,
    /// Clean (and HQ-confirmed) facts only.
    TrustedOnly,
}

impl Facts {
    fn admits(self, trusted: bool) -> bool {
        trusted || self == Facts::All
    }
}

/// A vehicle the customer held (owner, buyer, co-buyer or fleet account) over a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holding {
    pub vin: String,
    pub model: String,
    /// The dealer that delivered it (empty when the holding starts with a repair order).
    pub dealer_id: String,
    pub from_ms: i64,
    /// When someone else took it over, or it was scrapped, stolen or exported.
    pub until_ms: Option<i64>,
    /// The holding starts with a delivery (not a transfer seen at a repair order).
    pub delivered: bool,
}

/// A repair order on a vehicle the customer held at the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    pub vin: String,
    pub dealer_id: String,
    pub opened_ms: i64,
    pub total_rials: i64,
    pub trusted: bool,
}

/// Any other dated contact: a lead, a survey, a complaint event (a registration alone is not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Touch {
    pub at_ms: i64,
    pub dealer_id: String,
    pub trusted: bool,
}

/// One event of a complaint case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintEvent {
    /// `dealer/case_ref`.
    pub case: String,
    pub at_ms: i64,
    pub status: ComplaintStatus,
    pub trusted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SurveyAnswer {
    pub at_ms: i64,
    pub csat: u32,
    pub nps: Option<u32>,
    pub trusted: bool,
}

/// Everything the lifecycle reads about one customer. Holdings come per mode because a flagged
/// delivery or transfer changes who held what.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerFacts {
    pub holdings_all: Vec<Holding>,
    pub holdings_trusted: Vec<Holding>,
    pub services: Vec<Service>,
    pub touches: Vec<Touch>,
    pub complaints: Vec<ComplaintEvent>,
    pub surveys: Vec<SurveyAnswer>,
}

/// A customer's KPIs as of a time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerKpis {
    pub tenure_days: i64,
    pub vehicles_held: u32,
    pub service_visits: u32,
    pub spend_rials: i64,
    pub csat: Option<f64>,
    pub nps: Option<f64>,
    pub open_complaints: Vec<String>,
    pub last_service_ms: Option<i64>,
    /// Days from each delivery to the vehicle's first service, for vehicles serviced.
    pub days_to_first_service: Vec<f64>,
    /// Days from each closed complaint's first event to its closing.
    pub complaint_resolution_days: Vec<f64>,
}

impl CustomerFacts {
    fn holdings(&self, mode: Facts) -> &[Holding] {
        match mode {
            Facts::All => &self.holdings_all,
            Facts::TrustedOnly => &self.holdings_trusted,
        }
    }

    /// The services counted in `mode` up to `as_of` on vehicles the customer held then.
    fn services(&self, mode: Facts, as_of: i64) -> impl Iterator<Item = &Service> {
        let holdings = self.holdings(mode);
        self.services.iter().filter(move |s| {
            mode.admits(s.trusted)
                && s.opened_ms <= as_of
                && holdings.iter().any(|h| {
                    h.vin == s.vin
                        && h.from_ms <= s.opened_ms
                        && h.until_ms.is_none_or(|u| s.opened_ms < u)
                })
        })
    }

    /// For a customer holding a vehicle at `as_of`: their latest delivery of a vehicle they
    /// still hold, and the latest service of one (`None`: they hold none).
    fn held_activity(&self, as_of: i64, mode: Facts) -> Option<(i64, Option<i64>)> {
        let held: Vec<&Holding> = self
            .holdings(mode)
            .iter()
            .filter(|h| h.from_ms <= as_of && h.until_ms.is_none_or(|u| u > as_of))
            .collect();
        if held.is_empty() {
            return None;
        }
        let last_delivery = held.iter().map(|h| h.from_ms).max().unwrap_or(i64::MIN);
        let last_service = self
            .services(mode, as_of)
            .filter(|s| held.iter().any(|h| h.vin == s.vin))
            .map(|s| s.opened_ms)
            .max();
        Some((last_delivery, last_service))
    }

    /// When an `active` customer becomes `recently_lost` if nothing happens before: the day
    /// after `active_days` have passed since their latest service (or delivery). `None` when
    /// they are not active at `as_of`.
    pub fn active_until(&self, config: &LifecycleConfig, as_of: i64, mode: Facts) -> Option<i64> {
        if self.stage(config, as_of, mode) != Some(Stage::Active) {
            return None;
        }
        let (last_delivery, last_service) = self.held_activity(as_of, mode)?;
        let last = last_service?.max(last_delivery);
        Some(last + config.active_days * DAY_MS + 1)
    }

    /// The customer's stage at `as_of`, or `None` when nothing is known of them by then.
    pub fn stage(&self, config: &LifecycleConfig, as_of: i64, mode: Facts) -> Option<Stage> {
        let holdings: Vec<&Holding> = self
            .holdings(mode)
            .iter()
            .filter(|h| h.from_ms <= as_of)
            .collect();
        if holdings.is_empty() {
            let contact = self
                .touches
                .iter()
                .any(|t| mode.admits(t.trusted) && t.at_ms <= as_of)
                || self
                    .complaints
                    .iter()
                    .any(|c| mode.admits(c.trusted) && c.at_ms <= as_of);
            return contact.then_some(Stage::Prospect);
        }
        let Some((last_delivery, last_service)) = self.held_activity(as_of, mode) else {
            return Some(Stage::Former);
        };
        let serviced_since = last_service.is_some_and(|s| s >= last_delivery);
        if as_of - last_delivery <= config.new_owner_days * DAY_MS && !serviced_since {
            return Some(Stage::NewOwner);
        }
        let Some(last_service) = last_service else {
            return Some(Stage::NeverServiced);
        };
        let age = as_of - last_service.max(last_delivery);
        Some(if age <= config.active_days * DAY_MS {
            Stage::Active
        } else if age <= config.lost_days * DAY_MS {
            Stage::RecentlyLost
        } else {
            Stage::Defected
        })
    }

    /// The customer's KPIs at `as_of`.
    pub fn kpis(&self, as_of: i64, mode: Facts) -> CustomerKpis {
        let holdings: Vec<&Holding> = self
            .holdings(mode)
            .iter()
            .filter(|h| h.from_ms <= as_of)
            .collect();
        let services: Vec<&Service> = self.services(mode, as_of).collect();
        let first = holdings
            .iter()
            .map(|h| h.from_ms)
            .chain(
                self.touches
                    .iter()
                    .filter(|t| mode.admits(t.trusted) && t.at_ms <= as_of)
                    .map(|t| t.at_ms),
            )
            .chain(services.iter().map(|s| s.opened_ms))
            .min();
        let surveys: Vec<&SurveyAnswer> = self
            .surveys
            .iter()
            .filter(|s| mode.admits(s.trusted) && s.at_ms <= as_of)
            .collect();
        let mean = |values: Vec<f64>| {
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let mut cases: std::collections::BTreeMap<&str, Vec<&ComplaintEvent>> = Default::default();
        for c in self
            .complaints
            .iter()
            .filter(|c| mode.admits(c.trusted) && c.at_ms <= as_of)
        {
            cases.entry(&c.case).or_default().push(c);
        }
        let mut open_complaints = Vec::new();
        let mut complaint_resolution_days = Vec::new();
        for (case, mut events) in cases {
            events.sort_by_key(|e| e.at_ms);
            let opened = events[0].at_ms;
            match events.iter().find(|e| {
                matches!(
                    e.status,
                    ComplaintStatus::Closed | ComplaintStatus::Resolved
                )
            }) {
                Some(closed)
                    if matches!(
                        events.last().map(|e| e.status),
                        Some(ComplaintStatus::Closed | ComplaintStatus::Resolved)
                    ) =>
                {
                    complaint_resolution_days.push((closed.at_ms - opened) as f64 / DAY_MS as f64)
                }
                _ => open_complaints.push(case.to_owned()),
            }
        }
        let days_to_first_service = holdings
            .iter()
            .filter(|h| h.delivered)
            .filter_map(|h| {
                services
                    .iter()
                    .filter(|s| s.vin == h.vin && s.opened_ms >= h.from_ms)
                    .map(|s| s.opened_ms)
                    .min()
                    .map(|first| (first - h.from_ms) as f64 / DAY_MS as f64)
            })
            .collect();
        CustomerKpis {
            tenure_days: first.map_or(0, |f| (as_of - f) / DAY_MS),
            vehicles_held: holdings
                .iter()
                .filter(|h| h.until_ms.is_none_or(|u| u > as_of))
                .count() as u32,
            service_visits: services.len() as u32,
            spend_rials: services.iter().map(|s| s.total_rials).sum(),
            csat: mean(surveys.iter().map(|s| f64::from(s.csat)).collect()),
            nps: mean(
                surveys
                    .iter()
                    .filter_map(|s| s.nps.map(f64::from))
                    .collect(),
            ),
            open_complaints,
            last_service_ms: services.iter().map(|s| s.opened_ms).max(),
            days_to_first_service,
            complaint_resolution_days,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn days_ago(d: i64) -> i64 {
        NOW - d * DAY_MS
    }

    fn held(vin: &str, from: i64) -> Holding {
        Holding {
            vin: vin.into(),
            model: "Tara".into(),
            dealer_id: "D-1".into(),
            from_ms: from,
            until_ms: None,
            delivered: true,
        }
    }

    fn service(vin: &str, at: i64, trusted: bool) -> Service {
        Service {
            vin: vin.into(),
            dealer_id: "D-1".into(),
            opened_ms: at,
            total_rials: 1_000,
            trusted,
        }
    }

    fn owner(delivered_days_ago: i64, services: &[(i64, bool)]) -> CustomerFacts {
        let h = held("V1", days_ago(delivered_days_ago));
        CustomerFacts {
            holdings_all: vec![h.clone()],
            holdings_trusted: vec![h],
            services: services
                .iter()
                .map(|(d, t)| service("V1", days_ago(*d), *t))
                .collect(),
            ..Default::default()
        }
    }

    fn stage(f: &CustomerFacts) -> Option<Stage> {
        f.stage(&LifecycleConfig::default(), NOW, Facts::All)
    }

    #[test]
    fn stages_change_exactly_at_their_thresholds() {
        assert_eq!(stage(&owner(180, &[])), Some(Stage::NewOwner));
        assert_eq!(stage(&owner(181, &[])), Some(Stage::NeverServiced));
        assert_eq!(stage(&owner(400, &[(365, true)])), Some(Stage::Active));
        assert_eq!(
            stage(&owner(400, &[(366, true)])),
            Some(Stage::RecentlyLost)
        );
        assert_eq!(
            stage(&owner(800, &[(730, true)])),
            Some(Stage::RecentlyLost)
        );
        assert_eq!(stage(&owner(800, &[(731, true)])), Some(Stage::Defected));
        // Serviced since a recent delivery: active, not new.
        assert_eq!(stage(&owner(100, &[(50, true)])), Some(Stage::Active));
    }

    #[test]
    fn a_flagged_service_counts_only_with_all_facts() {
        let f = owner(400, &[(100, false)]);
        let config = LifecycleConfig::default();
        assert_eq!(f.stage(&config, NOW, Facts::All), Some(Stage::Active));
        assert_eq!(
            f.stage(&config, NOW, Facts::TrustedOnly),
            Some(Stage::NeverServiced)
        );
    }

    #[test]
    fn contacts_without_vehicles_make_a_prospect_and_a_vehicle_gone_a_former_customer() {
        let mut f = CustomerFacts {
            touches: vec![Touch {
                at_ms: days_ago(3),
                dealer_id: "D-1".into(),
                trusted: true,
            }],
            ..Default::default()
        };
        assert_eq!(stage(&f), Some(Stage::Prospect));
        assert_eq!(
            f.stage(&LifecycleConfig::default(), days_ago(4), Facts::All),
            None,
            "nothing was known of them yet"
        );
        let mut h = held("V1", days_ago(900));
        h.until_ms = Some(days_ago(10));
        f.holdings_all = vec![h];
        assert_eq!(stage(&f), Some(Stage::Former));
        assert_eq!(
            f.stage(&LifecycleConfig::default(), days_ago(11), Facts::All),
            Some(Stage::NeverServiced),
            "as of before the sale on, they still held it"
        );
    }

    #[test]
    fn kpis_count_services_spend_surveys_and_open_complaints() {
        let mut f = owner(400, &[(300, true), (100, false)]);
        f.surveys = vec![
            SurveyAnswer {
                at_ms: days_ago(299),
                csat: 5,
                nps: Some(10),
                trusted: true,
            },
            SurveyAnswer {
                at_ms: days_ago(99),
                csat: 2,
                nps: None,
                trusted: false,
            },
        ];
        let event = |case: &str, d: i64, status| ComplaintEvent {
            case: case.into(),
            at_ms: days_ago(d),
            status,
            trusted: true,
        };
        f.complaints = vec![
            event("D-1/C1", 50, ComplaintStatus::Opened),
            event("D-1/C1", 40, ComplaintStatus::Closed),
            event("D-1/C2", 5, ComplaintStatus::Opened),
        ];
        let all = f.kpis(NOW, Facts::All);
        assert_eq!(all.service_visits, 2);
        assert_eq!(all.spend_rials, 2_000);
        assert_eq!(all.csat, Some(3.5));
        assert_eq!(all.nps, Some(10.0));
        assert_eq!(all.open_complaints, vec!["D-1/C2".to_owned()]);
        assert_eq!(all.complaint_resolution_days, vec![10.0]);
        assert_eq!(all.days_to_first_service, vec![100.0]);
        assert_eq!(all.tenure_days, 400);
        let trusted = f.kpis(NOW, Facts::TrustedOnly);
        assert_eq!(trusted.service_visits, 1);
        assert_eq!(trusted.csat, Some(5.0));
    }
}
