//! Installing a Raft snapshot on a follower that fell behind the leader's
//! compaction point: the blocks the snapshot covers are fetched from a peer's
//! `Deliver` on the transport's runtime (never on the node's thread, which
//! keeps answering Raft meanwhile), checked to extend this node's chain,
//! staged, and stored with the snapshot's log position in one fsynced write
//! once the leader's next `MsgSnapshot` finds them at hand.

use crate::error::{Error, Result};
use crate::node::RaftNode;
use crate::storage::Tip;
use crate::transport::Transport;
use actix::prelude::*;
use fiscus_proto::hash::{TxId, block_hash, tx_id};
use fiscus_proto::pb::types::BlockHeader;
use prost::Message as _;
use raft::eraftpb::Message as RaftMsg;

/// Blocks fetched ahead of a snapshot, off the node's thread.
#[derive(Debug, Default)]
pub(crate) struct CatchUp {
    /// A fetch is under way (one at a time).
    fetching: bool,
    /// Fetched blocks, consecutive, each linked to the one before it; the
    /// first extends the tip the fetch started from.
    staged: Vec<FetchedBlock>,
}

/// A catch-up fetch finished (on the transport's runtime).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub(crate) struct Fetched {
    from: Tip,
    target: Tip,
    result: std::result::Result<Vec<FetchedBlock>, String>,
}

impl RaftNode {
    /// Whether a `MsgSnapshot` may be stepped now: only once the blocks it
    /// covers are at hand, so that installing it never waits on the network
    /// on this thread. Otherwise a fetch starts (one at a time) on the
    /// transport's runtime and the message is dropped; the leader sends the
    /// snapshot again after the follower's next rejection, and by then the
    /// blocks are staged.
    pub(crate) fn snapshot_ready(&mut self, m: &RaftMsg, ctx: &mut Context<Self>) -> bool {
        let Ok(target) = Tip::decode(&m.get_snapshot().data) else {
            // Let raft-rs and `install_snapshot` refuse it with their error.
            return true;
        };
        let have = self.staged_tip();
        if target.height <= have.height {
            return true;
        }
        if !self.catch_up.fetching {
            self.catch_up.fetching = true;
            tracing::info!(
                from = have.height,
                to = target.height,
                "fetching blocks for a snapshot"
            );
            let mut peers = self.transport.peers();
            // The snapshot's sender is the leader: it has the blocks.
            peers.sort_by_key(|p| p.id != m.from);
            let transport = self.transport.clone();
            let me = ctx.address();
            self.transport.runtime().spawn(async move {
                let result = fetch_blocks(&transport, &peers, have, target).await;
                me.do_send(Fetched {
                    from: have,
                    target,
                    result,
                });
            });
        }
        false
    }

    /// The tip the staged blocks reach, or the store's.
    fn staged_tip(&self) -> Tip {
        let tip = self.store.tip();
        match self.catch_up.staged.last() {
            Some((_, t, _)) if t.height > tip.height => *t,
            _ => tip,
        }
    }

    /// Takes the staged blocks up to the snapshot's tip, checks that they
    /// extend this node's chain and end at that tip, and stores them together
    /// with the snapshot's log position in one fsynced write.
    pub(crate) fn install_snapshot(
        &mut self,
        batch: &mut crate::storage::StoreBatch<'_>,
        snap: &raft::eraftpb::Snapshot,
    ) -> Result<()> {
        let meta = snap.get_metadata();
        let target = Tip::decode(&snap.data)?;
        let mine = batch.tip();
        tracing::info!(
            index = meta.index,
            from = mine.height,
            to = target.height,
            "installing snapshot"
        );
        if target.height > mine.height {
            let staged = std::mem::take(&mut self.catch_up.staged);
            let mut tip = mine;
            for (bytes, new_tip, ids) in staged {
                if new_tip.height <= tip.height || new_tip.height > target.height {
                    // Already stored (entries applied since the fetch), or past the snapshot.
                    continue;
                }
                if new_tip.height != tip.height + 1 {
                    break;
                }
                batch.put_block(new_tip, &bytes)?;
                self.recent.push(new_tip.height, ids);
                tip = new_tip;
            }
            if tip != target {
                return Err(Error::CatchUp(format!(
                    "staged chain ends at {} not at the snapshot tip {}",
                    tip.height, target.height
                )));
            }
        }
        batch.apply_snapshot(meta.index, meta.term, meta.get_conf_state())?;
        self.metrics.snapshots_installed.inc();
        for p in self.transport.peers() {
            if !meta.get_conf_state().voters.contains(&p.id)
                && !meta.get_conf_state().learners.contains(&p.id)
            {
                self.transport.remove_peer(p.id);
            }
        }
        Ok(())
    }
}

