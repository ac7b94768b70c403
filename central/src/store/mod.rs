//! The hub's storage, behind a narrow trait so that rules, merge and the HQ API never see the
//! engine. sled ([`sled_store::SledStore`]) is the embedded default; a PostgreSQL-compatible
//! backend for a multi-node hub is on the roadmap and would implement the same trait.
//!
//! **Invariant:** [`HubStore::apply`] is atomic (all of a change or none of it) and
//! [`HubStore::flush`] makes everything applied before it durable. The hub acks a batch only
//! after a flush that began after the batch was applied.
//!
//! **The store owns the sequences.** Verdict-feed cursors and change-stream cursors are numbered
//! by [`HubStore::apply`] inside the unit of work (a transactional backend takes them from a
//! counter row it holds until commit, so cursors appear in commit order), and HQ decision
//! numbers come from [`HubStore::next_decision_no`]. Callers never compute `last + 1`.
//!
//! **Conflicts are typed.** A unit of work carries what it read that others could have
//! changed (each sending dealer's stored seq, [`DealerDelta::expect_stored_seq`]); a store
//! that finds it changed refuses the whole change with [`StoreError::Conflict`], and the caller
//! judges the batch again ([`StoreError::is_retryable`]).
//!
//! A dealer's sync state is written in two parts that never overwrite each other: the
//! counters and feed cursor by [`HubStore::apply`], the session facts (hello, clock offset,
//! acknowledged verdicts) by [`HubStore::open_session`] and
//! [`HubStore::acknowledge_verdicts`]. So a session never waits for, or undoes, a batch.
//!
//! **Derived summaries.** HQ's customer reports read one summary per customer
//! (`crate::analytics::summary`), which the store keeps as opaque bytes beside, not inside,
//! the projection: they are not part of digests or rebuilds. [`HubStore::apply`] logs what each
//! unit of work touched ([`Touched`], numbered by the store) in the same atomic write; the
//! summaries' keeper reads that log, rewrites the summaries it affects together with the
//! number it has read to ([`HubStore::put_summaries`]), then forgets the entries.
//!
//! `contract` is the test suite every implementation must pass.

pub mod contract;
mod logged;
mod older;
pub mod sled_store;

use crate::domain::{ChangeEntry, ChangeLogEntry, DealerState, FlagEntry, StoredRecord, Verdict};
use std::collections::BTreeMap;

use crate::model::customer::{
    Conflict, DecisionEntry, GoldenCustomer, MergeChange, Party, PartyKey, ReviewItem,
};
use crate::model::groups::{DayTally, GroupKey, GroupState, Member, PartyIds};
use crate::model::vehicle::{VehicleDecisions, VehicleFact, VehicleSales};
use crate::model::At;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("stored value under {key} does not decode: {detail}")]
    Corrupt { key: String, detail: String },
    /// What the unit of work read was changed by another writer before it was applied: nothing
    /// of it was written. Retryable: judge it again on what the store holds now.
    #[error("conflicting write, nothing applied: {0}")]
    Conflict(String),
    /// The store's data format is not the one this binary writes.
    #[error("the store at {path} has data format {found}, and this binary reads and writes format {known}: {what_to_do}")]
    Format {
        path: String,
        found: u32,
        known: u32,
        what_to_do: &'static str,
    },
}

impl StoreError {
    /// A conflict: the same unit of work may succeed when judged again.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

/// What a unit of work does to one dealer's counters; the store adds it to what it holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DealerDelta {
    /// The dealer's stored seq the unit of work was judged on (its sending dealer's): the
    /// store refuses the change with [`StoreError::Conflict`] if it holds another.
    pub expect_stored_seq: Option<u64>,
    /// The new highest seq held (0: unchanged).
    pub stored_seq: u64,
    /// New records stored.
    pub records_added: u64,
    /// Change in the number of the dealer's records in quarantine.
    pub rejected_delta: i64,
    /// When the hub received the batch (0: not a batch of this dealer).
    pub seen_ms: i64,
}

/// What one unit of work wrote that a customer's summary is made from: the records it put,
/// the vehicles whose facts, sales or decisions it changed, the parties whose link or
/// contacts it changed, and the customers it put or removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Touched {
    pub records: Vec<(String, u64)>,
    pub vins: Vec<String>,
    pub parties: Vec<PartyKey>,
    pub customers: Vec<String>,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
            && self.vins.is_empty()
            && self.parties.is_empty()
            && self.customers.is_empty()
    }
}

