//! A record as a form: every kind's fields ([`spec`]) and the conversions between what staff
//! type and the payload's proto3 JSON, both ways. Jalali dates become Gregorian dates or
//! Tehran's midnight, digits of any script become Latin, enum values are chosen by their names
//! or Persian/English labels; a stored record fills its form back for a correction. The staff
//! screen's forms ([`crate::web`]) use it; so does the import, whose mapping names the same
//! paths.

pub mod spec;

use std::collections::BTreeMap;

use hamgam_proto::entry::Warning;
use hamgam_proto::record::v1::Finding;
use hamgam_proto::text::normalize_digits;
use serde_json::Value;

use crate::jalali::JalaliDate;
use crate::lang::Lang;
use spec::{Field, FormSpec, Input};

/// Messages by form field name (`_record` for the record as a whole).
pub(crate) type Messages = BTreeMap<String, Vec<String>>;

/// The form field of a message about the whole record.
pub(crate) const RECORD: &str = "_record";

/// Puts `value` at the dotted `path` of `root`, making the objects on the way.
pub(crate) fn set_path(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_object() {
            *node = Value::Object(Default::default());
        }
        let Some(object) = node.as_object_mut() else {
            return;
        };
        if parts.peek().is_none() {
            object.insert(part.to_owned(), value);
            return;
        }
        node = object
            .entry(part.to_owned())
            .or_insert_with(|| Value::Object(Default::default()));
    }
}

/// The value at the dotted `path` of `root`.
pub(crate) fn get_path<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |node, part| node.get(part))
}

/// The form's field names: `vin`, and `jobLines.0.laborOpCode` for rows.
pub(crate) fn row_name(rows_path: &str, index: usize, field: &Field) -> String {
    format!("{rows_path}.{index}.{}", field.path)
}

/// What a form shows in its fields, by field name.
#[derive(Debug, Default, Clone)]
pub(crate) struct Typed(BTreeMap<String, String>);

impl Typed {
    pub(crate) fn from_fields(fields: &[(String, String)]) -> Self {
        Typed(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), v.trim().to_owned()))
                .collect(),
        )
    }

    /// Sets what field `name` shows.
    pub(crate) fn set(&mut self, name: &str, value: String) {
        self.0.insert(name.to_owned(), value);
    }

    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// The rows of `spec` shown: at least its count, and as many as were typed or stored.
    pub(crate) fn row_count(&self, spec: &FormSpec) -> usize {
        let Some(rows) = spec.rows else { return 0 };
        let prefix = format!("{}.", rows.path);
        let typed = self
            .0
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .map(|i| i + 1)
            .max()
            .unwrap_or(0);
        typed.max(rows.count)
    }
}

/// How dates are written in what is read: Jalali (the staff screen, and most DMS exports in
/// Iran: `1405/08/27`) or Gregorian (`2026-11-18`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DateStyle {
    #[default]
    Jalali,
    Gregorian,
}

impl DateStyle {
    /// The day `raw` names.
    pub fn parse(self, raw: &str) -> Result<JalaliDate, String> {
        match self {
            DateStyle::Jalali => JalaliDate::parse(raw).map_err(|e| e.to_string()),
            DateStyle::Gregorian => {
                let latin = normalize_digits(raw.trim());
                let parts: Vec<&str> = latin.split(['-', '/', '.']).collect();
                let number = |p: &str| p.parse::<i32>().ok();
                match parts.as_slice() {
                    [y, m, d] if y.len() == 4 => {
                        match (
                            number(y),
                            number(m).and_then(|m| u8::try_from(m).ok()),
                            number(d).and_then(|d| u8::try_from(d).ok()),
                        ) {
                            (Some(y), Some(m), Some(d)) => {
                                JalaliDate::from_gregorian(y, m, d).map_err(|e| e.to_string())
                            }
                            _ => Err(format!("`{raw}` is not a Gregorian date like 2026-11-18")),
                        }
                    }
                    _ => Err(format!("`{raw}` is not a Gregorian date like 2026-11-18")),
                }
            }
        }
    }
}

