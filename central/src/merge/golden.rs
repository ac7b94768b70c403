//! The golden customer record: for each field, the value in force chosen by one deterministic
//! rule, with its provenance, and every losing value kept with its own.
//!
//! The rule, highest first: an HQ-confirmed value; then a value from a clean record over one
//! from a flagged record; then the latest trusted stamp ([`super::Stamp`]); ties by dealer id and
//! seq, so arrival order never matters. Disagreements on the fields that say *who* the customer
//! is (national ID, company ID, name) are [`Conflict`]s for HQ; others (mobile, postal code) are
//! settled by the rule and their losing values listed.

use std::collections::BTreeMap;

use super::{Confirmed, Trust};
use super::{Conflict, ConflictValue, PartyDecisions, PartyKey, PartyView, Provenance, Subject};

/// The fields of the golden customer record.
pub const FIELDS: &[&str] = &["national_id", "company_id", "name", "mobile", "postal_code"];

/// Fields whose disagreement is a conflict for HQ.
pub const MATERIAL: &[&str] = &["national_id", "company_id", "name"];

pub use crate::model::customer::{FieldValue, GoldenCustomer};

/// A dealer record that says something other than what HQ confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disagreement {
    pub party: PartyKey,
    pub field: String,
    pub confirmed: String,
    pub stated: String,
}

/// The value a party gives for `field`, if any.
pub fn value_of(view: &PartyView, field: &str) -> Option<String> {
    match field {
        "national_id" => view.national_id.clone(),
        "company_id" => view.company_id.clone(),
        "name" => Some(view.name()).filter(|n| !n.is_empty()),
        "mobile" => view.mobile.clone(),
        "postal_code" => view.postal_code.clone(),
        _ => None,
    }
}

