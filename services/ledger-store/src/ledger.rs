//! Validate, execute and commit blocks; serve queries and proofs.

use crate::certs::{CertStatus, Certs};
use crate::error::{LedgerError, Result};
use crate::exec::Executor;
use crate::keys;
use crate::seen::{self, NonceKey, Repeat, Seen};
use crate::write_set::next_state_hash;
use fiscus_common::store::{StateStore, WriteBatch};
use fiscus_contract_executor::executor::{KeyValues, declared_reads};
use fiscus_contract_executor::service::{call_of, orgs_of, receipt_of};
use fiscus_contract_executor::{BlockInput, Calendar, Orgs, Rejection, TxCtx, execute_block};
use fiscus_proto::DecodeLimits;
use fiscus_proto::block::CheckedBlock;
use fiscus_proto::hash::{Hash32, TxId};
use fiscus_proto::merkle;
use fiscus_proto::pb::state::{AllocationRecord, LineageRecord};
use fiscus_proto::pb::types::{
    Attestation, ConsortiumConfig, ContractEvent, Receipt, SignedAttestation, TxStatus,
};
use fiscus_proto::sign::{SigCheck, SigningKey, verify_batch};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// What the chain's configuration (`gov/config`) says at a block's start:
/// the org registry and who is revoked from which height.
#[derive(Debug)]
pub(crate) struct ChainState {
    raw: Vec<u8>,
    pub config: ConsortiumConfig,
    pub orgs: Orgs,
    pub calendar: Calendar,
    revoked_certs: BTreeMap<Hash32, u64>,
    revoked_orgs: BTreeMap<String, u64>,
}

impl ChainState {
    pub(crate) fn from_raw(raw: Vec<u8>) -> Result<Self> {
        let config = ConsortiumConfig::decode(&raw[..])
            .map_err(|e| LedgerError::Corrupt(format!("gov/config: {e}")))?;
        let orgs = orgs_of(&config).map_err(|e| LedgerError::Unsupported(e.to_string()))?;
        let revoked_certs = config
            .crl
            .iter()
            .flat_map(|c| &c.revoked)
            .filter_map(|r| {
                Hash32::from_slice("cert id", &r.cert_id)
                    .ok()
                    .map(|id| (id, r.effective_height))
            })
            .collect();
        let revoked_orgs = config
            .revoked_orgs
            .iter()
            .map(|r| (r.org_code.clone(), r.effective_height))
            .collect();
        Ok(Self {
            raw,
            calendar: Calendar::from_config(&config),
            config,
            orgs,
            revoked_certs,
            revoked_orgs,
        })
    }

