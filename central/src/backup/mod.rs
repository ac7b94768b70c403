//! Backups of the hub, made from its record and decision logs and restored by replaying them
//! (`central admin backup` / `central admin restore`; docs/operations.md, "Backup and
//! restore").
//!
//! **The point.** A backup holds the hub as it stood at one moment: each dealer's stored seq
//! and the last HQ decision number, read while no unit of work is judged or applied (the
//! judging lock, [`crate::Hub::with_units_held`]), with the state digest at that moment if it
//! can be computed within the pause allowed. Records are immutable once stored (what a
//! replay reads of them: the dealer's bytes, receive time, session clock offset) and the
//! decision log only grows, so after the lock is released the logs up to the point are read
//! at leisure while batches go on. The access audit, an append-only log written without the
//! judging lock, is copied up to its last entry when it is read.
//!
//! **The folder** ([`hamgam_gateway::backup_dir`]: temporary names, fsync, rename, the
//! manifest last): `records.jsonl` (one record a line: dealer, seq, receive time, clock
//! offset, the dealer's protobuf bytes in base64), `decisions.jsonl` and `access.jsonl` (one
//! entry a line, as the hub logs them) and `manifest.json` ([`Manifest`]: formats, the point,
//! counts, the digest, each file's size and SHA-256).
//!
//! **A restore** ([`read`]) checks the manifest's format and every file before it writes
//! anything, replays the logs into an empty store with [`crate::rebuild::replay`] and carries
//! the access audit over; the restored state's digest must equal the manifest's.
//!
//! What is not in a backup: the config, the dealer registry and the PKI (files ops keep beside
//! the store; a restore judges with the registry it is given, as a rebuild does), dealers'
//! verdict-feed cursors and session facts (a restored hub numbers its feeds anew; agents
//! notice at connect and take its verdicts again, docs/sync-protocol.md).

pub mod fetch;
pub mod read;
pub mod write;

use std::collections::BTreeMap;

use hamgam_gateway::backup_dir::{BackupDirError, FileSummary};

use crate::merge::digest::StateDigest;
use crate::store::StoreError;

/// The backup folder format this binary writes; it reads this one and older.
pub const BACKUP_FORMAT: u32 = 1;

/// What the manifest's `kind` says of a hub backup.
pub const KIND: &str = "hamgam-hub-backup";

/// The record log's file.
pub const RECORDS: &str = "records.jsonl";
/// HQ's decision log.
pub const DECISIONS: &str = "decisions.jsonl";
/// The access audit.
pub const ACCESS: &str = "access.jsonl";

/// Why a backup cannot be made or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dir(#[from] BackupDirError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file} line {line}: {detail}; the backup is damaged, take a new one")]
    Line {
        file: String,
        line: u64,
        detail: String,
    },
    #[error("{path}: {detail}")]
    Manifest { path: String, detail: String },
    #[error("the backup at {path} has backup format {found}, and this binary reads format {known} and older: it was written by a newer Hamgam; restore it with that version or a newer one")]
    NewerFormat {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("the manifest says {what} is {expected}, but the files hold {found}: the backup is inconsistent; take a new one")]
    Mismatch {
        what: String,
        expected: String,
        found: String,
    },
    #[error("the backup stopped: {0}")]
    Stopped(String),
    /// The hub refused the backup or ended it (a gRPC status: its code and message).
    #[error("the hub answered {code}: {message}")]
    Refused { code: String, message: String },
}

/// Where the backup stands in the hub's history.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Each dealer's stored seq (dealers known only from a hello are left out).
    pub dealers: BTreeMap<String, u64>,
    pub last_decision: u64,
    /// The access audit's last entry copied.
    pub last_access: u64,
}

/// The state digest in the manifest: the total and each section's (items, SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DigestSummary {
    pub total: String,
    pub sections: BTreeMap<String, (u64, String)>,
}

impl From<&StateDigest> for DigestSummary {
    fn from(d: &StateDigest) -> Self {
        DigestSummary {
            total: d.total.clone(),
            sections: d
                .sections
                .iter()
                .map(|(name, v)| ((*name).to_owned(), v.clone()))
                .collect(),
        }
    }
}

impl DigestSummary {
    /// The sections whose digests differ from `other`'s (either side's).
    pub fn differing(&self, other: &DigestSummary) -> Vec<String> {
        let mut names: Vec<&String> = self.sections.keys().chain(other.sections.keys()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|n| self.sections.get(*n) != other.sections.get(*n))
            .cloned()
            .collect()
    }
}

/// `manifest.json`: what the backup is and holds. Written last.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always [`KIND`].
    pub kind: String,
    pub backup_format: u32,
    /// The data format of the store the logs were read from.
    pub store_format: u32,
    /// The `central` version that made the backup.
    pub hub_version: String,
    /// When the point was taken, by the hub's clock (ms since the epoch).
    pub taken_at_ms: i64,
    pub point: Point,
    pub records: u64,
    pub decisions: u64,
    pub access_entries: u64,
    /// How long batches were held back to take the point (and the digest).
    pub pause_ms: u64,
    /// The live state digest at the point; `None` when it was not taken (see `digest_note`).
    pub digest: Option<DigestSummary>,
    /// Why there is no digest, when there is none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest_note: String,
    /// Every file of the backup but the manifest.
    pub files: Vec<FileSummary>,
}

/// What a hub holding its units of work still found at the point: taken under the judging lock
/// by [`write::capture`].
#[derive(Debug, Clone)]
pub struct Captured {
    pub point: Point,
    pub digest: Option<StateDigest>,
    pub digest_note: String,
    pub pause_ms: u64,
}
