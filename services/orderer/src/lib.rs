//! orderer: the crash-fault-tolerant ordering cluster on raft-rs.
//!
//! Clients `Broadcast` signed envelopes; the leader admits them (limits,
//! consortium, signer certificate and CRL, batched signature checks), cuts
//! blocks at `max_txs` / `max_bytes` / `batch_timeout`, and proposes each block
//! as one Raft entry. Every node applies the committed entries the same way and
//! stores byte-identical blocks, which `Deliver` streams. See the README.
#![forbid(unsafe_code)]

mod admin;
pub mod admission;
pub mod block_cutter;
pub mod config;
mod error;
pub mod metrics;
pub mod node;
pub mod recent_txs;
mod service;
pub mod signers;
mod snapshot;
pub mod storage;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod transport;

pub use config::{Batching, BlockClock, Config, Peer, RaftTiming};
pub use error::{Error, Result};

use admission::Admission;
use block_cutter::Proposer;
use fiscus_common::actor_runtime::ActorRuntime;
use fiscus_common::ops_server::{OpsServer, Readiness};
use fiscus_common::tls::{ClientAuth, TlsContext, serve_incoming_until};
use fiscus_proto::DecodeLimits;
use fiscus_proto::pb::orderer::orderer_admin_server::OrdererAdminServer;
use fiscus_proto::pb::orderer::orderer_server::OrdererServer;
use fiscus_proto::pb::orderer::raft_transport_server::RaftTransportServer;
use fiscus_proto::sign::SigningKey;
use node::{NodeHandles, RaftNode};
use signers::SignerDirectory;
use std::net::SocketAddr;
use std::time::Duration;
use storage::OrdererStore;
use transport::{RaftService, Transport};

/// A running orderer node.
pub struct Running {
    pub client_addr: SocketAddr,
    pub raft_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub handles: NodeHandles,
    pub signers: SignerDirectory,
    pub metrics: metrics::Metrics,
    transport: Transport,
    kill: tokio::sync::watch::Sender<bool>,
    actors: Option<ActorRuntime>,
    servers: Vec<tokio::task::JoinHandle<()>>,
    ops: Option<OpsServer>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("client_addr", &self.client_addr)
            .finish_non_exhaustive()
    }
}

impl Running {
    /// Cuts this node off from `peers` in both directions (tests: partitions).
    pub fn partition_from(&self, peers: &[u64]) {
        self.transport.block(peers);
    }

    pub fn heal(&self) {
        self.transport.unblock_all();
    }

    /// Stops everything at once, as a crash would: no flush beyond what every
    /// Ready already made durable.
    pub async fn kill(mut self) {
        // Every open connection fails now, as if the process had died.
        let _ = self.kill.send(true);
        for s in self.servers.drain(..) {
            s.abort();
            let _ = s.await;
        }
        if let Some(a) = self.actors.take() {
            a.shutdown();
        }
        if let Some(o) = self.ops.take() {
            o.stop().await;
        }
    }

    /// Stops the node. Every Ready is already durable (fsync), so stopping
    /// is the same as [`Running::kill`]: nothing is left to flush.
    pub async fn stop(self) {
        self.kill().await;
    }
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.to_string();
    move |source| Error::Io { what, source }
}

/// Listeners bound ahead of time, so that a cluster's addresses are known
/// before its nodes start (tests and `fiscus bench orderer`).
#[derive(Debug)]
pub struct Listeners {
    pub client: tokio::net::TcpListener,
    pub raft: tokio::net::TcpListener,
}

/// Opens the node's store, joins the cluster and serves the client API, the
/// Raft transport and the ops endpoints. Returns once every listener is bound.
///
/// Serves on inherited sockets named `client` and `raft` instead of binding
/// `listen` and `raft_listen` when it was started with them
/// (`fiscus_common::listen`: systemd socket activation, test harnesses).
pub async fn start(config: Config) -> Result<Running> {
    use fiscus_common::listen::bind_or_take;
    let client = bind_or_take("client", config.listen)
        .await
        .map_err(io(config.listen))?;
    let raft = bind_or_take("raft", config.raft_listen)
        .await
        .map_err(io(config.raft_listen))?;
    start_with(config, Listeners { client, raft }).await
}

