//! `ExecuteBlock` over gRPC: stateless. The ledger-store sends a block, the
//! transactions it found well signed (with their signers' orgs) and the
//! values of every key they declare, `gov/config` included; the executor
//! answers with one receipt per transaction and the block's write set.

use crate::executor::{KeyValues, TxResult, execute_block};
use crate::governance::unsupported_versions;
use crate::{Call, Orgs, Rejection, TxCtx, keys};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_common::tls::require_own_node;
use fiscus_proto::hash::sha256;
use fiscus_proto::pb::executor::contract_executor_server::ContractExecutor;
use fiscus_proto::pb::ledger::{ExecTx, ExecuteBlockRequest, ExecuteBlockResponse, KeyValue};
use fiscus_proto::pb::types::{
    BlockHeader, ConsortiumConfig, Receipt, StateWrite, TxPayload, TxStatus, tx_payload,
};
use prost::Message;
use std::collections::BTreeSet;

/// Why a request could not be executed at all (as opposed to a tx being refused).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExecError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error(
        "the consortium config names contract versions this build does not implement: {0} (this build runs transfer v3 only; a chain started with an earlier transfer version is replayed by the build that wrote it, or started afresh, e.g. `fiscus devnet --reset`)"
    )]
    Unsupported(String),
}

impl From<ExecError> for ServiceError {
    fn from(e: ExecError) -> Self {
        let (kind, code) = match e {
            ExecError::Malformed(_) => (
                ErrorKind::InvalidArgument,
                codes::executor::MALFORMED_REQUEST,
            ),
            ExecError::Unsupported(_) => (
                ErrorKind::FailedPrecondition,
                codes::executor::UNSUPPORTED_CONTRACT,
            ),
        };
        ServiceError::new(kind, code, e.to_string())
    }
}

/// The contract call a payload makes.
pub fn call_of(payload: &TxPayload) -> Result<Call, Rejection> {
    match &payload.call {
        Some(tx_payload::Call::Transfer(t)) => Ok(Call::Transfer(t.clone())),
        Some(tx_payload::Call::Governance(g)) => Ok(Call::Governance(g.clone())),
        None => Err(Rejection::new(
            TxStatus::BadEncoding,
            codes::tx::BAD_ENCODING,
            "the payload names no contract call",
        )),
    }
}

