//! Reading a backup back: [`BackupFolder::open`] refuses a folder that is not a whole backup
//! of a format this binary reads (no manifest, a newer format, a file missing, truncated or
//! changed) before anything is written anywhere; [`restore`] replays its logs into an empty
//! store ([`crate::rebuild::replay`] over a [`BackupLog`]), carries the access audit over and
//! computes the restored state's digest, for the caller to compare with the manifest's.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use hamgam_gateway::backup_dir::{self, MANIFEST};

use super::write::RecordLine;
use super::{BackupError, Manifest, ACCESS, BACKUP_FORMAT, DECISIONS, KIND, RECORDS};
use crate::judge::Rulebook;
use crate::merge::digest::{digest, StateDigest};
use crate::merge::DecisionEntry;
use crate::rebuild::{self, LoggedRecord, ReplaySource, Replayed};
use crate::store::{AccessEntry, HubStore};

/// Records a page of the replay holds at most.
const BATCH: usize = 500;

/// A backup folder whose manifest and files checked out.
#[derive(Debug, Clone)]
pub struct BackupFolder {
    dir: PathBuf,
    manifest: Manifest,
}

impl BackupFolder {
    /// Reads the manifest of the backup at `dir` and checks it (a hub backup, of a format
    /// this binary reads) and every file it names (there, of its size, with its SHA-256).
    pub fn open(dir: &Path) -> Result<Self, BackupError> {
        let bytes = backup_dir::read_manifest(dir)?;
        let path = dir.join(MANIFEST).display().to_string();
        let bad = |detail: String| BackupError::Manifest {
            path: path.clone(),
            detail,
        };
        let loose: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            bad(format!(
                "not JSON ({e}): the manifest is damaged; take a new backup"
            ))
        })?;
        let kind = loose.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        if kind != KIND {
            return Err(bad(format!(
                "`kind` is {kind:?}, not {KIND:?}: this is not a backup of a hub (a dealer-agent backup is restored with `dealer-agent restore --from`)"
            )));
        }
        let found = loose
            .get("backup_format")
            .and_then(|f| f.as_u64())
            .ok_or_else(|| bad("no `backup_format` number".into()))?;
        if found > u64::from(BACKUP_FORMAT) {
            return Err(BackupError::NewerFormat {
                path: dir.display().to_string(),
                found: u32::try_from(found).unwrap_or(u32::MAX),
                known: BACKUP_FORMAT,
            });
        }
        let manifest: Manifest = serde_json::from_value(loose)
            .map_err(|e| bad(format!("{e}: the manifest is damaged; take a new backup")))?;
        for name in [RECORDS, DECISIONS, ACCESS] {
            if !manifest.files.iter().any(|f| f.name == name) {
                return Err(bad(format!("it names no {name}: take a new backup")));
            }
        }
        for file in &manifest.files {
            backup_dir::verify(dir, file)?;
        }
        Ok(BackupFolder {
            dir: dir.to_owned(),
            manifest,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The record and decision logs, to replay.
    pub fn log(&self) -> Result<BackupLog, BackupError> {
        Ok(BackupLog {
            records: JsonLines::open(&self.dir, RECORDS)?,
            decisions: JsonLines::open(&self.dir, DECISIONS)?,
            pending: None,
            seen: BTreeMap::new(),
            last_dealer: None,
            decisions_seen: 0,
            manifest: self.manifest.clone(),
        })
    }

    /// Calls `f` with each access-audit entry, in order.
    pub fn for_each_access(
        &self,
        mut f: impl FnMut(AccessEntry) -> Result<(), BackupError>,
    ) -> Result<u64, BackupError> {
        let mut lines = JsonLines::open(&self.dir, ACCESS)?;
        let mut count = 0;
        while let Some(entry) = lines.next::<AccessEntry>()? {
            f(entry)?;
            count += 1;
        }
        Ok(count)
    }
}

/// A JSON Lines file of a backup, read line by line, naming the line of any fault.
struct JsonLines {
    file: &'static str,
    lines: Lines<BufReader<File>>,
    line: u64,
}

impl JsonLines {
    fn open(dir: &Path, file: &'static str) -> Result<Self, BackupError> {
        let path = dir.join(file);
        let opened = File::open(&path).map_err(|source| BackupError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(JsonLines {
            file,
            lines: BufReader::with_capacity(1 << 20, opened).lines(),
            line: 0,
        })
    }

    fn fault(&self, detail: String) -> BackupError {
        BackupError::Line {
            file: self.file.into(),
            line: self.line,
            detail,
        }
    }

    fn next<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>, BackupError> {
        let Some(text) = self.lines.next() else {
            return Ok(None);
        };
        self.line += 1;
        let text = text.map_err(|e| self.fault(e.to_string()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| self.fault(e.to_string()))
    }
}

/// A backup's record and decision logs as a [`ReplaySource`], checked as they are read:
/// each dealer's records together, seqs 1, 2, 3... up to the manifest's point, and the counts
/// the manifest gives.
pub struct BackupLog {
    records: JsonLines,
    decisions: JsonLines,
    pending: Option<LoggedRecord>,
    /// Each dealer's last seq read.
    seen: BTreeMap<String, u64>,
    last_dealer: Option<String>,
    decisions_seen: u64,
    manifest: Manifest,
}

impl BackupLog {
    fn read_record(&mut self) -> Result<Option<LoggedRecord>, BackupError> {
        let Some(line) = self.records.next::<RecordLine>()? else {
            return Ok(None);
        };
        let wire = base64::engine::general_purpose::STANDARD
            .decode(&line.wire)
            .map_err(|e| self.records.fault(format!("`wire` is not base64: {e}")))?;
        let held = self.seen.get(&line.dealer_id).copied().unwrap_or(0);
        let apart = self.last_dealer.as_deref() != Some(line.dealer_id.as_str()) && held > 0;
        if apart || line.seq != held + 1 {
            return Err(self.records.fault(format!(
                "seq {} of {} where seq {} was next",
                line.seq,
                line.dealer_id,
                held + 1
            )));
        }
        let beyond = self.manifest.point.dealers.get(&line.dealer_id);
        if beyond.is_none_or(|last| line.seq > *last) {
            return Err(self.records.fault(format!(
                "seq {} of {} is beyond the backup's point",
                line.seq, line.dealer_id
            )));
        }
        self.seen.insert(line.dealer_id.clone(), line.seq);
        self.last_dealer = Some(line.dealer_id.clone());
        Ok(Some(LoggedRecord {
            dealer_id: line.dealer_id,
            seq: line.seq,
            received_at_ms: line.received_at_ms,
            clock_offset_ms: line.clock_offset_ms,
            wire,
        }))
    }

    /// At the end of the record log: every dealer's records up to its seq at the point.
    fn check_complete(&self) -> Result<(), BackupError> {
        if self.seen != self.manifest.point.dealers {
            let short: Vec<String> = self
                .manifest
                .point
                .dealers
                .iter()
                .filter(|(d, seq)| self.seen.get(*d) != Some(seq))
                .map(|(d, seq)| format!("{d} up to {seq}"))
                .collect();
            return Err(BackupError::Mismatch {
                what: format!("the records of {RECORDS}"),
                expected: short.join(", "),
                found: "fewer".into(),
            });
        }
        Ok(())
    }
}

impl ReplaySource for BackupLog {
    type Error = BackupError;

    fn total_records(&mut self) -> Result<u64, BackupError> {
        Ok(self.manifest.records)
    }

    fn next_records(&mut self) -> Result<Option<Vec<LoggedRecord>>, BackupError> {
        let first = match self.pending.take() {
            Some(r) => r,
            None => match self.read_record()? {
                Some(r) => r,
                None => {
                    self.check_complete()?;
                    return Ok(None);
                }
            },
        };
        let mut page = vec![first];
        while page.len() < BATCH {
            match self.read_record()? {
                Some(r) if r.dealer_id == page[0].dealer_id => page.push(r),
                Some(r) => {
                    self.pending = Some(r);
                    break;
                }
                None => break,
            }
        }
        Ok(Some(page))
    }

    fn next_decisions(&mut self) -> Result<Vec<DecisionEntry>, BackupError> {
        let mut page = Vec::new();
        while page.len() < BATCH {
            let Some(entry) = self.decisions.next::<DecisionEntry>()? else {
                if page.is_empty() && self.decisions_seen != self.manifest.decisions {
                    return Err(BackupError::Mismatch {
                        what: format!("the number of decisions in {DECISIONS}"),
                        expected: self.manifest.decisions.to_string(),
                        found: self.decisions_seen.to_string(),
                    });
                }
                break;
            };
            if entry.no > self.manifest.point.last_decision {
                return Err(self.decisions.fault(format!(
                    "decision {} is beyond the backup's point",
                    entry.no
                )));
            }
            self.decisions_seen += 1;
            page.push(entry);
        }
        Ok(page)
    }
}

/// What [`restore`] did.
#[derive(Debug, Clone)]
pub struct Restored {
    pub replayed: Replayed,
    pub access_entries: u64,
    /// The restored state's digest.
    pub digest: StateDigest,
}

/// Replays `folder`'s logs into the empty store `into` with `rules`, then carries its access
/// audit over (numbered as it was); `progress(done, total)` after each batch.
pub fn restore<S: HubStore>(
    folder: &BackupFolder,
    into: &S,
    rules: &Rulebook<'_>,
    progress: impl FnMut(u64, u64),
) -> Result<Restored, BackupError> {
    if !into.access_log(0, 1)?.is_empty() {
        return Err(BackupError::Stopped(
            "the store to restore into already holds an access audit: give an empty folder".into(),
        ));
    }
    let replayed = rebuild::replay(&mut folder.log()?, into, rules, progress)?;
    let access_entries = folder.for_each_access(|entry| {
        let no = into.append_access(&entry)?;
        if no != entry.no {
            return Err(BackupError::Mismatch {
                what: format!("the numbering of {ACCESS}"),
                expected: entry.no.to_string(),
                found: no.to_string(),
            });
        }
        Ok(())
    })?;
    if access_entries != folder.manifest.access_entries {
        return Err(BackupError::Mismatch {
            what: format!("the number of entries in {ACCESS}"),
            expected: folder.manifest.access_entries.to_string(),
            found: access_entries.to_string(),
        });
    }
    into.flush()?;
    Ok(Restored {
        replayed,
        access_entries,
        digest: digest(into)?,
    })
}
