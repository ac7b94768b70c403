//! The checkpointer: the background thread that writes frozen layers into sled, oldest first,
//! then deletes their log segments.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::segment::{io, segment_path};
use super::{LogError, Shared};

/// Keys noted and written per turn (and how often a stop is looked for).
const CHUNK: usize = 1024;

impl Shared {
    /// Writes the oldest frozen layer into sled, flushes, deletes its segment, drops it.
    /// `false` when there is none (or the checkpointer is told to stop midway).
    pub(super) fn checkpoint_oldest(&self, stoppable: bool) -> Result<bool, LogError> {
        let Some(oldest) = ({
            let layers = self.layers.read().unwrap_or_else(|p| p.into_inner());
            (layers.len() > 1).then(|| layers[layers.len() - 1].clone())
        }) else {
            return Ok(false);
        };
        let started = std::time::Instant::now();
        let keys = {
            let map = oldest.read();
            let entries: Vec<_> = map.iter().collect();
            for chunk in entries.chunks(CHUNK) {
                if stoppable && self.stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                // Noted before sled holds them: a read that no longer finds a key in this
                // layer (dropped only after every key is in sled) finds it noted.
                self.keys.note(
                    chunk
                        .iter()
                        .filter(|(_, v)| v.is_some())
                        .map(|(k, _)| k.as_ref()),
                );
                for (key, value) in chunk {
                    // One key at a time, not `apply_batch`: a batch takes sled's global write
                    // lock, which would stop the judging thread's reads for its whole length.
                    match value {
                        Some(value) => self.tree.insert(key, value.clone())?,
                        None => self.tree.remove(key)?,
                    };
                }
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
    pub(super) fn run_checkpointer(&self) {
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
                self.fail(&format!("checkpoint: {e}"));
                return;
            }
        }
    }
}
