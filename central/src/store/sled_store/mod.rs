//! The embedded sled store. One tree, `hub`, with key spaces by prefix; a whole unit of work
//! is one entry of its write-ahead log (`store::logged`): atomic, durable once the log is
//! synced, and written into sled off the hot path, each key once per checkpoint.
//!
//! | key | value |
//! |---|---|
//! | `r` dealer `\0` seq (u64 BE) | [`StoredRecord`] (postcard) |
//! | `i` record_id | dealer `\0` seq (u64 BE) |
//! | `q` dealer `\0` seq (u64 BE) | empty: the record is in quarantine (removed only from a record judged before: a first verdict that rejects nothing was never in it) |
//! | `d` dealer | [`DealerState`] (postcard): its counters and feed cursor, written by `apply` |
//! | `s` dealer | [`SessionFacts`] (postcard): hello, clock offset, verdicts acknowledged |
//! | `g` group key length (u32 BE), group key, dealer `\0` seq | a [`Member`] of a history group past the first `group::INLINE` (kept in the `G` entry) |
//! | `G` group key (as in `g`) | the group's entry (`group`): its [`GroupState`], what its rules are decided from, and its first members |
//! | `u` dealer `\0` cursor (u64 BE) | a [`Verdict`] change queued for the dealer |
//! | `t` dealer `\0` day (i64 BE, offset) | the dealer's [`DayTally`] of that day |
//! | `P` dealer `\0` customer_ref | the party's one entry (`party`): its link to a customer, the judge's [`PartyIds`], the merge's [`Party`], the VINs it appears in, the seqs of the records that named it |
//! | `B` block `\0` dealer `\0` customer_ref | the party key: identity block index |
//! | `C` customer id | [`GoldenCustomer`] |
//! | `V` VIN | [`VehicleSales`]: the vehicle's deliveries and losing sales |
//! | `v` VIN `\0` dealer `\0` seq (u64 BE) | the [`VehicleFact`] a usable record says: HQ's vehicle history is projected from them |
//! | `W` party a `\0` party b | [`ReviewItem`]: an uncertain identity pair |
//! | `X` subject key | the subject's [`Conflict`]s |
//! | `Y` VIN | HQ's [`VehicleDecisions`] |
//! | `H` decision number (u64 BE) | a logged [`DecisionEntry`] |
//! | `e` last cursor (u64 BE) | a [`ChangeChunk`]: one unit of work's change-stream entries, numbered from its `first` |
//! | `E` cursor (u64 BE) | one [`ChangeLogEntry`] (stores written before change chunks; read, never written) |
//! | `F` rule `\0` dealer `\0` seq (u64 BE) | [`FlagEntry`](crate::domain::FlagEntry): the rule fired on the record |
//! | `N` name word `\0` dealer `\0` customer_ref | the party key: name search index |
//! | `T` number (u64 BE) | [`Touched`]: what one unit of work touched, until the summaries' keeper has read it |
//!
//! The access audit (who read whose data, [`super::AccessEntry`]) is a second tree,
//! `access-audit`: entry number (u64 BE) → the entry as JSON (self-describing, so entries
//! written years ago still read after fields are added). It is not part of the `hub` tree's
//! atomic changes, digests or rebuilds: it is a log of reads, not a projection of records.
//!
//! Customer summaries are the tree `customer-summaries`: `c` customer id → the summary's bytes
//! (opaque here), and `r` → the touched-log number they are current to (u64 BE). Derived
//! state: not in digests or rebuilds, rebuilt whole when absent.
//!
//! Used enrolment tokens are a third tree, `enrolment-tokens`: the token's SHA-256 (hex) →
//! [`super::UsedToken`] as JSON, inserted once by compare-and-swap, so a token works once even
//! when two enrolments race.
//!
//! Its parts: `keys` (the key spaces' prefixes and key builders), `apply` (writing one unit of
//! work), `party` and `group` (the entries formats 8 and 9 fold a party's and a group's keys
//! into), `parties_before_8` (reading a party from a store of formats 5-7 to rebuild from).
//!
//! No sled type leaves this module.

mod apply;
mod group;
mod keys;
mod parties_before_8;
mod party;

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::logged::{LogError, LoggedTree, Ops};
use super::{
    AccessEntry, Applied, Change, FlagRow, HubStore, ReadTo, StoreError, Touched, UsedToken,
};
use crate::domain::{ChangeLogEntry, DealerState, StoredRecord, Verdict};
use crate::model::customer::{
    Conflict, DecisionEntry, GoldenCustomer, Party, PartyKey, ReviewItem,
};
use crate::model::groups::{DayTally, GroupKey, GroupState, Member, PartyIds};
use crate::model::vehicle::{VehicleDecisions, VehicleFact, VehicleSales};
use crate::model::At;
use keys::*;

/// A sled batch that counts the bytes put under each key space.
#[derive(Default)]
struct CountedBatch {
    batch: super::logged::Ops,
    bytes: std::collections::BTreeMap<u8, u64>,
    keys: std::collections::BTreeMap<u8, u64>,
}

impl CountedBatch {
    fn insert<K: Into<sled::IVec>, V: Into<sled::IVec>>(&mut self, key: K, value: V) {
        let (key, value): (sled::IVec, sled::IVec) = (key.into(), value.into());
        if let Some(prefix) = key.first() {
            *self.bytes.entry(*prefix).or_default() += (key.len() + value.len()) as u64;
            *self.keys.entry(*prefix).or_default() += 1;
        }
        self.batch.insert(key, value);
    }

    fn remove<K: Into<sled::IVec>>(&mut self, key: K) {
        let key: sled::IVec = key.into();
        if let Some(prefix) = key.first() {
            *self.keys.entry(*prefix).or_default() += 1;
        }
        self.batch.remove(key);
    }