    /// A known certificate's status at `height`, after the on-chain CRL and
    /// the orgs that left.
    fn status(&self, certs: &Certs, cert: &Hash32, height: u64) -> CertStatus {
        match certs.status(cert, height) {
            CertStatus::Valid { org, .. }
                if self.revoked_certs.get(cert).is_some_and(|h| height >= *h)
                    || self.revoked_orgs.get(&org).is_some_and(|h| height >= *h) =>
            {
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

/// A block checked against the head, before replay checks and execution.
struct Checked {
    block: CheckedBlock,
    /// Per tx: the executor input, or an early refusal.
    txs: Vec<Result<TxCtx, Rejection>>,
}

/// The full outcome of processing one block, before it is written.
pub(crate) struct Processed {
    pub head: Head,
    pub receipts: Vec<Receipt>,
    pub writes: KeyValues,
    /// Tx ids to index (those whose signatures were valid and are not replays).
    pub indexed: Vec<(TxId, u32)>,
    /// (creator, nonce) pairs first used in this block, with their txs.
    pub nonces: Vec<(NonceKey, TxId)>,
    /// The previous (height, value) of keys that existed before this block.
    pub old: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
}

fn refusal(status: TxStatus, code: &'static str, reason: impl Into<String>) -> Rejection {
    Rejection::new(status, code, reason)
}

/// Checks the block against the head and every transaction's envelope.
/// Pure: the same inputs give the same answer on every member.
/// Signatures already found valid (by [`Ledger::preverify`]), keyed by
/// H(public key ‖ tx id ‖ signature). Verification is a pure function of
/// those three, so a hit gives exactly the answer a fresh check would.
#[derive(Debug, Default)]
pub(crate) struct SigCache(Mutex<BTreeSet<Hash32>>);

impl SigCache {
    /// Entries kept at most; the cache only ever holds the next block or two.
    const MAX: usize = 50_000;

    fn key(public_key: &[u8; 32], tx: &TxId, sig: &[u8]) -> Hash32 {
        fiscus_proto::hash::sha256(&[&public_key[..], &tx.0, sig].concat())
    }

    fn insert_all(&self, keys: Vec<Hash32>) {
        if let Ok(mut set) = self.0.lock() {
            if set.len() + keys.len() > Self::MAX {
                set.clear();
            }
            set.extend(keys);
        }
    }

    fn take(&self, key: &Hash32) -> bool {
        self.0.lock().map(|mut s| s.remove(key)).unwrap_or(false)
    }
}

fn check(
    cfg: &LedgerConfig,
    chain: &ChainState,
    head: &Head,
    block: CheckedBlock,
    cache: Option<&SigCache>,
) -> Result<Checked> {
    let n = block.number;
    if n != head.height + 1 {
        return Err(LedgerError::NotNext {
            head: head.height,
            got: n,
        });
    }
    if block.prev_hash != head.hash {
        return Err(LedgerError::BadLink(n));
    }
    if block.timestamp_ms < head.timestamp_ms {
        return Err(LedgerError::BadTimestamp(n));
    }
    match chain.status(&cfg.certs, &block.orderer_signature.cert_id, n) {
        CertStatus::Valid { public_key, .. }
            if fiscus_proto::sign::verify(
                &public_key,
                &block.header_bytes,
                &block.orderer_signature.signature,
            )
            .is_ok() => {}
        _ => return Err(LedgerError::BadOrdererSignature(n)),
    }
    // Per tx and per signature, in order: a refusal, or an org once its
    // signature verifies. The signatures not already verified by
    // `preverify` go to batch verification (ADR 0002) below.
    let mut to_verify: Vec<SigCheck<'_>> = Vec::new();
    let plans: Vec<std::result::Result<Vec<SigPlan>, Rejection>> = block
        .txs
        .iter()
        .map(|tx| {
            if tx.payload.consortium_id != cfg.consortium_id {
                return Err(refusal(
                    TxStatus::WrongConsortium,
                    "tx.wrong_consortium",
                    "another consortium's transaction",
                ));
            }
            Ok(tx
                .signatures
                .iter()
                .map(|s| match chain.status(&cfg.certs, &s.cert_id, n) {
                    CertStatus::Unknown => SigPlan::Refused(refusal(
                        TxStatus::UnknownCertificate,
                        "tx.unknown_certificate",
                        format!("signer {} is unknown", s.cert_id),
                    )),
                    CertStatus::Revoked => SigPlan::Refused(refusal(
                        TxStatus::RevokedCertificate,
                        "tx.revoked_certificate",
                        format!("signer {} is revoked at height {n}", s.cert_id),
                    )),
                    CertStatus::Valid { org, public_key } => {
                        let cached = cache.is_some_and(|c| {
                            c.take(&SigCache::key(&public_key, &tx.tx_id, &s.signature))
                        });
                        if cached {
                            SigPlan::Verified(org)
                        } else {
                            to_verify.push(SigCheck {
                                public_key: cfg
                                    .certs
                                    .key_bytes(&s.cert_id)
                                    .map_or(&[][..], |k| &k[..]),
                                message: &tx.payload_bytes,
                                signature: &s.signature,
                            });
                            SigPlan::Verify(org, to_verify.len() - 1)
                        }
                    }
                })
                .collect())
        })
        .collect();
    let verdicts = verify_on_threads(&to_verify, cfg.threads)
        .ok_or_else(|| LedgerError::Corrupt("a signature-check thread failed".into()))?;
    let txs = block
        .txs
        .iter()
        .zip(plans)
        .map(|(tx, plan)| {
            let mut orgs = BTreeSet::new();
            for sig in plan? {
                match sig {
                    SigPlan::Refused(r) => return Err(r),
                    SigPlan::Verify(_, i) if verdicts[i].is_err() => {
                        return Err(refusal(
                            TxStatus::BadSignature,
                            "tx.bad_signature",
                            "a signature does not verify",
                        ));
                    }
                    SigPlan::Verify(org, _) | SigPlan::Verified(org) => {
                        orgs.insert(org);
                    }
                }
            }
            Ok(TxCtx {
                tx_id: tx.tx_id,
                signer_orgs: orgs,
                call: call_of(&tx.payload),
            })
        })
        .collect();
    Ok(Checked { block, txs })
}

/// What `check` decided for one signature before the batch verification.
enum SigPlan {
    Refused(Rejection),
    /// Valid certificate of this org; the verdict is at this index.
    Verify(String, usize),
    /// Valid certificate, and `preverify` already verified this signature.
    Verified(String),
}

/// Batch-verifies `items` in up to `threads` batches on the process's worker
/// pool (rayon: long-lived threads, so a block costs no thread start);
/// verdicts in order. `None` if a verification panicked: that is a fault of
/// this node, not a verdict on the signatures, so it must not become a receipt.
fn verify_on_threads(
    items: &[SigCheck<'_>],
    threads: usize,
) -> Option<Vec<std::result::Result<(), fiscus_proto::sign::VerifyError>>> {
    use rayon::prelude::*;
    let chunk = items.len().div_ceil(threads.max(1)).max(1);
    if items.len() <= chunk {
        return Some(verify_batch(items));
    }
    let parts: Vec<_> = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        items.par_chunks(chunk).map(verify_batch).collect()
    }))
    .ok()?;
    Some(parts.into_iter().flatten().collect())
}

impl Checked {
    /// The contract keys the executable transactions declare, and the
    /// config: what to read before execution.
    fn keys_to_read(&self) -> BTreeSet<Vec<u8>> {
        let mut keys = declared_reads(self.txs.iter().filter_map(|t| t.as_ref().ok()));
        keys.insert(fiscus_contract_executor::keys::CONFIG.to_vec());
        keys
    }
}

/// What earlier blocks of one `commit_blocks` call wrote, not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    /// contract key → (writing height, value), or None if deleted.
    state: BTreeMap<Vec<u8>, Option<(u64, Vec<u8>)>>,
    seen: Seen,
}

impl Overlay {
    fn absorb(&mut self, p: &Processed) {
        let n = p.head.height;
        for (k, v) in &p.writes {
            self.state.insert(k.clone(), v.clone().map(|v| (n, v)));
        }
        self.seen.absorb(&p.indexed, &p.nonces);
    }
}

/// What to execute and what was refused before execution.
pub(crate) struct Plan {
    n: u64,
    timestamp_ms: i64,
    early: BTreeMap<usize, Rejection>,
    pub(crate) run: Vec<TxCtx>,
    pub(crate) run_idx: Vec<usize>,
    indexed: Vec<(TxId, u32)>,
    /// The (creator, nonce) pairs this block uses, with their txs.
    nonces: Vec<(NonceKey, TxId)>,
    tx_ids: Vec<TxId>,
    hash: Hash32,
}

/// Replay refusals (`crate::seen`): which transactions run. Pure given what
/// the chain already holds of this block's ids and nonces.
fn plan(checked: Checked, chain: &Seen) -> Plan {
    let mut block = Seen::default();
    let mut early: BTreeMap<usize, Rejection> = BTreeMap::new();
    let mut run = Vec::new();
    let mut run_idx = Vec::new();
    let mut indexed = Vec::new();
    let mut nonces = Vec::new();
    let tx_ids: Vec<TxId> = checked.block.txs.iter().map(|t| t.tx_id).collect();
    let keys: Vec<NonceKey> = checked.block.txs.iter().map(seen::nonce_key).collect();
    for (i, t) in checked.txs.into_iter().enumerate() {
        let (id, key) = (tx_ids[i], keys[i]);
        if let Err(r) = &t
            && (r.status == TxStatus::BadSignature
                || r.status == TxStatus::UnknownCertificate
                || r.status == TxStatus::WrongConsortium)
        {
            // Not indexed: a forger must not be able to burn a genuine tx id
            // or nonce.
            early.insert(i, r.clone());
            continue;
        }
        match seen::verdict(id, key, chain, &mut block) {
            Some(Repeat::Tx) => {
                early.insert(
                    i,
                    refusal(
                        TxStatus::Duplicate,
                        "tx.duplicate",
                        format!("tx {id} is already in the chain"),
                    ),
                );
                continue;
            }
            Some(Repeat::Nonce(first)) => {
                // Indexed, so its receipt can be read; the nonce stays the first's.
                indexed.push((id, i as u32));
                early.insert(
                    i,
                    refusal(
                        TxStatus::Duplicate,
                        "tx.nonce_reused",
                        format!(
                            "nonce {} of this creator was already used by tx {first}",
                            key.1
                        ),
                    ),
                );
                continue;
            }
            None => {
                indexed.push((id, i as u32));
                nonces.push((key, id));
            }
        }
        match t {
            Err(r) => {
                early.insert(i, r);
            }
            Ok(ctx) => {
                run_idx.push(i);
                run.push(ctx);
            }
        }
    }
    Plan {
        n: checked.block.number,
        timestamp_ms: checked.block.timestamp_ms,
        early,
        run,
        run_idx,
        indexed,
        nonces,
        tx_ids,
        hash: checked.block.hash,
    }
}

/// Executes the plan in this process.
fn run_local(
    plan: &mut Plan,
    chain: &ChainState,
    reads: &KeyValues,
    threads: usize,
) -> (Vec<Receipt>, KeyValues) {
    let input = BlockInput {
        height: plan.n,
        timestamp_ms: plan.timestamp_ms,
        orgs: &chain.orgs,
        calendar: &chain.calendar,
        txs: std::mem::take(&mut plan.run),
    };
    let out = execute_block(&input, reads, threads);
    let receipts = out
        .results
        .iter()
        .zip(&plan.run_idx)
        .map(|(r, i)| receipt_of(r, plan.n, *i as u32))
        .collect();
    (receipts, out.writes)
}

/// Receipts in block order and the commitments. Pure.
fn assemble(head: &Head, plan: Plan, executed: Vec<Receipt>, writes: KeyValues) -> Processed {
    let n = plan.n;
    let mut by_index: BTreeMap<usize, Receipt> = BTreeMap::new();
    for (r, i) in executed.into_iter().zip(&plan.run_idx) {
        by_index.insert(*i, r);
    }
    for (i, r) in plan.early {
        by_index.insert(
            i,
            Receipt {
                tx_id: plan.tx_ids[i].to_vec(),
                block_number: n,
                tx_index: i as u32,
                status: r.status as i32,
                reason: format!("{}: {}", r.code, r.reason),
                writes: Vec::new(),
                events: Vec::<ContractEvent>::new(),
            },
        );
    }
    let receipts: Vec<Receipt> = by_index.into_values().collect();
    let encoded: Vec<Vec<u8>> = receipts.iter().map(Message::encode_to_vec).collect();
    let head = Head {
        height: n,
        hash: plan.hash,
        state_hash: next_state_hash(&head.state_hash, &writes),
        receipts_root: merkle::root(&encoded),
        timestamp_ms: plan.timestamp_ms,
    };
    Processed {
        head,
        receipts,
        writes,
        indexed: plan.indexed,
        nonces: plan.nonces,
        old: BTreeMap::new(),
    }
}

/// The outcome of a one-block commit run: its summary, or why it was refused.
fn only_block((mut done, err): (Vec<CommitSummary>, Option<LedgerError>)) -> Result<CommitSummary> {
    match (done.pop(), err) {
        (Some(s), _) => Ok(s),
        (None, Some(e)) => Err(e),
        (None, None) => Err(LedgerError::Corrupt("no block committed".into())),
    }
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

    /// Processes `bytes` against the current head and state, writing nothing.
    pub(crate) async fn process(
        &self,
        head: &Head,
        bytes: &[u8],
        block: CheckedBlock,
        overlay: &Overlay,
    ) -> Result<Processed> {
        let t = std::time::Instant::now();
        let chain = match overlay.state.get(fiscus_contract_executor::keys::CONFIG) {
            Some(Some((_, raw))) => Arc::new(ChainState::from_raw(raw.clone())?),
            _ => self.chain_state().await?,
        };
        let checked = check(&self.cfg, &chain, head, block, Some(&self.sigs))?;
        self.phases.add(Phase::Check, t);
        let t = std::time::Instant::now();
        let seen = self.seen_of(&checked.block, &overlay.seen).await?;
        let mut reads = KeyValues::new();
        let mut old = BTreeMap::new();
        for k in checked.keys_to_read() {
            if let Some(entry) = overlay.state.get(&k) {
                match entry {
                    Some((h, value)) => {
                        reads.insert(k.clone(), Some(value.clone()));
                        old.insert(k, (*h, value.clone()));
                    }
                    None => {
                        reads.insert(k, None);
                    }
                }
                continue;
            }
            match self.store.get(&keys::state(&k)).await? {
                Some(v) => {
                    let (h, value) = keys::decode_state(&v.value)
                        .ok_or_else(|| LedgerError::Corrupt("state record".into()))?;
                    reads.insert(k.clone(), Some(value.to_vec()));
                    old.insert(k, (h, value.to_vec()));
                }
                None => {
                    reads.insert(k, None);
                }
            }
        }
        self.phases.add(Phase::Read, t);
        let t = std::time::Instant::now();
        let mut plan = plan(checked, &seen);
        let (receipts, writes) = match &self.executor {
            Executor::Local => run_local(&mut plan, &chain, &reads, self.cfg.threads),
            Executor::Remote(client) => client.execute(bytes, &plan, &reads).await?,
        };
        let mut out = assemble(head, plan, receipts, writes);
        out.old = old;
        self.phases.add(Phase::Execute, t);
        Ok(out)
    }

    /// Verifies the signatures of a block that is about to be committed, on
    /// `threads` threads, and remembers the valid ones, so that its commit
    /// skips them. Meant to run while the block before it commits: checking
    /// and committing then overlap. Whether a signer may sign at all is still
    /// decided by the commit; a bad block is simply not cached.
    pub fn preverify(&self, bytes: &[u8], threads: usize) -> usize {
        match CheckedBlock::decode(bytes, &self.cfg.limits) {
            Ok(block) => self.preverify_checked(&block, threads),
            Err(_) => 0,
        }
    }

    /// [`Self::preverify`] for a block that arrived decoded (over gRPC).
    pub fn preverify_wire(&self, block: fiscus_proto::pb::types::Block, threads: usize) -> usize {
        match CheckedBlock::from_wire(block, &self.cfg.limits) {
            Ok(block) => self.preverify_checked(&block, threads),
            Err(_) => 0,
        }
    }

    fn preverify_checked(&self, block: &CheckedBlock, threads: usize) -> usize {
        let mut items = Vec::new();
        let mut cache_keys = Vec::new();
        for tx in &block.txs {
            for s in &tx.signatures {
                let Some(pk) = self.cfg.certs.key_bytes(&s.cert_id) else {
                    continue;
                };
                items.push(SigCheck {
                    public_key: pk,
                    message: &tx.payload_bytes,
                    signature: &s.signature,
                });
                cache_keys.push((*pk, tx.tx_id, s.signature));
            }
        }
        let keys: Vec<Hash32> = verify_on_threads(&items, threads)
            .unwrap_or_default()
            .into_iter()
            .zip(cache_keys)
            .filter(|(v, _)| v.is_ok())
            .map(|(_, (pk, tx_id, sig))| SigCache::key(&pk, &tx_id, &sig))
            .collect();
        let n = keys.len();
        self.sigs.insert_all(keys);
        n
    }

    /// Time spent so far in each commit phase.
    pub fn phase_times(&self) -> PhaseTimes {
        self.phases.snapshot()
    }

    /// Validates, executes and commits one block atomically. A refused block changes nothing.
    pub async fn commit_block(&self, bytes: &[u8]) -> Result<CommitSummary> {
        only_block(self.commit_blocks(&[bytes]).await?)
    }

    /// [`Self::commit_block`] for a block that arrived decoded (over gRPC).
    pub async fn commit_wire_block(
        &self,
        block: fiscus_proto::pb::types::Block,
    ) -> Result<CommitSummary> {
        only_block(self.commit_wire_blocks(vec![block]).await?)
    }

    /// Validates and executes consecutive blocks, then commits all that passed
    /// in **one** atomic, fsynced batch: a catching-up member pays one disk
    /// sync for many blocks. Each block is checked against the state the
    /// blocks before it produced. Processing stops at the first refused block;
    /// the ones before it are committed and returned with that block's error.
    pub async fn commit_blocks(
        &self,
        blocks: &[&[u8]],
    ) -> Result<(Vec<CommitSummary>, Option<LedgerError>)> {
        let t = std::time::Instant::now();
        let decoded = blocks
            .iter()
            .map(|b| {
                (
                    std::borrow::Cow::Borrowed(*b),
                    CheckedBlock::decode(b, &self.cfg.limits).map_err(LedgerError::from),
                )
            })
            .collect();
        self.phases.add(Phase::Check, t);
        self.commit_decoded(decoded).await
    }

    /// [`Self::commit_blocks`] for blocks that arrived decoded (over gRPC):
    /// each is encoded once, for the store, and checked without decoding it
    /// again.
    pub async fn commit_wire_blocks(
        &self,
        blocks: Vec<fiscus_proto::pb::types::Block>,
    ) -> Result<(Vec<CommitSummary>, Option<LedgerError>)> {
        let t = std::time::Instant::now();
        let decoded = blocks
            .into_iter()
            .map(|b| {
                let bytes = b.encode_to_vec();
                let checked =
                    CheckedBlock::from_wire(b, &self.cfg.limits).map_err(LedgerError::from);
                (std::borrow::Cow::Owned(bytes), checked)
            })
            .collect();
        self.phases.add(Phase::Check, t);
        self.commit_decoded(decoded).await
    }

    /// Commits a run of blocks, each as its stored bytes and its decoding.
    async fn commit_decoded(
        &self,
        blocks: Vec<(std::borrow::Cow<'_, [u8]>, Result<CheckedBlock>)>,
    ) -> Result<(Vec<CommitSummary>, Option<LedgerError>)> {
        let mut head = self.head().await?;
        let head_version = self.store.get(keys::HEAD).await?.map(|v| v.version);
        let mut overlay = Overlay::default();
        let mut batch = WriteBatch::new().expect_version(keys::HEAD, head_version);
        let mut done = Vec::new();
        let mut failure = None;
        for (bytes, block) in blocks {
            let processed = match block {
                Ok(block) => self.process(&head, &bytes, block, &overlay).await,
                Err(e) => Err(e),
            };
            let p = match processed {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            let t = std::time::Instant::now();
            overlay.absorb(&p);
            let (b, summary) = self.add_block(batch, &bytes, p);
            batch = b;
            head = summary.head;
            self.phases.add(Phase::Write, t);
            done.push(summary);
        }
        if done.is_empty() {
            return Ok((done, failure));
        }
        let t = std::time::Instant::now();
        self.store.commit(batch).await?;
        self.phases.add(Phase::Write, t);
        Ok((done, failure))
    }

    /// Adds one processed block's records to `batch` and signs its attestation.
    fn add_block(
        &self,
        mut batch: WriteBatch,
        bytes: &[u8],
        p: Processed,
    ) -> (WriteBatch, CommitSummary) {
        let n = p.head.height;
        batch = batch
            .put(keys::block(n), bytes.to_vec())
            .put(keys::block_hash(&p.head.hash), n.to_be_bytes().to_vec())
            .put(keys::block_meta(n), p.head.encode())
            .put(keys::HEAD, p.head.encode());
        for (k, v) in &p.writes {
            // Archive the value this block replaces, under the block that wrote it.
            if let Some((h, prev)) = p.old.get(k) {
                batch = batch.put(keys::history(k, *h), [&[1u8][..], prev].concat());
            }
            batch = match v {
                Some(v) => batch.put(keys::state(k), keys::encode_state(n, v)),
                None => batch
                    .delete(keys::state(k))
                    .put(keys::history(k, n), vec![0u8]),
            };
        }
        for (id, i) in &p.indexed {
            let mut loc = n.to_be_bytes().to_vec();
            loc.extend_from_slice(&i.to_be_bytes());
            batch = batch.put(keys::tx_index(id), loc);
        }
        for ((creator, nonce), id) in &p.nonces {
            batch = batch.put(keys::nonce_index(creator, *nonce), id.to_vec());
        }
        // The receipts as an `ExecuteBlockResponse` (field 1, no writes),
        // encoded from the borrowed list rather than a copy of it.
        let mut list = Vec::new();
        prost::encoding::message::encode_repeated(1, &p.receipts, &mut list);
        batch = batch.put(keys::receipts(n), list);
        let att = Attestation {
            member: self.cfg.member.clone(),
            height: n,
            block_hash: p.head.hash.to_vec(),
            state_hash: p.head.state_hash.to_vec(),
            receipts_root: p.head.receipts_root.to_vec(),
        }
        .encode_to_vec();
        let signed = SignedAttestation {
            signature: Some(fiscus_proto::pb::types::Signature {
                cert_id: self.cfg.cert_id.to_vec(),
                signature: self.cfg.key.sign(&att).to_vec(),
            }),
            attestation: att,
        };
        batch = batch.put(keys::attestation(n), signed.encode_to_vec());
        let valid = p
            .receipts
            .iter()
            .filter(|r| r.status == TxStatus::Valid as i32)
            .count();
        let summary = CommitSummary {
            head: p.head,
            valid,
            invalid: p.receipts.len() - valid,
            receipts: p.receipts,
            attestation: signed,
        };
        (batch, summary)
    }

    /// Every receipt of block `n`, in block order.
    pub async fn receipts(&self, n: u64) -> Result<Vec<Receipt>> {
        let raw = self
            .store
            .get(&keys::receipts(n))
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("receipts of block {n}")))?
            .value;
        Ok(
            fiscus_proto::pb::ledger::ExecuteBlockResponse::decode(&raw[..])
                .map_err(|e| LedgerError::Corrupt(e.to_string()))?
                .receipts,
        )
    }

    /// This member's signed attestation for height `n`.
    pub async fn attestation(&self, n: u64) -> Result<SignedAttestation> {
        let raw = self
            .store
            .get(&keys::attestation(n))
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("attestation of block {n}")))?
            .value;
        SignedAttestation::decode(&raw[..]).map_err(|e| LedgerError::Corrupt(e.to_string()))
    }

    /// The stored block bytes at `n`.
    pub async fn block(&self, n: u64) -> Result<Vec<u8>> {
        Ok(self
            .store
            .get(&keys::block(n))
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("block {n}")))?
            .value)
    }

    /// A contract key's current value, with the block that wrote it.
    pub async fn state_record(&self, contract_key: &[u8]) -> Result<Option<(u64, Vec<u8>)>> {
        match self.store.get(&keys::state(contract_key)).await? {
            None => Ok(None),
            Some(v) => {
                let (h, value) = keys::decode_state(&v.value)
                    .ok_or_else(|| LedgerError::Corrupt("state record".into()))?;
                Ok(Some((h, value.to_vec())))
            }
        }
    }

    /// A contract state value.
    pub async fn state(&self, contract_key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.state_record(contract_key).await?.map(|(_, v)| v))
    }

    /// Like [`Ledger::history`], leaving out blocks above `height`.
    pub async fn history_until(
        &self,
        contract_key: &[u8],
        height: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        let prefix = keys::history_prefix(contract_key);
        let end = keys::history(contract_key, height.saturating_add(1));
        let rows = self.store.range(&prefix, Some(&end), limit).await?;
        let mut out = decode_history(&prefix, rows)?;
        if out.len() < limit
            && let Some((h, v)) = self.state_record(contract_key).await?
            && h <= height
        {
            out.push((h, Some(v)));
        }
        Ok(out)
    }

    /// (height, value or None if deleted) for every block that wrote
    /// `contract_key`, oldest first, at most `limit`.
    pub async fn history(
        &self,
        contract_key: &[u8],
        limit: usize,
    ) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        self.history_until(contract_key, u64::MAX - 1, limit).await
    }

    /// What the chain (the store, then the blocks not yet written) already
    /// holds of `block`'s tx ids and nonces. One lookup per transaction: its
    /// nonce. The tx index is read only where the nonce is taken by another
    /// transaction (a replay of a refused reuse, or a reuse), or on a chain
    /// begun before nonces were indexed.
    async fn seen_of(&self, block: &CheckedBlock, pending: &Seen) -> Result<Seen> {
        let complete = self.store.get(keys::NONCES_SINCE_GENESIS).await?.is_some();
        let mut seen = Seen::default();
        for t in &block.txs {
            let key = seen::nonce_key(t);
            let first = match pending.nonces.get(&key) {
                Some(id) => Some(*id),
                None => self.nonce_use(&key.0, key.1).await?,
            };
            if let Some(first) = first {
                seen.nonces.insert(key, first);
            }
            let replay = first == Some(t.tx_id)
                || pending.ids.contains(&t.tx_id)
                || ((first.is_some() || !complete)
                    && self.store.get(&keys::tx_index(&t.tx_id)).await?.is_some());
            if replay {
                seen.ids.insert(t.tx_id);
            }
        }
        Ok(seen)
    }

    /// The committed transaction that used `creator`'s `nonce`, if any.
    pub async fn nonce_use(&self, creator: &Hash32, nonce: u64) -> Result<Option<TxId>> {
        match self.store.get(&keys::nonce_index(creator, nonce)).await? {
            None => Ok(None),
            Some(v) => Hash32::from_slice("nonce index", &v.value)
                .map(Some)
                .map_err(|_| LedgerError::Corrupt("nonce index".into())),
        }
    }

    /// A receipt with its inclusion proof to the block's `receipts_root`, the
    /// block header and this member's attestation: checkable offline.
    /// Keeps, per height and durably, the first agreeing-majority set of
    /// signed attestations the gateway reports (it verified each signature).
    pub async fn record_majority(&self, majority: &[SignedAttestation]) -> Result<()> {
        let mut by_height: BTreeMap<u64, Vec<SignedAttestation>> = BTreeMap::new();
        for s in majority {
            let a = fiscus_proto::pb::types::Attestation::decode(&s.attestation[..])
                .map_err(|e| LedgerError::Corrupt(format!("reported attestation: {e}")))?;
            by_height.entry(a.height).or_default().push(s.clone());
        }
        let mut batch = WriteBatch::new();
        for (h, attestations) in by_height {
            let key = keys::final_attestations(h);
            if self.store.get(&key).await?.is_none() {
                batch = batch.put(
                    key,
                    fiscus_proto::pb::gossip::AttestationBatch { attestations }.encode_to_vec(),
                );
            }
        }
        if !batch.is_empty() {
            self.store.commit(batch).await?;
        }
        Ok(())
    }

    /// A receipt with its Merkle proof and either this member's attestation
    /// or (`require_final`) the agreeing majority's.
    pub async fn receipt_proof(
        &self,
        tx: &TxId,
        require_final: bool,
    ) -> Result<fiscus_proto::pb::types::ReceiptProof> {
        let loc = self
            .store
            .get(&keys::tx_index(tx))
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("tx {tx}")))?
            .value;
        let (n, i) = match loc.as_slice() {
            [a @ .., b0, b1, b2, b3] if a.len() == 8 => (
                u64::from_be_bytes(
                    a.try_into()
                        .map_err(|_| LedgerError::Corrupt("tx index".into()))?,
                ),
                u32::from_be_bytes([*b0, *b1, *b2, *b3]),
            ),
            _ => return Err(LedgerError::Corrupt("tx index".into())),
        };
        let encoded: Vec<Vec<u8>> = self
            .receipts(n)
            .await?
            .iter()
            .map(Message::encode_to_vec)
            .collect();
        let proof = merkle::prove(&encoded, i as usize)
            .ok_or_else(|| LedgerError::Corrupt("receipt index".into()))?;
        let block = fiscus_proto::pb::types::Block::decode(&self.block(n).await?[..])
            .map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        let attestations = if require_final {
            let raw = self
                .store
                .get(&keys::final_attestations(n))
                .await?
                .ok_or(LedgerError::NotFinal(n))?
                .value;
            fiscus_proto::pb::gossip::AttestationBatch::decode(&raw[..])
                .map_err(|e| LedgerError::Corrupt(e.to_string()))?
                .attestations
        } else {
            self.store
                .get(&keys::attestation(n))
                .await?
                .map(|v| SignedAttestation::decode(&v.value[..]))
                .transpose()
                .map_err(|e| LedgerError::Corrupt(e.to_string()))?
                .into_iter()
                .collect()
        };
        Ok(fiscus_proto::pb::types::ReceiptProof {
            receipt: encoded[i as usize].clone(),
            proof: Some(fiscus_proto::pb::types::InclusionProof {
                leaf_index: proof.leaf_index,
                tree_size: proof.tree_size,
                path: proof.path.iter().map(|h| h.to_vec()).collect(),
            }),
            block_header: block.header,
            attestations,
        })
    }

    /// `at` as a served height: 0 is the head; above the head is not found.
    pub async fn resolve_height(&self, at: u64) -> Result<u64> {
        let head = self.head().await?.height;
        match at {
            0 => Ok(head),
            h if h <= head => Ok(h),
            h => Err(LedgerError::NotFound(format!(
                "height {h} (the head is {head})"
            ))),
        }
    }

    /// A contract key's value as of block `height`, with the block that wrote
    /// it. Served from the immutable per-key history, so the answer is the
    /// same however many blocks commit meanwhile.
    pub async fn state_at(
        &self,
        contract_key: &[u8],
        height: u64,
    ) -> Result<Option<(u64, Vec<u8>)>> {
        let Some(end) = height.checked_add(1) else {
            return Err(LedgerError::NotFound(format!("height {height}")));
        };
        // The current value, if no later block wrote it; else the archive.
        if let Some((h, v)) = self.state_record(contract_key).await?
            && h <= height
        {
            return Ok(Some((h, v)));
        }
        let found = self
            .store
            .last_in_range(
                &keys::history(contract_key, 0),
                &keys::history(contract_key, end),
            )
            .await?;
        let Some((k, v)) = found else {
            return Ok(None);
        };
        let prefix = keys::history_prefix(contract_key);
        let h = std::str::from_utf8(&k[prefix.len()..])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| LedgerError::Corrupt("history key".into()))?;
        Ok(match v.value.split_first() {
            Some((1, rest)) => Some((h, rest.to_vec())),
            _ => None,
        })
    }

    /// Contract keys in `[start, end)` as of `height`, at most `limit` of them
    /// looked at; returns the entries (key, writing block, value) and where
    /// the next page starts, if there is one. The contracts never delete
    /// keys, so scanning today's key set and reading each at `height` is exact.
    pub async fn scan_at(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        height: u64,
        limit: usize,
    ) -> Result<(Vec<(Vec<u8>, u64, Vec<u8>)>, Option<Vec<u8>>)> {
        let s = keys::state(start);
        let e = match end {
            Some(e) => Some(keys::state(e)),
            None => fiscus_common::store::prefix_end(b"s/"),
        };
        let rows = self.store.range(&s, e.as_deref(), limit).await?;
        let next = (rows.len() == limit && limit > 0)
            .then(|| rows.last().map(|(k, _)| [&k[2..], &[0u8][..]].concat()))
            .flatten();
        let mut out = Vec::with_capacity(rows.len());
        for (k, _) in rows {
            let ck = k[2..].to_vec();
            if let Some((h, v)) = self.state_at(&ck, height).await? {
                out.push((ck, h, v));
            }
        }
        Ok((out, next))
    }

    /// The block number with hash `hash`.
    pub async fn block_number_of(&self, hash: &Hash32) -> Result<u64> {
        let v = self
            .store
            .get(&keys::block_hash(hash))
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("block {hash}")))?
            .value;
        Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(
            |_| LedgerError::Corrupt("block hash index".into()),
        )?))
    }

    /// The lineage of a disbursement or allocation back to its appropriations,
    /// breadth first, each record once, as of the head.
    pub async fn trace(&self, tx: &TxId) -> Result<Vec<(TxId, LineageRecord)>> {
        let h = self.head().await?.height;
        Ok(self
            .trace_at(tx, h)
            .await?
            .into_iter()
            .map(|(id, rec, _)| (id, rec))
            .collect())
    }

    /// Like [`Ledger::trace`] as of `height`, with each allocation's record
    /// (due date, lateness, acknowledgement).
    pub async fn trace_at(
        &self,
        tx: &TxId,
        height: u64,
    ) -> Result<Vec<(TxId, LineageRecord, Option<AllocationRecord>)>> {
        const MAX_STEPS: usize = 100_000;
        let mut out = Vec::new();
        let mut todo = std::collections::VecDeque::from([*tx]);
        let mut seen = BTreeSet::new();
        while let Some(id) = todo.pop_front() {
            if !seen.insert(id) {
                continue;
            }
            if seen.len() > MAX_STEPS {
                return Err(LedgerError::NotFound(format!(
                    "the lineage of {tx} has more than {MAX_STEPS} steps"
                )));
            }
            let key = fiscus_contract_executor::keys::lineage(&id);
            let Some((_, raw)) = self.state_at(&key, height).await? else {
                return Err(LedgerError::NotFound(format!("lineage of {id}")));
            };
            let rec =
                LineageRecord::decode(&raw[..]).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
            for s in &rec.sources {
                todo.push_back(
                    Hash32::from_slice("source", &s.source_tx_id)
                        .map_err(|_| LedgerError::Corrupt("lineage source".into()))?,
                );
            }
            let alloc = match self
                .state_at(&fiscus_contract_executor::keys::allocation(&id), height)
                .await?
            {
                Some((_, raw)) => Some(
                    AllocationRecord::decode(&raw[..])
                        .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
                ),
                None => None,
            };
            out.push((id, rec, alloc));
        }
        Ok(out)
    }
}

