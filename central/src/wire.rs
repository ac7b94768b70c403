//! The one place the hub converts between the wire contract (prost types of `hamgam-proto`) and
//! its domain types, and where rule R00 (malformed record) is checked, because "malformed"
//! means "does not fit the wire contract".
//!
//! Everything after this module works on [`crate::domain`] types.

use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::{RecordKind, RECORD_SCHEMA_VERSION};
use prost::Message;

use crate::domain::{Finding, Outcome, Severity, StoredRecord, Verdict};

/// A record as it arrived, checked against the wire contract.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub record_id: String,
    pub seq: u64,
    pub kind: Option<RecordKind>,
    pub recorded_at_ms: i64,
    pub wire: Vec<u8>,
    /// R00 findings; empty when the record is well formed.
    pub malformed: Vec<Finding>,
}

/// Encodes the record exactly as received and checks it against the wire contract (R00).
pub fn arrival(record: &pb::Record) -> Arrival {
    let mut findings = Vec::new();
    let mut missing = |field: &str| findings.push(malformed(field, Problem::Missing));
    if record.record_id.is_empty() {
        missing("record_id");
    }
    if record.staff_id.trim().is_empty() {
        missing("staff_id");
    }
    if record.recorded_at_ms <= 0 {
        missing("recorded_at_ms");
    }
    let mut findings_more = Vec::new();
    if !record.record_id.is_empty() {
        match uuid::Uuid::parse_str(&record.record_id) {
            Ok(id) if id.get_version_num() == 7 => {}
            Ok(_) => findings_more.push(malformed(
                "record_id",
                Problem::Invalid("must be a UUID version 7"),
            )),
            Err(_) => findings_more.push(malformed("record_id", Problem::Invalid("is not a UUID"))),
        }
    }
    if record.schema_version != RECORD_SCHEMA_VERSION {
        findings_more.push(Finding {
            rule_id: "R00".into(),
            severity: Severity::Reject,
            field: "schema_version".into(),
            reason_fa: format!(
                "نسخهٔ قالب رکورد (schema_version = {}) برای مرکز ناشناخته است؛ مرکز نسخهٔ {RECORD_SCHEMA_VERSION} را می‌شناسد. نرم‌افزار نمایندگی را به‌روز کنید.",
                record.schema_version
            ),
            reason_en: format!(
                "schema_version {} is unknown; this hub understands version {RECORD_SCHEMA_VERSION}. Update the dealer agent.",
                record.schema_version
            ),
        });
    }
    findings.extend(findings_more);
    match &record.payload {
        None => findings.push(malformed("payload", Problem::Missing)),
        Some(payload) => check_payload(payload, &mut findings),
    }
    Arrival {
        record_id: record.record_id.clone(),
        seq: record.seq,
        kind: record.payload.as_ref().map(RecordKind::of),
        recorded_at_ms: record.recorded_at_ms,
        wire: record.encode_to_vec(),
        malformed: findings,
    }
}

