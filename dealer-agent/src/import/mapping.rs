//! The mapping file of `dealer-agent import` (TOML): which kind of record a file holds, which
//! column carries the source's record id, creation time and staff code, and which column fills
//! each field of the record (named by the same proto3 JSON paths as the staff screen's forms,
//! [`crate::record_form::spec`]), with enum values given by the DMS's own words.
//!
//! ```toml
//! kind = "repair-order"
//! source_system = "dms:rayan"
//! source_id = "شماره پذیرش"
//! created_at = "زمان ثبت"        # optional: the source's creation time, date and HH:MM
//! staff = "کد پذیرشگر"          # optional: else default_staff
//! dates = "jalali"               # or "gregorian"
//!
//! [fields]
//! roNumber = "شماره پذیرش"
//! vin = "شماره شاسی"
//! openedAtMs = "تاریخ پذیرش"
//! payType = "نوع پرداخت"
//! "jobLines.0.laborOpCode" = "کد اجرت"
//!
//! [values.payType]               # the DMS's words for enum values (the Persian labels of
//! "گارانتی" = "PAY_TYPE_WARRANTY" # the screen are accepted without this)
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use hamgam_proto::RecordKind;
use serde::Deserialize;

use crate::record_form::spec::{self, FormSpec};
use crate::record_form::DateStyle;

/// Why a mapping file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("cannot read the mapping {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the mapping {path} is not valid: {detail}")]
    Syntax { path: String, detail: String },
    #[error("the mapping's kind `{0}` is not one of: customer, retail-delivery, repair-order, lead, complaint, survey, odometer-replacement, vehicle-status")]
    Kind(String),
    #[error("the mapping fills `{path}`, which is not a field of a {kind} record; the fields are: {known}")]
    UnknownField {
        path: String,
        kind: &'static str,
        known: String,
    },
    #[error("the mapping's values for `{0}` are for a field it does not fill, or one without a list of values")]
    UnknownValues(String),
    #[error("the mapping's source_system must be 1 to 64 characters of a-z, 0-9, `:`, `-`, `.` (like `dms:rayan`), not `{0}`")]
    SourceSystem(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingFile {
    kind: String,
    source_system: String,
    source_id: String,
    created_at: Option<String>,
    staff: Option<String>,
    #[serde(default = "default_staff")]
    default_staff: String,
    #[serde(default)]
    dates: DateStyle,
    fields: BTreeMap<String, String>,
    #[serde(default)]
    values: BTreeMap<String, BTreeMap<String, String>>,
}

fn default_staff() -> String {
    "import".into()
}

/// A checked mapping.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub spec: &'static FormSpec,
    pub source_system: String,
    /// The column with the source's record id.
    pub source_id: String,
    /// The column with the source's creation time, if any.
    pub created_at: Option<String>,
    /// The column with the staff code, if any.
    pub staff: Option<String>,
    pub default_staff: String,
    pub dates: DateStyle,
    /// Field path -> column.
    pub fields: BTreeMap<String, String>,
    /// Field path -> (the DMS's word -> the proto's value).
    pub values: BTreeMap<String, BTreeMap<String, String>>,
}

impl Mapping {
    /// Reads and checks the mapping at `path`.
    pub fn load(path: &Path) -> Result<Mapping, MappingError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| MappingError::Read {
            path: shown.clone(),
            source,
        })?;
        Mapping::parse(&text, &shown)
    }

    /// Checks the mapping `text` (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Mapping, MappingError> {
        let file: MappingFile = toml::from_str(text).map_err(|e| MappingError::Syntax {
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        let kind = RecordKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == file.kind)
            .ok_or_else(|| MappingError::Kind(file.kind.clone()))?;
        let spec = spec::by_kind(kind).ok_or_else(|| MappingError::Kind(file.kind.clone()))?;
        let system_ok = !file.source_system.is_empty()
            && file.source_system.len() <= hamgam_proto::limits::MAX_SOURCE_SYSTEM_BYTES
            && file
                .source_system
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ":-.".contains(c));
        if !system_ok {
            return Err(MappingError::SourceSystem(file.source_system));
        }
        for path in file.fields.keys() {
            if field_of(spec, path).is_none() {
                let mut known: Vec<String> =
                    spec.fields.iter().map(|f| f.path.to_owned()).collect();
                if let Some(rows) = spec.rows {
                    known.extend(
                        rows.fields
                            .iter()
                            .map(|f| format!("{}.N.{}", rows.path, f.path)),
                    );
                }
                return Err(MappingError::UnknownField {
                    path: path.clone(),
                    kind: spec.kind.name(),
                    known: known.join(", "),
                });
            }
        }
        for path in file.values.keys() {
            let choice =
                field_of(spec, path).is_some_and(|f| matches!(f.input, spec::Input::Choice(_)));
            if !file.fields.contains_key(path) || !choice {
                return Err(MappingError::UnknownValues(path.clone()));
            }
        }
        Ok(Mapping {
            spec,
            source_system: file.source_system,
            source_id: file.source_id,
            created_at: file.created_at,
            staff: file.staff,
            default_staff: file.default_staff,
            dates: file.dates,
            fields: file.fields,
            values: file.values,
        })
    }
}

/// The form field `path` names: a field of the kind, or `rows.N.field` of its rows.
fn field_of(spec: &FormSpec, path: &str) -> Option<spec::Field> {
    if let Some(field) = spec.fields.iter().find(|f| f.path == path) {
        return Some(*field);
    }
    let rows = spec.rows?;
    let rest = path.strip_prefix(rows.path)?.strip_prefix('.')?;
    let (index, name) = rest.split_once('.')?;
    index.parse::<usize>().ok()?;
    rows.fields.iter().find(|f| f.path == name).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
kind = "repair-order"
source_system = "dms:rayan"
source_id = "شماره پذیرش"
dates = "jalali"
[fields]
roNumber = "شماره پذیرش"
vin = "شاسی"
"jobLines.0.laborOpCode" = "اجرت"
payType = "پرداخت"
[values.payType]
"ضمانت" = "PAY_TYPE_WARRANTY"
"#;

    #[test]
    fn a_mapping_names_real_fields_and_says_which_is_wrong() {
        let mapping = Mapping::parse(GOOD, "m.toml").unwrap();
        assert_eq!(mapping.spec.kind, RecordKind::RepairOrder);
        assert_eq!(mapping.default_staff, "import");
        let typo = GOOD.replace("roNumber", "roNumbr");
        let err = Mapping::parse(&typo, "m.toml").unwrap_err();
        assert!(matches!(err, MappingError::UnknownField { .. }), "{err}");
        assert!(
            err.to_string().contains("roNumber"),
            "lists the fields: {err}"
        );
        let kind = GOOD.replace("repair-order", "invoice");
        assert!(matches!(
            Mapping::parse(&kind, "m").unwrap_err(),
            MappingError::Kind(_)
        ));
        let system = GOOD.replace("dms:rayan", "DMS Rayan");
        assert!(matches!(
            Mapping::parse(&system, "m").unwrap_err(),
            MappingError::SourceSystem(_)
        ));
        let values = GOOD.replace("[values.payType]", "[values.vin]");
        assert!(matches!(
            Mapping::parse(&values, "m").unwrap_err(),
            MappingError::UnknownValues(_)
        ));
    }
}
