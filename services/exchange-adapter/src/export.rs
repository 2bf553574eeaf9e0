//! Exports of accounts, allocations and disbursements as CSV, JSON or Excel
//! (`.xlsx`), limited by the disclosure policy. Each is read at one height
//! (the head when the request arrives: rows and names alike), which the
//! answer names in `X-Fiscus-Height`.
//!
//! Every format carries the same columns ([`Column`] lists them per export,
//! and a test checks they are the JSON fields): codes with the org and
//! program names beside them, times both as China Standard Time text
//! (`2026-03-01 10:00:00`) and as Unix milliseconds, the main amount both in
//! 元 (text with two decimals) and in fen, and for allocations and
//! disbursements the sender's own `external_id`. In a workbook, amounts in
//! 元 are numbers shown with two decimals, fen are whole numbers, times are
//! date-times (CST) and flags are booleans; the header row is frozen and in
//! Chinese (`headers=en` for English). A CSV is for Excel by default: a
//! UTF-8 byte-order mark and CRLF line ends (`excel=false` for neither), with
//! English headers (`headers=zh` for Chinese).

use crate::clients::Scope;
use crate::context::Api;
use crate::error::err;
use crate::import_file::{Format, fen_to_yuan};
use actix_web::{HttpRequest, HttpResponse, get, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_contract_executor::deadlines;
use fiscus_proto::pb::state::{
    Account as AccountState, AllocationRecord, LineageRecord, ProgramRecord,
};
use fiscus_proto::pb::types::ConsortiumConfig;
use prost::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` (default), `json` or `xlsx`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub format: Format,
    /// CSV for Excel (default `true`): a UTF-8 byte-order mark, so that
    /// Excel on Chinese Windows reads the Chinese text as UTF-8, and CRLF
    /// line ends. `excel=false`: no mark, LF line ends.
    #[serde(default = "yes")]
    pub excel: bool,
    /// The header row's language: `zh` or `en`. Default: `zh` in a
    /// workbook, `en` in a CSV.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub headers: Option<Headers>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Headers {
    Zh,
    En,
}

fn yes() -> bool {
    true
}

/// How a column is written in a workbook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// A whole number (fen, counts, days).
    Int,
    /// 元 as text with two decimals; a number shown as `#,##0.00` in a workbook.
    Yuan,
    /// China Standard Time as `YYYY-MM-DD HH:MM:SS` (empty: none); a
    /// date-time in a workbook.
    Time,
    Bool,
}

/// One export column: its JSON field, its Chinese header and its kind.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub field: &'static str,
    pub zh: &'static str,
    pub kind: Kind,
}

const fn col(field: &'static str, zh: &'static str, kind: Kind) -> Column {
    Column { field, zh, kind }
}

/// A row type of an export, with its columns in order.
pub trait ExportRow: Serialize {
    const COLUMNS: &'static [Column];
    /// The worksheet's name.
    const SHEET: &'static str;
}

/// One exported account: the account as `GET /v1/accounts` shows it, with
/// the org's and program's names and the balance in 元 beside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountExport {
    pub org_name: String,
    pub program_name: String,
    /// The balance in 元, two decimals.
    pub balance_yuan: String,
    #[serde(flatten)]
    pub account: crate::json::AccountJson,
}

impl ExportRow for AccountExport {
    const SHEET: &'static str = "账户 accounts";
    const COLUMNS: &'static [Column] = &[
        col("org_code", "单位代码", Kind::Text),
        col("org_name", "单位名称", Kind::Text),
        col("program_id", "项目编号", Kind::Text),
        col("program_name", "项目名称", Kind::Text),
        col("balance_yuan", "余额（元）", Kind::Yuan),
        col("balance_fen", "余额（分）", Kind::Int),
        col("frozen", "已冻结", Kind::Bool),
        col("appropriated_fen", "拨款（分）", Kind::Int),
        col("received_fen", "收到下达（分）", Kind::Int),
        col("allocated_out_fen", "下达下级（分）", Kind::Int),
        col("disbursed_fen", "支付（分）", Kind::Int),
        col("recovered_out_fen", "收回上缴（分）", Kind::Int),
        col("recovered_in_fen", "收回收到（分）", Kind::Int),
        col("lots", "资金批次数", Kind::Int),
    ];
}

