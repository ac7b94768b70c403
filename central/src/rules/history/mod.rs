//! Rules that read a group of records: what a record contributes to each group it belongs to
//! ([`memberships`]), and the findings of a whole group ([`judge_group`]).
//!
//! **Invariant (order independence):** `judge_group` is a pure function of the *set* of
//! members and the config: members are sorted by `(event time, dealer, seq)` before anything
//! else, and ties never depend on arrival. The engine re-judges every group a record joins or
//! leaves (the large ones from their state, [`super::group_state`], checked against this
//! function), so the verdicts after any delivery order are the same.
//!
//! Only usable records are members: a record rejected outright is in quarantine and is not
//! history (its readings, numbers and contacts are not trusted).

use std::collections::BTreeMap;

use hamgam_proto::text::normalize;
use hamgam_proto::values::{CompanyId, Mobile, NationalId, Vin};

use super::{finding, RuleConfig};

mod people;
mod vehicle;
mod visits;

use crate::content::{
    Content, Customer as CustomerContent, Delivery as DeliveryContent,
    RepairOrder as RepairOrderContent, SaleCategory, Survey as SurveyContent, SurveySubject,
};
use crate::domain::{Arg, Finding, Reason, RecordOrigin, Severity};
pub use people::{c05_finding, c05_fires, c07_finding, c07_fires};
use people::{names_of_one_id, shared_mobile};
use vehicle::vin_rules;
pub use vehicle::Replacement;
use visits::{dealer_month, ro_number};
pub use visits::{
    in_month_tail, month_start_ms, q01_uniform_finding, q01_uniform_fires, s04_finding, s04_fires,
};

const DAY_MS: i64 = 86_400_000;

pub use crate::model::groups::{Fact, GroupKey, Member};
pub use crate::model::At;

impl Member {
    fn event_ms(&self) -> i64 {
        match &self.fact {
            Fact::Delivery { delivered_ms, .. } => *delivered_ms,
            Fact::RepairOrder { opened_ms, .. } => *opened_ms,
            Fact::OdometerReplacement {
                replaced_ms, at_ms, ..
            } => at_ms.unwrap_or(*replaced_ms),
            Fact::Customer { .. } => 0,
            Fact::Survey { submitted_ms, .. } => *submitted_ms,
            Fact::Status { effective_ms } => *effective_ms,
            Fact::Made { created_ms } => *created_ms,
        }
    }

    /// Event order within a group: `(event time, dealer, seq)`, so ties never depend on
    /// arrival.
    fn order(&self) -> (i64, &str, u64) {
        (self.event_ms(), self.dealer_id.as_str(), self.seq)
    }
}

/// The groups a record belongs to and what it tells each. `usable` is false for a record
/// rejected outright; `rejected_fields` are the fields its own findings reject.
pub fn memberships(
    dealer_id: &str,
    content: &Content,
    findings: &[Finding],
) -> Vec<(GroupKey, Fact)> {
    if findings.iter().any(|f| f.severity == Severity::Reject) {
        return Vec::new();
    }
    match content {
        Content::Delivery(d) => delivery_memberships(dealer_id, d),
        Content::RepairOrder(ro) => repair_order_memberships(dealer_id, ro),
        Content::OdometerReplacement(o) => Vin::parse(&o.vin)
            .ok()
            .zip(o.replaced_on_ms)
            .map(|(vin, replaced_ms)| {
                let fact = Fact::OdometerReplacement {
                    replaced_ms,
                    // A time that is not on the replacement's day cannot place it.
                    at_ms: o
                        .replaced_at_ms
                        .filter(|t| t.div_euclid(DAY_MS) == replaced_ms.div_euclid(DAY_MS)),
                    before_km: o.reading_before_km,
                    after_km: o.reading_after_km,
                };
                (GroupKey::Vin(vin.as_str().to_owned()), fact)
            })
            .into_iter()
            .collect(),
        Content::VehicleStatus(v) => Vin::parse(&v.vin)
            .ok()
            .map(|vin| {
                let effective_ms = v.effective_on_ms.unwrap_or_default();
                (
                    GroupKey::Vin(vin.as_str().to_owned()),
                    Fact::Status { effective_ms },
                )
            })
            .into_iter()
            .collect(),
        Content::Customer(c) => customer_memberships(dealer_id, c, findings),
        Content::Survey(s) => survey_memberships(dealer_id, s),
        _ => Vec::new(),
    }
}

