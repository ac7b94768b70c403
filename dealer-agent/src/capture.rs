//! Building a record's payload from what staff or scripts give the CLI: a JSON document in the
//! canonical proto3 JSON form of the payload (`{"customerRef": "C-1", "partyType":
//! "PARTY_TYPE_PERSON", ...}`), or `--field name=value` pairs that make the same document, so
//! every kind of record can be captured the same way.
//!
//! Conveniences for `--field` values: `true`/`false` are booleans, a value starting with `{` or
//! `[` is JSON, `YYYY-MM-DD` is a date, `now` on a `...AtMs` field is the current time, and a
//! dotted name (`address.postalCode`) fills a nested message.

use hamgam_proto::entry::Warning;
use hamgam_proto::record::v1 as pb;
use hamgam_proto::record::v1::record::Payload;
use hamgam_proto::RecordKind;
use serde_json::{Map, Value};

use crate::store::{AgentStore, Saved, StoreError};

/// Saves `payload` made by `staff_id` with the entry checks the hub also runs: what `record`,
/// the local API and the web screen all do. The warnings do not stop the save (staff may be
/// entering what is on paper); they say what to correct. Blocking.
pub fn save_checked(
    store: &AgentStore,
    staff_id: &str,
    payload: Payload,
) -> Result<(Saved, Vec<Warning>), StoreError> {
    let now = store.now_ms();
    let warnings = hamgam_proto::entry::check(&payload, now, now);
    let saved = store.capture(staff_id, payload)?;
    Ok((saved, warnings))
}

/// Why the input does not make a payload.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("--field `{0}` is not of the form name=value")]
    FieldSyntax(String),
    #[error("--field `{name}` is given twice or conflicts with another field")]
    FieldConflict { name: String },
    #[error("the {kind} payload is not valid: {detail}")]
    Payload { kind: RecordKind, detail: String },
}

