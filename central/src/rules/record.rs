//! Rules that read one record: its own fields, the hub clock, the session's measured clock
//! offset and the dealer registry. (R00 is checked at the wire edge, [`crate::wire`].)
//!
//! Personal data (national IDs, mobiles) is never repeated in a reason: staff see the record
//! they typed beside it.

use hamgam_proto::entry;
use hamgam_proto::values::{Mobile, NationalId, Vin};

use super::registry::KnownDealer;
use super::{finding, RuleConfig};
use crate::content::{Content, Customer, Delivery, PartyRole, RepairOrder, SaleCategory, Survey};
use crate::domain::{Finding, Reason, Severity};

/// Highest odometer reading that is physically plausible (O02).
pub use hamgam_proto::entry::MAX_ODOMETER_KM;

pub use crate::model::groups::PartyIds;

/// Everything a one-record rule may read besides the record.
pub struct RecordContext<'a> {
    pub dealer_id: &'a str,
    /// When the record was made ([`crate::domain::StoredRecord::made_at_ms`]): the source's
    /// time for an imported record, else the agent's stamp at capture.
    pub made_at_ms: i64,
    /// The record is imported history (`Record.origin` with a time): its times are the
    /// source system's, not this agent's clock, so the agent's measured offset does not apply.
    pub imported: bool,
    pub received_at_ms: i64,
    /// Agent clock minus hub clock, measured when the session opened.
    pub clock_offset_ms: i64,
    /// What the registry says about the dealer, if it lists it.
    pub dealer: Option<&'a KnownDealer>,
    pub config: &'a RuleConfig,
    /// The dealer's customer registered under a `customer_ref`, if any.
    pub party: &'a dyn Fn(&str) -> Option<PartyIds>,
}

/// The findings of every one-record rule on `content`.
pub fn judge(content: &Content, ctx: &RecordContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let prefix = content.field_prefix();
    match content {
        Content::Customer(c) => customer(c, prefix, ctx, &mut out),
        Content::Delivery(d) => {
            vin(&d.vin, prefix, &mut out);
            delivery(d, ctx, &mut out);
        }
        Content::RepairOrder(ro) => {
            vin(&ro.vin, prefix, &mut out);
            repair_order(ro, &mut out);
        }
        Content::OdometerReplacement(o) => vin(&o.vin, prefix, &mut out),
        Content::VehicleStatus(v) => vin(&v.vin, prefix, &mut out),
        Content::Complaint(c) if !c.vin.is_empty() => vin(&c.vin, prefix, &mut out),
        Content::Survey(s) => survey(s, ctx, &mut out),
        _ => {}
    }
    future(content, ctx, &mut out);
    session_clock(ctx, &mut out);
    out
}

/// V01, V02, V03 on a VIN field (the checks and reasons staff also see at capture).
pub fn vin(raw: &str, prefix: &str, out: &mut Vec<Finding>) {
    let field = format!("{prefix}.vin");
    for w in entry::vin(raw, &field) {
        // V03 rejects where the WMI's market requires the check digit, flags elsewhere.
        let severity = match (w.rule_id.as_str(), Vin::parse(raw)) {
            ("V03", Ok(v)) if v.check_digit_required() => Some(Severity::Reject),
            ("V03", _) => Some(Severity::Flag),
            _ => None,
        };
        out.push(shared(w, severity));
    }
}

/// A finding from a shared entry check, at the rule's catalogue severity unless given.
fn shared(w: entry::Warning, severity: Option<Severity>) -> Finding {
    let severity = severity
        .or_else(|| super::spec(&w.rule_id).map(|r| r.severity))
        .unwrap_or(Severity::Flag);
    Finding {
        rule_id: w.rule_id,
        severity,
        field: w.field,
        reason: w.reason,
    }
}

fn customer(c: &Customer, prefix: &str, ctx: &RecordContext<'_>, out: &mut Vec<Finding>) {
    let mut national_id = None;
    if !c.organization && !c.national_id.trim().is_empty() {
        let field = format!("{prefix}.national_id");
        match entry::national_id(&c.national_id, &field) {
            Some(w) => out.push(shared(w, None)),
            None => national_id = NationalId::parse(&c.national_id).ok(),
        }
    }
    let mut mobile = None;
    if !c.mobile.trim().is_empty() {
        let field = format!("{prefix}.mobile");
        match entry::mobile(&c.mobile, &field, ctx.config.placeholder_repeat_digits) {
            Some(w) => out.push(shared(w, None)),
            None => mobile = Mobile::parse(&c.mobile).ok(),
        }
    }
    if let Some(postal) = c.postal_code.as_deref().filter(|p| !p.trim().is_empty()) {
        let field = format!("{prefix}.address.postal_code");
        if let Some(w) = entry::postal_code(postal, &field) {
            out.push(shared(w, None));
        }
    }
    if let Some(dealer) = ctx.dealer {
        if mobile
            .as_ref()
            .is_some_and(|m| dealer.staff_mobiles.contains(m.e164()))
        {
            let field = format!("{prefix}.mobile");
            out.push(finding(
                "C05",
                &field,
                Reason::new("C05.staff_mobile").arg("dealer", ctx.dealer_id),
            ));
        }
        if national_id
            .as_ref()
            .is_some_and(|n| dealer.staff_national_ids.contains(n.as_str()))
        {
            let field = format!("{prefix}.national_id");
            out.push(finding(
                "C05",
                &field,
                Reason::new("C05.staff_national_id").arg("dealer", ctx.dealer_id),
            ));
        }
    }
}

