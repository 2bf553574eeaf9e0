//! The `StateStore` conformance suite on the embedded redb backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::testkit::RedbHarness;

fiscus_common::state_store_conformance!(RedbHarness::new());

#[test]
fn a_store_another_opener_holds_is_refused_in_words() {
    use fiscus_common::store::{StoreError, StoreLimits, redb::RedbStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let _held = RedbStore::open(&path, StoreLimits::default()).unwrap();
    match RedbStore::open(&path, StoreLimits::default()) {
        Err(e @ StoreError::InUse(_)) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!("expected InUse, got {:?}", other.err()),
    }
}
