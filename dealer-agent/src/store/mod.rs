//! The dealership's local store (sled): the dealer's own record log, the outbox position, and the
//! verdicts the hub sent back. It is the agent's source of truth: a record is durable here before
//! staff are told "saved", and it stays after the hub acknowledges it, as the dealer's history.
//!
//! One tree, key spaces by prefix, so that a capture (record + next seq + clock) and an ack
//! (position + verdicts) are each one atomic batch:
//!
//! | key | value |
//! |---|---|
//! | `r` seq (u64 BE) | the record, protobuf |
//! | `v` seq (u64 BE) | the hub's verdict on it, protobuf |
//! | `m` name | meta: `dealer_id`, `next_seq`, `acked_seq`, `verdict_cursor`, `hlc`, `last_sync_ms`, `last_error` |
//! | `V` n (u64 BE) | the verdict log: the seq (u64 BE) of the record whose verdict was stored as the `n`th (what the local API's `Verdicts` reads from a cursor; meta `verdict_log` holds the last `n`) |
//! | `w` seq (u64 BE) | "cannot be sent": the stand-in the outbox sends for a record the hub could never accept as stored, protobuf |
//! | `o` source system, 0, source id | an imported record's origin index: the seq of the record it made and of its latest version ([`imported`]) |
//!
//! A record over a size bound (`hamgam_proto::limits`) is refused at capture. One stored over a
//! bound anyway (by a version before the bound, or read back corrupt) is never sent as it is:
//! the outbox sends a stand-in in its place (same seq and id, no payload, `withheld` saying
//! why), which the hub keeps in quarantine with R00, so the records behind it sync on. The
//! record itself stays in the log.
//!
//! Staff accounts of the web screen ([`crate::staff`]) are in a tree of their own, `staff`
//! (key: the staff id; value: the account as JSON, with the password's hash only). Adding that
//! tree needed no new data format: an agent before it never opens the tree, and the `agent`
//! tree is unchanged. Backups (`export_blocking`) carry the `agent` tree only.
//!
//! **Invariant:** seq is gap-free: the seq counter and the record are written in the same batch,
//! under one lock. The sled database is locked by one process at a time.

use std::path::Path;
use std::sync::{Arc, Mutex};

use hamgam_gateway::sync::{Outbox, OutboxError};
use hamgam_gateway::DealerId;
use hamgam_proto::record::v1::{record::Payload, HlcStamp, Origin, Record, Verdict};
use prost::Message;
use tokio::sync::watch;

use crate::hlc;
use hamgam_proto::limits;

mod imported;

pub use imported::{amended_payload, ImportOutcome, Imported};

const RECORD: u8 = b'r';
const VERDICT: u8 = b'v';
const CANNOT_SEND: u8 = b'w';
const VERDICT_LOG: u8 = b'V';

/// What [`AgentStore::export_blocking`] calls with each key and value.
pub type ExportVisitor<'a> = dyn FnMut(&[u8], &[u8]) -> std::io::Result<()> + 'a;

/// A key and its value, as exported.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The data format this agent writes (meta `format`); a newer store is refused.
pub const STORE_FORMAT: u64 = 1;

/// The store folder's mode: the owner's; its group may only pass through to the local API
/// socket (which is 0660: the `hamgam` group's staff accounts can record through it).
pub const STORE_DIR_MODE: u32 = 0o710;

/// Why the local store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the store at {path} is in use by another dealer-agent process (is `dealer-agent run` active?); stop it or record through it")]
    Locked { path: String },
    #[error("cannot open the store at {path}: {detail}")]
    Open { path: String, detail: String },
    #[error("the store at {path} belongs to dealer {stored}, not {configured}; use that dealer's data folder")]
    WrongDealer {
        path: String,
        stored: String,
        configured: String,
    },
    #[error("the disk holding the agent's store is full: nothing more can be saved until space is freed (a record being saved just now was not; everything saved before is safe); free some space on that disk, then try again (a running agent stops and its service starts it again)")]
    DiskFull,
    #[error("the agent's store cannot read or write its files ({0}): what was saved before is kept on disk; check the disk, then start the agent again")]
    Unusable(String),
    /// An imported record that cannot be taken as it is (its content is itself a correction).
    #[error("not saved: {0}")]
    ImportRefused(String),
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("stored value under {key} does not decode: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("the hub says it holds seq {hub} but this agent's log ends at seq {local}: this store was reset or replaced; run `dealer-agent restore --from-hub` before recording more")]
    AheadOfLog { hub: u64, local: u64 },
    #[error("not saved: {}", over_bound_text(*.position, .violations, false))]
    OverBound {
        /// Which record of a multi-record capture (0-based), when there were several.
        position: Option<usize>,
        violations: Vec<limits::SizeViolation>,
    },
}

fn over_bound_text(
    position: Option<usize>,
    violations: &[limits::SizeViolation],
    fa: bool,
) -> String {
    let reasons: Vec<String> = violations
        .iter()
        .map(|v| if fa { v.reason_fa() } else { v.reason_en() })
        .collect();
    let reasons = reasons.join(if fa { "؛ " } else { "; " });
    match (position, fa) {
        (Some(i), false) => format!("record {} of the batch: {reasons}", i + 1),
        (Some(i), true) => format!("رکورد {} از این دسته: {reasons}", i + 1),
        (None, _) => reasons,
    }
}

impl StoreError {
    /// What to show staff: the English message, and the Persian one below it where staff
    /// caused the error and can fix it.
    pub fn staff_message(&self) -> String {
        match self.message_fa() {
            Some(fa) => format!("{self}\n{fa}"),
            None => self.to_string(),
        }
    }

    /// The message in Persian, for the errors staff cause and can fix (a record over a size
    /// bound); `None` for the others, whose English text goes to ops.
    pub fn message_fa(&self) -> Option<String> {
        match self {
            StoreError::OverBound {
                position,
                violations,
            } => Some(format!(
                "ذخیره نشد: {}",
                over_bound_text(*position, violations, true)
            )),
            _ => None,
        }
    }

