//! ledger-store: a member's copy of the chain.
//!
//! [`Ledger::commit_block`] validates a block (chain link, orderer signature,
//! `tx_root`, every transaction's signatures and signer certificates against
//! the certificates and the CRL in force at its height, tx-id and nonce
//! replay against the whole chain), executes it with the contract-executor,
//! and writes one atomic batch: the block, receipts, state writes, per-key
//! history, tx and nonce indexes, `state_hash[n]` and `receipts_root[n]`, and
//! this member's signed attestation (the steps are the modules of
//! [`ledger`]). The gRPC service ([`service`], [`server`]) serves queries and
//! receipt proofs, and takes blocks from the member's gossip-gateway, which
//! reports the agreeing majority's attestations ([`Ledger::record_majority`],
//! finality). The offline replay check ([`verify::verify_chain`]) reads the
//! same store.
#![forbid(unsafe_code)]

pub mod chain_crl;
pub mod disk;
mod error;
pub mod exec;
pub mod keys;
pub mod ledger;
pub mod metrics;
pub mod seen;
pub mod server;
pub mod service;
pub mod verify;
pub mod write_set;

pub use error::{LedgerError, Result};
pub use exec::{Executor, RemoteExecutor};
pub use fiscus_common::certs::{CertStatus, Certs};
pub use ledger::{
    CommitSummary, Head, Ledger, LedgerConfig, PhaseTimes, commit_with_lookahead, genesis_head,
};
