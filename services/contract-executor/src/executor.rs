//! Runs a block's transactions: in waves of transactions whose declared key
//! sets do not conflict, each wave in parallel, with results merged in block
//! order. A property test shows this equals running them one by one.

use crate::calendar::Calendar;
use crate::context::{Ctx, Declared};
use crate::governance;
use crate::orgs::Orgs;
use crate::rejection::Rejection;
use crate::transfer;
use crate::view::View;
use fiscus_common::codes;
use fiscus_proto::hash::TxId;
use fiscus_proto::pb::governance::GovernanceCall;
use fiscus_proto::pb::transfer::TransferCall;
use fiscus_proto::pb::types::{ContractEvent, TxStatus};
use std::collections::{BTreeMap, BTreeSet};

/// Key → value (None: absent / deleted).
pub type KeyValues = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// One transaction as the executor sees it.
#[derive(Debug, Clone)]
pub struct TxCtx {
    pub tx_id: TxId,
    /// Orgs of the certificates that signed it (checked by the ledger before execution).
    pub signer_orgs: BTreeSet<String>,
    /// The decoded call, or why it could not be decoded.
    pub call: Result<Call, Rejection>,
}

/// A call of one of the contracts.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Transfer(TransferCall),
    Governance(GovernanceCall),
}

impl Call {
    /// The keys the call reads and may write, from its args alone.
    pub fn declared_keys(&self, tx: &TxId) -> Result<Declared, Rejection> {
        match self {
            Call::Transfer(c) => transfer::declared_keys(c, tx),
            Call::Governance(c) => governance::declared_keys(c, tx),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BlockInput<'a> {
    /// The block number: governance changes take effect from the next one.
    pub height: u64,
    pub timestamp_ms: i64,
    pub orgs: &'a Orgs,
    /// Budget approvals, holidays and deadline policy from `gov/config`.
    pub calendar: &'a Calendar,
    pub txs: Vec<TxCtx>,
}

/// The outcome of one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxResult {
    pub tx_id: TxId,
    pub status: TxStatus,
    pub code: &'static str,
    pub reason: String,
    /// What it wrote, in key order; empty when rejected.
    pub writes: KeyValues,
    pub events: Vec<ContractEvent>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockOutput {
    pub results: Vec<TxResult>,
    /// The block's write set: the last write of each key, in key order.
    pub writes: KeyValues,
    /// Keys some transaction needed that `reads` did not carry (an account's
    /// lots beyond those read, ADR 0006). When not empty, `results` and
    /// `writes` are empty: read these (see [`lot_reads`]) and execute again.
    pub need: BTreeSet<Vec<u8>>,
}

/// The keys every transaction of `txs` declares, for the ledger to read.
pub fn declared_reads<'a>(txs: impl IntoIterator<Item = &'a TxCtx>) -> BTreeSet<Vec<u8>> {
    txs.into_iter()
        .filter_map(|t| {
            t.call
                .as_ref()
                .ok()
                .and_then(|c| c.declared_keys(&t.tx_id).ok())
        })
        .flat_map(|d| d.to_read().cloned().collect::<Vec<_>>())
        .collect()
}

/// One transaction's result, or the key it needed and `state` lacked.
fn run_one(
    tx: &TxCtx,
    declared: &Result<Declared, Rejection>,
    input: &BlockInput<'_>,
    state: &KeyValues,
) -> Result<TxResult, Vec<u8>> {
    let fail = |r: Rejection| match r.need {
        Some(key) => Err(key),
        None => Ok(TxResult {
            tx_id: tx.tx_id,
            status: r.status,
            code: r.code,
            reason: r.reason,
            writes: KeyValues::new(),
            events: Vec::new(),
        }),
    };
    let call = match &tx.call {
        Ok(c) => c,
        Err(r) => return fail(r.clone()),
    };
    let declared = match declared {
        Ok(d) => d,
        Err(r) => return fail(r.clone()),
    };
    let mut view = View::new(declared, state);
    let ctx = Ctx {
        tx_id: tx.tx_id,
        signer_orgs: &tx.signer_orgs,
        now_ms: input.timestamp_ms,
        height: input.height,
        orgs: input.orgs,
        calendar: input.calendar,
    };
    let outcome = match call {
        Call::Transfer(c) => transfer::execute(c, &ctx, &mut view),
        Call::Governance(c) => governance::execute(c, &ctx, &mut view),
    };
    match outcome {
        Ok(events) => {
            let writes = view.into_writes();
            if let Some(k) = writes.keys().find(|k| !declared.may_write(k)) {
                return fail(Rejection::new(
                    TxStatus::InvalidArgument,
                    codes::contract::UNDECLARED_KEY,
                    format!("wrote read-only key {}", String::from_utf8_lossy(k)),
                ));
            }
            Ok(TxResult {
                tx_id: tx.tx_id,
                status: TxStatus::Valid,
                code: "",
                reason: String::new(),
                writes,
                events,
            })
        }
        Err(r) => fail(r),
    }
}

fn declare(tx: &TxCtx) -> Result<Declared, Rejection> {
    match &tx.call {
        Ok(c) => c.declared_keys(&tx.tx_id),
        Err(r) => Err(r.clone()),
    }
}

/// Reference semantics: each transaction sees every earlier one's writes.
pub fn execute_sequential(input: &BlockInput<'_>, reads: &KeyValues) -> BlockOutput {
    let mut state = reads.clone();
    let mut block_writes = KeyValues::new();
    let mut results = Vec::with_capacity(input.txs.len());
    for tx in &input.txs {
        let r = match run_one(tx, &declare(tx), input, &state) {
            Ok(r) => r,
            Err(key) => return BlockOutput::needing([key].into()),
        };
        for (k, v) in &r.writes {
            state.insert(k.clone(), v.clone());
            block_writes.insert(k.clone(), v.clone());
        }
        results.push(r);
    }
    BlockOutput {
        results,
        writes: block_writes,
        need: BTreeSet::new(),
    }
}

impl BlockOutput {
    fn needing(need: BTreeSet<Vec<u8>>) -> Self {
        Self {
            results: Vec::new(),
            writes: KeyValues::new(),
            need,
        }
    }
}

/// Assigns each transaction the earliest wave after every earlier transaction
/// it conflicts with (one writes a key the other reads or writes).
fn waves(declared: &[Result<Declared, Rejection>]) -> Vec<usize> {
    let mut last_write: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut last_read: BTreeMap<&[u8], usize> = BTreeMap::new();
    let mut out = Vec::with_capacity(declared.len());
    for d in declared {
        let Ok(d) = d else {
            out.push(0);
            continue;
        };
        let mut w = 0;
        // Fresh keys are writes too: a later transaction in the block may read them.
        for k in d.reads.iter().chain(&d.writes).chain(&d.fresh) {
            if let Some(x) = last_write.get(k.as_slice()) {
                w = w.max(x + 1);
            }
        }
        for k in d.writes.iter().chain(&d.fresh) {
            if let Some(x) = last_read.get(k.as_slice()) {
                w = w.max(x + 1);
            }
        }
        for k in d.writes.iter().chain(&d.fresh) {
            let e = last_write.entry(k.as_slice()).or_insert(w);
            *e = (*e).max(w);
        }
        for k in &d.reads {
            let e = last_read.entry(k.as_slice()).or_insert(w);
            *e = (*e).max(w);
        }
        out.push(w);
    }
    out
}

/// Waves smaller than this run on the calling thread.
const MIN_PARALLEL_WAVE: usize = 32;

/// Parallel execution on up to `threads` threads; same result as [`execute_sequential`].
pub fn execute_block(input: &BlockInput<'_>, reads: &KeyValues, threads: usize) -> BlockOutput {
    let declared: Vec<Result<Declared, Rejection>> = input.txs.iter().map(declare).collect();
    let wave_of = waves(&declared);
    let n_waves = wave_of.iter().copied().max().map_or(0, |m| m + 1);
    let mut state = reads.clone();
    let mut results: Vec<Option<TxResult>> = vec![None; input.txs.len()];
    let mut by_wave: Vec<Vec<usize>> = vec![Vec::new(); n_waves];
    for (i, w) in wave_of.iter().enumerate() {
        by_wave[*w].push(i);
    }
    for members in by_wave {
        let state_ref = &state;
        let run = |ids: &[usize]| -> Vec<(usize, Result<TxResult, Vec<u8>>)> {
            ids.iter()
                .map(|i| (*i, run_one(&input.txs[*i], &declared[*i], input, state_ref)))
                .collect()
        };
        // Handing work to the pool costs more than a few transactions: small
        // waves (a hot account makes every wave one transaction long) run on
        // this thread. A panic on the pool reaches the caller, like one here.
        let outs: Vec<(usize, Result<TxResult, Vec<u8>>)> =
            if threads <= 1 || members.len() < MIN_PARALLEL_WAVE {
                run(&members)
            } else {
                use rayon::prelude::*;
                let chunk = members.len().div_ceil(threads).max(1);
                members.par_chunks(chunk).flat_map_iter(&run).collect()
            };
        // Merge in block order: within a wave no two transactions touch the same key.
        let mut outs = outs;
        outs.sort_by_key(|(i, _)| *i);
        // Every key this wave lacked, so that one more read serves them all.
        let need: BTreeSet<Vec<u8>> = outs
            .iter()
            .filter_map(|(_, r)| r.as_ref().err().cloned())
            .collect();
        if !need.is_empty() {
            return BlockOutput::needing(need);
        }
        for (i, r) in outs.into_iter().filter_map(|(i, r)| Some((i, r.ok()?))) {
            for (k, v) in &r.writes {
                state.insert(k.clone(), v.clone());
            }
            results[i] = Some(r);
        }
    }
    let results: Vec<TxResult> = results
        .into_iter()
        .zip(&input.txs)
        .map(|(r, tx)| {
            r.unwrap_or_else(|| TxResult {
                tx_id: tx.tx_id,
                status: TxStatus::InvalidArgument,
                code: codes::contract::INTERNAL,
                reason: "the transaction was not executed".into(),
                writes: KeyValues::new(),
                events: Vec::new(),
            })
        })
        .collect();
    let mut writes = KeyValues::new();
    for r in &results {
        for (k, v) in &r.writes {
            writes.insert(k.clone(), v.clone());
        }
    }
    BlockOutput {
        results,
        writes,
        need: BTreeSet::new(),
    }
}

/// Closed lots read ahead at the oldest end of each account a block touches
/// (ADR 0006): a payment usually takes the oldest lot or part of it, and
/// bundles keep lots few.
pub const LOTS_READ_AT_HEAD: u64 = 2;
/// Rounds of [`lot_reads`] after which a block that still needs keys is
/// refused as corrupt state. Round r reads the oldest 2^(r+1) closed lots of
/// every account, so by round 63 every closed lot of every account is read
/// and a consistent state needs nothing more; the rounds after that read the
/// needed keys outside their accounts' ranges (absent: the payment is refused
/// as corrupt state).
pub const MAX_READ_ROUNDS: u32 = 66;

/// How many of an account's oldest closed lots round `round` covers: 2, 4,
/// 8, … (all of them from round 63 on).
fn head_window(round: u32) -> u64 {
    if round >= 63 {
        u64::MAX
    } else {
        LOTS_READ_AT_HEAD << round
    }
}

/// The closed lots to read besides the declared keys (ADR 0006), given what
/// has been read so far (`reads`, which holds the declared keys) and what
/// the execution of round − 1 lacked (`need`): the oldest 2^(round+1)
/// closed lots of every account read (the window doubles for all of them
/// each round, so a block whose transactions need many lots, in one account
/// or in many accounts one wave after another, is read in few rounds), and
/// the needed keys themselves. Only keys not read yet. Pure, so every member
/// reads the same.
pub fn lot_reads(reads: &KeyValues, need: &BTreeSet<Vec<u8>>, round: u32) -> BTreeSet<Vec<u8>> {
    use fiscus_proto::pb::state::Account;
    use prost::Message;
    let mut out = BTreeSet::new();
    let window = head_window(round);
    for (k, v) in reads.iter() {
        let Some(prefix) = crate::keys::lot_prefix_of(k) else {
            continue;
        };
        let Some(a) = v.as_deref().and_then(|raw| Account::decode(raw).ok()) else {
            continue;
        };
        let end = a.lot_tail.min(a.lot_head.saturating_add(window));
        for seq in a.lot_head..end {
            let key = crate::keys::lot_at(&prefix, seq);
            if !reads.contains_key(&key) {
                out.insert(key);
            }
        }
    }
    // A needed key outside its account's closed range (corrupt state) is
    // read too: it reads as absent, and the payment is refused.
    out.extend(need.iter().filter(|k| !reads.contains_key(*k)).cloned());
    out
}

/// [`execute_block`] with the reads it needs: the declared keys and the lots
/// of [`lot_reads`], round after round, from `read` (state before the
/// block). For callers that hold state in memory (tests, a replay); the
/// ledger runs the same rounds against its store. Errors with the keys still
/// lacking after [`MAX_READ_ROUNDS`].
pub fn execute_block_reading(
    input: &BlockInput<'_>,
    read: impl Fn(&[u8]) -> Option<Vec<u8>>,
    threads: usize,
) -> Result<BlockOutput, BTreeSet<Vec<u8>>> {
    let mut reads: KeyValues = declared_reads(&input.txs)
        .into_iter()
        .map(|k| {
            let v = read(&k);
            (k, v)
        })
        .collect();
    let mut need = BTreeSet::new();
    for round in 0..=MAX_READ_ROUNDS {
        for k in lot_reads(&reads, &need, round) {
            let v = read(&k);
            reads.insert(k, v);
        }
        let out = execute_block(input, &reads, threads);
        if out.need.is_empty() {
            return Ok(out);
        }
        need = out.need;
    }
    Err(need)
}