/// Reads one typed value with dates in `dates`: `None` when the field is empty.
pub(crate) fn read_value_dated(
    input: Input,
    raw: &str,
    lang: Lang,
    dates: DateStyle,
) -> Result<Option<Value>, String> {
    if raw.is_empty() {
        return Ok(None);
    }
    let digits = || normalize_digits(raw);
    let value = match input {
        Input::Text => Value::from(raw),
        Input::Code => Value::from(digits()),
        Input::Vin => Value::from(digits().to_uppercase()),
        Input::Whole => {
            let cleaned = digits().replace([',', '٬', ' '], "");
            let number = cleaned.parse::<u32>().map_err(|_| {
                lang.pick("باید عدد صحیح باشد", "must be a whole number")
                    .to_owned()
            })?;
            Value::from(number)
        }
        Input::Decimal => {
            let cleaned = digits().replace('٫', ".");
            match cleaned.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Value::from(x),
                _ => {
                    return Err(lang
                        .pick("باید عدد باشد (مانند ۱٫۵)", "must be a number (like 1.5)")
                        .to_owned())
                }
            }
        }
        Input::Day => {
            let ms = dates.parse(raw)?.start_ms().map_err(|e| e.to_string())?;
            Value::from(ms.to_string())
        }
        Input::Date => {
            let (year, month, day) = dates.parse(raw)?.to_gregorian();
            serde_json::json!({ "year": year, "month": month, "day": day })
        }
        Input::Choice(values) => match values.iter().find(|(name, fa, en)| {
            *name == raw
                || hamgam_proto::text::normalize(fa) == hamgam_proto::text::normalize(raw)
                || en.eq_ignore_ascii_case(raw)
        }) {
            Some((name, ..)) => Value::from(*name),
            None => {
                return Err(lang
                    .pick(
                        "یکی از گزینه‌های فهرست را برگزینید",
                        "choose one from the list",
                    )
                    .to_owned())
            }
        },
        Input::Check => Value::Bool(matches!(raw, "on" | "true" | "1")),
    };
    Ok(Some(value))
}

/// The payload's proto3 JSON from what was typed on `spec`'s form, or what cannot be read, by
/// field. `staff_id` fills the form's staff field when the record does not name another.
pub(crate) fn payload_json(
    spec: &FormSpec,
    typed: &Typed,
    staff_id: &str,
    lang: Lang,
) -> Result<Value, Messages> {
    payload_json_dated(spec, typed, staff_id, lang, DateStyle::Jalali)
}

/// [`payload_json`] with dates written in `dates`.
pub(crate) fn payload_json_dated(
    spec: &FormSpec,
    typed: &Typed,
    staff_id: &str,
    lang: Lang,
    dates: DateStyle,
) -> Result<Value, Messages> {
    let mut json = Value::Object(Default::default());
    let mut problems = Messages::new();
    for field in spec.fields {
        match read_value_dated(field.input, typed.get(field.path), lang, dates) {
            Ok(Some(value)) => set_path(&mut json, field.path, value),
            Ok(None) => {}
            Err(why) => note(&mut problems, field.path, why),
        }
    }
    if let Some(rows) = spec.rows {
        let mut kept = Vec::new();
        for index in 0..typed.row_count(spec) {
            let mut row = Value::Object(Default::default());
            let mut filled = false;
            for field in rows.fields {
                let name = row_name(rows.path, index, field);
                match read_value_dated(field.input, typed.get(&name), lang, dates) {
                    Ok(Some(value)) => {
                        set_path(&mut row, field.path, value);
                        filled = true;
                    }
                    Ok(None) => {}
                    Err(why) => note(&mut problems, &name, why),
                }
            }
            if filled {
                if let Some(number) = rows.numbered {
                    row[number] = Value::from(kept.len() + 1);
                }
                kept.push(row);
            }
        }
        if !kept.is_empty() {
            json[rows.path] = Value::Array(kept);
        }
    }
    if let Some(staff_field) = spec.staff_field {
        if json.get(staff_field).is_none() {
            json[staff_field] = Value::from(staff_id);
        }
    }
    if problems.is_empty() {
        Ok(json)
    } else {
        Err(problems)
    }
}

/// Shows a stored value in a form field, in `lang`'s digits.
pub(crate) fn show_value(input: Input, value: &Value, lang: Lang) -> String {
    let number = |v: &Value| match v {
        Value::String(s) => s.parse::<i64>().ok(),
        v => v.as_i64(),
    };
    match input {
        Input::Day => number(value)
            .and_then(|ms| JalaliDate::at_ms(ms).ok())
            .map(|d| lang.digits(&d.to_string()))
            .unwrap_or_default(),
        Input::Date => {
            let part = |name: &str| value.get(name).and_then(Value::as_i64);
            match (part("year"), part("month"), part("day")) {
                (Some(y), Some(m), Some(d)) => i32::try_from(y)
                    .ok()
                    .zip(u8::try_from(m).ok().zip(u8::try_from(d).ok()))
                    .and_then(|(y, (m, d))| JalaliDate::from_gregorian(y, m, d).ok())
                    .map(|d| lang.digits(&d.to_string()))
                    .unwrap_or_default(),
                _ => String::new(),
            }
        }
        Input::Whole | Input::Decimal => match value {
            Value::Number(n) => lang.digits(&n.to_string().replace('.', lang.pick("٫", "."))),
            Value::String(s) => lang.digits(s),
            _ => String::new(),
        },
        Input::Check => match value {
            Value::Bool(true) => "on".into(),
            _ => String::new(),
        },
        Input::Text | Input::Code | Input::Vin | Input::Choice(_) => match value {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        },
    }
}

