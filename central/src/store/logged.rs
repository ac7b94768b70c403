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

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use sled::IVec;

/// The newest layer is frozen (and checkpointed) past this many bytes of keys and values.
pub const FREEZE_BYTES: u64 = 32 << 20;
/// Writes wait while the frozen layers hold more than this (the checkpointer is behind).
pub const BACKLOG_BYTES: u64 = 96 << 20;
/// Items a range reads from a layer per lock: a few first (many ranges are read for their
/// first item), then more.
const FIRST_CHUNK: usize = 8;
const CHUNK: usize = 256;

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
    /// The checkpointer failed earlier: nothing more is accepted until the hub restarts (the
    /// log holds every acked write; opening replays it).
    #[error("the store's checkpointer stopped: {0}; restart the hub (the log replays)")]
    Broken(String),
}

/// One unit of work's key operations, in order (a later op on a key wins).
#[derive(Default)]
pub struct Ops(Vec<(IVec, Option<IVec>)>);

impl Ops {
    pub fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.0.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<IVec>) {
        self.0.push((key.into(), None));
    }

    fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .0
            .iter()
            .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| 4 + v.len()))
            .sum();
        let mut payload = Vec::with_capacity(8 + 4 + size);
        payload.extend_from_slice(&[0; 8]);
        payload.extend_from_slice(&(self.0.len() as u32).to_le_bytes());
        for (k, v) in &self.0 {
            payload.push(u8::from(v.is_some()));
            payload.extend_from_slice(&(k.len() as u32).to_le_bytes());
            payload.extend_from_slice(k);
            if let Some(v) = v {
                payload.extend_from_slice(&(v.len() as u32).to_le_bytes());
                payload.extend_from_slice(v);
            }
        }
        let len = (payload.len() - 8) as u32;
        let crc = crc32fast::hash(&payload[8..]);
        payload[..4].copy_from_slice(&len.to_le_bytes());
        payload[4..8].copy_from_slice(&crc.to_le_bytes());
        payload
    }

    /// The ops of one entry's payload, or `None` when it does not parse (a torn entry).
    fn decode(mut payload: &[u8]) -> Option<Ops> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if bytes.len() < n {
                return None;
            }
            let (head, tail) = bytes.split_at(n);
            *bytes = tail;
            Some(head)
        }
        fn u32_of(bytes: &mut &[u8]) -> Option<usize> {
            let b: [u8; 4] = take(bytes, 4)?.try_into().ok()?;
            Some(u32::from_le_bytes(b) as usize)
        }
        let count = u32_of(&mut payload)?;
        let mut ops = Ops(Vec::with_capacity(count.min(1 << 16)));
        for _ in 0..count {
            let put = take(&mut payload, 1)?[0] == 1;
            let klen = u32_of(&mut payload)?;
            let key = IVec::from(take(&mut payload, klen)?);
            let value = if put {
                let vlen = u32_of(&mut payload)?;
                Some(IVec::from(take(&mut payload, vlen)?))
            } else {
                None
            };
            ops.0.push((key, value));
        }
        payload.is_empty().then_some(ops)
    }
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

/// The open log segment.
struct Segment {
    file: Arc<File>,
    number: u64,
    written: u64,
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

    fn wake(&self) {
        let _turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
        self.changed.notify_all();
    }

