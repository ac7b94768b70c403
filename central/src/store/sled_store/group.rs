//! A history group's entry (format 9): its state and its first members under one key, `G`
//! group key, where formats 3-8 kept the state there and every member under a key of its own
//! (`g` group key, dealer `\0` seq).
//!
//! Most groups stay small (a customer's mobile, a national ID, most VINs), and sled charges
//! per key (see `party`): so a group keeps up to [`INLINE`] members in its entry, and only a
//! group that outgrows it puts its later members under their own keys (it is then
//! `spilled`, and its members are the entry's and the keys', merged in `(dealer, seq)` order, the
//! keys' order). A member stays where it was first put until it leaves.

use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::{group_prefix, group_state_key, member_key};
use super::{decode, engine, SledStore};
use crate::model::groups::{GroupKey, GroupState, Member};
use crate::store::{Change, StoreError};

/// Members a group keeps in its entry before later ones get keys of their own.
pub(super) const INLINE: usize = 8;

/// What the store keeps of a group under its `G` key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct GroupEntry {
    /// The state its incrementally judged rules are decided from (first: read alone).
    pub state: Option<GroupState>,
    /// Some members are under keys of their own.
    pub spilled: bool,
    /// The members kept here, in `(dealer, seq)` order.
    pub inline: Vec<InlineMember>,
}

/// A member kept in its group's entry, still encoded: a unit of work that changes the entry
/// copies the members it does not change instead of decoding and encoding them again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct InlineMember {
    pub dealer_id: String,
    pub seq: u64,
    /// The [`Member`] (postcard).
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

impl InlineMember {
    fn of(member: &Member) -> Result<Self, StoreError> {
        Ok(InlineMember {
            dealer_id: member.dealer_id.clone(),
            seq: member.seq,
            bytes: super::encode(member)?,
        })
    }

    /// The member itself.
    pub fn decode(&self) -> Result<Member, StoreError> {
        postcard::from_bytes(&self.bytes).map_err(|e| StoreError::Corrupt {
            key: format!("group member {} {}", self.dealer_id, self.seq),
            detail: e.to_string(),
        })
    }
}

/// The first field of a [`GroupEntry`].
#[derive(Deserialize)]
pub(super) struct StateOnly {
    pub state: Option<GroupState>,
}

impl GroupEntry {
    /// Nothing is kept: the key is removed.
    pub fn is_empty(&self) -> bool {
        self.state.is_none() && !self.spilled && self.inline.is_empty()
    }

    /// Where `(dealer, seq)` is, or would be, among the inline members.
    pub fn find(&self, dealer_id: &str, seq: u64) -> Result<usize, usize> {
        self.inline
            .binary_search_by(|m| (m.dealer_id.as_bytes(), m.seq).cmp(&(dealer_id.as_bytes(), seq)))
    }

    /// The inline members, decoded.
    pub fn members(&self) -> Result<Vec<Member>, StoreError> {
        self.inline.iter().map(InlineMember::decode).collect()
    }
}

/// `member` against `(dealer, seq)`, in the order of member keys.
pub(super) fn order(member: &Member, dealer_id: &str, seq: u64) -> Ordering {
    (member.dealer_id.as_bytes(), member.seq).cmp(&(dealer_id.as_bytes(), seq))
}

/// A write to a member's own key: `Some` puts it, `None` removes it.
pub(super) type KeyWrite<'c> = (&'c GroupKey, &'c str, u64, Option<&'c Member>);

/// The entries of every group `change` touches, each read once by `read`, then changed as
/// the unit of work says (members leaving, states, members joining, in that order, as formats
/// before wrote them); and the writes to members' own keys it takes.
pub(super) fn changed_entries<'c>(
    change: &'c Change,
    read: impl Fn(&GroupKey) -> Result<Option<GroupEntry>, StoreError>,
) -> Result<(BTreeMap<&'c GroupKey, GroupEntry>, Vec<KeyWrite<'c>>), StoreError> {
    let mut entries: BTreeMap<&GroupKey, GroupEntry> = BTreeMap::new();
    let mut keys = Vec::new();
    fn entry<'m, 'c>(
        entries: &'m mut BTreeMap<&'c GroupKey, GroupEntry>,
        group: &'c GroupKey,
        read: &impl Fn(&GroupKey) -> Result<Option<GroupEntry>, StoreError>,
    ) -> Result<&'m mut GroupEntry, StoreError> {
        Ok(match entries.entry(group) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(read(group)?.unwrap_or_default()),
        })
    }
    for (group, dealer, seq) in &change.left {
        let e = entry(&mut entries, group, &read)?;
        match e.find(dealer, *seq) {
            Ok(at) => {
                e.inline.remove(at);
            }
            Err(_) if e.spilled => keys.push((group, dealer.as_str(), *seq, None)),
            Err(_) => {}
        }
    }
    for (group, state) in &change.group_states {
        entry(&mut entries, group, &read)?.state = state.clone();
    }
    for (group, member) in &change.joined {
        let e = entry(&mut entries, group, &read)?;
        match e.find(&member.dealer_id, member.seq) {
            Ok(at) => e.inline[at] = InlineMember::of(member)?,
            Err(at) if !e.spilled && e.inline.len() < INLINE => {
                e.inline.insert(at, InlineMember::of(member)?)
            }
            Err(_) => {
                e.spilled = true;
                keys.push((group, member.dealer_id.as_str(), member.seq, Some(member)));
            }
        }
    }
    Ok((entries, keys))
}

