//! Identity resolution: which dealer customer records ([`PartyView`]s) are the same person or
//! organisation. Pure functions; [`super::resolve`] runs them incrementally over the store.
//!
//! Two parties are linked when (in this order):
//! 1. HQ decided it: kept apart, or linked (an identity review resolved); a detached party has
//!    no automatic links at all (a link undone by HQ);
//! 2. both carry the same valid company ID (organisations), or the same valid national ID
//!    (persons) under names that normalise to one (spelling variants still link); one national
//!    ID under two different names (RULES.md C07) links nobody by itself: the pair waits for HQ
//!    review, and each keeps its own customer until HQ links them. Different valid IDs are
//!    never linked automatically;
//! 3. they share a normalised mobile and their normalised names are alike: both the given and
//!    the family name (or the organisation names) at least `identity_link_similarity` similar.
//!    Between that and `identity_review_similarity` the pair is *uncertain*: listed for HQ
//!    review, not guessed. Less alike (a family phone) is two people.
//!
//! Blocking keeps this fast at millions of customers: a party is compared only with the
//! parties that share one of its [`blocks`] (its ID, its mobile), found by an index lookup.

use super::{PartyDecisions, PartyKey, PartyView};
use crate::rules::RuleConfig;

/// How two parties relate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Match {
    /// The same customer.
    Same,
    /// Perhaps the same: HQ decides. Carries the name similarity.
    Uncertain(f64),
    /// One national ID under names that do not normalise to one (C07): perhaps one person
    /// misspelt, perhaps someone using another's code melli. Never linked automatically; HQ
    /// decides. Carries the name similarity.
    NamesDisagree(f64),
    /// Different customers (or nothing in common).
    Different,
}

/// The index keys under which a party can be found by the others: `n:` national ID, `c:`
/// company ID, `m:` mobile (E.164).
pub fn blocks(view: &PartyView) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(id) = &view.national_id {
        out.push(format!("n:{id}"));
    }
    if let Some(id) = &view.company_id {
        out.push(format!("c:{id}"));
    }
    if let Some(m) = &view.mobile {
        out.push(format!("m:{m}"));
    }
    out
}

/// How `a` and `b` relate, given HQ's decisions about `a` and `b`.
pub fn relate(
    (a_key, a, a_hq): (&PartyKey, &PartyView, &PartyDecisions),
    (b_key, b, b_hq): (&PartyKey, &PartyView, &PartyDecisions),
    config: &RuleConfig,
) -> Match {
    if a_hq.apart.contains(b_key) || b_hq.apart.contains(a_key) {
        return Match::Different;
    }
    if a_hq.linked.contains(b_key) || b_hq.linked.contains(a_key) {
        return Match::Same;
    }
    if a_hq.detached || b_hq.detached || a.organization != b.organization {
        return Match::Different;
    }
    let ids = if a.organization {
        (&a.company_id, &b.company_id)
    } else {
        (&a.national_id, &b.national_id)
    };
    let name_similarity = || {
        if a.organization {
            similarity(&a.organization_name, &b.organization_name)
        } else {
            similarity(&a.given_name, &b.given_name).min(similarity(&a.family_name, &b.family_name))
        }
    };
    match ids {
        (Some(x), Some(y)) if x == y => {
            let one_name = a.organization
                || hamgam_proto::text::normalize(&a.name())
                    == hamgam_proto::text::normalize(&b.name());
            return if one_name {
                Match::Same
            } else {
                Match::NamesDisagree(name_similarity())
            };
        }
        (Some(_), Some(_)) => return Match::Different,
        _ => {}
    }
    if a.mobile.is_none() || a.mobile != b.mobile {
        return Match::Different;
    }
    let similarity = name_similarity();
    if similarity >= config.identity_link_similarity {
        Match::Same
    } else if similarity >= config.identity_review_similarity {
        Match::Uncertain(similarity)
    } else {
        Match::Different
    }
}

/// Similarity of two normalised names in `0.0..=1.0`: one minus the edit distance (in
/// characters, spaces ignored) over the longer length. Empty names are never alike.
pub fn similarity(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().filter(|c| !c.is_whitespace()).collect();
    let b: Vec<char> = b.chars().filter(|c| !c.is_whitespace()).collect();
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    1.0 - row[b.len()] as f64 / a.len().max(b.len()) as f64
}

/// The hub's id of the customer a set of linked parties is: derived from the smallest party
/// key, so it is the same whatever order the records came in, and carries no personal data.
pub fn customer_id(parties: &[PartyKey]) -> Option<String> {
    let first = parties.iter().min()?;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{}\0{}", first.0, first.1).as_bytes(),
    );
    let hex: String = digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(format!("CU-{hex}"))
}

