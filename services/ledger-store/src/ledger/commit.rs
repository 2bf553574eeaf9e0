//! Step 3 of a commit: the processed blocks of a run go into one atomic,
//! fsynced batch with this member's signed attestation of each; and the
//! agreeing majority's attestations, once gossip reports them (finality).

use super::execute::{Overlay, Processed};
use super::{CommitSummary, Ledger, Phase};
use crate::error::{LedgerError, Result};
use crate::keys;
use fiscus_common::store::{StateStore, WriteBatch};
use fiscus_proto::block::CheckedBlock;
use fiscus_proto::pb::types::{Attestation, SignedAttestation, TxStatus};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The outcome of a one-block commit run: its summary, or why it was refused.
fn only_block((mut done, err): (Vec<CommitSummary>, Option<LedgerError>)) -> Result<CommitSummary> {
    match (done.pop(), err) {
        (Some(s), _) => Ok(s),
        (None, Some(e)) => Err(e),
        (None, None) => Err(LedgerError::Corrupt("no block committed".into())),
    }
}

impl<S: StateStore> Ledger<S> {
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
        let count = blocks.len();
        for (i, (bytes, block)) in blocks.into_iter().enumerate() {
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
            // Only a block after this one in the run reads what it wrote.
            if i + 1 < count {
                overlay.absorb(&p);
            }
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
        let span = tracing::info_span!(
            "ledger_store.write",
            fiscus.block = done.last().map_or(0, |s| s.head.height),
            fiscus.blocks = done.len(),
        );
        tracing::Instrument::instrument(self.store.commit(batch), span).await?;
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
        batch = batch.put(keys::receipts(n), p.receipts_stored);
        let signed = tracing::info_span!("ledger_store.attest", fiscus.block = n)
            .in_scope(|| self.attest(&p.head));
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

    /// This member's signed statement of what it computed for a block: its
    /// hash, the state hash and the receipts root after it. Gossip compares
    /// these across members (finality, `gossip-gateway`).
    fn attest(&self, head: &super::Head) -> SignedAttestation {
        let att = Attestation {
            member: self.cfg.member.clone(),
            height: head.height,
            block_hash: head.hash.to_vec(),
            state_hash: head.state_hash.to_vec(),
            receipts_root: head.receipts_root.to_vec(),
        }
        .encode_to_vec();
        SignedAttestation {
            signature: Some(fiscus_proto::pb::types::Signature {
                cert_id: self.cfg.cert_id.to_vec(),
                signature: self.cfg.key.sign(&att).to_vec(),
                // Peers that do not have this node's certificate on file (it
                // joined after them) check the one the attestation carries.
                certificate: if self.cfg.certs.key_bytes(&self.cfg.cert_id).is_some() {
                    Vec::new()
                } else {
                    self.cfg.certificate.clone()
                },
            }),
            attestation: att,
        }
    }

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
                    fiscus_proto::pb::gossip::AttestationBatch {
                        attestations,
                        ..Default::default()
                    }
                    .encode_to_vec(),
                );
            }
        }
        if !batch.is_empty() {
            self.store.commit(batch).await?;
        }
        Ok(())
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
