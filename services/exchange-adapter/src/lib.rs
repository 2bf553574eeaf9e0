//! exchange-adapter: the API for external budget and treasury systems.
//!
//! - **REST/JSON** on actix-web, described by an OpenAPI 3 document built
//!   from the handlers (`/openapi.json`) with an API page at `/docs`.
//! - **Submit** a client-signed envelope, or (per client, off by default) an
//!   operation the member signs for the client. `?wait=commit|final` waits;
//!   `Idempotency-Key` makes retries return the first result.
//! - **Queries**: chain head, blocks, transactions with receipt proofs,
//!   accounts (paginated), account history, programs, lineage trace.
//! - **Access**: API keys (stored as SHA-256 hashes) map to an org and scopes;
//!   bodies, pages and request rates are bounded; errors are RFC 9457
//!   `application/problem+json` with stable codes.
#![forbid(unsafe_code)]

pub mod api;
pub mod backend;
pub mod bulk;
pub mod clients;
pub mod context;
pub mod cursor;
pub mod deadlines;
pub mod error;
pub mod events;
pub mod export;
pub mod governance;
pub mod grpc;
pub mod http_client;
pub mod hub;
pub mod import_file;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod ops;
pub mod submit;

pub use openapi::openapi;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, dev::ServerHandle, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_common::ops_server::{OpsServer, Readiness};
use fiscus_common::tls::Endpoint;
use fiscus_common::tls::{TlsConfig, TlsContext};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use utoipa_actix_web::AppExt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The REST API: plain HTTP, or HTTPS when `rest_tls` is on.
    pub listen: SocketAddr,
    /// Serve the REST API over TLS 1.3 with the member's node certificate
    /// (`tls`). A caller may then authenticate with a consortium client
    /// certificate instead of an API key; it acts for the org the certificate
    /// names, with `grpc_cert_scopes`. Off: plain HTTP, for loopback or behind
    /// the member's TLS ingress. On by default.
    pub rest_tls: bool,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
    /// The gRPC API (`fiscus.exchange.v1.Exchange`) over mutual TLS, for
    /// clients with a consortium client certificate; unset: not served.
    pub grpc_listen: Option<SocketAddr>,
    /// What a caller with a consortium client certificate may do, over gRPC
    /// or over the REST API with `rest_tls` (it acts for the org its
    /// certificate names).
    pub grpc_cert_scopes: Vec<clients::Scope>,
    /// The member's node certificate, for calling its ledger-store and the orderers.
    pub tls: TlsConfig,
    pub ledger: Endpoint,
    pub orderers: Vec<Endpoint>,
    /// Signer certificates (PEM), to check envelopes before they are ordered.
    pub signers_dir: PathBuf,
    /// The genesis `ConsortiumConfig`: consortium id, roots and the org registry.
    pub genesis_file: PathBuf,
    /// API clients (`[[client]]` entries, see the README).
    pub clients_file: PathBuf,
    pub max_body_bytes: usize,
    /// Largest bulk import file (`POST /v1/imports`).
    pub max_import_bytes: usize,
    pub max_page: u32,
    /// Requests per second per client, and the burst above it.
    pub rate_per_s: u32,
    pub burst: u32,
    /// The longest `?wait=commit|final` waits before answering 503.
    pub wait_timeout_ms: u64,
    pub max_message_bytes: usize,
    /// Where webhook cursors and dead letters are kept.
    pub data_dir: PathBuf,
    /// Webhooks: `[[webhooks]]` with name, url, secret (and optionally
    /// ca_file, max_attempts, initial_backoff_ms); see `hub::WebhookConfig`.
    pub webhooks: Vec<hub::WebhookConfig>,
    pub json_logs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            http_listen: ([127, 0, 0, 1], 9480).into(),
            rest_tls: true,
            grpc_listen: None,
            grpc_cert_scopes: vec![clients::Scope::Submit, clients::Scope::Read],
            tls: TlsConfig::in_dir(std::path::Path::new("tls")),
            ledger: Endpoint {
                addr: "127.0.0.1:7300".into(),
                server_name: "localhost".into(),
            },
            orderers: Vec::new(),
            signers_dir: "signers".into(),
            genesis_file: "consortium-config.pb".into(),
            clients_file: "api-clients.toml".into(),
            max_body_bytes: 1024 * 1024,
            max_import_bytes: 16 * 1024 * 1024,
            max_page: 1000,
            rate_per_s: 500,
            burst: 1000,
            wait_timeout_ms: 30_000,
            max_message_bytes: 64 * 1024 * 1024,
            data_dir: "data/exchange-adapter".into(),
            webhooks: Vec::new(),
            json_logs: false,
        }
    }
}

impl fiscus_common::config::ServiceConfig for Config {
    const SERVICE: &'static str = "exchange_adapter";

