//! The analytics service: the follower that reads committed blocks and their
//! receipts from the member's ledger-store (gRPC, mutual TLS) into the store,
//! and the indicator API.
//!
//! The follower's position is the store's cursor, written in the same SQLite
//! transaction as each batch: a restart resumes from it, and a crash between
//! batches applies the lost batch again (nothing is counted twice, because
//! the cursor and the facts commit together). It asks the ledger for its
//! height every `poll_ms` while caught up; there is no other wake-up yet.

use crate::api::{self, State};
use crate::store::{Division, Store, divisions};
use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use fiscus_common::codes;
use fiscus_common::config::ConfigError;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_common::ops_server::{OpsServer, Readiness};
use fiscus_common::tls::{Endpoint, TlsConfig, TlsContext};
use fiscus_exchange_adapter::backend::{Backend, from_status};
use fiscus_exchange_adapter::clients::Clients;
use fiscus_proto::pb::ledger::GetBlockRequest;
use fiscus_proto::pb::types::ConsortiumConfig;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The indicator API, plain HTTP: for loopback, or behind the member's
    /// TLS ingress.
    pub listen: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
    /// The member's node certificate, for calling its ledger-store.
    pub tls: TlsConfig,
    pub ledger: Endpoint,
    /// The genesis `ConsortiumConfig`: the division tree until the chain's
    /// own configuration is read.
    pub genesis_file: PathBuf,
    /// API clients: the exchange-adapter's file (`[[client]]` entries).
    pub clients_file: PathBuf,
    /// Where `analytics.sqlite3` is kept.
    pub data_dir: PathBuf,
    /// Blocks applied per SQLite transaction at most.
    pub batch_blocks: u32,
    /// How often the ledger's height is asked while caught up.
    pub poll_ms: u64,
    /// Requests per second per client, and the burst above it.
    pub rate_per_s: u32,
    pub burst: u32,
    pub max_message_bytes: usize,
    /// Idle funds (沉淀资金): days without moving, when a query does not say.
    pub idle_days: u32,
    /// Rows of a list page at most.
    pub max_page: u32,
    /// Rows of a CSV export at most.
    pub max_export_rows: u32,
    /// Anomaly rule `split_payment`: payments of at least 80% of this and
    /// below it, to one recipient, within `split_window_days`.
    pub split_threshold_fen: i64,
    pub split_window_days: u32,
    /// Anomaly rule `long_freeze`: frozen for more than this many days.
    pub frozen_days: u32,
    pub json_logs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8090).into(),
            http_listen: ([127, 0, 0, 1], 7620).into(),
            tls: TlsConfig::in_dir(std::path::Path::new("tls")),
            ledger: Endpoint {
                addr: "127.0.0.1:7300".into(),
                server_name: "localhost".into(),
            },
            genesis_file: "consortium-config.pb".into(),
            clients_file: "api-clients.toml".into(),
            data_dir: "data/analytics".into(),
            batch_blocks: 256,
            poll_ms: 50,
            rate_per_s: 500,
            burst: 1000,
            max_message_bytes: 64 * 1024 * 1024,
            idle_days: 90,
            max_page: 1000,
            max_export_rows: 100_000,
            split_threshold_fen: 10_000_000,
            split_window_days: 7,
            frozen_days: 30,
            json_logs: false,
        }
    }
}

impl fiscus_common::config::ServiceConfig for Config {
    const SERVICE: &'static str = "analytics";

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_owned(),
            })
        };
        if !(1..=10_000).contains(&self.batch_blocks) {
            return bad("batch_blocks", "must be 1 to 10000");
        }
        if !(10..=60_000).contains(&self.poll_ms) {
            return bad("poll_ms", "must be 10 to 60000");
        }
        if self.rate_per_s == 0 || self.burst == 0 {
            return bad("rate_per_s", "rate_per_s and burst must be positive");
        }
        if !(1..=3650).contains(&self.idle_days) {
            return bad("idle_days", "must be 1 to 3650");
        }
        if !(1..=10_000).contains(&self.max_page) {
            return bad("max_page", "must be 1 to 10000");
        }
        if !(1..=1_000_000).contains(&self.max_export_rows) {
            return bad(
                "max_export_rows",
                "must be 1 to 1000000 (an Excel sheet holds 1048576 rows)",
            );
        }
        if self.split_threshold_fen < 5 {
            return bad("split_threshold_fen", "must be at least 5 fen");
        }
        if !(1..=366).contains(&self.split_window_days) {
            return bad("split_window_days", "must be 1 to 366");
        }
        if !(1..=3650).contains(&self.frozen_days) {
            return bad("frozen_days", "must be 1 to 3650");
        }
        Ok(())
    }
}