    /// The disk failed under sled (full, or an I/O error): sled refuses every later operation
    /// of this open store, so the agent has to open it again once the disk is fixed.
    pub fn is_unusable(&self) -> bool {
        matches!(self, StoreError::DiskFull | StoreError::Unusable(_))
    }
}

fn engine(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => StoreError::DiskFull,
        sled::Error::Io(io) => StoreError::Unusable(io.to_string()),
        other => StoreError::Engine(other.to_string()),
    }
}

/// A record about to be saved: everything but its seq and clock stamps.
struct NewRecord {
    record_id: String,
    staff_id: String,
    payload: Payload,
    origin: Option<Origin>,
}

/// A record just saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub seq: u64,
    pub record_id: String,
}

/// The agent's sync state for `dealer-agent status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncStatus {
    pub dealer_id: String,
    pub last_seq: u64,
    pub acked_seq: u64,
    pub last_sync_ms: Option<i64>,
    pub last_error: Option<String>,
    pub rejected: u64,
    pub flagged: u64,
    /// Records stored over a bound the hub can never accept: sent as stand-ins, to correct.
    #[serde(default)]
    pub cannot_send: u64,
}

impl SyncStatus {
    /// Records made here that the hub has not acknowledged yet.
    pub fn pending(&self) -> u64 {
        self.last_seq.saturating_sub(self.acked_seq)
    }
}

/// The dealership's store. Cheap to clone: clones share the same database.
#[derive(Clone)]
pub struct AgentStore {
    db: sled::Db,
    tree: sled::Tree,
    /// Staff accounts (see the module docs).
    staff: sled::Tree,
    dealer: DealerId,
    capture_lock: Arc<Mutex<()>>,
    last_seq_tx: Arc<watch::Sender<u64>>,
    acked_seq_tx: Arc<watch::Sender<u64>>,
    /// Why the store became unusable (a full or failing disk), once it has.
    unusable_tx: Arc<watch::Sender<Option<String>>>,
    /// The time records are stamped with (the PC's clock; a fixed one in tests).
    clock: hamgam_gateway::Clock,
    /// Follows the verdict log's last number.
    verdict_log_tx: Arc<watch::Sender<u64>>,
    /// Held while verdicts are stored and logged (the log is numbered one batch at a time).
    verdict_lock: Arc<Mutex<()>>,
}

/// The verdict log's last number while a batch of verdicts is built.
struct VerdictLog {
    last: u64,
}

impl VerdictLog {
    /// Logs that `seq`'s verdict is stored by `batch`.
    fn append(&mut self, batch: &mut sled::Batch, seq: u64) {
        self.last += 1;
        batch.insert(&seq_key(VERDICT_LOG, self.last), &seq.to_be_bytes());
        batch.insert(meta_key("verdict_log"), &self.last.to_be_bytes());
    }
}

/// The verdict log's last number; a store from before the log gets every verdict it holds
/// logged once, in seq order, so a reader from position 0 sees them all.
fn seed_verdict_log(db: &sled::Db, tree: &sled::Tree) -> Result<u64, StoreError> {
    if let Some(last) = read_u64(tree, "verdict_log")? {
        return Ok(last);
    }
    let mut log = VerdictLog { last: 0 };
    let mut batch = sled::Batch::default();
    for item in tree.scan_prefix([VERDICT]) {
        let (key, _) = item.map_err(engine)?;
        let seq: [u8; 8] = key[1..].try_into().map_err(|_| StoreError::Corrupt {
            key: "verdict".into(),
            detail: "key is not a seq".into(),
        })?;
        log.append(&mut batch, u64::from_be_bytes(seq));
    }
    batch.insert(meta_key("verdict_log"), &log.last.to_be_bytes());
    tree.apply_batch(batch).map_err(engine)?;
    db.flush().map_err(engine)?;
    Ok(log.last)
}

fn seq_key(prefix: u8, seq: u64) -> [u8; 9] {
    let mut key = [0u8; 9];
    key[0] = prefix;
    key[1..].copy_from_slice(&seq.to_be_bytes());
    key
}

fn meta_key(name: &str) -> Vec<u8> {
    let mut key = vec![b'm'];
    key.extend_from_slice(name.as_bytes());
    key
}

impl AgentStore {
    /// Now, by the clock records are stamped with.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The same store stamping records by `clock` (tests capture on a date they choose).
    pub fn with_clock(mut self, clock: hamgam_gateway::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Opens the store like [`AgentStore::open`], but waits up to `within` for a lock held by a
    /// store of this folder that is still closing (sled releases its lock from a background
    /// thread shortly after the last handle is dropped). For restarts inside one process; the
    /// CLI uses [`AgentStore::open`], where a held lock means a running agent.
    pub fn open_waiting(
        dir: &Path,
        dealer: DealerId,
        within: std::time::Duration,
    ) -> Result<Self, StoreError> {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(1);
        loop {
            match Self::open(dir, dealer.clone()) {
                Err(StoreError::Locked { .. }) if started.elapsed() < within => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(std::time::Duration::from_millis(50));
                }
                other => return other,
            }
        }
    }

