//! The hub's store contract (`hamgam_central::store::contract`) on the embedded sled store:
//! atomic units of work, store-owned sequences, conflicts as retryable errors, session facts
//! apart from counters, the append-only access audit, everything back after reopening.

#[test]
fn sled_keeps_the_hub_store_contract() {
    let root = tempfile::tempdir().expect("tempdir");
    hamgam_central::store::contract::check_all(root.path(), &|dir| {
        hamgam_central::SledStore::open(dir, 8 << 20)
    });
}
