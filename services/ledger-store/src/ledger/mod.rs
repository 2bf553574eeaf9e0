//! A member's ledger: validate, execute and commit blocks; serve queries and
//! proofs. The commit path, in the order a block meets it:
//!
//! 1. [`validate`]: the block against the head (number, link, time, orderer
//!    signature) and every transaction's signatures and certificates (`check`).
//! 2. [`execute`]: replay refusals (`plan`), the state reads, execution by the
//!    contract-executor, receipts and commitments (`assemble`).
//! 3. [`commit`]: one atomic, fsynced batch per run of blocks (`add_block`),
//!    with this member's signed attestation (`attest`).
//! 4. [`query`]: reads, histories, traces and receipt proofs.
//!
//! This module holds what they share: the chain's config at a height
//! ([`ChainState`]), the [`Head`], the [`Ledger`] and its phase timers.

mod commit;
mod execute;
mod query;
mod validate;

pub use commit::commit_with_lookahead;
pub(crate) use execute::{Executed, replay};

use crate::error::{LedgerError, Result};
use crate::exec::Executor;
use crate::keys;
use crate::write_set::next_state_hash;
use fiscus_common::certs::{CertStatus, Certs};
use fiscus_common::store::{StateStore, WriteBatch};
use fiscus_contract_executor::executor::KeyValues;
use fiscus_contract_executor::service::orgs_of;
use fiscus_contract_executor::{Calendar, Orgs};
use fiscus_proto::DecodeLimits;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::types::{ConsortiumConfig, Receipt, SignedAttestation};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use std::sync::{Arc, Mutex};
use validate::SigCache;

/// What the chain's configuration (`gov/config`) says at a block's start:
/// the org registry and who is revoked from which height.
#[derive(Debug)]
pub(crate) struct ChainState {
    raw: Vec<u8>,
    pub config: ConsortiumConfig,
    pub orgs: Orgs,
    pub calendar: Calendar,
    revocations: fiscus_common::certs::ChainRevocations,
    /// The roots a certificate a signature carries must chain to.
    roots: fiscus_common::certs::Roots,
}

impl ChainState {
    pub(crate) fn from_raw(raw: Vec<u8>) -> Result<Self> {
        let config = ConsortiumConfig::decode(&raw[..])
            .map_err(|e| LedgerError::Corrupt(format!("gov/config: {e}")))?;
        let orgs = orgs_of(&config).map_err(|e| LedgerError::Unsupported(e.to_string()))?;
        let revocations = fiscus_common::certs::ChainRevocations::from_config(&config);
        Ok(Self {
            raw,
            roots: fiscus_common::certs::Roots::from_ders(&config.ca_roots),
            calendar: Calendar::from_config(&config),
            config,
            orgs,
            revocations,
        })
    }

    /// A known certificate's status at `height`, after the on-chain CRL and
    /// the orgs that left.
    /// A certificate it does not have on file counts when the signature
    /// carries it and a consortium root of this config signed it.
    fn status(&self, certs: &Certs, cert: &Hash32, carried: &[u8], height: u64) -> CertStatus {
        match certs.status_carried(cert, carried, height, &self.roots) {
            CertStatus::Valid { org, .. } if self.revocations.revoked(cert, &org, height) => {
                CertStatus::Revoked
            }
            s => s,
        }
    }
}

/// The state hash after genesis: the config as block 0's only write.
pub fn genesis_head(config_bytes: &[u8]) -> Head {
    let mut writes = KeyValues::new();
    writes.insert(
        fiscus_contract_executor::keys::CONFIG.to_vec(),
        Some(config_bytes.to_vec()),
    );
    Head {
        state_hash: next_state_hash(&Hash32::default(), &writes),
        ..Head::default()
    }
}

/// The chain head and its commitments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    pub height: u64,
    pub hash: Hash32,
    pub state_hash: Hash32,
    pub receipts_root: Hash32,
    pub timestamp_ms: i64,
}

impl Head {
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(112);
        b.extend_from_slice(&self.height.to_be_bytes());
        b.extend_from_slice(&self.hash.0);
        b.extend_from_slice(&self.state_hash.0);
        b.extend_from_slice(&self.receipts_root.0);
        b.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        b
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != 112 {
            return Err(LedgerError::Corrupt("head record".into()));
        }
        let h = |r: std::ops::Range<usize>| {
            Hash32::from_slice("head", &b[r]).map_err(|_| LedgerError::Corrupt("head".into()))
        };
        Ok(Self {
            height: u64::from_be_bytes(
                b[..8]
                    .try_into()
                    .map_err(|_| LedgerError::Corrupt("head".into()))?,
            ),
            hash: h(8..40)?,
            state_hash: h(40..72)?,
            receipts_root: h(72..104)?,
            timestamp_ms: i64::from_be_bytes(
                b[104..]
                    .try_into()
                    .map_err(|_| LedgerError::Corrupt("head".into()))?,
            ),
        })
    }
}

/// What a member's ledger needs to know.
#[derive(Debug)]
pub struct LedgerConfig {
    /// This member's code, e.g. "130000"; it names the attestations.
    pub member: String,
    pub consortium_id: String,
    pub limits: DecodeLimits,
    /// Orderer and signer certificates (the org registry and revocations come
    /// from the chain's config).
    pub certs: Certs,
    /// The member node's key and certificate id, for attestations.
    pub key: SigningKey,
    pub cert_id: Hash32,
    /// The node's DER certificate: attestations carry it when `certs` does
    /// not have it on file (a member that joined after genesis). May be empty.
    pub certificate: Vec<u8>,
    /// Threads for parallel execution.
    pub threads: usize,
}

