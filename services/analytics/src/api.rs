//! The indicator API (JSON, and CSV for every table), on the
//! exchange-adapter's conventions: the same API keys and scopes (`read`),
//! the same disclosure rule (`fiscus_exchange_adapter::context::may_read`),
//! RFC 9457 problems with stable codes. Every route is registered through
//! `utoipa-actix-web`, so `/openapi.json` lists exactly what is served.

use crate::indicators::{Breakdown, Figures, Filter, Tree, breakdown, series};
use crate::store::{Division, Position, StoreError};
use actix_web::{HttpRequest, HttpResponse, get, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_contract_executor::Orgs;
use fiscus_exchange_adapter::clients::{Client, Clients, Scope};
use fiscus_exchange_adapter::context::may_read;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use utoipa::{IntoParams, ToSchema};

/// What the handlers share.
#[derive(Debug)]
pub struct State {
    pub clients: Clients,
    /// The registry, for disclosure, and the same tree for the figures.
    pub registry: RwLock<(Arc<Orgs>, Arc<Tree>)>,
    pub db_path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// The ledger's height when the follower last asked.
    pub ledger_height: AtomicU64,
    pub limits: Limits,
    /// The member's ledger-store, for traces.
    pub backend: Arc<fiscus_exchange_adapter::backend::Backend>,
}

/// What the API allows and assumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Idle funds: days without moving, when the query does not say.
    pub idle_days: u32,
    /// Rows of a list page at most.
    pub max_page: u32,
    /// Rows of a CSV export at most.
    pub max_export_rows: u32,
    /// The anomaly rules' thresholds.
    pub anomalies: crate::anomalies::Thresholds,
}

impl State {
    pub fn new(
        clients: Clients,
        divisions: Vec<Division>,
        db_path: PathBuf,
        limits: Limits,
        backend: Arc<fiscus_exchange_adapter::backend::Backend>,
    ) -> Self {
        let s = Self {
            clients,
            registry: RwLock::new(Default::default()),
            db_path,
            readers: Mutex::new(Vec::new()),
            ledger_height: AtomicU64::new(0),
            limits,
            backend,
        };
        s.set_divisions(divisions);
        s
    }

    pub fn set_divisions(&self, divisions: Vec<Division>) {
        let orgs = divisions.iter().fold(Orgs::default(), |o, d| {
            o.with(&d.code, level(d.level), &d.parent)
        });
        if let Ok(mut g) = self.registry.write() {
            *g = (Arc::new(orgs), Arc::new(Tree::new(divisions)));
        }
    }

    fn registry(&self) -> (Arc<Orgs>, Arc<Tree>) {
        match self.registry.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Runs `f` on a pooled read-only connection, off the async workers.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let me = self.clone();
        web::block(move || {
            let conn = match me.readers.lock().map(|mut p| p.pop()) {
                Ok(Some(c)) => c,
                _ => crate::store::open_reader(&me.db_path).map_err(store_err)?,
            };
            // One read transaction: every query of a request sees the same
            // snapshot, never half of a batch committed in between (WAL).
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            conn.execute_batch("BEGIN").map_err(store_err)?;
            let out = f(&conn);
            let _ = conn.execute_batch("COMMIT");
            if let Ok(mut p) = me.readers.lock()
                && p.len() < 8
            {
                p.push(conn);
            }
            out
        })
        .await
        .map_err(|e| {
            ServiceError::new(ErrorKind::Internal, codes::analytics::STORE, e.to_string())
        })?
    }

    /// The caller, authenticated by API key, charged and checked for `read`.
    fn caller(&self, req: &HttpRequest) -> Result<Arc<Client>, ServiceError> {
        let client = self.authenticated(req)?;
        self.clients.admit(&client)?;
        client.require(Scope::Read)?;
        Ok(client)
    }

    pub(crate) fn authenticated(&self, req: &HttpRequest) -> Result<Arc<Client>, ServiceError> {
        let headers = req.headers();
        let key = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim);
        self.clients.authenticate(key)
    }
}

fn level(s: &str) -> fiscus_proto::pb::types::OrgLevel {
    use fiscus_proto::pb::types::OrgLevel as L;
    match s {
        "central" => L::Central,
        "provincial" => L::Provincial,
        "municipal" => L::Municipal,
        "county" => L::County,
        "supervisor" => L::Supervisor,
        _ => L::Unspecified,
    }
}

pub(crate) fn store_err(e: impl Into<StoreError>) -> ServiceError {
    let e: StoreError = e.into();
    tracing::error!(error = %e, "analytics store");
    ServiceError::new(ErrorKind::Internal, codes::analytics::STORE, e.to_string())
}

/// The filter of every indicator query.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// Only this program (its id).
    pub program: Option<String>,
    /// From this month on, `YYYY-MM` (by block day, China Standard Time).
    pub from_month: Option<String>,
    /// Up to and including this month, `YYYY-MM`.
    pub to_month: Option<String>,
}

fn month(s: &Option<String>, name: &str) -> Result<Option<String>, ServiceError> {
    let Some(s) = s else { return Ok(None) };
    let b = s.as_bytes();
    let ok = b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && (1..=12).contains(&((b[5] - b'0') * 10 + (b[6] - b'0')))
        && &s[..4] >= "1900";
    if ok {
        Ok(Some(s.clone()))
    } else {
        Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::analytics::BAD_MONTH,
            format!("{name} must be a month YYYY-MM from 1900-01 on, not {s:?}"),
        ))
    }
}

