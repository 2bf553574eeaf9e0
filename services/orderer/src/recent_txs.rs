//! The tx ids of the last `window` blocks, in memory: the orderer's dedupe set.
//!
//! It is part of the apply rule (a block repeating a tx id from the window is
//! skipped), so every node must use the same window; each node rebuilds it
//! from its own blocks at start. Older replays pass the orderer and are
//! refused by the ledger's tx-id index, which is the final word.

use crate::error::{Error, Result};
use crate::storage::OrdererStore;
use fiscus_proto::hash::{TxId, tx_id};
use fiscus_proto::pb::types::Block;
use prost::Message;
use std::collections::{HashMap, VecDeque};

#[derive(Debug)]
pub struct RecentTxs {
    window: u64,
    blocks: VecDeque<(u64, Vec<TxId>)>,
    // Looked up, never iterated: its order cannot leak into any decision.
    index: HashMap<TxId, u64>,
}

impl RecentTxs {
    /// Rebuilds the window from the last `window` blocks in `store`.
    pub fn load(store: &OrdererStore, window: u64) -> Result<Self> {
        let mut me = Self {
            window: window.max(1),
            blocks: VecDeque::new(),
            index: HashMap::new(),
        };
        let tip = store.tip().height;
        let from = tip.saturating_sub(me.window - 1).max(1);
        for h in from..=tip {
            let bytes = store
                .block(h)?
                .ok_or_else(|| Error::Corrupt(format!("block {h} is missing")))?;
            let block =
                Block::decode(&bytes[..]).map_err(|e| Error::Corrupt(format!("block {h}: {e}")))?;
            me.push(h, block.txs.iter().map(|t| tx_id(&t.payload)).collect());
        }
        Ok(me)
    }

    /// The block in the window that holds `id`.
    pub fn height_of(&self, id: &TxId) -> Option<u64> {
        self.index.get(id).copied()
    }

    /// Adds a committed block and forgets blocks that fall out of the window.
    pub fn push(&mut self, height: u64, ids: Vec<TxId>) {
        for id in &ids {
            self.index.insert(*id, height);
        }
        self.blocks.push_back((height, ids));
        while self
            .blocks
            .front()
            .is_some_and(|(h, _)| *h + self.window <= height)
        {
            if let Some((h, old)) = self.blocks.pop_front() {
                for id in old {
                    if self.index.get(&id) == Some(&h) {
                        self.index.remove(&id);
                    }
                }
            }
        }
    }
}