/// Makes a JSON object from `name=value` pairs.
pub fn json_from_fields(fields: &[String], now_ms: i64) -> Result<Value, CaptureError> {
    let mut root = Map::new();
    for field in fields {
        let (name, raw) = field
            .split_once('=')
            .filter(|(n, _)| !n.is_empty())
            .ok_or_else(|| CaptureError::FieldSyntax(field.clone()))?;
        let value = field_value(name, raw, now_ms);
        let mut parts: Vec<&str> = name.split('.').collect();
        let last = parts.pop().unwrap_or(name);
        let mut node = &mut root;
        for part in parts {
            let entry = node
                .entry(part.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            node = entry
                .as_object_mut()
                .ok_or_else(|| CaptureError::FieldConflict {
                    name: name.to_owned(),
                })?;
        }
        if node.insert(last.to_owned(), value).is_some() {
            return Err(CaptureError::FieldConflict {
                name: name.to_owned(),
            });
        }
    }
    Ok(Value::Object(root))
}

fn field_value(name: &str, raw: &str, now_ms: i64) -> Value {
    if raw == "true" || raw == "false" {
        return Value::Bool(raw == "true");
    }
    if raw.starts_with('{') || raw.starts_with('[') {
        if let Ok(v) = serde_json::from_str(raw) {
            return v;
        }
    }
    if raw == "now" && name.ends_with("AtMs") {
        return Value::String(now_ms.to_string());
    }
    if let Some(date) = parse_date(raw) {
        return date;
    }
    Value::String(raw.to_owned())
}

fn parse_date(raw: &str) -> Option<Value> {
    let mut parts = raw.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i32, i32, i32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    Some(serde_json::json!({ "year": y, "month": m, "day": d }))
}

/// A kind's payload field name in proto3 JSON (`retailDelivery`).
pub fn kind_json_name(kind: RecordKind) -> String {
    camel_case(kind.name(), '-')
}

/// `name` in proto3 JSON's lower camel case, words split at `separator`
/// (`odometer_in_km` -> `odometerInKm`).
pub fn camel_case(name: &str, separator: char) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == separator {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A stored record's payload as proto3 JSON, with its kind: what a correction starts from.
/// A correction is not itself corrected (its original is).
pub fn payload_json_of(record: &pb::Record) -> Result<(RecordKind, Value), CorrectionError> {
    let kind = record
        .payload
        .as_ref()
        .map(RecordKind::of)
        .ok_or(CorrectionError::NoPayload { seq: record.seq })?;
    if kind == RecordKind::Correction {
        return Err(CorrectionError::OfACorrection { seq: record.seq });
    }
    let json = serde_json::to_value(record).map_err(|e| CorrectionError::Unreadable {
        seq: record.seq,
        detail: e.to_string(),
    })?;
    let payload = json
        .get(kind_json_name(kind))
        .cloned()
        .ok_or(CorrectionError::NoPayload { seq: record.seq })?;
    Ok((kind, payload))
}

/// The correction of `target` as proto3 JSON: `amended` (its payload as it should have been,
/// in proto3 JSON) replaces it, or, with `None`, the record is retracted. Either needs a reason.
pub fn correction_document(
    target: &pb::Record,
    reason: &str,
    amended: Option<Value>,
) -> Result<Value, CorrectionError> {
    let (kind, _) = payload_json_of(target)?;
    if reason.trim().is_empty() {
        return Err(CorrectionError::NoReason);
    }
    let mut document = serde_json::json!({
        "targetRecordId": target.record_id,
        "reason": reason.trim(),
        "retract": amended.is_none(),
    });
    if let Some(amended) = amended {
        document[kind_json_name(kind)] = amended;
    }
    Ok(document)
}

/// Why a record cannot be corrected as asked.
#[derive(Debug, thiserror::Error)]
pub enum CorrectionError {
    #[error("seq {seq} has no payload to correct")]
    NoPayload { seq: u64 },
    #[error("seq {seq} is itself a correction; correct the original record")]
    OfACorrection { seq: u64 },
    #[error("seq {seq} cannot be read as JSON: {detail}")]
    Unreadable { seq: u64, detail: String },
    #[error("a correction needs a reason: say why the record is changed or withdrawn")]
    NoReason,
}

/// Parses a payload of `kind` from its canonical JSON.
pub fn payload_from_json(kind: RecordKind, json: Value) -> Result<Payload, CaptureError> {
    let err = |e: serde_json::Error| CaptureError::Payload {
        kind,
        detail: e.to_string(),
    };
    Ok(match kind {
        RecordKind::Customer => {
            Payload::Customer(serde_json::from_value::<pb::CustomerUpsert>(json).map_err(err)?)
        }
        RecordKind::RetailDelivery => {
            Payload::RetailDelivery(serde_json::from_value(json).map_err(err)?)
        }
        RecordKind::RepairOrder => Payload::RepairOrder(serde_json::from_value(json).map_err(err)?),
        RecordKind::Lead => Payload::Lead(serde_json::from_value(json).map_err(err)?),
        RecordKind::Complaint => Payload::Complaint(serde_json::from_value(json).map_err(err)?),
        RecordKind::Survey => Payload::Survey(serde_json::from_value(json).map_err(err)?),
        RecordKind::OdometerReplacement => {
            Payload::OdometerReplacement(serde_json::from_value(json).map_err(err)?)
        }
        RecordKind::VehicleStatus => {
            Payload::VehicleStatus(serde_json::from_value(json).map_err(err)?)
        }
        RecordKind::Correction => Payload::Correction(serde_json::from_value(json).map_err(err)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_make_a_repair_order_with_nested_and_typed_values() {
        let fields: Vec<String> = [
            "roNumber=RO-77",
            "vin=NAAN01CE5KK123456",
            "payType=PAY_TYPE_WARRANTY",
            "openedAtMs=now",
            "odometerInKm=42000",
            r#"jobLines=[{"laborOpCode":"EN-100","actualHours":1.5}]"#,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let json = json_from_fields(&fields, 1_700_000_000_000).unwrap();
        let Payload::RepairOrder(ro) = payload_from_json(RecordKind::RepairOrder, json).unwrap()
        else {
            panic!("not a repair order")
        };
        assert_eq!(ro.ro_number, "RO-77");
        assert_eq!(ro.pay_type(), pb::PayType::Warranty);
        assert_eq!(ro.opened_at_ms, 1_700_000_000_000);
        assert_eq!(ro.odometer_in_km, 42_000);
        assert_eq!(ro.job_lines[0].labor_op_code, "EN-100");
    }

    #[test]
    fn dates_and_nested_fields_fill_a_delivery_and_a_customer() {
        let json =
            json_from_fields(&["saleDate=2026-03-01".into(), "modelYear=2026".into()], 0).unwrap();
        let Payload::RetailDelivery(d) =
            payload_from_json(RecordKind::RetailDelivery, json).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            d.sale_date,
            Some(pb::Date {
                year: 2026,
                month: 3,
                day: 1
            })
        );
        let json = json_from_fields(
            &[
                "address.postalCode=1234567890".into(),
                "mobile=09121234567".into(),
            ],
            0,
        )
        .unwrap();
        let Payload::Customer(c) = payload_from_json(RecordKind::Customer, json).unwrap() else {
            panic!()
        };
        assert_eq!(c.address.unwrap().postal_code, "1234567890");
        assert_eq!(c.mobile, "09121234567");
    }

    #[test]
    fn bad_input_names_the_problem() {
        assert!(matches!(
            json_from_fields(&["vin".into()], 0),
            Err(CaptureError::FieldSyntax(_))
        ));
        assert!(matches!(
            json_from_fields(&["vin=A".into(), "vin=B".into()], 0),
            Err(CaptureError::FieldConflict { .. })
        ));
        let err = payload_from_json(
            RecordKind::Customer,
            serde_json::json!({"partyType": "person"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("PARTY_TYPE_PERSON"), "{err}");
        let err = payload_from_json(RecordKind::Lead, serde_json::json!({"customerReff": "C"}))
            .unwrap_err();
        assert!(err.to_string().contains("customerReff"), "{err}");
    }
}
