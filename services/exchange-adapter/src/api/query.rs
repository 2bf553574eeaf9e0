//! The REST query endpoints: the chain, blocks, transactions with their
//! receipts and proofs, accounts (now, at a height, their history),
//! programs and lineage traces. Reads are limited by the disclosure policy
//! (`crate::context`).

use crate::api::check_segment;
use crate::api::tx_id_param;
use crate::backend::from_status;
use crate::clients::{Client, Scope};
use crate::context::Api;
use crate::error::ProblemDoc;
use crate::error::err;
use crate::json::AccountJson;
use crate::json::AccountPage;
use crate::json::AccountVersion;
use crate::json::AttestationJson;
use crate::json::BlockJson;
use crate::json::ChainJson;
use crate::json::ProgramJson;
use crate::json::ProgramPage;
use crate::json::ReceiptJson;
use crate::json::TraceJson;
use crate::json::TransactionJson;
use crate::json::account_json;
use actix_web::{HttpRequest, get, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::pb::ledger::{
    GetBlockRequest, GetHistoryRequest, GetReceiptRequest, ScanStateRequest, TraceRequest,
};
use fiscus_proto::pb::state::{Account, ProgramRecord};
use fiscus_proto::pb::types::{Attestation, Block, BlockHeader, Receipt, ReceiptProof};
use prost::Message;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// The chain head and finality at this member.
#[utoipa::path(tag = "query", responses((status = 200, body = ChainJson)), security(("api_key" = [])))]
#[get("/v1/chain")]
pub(super) async fn chain(
    api: web::Data<Api>,
    req: HttpRequest,
) -> Result<web::Json<ChainJson>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let info = api.backend.chain_info().await?;
    Ok(web::Json(ChainJson {
        height: info.height,
        last_block_hash: hex::encode(info.last_block_hash),
        state_hash: hex::encode(info.state_hash),
        final_height: info.final_height,
    }))
}

/// One block's header and transaction ids.
#[utoipa::path(tag = "query", params(("number" = u64, Path, description = "Block number")),
    responses((status = 200, body = BlockJson), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/blocks/{number}")]
pub(super) async fn block_by_number(
    api: web::Data<Api>,
    req: HttpRequest,
    number: web::Path<u64>,
) -> Result<web::Json<BlockJson>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let b: Block = api
        .backend
        .ledger()
        .await?
        .get_block(GetBlockRequest {
            number: *number,
            hash: Vec::new(),
        })
        .await
        .map_err(|s| from_status("block", &s))?
        .into_inner();
    let h = BlockHeader::decode(&b.header[..]).map_err(|e| {
        err(
            ErrorKind::Internal,
            codes::api::BACKEND_ERROR,
            e.to_string(),
        )
    })?;
    Ok(web::Json(BlockJson {
        number: h.number,
        hash: fiscus_proto::hash::block_hash(&b.header).to_hex(),
        prev_hash: hex::encode(&h.prev_hash),
        tx_root: hex::encode(&h.tx_root),
        timestamp_ms: h.timestamp_ms,
        orderer_id: h.orderer_id,
        tx_ids: b
            .txs
            .iter()
            .map(|e| fiscus_proto::hash::tx_id(&e.payload).to_hex())
            .collect(),
    }))
}

/// Which attestations a receipt carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ProofKind {
    /// This member's own signed attestation (the default).
    #[default]
    Member,
    /// A majority of the consortium's members, agreeing on the block hash,
    /// state hash and receipts root: what proves finality to a third party.
    Final,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct TransactionQuery {
    /// `final`: carry a majority of agreeing member attestations (409
    /// `api.not_final` until the block has them); `member` (default): this
    /// member's own.
    pub proof: Option<ProofKind>,
}

/// A transaction's receipt, its Merkle proof and this member's attestation,
/// or with `?proof=final` a majority's.
#[utoipa::path(tag = "query", params(("tx_id" = String, Path, description = "64 hex digits"), TransactionQuery),
    responses((status = 200, body = TransactionJson),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`api.not_final`: the block has no agreeing majority of attestations yet; retry", body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/transactions/{tx_id}")]
