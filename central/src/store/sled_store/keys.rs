//! The `hub` tree's key spaces: each one's prefix byte, what the metrics call it, and the
//! functions that build and take apart its keys (the table in the parent module says what each
//! holds).

use crate::model::customer::PartyKey;
use crate::model::groups::GroupKey;
use crate::model::At;
use crate::store::StoreError;

pub(super) const RECORD: u8 = b'r';
pub(super) const RECORD_ID: u8 = b'i';
pub(super) const QUARANTINE: u8 = b'q';
pub(super) const DEALER: u8 = b'd';
pub(super) const SESSION: u8 = b's';
pub(super) const MEMBER: u8 = b'g';
pub(super) const GROUP_STATE: u8 = b'G';
pub(super) const UPDATE: u8 = b'u';
pub(super) const TALLY: u8 = b't';
pub(super) const PARTY: u8 = b'P';
pub(super) const BLOCK: u8 = b'B';
pub(super) const CUSTOMER: u8 = b'C';
pub(super) const VEHICLE: u8 = b'V';
pub(super) const VEHICLE_FACTS: u8 = b'v';
pub(super) const REVIEW: u8 = b'W';
pub(super) const CONFLICT: u8 = b'X';
pub(super) const VEHICLE_DECISION: u8 = b'Y';
pub(super) const DECISION: u8 = b'H';
pub(super) const CHANGE: u8 = b'E';
pub(super) const CHANGE_CHUNK: u8 = b'e';
pub(super) const FLAG: u8 = b'F';
pub(super) const NAME_WORD: u8 = b'N';
pub(super) const TOUCHED: u8 = b'T';
/// Keys of the `customer-summaries` tree.
pub(super) const SUMMARY: u8 = b'c';
pub(super) const SUMMARIES_READ_TO: &[u8] = b"r";

/// What a key space holds, by its prefix byte, as [`Applied::bytes_written`] names it.
pub(super) fn kind_of(prefix: u8) -> &'static str {
    match prefix {
        RECORD => "records",
        RECORD_ID => "record_ids",
        QUARANTINE => "quarantine",
        DEALER | TALLY => "tallies_dealers",
        MEMBER => "members",
        GROUP_STATE => "group_states",
        PARTY => "parties",
        UPDATE => "verdict_updates",
        BLOCK => "blocks",
        CUSTOMER => "customers",
        VEHICLE => "vehicle_sales",
        VEHICLE_FACTS => "vehicle_facts",
        REVIEW | CONFLICT => "reviews_conflicts",
        VEHICLE_DECISION | DECISION => "decisions",
        CHANGE | CHANGE_CHUNK => "changes",
        FLAG => "flag_index",
        NAME_WORD => "name_words",
        TOUCHED => "touched",
        _ => "other",
    }
}

