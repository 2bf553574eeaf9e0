//! Installing a Raft snapshot on a follower that fell behind the leader's
//! compaction point: the blocks the snapshot covers are fetched from a peer's
//! `Deliver`, checked to extend this node's chain, and stored with the
//! snapshot's log position in one fsynced write.

use crate::error::{Error, Result};
use crate::node::RaftNode;
use crate::storage::Tip;
use crate::transport::Transport;
use fiscus_proto::hash::{TxId, block_hash, tx_id};
use fiscus_proto::pb::types::BlockHeader;
use prost::Message as _;

impl RaftNode {
    /// Fetches blocks up to the snapshot's tip from a peer's `Deliver`, checks
    /// that they extend our chain and end at the snapshot's tip, and stores them
    /// together with the snapshot's log position. Blocks the node until done:
    /// nothing after the snapshot can be applied before these blocks.
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
            let mut peers = self.transport.peers();
            let leader = self.raw.raft.leader_id;
            peers.sort_by_key(|p| p.id != leader);
            let blocks = fetch_blocks(&self.transport, &peers, mine, target)?;
            let mut tip = mine;
            for (bytes, new_tip, ids) in blocks {
                batch.put_block(new_tip, &bytes)?;
                self.recent.push(new_tip.height, ids);
                tip = new_tip;
            }
            if tip != target {
                return Err(Error::CatchUp(format!(
                    "fetched chain ends at {} not at the snapshot tip {}",
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

/// A block fetched for catch-up: its bytes, the tip after it, its tx ids.
type FetchedBlock = (Vec<u8>, Tip, Vec<TxId>);

/// Reads blocks `from.height + 1 ..= to.height` from the first peer that serves
/// them, checking each link; returns (bytes, tip after it, tx ids).
fn fetch_blocks(
    transport: &Transport,
    peers: &[crate::config::Peer],
    from: Tip,
    to: Tip,
) -> Result<Vec<FetchedBlock>> {
    use fiscus_proto::pb::orderer::{DeliverRequest, orderer_client::OrdererClient};
    let (tx, rx) = std::sync::mpsc::channel();
    let peers = peers.to_vec();
    let tls = transport.tls();
    transport.runtime().spawn(async move {
        let mut last_err = String::from("no peer to fetch from");
        for p in peers {
            let attempt = async {
                let ch = fiscus_common::tls::connect_channel(
                    &p.client_addr,
                    &p.server_name,
                    tls.clone(),
                )
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
                    let header =
                        BlockHeader::decode(&block.header[..]).map_err(|e| e.to_string())?;
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
                Ok(out)
            };
            match attempt.await {
                Ok(blocks) => {
                    let _ = tx.send(Ok(blocks));
                    return;
                }
                Err(e) => last_err = format!("peer {}: {e}", p.id),
            }
        }
        let _ = tx.send(Err(last_err));
    });
    rx.recv_timeout(std::time::Duration::from_secs(300))
        .map_err(|_| Error::CatchUp("block catch-up timed out".into()))?
        .map_err(|e| Error::CatchUp(format!("block catch-up failed: {e}")))
}
