//! A chain stand-in for tests and `fiscus bench analytics`: blocks of
//! transfer calls executed by the real contract (the same function the
//! members run) over state held in memory, kept with each transaction's
//! payload bytes and verdict, as a member's ledger would hand them to
//! analytics. No signatures, no ledger, no network.

use crate::facts::{BlockFacts, CommittedTx, block_facts};
use fiscus_contract_executor::executor::KeyValues;
use fiscus_contract_executor::{BlockInput, Calendar, Call, Orgs, TxCtx, execute_block_reading};
use fiscus_proto::hash::{Hash32, sha256};
use fiscus_proto::pb::transfer::TransferCall;
use fiscus_proto::pb::types::{TxPayload, TxStatus, tx_payload};
use prost::Message;
use std::collections::BTreeSet;

/// One transaction as committed.
#[derive(Debug, Clone)]
pub struct Tx {
    pub tx_id: Hash32,
    pub status: TxStatus,
    /// The contract's refusal code, empty when valid.
    pub code: &'static str,
    pub payload: Vec<u8>,
    pub call: TransferCall,
    pub events: Vec<fiscus_proto::pb::types::ContractEvent>,
}

/// One committed block; the first is height 1, as on a ledger.
#[derive(Debug, Clone)]
pub struct Block {
    pub height: u64,
    pub timestamp_ms: i64,
    pub txs: Vec<Tx>,
}

impl Block {
    /// Its facts, as the follower derives them.
    pub fn facts(&self) -> BlockFacts {
        let txs: Vec<CommittedTx<'_>> = self
            .txs
            .iter()
            .enumerate()
            .map(|(i, t)| CommittedTx {
                tx_id: t.tx_id,
                index: i as u32,
                status: t.status,
                payload: &t.payload,
                events: &t.events,
            })
            .collect();
        block_facts(self.height, self.timestamp_ms, &txs)
    }
}

/// State plus the blocks so far.
#[derive(Debug)]
pub struct Chain {
    pub orgs: Orgs,
    pub calendar: Calendar,
    pub state: KeyValues,
    pub blocks: Vec<Block>,
    /// Transactions so far: tx ids are SHA-256 of this counter.
    pub n: u64,
}

impl Chain {
    pub fn new(orgs: Orgs) -> Self {
        Self {
            orgs,
            calendar: Calendar::default(),
            state: KeyValues::new(),
            blocks: Vec::new(),
            n: 0,
        }
    }

    /// The id the next transaction will get.
    pub fn next_tx_id(&self) -> Hash32 {
        sha256(&(self.n + 1).to_be_bytes())
    }

    /// Executes one block at `timestamp_ms` of calls signed by the given
    /// orgs, applies its writes and keeps it; returns its transactions.
    pub fn block(&mut self, timestamp_ms: i64, calls: Vec<(Vec<&str>, TransferCall)>) -> &Block {
        let height = self.blocks.len() as u64 + 1;
        let mut ctxs = Vec::with_capacity(calls.len());
        let mut kept = Vec::with_capacity(calls.len());
        for (signers, call) in calls {
            self.n += 1;
            let payload = TxPayload {
                consortium_id: "analytics-test".into(),
                nonce: self.n,
                call: Some(tx_payload::Call::Transfer(call.clone())),
                ..TxPayload::default()
            }
            .encode_to_vec();
            let tx_id = sha256(&self.n.to_be_bytes());
            ctxs.push(TxCtx {
                tx_id,
                signer_orgs: signers
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<BTreeSet<_>>(),
                call: Ok(Call::Transfer(call.clone())),
            });
            kept.push((tx_id, payload, call));
        }
        let input = BlockInput {
            height,
            timestamp_ms,
            orgs: &self.orgs,
            calendar: &self.calendar,
            txs: ctxs,
        };
        let state = &self.state;
        let out = execute_block_reading(&input, |k| state.get(k).cloned().flatten(), 1)
            .unwrap_or_else(|need| {
                // The state is whole in memory: no lot can be missing.
                panic!("the stand-in's state lacks {} keys", need.len())
            });
        for (k, v) in out.writes {
            self.state.insert(k, v);
        }
        let txs = kept
            .into_iter()
            .zip(out.results)
            .map(|((tx_id, payload, call), r)| Tx {
                tx_id,
                status: r.status,
                code: r.code,
                payload,
                call,
                events: r.events,
            })
            .collect();
        self.blocks.push(Block {
            height,
            timestamp_ms,
            txs,
        });
        &self.blocks[self.blocks.len() - 1]
    }
}