pub(super) async fn transaction(
    api: web::Data<Api>,
    req: HttpRequest,
    tx_id: web::Path<String>,
    q: web::Query<TransactionQuery>,
) -> Result<web::Json<TransactionJson>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let id = tx_id_param(&tx_id)?;
    let proof: ReceiptProof = api
        .backend
        .ledger()
        .await?
        .get_receipt(GetReceiptRequest {
            tx_id: id.to_vec(),
            require_final: q.proof == Some(ProofKind::Final),
        })
        .await
        .map_err(|s| crate::backend::receipt_status(&s))?
        .into_inner();
    let receipt = Receipt::decode(&proof.receipt[..]).map_err(|e| {
        err(
            ErrorKind::Internal,
            codes::api::BACKEND_ERROR,
            e.to_string(),
        )
    })?;
    let attestations = proof
        .attestations
        .iter()
        .filter_map(|s| Attestation::decode(&s.attestation[..]).ok())
        .map(|a| AttestationJson {
            member: a.member,
            height: a.height,
            block_hash: hex::encode(a.block_hash),
            state_hash: hex::encode(a.state_hash),
            receipts_root: hex::encode(a.receipts_root),
        })
        .collect();
    Ok(web::Json(TransactionJson {
        receipt: ReceiptJson::from(&receipt),
        attestations,
        receipt_proof: B64.encode(proof.encode_to_vec()),
    }))
}

