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

    /// Bytes in blob files under `dir`.
    fn blob_bytes(dir: &std::path::Path) -> u64 {
        let mut total = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                total += blob_bytes(&p);
            } else if p.components().any(|c| c.as_os_str() == "blobs") {
                total += e.metadata().unwrap().len();
            }
        }
        total
    }

    /// The option does what the suite above assumes: a large value lands in
    /// a blob file, and without the option nothing does.
    #[tokio::test]
    async fn large_values_go_to_blob_files_only_when_asked() {
        use fiscus_common::store::{StateStore, StoreLimits, WriteBatch, fjall::FjallStore};
        for (threshold, expect_blobs) in [(Some(1024), true), (None, false)] {
            let dir = tempfile::tempdir().unwrap();
            let store = FjallStore::open_with(
                &dir.path().join("s.fjall"),
                StoreLimits::default(),
                FjallOptions {
                    blob_threshold_bytes: threshold,
                    ..FjallOptions::default()
                },
            )
            .unwrap();
            store
                .commit(WriteBatch::new().put("big", vec![7u8; 200_000]))
                .await
                .unwrap();
            store.compact().await.unwrap();
            assert_eq!(blob_bytes(dir.path()) > 0, expect_blobs, "{threshold:?}");
        }
    }
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