enum Problem {
    Missing,
    Invalid(&'static str),
}

fn malformed(field: &str, problem: Problem) -> Finding {
    let (reason_en, reason_fa) = match problem {
        Problem::Missing => (
            format!("{field} is required but empty; fill it in and send a correction"),
            format!("فیلد {field} الزامی است ولی خالی مانده است؛ آن را پر کنید و اصلاحیه بفرستید"),
        ),
        Problem::Invalid(why) => (
            format!("{field} {why}; fix it and send a correction"),
            format!("مقدار فیلد {field} نادرست است ({why})؛ آن را اصلاح کنید و اصلاحیه بفرستید"),
        ),
    };
    Finding {
        rule_id: "R00".into(),
        severity: Severity::Reject,
        field: field.into(),
        reason_fa,
        reason_en,
    }
}

fn check_payload(payload: &Payload, out: &mut Vec<Finding>) {
    let mut req = |ok: bool, field: &str| {
        if !ok {
            out.push(malformed(field, Problem::Missing));
        }
    };
    match payload {
        Payload::Customer(c) => check_customer(c, "customer", &mut req),
        Payload::RetailDelivery(d) => check_delivery(d, "retail_delivery", &mut req),
        Payload::RepairOrder(ro) => check_repair_order(ro, "repair_order", &mut req),
        Payload::Lead(l) => {
            req(!l.customer_ref.is_empty(), "lead.customer_ref");
            req(l.contacted_at_ms > 0, "lead.contacted_at_ms");
        }
        Payload::Complaint(c) => {
            req(!c.case_ref.is_empty(), "complaint.case_ref");
            req(c.status != 0, "complaint.status");
            req(c.event_at_ms > 0, "complaint.event_at_ms");
        }
        Payload::Survey(s) => {
            req(!s.subject_ref.is_empty(), "survey.subject_ref");
            req(s.subject != 0, "survey.subject");
            req(s.submitted_at_ms > 0, "survey.submitted_at_ms");
        }
        Payload::OdometerReplacement(o) => {
            req(!o.vin.is_empty(), "odometer_replacement.vin");
            req(o.replaced_on.is_some(), "odometer_replacement.replaced_on");
        }
        Payload::VehicleStatus(v) => {
            req(!v.vin.is_empty(), "vehicle_status.vin");
            req(v.condition != 0, "vehicle_status.condition");
        }
        Payload::Correction(c) => {
            req(
                !c.target_record_id.is_empty(),
                "correction.target_record_id",
            );
            req(c.retract || c.amended.is_some(), "correction.amended");
            if let Some(amended) = &c.amended {
                use pb::correction::Amended;
                match amended {
                    Amended::Customer(x) => check_customer(x, "correction.customer", &mut req),
                    Amended::RetailDelivery(x) => {
                        check_delivery(x, "correction.retail_delivery", &mut req)
                    }
                    Amended::RepairOrder(x) => {
                        check_repair_order(x, "correction.repair_order", &mut req)
                    }
                    _ => {}
                }
            }
        }
    }
    let dates: Vec<(&str, &pb::Date)> = match payload {
        Payload::RetailDelivery(d) => [
            ("retail_delivery.sale_date", &d.sale_date),
            ("retail_delivery.delivery_date", &d.delivery_date),
        ]
        .into_iter()
        .filter_map(|(f, d)| d.as_ref().map(|d| (f, d)))
        .collect(),
        Payload::OdometerReplacement(o) => o
            .replaced_on
            .iter()
            .map(|d| ("odometer_replacement.replaced_on", d))
            .collect(),
        Payload::VehicleStatus(v) => v
            .effective_on
            .iter()
            .map(|d| ("vehicle_status.effective_on", d))
            .collect(),
        _ => Vec::new(),
    };
    for (field, date) in dates {
        if !is_calendar_date(date) {
            out.push(malformed(field, Problem::Invalid("is not a calendar date")));
        }
    }
}

fn check_customer(c: &pb::CustomerUpsert, at: &str, req: &mut impl FnMut(bool, &str)) {
    req(!c.customer_ref.is_empty(), &format!("{at}.customer_ref"));
    req(c.party_type != 0, &format!("{at}.party_type"));
    match pb::PartyType::try_from(c.party_type) {
        Ok(pb::PartyType::Organization) => req(
            !c.organization_name.trim().is_empty(),
            &format!("{at}.organization_name"),
        ),
        Ok(pb::PartyType::Person) => req(
            !(c.given_name.trim().is_empty() && c.family_name.trim().is_empty()),
            &format!("{at}.family_name"),
        ),
        _ => {}
    }
}

fn check_delivery(d: &pb::RetailDelivery, at: &str, req: &mut impl FnMut(bool, &str)) {
    req(!d.vin.is_empty(), &format!("{at}.vin"));
    req(d.delivery_date.is_some(), &format!("{at}.delivery_date"));
    req(d.sale_date.is_some(), &format!("{at}.sale_date"));
    req(d.sale_category != 0, &format!("{at}.sale_category"));
    req(!d.parties.is_empty(), &format!("{at}.parties"));
}

fn check_repair_order(ro: &pb::RepairOrder, at: &str, req: &mut impl FnMut(bool, &str)) {
    req(!ro.ro_number.is_empty(), &format!("{at}.ro_number"));
    req(!ro.vin.is_empty(), &format!("{at}.vin"));
    req(ro.opened_at_ms > 0, &format!("{at}.opened_at_ms"));
    req(ro.pay_type != 0, &format!("{at}.pay_type"));
}

fn is_calendar_date(d: &pb::Date) -> bool {
    u8::try_from(d.month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .zip(u8::try_from(d.day).ok())
        .is_some_and(|(m, day)| time::Date::from_calendar_date(d.year, m, day).is_ok())
}

/// A stored record back on the wire, exactly as the dealer sent it.
pub fn record_to_wire(stored: &StoredRecord) -> Result<pb::Record, prost::DecodeError> {
    pb::Record::decode(stored.wire.as_slice())
}

/// A verdict on the wire.
pub fn verdict_to_wire(v: &Verdict) -> pb::Verdict {
    pb::Verdict {
        record_id: v.record_id.clone(),
        seq: v.seq,
        outcome: match v.outcome {
            Outcome::Accepted => pb::Outcome::Accepted,
            Outcome::AcceptedWithFlags => pb::Outcome::AcceptedWithFlags,
            Outcome::Rejected => pb::Outcome::Rejected,
        } as i32,
        findings: v
            .findings
            .iter()
            .map(|f| pb::Finding {
                rule_id: f.rule_id.clone(),
                severity: match f.severity {
                    Severity::Flag => pb::Severity::Flag,
                    Severity::FlagHigh => pb::Severity::FlagHigh,
                    Severity::RejectField => pb::Severity::RejectField,
                    Severity::Reject => pb::Severity::Reject,
                } as i32,
                field: f.field.clone(),
                reason_fa: f.reason_fa.clone(),
                reason_en: f.reason_en.clone(),
            })
            .collect(),
        version: v.version,
        decided_at_ms: v.decided_at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead() -> pb::Record {
        pb::Record {
            record_id: uuid::Uuid::now_v7().to_string(),
            dealer_id: "D-1".into(),
            seq: 1,
            recorded_at_ms: 1_700_000_000_000,
            hlc: None,
            staff_id: "S-1".into(),
            schema_version: RECORD_SCHEMA_VERSION,
            payload: Some(Payload::Lead(pb::Lead {
                customer_ref: "C-1".into(),
                contacted_at_ms: 1_700_000_000_000,
                ..Default::default()
            })),
        }
    }

    #[test]
    fn a_well_formed_record_has_no_findings() {
        assert!(arrival(&lead()).malformed.is_empty());
    }

    #[test]
    fn each_malformation_names_its_field() {
        type Mutation = Box<dyn Fn(&mut pb::Record)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|r| r.payload = None), "payload"),
            (Box::new(|r| r.staff_id.clear()), "staff_id"),
            (Box::new(|r| r.schema_version = 9), "schema_version"),
            (Box::new(|r| r.record_id = "not-a-uuid".into()), "record_id"),
            (
                Box::new(|r| r.record_id = uuid::Uuid::new_v4().to_string()),
                "record_id",
            ),
            (
                Box::new(|r| {
                    r.payload = Some(Payload::RetailDelivery(pb::RetailDelivery {
                        vin: "NAAN01CE5KK123456".into(),
                        sale_date: Some(pb::Date {
                            year: 2026,
                            month: 2,
                            day: 30,
                        }),
                        delivery_date: Some(pb::Date {
                            year: 2026,
                            month: 3,
                            day: 1,
                        }),
                        sale_category: pb::SaleCategory::Retail as i32,
                        parties: vec![pb::DeliveryParty {
                            role: 1,
                            customer_ref: "C-1".into(),
                        }],
                        ..Default::default()
                    }))
                }),
                "retail_delivery.sale_date",
            ),
        ];
        for (mutate, field) in cases {
            let mut record = lead();
            mutate(&mut record);
            let found = arrival(&record).malformed;
            assert_eq!(found.len(), 1, "{field}: {found:?}");
            assert_eq!(found[0].rule_id, "R00");
            assert_eq!(found[0].field, field);
            assert!(found[0].reason_en.contains(field) && found[0].reason_fa.contains(field));
        }
    }
}
