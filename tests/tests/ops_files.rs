//! File modes on disk: the hub's store folder is its owner's only (0700, every file 0600), also
//! when it existed with looser modes, and a private key others can read is refused by the real
//! binaries with the `chmod` to run.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use hamgam_central::SledStore;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every folder and regular file under `dir` with its mode.
fn modes_under(dir: &Path) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            let path = entry.path();
            if kind.is_dir() {
                todo.push(path.clone());
            }
            if kind.is_dir() || kind.is_file() {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                found.push((name, mode(&path)));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_hub_store_folder_is_0700_and_its_files_0600_new_or_reopened() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("hub");
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    drop(store);
    assert_eq!(mode(&dir), 0o700);
    let files = modes_under(&dir);
    assert!(files.iter().any(|(name, _)| name == "db"), "{files:?}");
    for (name, mode) in &files {
        let want = if Path::new(&dir).join(name).is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(*mode, want, "{name}: {mode:o}");
    }

    // A folder someone loosened (or one from an older version) is tightened on the next open.
    chmod(&dir, 0o755);
    for (name, _) in &files {
        let path = dir.join(name);
        chmod(&path, if path.is_dir() { 0o755 } else { 0o644 });
    }
    let store = SledStore::open(&dir, 1 << 20).unwrap();
    assert_eq!(mode(&dir), 0o700);
    for (name, mode) in modes_under(&dir) {
        let want = if dir.join(&name).is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(mode, want, "{name}: {mode:o}");
    }
    drop(store);
}

#[test]
fn central_serve_refuses_a_hub_key_others_can_read_naming_the_file_mode_and_fix() {
    let root = tempfile::tempdir().unwrap();
    let pki = hamgam_tests::TestPki::new();
    let deployment = hamgam_tests::processes::Deployment::new(&pki, root.path(), &[]);
    let key = deployment.path("hub.key");
    assert_eq!(mode(&key), 0o600, "the test deployment writes keys 0600");
    chmod(&key, 0o640);

    let out = Command::new(&hamgam_tests::processes::binaries().central)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(root.path().join("hub-data"))
        .arg("--ca")
        .arg(deployment.path("ca.crt"))
        .arg("--cert")
        .arg(deployment.path("hub.crt"))
        .arg("--key")
        .arg(&key)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the hub started with a 0640 key");
    assert!(
        stderr.contains(&format!("private key file {}", key.display())),
        "{stderr}"
    );
    assert!(stderr.contains("mode 0640"), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 600 {}", key.display())),
        "{stderr}"
    );
}
