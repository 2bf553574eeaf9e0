//! Bulk import of allocations and disbursements (CSV, .xlsx or JSON), validated as a
//! whole before anything is submitted and idempotent by each row's external
//! id. Reading the file (encodings, workbooks, Chinese headers, 元) and the
//! template are `crate::import_file`; exports are in `crate::export`.
//!
//! The formats are documented in `docs/bulk-import.md`.

use crate::backend::from_status;
use crate::clients::{Client, Scope};
use crate::context::Api;
use crate::error::err;
use crate::ops::{Account, Operation, RecipientJson};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::ledger::GetReceiptRequest;
use fiscus_proto::pb::state::{Account as AccountState, ProgramRecord};
use fiscus_proto::pb::transfer::TransferCall;
use fiscus_proto::pb::types::tx_payload::Call;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use utoipa::{IntoParams, ToSchema};

pub use crate::import_file::{Format, ImportRow, RowError};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `csv` (default), `json` or `xlsx` (an Excel workbook, recognised as
    /// one whatever `format` says).
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub format: Format,
    /// A CSV's text encoding: `auto` (default: UTF-8, with or without BOM,
    /// else GB18030), `utf-8`, or `gb18030` (also `gbk`).
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub encoding: crate::import_file::Encoding,
    /// Validate only; submit nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// A workbook's sheet to read (default: the first).
    #[serde(default)]
    pub sheet: Option<String>,
}

/// A problem of the file as a whole, reported once: e.g. its rows together
/// move more than an account holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileError {
    pub code: String,
    /// In Chinese, then in English; amounts in 元.
    pub message: String,
    /// The rows involved (Excel row numbers).
    pub rows: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowResult {
    pub row: usize,
    pub external_id: String,
    pub tx_id: String,
    /// `valid` (dry run), `submitted`, `already_imported` (a re-run), or
    /// `rejected_on_chain: <status>` (an earlier run's transaction that the
    /// contract refused; fix the row and give it a new external id).
    pub status: String,
    pub block_number: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReport {
    pub rows: usize,
    pub submitted: usize,
    pub already_imported: usize,
    /// Rows whose transaction an earlier run put on the chain and the contract refused.
    pub rejected_on_chain: usize,
    pub dry_run: bool,
    pub results: Vec<RowResult>,
}

/// The 422 answer: every bad row, and nothing submitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportProblem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    /// Every bad row, a cell at a time where one cell is at fault.
    pub errors: Vec<RowError>,
    /// Problems of the file as a whole, each once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub file_errors: Vec<FileError>,
}

use crate::import_file::{MAX_ROWS, fen_to_yuan as yuan};

/// Row `X`'s transaction is the custodial signer's under the idempotency key
/// `import:X`; REST refuses keys with this prefix, so the two never meet.
pub const IMPORT_KEY_PREFIX: &str = "import:";

impl ImportRow {
    fn operation(&self) -> Result<Operation, String> {
        let from = Account {
            org_code: self.org_code.clone(),
            program_id: self.program_id.clone(),
        };
        match self.op.as_str() {
            "allocate" => Ok(Operation::Allocate {
                from,
                to_org_code: self.to_org_code.clone(),
                amount_fen: self.amount_fen.unwrap_or(0),
                document: self.document.clone(),
                external_id: self.external_id.clone(),
            }),
            "disburse" => Ok(Operation::Disburse {
                from,
                recipient: RecipientJson {
                    unified_social_credit_code: (!self.recipient_uscc.is_empty())
                        .then(|| self.recipient_uscc.clone()),
                    personal_id_hash_hex: (!self.recipient_id_hash.is_empty())
                        .then(|| self.recipient_id_hash.clone()),
                    personal_id_number: (!self.recipient_id_number.is_empty())
                        .then(|| self.recipient_id_number.clone()),
                    name: self.recipient_name.clone(),
                },
                amount_fen: self.amount_fen.unwrap_or(0),
                purpose: self.purpose.clone(),
                economic_code: self.economic_code.clone(),
                external_id: self.external_id.clone(),
            }),
            other => Err(format!("op {other:?} is not allocate or disburse")),
        }
    }
}

