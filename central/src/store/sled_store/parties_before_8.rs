//! Reading a party from a store of formats 5-7, opened to rebuild from: the five key spaces
//! format 8 folds into one entry (`party`). `central admin rebuild` reads the old store's
//! digest (its links and merge states) to compare with the rebuilt one.
//!
//! | key | value |
//! |---|---|
//! | `p` dealer `\0` customer_ref | [`PartyIds`] |
//! | `P` dealer `\0` customer_ref | the merge's [`Party`] |
//! | `L` dealer `\0` customer_ref | the customer id the party is linked to |
//! | `Z` dealer `\0` customer_ref `\0` VIN | the VIN |
//! | `K` dealer `\0` customer_ref `\0` seq (u64 BE) | empty: the record named the party |

use super::{engine, party_prefixed, SledStore, PARTY};
use crate::model::customer::{Party, PartyKey};
use crate::model::groups::PartyIds;
use crate::store::StoreError;

const IDS: u8 = b'p';
const LINK: u8 = b'L';
const VIN: u8 = b'Z';
const CONTACT: u8 = b'K';

/// `prefix` dealer `\0` customer_ref `\0`: where a party's VINs or contacts begin.
fn listed_under(prefix: u8, party: &PartyKey) -> Vec<u8> {
    let mut key = party_prefixed(prefix, party);
    key.push(0);
    key
}

impl SledStore {
    /// Whether parties are kept as formats 5-7 kept them.
    pub(super) fn parties_before_8(&self) -> bool {
        self.format < 8
    }

    pub(super) fn old_party_ids(&self, party: &PartyKey) -> Result<Option<PartyIds>, StoreError> {
        self.get(&party_prefixed(IDS, party))
    }

    pub(super) fn old_merge_party(&self, party: &PartyKey) -> Result<Option<Party>, StoreError> {
        self.get(&party_prefixed(PARTY, party))
    }

    pub(super) fn old_link(&self, party: &PartyKey) -> Result<Option<String>, StoreError> {
        self.get(&party_prefixed(LINK, party))
    }

    pub(super) fn old_party_vins(&self, party: &PartyKey) -> Result<Vec<String>, StoreError> {
        self.decoded_under(&listed_under(VIN, party))
    }

    pub(super) fn old_contacts(&self, party: &PartyKey) -> Result<Vec<u64>, StoreError> {
        let prefix = listed_under(CONTACT, party);
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, _) = item.map_err(engine)?;
                let seq: [u8; 8] =
                    k[prefix.len()..]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            key: String::from_utf8_lossy(&k).into_owned(),
                            detail: "contact key without a seq".into(),
                        })?;
                Ok(u64::from_be_bytes(seq))
            })
            .collect()
    }
}
