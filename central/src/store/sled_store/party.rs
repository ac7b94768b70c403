//! A party's one key (format 8): all the store keeps of a dealer's customer under
//! `P` dealer `\0` customer_ref, where formats 1-7 spread it over five key spaces (the
//! judge's IDs `p`, the merge's state `P`, the customer link `L`, its VINs `Z` and the records
//! that named it `K`, one key per VIN and per record).
//!
//! Why one key: sled charges about the same CPU per inserted key whatever its size, and about
//! 270 bytes of disk per small key (`target/release/sled-shapes 11 60 scattered 500`:
//! 2,970 bytes on disk per record of 11 keys of 60 bytes), so a party's five families cost
//! the checkpointer and the disk more than their bytes. A unit of work reads each party it
//! changes once and writes it once.
//!
//! The fields a hot read wants come first: postcard reads a struct field by field and
//! ignores what follows, so [`LinkOnly`] and [`UpToState`] read a prefix of the entry without
//! decoding its VINs and records.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::keys::{party_prefixed, PARTY};
use super::SledStore;
use crate::model::customer::{Party, PartyKey};
use crate::model::groups::PartyIds;
use crate::store::{Change, StoreError};

/// What the store keeps of one party.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct PartyEntry {
    /// The customer the merge linked the party to.
    pub link: Option<String>,
    /// The dealer's customer's IDs, as the judge keeps them for the people rules.
    pub ids: Option<PartyIds>,
    /// The merge's state of the party.
    pub state: Option<Party>,
    /// The VINs the party appears in: sorted, each once.
    pub vins: Vec<String>,
    /// The seqs of the dealer's records that named the party: ascending, each once (an index
    /// that only grows, as the contact keys did).
    pub contacts: Vec<u64>,
}

impl PartyEntry {
    /// Nothing is known of the party: its key is removed.
    pub fn is_empty(&self) -> bool {
        self.link.is_none()
            && self.ids.is_none()
            && self.state.is_none()
            && self.vins.is_empty()
            && self.contacts.is_empty()
    }
}

/// The first field of a [`PartyEntry`].
#[derive(Deserialize)]
pub(super) struct LinkOnly {
    pub link: Option<String>,
}

/// The first three fields of a [`PartyEntry`].
#[derive(Deserialize)]
pub(super) struct UpToState {
    #[allow(dead_code)] // read past, in field order
    link: Option<String>,
    pub ids: Option<PartyIds>,
    pub state: Option<Party>,
}

/// Puts `item` into the sorted, duplicate-free `list`.
fn insert_sorted<T: Ord>(list: &mut Vec<T>, item: T) {
    if let Err(at) = list.binary_search(&item) {
        list.insert(at, item);
    }
}

/// The entries of every party `change` touches, each read once by `read` (`None`: unknown
/// yet) and then changed as the unit of work says, in its order.
pub(super) fn changed_entries(
    change: &Change,
    read: impl Fn(&PartyKey) -> Result<Option<PartyEntry>, StoreError>,
) -> Result<BTreeMap<PartyKey, PartyEntry>, StoreError> {
    let mut entries: BTreeMap<PartyKey, PartyEntry> = BTreeMap::new();
    fn entry<'m>(
        entries: &'m mut BTreeMap<PartyKey, PartyEntry>,
        party: &PartyKey,
        read: &impl Fn(&PartyKey) -> Result<Option<PartyEntry>, StoreError>,
    ) -> Result<&'m mut PartyEntry, StoreError> {
        Ok(match entries.entry(party.clone()) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => v.insert(read(party)?.unwrap_or_default()),
        })
    }
    for (dealer, customer_ref, ids) in &change.parties {
        let party = (dealer.clone(), customer_ref.clone());
        entry(&mut entries, &party, &read)?.ids = Some(ids.clone());
    }
    for (party, seq) in &change.contacts {
        insert_sorted(&mut entry(&mut entries, party, &read)?.contacts, *seq);
    }
    let merge = &change.merge;
    for (party, state) in &merge.parties {
        entry(&mut entries, party, &read)?.state = Some(state.clone());
    }
    for (party, customer) in &merge.links {
        entry(&mut entries, party, &read)?.link = customer.clone();
    }
    for (party, vin) in &merge.party_vins {
        insert_sorted(&mut entry(&mut entries, party, &read)?.vins, vin.clone());
    }
    Ok(entries)
}

impl SledStore {
    /// A party's whole entry.
    pub(super) fn party_entry(&self, party: &PartyKey) -> Result<Option<PartyEntry>, StoreError> {
        self.get(&party_prefixed(PARTY, party))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(n: u32) -> PartyKey {
        ("D-1042".into(), format!("CU-{n}"))
    }

    #[test]
    fn a_prefix_of_the_entry_reads_as_its_first_fields() {
        let entry = PartyEntry {
            link: Some("CUS-9".into()),
            ids: Some(PartyIds {
                national_id: Some("0012345679".into()),
                company_id: None,
            }),
            state: None,
            vins: vec!["NAAM01CA7PK123456".into()],
            contacts: vec![3, 256],
        };
        let bytes = postcard::to_allocvec(&entry).expect("encode");
        let link: LinkOnly = postcard::from_bytes(&bytes).expect("link");
        assert_eq!(link.link.as_deref(), Some("CUS-9"));
        let head: UpToState = postcard::from_bytes(&bytes).expect("head");
        assert_eq!(head.ids, entry.ids);
        assert_eq!(head.state, None);
        let all: PartyEntry = postcard::from_bytes(&bytes).expect("all");
        assert_eq!(all, entry);
    }

    #[test]
    fn a_unit_of_work_changes_each_party_once_keeping_what_it_does_not_name() {
        let stored = PartyEntry {
            link: Some("CUS-1".into()),
            vins: vec!["VIN-B".into()],
            contacts: vec![5],
            ..Default::default()
        };
        let mut change = Change {
            contacts: vec![(party(1), 9), (party(1), 2), (party(1), 5), (party(2), 1)],
            ..Default::default()
        };
        change.merge.party_vins = vec![(party(1), "VIN-A".into()), (party(1), "VIN-B".into())];
        change.merge.links = vec![(party(2), Some("CUS-2".into())), (party(2), None)];
        let reads = std::cell::Cell::new(0);
        let entries = changed_entries(&change, |p| {
            reads.set(reads.get() + 1);
            Ok((*p == party(1)).then(|| stored.clone()))
        })
        .expect("entries");
        assert_eq!(reads.get(), 2, "each party read once");
        let one = &entries[&party(1)];
        assert_eq!(one.contacts, vec![2, 5, 9]);
        assert_eq!(one.vins, vec!["VIN-A".to_string(), "VIN-B".to_string()]);
        assert_eq!(
            one.link.as_deref(),
            Some("CUS-1"),
            "kept: the unit did not name it"
        );
        let two = &entries[&party(2)];
        assert_eq!(two.link, None, "the later link of the unit wins");
        assert_eq!(two.contacts, vec![1]);
        assert!(!two.is_empty());
    }
}
