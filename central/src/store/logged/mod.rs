//! The hub tree behind a write-ahead log: what makes a unit of work cost one sequential append
//! on the hot path instead of a dozen scattered sled page updates.
//!
//! A write ([`LoggedTree::apply`]) is appended to the current log segment (`wal/NNNNNNNNNN.log`
//! in the store folder) and put into the newest in-memory layer, a sorted map of the keys it
//! set or removed. [`LoggedTree::sync`] makes the log durable (`fdatasync`): an ack still means
//! durable, and it costs one sequential write and one sync per group of units.
//!
//! When the newest layer passes [`FREEZE_BYTES`] it is frozen and a new one (with a new log
//! segment) takes the writes. A background thread, the checkpointer, writes the frozen layer's
//! keys into sled in key order (each key once, however often it was rewritten), flushes sled,
//! deletes the layer's segment and drops the layer. Writes wait only when frozen layers hold
//! more than [`BACKLOG_BYTES`] (the checkpointer cannot keep up).
//!
//! Reads see the newest layer, then the frozen ones (newest first), then sled: a removed key
//! is a tombstone in its layer. Ranges merge the layers and sled in key order, in chunks, so no
//! lock is held between items. Like sled's own iterators they see a consistent value per key,
//! not a snapshot of the whole range.
//!
//! Opening replays the segments left by a crash into sled (in order; each op sets a key's final
//! value, so replaying one twice changes nothing), flushes, and deletes them. A torn last entry
//! (a crash in the middle of an append) was never synced, so never acked: replay stops there.
//! Closing (drop) checkpoints every layer, so a store closed cleanly has no log left.
//!
//! Entry format (little endian): `len u32`, `crc32 u32` of the payload, payload = `ops u32`,
//! then per op `1` (put) or `0` (remove), `key_len u32`, key, and for a put `value_len u32`,
//! value. No sled type leaves the store module.
//!
//! Files: `segment` (the entry format, the segment files, replay), `checkpoint` (the
//! checkpointer thread), `merged` (ranges over the layers and sled), `sled_keys` (the filter
//! that lets point reads of keys sled cannot hold skip it).

use std::collections::BTreeMap;
use std::io::Write;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use sled::IVec;

mod checkpoint;
mod merged;
mod segment;
mod sled_keys;
pub use merged::Merged;
use merged::{owned, prefix_bounds};
pub use segment::Ops;
use segment::{create_segment, io, replay, segment_path, Segment, ENTRY_BUFFER_KEPT};
pub use sled_keys::ScanPrefixOf;
use sled_keys::SledKeys;

/// The newest layer is frozen (and checkpointed) past this many bytes of keys and values.
pub const FREEZE_BYTES: u64 = 32 << 20;
/// Writes wait while the frozen layers hold more than this (the checkpointer is behind).
pub const BACKLOG_BYTES: u64 = 96 << 20;

type Map = BTreeMap<IVec, Option<IVec>>;

/// What a write-ahead log or the checkpointer could not do.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("write-ahead log {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// The log or the checkpointer failed earlier (a sync, a cut, a write into sled): nothing
    /// more is accepted until the hub restarts (the log holds every acked write; opening
    /// replays it).
    #[error("the store stopped taking writes after an earlier failure ({0}); free disk space if it is full, then restart the hub (its log replays)")]
    Broken(String),
}

/// Keys set or removed since a point, and the log segment that holds them.
struct Layer {
    map: RwLock<Map>,
    segment: u64,
    bytes: AtomicU64,
}