/// Checks the query and builds the filter; the program must exist.
fn filter(q: &RangeQuery, conn: &Connection) -> Result<Filter, ServiceError> {
    let (from_month, to_month) = (
        month(&q.from_month, "from_month")?,
        month(&q.to_month, "to_month")?,
    );
    if let (Some(a), Some(b)) = (&from_month, &to_month)
        && a > b
    {
        return Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::analytics::BAD_MONTH,
            format!("from_month {a} comes after to_month {b}"),
        ));
    }
    if let Some(p) = &q.program {
        let known = p.len() <= 64
            && conn
                .query_row("SELECT 1 FROM program WHERE id = ?1", [p], |_| Ok(()))
                .is_ok();
        if !known {
            return Err(ServiceError::new(
                ErrorKind::NotFound,
                codes::analytics::UNKNOWN_PROGRAM,
                format!("no program {p:?} has been appropriated on this chain"),
            ));
        }
    }
    Ok(Filter {
        program: q.program.clone(),
        from_month,
        to_month,
    })
}

/// The region named in the path, which the caller must be allowed to read.
fn region(
    state: &State,
    client: &Client,
    code: &str,
) -> Result<(Arc<Orgs>, Arc<Tree>), ServiceError> {
    let (orgs, tree) = state.registry();
    if code.len() > 16 || tree.get(code).is_none() {
        return Err(ServiceError::new(
            ErrorKind::NotFound,
            codes::analytics::UNKNOWN_REGION,
            format!("no org of the division tree has the code {code:?}"),
        ));
    }
    if !may_read(&orgs, &client.org, code) {
        return Err(ServiceError::new(
            ErrorKind::PermissionDenied,
            codes::api::NOT_DISCLOSED,
            format!(
                "org {} may not read the figures of region {code} (disclosure policy: own org and the orgs below it)",
                client.org
            ),
        ));
    }
    Ok((orgs, tree))
}

/// Figures with what follows from them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FiguresJson {
    pub appropriated_fen: i64,
    pub received_fen: i64,
    pub allocated_fen: i64,
    pub acknowledged_fen: i64,
    pub disbursed_fen: i64,
    pub recovered_out_fen: i64,
    pub recovered_in_fen: i64,
    pub adjusted_out_fen: i64,
    pub adjusted_in_fen: i64,
    /// Number of disbursements.
    pub disbursements: i64,
    /// Number of allocations received from outside.
    pub allocations_received: i64,
    /// Inflows less outflows: what is still held.
    pub held_fen: i64,
    /// 下达进度 allocated / (appropriated + received), basis points; null without inflow.
    pub allocation_progress_bp: Option<i64>,
    /// 支出进度 disbursed / (appropriated + received), basis points; null without inflow.
    pub expenditure_progress_bp: Option<i64>,
}

