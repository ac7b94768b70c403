//! `dealer-agent backup --to DIR` and `dealer-agent restore --from DIR`: a copy of the branch's
//! own store, for what the hub cannot give back (records not synced yet; the store's outbox
//! position, verdict cursor and clock), restored as it was.
//!
//! The backup is every key and value of the store ([`AgentStore::export_blocking`], captures
//! held meanwhile) in `store.kv` (frames: key length u32 BE, key, value length u32 BE, value)
//! and a `manifest.json` written last ([`hamgam_gateway::backup_dir`]). It is taken from a store
//! this process opened: a running agent holds its store, so stop `dealer-agent run` first (a
//! store of a branch is small; a backup takes seconds). A restore checks the manifest (an
//! agent backup, this dealer's, of a format this binary reads) and the file before it writes
//! anything, then writes the store in one atomic batch. Records the hub holds beyond the
//! backup (synced after it) come back with `restore --from-hub` instead: after a restore from
//! an older backup the first sync says so.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use hamgam_gateway::backup_dir::{self, BackupDir, BackupDirError, FileSummary, MANIFEST};
use hamgam_gateway::DealerId;

use crate::store::{AgentStore, Entry, StoreError, STORE_FORMAT};

/// The agent backup format this binary writes; it reads this one and older.
pub const BACKUP_FORMAT: u32 = 1;
/// What the manifest's `kind` says of an agent backup.
pub const KIND: &str = "hamgam-agent-backup";
/// The store's keys and values.
pub const STORE_FILE: &str = "store.kv";

/// Why a backup or a restore of the agent's store did not happen.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dir(#[from] BackupDirError),
    #[error(transparent)]
    Restore(#[from] crate::restore::RestoreError),
    #[error("{path}: {detail}")]
    Manifest { path: String, detail: String },
    #[error("the backup at {path} has backup format {found} (store format {store_format}), and this dealer-agent reads backup format {BACKUP_FORMAT} and store format {STORE_FORMAT} at most: it was written by a newer dealer-agent; restore it with that version or a newer one")]
    NewerFormat {
        path: String,
        found: u64,
        store_format: u64,
    },
    #[error("the backup at {path} is of dealer {found}, not {configured}: restore it on that dealer's PC")]
    WrongDealer {
        path: String,
        found: String,
        configured: String,
    },
    #[error("{path} is damaged at byte {at}: {detail}; take a new backup")]
    Damaged {
        path: String,
        at: u64,
        detail: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// `manifest.json` of an agent backup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AgentManifest {
    /// Always [`KIND`].
    pub kind: String,
    pub backup_format: u32,
    pub store_format: u64,
    pub dealer_id: String,
    /// The store's last seq and the highest the hub had acknowledged.
    pub last_seq: u64,
    pub acked_seq: u64,
    /// Keys and values in `store.kv`.
    pub entries: u64,
    /// By the agent's clock (ms since the epoch).
    pub taken_at_ms: i64,
    pub files: Vec<FileSummary>,
}

/// Writes a backup of `store` into the new or empty folder `to`.
pub fn backup(store: &AgentStore, to: &Path) -> Result<AgentManifest, BackupError> {
    let dir = BackupDir::create(to)?;
    let status = store.status()?;
    let mut file = dir.file(STORE_FILE)?;
    let entries = store.export_blocking(&mut |key, value| {
        for part in [key, value] {
            file.write_all(&(part.len() as u32).to_be_bytes())?;
            file.write_all(part)?;
        }
        Ok(())
    })?;
    let manifest = AgentManifest {
        kind: KIND.into(),
        backup_format: BACKUP_FORMAT,
        store_format: STORE_FORMAT,
        dealer_id: store.dealer().to_string(),
        last_seq: status.last_seq,
        acked_seq: status.acked_seq,
        entries,
        taken_at_ms: store.now_ms(),
        files: vec![file.finish()?],
    };
    let bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest {
        path: MANIFEST.into(),
        detail: e.to_string(),
    })?;
    dir.finish(&bytes)?;
    Ok(manifest)
}