/// What a write of customer summaries does to the touched-log number they are current to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadTo {
    /// Unchanged.
    Keep,
    /// Current to this number.
    At(u64),
    /// Not built (a build under way): [`HubStore::summaries_read_to`] says `None` again.
    Unbuilt,
}

/// What [`HubStore::apply`] numbered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Each dealer whose verdict feed grew, with its last cursor now.
    pub verdict_cursors: Vec<(String, u64)>,
    /// The change stream's last cursor, if the change added to it.
    pub last_change: Option<u64>,
    /// Bytes handed to the engine (keys and values), by what they are (`records`,
    /// `group_states`, `vehicles` ...): where a unit of work's write volume goes. A backend
    /// counts what it sends (a row's encoded size); the bench prints it per record.
    pub bytes_written: Vec<(&'static str, u64)>,
    /// Keys (or rows) the engine was given to put or remove, by the same kinds: what the
    /// engine's per-key cost multiplies (the bench prints it per record).
    pub keys_written: Vec<(&'static str, u64)>,
}

/// One atomic change: what one batch (or one review) did to the hub's state.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// Dealer counters to move (the sending dealer's, and any dealer whose quarantine moved).
    pub dealers: Vec<(String, DealerDelta)>,
    /// Records to put, new or with a changed verdict; rejected ones are (still) in quarantine,
    /// the others not.
    pub records: Vec<StoredRecord>,
    /// History-group memberships to put (new, or with new findings).
    pub joined: Vec<(GroupKey, Member)>,
    /// History-group memberships to remove: `(group, dealer, seq)`.
    pub left: Vec<(GroupKey, String, u64)>,
    /// The state of incrementally judged groups (`None`: the group is empty now).
    pub group_states: Vec<(GroupKey, Option<GroupState>)>,
    /// A dealer's customers by its own ref: `(dealer, customer_ref, ids)`.
    pub parties: Vec<(String, String, PartyIds)>,
    /// Verdict changes queued for dealers, in order: the store numbers them on each dealer's
    /// feed.
    pub verdict_updates: Vec<(String, Verdict)>,
    /// Reliability tallies to put: `(dealer, day, tally)`.
    pub tallies: Vec<(String, i64, DayTally)>,
    /// Customers, vehicles, review pairs, conflicts and HQ decisions.
    pub merge: MergeChange,
    /// Change-stream entries, in order: the store numbers them after its last cursor.
    pub changes: Vec<ChangeEntry>,
    /// When the change was made (the change-stream entries' time).
    pub at_ms: i64,
    /// Flag-index entries to put (`Some`) or remove: `(rule, dealer, seq, entry)`.
    pub flag_index: Vec<(String, String, u64, Option<FlagEntry>)>,
    /// Contact-index entries: a dealer's record `seq` names the party.
    pub contacts: Vec<(PartyKey, u64)>,
    /// Parties a corrected record named before this change and may name no more: nothing is
    /// written for them (the contact index only grows), but their customers' summaries change
    /// ([`Change::touched`]).
    pub unnamed: Vec<PartyKey>,
}

impl Change {
    /// What the change touches that customer summaries are made from (each item once).
    pub fn touched(&self) -> Touched {
        use std::collections::BTreeSet;
        let m = &self.merge;
        let records: BTreeSet<(&str, u64)> = self
            .records
            .iter()
            .map(|r| (r.dealer_id.as_str(), r.seq))
            .collect();
        let vins: BTreeSet<&str> = m
            .vehicle_facts
            .iter()
            .map(|((vin, _), _)| vin.as_str())
            .chain(m.vehicle_sales.iter().map(|(vin, _)| vin.as_str()))
            .chain(m.vehicle_decisions.iter().map(|(vin, _)| vin.as_str()))
            .chain(m.party_vins.iter().map(|(_, vin)| vin.as_str()))
            .collect();
        let parties: BTreeSet<&PartyKey> = m
            .links
            .iter()
            .map(|(p, _)| p)
            .chain(self.contacts.iter().map(|(p, _)| p))
            .chain(&self.unnamed)
            .collect();
        let customers: BTreeSet<&str> = m.customers.iter().map(|(id, _)| id.as_str()).collect();
        Touched {
            records: records
                .into_iter()
                .map(|(d, s)| (d.to_owned(), s))
                .collect(),
            vins: vins.into_iter().map(str::to_owned).collect(),
            parties: parties.into_iter().cloned().collect(),
            customers: customers.into_iter().map(str::to_owned).collect(),
        }
    }

