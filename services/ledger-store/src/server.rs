//! `fiscus ledger-store`: a member's chain as its own process.
//!
//! - With `orderers` set (a member without a gossip-gateway), a committer
//!   task pulls blocks with `Deliver` from the orderers, from its own height,
//!   failing over between them, and commits each block; a refused block is
//!   logged with its reason and leaves the store unchanged. A full member
//!   (`fiscus member`, the member chart, the devnet) leaves `orderers` empty:
//!   its gossip-gateway is the one orderer follower and feeds `LedgerIngest`.
//! - Execution goes to the member's contract-executor over gRPC when
//!   `executor` is set, else runs in this process.
//! - The `Ledger` query service answers over mutual TLS; `LedgerIngest` takes
//!   blocks from the member's own gossip-gateway (then `orderers` is empty).

use crate::exec::{Executor, RemoteExecutor};
use crate::ledger::{Ledger, LedgerConfig};
use crate::service::{IngestService, LedgerService};
use fiscus_common::certs::Certs;
use fiscus_common::config::{ConfigError, ServiceConfig};
use fiscus_common::genesis::read_genesis;
use fiscus_common::ops_server::{OpsServer, Readiness};
use fiscus_common::store::StoreLimits;
use fiscus_common::store::fjall::FjallStore;
use fiscus_common::tls::Endpoint;
use fiscus_common::tls::{
    ClientAuth, TlsConfig, TlsContext, connect_channel, lazy_channel, serve_incoming_until,
};
use fiscus_proto::DecodeLimits;
use fiscus_proto::pb::ledger::ledger_ingest_server::LedgerIngestServer;
use fiscus_proto::pb::ledger::ledger_server::LedgerServer;
use fiscus_proto::pb::orderer::DeliverRequest;
use fiscus_proto::pb::orderer::orderer_client::OrdererClient;
use fiscus_proto::pb::types::Role;
use fiscus_proto::sign::SigningKey;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::StreamExt;

/// The free-space margin under which commits pause (see [`crate::disk`]).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The `Ledger` query API (mutual TLS).
    pub listen: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// This node's certificate (role `node`; it names the member), key and root.
    pub tls: TlsConfig,
    /// The genesis `ConsortiumConfig` (protobuf), as `fiscus identity-ca init` writes it.
    pub genesis_file: PathBuf,
    /// PEM certificates of the orderers and transaction signers.
    pub signers_dir: PathBuf,
    /// Orderer client endpoints to pull blocks from, tried in turn.
    pub orderers: Vec<Endpoint>,
    /// The member's contract-executor; unset: execute in this process.
    pub executor: Option<Endpoint>,
    /// Threads for signature checks and local execution.
    pub threads: usize,
    /// Largest gRPC message (a block and its reads).
    pub max_message_bytes: usize,
    /// Commits pause while less than this is free on the data directory's
    /// filesystem (`/readyz` says so; they go on when space returns). 0: never.
    pub min_free_bytes: u64,
    /// The storage engine's block cache. With the engine's write buffers
    /// (two of 64 MiB at most) it bounds the store's memory however long the
    /// chain grows.
    pub cache_bytes: u64,
    pub json_logs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7300)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7320)),
            data_dir: PathBuf::from("data/ledger"),
            tls: TlsConfig::default(),
            genesis_file: PathBuf::from("consortium-config.pb"),
            signers_dir: PathBuf::from("signers"),
            orderers: Vec::new(),
            executor: None,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            max_message_bytes: 256 * 1024 * 1024,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            cache_bytes: fiscus_common::store::fjall::DEFAULT_CACHE_BYTES,
            json_logs: false,
        }
    }
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "ledger_store";

    fn validate(&self) -> Result<(), ConfigError> {
        if self.threads == 0 || self.threads > 256 {
            return Err(ConfigError::Invalid {
                key: "threads",
                message: "must be between 1 and 256".into(),
            });
        }
        if self.max_message_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid {
                key: "max_message_bytes",
                message: "must be at least 1 MiB".into(),
            });
        }
        if self.cache_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid {
                key: "cache_bytes",
                message: "must be at least 1 MiB".into(),
            });
        }
        Ok(())
    }
}