    /// Writes the oldest frozen layer into sled, flushes, deletes its segment, drops it.
    /// `false` when there is none (or the checkpointer is told to stop midway).
    fn checkpoint_oldest(&self, stoppable: bool) -> Result<bool, LogError> {
        let Some(oldest) = ({
            let layers = self.layers.read().unwrap_or_else(|p| p.into_inner());
            (layers.len() > 1).then(|| layers[layers.len() - 1].clone())
        }) else {
            return Ok(false);
        };
        let started = std::time::Instant::now();
        let keys = {
            let map = oldest.read();
            for (i, (key, value)) in map.iter().enumerate() {
                if stoppable && i % 1024 == 0 && self.stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                // One key at a time, not `apply_batch`: a batch takes sled's global write
                // lock, which would stop the judging thread's reads for its whole length.
                match value {
                    Some(value) => self.tree.insert(key, value.clone())?,
                    None => self.tree.remove(key)?,
                };
            }
            map.len()
        };
        self.db.flush()?;
        let path = segment_path(&self.wal_dir, oldest.segment);
        std::fs::remove_file(&path).map_err(|source| io(&path, source))?;
        self.layers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|l| !Arc::ptr_eq(l, &oldest));
        self.wake();
        tracing::debug!(
            segment = oldest.segment,
            keys,
            bytes = oldest.bytes.load(Ordering::Relaxed),
            ms = started.elapsed().as_millis() as u64,
            "checkpointed a layer of the store's log into sled"
        );
        Ok(true)
    }

    /// The checkpointer's loop, until told to stop.
    fn run_checkpointer(&self) {
        loop {
            {
                let mut turn = self.turn.lock().unwrap_or_else(|p| p.into_inner());
                while !self.stop.load(Ordering::Relaxed)
                    && self.layers.read().unwrap_or_else(|p| p.into_inner()).len() < 2
                {
                    turn = self.changed.wait(turn).unwrap_or_else(|p| p.into_inner());
                }
            }
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            if let Err(e) = self.checkpoint_oldest(true) {
                tracing::error!(error = %e, "store checkpoint failed; the hub accepts no more writes until restarted");
                *self.broken.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                self.wake();
                return;
            }
        }
    }
}

fn io(path: &Path, source: std::io::Error) -> LogError {
    LogError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:010}.log"))
}

/// The segments in `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<u64>, LogError> {
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".log").and_then(|n| n.parse().ok()) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

fn create_segment(dir: &Path, number: u64) -> Result<Segment, LogError> {
    let path = segment_path(dir, number);
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, hamgam_gateway::files::PRIVATE_FILE_MODE);
    let file = options.open(&path).map_err(|e| io(&path, e))?;
    // The segment's name must survive a crash too.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))?;
    Ok(Segment {
        file: Arc::new(file),
        number,
        written: 0,
    })
}

/// Replays every segment in `dir` into `tree`, flushes, deletes them; the number of entries
/// replayed and the next segment number.
fn replay(db: &sled::Db, tree: &sled::Tree, dir: &Path) -> Result<(u64, u64), LogError> {
    let found = segments(dir)?;
    let mut entries = 0;
    for &number in &found {
        let path = segment_path(dir, number);
        let mut bytes = Vec::new();
        File::open(&path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| io(&path, e))?;
        let mut rest = &bytes[..];
        while rest.len() >= 8 {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
            let Some(payload) = rest.get(8..8 + len) else {
                break;
            };
            if crc32fast::hash(payload) != crc {
                break;
            }
            let Some(ops) = Ops::decode(payload) else {
                break;
            };
            let mut batch = sled::Batch::default();
            for (k, v) in ops.0 {
                match v {
                    Some(v) => batch.insert(k, v),
                    None => batch.remove(k),
                }
            }
            tree.apply_batch(batch)?;
            entries += 1;
            rest = &rest[8 + len..];
        }
        if !rest.is_empty() {
            tracing::warn!(
                segment = number,
                bytes = rest.len(),
                "the write-ahead log ends in a torn entry (a crash mid-append, never acked); replay stops there"
            );
        }
    }
    db.flush()?;
    for &number in &found {
        let path = segment_path(dir, number);
        std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
    }
    Ok((entries, found.last().map_or(1, |n| n + 1)))
}

/// The hub tree: sled behind a write-ahead log and in-memory layers (see the module doc).
pub struct LoggedTree {
    shared: Arc<Shared>,
    segment: Mutex<Segment>,
    /// The segment number and length known synced.
    synced: Mutex<(u64, u64)>,
    checkpointer: Option<std::thread::JoinHandle<()>>,
}

