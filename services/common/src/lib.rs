//! Cross-cutting infrastructure shared by every Fiscus service.
//!
//! Only plumbing lives here: configuration, telemetry, the ops HTTP endpoints,
//! error conversion, and the storage and event-bus traits with their backends.
//! Domain logic lives in the service that owns it.
#![forbid(unsafe_code)]

pub mod actor_runtime;
pub mod bus;
pub mod config;
pub mod error;
pub mod ops_server;
pub mod store;
pub mod telemetry;
pub mod tls;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use error::{ErrorKind, ServiceError};
