//! Where blocks are executed: in this process, or by the member's
//! contract-executor over gRPC (mutual TLS). Both run the same code.

use crate::error::{LedgerError, Result};
use crate::ledger::Executed;
use fiscus_contract_executor::TxCtx;
use fiscus_contract_executor::executor::KeyValues;
use fiscus_contract_executor::service::key_values_pb;
use fiscus_proto::pb::executor::contract_executor_client::ContractExecutorClient;
use fiscus_proto::pb::ledger::{ExecTx, ExecuteBlockRequest};
use fiscus_proto::pb::types::Block;
use prost::Message;
use std::collections::BTreeSet;
use tonic::transport::Channel;

#[derive(Debug, Clone, Default)]
pub enum Executor {
    #[default]
    Local,
    Remote(RemoteExecutor),
}

/// A client of `ContractExecutor.ExecuteBlock`.
#[derive(Debug, Clone)]
pub struct RemoteExecutor {
    client: ContractExecutorClient<Channel>,
}

impl RemoteExecutor {
    /// `max_message_bytes` bounds both the request and the reply.
    pub fn new(channel: Channel, max_message_bytes: usize) -> Self {
        Self {
            client: ContractExecutorClient::new(channel)
                .max_decoding_message_size(max_message_bytes)
                .max_encoding_message_size(max_message_bytes),
        }
    }

    pub(crate) async fn execute(
        &self,
        block_bytes: &[u8],
        run: &[TxCtx],
        run_idx: &[usize],
        reads: &KeyValues,
    ) -> Result<Executed> {
        let block = Block::decode(block_bytes).map_err(|e| LedgerError::Corrupt(e.to_string()))?;
        let req = ExecuteBlockRequest {
            block: Some(block),
            reads: key_values_pb(reads.iter().map(|(k, v)| (k.clone(), v.clone()))),
            txs: run
                .iter()
                .zip(run_idx)
                .map(|(t, i)| ExecTx {
                    index: *i as u32,
                    signer_orgs: t.signer_orgs.iter().cloned().collect(),
                })
                .collect(),
        };
        // The executor's span is a child of this commit's (ledger_store.execute).
        let mut req = tonic::Request::new(req);
        fiscus_common::telemetry::inject_metadata(&tracing::Span::current(), req.metadata_mut());
        let resp = self
            .client
            .clone()
            .execute_block(req)
            .await
            .map_err(|s| LedgerError::Executor(format!("{}: {}", s.code(), s.message())))?
            .into_inner();
        // The reply must answer exactly what was asked, or nothing is committed.
        let bad = |m: &str| LedgerError::Executor(format!("inconsistent reply: {m}"));
        if !resp.need_keys.is_empty() {
            // At most one lacking lot per transaction, and only lots.
            if !resp.receipts.is_empty() || !resp.writes.is_empty() {
                return Err(bad("keys needed beside a result"));
            }
            if resp.need_keys.len() > run.len() {
                return Err(bad("more keys needed than transactions"));
            }
            let need: BTreeSet<Vec<u8>> = resp.need_keys.into_iter().collect();
            if need.iter().any(|k| {
                fiscus_contract_executor::keys::lot_owner(k).is_none() || reads.contains_key(k)
            }) {
                return Err(bad("a needed key that is not an unread lot"));
            }
            return Ok(Executed::Need(need));
        }
        if resp.receipts.len() != run.len() {
            return Err(bad("receipt count"));
        }
        for ((r, t), i) in resp.receipts.iter().zip(run).zip(run_idx) {
            if r.tx_id != t.tx_id.to_vec() || r.tx_index as usize != *i {
                return Err(bad("receipt order"));
            }
        }
        let mut writes = KeyValues::new();
        for kv in resp.writes {
            let v = kv.found.then_some(kv.value);
            if writes.insert(kv.key, v).is_some() {
                return Err(bad("a key written twice"));
            }
        }
        Ok(Executed::Done(resp.receipts, writes))
    }
}
