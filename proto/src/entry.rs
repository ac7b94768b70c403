//! The checks of one record's own fields that both ends make, with the staff-facing reasons in
//! Persian and English in one place: the agent runs them at capture and shows the warnings as
//! staff type (the record is still saved: staff may be entering what is on paper), and the hub
//! turns the same results into its findings (R00, V01-V03, C01-C04, C06, O02, RO2, S01, and
//! T01's future event times). So a reason is written, and translated, once, and what staff (or a
//! dry run of an import) are warned about is what the hub's one-record rules will find.
//!
//! Personal data (national IDs, mobiles, postal codes) is never repeated in a reason: staff see
//! the record they typed beside it. A VIN is not personal and is quoted.

use crate::reason::{Arg, Lang, Reason};
use crate::record::v1 as pb;
use crate::record::v1::record::Payload;
use crate::values::{CompanyId, Mobile, NationalId, PostalCode, Vin};

/// The earliest year a date in a record may have: nothing in a dealership's history is older.
pub const EARLIEST_YEAR: i32 = 1950;
/// Highest odometer reading that is physically plausible (O02).
pub const MAX_ODOMETER_KM: u32 = 1_000_000;
/// T01's tolerance as the rule catalogue defaults it (`future_tolerance_minutes`): the agent
/// cannot read the hub's configuration, so it warns at the catalogue's default.
pub const FUTURE_TOLERANCE_MINUTES: i64 = 10;

/// One problem with one field: the rule, the field and why, as data ([`Reason`]); staff read
/// it rendered ([`Warning::reason_fa`], [`Warning::reason_en`]). In JSON (the agent's local
/// socket API) it carries both: `rule_id`, `field`, `reason_fa`, `reason_en` and `reason`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "WarningJson", from = "WarningJson")]
pub struct Warning {
    pub rule_id: String,
    /// The field, as the hub's findings name it (`customer.national_id`).
    pub field: String,
    pub reason: Reason,
}

/// [`Warning`] as JSON: the sentences for people and programs that show them, the reason as
/// data for programs that act on it.
#[derive(serde::Serialize, serde::Deserialize)]
struct WarningJson {
    rule_id: String,
    field: String,
    reason_fa: String,
    reason_en: String,
    /// Absent from a client that only knows the sentences.
    #[serde(default)]
    reason: Option<Reason>,
}

impl From<Warning> for WarningJson {
    fn from(w: Warning) -> Self {
        WarningJson {
            reason_fa: w.reason_fa(),
            reason_en: w.reason_en(),
            rule_id: w.rule_id,
            field: w.field,
            reason: Some(w.reason),
        }
    }
}

impl From<WarningJson> for Warning {
    fn from(w: WarningJson) -> Self {
        Warning {
            rule_id: w.rule_id,
            field: w.field,
            reason: w
                .reason
                .unwrap_or_else(|| Reason::written(w.reason_en, w.reason_fa)),
        }
    }
}

impl Warning {
    /// Why, in Persian.
    pub fn reason_fa(&self) -> String {
        self.reason.render_on(Lang::Fa, Some(&self.field))
    }

    /// Why, in English.
    pub fn reason_en(&self) -> String {
        self.reason.render_on(Lang::En, Some(&self.field))
    }
}

/// A warning of `rule_id` on `field` (which its reason cites as `{field}`).
fn warning(rule_id: &str, field: &str, reason: Reason) -> Warning {
    Warning {
        rule_id: rule_id.into(),
        field: field.into(),
        reason,
    }
}