    fn validate(&self) -> Result<(), fiscus_common::config::ConfigError> {
        let bad = |key, message: &str| {
            Err(fiscus_common::config::ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if self.max_body_bytes == 0 {
            return bad("max_body_bytes", "must be positive");
        }
        if self.max_page == 0 {
            return bad("max_page", "must be positive");
        }
        if self.rate_per_s == 0 || self.burst == 0 {
            return bad("rate_per_s", "rate_per_s and burst must be positive");
        }
        if self.orderers.is_empty() {
            return bad("orderers", "name at least one orderer to submit to");
        }
        let mut names = std::collections::BTreeSet::new();
        for w in &self.webhooks {
            if !names.insert(w.name.clone()) {
                return bad("webhooks", "each webhook needs a unique name");
            }
            if let Err(problem) = w.validate() {
                return bad("webhooks", problem);
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] fiscus_common::tls::TlsError),
    #[error(transparent)]
    Certs(#[from] fiscus_common::certs::LoadError),
    #[error(transparent)]
    Genesis(#[from] fiscus_common::genesis::GenesisError),
    #[error(transparent)]
    Clients(#[from] clients::ClientsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Cursor(String),
}

const DOCS_HTML: &str = include_str!("docs.html");

fn json_error(e: actix_web::error::JsonPayloadError, req: &HttpRequest) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    let se = match &e {
        J::OverflowKnownLength { .. } | J::Overflow { .. } => ServiceError::new(
            ErrorKind::PayloadTooLarge,
            codes::api::BODY_TOO_LARGE,
            e.to_string(),
        ),
        J::ContentType => ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::api::CONTENT_TYPE,
            "send Content-Type: application/json",
        ),
        J::Deserialize(d) if d.is_data() => ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::api::INVALID_BODY,
            format!("the body does not match the schema: {d}"),
        ),
        _ => ServiceError::new(
            ErrorKind::InvalidArgument,
            codes::api::MALFORMED_JSON,
            format!("the body is not valid JSON: {e}"),
        ),
    };
    unless_unauthenticated(req, se)
}

/// A request that does not authenticate is answered 401, whatever else is
/// wrong with it: authentication comes before parsing (the handlers take
/// their caller first; these error handlers cover extractors that fail
/// before the handler runs).
fn unless_unauthenticated(req: &HttpRequest, e: ServiceError) -> actix_web::Error {
    match req
        .app_data::<web::Data<context::Api>>()
        .map(|a| a.authenticated(req))
    {
        Some(Err(auth)) if auth.kind == ErrorKind::Unauthenticated => auth.into(),
        _ => e.into(),
    }
}

/// A query string that does not parse: 400 `api.bad_query` (401 first when
/// the request does not authenticate).
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

/// A running adapter.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The gRPC API, when configured.
    pub grpc_addr: Option<SocketAddr>,
    kill: tokio::sync::watch::Sender<bool>,
    handle: ServerHandle,
    ops: OpsServer,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.kill.send(true);
        for t in &self.tasks {
            t.abort();
        }
        self.handle.stop(true).await;
        self.ops.stop().await;
    }
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.to_string();
    move |source| StartError::Io { what, source }
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let tls = TlsContext::load(&config.tls)?;
    let genesis = fiscus_common::genesis::read_genesis(&config.genesis_file)?;
    let certs = fiscus_common::certs::Certs::load_dir(&config.signers_dir, &genesis.ca_roots)?;
    let clients = clients::Clients::load(&config.clients_file, config.rate_per_s, config.burst)?;
    // Webhook dead letters survive restarts, next to the webhook cursors.
    // Kept (and listed, and acknowledgeable) after the last webhook is removed too.
    let dead_file = config.data_dir.join("webhook-dead-letters.jsonl");
    let hub = if config.webhooks.is_empty() && !dead_file.exists() {
        hub::Hub::default()
    } else {
        std::fs::create_dir_all(&config.data_dir).map_err(io(config.data_dir.display()))?;
        hub::Hub::durable(dead_file.clone()).map_err(io(dead_file.display()))?
    };
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::register(&registry)
        .and_then(|m| tls.register_expiry_metric(&registry).map(|()| m))
        .map_err(|e| StartError::Io {
            what: "registering metrics".into(),
            source: std::io::Error::other(e),
        })?;
    let (http_metrics, grpc_metrics) = fiscus_common::red::HttpMetrics::register(&registry)
        .and_then(|h| fiscus_common::red::GrpcMetricsLayer::register(&registry).map(|g| (h, g)))
        .map_err(|e| StartError::Io {
            what: "registering metrics".into(),
            source: std::io::Error::other(e),
        })?;
    let http_metrics = web::Data::new(http_metrics);
    let api = web::Data::new(context::Api {
        consortium_id: genesis.consortium_id.clone(),
        clients,
        backend: backend::Backend::new(
            tls.client_config()?,
            config.ledger.clone(),
            config.orderers.clone(),
            config.max_message_bytes,
        ),
        signers: certs
            .iter()
            .map(|(id, org, key)| (*id, (org.to_owned(), *key)))
            .collect(),
        roots: fiscus_common::certs::Roots::from_ders(&genesis.ca_roots),
        registry: std::sync::RwLock::new(Arc::new(fiscus_contract_executor::Orgs::from_config(
            &genesis,
        ))),
        chain_revocations: std::sync::RwLock::new(Arc::new(
            fiscus_common::certs::ChainRevocations::from_config(&genesis),
        )),
        recipient_id_salt: genesis.recipient_id_salt.clone(),
        cursor_key: cursor::CursorKey::random().map_err(|e| StartError::Cursor(e.message))?,
        limits: fiscus_proto::DecodeLimits::default(),
        max_page: config.max_page.max(1),
        max_import_bytes: config.max_import_bytes,
        hub,
        webhooks: config.webhooks.clone(),
        metrics,
        wait_timeout: std::time::Duration::from_millis(config.wait_timeout_ms),
        cert_scopes: config.grpc_cert_scopes.clone(),
        revocations: tls.revocations(),
    });
    // Certificate renewals and CRL updates reach the TLS listeners without a
    // restart (client certificates are checked against the CRL at handshake).
    let mut tasks = vec![
        tokio::spawn(events::follow(api.clone())),
        tokio::spawn(context::follow_orgs(api.clone())),
        tls.spawn_reloader(),
        // The CRL on chain, through the ledger-store, wins over the file.
        tokio::spawn({
            let (api, tls) = (api.clone(), tls.clone());
            async move {
                loop {
                    match api.backend.ledger().await {
                        Ok(ledger) => {
                            return fiscus_ledger_store::chain_crl::follow(tls, ledger).await;
                        }
                        Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                    }
                }
            }
        }),
    ];
    if !config.webhooks.is_empty() {
        std::fs::create_dir_all(&config.data_dir).map_err(io(config.data_dir.display()))?;
    }
    for hook in &config.webhooks {
        let file = config
            .data_dir
            .join(format!("webhook-{}.cursor", hook.name));
        tasks.push(tokio::spawn(events::webhook_loop(
            api.clone(),
            hook.clone(),
            file,
        )));
    }
    let (kill, kill_rx) = tokio::sync::watch::channel(false);
    let mut grpc_addr = None;
    if let Some(listen) = config.grpc_listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(io(listen))?;
        grpc_addr = Some(listener.local_addr().map_err(io(listen))?);
        let incoming = fiscus_common::tls::serve_incoming_until(
            listener,
            tls.server_config(fiscus_common::tls::ClientAuth::Required)?,
            tls.revocations(),
            kill_rx,
            None,
        );
        let svc = fiscus_proto::pb::exchange::exchange_server::ExchangeServer::new(
            grpc::ExchangeService {
                api: api.clone(),
                cert_scopes: config.grpc_cert_scopes.clone(),
            },
        )
        .max_decoding_message_size(config.max_body_bytes);
        let grpc_metrics = grpc_metrics.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .layer(grpc_metrics)
                .add_service(svc)
                .serve_with_incoming(incoming)
                .await
            {
                tracing::error!(error = %e, "exchange gRPC API stopped");
            }
        }));
    }
    let doc = Arc::new(openapi().to_json().map_err(|e| StartError::Io {
        what: "the OpenAPI document".into(),
        source: std::io::Error::other(e),
    })?);
    let max_body = config.max_body_bytes;
    let server = HttpServer::new(move || {
        let doc = doc.clone();
        App::new()
            .wrap(actix_web::middleware::from_fn(
                fiscus_common::red::record_http,
            ))
            .app_data(http_metrics.clone())
            .into_utoipa_app()
            // Registered with the same function the document is built from.
            .configure(api::routes)
            .into_app()
            .app_data(api.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(max_body)
                    .error_handler(json_error),
            )
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
            .route(
                "/docs",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(DOCS_HTML)
                }),
            )
            .default_service(web::to(no_route))
    })
    .workers(2)
    .disable_signals()
    .on_connect(remember_client_certificate);
    let server = if config.rest_tls {
        // Advertise only what is served: actix-web is built without HTTP/2, so
        // the node config's `h2` must go (a client offering only h2 would be
        // handed to an HTTP/2 dispatcher that does not exist); actix adds
        // `http/1.1` itself.
        let mut rest = (*tls.server_config(fiscus_common::tls::ClientAuth::Optional)?).clone();
        rest.alpn_protocols.clear();
        server.bind_rustls_0_23(config.listen, rest)
    } else {
        server.bind(config.listen)
    }
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
    let ops = OpsServer::start(config.http_listen, registry, readiness)
        .map_err(io(config.http_listen))?;
    tracing::info!(%addr, member = ?tls.identity().member, "exchange-adapter serving");
    Ok(Running {
        addr,
        http_addr: ops.addr,
        grpc_addr,
        kill,
        handle,
        ops,
        tasks,
    })
}

/// Keeps a TLS caller's verified client certificate (roots and CRL were
/// checked in the handshake) with the connection, for [`context::Api::caller`].
fn remember_client_certificate(conn: &dyn std::any::Any, ext: &mut actix_web::dev::Extensions) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    let Some(stream) = conn.downcast_ref::<Tls>() else {
        return;
    };
    let first = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first());
    if let Some(der) = first {
        match fiscus_common::tls::PeerIdentity::from_der(der) {
            Ok(id) => {
                ext.insert(id);
            }
            Err(e) => tracing::warn!(error = %e, "a REST client certificate has no Fiscus profile"),
        }
    }
}
