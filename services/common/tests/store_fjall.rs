//! The `StateStore` conformance suite on the fjall (LSM) backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::testkit::FjallHarness;

fiscus_common::state_store_conformance!(FjallHarness::new());

#[test]
fn a_store_another_opener_holds_is_refused_in_words() {
    use fiscus_common::store::{StoreError, StoreLimits, fjall::FjallStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.fjall");
    let _held = FjallStore::open(&path, StoreLimits::default()).unwrap();
    match FjallStore::open(&path, StoreLimits::default()) {
        Err(e @ StoreError::InUse(_)) => assert!(e.to_string().contains("in use"), "{e}"),
        other => panic!("expected InUse, got {:?}", other.err()),
    }
}