/// Commits `block` while the signatures of `next` (the block after it, if
/// already at hand) are verified on the blocking pool: checking and
/// committing overlap, and `next`'s commit finds its signatures done.
pub async fn commit_with_lookahead<S: StateStore>(
    ledger: &Arc<Ledger<S>>,
    block: &[u8],
    next: Option<Vec<u8>>,
) -> Result<CommitSummary> {
    let pre = next.map(|n| {
        let l = ledger.clone();
        tokio::task::spawn_blocking(move || l.preverify(&n, l.cfg.threads))
    });
    let out = ledger.commit_block(block).await;
    if let Some(p) = pre {
        // A failed look-ahead only means the next commit verifies for itself.
        let _ = p.await;
    }
    out
}

/// Replays one stored block for [`crate::verify`]: the same checks and
/// execution as a commit, against in-memory state, in this process.
pub(crate) fn replay(
    cfg: &LedgerConfig,
    head: &Head,
    bytes: &[u8],
    state: &KeyValues,
    seen: &Seen,
) -> Result<Processed> {
    let raw = state
        .get(fiscus_contract_executor::keys::CONFIG)
        .cloned()
        .flatten()
        .ok_or(LedgerError::NoGenesis)?;
    let chain = ChainState::from_raw(raw)?;
    let checked = check(
        cfg,
        &chain,
        head,
        CheckedBlock::decode(bytes, &cfg.limits)?,
        None,
    )?;
    let reads: KeyValues = checked
        .keys_to_read()
        .into_iter()
        .map(|k| {
            let v = state.get(&k).cloned().flatten();
            (k, v)
        })
        .collect();
    let mut plan = plan(checked, seen);
    let (receipts, writes) = run_local(&mut plan, &chain, &reads, cfg.threads);
    Ok(assemble(head, plan, receipts, writes))
}

/// History rows (`h/<key>/<height>` → tag ‖ value) as (height, value or None if deleted).
fn decode_history(
    prefix: &[u8],
    rows: fiscus_common::store::Entries,
) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
    rows.into_iter()
        .map(|(k, v)| {
            let h = std::str::from_utf8(&k[prefix.len()..])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| LedgerError::Corrupt("history key".into()))?;
            let value = match v.value.split_first() {
                Some((1, rest)) => Some(rest.to_vec()),
                _ => None,
            };
            Ok((h, value))
        })
        .collect()
}