impl Layer {
    fn new(segment: u64) -> Arc<Layer> {
        Arc::new(Layer {
            map: RwLock::new(Map::new()),
            segment,
            bytes: AtomicU64::new(0),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Map> {
        self.map.read().unwrap_or_else(|p| p.into_inner())
    }
}

/// What the writers, the readers and the checkpointer share.
struct Shared {
    db: sled::Db,
    tree: sled::Tree,
    wal_dir: PathBuf,
    /// Newest first: `layers[0]` takes the writes, the others are frozen.
    layers: RwLock<Vec<Arc<Layer>>>,
    /// The checkpointer waits here for a frozen layer; writers wait here for room.
    turn: Mutex<()>,
    changed: Condvar,
    stop: AtomicBool,
    broken: Mutex<Option<String>>,
    /// Which keys sled may hold: point reads skip sled for the others.
    keys: SledKeys,
}

impl Shared {
    fn layers(&self) -> Vec<Arc<Layer>> {
        self.layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn frozen_bytes(&self) -> u64 {
        let layers = self.layers.read().unwrap_or_else(|p| p.into_inner());
        layers[1..]
            .iter()
            .map(|l| l.bytes.load(Ordering::Relaxed))
            .sum()
    }

    fn broken(&self) -> Result<(), LogError> {
        match &*self.broken.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(LogError::Broken(why.clone())),
            None => Ok(()),
        }
    }

    /// Refuses every later write (see [`LogError::Broken`]).
    fn fail(&self, why: &str) {
        tracing::error!(
            error = why,
            "the store's log failed; the hub accepts no more writes until restarted"
        );
        *self.broken.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.to_string());
        self.wake();
    }

    fn wake(&self) {
        let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        self.changed.notify_all();
    }
}

/// The hub tree: sled behind a write-ahead log and in-memory layers (see the module doc).
pub struct LoggedTree {
    shared: Arc<Shared>,
    segment: Mutex<Segment>,
    /// The segment number and length known synced.
    synced: Mutex<(u64, u64)>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
    /// The scan of sled's keys ([`LoggedTree::start_key_scan`]).
    key_scan: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl LoggedTree {
    /// Replays what a crash left in `store_dir/wal` into `tree`, then takes the writes.
    /// Opens the log of `tree` in `store_dir` (replaying what a crash left); `scan_prefix_of`
    /// is the store's key layout for the filter ([`ScanPrefixOf`]).
    pub fn open(
        db: sled::Db,
        tree: sled::Tree,
        store_dir: &Path,
        scan_prefix_of: ScanPrefixOf,
    ) -> Result<Self, LogError> {
        let wal_dir = store_dir.join("wal");
        hamgam_gateway::files::create_private_dir(&wal_dir).map_err(|e| io(&wal_dir, e))?;
        let (replayed, next) = replay(&db, &tree, &wal_dir)?;
        if replayed > 0 {
            tracing::info!(
                entries = replayed,
                "replayed the write-ahead log left by an unclean stop"
            );
        }
        let segment = create_segment(&wal_dir, next)?;
        let shared = Arc::new(Shared {
            db,
            tree,
            wal_dir,
            layers: RwLock::new(vec![Layer::new(next)]),
            turn: Mutex::new(()),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            broken: Mutex::new(None),
            keys: SledKeys::new(scan_prefix_of),
        });
        let worker = shared.clone();
        let checkpointer = std::thread::Builder::new()
            .name("hub-checkpoint".into())
            .spawn(move || worker.run_checkpointer())
            .map_err(|e| io(store_dir, e))?;
        Ok(LoggedTree {
            shared,
            segment: Mutex::new(segment),
            synced: Mutex::new((next, 0)),
            checkpointer: Some(checkpointer),
            key_scan: Mutex::new(None),
        })
    }

    /// Starts the background scan of the keys sled holds, after which point reads of a key
    /// no layer holds skip sled when sled cannot hold it (`sled_keys`). From this call on,
    /// nothing but this tree may write the sled tree it was opened with.
    pub fn start_key_scan(&self) -> Result<(), LogError> {
        let shared = self.shared.clone();
        let scan = std::thread::Builder::new()
            .name("hub-key-scan".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match shared.keys.fill(&shared.tree, &shared.stop) {
                    Ok(keys) if shared.keys.is_ready() => tracing::info!(
                        keys,
                        seconds = started.elapsed().as_secs_f64(),
                        "scanned the store's keys: reads of absent keys now skip sled"
                    ),
                    Ok(_) => {}
                    // Reads keep going to sled: slower, never wrong.
                    Err(e) => tracing::warn!(error = %e, "cannot scan the store's keys"),
                }
            })
            .map_err(|e| io(&self.shared.wal_dir, e))?;
        *self.key_scan.lock().unwrap_or_else(|p| p.into_inner()) = Some(scan);
        Ok(())
    }

    /// Bytes of keys and values in the layers, not yet written into sled (the active layer
    /// and the frozen ones the checkpointer has not finished).
    pub fn unwritten_bytes(&self) -> u64 {
        self.shared
            .layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|l| l.bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Reads (point or under a family prefix) answered "absent" without reading sled, since
    /// open.
    pub fn reads_skipped(&self) -> u64 {
        self.shared.keys.skipped()
    }

    /// Waits for the key scan to end (it stops early once the tree is told to stop).
    fn join_key_scan(&self) {
        let scan = self
            .key_scan
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(scan) = scan {
            let _ = scan.join();
        }
    }

    /// Waits for the key scan to end (tests).
    #[cfg(test)]
    fn finish_key_scan(&self) {
        self.join_key_scan();
    }

    /// Appends `ops` to the log (not yet synced) and makes them visible to reads.
    pub fn apply(&self, ops: Ops) -> Result<(), LogError> {
        self.shared.broken()?;
        if self.shared.frozen_bytes() > BACKLOG_BYTES {
            tracing::info!(
                backlog_bytes = self.shared.frozen_bytes(),
                "the store's checkpointer is behind: writes wait for it"
            );
            let mut turn = self.shared.turn.lock().unwrap_or_else(|p| p.into_inner());
            while self.shared.frozen_bytes() > BACKLOG_BYTES {
                self.shared.broken()?;
                turn = self
                    .shared
                    .changed
                    .wait(turn)
                    .unwrap_or_else(|p| p.into_inner());
            }
        }
        let mut segment = self.segment.lock().unwrap_or_else(|p| p.into_inner());
        let segment = &mut *segment;
        ops.encode_into(&mut segment.entry);
        let path = segment_path(&self.shared.wal_dir, segment.number);
        let appended = (&*segment.file).write_all(&segment.entry);
        let entry_len = segment.entry.len() as u64;
        if segment.entry.capacity() > ENTRY_BUFFER_KEPT {
            segment.entry.clear();
            segment.entry.shrink_to(ENTRY_BUFFER_KEPT);
        }
        if let Err(e) = appended {
            // A part of the entry may be on disk (a full disk): cut it off, or the entries
            // appended once there is room again would sit behind a torn one and never replay.
            if let Err(cut) = segment.file.set_len(segment.written) {
                self.shared.fail(&format!(
                    "cannot cut a half-written entry off {}: {cut}",
                    path.display()
                ));
            }
            return Err(io(&path, e));
        }
        segment.written += entry_len;
        let active = self.shared.layers()[0].clone();
        let mut added = 0;
        {
            let mut map = active.map.write().unwrap_or_else(|p| p.into_inner());
            for (k, v) in ops.0 {
                added += (k.len() + v.as_ref().map_or(0, |v| v.len())) as u64;
                map.insert(k, v);
            }
        }
        if active.bytes.fetch_add(added, Ordering::Relaxed) + added >= FREEZE_BYTES {
            self.freeze(segment)?;
        }
        Ok(())
    }

    /// Syncs the old segment, starts a new one and a new layer, wakes the checkpointer.
    fn freeze(&self, segment: &mut Segment) -> Result<(), LogError> {
        let old = segment_path(&self.shared.wal_dir, segment.number);
        segment.file.sync_data().map_err(|e| io(&old, e))?;
        {
            let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
            *synced = (*synced).max((segment.number, segment.written));
        }
        let next = segment.number + 1;
        let entry = std::mem::take(&mut segment.entry);
        *segment = create_segment(&self.shared.wal_dir, next)?;
        segment.entry = entry;
        self.shared
            .layers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(0, Layer::new(next));
        self.shared.wake();
        Ok(())
    }

    /// Makes every write applied so far durable. Concurrent callers share syncs.
    pub fn sync(&self) -> Result<(), LogError> {
        self.shared.broken()?;
        let (file, at) = {
            let segment = self.segment.lock().unwrap_or_else(|p| p.into_inner());
            (segment.file.clone(), (segment.number, segment.written))
        };
        if *self.synced.lock().unwrap_or_else(|p| p.into_inner()) >= at {
            return Ok(());
        }
        let path = segment_path(&self.shared.wal_dir, at.0);
        if let Err(e) = file.sync_data() {
            // After a failed fsync the kernel may have dropped the pages it could not write:
            // nothing written since the last good sync is known durable, and no later sync
            // can tell. Stop; opening again replays what is on disk.
            self.shared
                .fail(&format!("cannot sync {}: {e}", path.display()));
            return Err(io(&path, e));
        }
        let mut synced = self.synced.lock().unwrap_or_else(|p| p.into_inner());
        *synced = (*synced).max(at);
        Ok(())
    }

    /// One put, logged like a unit of work.
    pub fn insert(&self, key: impl Into<IVec>, value: impl Into<IVec>) -> Result<(), LogError> {
        let mut ops = Ops::default();
        ops.insert(key, value);
        self.apply(ops)
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<IVec>, sled::Error> {
        {
            let layers = self.shared.layers.read().unwrap_or_else(|p| p.into_inner());
            for layer in layers.iter() {
                if let Some(value) = layer.read().get(key) {
                    return Ok(value.clone());
                }
            }
        }
        // A layer dropped since is in sled already: the checkpointer drops it only then.
        if !self.shared.keys.may_hold(key) {
            return Ok(None);
        }
        self.shared.tree.get(key)
    }

    /// The keys and values in `range`, in key order.
    pub fn range<K: AsRef<[u8]>>(&self, range: impl std::ops::RangeBounds<K>) -> Merged {
        Merged::new(
            &self.shared,
            owned(range.start_bound()),
            owned(range.end_bound()),
            false,
        )
    }

    /// The keys and values in `range`, last key first.
    pub fn range_back<K: AsRef<[u8]>>(&self, range: impl std::ops::RangeBounds<K>) -> Merged {
        Merged::new(
            &self.shared,
            owned(range.start_bound()),
            owned(range.end_bound()),
            true,
        )
    }

    /// The keys and values under `prefix`, in key order; sled is not read when the filter
    /// knows it holds nothing under this family prefix.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Merged {
        let prefix = prefix.as_ref();
        let (start, end) = prefix_bounds(prefix);
        // The layers first, then the filter: a layer missing from this range was dropped after
        // the checkpointer noted its keys, so the filter sees them (the other order could miss
        // a key that moved from a layer into sled in between).
        let merged = Merged::new(&self.shared, start, end, false);
        let sled_too = self.shared.keys.may_hold_under(prefix);
        merged.layers_only(!sled_too)
    }

    pub fn last_in_prefix(
        &self,
        prefix: impl AsRef<[u8]>,
    ) -> Option<Result<(IVec, IVec), sled::Error>> {
        let (start, end) = prefix_bounds(prefix.as_ref());
        Merged::new(&self.shared, start, end, true).next()
    }

    pub fn iter(&self) -> Merged {
        Merged::new(&self.shared, Bound::Unbounded, Bound::Unbounded, false)
    }
}

impl Drop for LoggedTree {
    /// Stops the checkpointer and checkpoints every layer here, so a store closed cleanly
    /// leaves no log to replay. A failure leaves the log: the next open replays it.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.wake();
        if let Some(worker) = self.checkpointer.take() {
            let _ = worker.join();
        }
        self.join_key_scan();
        tracing::debug!(
            reads_skipped = self.reads_skipped(),
            "point reads of absent keys that skipped sled"
        );
        if self.shared.broken().is_err() {
            return;
        }
        let pending: u64 = self
            .shared
            .layers()
            .iter()
            .map(|l| l.bytes.load(Ordering::Relaxed))
            .sum();
        if pending > 1 << 20 {
            tracing::info!(
                mib = pending >> 20,
                "closing the store: writing what its log holds into sled"
            );
        }
        let closed = (|| -> Result<(), LogError> {
            if self.shared.layers()[0].bytes.load(Ordering::Relaxed) > 0 {
                let mut segment = self.segment.lock().unwrap_or_else(|p| p.into_inner());
                self.freeze(&mut segment)?;
            }
            while self.shared.checkpoint_oldest(false)? {}
            // Only the empty newest layer is left: its segment holds nothing.
            let segment = self.segment.lock().unwrap_or_else(|p| p.into_inner());
            let path = segment_path(&self.shared.wal_dir, segment.number);
            std::fs::remove_file(&path).map_err(|e| io(&path, e))
        })();
        if let Err(e) = closed {
            tracing::warn!(error = %e, "closing the store left its write-ahead log; the next open replays it");
        }
    }
}

#[cfg(test)]
mod tests;