impl From<&Figures> for FiguresJson {
    fn from(f: &Figures) -> Self {
        Self {
            appropriated_fen: f.appropriated_fen,
            received_fen: f.received_fen,
            allocated_fen: f.allocated_fen,
            acknowledged_fen: f.acknowledged_fen,
            disbursed_fen: f.disbursed_fen,
            recovered_out_fen: f.recovered_out_fen,
            recovered_in_fen: f.recovered_in_fen,
            adjusted_out_fen: f.adjusted_out_fen,
            adjusted_in_fen: f.adjusted_in_fen,
            disbursements: f.disbursements,
            allocations_received: f.allocations_received,
            held_fen: f.held_fen(),
            allocation_progress_bp: f.allocation_progress_bp(),
            expenditure_progress_bp: f.expenditure_progress_bp(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionJson {
    pub code: String,
    pub name: String,
    /// `central`, `provincial`, `municipal`, `county` or `supervisor`.
    pub level: String,
}

impl From<&Division> for RegionJson {
    fn from(d: &Division) -> Self {
        Self {
            code: d.code.clone(),
            name: d.name.clone(),
            level: d.level.to_owned(),
        }
    }
}

/// Which chain the figures are of.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AsOfJson {
    /// The last block applied (0: none yet).
    pub height: u64,
    /// That block's time, Unix milliseconds.
    pub block_time_ms: i64,
    /// The ledger's height when analytics last asked.
    pub ledger_height: u64,
    pub movements: u64,
}

fn as_of(p: &Position, state: &State) -> AsOfJson {
    AsOfJson {
        height: p.next_height.saturating_sub(1),
        block_time_ms: p.block_time_ms,
        ledger_height: state.ledger_height.load(Ordering::Relaxed),
        movements: p.movements,
    }
}

fn position(conn: &Connection) -> Result<Position, ServiceError> {
    conn.query_row(
        "SELECT height, block_time_ms, movements FROM cursor WHERE id = 0",
        [],
        |r| {
            Ok(Position {
                next_height: r.get::<_, i64>(0)? as u64 + 1,
                block_time_ms: r.get(1)?,
                movements: r.get::<_, i64>(2)? as u64,
            })
        },
    )
    .or_else(|e| match e {
        rusqlite::Error::QueryReturnedNoRows => Ok(Position {
            next_height: 1,
            block_time_ms: 0,
            movements: 0,
        }),
        e => Err(store_err(e)),
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChildJson {
    pub region: RegionJson,
    /// The child's whole subtree.
    pub figures: FiguresJson,
}

/// A region: its subtree, its own department, and each child's subtree.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionFiguresJson {
    pub as_of: AsOfJson,
    pub region: RegionJson,
    /// From the highest region the caller may read down to this one (for a
    /// breadcrumb).
    pub path: Vec<RegionJson>,
    /// The whole subtree (the department and everything below it).
    pub total: FiguresJson,
    /// The department's own accounts.
    pub department: FiguresJson,
    pub children: Vec<ChildJson>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesRowJson {
    /// The month (`YYYY-MM`) or the program id.
    pub key: String,
    /// The program's name (programs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub figures: FiguresJson,
}

/// A region's figures per month or per program, rows with no movement left out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesJson {
    pub as_of: AsOfJson,
    pub region: RegionJson,
    pub rows: Vec<SeriesRowJson>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusJson {
    pub as_of: AsOfJson,
    /// Blocks the ledger has that analytics has not applied yet.
    pub lag_blocks: u64,
}

/// The figures of a region (fetched on a pooled connection).
async fn region_figures(
    state: web::Data<State>,
    req: &HttpRequest,
    code: &str,
    q: RangeQuery,
) -> Result<(Breakdown, Position, Arc<Tree>), ServiceError> {
    let client = state.caller(req)?;
    let (_, tree) = region(&state, &client, code)?;
    let (code, t) = (code.to_owned(), tree.clone());
    let state = state.into_inner();
    let (b, p) = state
        .read(move |conn| {
            let f = filter(&q, conn)?;
            let p = position(conn)?;
            let b = breakdown(conn, &t, &code, &f).map_err(store_err)?;
            Ok((b, p))
        })
        .await?;
    Ok((b, p, tree))
}

fn region_json(tree: &Tree, code: &str) -> RegionJson {
    tree.get(code).map(RegionJson::from).unwrap_or(RegionJson {
        code: code.to_owned(),
        name: String::new(),
        level: String::new(),
    })
}

/// Who the caller is, and the region its dashboard opens on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WhoamiJson {
    pub client: String,
    pub org: String,
    /// The caller's own region; for a supervisor, the region it supervises
    /// (its parent), or the root for one with no parent.
    pub default_region: String,
}

#[utoipa::path(tag = "analytics", responses((status = 200, body = WhoamiJson)), security(("api_key" = [])))]
#[get("/v1/analytics/whoami")]
pub(crate) async fn whoami(
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<web::Json<WhoamiJson>, ServiceError> {
    let client = state.caller(&req)?;
    let (_, tree) = state.registry();
    let default_region = match tree.get(&client.org) {
        Some(d) if d.level == "supervisor" && !d.parent.is_empty() => d.parent.clone(),
        Some(d) if d.level == "supervisor" => tree.root().unwrap_or_default(),
        _ => client.org.clone(),
    };
    Ok(web::Json(WhoamiJson {
        client: client.name.clone(),
        org: client.org.clone(),
        default_region,
    }))
}

#[utoipa::path(tag = "analytics", responses((status = 200, body = StatusJson)), security(("api_key" = [])))]
#[get("/v1/analytics/status")]
pub(crate) async fn status(
    state: web::Data<State>,
    req: HttpRequest,
) -> Result<web::Json<StatusJson>, ServiceError> {
    state.caller(&req)?;
    let s = state.clone().into_inner();
    let p = s.read(position).await?;
    let a = as_of(&p, &state);
    Ok(web::Json(StatusJson {
        lag_blocks: a.ledger_height.saturating_sub(a.height),
        as_of: a,
    }))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code (GB/T 2260), e.g. 130000"), RangeQuery),
    responses((status = 200, body = RegionFiguresJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}")]
pub(crate) async fn region_view(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<RangeQuery>,
) -> Result<web::Json<RegionFiguresJson>, ServiceError> {
    let s = state.clone();
    let client = state.authenticated(&req)?;
    let (b, p, tree) = region_figures(state, &req, &code, q.into_inner()).await?;
    let (orgs, _) = s.registry();
    let mut path = Vec::new();
    let mut cur = tree.get(&code);
    for _ in 0..=tree.len() {
        let Some(d) = cur else { break };
        if !may_read(&orgs, &client.org, &d.code) {
            break;
        }
        path.push(RegionJson::from(d));
        cur = tree.get(&d.parent);
    }
    path.reverse();
    Ok(web::Json(RegionFiguresJson {
        as_of: as_of(&p, &s),
        region: region_json(&tree, &code),
        path,
        total: (&b.region).into(),
        department: (&b.department).into(),
        children: b
            .children
            .iter()
            .map(|(c, f)| ChildJson {
                region: region_json(&tree, c),
                figures: f.into(),
            })
            .collect(),
    }))
}

const CSV_HEAD: [&str; 14] = [
    "appropriated_fen",
    "received_fen",
    "allocated_fen",
    "acknowledged_fen",
    "disbursed_fen",
    "recovered_out_fen",
    "recovered_in_fen",
    "adjusted_out_fen",
    "adjusted_in_fen",
    "disbursements",
    "allocations_received",
    "held_fen",
    "allocation_progress_bp",
    "expenditure_progress_bp",
];

fn csv_figures(f: &FiguresJson) -> Vec<String> {
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    vec![
        f.appropriated_fen.to_string(),
        f.received_fen.to_string(),
        f.allocated_fen.to_string(),
        f.acknowledged_fen.to_string(),
        f.disbursed_fen.to_string(),
        f.recovered_out_fen.to_string(),
        f.recovered_in_fen.to_string(),
        f.adjusted_out_fen.to_string(),
        f.adjusted_in_fen.to_string(),
        f.disbursements.to_string(),
        f.allocations_received.to_string(),
        f.held_fen.to_string(),
        opt(f.allocation_progress_bp),
        opt(f.expenditure_progress_bp),
    ]
}

/// A table as `csv` or `xlsx` (the route allows only these two).
fn table_response(
    format: &str,
    name: &str,
    head: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<HttpResponse, ServiceError> {
    if format == "xlsx" {
        xlsx_response(name, head, rows)
    } else {
        csv_response(name, head, rows)
    }
}

/// An Excel workbook of one sheet: the header row bold and frozen, whole
/// numbers (fen, counts, basis points) as numbers, everything else as text
/// (codes such as `130102` stay text).
fn xlsx_response(
    name: &str,
    head: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<HttpResponse, ServiceError> {
    use rust_xlsxwriter::{Format, Workbook};
    let fail = |e: rust_xlsxwriter::XlsxError| {
        ServiceError::new(
            ErrorKind::Internal,
            codes::api::EXPORT_FAILED,
            e.to_string(),
        )
    };
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let bold = Format::new().set_bold();
    for (c, h) in head.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *h, &bold)
            .map_err(fail)?;
    }
    let numeric: Vec<bool> = head
        .iter()
        .map(|h| {
            h.ends_with("_fen")
                || h.ends_with("_bp")
                || matches!(
                    *h,
                    "disbursements"
                        | "allocations_received"
                        | "allocations"
                        | "late"
                        | "days_late"
                        | "height"
                        | "index"
                )
        })
        .collect();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            let (r, col) = (r as u32 + 1, c as u16);
            match v.parse::<i64>() {
                Ok(n) if numeric.get(c).copied().unwrap_or(false) => {
                    sheet.write_number(r, col, n as f64).map_err(fail)?;
                }
                _ if v.is_empty() => {}
                _ => {
                    sheet.write_string(r, col, v).map_err(fail)?;
                }
            }
        }
    }
    sheet.set_freeze_panes(1, 0).map_err(fail)?;
    let body = book.save_to_buffer().map_err(fail)?;
    Ok(HttpResponse::Ok()
        .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.xlsx\""),
        ))
        .body(body))
}

/// A CSV download: UTF-8 with a byte order mark, so that spreadsheet
/// programs read the Chinese names right.
fn csv_response(
    name: &str,
    head: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<HttpResponse, ServiceError> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let fail = |e: csv::Error| {
        ServiceError::new(
            ErrorKind::Internal,
            codes::api::EXPORT_FAILED,
            e.to_string(),
        )
    };
    w.write_record(head).map_err(fail)?;
    for r in rows {
        // A text cell a spreadsheet would run as a formula (names come from
        // the chain) is written with a leading apostrophe.
        let r: Vec<String> = r
            .into_iter()
            .map(|c| {
                let formula = c.starts_with(['=', '+', '-', '@']) && c.parse::<i64>().is_err();
                if formula { format!("'{c}") } else { c }
            })
            .collect();
        w.write_record(&r).map_err(fail)?;
    }
    let body = w.into_inner().map_err(|e| {
        ServiceError::new(
            ErrorKind::Internal,
            codes::api::EXPORT_FAILED,
            e.to_string(),
        )
    })?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.csv\""),
        ))
        .body(body))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, description = "One row for the region's total, one for its department, one per child subtree: CSV (`csv`) or an Excel workbook (`xlsx`)", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/children.{format:csv|xlsx}")]