/// Errors starting the process.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Tls(#[from] fiscus_common::tls::TlsError),
    #[error(transparent)]
    Certs(#[from] fiscus_common::certs::LoadError),
    #[error(transparent)]
    Genesis(#[from] fiscus_common::genesis::GenesisError),
    #[error(transparent)]
    Ledger(#[from] crate::LedgerError),
    #[error(transparent)]
    Store(#[from] fiscus_common::store::StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.to_string();
    move |source| StartError::Io { what, source }
}

use crate::metrics::Metrics;

/// A running ledger-store.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub ledger: Arc<Ledger<FjallStore>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ops: OpsServer,
    /// Fails every accepted connection at once, so that nothing keeps the
    /// service (and its store) alive after `stop`.
    kill: tokio::sync::watch::Sender<bool>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.kill.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        self.ops.stop().await;
    }
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(io(config.listen))?;
    start_with(config, listener).await
}

pub async fn start_with(
    config: Config,
    listener: tokio::net::TcpListener,
) -> Result<Running, StartError> {
    std::fs::create_dir_all(&config.data_dir).map_err(io(config.data_dir.display()))?;
    let tls = TlsContext::load(&config.tls)?;
    let me = tls.identity();
    if me.role != Role::Node {
        return Err(StartError::Config(format!(
            "this process's certificate has role {:?}; the ledger-store needs a node certificate",
            me.role
        )));
    }
    let key_pem =
        std::fs::read_to_string(&config.tls.key_file).map_err(io(config.tls.key_file.display()))?;
    let key = SigningKey::from_pkcs8_pem(&key_pem)
        .map_err(|_| StartError::Config("the TLS key is not an Ed25519 PKCS#8 key".into()))?;
    let genesis = read_genesis(&config.genesis_file)?;
    let certs = Certs::load_dir(&config.signers_dir, &genesis.ca_roots)?;
    tracing::info!(signers = certs.len(), dir = %config.signers_dir.display(), "signer certificates loaded");
    let client_tls = tls.client_config()?;
    let executor = match &config.executor {
        None => Executor::Local,
        // Connected on first use: the executor may start after this store
        // (a separate Deployment, or the same tier of a process devnet), and
        // a block that finds it down is refused as executor-unavailable and
        // retried by the gateway, as when it dies later.
        Some(e) => Executor::Remote(RemoteExecutor::new(
            lazy_channel(&e.addr, &e.server_name, client_tls.clone())?,
            config.max_message_bytes,
        )),
    };
    let store = FjallStore::open_with(
        &config.data_dir.join("ledger.fjall"),
        StoreLimits::default(),
        fiscus_common::store::fjall::FjallOptions {
            cache_bytes: config.cache_bytes,
            ..Default::default()
        },
    )?;
    let ledger = Arc::new(Ledger::with_executor(
        store,
        LedgerConfig {
            member: me.member.clone(),
            consortium_id: genesis.consortium_id.clone(),
            limits: DecodeLimits::default(),
            certs,
            key,
            cert_id: me.cert_id,
            certificate: tls.certificate_der(),
            threads: config.threads,
        },
        executor,
    ));
    let head = ledger.init(&genesis).await?;
    ledger.remember_certs().await?;
    tracing::info!(member = %me.member, height = head.height, "ledger opened");

    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry)?;
    tls.register_expiry_metric(&registry)?;
    fiscus_common::store::register_metrics(&registry)?;
    metrics.height.set(head.height as i64);
    let readiness = Readiness::default();
    readiness.set("genesis", Ok(()));
    let disk = crate::disk::DiskGuard::register(
        config.data_dir.clone(),
        config.min_free_bytes,
        &registry,
        readiness.clone(),
    )?;
    readiness.set(
        "orderer",
        if config.orderers.is_empty() {
            Ok(())
        } else {
            Err("not connected yet".into())
        },
    );

    let addr = listener.local_addr().map_err(io(config.listen))?;
    let svc = LedgerServer::new(LedgerService {
        ledger: ledger.clone(),
    })
    .max_encoding_message_size(config.max_message_bytes);
    let commit_lock = Arc::new(tokio::sync::Mutex::new(()));
    let ingest = LedgerIngestServer::new(IngestService {
        ledger: ledger.clone(),
        member: me.member.clone(),
        commit_lock: commit_lock.clone(),
        metrics: metrics.clone(),
        disk: disk.clone(),
    })
    .max_decoding_message_size(config.max_message_bytes);
    let (kill, kill_rx) = tokio::sync::watch::channel(false);
    let incoming = serve_incoming_until(
        listener,
        tls.server_config(ClientAuth::Required)?,
        tls.revocations(),
        kill_rx,
        None,
    );
    // Certificate renewals and CRL updates reach every link without a restart;
    // connections of a peer whose certificate is revoked are closed.
    let mut tasks = vec![tls.spawn_reloader(), tokio::spawn(disk.clone().watch())];
    // The CRL on chain wins over the file: install it whenever it grows.
    {
        let (ledger, tls) = (ledger.clone(), tls.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::chain_crl::FOLLOW_INTERVAL);
            loop {
                tick.tick().await;
                if let Ok(chain) = ledger.chain_state().await {
                    crate::chain_crl::apply(&tls, &chain.config);
                }
            }
        }));
    }
    let grpc_metrics = fiscus_common::red::GrpcMetricsLayer::register(&registry)?;
    tasks.push(tokio::spawn(async move {
        if let Err(e) = tonic::transport::Server::builder()
            .layer(grpc_metrics)
            .add_service(svc)
            .add_service(ingest)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "ledger API stopped");
        }
    }));
    if !config.orderers.is_empty() {
        tasks.push(tokio::spawn(committer(
            Follower {
                ledger: ledger.clone(),
                commit_lock,
                tls: client_tls,
                max_message_bytes: config.max_message_bytes,
                metrics,
                readiness: readiness.clone(),
                disk,
            },
            config.orderers.clone(),
        )));
    }
    let ops = OpsServer::start(config.http_listen, registry, readiness)
        .map_err(io(config.http_listen))?;
    Ok(Running {
        addr,
        http_addr: ops.addr,
        ledger,
        tasks,
        ops,
        kill,
    })
}