impl Config {
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("analytics.sqlite3")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] fiscus_common::tls::TlsError),
    #[error(transparent)]
    Genesis(#[from] fiscus_common::genesis::GenesisError),
    #[error(transparent)]
    Clients(#[from] fiscus_exchange_adapter::clients::ClientsError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.to_string();
    move |source| StartError::Io { what, source }
}

/// Reads blocks `from..=to` with their receipts and makes their facts:
/// the two calls of a block together, up to eight blocks in flight, the
/// results in height order.
async fn fetch(
    backend: &Backend,
    from: u64,
    to: u64,
) -> Result<Vec<(u64, i64, crate::facts::BlockFacts)>, ServiceError> {
    use futures::StreamExt as _;
    let ledger = backend.ledger().await?;
    let one = |h: u64| {
        let (mut a, mut b) = (ledger.clone(), ledger.clone());
        async move {
            let req = GetBlockRequest {
                number: h,
                hash: Vec::new(),
            };
            let (block, receipts) =
                tokio::join!(a.get_block(req.clone()), b.get_block_receipts(req));
            let block = block.map_err(|s| from_status("block", &s))?.into_inner();
            let receipts = receipts
                .map_err(|s| from_status("block receipts", &s))?
                .into_inner();
            let facts = crate::facts::from_wire(&block, &receipts).map_err(|m| {
                ServiceError::new(ErrorKind::Internal, codes::api::BACKEND_ERROR, m)
            })?;
            if facts.0 != h {
                return Err(ServiceError::new(
                    ErrorKind::Internal,
                    codes::api::BACKEND_ERROR,
                    format!("asked for block {h}, the ledger sent block {}", facts.0),
                ));
            }
            Ok(facts)
        }
    };
    futures::stream::iter(from..=to)
        .map(one)
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The registry of the configuration on chain now, as divisions.
async fn chain_divisions(backend: &Backend) -> Option<Vec<Division>> {
    let resp = backend
        .state(fiscus_contract_executor::keys::CONFIG, 0)
        .await
        .ok()?;
    if !resp.found {
        return None;
    }
    ConsortiumConfig::decode(&resp.value[..])
        .ok()
        .map(|c| divisions(&c))
}

/// Follows the ledger into the store until stopped. Errors are logged and
/// retried after a pause; the store is never left half-applied.
pub async fn follow(
    backend: Arc<Backend>,
    store: Arc<std::sync::Mutex<Store>>,
    state: Arc<State>,
    batch_blocks: u64,
    poll: Duration,
) {
    // The registry is read at start and after any batch with a valid
    // governance transaction, and again each round until a read succeeds.
    let mut tree_stale = true;
    loop {
        let head = match backend.chain_info().await {
            Ok(i) => i.height,
            Err(e) => {
                tracing::warn!(error = %e.message, "analytics: the ledger does not answer");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        state.ledger_height.store(head, Ordering::Relaxed);
        if tree_stale && let Some(d) = chain_divisions(&backend).await {
            set_divisions(&store, &state, d).await;
            tree_stale = false;
        }
        let next = {
            let s = store.clone();
            match tokio::task::spawn_blocking(move || {
                s.lock()
                    .map_err(|_| ())
                    .and_then(|g| g.position().map_err(|_| ()))
            })
            .await
            {
                Ok(Ok(p)) => p.next_height,
                _ => {
                    tracing::error!("analytics: the store's cursor cannot be read");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        };
        if next > head {
            tokio::time::sleep(poll).await;
            continue;
        }
        let to = head.min(next + batch_blocks - 1);
        let blocks = match fetch(&backend, next, to).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e.message, from = next, to, "analytics: reading blocks");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let governance = blocks.iter().any(|(_, _, f)| f.governance);
        let s = store.clone();
        let applied = tokio::task::spawn_blocking(move || match s.lock() {
            Ok(mut g) => g.apply(&blocks).map_err(|e| e.to_string()),
            Err(_) => Err("the store's lock is poisoned".to_owned()),
        })
        .await;
        match applied {
            Ok(Ok(p)) => tracing::debug!(height = p.next_height - 1, "analytics applied"),
            Ok(Err(e)) => {
                tracing::error!(error = %e, from = next, to, "analytics: applying blocks");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => tracing::error!(error = %e, "analytics: the apply task failed"),
        }
        tree_stale |= governance;
    }
}

async fn set_divisions(store: &Arc<std::sync::Mutex<Store>>, state: &State, d: Vec<Division>) {
    let s = store.clone();
    let d2 = d.clone();
    let ok = tokio::task::spawn_blocking(move || match s.lock() {
        Ok(mut g) => g.set_divisions(&d2).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false);
    if ok {
        state.set_divisions(d);
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Fiscus analytics",
        description = "财政转移支付 统计分析接口 / The Fiscus statistical analysis API: indicators per region, department, month and program. Amounts are integer fen; progress is in basis points. Errors are RFC 9457 problem+json with a stable `code`.",
        version = "1"
    ),
    modifiers(&ApiKeyScheme),
    components(schemas(fiscus_exchange_adapter::error::ProblemDoc)),
    tags((name = "analytics", description = "Indicators (scope `read`, the exchange-adapter's disclosure policy)"))
)]
struct ApiDoc;

struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An exchange-adapter API key: `Authorization: Bearer fsk_…` (or `X-Api-Key`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of the routes [`api::routes`] registers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(api::routes)
        .split_for_parts();
    // The same problem responses as the exchange-adapter's routes list.
    fiscus_exchange_adapter::openapi::add_common_responses(&mut doc);
    doc
}

/// A request that does not authenticate is answered 401 before anything
/// about its query or path.
fn unless_unauthenticated(req: &HttpRequest, e: ServiceError) -> actix_web::Error {
    match req
        .app_data::<web::Data<State>>()
        .map(|s| s.authenticated(req))
    {
        Some(Err(auth)) if auth.kind == ErrorKind::Unauthenticated => auth.into(),
        _ => e.into(),
    }
}

fn query_error(e: actix_web::error::QueryPayloadError, req: &HttpRequest) -> actix_web::Error {
    unless_unauthenticated(
        req,
        ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::api::BAD_QUERY,
            e.to_string(),
        ),
    )
}

fn path_error(e: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    unless_unauthenticated(
        req,
        ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::api::BAD_PATH,
            e.to_string(),
        ),
    )
}

async fn no_route(req: HttpRequest) -> Result<HttpResponse, ServiceError> {
    Err(ServiceError::new(
        ErrorKind::NotFound,
        codes::api::NO_ROUTE,
        format!(
            "{} {} is not a route of this API; see /openapi.json",
            req.method(),
            req.path()
        ),
    ))
}

/// The dashboard: one page, its script reading the indicator API with the
/// caller's API key (kept in the tab's session storage, never in a URL sent
/// to the server: a `#key=` fragment is read by the page and stays in the
/// browser).
const DASHBOARD_HTML: &str = include_str!("../assets/dashboard.html");
/// Apache ECharts 5.6.0 (`dist/echarts.min.js`), vendored with its licence:
/// the page loads nothing from the internet.
const ECHARTS_JS: &str = include_str!("../assets/echarts/echarts.min.js");
const ECHARTS_LICENSE: &str = concat!(
    include_str!("../assets/echarts/LICENSE"),
    "\n",
    include_str!("../assets/echarts/NOTICE")
);

async fn dashboard() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; connect-src 'self'"))
        .body(DASHBOARD_HTML)
}

async fn echarts() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .body(ECHARTS_JS)
}

async fn echarts_license() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(ECHARTS_LICENSE)
}

/// A running analytics service.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    handle: ServerHandle,
    ops: OpsServer,
    follower: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(self) {
        self.follower.abort();
        let _ = self.follower.await;
        self.handle.stop(true).await;
        self.ops.stop().await;
    }
}