pub(crate) async fn region_csv(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ServiceError> {
    let (code, format) = path.into_inner();
    let (b, _, tree) = region_figures(state, &req, &code, q.into_inner()).await?;
    let mut head = vec!["row", "code", "name", "level"];
    head.extend(CSV_HEAD);
    let mut rows = Vec::new();
    let row = |what: &str, c: &str, f: &Figures| {
        let r = region_json(&tree, c);
        let mut v = vec![what.to_owned(), r.code, r.name, r.level];
        v.extend(csv_figures(&f.into()));
        v
    };
    rows.push(row("total", &code, &b.region));
    rows.push(row("department", &code, &b.department));
    for (c, f) in &b.children {
        rows.push(row("child", c, f));
    }
    table_response(&format, &format!("region-{code}"), &head, rows)
}

async fn series_of(
    state: web::Data<State>,
    req: &HttpRequest,
    code: &str,
    q: RangeQuery,
    group: &'static str,
) -> Result<SeriesJson, ServiceError> {
    let client = state.caller(req)?;
    let (_, tree) = region(&state, &client, code)?;
    let (c, t) = (code.to_owned(), tree.clone());
    let s = state.clone().into_inner();
    let (rows, names, p) = s
        .read(move |conn| {
            let f = filter(&q, conn)?;
            let p = position(conn)?;
            let rows = series(conn, &t, &c, &f, group).map_err(store_err)?;
            let mut names = std::collections::BTreeMap::new();
            if group == "program" {
                let mut st = conn
                    .prepare_cached("SELECT id, name FROM program")
                    .map_err(store_err)?;
                let it = st
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .map_err(store_err)?;
                for kv in it {
                    let (k, v) = kv.map_err(store_err)?;
                    names.insert(k, v);
                }
            }
            Ok((rows, names, p))
        })
        .await?;
    Ok(SeriesJson {
        as_of: as_of(&p, &state),
        region: region_json(&tree, code),
        rows: rows
            .iter()
            .map(|(k, f)| SeriesRowJson {
                key: k.clone(),
                name: names.get(k).cloned(),
                figures: f.into(),
            })
            .collect(),
    })
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, body = SeriesJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/months")]
pub(crate) async fn months(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<RangeQuery>,
) -> Result<web::Json<SeriesJson>, ServiceError> {
    Ok(web::Json(
        series_of(state, &req, &code, q.into_inner(), "month").await?,
    ))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, body = SeriesJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/programs")]
pub(crate) async fn programs(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<RangeQuery>,
) -> Result<web::Json<SeriesJson>, ServiceError> {
    Ok(web::Json(
        series_of(state, &req, &code, q.into_inner(), "program").await?,
    ))
}

fn series_csv(
    format: &str,
    s: SeriesJson,
    key: &str,
    name: String,
) -> Result<HttpResponse, ServiceError> {
    let mut head = vec![key, "name"];
    head.extend(CSV_HEAD);
    let rows = s
        .rows
        .into_iter()
        .map(|r| {
            let mut v = vec![r.key, r.name.unwrap_or_default()];
            v.extend(csv_figures(&r.figures));
            v
        })
        .collect();
    table_response(format, &name, &head, rows)
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, description = "One row per month: CSV (`csv`) or an Excel workbook (`xlsx`)", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/months.{format:csv|xlsx}")]
pub(crate) async fn months_csv(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ServiceError> {
    let (code, format) = path.into_inner();
    let s = series_of(state, &req, &code, q.into_inner(), "month").await?;
    series_csv(&format, s, "month", format!("months-{code}"))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, description = "One row per program: CSV (`csv`) or an Excel workbook (`xlsx`)", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/programs.{format:csv|xlsx}")]
pub(crate) async fn programs_csv(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ServiceError> {
    let (code, format) = path.into_inner();
    let s = series_of(state, &req, &code, q.into_inner(), "program").await?;
    series_csv(&format, s, "program", format!("programs-{code}"))
}

/// The deadline and idle-funds views take paging beside the filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadlineQuery {
    pub program: Option<String>,
    pub from_month: Option<String>,
    pub to_month: Option<String>,
    /// Late items per page, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// The `next_after` of the previous page.
    pub after: Option<String>,
}

impl DeadlineQuery {
    fn range(&self) -> RangeQuery {
        RangeQuery {
            program: self.program.clone(),
            from_month: self.from_month.clone(),
            to_month: self.to_month.clone(),
        }
    }
}

fn limit(limit: Option<u32>, max: u32) -> Result<u32, ServiceError> {
    match limit {
        None => Ok(100.min(max)),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::analytics::BAD_LIMIT,
            format!("limit must be 1 to {max}, not {n}"),
        )),
    }
}

fn after(s: &Option<String>) -> Result<(u64, u32), ServiceError> {
    let Some(s) = s else { return Ok((0, 0)) };
    s.split_once('.')
        .and_then(|(h, i)| {
            let h: u64 = h.parse().ok().filter(|h| *h <= i64::MAX as u64)?;
            Some((h, i.parse().ok()?))
        })
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::InvalidArgument,
                codes::analytics::BAD_AFTER,
                format!("after must be <height>.<index> as next_after gave it, not {s:?}"),
            )
        })
}

/// Allocations by payers, and how many were late.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComplianceJson {
    pub allocations: i64,
    pub allocated_fen: i64,
    /// Allocations the contract recorded past their art. 52 deadline.
    pub late: i64,
    pub late_fen: i64,
    /// Allocations on time, basis points; null without allocations.
    pub on_time_bp: Option<i64>,
}

