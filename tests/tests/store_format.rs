//! Both stores carry a data-format version: a binary refuses a store of a newer format (and
//! the hub one of an older format, pointing at the rebuild) with a message instead of
//! misreading it; a new store gets the current format.

use hamgam_central::store::StoreError;
use hamgam_central::SledStore;
use hamgam_dealer_agent::AgentStore;
use hamgam_tests::dealer;

const CACHE: u64 = 8 << 20;

/// Writes `key = value` into a sled tree the way another version of a store would.
fn poke(dir: &std::path::Path, tree: &str, key: &[u8], value: &[u8]) {
    let db = sled::open(dir).expect("sled");
    db.open_tree(tree)
        .expect("tree")
        .insert(key, value)
        .expect("insert");
    db.flush().expect("flush");
}

fn reopen_hub(dir: &std::path::Path) -> Result<SledStore, StoreError> {
    // SledStore::open waits for a lock another handle is still letting go of.
    SledStore::open(dir, CACHE)
}

#[test]
fn the_hub_refuses_a_newer_or_older_store_and_rebuilds_from_an_older_one() {
    let fresh = tempfile::tempdir().expect("tempdir");
    drop(SledStore::open(fresh.path(), CACHE).expect("a new store"));
    assert!(reopen_hub(fresh.path()).is_ok(), "its own format");

    let newer = tempfile::tempdir().expect("tempdir");
    poke(newer.path(), "hub", b"!format", &10u32.to_be_bytes());
    let refused = reopen_hub(newer.path()).err().expect("refused");
    assert!(
        matches!(refused, StoreError::Format { found: 10, .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("newer Hamgam"), "{refused}");

    // A store from before formats were written down: format 1.
    let older = tempfile::tempdir().expect("tempdir");
    poke(older.path(), "hub", b"d\0D-1", b"");
    let refused = reopen_hub(older.path()).err().expect("refused");
    assert!(
        matches!(refused, StoreError::Format { found: 1, .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("central admin rebuild --into"),
        "{refused}"
    );
    assert!(SledStore::open_to_rebuild_from(older.path(), CACHE).is_ok());
}

/// Format 8 keeps a party under one key where 5 to 7 used five key spaces, and format 9 a
/// group's first members in its entry: a store of format 6, 7 or 8 is refused with the rebuild
/// to run, and the rebuild reads its record and decision logs as they are.
#[test]
fn the_hub_refuses_a_store_of_formats_6_to_8_and_rebuilds_from_it() {
    for format in [6u32, 7, 8] {
        let old = tempfile::tempdir().expect("tempdir");
        poke(old.path(), "hub", b"!format", &format.to_be_bytes());
        let refused = reopen_hub(old.path()).err().expect("refused");
        assert!(
            matches!(refused, StoreError::Format { found, known: 9, .. } if found == format),
            "{refused}"
        );
        assert!(
            refused.to_string().contains("central admin rebuild --into"),
            "{refused}"
        );
        let store = SledStore::open_to_rebuild_from(old.path(), CACHE).expect("opened to read");
        assert_eq!(store.format(), format);
    }
}

#[test]
fn the_agent_refuses_a_store_of_a_newer_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(AgentStore::open(dir.path(), dealer("D-1042")).expect("a new store"));
    let again = AgentStore::open_waiting(
        dir.path(),
        dealer("D-1042"),
        std::time::Duration::from_secs(10),
    );
    assert!(again.is_ok(), "its own format");
    drop(again);
    let newer = tempfile::tempdir().expect("tempdir");
    poke(newer.path(), "agent", b"mformat", &7u64.to_be_bytes());
    let refused = AgentStore::open_waiting(
        newer.path(),
        dealer("D-1042"),
        std::time::Duration::from_secs(10),
    )
    .err()
    .expect("refused");
    assert!(refused.to_string().contains("data format 7"), "{refused}");
    assert!(
        refused.to_string().contains("newer dealer-agent"),
        "{refused}"
    );
}
