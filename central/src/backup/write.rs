//! Making a backup: the point taken ([`capture`], under the judging lock), then the files
//! written from the store up to it ([`write_backup`]) through a [`Sink`]: the ops RPC's stream
//! at a running hub, or a [`DirSink`] (the folder itself) for a stopped hub's store and at the
//! receiving end of the RPC.

use std::io::Write as _;
use std::time::{Duration, Instant};

use base64::Engine as _;
use hamgam_gateway::backup_dir::{BackupDir, FileSummary, FileWriter, MANIFEST};

use super::{
    BackupError, Captured, DigestSummary, Manifest, Point, ACCESS, BACKUP_FORMAT, DECISIONS, KIND,
    RECORDS,
};
use crate::merge::digest::digest_until;
use crate::rebuild::{ReplaySource, StoreLog};
use crate::store::sled_store::STORE_FORMAT;
use crate::store::{HubStore, StoreError};

/// Bytes of a file sent to the sink at a time.
const CHUNK: usize = 1 << 20;

/// Entries read from the store at a time.
const PAGE: usize = 1_000;

/// One line of `records.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordLine {
    pub dealer_id: String,
    pub seq: u64,
    pub received_at_ms: i64,
    pub clock_offset_ms: i64,
    /// The record as the dealer sent it, protobuf, in standard base64.
    pub wire: String,
}

/// Where a backup's files go, in order, chunk by chunk; `manifest.json` comes last.
pub trait Sink {
    fn chunk(&mut self, file: &str, data: &[u8], last: bool) -> Result<(), BackupError>;
}

/// Whether and how long [`capture`] may take the state digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestAt {
    /// No digest: the point only.
    Skip,
    /// Abandoned after this long (a running hub: batches wait meanwhile).
    Within(Duration),
    /// However long it takes (a stopped hub: nothing waits).
    Always,
}

/// Takes the backup's point of `store`, which no unit of work may change meanwhile (call it
/// under the judging lock), and the state digest at it as `digest_at` says.
pub fn capture<S: HubStore>(store: &S, digest_at: DigestAt) -> Result<Captured, StoreError> {
    let started = Instant::now();
    let dealers = store
        .dealers()?
        .into_iter()
        .filter(|(_, state)| state.stored_seq > 0)
        .map(|(d, state)| (d, state.stored_seq))
        .collect();
    let point = Point {
        dealers,
        last_decision: store.last_decision()?,
        last_access: 0,
    };
    let deadline = match digest_at {
        DigestAt::Skip => None,
        DigestAt::Within(max) => Some(started.checked_add(max)),
        DigestAt::Always => Some(None),
    };
    let (digest, digest_note) = match deadline {
        None => (None, "no live digest was asked for".to_owned()),
        Some(deadline) => match digest_until(store, deadline)? {
            Some(d) => (Some(d), String::new()),
            None => (
                None,
                format!(
                    "the state digest took longer than the {} ms allowed to hold batches back, \
                     and was abandoned",
                    deadline.map_or(0, |d| d.duration_since(started).as_millis())
                ),
            ),
        },
    };
    Ok(Captured {
        point,
        digest,
        digest_note,
        pause_ms: started.elapsed().as_millis() as u64,
    })
}

/// One file being sent to a sink: hashed and counted as it goes, in chunks of [`CHUNK`].
struct FileOut {
    name: &'static str,
    buf: Vec<u8>,
    sha: ring::digest::Context,
    bytes: u64,
}

impl FileOut {
    fn new(name: &'static str) -> Self {
        FileOut {
            name,
            buf: Vec::with_capacity(CHUNK + 4096),
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
        }
    }

    fn line<T: serde::Serialize>(
        &mut self,
        sink: &mut dyn Sink,
        item: &T,
    ) -> Result<(), BackupError> {
        serde_json::to_writer(&mut self.buf, item).map_err(|e| {
            BackupError::Stopped(format!("cannot encode a line of {}: {e}", self.name))
        })?;
        self.buf.push(b'\n');
        if self.buf.len() >= CHUNK {
            self.send(sink, false)?;
        }
        Ok(())
    }

    fn send(&mut self, sink: &mut dyn Sink, last: bool) -> Result<(), BackupError> {
        self.sha.update(&self.buf);
        self.bytes += self.buf.len() as u64;
        sink.chunk(self.name, &self.buf, last)?;
        self.buf.clear();
        Ok(())
    }