/// Checks one row on its own: its id, that it moves the client's own org's
/// funds, and the contract's own rules for the call it becomes (codes,
/// amounts, texts, recipients, authority), the same functions the chain runs.
fn check_row(api: &Api, client: &Client, row: &ImportRow) -> Result<TransferCall, String> {
    // The contract's own rule (it keeps the id on chain), and an import row needs one.
    if row.external_id.is_empty() {
        return Err("外部编号不能为空 / external_id is required on every import row".into());
    }
    fiscus_contract_executor::rules::external_id(&row.external_id)
        .map_err(|r| format!("{}: {}", r.code, r.reason))?;
    if row.org_code != client.org {
        return Err(format!(
            "org_code {} is not the API client's org {} (an org only moves its own funds)",
            row.org_code, client.org
        ));
    }
    let call = row
        .operation()?
        .to_call(&api.recipient_id_salt)
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
    let signers = match client.custodial() {
        Ok(c) => api.custodial_signers(c),
        Err(_) => std::iter::once(client.org.clone()).collect(),
    };
    crate::submit::check_call(api, &call, &signers)
        .map_err(|e| format!("{}: {}", e.code, e.message))?;
    Ok(call)
}

impl Api {
    /// The block holding `tx` and its receipt status, if it was already
    /// ordered and committed here.
    async fn committed_in(&self, tx: &Hash32) -> Result<Option<(u64, String)>, ServiceError> {
        match self
            .backend
            .ledger()
            .await?
            .get_receipt(GetReceiptRequest {
                tx_id: tx.to_vec(),
                require_final: false,
            })
            .await
        {
            Ok(p) => Ok(
                fiscus_proto::pb::types::Receipt::decode(&p.into_inner().receipt[..])
                    .ok()
                    .map(|r| (r.block_number, crate::json::status_name(r.status))),
            ),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(from_status("receipt", &s)),
        }
    }
}