/// The block-level inputs every member derives from `gov/config`.
pub fn orgs_of(config: &ConsortiumConfig) -> Result<Orgs, ExecError> {
    let missing = unsupported_versions(config);
    if !missing.is_empty() {
        return Err(ExecError::Unsupported(
            missing
                .iter()
                .map(|(c, v)| format!("{c} v{v}"))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    Ok(Orgs::from_config(config))
}

/// The receipt of an executed transaction at (`block`, `index`).
pub fn receipt_of(r: &TxResult, block: u64, index: u32) -> Receipt {
    Receipt {
        tx_id: r.tx_id.to_vec(),
        block_number: block,
        tx_index: index,
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
                value_hash: v.as_ref().map(|v| sha256(v).to_vec()).unwrap_or_default(),
            })
            .collect(),
        events: r.events.clone(),
    }
}

/// Keys and values (None: absent or deleted) as the executor protocol's
/// `KeyValue`s, for a request's reads and a response's writes.
pub fn key_values_pb(kv: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) -> Vec<KeyValue> {
    kv.into_iter()
        .map(|(key, v)| KeyValue {
            key,
            found: v.is_some(),
            value: v.unwrap_or_default(),
        })
        .collect()
}

/// Runs a request: decodes only what it needs, executes, and answers.
pub fn execute_request(
    req: &ExecuteBlockRequest,
    threads: usize,
) -> Result<ExecuteBlockResponse, ExecError> {
    let bad = |m: &str| ExecError::Malformed(m.to_owned());
    let block = req.block.as_ref().ok_or_else(|| bad("no block"))?;
    let header = BlockHeader::decode(&block.header[..])
        .map_err(|_| bad("the block header does not decode"))?;
    let mut reads = KeyValues::new();
    for kv in &req.reads {
        let value = kv.found.then(|| kv.value.clone());
        if reads.insert(kv.key.clone(), value).is_some() {
            return Err(bad("a key is read twice"));
        }
    }
    let config = reads
        .get(keys::CONFIG)
        .cloned()
        .flatten()
        .ok_or_else(|| bad("gov/config is not among the reads"))?;
    let config =
        ConsortiumConfig::decode(&config[..]).map_err(|_| bad("gov/config does not decode"))?;
    let orgs = orgs_of(&config)?;
    let mut last: Option<u32> = None;
    let mut txs = Vec::with_capacity(req.txs.len());
    for ExecTx { index, signer_orgs } in &req.txs {
        if last.is_some_and(|l| l >= *index) {
            return Err(bad("txs must be in strictly increasing block order"));
        }
        last = Some(*index);
        let env = block
            .txs
            .get(*index as usize)
            .ok_or_else(|| bad("a tx index is past the block's end"))?;
        let call = TxPayload::decode(&env.payload[..])
            .map_err(|_| Rejection::new(TxStatus::BadEncoding, codes::tx::BAD_ENCODING, "payload"))
            .and_then(|p| call_of(&p));
        txs.push(TxCtx {
            tx_id: sha256(&env.payload),
            signer_orgs: signer_orgs.iter().cloned().collect::<BTreeSet<_>>(),
            call,
        });
    }
    // Every declared key must have been sent: a missing one would read as absent
    // here but as present on a member that sent it, and the members would diverge.
    let needed = crate::executor::declared_reads(&txs);
    if let Some(k) = needed.iter().find(|k| !reads.contains_key(*k)) {
        return Err(ExecError::Malformed(format!(
            "declared key {} was not sent",
            String::from_utf8_lossy(k)
        )));
    }
    let calendar = crate::Calendar::from_config(&config);
    let input = crate::BlockInput {
        height: header.number,
        timestamp_ms: header.timestamp_ms,
        orgs: &orgs,
        calendar: &calendar,
        txs,
    };
    let out = execute_block(&input, &reads, threads);
    // An account's lots beyond those sent: the ledger reads them and asks
    // again. Safe for agreement: a lot not sent is never taken as absent.
    if !out.need.is_empty() {
        return Ok(ExecuteBlockResponse {
            need_keys: out.need.into_iter().collect(),
            ..ExecuteBlockResponse::default()
        });
    }
    Ok(ExecuteBlockResponse {
        receipts: out
            .results
            .iter()
            .zip(&req.txs)
            .map(|(r, t)| receipt_of(r, header.number, t.index))
            .collect(),
        writes: key_values_pb(out.writes),
        need_keys: Vec::new(),
    })
}

/// The tonic service: CPU work runs on the blocking pool, never on the reactor.
#[derive(Debug, Clone)]
pub struct ExecutorService {
    pub threads: usize,
    /// When set, only node certificates of this member may call (its own ledger-store).
    pub member: Option<String>,
}

#[tonic::async_trait]
impl ContractExecutor for ExecutorService {
    async fn execute_block(
        &self,
        request: tonic::Request<ExecuteBlockRequest>,
    ) -> Result<tonic::Response<ExecuteBlockResponse>, tonic::Status> {
        if let Some(member) = &self.member {
            require_own_node(
                &request,
                member,
                codes::executor::FORBIDDEN,
                codes::executor::UNAUTHENTICATED,
            )?;
        }
        let req = request.into_inner();
        let threads = self.threads;
        let out = tokio::task::spawn_blocking(move || execute_request(&req, threads))
            .await
            .map_err(|e| {
                tonic::Status::from(fiscus_common::error::ServiceError::new(
                    fiscus_common::error::ErrorKind::Internal,
                    codes::executor::INTERNAL,
                    format!("executor task failed: {e}"),
                ))
            })?;
        out.map(tonic::Response::new)
            .map_err(|e| tonic::Status::from(ServiceError::from(e)))
    }
}