impl From<&crate::indicators::Compliance> for ComplianceJson {
    fn from(c: &crate::indicators::Compliance) -> Self {
        Self {
            allocations: c.allocations,
            allocated_fen: c.allocated_fen,
            late: c.late,
            late_fen: c.late_fen,
            on_time_bp: c.on_time_bp(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChildComplianceJson {
    pub region: RegionJson,
    pub compliance: ComplianceJson,
}

/// One allocation recorded as late, with where to trace it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LateItemJson {
    pub tx_id: String,
    pub height: u64,
    pub index: u32,
    pub from_org: String,
    pub to_org: String,
    pub program: String,
    pub amount_fen: i64,
    /// The allocation's day and the day it was due by (CST, YYYY-MM-DD).
    pub date: String,
    pub due_date: String,
    pub days_late: i64,
    /// Its lineage: `GET` this path here (or `/v1/trace/{tx_id}` on the exchange-adapter).
    pub trace: String,
}

/// Budget Law art. 52 compliance of the allocations made in a region (逾期下达).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadlinesJson {
    pub as_of: AsOfJson,
    pub region: RegionJson,
    pub total: ComplianceJson,
    pub department: ComplianceJson,
    pub children: Vec<ChildComplianceJson>,
    /// Late allocations made in the region, in chain order, one page.
    pub late: Vec<LateItemJson>,
    /// Pass as `after` for the next page; null on the last.
    pub next_after: Option<String>,
}

fn late_json(i: crate::indicators::LateItem) -> LateItemJson {
    use fiscus_contract_executor::calendar::format_date;
    LateItemJson {
        trace: format!("/v1/analytics/trace/{}", i.tx_id),
        tx_id: i.tx_id,
        height: i.height,
        index: i.index,
        from_org: i.from_org,
        to_org: i.to_org,
        program: i.program,
        amount_fen: i.amount_fen,
        date: format_date(i.day),
        due_date: format_date(i.due_day),
        days_late: i.day - i.due_day,
    }
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), DeadlineQuery),
    responses((status = 200, body = DeadlinesJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/deadlines")]
pub(crate) async fn deadlines(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<DeadlineQuery>,
) -> Result<web::Json<DeadlinesJson>, ServiceError> {
    let client = state.caller(&req)?;
    let (_, tree) = region(&state, &client, &code)?;
    let (n, from) = (limit(q.limit, state.limits.max_page)?, after(&q.after)?);
    let (c, t, range) = (code.to_string(), tree.clone(), q.range());
    let s = state.clone().into_inner();
    let (b, items, p) = s
        .read(move |conn| {
            let f = filter(&range, conn)?;
            let p = position(conn)?;
            let b = crate::indicators::compliance(conn, &t, &c, &f).map_err(store_err)?;
            let items =
                crate::indicators::late_items(conn, &c, &f, from, n + 1).map_err(store_err)?;
            Ok((b, items, p))
        })
        .await?;
    let mut items = items;
    let next_after = (items.len() > n as usize).then(|| {
        items.truncate(n as usize);
        items
            .last()
            .map(|i| format!("{}.{}", i.height, i.index))
            .unwrap_or_default()
    });
    Ok(web::Json(DeadlinesJson {
        as_of: as_of(&p, &state),
        region: region_json(&tree, &code),
        total: (&b.region).into(),
        department: (&b.department).into(),
        children: b
            .children
            .iter()
            .map(|(c, x)| ChildComplianceJson {
                region: region_json(&tree, c),
                compliance: x.into(),
            })
            .collect(),
        late: items.into_iter().map(late_json).collect(),
        next_after,
    }))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, description = "Every late allocation made in the region: CSV (`csv`) or an Excel workbook (`xlsx`)", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/deadlines.{format:csv|xlsx}")]
pub(crate) async fn deadlines_csv(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ServiceError> {
    let (code, format) = path.into_inner();
    let client = state.caller(&req)?;
    region(&state, &client, &code)?;
    let (c, range, max) = (
        code.to_string(),
        q.into_inner(),
        state.limits.max_export_rows,
    );
    let s = state.clone().into_inner();
    let items = s
        .read(move |conn| {
            let f = filter(&range, conn)?;
            crate::indicators::late_items(conn, &c, &f, (0, 0), max + 1).map_err(store_err)
        })
        .await?;
    if items.len() > max as usize {
        return Err(too_large(max));
    }
    let head = [
        "tx_id",
        "date",
        "due_date",
        "days_late",
        "from_org",
        "to_org",
        "program",
        "amount_fen",
        "height",
        "index",
    ];
    let rows = items
        .into_iter()
        .map(late_json)
        .map(|i| {
            vec![
                i.tx_id,
                i.date,
                i.due_date,
                i.days_late.to_string(),
                i.from_org,
                i.to_org,
                i.program,
                i.amount_fen.to_string(),
                i.height.to_string(),
                i.index.to_string(),
            ]
        })
        .collect();
    table_response(&format, &format!("late-{code}"), &head, rows)
}

fn too_large(max: u32) -> ServiceError {
    ServiceError::new(
        ErrorKind::InvalidArgument,
        codes::analytics::TOO_LARGE,
        format!("the export would hold more than {max} rows; narrow it by program or months"),
    )
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct IdleQuery {
    /// Only this program.
    pub program: Option<String>,
    /// Funds not moved for more than this many days count as idle, 1 to
    /// 3650 (default: the service's `idle_days`, 90).
    pub days: Option<u32>,
    /// Accounts listed, 1 to 1000 (default 100), most idle first.
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdleAccountJson {
    pub org: String,
    pub org_name: String,
    pub program: String,
    pub balance_fen: i64,
    /// What of the balance arrived on or before the cut-off day.
    pub idle_fen: i64,
    /// The last day money left the account (null: never).
    pub last_out_date: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChildIdleJson {
    pub region: RegionJson,
    pub idle_fen: i64,
}

/// Idle funds (沉淀资金): money that arrived more than `days` days before the
/// last block applied and is still held (accounts pay out oldest first).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IdleJson {
    pub as_of: AsOfJson,
    pub region: RegionJson,
    pub days: u32,
    /// The last block's day (CST), and the cut-off: money that arrived on or before it counts.
    pub as_of_date: String,
    pub cutoff_date: String,
    pub idle_fen: i64,
    pub department_idle_fen: i64,
    pub children: Vec<ChildIdleJson>,
    /// Accounts holding idle funds, most first; `accounts_total` in all.
    pub accounts: Vec<IdleAccountJson>,
    pub accounts_total: usize,
}

async fn idle_report(
    state: &web::Data<State>,
    req: &HttpRequest,
    code: &str,
    program: Option<String>,
    days: Option<u32>,
) -> Result<(crate::indicators::IdleReport, Position, u32, i64, Arc<Tree>), ServiceError> {
    let client = state.caller(req)?;
    let (_, tree) = region(state, &client, code)?;
    let days = days.unwrap_or(state.limits.idle_days);
    if !(1..=3650).contains(&days) {
        return Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::analytics::BAD_DAYS,
            format!("days must be 1 to 3650, not {days}"),
        ));
    }
    let (c, t) = (code.to_owned(), tree.clone());
    let s = state.clone().into_inner();
    let (r, p, as_of_day) = s
        .read(move |conn| {
            filter(
                &RangeQuery {
                    program: program.clone(),
                    ..RangeQuery::default()
                },
                conn,
            )?;
            let p = position(conn)?;
            // "Now" is the last block applied: the figures never read the clock.
            let as_of_day = fiscus_contract_executor::calendar::day_of(p.block_time_ms);
            let r = crate::indicators::idle(
                conn,
                &t,
                &c,
                program.as_deref(),
                as_of_day - i64::from(days),
            )
            .map_err(store_err)?;
            Ok((r, p, as_of_day))
        })
        .await?;
    Ok((r, p, days, as_of_day, tree))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), IdleQuery),
    responses((status = 200, body = IdleJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/idle")]
pub(crate) async fn idle(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<IdleQuery>,
) -> Result<web::Json<IdleJson>, ServiceError> {
    use fiscus_contract_executor::calendar::format_date;
    state.authenticated(&req)?;
    let n = limit(q.limit, state.limits.max_page)? as usize;
    let (r, p, days, as_of_day, tree) =
        idle_report(&state, &req, &code, q.program.clone(), q.days).await?;
    let name = |c: &str| tree.get(c).map(|d| d.name.clone()).unwrap_or_default();
    Ok(web::Json(IdleJson {
        as_of: as_of(&p, &state),
        region: region_json(&tree, &code),
        days,
        as_of_date: format_date(as_of_day),
        cutoff_date: format_date(as_of_day - i64::from(days)),
        idle_fen: r.idle_fen,
        department_idle_fen: r.department_idle_fen,
        children: r
            .children
            .iter()
            .map(|(c, v)| ChildIdleJson {
                region: region_json(&tree, c),
                idle_fen: *v,
            })
            .collect(),
        accounts_total: r.accounts.len(),
        accounts: r
            .accounts
            .into_iter()
            .take(n)
            .map(|a| IdleAccountJson {
                org_name: name(&a.org),
                org: a.org,
                program: a.program,
                balance_fen: a.balance_fen,
                idle_fen: a.idle_fen,
                last_out_date: a.last_out_day.map(format_date),
            })
            .collect(),
    }))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), IdleQuery),
    responses((status = 200, description = "Every account holding idle funds in the region: CSV (`csv`) or an Excel workbook (`xlsx`)", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/idle.{format:csv|xlsx}")]
pub(crate) async fn idle_csv(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<IdleQuery>,
) -> Result<HttpResponse, ServiceError> {
    let (code, format) = path.into_inner();
    use fiscus_contract_executor::calendar::format_date;
    if q.limit.is_some() {
        return Err(ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::analytics::BAD_LIMIT,
            "a CSV export has no pages: leave limit out",
        ));
    }
    let (r, _, days, as_of_day, tree) =
        idle_report(&state, &req, &code, q.program.clone(), q.days).await?;
    if r.accounts.len() > state.limits.max_export_rows as usize {
        return Err(too_large(state.limits.max_export_rows));
    }
    let head = [
        "name",
        "org",
        "program",
        "balance_fen",
        "idle_fen",
        "last_out_date",
        "as_of_date",
        "cutoff_date",
    ];
    let (asof, cut) = (
        format_date(as_of_day),
        format_date(as_of_day - i64::from(days)),
    );
    let rows = r
        .accounts
        .into_iter()
        .map(|a| {
            vec![
                tree.get(&a.org).map(|d| d.name.clone()).unwrap_or_default(),
                a.org,
                a.program,
                a.balance_fen.to_string(),
                a.idle_fen.to_string(),
                a.last_out_day.map(format_date).unwrap_or_default(),
                asof.clone(),
                cut.clone(),
            ]
        })
        .collect();
    table_response(&format, &format!("idle-{code}"), &head, rows)
}

#[utoipa::path(tag = "analytics",
    params(("tx_id" = String, Path, description = "64 hex digits")),
    responses((status = 200, body = fiscus_exchange_adapter::json::TraceJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/trace/{tx_id}")]
pub(crate) async fn trace(
    state: web::Data<State>,
    req: HttpRequest,
    tx_id: web::Path<String>,
) -> Result<web::Json<fiscus_exchange_adapter::json::TraceJson>, ServiceError> {
    // The exchange-adapter's rule for traces: any caller with `read`.
    state.caller(&req)?;
    let id = hex::decode(tx_id.as_str())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::InvalidArgument,
                codes::api::BAD_TX_ID,
                "a tx id is 64 hex digits",
            )
        })?;
    let r = state
        .backend
        .ledger()
        .await?
        .trace(fiscus_proto::pb::ledger::TraceRequest {
            tx_id: id,
            at_height: 0,
        })
        .await
        .map_err(|s| fiscus_exchange_adapter::backend::from_status("trace", &s))?
        .into_inner();
    Ok(web::Json(fiscus_exchange_adapter::json::trace_json(r)))
}

/// One anomaly flag.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagJson {
    /// `split_payment`, `shared_recipient`, `recovery_after_disbursement` or `long_freeze`.
    pub rule: String,
    /// The org (for `shared_recipient`: the orgs, comma-separated).
    pub org: String,
    pub program: String,
    /// `uscc:<code>` or `person:<hash>`, for the payment rules.
    pub recipient: String,
    pub amount_fen: i64,
    pub first_date: String,
    pub last_date: String,
    /// At most 100 of the transactions behind the flag; `tx_count` in all.
    pub tx_ids: Vec<String>,
    pub tx_count: usize,
}

/// The anomaly flags of a region, with the thresholds they were found with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AnomaliesJson {
    pub as_of: AsOfJson,
    pub region: RegionJson,
    pub split_threshold_fen: i64,
    pub split_window_days: i64,
    pub frozen_days: i64,
    /// At most `limit` flags (default 100, at most 1000); `flags_total` in all.
    pub flags: Vec<FlagJson>,
    pub flags_total: usize,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AnomalyQuery {
    /// Flags listed, 1 to 1000 (default 100).
    pub limit: Option<u32>,
}

async fn anomaly_flags(
    state: &web::Data<State>,
    req: &HttpRequest,
    code: &str,
) -> Result<(Vec<crate::anomalies::Flag>, Position, Arc<Tree>), ServiceError> {
    let client = state.caller(req)?;
    let (_, tree) = region(state, &client, code)?;
    let (c, t) = (code.to_owned(), state.limits.anomalies);
    let s = state.clone().into_inner();
    let (flags, p) = s
        .read(move |conn| {
            let p = position(conn)?;
            let as_of_day = fiscus_contract_executor::calendar::day_of(p.block_time_ms);
            let f = crate::anomalies::flags(conn, &c, &t, as_of_day).map_err(store_err)?;
            Ok((f, p))
        })
        .await?;
    Ok((flags, p, tree))
}

fn flag_json(f: crate::anomalies::Flag) -> FlagJson {
    use fiscus_contract_executor::calendar::format_date;
    FlagJson {
        rule: f.rule.to_owned(),
        org: f.org,
        program: f.program,
        recipient: f.recipient,
        amount_fen: f.amount_fen,
        first_date: format_date(f.first_day),
        last_date: format_date(f.last_day),
        tx_ids: f.tx_ids,
        tx_count: f.tx_count,
    }
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), AnomalyQuery),
    responses((status = 200, body = AnomaliesJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/anomalies")]
pub(crate) async fn anomalies(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<AnomalyQuery>,
) -> Result<web::Json<AnomaliesJson>, ServiceError> {
    state.authenticated(&req)?;
    let n = limit(q.limit, state.limits.max_page)? as usize;
    let (flags, p, tree) = anomaly_flags(&state, &req, &code).await?;
    let t = state.limits.anomalies;
    Ok(web::Json(AnomaliesJson {
        as_of: as_of(&p, &state),
        region: region_json(&tree, &code),
        split_threshold_fen: t.split_threshold_fen,
        split_window_days: t.split_window_days,
        frozen_days: t.frozen_days,
        flags_total: flags.len(),
        flags: flags.into_iter().take(n).map(flag_json).collect(),
    }))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code")),
    responses((status = 200, description = "Every anomaly flag of the region: CSV (`csv`) or an Excel workbook (`xlsx`)", content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/anomalies.{format:csv|xlsx}")]
pub(crate) async fn anomalies_csv(
    state: web::Data<State>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ServiceError> {
    let (code, format) = path.into_inner();
    let (flags, _, _) = anomaly_flags(&state, &req, &code).await?;
    if flags.len() > state.limits.max_export_rows as usize {
        return Err(too_large(state.limits.max_export_rows));
    }
    let head = [
        "rule",
        "org",
        "program",
        "recipient",
        "amount_fen",
        "first_date",
        "last_date",
        "tx_ids",
    ];
    let rows = flags
        .into_iter()
        .map(flag_json)
        .map(|f| {
            vec![
                f.rule,
                f.org,
                f.program,
                f.recipient,
                f.amount_fen.to_string(),
                f.first_date,
                f.last_date,
                f.tx_ids.join(" "),
            ]
        })
        .collect();
    table_response(&format, &format!("anomalies-{code}"), &head, rows)
}

/// How long money waited at one level of government (amount-weighted).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WaitsJson {
    /// `central`, `provincial`, `municipal` or `county`.
    pub level: String,
    pub amount_fen: i64,
    pub median_days: i64,
    pub p90_days: i64,
}

/// Time to pass down and time to pay, per level, in a region; and direct
/// funds (直达资金): the share that reached final recipients, and their days
/// from the central appropriation to the final payment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimingJson {
    pub as_of: AsOfJson,
    pub region: RegionJson,
    /// Days from money arriving at an org to that org passing it down (下达时间).
    pub pass_down: Vec<WaitsJson>,
    /// Days from the appropriation to the payment to a final recipient.
    pub payment: Vec<WaitsJson>,
    /// Direct funds that came into the region, and what of it was paid to recipients.
    pub direct_inflow_fen: i64,
    pub direct_disbursed_fen: i64,
    /// disbursed / inflow of direct funds, basis points; null without any.
    pub direct_reached_bp: Option<i64>,
    /// Days from the central appropriation to the final payment, direct funds only.
    pub direct_payment: Vec<WaitsJson>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TimingQuery {
    /// Only this program (pass-down and payment waits).
    pub program: Option<String>,
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), TimingQuery),
    responses((status = 200, body = TimingJson)),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/timing")]
pub(crate) async fn timing(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<TimingQuery>,
) -> Result<web::Json<TimingJson>, ServiceError> {
    use crate::indicators::{Wait, direct_funds, waits};
    let client = state.caller(&req)?;
    let (_, tree) = region(&state, &client, &code)?;
    let (c, t, program) = (code.to_string(), tree.clone(), q.program.clone());
    let s = state.clone().into_inner();
    let (pass_down, payment, direct, direct_payment, p) = s
        .read(move |conn| {
            filter(
                &RangeQuery {
                    program: program.clone(),
                    ..RangeQuery::default()
                },
                conn,
            )?;
            let p = position(conn)?;
            let pg = program.as_deref();
            let pass_down = waits(conn, &c, Wait::PassDown, pg, false).map_err(store_err)?;
            let payment = waits(conn, &c, Wait::Payment, pg, false).map_err(store_err)?;
            let direct = direct_funds(conn, &t, &c).map_err(store_err)?;
            let direct_payment = waits(conn, &c, Wait::Payment, None, true).map_err(store_err)?;
            Ok((pass_down, payment, direct, direct_payment, p))
        })
        .await?;
    let json = |v: Vec<crate::indicators::Waits>| -> Vec<WaitsJson> {
        v.into_iter()
            .map(|w| WaitsJson {
                level: w.level,
                amount_fen: w.amount_fen,
                median_days: w.median_days,
                p90_days: w.p90_days,
            })
            .collect()
    };
    Ok(web::Json(TimingJson {
        as_of: as_of(&p, &state),
        region: region_json(&tree, &code),
        pass_down: json(pass_down),
        payment: json(payment),
        direct_inflow_fen: direct.0,
        direct_disbursed_fen: direct.1,
        direct_reached_bp: crate::indicators::ratio_bp(direct.1, direct.0),
        direct_payment: json(direct_payment),
    }))
}

/// The routes, registered so that the OpenAPI document lists exactly them.
pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(status)
        .service(whoami)
        .service(trace)
        .service(deadlines_csv)
        .service(deadlines)
        .service(idle_csv)
        .service(idle)
        .service(anomalies_csv)
        .service(anomalies)
        .service(timing)
        .service(region_csv)
        .service(months_csv)
        .service(programs_csv)
        .service(months)
        .service(programs)
        .service(region_view);
}