/// The golden record of the customer formed by `parties` (each with a view), and the dealer
/// records that disagree with a value HQ confirmed.
pub fn golden(
    customer_id: &str,
    parties: &[(PartyKey, &PartyView, &PartyDecisions)],
) -> (GoldenCustomer, Vec<Disagreement>) {
    let mut keys: Vec<PartyKey> = parties.iter().map(|(k, ..)| k.clone()).collect();
    keys.sort();
    let mut fields = BTreeMap::new();
    let mut conflicts = Vec::new();
    let mut disagreements = Vec::new();
    for field in FIELDS {
        // The latest HQ confirmation of this field among the parties.
        let confirmed: Option<&Confirmed> = parties
            .iter()
            .filter_map(|(_, _, d)| d.confirmed.get(*field))
            .max_by_key(|c| (c.at_ms, c.decision));
        let mut candidates: Vec<(String, Provenance)> = parties
            .iter()
            .filter_map(|((dealer, _), view, _)| {
                value_of(view, field).map(|value| {
                    (
                        value,
                        Provenance {
                            dealer_id: dealer.clone(),
                            record_id: view.record_id.clone(),
                            seq: view.seq,
                            stamp: view.stamp,
                            trust: view.trust,
                        },
                    )
                })
            })
            .collect();
        if let Some(c) = confirmed {
            candidates.push((
                c.value.clone(),
                Provenance {
                    dealer_id: "HQ".into(),
                    record_id: format!("decision-{}", c.decision),
                    seq: 0,
                    stamp: super::Stamp {
                        wall_ms: c.at_ms,
                        logical: 0,
                    },
                    trust: Trust::HqConfirmed,
                },
            ));
        }
        if candidates.is_empty() {
            continue;
        }
        // Best first: trust, then stamp, then dealer and seq (descending), then value.
        candidates.sort_by(|(va, a), (vb, b)| {
            (b.trust, b.stamp, &b.dealer_id, b.seq, vb).cmp(&(
                a.trust,
                a.stamp,
                &a.dealer_id,
                a.seq,
                va,
            ))
        });
        let (value, source) = candidates[0].clone();
        if let Some(c) = confirmed {
            for ((dealer, customer_ref), view, _) in parties {
                if let Some(stated) = value_of(view, field).filter(|v| *v != c.value) {
                    disagreements.push(Disagreement {
                        party: (dealer.clone(), customer_ref.clone()),
                        field: (*field).to_owned(),
                        confirmed: c.value.clone(),
                        stated,
                    });
                }
            }
        }
        if MATERIAL.contains(field) {
            let mut by_value: BTreeMap<String, Vec<Provenance>> = BTreeMap::new();
            for (v, p) in candidates
                .iter()
                .filter(|(_, p)| p.trust != Trust::HqConfirmed)
            {
                by_value.entry(v.clone()).or_default().push(p.clone());
            }
            if by_value.len() > 1 {
                conflicts.push(Conflict {
                    subject: Subject::Customer(customer_id.to_owned()),
                    field: (*field).to_owned(),
                    chosen: value.clone(),
                    values: by_value
                        .into_iter()
                        .map(|(value, sources)| ConflictValue { value, sources })
                        .collect(),
                    resolved: confirmed.is_some(),
                });
            }
        }
        let mut alternatives: Vec<(String, Provenance)> = Vec::new();
        for (v, p) in candidates.into_iter().skip(1) {
            if v != value && !alternatives.iter().any(|(a, _)| *a == v) {
                alternatives.push((v, p));
            }
        }
        fields.insert(
            (*field).to_owned(),
            FieldValue {
                value,
                source,
                alternatives,
            },
        );
    }
    let organization =
        parties.iter().filter(|(_, v, _)| v.organization).count() * 2 > parties.len();
    (
        GoldenCustomer {
            customer_id: customer_id.to_owned(),
            parties: keys,
            organization,
            fields,
            conflicts,
        },
        disagreements,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::Stamp;

    fn view(seq: u64, name: &str, mobile: &str, trust: Trust, at: i64) -> PartyView {
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        PartyView {
            seq,
            record_id: format!("rec-{seq}"),
            organization: false,
            national_id: Some("0013542419".into()),
            company_id: None,
            given_name: given.into(),
            family_name: family.into(),
            organization_name: String::new(),
            mobile: Some(mobile.into()),
            postal_code: None,
            trust,
            stamp: Stamp {
                wall_ms: at,
                logical: 0,
            },
        }
    }

    fn key(d: &str) -> PartyKey {
        (d.into(), "c".into())
    }

    #[test]
    fn latest_clean_value_wins_and_losers_are_kept() {
        let none = PartyDecisions::default();
        let a = view(1, "رضا احمدی", "+989120000001", Trust::Clean, 100);
        let b = view(7, "رضا احمدی", "+989120000002", Trust::Clean, 200);
        let c = view(3, "رضا احمدی", "+989120000003", Trust::Flagged, 300);
        let parties = [
            (key("D-1"), &a, &none),
            (key("D-2"), &b, &none),
            (key("D-3"), &c, &none),
        ];
        let (g, _) = golden("CU-1", &parties);
        let mobile = &g.fields["mobile"];
        assert_eq!(
            mobile.value, "+989120000002",
            "the flagged later value must not win"
        );
        assert_eq!(mobile.source.dealer_id, "D-2");
        assert_eq!(mobile.alternatives.len(), 2);
        assert!(
            g.conflicts.is_empty(),
            "a mobile disagreement is not material"
        );
        // The same inputs in another order give the same record.
        let reversed = [
            (key("D-3"), &c, &none),
            (key("D-2"), &b, &none),
            (key("D-1"), &a, &none),
        ];
        assert_eq!(golden("CU-1", &reversed).0, g);
    }

    #[test]
    fn a_name_disagreement_is_a_conflict_until_hq_confirms_and_then_the_loser_is_told() {
        let none = PartyDecisions::default();
        let a = view(1, "رضا احمدی", "+989120000001", Trust::Clean, 100);
        let b = view(2, "رضا احمدزاده", "+989120000001", Trust::Clean, 200);
        let (g, d) = golden("CU-1", &[(key("D-1"), &a, &none), (key("D-2"), &b, &none)]);
        assert_eq!(g.conflicts.len(), 1);
        assert_eq!(g.conflicts[0].field, "name");
        assert!(!g.conflicts[0].resolved);
        assert_eq!(g.fields["name"].value, "رضا احمدزاده");
        assert!(d.is_empty());

        let mut hq = PartyDecisions::default();
        hq.confirmed.insert(
            "name".into(),
            Confirmed {
                value: "رضا احمدی".into(),
                decision: 1,
                at_ms: 50,
            },
        );
        let (g, d) = golden("CU-1", &[(key("D-1"), &a, &hq), (key("D-2"), &b, &hq)]);
        assert_eq!(g.fields["name"].value, "رضا احمدی");
        assert_eq!(g.fields["name"].source.trust, Trust::HqConfirmed);
        assert!(g.conflicts[0].resolved);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].party, key("D-2"));
    }
}