    /// How many keys, rows or index entries the change writes or removes, by what they are (the
    /// cost of a unit of work: the bench prints it per record, a test counts records written).
    pub fn writes(&self) -> Vec<(&'static str, usize)> {
        let m = &self.merge;
        vec![
            ("records", self.records.len()),
            ("members", self.joined.len() + self.left.len()),
            ("group_states", self.group_states.len()),
            ("verdict_updates", self.verdict_updates.len()),
            ("changes", self.changes.len()),
            ("flag_index", self.flag_index.len()),
            ("contacts", self.contacts.len()),
            ("parties", self.parties.len() + m.parties.len()),
            ("name_words", m.name_words.len()),
            ("blocks", m.blocks.len()),
            ("links", m.links.len()),
            ("customers", m.customers.len()),
            (
                "vehicles",
                m.vehicle_sales.len() + m.vehicle_facts.len() + m.party_vins.len(),
            ),
            ("reviews_conflicts", m.reviews.len() + m.conflicts.len()),
            ("tallies_dealers", self.tallies.len() + self.dealers.len()),
        ]
    }
}

/// The use of an enrolment token: which dealer enrolled with it and when (hub clock).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsedToken {
    pub dealer_id: String,
    pub at_ms: i64,
    /// Where the enrolment came from.
    pub remote_addr: String,
}

/// One entry of the access audit: who read whose data through the HQ API, or took which
/// decision, by the hub's clock. Append-only: the store numbers entries and never rewrites one.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AccessEntry {
    /// 1, 2, 3... without gaps, given by [`HubStore::append_access`] (0 before that).
    pub no: u64,
    /// When, by the hub's clock (ms since the epoch).
    pub at_ms: i64,
    /// The certificate's identity (`hq/reader/crm`): never what a request says of itself.
    pub who: String,
    /// The RPC: `SearchCustomers`, `GetCustomer`, `Export`, `Decide`...
    pub rpc: String,
    /// What was asked, in words. Never a searched national ID, mobile or name in clear.
    pub what: String,
    /// The customers whose data the answer carried (customer ids).
    pub customers: Vec<String>,
    /// How many items the answer carried (customers, records, or 1 for a decision).
    pub count: u64,
}

/// One row of the flag index: `(rule_id, dealer, seq, entry)`.
pub type FlagRow = (String, String, u64, FlagEntry);

