//! The REST/JSON API. Every handler is annotated for the OpenAPI document,
//! and the routes are registered through `utoipa-actix-web`, so the document
//! is built from the same list the server serves.

use crate::backend::{Backend, Ordered, from_status};
use crate::clients::{Client, Clients, Scope};
use crate::ops::Operation;
use actix_web::{HttpRequest, get, post, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_common::tls::PeerIdentity;
use fiscus_proto::DecodeLimits;
use fiscus_proto::envelope::{CheckedTx, seal};
use fiscus_proto::hash::{Hash32, sha256};
use fiscus_proto::pb::ledger::{
    ChainInfoRequest, GetBlockRequest, GetHistoryRequest, GetNonceUseRequest, GetReceiptRequest,
    ScanStateRequest, TraceRequest,
};
use fiscus_proto::pb::state::{Account, ProgramRecord};
use fiscus_proto::pb::types::{
    Attestation, Block, BlockHeader, OrgLevel, Receipt, ReceiptProof, Role, TxPayload, TxStatus,
    tx_payload::Call,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use utoipa::{IntoParams, ToSchema};

/// Everything the handlers share.
#[derive(Debug)]
pub struct Api {
    pub consortium_id: String,
    pub clients: Clients,
    pub backend: Backend,
    /// Signer certificates: id → (org, public key).
    pub signers: BTreeMap<Hash32, (String, [u8; 32])>,
    /// Org code → (level, parent code), from the genesis configuration.
    pub orgs: BTreeMap<String, (OrgLevel, String)>,
    /// The same registry as the contract sees it, for its rule functions.
    pub registry: fiscus_contract_executor::Orgs,
    /// The consortium's salt for personal id hashes (from genesis).
    pub recipient_id_salt: Vec<u8>,
    /// Seals pagination cursors (`crate::cursor`).
    pub cursor_key: crate::cursor::CursorKey,
    pub limits: DecodeLimits,
    pub max_page: u32,
    pub max_import_bytes: usize,
    pub wait_timeout: Duration,
    pub hub: crate::events::Hub,
    /// What a caller with a consortium client certificate may do (REST over TLS).
    pub cert_scopes: Vec<Scope>,
    /// The serials the CRL in force revokes: a REST connection authenticated
    /// by a certificate revoked after its handshake is refused per request.
    pub revocations: Arc<fiscus_common::tls::Revocations>,
}

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemDoc {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable code, e.g. `api.wrong_org`.
    pub code: String,
}

pub(crate) fn err(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::new(kind, code, message)
}

/// The scope an extractor demands.
pub(crate) trait NeedsScope {
    const SCOPE: Scope;
}

/// `Caller<SubmitScope>` authenticates for submitting.
pub(crate) struct SubmitScope;

impl NeedsScope for SubmitScope {
    const SCOPE: Scope = Scope::Submit;
}

/// The authenticated caller, as an extractor. Placed before the body and
/// query extractors, it answers 401/403/429 before anything of the request
/// is parsed, and an unauthenticated body is never read (actix polls a
/// handler's extractors in order and stops at the first error).
pub(crate) struct Caller<S>(pub Arc<Client>, std::marker::PhantomData<S>);

impl<S: NeedsScope> actix_web::FromRequest for Caller<S> {
    type Error = ServiceError;
    type Future = std::future::Ready<Result<Self, ServiceError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let out = match req.app_data::<web::Data<Api>>() {
            Some(api) => api
                .caller(req, S::SCOPE)
                .map(|c| Caller(c, std::marker::PhantomData)),
            None => Err(err(ErrorKind::Internal, "api.internal", "no API state")),
        };
        std::future::ready(out)
    }
}

impl Api {
    /// Authenticates the caller, charges its rate bucket and checks the scope.
    pub(crate) fn caller(
        &self,
        req: &HttpRequest,
        scope: Scope,
    ) -> Result<Arc<Client>, ServiceError> {
        // An API key, when sent, decides; otherwise a TLS client certificate.
        let client = self.authenticated(req)?;
        self.clients.admit(&client)?;
        client.require(scope)?;
        Ok(client)
    }

    /// Who the request authenticates as, without checking scope or rate:
    /// error handlers ask it so that an unauthenticated request is answered
    /// 401 before anything about its query, path or body.
    pub(crate) fn authenticated(&self, req: &HttpRequest) -> Result<Arc<Client>, ServiceError> {
        let headers = req.headers();
        let key = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim);
        match (key, req.conn_data::<PeerIdentity>()) {
            (None, Some(id)) => self.certificate_client(id),
            _ => self.clients.authenticate(key),
        }
    }

    /// The client a verified consortium client certificate stands for.
    fn certificate_client(&self, id: &PeerIdentity) -> Result<Arc<Client>, ServiceError> {
        if self.revocations.is_revoked(&id.serial) {
            return Err(err(
                ErrorKind::Unauthenticated,
                "api.certificate_revoked",
                format!("certificate {} is revoked", id.cert_id),
            ));
        }
        if !matches!(id.role, Role::Client | Role::Admin) {
            return Err(err(
                ErrorKind::PermissionDenied,
                "api.wrong_role",
                format!(
                    "a {:?} certificate may not call the API; use a client certificate",
                    id.role
                ),
            ));
        }
        if !self.orgs.contains_key(&id.member) {
            return Err(err(
                ErrorKind::PermissionDenied,
                "api.unknown_org",
                format!("org {} is not in the consortium's registry", id.member),
            ));
        }
        Ok(Arc::new(Client {
            name: format!("certificate {}", id.cert_id),
            org: id.member.clone(),
            scopes: self.cert_scopes.clone(),
            custodial: None,
        }))
    }

    pub(crate) fn is_descendant_or_self(&self, ancestor: &str, org: &str) -> bool {
        let mut cur = org.to_owned();
        for _ in 0..16 {
            if cur == ancestor {
                return true;
            }
            match self.orgs.get(&cur) {
                Some((_, parent)) if !parent.is_empty() => cur = parent.clone(),
                _ => return false,
            }
        }
        false
    }

    /// The default disclosure policy: supervisors and the central level read
    /// every account; any other org reads its own accounts and those of the
    /// orgs below it.
    pub(crate) fn may_read_org(&self, client: &Client, org: &str) -> bool {
        let level = self.orgs.get(&client.org).map(|(l, _)| *l);
        matches!(level, Some(OrgLevel::Supervisor | OrgLevel::Central))
            || self.is_descendant_or_self(&client.org, org)
    }

    pub(crate) fn require_read_org(&self, client: &Client, org: &str) -> Result<(), ServiceError> {
        if self.may_read_org(client, org) {
            Ok(())
        } else {
            Err(err(
                ErrorKind::PermissionDenied,
                "api.not_disclosed",
                format!(
                    "org {} may not read the accounts of org {org} (disclosure policy: own org and the orgs below it)",
                    client.org
                ),
            ))
        }
    }

    fn page(&self, limit: Option<u32>) -> u32 {
        limit.unwrap_or(100).clamp(1, self.max_page)
    }
}

