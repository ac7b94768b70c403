//! Incremental judging of the large history groups: a dealer's month of deliveries and surveys
//! (S04, Q01's uniform scores), the customers sharing a mobile (C05) and the names under one
//! national ID (C07). Each group keeps a small [`GroupState`] (counts, and distinct values with
//! how many members carry each) from which its rules are decided; a member joining or leaving
//! adds or subtracts its own fact, so the state is a function of the set of members, whatever
//! the order. A member's findings in these groups depend only on its own fact and on whether
//! the group's rules fire ([`GroupState::firing`]): when that does not change, only the members
//! a batch touched are judged; when it does, the group's members are read once and all judged.
//!
//! [`super::history::judge_group`] stays the reference: `tests/tests/incremental.rs` checks
//! that the findings stored this way equal it on the final set of members, for random
//! histories in random orders and batchings, duplicates included. The VIN and RO-number groups
//! are judged whole by the reference (their members are one vehicle's or one visit's records).

use std::collections::BTreeMap;

use super::history::{self, Fact, GroupKey, Member};
use super::RuleConfig;
use crate::domain::Finding;

pub use crate::model::groups::GroupState;

/// Which of a group's rules fire, as decided from its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Firing {
    /// C05 / C07 / S04.
    pub first: bool,
    /// Q01 (uniform scores) in a dealer month.
    pub second: bool,
}

/// Whether `key`'s group is judged incrementally.
pub fn is_incremental(key: &GroupKey) -> bool {
    matches!(
        key,
        GroupKey::DealerMonth { .. } | GroupKey::Mobile(_) | GroupKey::NationalId(_)
    )
}

impl GroupState {
    /// Adds (`joins` true) or subtracts a member of `key`'s group.
    pub fn count(&mut self, key: &GroupKey, member: &Member, config: &RuleConfig, joins: bool) {
        let step = |n: &mut u64| {
            if joins {
                *n += 1;
            } else {
                *n = n.saturating_sub(1);
            }
        };
        let tally = |map: &mut BTreeMap<String, u64>, value: &str| {
            let n = map.entry(value.to_owned()).or_default();
            step(n);
            if *n == 0 {
                map.remove(value);
            }
        };
        tally(&mut self.dealers, &member.dealer_id);
        match (key, &member.fact) {
            (GroupKey::Mobile(_), Fact::Customer { identity, .. }) => {
                tally(&mut self.values, identity)
            }
            (GroupKey::NationalId(_), Fact::Customer { name, .. }) => tally(&mut self.values, name),
            (GroupKey::DealerMonth { .. }, Fact::Delivery { delivered_ms, .. }) => {
                if history::in_month_tail(*delivered_ms, config) {
                    step(&mut self.tail_deliveries);
                } else {
                    step(&mut self.body_deliveries);
                }
            }
            (GroupKey::DealerMonth { .. }, Fact::Survey { top_score, .. }) => {
                step(&mut self.surveys);
                if *top_score {
                    step(&mut self.top_surveys);
                }
            }
            _ => {}
        }
    }

    /// Which rules of `key`'s group fire on this state.
    pub fn firing(&self, key: &GroupKey, config: &RuleConfig) -> Firing {
        match key {
            GroupKey::Mobile(_) => Firing {
                first: history::c05_fires(self.values.len(), config),
                second: false,
            },
            GroupKey::NationalId(_) => Firing {
                first: history::c07_fires(self.values.len()),
                second: false,
            },
            GroupKey::DealerMonth { month, .. } => Firing {
                first: self.tail_deliveries + self.body_deliveries > 0
                    && history::s04_fires(
                        month,
                        self.tail_deliveries as usize,
                        self.body_deliveries as usize,
                        config,
                    ),
                second: history::q01_uniform_fires(
                    self.surveys as usize,
                    self.top_surveys as usize,
                    config,
                ),
            },
            _ => Firing::default(),
        }
    }

    /// The findings of `key`'s rules for `member`, given the group fires as `firing`.
    pub fn findings(
        &self,
        key: &GroupKey,
        member: &Member,
        firing: Firing,
        config: &RuleConfig,
    ) -> Vec<Finding> {
        let dealers = || self.dealers.keys().map(String::as_str);
        let mut out = Vec::new();
        match (key, &member.fact) {
            (GroupKey::Mobile(_), _) if firing.first => {
                out.push(history::c05_finding(dealers(), config))
            }
            (GroupKey::NationalId(_), _) if firing.first => {
                out.push(history::c07_finding(dealers()))
            }
            (GroupKey::DealerMonth { month, .. }, Fact::Delivery { delivered_ms, .. })
                if firing.first && history::in_month_tail(*delivered_ms, config) =>
            {
                out.push(history::s04_finding(month, config))
            }
            (GroupKey::DealerMonth { month, .. }, Fact::Survey { .. }) if firing.second => {
                out.push(history::q01_uniform_finding(month, config))
            }
            _ => {}
        }
        out
    }
}
