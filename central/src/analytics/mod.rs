//! What HQ asks of its customers beyond their stage (docs/hq-api.md, "Customer questions"):
//! journeys, tenure and retention cohorts, service due, churn risk, complaints, leads and
//! satisfaction.
//!
//! Each report is a fold over [`Profile`]s: one customer's gathered facts
//! ([`crate::lifecycle::facts::gather`]) with the details the rules do not read (a lead's
//! channel, a complaint's category, the customer's segment) and the groups HQ cuts by. The
//! folds are pure functions of the profiles and an `as_of` time, so a figure can be reproduced
//! later, and every figure is computed twice, from all usable facts and from clean facts only
//! ([`Facts`]). Thresholds are the `[lifecycle]` config ([`LifecycleConfig`]).
//!
//! | module | reports |
//! |---|---|
//! | [`journey`] | a customer's touchpoints; lead conversion, first contacts, channels by stage |
//! | [`tenure`] | tenure by group, retention cohorts by delivery quarter |
//! | [`due`] | the service-due list, the churn-risk list |
//! | [`cases`] | complaint times and reopen rate, lead follow-up and conversion |
//! | [`satisfaction`] | CSAT, NPS, response rate, staff-entered and flagged answers |
//!
//! Cost: a report reads one stored summary per customer ([`summary`], kept current from the
//! store's touched log by [`keeper`]), never the records behind it; the lists rank in memory
//! and are paged. See docs/hq-api.md.

pub mod cases;
pub mod due;
pub mod journey;
pub mod keeper;
pub mod satisfaction;
pub mod stages;
pub mod summary;
pub mod tenure;

use std::collections::BTreeSet;

use crate::content::Content;
use crate::lifecycle::report::{group_of, GroupBy};
use crate::lifecycle::{CustomerFacts, Facts, LifecycleConfig};
use crate::merge::vehicle::Role;
use crate::merge::{GoldenCustomer, Trust};
use crate::store::{HubStore, StoreError};
use crate::wire::ContactDetails;

use summary::{CustomerSummary, VehicleSummary};

pub use crate::lifecycle::report::median;

/// A customer segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Segment {
    B2c,
    B2b,
    B2g,
}

impl Segment {
    pub fn name(self) -> &'static str {
        match self {
            Segment::B2c => "B2C",
            Segment::B2b => "B2B",
            Segment::B2g => "B2G",
        }
    }

    fn parse(name: &str) -> Option<Segment> {
        match name {
            "B2C" => Some(Segment::B2c),
            "B2B" => Some(Segment::B2b),
            "B2G" => Some(Segment::B2g),
            _ => None,
        }
    }
}

/// Which customers a report counts; `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFilter {
    pub segment: Option<Segment>,
    /// Customers who held this role on any vehicle.
    pub role: Option<Role>,
    pub dealer_id: Option<String>,
    pub region: Option<String>,
    pub model: Option<String>,
    pub period: Option<String>,
}

/// One record of a customer's timeline with what the reports read of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Contact {
    pub at_ms: i64,
    pub dealer_id: String,
    pub record_id: String,
    pub trust: Trust,
    pub content: Content,
    pub details: ContactDetails,
}

impl Contact {
    /// Counted in `mode`.
    pub fn counts(&self, mode: Facts) -> bool {
        mode == Facts::All || matches!(self.trust, Trust::Clean | Trust::HqConfirmed)
    }
}

/// One customer as the reports see them.
#[derive(Debug, Clone)]
pub struct Profile {
    pub customer_id: String,
    /// The golden record's name (empty when no dealer gave one).
    pub name: String,
    pub facts: CustomerFacts,
    /// The vehicles they appear on, with their roles.
    pub vehicles: Vec<VehicleSummary>,
    /// The timeline's records (registrations included), oldest first.
    pub contacts: Vec<Contact>,
    pub segment: Segment,
    /// Every role they held on a vehicle.
    pub roles: BTreeSet<Role>,
    /// Their dealer, region, model and period, as the lifecycle report groups them.
    pub dealer: String,
    pub region: String,
    pub model: String,
    pub period: String,
}

/// The name of a role as HQ's reports print it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Buyer => "buyer",
        Role::CoBuyer => "co_buyer",
        Role::Driver => "driver",
        Role::FleetAccount => "fleet_account",
    }
}

