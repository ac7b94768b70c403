//! The log's tests: merged ranges, replay after a crash, a full disk, checkpoints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::segment::segments;
use super::*;

fn db(dir: &Path) -> sled::Db {
    sled::Config::new()
        .path(dir.join("db"))
        .flush_every_ms(None)
        .open()
        .expect("sled")
}

/// The tests' key layout: a key is scanned by its part up to and with its first `\0`.
fn up_to_first_nul(key: &[u8]) -> Option<usize> {
    key.iter().position(|b| *b == 0).map(|at| at + 1)
}

/// The log over tree `t` of `db`; reopening over the same `db` is what a restart sees
/// (sled's own state is unaffected by the log).
fn open(db: &sled::Db, dir: &Path) -> LoggedTree {
    LoggedTree::open(
        db.clone(),
        db.open_tree("t").expect("tree"),
        dir,
        up_to_first_nul,
    )
    .expect("open")
}

fn keys(items: Merged) -> Vec<(Vec<u8>, Vec<u8>)> {
    items
        .map(|i| {
            let (k, v) = i.expect("item");
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

#[test]
fn ranges_merge_layers_and_sled_with_removals_in_both_directions() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db(dir.path());
    let tree = open(&db, dir.path());
    // Old values straight into sled (what a checkpoint wrote), newer ones in layers.
    for k in [b"a1", b"a3", b"a5", b"b1"] {
        tree.shared.tree.insert(k, &b"sled"[..]).expect("insert");
    }
    let mut ops = Ops::default();
    ops.insert(&b"a2"[..], &b"new"[..]);
    ops.insert(&b"a3"[..], &b"new"[..]);
    ops.remove(&b"a5"[..]);
    tree.apply(ops).expect("apply");
    assert_eq!(tree.get(b"a5").expect("get"), None);
    assert_eq!(tree.get(b"a3").expect("get").as_deref(), Some(&b"new"[..]));
    assert_eq!(tree.get(b"a1").expect("get").as_deref(), Some(&b"sled"[..]));
    let forward = keys(tree.scan_prefix(b"a"));
    assert_eq!(
        forward,
        vec![
            (b"a1".to_vec(), b"sled".to_vec()),
            (b"a2".to_vec(), b"new".to_vec()),
            (b"a3".to_vec(), b"new".to_vec()),
        ]
    );
    let backward = keys(tree.range_back(b"a0".to_vec()..b"b".to_vec()));
    assert_eq!(
        backward.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
        vec![b"a3".to_vec(), b"a2".to_vec(), b"a1".to_vec()]
    );
    // A removed last key is passed over by the reverse read.
    let mut ops = Ops::default();
    ops.remove(&b"a3"[..]);
    tree.apply(ops).expect("apply");
    let last = tree.last_in_prefix(b"a").expect("some").expect("ok");
    assert_eq!(last.0.as_ref(), b"a2");
    assert!(keys(tree.range(b"c".to_vec()..b"b".to_vec())).is_empty());
}

#[test]
fn ranges_longer_than_a_chunk_read_every_key_once() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db(dir.path());
    let tree = open(&db, dir.path());
    for i in (0u32..2000).step_by(2) {
        tree.shared
            .tree
            .insert(i.to_be_bytes(), &b"s"[..])
            .expect("insert");
    }
    let mut ops = Ops::default();
    for i in (1u32..2000).step_by(2) {
        ops.insert(&i.to_be_bytes()[..], &b"l"[..]);
    }
    tree.apply(ops).expect("apply");
    let all = keys(tree.iter());
    assert_eq!(all.len(), 2000);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    let back = keys(tree.range_back::<Vec<u8>>(..));
    assert_eq!(back.len(), 2000);
    assert!(back.windows(2).all(|w| w[0].0 > w[1].0));
}

#[test]
fn a_store_dropped_without_closing_replays_its_log_and_a_torn_tail_is_ignored() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db(dir.path());
    {
        let tree = open(&db, dir.path());
        let mut ops = Ops::default();
        ops.insert(&b"k1"[..], &b"v1"[..]);
        ops.insert(&b"k2"[..], &b"v2"[..]);
        tree.apply(ops).expect("apply");
        let mut ops = Ops::default();
        ops.remove(&b"k1"[..]);
        tree.apply(ops).expect("apply");
        tree.sync().expect("sync");
        // A crash: nothing is checkpointed.
        tree.shared.stop.store(true, Ordering::Relaxed);
        *tree.shared.broken.lock().expect("lock") = Some("crash".into());
    }
    let wal = dir.path().join("wal");
    let last = *segments(&wal).expect("segments").last().expect("a segment");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(segment_path(&wal, last))
        .expect("segment");
    file.write_all(&[40, 0, 0, 0, 1, 2, 3, 4, 9]).expect("torn");
    drop(file);
    assert_eq!(
        db.open_tree("t").expect("tree").get(b"k2").expect("get"),
        None
    );
    let tree = open(&db, dir.path());
    assert_eq!(tree.get(b"k1").expect("get"), None);
    assert_eq!(tree.get(b"k2").expect("get").as_deref(), Some(&b"v2"[..]));
    // Replayed into sled itself, and the replayed segments are gone.
    assert_eq!(
        tree.shared.tree.get(b"k2").expect("get").as_deref(),
        Some(&b"v2"[..])
    );
    assert_eq!(segments(&wal).expect("segments").len(), 1);
}