/// Every warning for `payload` at entry: event times judged against `now_ms` (the agent's
/// clock, standing in for the hub's at sync), the delivery date against `made_at_ms` (when the
/// record was made: `now_ms` for a capture, the source's time for imported history).
pub fn check(payload: &Payload, now_ms: i64, made_at_ms: i64) -> Vec<Warning> {
    let mut out: Vec<Warning> = missing_fields(payload).iter().map(|f| missing(f)).collect();
    out.extend(date_problems(payload));
    for (field, at) in event_times(payload) {
        out.extend(future_event(
            field,
            at,
            at - now_ms,
            FUTURE_TOLERANCE_MINUTES * 60_000,
        ));
    }
    let prefix = kind_prefix(payload);
    match payload {
        Payload::Customer(c) => {
            let person = c.party_type == pb::PartyType::Person as i32;
            if person && !c.national_id.trim().is_empty() {
                out.extend(national_id(
                    &c.national_id,
                    &format!("{prefix}.national_id"),
                ));
            }
            if !person && !c.company_national_id.trim().is_empty() {
                out.extend(company_id(
                    &c.company_national_id,
                    &format!("{prefix}.company_national_id"),
                ));
            }
            if !c.mobile.trim().is_empty() {
                out.extend(mobile(&c.mobile, &format!("{prefix}.mobile"), 7));
            }
            if let Some(postal) = c.address.as_ref().map(|a| a.postal_code.as_str()) {
                if !postal.trim().is_empty() {
                    out.extend(postal_code(
                        postal,
                        &format!("{prefix}.address.postal_code"),
                    ));
                }
            }
        }
        Payload::RetailDelivery(d) => {
            out.extend(vin(&d.vin, &format!("{prefix}.vin")));
            let day = |d: &Option<pb::Date>| d.as_ref().and_then(day_ms);
            out.extend(delivery_dates(
                day(&d.sale_date),
                day(&d.delivery_date),
                made_at_ms,
            ));
            out.extend(odometer_range("retail_delivery.odometer_km", d.odometer_km));
        }
        Payload::RepairOrder(ro) => {
            out.extend(vin(&ro.vin, &format!("{prefix}.vin")));
            out.extend(repair_order(
                ro.opened_at_ms,
                ro.completed_at_ms,
                ro.odometer_in_km,
                ro.odometer_out_km,
            ));
        }
        Payload::OdometerReplacement(o) => out.extend(vin(&o.vin, &format!("{prefix}.vin"))),
        Payload::VehicleStatus(v) => out.extend(vin(&v.vin, &format!("{prefix}.vin"))),
        Payload::Complaint(c) => out.extend(vin(&c.vin, &format!("{prefix}.vin"))),
        _ => {}
    }
    out
}

/// The field-name prefix of a payload (`retail_delivery`).
pub fn kind_prefix(payload: &Payload) -> &'static str {
    kind_prefix_of(crate::RecordKind::of(payload))
}

/// The field-name prefix of a kind of record (`retail_delivery`).
pub fn kind_prefix_of(kind: crate::RecordKind) -> &'static str {
    use crate::RecordKind as K;
    match kind {
        K::Customer => "customer",
        K::RetailDelivery => "retail_delivery",
        K::RepairOrder => "repair_order",
        K::Lead => "lead",
        K::Complaint => "complaint",
        K::Survey => "survey",
        K::OdometerReplacement => "odometer_replacement",
        K::VehicleStatus => "vehicle_status",
        K::Correction => "correction",
    }
}

/// R00: a required field left empty.
pub fn missing(field: &str) -> Warning {
    warning("R00", field, Reason::new("R00.missing"))
}

/// R00: a field whose value cannot be used, for the reason `code` (a catalogue key that cites
/// only the field).
pub fn invalid(field: &str, code: &str) -> Warning {
    warning("R00", field, Reason::new(code))
}

/// The required fields `payload` leaves empty (R00).
pub fn missing_fields(payload: &Payload) -> Vec<String> {
    let mut out = Vec::new();
    let mut req = |ok: bool, field: &str| {
        if !ok {
            out.push(field.to_owned());
        }
    };
    match payload {
        Payload::Customer(c) => {
            req(!c.customer_ref.is_empty(), "customer.customer_ref");
            req(c.party_type != 0, "customer.party_type");
            match pb::PartyType::try_from(c.party_type) {
                Ok(pb::PartyType::Organization) => req(
                    !c.organization_name.trim().is_empty(),
                    "customer.organization_name",
                ),
                Ok(pb::PartyType::Person) => req(
                    !(c.given_name.trim().is_empty() && c.family_name.trim().is_empty()),
                    "customer.family_name",
                ),
                _ => {}
            }
        }
        Payload::RetailDelivery(d) => {
            req(!d.vin.is_empty(), "retail_delivery.vin");
            req(d.delivery_date.is_some(), "retail_delivery.delivery_date");
            req(d.sale_date.is_some(), "retail_delivery.sale_date");
            req(d.sale_category != 0, "retail_delivery.sale_category");
            req(!d.parties.is_empty(), "retail_delivery.parties");
        }
        Payload::RepairOrder(ro) => {
            req(!ro.ro_number.is_empty(), "repair_order.ro_number");
            req(!ro.vin.is_empty(), "repair_order.vin");
            req(ro.opened_at_ms > 0, "repair_order.opened_at_ms");
            req(ro.pay_type != 0, "repair_order.pay_type");
        }
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
        }
    }
    out
}

