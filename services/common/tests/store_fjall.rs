//! The `StateStore` conformance suite on the fjall (LSM) backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::testkit::FjallHarness;

fiscus_common::state_store_conformance!(FjallHarness::new());
