//! Cuts admitted envelopes into blocks: at `max_txs`, `max_bytes` or
//! `batch_timeout`, whichever comes first.
//!
//! It lives inside the Raft node actor, on its thread, so that it always sees
//! the tip the node applies and the leadership the node holds: a separate
//! actor would race the node on both.

use crate::config::Batching;
use crate::storage::Tip;
use fiscus_proto::block::BlockDraft;
use fiscus_proto::hash::{Hash32, TxId, block_hash};
use fiscus_proto::pb::types::{Block, Envelope, TraceLink};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The orderer's block-signing identity.
#[derive(Debug)]
pub struct Proposer {
    pub node_name: String,
    pub key: SigningKey,
    pub cert_id: Hash32,
}

#[derive(Debug)]
pub struct BlockCutter {
    limits: Batching,
    batch: VecDeque<(TxId, Envelope, Option<TraceLink>)>,
    batch_bytes: usize,
    oldest: Option<Instant>,
    /// The tip of the last block this leader proposed (or the committed tip).
    proposed: Tip,
    /// Raft log indices of our proposals not yet applied, with when each was
    /// proposed (for the proposal-to-commit metric only; no block reads it).
    in_flight: VecDeque<(u64, Instant)>,
}

/// A cut block, ready to propose.
#[derive(Debug)]
pub struct Cut {
    pub bytes: Vec<u8>,
    pub height: u64,
    /// How many transactions it carries.
    pub txs: usize,
    /// The (trace id, span id) of the submissions it carries, as in `Block.trace_links`.
    pub links: Vec<(Vec<u8>, Vec<u8>)>,
}

impl BlockCutter {
    pub fn new(limits: Batching, tip: Tip) -> Self {
        Self {
            limits,
            batch: VecDeque::new(),
            batch_bytes: 0,
            oldest: None,
            proposed: tip,
            in_flight: VecDeque::new(),
        }
    }