/// `inline` and `spilled` (each in `(dealer, seq)` order) as one list in that order.
pub(super) fn merged(inline: Vec<Member>, spilled: Vec<Member>) -> Vec<Member> {
    if spilled.is_empty() {
        return inline;
    }
    let mut out = Vec::with_capacity(inline.len() + spilled.len());
    let (mut a, mut b) = (
        inline.into_iter().peekable(),
        spilled.into_iter().peekable(),
    );
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => order(x, &y.dealer_id, y.seq) == Ordering::Less,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

impl SledStore {
    /// Whether groups are kept as formats 3-8 kept them (every member under its own key, the
    /// bare state under `G`).
    pub(super) fn groups_before_9(&self) -> bool {
        self.format < 9
    }

    /// A group's entry (format 9).
    pub(super) fn group_entry(&self, group: &GroupKey) -> Result<Option<GroupEntry>, StoreError> {
        self.get(&group_state_key(group))
    }

    /// The members of a group under keys of their own, in key order.
    pub(super) fn spilled_members(&self, group: &GroupKey) -> Result<Vec<Member>, StoreError> {
        self.decoded_under(&group_prefix(group))
    }

    /// The members under keys of their own just before and just after `(dealer_id, seq)`.
    pub(super) fn spilled_neighbours(
        &self,
        group: &GroupKey,
        dealer_id: &str,
        seq: u64,
    ) -> Result<(Option<Member>, Option<Member>), StoreError> {
        let prefix = group_prefix(group);
        let at = member_key(group, dealer_id, seq);
        let mut after_at = at.clone();
        after_at.push(0);
        let before = match self.tree.range_back(prefix.clone()..at).next() {
            Some(item) => {
                let (k, v) = item.map_err(engine)?;
                Some(decode::<Member>(&k, &v)?)
            }
            None => None,
        };
        let after = match self.tree.range(after_at..).next() {
            Some(item) => {
                let (k, v) = item.map_err(engine)?;
                if k.starts_with(&prefix) {
                    Some(decode::<Member>(&k, &v)?)
                } else {
                    None
                }
            }
            None => None,
        };
        Ok((before, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::groups::Fact;

    fn member(dealer: &str, seq: u64) -> Member {
        Member {
            dealer_id: dealer.into(),
            seq,
            fact: Fact::Made { created_ms: 0 },
            current: Vec::new(),
        }
    }

    fn vin() -> GroupKey {
        GroupKey::Vin("NAAM01CA7PK123456".into())
    }

    #[test]
    fn a_group_keeps_its_first_members_and_spills_the_rest_in_key_order() {
        let group = vin();
        let change = Change {
            joined: (1..=10)
                .rev()
                .map(|seq| (group.clone(), member("D-2", seq)))
                .collect(),
            ..Default::default()
        };
        let (entries, keys) = changed_entries(&change, |_| Ok(None)).expect("entries");
        let e = &entries[&group];
        assert!(e.spilled);
        let inline: Vec<u64> = e.inline.iter().map(|m| m.seq).collect();
        assert_eq!(
            inline,
            vec![3, 4, 5, 6, 7, 8, 9, 10],
            "the first eight to join"
        );
        let spilled: Vec<u64> = keys.iter().map(|k| k.2).collect();
        assert_eq!(spilled, vec![2, 1]);
        let all = merged(
            e.members().expect("decoded"),
            vec![member("D-2", 1), member("D-2", 2)],
        );
        let seqs: Vec<u64> = all.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    }

    #[test]
    fn leaving_frees_room_only_in_a_group_that_never_spilled() {
        let group = vin();
        let stored = GroupEntry {
            state: None,
            spilled: false,
            inline: (1..=8)
                .map(|seq| InlineMember::of(&member("D-1", seq)).expect("encoded"))
                .collect(),
        };
        let change = Change {
            left: vec![(group.clone(), "D-1".into(), 4)],
            joined: vec![(group.clone(), member("D-1", 9))],
            ..Default::default()
        };
        let (entries, keys) =
            changed_entries(&change, |_| Ok(Some(stored.clone()))).expect("entries");
        assert!(keys.is_empty());
        assert!(!entries[&group].spilled);
        assert_eq!(entries[&group].inline.len(), 8);
        let spilled = GroupEntry {
            spilled: true,
            ..stored
        };
        let change = Change {
            left: vec![
                (group.clone(), "D-1".into(), 4),
                (group.clone(), "D-9".into(), 1),
            ],
            joined: vec![(group.clone(), member("D-1", 9))],
            ..Default::default()
        };
        let (entries, keys) =
            changed_entries(&change, |_| Ok(Some(spilled.clone()))).expect("entries");
        assert_eq!(entries[&group].inline.len(), 7);
        let writes: Vec<(&str, u64, bool)> =
            keys.iter().map(|k| (k.1, k.2, k.3.is_some())).collect();
        assert_eq!(writes, vec![("D-9", 1, false), ("D-1", 9, true)]);
    }
}
