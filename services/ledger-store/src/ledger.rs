//! Validate, execute and commit blocks; serve queries and proofs.

use crate::certs::{CertStatus, Certs};
use crate::error::{LedgerError, Result};
use crate::keys;
use crate::write_set::next_state_hash;
use fiscus_common::store::{StateStore, WriteBatch};
use fiscus_contract_executor::executor::{KeyValues, declared_reads};
use fiscus_contract_executor::{BlockInput, Orgs, Rejection, TxCtx, execute_block};
use fiscus_proto::DecodeLimits;
use fiscus_proto::block::CheckedBlock;
use fiscus_proto::hash::{Hash32, TxId};
use fiscus_proto::merkle;
use fiscus_proto::pb::state::LineageRecord;
use fiscus_proto::pb::types::{
    Attestation, ContractEvent, Receipt, SignedAttestation, StateWrite, TxStatus, tx_payload::Call,
};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};

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
    pub orgs: Orgs,
    /// Orderer and signer certificates.
    pub certs: Certs,
    /// The member node's key and certificate id, for attestations.
    pub key: SigningKey,
    pub cert_id: Hash32,
    /// Threads for parallel execution.
    pub threads: usize,
}

/// What committing a block produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSummary {
    pub head: Head,
    pub valid: usize,
    pub invalid: usize,
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
}

fn refusal(status: TxStatus, code: &'static str, reason: impl Into<String>) -> Rejection {
    Rejection::new(status, code, reason)
}