    /// `counts` (by prefix) by kind, for [`Applied::bytes_written`] and
    /// [`Applied::keys_written`].
    fn by_kind(counts: &std::collections::BTreeMap<u8, u64>) -> Vec<(&'static str, u64)> {
        let mut by_kind: std::collections::BTreeMap<&'static str, u64> = Default::default();
        for (prefix, n) in counts {
            *by_kind.entry(kind_of(*prefix)).or_default() += n;
        }
        by_kind.into_iter().collect()
    }
}

/// How long opening waits for a lock held by a store that is still closing.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The hub's sled database.
pub struct SledStore {
    db: sled::Db,
    /// The `hub` tree, written through its log (see [`super::logged`]).
    tree: LoggedTree,
    access: sled::Tree,
    /// Used enrolment tokens.
    tokens: sled::Tree,
    /// Numbers access-audit entries one at a time (last number + 1, no gaps).
    access_lock: std::sync::Mutex<()>,
    /// Held by `apply` while it reads the counters it adds to and numbers the change's
    /// cursors: the change stream's and the touched log's last numbers live here.
    apply_lock: std::sync::Mutex<Numbers>,
    /// Customer summaries (derived, see the module doc).
    summaries: sled::Tree,
    /// Held while a dealer's session facts are read and written.
    session_lock: std::sync::Mutex<()>,
    /// The last HQ decision number handed out.
    decisions: std::sync::Mutex<u64>,
    /// The data format of what is stored (older than [`STORE_FORMAT`] only when opened to
    /// rebuild from).
    format: u32,
}

/// The last numbers `apply` handed out.
#[derive(Debug, Clone, Copy, Default)]
struct Numbers {
    last_change: u64,
    last_touched: u64,
}

/// One unit of work's change-stream entries, under the key of its last cursor: one key per
/// batch instead of one per record (a batch of 500 records makes about 700 entries).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ChangeChunk<'a> {
    /// The cursor of the first entry; the others follow without gaps.
    pub first: u64,
    pub at_ms: i64,
    pub entries: std::borrow::Cow<'a, [crate::domain::ChangeEntry]>,
}

/// A dealer's sync-session facts, kept apart from the counters `apply` writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SessionFacts {
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub clock_offset_ms: i64,
    pub verdicts_acked: u64,
}

impl SessionFacts {
    /// `state` with these facts over it (the later sighting, the session's offset and acks).
    fn over(self, mut state: DealerState) -> DealerState {
        state.last_seen_ms = state.last_seen_ms.max(self.last_seen_ms);
        if state.first_seen_ms == 0
            || (self.first_seen_ms != 0 && self.first_seen_ms < state.first_seen_ms)
        {
            state.first_seen_ms = self.first_seen_ms;
        }
        state.clock_offset_ms = self.clock_offset_ms;
        state.verdicts_acked = state.verdicts_acked.max(self.verdicts_acked);
        state
    }
}

/// The data format this binary writes (`!format`, u32 BE). 2: history members carry an
/// odometer replacement's time and readings, conflicts are keyed `customer:` / `vehicle:`.
/// 3: incrementally judged groups keep their state (`G`); session facts apart (`s`).
/// 4: a record keeps its origin (imported history's source and time: `StoredRecord::origin`).
/// 5: a finding's reason is data (a catalogue code and its values, `hamgam_proto::reason`),
/// not its two sentences; the merge keeps each vehicle's facts (`v`).
/// 6: a vehicle's facts are one key per record (`v` VIN `\0` dealer `\0` seq), its sales
/// apart (`V`); its history is projected when read, not stored.
/// 7: the `hub` tree is written through a write-ahead log (`wal/` in the store folder, see
/// `store::logged`); the keys are format 6's, so a format-7 binary took a format-6 store over in place,
/// and a binary of format 6, which would not replay the log, refuses it.
/// 8: a party is one key (`P`, `party::PartyEntry`: link, IDs, merge state, VINs, the records
/// that named it) instead of five key spaces (`p`, `P`, `L`, `Z`, `K`); a store of format 5-7
/// is rebuilt (`central admin rebuild --into`), its record and decision logs read as they are.
/// 9: a history group keeps its state and its first members in one entry under `G`
/// (`group::GroupEntry`), later members of a larger group under their own `g` keys as before.
/// A rebuild reads records of formats 1-4 through `older` (format 5's records are those of
/// formats 6 to 9).
/// A store without the key is format 1 (before formats were written down), unless empty.
pub const STORE_FORMAT: u32 = 9;
const FORMAT_KEY: &[u8] = b"!format";