/// One exported allocation, with its Budget Law deadline status.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllocationExport {
    pub tx_id: String,
    /// The sender's own id for it, if it gave one (e.g. an import row's).
    pub external_id: String,
    pub from_org: String,
    pub from_org_name: String,
    pub to_org: String,
    pub to_org_name: String,
    pub program_id: String,
    pub program_name: String,
    /// The amount in 元, two decimals.
    pub amount_yuan: String,
    pub amount_fen: i64,
    pub document: String,
    /// China Standard Time, `YYYY-MM-DD HH:MM:SS`.
    pub allocated_at: String,
    pub allocated_at_ms: i64,
    /// China Standard Time; empty when no deadline applied.
    pub due_at: String,
    pub due_at_ms: i64,
    pub late: bool,
    pub acknowledged: bool,
    /// China Standard Time; empty until acknowledged.
    pub acknowledged_at: String,
    pub acknowledged_at_ms: i64,
    /// The Budget Law art. 52 rule that set `due_at_ms`, e.g. `art52.3`.
    pub deadline_rule: String,
    /// `approval`, `receipt` or `appropriation`.
    pub clock_basis: String,
    /// Days from the clock's start to the allocation (China Standard Time).
    pub days_taken: u32,
    pub acknowledged_late: bool,
}

impl ExportRow for AllocationExport {
    const SHEET: &'static str = "下达 allocations";
    const COLUMNS: &'static [Column] = &[
        col("tx_id", "交易编号", Kind::Text),
        col("external_id", "外部编号", Kind::Text),
        col("from_org", "下达单位代码", Kind::Text),
        col("from_org_name", "下达单位名称", Kind::Text),
        col("to_org", "接收单位代码", Kind::Text),
        col("to_org_name", "接收单位名称", Kind::Text),
        col("program_id", "项目编号", Kind::Text),
        col("program_name", "项目名称", Kind::Text),
        col("amount_yuan", "金额（元）", Kind::Yuan),
        col("amount_fen", "金额（分）", Kind::Int),
        col("document", "文号", Kind::Text),
        col("allocated_at", "下达时间", Kind::Time),
        col("allocated_at_ms", "下达时间（毫秒）", Kind::Int),
        col("due_at", "应下达期限", Kind::Time),
        col("due_at_ms", "应下达期限（毫秒）", Kind::Int),
        col("late", "逾期下达", Kind::Bool),
        col("acknowledged", "已确认", Kind::Bool),
        col("acknowledged_at", "确认时间", Kind::Time),
        col("acknowledged_at_ms", "确认时间（毫秒）", Kind::Int),
        col("deadline_rule", "期限依据", Kind::Text),
        col("clock_basis", "起算依据", Kind::Text),
        col("days_taken", "用时（天）", Kind::Int),
        col("acknowledged_late", "逾期确认", Kind::Bool),
    ];
}

/// One exported disbursement to a final recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct DisbursementExport {
    pub tx_id: String,
    /// The payer's own id for it, if it gave one (e.g. an import row's).
    pub external_id: String,
    pub org_code: String,
    pub org_name: String,
    pub program_id: String,
    pub program_name: String,
    /// Unified social credit code, or the hex hash of a personal id.
    pub recipient: String,
    pub recipient_name: String,
    /// The amount in 元, two decimals.
    pub amount_yuan: String,
    pub amount_fen: i64,
    pub purpose: String,
    /// The economic classification code (经济分类).
    pub economic_code: String,
    /// China Standard Time, `YYYY-MM-DD HH:MM:SS`.
    pub at: String,
    pub at_ms: i64,
}

impl ExportRow for DisbursementExport {
    const SHEET: &'static str = "支付 disbursements";
    const COLUMNS: &'static [Column] = &[
        col("tx_id", "交易编号", Kind::Text),
        col("external_id", "外部编号", Kind::Text),
        col("org_code", "付款单位代码", Kind::Text),
        col("org_name", "付款单位名称", Kind::Text),
        col("program_id", "项目编号", Kind::Text),
        col("program_name", "项目名称", Kind::Text),
        col("recipient", "收款人代码", Kind::Text),
        col("recipient_name", "收款人名称", Kind::Text),
        col("amount_yuan", "金额（元）", Kind::Yuan),
        col("amount_fen", "金额（分）", Kind::Int),
        col("purpose", "用途", Kind::Text),
        col("economic_code", "经济分类", Kind::Text),
        col("at", "支付时间", Kind::Time),
        col("at_ms", "支付时间（毫秒）", Kind::Int),
    ];
}

/// China Standard Time (UTC+8) as `YYYY-MM-DD HH:MM:SS`; empty for 0.
pub fn cst(ms: i64) -> String {
    if ms == 0 {
        return String::new();
    }
    let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC);
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => {
            let t = t.to_offset(offset);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        Err(_) => String::new(),
    }
}

