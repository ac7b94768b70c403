//! Complaint cases and leads: how fast dealers answer, how complaints close, how many leads
//! become a sale.
//!
//! A complaint case is its events (`dealer/case_ref`) in time order. Its first response is its
//! second event; it is resolved at its first `resolved` or `closed` event; it was reopened when
//! an `opened` or `updated` event follows a `resolved` or `closed` one; it is open while its
//! latest event is neither, and past its SLA when open longer than
//! `lifecycle.complaint_sla_days`. A lead is followed up by the customer's next touchpoint at
//! the same dealer, of any kind, and converts when a delivery to the customer (at any dealer)
//! follows within `lifecycle.lead_conversion_days`.

use std::collections::BTreeMap;

use crate::content::{ComplaintStatus, Content};
use crate::lifecycle::report::quarter;
use crate::lifecycle::{LifecycleConfig, DAY_MS};

use super::journey::{days_to_delivery, touchpoints};
use super::{median, share, CaseGroup, Profile, Rows, MODES};

const HOUR_MS: f64 = 3_600_000.0;

/// Complaint figures of one row in one mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComplaintFigures {
    pub cases: u64,
    pub hours_to_first_response: Vec<f64>,
    pub days_to_resolution: Vec<f64>,
    pub reopened: u64,
    pub open: u64,
    pub open_past_sla: u64,
}

impl ComplaintFigures {
    pub fn responded(&self) -> u64 {
        self.hours_to_first_response.len() as u64
    }
    pub fn resolved(&self) -> u64 {
        self.days_to_resolution.len() as u64
    }
    pub fn reopen_rate(&self) -> Option<f64> {
        share(self.reopened, self.cases)
    }
}

/// One case as the report reads it.
#[derive(Debug, Clone, PartialEq)]
struct Case {
    dealer_id: String,
    category: String,
    opened_at: i64,
    first_response_hours: Option<f64>,
    resolution_days: Option<f64>,
    reopened: bool,
    open: bool,
}

fn closes(status: ComplaintStatus) -> bool {
    matches!(status, ComplaintStatus::Resolved | ComplaintStatus::Closed)
}

/// One event of a case: when, its status, the category it gives.
type CaseEvent = (i64, ComplaintStatus, String);

fn cases(profile: &Profile, mode: crate::lifecycle::Facts, as_of: i64) -> Vec<Case> {
    let mut events: BTreeMap<(String, String), Vec<CaseEvent>> = BTreeMap::new();
    for c in profile.contacts(mode, as_of) {
        if let Content::Complaint(complaint) = &c.content {
            events
                .entry((c.dealer_id.clone(), complaint.case_ref.clone()))
                .or_default()
                .push((c.at_ms, complaint.status, c.details.category.clone()));
        }
    }
    events
        .into_iter()
        .map(|((dealer_id, _), mut events)| {
            events.sort_by_key(|e| e.0);
            let opened_at = events[0].0;
            let resolved = events.iter().find(|e| closes(e.1));
            let reopened = events
                .iter()
                .skip_while(|e| !closes(e.1))
                .any(|e| matches!(e.1, ComplaintStatus::Opened | ComplaintStatus::Updated));
            Case {
                dealer_id,
                category: events
                    .iter()
                    .rev()
                    .find(|e| !e.2.is_empty())
                    .map_or_else(|| "(none)".to_owned(), |e| e.2.clone()),
                opened_at,
                first_response_hours: events.get(1).map(|e| (e.0 - opened_at) as f64 / HOUR_MS),
                resolution_days: resolved.map(|e| (e.0 - opened_at) as f64 / DAY_MS as f64),
                reopened,
                open: events.last().is_some_and(|e| !closes(e.1)),
            }
        })
        .collect()
}

/// Adds one customer's complaint cases.
pub fn add_complaints(
    rows: &mut Rows<ComplaintFigures>,
    profile: &Profile,
    config: &LifecycleConfig,
    by: CaseGroup,
    as_of: i64,
) {
    for mode in MODES {
        for case in cases(profile, mode, as_of) {
            let groups = match by {
                CaseGroup::Dealer => vec![case.dealer_id.clone()],
                CaseGroup::Category => vec![case.category.clone()],
                CaseGroup::Period => vec![quarter(case.opened_at)],
                CaseGroup::Channel => vec!["dealership".to_owned()],
                CaseGroup::Customer(g) => profile.groups(g),
            };
            let past_sla = case.open && as_of - case.opened_at > config.complaint_sla_days * DAY_MS;
            rows.add(&groups, mode, |f| {
                f.cases += 1;
                f.hours_to_first_response.extend(case.first_response_hours);
                f.days_to_resolution.extend(case.resolution_days);
                f.reopened += u64::from(case.reopened);
                f.open += u64::from(case.open);
                f.open_past_sla += u64::from(past_sla);
            });
        }
    }
}