/// Refuses a store of another format than [`STORE_FORMAT`] (an older one only when
/// `older_ok`, for a rebuild that reads its logs); writes the format into a new store.
fn check_format(
    db: &sled::Db,
    tree: &sled::Tree,
    dir: &Path,
    older_ok: bool,
) -> Result<u32, StoreError> {
    let found = match tree.get(FORMAT_KEY).map_err(engine)? {
        Some(bytes) => {
            let arr: [u8; 4] = bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                key: "!format".into(),
                detail: "not 4 bytes".into(),
            })?;
            u32::from_be_bytes(arr)
        }
        None if tree.first().map_err(engine)?.is_none() => {
            tree.insert(FORMAT_KEY, &STORE_FORMAT.to_be_bytes())
                .map_err(engine)?;
            db.flush().map_err(engine)?;
            STORE_FORMAT
        }
        None => 1,
    };
    let refuse = |what_to_do| StoreError::Format {
        path: dir.display().to_string(),
        found,
        known: STORE_FORMAT,
        what_to_do,
    };
    if found > STORE_FORMAT {
        return Err(refuse("it was written by a newer Hamgam; run that version (or newer) on it, never an older one"));
    }
    if found < STORE_FORMAT && !older_ok {
        return Err(refuse("it was written by an older Hamgam; with the hub stopped, run `central admin rebuild --into NEW_DIR` with this version and serve NEW_DIR (the record and decision logs carry over)"));
    }
    Ok(found)
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, with a page cache of `cache_bytes`.
    ///
    /// sled releases its file lock from a background thread shortly after the last handle of a
    /// database is dropped, so a store closed a moment ago in this process may still be locked:
    /// opening retries on a held lock for up to [`LOCK_WAIT`] before it reports it.
    ///
    /// The folder is made the owner's only (0700, made so before sled writes into it) and
    /// every file in it 0600 once sled has opened them: the store holds customers' personal
    /// data. Files sled makes later (snapshots) follow the process's umask, but sit in the
    /// 0700 folder; the systemd unit sets `UMask=0077` too.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::open_format(dir, cache_bytes, false)
    }

    /// Opens a store of this data format or an older one, for `central admin rebuild` to read
    /// its record and decision logs (whose format has not changed) into a new store.
    pub fn open_to_rebuild_from(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::open_format(dir, cache_bytes, true)
    }

    fn open_format(dir: &Path, cache_bytes: u64, older_ok: bool) -> Result<Self, StoreError> {
        let private = |e: std::io::Error| {
            StoreError::Engine(format!(
                "cannot make the store folder {} private to its owner (0700, files 0600): {e}; \
                 check that this user owns it",
                dir.display()
            ))
        };
        hamgam_gateway::files::create_private_dir(dir).map_err(private)?;
        let config = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // The hub flushes itself (group commit); sled's periodic flusher would be a second
            // writer.
            .flush_every_ms(None);
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(sled::Error::Io(e)) if is_lock_held(&e) && started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(StoreError::Engine(format!(
                        "cannot open the store at {}: {e}",
                        dir.display()
                    )))
                }
            }
        };
        let raw = db.open_tree("hub").map_err(engine)?;
        // Replays what an unclean stop left in the log before anything reads the tree.
        let tree =
            LoggedTree::open(db.clone(), raw.clone(), dir, scan_prefix_len).map_err(logged)?;
        let format = check_format(&db, &raw, dir, older_ok)?;
        let access = db.open_tree("access-audit").map_err(engine)?;
        let tokens = db.open_tree("enrolment-tokens").map_err(engine)?;
        let summaries = db.open_tree("customer-summaries").map_err(engine)?;
        hamgam_gateway::files::make_private(dir).map_err(private)?;
        let mut store = SledStore {
            db,
            tree,
            access,
            tokens,
            access_lock: std::sync::Mutex::new(()),
            apply_lock: std::sync::Mutex::new(Numbers::default()),
            summaries,
            session_lock: std::sync::Mutex::new(()),
            decisions: std::sync::Mutex::new(0),
            format,
        };
        // The touched log may be empty (all read and forgotten): numbering goes on above what
        // the summaries were read to.
        let last_touched = store
            .last_touched()?
            .max(store.summaries_read_to()?.unwrap_or(0));
        store.apply_lock = std::sync::Mutex::new(Numbers {
            last_change: store.last_change()?,
            last_touched,
        });
        store.decisions = std::sync::Mutex::new(store.last_decision()?);
        // Last: nothing below writes sled's hub tree but the log's checkpointer.
        store.tree.start_key_scan().map_err(logged)?;
        Ok(store)
    }

    /// The data format the store was written in ([`STORE_FORMAT`] unless opened to rebuild
    /// from an older store).
    pub fn format(&self) -> u32 {
        self.format
    }

    /// What the store holds by kind of key (its first byte, as in the key layout above), and
    /// sled's own size on disk. A full scan, for diagnostics and benchmarks.
    pub fn footprint(&self) -> Result<Footprint, StoreError> {
        let mut kinds: std::collections::BTreeMap<char, (u64, u64)> = Default::default();
        for entry in self.tree.iter() {
            let (key, value) = entry.map_err(engine)?;
            let kind = kinds
                .entry(key.first().map_or('?', |b| *b as char))
                .or_default();
            kind.0 += 1;
            kind.1 += (key.len() + value.len()) as u64;
        }
        let on_disk_bytes = self.db.size_on_disk().map_err(engine)?;
        Ok(Footprint {
            kinds: kinds.into_iter().map(|(k, (n, b))| (k, n, b)).collect(),
            on_disk_bytes,
        })
    }
}

/// What a store holds: see [`SledStore::footprint`].
#[derive(Debug, Clone)]
pub struct Footprint {
    /// `(key byte, keys, key and value bytes)`, by key byte.
    pub kinds: Vec<(char, u64, u64)>,
    pub on_disk_bytes: u64,
}

/// sled reports a held lock as an I/O error whose kind is not always `WouldBlock`.
fn is_lock_held(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

fn logged(e: LogError) -> StoreError {
    StoreError::Engine(e.to_string())
}

fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|e| StoreError::Engine(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: e.to_string(),
    })
}

impl SledStore {
    /// A record as this store's format wrote it (formats 1-4 only in a store opened to rebuild
    /// from).
    fn decode_record(&self, key: &[u8], bytes: &[u8]) -> Result<StoredRecord, StoreError> {
        if self.format <= 3 {
            return decode::<super::older::StoredRecordV3>(key, bytes).map(StoredRecord::from);
        }
        if self.format == 4 {
            return decode::<super::older::StoredRecordV4>(key, bytes).map(StoredRecord::from);
        }
        decode(key, bytes)
    }