// ---------------------------------------------------------------- submit

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// Answer once the orderers have put the tx in a block.
    #[default]
    Ordered,
    /// Answer once this member committed the block (the receipt is known).
    Commit,
    /// Answer once a majority of members attested the block.
    Final,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// `ordered` (default), `commit` or `final`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub wait: Wait,
}

/// A client-signed envelope.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitEnvelope {
    /// The protobuf-encoded `fiscus.types.v1.Envelope`, standard base64.
    pub envelope: String,
}

/// A transaction's receipt: its outcome as this member executed it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptJson {
    pub tx_id: String,
    pub block_number: u64,
    pub tx_index: u32,
    /// `valid`, or why it was rejected, e.g. `insufficient_funds`.
    pub status: String,
    pub reason: String,
    /// Contract events, e.g. `deadline.late`.
    pub events: Vec<String>,
}

pub(crate) fn status_name(s: i32) -> String {
    TxStatus::try_from(s)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("TX_STATUS_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| format!("unknown({s})"))
}

impl From<&Receipt> for ReceiptJson {
    fn from(r: &Receipt) -> Self {
        Self {
            tx_id: hex::encode(&r.tx_id),
            block_number: r.block_number,
            tx_index: r.tx_index,
            status: status_name(r.status),
            reason: r.reason.clone(),
            events: r.events.iter().map(|e| e.name.clone()).collect(),
        }
    }
}

/// What became of a submission.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResult {
    pub tx_id: String,
    /// `ordered`, `committed` or `final`.
    pub state: String,
    pub block_number: u64,
    /// True when this answer repeats an earlier submission of the same tx
    /// (a retry with the same `Idempotency-Key`).
    pub replayed: bool,
    /// Present once the member committed the block (`wait=commit|final`).
    pub receipt: Option<ReceiptJson>,
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ServiceError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 128);
            k.map(|k| Some(k.to_owned())).ok_or_else(|| {
                err(
                    ErrorKind::InvalidArgument,
                    "api.bad_idempotency_key",
                    "Idempotency-Key must be 1 to 128 visible ASCII characters",
                )
            })
        }
    }
}