fn failed(e: impl std::fmt::Display) -> ServiceError {
    err(
        ErrorKind::Internal,
        codes::api::EXPORT_FAILED,
        e.to_string(),
    )
}

/// A row's cells in column order, as JSON values.
fn cells<T: ExportRow>(row: &T) -> Result<Vec<Value>, ServiceError> {
    let Value::Object(mut m) = serde_json::to_value(row).map_err(failed)? else {
        return Err(failed("an export row is not an object"));
    };
    Ok(T::COLUMNS
        .iter()
        .map(|c| m.remove(c.field).unwrap_or(Value::Null))
        .collect())
}

fn header<T: ExportRow>(h: Headers) -> Vec<&'static str> {
    T::COLUMNS
        .iter()
        .map(|c| if h == Headers::Zh { c.zh } else { c.field })
        .collect()
}

fn csv_bytes<T: ExportRow>(rows: &[T], q: &ExportQuery) -> Result<Vec<u8>, ServiceError> {
    let (start, terminator): (&[u8], _) = if q.excel {
        (b"\xEF\xBB\xBF", csv::Terminator::CRLF)
    } else {
        (b"", csv::Terminator::Any(b'\n'))
    };
    let mut w = csv::WriterBuilder::new()
        .terminator(terminator)
        .from_writer(start.to_vec());
    w.write_record(header::<T>(q.headers.unwrap_or(Headers::En)))
        .map_err(failed)?;
    for r in rows {
        let record: Vec<String> = cells(r)?
            .into_iter()
            .map(|v| match v {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect();
        w.write_record(&record).map_err(failed)?;
    }
    w.into_inner().map_err(failed)
}

/// The rows as a workbook of one sheet: typed cells, Chinese (or English)
/// headers in a frozen first row.
pub fn xlsx_bytes<T: ExportRow>(rows: &[T], headers: Headers) -> Result<Vec<u8>, ServiceError> {
    use rust_xlsxwriter::{ExcelDateTime, Format as CellFormat, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(T::SHEET).map_err(failed)?;
    let bold = CellFormat::new().set_bold();
    let yuan = CellFormat::new().set_num_format("#,##0.00");
    let when = CellFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    // Whole numbers in full: Excel's General format shows 13-digit
    // milliseconds as 1.76723E+12.
    let whole = CellFormat::new().set_num_format("0");
    for (c, (name, column)) in header::<T>(headers).iter().zip(T::COLUMNS).enumerate() {
        let c = u16::try_from(c).map_err(failed)?;
        sheet
            .write_string_with_format(0, c, *name, &bold)
            .map_err(failed)?;
        let width = match column.kind {
            Kind::Time => 20.0,
            Kind::Text if column.field == "tx_id" || column.field == "recipient" => 66.0,
            _ => 14.0,
        };
        sheet.set_column_width(c, width).map_err(failed)?;
    }
    sheet.set_freeze_panes(1, 0).map_err(failed)?;
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r + 1).map_err(failed)?;
        for (c, (value, column)) in cells(row)?.into_iter().zip(T::COLUMNS).enumerate() {
            let c = u16::try_from(c).map_err(failed)?;
            match (column.kind, value) {
                (_, Value::Null) => {}
                (Kind::Time, Value::String(s)) if s.is_empty() => {}
                (Kind::Time, Value::String(s)) => {
                    let t = ExcelDateTime::parse_from_str(&s).map_err(failed)?;
                    sheet
                        .write_datetime_with_format(r, c, t, &when)
                        .map_err(failed)?;
                }
                (Kind::Yuan, Value::String(s)) => {
                    let fen = crate::import_file::yuan_to_fen(s.trim_start_matches('-'))
                        .map_err(failed)?;
                    let sign = if s.starts_with('-') { -1.0 } else { 1.0 };
                    // Exact for every amount below 2^53 fen (90 trillion 元).
                    sheet
                        .write_number_with_format(r, c, sign * fen as f64 / 100.0, &yuan)
                        .map_err(failed)?;
                }
                (Kind::Int, Value::Number(n)) => {
                    sheet
                        .write_number_with_format(r, c, n.as_f64().unwrap_or_default(), &whole)
                        .map_err(failed)?;
                }
                (Kind::Bool, Value::Bool(b)) => {
                    sheet.write_boolean(r, c, b).map_err(failed)?;
                }
                (_, Value::String(s)) => {
                    sheet.write_string(r, c, s).map_err(failed)?;
                }
                (_, other) => {
                    sheet
                        .write_string(r, c, other.to_string())
                        .map_err(failed)?;
                }
            }
        }
    }
    book.save_to_buffer().map_err(failed)
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The header naming the height an export was read at.
pub const HEIGHT_HEADER: &str = "X-Fiscus-Height";

fn render<T: ExportRow>(
    rows: &[T],
    q: &ExportQuery,
    name: &str,
    height: u64,
) -> Result<HttpResponse, ServiceError> {
    let mut ok = HttpResponse::Ok();
    ok.insert_header((HEIGHT_HEADER, height.to_string()));
    match q.format {
        Format::Json => Ok(ok.json(rows)),
        Format::Csv => Ok(ok
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}.csv\""),
            ))
            .body(csv_bytes(rows, q)?)),
        Format::Xlsx => Ok(ok
            .content_type(XLSX)
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}.xlsx\""),
            ))
            .body(xlsx_bytes(rows, q.headers.unwrap_or(Headers::Zh))?)),
    }
}