/// Checks the block against the head and every transaction's envelope.
/// Pure: the same inputs give the same answer on every member.
fn check(cfg: &LedgerConfig, head: &Head, bytes: &[u8]) -> Result<Checked> {
    let block = CheckedBlock::decode(bytes, &cfg.limits)?;
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
    match cfg.certs.status(&block.orderer_signature.cert_id, n) {
        CertStatus::Valid { public_key, .. }
            if fiscus_proto::sign::verify(
                &public_key,
                &block.header_bytes,
                &block.orderer_signature.signature,
            )
            .is_ok() => {}
        _ => return Err(LedgerError::BadOrdererSignature(n)),
    }
    let check_tx = |tx: &fiscus_proto::envelope::CheckedTx| -> Result<TxCtx, Rejection> {
        if tx.payload.consortium_id != cfg.consortium_id {
            return Err(refusal(
                TxStatus::WrongConsortium,
                "tx.wrong_consortium",
                "another consortium's transaction",
            ));
        }
        let mut orgs = BTreeSet::new();
        for s in &tx.signatures {
            match cfg.certs.status(&s.cert_id, n) {
                CertStatus::Unknown => {
                    return Err(refusal(
                        TxStatus::UnknownCertificate,
                        "tx.unknown_certificate",
                        format!("signer {} is unknown", s.cert_id),
                    ));
                }
                CertStatus::Revoked => {
                    return Err(refusal(
                        TxStatus::RevokedCertificate,
                        "tx.revoked_certificate",
                        format!("signer {} is revoked at height {n}", s.cert_id),
                    ));
                }
                // Single verify_strict on the consensus path (ADR 0002).
                CertStatus::Valid { org, public_key } => {
                    if fiscus_proto::sign::verify(&public_key, &tx.payload_bytes, &s.signature)
                        .is_err()
                    {
                        return Err(refusal(
                            TxStatus::BadSignature,
                            "tx.bad_signature",
                            "a signature does not verify",
                        ));
                    }
                    orgs.insert(org);
                }
            }
        }
        let call = match &tx.payload.call {
            Some(Call::Transfer(t)) => Ok(t.clone()),
            Some(Call::Governance(_)) => Err(refusal(
                TxStatus::InvalidArgument,
                "contract.unsupported",
                "the governance contract is not built yet",
            )),
            None => Err(refusal(TxStatus::BadEncoding, "tx.bad_encoding", "no call")),
        };
        Ok(TxCtx {
            tx_id: tx.tx_id,
            signer_orgs: orgs,
            call,
        })
    };
    // Signature checks dominate: spread them over the configured threads.
    // Each result lands at its own index, so the order is the block's.
    let chunk = block.txs.len().div_ceil(cfg.threads.max(1)).max(1);
    let txs: Vec<Result<TxCtx, Rejection>> = std::thread::scope(|s| {
        let handles: Vec<_> = block
            .txs
            .chunks(chunk)
            .map(|part| s.spawn(|| part.iter().map(check_tx).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    if txs.len() != block.txs.len() {
        return Err(LedgerError::Corrupt(
            "a signature-check thread failed".into(),
        ));
    }
    Ok(Checked { block, txs })
}

impl Checked {
    /// The contract keys the executable transactions declare: what to read before execution.
    fn keys_to_read(&self) -> BTreeSet<Vec<u8>> {
        let ctxs: Vec<TxCtx> = self
            .txs
            .iter()
            .filter_map(|t| t.as_ref().ok().cloned())
            .collect();
        declared_reads(&ctxs)
    }
}

/// Replay refusals, execution, receipts and commitments. Pure given the lookups.
fn finish(
    cfg: &LedgerConfig,
    head: &Head,
    checked: Checked,
    replayed: &BTreeSet<TxId>,
    reads: &KeyValues,
) -> Processed {
    let n = checked.block.number;
    let mut seen = BTreeSet::new();
    let mut early: BTreeMap<usize, Rejection> = BTreeMap::new();
    let mut run = Vec::new();
    let mut run_idx = Vec::new();
    let mut indexed = Vec::new();
    for (i, t) in checked.txs.into_iter().enumerate() {
        let id = checked.block.txs[i].tx_id;
        match t {
            Err(r)
                if r.status == TxStatus::BadSignature
                    || r.status == TxStatus::UnknownCertificate
                    || r.status == TxStatus::WrongConsortium =>
            {
                // Not indexed: a forger must not be able to burn a genuine tx id.
                early.insert(i, r);
            }
            _ if replayed.contains(&id) || !seen.insert(id) => {
                early.insert(
                    i,
                    refusal(
                        TxStatus::Duplicate,
                        "tx.duplicate",
                        format!("tx {id} is already in the chain"),
                    ),
                );
            }
            Err(r) => {
                indexed.push((id, i as u32));
                early.insert(i, r);
            }
            Ok(ctx) => {
                indexed.push((id, i as u32));
                run_idx.push(i);
                run.push(ctx);
            }
        }
    }
    let input = BlockInput {
        timestamp_ms: checked.block.timestamp_ms,
        orgs: &cfg.orgs,
        txs: run,
    };
    let out = execute_block(&input, reads, cfg.threads);
    let mut by_index: BTreeMap<usize, Receipt> = BTreeMap::new();
    for (r, i) in out.results.into_iter().zip(run_idx) {
        by_index.insert(
            i,
            Receipt {
                tx_id: r.tx_id.to_vec(),
                block_number: n,
                tx_index: i as u32,
                status: r.status as i32,
                reason: if r.code.is_empty() {
                    String::new()
                } else {
                    format!("{}: {}", r.code, r.reason)
                },
                writes: r
                    .writes
                    .iter()
                    .map(|(k, v)| StateWrite {
                        key: k.clone(),
                        value: Vec::new(),
                        deleted: v.is_none(),
                        value_hash: v
                            .as_ref()
                            .map(|v| fiscus_proto::hash::sha256(v).to_vec())
                            .unwrap_or_default(),
                    })
                    .collect(),
                events: r.events,
            },
        );
    }
    for (i, r) in early {
        by_index.insert(
            i,
            Receipt {
                tx_id: checked.block.txs[i].tx_id.to_vec(),
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
        hash: checked.block.hash,
        state_hash: next_state_hash(&head.state_hash, &out.writes),
        receipts_root: merkle::root(&encoded),
        timestamp_ms: checked.block.timestamp_ms,
    };
    Processed {
        head,
        receipts,
        writes: out.writes,
        indexed,
    }
}

/// A member's ledger on a `StateStore`.
#[derive(Debug)]
pub struct Ledger<S: StateStore> {
    store: S,
    cfg: LedgerConfig,
}

impl<S: StateStore> Ledger<S> {
    pub fn new(store: S, cfg: LedgerConfig) -> Self {
        Self { store, cfg }
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
    pub(crate) async fn process(&self, head: &Head, bytes: &[u8]) -> Result<Processed> {
        let checked = check(&self.cfg, head, bytes)?;
        let mut replayed = BTreeSet::new();
        for t in &checked.block.txs {
            if self.store.get(&keys::tx_index(&t.tx_id)).await?.is_some() {
                replayed.insert(t.tx_id);
            }
        }
        let mut reads = KeyValues::new();
        for k in checked.keys_to_read() {
            let v = self.store.get(&keys::state(&k)).await?.map(|v| v.value);
            reads.insert(k, v);
        }
        Ok(finish(&self.cfg, head, checked, &replayed, &reads))
    }

    /// Validates, executes and commits one block atomically. A refused block changes nothing.
    pub async fn commit_block(&self, bytes: &[u8]) -> Result<CommitSummary> {
        let head = self.head().await?;
        let head_version = self.store.get(keys::HEAD).await?.map(|v| v.version);
        let p = self.process(&head, bytes).await?;
        let n = p.head.height;
        let mut batch = WriteBatch::new()
            .expect_version(keys::HEAD, head_version)
            .put(keys::block(n), bytes.to_vec())
            .put(keys::block_meta(n), p.head.encode())
            .put(keys::HEAD, p.head.encode());
        for (k, v) in &p.writes {
            batch = match v {
                Some(v) => batch
                    .put(keys::state(k), v.clone())
                    .put(keys::history(k, n), [&[1u8][..], v].concat()),
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
        let list = fiscus_proto::pb::ledger::ExecuteBlockResponse {
            receipts: p.receipts.clone(),
        };
        batch = batch.put(keys::receipts(n), list.encode_to_vec());
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
        self.store.commit(batch).await?;
        let valid = p
            .receipts
            .iter()
            .filter(|r| r.status == TxStatus::Valid as i32)
            .count();
        Ok(CommitSummary {
            head: p.head,
            valid,
            invalid: p.receipts.len() - valid,
        })
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

    /// The stored block bytes at `n`.
    pub async fn block(&self, n: u64) -> Result<Vec<u8>> {
        Ok(self
            .store
            .get(&keys::block(n))
            .await?
            .ok_or_else(|| LedgerError::NotFound(format!("block {n}")))?
            .value)
    }

    /// A contract state value.
    pub async fn state(&self, contract_key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .store
            .get(&keys::state(contract_key))
            .await?
            .map(|v| v.value))
    }

    /// (height, value or None if deleted) for every block that wrote `contract_key`.
    pub async fn history(
        &self,
        contract_key: &[u8],
        limit: usize,
    ) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        let prefix = keys::history_prefix(contract_key);
        let rows = self.store.scan_prefix(&prefix, limit).await?;
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

    /// A receipt with its inclusion proof to the block's `receipts_root`, the
    /// block header and this member's attestation: checkable offline.
    pub async fn receipt_proof(&self, tx: &TxId) -> Result<fiscus_proto::pb::types::ReceiptProof> {
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
        let att = self
            .store
            .get(&keys::attestation(n))
            .await?
            .map(|v| v.value);
        Ok(fiscus_proto::pb::types::ReceiptProof {
            receipt: encoded[i as usize].clone(),
            proof: Some(fiscus_proto::pb::types::InclusionProof {
                leaf_index: proof.leaf_index,
                tree_size: proof.tree_size,
                path: proof.path.iter().map(|h| h.to_vec()).collect(),
            }),
            block_header: block.header,
            attestations: att
                .map(|a| SignedAttestation::decode(&a[..]))
                .transpose()
                .map_err(|e| LedgerError::Corrupt(e.to_string()))?
                .into_iter()
                .collect(),
        })
    }

    /// The lineage of a disbursement or allocation back to its appropriations,
    /// breadth first, each record once.
    pub async fn trace(&self, tx: &TxId) -> Result<Vec<(TxId, LineageRecord)>> {
        let mut out = Vec::new();
        let mut todo = vec![*tx];
        let mut seen = BTreeSet::new();
        while let Some(id) = todo.pop() {
            if !seen.insert(id) || seen.len() > 100_000 {
                continue;
            }
            let key = fiscus_contract_executor::keys::lineage(&id);
            let Some(raw) = self.state(&key).await? else {
                return Err(LedgerError::NotFound(format!("lineage of {id}")));
            };
            let rec =
                LineageRecord::decode(&raw[..]).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
            for s in rec.sources.iter().rev() {
                todo.push(
                    Hash32::from_slice("source", &s.source_tx_id)
                        .map_err(|_| LedgerError::Corrupt("lineage source".into()))?,
                );
            }
            out.push((id, rec));
        }
        Ok(out)
    }
}

/// Replays one stored block for [`crate::verify`]: the same checks and
/// execution as a commit, against in-memory state.
pub(crate) fn replay(
    cfg: &LedgerConfig,
    head: &Head,
    bytes: &[u8],
    state: &KeyValues,
    indexed: &BTreeSet<TxId>,
) -> Result<Processed> {
    let checked = check(cfg, head, bytes)?;
    let replayed: BTreeSet<TxId> = checked
        .block
        .txs
        .iter()
        .map(|t| t.tx_id)
        .filter(|id| indexed.contains(id))
        .collect();
    let reads: KeyValues = checked
        .keys_to_read()
        .into_iter()
        .map(|k| {
            let v = state.get(&k).cloned().flatten();
            (k, v)
        })
        .collect();
    Ok(finish(cfg, head, checked, &replayed, &reads))
}
