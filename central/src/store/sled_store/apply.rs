//! Writing one unit of work: the counters and store-owned numbers read and handed out under
//! the apply lock, every key space's puts and removes in one atomic entry of the log.

use super::keys::*;
use super::{encode, group, logged, party, ChangeChunk, CountedBatch, SledStore};
use crate::domain::{DealerState, Outcome};
use crate::store::{Applied, Change, StoreError};

impl SledStore {
    /// [`HubStore::apply`](crate::store::HubStore::apply): the whole unit of work as one entry of the log.
    pub(super) fn apply_change(&self, change: &Change) -> Result<Applied, StoreError> {
        let mut batch = CountedBatch::default();
        // Counters and cursors are read and numbered under the apply lock, and written in
        // the same atomic batch.
        let mut numbers = self.apply_lock.lock().unwrap_or_else(|p| p.into_inner());
        let last_change = numbers.last_change;
        let mut dealers: std::collections::BTreeMap<&str, DealerState> = Default::default();
        for (dealer, delta) in &change.dealers {
            let state = match dealers.entry(dealer) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(self.get(&prefixed(DEALER, dealer))?.unwrap_or_default())
                }
            };
            if let Some(expected) = delta.expect_stored_seq {
                if state.stored_seq != expected {
                    return Err(StoreError::Conflict(format!(
                        "dealer {dealer} holds seq {} now, the batch was judged on {expected}",
                        state.stored_seq
                    )));
                }
            }
            state.stored_seq = state.stored_seq.max(delta.stored_seq);
            state.record_count += delta.records_added;
            state.rejected_count =
                (state.rejected_count as i64 + delta.rejected_delta).max(0) as u64;
            if delta.seen_ms != 0 {
                state.last_seen_ms = state.last_seen_ms.max(delta.seen_ms);
                if state.first_seen_ms == 0 {
                    state.first_seen_ms = delta.seen_ms;
                }
            }
        }
        let mut applied = Applied::default();
        for (dealer, verdict) in &change.verdict_updates {
            let state = match dealers.entry(dealer) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(self.get(&prefixed(DEALER, dealer))?.unwrap_or_default())
                }
            };
            state.verdict_cursor += 1;
            batch.insert(
                dealer_seq_key(UPDATE, dealer, state.verdict_cursor),
                encode(verdict)?,
            );
        }
        applied.verdict_cursors = change
            .verdict_updates
            .iter()
            .map(|(d, _)| d.as_str())
            .collect::<std::collections::BTreeSet<&str>>()
            .into_iter()
            .map(|d| (d.to_owned(), dealers.get(d).map_or(0, |s| s.verdict_cursor)))
            .collect();
        let cursor = last_change + change.changes.len() as u64;
        if !change.changes.is_empty() {
            let mut key = vec![CHANGE_CHUNK];
            key.extend_from_slice(&cursor.to_be_bytes());
            let chunk = ChangeChunk {
                first: last_change + 1,
                at_ms: change.at_ms,
                entries: std::borrow::Cow::Borrowed(&change.changes),
            };
            batch.insert(key, encode(&chunk)?);
            applied.last_change = Some(cursor);
        }
        for (dealer, state) in &dealers {
            batch.insert(prefixed(DEALER, dealer), encode(state)?);
        }
        for (party, entry) in party::changed_entries(change, |p| self.party_entry(p))? {
            let key = party_prefixed(PARTY, &party);
            if entry.is_empty() {
                batch.remove(key);
            } else {
                batch.insert(key, encode(&entry)?);
            }
        }
        let merge = &change.merge;
        for (word, party) in &merge.name_words {
            batch.insert(name_word_key(word, party), encode(party)?);
        }
        for (block, party, present) in &merge.blocks {
            if *present {
                batch.insert(block_key(block, party), encode(party)?);
            } else {
                batch.remove(block_key(block, party));
            }
        }
        for (id, customer) in &merge.customers {
            match customer {
                Some(c) => batch.insert(prefixed(CUSTOMER, id), encode(c)?),
                None => batch.remove(prefixed(CUSTOMER, id)),
            }
        }
        for (vin, sales) in &merge.vehicle_sales {
            match sales {
                Some(s) => batch.insert(prefixed(VEHICLE, vin), encode(s)?),
                None => batch.remove(prefixed(VEHICLE, vin)),
            }
        }
        for ((vin, at), fact) in &merge.vehicle_facts {
            match fact {
                Some(f) => batch.insert(vehicle_fact_key(vin, at), encode(f)?),
                None => batch.remove(vehicle_fact_key(vin, at)),
            }
        }
        for (pair, item) in &merge.reviews {
            match item {
                Some(item) => batch.insert(review_key(pair), encode(item)?),
                None => batch.remove(review_key(pair)),
            }
        }
        for (subject, conflicts) in &merge.conflicts {
            if conflicts.is_empty() {
                batch.remove(prefixed(CONFLICT, subject));
            } else {
                batch.insert(prefixed(CONFLICT, subject), encode(conflicts)?);
            }
        }
        for (vin, decisions) in &merge.vehicle_decisions {
            batch.insert(prefixed(VEHICLE_DECISION, vin), encode(decisions)?);
        }
        for entry in &merge.decisions {
            let mut key = vec![DECISION];
            key.extend_from_slice(&entry.no.to_be_bytes());
            batch.insert(key, encode(entry)?);
        }
        for (rule, dealer, seq, entry) in &change.flag_index {
            match entry {
                Some(e) => batch.insert(flag_key(rule, dealer, *seq), encode(e)?),
                None => batch.remove(flag_key(rule, dealer, *seq)),
            }
        }
        for record in &change.records {
            let key = dealer_seq_key(RECORD, &record.dealer_id, record.seq);
            // A new record's first verdict is version 1; a later version is of a record
            // stored (and indexed by its id) before.
            if record.verdict.version <= 1 {
                batch.insert(prefixed(RECORD_ID, &record.record_id), &key[1..]);
            }
            let quarantine = dealer_seq_key(QUARANTINE, &record.dealer_id, record.seq);
            if record.verdict.outcome == Outcome::Rejected {
                batch.insert(quarantine, &[] as &[u8]);
            } else if record.verdict.version > 1 {
                // Only a record judged before can have been rejected before.
                batch.remove(quarantine);
            }
            batch.insert(key, encode(record)?);
        }
        let (groups, member_keys) = group::changed_entries(change, |g| self.group_entry(g))?;
        for (group, dealer, seq, member) in member_keys {
            match member {
                Some(m) => batch.insert(member_key(group, dealer, seq), encode(m)?),
                None => batch.remove(member_key(group, dealer, seq)),
            }
        }
        for (group, entry) in groups {
            if entry.is_empty() {
                batch.remove(group_state_key(group));
            } else {
                batch.insert(group_state_key(group), encode(&entry)?);
            }
        }
        for (dealer, day, tally) in &change.tallies {
            batch.insert(tally_key(dealer, *day), encode(tally)?);
        }
        let touched = change.touched();
        let touched_no = numbers.last_touched + u64::from(!touched.is_empty());
        if !touched.is_empty() {
            batch.insert(touched_key(touched_no), encode(&touched)?);
        }
        applied.bytes_written = CountedBatch::by_kind(&batch.bytes);
        applied.keys_written = CountedBatch::by_kind(&batch.keys);
        self.tree.apply(batch.batch).map_err(logged)?;
        numbers.last_change = cursor;
        numbers.last_touched = touched_no;
        Ok(applied)
    }
}