fn hex_id(key: &[u8], prefix: &str) -> String {
    String::from_utf8_lossy(key)
        .strip_prefix(prefix)
        .unwrap_or_default()
        .to_owned()
}

/// Org and program names, read at the export's height.
struct Names {
    orgs: BTreeMap<String, String>,
    programs: BTreeMap<String, String>,
}

impl Names {
    async fn read(api: &Api, height: u64) -> Result<Self, ServiceError> {
        let orgs = api
            .state_at(fiscus_contract_executor::keys::CONFIG, height)
            .await?
            .and_then(|v| ConsortiumConfig::decode(&v[..]).ok())
            .map(|c| c.orgs.into_iter().map(|o| (o.code, o.name)).collect())
            .unwrap_or_default();
        let programs = api
            .scan_at(b"prog/", height)
            .await?
            .into_iter()
            .filter_map(|(k, v)| {
                let p = ProgramRecord::decode(&v[..]).ok()?.program?;
                Some((hex_id(&k, "prog/"), p.name))
            })
            .collect();
        Ok(Self { orgs, programs })
    }

    fn org(&self, code: &str) -> String {
        self.orgs.get(code).cloned().unwrap_or_default()
    }

    fn program(&self, id: &str) -> String {
        self.programs.get(id).cloned().unwrap_or_default()
    }
}

const EXPORT_BODY: &str = "CSV (default: UTF-8 with a byte-order mark and CRLF for Excel, English headers; `excel=false` for neither, `headers=zh` for Chinese), JSON (`format=json`) or an Excel workbook (`format=xlsx`: typed cells, Chinese headers in a frozen row)";