    /// Queues an admitted envelope, with the trace context of its submission
    /// when that was sampled.
    pub fn push(&mut self, id: TxId, env: Envelope, link: Option<TraceLink>) {
        self.batch_bytes += env.encoded_len();
        self.batch.push_back((id, env, link));
        self.oldest.get_or_insert_with(Instant::now);
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Admitted envelopes waiting to be cut into a block.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Takes every queued envelope back (leadership lost).
    pub fn drain(&mut self) -> Vec<TxId> {
        self.batch_bytes = 0;
        self.oldest = None;
        self.in_flight.clear();
        self.batch.drain(..).map(|(id, _, _)| id).collect()
    }

    /// Restarts proposing from `tip` (on becoming leader).
    pub fn reset(&mut self, tip: Tip) {
        self.proposed = tip;
        self.in_flight.clear();
    }

    /// Records the log index a cut block was proposed at, `at` that instant.
    pub fn proposed_at(&mut self, log_index: u64, at: Instant) {
        self.in_flight.push_back((log_index, at));
    }

    /// Log entry `log_index` was applied (as a block or skipped); `tip` is the
    /// chain now. Returns how long each of our proposals it settles took
    /// from proposal to apply, as of `now`.
    pub fn applied(&mut self, log_index: u64, tip: Tip, now: Instant) -> Vec<Duration> {
        let mut settled = Vec::new();
        while let Some((_, at)) = self.in_flight.front().filter(|(i, _)| *i <= log_index) {
            settled.push(now.saturating_duration_since(*at));
            self.in_flight.pop_front();
        }
        if self.in_flight.is_empty() {
            // Nothing of ours is pending: follow the chain, which also recovers
            // from a proposal of ours that was skipped.
            self.proposed = tip;
        }
        settled
    }

    /// Whether a block should be cut now.
    fn due(&self, now: Instant) -> bool {
        if self.batch.is_empty() || self.in_flight.len() >= self.limits.max_blocks_in_flight {
            return false;
        }
        self.batch.len() >= self.limits.max_txs
            || self.batch_bytes >= self.limits.max_bytes
            || self.oldest.is_some_and(|t| {
                now.duration_since(t) >= Duration::from_millis(self.limits.batch_timeout_ms)
            })
    }

    /// Cuts the next block if one is due. `now_ms` is the leader's clock; the
    /// header timestamp never goes backwards along the chain.
    pub fn cut(&mut self, now: Instant, now_ms: i64, proposer: &Proposer) -> Option<Cut> {
        if !self.due(now) {
            return None;
        }
        let mut txs = Vec::new();
        let mut links: Vec<TraceLink> = Vec::new();
        let mut bytes = 0;
        while let Some((_, env, _)) = self.batch.front() {
            let len = env.encoded_len();
            if !txs.is_empty()
                && (txs.len() >= self.limits.max_txs || bytes + len > self.limits.max_bytes)
            {
                break;
            }
            bytes += len;
            if let Some((_, env, link)) = self.batch.pop_front() {
                let index = txs.len() as u32;
                txs.push(env);
                // One link per submission, naming its transactions here.
                if let Some(mut link) = link {
                    match links
                        .iter()
                        .position(|l| l.trace_id == link.trace_id && l.span_id == link.span_id)
                    {
                        Some(at) => links[at].tx_indexes.push(index),
                        None if links.len() < fiscus_proto::limits::MAX_TRACE_LINKS => {
                            link.tx_indexes = vec![index];
                            links.push(link);
                        }
                        None => {}
                    }
                }
            }
        }
        self.batch_bytes -= bytes;
        self.oldest = if self.batch.is_empty() {
            None
        } else {
            Some(now)
        };
        let height = self.proposed.height + 1;
        let timestamp_ms = now_ms.max(self.proposed.timestamp_ms);
        let n = txs.len();
        let mut block: Block = BlockDraft {
            number: height,
            prev_hash: self.proposed.hash,
            timestamp_ms,
            orderer_id: &proposer.node_name,
            txs,
        }
        .seal(&proposer.key, proposer.cert_id);
        // Outside the header hash and the signature: observability only.
        block.trace_links = links;
        self.proposed = Tip {
            height,
            hash: block_hash(&block.header),
            timestamp_ms,
        };
        Some(Cut {
            bytes: block.encode_to_vec(),
            height,
            txs: n,
            links: block
                .trace_links
                .iter()
                .map(|l| (l.trace_id.clone(), l.span_id.clone()))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(n: u8) -> TraceLink {
        TraceLink {
            trace_id: vec![n; 16],
            span_id: vec![n; 8],
            tx_indexes: Vec::new(),
        }
    }

    #[test]
    fn a_block_s_trace_links_name_each_submission_s_transactions() {
        let mut cutter = BlockCutter::new(
            Batching {
                max_txs: 10,
                max_bytes: 1 << 20,
                batch_timeout_ms: 0,
                max_blocks_in_flight: 4,
            },
            Tip {
                height: 0,
                hash: Hash32([0; 32]),
                timestamp_ms: 0,
            },
        );
        // Two submissions (1 and 2) and one unsampled transaction between them.
        for (i, l) in [Some(1), None, Some(2), Some(1)].into_iter().enumerate() {
            let env = Envelope {
                payload: vec![i as u8; 8],
                ..Default::default()
            };
            cutter.push(Hash32([i as u8; 32]), env, l.map(link));
        }
        let proposer = Proposer {
            node_name: "orderer-1".into(),
            key: SigningKey::from_seed(&[7; 32]),
            cert_id: Hash32([9; 32]),
        };
        let cut = cutter.cut(Instant::now(), 0, &proposer).unwrap();
        assert_eq!(cut.txs, 4);
        let block = Block::decode(&cut.bytes[..]).unwrap();
        let links: Vec<(u8, Vec<u32>)> = block
            .trace_links
            .iter()
            .map(|l| (l.trace_id[0], l.tx_indexes.clone()))
            .collect();
        assert_eq!(links, vec![(1, vec![0, 3]), (2, vec![2])]);
        assert_eq!(cut.links.len(), 2);
    }
}
