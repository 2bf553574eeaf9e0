//! Step 2 of a commit: which transactions run (replay refusals against the
//! chain's tx and nonce indexes, `crate::seen`), the state they read, their
//! execution (in this process or by a remote contract-executor) and the
//! block's receipts and commitments. Also the offline replay of a stored block.

use super::validate::{Checked, check, refusal};
use super::{ChainState, Head, Ledger, LedgerConfig, Phase};
use crate::error::{LedgerError, Result};
use crate::exec::Executor;
use crate::keys;
use crate::seen::{self, NonceKey, Repeat, Seen};
use crate::write_set::next_state_hash;
use fiscus_common::codes;
use fiscus_common::store::StateStore;
use fiscus_contract_executor::executor::KeyValues;
use fiscus_contract_executor::executor::MAX_READ_ROUNDS;
use fiscus_contract_executor::service::receipt_of;
use fiscus_contract_executor::{BlockInput, Rejection, TxCtx, execute_block, lot_reads};
use fiscus_proto::block::CheckedBlock;
use fiscus_proto::hash::{Hash32, TxId};
use fiscus_proto::merkle;
use fiscus_proto::pb::types::{ContractEvent, Receipt, TxStatus};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The full outcome of processing one block, before it is written.
pub(crate) struct Processed {
    pub head: Head,
    pub receipts: Vec<Receipt>,
    /// The receipts as stored (an `ExecuteBlockResponse` with field 1 only),
    /// built from the same encodings the receipts root hashes: each receipt
    /// is encoded once.
    pub receipts_stored: Vec<u8>,
    pub writes: KeyValues,
    /// Tx ids to index (those whose signatures were valid and are not replays).
    pub indexed: Vec<(TxId, u32)>,
    /// (creator, nonce) pairs first used in this block, with their txs.
    pub nonces: Vec<(NonceKey, TxId)>,
    /// The previous (height, value) of keys that existed before this block.
    pub old: BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
}

/// What earlier blocks of one `commit_blocks` call wrote, not yet in the store.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    /// contract key → (writing height, value), or None if deleted.
    state: BTreeMap<Vec<u8>, Option<(u64, Vec<u8>)>>,
    seen: Seen,
}

impl Overlay {
    pub(super) fn absorb(&mut self, p: &Processed) {
        let n = p.head.height;
        for (k, v) in &p.writes {
            self.state.insert(k.clone(), v.clone().map(|v| (n, v)));
        }
        self.seen.absorb(&p.indexed, &p.nonces);
    }
}

/// What to execute and what was refused before execution.
pub(super) struct Plan {
    n: u64,
    timestamp_ms: i64,
    early: BTreeMap<usize, Rejection>,
    run: Vec<TxCtx>,
    run_idx: Vec<usize>,
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
                        codes::tx::DUPLICATE,
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
                        codes::tx::NONCE_REUSED,
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

/// What an execution of a block came to.
pub(crate) enum Executed {
    /// Receipts in `run` order and the block's write set.
    Done(Vec<Receipt>, KeyValues),
    /// The keys it lacked (an account's lots beyond those read, ADR 0006):
    /// read them (`lot_reads`) and execute again.
    Need(BTreeSet<Vec<u8>>),
}

/// Executes the plan in this process.
fn run_local(plan: &mut Plan, chain: &ChainState, reads: &KeyValues, threads: usize) -> Executed {
    let input = BlockInput {
        height: plan.n,
        timestamp_ms: plan.timestamp_ms,
        orgs: &chain.orgs,
        calendar: &chain.calendar,
        txs: std::mem::take(&mut plan.run),
    };
    let out = execute_block(&input, reads, threads);
    // Kept for another round.
    plan.run = input.txs;
    if !out.need.is_empty() {
        return Executed::Need(out.need);
    }
    let receipts = out
        .results
        .iter()
        .zip(&plan.run_idx)
        .map(|(r, i)| receipt_of(r, plan.n, *i as u32))
        .collect();
    Executed::Done(receipts, out.writes)
}

/// The error for a block whose execution still lacks keys after every round.
fn still_lacking(n: u64, need: &BTreeSet<Vec<u8>>) -> LedgerError {
    LedgerError::Corrupt(format!(
        "block {n} still lacks {} keys (first {}) after {MAX_READ_ROUNDS} rounds of reads",
        need.len(),
        need.first()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default()
    ))
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
    let mut receipts_stored =
        Vec::with_capacity(encoded.iter().map(|e| e.len() + 4).sum::<usize>());
    for e in &encoded {
        // Field 1, length-delimited: what `encode_repeated(1, …)` writes.
        prost::encoding::encode_key(
            1,
            prost::encoding::WireType::LengthDelimited,
            &mut receipts_stored,
        );
        prost::encoding::encode_varint(e.len() as u64, &mut receipts_stored);
        receipts_stored.extend_from_slice(e);
    }
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
        receipts_stored,
        writes,
        indexed: plan.indexed,
        nonces: plan.nonces,
        old: BTreeMap::new(),
    }
}