/// An `Idempotency-Key` names one operation: used again with another body it
/// is refused before anything is ordered.
fn key_reused(detail: impl std::fmt::Display) -> ServiceError {
    err(
        ErrorKind::FailedPrecondition,
        "api.idempotency_key_reused",
        format!(
            "this Idempotency-Key was already used for a different operation ({detail}); \
             use a new key for a new operation"
        ),
    )
}

impl Api {
    /// Orders `env`, then waits as asked. A duplicate is the first result when
    /// the caller retries with an idempotency key, and a `tx.duplicate`
    /// problem otherwise (a replay).
    async fn order(
        &self,
        tx_id: Hash32,
        env: fiscus_proto::pb::types::Envelope,
        wait: Wait,
        retry: bool,
    ) -> Result<SubmitResult, ServiceError> {
        let (block, replayed) = match self.backend.broadcast(env).await? {
            Ordered::Accepted(n) => (n, false),
            Ordered::Duplicate(n) if retry => (n, true),
            Ordered::Duplicate(n) => {
                return Err(err(
                    ErrorKind::AlreadyExists,
                    "tx.duplicate",
                    format!("transaction {tx_id} was already ordered in block {n} (a replay)"),
                ));
            }
        };
        let mut out = SubmitResult {
            tx_id: tx_id.to_hex(),
            state: "ordered".into(),
            block_number: block,
            replayed,
            receipt: None,
        };
        if wait == Wait::Ordered {
            return Ok(out);
        }
        let until = Instant::now() + self.wait_timeout;
        let receipt = self.wait_receipt(&tx_id, until).await?;
        if retry && receipt.reason.starts_with("tx.nonce_reused") {
            // Two requests with one key and different bodies raced past the
            // check before ordering; the chain kept the first.
            return Err(key_reused(format_args!(
                "the chain refused tx {tx_id}: {}",
                receipt.reason
            )));
        }
        out.block_number = receipt.block_number;
        out.receipt = Some(ReceiptJson::from(&receipt));
        out.state = "committed".into();
        if wait == Wait::Final {
            self.wait_final(receipt.block_number, until).await?;
            out.state = "final".into();
        }
        Ok(out)
    }