/// What committing a block produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitSummary {
    pub head: Head,
    pub valid: usize,
    pub invalid: usize,
    /// Every receipt of the block, in block order (writes carry value hashes).
    pub receipts: Vec<Receipt>,
    /// This member's signed attestation for the height.
    pub attestation: SignedAttestation,
}

/// A member's ledger on a `StateStore`.
#[derive(Debug)]
pub struct Ledger<S: StateStore> {
    store: S,
    cfg: LedgerConfig,
    executor: Executor,
    /// The decoded config of the last block processed, reused while unchanged.
    chain: Mutex<Option<Arc<ChainState>>>,
    phases: Phases,
    sigs: SigCache,
    /// The highest final height the gossip-gateway reported (memory only).
    final_height: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Check,
    Read,
    Execute,
    Write,
}

/// Cumulative nanoseconds per commit phase, for benchmarks and metrics.
#[derive(Debug, Default)]
struct Phases([std::sync::atomic::AtomicU64; 4]);

impl Phases {
    fn add(&self, p: Phase, since: std::time::Instant) {
        let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.0[p as usize].fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }

    fn snapshot(&self) -> PhaseTimes {
        let get = |p: Phase| {
            std::time::Duration::from_nanos(
                self.0[p as usize].load(std::sync::atomic::Ordering::Relaxed),
            )
        };
        PhaseTimes {
            check: get(Phase::Check),
            read: get(Phase::Read),
            execute: get(Phase::Execute),
            write: get(Phase::Write),
        }
    }
}

/// Where commit time went: decoding and signature checks; replay and state
/// reads; execution, receipts and commitments; the atomic write (with fsync).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    pub check: std::time::Duration,
    pub read: std::time::Duration,
    pub execute: std::time::Duration,
    pub write: std::time::Duration,
}

impl<S: StateStore> Ledger<S> {
    /// A ledger that executes blocks in this process.
    pub fn new(store: S, cfg: LedgerConfig) -> Self {
        Self::with_executor(store, cfg, Executor::Local)
    }

    /// A ledger that sends blocks to `executor`.
    pub fn with_executor(store: S, cfg: LedgerConfig, executor: Executor) -> Self {
        Self {
            store,
            cfg,
            executor,
            chain: Mutex::new(None),
            phases: Phases::default(),
            sigs: SigCache::default(),
            final_height: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Records a final height reported by the member's gossip-gateway; it only rises.
    pub fn report_final(&self, height: u64) {
        self.final_height
            .fetch_max(height, std::sync::atomic::Ordering::Relaxed);
    }

    /// The highest height known to be final (0 until the gateway reports one).
    pub fn final_height(&self) -> u64 {
        self.final_height.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Installs the genesis configuration as height 0, once. On a store that
    /// already has a chain, checks that it started from this same genesis.
    pub async fn init(&self, genesis: &ConsortiumConfig) -> Result<Head> {
        let raw = genesis.encode_to_vec();
        if let Some(stored) = self.store.get(keys::GENESIS).await? {
            if stored.value != raw {
                return Err(LedgerError::GenesisMismatch);
            }
            return self.head().await;
        }
        ChainState::from_raw(raw.clone())?;
        let head = genesis_head(&raw);
        let config_key = fiscus_contract_executor::keys::CONFIG;
        let batch = WriteBatch::new()
            .expect_version(keys::HEAD, None)
            .put(keys::GENESIS, raw.clone())
            .put(keys::state(config_key), keys::encode_state(0, &raw))
            .put(keys::block_meta(0), head.encode())
            .put(keys::NONCES_SINCE_GENESIS, Vec::new())
            .put(keys::HEAD, head.encode());
        self.store.commit(batch).await?;
        Ok(head)
    }

    /// Records the signer certificates this ledger knows in the store, so that
    /// an offline check needs nothing but the data directory.
    pub async fn remember_certs(&self) -> Result<()> {
        let mut batch = WriteBatch::new();
        for (id, org, pk) in self.cfg.certs.iter() {
            batch = batch.put(keys::cert(id), [org.as_bytes(), &[0u8], pk].concat());
        }
        if !batch.is_empty() {
            self.store.commit(batch).await?;
        }
        Ok(())
    }

    /// The chain config as of the current state.
    pub(crate) async fn chain_state(&self) -> Result<Arc<ChainState>> {
        let raw = self
            .state(fiscus_contract_executor::keys::CONFIG)
            .await?
            .ok_or(LedgerError::NoGenesis)?;
        let mut cached = self.chain.lock().map_err(|_| LedgerError::Poisoned)?;
        if let Some(c) = cached.as_ref().filter(|c| c.raw == raw) {
            return Ok(c.clone());
        }
        let c = Arc::new(ChainState::from_raw(raw)?);
        *cached = Some(c.clone());
        Ok(c)
    }

    /// The consortium configuration now in force.
    pub async fn consortium_config(&self) -> Result<ConsortiumConfig> {
        Ok(self.chain_state().await?.config.clone())
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.cfg
    }

    pub async fn head(&self) -> Result<Head> {
        match self.store.get(keys::HEAD).await? {
            Some(v) => Head::decode(&v.value),
            None => Ok(Head::default()),
        }
    }

    /// Time spent so far in each commit phase.
    pub fn phase_times(&self) -> PhaseTimes {
        self.phases.snapshot()
    }
}
