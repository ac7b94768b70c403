//! Size bounds of a record, shared by the agent (which refuses a record over a bound at
//! capture, naming the field) and the hub (which rejects one with R00): no field, list or
//! record can grow past what the sync stream carries, or what HQ would want back from a search.
//!
//! | bound | limit |
//! |---|---|
//! | a text field (names, refs, codes, IDs, mobile, e-mail, staff id) | [`MAX_TEXT_BYTES`] |
//! | a free-text field ([`FREE_TEXT_FIELDS`]: complaint, cause, correction, comments, address lines) | [`MAX_FREE_TEXT_BYTES`] |
//! | the entries of one list (job lines, parts, parties) | [`MAX_LIST_ENTRIES`] |
//! | one record, encoded | [`MAX_RECORD_BYTES`] |
//! | one batch of records on the sync stream, encoded | [`MAX_BATCH_BYTES`] |
//!
//! Sizes are UTF-8 bytes (a Persian letter is two). Fields are named as the hub's findings name
//! them: the record kind, then the path in snake_case (`customer.given_name`,
//! `repair_order.job_lines[2].complaint`).

use prost::Message;
use serde_json::Value;

use crate::record::v1 as pb;
use crate::record::v1::record::Payload;

/// A text field: a name, a ref, a code, an ID, a mobile or e-mail.
pub const MAX_TEXT_BYTES: usize = 256;
/// A free-text field (see [`FREE_TEXT_FIELDS`]).
pub const MAX_FREE_TEXT_BYTES: usize = 4 * 1024;
/// Entries of one repeated field.
pub const MAX_LIST_ENTRIES: usize = 100;
/// One record, protobuf-encoded.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// One batch on the sync stream, protobuf-encoded: well under the hub's message limit (16 MiB
/// by default), so a batch of records within bounds always fits.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The last part of a field's name (snake_case) that makes it free text.
pub const FREE_TEXT_FIELDS: &[&str] = &[
    "complaint",
    "cause",
    "correction",
    "free_text",
    "reason",
    "description",
    "resolution",
    "note",
    "comment",
    "summary",
    "line1",
    "line2",
    "street",
];

/// One bound a record breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SizeViolation {
    /// The field, as the hub names it (empty: the record as a whole).
    pub field: String,
    /// What it measures: bytes, or entries for a list.
    pub size: usize,
    pub limit: usize,
    pub unit: SizeUnit,
}

/// What a bound counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    Bytes,
    Entries,
}

impl SizeViolation {
    /// What to tell staff, in English.
    pub fn reason_en(&self) -> String {
        let what = if self.field.is_empty() {
            "the record".to_owned()
        } else {
            self.field.clone()
        };
        match self.unit {
            SizeUnit::Bytes => format!(
                "{what} is {} bytes, over the limit of {} bytes; shorten it",
                self.size, self.limit
            ),
            SizeUnit::Entries => format!(
                "{what} has {} entries, over the limit of {}; split the record",
                self.size, self.limit
            ),
        }
    }

    /// What to tell staff, in Persian.
    pub fn reason_fa(&self) -> String {
        let what = if self.field.is_empty() {
            "این رکورد".to_owned()
        } else {
            format!("فیلد {}", self.field)
        };
        match self.unit {
            SizeUnit::Bytes => format!(
                "{what} {} بایت است، بیش از حد مجاز {} بایت؛ آن را کوتاه کنید",
                self.size, self.limit
            ),
            SizeUnit::Entries => format!(
                "{what} {} مورد دارد، بیش از حد مجاز {}؛ رکورد را تقسیم کنید",
                self.size, self.limit
            ),
        }
    }
}

impl std::fmt::Display for SizeViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason_en())
    }
}

/// The longest source-system name of an imported record's origin.
pub const MAX_SOURCE_SYSTEM_BYTES: usize = 64;
/// The longest source record id of an imported record's origin.
pub const MAX_SOURCE_ID_BYTES: usize = 128;

/// Every bound `record` breaks: its header's text fields (the origin's included), its payload's
/// fields and lists, and its encoded size.
pub fn check_record(record: &pb::Record) -> Vec<SizeViolation> {
    let mut out = Vec::new();
    for (field, value) in [
        ("record_id", &record.record_id),
        ("dealer_id", &record.dealer_id),
        ("staff_id", &record.staff_id),
    ] {
        text(field, value, MAX_TEXT_BYTES, &mut out);
    }
    if let Some(origin) = &record.origin {
        text(
            "origin.source_system",
            &origin.source_system,
            MAX_SOURCE_SYSTEM_BYTES,
            &mut out,
        );
        text(
            "origin.source_record_id",
            &origin.source_record_id,
            MAX_SOURCE_ID_BYTES,
            &mut out,
        );
    }
    if let Some(payload) = &record.payload {
        out.extend(check_payload(payload));
    }
    let size = record.encoded_len();
    if size > MAX_RECORD_BYTES {
        out.push(SizeViolation {
            field: String::new(),
            size,
            limit: MAX_RECORD_BYTES,
            unit: SizeUnit::Bytes,
        });
    }
    out
}

