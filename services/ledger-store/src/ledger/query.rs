//! Step 4: what the ledger answers: blocks, receipts, attestations, state
//! now and at a height, per-key history, lineage traces and receipt proofs.

use super::Ledger;
use crate::error::{LedgerError, Result};
use crate::keys;
use fiscus_common::store::StateStore;
use fiscus_proto::hash::{Hash32, TxId};
use fiscus_proto::merkle;
use fiscus_proto::pb::state::{AllocationRecord, LineageRecord};
use fiscus_proto::pb::types::{Receipt, SignedAttestation};
use prost::Message;
use std::collections::BTreeSet;

impl<S: StateStore> Ledger<S> {
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

    /// The agreeing majorities kept for `from..=to`, ascending by height;
    /// heights without one are skipped.
    pub async fn final_attestations(&self, from: u64, to: u64) -> Result<Vec<SignedAttestation>> {
        let mut out = Vec::new();
        for h in from..=to {
            if let Some(v) = self.store.get(&keys::final_attestations(h)).await? {
                out.extend(
                    fiscus_proto::pb::gossip::AttestationBatch::decode(&v.value[..])
                        .map_err(|e| LedgerError::Corrupt(e.to_string()))?
                        .attestations,
                );
            }
        }
        Ok(out)
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

    /// Like [`Ledger::history`], leaving out blocks above `height`: the
    /// next page of a long history starts below the last block returned.
    pub async fn history_until(
        &self,
        contract_key: &[u8],
        height: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        if let Some((h, v)) = self.state_record(contract_key).await?
            && h <= height
        {
            out.push((h, Some(v)));
        }
        if out.len() == limit {
            // (The store returns at least one entry, whatever the limit.)
            return Ok(out);
        }
        // Archived values, newest first, from the block below the current one.
        let prefix = keys::history_prefix(contract_key);
        let end = keys::history(contract_key, height.saturating_add(1));
        let rows = self
            .store
            .range_rev(&prefix, &end, limit - out.len())
            .await?;
        out.extend(decode_history(&prefix, rows)?);
        Ok(out)
    }

    /// (height, value or None if deleted) for every block that wrote
    /// `contract_key`, newest first, at most `limit`.
    pub async fn history(
        &self,
        contract_key: &[u8],
        limit: usize,
    ) -> Result<Vec<(u64, Option<Vec<u8>>)>> {
        self.history_until(contract_key, u64::MAX - 1, limit).await
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
    /// the next page starts, if there is one. It lists today's keys, each
    /// read at `height`: exact for every key but an account's closed lots
    /// (ADR 0006), the only keys a contract deletes; a lot spent after
    /// `height` is not listed, so read lots by key (`state_at`) from the
    /// account's `lot_head..lot_tail` at that height.
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
