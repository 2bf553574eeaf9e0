//! `fiscus contract-executor`: the stateless `ExecuteBlock` service as its own
//! process. Only node certificates of this member (its ledger-store) may call it.

pub use crate::error::StartError;
use crate::service::ExecutorService;
use fiscus_common::config::{ConfigError, ServiceConfig};
use fiscus_common::ops_server::{OpsServer, Readiness};
use fiscus_common::tls::{ClientAuth, TlsConfig, TlsContext, serve_incoming};
use fiscus_proto::pb::executor::contract_executor_server::ContractExecutorServer;
use fiscus_proto::pb::types::Role;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The `ExecuteBlock` gRPC endpoint (mutual TLS).
    pub listen: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
    /// This process's certificate (role `node`), key and the consortium root.
    pub tls: TlsConfig,
    /// Threads for one block's parallel execution.
    pub threads: usize,
    /// Largest request accepted (a block plus the values it reads).
    pub max_request_bytes: usize,
    pub json_logs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7420)),
            tls: TlsConfig::default(),
            threads: std::thread::available_parallelism().map_or(2, usize::from),
            max_request_bytes: 256 * 1024 * 1024,
            json_logs: false,
        }
    }
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "contract_executor";

    fn validate(&self) -> Result<(), ConfigError> {
        if self.threads == 0 || self.threads > 256 {
            return Err(ConfigError::Invalid {
                key: "threads",
                message: "must be between 1 and 256".into(),
            });
        }
        if self.max_request_bytes < 1024 * 1024 {
            return Err(ConfigError::Invalid {
                key: "max_request_bytes",
                message: "must be at least 1 MiB".into(),
            });
        }
        Ok(())
    }
}

/// A running executor process.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
    /// Re-reads certificate, key and CRL when their files change.
    reloader: tokio::task::JoinHandle<()>,
    ops: OpsServer,
}

impl Running {
    pub async fn stop(self) {
        self.reloader.abort();
        self.server.abort();
        let _ = self.server.await;
        self.ops.stop().await;
    }
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Io {
            what: format!("binding {}", config.listen),
            source,
        })?;
    start_with(config, listener).await
}

pub async fn start_with(
    config: Config,
    listener: tokio::net::TcpListener,
) -> Result<Running, StartError> {
    let tls = TlsContext::load(&config.tls)?;
    let me = tls.identity();
    if me.role != Role::Node {
        return Err(StartError::WrongRole(me.role));
    }
    let addr = listener.local_addr().map_err(|source| StartError::Io {
        what: "listener address".into(),
        source,
    })?;
    let svc = ContractExecutorServer::new(ExecutorService {
        threads: config.threads,
        member: Some(me.member.clone()),
    })
    .max_decoding_message_size(config.max_request_bytes)
    .max_encoding_message_size(config.max_request_bytes);
    let incoming = serve_incoming(
        listener,
        tls.server_config(ClientAuth::Required)?,
        tls.revocations(),
    );
    let registry = prometheus::Registry::new();
    let grpc_metrics =
        fiscus_common::red::GrpcMetricsLayer::register(&registry).map_err(|e| StartError::Io {
            what: "registering metrics".into(),
            source: std::io::Error::other(e),
        })?;
    let server = tokio::spawn(async move {
        if let Err(e) = tonic::transport::Server::builder()
            .layer(grpc_metrics)
            .add_service(svc)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(error = %e, "executor API stopped");
        }
    });
    let readiness = Readiness::default();
    readiness.set("tls", Ok(()));
    // The certificate's expiry, beside the gRPC calls.
    tls.register_expiry_metric(&registry)
        .map_err(|e| StartError::Io {
            what: "registering metrics".into(),
            source: std::io::Error::other(e),
        })?;
    let ops = OpsServer::start(config.http_listen, registry, readiness).map_err(|source| {
        StartError::Io {
            what: format!("binding {}", config.http_listen),
            source,
        }
    })?;
    Ok(Running {
        addr,
        http_addr: ops.addr,
        server,
        reloader: tls.spawn_reloader(),
        ops,
    })
}
