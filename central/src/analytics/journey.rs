//! A customer's journey: their touchpoints with the network in order (a lead by its channel, a
//! delivery, a service visit, a complaint event, a survey by its channel), and across
//! customers: how many leads become a delivery and how fast, by channel and dealer, how many
//! customers first came without buying, and which channels customers use at each stage.

use std::collections::BTreeMap;

use crate::content::Content;
use crate::lifecycle::{Facts, LifecycleConfig, Stage, DAY_MS};
use crate::merge::Trust;

use super::{median, share, Both, Contact, Profile, MODES};

/// One touchpoint of a journey.
#[derive(Debug, Clone, PartialEq)]
pub struct Touchpoint {
    pub at_ms: i64,
    /// `lead`, `delivery`, `service`, `complaint`, `survey`.
    pub kind: &'static str,
    pub channel: String,
    pub dealer_id: String,
    pub record_id: String,
    pub days_since_previous: Option<f64>,
    pub trust: Trust,
}

/// The touchpoint a contact is, if it is one (a registration, a status or a replaced odometer
/// is not).
fn touchpoint(contact: &Contact) -> Option<Touchpoint> {
    let (kind, channel) = match &contact.content {
        Content::Lead(_) => ("lead", contact.details.channel.clone()),
        Content::Survey(_) => ("survey", contact.details.channel.clone()),
        Content::Delivery(_) => ("delivery", "dealership".to_owned()),
        Content::RepairOrder(_) => ("service", "dealership".to_owned()),
        Content::Complaint(_) => ("complaint", "dealership".to_owned()),
        _ => return None,
    };
    Some(Touchpoint {
        at_ms: contact.at_ms,
        kind,
        channel,
        dealer_id: contact.dealer_id.clone(),
        record_id: contact.record_id.clone(),
        days_since_previous: None,
        trust: contact.trust,
    })
}

/// The customer's touchpoints counted in `mode` up to `as_of`, oldest first, each with the
/// days since the one before.
pub fn touchpoints(profile: &Profile, mode: Facts, as_of: i64) -> Vec<Touchpoint> {
    let mut out: Vec<Touchpoint> = profile
        .contacts(mode, as_of)
        .filter_map(touchpoint)
        .collect();
    for i in 1..out.len() {
        out[i].days_since_previous = Some((out[i].at_ms - out[i - 1].at_ms) as f64 / DAY_MS as f64);
    }
    out
}

/// Leads of one channel or dealer, and those that became a delivery.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conversion {
    pub leads: u64,
    pub converted: u64,
    pub days_to_delivery: Vec<f64>,
}

impl Conversion {
    pub fn rate(&self) -> Option<f64> {
        share(self.converted, self.leads)
    }

    pub fn median_days(&self) -> Option<f64> {
        median(&self.days_to_delivery)
    }
}

/// The journey figures in one mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JourneyFigures {
    pub customers: u64,
    pub by_channel: BTreeMap<String, Conversion>,
    pub by_dealer: BTreeMap<String, Conversion>,
    /// Customers whose first touchpoint was not a delivery.
    pub first_contact_without_purchase: u64,
    /// Customers with no delivery at all.
    pub never_purchased: u64,
    /// Touchpoints by the customer's stage at the time and by channel.
    pub channels_by_stage: BTreeMap<Stage, BTreeMap<String, u64>>,
}

impl JourneyFigures {
    pub fn first_contact_without_purchase_share(&self) -> Option<f64> {
        share(self.first_contact_without_purchase, self.customers)
    }
}

/// Days after a lead at which the first delivery to the customer falls, within `window_days`.
pub fn days_to_delivery(touchpoints: &[Touchpoint], lead_at: i64, window_days: i64) -> Option<f64> {
    touchpoints
        .iter()
        .filter(|t| t.kind == "delivery" && t.at_ms > lead_at)
        .map(|t| t.at_ms - lead_at)
        .filter(|gap| *gap <= window_days * DAY_MS)
        .min()
        .map(|gap| gap as f64 / DAY_MS as f64)
}

/// Adds one customer to the journey figures of both modes.
pub fn add(
    figures: &mut Both<JourneyFigures>,
    profile: &Profile,
    config: &LifecycleConfig,
    as_of: i64,
) {
    for mode in MODES {
        let f = figures.get_mut(mode);
        let points = touchpoints(profile, mode, as_of);
        let Some(first) = points.first() else {
            continue;
        };
        f.customers += 1;
        if first.kind != "delivery" {
            f.first_contact_without_purchase += 1;
        }
        if points.iter().all(|t| t.kind != "delivery") {
            f.never_purchased += 1;
        }
        for point in &points {
            if point.kind == "lead" {
                let days = days_to_delivery(&points, point.at_ms, config.lead_conversion_days);
                for c in [
                    f.by_channel.entry(point.channel.clone()).or_default(),
                    f.by_dealer.entry(point.dealer_id.clone()).or_default(),
                ] {
                    c.leads += 1;
                    if let Some(d) = days {
                        c.converted += 1;
                        c.days_to_delivery.push(d);
                    }
                }
            }
            if let Some(stage) = profile.facts.stage(config, point.at_ms, mode) {
                *f.channels_by_stage
                    .entry(stage)
                    .or_default()
                    .entry(point.channel.clone())
                    .or_default() += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_profiles::{delivery, lead, of};

    const T0: i64 = 1_790_000_000_000;

    #[test]
    fn touchpoints_come_in_order_with_the_days_between_them() {
        let p = of(vec![
            lead(T0, "web"),
            lead(T0 + DAY_MS / 2, "call"),
            delivery(T0 + 3 * DAY_MS),
        ]);
        let points = touchpoints(&p, Facts::All, T0 + 10 * DAY_MS);
        let seen: Vec<(&str, &str, Option<f64>)> = points
            .iter()
            .map(|t| (t.kind, t.channel.as_str(), t.days_since_previous))
            .collect();
        assert_eq!(
            seen,
            vec![
                ("lead", "web", None),
                ("lead", "call", Some(0.5)),
                ("delivery", "dealership", Some(2.5)),
            ]
        );
        // As of before the delivery, it is not a touchpoint yet.
        assert_eq!(touchpoints(&p, Facts::All, T0 + 3 * DAY_MS - 1).len(), 2);
    }
}
