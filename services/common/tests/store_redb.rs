//! The `StateStore` conformance suite on the embedded redb backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::testkit::RedbHarness;

fiscus_common::state_store_conformance!(RedbHarness::new());
