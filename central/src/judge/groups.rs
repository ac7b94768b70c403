//! The history groups a unit of work touched, judged once each: a dealer month, a mobile or a
//! national ID from its kept state (only the members the work touched, unless what fires in
//! the group flips), an imported source's sequence by the neighbours of what changed, a VIN or
//! an RO number whole ([`history::judge_group`], the reference for the others).

use std::collections::{BTreeMap, BTreeSet};

use super::work::Work;
use crate::domain::Finding;
use crate::rules::group_state;
use crate::rules::history::{self, At, GroupKey, Member};
use crate::store::{HubStore, StoreError};

impl<'s, S: HubStore> Work<'s, S> {
    /// Judges every touched group once, and updates the members whose findings changed.
    pub(super) fn judge_groups(&mut self) -> Result<(), StoreError> {
        let touched = std::mem::take(&mut self.touched);
        for group in touched {
            let judged = if matches!(group, GroupKey::SourceSequence { .. }) {
                self.judge_neighbours(&group)?
            } else if group_state::is_incremental(&group) {
                self.judge_incrementally(&group)?
            } else {
                self.judge_whole(&group)?
            };
            let scope = group.scope();
            for (at, member, findings) in judged {
                let fresh = self.joined.contains_key(&(group.clone(), at.clone()));
                if !fresh && crate::domain::same_findings(&member.current, &findings) {
                    continue;
                }
                let mut updated = member;
                updated.current = findings.clone();
                self.joined.insert((group.clone(), at.clone()), updated);
                if let Some(entry) = self.load(&at)? {
                    if findings.is_empty() {
                        entry.record.group_findings.remove(&scope);
                    } else {
                        entry.record.group_findings.insert(scope, findings);
                    }
                }
            }
        }
        Ok(())
    }

    /// The members of `group` this batch adds or replaces.
    fn joined_to(&self, group: &GroupKey) -> BTreeMap<At, Member> {
        self.joined
            .range((group.clone(), (String::new(), 0))..)
            .take_while(|((g, _), _)| g == group)
            .map(|((_, at), m)| (at.clone(), m.clone()))
            .collect()
    }

    /// The members of `group` this batch removes.
    fn left_from(&self, group: &GroupKey) -> Vec<At> {
        self.left
            .range((group.clone(), (String::new(), 0))..)
            .take_while(|(g, _)| g == group)
            .map(|(_, at)| at.clone())
            .collect()
    }

    /// Every member of `group` after this batch.
    fn all_members(&self, group: &GroupKey) -> Result<BTreeMap<At, Member>, StoreError> {
        let mut members: BTreeMap<At, Member> = self
            .store
            .members(group)?
            .into_iter()
            .map(|m| ((m.dealer_id.clone(), m.seq), m))
            .collect();
        for at in self.left_from(group) {
            members.remove(&at);
        }
        members.extend(self.joined_to(group));
        Ok(members)
    }

    /// The reference: the whole group read and judged (VIN and RO-number groups).
    fn judge_whole(&self, group: &GroupKey) -> Result<Vec<(At, Member, Vec<Finding>)>, StoreError> {
        let members = self.all_members(group)?;
        let list: Vec<Member> = members.values().cloned().collect();
        let mut judged = history::judge_group(group, &list, self.rules.config);
        Ok(members
            .into_iter()
            .map(|(at, m)| {
                let findings = judged.remove(&at).unwrap_or_default();
                (at, m, findings)
            })
            .collect())
    }

    /// A source's sequence: a member's T01 reads only the dealer's next record from the same
    /// source, so only the members this batch adds or moves and the member just before each
    /// are judged, from their nearest neighbours in the store. New records come after every
    /// stored one of their dealer, so they need the store's member before the first of them
    /// only; a correction's target is judged with both of its stored neighbours.
    fn judge_neighbours(
        &mut self,
        group: &GroupKey,
    ) -> Result<Vec<(At, Member, Vec<Finding>)>, StoreError> {
        let joined = self.joined_to(group);
        let left: BTreeSet<At> = self.left_from(group).into_iter().collect();
        let is_new = |at: &At| self.entries.get(at).is_some_and(|e| e.before.is_none());
        let mut view: BTreeMap<At, Member> = BTreeMap::new();
        let mut judge: BTreeSet<At> = joined.keys().cloned().collect();
        let first_new = joined.keys().find(|at| is_new(at)).cloned();
        let moved: Vec<At> = joined
            .keys()
            .filter(|at| !is_new(at))
            .chain(left.iter())
            .cloned()
            .collect();
        let places = first_new
            .iter()
            .map(|at| (at, false))
            .chain(moved.iter().map(|at| (at, true)));
        for (at, both_sides) in places {
            if let Some(before) = self.stored_neighbour(group, at, &left, false)? {
                let before_at = (before.dealer_id.clone(), before.seq);
                judge.insert(before_at.clone());
                view.entry(before_at).or_insert(before);
            }
            if both_sides {
                if let Some(after) = self.stored_neighbour(group, at, &left, true)? {
                    view.entry((after.dealer_id.clone(), after.seq))
                        .or_insert(after);
                }
            }
        }
        view.extend(joined);
        for at in &left {
            view.remove(at);
        }
        let config = self.rules.config;
        Ok(judge
            .into_iter()
            .filter_map(|at| {
                let member = view.get(&at)?.clone();
                let next = view
                    .range((at.0.clone(), at.1 + 1)..)
                    .next()
                    .map(|(_, m)| m);
                let findings = next
                    .and_then(|next| history::source_clock_finding(&member, next, config))
                    .into_iter()
                    .collect();
                Some((at, member, findings))
            })
            .collect())
    }

    /// The nearest stored member of `group` before (or `after`) `at` that this batch does not
    /// remove.
    fn stored_neighbour(
        &self,
        group: &GroupKey,
        at: &At,
        left: &BTreeSet<At>,
        after: bool,
    ) -> Result<Option<Member>, StoreError> {
        let mut place = at.clone();
        loop {
            let (before, next) = self.store.neighbours(group, &place.0, place.1)?;
            let Some(found) = (if after { next } else { before }) else {
                return Ok(None);
            };
            let found_at = (found.dealer_id.clone(), found.seq);
            if !left.contains(&found_at) {
                return Ok(Some(found));
            }
            place = found_at;
        }
    }

    /// A large group from its state ([`group_state`]): only the members this batch touched,
    /// unless what fires in the group changed.
    fn judge_incrementally(
        &mut self,
        group: &GroupKey,
    ) -> Result<Vec<(At, Member, Vec<Finding>)>, StoreError> {
        let config = self.rules.config;
        let mut state = self.store.group_state(group)?.unwrap_or_default();
        let before = state.firing(group, config);
        let joined = self.joined_to(group);
        for at in joined.keys().chain(self.left_from(group).iter()) {
            if let Some(old) = self.store.member(group, &at.0, at.1)? {
                state.count(group, &old, config, false);
            }
        }
        for member in joined.values() {
            state.count(group, member, config, true);
        }
        let after = state.firing(group, config);
        let members = if before == after {
            joined
        } else {
            self.all_members(group)?
        };
        let judged = members
            .into_iter()
            .map(|(at, m)| {
                let findings = state.findings(group, &m, after, config);
                (at, m, findings)
            })
            .collect();
        self.group_states.insert(group.clone(), state);
        Ok(judged)
    }
}