    async fn wait_receipt(&self, tx: &Hash32, until: Instant) -> Result<Receipt, ServiceError> {
        let mut pause = Duration::from_millis(5);
        loop {
            let mut ledger = self.backend.ledger().await?;
            match ledger
                .get_receipt(GetReceiptRequest {
                    tx_id: tx.to_vec(),
                    require_final: false,
                })
                .await
            {
                Ok(p) => {
                    return Receipt::decode(&p.into_inner().receipt[..])
                        .map_err(|e| err(ErrorKind::Internal, "api.backend_error", e.to_string()));
                }
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(from_status("the ledger-store", &s)),
            }
            if Instant::now() >= until {
                return Err(timeout("committed at this member"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn wait_final(&self, height: u64, until: Instant) -> Result<(), ServiceError> {
        let mut pause = Duration::from_millis(5);
        loop {
            let mut ledger = self.backend.ledger().await?;
            let info = ledger
                .get_chain_info(ChainInfoRequest {})
                .await
                .map_err(|s| from_status("the ledger-store", &s))?
                .into_inner();
            if info.final_height >= height {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(timeout("final"));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}

fn timeout(what: &str) -> ServiceError {
    err(
        ErrorKind::Unavailable,
        "api.wait_timeout",
        format!("the transaction was ordered but not {what} within the wait limit; query it later"),
    )
}

/// Submit a client-signed envelope.
///
/// The envelope's signer must be a certificate of the API client's own org,
/// and its signatures must verify; both are checked before the orderers see it.
#[utoipa::path(
    tag = "submit",
    params(SubmitQuery, ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first result")),
    responses(
        (status = 200, description = "Ordered (and committed or final, as asked)", body = SubmitResult),
        (status = 400, description = "Malformed JSON or envelope, or a bad signature", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Wrong org or scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "A replay of an ordered transaction", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/transactions")]
async fn submit_envelope(
    api: web::Data<Api>,
    req: HttpRequest,
    caller: Caller<SubmitScope>,
    query: web::Query<SubmitQuery>,
    body: web::Json<SubmitEnvelope>,
) -> Result<web::Json<SubmitResult>, ServiceError> {
    let client = caller.0;
    let retry = idempotency_key(&req)?.is_some();
    let bytes = B64.decode(body.envelope.trim()).map_err(|_| {
        err(
            ErrorKind::InvalidArgument,
            "api.bad_base64",
            "envelope is not standard base64",
        )
    })?;
    let tx = CheckedTx::decode(&bytes, &api.limits).map_err(|e| {
        err(
            ErrorKind::InvalidArgument,
            "tx.bad_encoding",
            format!("the envelope does not decode: {e}"),
        )
    })?;
    crate::submit::check_envelope(&api, &tx, &client.org)?;
    let out = api.order(tx.tx_id, tx.to_wire(), query.wait, retry).await?;
    Ok(web::Json(out))
}

/// Submit an operation signed by the member for the client (custodial signing).
///
/// For systems that cannot sign. It is enabled per API client (off by
/// default). The operation must move the client's own org's funds. With an
/// `Idempotency-Key`, a retry builds the same transaction and returns the
/// first result.
#[utoipa::path(
    tag = "submit",
    request_body = Operation,
    params(SubmitQuery, ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first result")),
    responses(
        (status = 200, description = "Ordered (and committed or final, as asked)", body = SubmitResult),
        (status = 400, description = "Malformed JSON or operation", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Wrong org, scope not granted, or custodial signing not enabled", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`api.idempotency_key_reused`: the Idempotency-Key was used for a different operation", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/operations")]
async fn submit_operation(
    api: web::Data<Api>,
    req: HttpRequest,
    caller: Caller<SubmitScope>,
    query: web::Query<SubmitQuery>,
    body: web::Json<Operation>,
) -> Result<web::Json<SubmitResult>, ServiceError> {
    let client = caller.0;
    let custodial = client.custodial()?;
    if let Some(org) = body.acting_org().filter(|o| *o != client.org) {
        return Err(err(
            ErrorKind::PermissionDenied,
            "api.wrong_org",
            format!(
                "the operation moves funds of org {org}; API client {:?} acts for org {}",
                client.name, client.org
            ),
        ));
    }
    let key = idempotency_key(&req)?;
    let call = body.to_call(&api.recipient_id_salt)?;
    crate::submit::check_call(&api, &call, &api.custodial_signers(custodial))?;
    let (tx_id, env, nonce) = custodial_envelope(&api, custodial, &client, call, key.as_deref())?;
    if key.is_some()
        && let Some(first) = api.nonce_used_by_other(custodial, nonce, &tx_id).await?
    {
        return Err(key_reused(format_args!("tx {first}")));
    }
    Ok(web::Json(
        api.order(tx_id, env, query.wait, key.is_some()).await?,
    ))
}

/// The nonce of `client`'s operation under idempotency key `key`: the same
/// key gives the same nonce, so a retry builds the same transaction, and the
/// chain refuses a second transaction with it (`tx.nonce_reused`).
fn idempotent_nonce(client: &Client, key: &str) -> u64 {
    let h = sha256(format!("{}\u{0}{key}", client.name).as_bytes());
    u64::from_be_bytes(h.0[..8].try_into().unwrap_or_default())
}

impl Api {
    /// The transaction other than `tx_id` that already used the custodial
    /// signer's `nonce` (its idempotency key), if any.
    pub(crate) async fn nonce_used_by_other(
        &self,
        custodial: &crate::clients::Custodial,
        nonce: u64,
        tx_id: &Hash32,
    ) -> Result<Option<Hash32>, ServiceError> {
        let used = self
            .backend
            .ledger()
            .await?
            .get_nonce_use(GetNonceUseRequest {
                creator_cert_id: custodial.cert_id.to_vec(),
                nonce,
            })
            .await
            .map_err(|s| from_status("the ledger-store", &s))?
            .into_inner();
        Ok(Hash32::from_slice("tx id", &used.tx_id)
            .ok()
            .filter(|first| used.used && first != tx_id))
    }
}

/// The envelope the member signs for `client`. With an idempotency key the
/// nonce comes from the client and the key, so a retry builds byte-identical
/// bytes and the same tx id; without one it is random. Returns the tx id, the
/// envelope and its nonce.
pub(crate) fn custodial_envelope(
    api: &Api,
    custodial: &crate::clients::Custodial,
    client: &Client,
    call: fiscus_proto::pb::transfer::TransferCall,
    idempotency_key: Option<&str>,
) -> Result<(Hash32, fiscus_proto::pb::types::Envelope, u64), ServiceError> {
    let nonce = match idempotency_key {
        Some(k) => idempotent_nonce(client, k),
        None => rand::random(),
    };
    let payload = TxPayload {
        consortium_id: api.consortium_id.clone(),
        creator_cert_id: custodial.cert_id.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(Call::Transfer(call)),
    };
    let env = seal(&payload, &[(&custodial.key, custodial.cert_id)]);
    Ok((fiscus_proto::hash::tx_id(&env.payload), env, nonce))
}

// ---------------------------------------------------------------- queries

/// The chain head at this member.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChainJson {
    pub height: u64,
    pub last_block_hash: String,
    pub state_hash: String,
    /// The highest height a majority of members attested with the same hashes.
    pub final_height: u64,
}

/// The chain head and finality at this member.
#[utoipa::path(tag = "query", responses((status = 200, body = ChainJson)), security(("api_key" = [])))]
#[get("/v1/chain")]
async fn chain(
    api: web::Data<Api>,
    req: HttpRequest,
) -> Result<web::Json<ChainJson>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let info = api
        .backend
        .ledger()
        .await?
        .get_chain_info(ChainInfoRequest {})
        .await
        .map_err(|s| from_status("chain info", &s))?
        .into_inner();
    Ok(web::Json(ChainJson {
        height: info.height,
        last_block_hash: hex::encode(info.last_block_hash),
        state_hash: hex::encode(info.state_hash),
        final_height: info.final_height,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BlockJson {
    pub number: u64,
    pub hash: String,
    pub prev_hash: String,
    pub tx_root: String,
    pub timestamp_ms: i64,
    pub orderer_id: String,
    pub tx_ids: Vec<String>,
}

/// One block's header and transaction ids.
#[utoipa::path(tag = "query", params(("number" = u64, Path, description = "Block number")),
    responses((status = 200, body = BlockJson), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/blocks/{number}")]
async fn block_by_number(
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
    let h = BlockHeader::decode(&b.header[..])
        .map_err(|e| err(ErrorKind::Internal, "api.backend_error", e.to_string()))?;
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

#[derive(Debug, Serialize, ToSchema)]
pub struct AttestationJson {
    pub member: String,
    pub height: u64,
    pub block_hash: String,
    pub state_hash: String,
    pub receipts_root: String,
}

/// A committed transaction with the proof to check it offline.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionJson {
    pub receipt: ReceiptJson,
    pub attestations: Vec<AttestationJson>,
    /// The protobuf `fiscus.types.v1.ReceiptProof` (receipt, Merkle proof,
    /// block header, attestations), standard base64: what `fiscus
    /// verify-receipt` checks.
    pub receipt_proof: String,
}

fn tx_id_param(s: &str) -> Result<Hash32, ServiceError> {
    hex::decode(s)
        .ok()
        .and_then(|b| Hash32::from_slice("tx id", &b).ok())
        .ok_or_else(|| {
            err(
                ErrorKind::InvalidArgument,
                "api.bad_tx_id",
                "a tx id is 64 hex digits",
            )
        })
}

/// Which attestations a receipt carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProofKind {
    /// This member's own signed attestation (the default).
    #[default]
    Member,
    /// A majority of the consortium's members, agreeing on the block hash,
    /// state hash and receipts root: what proves finality to a third party.
    Final,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TransactionQuery {
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
async fn transaction(
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
    let receipt = Receipt::decode(&proof.receipt[..])
        .map_err(|e| err(ErrorKind::Internal, "api.backend_error", e.to_string()))?;
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

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountJson {
    pub org_code: String,
    pub program_id: String,
    pub balance_fen: i64,
    pub frozen: bool,
    pub appropriated_fen: i64,
    pub received_fen: i64,
    pub allocated_out_fen: i64,
    pub disbursed_fen: i64,
    pub recovered_out_fen: i64,
    pub recovered_in_fen: i64,
    /// Parcels of funds still held, oldest first (ADR 0004).
    pub lots: usize,
}

pub(crate) fn account_json(key: &[u8], a: &Account) -> Option<AccountJson> {
    let key = std::str::from_utf8(key).ok()?.strip_prefix("acct/")?;
    let (org, program) = key.split_once('/')?;
    Some(AccountJson {
        org_code: org.to_owned(),
        program_id: program.to_owned(),
        balance_fen: a.balance_fen,
        frozen: a.frozen,
        appropriated_fen: a.appropriated_fen,
        received_fen: a.received_fen,
        allocated_out_fen: a.allocated_out_fen,
        disbursed_fen: a.disbursed_fen,
        recovered_out_fen: a.recovered_out_fen,
        recovered_in_fen: a.recovered_in_fen,
        lots: a.lots.len(),
    })
}

fn check_segment(s: &str, what: &str) -> Result<(), ServiceError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(err(
            ErrorKind::InvalidArgument,
            "api.bad_path",
            format!("{what} must be 1 to 64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// One account's balances.
#[utoipa::path(tag = "query",
    params(("org" = String, Path, description = "GB/T 2260 code"), ("program" = String, Path)),
    responses((status = 200, body = AccountJson), (status = 403, body = ProblemDoc, content_type = "application/problem+json"), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/accounts/{org}/{program}")]
async fn account(
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
            "api.not_found",
            format!("no account {org}/{program}"),
        )
    })?;
    let a = Account::decode(&value[..])
        .map_err(|e| err(ErrorKind::Internal, "api.backend_error", e.to_string()))?;
    account_json(key.as_bytes(), &a)
        .map(web::Json)
        .ok_or_else(|| err(ErrorKind::Internal, "api.backend_error", "bad account key"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this org's accounts (accounts lists only).
    pub org: Option<String>,
    /// From the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Items per page (default 100, capped by the server).
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountPage {
    pub items: Vec<AccountJson>,
    /// The height every item on this page (and the following pages) is read at.
    pub height: u64,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
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
                        "api.bad_cursor",
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
        let r = self
            .backend
            .ledger()
            .await?
            .get_state(fiscus_proto::pb::ledger::GetStateRequest {
                key: key.to_vec(),
                at_height,
            })
            .await
            .map_err(|s| from_status("state", &s))?
            .into_inner();
        Ok(r.found.then_some(r.value))
    }
}

/// Accounts, a page at a time, as the disclosure policy allows.
#[utoipa::path(tag = "query", params(ListQuery),
    responses((status = 200, body = AccountPage), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/accounts")]
async fn accounts(
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

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramJson {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub functional_code: String,
    pub fiscal_year: u32,
    pub document: String,
    pub owner_org: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramPage {
    pub items: Vec<ProgramJson>,
    pub height: u64,
    pub next_cursor: Option<String>,
}

/// Programs (funds with a purpose and a functional classification).
#[utoipa::path(tag = "query", params(ListQuery), responses((status = 200, body = ProgramPage)), security(("api_key" = [])))]
#[get("/v1/programs")]
async fn programs(
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

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountVersion {
    /// The block that wrote this version.
    pub block_number: u64,
    pub deleted: bool,
    pub account: Option<AccountJson>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Newest first, at most this many (default 100, capped by the server).
    pub limit: Option<u32>,
}

/// Every version of one account, newest first.
#[utoipa::path(tag = "query",
    params(("org" = String, Path), ("program" = String, Path), HistoryQuery),
    responses((status = 200, body = Vec<AccountVersion>), (status = 403, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/accounts/{org}/{program}/history")]
async fn account_history(
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
            at_height: 0,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceSourceJson {
    pub tx_id: String,
    pub amount_fen: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceStepJson {
    pub tx_id: String,
    /// `appropriate`, `allocate`, `disburse`, `recover`, `adjust` or `bundle`.
    pub kind: String,
    pub from_org: String,
    pub to: String,
    pub program_id: String,
    pub amount_fen: i64,
    pub document: String,
    pub at_ms: i64,
    pub sources: Vec<TraceSourceJson>,
    /// Allocations: by when the allocating org had to pass the funds on
    /// (Budget Law art. 52); 0 where no deadline applied.
    pub due_at_ms: i64,
    pub late: bool,
    pub acknowledged: bool,
    /// Allocations: the rule that set the deadline, e.g. `art52.3`.
    pub deadline_rule: String,
    /// `approval`, `receipt` or `appropriation`.
    pub clock_basis: String,
    /// Disbursements: the recipient's name.
    pub recipient_name: String,
    /// Disbursements: the economic classification code (经济分类).
    pub economic_code: String,
    /// Adjustments: the tx id corrected (hex), else empty.
    pub corrects_tx_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TraceJson {
    pub height: u64,
    /// Breadth-first from the asked transaction up to its appropriations.
    pub steps: Vec<TraceStepJson>,
}

/// Lineage: from a disbursement or allocation up to the central appropriation.
#[utoipa::path(tag = "query", params(("tx_id" = String, Path, description = "64 hex digits")),
    responses((status = 200, body = TraceJson), (status = 404, body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/trace/{tx_id}")]
async fn trace(
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
    Ok(web::Json(TraceJson {
        height: r.height,
        steps: r
            .steps
            .into_iter()
            .map(|s| TraceStepJson {
                tx_id: hex::encode(s.tx_id),
                kind: s.kind,
                from_org: s.from_org,
                to: s.to,
                program_id: s.program_id,
                amount_fen: s.amount_fen,
                document: s.document,
                at_ms: s.at_ms,
                sources: s
                    .sources
                    .into_iter()
                    .map(|x| TraceSourceJson {
                        tx_id: hex::encode(x.tx_id),
                        amount_fen: x.amount_fen,
                    })
                    .collect(),
                due_at_ms: s.due_at_ms,
                late: s.late,
                acknowledged: s.acknowledged,
                deadline_rule: s.deadline_rule,
                clock_basis: s.clock_basis,
                recipient_name: s.recipient_name,
                economic_code: s.economic_code,
                corrects_tx_id: hex::encode(s.corrects_tx_id),
            })
            .collect(),
    }))
}

/// The routes, registered so that the OpenAPI document lists exactly them.
pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(submit_envelope)
        .service(submit_operation)
        .service(chain)
        .service(block_by_number)
        .service(transaction)
        .service(accounts)
        .service(account)
        .service(account_history)
        .service(programs)
        .service(trace);
    crate::bulk::routes(app);
    crate::events::routes(app);
    crate::deadlines::routes(app);
}