/// The log's folder on a 1 MiB tmpfs (mounting needs root, which this test and CI run
/// as), sled's own files elsewhere: the append that does not fit fails, part of it cut off
/// again; once there is room, later appends are acked and replay after a crash.
#[test]
fn an_append_that_does_not_fit_fails_and_leaves_no_torn_entry_in_front_of_later_ones() {
    use std::process::Command;
    let dir = tempfile::tempdir().expect("dir");
    let small = dir.path().join("small");
    std::fs::create_dir_all(&small).expect("mount point");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .expect("run mount");
    assert!(
        mounted.success(),
        "cannot mount a tmpfs on {}: this test needs root (CAP_SYS_ADMIN)",
        small.display()
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(small.clone());
    let db = db(dir.path());
    let value = vec![5u8; 300 << 10];
    let mut acked = Vec::new();
    {
        let tree = open(&db, &small);
        let full = (0u32..10)
            .find_map(|i| {
                let mut ops = Ops::default();
                ops.insert(&i.to_be_bytes()[..], value.clone());
                match tree.apply(ops) {
                    Ok(()) => {
                        acked.push(i);
                        None
                    }
                    Err(e) => Some((i, e)),
                }
            })
            .expect("a 1 MiB disk fills before 3 MiB are written");
        assert!(full.1.to_string().contains("No space left"), "{}", full.1);
        assert_eq!(
            tree.get(&full.0.to_be_bytes()).expect("get"),
            None,
            "not applied"
        );
        // Room again (the disk grows), and the next writes are acked.
        let grown = Command::new("mount")
            .args(["-o", "remount,size=8m"])
            .arg(&small)
            .status()
            .expect("run mount");
        assert!(grown.success());
        for i in 100u32..103 {
            let mut ops = Ops::default();
            ops.insert(&i.to_be_bytes()[..], value.clone());
            tree.apply(ops).expect("room again");
            acked.push(i);
        }
        tree.sync().expect("sync");
        // A crash: nothing is checkpointed.
        *tree.shared.broken.lock().expect("lock") = Some("crash".into());
    }
    let tree = open(&db, &small);
    for i in &acked {
        assert!(
            tree.get(&i.to_be_bytes()).expect("get").is_some(),
            "acked entry {i} replayed"
        );
    }
    assert_eq!(tree.iter().count(), acked.len());
}

#[test]
fn frozen_layers_are_checkpointed_into_sled_and_a_clean_close_leaves_no_log() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db(dir.path());
    {
        let tree = open(&db, dir.path());
        let big = vec![7u8; 1 << 20];
        for i in 0u32..40 {
            let mut ops = Ops::default();
            ops.insert(&i.to_be_bytes()[..], big.clone());
            tree.apply(ops).expect("apply");
        }
        // Past FREEZE_BYTES: at least one layer was frozen and a new segment started.
        assert!(tree.segment.lock().expect("lock").number > 1);
        assert_eq!(tree.iter().count(), 40);
        // The active layer's 8 MiB at least; the frozen 32 MiB too while not checkpointed.
        let unwritten = tree.unwritten_bytes();
        assert!(
            (8 << 20..=41 << 20).contains(&unwritten),
            "{unwritten} bytes unwritten"
        );
    }
    let wal = dir.path().join("wal");
    assert!(segments(&wal).expect("segments").is_empty());
    let tree = open(&db, dir.path());
    assert_eq!(tree.shared.tree.len(), 40);
    assert_eq!(tree.iter().count(), 40);
    assert_eq!(
        tree.unwritten_bytes(),
        0,
        "a clean close left nothing to write"
    );
}