impl Handler<Fetched> for RaftNode {
    type Result = ();

    fn handle(&mut self, msg: Fetched, _: &mut Context<Self>) {
        self.catch_up.fetching = false;
        match msg.result {
            // Staged only if nothing moved the staged tip meanwhile.
            Ok(blocks) if msg.from == self.staged_tip() => {
                tracing::info!(
                    blocks = blocks.len(),
                    to = msg.target.height,
                    "blocks for the snapshot are staged"
                );
                if msg.from == self.store.tip() {
                    self.catch_up.staged = blocks;
                } else {
                    self.catch_up.staged.extend(blocks);
                }
            }
            Ok(_) => tracing::debug!("fetched blocks no longer extend the staged chain"),
            Err(e) => {
                tracing::warn!(error = %e, "block catch-up failed; retrying on the next snapshot")
            }
        }
    }
}

/// A block fetched for catch-up: its bytes, the tip after it, its tx ids.
type FetchedBlock = (Vec<u8>, Tip, Vec<TxId>);

/// Reads blocks `from.height + 1 ..= to.height` from the first peer that serves
/// them, checking each link; returns (bytes, tip after it, tx ids).
async fn fetch_blocks(
    transport: &Transport,
    peers: &[crate::config::Peer],
    from: Tip,
    to: Tip,
) -> std::result::Result<Vec<FetchedBlock>, String> {
    use fiscus_proto::pb::orderer::{DeliverRequest, orderer_client::OrdererClient};
    let tls = transport.tls();
    let mut last_err = String::from("no peer to fetch from");
    for p in peers {
        let attempt = async {
            let ch =
                fiscus_common::tls::connect_channel(&p.client_addr, &p.server_name, tls.clone())
                    .await
                    .map_err(|e| e.to_string())?;
            let mut client = OrdererClient::new(ch).max_decoding_message_size(64 * 1024 * 1024);
            let mut stream = client
                .deliver(DeliverRequest {
                    from_height: from.height + 1,
                })
                .await
                .map_err(|e| e.to_string())?
                .into_inner();
            let mut out = Vec::new();
            let mut tip = from;
            while tip.height < to.height {
                let block = match tokio::time::timeout(
                    std::time::Duration::from_secs(30),
                    futures::StreamExt::next(&mut stream),
                )
                .await
                {
                    Ok(Some(Ok(b))) => b,
                    Ok(Some(Err(e))) => return Err(e.to_string()),
                    Ok(None) | Err(_) => return Err("deliver stream ended early".into()),
                };
                let header = BlockHeader::decode(&block.header[..]).map_err(|e| e.to_string())?;
                if header.number != tip.height + 1 || header.prev_hash != tip.hash.0 {
                    return Err(format!(
                        "block {} does not extend {}",
                        header.number, tip.height
                    ));
                }
                tip = Tip {
                    height: header.number,
                    hash: block_hash(&block.header),
                    timestamp_ms: header.timestamp_ms,
                };
                let ids = block.txs.iter().map(|t| tx_id(&t.payload)).collect();
                out.push((block.encode_to_vec(), tip, ids));
            }
            if tip != to {
                return Err(format!(
                    "fetched chain ends at {} not at the snapshot tip {}",
                    tip.height, to.height
                ));
            }
            Ok(out)
        };
        match attempt.await {
            Ok(blocks) => return Ok(blocks),
            Err(e) => last_err = format!("peer {}: {e}", p.id),
        }
    }
    Err(last_err)
}