/// The dealer month (`YYYY-MM`, UTC) a time falls in: S04's and Q01's target period.
fn month(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .map(|t| format!("{:04}-{:02}", t.year(), t.month() as u8))
        .unwrap_or_default()
}

/// A delivery: its VIN's group and its dealer month.
fn delivery_memberships(dealer_id: &str, d: &DeliveryContent) -> Vec<(GroupKey, Fact)> {
    let (Ok(vin), Some(delivered_ms)) = (Vin::parse(&d.vin), d.delivery_date_ms) else {
        return Vec::new();
    };
    let fact = Fact::Delivery {
        delivered_ms,
        odometer_km: d.odometer_km,
        retail: d.category == SaleCategory::Retail,
    };
    vec![
        (GroupKey::Vin(vin.as_str().to_owned()), fact.clone()),
        (
            GroupKey::DealerMonth {
                dealer: dealer_id.to_owned(),
                month: month(delivered_ms),
            },
            fact,
        ),
    ]
}

/// A repair order: its VIN's group and its RO number's.
fn repair_order_memberships(dealer_id: &str, ro: &RepairOrderContent) -> Vec<(GroupKey, Fact)> {
    let Ok(vin) = Vin::parse(&ro.vin) else {
        return Vec::new();
    };
    let fact = Fact::RepairOrder {
        vin: vin.as_str().to_owned(),
        opened_ms: ro.opened_at_ms,
        completed_ms: ro.completed_at_ms,
        odometer_in_km: ro.odometer_in_km,
        pay_type: ro.pay_type,
        jobs: ro
            .job_lines
            .iter()
            .flat_map(|j| {
                let op = j.labor_op_code.clone();
                if j.parts.is_empty() {
                    vec![(op, String::new())]
                } else {
                    j.parts.iter().map(|p| (op.clone(), p.clone())).collect()
                }
            })
            .collect(),
    };
    vec![
        (GroupKey::Vin(vin.as_str().to_owned()), fact.clone()),
        (
            GroupKey::RoNumber {
                dealer: dealer_id.to_owned(),
                number: ro.ro_number.clone(),
            },
            fact,
        ),
    ]
}

/// A customer: the groups of its mobile and its national ID, unless its own findings reject
/// them (or its mobile is a placeholder, C04): such a field says nothing about a group.
fn customer_memberships(
    dealer_id: &str,
    c: &CustomerContent,
    findings: &[Finding],
) -> Vec<(GroupKey, Fact)> {
    let spoiled = |field: &str| {
        findings.iter().any(|f| {
            f.field.ends_with(field) && (f.severity == Severity::RejectField || f.rule_id == "C04")
        })
    };
    let national_id = (!c.organization)
        .then(|| NationalId::parse(&c.national_id).ok())
        .flatten()
        .filter(|_| !spoiled(".national_id"));
    let identity = national_id
        .as_ref()
        .map(|n| n.as_str().to_owned())
        .or_else(|| {
            CompanyId::parse(&c.company_id)
                .ok()
                .map(|id| id.as_str().to_owned())
        })
        .unwrap_or_else(|| format!("{dealer_id}:{}", c.customer_ref));
    let name = if c.organization {
        normalize(&c.organization_name)
    } else {
        normalize(&format!("{} {}", c.given_name, c.family_name))
    };
    let fact = Fact::Customer { identity, name };
    let mut out = Vec::new();
    if !spoiled(".mobile") {
        if let Ok(m) = Mobile::parse(&c.mobile) {
            out.push((GroupKey::Mobile(m.e164().to_owned()), fact.clone()));
        }
    }
    if let Some(n) = national_id {
        out.push((GroupKey::NationalId(n.as_str().to_owned()), fact));
    }
    out
}

