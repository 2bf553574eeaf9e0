//! The REST/JSON API. Every handler is annotated for the OpenAPI document,
//! and the routes are registered through `utoipa-actix-web`, so the document
//! is built from the same list the server serves.
//!
//! The handlers are grouped by what they do: [`submit`] and [`query`] here,
//! bulk import in `crate::bulk`, exports in `crate::export`, events and webhooks in
//! `crate::events`, the overdue report in `crate::deadlines`. They build on
//! the request context (`crate::context`), the submit pipeline
//! (`crate::submit`) and the JSON types (`crate::json`); nothing below them
//! imports from here.

mod query;
mod submit;

use crate::error::err;
use actix_web::HttpRequest;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::hash::Hash32;

pub(crate) fn tx_id_param(s: &str) -> Result<Hash32, ServiceError> {
    hex::decode(s)
        .ok()
        .and_then(|b| Hash32::from_slice("tx id", &b).ok())
        .ok_or_else(|| {
            err(
                ErrorKind::InvalidArgument,
                codes::api::BAD_TX_ID,
                "a tx id is 64 hex digits",
            )
        })
}

/// The `Idempotency-Key` header, if sent: 1 to 128 visible ASCII characters.
pub(crate) fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ServiceError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let k = v.to_str().ok().filter(|k| !k.is_empty() && k.len() <= 128);
            let k = k.ok_or_else(|| {
                err(
                    ErrorKind::InvalidArgument,
                    codes::api::BAD_IDEMPOTENCY_KEY,
                    "Idempotency-Key must be 1 to 128 visible ASCII characters",
                )
            })?;
            // Bulk import derives row `X`'s transaction from the key `import:X`
            // (crate::bulk): a REST key must never stand for an import row.
            if k.starts_with(crate::bulk::IMPORT_KEY_PREFIX) {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    codes::api::BAD_IDEMPOTENCY_KEY,
                    format!(
                        "Idempotency-Key may not start with {:?}: that prefix names bulk import rows",
                        crate::bulk::IMPORT_KEY_PREFIX
                    ),
                ));
            }
            Ok(Some(k.to_owned()))
        }
    }
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
            codes::api::BAD_PATH,
            format!("{what} must be 1 to 64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// The routes, registered so that the OpenAPI document lists exactly them.
pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(submit::submit_envelope)
        .service(submit::submit_operation)
        .service(query::chain)
        .service(query::block_by_number)
        .service(query::transaction)
        .service(query::accounts)
        .service(query::account)
        .service(query::account_history)
        .service(query::programs)
        .service(query::trace);
    crate::bulk::routes(app);
    crate::export::routes(app);
    crate::events::routes(app);
    crate::deadlines::routes(app);
    crate::governance::routes(app);
}