/// What the hub needs from its storage.
pub trait HubStore: Send + Sync + 'static {
    /// A dealer's sync state, if the hub has heard from it.
    fn dealer(&self, dealer_id: &str) -> Result<Option<DealerState>, StoreError>;
    /// Every dealer, ordered by id.
    fn dealers(&self) -> Result<Vec<(String, DealerState)>, StoreError>;
    /// Records a sync session's hello: the agent's clock offset (agent - hub), seen at `at_ms`.
    /// Returns the dealer's state with it. Never waits for, or overwrites, a unit of work.
    fn open_session(
        &self,
        dealer_id: &str,
        clock_offset_ms: i64,
        at_ms: i64,
    ) -> Result<DealerState, StoreError>;
    /// Moves the cursor the dealer's agent acknowledged on its verdict feed forward (never
    /// back, never past the feed's last cursor); returns the acknowledged cursor now.
    fn acknowledge_verdicts(&self, dealer_id: &str, cursor: u64) -> Result<u64, StoreError>;
    /// The next HQ decision number (1, 2, 3...): the store's sequence, taken before the
    /// decision's unit of work is judged (a decision that fails leaves a gap).
    fn next_decision_no(&self) -> Result<u64, StoreError>;
    /// The record a dealer holds at `seq`.
    fn record(&self, dealer_id: &str, seq: u64) -> Result<Option<StoredRecord>, StoreError>;
    /// Up to `limit` records of a dealer with seq greater than `after_seq`, ascending.
    fn records(
        &self,
        dealer_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Up to `limit` quarantined records of a dealer with seq greater than `after_seq`.
    fn quarantined(
        &self,
        dealer_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError>;
    /// Where a record id is stored: its dealer and seq.
    fn locate(&self, record_id: &str) -> Result<Option<(String, u64)>, StoreError>;
    /// Every member of a history group (an index lookup).
    fn members(&self, group: &GroupKey) -> Result<Vec<Member>, StoreError>;
    /// One member of a history group.
    fn member(
        &self,
        group: &GroupKey,
        dealer_id: &str,
        seq: u64,
    ) -> Result<Option<Member>, StoreError>;
    /// The members of a group just before and just after `(dealer_id, seq)` (that member
    /// itself excluded), in the order of `(dealer, seq)`: what a rule reading a record's
    /// neighbours in its dealer's order needs (T01 over a source's sequence), without reading
    /// the group.
    fn neighbours(
        &self,
        group: &GroupKey,
        dealer_id: &str,
        seq: u64,
    ) -> Result<(Option<Member>, Option<Member>), StoreError>;
    /// The state of an incrementally judged group ([`GroupState`]).
    fn group_state(&self, group: &GroupKey) -> Result<Option<GroupState>, StoreError>;
    /// The customer a dealer registered under `customer_ref`.
    fn party(&self, dealer_id: &str, customer_ref: &str) -> Result<Option<PartyIds>, StoreError>;
    /// Up to `limit` verdict changes queued for a dealer after `cursor`, ascending.
    fn verdict_updates(
        &self,
        dealer_id: &str,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Verdict)>, StoreError>;
    /// A dealer's tally of one day.
    fn tally(&self, dealer_id: &str, day: i64) -> Result<Option<DayTally>, StoreError>;
    /// Every dealer's tallies from `from_day` on.
    fn tallies(&self, from_day: i64) -> Result<Vec<(String, i64, DayTally)>, StoreError>;
    /// The merge's state of a party (a dealer's customer ref).
    fn merge_party(&self, party: &PartyKey) -> Result<Option<Party>, StoreError>;
    /// Up to `limit` parties after `after` (all from the start with `None`), ascending.
    fn merge_parties(
        &self,
        after: Option<&PartyKey>,
        limit: usize,
    ) -> Result<Vec<(PartyKey, Party)>, StoreError>;
    /// The parties indexed under an identity block (`n:<national id>`, `m:<mobile>`, ...).
    fn block(&self, block: &str) -> Result<Vec<PartyKey>, StoreError>;
    /// The customer a party is linked to.
    fn link(&self, party: &PartyKey) -> Result<Option<String>, StoreError>;
    fn customer(&self, customer_id: &str) -> Result<Option<GoldenCustomer>, StoreError>;
    /// Up to `limit` customers with id above `after`, ascending.
    fn customers(&self, after: &str, limit: usize) -> Result<Vec<GoldenCustomer>, StoreError>;
    /// The fact each usable record about a vehicle says, by record. HQ's vehicle history is
    /// projected from them when read ([`crate::merge::vehicle::read`]).
    fn vehicle_facts(&self, vin: &str) -> Result<BTreeMap<At, VehicleFact>, StoreError>;
    /// The fact one record says about a vehicle.
    fn vehicle_fact(&self, vin: &str, at: &At) -> Result<Option<VehicleFact>, StoreError>;
    /// A vehicle's deliveries and the sales that lose to HQ's confirmed seller.
    fn vehicle_sales(&self, vin: &str) -> Result<Option<VehicleSales>, StoreError>;
    /// Up to `limit` VINs above `after` that a usable record names, ascending.
    fn vehicle_vins(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError>;
    /// Whether the party index holds `vin` for `party`.
    fn party_names_vin(&self, party: &PartyKey, vin: &str) -> Result<bool, StoreError>;
    /// The VINs whose history names a party.
    fn party_vins(&self, party: &PartyKey) -> Result<Vec<String>, StoreError>;
    /// Up to `limit` identity-review pairs after `after`, ascending.
    fn reviews(
        &self,
        after: Option<&(PartyKey, PartyKey)>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>, StoreError>;
    /// The conflicts of one subject (by its key), none if it has none.
    fn subject_conflicts(&self, subject: &str) -> Result<Vec<Conflict>, StoreError>;
    /// Up to `limit` subjects with conflicts (subject key above `after`), ascending.
    fn conflicts(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<Conflict>)>, StoreError>;
    fn vehicle_decisions(&self, vin: &str) -> Result<Option<VehicleDecisions>, StoreError>;
    /// Up to `limit` HQ decisions numbered above `after`, in order.
    fn decisions(&self, after: u64, limit: usize) -> Result<Vec<DecisionEntry>, StoreError>;
    /// The number of the last HQ decision (0: none).
    fn last_decision(&self) -> Result<u64, StoreError>;
    /// The cursor of the change stream's last entry (0: none).
    fn last_change(&self) -> Result<u64, StoreError>;
    /// Up to `limit` change-stream entries after `cursor`, in order.
    fn changes(&self, cursor: u64, limit: usize) -> Result<Vec<ChangeLogEntry>, StoreError>;
    /// Seqs of a dealer's records that named `customer_ref` when stored (deliveries, repair
    /// orders, leads, complaints, surveys, the customer records themselves). The index only
    /// grows: a correction may have moved a record to another ref since, so readers check the
    /// content in force.
    fn contacts(&self, party: &PartyKey) -> Result<Vec<u64>, StoreError>;
    /// Up to `limit` rows of the flag index for `rule_id` (and `dealer`, if given), after
    /// `(dealer, seq)`, in `(dealer, seq)` order.
    fn flags(
        &self,
        rule_id: &str,
        dealer: Option<&str>,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<FlagRow>, StoreError>;
    /// Up to `limit` parties whose name has a word starting with `prefix` (normalised words),
    /// after `after`. The index only grows: readers check the party's view.
    fn name_words(
        &self,
        prefix: &str,
        after: Option<&(String, PartyKey)>,
        limit: usize,
    ) -> Result<Vec<(String, PartyKey)>, StoreError>;
    /// Appends an entry to the access audit, numbered one above the last (the store owns the
    /// numbers), and makes it durable before returning its number. Separate from
    /// [`HubStore::apply`]: the audit is not a projection of the record log.
    fn append_access(&self, entry: &AccessEntry) -> Result<u64, StoreError>;
    /// Marks the enrolment token with this SHA-256 used (durably, before returning), unless it
    /// was already: then the earlier use is returned and nothing changes. A token works once,
    /// even when two enrolments race.
    fn use_enrolment_token(
        &self,
        sha256: &str,
        used: &UsedToken,
    ) -> Result<Option<UsedToken>, StoreError>;
    /// Up to `limit` access-audit entries numbered above `after`, in order.
    fn access_log(&self, after: u64, limit: usize) -> Result<Vec<AccessEntry>, StoreError>;
    /// Applies a change atomically, numbering its verdict changes and change-stream entries;
    /// it is durable only after the next [`HubStore::flush`]. [`StoreError::Conflict`] when
    /// a dealer's stored seq is not the one the change expects: nothing is applied.
    fn apply(&self, change: &Change) -> Result<Applied, StoreError>;
    /// Makes everything applied so far durable. Blocking; call it from one flusher task.
    fn flush(&self) -> Result<(), StoreError>;
    /// Up to `limit` entries of the touched log numbered above `after`, in order: what each
    /// applied unit of work touched ([`Change::touched`]; a change that touched nothing has no
    /// entry).
    fn touched(&self, after: u64, limit: usize) -> Result<Vec<(u64, Touched)>, StoreError>;
    /// The touched log's last number (0 when it never had an entry).
    fn last_touched(&self) -> Result<u64, StoreError>;
    /// Removes the touched log's entries numbered up to `upto` (the keeper has read them).
    fn forget_touched(&self, upto: u64) -> Result<(), StoreError>;
    /// The touched-log number the customer summaries are current to; `None` before they
    /// were first built.
    fn summaries_read_to(&self) -> Result<Option<u64>, StoreError>;
    /// The customer summary of `customer_id`, if there is one.
    fn summary(&self, customer_id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` customer summaries after the customer id `after`, in id order.
    fn summaries(&self, after: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Puts (`Some`) or removes customer summaries and moves the touched-log number they are
    /// current to as `read_to` says, in one atomic write.
    fn put_summaries(
        &self,
        writes: &[(String, Option<Vec<u8>>)],
        read_to: ReadTo,
    ) -> Result<(), StoreError>;
    /// Bytes of acked units of work the backend has in its log but not yet in its main
    /// structure (the sled store's write-ahead log ahead of its checkpointer: what a crash
    /// would replay); `None` for a backend without such a log.
    fn unwritten_log_bytes(&self) -> Option<u64> {
        None
    }
}