pub(super) fn dealer_seq_key(prefix: u8, dealer_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(dealer_id.len() + 10);
    key.push(prefix);
    key.extend_from_slice(dealer_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

pub(super) fn group_prefix(group: &GroupKey) -> Vec<u8> {
    let text = group.encode();
    let mut key = Vec::with_capacity(text.len() + 5);
    key.push(MEMBER);
    key.extend_from_slice(&(text.len() as u32).to_be_bytes());
    key.extend_from_slice(text.as_bytes());
    key
}

/// `G` then the group key as in [`group_prefix`]: the key of a group's entry.
pub(super) fn group_state_key(group: &GroupKey) -> Vec<u8> {
    let mut key = group_prefix(group);
    key[0] = GROUP_STATE;
    key
}

pub(super) fn member_key(group: &GroupKey, dealer_id: &str, seq: u64) -> Vec<u8> {
    let mut key = group_prefix(group);
    key.extend_from_slice(dealer_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// `P` dealer `\0` customer_ref: the key of a party's entry.
pub(super) fn party_key(dealer_id: &str, customer_ref: &str) -> Vec<u8> {
    let mut key = prefixed(PARTY, dealer_id);
    key.push(0);
    key.extend_from_slice(customer_ref.as_bytes());
    key
}

/// `prefix` then the party's dealer and ref, `\0`-separated.
pub(super) fn party_prefixed(prefix: u8, party: &PartyKey) -> Vec<u8> {
    let mut key = prefixed(prefix, &party.0);
    key.push(0);
    key.extend_from_slice(party.1.as_bytes());
    key
}

/// The length of the prefix a key's family is read by in a range (a block's parties, a
/// group's members, a vehicle's facts): the log's filter notes it
/// so a range read of a prefix sled holds nothing under skips sled. `None` for the others.
pub(super) fn scan_prefix_len(key: &[u8]) -> Option<usize> {
    let nul = |nth: usize| {
        key.iter()
            .enumerate()
            .filter(|(_, b)| **b == 0)
            .nth(nth)
            .map(|(at, _)| at + 1)
    };
    match key.first()? {
        &BLOCK | &VEHICLE_FACTS => nul(0),
        &MEMBER => {
            let len = u32::from_be_bytes(key.get(1..5)?.try_into().ok()?) as usize;
            Some(5 + len).filter(|n| *n <= key.len())
        }
        _ => None,
    }
}

pub(super) fn block_prefix(block: &str) -> Vec<u8> {
    let mut key = prefixed(BLOCK, block);
    key.push(0);
    key
}

pub(super) fn block_key(block: &str, party: &PartyKey) -> Vec<u8> {
    let mut key = block_prefix(block);
    key.extend_from_slice(party.0.as_bytes());
    key.push(0);
    key.extend_from_slice(party.1.as_bytes());
    key
}

/// `v` VIN `\0`: the prefix of a vehicle's fact keys.
pub(super) fn vehicle_fact_prefix(vin: &str) -> Vec<u8> {
    let mut key = prefixed(VEHICLE_FACTS, vin);
    key.push(0);
    key
}

pub(super) fn vehicle_fact_key(vin: &str, at: &At) -> Vec<u8> {
    let mut key = vehicle_fact_prefix(vin);
    key.extend_from_slice(&dealer_seq_key(0, &at.0, at.1)[1..]);
    key
}

/// The record (dealer, seq) a key names after `skip` bytes: dealer `\0` seq (u64 BE).
pub(super) fn at_of_key(key: &[u8], skip: usize) -> Result<At, StoreError> {
    let corrupt = || StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: "key without a dealer and seq".into(),
    };
    let (dealer, seq) = key.get(skip..).and_then(split_nul).ok_or_else(corrupt)?;
    let seq = <[u8; 8]>::try_from(seq).map_err(|_| corrupt())?;
    Ok((utf8(key, dealer)?, u64::from_be_bytes(seq)))
}

pub(super) fn review_key(pair: &(PartyKey, PartyKey)) -> Vec<u8> {
    let mut key = party_prefixed(REVIEW, &pair.0);
    key.push(0);
    key.extend_from_slice(pair.1 .0.as_bytes());
    key.push(0);
    key.extend_from_slice(pair.1 .1.as_bytes());
    key
}

/// Days as sortable bytes (offset so that negative days sort first).
pub(super) fn tally_key(dealer_id: &str, day: i64) -> Vec<u8> {
    dealer_seq_key(TALLY, dealer_id, (day as u64) ^ (1 << 63))
}

/// `F` rule `\0` dealer `\0` seq: the flag index key.
pub(super) fn flag_key(rule_id: &str, dealer_id: &str, seq: u64) -> Vec<u8> {
    let mut key = prefixed(FLAG, rule_id);
    key.push(0);
    key.extend_from_slice(&dealer_seq_key(0, dealer_id, seq)[1..]);
    key
}

pub(super) fn name_word_key(word: &str, party: &PartyKey) -> Vec<u8> {
    let mut key = prefixed(NAME_WORD, word);
    key.push(0);
    key.extend_from_slice(&party_prefixed(0, party)[1..]);
    key
}

/// Splits `a \0 b` at its first `\0`.
pub(super) fn split_nul(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == 0)?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

pub(super) fn utf8(key: &[u8], part: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(part.to_vec()).map_err(|_| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: "not UTF-8".into(),
    })
}

pub(super) fn prefixed(prefix: u8, text: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(text.len() + 1);
    key.push(prefix);
    key.extend_from_slice(text.as_bytes());
    key
}

/// The key of the touched log's entry `no`.
pub(super) fn touched_key(no: u64) -> Vec<u8> {
    let mut key = vec![TOUCHED];
    key.extend_from_slice(&no.to_be_bytes());
    key
}

/// A number stored as u64 BE.
pub(super) fn cursor_of_value(value: &[u8]) -> Result<u64, StoreError> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| StoreError::Corrupt {
            key: "customer-summaries r".into(),
            detail: "not a u64".into(),
        })
}

/// The cursor a change chunk's (or touched-log entry's) key ends with.
pub(super) fn cursor_of_key(key: &[u8]) -> Result<u64, StoreError> {
    key.get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            detail: "change chunk key without a cursor".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_read_by_its_family_prefix_names_exactly_that_prefix() {
        let party: PartyKey = ("D-1042".into(), "CU-7".into());
        let group = GroupKey::Vin("NAAM01CA7PK123456".into());
        let families: [(Vec<u8>, Vec<u8>); 3] = [
            (
                block_prefix("m:+989121234567"),
                block_key("m:+989121234567", &party),
            ),
            (group_prefix(&group), member_key(&group, "D-1042", 256)),
            (
                vehicle_fact_prefix("NAAM01CA7PK123456"),
                vehicle_fact_key("NAAM01CA7PK123456", &("D-1042".into(), 256)),
            ),
        ];
        for (prefix, key) in families {
            assert!(key.starts_with(&prefix));
            assert_eq!(scan_prefix_len(&key), Some(prefix.len()), "{key:?}");
            assert_eq!(scan_prefix_len(&prefix), Some(prefix.len()), "{prefix:?}");
            assert_eq!(
                scan_prefix_len(&prefix[..prefix.len() - 1]),
                None,
                "{prefix:?}"
            );
        }
        assert_eq!(
            scan_prefix_len(&dealer_seq_key(RECORD, "D-1042", 256)),
            None
        );
        assert_eq!(scan_prefix_len(&prefixed(CUSTOMER, "CU-1")), None);
        assert_eq!(scan_prefix_len(&party_prefixed(PARTY, &party)), None);
    }
}