    /// Up to `limit` entries of the `prefix` key space from `start` on, decoded by `read`.
    fn scan_from<T>(
        &self,
        prefix: u8,
        start: Vec<u8>,
        limit: usize,
        read: impl Fn(&[u8], &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.tree
            .range(start..vec![prefix + 1])
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                read(&k, &v)
            })
            .collect()
    }

    /// Every value under keys that start with `prefix`, in key order, decoded.
    fn decoded_under<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<T>, StoreError> {
        self.tree
            .scan_prefix(prefix)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                decode(&k, &v)
            })
            .collect()
    }

    /// The value under `key`, decoded.
    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.tree.get(key).map_err(engine)? {
            Some(v) => Ok(Some(decode(key, &v)?)),
            None => Ok(None),
        }
    }
}

impl HubStore for SledStore {
    fn dealer(&self, dealer_id: &str) -> Result<Option<DealerState>, StoreError> {
        let counters: Option<DealerState> = self.get(&prefixed(DEALER, dealer_id))?;
        let session: Option<SessionFacts> = self.get(&prefixed(SESSION, dealer_id))?;
        Ok(match (counters, session) {
            (None, None) => None,
            (c, s) => Some(s.unwrap_or_default().over(c.unwrap_or_default())),
        })
    }

    fn dealers(&self) -> Result<Vec<(String, DealerState)>, StoreError> {
        let mut all: std::collections::BTreeMap<
            String,
            (Option<DealerState>, Option<SessionFacts>),
        > = Default::default();
        for prefix in [DEALER, SESSION] {
            for item in self.tree.scan_prefix([prefix]) {
                let (k, v) = item.map_err(engine)?;
                let slot = all.entry(utf8(&k, &k[1..])?).or_default();
                if prefix == DEALER {
                    slot.0 = Some(decode(&k, &v)?);
                } else {
                    slot.1 = Some(decode(&k, &v)?);
                }
            }
        }
        Ok(all
            .into_iter()
            .map(|(d, (c, s))| (d, s.unwrap_or_default().over(c.unwrap_or_default())))
            .collect())
    }

    fn open_session(
        &self,
        dealer_id: &str,
        clock_offset_ms: i64,
        at_ms: i64,
    ) -> Result<DealerState, StoreError> {
        let key = prefixed(SESSION, dealer_id);
        {
            let _facts = self.session_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut facts: SessionFacts = self.get(&key)?.unwrap_or_default();
            facts.clock_offset_ms = clock_offset_ms;
            facts.last_seen_ms = facts.last_seen_ms.max(at_ms);
            if facts.first_seen_ms == 0 {
                facts.first_seen_ms = at_ms;
            }
            self.tree.insert(key, encode(&facts)?).map_err(logged)?;
        }
        Ok(self.dealer(dealer_id)?.unwrap_or_default())
    }

    fn acknowledge_verdicts(&self, dealer_id: &str, cursor: u64) -> Result<u64, StoreError> {
        let feed_end = self
            .get::<DealerState>(&prefixed(DEALER, dealer_id))?
            .map_or(0, |s| s.verdict_cursor);
        let key = prefixed(SESSION, dealer_id);
        let _facts = self.session_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut facts: SessionFacts = self.get(&key)?.unwrap_or_default();
        if cursor > facts.verdicts_acked && cursor <= feed_end {
            facts.verdicts_acked = cursor;
            self.tree.insert(key, encode(&facts)?).map_err(logged)?;
        }
        Ok(facts.verdicts_acked)
    }

    fn next_decision_no(&self) -> Result<u64, StoreError> {
        let mut last = self.decisions.lock().unwrap_or_else(|p| p.into_inner());
        *last = (*last).max(self.last_decision()?) + 1;
        Ok(*last)
    }

    fn record(&self, dealer_id: &str, seq: u64) -> Result<Option<StoredRecord>, StoreError> {
        let key = dealer_seq_key(RECORD, dealer_id, seq);
        match self.tree.get(&key).map_err(engine)? {
            Some(v) => self.decode_record(&key, &v).map(Some),
            None => Ok(None),
        }
    }

