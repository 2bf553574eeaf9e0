//! The `StateStore` conformance suite on the fjall (LSM) backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::testkit::FjallHarness;

fiscus_common::state_store_conformance!(FjallHarness::new());

/// The same suite with values of 1 KiB and more in blob files.
mod with_kv_separation {
    use fiscus_common::store::fjall::FjallOptions;
    use fiscus_common::testkit::FjallHarness;

    fiscus_common::state_store_conformance!(FjallHarness::with_options(FjallOptions {
        blob_threshold_bytes: Some(1024),
        ..FjallOptions::default()
    }));
}

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
