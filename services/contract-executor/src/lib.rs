//! contract-executor: the transfer-payment contract (财政转移支付合约) and the
//! block executor that runs it deterministically, in parallel where the
//! transactions' declared key sets are disjoint.
//!
//! Determinism: no wall clock (the block timestamp is the only clock), no
//! randomness, no floats, no unordered iteration; state values are protobuf
//! messages encoded by prost, which is deterministic for these types.
//!
//! The governance contract (`governance`) changes the consortium
//! configuration by member vote; `service` is the stateless gRPC service
//! (`fiscus contract-executor`).
#![forbid(unsafe_code)]

pub mod calendar;
pub mod context;
pub mod deadlines;
pub mod error;
pub mod executor;
pub mod governance;
pub mod identifiers;
pub mod keys;
pub mod lots;
pub mod orgs;
pub mod rejection;
pub mod rules;
pub mod server;
pub mod service;
pub mod transfer;
mod view;

pub use calendar::Calendar;
pub use executor::{
    BlockInput, BlockOutput, Call, TxCtx, TxResult, execute_block, execute_block_reading,
    execute_sequential, lot_reads,
};
pub use orgs::Orgs;
pub use rejection::Rejection;

/// Milliseconds in a day, for Budget Law deadlines.
pub const DAY_MS: i64 = 86_400_000;
