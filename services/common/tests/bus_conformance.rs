//! The `EventBus` conformance suite on both backends: the in-process bus and
//! a real `nats-server` started on a free port for each case.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod memory {
    use fiscus_common::testkit::MemoryHarness;
    fiscus_common::event_bus_conformance!(MemoryHarness::default());
}

mod nats {
    use fiscus_common::testkit::NatsHarness;
    fiscus_common::event_bus_conformance!(NatsHarness::new());
}
