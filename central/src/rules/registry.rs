//! HQ's dealer registry: what the hub knows about each dealership beyond its certificate: its
//! name, its company national ID and its staff (national IDs and mobiles). Rules S03 (a sale
//! to the dealer itself or its staff), C05 (a customer carrying a staff member's mobile or
//! national ID) and Q01 (a survey answered from a staff mobile) read it.
//!
//! Loaded from a JSON file (`registry = "..."` in the hub config) in the format of
//! `hamgam_proto::registry`, the one `dealer-agent simulate --registry` writes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use hamgam_proto::values::{CompanyId, Mobile, NationalId};

pub use hamgam_proto::registry::{DealerProfile, StaffMember};

/// A dealership's identifiers, normalised for matching.
#[derive(Debug, Clone, Default)]
pub struct KnownDealer {
    pub name: String,
    /// HQ's sales region (the registry's `region`, else its `city`).
    pub region: String,
    pub company_id: Option<String>,
    pub staff_national_ids: BTreeSet<String>,
    /// E.164.
    pub staff_mobiles: BTreeSet<String>,
    /// Why HQ suspended it, if it did.
    pub suspended: Option<String>,
}

/// The registry, by dealer id.
#[derive(Debug, Clone, Default)]
pub struct DealerRegistry {
    dealers: HashMap<String, KnownDealer>,
}

/// Why the registry file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read the dealer registry {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the dealer registry {path} is not a JSON array of dealer profiles: {detail}")]
    Format { path: String, detail: String },
}

/// A staff mobile in any form, the ten national digits included.
fn staff_mobile(raw: &str) -> Option<Mobile> {
    Mobile::parse(raw)
        .or_else(|_| Mobile::parse(&format!("0{raw}")))
        .ok()
}

impl DealerRegistry {
    /// A registry of these profiles. Unparseable IDs are kept out (they could match nothing).
    pub fn new(profiles: &[DealerProfile]) -> Self {
        let dealers = profiles
            .iter()
            .map(|p| {
                let known = KnownDealer {
                    name: p.name.clone(),
                    region: if p.region.trim().is_empty() {
                        p.city.trim().to_owned()
                    } else {
                        p.region.trim().to_owned()
                    },
                    company_id: CompanyId::parse(&p.company_national_id)
                        .ok()
                        .map(|c| c.as_str().to_owned()),
                    staff_national_ids: p
                        .staff
                        .iter()
                        .filter_map(|s| NationalId::parse(&s.national_id).ok())
                        .map(|n| n.as_str().to_owned())
                        .collect(),
                    staff_mobiles: p
                        .staff
                        .iter()
                        .filter_map(|s| staff_mobile(&s.mobile))
                        .map(|m| m.e164().to_owned())
                        .collect(),
                    suspended: Some(p.suspended.trim().to_owned()).filter(|r| !r.is_empty()),
                };
                (p.dealer_id.clone(), known)
            })
            .collect();
        DealerRegistry { dealers }
    }

    /// Reads the registry file.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let profiles: Vec<DealerProfile> =
            serde_json::from_str(&text).map_err(|e| RegistryError::Format {
                path: path.display().to_string(),
                detail: e.to_string(),
            })?;
        Ok(Self::new(&profiles))
    }

    /// What the registry knows about `dealer_id`.
    pub fn dealer(&self, dealer_id: &str) -> Option<&KnownDealer> {
        self.dealers.get(dealer_id)
    }

    /// The HQ sales region of `dealer_id` (the registry's region, else its city), if known.
    pub fn region(&self, dealer_id: &str) -> Option<String> {
        self.dealer(dealer_id)
            .map(|d| d.region.clone())
            .filter(|r| !r.is_empty())
    }

    /// How many dealerships it lists.
    pub fn len(&self) -> usize {
        self.dealers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dealers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_numbers_in_any_form_are_normalised() {
        let registry = DealerRegistry::new(&[DealerProfile {
            dealer_id: "D-1".into(),
            company_national_id: "not an id".into(),
            staff: vec![
                StaffMember {
                    staff_id: "S-1".into(),
                    national_id: "0499370899".into(),
                    mobile: "9121234568".into(),
                },
                StaffMember {
                    staff_id: "S-2".into(),
                    national_id: "bad".into(),
                    mobile: "۰۹۳۵ ۱۱۱ ۲۲۳۳".into(),
                },
            ],
            ..Default::default()
        }]);
        let d = registry.dealer("D-1").unwrap();
        assert!(d.company_id.is_none());
        assert_eq!(d.staff_national_ids.len(), 1);
        assert!(d.staff_mobiles.contains("+989121234568"));
        assert!(d.staff_mobiles.contains("+989351112233"));
        assert!(registry.dealer("D-2").is_none());
    }
}
