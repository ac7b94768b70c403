//! The log's files: how a unit of work is encoded as one checksummed entry, the segments
//! (`wal/NNNNNNNNNN.log`) that hold the entries, and the replay of what a crash left in them.
//! The entry format is in the parent module's doc.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sled::IVec;

use super::LogError;

/// One unit of work's key operations, in order (a later op on a key wins).
#[derive(Default)]
pub struct Ops(pub(super) Vec<(IVec, Option<IVec>)>);

impl Ops {
    pub fn insert(&mut self, key: impl Into<IVec>, value: impl Into<IVec>) {
        self.0.push((key.into(), Some(value.into())));
    }

    pub fn remove(&mut self, key: impl Into<IVec>) {
        self.0.push((key.into(), None));
    }

    /// The entry (header and payload) into `payload`, which is cleared first: the log keeps
    /// one buffer and reuses it, so a unit of work costs no fresh allocation of its size (a
    /// fresh large block each time was page faults on the judging thread).
    pub(super) fn encode_into(&self, payload: &mut Vec<u8>) {
        let size: usize = self
            .0
            .iter()
            .map(|(k, v)| 9 + k.len() + v.as_ref().map_or(0, |v| 4 + v.len()))
            .sum();
        payload.clear();
        payload.reserve(8 + 4 + size);
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
    }

    /// The ops of one entry's payload, or `None` when it does not parse (a torn entry).
    pub(super) fn decode(mut payload: &[u8]) -> Option<Ops> {
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

/// The open log segment.
pub(super) struct Segment {
    pub(super) file: Arc<File>,
    pub(super) number: u64,
    pub(super) written: u64,
    /// The entry being appended, kept between appends (see [`Ops::encode_into`]).
    pub(super) entry: Vec<u8>,
}

/// A unit of work larger than this leaves the entry buffer shrunk back to it after its append.
pub(super) const ENTRY_BUFFER_KEPT: usize = 4 << 20;

pub(super) fn io(path: &Path, source: std::io::Error) -> LogError {
    LogError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub(super) fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("{number:010}.log"))
}

/// The segments in `dir`, oldest first.
pub(super) fn segments(dir: &Path) -> Result<Vec<u64>, LogError> {
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

pub(super) fn create_segment(dir: &Path, number: u64) -> Result<Segment, LogError> {
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
        entry: Vec::new(),
    })
}

/// Replays every segment in `dir` into `tree`, flushes, deletes them; the number of entries
/// replayed and the next segment number.
pub(super) fn replay(db: &sled::Db, tree: &sled::Tree, dir: &Path) -> Result<(u64, u64), LogError> {
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
