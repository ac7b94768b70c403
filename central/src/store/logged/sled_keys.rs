//! Which keys sled may hold: lets a point read of a key that no layer holds skip sled when
//! sled cannot hold it either (a new record's id, a new customer's party, a group seen for the
//! first time). Most reads while judging new records are of such keys, and a sled lookup of an
//! absent key walks its tree all the same.
//!
//! A Bloom filter (no false negatives; about 1 % false positives, which read sled as before)
//! of every key sled holds. Filled from two sides:
//! - the checkpointer notes each key it puts **before** it writes it into sled (off the
//!   judging thread); a read looks in the layers first, and the checkpointer drops a layer
//!   only once all its keys are in sled, so a key a read no longer finds in a layer is noted;
//! - a background scan notes the keys sled held when the scan started ([`SledKeys::fill`]).
//!
//! Range reads of a whole family's prefix (a block's parties, a group's members) skip sled the
//! same way: the store names, per key, the prefix its family is scanned by ([`ScanPrefixOf`]),
//! and each key noted notes that prefix too. A scan of exactly such a prefix that the filter has
//! never seen reads only the layers.
//!
//! Until the scan has finished, the filter answers "may hold" for every key. The invariant
//! that makes a "no" true: once the scan starts, only the checkpointer writes the sled tree.
//! A removed key stays in the filter (reads of it go to sled, which answers "absent").

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use growable_bloom_filter::{GrowableBloom, GrowableBloomBuilder};

/// What an item of the filter is: a whole key or a family's scan prefix of one.
const KEY: u8 = 0;
const PREFIX: u8 = 1;

/// The false-positive ratio the filter is built for.
const ERROR_RATIO: f64 = 0.01;
/// The scan notes keys in chunks this long, so writers never wait long for the filter.
const SCAN_CHUNK: usize = 4096;

/// The length of the prefix a key's family is scanned by (`None` for a family never scanned
/// by prefix); the store's key layout, given to the log when it opens.
pub type ScanPrefixOf = fn(&[u8]) -> Option<usize>;

/// The keys sled may hold (see the module doc).
pub(super) struct SledKeys {
    filter: Mutex<GrowableBloom>,
    scan_prefix_of: ScanPrefixOf,
    ready: AtomicBool,
    /// Point reads the filter answered without sled.
    skipped: AtomicU64,
}

impl SledKeys {
    pub(super) fn new(scan_prefix_of: ScanPrefixOf) -> Self {
        SledKeys {
            scan_prefix_of,
            filter: Mutex::new(
                GrowableBloomBuilder::new()
                    .estimated_insertions(1 << 22)
                    .desired_error_ratio(ERROR_RATIO)
                    .build(),
            ),
            ready: AtomicBool::new(false),
            skipped: AtomicU64::new(0),
        }
    }

    /// Notes keys the checkpointer is about to put into sled.
    pub(super) fn note<'a>(&self, keys: impl Iterator<Item = &'a [u8]>) {
        let mut filter = self.filter.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            filter.insert((KEY, key));
            if let Some(prefix) = (self.scan_prefix_of)(key).and_then(|n| key.get(..n)) {
                filter.insert((PREFIX, prefix));
            }
        }
    }

    /// Whether sled may hold `key`: `false` only when it cannot.
    pub(super) fn may_hold(&self, key: &[u8]) -> bool {
        if !self.ready.load(Ordering::Acquire) {
            return true;
        }
        self.counted(
            self.filter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains((KEY, key)),
        )
    }

    /// Whether sled may hold a key under `prefix`: `false` only when `prefix` is a family's
    /// scan prefix that no key sled holds has.
    pub(super) fn may_hold_under(&self, prefix: &[u8]) -> bool {
        if !self.ready.load(Ordering::Acquire)
            || (self.scan_prefix_of)(prefix) != Some(prefix.len())
        {
            return true;
        }
        self.counted(
            self.filter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains((PREFIX, prefix)),
        )
    }

    fn counted(&self, may: bool) -> bool {
        if !may {
            self.skipped.fetch_add(1, Ordering::Relaxed);
        }
        may
    }

    /// Reads answered "absent" without sled so far.
    pub(super) fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    pub(super) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Notes every key `tree` holds, then trusts the filter's "no". Stops early (the filter
    /// stays untrusted) when `stop` is set. The number of keys scanned.
    pub(super) fn fill(&self, tree: &sled::Tree, stop: &AtomicBool) -> Result<u64, sled::Error> {
        let mut chunk: Vec<sled::IVec> = Vec::with_capacity(SCAN_CHUNK);
        let mut scanned = 0u64;
        for key in tree.iter().keys() {
            chunk.push(key?);
            if chunk.len() == SCAN_CHUNK {
                if stop.load(Ordering::Relaxed) {
                    return Ok(scanned);
                }
                scanned += chunk.len() as u64;
                self.note(chunk.iter().map(|k| k.as_ref()));
                chunk.clear();
            }
        }
        scanned += chunk.len() as u64;
        self.note(chunk.iter().map(|k| k.as_ref()));
        self.ready.store(true, Ordering::Release);
        Ok(scanned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_noted_or_scanned_is_never_reported_absent_and_most_others_are() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled");
        let tree = db.open_tree("t").expect("tree");
        for i in 0..20_000u32 {
            tree.insert(format!("old/{i}"), &[1u8][..]).expect("insert");
        }
        let keys = SledKeys::new(|_| None);
        let stop = AtomicBool::new(false);
        assert!(
            keys.may_hold(b"never"),
            "before the scan every key may be held"
        );
        keys.note(
            (0..5_000u32)
                .map(|i| format!("new/{i}"))
                .collect::<Vec<_>>()
                .iter()
                .map(|k| k.as_bytes()),
        );
        assert_eq!(keys.fill(&tree, &stop).expect("scan"), 20_000);
        for i in 0..20_000u32 {
            assert!(keys.may_hold(format!("old/{i}").as_bytes()), "old/{i}");
        }
        for i in 0..5_000u32 {
            assert!(keys.may_hold(format!("new/{i}").as_bytes()), "new/{i}");
        }
        let absent = (0..10_000u32)
            .filter(|i| !keys.may_hold(format!("absent/{i}").as_bytes()))
            .count();
        assert!(
            absent > 9_500,
            "only {absent} of 10,000 absent keys skipped sled"
        );
        assert_eq!(keys.skipped(), absent as u64);
    }

    #[test]
    fn a_stopped_scan_leaves_every_key_possibly_held() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled");
        let tree = db.open_tree("t").expect("tree");
        for i in 0..(SCAN_CHUNK as u32 * 2) {
            tree.insert(format!("k/{i}"), &[1u8][..]).expect("insert");
        }
        let keys = SledKeys::new(|_| None);
        let stop = AtomicBool::new(true);
        keys.fill(&tree, &stop).expect("scan");
        assert!(!keys.is_ready());
        assert!(keys.may_hold(b"k/999999"));
    }
}