impl<S: StateStore> Ledger<S> {
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
        let number = head.height + 1;
        let checked = tracing::info_span!("ledger_store.validate", fiscus.block = number)
            .in_scope(|| check(&self.cfg, &chain, head, block, Some(&self.sigs)))?;
        self.phases.add(Phase::Check, t);
        let span = tracing::info_span!("ledger_store.execute", fiscus.block = number);
        tracing::Instrument::instrument(
            self.read_and_execute(head, bytes, checked, overlay, chain),
            span,
        )
        .await
    }

    /// Reads what a validated block's transactions touch (from `overlay`, the
    /// run's earlier blocks, then the store) and executes them.
    async fn read_and_execute(
        &self,
        head: &Head,
        bytes: &[u8],
        checked: Checked,
        overlay: &Overlay,
        chain: Arc<ChainState>,
    ) -> Result<Processed> {
        let t = std::time::Instant::now();
        let seen = self.seen_of(&checked.block, &overlay.seen).await?;
        let mut reads = KeyValues::new();
        let mut old = BTreeMap::new();
        self.read_into(checked.keys_to_read(), overlay, &mut reads, &mut old)
            .await?;
        let lots = lot_reads(&reads, &BTreeSet::new(), 0);
        self.read_into(lots, overlay, &mut reads, &mut old).await?;
        self.phases.add(Phase::Read, t);
        let mut plan = plan(checked, &seen);
        let mut round = 0;
        let (receipts, writes) = loop {
            let t = std::time::Instant::now();
            let executed = match &self.executor {
                Executor::Local => run_local(&mut plan, &chain, &reads, self.cfg.threads),
                Executor::Remote(client) => {
                    client
                        .execute(bytes, &plan.run, &plan.run_idx, &reads)
                        .await?
                }
            };
            self.phases.add(Phase::Execute, t);
            let need = match executed {
                Executed::Done(receipts, writes) => break (receipts, writes),
                Executed::Need(need) => need,
            };
            round += 1;
            if round > MAX_READ_ROUNDS {
                return Err(still_lacking(plan.n, &need));
            }
            tracing::debug!(
                block = plan.n,
                round,
                keys = need.len(),
                "reading more lots"
            );
            let t = std::time::Instant::now();
            let more = lot_reads(&reads, &need, round);
            self.read_into(more, overlay, &mut reads, &mut old).await?;
            self.phases.add(Phase::Read, t);
        };
        let t = std::time::Instant::now();
        let mut out = assemble(head, plan, receipts, writes);
        out.old = old;
        self.phases.add(Phase::Execute, t);
        Ok(out)
    }

    /// Reads `keys` as of the start of the block (from `overlay`, the run's
    /// earlier blocks, then the store) into `reads`, and the previous
    /// (height, value) of those that exist into `old`.
    async fn read_into(
        &self,
        keys: BTreeSet<Vec<u8>>,
        overlay: &Overlay,
        reads: &mut KeyValues,
        old: &mut BTreeMap<Vec<u8>, (u64, Vec<u8>)>,
    ) -> Result<()> {
        for k in keys {
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
        Ok(())
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
    let read = |keys: BTreeSet<Vec<u8>>, reads: &mut KeyValues| {
        for k in keys {
            let v = state.get(&k).cloned().flatten();
            reads.insert(k, v);
        }
    };
    let mut reads = KeyValues::new();
    read(checked.keys_to_read(), &mut reads);
    read(lot_reads(&reads, &BTreeSet::new(), 0), &mut reads);
    let mut plan = plan(checked, seen);
    // The same rounds of reads as a commit (`read_and_execute`).
    let mut round = 0;
    loop {
        let need = match run_local(&mut plan, &chain, &reads, cfg.threads) {
            Executed::Done(receipts, writes) => return Ok(assemble(head, plan, receipts, writes)),
            Executed::Need(need) => need,
        };
        round += 1;
        if round > MAX_READ_ROUNDS {
            return Err(still_lacking(plan.n, &need));
        }
        read(lot_reads(&reads, &need, round), &mut reads);
    }
}
