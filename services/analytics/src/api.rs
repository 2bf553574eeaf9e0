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
}

impl State {
    pub fn new(clients: Clients, divisions: Vec<Division>, db_path: PathBuf) -> Self {
        let s = Self {
            clients,
            registry: RwLock::new(Default::default()),
            db_path,
            readers: Mutex::new(Vec::new()),
            ledger_height: AtomicU64::new(0),
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
            let out = f(&conn);
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
    responses((status = 200, description = "One row for the region's total, one for its department, one per child subtree", content_type = "text/csv")),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/children.csv")]
pub(crate) async fn region_csv(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ServiceError> {
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
    csv_response(&format!("region-{code}"), &head, rows)
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

fn series_csv(s: SeriesJson, key: &str, name: String) -> Result<HttpResponse, ServiceError> {
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
    csv_response(&name, &head, rows)
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, description = "One row per month", content_type = "text/csv")),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/months.csv")]
pub(crate) async fn months_csv(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ServiceError> {
    let s = series_of(state, &req, &code, q.into_inner(), "month").await?;
    series_csv(s, "month", format!("months-{code}"))
}

#[utoipa::path(tag = "analytics",
    params(("code" = String, Path, description = "The region's org code"), RangeQuery),
    responses((status = 200, description = "One row per program", content_type = "text/csv")),
    security(("api_key" = [])))]
#[get("/v1/analytics/regions/{code}/programs.csv")]
pub(crate) async fn programs_csv(
    state: web::Data<State>,
    req: HttpRequest,
    code: web::Path<String>,
    q: web::Query<RangeQuery>,
) -> Result<HttpResponse, ServiceError> {
    let s = series_of(state, &req, &code, q.into_inner(), "program").await?;
    series_csv(s, "program", format!("programs-{code}"))
}

/// The routes, registered so that the OpenAPI document lists exactly them.
pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(status)
        .service(whoami)
        .service(region_csv)
        .service(months_csv)
        .service(programs_csv)
        .service(months)
        .service(programs)
        .service(region_view);
}