pub use crate::model::customer::ReviewItem;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{Stamp, Trust};
    use hamgam_proto::text::normalize;

    fn view(given: &str, family: &str, national_id: Option<&str>, mobile: &str) -> PartyView {
        PartyView {
            seq: 1,
            record_id: "r".into(),
            organization: false,
            national_id: national_id.map(str::to_owned),
            company_id: None,
            given_name: normalize(given),
            family_name: normalize(family),
            organization_name: String::new(),
            mobile: hamgam_proto::values::Mobile::parse(mobile)
                .ok()
                .map(|m| m.e164().to_owned()),
            postal_code: None,
            trust: Trust::Clean,
            stamp: Stamp::default(),
        }
    }

    fn relate_views(a: &PartyView, b: &PartyView) -> Match {
        let none = PartyDecisions::default();
        let (ka, kb) = (("D-1".into(), "a".into()), ("D-2".into(), "b".into()));
        relate((&ka, a, &none), (&kb, b, &none), &RuleConfig::default())
    }

    #[test]
    fn persian_spellings_digits_and_mobile_forms_are_one_customer() {
        // ي/ی, ك/ک, ZWNJ vs space, Persian and Arabic digits, +98 / 0098 / 09.
        let a = view("علي", "كريمي‌نژاد", None, "+98 912 345 6789");
        let b = view("علی", "کریمی نژاد", None, "۰۹۱۲۳۴۵۶۷۸۹");
        let c = view("علی", "کریمی‌نژاد", None, "0098-912-345-٦٧٨٩");
        assert_eq!(relate_views(&a, &b), Match::Same);
        assert_eq!(relate_views(&b, &c), Match::Same);
        assert_eq!(relate_views(&a, &c), Match::Same);
    }

    #[test]
    fn a_family_phone_is_two_people() {
        let father = view("رضا", "احمدی", None, "09121110000");
        let daughter = view("مریم", "احمدی", None, "09121110000");
        assert_eq!(relate_views(&father, &daughter), Match::Different);
    }

    #[test]
    fn a_close_but_not_equal_name_is_for_hq_to_decide() {
        let a = view("Mohammad", "Rezaei", None, "09121110000");
        let b = view("Mohamad", "Rezaei", None, "09121110000");
        assert!(matches!(relate_views(&a, &b), Match::Uncertain(s) if s > 0.8 && s < 0.9));
    }

    #[test]
    fn ids_decide_before_names() {
        let a = view("رضا", "احمدی", Some("0013542419"), "");
        let b = view("رضا", "احمدی", Some("0013542419"), "");
        assert_eq!(relate_views(&a, &b), Match::Same, "same ID, no mobile");
        let c = view("رضا", "احمدی", Some("1234567891"), "09121110000");
        let d = view("رضا", "احمدی", Some("0013542419"), "09121110000");
        assert_eq!(
            relate_views(&c, &d),
            Match::Different,
            "two valid IDs are two people even with one name and phone"
        );
    }

    #[test]
    fn hq_decisions_override_the_evidence() {
        let a = view("رضا", "احمدی", Some("0013542419"), "");
        let b = view("رضا", "احمدی", Some("0013542419"), "");
        let (ka, kb): (PartyKey, PartyKey) =
            (("D-1".into(), "a".into()), ("D-2".into(), "b".into()));
        let detached = PartyDecisions {
            detached: true,
            ..Default::default()
        };
        let none = PartyDecisions::default();
        let config = RuleConfig::default();
        assert_eq!(
            relate((&ka, &a, &detached), (&kb, &b, &none), &config),
            Match::Different
        );
        let mut linked = PartyDecisions::default();
        linked.linked.insert(kb.clone());
        let c = view("مریم", "کاظمی", None, "");
        assert_eq!(
            relate((&ka, &c, &linked), (&kb, &b, &none), &config),
            Match::Same
        );
    }

    #[test]
    fn customer_ids_do_not_depend_on_order_and_carry_no_personal_data() {
        let p: Vec<PartyKey> = vec![("D-2".into(), "x".into()), ("D-1".into(), "y".into())];
        let q: Vec<PartyKey> = p.iter().rev().cloned().collect();
        assert_eq!(customer_id(&p), customer_id(&q));
        assert!(customer_id(&p).is_some_and(|id| id.starts_with("CU-") && id.len() == 19));
    }
}