/// A survey: its dealer month, and its repair order's RO-number group when it is about one.
fn survey_memberships(dealer_id: &str, s: &SurveyContent) -> Vec<(GroupKey, Fact)> {
    let fact = Fact::Survey {
        submitted_ms: s.submitted_at_ms,
        top_score: s.csat >= 5 && s.nps.is_none_or(|n| n >= 9),
    };
    let mut out = Vec::new();
    if s.subject == SurveySubject::RepairOrder {
        out.push((
            GroupKey::RoNumber {
                dealer: dealer_id.to_owned(),
                number: s.subject_ref.clone(),
            },
            fact.clone(),
        ));
    }
    out.push((
        GroupKey::DealerMonth {
            dealer: dealer_id.to_owned(),
            month: month(s.submitted_at_ms),
        },
        fact,
    ));
    out
}

/// The source-sequence group an imported record belongs to, and its fact (none for a record
/// rejected outright, which is not history, or for one whose origin gives no time).
pub fn source_membership(
    dealer_id: &str,
    origin: Option<&RecordOrigin>,
    findings: &[Finding],
) -> Option<(GroupKey, Fact)> {
    let origin = origin.filter(|o| o.created_at_ms > 0)?;
    if findings.iter().any(|f| f.severity == Severity::Reject) {
        return None;
    }
    Some((
        GroupKey::SourceSequence {
            dealer: dealer_id.to_owned(),
            source: origin.source_system.clone(),
        },
        Fact::Made {
            created_ms: origin.created_at_ms,
        },
    ))
}

/// T01 on imported history: the source's time of `member` is more than the tolerance later
/// than that of `next`, the dealer's next record from the same source, so the source's clock
/// was set ahead when it made `member`. The one decision the reference ([`judge_group`]) and
/// the engine's neighbour reading share.
pub fn source_clock_finding(
    member: &Member,
    next: &Member,
    config: &RuleConfig,
) -> Option<Finding> {
    let (
        Fact::Made { created_ms },
        Fact::Made {
            created_ms: next_ms,
        },
    ) = (&member.fact, &next.fact)
    else {
        return None;
    };
    let tolerance_ms = config.future_tolerance_minutes * 60_000;
    (*created_ms > next_ms.saturating_add(tolerance_ms)).then(|| {
        let tolerance = config.future_tolerance_minutes;
        finding(
            "T01",
            "origin.created_at_ms",
            Reason::new("T01.source_clock_ahead")
                .arg("created", Arg::Moment(*created_ms))
                .arg("tolerance", tolerance),
        )
    })
}

/// The findings of the group's rules for every member (an empty list for a member nothing
/// fires on, so stale findings can be cleared).
pub fn judge_group(
    key: &GroupKey,
    members: &[Member],
    config: &RuleConfig,
) -> BTreeMap<At, Vec<Finding>> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    sorted.sort_by(|a, b| a.order().cmp(&b.order()));
    let mut out: BTreeMap<At, Vec<Finding>> = members
        .iter()
        .map(|m| ((m.dealer_id.clone(), m.seq), Vec::new()))
        .collect();
    let mut add = |m: &Member, f: Finding| {
        if let Some(list) = out.get_mut(&(m.dealer_id.clone(), m.seq)) {
            list.push(f);
        }
    };
    match key {
        GroupKey::Vin(vin) => vin_rules(vin, &sorted, config, &mut add),
        GroupKey::Mobile(_) => shared_mobile(&sorted, config, &mut add),
        GroupKey::NationalId(_) => names_of_one_id(&sorted, &mut add),
        GroupKey::RoNumber { number, .. } => ro_number(number, &sorted, config, &mut add),
        GroupKey::DealerMonth { month, .. } => dealer_month(month, &sorted, config, &mut add),
        GroupKey::SourceSequence { .. } => {
            // The dealer's order, not the source's times: those are what is being checked.
            sorted.sort_by_key(|m| (m.dealer_id.as_str(), m.seq));
            for pair in sorted.windows(2) {
                if let Some(f) = source_clock_finding(pair[0], pair[1], config) {
                    add(pair[0], f);
                }
            }
        }
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| (&a.rule_id, &a.field).cmp(&(&b.rule_id, &b.field)));
        list.dedup_by(|a, b| a.rule_id == b.rule_id && a.field == b.field);
    }
    out
}
