//! File modes for what Hamgam keeps on disk: data folders and private keys are for their owner
//! only (folders 0700, files 0600), and a private key others can read is refused at load.
//!
//! A library must not change the process's umask (it is the whole process's, and other threads
//! create files too), so these functions set the modes on the files themselves. The systemd
//! units set `UMask=0077` as well, which covers files a store creates after it was opened.
//! On other platforms than Unix these functions do nothing and every check passes.
//!
//! What this does not do: protect a stolen disk. Anyone holding the disk reads it as root;
//! that needs full-disk encryption (docs/operations.md, "File modes").

use std::io;
use std::path::Path;

/// The mode of a private folder: the owner may list, enter and write it.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The mode of a private file: the owner may read and write it.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Makes `dir` (created if missing) and everything under it private to its owner: folders
/// 0700, regular files 0600. Symbolic links are not followed, and sockets and other special
/// files are left as they are (a local API socket sets its own mode).
pub fn make_private(dir: &Path) -> io::Result<()> {
    make_private_with_dir_mode(dir, PRIVATE_DIR_MODE)
}

/// As [`make_private`], but `dir` itself gets `dir_mode`, e.g. `0o710`: the owner's group may
/// then reach a socket inside by its name, but neither list the folder nor read any file in
/// it (every file is still 0600, every folder below 0700).
pub fn make_private_with_dir_mode(dir: &Path, dir_mode: u32) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    imp::set_mode(dir, dir_mode)?;
    imp::walk(dir)
}

/// Creates `dir` and its missing parents, and makes `dir` itself 0700 (what is already inside
/// is left alone).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    imp::set_mode(dir, PRIVATE_DIR_MODE)
}

/// Writes `contents` to `path` as a private file: created 0600, and an existing file is made
/// 0600 before it is written (opening with a mode only applies to a new file).
pub fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(PRIVATE_FILE_MODE);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))?;
    }
    // Truncated only now, so an existing file's old contents are never readable under the
    // old mode with the new contents in it.
    file.set_len(0)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Refuses a file whose mode lets its group or other users read or write it
/// (`mode & 0o077 != 0`), with an error naming the file, its mode and the `chmod` to run.
/// The error's kind is [`io::ErrorKind::PermissionDenied`].
pub fn check_owner_only(path: &Path) -> io::Result<()> {
    imp::check_owner_only(path)
}

/// The permission bits of `path` (`st_mode & 0o7777`); `None` where there are none (not Unix).
pub fn mode_of(path: &Path) -> io::Result<Option<u32>> {
    imp::mode_of(path)
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    pub(super) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }

    pub(super) fn walk(dir: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let path = entry.path();
            if kind.is_dir() {
                set_mode(&path, super::PRIVATE_DIR_MODE)?;
                walk(&path)?;
            } else if kind.is_file() {
                set_mode(&path, super::PRIVATE_FILE_MODE)?;
            }
        }
        Ok(())
    }

    pub(super) fn mode_of(path: &Path) -> io::Result<Option<u32>> {
        Ok(Some(std::fs::metadata(path)?.permissions().mode() & 0o7777))
    }

    pub(super) fn check_owner_only(path: &Path) -> io::Result<()> {
        let mode = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "its mode {mode:04o} gives its group or other users access, and a private key \
                 must be its owner's only: run `chmod 600 {}` and start again",
                path.display()
            ),
        ))
    }
}

#[cfg(not(unix))]
mod imp {
    use std::io;
    use std::path::Path;

    pub(super) fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn walk(_dir: &Path) -> io::Result<()> {
        Ok(())
    }

    pub(super) fn mode_of(_path: &Path) -> io::Result<Option<u32>> {
        Ok(None)
    }

    pub(super) fn check_owner_only(_path: &Path) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        mode_of(path).unwrap().unwrap()
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn make_private_makes_the_folder_0700_and_every_file_under_it_0600() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("store");
        std::fs::create_dir_all(dir.join("blobs/inner")).unwrap();
        for file in ["db", "conf", "blobs/1", "blobs/inner/2"] {
            std::fs::write(dir.join(file), b"x").unwrap();
            chmod(&dir.join(file), 0o644);
        }
        chmod(&dir, 0o755);
        chmod(&dir.join("blobs"), 0o775);
        let socket = dir.join("agent.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        chmod(&socket, 0o660);

        make_private(&dir).unwrap();

        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("blobs")), 0o700);
        assert_eq!(mode(&dir.join("blobs/inner")), 0o700);
        for file in ["db", "conf", "blobs/1", "blobs/inner/2"] {
            assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
        }
        assert_eq!(
            mode(&socket),
            0o660,
            "a socket keeps the mode its server gave it"
        );
    }

    #[test]
    fn make_private_creates_a_missing_folder_and_can_leave_the_group_a_way_in() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        make_private(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::write(dir.join("f"), b"x").unwrap();
        make_private_with_dir_mode(&dir, 0o710).unwrap();
        assert_eq!(mode(&dir), 0o710);
        assert_eq!(mode(&dir.join("f")), 0o600);
    }

    #[test]
    fn symbolic_links_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = root.path().join("outside");
        std::fs::write(&outside, b"x").unwrap();
        chmod(&outside, 0o644);
        let dir = root.path().join("store");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        make_private(&dir).unwrap();
        assert_eq!(mode(&outside), 0o644);
    }

    #[test]
    fn write_private_makes_new_and_existing_files_0600() {
        let root = tempfile::tempdir().unwrap();
        let new = root.path().join("new.key");
        write_private(&new, b"secret").unwrap();
        assert_eq!(mode(&new), 0o600);
        let old = root.path().join("old.key");
        std::fs::write(&old, b"a much longer old secret").unwrap();
        chmod(&old, 0o644);
        write_private(&old, b"new").unwrap();
        assert_eq!(mode(&old), 0o600);
        assert_eq!(std::fs::read(&old).unwrap(), b"new");
    }

    #[test]
    fn a_file_the_group_or_others_can_read_is_refused_with_the_chmod_to_run() {
        let root = tempfile::tempdir().unwrap();
        let key = root.path().join("hub.key");
        std::fs::write(&key, b"k").unwrap();
        for refused in [0o644, 0o640, 0o604, 0o660, 0o602, 0o610] {
            chmod(&key, refused);
            let err = check_owner_only(&key).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
            let text = err.to_string();
            assert!(text.contains(&format!("{refused:04o}")), "{text}");
            assert!(
                text.contains(&format!("chmod 600 {}", key.display())),
                "{text}"
            );
        }
        for allowed in [0o600, 0o400] {
            chmod(&key, allowed);
            check_owner_only(&key).unwrap();
        }
    }
}