    fn end(mut self, sink: &mut dyn Sink) -> Result<FileSummary, BackupError> {
        self.send(sink, true)?;
        Ok(FileSummary {
            name: self.name.to_owned(),
            bytes: self.bytes,
            sha256: self
                .sha
                .finish()
                .as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
    }
}

/// Writes the backup of `store` at `captured`'s point to `sink`: the record log, the decision
/// log, the access audit, then the manifest. `progress(records written)` after each page.
pub fn write_backup<S: HubStore>(
    store: &S,
    captured: Captured,
    taken_at_ms: i64,
    sink: &mut dyn Sink,
    progress: &mut dyn FnMut(u64),
) -> Result<Manifest, BackupError> {
    let mut point = captured.point;
    let mut log = StoreLog::up_to(
        store,
        point.dealers.clone().into_iter().collect(),
        point.last_decision,
    );
    let mut files = Vec::with_capacity(3);
    let mut out = FileOut::new(RECORDS);
    let mut records = 0;
    while let Some(page) = log.next_records()? {
        for r in page {
            out.line(
                sink,
                &RecordLine {
                    dealer_id: r.dealer_id,
                    seq: r.seq,
                    received_at_ms: r.received_at_ms,
                    clock_offset_ms: r.clock_offset_ms,
                    wire: base64::engine::general_purpose::STANDARD.encode(&r.wire),
                },
            )?;
            records += 1;
        }
        progress(records);
    }
    files.push(out.end(sink)?);
    let mut out = FileOut::new(DECISIONS);
    let mut decisions = 0;
    loop {
        let page = log.next_decisions()?;
        if page.is_empty() {
            break;
        }
        for d in &page {
            out.line(sink, d)?;
            decisions += 1;
        }
    }
    files.push(out.end(sink)?);
    let mut out = FileOut::new(ACCESS);
    let mut access_entries = 0;
    loop {
        let page = store.access_log(point.last_access, PAGE)?;
        for entry in &page {
            out.line(sink, entry)?;
            point.last_access = entry.no;
            access_entries += 1;
        }
        if page.len() < PAGE {
            break;
        }
    }
    files.push(out.end(sink)?);
    let manifest = Manifest {
        kind: KIND.to_owned(),
        backup_format: BACKUP_FORMAT,
        store_format: STORE_FORMAT,
        hub_version: env!("CARGO_PKG_VERSION").to_owned(),
        taken_at_ms,
        point,
        records,
        decisions,
        access_entries,
        pause_ms: captured.pause_ms,
        digest: captured.digest.as_ref().map(DigestSummary::from),
        digest_note: captured.digest_note,
        files,
    };
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Stopped(format!("cannot encode the manifest: {e}")))?;
    sink.chunk(MANIFEST, &bytes, true)?;
    Ok(manifest)
}

/// A sink that is the backup folder: each file written under a temporary name and renamed
/// when complete; the manifest, checked against what was received, written last.
pub struct DirSink {
    dir: Option<BackupDir>,
    open: Option<FileWriter>,
    done: Vec<FileSummary>,
    manifest: Vec<u8>,
    records: u64,
}

impl DirSink {
    /// A new backup folder at `dir` (new or empty; anything else is refused).
    pub fn create(dir: &std::path::Path) -> Result<Self, BackupError> {
        Ok(DirSink {
            dir: Some(BackupDir::create(dir)?),
            open: None,
            done: Vec::new(),
            manifest: Vec::new(),
            records: 0,
        })
    }

    /// Records received so far (lines of `records.jsonl`).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Checks the manifest received against the files received and writes it: the folder is
    /// a backup from now on. Refused when the stream ended before the manifest, or a file
    /// differs from what the manifest says of it.
    pub fn finish(mut self) -> Result<(Manifest, std::path::PathBuf), BackupError> {
        let dir = self
            .dir
            .take()
            .ok_or_else(|| BackupError::Stopped("the backup folder was already finished".into()))?;
        if self.manifest.is_empty() || self.open.is_some() {
            return Err(BackupError::Stopped(
                "the hub ended the backup before its manifest; the folder is not a backup".into(),
            ));
        }
        let manifest: Manifest =
            serde_json::from_slice(&self.manifest).map_err(|e| BackupError::Manifest {
                path: MANIFEST.into(),
                detail: format!("the manifest received does not parse: {e}"),
            })?;
        if manifest.files != self.done {
            return Err(BackupError::Mismatch {
                what: "the files' sizes and SHA-256".into(),
                expected: format!("{:?}", manifest.files),
                found: format!("{:?}", self.done),
            });
        }
        let path = dir.finish(&self.manifest)?;
        Ok((manifest, path))
    }
}

impl Sink for DirSink {
    fn chunk(&mut self, file: &str, data: &[u8], last: bool) -> Result<(), BackupError> {
        let dir = self
            .dir
            .as_ref()
            .ok_or_else(|| BackupError::Stopped("the backup folder was finished".into()))?;
        if file == MANIFEST {
            self.manifest.extend_from_slice(data);
            return Ok(());
        }
        if file == RECORDS {
            self.records += data.iter().filter(|b| **b == b'\n').count() as u64;
        }
        let writer = match &mut self.open {
            Some(w) if w.name() == file => w,
            Some(_) => {
                return Err(BackupError::Stopped(format!(
                    "{file} began before the file before it ended"
                )))
            }
            None => self.open.insert(dir.file(file)?),
        };
        writer.write_all(data).map_err(|source| BackupError::Io {
            path: dir.path().join(file).display().to_string(),
            source,
        })?;
        if last {
            if let Some(w) = self.open.take() {
                self.done.push(w.finish()?);
            }
        }
        Ok(())
    }
}