/// Opens the store (creating it with the genesis division tree) and starts
/// the follower and the API.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let tls = TlsContext::load(&config.tls)?;
    let genesis = fiscus_common::genesis::read_genesis(&config.genesis_file)?;
    let clients = Clients::load(&config.clients_file, config.rate_per_s, config.burst)?;
    std::fs::create_dir_all(&config.data_dir).map_err(io(config.data_dir.display()))?;
    let db = config.db_path();
    let mut store = Store::open(&db)?;
    let divs = divisions(&genesis);
    if store.divisions()?.is_empty() {
        store.set_divisions(&divs)?;
    }
    let divs = store.divisions()?;
    let backend = Arc::new(Backend::new(
        tls.client_config()?,
        config.ledger.clone(),
        Vec::new(),
        config.max_message_bytes,
    ));
    let limits = api::Limits {
        idle_days: config.idle_days,
        max_page: config.max_page,
        max_export_rows: config.max_export_rows,
        anomalies: crate::anomalies::Thresholds {
            split_threshold_fen: config.split_threshold_fen,
            split_window_days: i64::from(config.split_window_days),
            frozen_days: i64::from(config.frozen_days),
        },
    };
    let state = Arc::new(State::new(clients, divs, db, limits, backend.clone()));
    let follower = tokio::spawn(follow(
        backend,
        Arc::new(std::sync::Mutex::new(store)),
        state.clone(),
        u64::from(config.batch_blocks),
        Duration::from_millis(config.poll_ms),
    ));
    let doc = Arc::new(openapi().to_json().map_err(|e| StartError::Io {
        what: "the OpenAPI document".into(),
        source: std::io::Error::other(e),
    })?);
    let data = web::Data::from(state);
    let server = HttpServer::new(move || {
        let doc = doc.clone();
        App::new()
            .into_utoipa_app()
            .configure(api::routes)
            .into_app()
            .app_data(data.clone())
            .app_data(web::QueryConfig::default().error_handler(query_error))
            .app_data(web::PathConfig::default().error_handler(path_error))
            .route(
                "/openapi.json",
                web::get().to(move || {
                    let doc = doc.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(doc.as_str().to_owned())
                    }
                }),
            )
            .route("/", web::get().to(dashboard))
            .route("/assets/echarts.min.js", web::get().to(echarts))
            .route(
                "/assets/echarts-LICENSE.txt",
                web::get().to(echarts_license),
            )
            .default_service(web::to(no_route))
    })
    .workers(2)
    .disable_signals()
    .bind(config.listen)
    .map_err(io(config.listen))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| StartError::Io {
            what: "the API listener".into(),
            source: std::io::Error::other("no address bound"),
        })?;
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    let readiness = Readiness::default();
    readiness.set("api", Ok(()));
    let ops = OpsServer::start(config.http_listen, prometheus::Registry::new(), readiness)
        .map_err(io(config.http_listen))?;
    tracing::info!(%addr, "analytics serving");
    Ok(Running {
        addr,
        http_addr: ops.addr,
        handle,
        ops,
        follower,
    })
}