/// The calendar dates of `payload`, by field name.
fn dates(payload: &Payload) -> Vec<(&'static str, &pb::Date)> {
    let candidates: Vec<(&'static str, &Option<pb::Date>)> = match payload {
        Payload::RetailDelivery(d) => vec![
            ("retail_delivery.sale_date", &d.sale_date),
            ("retail_delivery.delivery_date", &d.delivery_date),
        ],
        Payload::OdometerReplacement(o) => {
            vec![("odometer_replacement.replaced_on", &o.replaced_on)]
        }
        Payload::VehicleStatus(v) => vec![("vehicle_status.effective_on", &v.effective_on)],
        _ => Vec::new(),
    };
    candidates
        .into_iter()
        .filter_map(|(f, d)| d.as_ref().map(|d| (f, d)))
        .collect()
}

/// The times of `payload` (ms since the epoch), by field name.
fn times(payload: &Payload) -> Vec<(&'static str, i64)> {
    let all: Vec<(&'static str, i64)> = match payload {
        Payload::RepairOrder(ro) => vec![
            ("repair_order.opened_at_ms", ro.opened_at_ms),
            ("repair_order.completed_at_ms", ro.completed_at_ms),
            ("repair_order.invoiced_at_ms", ro.invoiced_at_ms),
        ],
        Payload::Lead(l) => vec![("lead.contacted_at_ms", l.contacted_at_ms)],
        Payload::Complaint(c) => vec![("complaint.event_at_ms", c.event_at_ms)],
        Payload::Survey(s) => vec![("survey.submitted_at_ms", s.submitted_at_ms)],
        Payload::OdometerReplacement(o) => o
            .replaced_at_ms
            .map(|t| ("odometer_replacement.replaced_at_ms", t))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    };
    all.into_iter().filter(|(_, t)| *t > 0).collect()
}

/// R00 for every date or time of `payload` that cannot be right: not a calendar date, or before
/// [`EARLIEST_YEAR`] (a Solar Hijri year typed as a Gregorian one, `1403-05-12`, is named as
/// such). What lies in the future is not R00's: a future delivery is S01's, a future event
/// T01's ([`check`] warns of both as the hub will find them).
pub fn date_problems(payload: &Payload) -> Vec<Warning> {
    let mut out = Vec::new();
    for (field, date) in dates(payload) {
        let month = u8::try_from(date.month)
            .ok()
            .and_then(|m| time::Month::try_from(m).ok());
        let calendar = month.and_then(|m| {
            time::Date::from_calendar_date(date.year, m, u8::try_from(date.day).ok()?).ok()
        });
        if calendar.is_none() {
            out.push(invalid(field, "R00.not_a_date"));
        } else if let Some(w) = year_problem(field, date.year) {
            out.push(w);
        }
    }
    for (field, at) in times(payload) {
        let year = crate::calendar::date_of(at).map(|d| d.year()).unwrap_or(0);
        out.extend(year_problem(field, year));
    }
    out
}

/// A date's midnight (ms since the epoch), if it is a calendar date.
fn day_ms(date: &pb::Date) -> Option<i64> {
    let month = time::Month::try_from(u8::try_from(date.month).ok()?).ok()?;
    let day =
        time::Date::from_calendar_date(date.year, month, u8::try_from(date.day).ok()?).ok()?;
    Some(crate::calendar::midnight_ms(day))
}

/// The times T01 reads ("event time"), by field: the hub's `Content::event_times` on the wire
/// payload.
fn event_times(payload: &Payload) -> Vec<(&'static str, i64)> {
    times(payload)
        .into_iter()
        .filter(|(field, _)| *field != "repair_order.invoiced_at_ms")
        .collect()
}

/// T01: an event time `ahead_ms` in the future of the clock it is compared with (the hub's at
/// receipt, after the agent's measured offset; the agent's own at entry), when that is more than
/// `tolerance_ms`. The reason cites the time as recorded.
pub fn future_event(field: &str, at_ms: i64, ahead_ms: i64, tolerance_ms: i64) -> Option<Warning> {
    (ahead_ms > tolerance_ms).then(|| {
        warning(
            "T01",
            field,
            Reason::new("T01.future")
                .arg("at", Arg::Moment(at_ms))
                .arg("minutes", ahead_ms / 60_000),
        )
    })
}