/// Every bound `payload` breaks (its fields and lists; [`check_record`] adds the whole).
pub fn check_payload(payload: &Payload) -> Vec<SizeViolation> {
    let wrapped = pb::Record {
        payload: Some(payload.clone()),
        ..Default::default()
    };
    let mut out = Vec::new();
    // The canonical JSON form names every field the way staff and HQ see it.
    if let Ok(Value::Object(map)) = serde_json::to_value(&wrapped) {
        if let Some((kind, body)) = map.into_iter().find(|(k, _)| {
            !matches!(
                k.as_str(),
                "recordId"
                    | "dealerId"
                    | "seq"
                    | "recordedAtMs"
                    | "hlc"
                    | "staffId"
                    | "schemaVersion"
            )
        }) {
            walk(&snake(&kind), &body, &mut out);
        }
    }
    out
}

fn walk(path: &str, value: &Value, out: &mut Vec<SizeViolation>) {
    match value {
        Value::String(s) => {
            let last = path.rsplit('.').next().unwrap_or(path);
            let last = last.split('[').next().unwrap_or(last);
            let limit = if FREE_TEXT_FIELDS.contains(&last) {
                MAX_FREE_TEXT_BYTES
            } else {
                MAX_TEXT_BYTES
            };
            text(path, s, limit, out);
        }
        Value::Array(items) => {
            if items.len() > MAX_LIST_ENTRIES {
                out.push(SizeViolation {
                    field: path.to_owned(),
                    size: items.len(),
                    limit: MAX_LIST_ENTRIES,
                    unit: SizeUnit::Entries,
                });
            }
            for (i, item) in items.iter().enumerate() {
                walk(&format!("{path}[{i}]"), item, out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                walk(&format!("{path}.{}", snake(key)), item, out);
            }
        }
        _ => {}
    }
}

fn text(field: &str, value: &str, limit: usize, out: &mut Vec<SizeViolation>) {
    if value.len() > limit {
        out.push(SizeViolation {
            field: field.to_owned(),
            size: value.len(),
            limit,
            unit: SizeUnit::Bytes,
        });
    }
}

/// `givenName` -> `given_name`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(given: String) -> Payload {
        Payload::Customer(pb::CustomerUpsert {
            customer_ref: "C-1".into(),
            given_name: given,
            ..Default::default()
        })
    }

    #[test]
    fn a_field_over_its_bound_is_named_with_its_size() {
        assert!(check_payload(&customer("مریم".into())).is_empty());
        let found = check_payload(&customer("م".repeat(200)));
        assert_eq!(
            found,
            vec![SizeViolation {
                field: "customer.given_name".into(),
                size: 400,
                limit: MAX_TEXT_BYTES,
                unit: SizeUnit::Bytes,
            }]
        );
        assert!(found[0]
            .reason_en()
            .contains("customer.given_name is 400 bytes"));
        assert!(found[0].reason_fa().contains("۴۰۰") || found[0].reason_fa().contains("400"));
    }

    #[test]
    fn free_text_lists_and_the_whole_record_have_their_own_bounds() {
        let line = |complaint: String| pb::JobLine {
            complaint,
            ..Default::default()
        };
        let ro = |lines: Vec<pb::JobLine>| {
            Payload::RepairOrder(pb::RepairOrder {
                ro_number: "RO-1".into(),
                job_lines: lines,
                ..Default::default()
            })
        };
        // 1,000 bytes of complaint text is fine; it would not be as a name.
        assert!(check_payload(&ro(vec![line("x".repeat(1_000))])).is_empty());
        let long = check_payload(&ro(vec![line("x".repeat(5_000))]));
        assert_eq!(long.len(), 1);
        assert_eq!(long[0].field, "repair_order.job_lines[0].complaint");
        let many = check_payload(&ro((0..101).map(|_| line(String::new())).collect()));
        assert_eq!(many[0].field, "repair_order.job_lines");
        assert_eq!(many[0].unit, SizeUnit::Entries);
        // 30 job lines of 3 KiB: each within bounds, the record is not.
        let record = pb::Record {
            staff_id: "S-1".into(),
            payload: Some(ro((0..30).map(|_| line("x".repeat(3_000))).collect())),
            ..Default::default()
        };
        let whole = check_record(&record);
        assert_eq!(whole.len(), 1, "{whole:?}");
        assert!(whole[0].field.is_empty());
        assert!(whole[0].reason_en().starts_with("the record is"));
    }

    #[test]
    fn header_fields_are_bounded_too() {
        let record = pb::Record {
            staff_id: "S".repeat(300),
            payload: Some(customer("a".into())),
            ..Default::default()
        };
        assert_eq!(check_record(&record)[0].field, "staff_id");
    }
}