/// Reads and checks the manifest of the agent backup at `from`, and its file.
pub fn check(from: &Path, dealer: &DealerId) -> Result<AgentManifest, BackupError> {
    let path = from.join(MANIFEST).display().to_string();
    let bad = |detail: String| BackupError::Manifest {
        path: path.clone(),
        detail,
    };
    let loose: serde_json::Value = serde_json::from_slice(&backup_dir::read_manifest(from)?)
        .map_err(|e| bad(format!("not JSON ({e}): take a new backup")))?;
    let kind = loose.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    if kind != KIND {
        return Err(bad(format!(
            "`kind` is {kind:?}, not {KIND:?}: not a dealer-agent backup (a hub backup is restored with `central admin restore`)"
        )));
    }
    let number = |name: &str| loose.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
    let (found, store_format) = (number("backup_format"), number("store_format"));
    if found > u64::from(BACKUP_FORMAT) || store_format > STORE_FORMAT {
        return Err(BackupError::NewerFormat {
            path: from.display().to_string(),
            found,
            store_format,
        });
    }
    let manifest: AgentManifest =
        serde_json::from_value(loose).map_err(|e| bad(format!("{e}: take a new backup")))?;
    if manifest.dealer_id != dealer.as_str() {
        return Err(BackupError::WrongDealer {
            path: from.display().to_string(),
            found: manifest.dealer_id,
            configured: dealer.to_string(),
        });
    }
    let Some(file) = manifest.files.iter().find(|f| f.name == STORE_FILE) else {
        return Err(bad(format!("it names no {STORE_FILE}: take a new backup")));
    };
    backup_dir::verify(from, file)?;
    Ok(manifest)
}

/// The keys and values of a checked backup.
fn read_entries(from: &Path, manifest: &AgentManifest) -> Result<Vec<Entry>, BackupError> {
    let path = from.join(STORE_FILE);
    let shown = path.display().to_string();
    let opened = std::fs::File::open(&path).map_err(|source| BackupError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut reader = BufReader::new(opened);
    let mut at = 0u64;
    let mut part = |reader: &mut BufReader<std::fs::File>| -> Result<Vec<u8>, BackupError> {
        let damaged = |detail: String| BackupError::Damaged {
            path: shown.clone(),
            at,
            detail,
        };
        let mut len = [0u8; 4];
        reader
            .read_exact(&mut len)
            .map_err(|e| damaged(e.to_string()))?;
        let len = u32::from_be_bytes(len) as usize;
        if len > 16 * 1024 * 1024 {
            return Err(damaged(format!("an entry of {len} bytes")));
        }
        let mut bytes = vec![0u8; len];
        reader
            .read_exact(&mut bytes)
            .map_err(|e| damaged(e.to_string()))?;
        at += 4 + len as u64;
        Ok(bytes)
    };
    let mut entries = Vec::new();
    for _ in 0..manifest.entries {
        let key = part(&mut reader)?;
        entries.push((key, part(&mut reader)?));
    }
    Ok(entries)
}

/// What a restore from a backup did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub manifest: AgentManifest,
    /// Where the store that was there before was kept (`--force`).
    pub kept_copy: Option<PathBuf>,
}

/// Restores the backup at `from` into the store folder `dir` of `dealer`: refused when `dir`
/// holds a store with records unless `force` (then that store is kept aside first, as
/// `restore --from-hub --force` does).
pub fn restore(
    from: &Path,
    dir: &Path,
    dealer: DealerId,
    force: bool,
    now_ms: i64,
) -> Result<Restored, BackupError> {
    let manifest = check(from, &dealer)?;
    let entries = read_entries(from, &manifest)?;
    let kept_copy = crate::restore::clear_store(dir, &dealer, force, now_ms, false)?;
    let store = AgentStore::open_waiting(dir, dealer, std::time::Duration::from_secs(10))?;
    store.import_blocking(&entries)?;
    Ok(Restored {
        manifest,
        kept_copy,
    })
}