fn delivery(d: &Delivery, ctx: &RecordContext<'_>, out: &mut Vec<Finding>) {
    // S01 and O02 as staff are warned of them at entry.
    let shared_checks = entry::delivery_dates(d.sale_date_ms, d.delivery_date_ms, ctx.made_at_ms)
        .into_iter()
        .chain(entry::odometer_range(
            "retail_delivery.odometer_km",
            d.odometer_km,
        ));
    out.extend(shared_checks.map(|w| shared(w, None)));
    if d.category == SaleCategory::Retail {
        if let Some(dealer) = ctx.dealer {
            let to_itself = d
                .parties
                .iter()
                .filter(|(role, _)| {
                    matches!(
                        role,
                        PartyRole::Buyer | PartyRole::CoBuyer | PartyRole::Owner
                    )
                })
                .filter_map(|(_, customer_ref)| (ctx.party)(customer_ref))
                .any(|ids| {
                    (ids.company_id.is_some() && ids.company_id == dealer.company_id)
                        || ids
                            .national_id
                            .is_some_and(|n| dealer.staff_national_ids.contains(&n))
                });
            if to_itself {
                out.push(finding(
                    "S03",
                    "retail_delivery.parties",
                    Reason::new("S03.sale_to_itself").arg("dealer", ctx.dealer_id),
                ));
            }
        }
    }
}

/// O02 and RO2 on a repair order's own readings and times (as staff are warned at entry).
fn repair_order(ro: &RepairOrder, out: &mut Vec<Finding>) {
    let warnings = entry::repair_order(
        ro.opened_at_ms,
        ro.completed_at_ms,
        ro.odometer_in_km,
        ro.odometer_out_km,
    );
    out.extend(warnings.into_iter().map(|w| shared(w, None)));
}

fn survey(s: &Survey, ctx: &RecordContext<'_>, out: &mut Vec<Finding>) {
    // RULES.md: "submitted from the dealer's own staff". A staff member who entered the answer
    // says so in the record; even a customer's answer taken on paper is flagged (HQ can
    // dismiss it), because the dealer measured on it also recorded it.
    if !s.entered_by_staff_id.is_empty() {
        out.push(finding(
            "Q01",
            "survey.entered_by_staff_id",
            Reason::new("Q01.entered_by_staff")
                .arg("staff", &s.entered_by_staff_id)
                .arg("dealer", ctx.dealer_id),
        ));
        return;
    }
    let Some(dealer) = ctx.dealer else { return };
    let from_staff =
        Mobile::parse(&s.respondent_mobile).is_ok_and(|m| dealer.staff_mobiles.contains(m.e164()));
    if from_staff {
        out.push(finding(
            "Q01",
            "survey.respondent_mobile",
            Reason::new("Q01.staff_respondent").arg("dealer", ctx.dealer_id),
        ));
    }
}

/// T01: an event more than the tolerance in the future of the hub clock, once the agent's
/// measured offset is taken out (not for imported history: its times are the source's). The
/// other half of T01 for imported history, a source clock set ahead, reads the dealer's next
/// record of the same source ([`super::history`], the source-sequence group).
fn future(content: &Content, ctx: &RecordContext<'_>, out: &mut Vec<Finding>) {
    let tolerance_ms = ctx.config.future_tolerance_minutes * 60_000;
    let offset_ms = if ctx.imported { 0 } else { ctx.clock_offset_ms };
    for (field, at) in content.event_times() {
        let ahead_ms = at.saturating_sub(offset_ms) - ctx.received_at_ms;
        if let Some(w) = entry::future_event(field, at, ahead_ms, tolerance_ms) {
            out.push(shared(w, None));
        }
    }
}

/// T02: every record of a session whose agent clock was off by more than the limit.
fn session_clock(ctx: &RecordContext<'_>, out: &mut Vec<Finding>) {
    let limit_ms = ctx.config.clock_offset_max_minutes * 60_000;
    if ctx.clock_offset_ms.abs() > limit_ms {
        let minutes = ctx.clock_offset_ms / 60_000;
        out.push(finding(
            "T02",
            "recorded_at_ms",
            Reason::new("T02.clock_offset")
                .arg("minutes", minutes)
                .arg("limit", ctx.config.clock_offset_max_minutes),
        ));
    }
}

/// A date and a moment as reasons show them.
pub use hamgam_proto::reason::{day, moment};
