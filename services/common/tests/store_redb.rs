//! The `StateStore` conformance suite on the embedded redb backend.

use fiscus_common::testkit::RedbHarness;

fiscus_common::state_store_conformance!(RedbHarness::new());