/// S01 on a delivery's dates (midnights, ms): delivered before it was sold, or after the record
/// was made (`made_at_ms`).
pub fn delivery_dates(
    sale_ms: Option<i64>,
    delivered_ms: Option<i64>,
    made_at_ms: i64,
) -> Vec<Warning> {
    let field = "retail_delivery.delivery_date";
    let mut out = Vec::new();
    if let (Some(sale), Some(delivered)) = (sale_ms, delivered_ms) {
        if delivered < sale {
            out.push(warning(
                "S01",
                field,
                Reason::new("S01.delivery_before_sale")
                    .arg("delivered", Arg::Day(delivered))
                    .arg("sold", Arg::Day(sale)),
            ));
        }
    }
    if let Some(delivered) = delivered_ms.filter(|d| *d > made_at_ms) {
        out.push(warning(
            "S01",
            field,
            Reason::new("S01.delivery_after_made").arg("delivered", Arg::Day(delivered)),
        ));
    }
    out
}

/// O02 on one odometer reading outside 0..[`MAX_ODOMETER_KM`].
pub fn odometer_range(field: &str, km: u32) -> Option<Warning> {
    (km > MAX_ODOMETER_KM).then(|| {
        warning(
            "O02",
            field,
            Reason::new("O02.out_of_range")
                .arg("km", km)
                .arg("max", MAX_ODOMETER_KM),
        )
    })
}

/// O02 and RO2 on a repair order's own readings and times: a reading out of range, out below
/// in, completed before opened (times in ms; 0 is "not yet").
pub fn repair_order(
    opened_at_ms: i64,
    completed_at_ms: i64,
    odometer_in_km: u32,
    odometer_out_km: u32,
) -> Vec<Warning> {
    let mut out: Vec<Warning> = [
        ("repair_order.odometer_in_km", odometer_in_km),
        ("repair_order.odometer_out_km", odometer_out_km),
    ]
    .into_iter()
    .filter_map(|(field, km)| odometer_range(field, km))
    .collect();
    if odometer_out_km != 0 && odometer_out_km < odometer_in_km {
        out.push(warning(
            "O02",
            "repair_order.odometer_out_km",
            Reason::new("O02.out_below_in")
                .arg("out_km", odometer_out_km)
                .arg("in_km", odometer_in_km),
        ));
    }
    if completed_at_ms > 0 && completed_at_ms < opened_at_ms {
        out.push(warning(
            "RO2",
            "repair_order.completed_at_ms",
            Reason::new("RO2.completed_before_opened")
                .arg("completed", Arg::Moment(completed_at_ms))
                .arg("opened", Arg::Moment(opened_at_ms)),
        ));
    }
    out
}

fn year_problem(field: &str, year: i32) -> Option<Warning> {
    if (1300..1500).contains(&year) {
        let gregorian = year + 621;
        return Some(warning(
            "R00",
            field,
            Reason::new("R00.jalali_year")
                .arg("year", year)
                .arg("gregorian", gregorian)
                .arg("gregorian_next", gregorian + 1),
        ));
    }
    (year < EARLIEST_YEAR).then(|| {
        warning(
            "R00",
            field,
            Reason::new("R00.year_too_early")
                .arg("year", year)
                .arg("earliest", EARLIEST_YEAR),
        )
    })
}

/// V01, V02, V03 on a VIN (nothing for an empty one: a missing VIN is R00's).
pub fn vin(raw: &str, field: &str) -> Vec<Warning> {
    if raw.is_empty() {
        return Vec::new();
    }
    let vin = match Vin::parse(raw) {
        Ok(v) => v,
        Err(_) => {
            return vec![warning(
                "V01",
                field,
                Reason::new("V01.not_a_vin").arg("vin", raw),
            )]
        }
    };
    let mut out = Vec::new();
    if !vin.model_year_code_ok() {
        let code = &vin.as_str()[9..10];
        out.push(warning(
            "V02",
            field,
            Reason::new("V02.model_year")
                .arg("vin", vin.as_str())
                .arg("code", code),
        ));
    }
    if !vin.check_digit_ok() && !vin.check_digit_is_filler() {
        out.push(warning(
            "V03",
            field,
            Reason::new("V03.check_digit")
                .arg("vin", vin.as_str())
                .arg("digit", &vin.as_str()[8..9])
                .arg(
                    "expected",
                    Arg::Text(vin.expected_check_digit().to_string()),
                ),
        ));
    }
    out
}

/// C01 or C02 on a person's national ID (code melli).
pub fn national_id(raw: &str, field: &str) -> Option<Warning> {
    match NationalId::parse(raw) {
        Ok(_) => None,
        Err(e) if e.rule_id() == "C02" => {
            Some(warning("C02", field, Reason::new("C02.placeholder")))
        }
        Err(_) => Some(warning("C01", field, Reason::new("C01.check_digit"))),
    }
}

