//! The statistical analysis system (统计分析): a member's own analytics over
//! its own ledger. It follows committed blocks from a persisted cursor into
//! an SQLite store (ADR 0007) and answers indicators per region, program and
//! month under the exchange-adapter's disclosure policy.
//!
//! - [`facts`]: what a block means to the statistics (pure);
//! - [`store`]: the SQLite tables, written one batch of blocks per transaction;
//! - [`indicators`]: the figures, read from the rollups;
//! - [`anomalies`]: the anomaly rules (异常提示);
//! - [`service`] and [`api`]: the follower and the HTTP API;
//! - [`synthetic`]: a chain stand-in executing the real contract, for tests
//!   and `fiscus bench analytics`.

pub mod anomalies;
pub mod api;
pub mod facts;
pub mod indicators;
pub mod lots;
pub mod service;
pub mod store;
pub mod synthetic;