/// `fiscus analytics rebuild`: empties the store's facts, rollups and cursor
/// (keeping the file), takes the division tree from the chain's
/// configuration, and applies every block from 1 to the ledger's height at
/// the start, calling `progress` after each batch. A running service on the
/// same store follows on from where this ends.
pub async fn rebuild(
    config: &Config,
    mut progress: impl FnMut(&crate::store::Position, u64),
) -> Result<crate::store::Position, RebuildError> {
    let tls = TlsContext::load(&config.tls).map_err(StartError::from)?;
    let genesis =
        fiscus_common::genesis::read_genesis(&config.genesis_file).map_err(StartError::from)?;
    std::fs::create_dir_all(&config.data_dir).map_err(io(config.data_dir.display()))?;
    let backend = Backend::new(
        tls.client_config().map_err(StartError::from)?,
        config.ledger.clone(),
        Vec::new(),
        config.max_message_bytes,
    );
    let head = backend
        .chain_info()
        .await
        .map_err(RebuildError::Ledger)?
        .height;
    let divs = chain_divisions(&backend)
        .await
        .unwrap_or_else(|| divisions(&genesis));
    let mut store = Store::open(&config.db_path()).map_err(StartError::from)?;
    store.reset().map_err(StartError::from)?;
    store.set_divisions(&divs).map_err(StartError::from)?;
    let mut pos = store.position().map_err(StartError::from)?;
    progress(&pos, head);
    while pos.next_height <= head {
        let to = head.min(pos.next_height + u64::from(config.batch_blocks) - 1);
        let blocks = fetch(&backend, pos.next_height, to)
            .await
            .map_err(RebuildError::Ledger)?;
        pos = tokio::task::block_in_place(|| store.apply(&blocks)).map_err(StartError::from)?;
        progress(&pos, head);
    }
    Ok(pos)
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("the ledger-store: {}", .0.message)]
    Ledger(ServiceError),
}
