//! The one place the hub converts between the wire contract (prost types of `hamgam-proto`) and
//! its domain types, and where rule R00 (malformed record) is checked, because "malformed"
//! means "does not fit the wire contract".
//!
//! Everything after this module works on [`crate::domain`] types.

use hamgam_proto::calendar::DAY_MS;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::{entry, limits};
use hamgam_proto::{RecordKind, RECORD_SCHEMA_VERSION};
use prost::Message;

use crate::content::{self, Content};
use crate::domain::{Finding, Outcome, Reason, RecordOrigin, Severity, StoredRecord, Verdict};

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
    /// What the record says, when it has a payload.
    pub content: Option<Content>,
    /// For a correction: R00 findings of the amended content, named as on the target record.
    pub amended_malformed: Vec<Finding>,
    /// The agent's hybrid logical clock stamp (`(0, 0)` when the agent sent none).
    pub hlc: (i64, u32),
    /// Imported history: the source system and its time of making the record (`Record.origin`
    /// with `created_at_ms` set; an origin without a time says nothing about time).
    pub origin: Option<RecordOrigin>,
}

impl Arrival {
    /// When the record was made: the source's time if imported, else the agent's stamp.
    pub fn made_at_ms(&self) -> i64 {
        self.origin
            .as_ref()
            .map_or(self.recorded_at_ms, |o| o.created_at_ms)
    }
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
            Ok(_) => {
                findings_more.push(malformed("record_id", Problem::Invalid("R00.not_uuid_v7")))
            }
            Err(_) => findings_more.push(malformed("record_id", Problem::Invalid("R00.not_uuid"))),
        }
    }
    if record.schema_version != RECORD_SCHEMA_VERSION {
        findings_more.push(Finding {
            rule_id: "R00".into(),
            severity: Severity::Reject,
            field: "schema_version".into(),
            reason: Reason::new("R00.schema_version")
                .arg("version", record.schema_version)
                .arg("known", RECORD_SCHEMA_VERSION),
        });
    }
    if let Some(origin) = &record.origin {
        if origin.source_system.trim().is_empty() {
            findings_more.push(malformed("origin.source_system", Problem::Missing));
        }
        if origin.source_record_id.trim().is_empty() {
            findings_more.push(malformed("origin.source_record_id", Problem::Missing));
        }
        if origin.created_at_ms < 0 {
            findings_more.push(malformed(
                "origin.created_at_ms",
                Problem::Invalid("R00.negative_time"),
            ));
        }
    }
    findings.extend(findings_more);
    let mut amended_malformed = Vec::new();
    match &record.payload {
        None if !record.withheld.is_empty() => findings.push(withheld(&record.withheld)),
        None => findings.push(malformed("payload", Problem::Missing)),
        Some(payload) => check_payload(payload, &mut findings),
    }
    // The same size bounds the agent applies at capture (`hamgam_proto::limits`).
    findings.extend(limits::check_record(record).iter().map(too_large));
    if let Some(Payload::Correction(c)) = &record.payload {
        if let Some(amended) = amended_payload(c) {
            check_payload(&amended, &mut amended_malformed);
        }
    }
    Arrival {
        record_id: record.record_id.clone(),
        seq: record.seq,
        kind: record.payload.as_ref().map(RecordKind::of),
        recorded_at_ms: record.recorded_at_ms,
        wire: record.encode_to_vec(),
        malformed: findings,
        content: record.payload.as_ref().map(content),
        amended_malformed,
        hlc: record
            .hlc
            .as_ref()
            .map(|h| (h.wall_ms, h.logical))
            .unwrap_or_default(),
        origin: record
            .origin
            .as_ref()
            .filter(|o| o.created_at_ms > 0 && !o.source_system.trim().is_empty())
            .map(|o| RecordOrigin {
                source_system: o.source_system.clone(),
                created_at_ms: o.created_at_ms,
            }),
    }
}

