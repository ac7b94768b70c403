//! The lifecycle report's figures: stage counts, service retention, time to first service and
//! complaint resolution time per dealer, region, model, sales period, segment or role, from all
//! usable facts and from clean facts only. The fold over every customer is
//! [`crate::analytics::stages`] (a report, not a lookup: its cost grows with the network, see
//! docs/hq-api.md).

use std::collections::BTreeMap;

use super::{CustomerFacts, Facts, LifecycleConfig, Stage};

/// How the report's rows are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// The dealer that delivered the customer's latest vehicle (else their latest contact's).
    Dealer,
    /// That dealer's region in HQ's dealer registry.
    Region,
    /// The model of the customer's latest vehicle.
    Model,
    /// The quarter of the customer's latest delivery (`2026-Q3`).
    Period,
    /// B2C, B2B or B2G (`crate::analytics::Segment`).
    Segment,
    /// Each role the customer held on a vehicle (a customer can count in several rows).
    Role,
}

/// The numbers of one row in one mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageFigures {
    pub counts: BTreeMap<Stage, u64>,
    pub days_to_first_service: Vec<f64>,
    pub complaint_resolution_days: Vec<f64>,
}

impl StageFigures {
    pub fn count(&self, stage: Stage) -> u64 {
        self.counts.get(&stage).copied().unwrap_or(0)
    }

    /// active / (active + recently_lost + defected + never_serviced).
    pub fn service_retention(&self) -> Option<f64> {
        let active = self.count(Stage::Active);
        let base = active
            + self.count(Stage::RecentlyLost)
            + self.count(Stage::Defected)
            + self.count(Stage::NeverServiced);
        (base > 0).then(|| active as f64 / base as f64)
    }

    pub fn add(&mut self, other: &StageFigures) {
        for (stage, n) in &other.counts {
            *self.counts.entry(*stage).or_default() += n;
        }
        self.days_to_first_service
            .extend_from_slice(&other.days_to_first_service);
        self.complaint_resolution_days
            .extend_from_slice(&other.complaint_resolution_days);
    }
}

/// The median of `values` (`None` when empty).
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// One row of the report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRow {
    pub group: String,
    pub customers: u64,
    pub all_facts: StageFigures,
    pub trusted_only: StageFigures,
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LifecycleReport {
    pub as_of_ms: i64,
    pub rows: Vec<ReportRow>,
    pub total: ReportRow,
}

/// The dealer, region, model or period a customer falls in (`(none)` when they have none);
/// segment and role are [`crate::analytics::Profile::groups`]'s. `latest_contact_dealer` is
/// the dealer of their latest contact by `as_of`, for a customer who never held a vehicle.
pub fn group_of(
    facts: &CustomerFacts,
    latest_contact_dealer: Option<&str>,
    by: GroupBy,
    region: &dyn Fn(&str) -> Option<String>,
    as_of: i64,
) -> String {
    let latest = facts
        .holdings_all
        .iter()
        .filter(|h| h.from_ms <= as_of)
        .max_by_key(|h| (h.until_ms.is_none_or(|u| u > as_of), h.from_ms));
    let dealer = latest
        .map(|h| h.dealer_id.clone())
        .filter(|d| !d.is_empty())
        .or_else(|| latest_contact_dealer.map(str::to_owned));
    let none = || "(none)".to_owned();
    match by {
        GroupBy::Dealer => dealer.unwrap_or_else(none),
        GroupBy::Region => dealer.and_then(|d| region(&d)).unwrap_or_else(none),
        GroupBy::Model => latest
            .map(|h| h.model.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(none),
        GroupBy::Period => latest.map(|h| quarter(h.from_ms)).unwrap_or_else(none),
        GroupBy::Segment | GroupBy::Role => none(),
    }
}

/// `2026-Q3` of a time.
pub fn quarter(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!("{}-Q{}", t.year(), (u8::from(t.month()) - 1) / 3 + 1),
        Err(_) => "(none)".into(),
    }
}

/// The figures of one customer in one mode.
pub fn figures(
    facts: &CustomerFacts,
    config: &LifecycleConfig,
    as_of: i64,
    mode: Facts,
) -> StageFigures {
    let mut f = StageFigures::default();
    if let Some(stage) = facts.stage(config, as_of, mode) {
        f.counts.insert(stage, 1);
    }
    let kpis = facts.kpis(as_of, mode);
    f.days_to_first_service = kpis.days_to_first_service;
    f.complaint_resolution_days = kpis.complaint_resolution_days;
    f
}
