//! Step 1 of a commit: the block against the head and every transaction's
//! signatures against the certificates in force at its height, batch-verified
//! on the worker pool (ADR 0002), with the look-ahead cache that lets a block's
//! signatures be checked while the block before it commits.

use super::{ChainState, Head, Ledger, LedgerConfig};
use crate::error::{LedgerError, Result};
use fiscus_common::certs::CertStatus;
use fiscus_common::codes;
use fiscus_common::store::StateStore;
use fiscus_contract_executor::executor::declared_reads;
use fiscus_contract_executor::service::call_of;
use fiscus_contract_executor::{Rejection, TxCtx};
use fiscus_proto::block::CheckedBlock;
use fiscus_proto::hash::{Hash32, TxId};
use fiscus_proto::pb::types::TxStatus;
use fiscus_proto::sign::{SigCheck, verify_batch};
use std::collections::BTreeSet;
use std::sync::Mutex;

/// A block checked against the head, before replay checks and execution.
pub(super) struct Checked {
    pub(super) block: CheckedBlock,
    /// Per tx: the executor input, or an early refusal.
    pub(super) txs: Vec<Result<TxCtx, Rejection>>,
}

pub(super) fn refusal(
    status: TxStatus,
    code: &'static str,
    reason: impl Into<String>,
) -> Rejection {
    Rejection::new(status, code, reason)
}

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

/// Checks the block against the head and every transaction's envelope.
/// Pure: the same inputs give the same answer on every member.
pub(super) fn check(
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
    match chain.status(&cfg.certs, &block.orderer_signature.cert_id, &[], n) {
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
    // Each signature's certificate status at this height, on file or carried
    // by the signature; the keys checked below borrow from it.
    let statuses: Vec<Vec<CertStatus>> = block
        .txs
        .iter()
        .map(|tx| {
            tx.signatures
                .iter()
                .map(|s| chain.status(&cfg.certs, &s.cert_id, &s.certificate, n))
                .collect()
        })
        .collect();
    let mut to_verify: Vec<SigCheck<'_>> = Vec::new();
    let plans: Vec<std::result::Result<Vec<SigPlan>, Rejection>> = block
        .txs
        .iter()
        .zip(&statuses)
        .map(|(tx, statuses)| {
            if tx.payload.consortium_id != cfg.consortium_id {
                return Err(refusal(
                    TxStatus::WrongConsortium,
                    codes::tx::WRONG_CONSORTIUM,
                    "another consortium's transaction",
                ));
            }
            Ok(tx
                .signatures
                .iter()
                .zip(statuses)
                .map(|(s, status)| match status {
                    CertStatus::Unknown => SigPlan::Refused(refusal(
                        TxStatus::UnknownCertificate,
                        codes::tx::UNKNOWN_CERTIFICATE,
                        format!("signer {} is unknown", s.cert_id),
                    )),
                    CertStatus::Revoked => SigPlan::Refused(refusal(
                        TxStatus::RevokedCertificate,
                        codes::tx::REVOKED_CERTIFICATE,
                        format!("signer {} is revoked at height {n}", s.cert_id),
                    )),
                    CertStatus::Valid { org, public_key } => {
                        let cached = cache.is_some_and(|c| {
                            c.take(&SigCache::key(public_key, &tx.tx_id, &s.signature))
                        });
                        if cached {
                            SigPlan::Verified(org.clone())
                        } else {
                            to_verify.push(SigCheck {
                                public_key: &public_key[..],
                                message: &tx.payload_bytes,
                                signature: &s.signature,
                            });
                            SigPlan::Verify(org.clone(), to_verify.len() - 1)
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
                            codes::tx::BAD_SIGNATURE,
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
    pub(super) fn keys_to_read(&self) -> BTreeSet<Vec<u8>> {
        let mut keys = declared_reads(self.txs.iter().filter_map(|t| t.as_ref().ok()));
        keys.insert(fiscus_contract_executor::keys::CONFIG.to_vec());
        keys
    }
}

impl<S: StateStore> Ledger<S> {
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
}