/// Export the accounts the client may read, at the head.
#[utoipa::path(tag = "export", params(ExportQuery),
    responses((status = 200, description = EXPORT_BODY,
        headers(("X-Fiscus-Height" = u64, description = "The height the export was read at")),
        content((String = "text/csv"), (Vec<AccountExport> = "application/json"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/exports/accounts")]
async fn export_accounts(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let height = api.head().await?;
    let names = Names::read(&api, height).await?;
    let rows: Vec<_> = api
        .scan_at(b"acct/", height)
        .await?
        .into_iter()
        .filter_map(|(k, v)| crate::json::account_json(&k, &AccountState::decode(&v[..]).ok()?))
        .filter(|a| api.may_read_org(&client, &a.org_code))
        .map(|a| AccountExport {
            org_name: names.org(&a.org_code),
            program_name: names.program(&a.program_id),
            balance_yuan: fen_to_yuan(i128::from(a.balance_fen)),
            account: a,
        })
        .collect();
    render(&rows, &q, "accounts", height)
}

/// Export allocations (sender's or receiver's readable), with deadline status.
#[utoipa::path(tag = "export", params(ExportQuery),
    responses((status = 200, description = EXPORT_BODY,
        headers(("X-Fiscus-Height" = u64, description = "The height the export was read at")),
        content((String = "text/csv"), (Vec<AllocationExport> = "application/json"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/exports/allocations")]
async fn export_allocations(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let height = api.head().await?;
    let names = Names::read(&api, height).await?;
    let rows: Vec<_> = api
        .scan_at(b"alloc/", height)
        .await?
        .into_iter()
        .filter_map(|(k, v)| {
            let a = AllocationRecord::decode(&v[..]).ok()?;
            let (rule, basis, days_taken) = deadlines::recorded(&a);
            Some(AllocationExport {
                tx_id: hex_id(&k, "alloc/"),
                external_id: a.external_id.clone(),
                from_org_name: names.org(&a.from_org),
                to_org_name: names.org(&a.to_org),
                program_name: names.program(&a.program_id),
                amount_yuan: fen_to_yuan(i128::from(a.amount_fen)),
                allocated_at: cst(a.allocated_at_ms),
                due_at: cst(a.due_at_ms),
                acknowledged_at: cst(a.acknowledged_at_ms),
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
    render(&rows, &q, "allocations", height)
}

/// Export disbursements to final recipients.
#[utoipa::path(tag = "export", params(ExportQuery),
    responses((status = 200, description = EXPORT_BODY,
        headers(("X-Fiscus-Height" = u64, description = "The height the export was read at")),
        content((String = "text/csv"), (Vec<DisbursementExport> = "application/json"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/exports/disbursements")]
async fn export_disbursements(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, ServiceError> {
    let client = api.caller(&req, Scope::Read)?;
    let height = api.head().await?;
    let names = Names::read(&api, height).await?;
    let rows: Vec<_> = api
        .scan_at(b"lineage/", height)
        .await?
        .into_iter()
        .filter_map(|(k, v)| {
            let l = LineageRecord::decode(&v[..]).ok()?;
            (l.kind == "disburse").then(|| DisbursementExport {
                tx_id: hex_id(&k, "lineage/"),
                external_id: l.external_id.clone(),
                org_name: names.org(&l.from_org),
                program_name: names.program(&l.program_id),
                amount_yuan: fen_to_yuan(i128::from(l.amount_fen)),
                at: cst(l.at_ms),
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
    render(&rows, &q, "disbursements", height)
}

pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(export_accounts)
        .service(export_allocations)
        .service(export_disbursements);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<T: ExportRow>(sample: &T) -> Vec<String> {
        let Value::Object(m) = serde_json::to_value(sample).unwrap() else {
            panic!()
        };
        let mut keys: Vec<String> = m.keys().cloned().collect();
        keys.sort();
        keys
    }

    fn columns<T: ExportRow>() -> Vec<String> {
        let mut c: Vec<String> = T::COLUMNS.iter().map(|c| c.field.to_owned()).collect();
        c.sort();
        c
    }

    #[test]
    fn every_export_s_columns_are_its_json_fields() {
        let d = DisbursementExport {
            tx_id: String::new(),
            external_id: String::new(),
            org_code: String::new(),
            org_name: String::new(),
            program_id: String::new(),
            program_name: String::new(),
            recipient: String::new(),
            recipient_name: String::new(),
            amount_yuan: String::new(),
            amount_fen: 0,
            purpose: String::new(),
            economic_code: String::new(),
            at: String::new(),
            at_ms: 0,
        };
        assert_eq!(fields(&d), columns::<DisbursementExport>());
        let a = AccountExport {
            org_name: String::new(),
            program_name: String::new(),
            balance_yuan: String::new(),
            account: crate::json::AccountJson {
                org_code: String::new(),
                program_id: String::new(),
                balance_fen: 0,
                frozen: false,
                appropriated_fen: 0,
                received_fen: 0,
                allocated_out_fen: 0,
                disbursed_fen: 0,
                recovered_out_fen: 0,
                recovered_in_fen: 0,
                lots: 0,
            },
        };
        assert_eq!(fields(&a), columns::<AccountExport>());
        let al = AllocationExport {
            tx_id: String::new(),
            external_id: String::new(),
            from_org: String::new(),
            from_org_name: String::new(),
            to_org: String::new(),
            to_org_name: String::new(),
            program_id: String::new(),
            program_name: String::new(),
            amount_yuan: String::new(),
            amount_fen: 0,
            document: String::new(),
            allocated_at: String::new(),
            allocated_at_ms: 0,
            due_at: String::new(),
            due_at_ms: 0,
            late: false,
            acknowledged: false,
            acknowledged_at: String::new(),
            acknowledged_at_ms: 0,
            deadline_rule: String::new(),
            clock_basis: String::new(),
            days_taken: 0,
            acknowledged_late: false,
        };
        assert_eq!(fields(&al), columns::<AllocationExport>());
    }

    #[test]
    fn times_are_china_standard_time() {
        // 2026-01-01T00:00:00Z is 08:00 in Beijing; 16:30 UTC is past midnight there.
        assert_eq!(cst(1_767_225_600_000), "2026-01-01 08:00:00");
        assert_eq!(cst(1_767_285_000_999), "2026-01-02 00:30:00");
        assert_eq!(cst(0), "");
    }
}
