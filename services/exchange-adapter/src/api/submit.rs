//! The REST submit endpoints: `POST /v1/transactions` (a client-signed
//! envelope) and `POST /v1/operations` (a custodial operation). They parse
//! the request and hand it to the submit pipeline (`crate::submit`).

use crate::context::Api;
use crate::context::Caller;
use crate::context::SubmitScope;
use crate::error::ProblemDoc;
use crate::error::err;
use crate::json::SubmitResult;
use crate::ops::Operation;
use crate::submit::Wait;
use crate::submit::custodial_envelope;
use crate::submit::key_reused;
use actix_web::{HttpRequest, post, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::envelope::CheckedTx;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitQuery {
    /// `ordered` (default), `commit` or `final`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub wait: Wait,
}

/// A client-signed envelope.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SubmitEnvelope {
    /// The protobuf-encoded `fiscus.types.v1.Envelope`, standard base64.
    pub envelope: String,
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
pub(super) async fn submit_envelope(
    api: web::Data<Api>,
    req: HttpRequest,
    caller: Caller<SubmitScope>,
    query: web::Query<SubmitQuery>,
    body: web::Json<SubmitEnvelope>,
) -> Result<web::Json<SubmitResult>, ServiceError> {
    let client = caller.0;
    let retry = super::idempotency_key(&req)?.is_some();
    let bytes = B64.decode(body.envelope.trim()).map_err(|_| {
        err(
            ErrorKind::InvalidArgument,
            codes::api::BAD_BASE64,
            "envelope is not standard base64",
        )
    })?;
    let tx = CheckedTx::decode(&bytes, &api.limits).map_err(|e| {
        err(
            ErrorKind::InvalidArgument,
            codes::tx::BAD_ENCODING,
            format!("the envelope does not decode: {e}"),
        )
    })?;
    let signers = crate::submit::check_envelope(&api, &tx, &client.org, &client.scopes)?;
    if let Some(fiscus_proto::pb::types::tx_payload::Call::Governance(call)) = &tx.payload.call {
        api.check_governance(call, &signers).await?;
    }
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
pub(super) async fn submit_operation(
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
            codes::api::WRONG_ORG,
            format!(
                "the operation moves funds of org {org}; API client {:?} acts for org {}",
                client.name, client.org
            ),
        ));
    }
    let key = super::idempotency_key(&req)?;
    let call = body.to_call(&api.recipient_id_salt)?;
    crate::submit::check_call(&api, &call, &api.custodial_signers(custodial))?;
    let (tx_id, env, nonce) = custodial_envelope(
        &api,
        custodial,
        &client,
        fiscus_proto::pb::types::tx_payload::Call::Transfer(call),
        key.as_deref(),
    )?;
    if key.is_some()
        && let Some(first) = api.nonce_used_by_other(custodial, nonce, &tx_id).await?
    {
        return Err(key_reused(format_args!("tx {first}")));
    }
    Ok(web::Json(
        api.order(tx_id, env, query.wait, key.is_some()).await?,
    ))
}
