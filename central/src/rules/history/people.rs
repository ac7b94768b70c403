//! The rules of one mobile (C05) and one national ID (C07): how many customers or names a
//! contact is shared by.

use std::collections::BTreeSet;

use super::super::{finding, RuleConfig};
use super::{Fact, Member};
use crate::domain::{Finding, Reason};

/// C05: one mobile on more customers than allowed.
pub(super) fn shared_mobile(
    members: &[&Member],
    config: &RuleConfig,
    add: &mut impl FnMut(&Member, Finding),
) {
    let identities: BTreeSet<&str> = members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::Customer { identity, .. } => Some(identity.as_str()),
            _ => None,
        })
        .collect();
    if !c05_fires(identities.len(), config) {
        return;
    }
    let dealers: BTreeSet<&str> = members.iter().map(|m| m.dealer_id.as_str()).collect();
    let finding = c05_finding(dealers, config);
    for m in members {
        add(m, finding.clone());
    }
}

/// C05 fires on every member once a mobile has more than the allowed distinct customers.
pub fn c05_fires(distinct_customers: usize, config: &RuleConfig) -> bool {
    distinct_customers > config.shared_mobile_max_customers
}

/// The C05 finding, naming the dealers the mobile was registered at.
pub fn c05_finding<'a>(dealers: impl IntoIterator<Item = &'a str>, config: &RuleConfig) -> Finding {
    let dealers = dealers.into_iter().collect::<Vec<_>>().join(", ");
    finding(
        "C05",
        "customer.mobile",
        Reason::new("C05.shared_mobile")
            .arg("max", config.shared_mobile_max_customers)
            .arg("dealers", dealers),
    )
}

/// C07: one national ID under different names.
pub(super) fn names_of_one_id(members: &[&Member], add: &mut impl FnMut(&Member, Finding)) {
    let names: BTreeSet<&str> = members
        .iter()
        .filter_map(|m| match &m.fact {
            Fact::Customer { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    if !c07_fires(names.len()) {
        return;
    }
    let dealers: BTreeSet<&str> = members.iter().map(|m| m.dealer_id.as_str()).collect();
    let finding = c07_finding(dealers);
    for m in members {
        add(m, finding.clone());
    }
}

/// C07 fires on every member once a national ID carries more than one name.
pub fn c07_fires(distinct_names: usize) -> bool {
    distinct_names > 1
}

/// The C07 finding, naming the dealers the ID was registered at.
pub fn c07_finding<'a>(dealers: impl IntoIterator<Item = &'a str>) -> Finding {
    let dealers = dealers.into_iter().collect::<Vec<_>>().join(", ");
    finding(
        "C07",
        "customer.national_id",
        Reason::new("C07.names_differ").arg("dealers", dealers),
    )
}
