//! Funds sitting past their Budget Law art. 52 deadline and still not passed
//! down, at any height: a query over state, judged by the contract's own
//! function (`fiscus_contract_executor::deadlines::overdue_in_account`) with
//! the approvals and holidays of the configuration at that height.

use crate::backend::from_status;
use crate::clients::Scope;
use crate::context::Api;
use crate::error::{ProblemDoc, err};
use actix_web::{HttpRequest, get, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_contract_executor::calendar::{day_of, format_date};
use fiscus_contract_executor::deadlines::{basis_name, overdue_in_account, rule_name};
use fiscus_contract_executor::{Calendar, Orgs, keys};
use fiscus_proto::pb::ledger::GetBlockRequest;
use fiscus_proto::pb::state::{Account, Lot, ProgramRecord};
use fiscus_proto::pb::types::{BlockHeader, ConsortiumConfig};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OverdueQuery {
    /// The height to judge at (its block's time is "now"); default: the head.
    pub height: Option<u64>,
}

/// Funds of one lot held past their deadline.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueItem {
    pub org_code: String,
    pub program_id: String,
    /// The transaction (or bundle) that brought the funds.
    pub source_tx_id: String,
    pub amount_fen: i64,
    /// e.g. `art52.2.general`, `art52.3` (see the contract-executor README).
    pub rule: String,
    /// `approval`, `receipt` or `appropriation`.
    pub clock_basis: String,
    pub clock_start_date: String,
    /// The last day (China Standard Time) the funds were due to be passed down.
    pub due_date: String,
    pub days_overdue: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueJson {
    pub height: u64,
    /// The block time the verdicts are judged at.
    pub as_of_ms: i64,
    pub as_of_date: String,
    pub items: Vec<OverdueItem>,
}

fn corrupt(what: &str) -> ServiceError {
    err(
        ErrorKind::Internal,
        codes::api::BACKEND_ERROR,
        format!("the ledger returned a {what} that does not decode"),
    )
}

/// Funds overdue under Budget Law art. 52 and still not passed down.
///
/// Every lot an org holds past its deadline, judged at the block time of
/// `height`, limited to the orgs the caller may read.
#[utoipa::path(tag = "query", params(OverdueQuery),
    responses(
        (status = 200, body = OverdueJson),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No block at that height", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
#[get("/v1/deadlines/overdue")]
async fn overdue(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<OverdueQuery>,
) -> Result<web::Json<OverdueJson>, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let ledger = api.backend.ledger().await?;
    let head = api.backend.chain_info().await?.height;
    let height = q.height.unwrap_or(head);
    if height == 0 || height > head {
        return Err(err(
            ErrorKind::NotFound,
            codes::api::NO_SUCH_HEIGHT,
            format!("height must be 1 to {head}"),
        ));
    }
    let block = ledger
        .clone()
        .get_block(GetBlockRequest {
            number: height,
            hash: Vec::new(),
        })
        .await
        .map_err(|s| from_status("block", &s))?
        .into_inner();
    let as_of_ms = BlockHeader::decode(&block.header[..])
        .map_err(|_| corrupt("block header"))?
        .timestamp_ms;
    let config = api
        .state_at(keys::CONFIG, height)
        .await?
        .ok_or_else(|| corrupt("configuration"))?;
    let config = ConsortiumConfig::decode(&config[..]).map_err(|_| corrupt("configuration"))?;
    let (orgs, calendar) = (Orgs::from_config(&config), Calendar::from_config(&config));
    let programs: BTreeMap<String, ProgramRecord> = api
        .scan_at(b"prog/", height)
        .await?
        .into_iter()
        .filter_map(|(k, v)| {
            let id = String::from_utf8(k).ok()?.strip_prefix("prog/")?.to_owned();
            Some((id, ProgramRecord::decode(&v[..]).ok()?))
        })
        .collect();
    // The closed lots still held now, as of `height`; a lot spent since
    // `height` is no longer listed by a scan and is read by its key below.
    let mut closed: BTreeMap<Vec<u8>, Vec<u8>> =
        api.scan_at(b"lot/", height).await?.into_iter().collect();
    let mut items = Vec::new();
    for (k, v) in api.scan_at(b"acct/", height).await? {
        let key = String::from_utf8_lossy(&k).into_owned();
        let Some((org, prog)) = key.strip_prefix("acct/").and_then(|r| r.split_once('/')) else {
            continue;
        };
        let (Some(program), true) = (programs.get(prog), api.may_read_org(&client, org)) else {
            continue;
        };
        let account = Account::decode(&v[..]).map_err(|_| corrupt("account"))?;
        // Every lot the account held at `height`, oldest first: its closed
        // lots under their own keys, then its open ones (ADR 0006).
        let mut held = Vec::new();
        for seq in account.lot_head..account.lot_tail {
            let lot_key = keys::lot(org, prog, seq);
            let raw = match closed.remove(&lot_key) {
                Some(raw) => raw,
                None => api
                    .state_at(&lot_key, height)
                    .await?
                    .ok_or_else(|| corrupt("account's lot"))?,
            };
            held.push(Lot::decode(&raw[..]).map_err(|_| corrupt("lot"))?);
        }
        held.extend(account.lots);
        for o in overdue_in_account(org, prog, &held, program, &orgs, &calendar, as_of_ms) {
            items.push(OverdueItem {
                org_code: o.org,
                program_id: o.program_id,
                source_tx_id: hex::encode(&o.source_tx_id),
                amount_fen: o.amount_fen,
                rule: rule_name(o.deadline.rule).to_owned(),
                clock_basis: basis_name(o.deadline.basis).to_owned(),
                clock_start_date: format_date(o.deadline.start),
                due_date: o.deadline.due.map(format_date).unwrap_or_default(),
                days_overdue: o.days_overdue,
            });
        }
    }
    Ok(web::Json(OverdueJson {
        height,
        as_of_ms,
        as_of_date: format_date(day_of(as_of_ms)),
        items,
    }))
}

pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(overdue);
}