impl LoggedTree {
    /// Replays what a crash left in `store_dir/wal` into `tree`, then takes the writes.
    pub fn open(db: sled::Db, tree: sled::Tree, store_dir: &Path) -> Result<Self, LogError> {
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
        })
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
        let entry = ops.encode();
        let mut segment = self.segment.lock().unwrap_or_else(|p| p.into_inner());
        let path = segment_path(&self.shared.wal_dir, segment.number);
        (&*segment.file)
            .write_all(&entry)
            .map_err(|e| io(&path, e))?;
        segment.written += entry.len() as u64;
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
            self.freeze(&mut segment)?;
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
        *segment = create_segment(&self.shared.wal_dir, next)?;
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
        file.sync_data().map_err(|e| io(&path, e))?;
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
        for layer in self.shared.layers() {
            if let Some(value) = layer.read().get(key) {
                return Ok(value.clone());
            }
        }
        self.shared.tree.get(key)
    }

    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool, sled::Error> {
        Ok(self.get(key.as_ref())?.is_some())
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

    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Merged {
        let (start, end) = prefix_bounds(prefix.as_ref());
        Merged::new(&self.shared, start, end, false)
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

fn owned<K: AsRef<[u8]>>(bound: Bound<&K>) -> Bound<IVec> {
    match bound {
        Bound::Included(k) => Bound::Included(IVec::from(k.as_ref())),
        Bound::Excluded(k) => Bound::Excluded(IVec::from(k.as_ref())),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// `[prefix, next prefix)`; unbounded above when the prefix is all `0xff`.
fn prefix_bounds(prefix: &[u8]) -> (Bound<IVec>, Bound<IVec>) {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return (
                Bound::Included(IVec::from(prefix)),
                Bound::Excluded(IVec::from(end)),
            );
        }
    }
    (Bound::Included(IVec::from(prefix)), Bound::Unbounded)
}

/// Whether `(start, end)` holds no key (`BTreeMap::range` panics on such bounds).
fn is_empty(start: &Bound<IVec>, end: &Bound<IVec>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e))
        | (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}

fn as_ref(bound: &Bound<IVec>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// One layer's part of a range, read a chunk at a time.
struct LayerCursor {
    layer: Arc<Layer>,
    start: Bound<IVec>,
    end: Bound<IVec>,
    buffer: VecDeque<(IVec, Option<IVec>)>,
    done: bool,
    refills: u32,
}

impl LayerCursor {
    fn peek(&mut self, back: bool) -> Option<&(IVec, Option<IVec>)> {
        if self.buffer.is_empty() && !self.done {
            self.refill(back);
        }
        self.buffer.front()
    }

    fn refill(&mut self, back: bool) {
        if is_empty(&self.start, &self.end) {
            self.done = true;
            return;
        }
        let size = if self.refills == 0 {
            FIRST_CHUNK
        } else {
            CHUNK
        };
        self.refills += 1;
        let map = self.layer.read();
        let range = map.range::<[u8], _>((as_ref(&self.start), as_ref(&self.end)));
        let chunk: Vec<_> = if back {
            range
                .rev()
                .take(size)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            range
                .take(size)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        drop(map);
        if chunk.len() < size {
            self.done = true;
        }
        if let Some((last, _)) = chunk.last() {
            if back {
                self.end = Bound::Excluded(last.clone());
            } else {
                self.start = Bound::Excluded(last.clone());
            }
        }
        self.buffer.extend(chunk);
    }
}

/// A range over the layers and sled, merged in key order (or reversed).
pub struct Merged {
    layers: Vec<LayerCursor>,
    sled: sled::Iter,
    sled_head: Option<(IVec, IVec)>,
    sled_done: bool,
    back: bool,
}

impl Merged {
    fn new(shared: &Shared, start: Bound<IVec>, end: Bound<IVec>, back: bool) -> Merged {
        let layers = shared
            .layers()
            .into_iter()
            .map(|layer| LayerCursor {
                layer,
                start: start.clone(),
                end: end.clone(),
                buffer: VecDeque::new(),
                done: false,
                refills: 0,
            })
            .collect();
        let sled = if is_empty(&start, &end) {
            shared.tree.range::<&[u8], _>(&[][..]..&[][..])
        } else {
            shared.tree.range::<IVec, _>((start, end))
        };
        Merged {
            layers,
            sled,
            sled_head: None,
            sled_done: false,
            back,
        }
    }

    /// Whether `a` comes before `b` in this range's direction.
    fn before(&self, a: &[u8], b: &[u8]) -> bool {
        if self.back {
            a > b
        } else {
            a < b
        }
    }
}

impl Iterator for Merged {
    type Item = Result<(IVec, IVec), sled::Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.sled_head.is_none() && !self.sled_done {
                let item = if self.back {
                    self.sled.next_back()
                } else {
                    self.sled.next()
                };
                match item {
                    Some(Ok(kv)) => self.sled_head = Some(kv),
                    Some(Err(e)) => return Some(Err(e)),
                    None => self.sled_done = true,
                }
            }
            // The first key in this direction among the layers' heads and sled's.
            let back = self.back;
            let mut first: Option<IVec> = self.sled_head.as_ref().map(|(k, _)| k.clone());
            for i in 0..self.layers.len() {
                if let Some((k, _)) = self.layers[i].peek(back) {
                    let k = k.clone();
                    if first.as_ref().is_none_or(|f| self.before(&k, f)) {
                        first = Some(k);
                    }
                }
            }
            let key = first?;
            // The newest layer that has the key decides; the others and sled are passed.
            let mut value: Option<Option<IVec>> = None;
            for layer in &mut self.layers {
                if layer.peek(back).is_some_and(|(k, _)| *k == key) {
                    if let Some((_, v)) = layer.buffer.pop_front() {
                        value.get_or_insert(v);
                    }
                }
            }
            if self.sled_head.as_ref().is_some_and(|(k, _)| *k == key) {
                if let Some((_, v)) = self.sled_head.take() {
                    value.get_or_insert(Some(v));
                }
            }
            if let Some(Some(v)) = value {
                return Some(Ok((key, v)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(dir: &Path) -> sled::Db {
        sled::Config::new()
            .path(dir.join("db"))
            .flush_every_ms(None)
            .open()
            .expect("sled")
    }

    /// The log over tree `t` of `db`; reopening over the same `db` is what a restart sees
    /// (sled's own state is unaffected by the log).
    fn open(db: &sled::Db, dir: &Path) -> LoggedTree {
        LoggedTree::open(db.clone(), db.open_tree("t").expect("tree"), dir).expect("open")
    }

    fn keys(items: Merged) -> Vec<(Vec<u8>, Vec<u8>)> {
        items
            .map(|i| {
                let (k, v) = i.expect("item");
                (k.to_vec(), v.to_vec())
            })
            .collect()
    }

    #[test]
    fn ranges_merge_layers_and_sled_with_removals_in_both_directions() {
        let dir = tempfile::tempdir().expect("dir");
        let db = db(dir.path());
        let tree = open(&db, dir.path());
        // Old values straight into sled (what a checkpoint wrote), newer ones in layers.
        for k in [b"a1", b"a3", b"a5", b"b1"] {
            tree.shared.tree.insert(k, &b"sled"[..]).expect("insert");
        }
        let mut ops = Ops::default();
        ops.insert(&b"a2"[..], &b"new"[..]);
        ops.insert(&b"a3"[..], &b"new"[..]);
        ops.remove(&b"a5"[..]);
        tree.apply(ops).expect("apply");
        assert_eq!(tree.get(b"a5").expect("get"), None);
        assert_eq!(tree.get(b"a3").expect("get").as_deref(), Some(&b"new"[..]));
        assert_eq!(tree.get(b"a1").expect("get").as_deref(), Some(&b"sled"[..]));
        let forward = keys(tree.scan_prefix(b"a"));
        assert_eq!(
            forward,
            vec![
                (b"a1".to_vec(), b"sled".to_vec()),
                (b"a2".to_vec(), b"new".to_vec()),
                (b"a3".to_vec(), b"new".to_vec()),
            ]
        );
        let backward = keys(tree.range_back(b"a0".to_vec()..b"b".to_vec()));
        assert_eq!(
            backward.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            vec![b"a3".to_vec(), b"a2".to_vec(), b"a1".to_vec()]
        );
        // A removed last key is passed over by the reverse read.
        let mut ops = Ops::default();
        ops.remove(&b"a3"[..]);
        tree.apply(ops).expect("apply");
        let last = tree.last_in_prefix(b"a").expect("some").expect("ok");
        assert_eq!(last.0.as_ref(), b"a2");
        assert!(keys(tree.range(b"c".to_vec()..b"b".to_vec())).is_empty());
    }

    #[test]
    fn ranges_longer_than_a_chunk_read_every_key_once() {
        let dir = tempfile::tempdir().expect("dir");
        let db = db(dir.path());
        let tree = open(&db, dir.path());
        for i in (0u32..2000).step_by(2) {
            tree.shared
                .tree
                .insert(i.to_be_bytes(), &b"s"[..])
                .expect("insert");
        }
        let mut ops = Ops::default();
        for i in (1u32..2000).step_by(2) {
            ops.insert(&i.to_be_bytes()[..], &b"l"[..]);
        }
        tree.apply(ops).expect("apply");
        let all = keys(tree.iter());
        assert_eq!(all.len(), 2000);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        let back = keys(tree.range_back::<Vec<u8>>(..));
        assert_eq!(back.len(), 2000);
        assert!(back.windows(2).all(|w| w[0].0 > w[1].0));
    }

    #[test]
    fn a_store_dropped_without_closing_replays_its_log_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().expect("dir");
        let db = db(dir.path());
        {
            let tree = open(&db, dir.path());
            let mut ops = Ops::default();
            ops.insert(&b"k1"[..], &b"v1"[..]);
            ops.insert(&b"k2"[..], &b"v2"[..]);
            tree.apply(ops).expect("apply");
            let mut ops = Ops::default();
            ops.remove(&b"k1"[..]);
            tree.apply(ops).expect("apply");
            tree.sync().expect("sync");
            // A crash: nothing is checkpointed.
            tree.shared.stop.store(true, Ordering::Relaxed);
            *tree.shared.broken.lock().expect("lock") = Some("crash".into());
        }
        let wal = dir.path().join("wal");
        let last = *segments(&wal).expect("segments").last().expect("a segment");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(segment_path(&wal, last))
            .expect("segment");
        file.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 9]).expect("torn");
        drop(file);
        assert_eq!(
            db.open_tree("t").expect("tree").get(b"k2").expect("get"),
            None
        );
        let tree = open(&db, dir.path());
        assert_eq!(tree.get(b"k1").expect("get"), None);
        assert_eq!(tree.get(b"k2").expect("get").as_deref(), Some(&b"v2"[..]));
        // Replayed into sled itself, and the replayed segments are gone.
        assert_eq!(
            tree.shared.tree.get(b"k2").expect("get").as_deref(),
            Some(&b"v2"[..])
        );
        assert_eq!(segments(&wal).expect("segments").len(), 1);
    }

    #[test]
    fn frozen_layers_are_checkpointed_into_sled_and_a_clean_close_leaves_no_log() {
        let dir = tempfile::tempdir().expect("dir");
        let db = db(dir.path());
        {
            let tree = open(&db, dir.path());
            let big = vec![7u8; 1 << 20];
            for i in 0u32..40 {
                let mut ops = Ops::default();
                ops.insert(&i.to_be_bytes()[..], big.clone());
                tree.apply(ops).expect("apply");
            }
            // Past FREEZE_BYTES: at least one layer was frozen and a new segment started.
            assert!(tree.segment.lock().expect("lock").number > 1);
            assert_eq!(tree.iter().count(), 40);
        }
        let wal = dir.path().join("wal");
        assert!(segments(&wal).expect("segments").is_empty());
        let tree = open(&db, dir.path());
        assert_eq!(tree.shared.tree.len(), 40);
        assert_eq!(tree.iter().count(), 40);
    }
}