/// What the committer of a ledger-store that follows the orderers needs.
struct Follower {
    ledger: Arc<Ledger<FjallStore>>,
    commit_lock: Arc<tokio::sync::Mutex<()>>,
    tls: Arc<rustls::ClientConfig>,
    max_message_bytes: usize,
    metrics: Metrics,
    readiness: Readiness,
    disk: crate::disk::DiskGuard,
}

/// Pulls and commits blocks forever, failing over between orderers.
async fn committer(f: Follower, orderers: Vec<Endpoint>) {
    let mut backoff = Duration::from_millis(100);
    for ep in orderers.iter().cycle() {
        match follow(&f, ep).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                f.readiness.set("orderer", Err(format!("{}: {e}", ep.addr)));
                tracing::warn!(orderer = %ep.addr, error = %e, "block stream ended; trying the next orderer");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Follows one orderer's `Deliver` stream from this member's next height.
/// Returns when the stream ends; an error says why.
async fn follow(f: &Follower, ep: &Endpoint) -> Result<(), String> {
    let Follower {
        ledger,
        commit_lock,
        max_message_bytes,
        metrics,
        readiness,
        disk,
        ..
    } = f;
    let max_message_bytes = *max_message_bytes;
    let channel = connect_channel(&ep.addr, &ep.server_name, f.tls.clone())
        .await
        .map_err(|e| e.to_string())?;
    let mut client = OrdererClient::new(channel).max_decoding_message_size(max_message_bytes);
    let from = ledger.head().await.map_err(|e| e.to_string())?.height + 1;
    let mut stream = client
        .deliver(DeliverRequest { from_height: from })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    readiness.set("orderer", Ok(()));
    tracing::info!(orderer = %ep.addr, from, "following the orderer");
    while let Some(block) = stream.next().await {
        let mut block = block.map_err(|s| s.message().to_owned())?;
        let span = crate::service::commit_span(&ledger.config().member, &block);
        let links = std::mem::take(&mut block.trace_links);
        let bytes = block.encode_to_vec();
        let outcome = tracing::Instrument::instrument(
            async {
                let _guard = commit_lock.lock().await;
                disk.check()?;
                ledger.commit_block(&bytes).await
            },
            span,
        )
        .await;
        match outcome {
            Ok(s) => {
                metrics.committed_block(&s);
                crate::service::trace_rejections(&ledger.config().member, &links, &s);
            }
            Err(crate::LedgerError::NotNext { head, got }) if got <= head => {
                // Already committed (a resumed stream): skip.
            }
            Err(
                e @ (crate::LedgerError::Store(_)
                | crate::LedgerError::Executor(_)
                | crate::LedgerError::DiskFull { .. }
                | crate::LedgerError::Corrupt(_)
                | crate::LedgerError::Poisoned
                | crate::LedgerError::Unsupported(_)),
            ) => {
                // Not the block's fault: retry it from this height later.
                return Err(format!("could not commit: {e}"));
            }
            Err(e) => {
                metrics.refused.inc();
                tracing::error!(orderer = %ep.addr, error = %e, "refused a block; the store is unchanged");
                return Err(format!("refused a block: {e}"));
            }
        }
    }
    Err("the orderer closed the stream".into())
}