    /// Opens (or creates) the store of `dealer` in `dir`.
    pub fn open(dir: &Path, dealer: DealerId) -> Result<Self, StoreError> {
        let path = dir.display().to_string();
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(64 * 1024 * 1024)
            // Every write path flushes before it returns; no background flusher thread, which
            // would also hold the lock for a while after the store is dropped.
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                sled::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::WouldBlock
                        || io.to_string().contains("lock") =>
                {
                    StoreError::Locked { path: path.clone() }
                }
                sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                    StoreError::DiskFull
                }
                other => StoreError::Open {
                    path: path.clone(),
                    detail: other.to_string(),
                },
            })?;
        // Customers' personal data: the folder is its owner's (0710: the owner's group reaches
        // the local API socket inside by name, nothing more) and every file 0600.
        hamgam_gateway::files::make_private_with_dir_mode(dir, STORE_DIR_MODE).map_err(|e| {
            StoreError::Open {
                path: path.clone(),
                detail: format!("cannot make the store private to its owner: {e}"),
            }
        })?;
        let tree = db.open_tree("agent").map_err(engine)?;
        let staff = db.open_tree("staff").map_err(engine)?;
        // A store written by a newer agent is refused rather than misread.
        match read_u64(&tree, "format")? {
            Some(found) if found > STORE_FORMAT => {
                return Err(StoreError::Open {
                    path,
                    detail: format!("it has data format {found}, written by a newer dealer-agent; this one reads format {STORE_FORMAT}: run that version (or newer) on it"),
                })
            }
            Some(_) => {}
            // Older stores (before formats were written down) are format 1 as well.
            None => {
                tree.insert(meta_key("format"), &STORE_FORMAT.to_be_bytes())
                    .map_err(engine)?;
            }
        }
        match tree.get(meta_key("dealer_id")).map_err(engine)? {
            Some(stored) if stored.as_ref() != dealer.as_str().as_bytes() => {
                return Err(StoreError::WrongDealer {
                    path,
                    stored: String::from_utf8_lossy(&stored).into_owned(),
                    configured: dealer.to_string(),
                })
            }
            Some(_) => {}
            None => {
                tree.insert(meta_key("dealer_id"), dealer.as_str().as_bytes())
                    .map_err(engine)?;
                db.flush().map_err(engine)?;
            }
        }
        let next_seq = read_u64(&tree, "next_seq")?.unwrap_or(1);
        let acked = read_u64(&tree, "acked_seq")?.unwrap_or(0);
        let (last_seq_tx, _) = watch::channel(next_seq - 1);
        let (acked_seq_tx, _) = watch::channel(acked);
        let verdict_log = seed_verdict_log(&db, &tree)?;
        Ok(AgentStore {
            clock: hamgam_gateway::Clock::System,
            db,
            tree,
            staff,
            dealer,
            capture_lock: Arc::new(Mutex::new(())),
            last_seq_tx: Arc::new(last_seq_tx),
            acked_seq_tx: Arc::new(acked_seq_tx),
            unusable_tx: Arc::new(watch::channel(None).0),
            verdict_log_tx: Arc::new(watch::channel(verdict_log).0),
            verdict_lock: Arc::new(Mutex::new(())),
        })
    }

    /// Maps an error of sled, remembering a disk failure for [`AgentStore::unusable`].
    fn engine(&self, e: sled::Error) -> StoreError {
        self.noticed(engine(e))
    }

    fn noticed(&self, e: StoreError) -> StoreError {
        if e.is_unusable() {
            let reason = e.to_string();
            self.unusable_tx.send_if_modified(|held| {
                let first = held.is_none();
                if first {
                    *held = Some(reason);
                }
                first
            });
        }
        e
    }

    fn read_u64(&self, name: &str) -> Result<Option<u64>, StoreError> {
        read_u64(&self.tree, name).map_err(|e| self.noticed(e))
    }

    /// Why this store can no longer be used, if its disk has failed (full or I/O errors).
    pub fn unusable_reason(&self) -> Option<String> {
        self.unusable_tx.borrow().clone()
    }

    /// Waits until the store's disk fails; the running agent then stops so that its service
    /// starts it again, which opens the store anew once the disk has room.
    pub async fn unusable(&self) -> String {
        let mut changes = self.unusable_tx.subscribe();
        // The sender lives in this store; it cannot be gone while `self` is borrowed.
        let failed = changes.wait_for(Option::is_some).await.is_ok();
        if !failed {
            std::future::pending::<()>().await;
        }
        self.unusable_reason().unwrap_or_default()
    }

    pub fn dealer(&self) -> &DealerId {
        &self.dealer
    }

    /// Saves a new record made by `staff_id`: assigns its seq, id and clock stamps, and returns
    /// only once it is durable on disk. Blocking.
    pub fn capture(&self, staff_id: &str, payload: Payload) -> Result<Saved, StoreError> {
        let mut saved = self.capture_many(vec![(staff_id.to_owned(), payload)])?;
        saved
            .pop()
            .ok_or_else(|| StoreError::Engine("nothing was saved".into()))
    }

    /// Saves several records (an import from the dealer's DMS) in one atomic, durable batch, in
    /// the given order. Blocking.
    /// Nothing is saved if any record is over a size bound of `hamgam_proto::limits`
    /// ([`StoreError::OverBound`] names it).
    pub fn capture_many(&self, records: Vec<(String, Payload)>) -> Result<Vec<Saved>, StoreError> {
        self.capture_records(records, true)
    }

    /// Saves a record without checking the size bounds, as an agent older than the bounds did.
    /// Only for tests and for reproducing a store from the field: such a record is never sent
    /// as it is (see the module docs).
    #[doc(hidden)]
    pub fn capture_unbounded(&self, staff_id: &str, payload: Payload) -> Result<Saved, StoreError> {
        self.capture_records(vec![(staff_id.to_owned(), payload)], false)?
            .pop()
            .ok_or_else(|| StoreError::Engine("nothing was saved".into()))
    }

    fn capture_records(
        &self,
        records: Vec<(String, Payload)>,
        checked: bool,
    ) -> Result<Vec<Saved>, StoreError> {
        let _held = self.capture_lock.lock().unwrap_or_else(|p| p.into_inner());
        let records = records
            .into_iter()
            .map(|(staff_id, payload)| NewRecord {
                record_id: uuid::Uuid::now_v7().to_string(),
                staff_id,
                payload,
                origin: None,
            })
            .collect();
        self.capture_held(records, checked, sled::Batch::default())
    }

    /// Saves `records` (staff, payload, origin) with the capture lock held by the caller, in
    /// one atomic batch with the writes already in `batch` (an import's origin index), seqs
    /// from `next_seq` on in the given order.
    fn capture_held(
        &self,
        records: Vec<NewRecord>,
        checked: bool,
        mut batch: sled::Batch,
    ) -> Result<Vec<Saved>, StoreError> {
        let count = records.len();
        let first_seq = self.read_u64("next_seq")?.unwrap_or(1);
        let mut last_hlc = match self.tree.get(meta_key("hlc")).map_err(|e| self.engine(e))? {
            Some(bytes) => {
                Some(
                    HlcStamp::decode(bytes.as_ref()).map_err(|e| StoreError::Corrupt {
                        key: "hlc".into(),
                        detail: e.to_string(),
                    })?,
                )
            }
            None => None,
        };
        let now = self.clock.now_ms();
        let mut saved = Vec::with_capacity(records.len());
        for (offset, new) in records.into_iter().enumerate() {
            let NewRecord {
                record_id,
                staff_id,
                payload,
                origin,
            } = new;
            let seq = first_seq + offset as u64;
            let stamp = hlc::tick(last_hlc.as_ref(), now);
            let record = Record {
                record_id,
                dealer_id: self.dealer.to_string(),
                seq,
                recorded_at_ms: now,
                hlc: Some(stamp),
                staff_id,
                schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
                payload: Some(payload),
                withheld: String::new(),
                origin,
            };
            if checked {
                let violations = limits::check_record(&record);
                if !violations.is_empty() {
                    return Err(StoreError::OverBound {
                        position: (count > 1).then_some(offset),
                        violations,
                    });
                }
            }
            batch.insert(&seq_key(RECORD, seq), record.encode_to_vec());
            tracing::debug!(dealer_id = %self.dealer, record_id = %record.record_id, seq, "record saved");
            saved.push(Saved {
                seq,
                record_id: record.record_id,
            });
            last_hlc = Some(stamp);
        }
        let Some(last) = saved.last() else {
            return Ok(saved);
        };
        let last_seq = last.seq;
        batch.insert(meta_key("next_seq"), &(last_seq + 1).to_be_bytes());
        if let Some(stamp) = &last_hlc {
            batch.insert(meta_key("hlc"), stamp.encode_to_vec());
        }
        self.tree.apply_batch(batch).map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        self.last_seq_tx.send_replace(last_seq);
        Ok(saved)
    }

    /// The record at `seq`.
    pub fn record(&self, seq: u64) -> Result<Option<Record>, StoreError> {
        let key = seq_key(RECORD, seq);
        match self.tree.get(key).map_err(|e| self.engine(e))? {
            Some(bytes) => Ok(Some(decode_record(&key, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The newest `limit` records, newest first (the staff screen's "today").
    pub fn latest_records_blocking(&self, limit: usize) -> Result<Vec<Record>, StoreError> {
        self.tree
            .range(seq_key(RECORD, 0)..=seq_key(RECORD, u64::MAX))
            .rev()
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(|e| self.engine(e))?;
                decode_record(&k, &v)
            })
            .collect()
    }

    /// The staff account `staff_id`, if there is one.
    pub fn staff_account(
        &self,
        staff_id: &str,
    ) -> Result<Option<crate::staff::StaffAccount>, StoreError> {
        match self
            .staff
            .get(staff_id.as_bytes())
            .map_err(|e| self.engine(e))?
        {
            Some(bytes) => Ok(Some(decode_staff(staff_id.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    /// Writes a staff account (new or changed), durably.
    pub fn put_staff_account(
        &self,
        account: &crate::staff::StaffAccount,
    ) -> Result<(), StoreError> {
        let value = serde_json::to_vec(account).map_err(|e| StoreError::Engine(e.to_string()))?;
        self.staff
            .insert(account.staff_id.as_bytes(), value)
            .map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        Ok(())
    }

    /// Every staff account, by staff id.
    pub fn staff_accounts(&self) -> Result<Vec<crate::staff::StaffAccount>, StoreError> {
        self.staff
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(|e| self.engine(e))?;
                decode_staff(&k, &v)
            })
            .collect()
    }

    /// Up to `limit` records after `after`, ascending by seq.
    pub fn records_after_blocking(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        self.tree
            .range(seq_key(RECORD, after.saturating_add(1))..=seq_key(RECORD, u64::MAX))
            .take(limit)
            .map(|item| {
                let (k, v) = item.map_err(|e| self.engine(e))?;
                decode_record(&k, &v)
            })
            .collect()
    }

    /// Up to `limit` records after `after` as the sync stream carries them: a record the hub
    /// could never accept as stored (over a size bound, or unreadable) is replaced by its
    /// stand-in, made once and kept under `w`, so the records behind it go on.
    pub fn sendable_after_blocking(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .tree
            .range(seq_key(RECORD, after.saturating_add(1))..=seq_key(RECORD, u64::MAX))
            .take(limit)
        {
            let (key, bytes) = item.map_err(|e| self.engine(e))?;
            let seq = seq_of(&key)?;
            let record = match decode_record(&key, &bytes) {
                Ok(record) => {
                    let violations = limits::check_record(&record);
                    if violations.is_empty() {
                        record
                    } else {
                        let reason = violations
                            .iter()
                            .map(|v| v.reason_en())
                            .collect::<Vec<_>>()
                            .join("; ");
                        self.stand_in(seq, Some(&record), &reason)?
                    }
                }
                Err(e) => {
                    self.stand_in(seq, None, &format!("the stored record cannot be read: {e}"))?
                }
            };
            out.push(record);
        }
        Ok(out)
    }

    /// The stand-in sent for the record at `seq` (see the module docs): made once, so a re-sent
    /// batch is the same record to the hub.
    fn stand_in(
        &self,
        seq: u64,
        original: Option<&Record>,
        reason: &str,
    ) -> Result<Record, StoreError> {
        let key = seq_key(CANNOT_SEND, seq);
        if let Some(bytes) = self.tree.get(key).map_err(|e| self.engine(e))? {
            return decode_record(&key, &bytes);
        }
        let within = |s: &str| s.len() <= limits::MAX_TEXT_BYTES && !s.is_empty();
        let stand_in = Record {
            record_id: original
                .map(|r| r.record_id.clone())
                .filter(|id| within(id))
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
            dealer_id: self.dealer.to_string(),
            seq,
            recorded_at_ms: original
                .map(|r| r.recorded_at_ms)
                .unwrap_or_else(|| self.clock.now_ms()),
            hlc: original.and_then(|r| r.hlc),
            staff_id: original
                .map(|r| r.staff_id.clone())
                .filter(|s| within(s))
                .unwrap_or_else(|| "unknown".into()),
            schema_version: hamgam_proto::RECORD_SCHEMA_VERSION,
            payload: None,
            withheld: reason.chars().take(limits::MAX_TEXT_BYTES).collect(),
            origin: None,
        };
        self.tree
            .insert(key, stand_in.encode_to_vec())
            .map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        tracing::warn!(dealer_id = %self.dealer, record_id = %stand_in.record_id, seq, "a stored record cannot be sent as it is; its stand-in goes instead: {}", stand_in.withheld);
        Ok(stand_in)
    }

    /// The records that cannot be sent as stored: (seq, why), ascending by seq.
    pub fn cannot_send(&self) -> Result<Vec<(u64, String)>, StoreError> {
        self.tree
            .range(seq_key(CANNOT_SEND, 0)..=seq_key(CANNOT_SEND, u64::MAX))
            .map(|item| {
                let (key, bytes) = item.map_err(|e| self.engine(e))?;
                let record = decode_record(&key, &bytes)?;
                Ok((record.seq, record.withheld))
            })
            .collect()
    }

    /// Every verdict the hub sent, ascending by seq.
    pub fn verdicts(&self) -> Result<Vec<Verdict>, StoreError> {
        self.tree
            .scan_prefix([VERDICT])
            .map(|item| {
                let (k, v) = item.map_err(|e| self.engine(e))?;
                Verdict::decode(v.as_ref()).map_err(|e| StoreError::Corrupt {
                    key: format!("verdict {:?}", &k[1..]),
                    detail: e.to_string(),
                })
            })
            .collect()
    }

    /// Records the hub holds everything up to `stored_seq`, with its verdicts. Blocking.
    pub fn acknowledge_blocking(
        &self,
        stored_seq: u64,
        verdicts: &[Verdict],
    ) -> Result<(), StoreError> {
        let last_seq = *self.last_seq_tx.borrow();
        if stored_seq > last_seq {
            return Err(StoreError::AheadOfLog {
                hub: stored_seq,
                local: last_seq,
            });
        }
        let acked = self.read_u64("acked_seq")?.unwrap_or(0).max(stored_seq);
        let _held = self.verdict_lock();
        let mut log = self.verdict_log()?;
        let mut batch = sled::Batch::default();
        self.put_newer_verdicts(&mut batch, &mut log, verdicts)?;
        batch.insert(meta_key("acked_seq"), &acked.to_be_bytes());
        batch.insert(meta_key("last_sync_ms"), &self.clock.now_ms().to_be_bytes());
        batch.remove(meta_key("last_error"));
        self.tree.apply_batch(batch).map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        self.acked_seq_tx.send_replace(acked);
        self.verdicts_logged(&log);
        Ok(())
    }

    /// Puts each verdict unless a newer version of it is already stored (a change that came
    /// down before the batch's own ack).
    fn put_newer_verdicts(
        &self,
        batch: &mut sled::Batch,
        log: &mut VerdictLog,
        verdicts: &[Verdict],
    ) -> Result<(), StoreError> {
        for verdict in verdicts {
            let key = seq_key(VERDICT, verdict.seq);
            let newer_held = match self.tree.get(key).map_err(|e| self.engine(e))? {
                Some(bytes) => Verdict::decode(bytes.as_ref())
                    .map(|held| held.version > verdict.version)
                    .unwrap_or(false),
                None => false,
            };
            if !newer_held {
                batch.insert(&key, verdict.encode_to_vec());
                log.append(batch, verdict.seq);
            }
        }
        Ok(())
    }

    /// Held while a batch of verdicts is numbered into the log and applied.
    fn verdict_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.verdict_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The verdict log's last number as stored (read under [`Self::verdict_lock`]).
    fn verdict_log(&self) -> Result<VerdictLog, StoreError> {
        Ok(VerdictLog {
            last: self.read_u64("verdict_log")?.unwrap_or(0),
        })
    }

    /// Verdicts stored after verdict-log position `after` (0: every verdict held), the newest
    /// of each record once, in the order they came, at most `limit` log entries read; and
    /// the position to read from next time. What the local API's `Verdicts` answers. Blocking.
    pub fn verdicts_since(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Verdict>, u64), StoreError> {
        let mut cursor = after;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let start = seq_key(VERDICT_LOG, after.saturating_add(1));
        for item in self
            .tree
            .range(start..=seq_key(VERDICT_LOG, u64::MAX))
            .take(limit.max(1))
        {
            let (key, value) = item.map_err(|e| self.engine(e))?;
            let corrupt = || StoreError::Corrupt {
                key: "verdict log".into(),
                detail: "an entry is not two 8-byte numbers".into(),
            };
            let n: [u8; 8] = key[1..].try_into().map_err(|_| corrupt())?;
            let seq: [u8; 8] = value.as_ref().try_into().map_err(|_| corrupt())?;
            cursor = u64::from_be_bytes(n);
            let seq = u64::from_be_bytes(seq);
            if !seen.insert(seq) {
                continue;
            }
            if let Some(bytes) = self
                .tree
                .get(seq_key(VERDICT, seq))
                .map_err(|e| self.engine(e))?
            {
                out.push(
                    Verdict::decode(bytes.as_ref()).map_err(|e| StoreError::Corrupt {
                        key: format!("verdict {seq}"),
                        detail: e.to_string(),
                    })?,
                );
            }
        }
        Ok((out, cursor))
    }

    /// Follows the verdict log's last position: it changes when a verdict is stored.
    pub fn watch_verdicts(&self) -> watch::Receiver<u64> {
        self.verdict_log_tx.subscribe()
    }

    /// Announces the verdict log's new last position once its batch is durable.
    fn verdicts_logged(&self, log: &VerdictLog) {
        self.verdict_log_tx.send_if_modified(|held| {
            let moved = *held != log.last;
            *held = log.last;
            moved
        });
    }

    /// Stores verdict changes from the hub, up to feed position `cursor`. Blocking; durable.
    pub fn store_verdict_changes_blocking(
        &self,
        cursor: u64,
        verdicts: &[Verdict],
    ) -> Result<(), StoreError> {
        let _held = self.verdict_lock();
        let mut log = self.verdict_log()?;
        let mut batch = sled::Batch::default();
        self.put_newer_verdicts(&mut batch, &mut log, verdicts)?;
        let held = self.read_u64("verdict_cursor")?.unwrap_or(0);
        batch.insert(meta_key("verdict_cursor"), &held.max(cursor).to_be_bytes());
        self.tree.apply_batch(batch).map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        self.verdicts_logged(&log);
        Ok(())
    }

    /// Takes the hub's current verdicts as they are, whatever the versions held here: after
    /// the hub was restored from a backup older than this store's verdict cursor, what the hub
    /// holds now is the truth. With `end = Some((hub_stored_seq, cursor))` (the last call), the
    /// verdicts of records beyond `hub_stored_seq` are dropped (those records are sent again
    /// and their verdicts come with the acks) and the feed cursor becomes `cursor`. Blocking;
    /// durable.
    pub fn replace_verdicts_blocking(
        &self,
        verdicts: &[Verdict],
        end: Option<(u64, u64)>,
    ) -> Result<(), StoreError> {
        let _held = self.verdict_lock();
        let mut log = self.verdict_log()?;
        let mut batch = sled::Batch::default();
        for verdict in verdicts {
            batch.insert(&seq_key(VERDICT, verdict.seq), verdict.encode_to_vec());
            log.append(&mut batch, verdict.seq);
        }
        let mut acked_now = None;
        if let Some((hub_stored_seq, cursor)) = end {
            for item in self.tree.range(
                seq_key(VERDICT, hub_stored_seq.saturating_add(1))..=seq_key(VERDICT, u64::MAX),
            ) {
                let (key, _) = item.map_err(|e| self.engine(e))?;
                batch.remove(key);
            }
            batch.insert(meta_key("verdict_cursor"), &cursor.to_be_bytes());
            let acked = self.read_u64("acked_seq")?.unwrap_or(0).min(hub_stored_seq);
            batch.insert(meta_key("acked_seq"), &acked.to_be_bytes());
            acked_now = Some(acked);
        }
        self.tree.apply_batch(batch).map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        if let Some(acked) = acked_now {
            self.acked_seq_tx.send_replace(acked);
        }
        self.verdicts_logged(&log);
        Ok(())
    }

    /// A restore from the hub began here and has not finished (see [`crate::restore`]).
    pub fn is_restoring(&self) -> Result<bool, StoreError> {
        Ok(self.read_u64("restoring")?.is_some())
    }

    /// Marks the store as being restored from the hub, remembering the hub's verdict cursor
    /// read before any record: the feed sends every change after it once the restore is done.
    pub fn begin_restore(&self, verdict_cursor: u64) -> Result<(), StoreError> {
        if self.is_restoring()? {
            return Ok(());
        }
        self.tree
            .insert(meta_key("restoring"), &verdict_cursor.to_be_bytes())
            .map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        Ok(())
    }

    /// Writes records the hub holds for this dealer, with their verdicts, as this store's own:
    /// they must continue the log (seq = last + 1, ...). One atomic, durable batch.
    pub fn restore_records_blocking(
        &self,
        records: &[(Record, Verdict)],
    ) -> Result<(), StoreError> {
        let _held = self.capture_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.read_u64("next_seq")?.unwrap_or(1);
        let mut last_hlc = None;
        let mut batch = sled::Batch::default();
        let mut origins = imported::RestoredOrigins::default();
        for (record, verdict) in records {
            if record.seq != next || record.dealer_id != self.dealer.as_str() {
                return Err(StoreError::Engine(format!(
                    "the hub sent seq {} of dealer {} where this store expects seq {next} of {}",
                    record.seq, record.dealer_id, self.dealer
                )));
            }
            batch.insert(&seq_key(RECORD, record.seq), record.encode_to_vec());
            batch.insert(&seq_key(VERDICT, record.seq), verdict.encode_to_vec());
            origins.restored(self, &mut batch, record)?;
            last_hlc = record.hlc.or(last_hlc);
            next += 1;
        }
        let Some(last) = records.last().map(|(r, _)| r.seq) else {
            return Ok(());
        };
        batch.insert(meta_key("next_seq"), &next.to_be_bytes());
        batch.insert(meta_key("acked_seq"), &last.to_be_bytes());
        if let Some(stamp) = last_hlc {
            batch.insert(meta_key("hlc"), stamp.encode_to_vec());
        }
        self.tree.apply_batch(batch).map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        self.last_seq_tx.send_replace(last);
        self.acked_seq_tx.send_replace(last);
        Ok(())
    }

    /// Ends a restore: the verdict cursor read when it began is this store's.
    pub fn finish_restore(&self) -> Result<(), StoreError> {
        let cursor = self.read_u64("restoring")?.unwrap_or(0);
        let mut batch = sled::Batch::default();
        batch.insert(meta_key("verdict_cursor"), &cursor.to_be_bytes());
        batch.remove(meta_key("restoring"));
        self.tree.apply_batch(batch).map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        Ok(())
    }

    /// The verdict-feed position stored.
    pub fn verdict_cursor(&self) -> Result<u64, StoreError> {
        Ok(self.read_u64("verdict_cursor")?.unwrap_or(0))
    }

    /// Remembers why the last sync failed, for `status`.
    pub fn set_last_error(&self, error: &str) -> Result<(), StoreError> {
        self.tree
            .insert(meta_key("last_error"), error.as_bytes())
            .map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        Ok(())
    }

    /// Follows the highest acknowledged seq (for tests and progress output).
    pub fn watch_acked(&self) -> watch::Receiver<u64> {
        self.acked_seq_tx.subscribe()
    }

    /// Every key and value of the store in key order, to `visit` (`dealer-agent backup`): the
    /// log, the verdicts, the outbox position, the verdict cursor, the clock and the stand-ins.
    /// Captures wait meanwhile. Returns how many entries were visited.
    pub fn export_blocking(&self, visit: &mut ExportVisitor<'_>) -> Result<u64, StoreError> {
        let _held = self.capture_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut count = 0;
        for item in self.tree.iter() {
            let (key, value) = item.map_err(|e| self.engine(e))?;
            visit(&key, &value).map_err(|e| StoreError::Engine(format!("backup: {e}")))?;
            count += 1;
        }
        Ok(count)
    }

    /// Writes the keys and values of a backup of this dealer's store into this store, which
    /// must hold no record yet: one atomic, durable batch (`dealer-agent restore --from`).
    pub fn import_blocking(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let _held = self.capture_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.read_u64("next_seq")?.is_some() || self.is_restoring()? {
            return Err(StoreError::Engine(
                "the store to restore into already holds records".into(),
            ));
        }
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            if key.as_slice() == meta_key("dealer_id").as_slice()
                && value.as_slice() != self.dealer.as_str().as_bytes()
            {
                return Err(StoreError::WrongDealer {
                    path: "the backup".into(),
                    stored: String::from_utf8_lossy(value).into_owned(),
                    configured: self.dealer.to_string(),
                });
            }
            batch.insert(key.as_slice(), value.as_slice());
        }
        self.tree.apply_batch(batch).map_err(|e| self.engine(e))?;
        self.db.flush().map_err(|e| self.engine(e))?;
        let next_seq = self.read_u64("next_seq")?.unwrap_or(1);
        self.last_seq_tx.send_replace(next_seq - 1);
        self.acked_seq_tx
            .send_replace(self.read_u64("acked_seq")?.unwrap_or(0));
        Ok(())
    }

    /// The sync state.
    pub fn status(&self) -> Result<SyncStatus, StoreError> {
        let mut rejected = 0;
        let mut flagged = 0;
        for verdict in self.verdicts()? {
            match verdict.outcome() {
                hamgam_proto::record::v1::Outcome::Rejected => rejected += 1,
                hamgam_proto::record::v1::Outcome::AcceptedWithFlags => flagged += 1,
                _ => {}
            }
        }
        Ok(SyncStatus {
            dealer_id: self.dealer.to_string(),
            last_seq: *self.last_seq_tx.borrow(),
            acked_seq: self.read_u64("acked_seq")?.unwrap_or(0),
            last_sync_ms: self.read_u64("last_sync_ms")?.map(|v| v as i64),
            last_error: self
                .tree
                .get(meta_key("last_error"))
                .map_err(|e| self.engine(e))?
                .map(|v| String::from_utf8_lossy(&v).into_owned()),
            rejected,
            flagged,
            cannot_send: self.cannot_send()?.len() as u64,
        })
    }
}

fn read_u64(tree: &sled::Tree, name: &str) -> Result<Option<u64>, StoreError> {
    match tree.get(meta_key(name)).map_err(engine)? {
        Some(bytes) => {
            let arr: [u8; 8] = bytes.as_ref().try_into().map_err(|_| StoreError::Corrupt {
                key: name.into(),
                detail: "not 8 bytes".into(),
            })?;
            Ok(Some(u64::from_be_bytes(arr)))
        }
        None => Ok(None),
    }
}

fn seq_of(key: &[u8]) -> Result<u64, StoreError> {
    key.get(1..9)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt {
            key: format!("{key:?}"),
            detail: "not a seq key".into(),
        })
}

fn decode_staff(key: &[u8], bytes: &[u8]) -> Result<crate::staff::StaffAccount, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("staff {}", String::from_utf8_lossy(key)),
        detail: e.to_string(),
    })
}

fn decode_record(key: &[u8], bytes: &[u8]) -> Result<Record, StoreError> {
    Record::decode(bytes).map_err(|e| StoreError::Corrupt {
        key: format!("record {:?}", &key[1..]),
        detail: e.to_string(),
    })
}

fn outbox_err(e: StoreError) -> OutboxError {
    OutboxError(e.to_string())
}

/// The store as the sync session's outbox. Blocking sled calls run on the blocking pool only
/// where they may be large (a batch read, an ack with its flush).
impl Outbox for AgentStore {
    fn dealer_id(&self) -> &DealerId {
        &self.dealer
    }

    fn acked_seq(&self) -> Result<u64, OutboxError> {
        read_u64(&self.tree, "acked_seq")
            .map(|v| v.unwrap_or(0))
            .map_err(outbox_err)
    }

    fn last_seq(&self) -> Result<u64, OutboxError> {
        Ok(*self.last_seq_tx.borrow())
    }

    async fn records_after(&self, after: u64, limit: usize) -> Result<Vec<Record>, OutboxError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.sendable_after_blocking(after, limit))
            .await
            .map_err(|e| OutboxError(format!("read task failed: {e}")))?
            .map_err(outbox_err)
    }

    async fn acknowledge(
        &self,
        stored_seq: u64,
        verdicts: Vec<Verdict>,
    ) -> Result<(), OutboxError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.acknowledge_blocking(stored_seq, &verdicts))
            .await
            .map_err(|e| OutboxError(format!("ack task failed: {e}")))?
            .map_err(outbox_err)
    }

    async fn wait_for_records_after(&self, after: u64) {
        let mut last_seq = self.last_seq_tx.subscribe();
        let _ = last_seq.wait_for(|last| *last > after).await;
    }

    fn verdict_cursor(&self) -> Result<u64, OutboxError> {
        AgentStore::verdict_cursor(self).map_err(outbox_err)
    }

    async fn store_verdict_changes(
        &self,
        cursor: u64,
        verdicts: Vec<Verdict>,
    ) -> Result<(), OutboxError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.store_verdict_changes_blocking(cursor, &verdicts))
            .await
            .map_err(|e| OutboxError(format!("verdict task failed: {e}")))?
            .map_err(outbox_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hamgam_proto::record::v1::Lead;

    fn lead() -> Payload {
        Payload::Lead(Lead {
            customer_ref: "C-1".into(),
            contacted_at_ms: 1,
            ..Default::default()
        })
    }

    #[test]
    fn disk_errors_make_the_store_unusable_and_say_what_to_do() {
        let full = engine(sled::Error::Io(std::io::ErrorKind::StorageFull.into()));
        assert!(full.is_unusable());
        assert!(full.to_string().contains("free some space"), "{full}");
        let failing = engine(sled::Error::Io(std::io::Error::other("bad sector")));
        assert!(failing.is_unusable());
        assert!(failing.to_string().contains("bad sector"), "{failing}");
        let bug = engine(sled::Error::Unsupported("x".into()));
        assert!(!bug.is_unusable());
    }

    fn verdict(seq: u64, version: u32) -> Verdict {
        Verdict {
            record_id: format!("r-{seq}"),
            seq,
            version,
            ..Default::default()
        }
    }

    fn seqs_versions(verdicts: &[Verdict]) -> Vec<(u64, u32)> {
        verdicts.iter().map(|v| (v.seq, v.version)).collect()
    }

    #[test]
    fn the_verdict_log_gives_what_came_after_a_cursor_and_covers_stores_from_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let dealer = DealerId::new("D-1").unwrap();
        {
            let store = AgentStore::open(dir.path(), dealer.clone()).unwrap();
            for _ in 0..3 {
                store.capture("S-1", lead()).unwrap();
            }
            let arrivals = store.watch_verdicts();
            store
                .acknowledge_blocking(3, &[verdict(1, 1), verdict(2, 1), verdict(3, 1)])
                .unwrap();
            assert_eq!(*arrivals.borrow(), 3, "a waiting reader is woken");
            let (all, cursor) = store.verdicts_since(0, 100).unwrap();
            assert_eq!(
                (seqs_versions(&all), cursor),
                (vec![(1, 1), (2, 1), (3, 1)], 3)
            );
            // A change of seq 2 comes down; an older version of seq 3 is not news.
            store
                .store_verdict_changes_blocking(1, &[verdict(2, 2), verdict(3, 0)])
                .unwrap();
            let (changed, cursor) = store.verdicts_since(3, 100).unwrap();
            assert_eq!((seqs_versions(&changed), cursor), (vec![(2, 2)], 4));
            assert_eq!(store.verdicts_since(4, 100).unwrap(), (Vec::new(), 4));
            // A limit reads that many log entries and says where to go on.
            let (first, cursor) = store.verdicts_since(0, 2).unwrap();
            assert_eq!((seqs_versions(&first), cursor), (vec![(1, 1), (2, 2)], 2));
            let (rest, cursor) = store.verdicts_since(cursor, 2).unwrap();
            assert_eq!((seqs_versions(&rest), cursor), (vec![(3, 1), (2, 2)], 4));
        }
        // A store written before the log (its verdicts, no `V` entries): opened again, every
        // verdict it holds is logged once, so a reader from 0 sees them all.
        {
            let db = sled::open(dir.path()).unwrap();
            let tree = db.open_tree("agent").unwrap();
            for item in tree.scan_prefix([VERDICT_LOG]) {
                tree.remove(item.unwrap().0).unwrap();
            }
            tree.remove(meta_key("verdict_log")).unwrap();
            db.flush().unwrap();
        }
        let store =
            AgentStore::open_waiting(dir.path(), dealer, std::time::Duration::from_secs(10))
                .unwrap();
        let (all, cursor) = store.verdicts_since(0, 100).unwrap();
        assert_eq!(
            (seqs_versions(&all), cursor),
            (vec![(1, 1), (2, 2), (3, 1)], 3)
        );
    }

    #[test]
    fn seq_is_gap_free_across_restarts_and_acked_records_stay() {
        let dir = tempfile::tempdir().unwrap();
        let dealer = DealerId::new("D-1").unwrap();
        {
            let store = AgentStore::open(dir.path(), dealer.clone()).unwrap();
            assert_eq!(store.capture("S-1", lead()).unwrap().seq, 1);
            assert_eq!(store.capture("S-1", lead()).unwrap().seq, 2);
            store.acknowledge_blocking(1, &[]).unwrap();
        }
        let store = AgentStore::open(dir.path(), dealer).unwrap();
        assert_eq!(store.capture("S-1", lead()).unwrap().seq, 3);
        let status = store.status().unwrap();
        assert_eq!(
            (status.last_seq, status.acked_seq, status.pending()),
            (3, 1, 2)
        );
        let seqs: Vec<u64> = store
            .records_after_blocking(0, 10)
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
    }

    #[test]
    fn an_ack_beyond_the_log_and_another_dealers_store_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = AgentStore::open(dir.path(), DealerId::new("D-1").unwrap()).unwrap();
            store.capture("S-1", lead()).unwrap();
            let err = store.acknowledge_blocking(5, &[]).unwrap_err();
            assert!(
                matches!(err, StoreError::AheadOfLog { hub: 5, local: 1 }),
                "{err}"
            );
        }
        let err = AgentStore::open(dir.path(), DealerId::new("D-2").unwrap())
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::WrongDealer { .. }), "{err}");
    }
}
