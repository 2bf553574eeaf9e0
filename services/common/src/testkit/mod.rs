//! Test support shared by every crate's tests: backend harnesses for the
//! conformance suites and a real `nats-server` on a free port.

// Test support: failing loudly is how a suite reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod fixtures;
mod nats_server;

pub use nats_server::{NatsServer, nats_server_binary};

use crate::bus::{BusLimits, conformance::BusHarness, memory::MemoryBus, nats::NatsBus};
use crate::store::{StoreLimits, conformance::Harness, fjall::FjallStore, redb::RedbStore};
use std::time::Duration;

/// A redb store in its own temporary directory.
#[derive(Debug)]
pub struct RedbHarness {
    dir: tempfile::TempDir,
}

impl RedbHarness {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }
}

impl Default for RedbHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness for RedbHarness {
    type Store = RedbStore;
    async fn open(&mut self) -> RedbStore {
        RedbStore::open(&self.dir.path().join("state.redb"), StoreLimits::default())
            .expect("open redb store")
    }
}

/// One in-process bus shared by every `connect`.
#[derive(Debug, Default)]
pub struct MemoryHarness {
    bus: MemoryBus,
}

impl BusHarness for MemoryHarness {
    type Bus = MemoryBus;
    async fn connect(&mut self) -> MemoryBus {
        self.bus.clone()
    }
}

/// A fresh `nats-server` (JetStream on) per harness; stopped when dropped.
#[derive(Debug)]
pub struct NatsHarness {
    server: NatsServer,
}

impl NatsHarness {
    pub fn new() -> Self {
        Self {
            server: NatsServer::start().expect("start nats-server"),
        }
    }
}

impl Default for NatsHarness {
    fn default() -> Self {
        Self::new()
    }
}

/// Short ack wait so that redelivery of unacked messages is observable in tests.
pub fn test_bus_limits() -> BusLimits {
    BusLimits {
        ack_wait: Duration::from_secs(1),
        ..BusLimits::default()
    }
}

impl BusHarness for NatsHarness {
    type Bus = NatsBus;
    async fn connect(&mut self) -> NatsBus {
        NatsBus::connect(&self.server.url(), "fiscus-test", test_bus_limits())
            .await
            .expect("connect to the test nats-server")
    }
}

/// A fjall store in its own temporary directory.
#[derive(Debug)]
pub struct FjallHarness {
    dir: tempfile::TempDir,
    options: crate::store::fjall::FjallOptions,
}

impl FjallHarness {
    pub fn new() -> Self {
        Self::with_options(crate::store::fjall::FjallOptions::default())
    }

    /// A store opened with `options` (e.g. key-value separation on).
    pub fn with_options(options: crate::store::fjall::FjallOptions) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
            options,
        }
    }
}

impl Default for FjallHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness for FjallHarness {
    type Store = FjallStore;
    async fn open(&mut self) -> FjallStore {
        FjallStore::open_with(
            &self.dir.path().join("state.fjall"),
            StoreLimits::default(),
            self.options,
        )
        .expect("open fjall store")
    }
}