impl Profile {
    /// Builds the profile of `customer` as of `as_of` from the store.
    pub fn read<S: HubStore>(
        store: &S,
        customer: &GoldenCustomer,
        region: &dyn Fn(&str) -> Option<String>,
        as_of: i64,
    ) -> Result<Profile, StoreError> {
        Ok(Profile::of(
            CustomerSummary::gather(store, customer)?,
            region,
            as_of,
        ))
    }

    /// The profile of a summarised customer as of `as_of`.
    pub fn of(
        summary: CustomerSummary,
        region: &dyn Fn(&str) -> Option<String>,
        as_of: i64,
    ) -> Profile {
        let contacts = summary.contacts;
        // The latest registration by `as_of` that names a segment, else the first one after
        // it (a customer registered later was the same customer before); else a person is B2C
        // and an organisation B2B.
        let named = |c: &Contact| Segment::parse(&c.details.segment);
        let segment = contacts
            .iter()
            .rev()
            .filter(|c| c.at_ms <= as_of)
            .find_map(named)
            .or_else(|| contacts.iter().filter(|c| c.at_ms > as_of).find_map(named))
            .unwrap_or(if summary.organization {
                Segment::B2b
            } else {
                Segment::B2c
            });
        let roles = summary
            .vehicles
            .iter()
            .flat_map(|v| v.roles.iter().copied())
            .collect();
        let latest_contact = contacts
            .iter()
            .rfind(|c| c.at_ms <= as_of)
            .map(|c| c.dealer_id.as_str());
        let group = |by| group_of(&summary.facts, latest_contact, by, region, as_of);
        Profile {
            customer_id: summary.customer_id,
            name: summary.name,
            dealer: group(GroupBy::Dealer),
            region: group(GroupBy::Region),
            model: group(GroupBy::Model),
            period: group(GroupBy::Period),
            segment,
            roles,
            facts: summary.facts,
            vehicles: summary.vehicles,
            contacts,
        }
    }

    /// The profile passes `filter`.
    pub fn passes(&self, filter: &CustomerFilter) -> bool {
        let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        filter.segment.is_none_or(|s| s == self.segment)
            && filter.role.is_none_or(|r| self.roles.contains(&r))
            && same(&filter.dealer_id, &self.dealer)
            && same(&filter.region, &self.region)
            && same(&filter.model, &self.model)
            && same(&filter.period, &self.period)
    }

    /// The rows of a per-customer grouping the customer counts in (a customer with two roles
    /// counts in both role rows; one without a role in `(none)`).
    pub fn groups(&self, by: GroupBy) -> Vec<String> {
        match by {
            GroupBy::Dealer => vec![self.dealer.clone()],
            GroupBy::Region => vec![self.region.clone()],
            GroupBy::Model => vec![self.model.clone()],
            GroupBy::Period => vec![self.period.clone()],
            GroupBy::Segment => vec![self.segment.name().to_owned()],
            GroupBy::Role if self.roles.is_empty() => vec!["(none)".to_owned()],
            GroupBy::Role => self
                .roles
                .iter()
                .map(|r| role_name(*r).to_owned())
                .collect(),
        }
    }

    /// The contacts counted in `mode` up to `as_of`.
    pub fn contacts(&self, mode: Facts, as_of: i64) -> impl Iterator<Item = &Contact> {
        self.contacts
            .iter()
            .filter(move |c| c.at_ms <= as_of && c.counts(mode))
    }
}

/// Reads the profile of every customer passing `filter`, in customer-id order, and hands each
/// to `visit`; `progress(customers_read)` after each page. The customer summaries are brought
/// up to date first ([`keeper::refresh`]), so everything applied before the call counts; then
/// each customer costs one stored summary.
pub fn each_profile<S: HubStore>(
    store: &S,
    region: &dyn Fn(&str) -> Option<String>,
    as_of: i64,
    filter: &CustomerFilter,
    mut visit: impl FnMut(&Profile),
    mut progress: impl FnMut(u64),
) -> Result<(), StoreError> {
    keeper::refresh(store, |_| {})?;
    let mut after = String::new();
    let mut read = 0;
    loop {
        let page = store.summaries(&after, 500)?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        after = last.clone();
        for (id, bytes) in &page {
            let summary = match CustomerSummary::decode(id, bytes)? {
                Some(summary) => summary,
                // Written by another version since the refresh: gathered here.
                None => match store.customer(id)? {
                    Some(customer) => CustomerSummary::gather(store, &customer)?,
                    None => continue,
                },
            };
            let profile = Profile::of(summary, region, as_of);
            if profile.passes(filter) {
                visit(&profile);
            }
        }
        read += page.len() as u64;
        progress(read);
    }
}