#[test]
fn after_the_key_scan_reads_find_every_key_sled_or_a_layer_holds_and_skip_sled_for_the_rest() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db(dir.path());
    {
        let tree = open(&db, dir.path());
        let mut ops = Ops::default();
        for i in 0..10_000u32 {
            ops.insert(format!("old/{i:05}").into_bytes(), &b"v"[..]);
        }
        tree.apply(ops).expect("apply");
        tree.sync().expect("sync");
    } // a clean close: every key is in sled now
    let tree = open(&db, dir.path());
    // Written while the scan may be running: noted when the checkpointer writes it.
    let mut ops = Ops::default();
    ops.insert(&b"during"[..], &b"v"[..]);
    tree.start_key_scan().expect("scan");
    tree.apply(ops).expect("apply");
    tree.finish_key_scan();
    assert!(tree.shared.keys.is_ready());
    for i in 0..10_000u32 {
        let key = format!("old/{i:05}");
        assert_eq!(
            tree.get(key.as_bytes()).expect("get").as_deref(),
            Some(&b"v"[..]),
            "{key}"
        );
    }
    assert!(tree.get(b"during").expect("get").is_some());
    // Past FREEZE_BYTES after the scan: the checkpointer notes the frozen layer's keys, writes
    // them into sled and drops the layer; reads then find them in sled through the filter.
    let big = vec![7u8; 1 << 20];
    for i in 0u32..40 {
        let mut ops = Ops::default();
        ops.insert(format!("late/{i:02}").into_bytes(), big.clone());
        tree.apply(ops).expect("apply");
    }
    {
        let mut turn = tree.shared.turn.lock().expect("turn");
        while tree.shared.layers.read().expect("layers").len() > 1 {
            turn = tree.shared.changed.wait(turn).expect("wait");
        }
    }
    assert!(
        tree.shared.tree.get(b"late/00").expect("sled").is_some(),
        "the frozen layer is in sled"
    );
    for i in 0u32..40 {
        let key = format!("late/{i:02}");
        assert_eq!(
            tree.get(key.as_bytes()).expect("get"),
            Some(big.clone().into()),
            "{key}"
        );
    }
    let before = tree.reads_skipped();
    let absent = (0..1_000u32)
        .filter(|i| {
            tree.get(format!("absent/{i}").as_bytes())
                .expect("get")
                .is_none()
        })
        .count();
    assert_eq!(absent, 1_000);
    assert!(
        tree.reads_skipped() - before > 950,
        "only {} of 1,000 reads of absent keys skipped sled",
        tree.reads_skipped() - before
    );
}

#[test]
fn after_the_key_scan_prefix_reads_skip_sled_only_where_sled_holds_nothing_under_the_prefix() {
    let dir = tempfile::tempdir().expect("dir");
    let db = db(dir.path());
    {
        let tree = open(&db, dir.path());
        let mut ops = Ops::default();
        for i in 0..100u32 {
            ops.insert(format!("old{i:03}\0a").into_bytes(), &b"v"[..]);
            ops.insert(format!("old{i:03}\0b").into_bytes(), &b"v"[..]);
        }
        tree.apply(ops).expect("apply");
        tree.sync().expect("sync");
    } // a clean close: every key is in sled now
    let tree = open(&db, dir.path());
    tree.start_key_scan().expect("scan");
    tree.finish_key_scan();
    // Past FREEZE_BYTES: keys under "late\0" end up in sled through the checkpointer.
    let big = vec![7u8; 1 << 20];
    for i in 0u32..40 {
        let mut ops = Ops::default();
        ops.insert(format!("late\0{i:02}").into_bytes(), big.clone());
        tree.apply(ops).expect("apply");
    }
    {
        let mut turn = tree.shared.turn.lock().expect("turn");
        while tree.shared.layers.read().expect("layers").len() > 1 {
            turn = tree.shared.changed.wait(turn).expect("wait");
        }
    }
    for i in 0..100u32 {
        let prefix = format!("old{i:03}\0");
        assert_eq!(tree.scan_prefix(prefix.as_bytes()).count(), 2, "{prefix}");
    }
    assert_eq!(tree.scan_prefix(b"late\0").count(), 40);
    // A prefix that is not a whole family prefix (no `\0`) is always read from sled.
    assert_eq!(tree.scan_prefix(b"old00").count(), 20);
    let before = tree.reads_skipped();
    let absent = (0..1_000u32)
        .filter(|i| {
            tree.scan_prefix(format!("new{i}\0").as_bytes())
                .next()
                .is_none()
        })
        .count();
    assert_eq!(absent, 1_000);
    assert!(
        tree.reads_skipped() - before > 950,
        "only {} of 1,000 scans of absent prefixes skipped sled",
        tree.reads_skipped() - before
    );
}