enum Problem {
    Missing,
    Invalid(&'static str),
}

/// R00 for a record over a size bound, naming the field, its size and the limit.
fn too_large(v: &limits::SizeViolation) -> Finding {
    Finding {
        rule_id: "R00".into(),
        severity: Severity::Reject,
        field: if v.field.is_empty() {
            "record".into()
        } else {
            v.field.clone()
        },
        reason: match (v.field.is_empty(), v.unit) {
            (true, _) => Reason::new("R00.record_too_large"),
            (false, limits::SizeUnit::Bytes) => Reason::new("R00.too_long"),
            (false, limits::SizeUnit::Entries) => Reason::new("R00.too_many"),
        }
        .arg("size", v.size)
        .arg("limit", v.limit),
    }
}

/// R00 for a record whose content the agent could not send, with the agent's reason.
fn withheld(reason: &str) -> Finding {
    let reason: String = reason.chars().take(limits::MAX_TEXT_BYTES).collect();
    Finding {
        rule_id: "R00".into(),
        severity: Severity::Reject,
        field: "withheld".into(),
        reason: Reason::new("R00.withheld").arg("why", reason),
    }
}

fn malformed(field: &str, problem: Problem) -> Finding {
    let reason = match problem {
        Problem::Missing => entry::missing(field).reason,
        Problem::Invalid(code) => Reason::new(code),
    };
    Finding {
        rule_id: "R00".into(),
        severity: Severity::Reject,
        field: field.into(),
        reason,
    }
}

/// R00 on a payload's own fields: required fields, dates that cannot be right (the checks and
/// reasons staff also see at capture, `hamgam_proto::entry`), and a replacement time off its day.
fn check_payload(payload: &Payload, out: &mut Vec<Finding>) {
    for field in entry::missing_fields(payload) {
        out.push(reject(entry::missing(&field)));
    }
    // What lies in the future is not R00's: a future delivery is S01's, a future event T01's.
    out.extend(entry::date_problems(payload).into_iter().map(reject));
    if let Payload::OdometerReplacement(o) = payload {
        let day = date_ms(&o.replaced_on).map(|ms| ms.div_euclid(DAY_MS));
        if let (Some(at), Some(day)) = (o.replaced_at_ms, day) {
            if at.div_euclid(DAY_MS) != day {
                out.push(malformed(
                    "odometer_replacement.replaced_at_ms",
                    Problem::Invalid("R00.replaced_at_off_day"),
                ));
            }
        }
    }
}

/// An R00 finding from a shared entry check.
fn reject(w: entry::Warning) -> Finding {
    Finding {
        rule_id: "R00".into(),
        severity: Severity::Reject,
        field: w.field,
        reason: w.reason,
    }
}

/// The business content of a payload, in the hub's types.
pub fn content(payload: &Payload) -> Content {
    match payload {
        Payload::Customer(c) => Content::Customer(customer(c)),
        Payload::RetailDelivery(d) => Content::Delivery(delivery(d)),
        Payload::RepairOrder(ro) => Content::RepairOrder(repair_order(ro)),
        Payload::Lead(l) => Content::Lead(content::Lead {
            customer_ref: l.customer_ref.clone(),
            contacted_at_ms: l.contacted_at_ms,
        }),
        Payload::Complaint(c) => Content::Complaint(content::Complaint {
            case_ref: c.case_ref.clone(),
            customer_ref: c.customer_ref.clone(),
            vin: c.vin.clone(),
            event_at_ms: c.event_at_ms,
            status: match pb::ComplaintStatus::try_from(c.status) {
                Ok(pb::ComplaintStatus::Opened) => content::ComplaintStatus::Opened,
                Ok(pb::ComplaintStatus::Updated) => content::ComplaintStatus::Updated,
                Ok(pb::ComplaintStatus::Resolved) => content::ComplaintStatus::Resolved,
                Ok(pb::ComplaintStatus::Closed) => content::ComplaintStatus::Closed,
                _ => content::ComplaintStatus::Unspecified,
            },
        }),
        Payload::Survey(s) => Content::Survey(survey(s)),
        Payload::OdometerReplacement(o) => {
            Content::OdometerReplacement(content::OdometerReplacement {
                vin: o.vin.clone(),
                replaced_on_ms: date_ms(&o.replaced_on),
                replaced_at_ms: o.replaced_at_ms,
                reading_before_km: o.reading_before_km,
                reading_after_km: o.reading_after_km,
            })
        }
        Payload::VehicleStatus(v) => Content::VehicleStatus(content::VehicleStatus {
            vin: v.vin.clone(),
            condition: match pb::VehicleCondition::try_from(v.condition) {
                Ok(pb::VehicleCondition::Scrapped) => content::VehicleCondition::Scrapped,
                Ok(pb::VehicleCondition::Stolen) => content::VehicleCondition::Stolen,
                Ok(pb::VehicleCondition::Recovered) => content::VehicleCondition::Recovered,
                Ok(pb::VehicleCondition::Exported) => content::VehicleCondition::Exported,
                _ => content::VehicleCondition::Unspecified,
            },
            effective_on_ms: date_ms(&v.effective_on),
        }),
        Payload::Correction(c) => Content::Correction(content::Correction {
            target_record_id: c.target_record_id.clone(),
            reason: c.reason.clone(),
            retract: c.retract,
            amended: amended_payload(c).map(|p| Box::new(content(&p))),
        }),
    }
}

/// A correction's amended content as the payload it stands for.
fn amended_payload(c: &pb::Correction) -> Option<Payload> {
    use pb::correction::Amended;
    Some(match c.amended.as_ref()? {
        Amended::Customer(x) => Payload::Customer(x.clone()),
        Amended::RetailDelivery(x) => Payload::RetailDelivery(x.clone()),
        Amended::RepairOrder(x) => Payload::RepairOrder(x.clone()),
        Amended::Lead(x) => Payload::Lead(x.clone()),
        Amended::Complaint(x) => Payload::Complaint(x.clone()),
        Amended::Survey(x) => Payload::Survey(x.clone()),
        Amended::OdometerReplacement(x) => Payload::OdometerReplacement(x.clone()),
        Amended::VehicleStatus(x) => Payload::VehicleStatus(x.clone()),
    })
}

fn customer(c: &pb::CustomerUpsert) -> content::Customer {
    content::Customer {
        customer_ref: c.customer_ref.clone(),
        organization: c.party_type == pb::PartyType::Organization as i32,
        national_id: c.national_id.clone(),
        company_id: c.company_national_id.clone(),
        given_name: c.given_name.clone(),
        family_name: c.family_name.clone(),
        organization_name: c.organization_name.clone(),
        mobile: c.mobile.clone(),
        postal_code: c.address.as_ref().map(|a| a.postal_code.clone()),
    }
}

fn delivery(d: &pb::RetailDelivery) -> content::Delivery {
    use content::{PartyRole, SaleCategory};
    content::Delivery {
        vin: d.vin.clone(),
        sale_date_ms: date_ms(&d.sale_date),
        delivery_date_ms: date_ms(&d.delivery_date),
        odometer_km: d.odometer_km,
        category: match pb::SaleCategory::try_from(d.sale_category) {
            Ok(pb::SaleCategory::Retail) => SaleCategory::Retail,
            Ok(pb::SaleCategory::Fleet) => SaleCategory::Fleet,
            Ok(pb::SaleCategory::Demo) => SaleCategory::Demo,
            Ok(pb::SaleCategory::Internal) => SaleCategory::Internal,
            _ => SaleCategory::Unspecified,
        },
        parties: d
            .parties
            .iter()
            .map(|p| {
                let role = match pb::PartyRole::try_from(p.role) {
                    Ok(pb::PartyRole::Buyer) => PartyRole::Buyer,
                    Ok(pb::PartyRole::CoBuyer) => PartyRole::CoBuyer,
                    Ok(pb::PartyRole::Owner) => PartyRole::Owner,
                    Ok(pb::PartyRole::PrimaryDriver) => PartyRole::PrimaryDriver,
                    Ok(pb::PartyRole::FleetAccount) => PartyRole::FleetAccount,
                    _ => PartyRole::Unspecified,
                };
                (role, p.customer_ref.clone())
            })
            .collect(),
        model: if d.model_name.trim().is_empty() {
            d.model_code.clone()
        } else {
            d.model_name.clone()
        },
    }
}

fn pay_type(value: i32) -> content::PayType {
    use content::PayType;
    match pb::PayType::try_from(value) {
        Ok(pb::PayType::Customer) => PayType::Customer,
        Ok(pb::PayType::Warranty) => PayType::Warranty,
        Ok(pb::PayType::Internal) => PayType::Internal,
        Ok(pb::PayType::Goodwill) => PayType::Goodwill,
        Ok(pb::PayType::Campaign) => PayType::Campaign,
        Ok(pb::PayType::PreDelivery) => PayType::PreDelivery,
        _ => PayType::Unspecified,
    }
}

fn repair_order(ro: &pb::RepairOrder) -> content::RepairOrder {
    content::RepairOrder {
        ro_number: ro.ro_number.clone(),
        vin: ro.vin.clone(),
        owner_ref: ro.owner_ref.clone(),
        driver_ref: ro.driver_ref.clone(),
        opened_at_ms: ro.opened_at_ms,
        completed_at_ms: ro.completed_at_ms,
        odometer_in_km: ro.odometer_in_km,
        odometer_out_km: ro.odometer_out_km,
        pay_type: pay_type(ro.pay_type),
        job_lines: ro
            .job_lines
            .iter()
            .map(|j| content::JobLine {
                labor_op_code: j.labor_op_code.clone(),
                parts: j.parts.iter().map(|p| p.part_number.clone()).collect(),
            })
            .collect(),
        total_rials: ro.total_rials,
    }
}

fn survey(s: &pb::Survey) -> content::Survey {
    content::Survey {
        customer_ref: s.customer_ref.clone(),
        subject: match pb::SurveySubject::try_from(s.subject) {
            Ok(pb::SurveySubject::Delivery) => content::SurveySubject::Delivery,
            Ok(pb::SurveySubject::RepairOrder) => content::SurveySubject::RepairOrder,
            _ => content::SurveySubject::Unspecified,
        },
        subject_ref: s.subject_ref.clone(),
        submitted_at_ms: s.submitted_at_ms,
        respondent_mobile: s.respondent_mobile.clone(),
        csat: s.csat,
        nps: s.nps,
        entered_by_staff_id: s.entered_by_staff_id.trim().to_owned(),
    }
}

/// A calendar date as midnight UTC, if it is one.
fn date_ms(d: &Option<pb::Date>) -> Option<i64> {
    let d = d.as_ref()?;
    let month = time::Month::try_from(u8::try_from(d.month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(d.year, month, u8::try_from(d.day).ok()?).ok()?;
    Some(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// A stored record back on the wire, exactly as the dealer sent it.
/// The content a stored record carried on the wire (not any correction of it).
pub fn stored_content(stored: &StoredRecord) -> Option<Content> {
    let record = pb::Record::decode(stored.wire.as_slice()).ok()?;
    record.payload.as_ref().map(content)
}

pub fn record_to_wire(stored: &StoredRecord) -> Result<pb::Record, prost::DecodeError> {
    record_from_bytes(&stored.wire)
}

/// A record from the bytes the dealer sent (a stored record's, or a backup's).
pub fn record_from_bytes(bytes: &[u8]) -> Result<pb::Record, prost::DecodeError> {
    pb::Record::decode(bytes)
}

/// A verdict on the wire.
pub fn verdict_to_wire(v: &Verdict) -> pb::Verdict {
    pb::Verdict {
        record_id: v.record_id.clone(),
        seq: v.seq,
        outcome: outcome_to_wire(v.outcome) as i32,
        findings: v.findings.iter().map(finding_to_wire).collect(),
        version: v.version,
        decided_at_ms: v.decided_at_ms,
    }
}

pub fn outcome_to_wire(o: Outcome) -> pb::Outcome {
    match o {
        Outcome::Accepted => pb::Outcome::Accepted,
        Outcome::AcceptedWithFlags => pb::Outcome::AcceptedWithFlags,
        Outcome::Rejected => pb::Outcome::Rejected,
    }
}

pub fn severity_to_wire(s: Severity) -> pb::Severity {
    match s {
        Severity::Flag => pb::Severity::Flag,
        Severity::FlagHigh => pb::Severity::FlagHigh,
        Severity::RejectField => pb::Severity::RejectField,
        Severity::Reject => pb::Severity::Reject,
    }
}

pub fn finding_to_wire(f: &crate::domain::Finding) -> pb::Finding {
    pb::Finding {
        rule_id: f.rule_id.clone(),
        severity: severity_to_wire(f.severity) as i32,
        field: f.field.clone(),
        reason_fa: f.reason_fa(),
        reason_en: f.reason_en(),
        reason_code: f.reason.code.clone(),
        reason_args: f.reason.rendered_args().into_iter().collect(),
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
            withheld: String::new(),
            origin: None,
            payload: Some(Payload::Lead(pb::Lead {
                customer_ref: "C-1".into(),
                contacted_at_ms: 1_700_000_000_000,
                ..Default::default()
            })),
        }
    }

    /// A retail delivery sold and delivered on the given `(year, month, day)`s.
    fn delivery_sold(sale: (i32, i32, i32), delivered: (i32, i32, i32)) -> Payload {
        let date = |(year, month, day)| Some(pb::Date { year, month, day });
        Payload::RetailDelivery(pb::RetailDelivery {
            vin: "NAAN01CE5KK123456".into(),
            sale_date: date(sale),
            delivery_date: date(delivered),
            sale_category: pb::SaleCategory::Retail as i32,
            parties: vec![pb::DeliveryParty {
                role: 1,
                customer_ref: "C-1".into(),
            }],
            ..Default::default()
        })
    }

    fn replacement(day: i32, at_ms: Option<i64>) -> Payload {
        Payload::OdometerReplacement(pb::OdometerReplacement {
            vin: "NAAN01CE5KK123456".into(),
            replaced_on: Some(pb::Date {
                year: 2023,
                month: 11,
                day,
            }),
            replaced_at_ms: at_ms,
            ..Default::default()
        })
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
                Box::new(|r| r.payload = Some(delivery_sold((2026, 2, 30), (2026, 3, 1)))),
                "retail_delivery.sale_date",
            ),
            (
                // A Solar Hijri year typed as a Gregorian one: the words staff saw at entry.
                Box::new(|r| r.payload = Some(delivery_sold((1403, 5, 12), (2024, 8, 2)))),
                "retail_delivery.sale_date",
            ),
            (
                // 2023-11-14 (the day of 1_700_000_000_000) at 22:13, dated the 15th.
                Box::new(|r| r.payload = Some(replacement(15, Some(1_700_000_000_000)))),
                "odometer_replacement.replaced_at_ms",
            ),
        ];
        // A time on the replacement's own day is well formed.
        let mut record = lead();
        record.payload = Some(replacement(14, Some(1_700_000_000_000)));
        assert!(arrival(&record).malformed.is_empty());
        for (mutate, field) in cases {
            let mut record = lead();
            mutate(&mut record);
            let found = arrival(&record).malformed;
            assert_eq!(found.len(), 1, "{field}: {found:?}");
            assert_eq!(found[0].rule_id, "R00");
            assert_eq!(found[0].field, field);
            assert!(found[0].reason_en().contains(field) && found[0].reason_fa().contains(field));
        }
    }
}

/// What HQ's reports read of a record that the rules do not: a lead's source, a survey's
/// channel, a complaint's category, a registration's segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContactDetails {
    /// `showroom`, `call`, `test_drive`, `web` (a lead); `sms`, `phone`, `web`, `in_store` (a
    /// survey); empty for other kinds; `unspecified` when the record does not say.
    pub channel: String,
    /// A complaint's category as the dealer gave it.
    pub category: String,
    /// A registration's segment: `B2C`, `B2B`, `B2G`, or empty when it does not say.
    pub segment: String,
}

/// The details of `payload` (a record's, or a correction's amended content).
pub fn contact_details(payload: &Payload) -> ContactDetails {
    let mut details = ContactDetails::default();
    match payload {
        Payload::Lead(l) => {
            details.channel = match pb::LeadSource::try_from(l.source) {
                Ok(pb::LeadSource::ShowroomVisit) => "showroom",
                Ok(pb::LeadSource::PhoneCall) => "call",
                Ok(pb::LeadSource::TestDrive) => "test_drive",
                Ok(pb::LeadSource::Web) => "web",
                _ => "unspecified",
            }
            .into()
        }
        Payload::Survey(s) => {
            details.channel = match pb::SurveyChannel::try_from(s.channel) {
                Ok(pb::SurveyChannel::Sms) => "sms",
                Ok(pb::SurveyChannel::Phone) => "phone",
                Ok(pb::SurveyChannel::Web) => "web",
                Ok(pb::SurveyChannel::InStore) => "in_store",
                _ => "unspecified",
            }
            .into()
        }
        Payload::Complaint(c) => details.category = c.category.trim().to_owned(),
        Payload::Customer(c) => {
            details.segment = match pb::CustomerSegment::try_from(c.segment) {
                Ok(pb::CustomerSegment::B2c) => "B2C",
                Ok(pb::CustomerSegment::B2b) => "B2B",
                Ok(pb::CustomerSegment::B2g) => "B2G",
                _ => "",
            }
            .into()
        }
        _ => {}
    }
    details
}

/// The details of a stored record's own bytes, or of the amended content in a correction's
/// bytes (`correction`: the record named by `corrected_by`).
pub fn stored_details(stored: &StoredRecord, correction: Option<&StoredRecord>) -> ContactDetails {
    let decoded =
        match correction {
            Some(c) if stored.amended.is_some() => pb::Record::decode(c.wire.as_slice())
                .ok()
                .and_then(|r| match r.payload {
                    Some(Payload::Correction(c)) => amended_payload(&c),
                    _ => None,
                }),
            _ => pb::Record::decode(stored.wire.as_slice())
                .ok()
                .and_then(|r| r.payload),
        };
    decoded.as_ref().map(contact_details).unwrap_or_default()
}