/// The form filled from a stored payload (proto3 JSON): what a correction starts from.
pub(crate) fn typed_from_json(spec: &FormSpec, json: &Value, lang: Lang) -> Typed {
    let mut typed = BTreeMap::new();
    for field in spec.fields {
        if let Some(value) = get_path(json, field.path) {
            typed.insert(field.path.to_owned(), show_value(field.input, value, lang));
        }
    }
    if let Some(rows) = spec.rows {
        let stored = json.get(rows.path).and_then(Value::as_array);
        for (index, row) in stored.into_iter().flatten().enumerate() {
            for field in rows.fields {
                if let Some(value) = get_path(row, field.path) {
                    typed.insert(
                        row_name(rows.path, index, field),
                        show_value(field.input, value, lang),
                    );
                }
            }
        }
    }
    Typed(typed)
}

pub(crate) fn note(messages: &mut Messages, name: &str, message: impl Into<String>) {
    messages
        .entry(name.to_owned())
        .or_default()
        .push(message.into());
}

/// The form field a warning or finding names (`repair_order.odometer_in_km` → `odometerInKm`,
/// `retail_delivery.parties[1].customer_ref` → `parties.1.customerRef`), or [`RECORD`].
pub(crate) fn form_field(spec: &FormSpec, named: &str) -> String {
    let kind_prefixes = ["correction", hamgam_proto::entry::kind_prefix_of(spec.kind)];
    let mut parts: Vec<&str> = named.split('.').collect();
    while parts.first().is_some_and(|p| kind_prefixes.contains(p)) {
        parts.remove(0);
    }
    let camel: Vec<String> = parts
        .iter()
        .flat_map(|part| {
            let (name, index) = match part.split_once('[') {
                Some((name, rest)) => (name, Some(rest.trim_end_matches(']'))),
                None => (*part, None),
            };
            let out = crate::capture::camel_case(name, '_');
            std::iter::once(out).chain(index.map(str::to_owned))
        })
        .collect();
    let name = camel.join(".");
    let known = spec.fields.iter().any(|f| f.path == name)
        || spec.rows.is_some_and(|rows| {
            name.strip_prefix(rows.path)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.split_once('.'))
                .is_some_and(|(_, field)| rows.fields.iter().any(|f| f.path == field))
        });
    if known {
        name
    } else {
        RECORD.to_owned()
    }
}

/// The entry checks' warnings by form field, in the page's language.
pub(crate) fn warnings_by_field(spec: &FormSpec, warnings: &[Warning], lang: Lang) -> Messages {
    let mut out = Messages::new();
    for w in warnings {
        let (fa, en) = (w.reason_fa(), w.reason_en());
        let reason = lang.pick(&fa, &en);
        note(
            &mut out,
            &form_field(spec, &w.field),
            format!("{}: {reason}", w.rule_id),
        );
    }
    out
}