/// A figure computed from all usable facts and from clean facts only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Both<T> {
    pub all_facts: T,
    pub trusted_only: T,
}

impl<T> Both<T> {
    /// The figure of `mode`.
    pub fn get(&self, mode: Facts) -> &T {
        match mode {
            Facts::All => &self.all_facts,
            Facts::TrustedOnly => &self.trusted_only,
        }
    }

    /// The figure of `mode`, to add to.
    pub fn get_mut(&mut self, mode: Facts) -> &mut T {
        match mode {
            Facts::All => &mut self.all_facts,
            Facts::TrustedOnly => &mut self.trusted_only,
        }
    }
}

/// Both modes, in the order reports compute them.
pub const MODES: [Facts; 2] = [Facts::All, Facts::TrustedOnly];

/// The thresholds the reports read.
pub type Thresholds = LifecycleConfig;

/// A share, absent over nothing.
pub fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// The mean of `values` (`None` when empty).
pub fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// How the case reports (complaints, leads, surveys) cut their rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseGroup {
    /// The dealer that recorded the case, lead or survey.
    Dealer,
    /// A lead's or a survey's channel.
    Channel,
    /// A complaint's category.
    Category,
    /// The quarter of the case's first event, the lead or the answer.
    Period,
    /// The customer's own group (segment, role, region, ...).
    Customer(GroupBy),
}

/// Rows by group, each in both modes, and their total.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows<T> {
    pub rows: std::collections::BTreeMap<String, Both<T>>,
    pub total: Both<T>,
}

impl<T: Default> Default for Rows<T> {
    fn default() -> Self {
        Rows {
            rows: Default::default(),
            total: Both::default(),
        }
    }
}

impl<T: Default> Rows<T> {
    /// Applies `add` to the figure of `mode` in each of `groups`' rows and in the total.
    pub fn add(&mut self, groups: &[String], mode: Facts, add: impl Fn(&mut T)) {
        for group in groups {
            add(self.rows.entry(group.clone()).or_default().get_mut(mode));
        }
        add(self.total.get_mut(mode));
    }
}

#[cfg(test)]
pub(crate) mod test_profiles {
    use super::*;
    use crate::content::{ComplaintStatus, Delivery, Lead, PartyRole, SaleCategory};

    /// A profile made of `contacts` alone (no vehicles, no holdings): enough for the case
    /// reports and the journey.
    pub fn of(contacts: Vec<Contact>) -> Profile {
        Profile {
            customer_id: "CU-1".into(),
            name: "test".into(),
            facts: CustomerFacts::default(),
            vehicles: Vec::new(),
            contacts,
            segment: Segment::B2c,
            roles: BTreeSet::new(),
            dealer: "D-1".into(),
            region: "(none)".into(),
            model: "(none)".into(),
            period: "(none)".into(),
        }
    }

    fn contact(at_ms: i64, content: Content, channel: &str) -> Contact {
        Contact {
            at_ms,
            dealer_id: "D-1".into(),
            record_id: format!("R-{at_ms}"),
            trust: Trust::Clean,
            content,
            details: ContactDetails {
                channel: channel.into(),
                ..Default::default()
            },
        }
    }

    pub fn lead(at_ms: i64, channel: &str) -> Contact {
        contact(
            at_ms,
            Content::Lead(Lead {
                customer_ref: "C1".into(),
                contacted_at_ms: at_ms,
            }),
            channel,
        )
    }

    pub fn delivery(at_ms: i64) -> Contact {
        contact(
            at_ms,
            Content::Delivery(Delivery {
                vin: "V1".into(),
                sale_date_ms: Some(at_ms),
                delivery_date_ms: Some(at_ms),
                odometer_km: 5,
                category: SaleCategory::Retail,
                parties: vec![(PartyRole::Buyer, "C1".into())],
                model: "Tara".into(),
            }),
            "",
        )
    }

    pub fn complaint(at_ms: i64, status: ComplaintStatus) -> Contact {
        contact(
            at_ms,
            Content::Complaint(crate::content::Complaint {
                case_ref: "K1".into(),
                customer_ref: "C1".into(),
                vin: String::new(),
                event_at_ms: at_ms,
                status,
            }),
            "",
        )
    }
}
