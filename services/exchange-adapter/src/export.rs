//! Exports of accounts, allocations and disbursements as CSV or JSON, as of
//! a height, limited by the disclosure policy.

use crate::clients::Scope;
use crate::context::Api;
use crate::error::err;
use actix_web::{HttpRequest, HttpResponse, get, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_contract_executor::deadlines;
use fiscus_proto::pb::state::{Account as AccountState, AllocationRecord, LineageRecord};
use prost::Message;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::bulk::Format;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` (default) or `json`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub format: Format,
    /// CSV for Excel (default `true`): a UTF-8 byte-order mark, so that
    /// Excel on Chinese Windows reads the Chinese text as UTF-8, and CRLF
    /// line ends. `excel=false`: no mark, LF line ends.
    #[serde(default = "yes")]
    pub excel: bool,
}

fn yes() -> bool {
    true
}

/// One exported allocation, with its Budget Law deadline status.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationExport {
    pub tx_id: String,
    pub from_org: String,
    pub to_org: String,
    pub program_id: String,
    pub amount_fen: i64,
    pub document: String,
    pub allocated_at_ms: i64,
    pub due_at_ms: i64,
    pub late: bool,
    pub acknowledged: bool,
    pub acknowledged_at_ms: i64,
    /// The Budget Law art. 52 rule that set `due_at_ms`, e.g. `art52.3`.
    pub deadline_rule: String,
    /// `approval`, `receipt` or `appropriation`.
    pub clock_basis: String,
    /// Days from the clock's start to the allocation (China Standard Time).
    pub days_taken: u32,
    pub acknowledged_late: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisbursementExport {
    pub tx_id: String,
    pub org_code: String,
    pub program_id: String,
    /// Unified social credit code, or the hex hash of a personal id.
    pub recipient: String,
    pub recipient_name: String,
    pub amount_fen: i64,
    pub purpose: String,
    /// The economic classification code (经济分类).
    pub economic_code: String,
    pub at_ms: i64,
}

fn render<T: Serialize>(rows: &[T], q: &ExportQuery) -> Result<HttpResponse, ServiceError> {
    match q.format {
        Format::Json => Ok(HttpResponse::Ok().json(rows)),
        Format::Csv => {
            let (start, terminator): (&[u8], _) = if q.excel {
                (b"\xEF\xBB\xBF", csv::Terminator::CRLF)
            } else {
                (b"", csv::Terminator::Any(b'\n'))
            };
            let mut w = csv::WriterBuilder::new()
                .terminator(terminator)
                .from_writer(start.to_vec());
            for r in rows {
                w.serialize(r).map_err(|e| {
                    err(
                        ErrorKind::Internal,
                        codes::api::EXPORT_FAILED,
                        e.to_string(),
                    )
                })?;
            }
            let bytes = w.into_inner().map_err(|e| {
                err(
                    ErrorKind::Internal,
                    codes::api::EXPORT_FAILED,
                    e.to_string(),
                )
            })?;
            Ok(HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .body(bytes))
        }
    }
}

fn hex_id(key: &[u8], prefix: &str) -> String {
    String::from_utf8_lossy(key)
        .strip_prefix(prefix)
        .unwrap_or_default()
        .to_owned()
}

/// Export the accounts the client may read, at one height.
#[utoipa::path(tag = "export", params(ExportQuery),
    responses((status = 200, description = "CSV (default: UTF-8 with a byte-order mark and CRLF for Excel, a header row; `excel=false` for neither) or JSON (`format=json`)",
        content((String = "text/csv"), (Vec<crate::json::AccountJson> = "application/json")))),
    security(("api_key" = [])))]
#[get("/v1/exports/accounts")]
async fn export_accounts(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let rows: Vec<_> = api
        .scan_at(b"acct/", 0)
        .await?
        .into_iter()
        .filter_map(|(k, v)| crate::json::account_json(&k, &AccountState::decode(&v[..]).ok()?))
        .filter(|a| api.may_read_org(&client, &a.org_code))
        .collect();
    render(&rows, &q)
}

/// Export allocations (sender's or receiver's readable), with deadline status.
#[utoipa::path(tag = "export", params(ExportQuery),
    responses((status = 200, description = "CSV (default: UTF-8 with a byte-order mark and CRLF for Excel, a header row; `excel=false` for neither) or JSON (`format=json`)",
        content((String = "text/csv"), (Vec<AllocationExport> = "application/json")))),
    security(("api_key" = [])))]
#[get("/v1/exports/allocations")]
async fn export_allocations(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let rows: Vec<_> = api
        .scan_at(b"alloc/", 0)
        .await?
        .into_iter()
        .filter_map(|(k, v)| {
            let a = AllocationRecord::decode(&v[..]).ok()?;
            let (rule, basis, days_taken) = deadlines::recorded(&a);
            Some(AllocationExport {
                tx_id: hex_id(&k, "alloc/"),
                from_org: a.from_org,
                to_org: a.to_org,
                program_id: a.program_id,
                amount_fen: a.amount_fen,
                document: a.document,
                allocated_at_ms: a.allocated_at_ms,
                due_at_ms: a.due_at_ms,
                late: a.late,
                acknowledged: a.acknowledged,
                acknowledged_at_ms: a.acknowledged_at_ms,
                deadline_rule: rule.to_owned(),
                clock_basis: basis.to_owned(),
                days_taken,
                acknowledged_late: a.acknowledged_late,
            })
        })
        .filter(|a| api.may_read_org(&client, &a.from_org) || api.may_read_org(&client, &a.to_org))
        .collect();
    render(&rows, &q)
}

/// Export disbursements to final recipients.
#[utoipa::path(tag = "export", params(ExportQuery),
    responses((status = 200, description = "CSV (default: UTF-8 with a byte-order mark and CRLF for Excel, a header row; `excel=false` for neither) or JSON (`format=json`)",
        content((String = "text/csv"), (Vec<DisbursementExport> = "application/json")))),
    security(("api_key" = [])))]
#[get("/v1/exports/disbursements")]
async fn export_disbursements(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let rows: Vec<_> = api
        .scan_at(b"lineage/", 0)
        .await?
        .into_iter()
        .filter_map(|(k, v)| {
            let l = LineageRecord::decode(&v[..]).ok()?;
            (l.kind == "disburse").then(|| DisbursementExport {
                tx_id: hex_id(&k, "lineage/"),
                org_code: l.from_org,
                program_id: l.program_id,
                recipient: l.to,
                recipient_name: l.recipient_name,
                amount_fen: l.amount_fen,
                purpose: l.document,
                economic_code: l.economic_code,
                at_ms: l.at_ms,
            })
        })
        .filter(|d| api.may_read_org(&client, &d.org_code))
        .collect();
    render(&rows, &q)
}

pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(export_accounts)
        .service(export_allocations)
        .service(export_disbursements);
}