/// One account's balances.
#[utoipa::path(tag = "query",
    params(("org" = String, Path, description = "GB/T 2260 code"), ("program" = String, Path)),
    responses((status = 200, body = AccountJson), (status = 403, body = ProblemDoc, content_type = "application/problem+json"), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/accounts/{org}/{program}")]
pub(super) async fn account(
    api: web::Data<Api>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<web::Json<AccountJson>, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let (org, program) = path.into_inner();
    check_segment(&org, "org")?;
    check_segment(&program, "program")?;
    api.require_read_org(&client, &org)?;
    let key = format!("acct/{org}/{program}");
    let value = api.state_at(key.as_bytes(), 0).await?.ok_or_else(|| {
        err(
            ErrorKind::NotFound,
            codes::api::NOT_FOUND,
            format!("no account {org}/{program}"),
        )
    })?;
    let a = Account::decode(&value[..]).map_err(|e| {
        err(
            ErrorKind::Internal,
            codes::api::BACKEND_ERROR,
            e.to_string(),
        )
    })?;
    account_json(key.as_bytes(), &a)
        .map(web::Json)
        .ok_or_else(|| {
            err(
                ErrorKind::Internal,
                codes::api::BACKEND_ERROR,
                "bad account key",
            )
        })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// Only this org's accounts (accounts lists only).
    pub org: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Items per page (default 100, capped by the server).
    pub limit: Option<u32>,
}

impl Api {
    /// One page of a list under `prefix` for `client`, and the sealed
    /// cursor of the next page (None on the last).
    async fn scan(
        &self,
        client: &Client,
        prefix: Vec<u8>,
        q: &ListQuery,
    ) -> Result<(fiscus_proto::pb::ledger::ScanStateResponse, Option<String>), ServiceError> {
        let binding = crate::cursor::binding(&client.name, &prefix);
        let page_token = match &q.cursor {
            None => Vec::new(),
            Some(c) => self.cursor_key.open(c, &binding)?,
        };
        let r = self
            .scan_page(prefix, 0, self.page(q.limit), page_token)
            .await?
            .map_err(|s| {
                if s.code() == tonic::Code::InvalidArgument {
                    err(
                        ErrorKind::InvalidArgument,
                        codes::api::BAD_CURSOR,
                        "the cursor is not one this API gave for this list",
                    )
                } else {
                    from_status("scan", &s)
                }
            })?;
        let next = self.cursor_key.seal(&r.next_page_token, &binding)?;
        Ok((r, next))
    }

    /// One page of the ledger's `ScanState` under `prefix` at `at_height` (0:
    /// the head, or the height `page_token` pins). The outer error: the ledger
    /// is unreachable.
    pub(crate) async fn scan_page(
        &self,
        prefix: Vec<u8>,
        at_height: u64,
        limit: u32,
        page_token: Vec<u8>,
    ) -> Result<Result<fiscus_proto::pb::ledger::ScanStateResponse, tonic::Status>, ServiceError>
    {
        Ok(self
            .backend
            .ledger()
            .await?
            .scan_state(ScanStateRequest {
                prefix,
                start: Vec::new(),
                end: Vec::new(),
                at_height,
                limit,
                page_token,
            })
            .await
            .map(tonic::Response::into_inner))
    }

    /// Every entry under `prefix` at `at_height` (0: the head), page by page.
    pub(crate) async fn scan_at(
        &self,
        prefix: &[u8],
        at_height: u64,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ServiceError> {
        let mut out = Vec::new();
        let mut token = Vec::new();
        loop {
            let r = self
                .scan_page(prefix.to_vec(), at_height, 1000, token)
                .await?
                .map_err(|s| from_status("scan", &s))?;
            out.extend(r.entries.into_iter().map(|kv| (kv.key, kv.value)));
            if r.next_page_token.is_empty() {
                return Ok(out);
            }
            token = r.next_page_token;
        }
    }

    /// One state value at `at_height` (0: the head), if present.
    pub(crate) async fn state_at(
        &self,
        key: &[u8],
        at_height: u64,
    ) -> Result<Option<Vec<u8>>, ServiceError> {
        let r = self.backend.state(key, at_height).await?;
        Ok(r.found.then_some(r.value))
    }
}

/// Accounts, a page at a time, as the disclosure policy allows.
#[utoipa::path(tag = "query", params(ListQuery),
    responses((status = 200, body = AccountPage), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/accounts")]
pub(super) async fn accounts(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<web::Json<AccountPage>, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let prefix = match &q.org {
        Some(org) => {
            check_segment(org, "org")?;
            api.require_read_org(&client, org)?;
            format!("acct/{org}/")
        }
        None => "acct/".to_owned(),
    };
    let (r, next_cursor) = api.scan(&client, prefix.into_bytes(), &q).await?;
    let items = r
        .entries
        .iter()
        .filter_map(|kv| {
            let a = Account::decode(&kv.value[..]).ok()?;
            let j = account_json(&kv.key, &a)?;
            api.may_read_org(&client, &j.org_code).then_some(j)
        })
        .collect();
    Ok(web::Json(AccountPage {
        items,
        height: r.height,
        next_cursor,
    }))
}

/// Programs (funds with a purpose and a functional classification).
#[utoipa::path(tag = "query", params(ListQuery), responses((status = 200, body = ProgramPage)), security(("api_key" = [])))]
#[get("/v1/programs")]
pub(super) async fn programs(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ListQuery>,
) -> Result<web::Json<ProgramPage>, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let (r, next_cursor) = api.scan(&client, b"prog/".to_vec(), &q).await?;
    let items = r
        .entries
        .iter()
        .filter_map(|kv| ProgramRecord::decode(&kv.value[..]).ok())
        .filter_map(|rec| {
            let p = rec.program?;
            Some(ProgramJson {
                kind: fiscus_proto::pb::transfer::ProgramKind::try_from(p.kind)
                    .map(|k| {
                        k.as_str_name()
                            .trim_start_matches("PROGRAM_KIND_")
                            .to_ascii_lowercase()
                    })
                    .unwrap_or_default(),
                id: p.id,
                name: p.name,
                functional_code: p.functional_code,
                fiscal_year: p.fiscal_year,
                document: p.document,
                owner_org: rec.owner_org,
            })
        })
        .collect();
    Ok(web::Json(ProgramPage {
        items,
        height: r.height,
        next_cursor,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryQuery {
    /// Newest first, at most this many (default 100, capped by the server).
    pub limit: Option<u32>,
    /// Only versions written at or below this block (default: the head). The
    /// next page: the last version's `block_number` - 1.
    pub height: Option<u64>,
}

/// Every version of one account, newest first.
#[utoipa::path(tag = "query",
    params(("org" = String, Path), ("program" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<AccountVersion>), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/accounts/{org}/{program}/history")]
pub(super) async fn account_history(
    api: web::Data<Api>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<HistoryQuery>,
) -> Result<web::Json<Vec<AccountVersion>>, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let (org, program) = path.into_inner();
    check_segment(&org, "org")?;
    check_segment(&program, "program")?;
    api.require_read_org(&client, &org)?;
    let key = format!("acct/{org}/{program}").into_bytes();
    let r = api
        .backend
        .ledger()
        .await?
        .get_history(GetHistoryRequest {
            key: key.clone(),
            limit: api.page(q.limit),
            at_height: q.height.unwrap_or(0),
        })
        .await
        .map_err(|s| from_status("history", &s))?
        .into_inner();
    Ok(web::Json(
        r.entries
            .iter()
            .map(|e| AccountVersion {
                block_number: e.block_number,
                deleted: e.deleted,
                account: (!e.deleted)
                    .then(|| Account::decode(&e.value[..]).ok())
                    .flatten()
                    .and_then(|a| account_json(&key, &a)),
            })
            .collect(),
    ))
}

/// Lineage: from a disbursement or allocation up to the central appropriation.
#[utoipa::path(tag = "query", params(("tx_id" = String, Path, description = "64 hex digits")),
    responses((status = 200, body = TraceJson), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/trace/{tx_id}")]
pub(super) async fn trace(
    api: web::Data<Api>,
    req: HttpRequest,
    tx_id: web::Path<String>,
) -> Result<web::Json<TraceJson>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let id = tx_id_param(&tx_id)?;
    let r = api
        .backend
        .ledger()
        .await?
        .trace(TraceRequest {
            tx_id: id.to_vec(),
            at_height: 0,
        })
        .await
        .map_err(|s| from_status("trace", &s))?
        .into_inner();
    Ok(web::Json(crate::json::trace_json(r)))
}