/// Lead figures of one row in one mode.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LeadFigures {
    pub leads: u64,
    pub hours_to_follow_up: Vec<f64>,
    pub converted: u64,
}

impl LeadFigures {
    pub fn followed_up(&self) -> u64 {
        self.hours_to_follow_up.len() as u64
    }
    pub fn without_follow_up(&self) -> u64 {
        self.leads - self.followed_up()
    }
    pub fn median_hours_to_follow_up(&self) -> Option<f64> {
        median(&self.hours_to_follow_up)
    }
    pub fn conversion_rate(&self) -> Option<f64> {
        share(self.converted, self.leads)
    }
}

/// Adds one customer's leads.
pub fn add_leads(
    rows: &mut Rows<LeadFigures>,
    profile: &Profile,
    config: &LifecycleConfig,
    by: CaseGroup,
    as_of: i64,
) {
    for mode in MODES {
        let points = touchpoints(profile, mode, as_of);
        for lead in points.iter().filter(|t| t.kind == "lead") {
            let follow_up = points
                .iter()
                .find(|t| t.at_ms > lead.at_ms && t.dealer_id == lead.dealer_id)
                .map(|t| (t.at_ms - lead.at_ms) as f64 / HOUR_MS);
            let converted =
                days_to_delivery(&points, lead.at_ms, config.lead_conversion_days).is_some();
            let groups = match by {
                CaseGroup::Dealer => vec![lead.dealer_id.clone()],
                CaseGroup::Channel => vec![lead.channel.clone()],
                CaseGroup::Period => vec![quarter(lead.at_ms)],
                CaseGroup::Category => vec!["(none)".to_owned()],
                CaseGroup::Customer(g) => profile.groups(g),
            };
            rows.add(&groups, mode, |f| {
                f.leads += 1;
                f.hours_to_follow_up.extend(follow_up);
                f.converted += u64::from(converted);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::test_profiles::{complaint, delivery, lead, of};

    const T0: i64 = 1_790_000_000_000;

    fn complaints_at(profile: &Profile, as_of: i64) -> ComplaintFigures {
        let mut rows = Rows::default();
        add_complaints(
            &mut rows,
            profile,
            &LifecycleConfig::default(),
            CaseGroup::Dealer,
            as_of,
        );
        rows.total.all_facts
    }

    #[test]
    fn a_case_is_past_its_sla_only_once_the_sla_has_passed() {
        let sla = LifecycleConfig::default().complaint_sla_days * DAY_MS;
        let open = of(vec![complaint(T0, ComplaintStatus::Opened)]);
        assert_eq!(
            complaints_at(&open, T0 + sla).open_past_sla,
            0,
            "exactly the SLA: not past"
        );
        assert_eq!(complaints_at(&open, T0 + sla + 1).open_past_sla, 1);
        // Closed before as_of: not open, so never past.
        let closed = of(vec![
            complaint(T0, ComplaintStatus::Opened),
            complaint(T0 + DAY_MS, ComplaintStatus::Closed),
        ]);
        let f = complaints_at(&closed, T0 + 2 * sla);
        assert_eq!((f.open, f.open_past_sla, f.resolved()), (0, 0, 1));
        // As of before the closing, the case is still open.
        assert_eq!(complaints_at(&closed, T0 + DAY_MS - 1).open, 1);
    }

    #[test]
    fn a_case_closed_opened_again_and_closed_counts_as_reopened_and_resolved_at_its_first_close() {
        let p = of(vec![
            complaint(T0, ComplaintStatus::Opened),
            complaint(T0 + 2 * DAY_MS, ComplaintStatus::Resolved),
            complaint(T0 + 3 * DAY_MS, ComplaintStatus::Opened),
            complaint(T0 + 9 * DAY_MS, ComplaintStatus::Closed),
        ]);
        let f = complaints_at(&p, T0 + 10 * DAY_MS);
        assert_eq!((f.cases, f.reopened, f.open), (1, 1, 0));
        assert_eq!(f.days_to_resolution, vec![2.0]);
        assert_eq!(f.hours_to_first_response, vec![48.0]);
    }

    #[test]
    fn a_lead_converts_up_to_the_window_and_not_a_moment_after() {
        let window = LifecycleConfig::default().lead_conversion_days * DAY_MS;
        for (gap, converted) in [(window, 1), (window + 1, 0)] {
            let p = of(vec![lead(T0, "web"), delivery(T0 + gap)]);
            let mut rows = Rows::default();
            add_leads(
                &mut rows,
                &p,
                &LifecycleConfig::default(),
                CaseGroup::Channel,
                T0 + 2 * window,
            );
            let web = rows.rows["web"].all_facts.clone();
            assert_eq!(web.converted, converted, "delivery {gap} ms after the lead");
            // The delivery at the same dealer is the lead's follow-up either way.
            assert_eq!(web.followed_up(), 1);
        }
    }
}