/// An organisation's national company ID (شناسهٔ ملی) that fails its check digit. The hub does
/// not flag it (no rule of RULES.md does), but it cannot link the organisation by it: warned
/// at entry only, under R00's id.
pub fn company_id(raw: &str, field: &str) -> Option<Warning> {
    CompanyId::parse(raw)
        .is_err()
        .then(|| warning("R00", field, Reason::new("R00.company_id")))
}

/// C03 or C04 on a mobile number; `repeat_digits` is C04's run of identical digits.
pub fn mobile(raw: &str, field: &str, repeat_digits: usize) -> Option<Warning> {
    match Mobile::parse(raw) {
        Ok(m) if m.is_placeholder(repeat_digits) => {
            Some(warning("C04", field, Reason::new("C04.placeholder")))
        }
        Ok(_) => None,
        Err(_) => Some(warning("C03", field, Reason::new("C03.not_a_mobile"))),
    }
}

/// C06 on a postal code.
pub fn postal_code(raw: &str, field: &str) -> Option<Warning> {
    PostalCode::parse(raw)
        .is_err()
        .then(|| warning("C06", field, Reason::new("C06.not_ten_digits")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18

    #[test]
    fn a_warning_in_json_carries_its_sentences_and_its_reason() {
        let w = &vin("NAPAB81BGSA01234", "repair_order.vin")[0];
        let json = serde_json::to_value(w).expect("json");
        assert_eq!(json["reason_en"], w.reason_en());
        assert_eq!(json["reason_fa"], w.reason_fa());
        assert_eq!(json["reason"]["code"], "V01.not_a_vin");
        let back: Warning = serde_json::from_value(json).expect("read back");
        assert_eq!(&back, w);
        let sentences_only = serde_json::json!({
            "rule_id": "V01", "field": "repair_order.vin",
            "reason_fa": "فارسی", "reason_en": "english"
        });
        let read: Warning = serde_json::from_value(sentences_only).expect("read");
        assert_eq!(
            (read.reason_en(), read.reason_fa()),
            ("english".into(), "فارسی".into())
        );
    }

    fn rules(payload: &Payload) -> Vec<(String, String)> {
        check(payload, NOW, NOW)
            .into_iter()
            .map(|w| (w.rule_id, w.field))
            .collect()
    }

    fn date(year: i32, month: i32, day: i32) -> Option<pb::Date> {
        Some(pb::Date { year, month, day })
    }

    fn delivery(sale: Option<pb::Date>, vin: &str) -> Payload {
        Payload::RetailDelivery(pb::RetailDelivery {
            vin: vin.into(),
            sale_date: sale,
            delivery_date: date(2026, 11, 17),
            sale_category: pb::SaleCategory::Retail as i32,
            parties: vec![pb::DeliveryParty {
                role: 1,
                customer_ref: "C-1".into(),
            }],
            ..Default::default()
        })
    }

    const VIN: &str = "NAAP41FE0RJ000007";

    #[test]
    fn a_clean_record_has_no_warning() {
        let vin = Vin::with_check_digit(VIN).expect("vin").to_string();
        assert!(rules(&delivery(date(2026, 11, 10), &vin)).is_empty());
    }

    #[test]
    fn dates_outside_what_can_be_true_are_named() {
        let vin = Vin::with_check_digit(VIN).expect("vin").to_string();
        let jalali = check(&delivery(date(1403, 5, 12), &vin), NOW, NOW);
        assert_eq!(jalali.len(), 1);
        assert!(jalali[0].reason_en().contains("Solar Hijri"), "{jalali:?}");
        assert!(jalali[0].reason_fa().contains("خورشیدی"));
        assert_eq!(
            rules(&delivery(date(1949, 12, 31), &vin)),
            vec![("R00".into(), "retail_delivery.sale_date".into())]
        );
        assert!(rules(&delivery(date(1950, 1, 1), &vin)).is_empty());
        assert_eq!(
            rules(&delivery(date(2026, 2, 30), &vin)),
            vec![("R00".into(), "retail_delivery.sale_date".into())]
        );
    }

    /// What lies in the future is warned of as the hub will find it: a delivery after the record
    /// was made is S01 (not R00), an event time past T01's default tolerance is T01.
    #[test]
    fn the_future_is_warned_of_under_the_hubs_rules() {
        let vin = Vin::with_check_digit(VIN).expect("vin").to_string();
        let ahead = delivery(date(2026, 11, 10), &vin);
        let Payload::RetailDelivery(mut d) = ahead else {
            unreachable!()
        };
        d.delivery_date = date(2026, 11, 19);
        let ahead = Payload::RetailDelivery(d);
        let s01 = vec![("S01".into(), "retail_delivery.delivery_date".into())];
        assert_eq!(rules(&ahead), s01, "delivered tomorrow, made today");
        assert!(date_problems(&ahead).is_empty(), "not the wire's R00");
        // Imported history made after the delivery: nothing.
        assert!(check(&ahead, NOW, NOW + 2 * 86_400_000).is_empty());
        let lead = |at: i64| {
            Payload::Lead(pb::Lead {
                customer_ref: "C-1".into(),
                contacted_at_ms: at,
                ..Default::default()
            })
        };
        let tolerance = FUTURE_TOLERANCE_MINUTES * 60_000;
        assert!(rules(&lead(NOW + tolerance)).is_empty(), "at the tolerance");
        let late = check(&lead(NOW + tolerance + 60_000), NOW, NOW);
        assert_eq!(
            late.iter()
                .map(|w| (&*w.rule_id, &*w.field))
                .collect::<Vec<_>>(),
            vec![("T01", "lead.contacted_at_ms")]
        );
        assert!(late[0].reason_en().contains("11 minutes"), "{late:?}");
    }

    /// O02 and RO2 on a repair order's own readings and times, with the hub's fields.
    #[test]
    fn a_repair_order_is_checked_for_its_readings_and_its_times() {
        let vin = Vin::with_check_digit(VIN).expect("vin").to_string();
        let ro = |opened: i64, completed: i64, km_in: u32, km_out: u32| {
            Payload::RepairOrder(pb::RepairOrder {
                ro_number: "RO-1".into(),
                vin: vin.clone(),
                opened_at_ms: opened,
                completed_at_ms: completed,
                odometer_in_km: km_in,
                odometer_out_km: km_out,
                pay_type: pb::PayType::Customer as i32,
                ..Default::default()
            })
        };
        let hour = 3_600_000;
        assert!(rules(&ro(NOW - 2 * hour, NOW - hour, 12_000, 12_010)).is_empty());
        assert!(
            rules(&ro(NOW - 2 * hour, 0, 12_000, 0)).is_empty(),
            "still open"
        );
        assert_eq!(
            rules(&ro(NOW - hour, NOW - 2 * hour, 12_000, 11_000)),
            vec![
                ("O02".into(), "repair_order.odometer_out_km".into()),
                ("RO2".into(), "repair_order.completed_at_ms".into()),
            ]
        );
        assert_eq!(
            rules(&ro(NOW - hour, 0, MAX_ODOMETER_KM + 1, 0)),
            vec![("O02".into(), "repair_order.odometer_in_km".into())]
        );
    }

    #[test]
    fn identifiers_and_required_fields_are_checked_with_the_hubs_rules() {
        let person = |id: &str, mobile: &str, postal: &str| {
            Payload::Customer(pb::CustomerUpsert {
                customer_ref: "C-1".into(),
                party_type: pb::PartyType::Person as i32,
                family_name: "احمدی".into(),
                national_id: id.into(),
                mobile: mobile.into(),
                address: Some(pb::Address {
                    postal_code: postal.into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
        };
        assert!(rules(&person("0013542419", "09121593574", "1234567890")).is_empty());
        assert_eq!(
            rules(&person("0013542418", "0212345678", "12345")),
            vec![
                ("C01".into(), "customer.national_id".into()),
                ("C03".into(), "customer.mobile".into()),
                ("C06".into(), "customer.address.postal_code".into()),
            ]
        );
        assert_eq!(
            rules(&person("1111111111", "09121111111", "")),
            vec![
                ("C02".into(), "customer.national_id".into()),
                ("C04".into(), "customer.mobile".into()),
            ]
        );
        let nameless = Payload::Customer(pb::CustomerUpsert {
            customer_ref: "C-1".into(),
            party_type: pb::PartyType::Person as i32,
            ..Default::default()
        });
        assert_eq!(
            rules(&nameless),
            vec![("R00".into(), "customer.family_name".into())]
        );
        let bad_vin = rules(&delivery(date(2026, 11, 10), "NAAP41FE0RJ00000O"));
        assert_eq!(bad_vin, vec![("V01".into(), "retail_delivery.vin".into())]);
    }
}