/// Like [`start`], on listeners the caller bound.
pub async fn start_with(config: Config, listeners: Listeners) -> Result<Running> {
    std::fs::create_dir_all(&config.data_dir).map_err(io(config.data_dir.display()))?;
    let tls = TlsContext::load(&config.tls)?;
    let me = tls.identity();
    if me.role != fiscus_proto::pb::types::Role::Orderer {
        return Err(Error::Config(format!(
            "this node's certificate has role {:?}, not orderer",
            me.role
        )));
    }
    let key_pem =
        std::fs::read_to_string(&config.tls.key_file).map_err(io(config.tls.key_file.display()))?;
    let key = SigningKey::from_pkcs8_pem(&key_pem)
        .map_err(|_| Error::Config("the TLS key is not an Ed25519 PKCS#8 key".into()))?;
    let proposer = Proposer {
        node_name: format!("orderer-{}", config.node_id),
        key,
        cert_id: me.cert_id,
    };
    let signers = SignerDirectory::load(
        &config.signers_dir,
        tls.roots(),
        config.tls.crl_file.as_deref(),
    )?;
    // A node joining a running cluster starts with no voters and learns the
    // membership from the leader's log; a founding node starts with all peers.
    let voters: Vec<u64> = if config.join {
        Vec::new()
    } else {
        config.peers.iter().map(|p| p.id).collect()
    };
    let store = OrdererStore::open(
        &config.data_dir.join("orderer.redb"),
        &voters,
        config.cache_bytes,
    )?;
    let mut config = config;
    if let Some(stored) = store.peers()? {
        // After a membership change the stored list, not the file, is the truth.
        config.peers = stored;
    }

    let client_tls = tls.client_config()?;
    let transport = Transport::start(config.node_id, &config.peers, client_tls.clone());
    let actors = ActorRuntime::start(&format!("orderer-{}", config.node_id))
        .map_err(|e| Error::Config(e.to_string()))?;
    let prom = prometheus::Registry::new();
    let metrics = metrics::Metrics::register(&prom)?;
    fiscus_common::store::register_metrics(&prom)?;
    let (node, handles) = RaftNode::new(
        &config,
        store.clone(),
        transport.clone(),
        proposer,
        metrics.clone(),
    )?;
    let node = actors.spawn(move || node).map_err(|_| Error::Stopped)?;

    let admission = Admission {
        consortium_id: config.consortium_id.clone(),
        limits: DecodeLimits {
            max_tx_bytes: config.max_tx_bytes,
            max_signatures_per_tx: config.max_signatures_per_tx,
            ..DecodeLimits::default()
        },
        signers: signers.clone(),
        metrics: metrics.clone(),
    };
    let svc = service::OrdererService {
        node: node.clone(),
        handles: handles.clone(),
        store,
        admission,
        transport: transport.clone(),
        client_tls,
        commit_timeout: Duration::from_millis(config.commit_timeout_ms),
        leader_link: std::sync::Arc::default(),
    };

    let Listeners {
        client: client_listener,
        raft: raft_listener,
    } = listeners;
    let client_addr = client_listener.local_addr().map_err(io(config.listen))?;
    let raft_addr = raft_listener.local_addr().map_err(io(config.raft_listen))?;
    let max_msg = config.raft.max_msg_bytes as usize + 1024 * 1024;
    let raft_srv = RaftTransportServer::new(RaftService {
        node: node.clone().recipient(),
        transport: transport.clone(),
    })
    .max_decoding_message_size(max_msg);
    // Twice the envelope limit: envelopes a little too large get a typed
    // `tx.too_large`; anything beyond is cut off by gRPC itself.
    let client_srv =
        OrdererServer::new(svc).max_decoding_message_size(2 * config.max_tx_bytes + 1024);
    let admin_srv = OrdererAdminServer::new(admin::AdminService {
        node: node.clone(),
        handles: handles.clone(),
        transport: transport.clone(),
    });
    let (kill_tx, kill_rx) = tokio::sync::watch::channel(false);
    let client_incoming = serve_incoming_until(
        client_listener,
        tls.server_config(ClientAuth::Required)?,
        tls.revocations(),
        kill_rx.clone(),
        None,
    );
    let raft_incoming = serve_incoming_until(
        raft_listener,
        tls.server_config(ClientAuth::Required)?,
        tls.revocations(),
        kill_rx,
        None,
    );
    let grpc_metrics = fiscus_common::red::GrpcMetricsLayer::register(&prom)?;
    let raft_metrics = grpc_metrics.clone();
    let servers = vec![
        tokio::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .layer(grpc_metrics)
                .add_service(client_srv)
                .add_service(admin_srv)
                .serve_with_incoming(client_incoming)
                .await
            {
                tracing::error!(error = %e, "client API stopped");
            }
        }),
        tokio::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .layer(raft_metrics)
                .add_service(raft_srv)
                .serve_with_incoming(raft_incoming)
                .await
            {
                tracing::error!(error = %e, "raft transport stopped");
            }
        }),
        // Certificate renewals and CRL updates without a restart.
        tls.spawn_reloader(),
    ];
    tls.register_expiry_metric(&prom)?;
    let readiness = Readiness::default();
    readiness.set("raft", Ok(()));
    let ops =
        OpsServer::start(config.http_listen, prom, readiness).map_err(io(config.http_listen))?;
    tracing::info!(node = config.node_id, client = %client_addr, raft = %raft_addr, "orderer serving");
    Ok(Running {
        client_addr,
        raft_addr,
        http_addr: ops.addr,
        handles,
        signers,
        metrics,
        transport,
        kill: kill_tx,
        actors: Some(actors),
        servers,
        ops: Some(ops),
    })
}