/// Import allocations and disbursements.
///
/// Every row is validated first (shape, org, registry, program, funds at the
/// current height, allocation rules); a file with any bad row gets a 422 with
/// every bad row, and nothing is submitted. A valid file is submitted with each
/// row's transaction derived from its `external_id`, so re-running a file
/// (e.g. after a crash) submits only the rows not yet on the chain.
#[utoipa::path(
    tag = "import",
    params(ImportQuery),
    request_body(description = "A CSV file (text/csv), an Excel workbook (.xlsx) or a JSON array of rows (application/json); columns in docs/bulk-import.md and in GET /v1/imports/template",
        content((String = "text/csv"), (Vec<ImportRow> = "application/json"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    responses(
        (status = 200, body = ImportReport),
        (status = 422, description = "Bad rows; nothing submitted", body = ImportProblem, content_type = "application/problem+json"),
        (status = 400, body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/imports")]
async fn import(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ImportQuery>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ServiceError> {
    use futures::StreamExt as _;
    let client = api.caller(&req, Scope::Import)?;
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            err(
                ErrorKind::InvalidArgument,
                codes::api::BAD_BODY,
                format!("reading the body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > api.max_import_bytes {
            return Err(err(
                ErrorKind::PayloadTooLarge,
                codes::api::BODY_TOO_LARGE,
                format!("an import file is at most {} bytes", api.max_import_bytes),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    let custodial = client.custodial()?;
    // A workbook is read as one whatever the format says: a ZIP file is never a CSV.
    let format = if crate::import_file::looks_like_xlsx(&body) {
        Format::Xlsx
    } else {
        q.format
    };
    let parsed = crate::import_file::parse_sheet(&body, format, q.encoding, q.sheet.as_deref())?;
    let rows = parsed.rows;
    let mut errors = parsed.errors;
    if rows.is_empty() && errors.is_empty() {
        return Err(err(
            ErrorKind::InvalidArgument,
            codes::import::BAD_FILE,
            "the file has no rows (a CSV needs a header line and at least one row)",
        ));
    }
    if rows.len() > MAX_ROWS {
        return Err(err(
            ErrorKind::PayloadTooLarge,
            codes::import::TOO_MANY_ROWS,
            format!("{} rows; at most {MAX_ROWS} per file", rows.len()),
        ));
    }
    let mut calls = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (n, row) in &rows {
        let fail = |m: String| RowError {
            row: *n,
            external_id: row.external_id.clone(),
            column: None,
            value: None,
            message: m,
        };
        match check_row(&api, &client, row) {
            Err(m) => errors.push(fail(m)),
            Ok(_) if !seen.insert(row.external_id.clone()) => {
                errors.push(fail("external_id appears twice in the file".into()));
            }
            Ok(call) => {
                calls.insert(*n, call);
            }
        }
    }
    // Programs and balances: read once each, at the current height.
    let mut programs: BTreeMap<String, Option<ProgramRecord>> = BTreeMap::new();
    for (n, row) in &rows {
        if calls.contains_key(n) && !programs.contains_key(&row.program_id) {
            let program = api
                .state_at(format!("prog/{}", row.program_id).as_bytes(), 0)
                .await?
                .and_then(|v| ProgramRecord::decode(&v[..]).ok());
            programs.insert(row.program_id.clone(), program);
        }
    }
    let mut planned = Vec::new();
    // i128: client-chosen amounts must not overflow the funds check.
    // (org, program) → (the file's total, its rows).
    let mut need: BTreeMap<(String, String), (i128, Vec<usize>)> = BTreeMap::new();
    for (n, row) in &rows {
        let Some(call) = calls.remove(n) else {
            continue;
        };
        let fail = |m: String| RowError {
            row: *n,
            external_id: row.external_id.clone(),
            column: None,
            value: None,
            message: m,
        };
        let Some(program) = programs.get(&row.program_id).cloned().flatten() else {
            errors.push(fail(format!(
                "contract.unknown_program: program {} does not exist on the chain",
                row.program_id
            )));
            continue;
        };
        if row.op == "allocate" {
            let direct = program.program.as_ref().is_some_and(|p| p.direct);
            if let Err(r) = fiscus_contract_executor::rules::allocation_target(
                &api.orgs(),
                &row.org_code,
                &row.to_org_code,
                direct,
            ) {
                errors.push(fail(format!("{}: {}", r.code, r.reason)));
                continue;
            }
        }
        let key = format!("{IMPORT_KEY_PREFIX}{}", row.external_id);
        let (tx, env, nonce) = match crate::submit::custodial_envelope(
            &api,
            custodial,
            &client,
            Call::Transfer(call),
            Some(&key),
        ) {
            Ok(x) => x,
            Err(e) => {
                errors.push(fail(e.message));
                continue;
            }
        };
        if let Some(first) = api.nonce_used_by_other(custodial, nonce, &tx).await? {
            errors.push(fail(format!(
                "{}: external_id {} 已作为另一笔业务导入（交易 {first}），不会再次支付；\
                 was already imported with different content (tx {first}) and is never paid twice",
                codes::import::EXTERNAL_ID_CONFLICT,
                row.external_id
            )));
            continue;
        }
        let done = api.committed_in(&tx).await?;
        if done.is_none() {
            let e = need
                .entry((row.org_code.clone(), row.program_id.clone()))
                .or_default();
            e.0 += i128::from(row.amount_fen.unwrap_or(0));
            e.1.push(*n);
        }
        planned.push((*n, row.external_id.clone(), tx, env, done));
    }
    let mut file_errors = Vec::new();
    for ((org, program), (amount, in_rows)) in &need {
        let balance = api
            .state_at(format!("acct/{org}/{program}").as_bytes(), 0)
            .await?
            .and_then(|v| AccountState::decode(&v[..]).ok())
            .map_or(0, |a| i128::from(a.balance_fen));
        if *amount > balance {
            file_errors.push(FileError {
                code: codes::import::INSUFFICIENT_FUNDS.into(),
                message: format!(
                    "本文件从 {org}/{program} 支出合计 {} 元，该账户余额 {} 元。\
                     The file moves {} 元 in total from {org}/{program}, which holds {} 元.",
                    yuan(*amount),
                    yuan(balance),
                    yuan(*amount),
                    yuan(balance)
                ),
                rows: in_rows.clone(),
            });
        }
    }
    if !errors.is_empty() || !file_errors.is_empty() {
        errors.sort_by_key(|e| e.row);
        let bad_rows = errors.iter().map(|e| e.row).collect::<BTreeSet<_>>().len();
        let total = rows.len()
            + errors
                .iter()
                .filter(|e| e.column.is_some())
                .map(|e| e.row)
                .collect::<BTreeSet<_>>()
                .len();
        tracing::info!(client = %client.name, rows = total, bad = bad_rows, "import refused");
        return Ok(HttpResponse::UnprocessableEntity()
            .content_type("application/problem+json")
            .json(ImportProblem {
                type_uri: "urn:fiscus:error:import.invalid_rows".into(),
                title: "Unprocessable Entity".into(),
                status: 422,
                detail: format!(
                    "{bad_rows} 行有误（共 {total} 行），另有 {} 处文件整体问题；未提交任何一行。\
                     {bad_rows} of {total} rows are invalid and {} problems concern the file \
                     as a whole; nothing was submitted",
                    file_errors.len(),
                    file_errors.len()
                ),
                code: codes::import::INVALID_ROWS.into(),
                errors,
                file_errors,
            }));
    }
    let mut results = Vec::with_capacity(planned.len());
    let mut submitted = 0;
    if q.dry_run {
        for (row, external_id, tx, _, done) in planned {
            results.push(RowResult {
                row,
                external_id,
                tx_id: tx.to_hex(),
                status: match &done {
                    None => "valid".into(),
                    Some((_, s)) if s == "valid" => "already_imported".into(),
                    Some((_, s)) => format!("rejected_on_chain: {s}"),
                },
                block_number: done.map_or(0, |d| d.0),
            });
        }
    } else {
        // Submitted concurrently, a window at a time; order within the file is
        // not a promise (rows are independent once validated).
        let total = planned.len();
        let mut iter = planned.into_iter();
        loop {
            let window: Vec<_> = iter.by_ref().take(64).collect();
            if window.is_empty() {
                break;
            }
            let futs = window.into_iter().map(|(row, external_id, tx, env, done)| {
                let api = api.clone();
                async move {
                    let (status, block) = match done {
                        Some((b, s)) if s == "valid" => ("already_imported".to_owned(), b),
                        Some((b, s)) => (format!("rejected_on_chain: {s}"), b),
                        None => match api.backend.broadcast(env).await? {
                            crate::backend::Ordered::Accepted(b) => ("submitted".to_owned(), b),
                            crate::backend::Ordered::Duplicate(b) => {
                                ("already_imported".to_owned(), b)
                            }
                        },
                    };
                    Ok::<_, ServiceError>(RowResult {
                        row,
                        external_id,
                        tx_id: tx.to_hex(),
                        status,
                        block_number: block,
                    })
                }
            });
            for r in futures::future::join_all(futs).await {
                let r = r?;
                if r.status == "submitted" {
                    submitted += 1;
                }
                results.push(r);
            }
            tracing::info!(client = %client.name, done = results.len(), total, "import progress");
        }
    }
    Ok(HttpResponse::Ok().json(ImportReport {
        rows: rows.len(),
        submitted,
        already_imported: results
            .iter()
            .filter(|r| r.status == "already_imported")
            .count(),
        rejected_on_chain: results
            .iter()
            .filter(|r| r.status.starts_with("rejected_on_chain"))
            .count(),
        dry_run: q.dry_run,
        results,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TemplateQuery {
    /// `xlsx` (default) or `csv`.
    #[serde(default = "xlsx")]
    #[param(value_type = Option<String>)]
    pub format: Format,
}

fn xlsx() -> Format {
    Format::Xlsx
}

/// The import template: a workbook with a sheet to fill in (Chinese headers,
/// every column formatted as text so that Excel keeps id numbers whole), a
/// sheet explaining each column and a sheet of examples; or a CSV header
/// line (UTF-8 with a byte-order mark). No API key needed.
#[utoipa::path(tag = "import", params(TemplateQuery),
    responses((status = 200, description = "The template",
        content((Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"), (String = "text/csv"))),
        (status = 400, body = crate::error::ProblemDoc, content_type = "application/problem+json")))]
#[get("/v1/imports/template")]
async fn template(q: web::Query<TemplateQuery>) -> Result<HttpResponse, ServiceError> {
    let (ctype, name) = match q.format {
        Format::Xlsx => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "fiscus-import-template.xlsx",
        ),
        Format::Csv => ("text/csv; charset=utf-8", "fiscus-import-template.csv"),
        Format::Json => {
            return Err(err(
                ErrorKind::InvalidArgument,
                codes::api::BAD_QUERY,
                "the template is format=xlsx or format=csv",
            ));
        }
    };
    let bytes = crate::import_file::template(q.format)
        .map_err(|e| err(ErrorKind::Internal, codes::api::EXPORT_FAILED, e))?;
    Ok(HttpResponse::Ok()
        .content_type(ctype)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}\""),
        ))
        .body(bytes))
}

pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(template).service(import);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import_file::{Encoding, parse};

    #[test]
    fn csv_rows_parse_with_optional_columns_empty() {
        let csv = "external_id,op,org_code,program_id,amount_fen,to_org_code,document,recipient_uscc,recipient_id_hash,recipient_name,purpose,economic_code\n\
                   r1,allocate,130100,edu,100,130102,石财〔2026〕1号,,,,,\n\
                   r2,disburse,130100,edu,50,,,12130102MB0A12342E,,育才小学,公用经费,50502\n";
        let p = parse(csv.as_bytes(), Format::Csv, Encoding::Auto).unwrap();
        assert!(p.errors.is_empty());
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].1.to_org_code, "130102");
        assert_eq!(p.rows[1].1.recipient_name, "育才小学");
        assert!(matches!(
            p.rows[1].1.operation().unwrap(),
            Operation::Disburse { .. }
        ));
    }
}