/// The hub's findings on a record by form field, in the page's language.
pub(crate) fn findings_by_field(spec: &FormSpec, findings: &[Finding], lang: Lang) -> Messages {
    let mut out = Messages::new();
    for f in findings {
        let reason = lang.pick(&f.reason_fa, &f.reason_en);
        note(
            &mut out,
            &form_field(spec, &f.field),
            format!("{}: {reason}", f.rule_id),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture;
    use hamgam_proto::record::v1::record::Payload;
    use hamgam_proto::record::v1::Record;
    use hamgam_proto::RecordKind;

    fn typed(pairs: &[(&str, &str)]) -> Typed {
        let fields: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Typed::from_fields(&fields)
    }

    fn repair_order() -> &'static FormSpec {
        spec::by_slug("repair-order").unwrap()
    }

    #[test]
    fn a_form_with_persian_digits_and_a_jalali_date_makes_the_repair_order() {
        let json = payload_json(
            repair_order(),
            &typed(&[
                ("roNumber", "RO-1"),
                ("vin", "naan01ce5kk12345۶"),
                ("odometerInKm", "۴۲٬۰۰۰"),
                ("openedAtMs", "۱۴۰۵/۰۸/۲۷"),
                ("payType", "PAY_TYPE_WARRANTY"),
                ("jobLines.0.laborOpCode", "EN-100"),
                ("jobLines.0.actualHours", "۱٫۵"),
                ("jobLines.2.complaint", "صدای ترمز"),
            ]),
            "s-105",
            Lang::Fa,
        )
        .unwrap();
        let Payload::RepairOrder(order) =
            capture::payload_from_json(RecordKind::RepairOrder, json).unwrap()
        else {
            panic!("not a repair order")
        };
        assert_eq!(order.vin, "NAAN01CE5KK123456");
        assert_eq!(order.odometer_in_km, 42_000);
        // 27 Aban 1405 = 18 November 2026; Tehran midnight is 20:30 UTC the day before.
        assert_eq!(order.opened_at_ms, 1_794_947_400_000);
        assert_eq!(
            order.pay_type(),
            hamgam_proto::record::v1::PayType::Warranty
        );
        assert_eq!(order.advisor_id, "s-105", "the adviser is who is logged in");
        // The empty second row is dropped and the lines are numbered as kept.
        let lines: Vec<(u32, &str, f64)> = order
            .job_lines
            .iter()
            .map(|l| (l.line_number, l.complaint.as_str(), l.actual_hours))
            .collect();
        assert_eq!(lines, [(1, "", 1.5), (2, "صدای ترمز", 0.0)]);
    }

    #[test]
    fn what_cannot_be_read_is_named_by_field() {
        let problems = payload_json(
            repair_order(),
            &typed(&[
                ("openedAtMs", "2026/11/18"),
                ("odometerInKm", "many"),
                ("payType", "x"),
                ("jobLines.1.laborOpCode", "A"),
                ("jobLines.1.actualHours", "?"),
            ]),
            "s-1",
            Lang::En,
        )
        .unwrap_err();
        let names: Vec<&str> = problems.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "jobLines.1.actualHours",
                "odometerInKm",
                "openedAtMs",
                "payType"
            ]
        );
        assert!(
            problems["openedAtMs"][0].contains("not a Gregorian"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_stored_record_fills_its_form_back_as_typed() {
        let spec = spec::by_slug("retail-delivery").unwrap();
        let typed_in = typed(&[
            ("dealRef", "DL-9"),
            ("vin", "NAAN01CE5KK123456"),
            ("saleDate", "۱۴۰۳/۱۲/۳۰"),
            ("deliveryDate", "۱۴۰۴/۰۱/۰۱"),
            ("saleCategory", "SALE_CATEGORY_FLEET"),
            ("parties.0.role", "PARTY_ROLE_FLEET_ACCOUNT"),
            ("parties.0.customerRef", "C-۱"),
            ("parties.1.role", "PARTY_ROLE_PRIMARY_DRIVER"),
            ("parties.1.customerRef", "C-2"),
        ]);
        let json = payload_json(spec, &typed_in, "s-1", Lang::Fa).unwrap();
        // 30 Esfand 1403 (a leap year) = 20 March 2025; 1 Farvardin 1404 = 21 March 2025.
        assert_eq!(
            json["saleDate"],
            serde_json::json!({"year": 2025, "month": 3, "day": 20})
        );
        let payload = capture::payload_from_json(spec.kind, json).unwrap();
        let record = Record {
            seq: 4,
            payload: Some(payload),
            ..Default::default()
        };
        let (_, stored) = capture::payload_json_of(&record).unwrap();
        let back = typed_from_json(spec, &stored, Lang::Fa);
        for (name, value) in [
            ("saleDate", "۱۴۰۳/۱۲/۳۰"),
            ("deliveryDate", "۱۴۰۴/۰۱/۰۱"),
            ("parties.0.customerRef", "C-1"),
            ("parties.1.role", "PARTY_ROLE_PRIMARY_DRIVER"),
            ("saleCategory", "SALE_CATEGORY_FLEET"),
        ] {
            assert_eq!(back.get(name), value, "{name}");
        }
    }

    #[test]
    fn warnings_and_findings_go_next_to_the_field_they_name() {
        let ro = repair_order();
        assert_eq!(
            form_field(ro, "repair_order.odometer_in_km"),
            "odometerInKm"
        );
        assert_eq!(form_field(ro, "correction.repair_order.vin"), "vin");
        assert_eq!(
            form_field(ro, "repair_order.job_lines[1].actual_hours"),
            "jobLines.1.actualHours"
        );
        assert_eq!(form_field(ro, "repair_order.job_lines"), RECORD);
        let customer = spec::by_slug("customer").unwrap();
        assert_eq!(
            form_field(customer, "customer.address.postal_code"),
            "address.postalCode"
        );
        assert_eq!(form_field(customer, "customer.national_id"), "nationalId");
    }
}
