//! A backup folder written so that a half-written one is never taken for a whole one, and read
//! back only after every file checks out: what `central admin backup` and `dealer-agent backup`
//! write, and their restores read.
//!
//! Each file is written under a temporary name (`.NAME.partial`), flushed to disk (fsync) and
//! renamed; the manifest, which names every file with its size and SHA-256, is written the same
//! way **last**, and the folder is fsynced after it. A folder without `manifest.json` is not a
//! backup (a backup that stopped half-way leaves only `.partial` files and the files finished
//! before). The folder and its files are private to their owner (0700 / 0600): a backup holds
//! what the store holds, customers' personal data included.
//!
//! What the files hold and what the manifest says besides is each caller's business.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The manifest's name in a backup folder.
pub const MANIFEST: &str = "manifest.json";

/// Why a backup folder cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupDirError {
    #[error("{path} is not empty: give a new or empty folder for the backup (a backup is never written over another)")]
    NotEmpty { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} holds no {MANIFEST}: it is not a backup, or a backup that did not finish; take a new one")]
    NoManifest { path: String },
    #[error("{path} is missing from the backup (the manifest names it): the backup is incomplete; take a new one")]
    Missing { path: String },
    #[error("{path} has {found} bytes where the manifest says {expected}: the file is truncated or was changed; take a new backup")]
    Size {
        path: String,
        found: u64,
        expected: u64,
    },
    #[error("{path} does not match the SHA-256 in the manifest: the file was damaged or changed; take a new backup")]
    Checksum { path: String },
    #[error("file name {0:?} is not a plain file name")]
    BadName(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> BackupDirError + '_ {
    move |source| BackupDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What the manifest says of one file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileSummary {
    pub name: String,
    pub bytes: u64,
    /// Lower-case hex.
    pub sha256: String,
}

/// A backup folder being written.
#[derive(Debug)]
pub struct BackupDir {
    dir: PathBuf,
}

impl BackupDir {
    /// Creates `dir` (private to its owner) or takes it if it exists and is empty; a folder
    /// that holds anything is refused.
    pub fn create(dir: &Path) -> Result<Self, BackupDirError> {
        if let Ok(mut entries) = std::fs::read_dir(dir) {
            if entries.next().is_some() {
                return Err(BackupDirError::NotEmpty {
                    path: dir.display().to_string(),
                });
            }
        }
        crate::files::create_private_dir(dir).map_err(io_error(dir))?;
        Ok(BackupDir {
            dir: dir.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Starts the file `name`: written as `.NAME.partial` until [`FileWriter::finish`].
    pub fn file(&self, name: &str) -> Result<FileWriter, BackupDirError> {
        check_name(name)?;
        let partial = self.dir.join(format!(".{name}.partial"));
        let file = private_file(&partial)?;
        Ok(FileWriter {
            name: name.to_owned(),
            done: self.dir.join(name),
            partial,
            out: BufWriter::with_capacity(1 << 20, file),
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            bytes: 0,
        })
    }

    /// Writes the manifest, last, and makes the folder's entries durable: from now on the
    /// folder is a backup.
    pub fn finish(self, manifest: &[u8]) -> Result<PathBuf, BackupDirError> {
        let mut writer = self.file(MANIFEST)?;
        writer
            .write_all(manifest)
            .map_err(io_error(&writer.partial))?;
        writer.finish()?;
        sync_dir(&self.dir)?;
        Ok(self.dir)
    }
}

fn check_name(name: &str) -> Result<(), BackupDirError> {
    if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
        return Err(BackupDirError::BadName(name.to_owned()));
    }
    Ok(())
}

fn private_file(path: &Path) -> Result<File, BackupDirError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(crate::files::PRIVATE_FILE_MODE);
    }
    options.open(path).map_err(io_error(path))
}

fn sync_dir(dir: &Path) -> Result<(), BackupDirError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// One file of a backup being written; counts its bytes and hashes them as they go.
pub struct FileWriter {
    name: String,
    partial: PathBuf,
    done: PathBuf,
    out: BufWriter<File>,
    sha: ring::digest::Context,
    bytes: u64,
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl FileWriter {
    /// The file's name in the backup folder.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes the file to disk and gives it its name: what the manifest is to say of it.
    pub fn finish(self) -> Result<FileSummary, BackupDirError> {
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_error(&self.partial)(e.into_error()))?;
        file.sync_all().map_err(io_error(&self.partial))?;
        drop(file);
        std::fs::rename(&self.partial, &self.done).map_err(io_error(&self.done))?;
        Ok(FileSummary {
            name: self.name,
            bytes: self.bytes,
            sha256: hex(self.sha.finish().as_ref()),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The manifest of the backup folder `dir`, as bytes; refused when there is none.
pub fn read_manifest(dir: &Path) -> Result<Vec<u8>, BackupDirError> {
    let path = dir.join(MANIFEST);
    match std::fs::read(&path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BackupDirError::NoManifest {
            path: dir.display().to_string(),
        }),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// Checks the file `summary` names in `dir`: there, of its size, with its SHA-256.
pub fn verify(dir: &Path, summary: &FileSummary) -> Result<(), BackupDirError> {
    check_name(&summary.name)?;
    let path = dir.join(&summary.name);
    let shown = || path.display().to_string();
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BackupDirError::Missing { path: shown() })
        }
        Err(e) => return Err(io_error(&path)(e)),
    };
    let found = file.metadata().map_err(io_error(&path))?.len();
    if found != summary.bytes {
        return Err(BackupDirError::Size {
            path: shown(),
            found,
            expected: summary.bytes,
        });
    }
    let mut sha = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_error(&path))?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
    }
    if hex(sha.finish().as_ref()) != summary.sha256 {
        return Err(BackupDirError::Checksum { path: shown() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_named_only_when_finished_and_checks_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let backup = BackupDir::create(&dir.path().join("b")).expect("create");
        let mut w = backup.file("log.jsonl").expect("file");
        w.write_all(b"one\ntwo\n").expect("write");
        assert!(!backup.path().join("log.jsonl").exists());
        let summary = w.finish().expect("finish");
        assert_eq!(summary.bytes, 8);
        let path = backup.finish(b"{}").expect("manifest");
        verify(&path, &summary).expect("checks out");
        assert_eq!(read_manifest(&path).expect("manifest"), b"{}");

        std::fs::write(path.join("log.jsonl"), b"one\n").expect("truncate");
        assert!(matches!(
            verify(&path, &summary),
            Err(BackupDirError::Size { .. })
        ));
        std::fs::write(path.join("log.jsonl"), b"one\nTWO\n").expect("change");
        assert!(matches!(
            verify(&path, &summary),
            Err(BackupDirError::Checksum { .. })
        ));
        std::fs::remove_file(path.join("log.jsonl")).expect("remove");
        assert!(matches!(
            verify(&path, &summary),
            Err(BackupDirError::Missing { .. })
        ));
        assert!(matches!(
            BackupDir::create(&path),
            Err(BackupDirError::NotEmpty { .. })
        ));
    }

    #[test]
    fn a_folder_without_manifest_is_not_a_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            read_manifest(dir.path()),
            Err(BackupDirError::NoManifest { .. })
        ));
    }
}