    fn records(
        &self,
        dealer_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let start = dealer_seq_key(RECORD, dealer_id, after_seq.saturating_add(1));
        let end = dealer_seq_key(RECORD, dealer_id, u64::MAX);
        self.tree
            .range(start..=end)
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                self.decode_record(&k, &v)
            })
            .collect()
    }

    fn locate(&self, record_id: &str) -> Result<Option<(String, u64)>, StoreError> {
        let key = prefixed(RECORD_ID, record_id);
        let Some(v) = self.tree.get(&key).map_err(engine)? else {
            return Ok(None);
        };
        let corrupt = || StoreError::Corrupt {
            key: record_id.to_owned(),
            detail: "record-id index entry malformed".into(),
        };
        let split = v.iter().position(|b| *b == 0).ok_or_else(corrupt)?;
        let seq_bytes: [u8; 8] = v[split + 1..].try_into().map_err(|_| corrupt())?;
        let dealer = String::from_utf8_lossy(&v[..split]).into_owned();
        Ok(Some((dealer, u64::from_be_bytes(seq_bytes))))
    }

    fn quarantined(
        &self,
        dealer_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let start = dealer_seq_key(QUARANTINE, dealer_id, after_seq.saturating_add(1));
        let end = dealer_seq_key(QUARANTINE, dealer_id, u64::MAX);
        let mut out = Vec::new();
        for item in self.tree.range(start..=end).take(limit) {
            let (k, _) = item.map_err(engine)?;
            let seq_bytes: [u8; 8] =
                k[k.len() - 8..]
                    .try_into()
                    .map_err(|_| StoreError::Corrupt {
                        key: String::from_utf8_lossy(&k).into_owned(),
                        detail: "quarantine key malformed".into(),
                    })?;
            if let Some(record) = self.record(dealer_id, u64::from_be_bytes(seq_bytes))? {
                out.push(record);
            }
        }
        Ok(out)
    }

    fn members(&self, group: &GroupKey) -> Result<Vec<Member>, StoreError> {
        if self.groups_before_9() {
            return self.spilled_members(group);
        }
        let Some(entry) = self.group_entry(group)? else {
            return Ok(Vec::new());
        };
        let spilled = if entry.spilled {
            self.spilled_members(group)?
        } else {
            Vec::new()
        };
        Ok(group::merged(entry.members()?, spilled))
    }

    fn member(
        &self,
        group: &GroupKey,
        dealer_id: &str,
        seq: u64,
    ) -> Result<Option<Member>, StoreError> {
        if !self.groups_before_9() {
            let Some(entry) = self.group_entry(group)? else {
                return Ok(None);
            };
            if let Ok(at) = entry.find(dealer_id, seq) {
                return Ok(Some(entry.inline[at].decode()?));
            }
            if !entry.spilled {
                return Ok(None);
            }
        }
        self.get(&member_key(group, dealer_id, seq))
    }

    fn neighbours(
        &self,
        group: &GroupKey,
        dealer_id: &str,
        seq: u64,
    ) -> Result<(Option<Member>, Option<Member>), StoreError> {
        if self.groups_before_9() {
            return self.spilled_neighbours(group, dealer_id, seq);
        }
        let Some(entry) = self.group_entry(group)? else {
            return Ok((None, None));
        };
        let (below, above) = match entry.find(dealer_id, seq) {
            Ok(at) => (at, at + 1),
            Err(at) => (at, at),
        };
        let inline = |at: Option<usize>| match at.and_then(|i| entry.inline.get(i)) {
            Some(m) => m.decode().map(Some),
            None => Ok(None),
        };
        let mut before = inline(below.checked_sub(1))?;
        let mut after = inline(Some(above))?;
        if entry.spilled {
            let (key_before, key_after) = self.spilled_neighbours(group, dealer_id, seq)?;
            let later = |a: &Member, b: &Member| {
                group::order(a, &b.dealer_id, b.seq) == std::cmp::Ordering::Greater
            };
            before = match (before, key_before) {
                (Some(a), Some(b)) => Some(if later(&a, &b) { a } else { b }),
                (a, b) => a.or(b),
            };
            after = match (after, key_after) {
                (Some(a), Some(b)) => Some(if later(&a, &b) { b } else { a }),
                (a, b) => a.or(b),
            };
        }
        Ok((before, after))
    }

    fn group_state(&self, group: &GroupKey) -> Result<Option<GroupState>, StoreError> {
        if self.groups_before_9() {
            return self.get(&group_state_key(group));
        }
        let entry: Option<group::StateOnly> = self.get(&group_state_key(group))?;
        Ok(entry.and_then(|e| e.state))
    }

    fn party(&self, dealer_id: &str, customer_ref: &str) -> Result<Option<PartyIds>, StoreError> {
        if self.parties_before_8() {
            return self.old_party_ids(&(dealer_id.to_owned(), customer_ref.to_owned()));
        }
        let head: Option<party::UpToState> = self.get(&party_key(dealer_id, customer_ref))?;
        Ok(head.and_then(|h| h.ids))
    }

    fn verdict_updates(
        &self,
        dealer_id: &str,
        cursor: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Verdict)>, StoreError> {
        let start = dealer_seq_key(UPDATE, dealer_id, cursor.saturating_add(1));
        let end = dealer_seq_key(UPDATE, dealer_id, u64::MAX);
        self.tree
            .range(start..=end)
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                let cursor_bytes: [u8; 8] =
                    k[k.len() - 8..]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            key: String::from_utf8_lossy(&k).into_owned(),
                            detail: "verdict update key malformed".into(),
                        })?;
                Ok((u64::from_be_bytes(cursor_bytes), decode(&k, &v)?))
            })
            .collect()
    }

    fn tally(&self, dealer_id: &str, day: i64) -> Result<Option<DayTally>, StoreError> {
        self.get(&tally_key(dealer_id, day))
    }

    fn tallies(&self, from_day: i64) -> Result<Vec<(String, i64, DayTally)>, StoreError> {
        // Per dealer, a range scan from `from_day`: older days are never read.
        let mut out = Vec::new();
        for (dealer, _) in self.dealers()? {
            let start = tally_key(&dealer, from_day);
            let end = tally_key(&dealer, i64::MAX);
            for item in self.tree.range(start..=end) {
                let (k, v) = item.map_err(engine)?;
                let day_bytes: [u8; 8] =
                    k[k.len() - 8..]
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            key: String::from_utf8_lossy(&k).into_owned(),
                            detail: "tally key malformed".into(),
                        })?;
                let day = (u64::from_be_bytes(day_bytes) ^ (1 << 63)) as i64;
                out.push((dealer.clone(), day, decode(&k, &v)?));
            }
        }
        Ok(out)
    }

    fn merge_party(&self, party: &PartyKey) -> Result<Option<Party>, StoreError> {
        if self.parties_before_8() {
            return self.old_merge_party(party);
        }
        let head: Option<party::UpToState> = self.get(&party_prefixed(PARTY, party))?;
        Ok(head.and_then(|h| h.state))
    }

    fn merge_parties(
        &self,
        after: Option<&PartyKey>,
        limit: usize,
    ) -> Result<Vec<(PartyKey, Party)>, StoreError> {
        let start = match after {
            Some(p) => {
                let mut k = party_prefixed(PARTY, p);
                k.push(0xff);
                k
            }
            None => vec![PARTY],
        };
        // Only parties the merge holds a state of (the judge keeps IDs of others).
        let mut parties = Vec::new();
        for item in self.tree.range(start..vec![PARTY + 1]) {
            if parties.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(engine)?;
            let state = if self.parties_before_8() {
                Some(decode(&k, &v)?)
            } else {
                decode::<party::UpToState>(&k, &v)?.state
            };
            if let Some(state) = state {
                let text = String::from_utf8_lossy(&k[1..]).into_owned();
                let (dealer, customer_ref) = text.split_once('\0').unwrap_or((&text, ""));
                parties.push(((dealer.to_owned(), customer_ref.to_owned()), state));
            }
        }
        Ok(parties)
    }

    fn block(&self, block: &str) -> Result<Vec<PartyKey>, StoreError> {
        self.decoded_under(&block_prefix(block))
    }

    fn link(&self, party: &PartyKey) -> Result<Option<String>, StoreError> {
        if self.parties_before_8() {
            return self.old_link(party);
        }
        let link: Option<party::LinkOnly> = self.get(&party_prefixed(PARTY, party))?;
        Ok(link.and_then(|l| l.link))
    }

    fn customer(&self, customer_id: &str) -> Result<Option<GoldenCustomer>, StoreError> {
        self.get(&prefixed(CUSTOMER, customer_id))
    }

    fn customers(&self, after: &str, limit: usize) -> Result<Vec<GoldenCustomer>, StoreError> {
        let mut start = prefixed(CUSTOMER, after);
        start.push(0);
        self.scan_from(CUSTOMER, start, limit, decode)
    }

    fn vehicle_facts(&self, vin: &str) -> Result<BTreeMap<At, VehicleFact>, StoreError> {
        let prefix = vehicle_fact_prefix(vin);
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                Ok((at_of_key(&k, prefix.len())?, decode(&k, &v)?))
            })
            .collect()
    }

    fn vehicle_fact(&self, vin: &str, at: &At) -> Result<Option<VehicleFact>, StoreError> {
        self.get(&vehicle_fact_key(vin, at))
    }

    fn vehicle_sales(&self, vin: &str) -> Result<Option<VehicleSales>, StoreError> {
        self.get(&prefixed(VEHICLE, vin))
    }

    fn vehicle_vins(&self, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        // One seek per VIN: past every fact key of the last VIN (they go on with `\0`).
        let mut vins = Vec::new();
        let mut from = prefixed(VEHICLE_FACTS, after);
        from.push(1);
        while vins.len() < limit {
            let Some(item) = self.tree.range(from..vec![VEHICLE_FACTS + 1]).next() else {
                break;
            };
            let (k, _) = item.map_err(engine)?;
            let (vin, _) = split_nul(&k[1..]).ok_or_else(|| StoreError::Corrupt {
                key: String::from_utf8_lossy(&k).into_owned(),
                detail: "vehicle fact key without a record".into(),
            })?;
            let vin = utf8(&k, vin)?;
            from = prefixed(VEHICLE_FACTS, &vin);
            from.push(1);
            vins.push(vin);
        }
        Ok(vins)
    }

    fn party_names_vin(&self, party: &PartyKey, vin: &str) -> Result<bool, StoreError> {
        if self.parties_before_8() {
            return Ok(self.old_party_vins(party)?.iter().any(|v| v == vin));
        }
        Ok(self
            .party_entry(party)?
            .is_some_and(|e| e.vins.binary_search_by(|v| v.as_str().cmp(vin)).is_ok()))
    }

    fn party_vins(&self, party: &PartyKey) -> Result<Vec<String>, StoreError> {
        if self.parties_before_8() {
            return self.old_party_vins(party);
        }
        Ok(self.party_entry(party)?.map(|e| e.vins).unwrap_or_default())
    }

    fn reviews(
        &self,
        after: Option<&(PartyKey, PartyKey)>,
        limit: usize,
    ) -> Result<Vec<ReviewItem>, StoreError> {
        let start = match after {
            Some(pair) => {
                let mut k = review_key(pair);
                k.push(0);
                k
            }
            None => vec![REVIEW],
        };
        self.scan_from(REVIEW, start, limit, decode)
    }

    fn subject_conflicts(&self, subject: &str) -> Result<Vec<Conflict>, StoreError> {
        Ok(self.get(&prefixed(CONFLICT, subject))?.unwrap_or_default())
    }

    fn conflicts(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<Conflict>)>, StoreError> {
        let mut start = prefixed(CONFLICT, after);
        start.push(0);
        self.scan_from(CONFLICT, start, limit, |k, v| {
            Ok((String::from_utf8_lossy(&k[1..]).into_owned(), decode(k, v)?))
        })
    }

    fn vehicle_decisions(&self, vin: &str) -> Result<Option<VehicleDecisions>, StoreError> {
        self.get(&prefixed(VEHICLE_DECISION, vin))
    }

    fn decisions(&self, after: u64, limit: usize) -> Result<Vec<DecisionEntry>, StoreError> {
        let mut start = vec![DECISION];
        start.extend_from_slice(&after.saturating_add(1).to_be_bytes());
        self.scan_from(DECISION, start, limit, decode)
    }

    fn last_decision(&self) -> Result<u64, StoreError> {
        match self.tree.last_in_prefix([DECISION]) {
            Some(item) => {
                let (k, v) = item.map_err(engine)?;
                let entry: DecisionEntry = decode(&k, &v)?;
                Ok(entry.no)
            }
            None => Ok(0),
        }
    }

    fn last_change(&self) -> Result<u64, StoreError> {
        if let Some(item) = self.tree.last_in_prefix([CHANGE_CHUNK]) {
            let (k, _) = item.map_err(engine)?;
            return cursor_of_key(&k);
        }
        match self.tree.last_in_prefix([CHANGE]) {
            Some(item) => {
                let (k, v) = item.map_err(engine)?;
                let entry: ChangeLogEntry = decode(&k, &v)?;
                Ok(entry.cursor)
            }
            None => Ok(0),
        }
    }

    fn changes(&self, cursor: u64, limit: usize) -> Result<Vec<ChangeLogEntry>, StoreError> {
        let after = cursor.saturating_add(1).to_be_bytes();
        let mut start = vec![CHANGE];
        start.extend_from_slice(&after);
        let mut out = self.scan_from(CHANGE, start, limit, decode)?;
        // The chunk holding `cursor + 1` is the first whose last cursor is not below it.
        let mut start = vec![CHANGE_CHUNK];
        start.extend_from_slice(&after);
        for item in self.tree.range(start..vec![CHANGE_CHUNK + 1]) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item.map_err(engine)?;
            let chunk: ChangeChunk<'static> = decode(&k, &v)?;
            let room = limit - out.len();
            out.extend(
                chunk
                    .entries
                    .into_owned()
                    .into_iter()
                    .zip(chunk.first..)
                    .filter(|(_, c)| *c > cursor)
                    .take(room)
                    .map(|(entry, cursor)| ChangeLogEntry {
                        cursor,
                        at_ms: chunk.at_ms,
                        entry,
                    }),
            );
        }
        Ok(out)
    }

    fn contacts(&self, party: &PartyKey) -> Result<Vec<u64>, StoreError> {
        if self.parties_before_8() {
            return self.old_contacts(party);
        }
        Ok(self
            .party_entry(party)?
            .map(|e| e.contacts)
            .unwrap_or_default())
    }

    fn flags(
        &self,
        rule_id: &str,
        dealer: Option<&str>,
        after: Option<(&str, u64)>,
        limit: usize,
    ) -> Result<Vec<FlagRow>, StoreError> {
        let mut prefix = prefixed(FLAG, rule_id);
        prefix.push(0);
        if let Some(d) = dealer {
            prefix.extend_from_slice(d.as_bytes());
            prefix.push(0);
        }
        let start = match after {
            Some((d, seq)) => {
                let mut k = flag_key(rule_id, d, seq);
                k.push(0); // just past that key
                k
            }
            None => prefix.clone(),
        };
        let rule_len = rule_id.len() + 2;
        self.tree
            .range(start..)
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&prefix)))
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                let rest = &k[rule_len..];
                let corrupt = || StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    detail: "flag key".into(),
                };
                let (dealer, seq) = split_nul(rest).ok_or_else(corrupt)?;
                let seq: [u8; 8] = seq.try_into().map_err(|_| corrupt())?;
                Ok((
                    rule_id.to_owned(),
                    utf8(&k, dealer)?,
                    u64::from_be_bytes(seq),
                    decode(&k, &v)?,
                ))
            })
            .collect()
    }

    fn name_words(
        &self,
        prefix: &str,
        after: Option<&(String, PartyKey)>,
        limit: usize,
    ) -> Result<Vec<(String, PartyKey)>, StoreError> {
        let scan = prefixed(NAME_WORD, prefix);
        let start = match after {
            Some((word, party)) => {
                let mut k = name_word_key(word, party);
                k.push(0);
                k
            }
            None => scan.clone(),
        };
        self.tree
            .range(start..)
            .take_while(|item| item.as_ref().map_or(true, |(k, _)| k.starts_with(&scan)))
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                let corrupt = || StoreError::Corrupt {
                    key: String::from_utf8_lossy(&k).into_owned(),
                    detail: "name word key".into(),
                };
                let (word, _) = split_nul(&k[1..]).ok_or_else(corrupt)?;
                Ok((utf8(&k, word)?, decode(&k, &v)?))
            })
            .collect()
    }

    fn apply(&self, change: &Change) -> Result<Applied, StoreError> {
        self.apply_change(change)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.tree.sync().map_err(logged)
    }

    fn unwritten_log_bytes(&self) -> Option<u64> {
        Some(self.tree.unwritten_bytes())
    }

    fn append_access(&self, entry: &AccessEntry) -> Result<u64, StoreError> {
        let no = {
            // A poisoned lock guards nothing broken: the number is read again from the tree.
            let _numbering = self
                .access_lock
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let last = match self.access.last().map_err(engine)? {
                Some((k, _)) => {
                    let bytes: [u8; 8] =
                        k.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                            key: format!("access-audit {k:?}"),
                            detail: "key is not an 8-byte entry number".into(),
                        })?;
                    u64::from_be_bytes(bytes)
                }
                None => 0,
            };
            let no = last + 1;
            let value = serde_json::to_vec(&AccessEntry {
                no,
                ..entry.clone()
            })
            .map_err(|e| StoreError::Engine(format!("encode access entry: {e}")))?;
            self.access
                .insert(no.to_be_bytes(), value)
                .map_err(engine)?;
            no
        };
        // Outside the lock, so appends that arrive together share one fsync.
        self.access.flush().map_err(engine)?;
        Ok(no)
    }

    fn use_enrolment_token(
        &self,
        sha256: &str,
        used: &UsedToken,
    ) -> Result<Option<UsedToken>, StoreError> {
        let value = serde_json::to_vec(used)
            .map_err(|e| StoreError::Engine(format!("encode used token: {e}")))?;
        let swapped = self
            .tokens
            .compare_and_swap(sha256.as_bytes(), None as Option<&[u8]>, Some(value))
            .map_err(engine)?;
        match swapped {
            Ok(()) => {
                self.tokens.flush().map_err(engine)?;
                Ok(None)
            }
            Err(sled::CompareAndSwapError { current, .. }) => current
                .map(|v| {
                    serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                        key: format!("enrolment-tokens {sha256}"),
                        detail: e.to_string(),
                    })
                })
                .transpose(),
        }
    }

    fn touched(&self, after: u64, limit: usize) -> Result<Vec<(u64, Touched)>, StoreError> {
        self.scan_from(
            TOUCHED,
            touched_key(after.saturating_add(1)),
            limit,
            |k, v| Ok((cursor_of_key(k)?, decode(k, v)?)),
        )
    }

    fn last_touched(&self) -> Result<u64, StoreError> {
        match self.tree.last_in_prefix([TOUCHED]) {
            Some(item) => cursor_of_key(&item.map_err(engine)?.0),
            None => Ok(0),
        }
    }

    fn forget_touched(&self, upto: u64) -> Result<(), StoreError> {
        // The summaries read to `upto` are durable before the entries they were read from
        // are forgotten (they live in sled, the touched log in the hub's log).
        self.summaries.flush().map_err(engine)?;
        let mut batch = Ops::default();
        for item in self.tree.range(touched_key(0)..=touched_key(upto)) {
            batch.remove(item.map_err(engine)?.0);
        }
        self.tree.apply(batch).map_err(logged)
    }

    fn summaries_read_to(&self) -> Result<Option<u64>, StoreError> {
        match self.summaries.get(SUMMARIES_READ_TO).map_err(engine)? {
            Some(v) => cursor_of_value(&v).map(Some),
            None => Ok(None),
        }
    }

    fn summary(&self, customer_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .summaries
            .get(prefixed(SUMMARY, customer_id))
            .map_err(engine)?
            .map(|v| v.to_vec()))
    }

    fn summaries(&self, after: &str, limit: usize) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut start = prefixed(SUMMARY, after);
        start.push(0);
        self.summaries
            .range(start..vec![SUMMARY + 1])
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                let id = String::from_utf8(k[1..].to_vec()).map_err(|e| StoreError::Corrupt {
                    key: format!("customer-summaries {k:?}"),
                    detail: e.to_string(),
                })?;
                Ok((id, v.to_vec()))
            })
            .collect()
    }

    fn put_summaries(
        &self,
        writes: &[(String, Option<Vec<u8>>)],
        read_to: ReadTo,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, summary) in writes {
            match summary {
                Some(bytes) => batch.insert(prefixed(SUMMARY, id), bytes.as_slice()),
                None => batch.remove(prefixed(SUMMARY, id)),
            }
        }
        match read_to {
            ReadTo::Keep => {}
            ReadTo::At(n) => batch.insert(SUMMARIES_READ_TO, &n.to_be_bytes()),
            ReadTo::Unbuilt => batch.remove(SUMMARIES_READ_TO),
        }
        self.summaries.apply_batch(batch).map_err(engine)
    }

    fn access_log(&self, after: u64, limit: usize) -> Result<Vec<AccessEntry>, StoreError> {
        self.access
            .range(after.saturating_add(1).to_be_bytes()..)
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(engine)?;
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt {
                    key: format!("access-audit {k:?}"),
                    detail: e.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ChangeEntry;

    fn stored(seq: u64) -> ChangeEntry {
        ChangeEntry::RecordStored {
            dealer_id: "D-1".into(),
            seq,
            verdict: Verdict::from_findings(format!("r{seq}"), seq, Vec::new(), 0),
        }
    }

    fn cursors(entries: &[ChangeLogEntry]) -> Vec<u64> {
        entries.iter().map(|e| e.cursor).collect()
    }

    /// A store written before change chunks keeps its one-key-per-entry change stream; what is
    /// applied after it continues the numbering in chunks, and a reader crosses from one to the
    /// other, and into the middle of a chunk, without a gap or a repeat.
    #[test]
    fn the_change_stream_reads_across_entries_and_chunks_from_any_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path(), 8 << 20).expect("open");
        for cursor in 1..=2 {
            let mut key = vec![CHANGE];
            key.extend_from_slice(&u64::to_be_bytes(cursor));
            let entry = ChangeLogEntry {
                cursor,
                at_ms: 7,
                entry: stored(cursor),
            };
            store
                .tree
                .insert(key, encode(&entry).expect("encode"))
                .expect("insert");
        }
        drop(store);
        let store = SledStore::open(dir.path(), 8 << 20).expect("reopen");
        assert_eq!(store.last_change().expect("last"), 2);
        for (first, n) in [(3, 3), (6, 4)] {
            let change = Change {
                at_ms: 9,
                changes: (first..first + n).map(stored).collect(),
                ..Change::default()
            };
            let applied = store.apply(&change).expect("apply");
            assert_eq!(applied.last_change, Some(first + n - 1));
        }
        assert_eq!(store.last_change().expect("last"), 9);
        let all = store.changes(0, 100).expect("read");
        assert_eq!(cursors(&all), (1..=9).collect::<Vec<_>>());
        for entry in &all {
            let ChangeEntry::RecordStored { seq, .. } = &entry.entry else {
                panic!("unexpected entry {entry:?}");
            };
            assert_eq!(*seq, entry.cursor, "each entry keeps its own cursor");
        }
        assert_eq!(all[1].at_ms, 7);
        assert_eq!(all[2].at_ms, 9);
        assert_eq!(cursors(&store.changes(1, 3).expect("read")), vec![2, 3, 4]);
        assert_eq!(cursors(&store.changes(4, 3).expect("read")), vec![5, 6, 7]);
        assert_eq!(cursors(&store.changes(7, 100).expect("read")), vec![8, 9]);
        assert!(store.changes(9, 100).expect("read").is_empty());
    }
}
