//! `fiscus member --config member.toml`: all of one finance department's
//! services in one process (a VM or bare-metal install, the DESIGN's "member"
//! unit), each still on its own endpoint and talking to the others over
//! mutual TLS exactly as separate processes would: the ledger-store (which
//! calls the contract-executor over gRPC when it is enabled), the
//! gossip-gateway and the exchange-adapter.
//!
//! The file names the member, its node certificate, the consortium genesis,
//! the orderers, the peer gateways and one data directory; each service's
//! own config is derived from it ([`MemberConfig::ledger`] and the others).

use crate::check_config::{FileRef, FileRefs};
use anyhow::{Context, Result, bail};
use fiscus_common::config::{ConfigError, ServiceConfig};
use fiscus_common::tls::Endpoint;
use fiscus_common::tls::{TlsConfig, TlsContext, is_member_code};
use fiscus_gossip_gateway::config::PeerEndpoint;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// One member's services, from one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct MemberConfig {
    /// The member code (GB/T 2260), e.g. "130000"; the node certificate must carry it.
    pub member: String,
    /// The member's node certificate, key, the consortium root and the CRL cache.
    pub tls: TlsConfig,
    /// The name on the node certificate that the member's services dial each other by.
    pub server_name: String,
    /// The genesis `ConsortiumConfig` (protobuf), as `fiscus identity-ca init` wrote it.
    pub genesis_file: PathBuf,
    /// PEM certificates of the orderers and of the members' nodes.
    pub signers_dir: PathBuf,
    /// Everything the member stores: `ledger/` and `adapter/` below it.
    pub data_dir: PathBuf,
    /// The orderers' client endpoints, tried in turn.
    pub orderers: Vec<Endpoint>,
    /// Peer gateways to dial besides the members' `gossip_endpoints` in the genesis.
    pub peers: Vec<PeerEndpoint>,
    /// NATS server for events; none: the in-process bus.
    pub nats_url: Option<String>,
    /// The exchange-adapter's API clients (TOML; add the entries `fiscus keys api-key` prints).
    pub clients_file: PathBuf,
    pub ledger_listen: SocketAddr,
    pub ledger_http_listen: SocketAddr,
    /// The ledger's commits pause while less than this is free under
    /// `data_dir` (`/readyz` says so; they go on when space returns). 0: never.
    pub ledger_min_free_bytes: u64,
    /// The ledger storage engine's block cache: with its write buffers it
    /// bounds the store's memory however long the chain grows.
    pub ledger_cache_bytes: u64,
    /// Run the contract-executor as its own gRPC service (the ledger calls it);
    /// false: the ledger executes in process.
    pub executor: bool,
    pub executor_listen: SocketAddr,
    pub executor_http_listen: SocketAddr,
    pub gateway_listen: SocketAddr,
    pub gateway_http_listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// The REST API over TLS with the node certificate (client certificates
    /// optional, API keys otherwise); false: plain HTTP behind a TLS proxy.
    pub api_tls: bool,
    pub api_http_listen: SocketAddr,
    /// The adapter's gRPC API (`SubmitStream`); none: off.
    pub api_grpc_listen: Option<SocketAddr>,
    pub json_logs: bool,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Default for MemberConfig {
    fn default() -> Self {
        Self {
            member: String::new(),
            tls: TlsConfig::default(),
            server_name: "localhost".into(),
            genesis_file: "ca/consortium-config.pb".into(),
            signers_dir: "signers".into(),
            data_dir: "data".into(),
            orderers: Vec::new(),
            peers: Vec::new(),
            nats_url: None,
            clients_file: "api-clients.toml".into(),
            ledger_listen: addr("127.0.0.1:7300"),
            ledger_http_listen: addr("127.0.0.1:7320"),
            ledger_min_free_bytes: fiscus_ledger_store::server::DEFAULT_MIN_FREE_BYTES,
            ledger_cache_bytes: fiscus_common::store::fjall::DEFAULT_CACHE_BYTES,
            executor: true,
            executor_listen: addr("127.0.0.1:7400"),
            executor_http_listen: addr("127.0.0.1:7420"),
            gateway_listen: addr("127.0.0.1:7500"),
            gateway_http_listen: addr("127.0.0.1:7520"),
            api_listen: addr("127.0.0.1:8080"),
            api_tls: true,
            api_http_listen: addr("127.0.0.1:9480"),
            api_grpc_listen: None,
            json_logs: false,
        }
    }
}

impl ServiceConfig for MemberConfig {
    const SERVICE: &'static str = "member";

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: String| Err(ConfigError::Invalid { key, message });
        if !is_member_code(&self.member) {
            return bad(
                "member",
                format!("{:?} is not a six-digit member code", self.member),
            );
        }
        if self.server_name.is_empty() {
            return bad("server_name", "must not be empty".into());
        }
        if self.orderers.is_empty() {
            return bad("orderers", "name at least one orderer endpoint".into());
        }
        if self.ledger_cache_bytes < 1024 * 1024 {
            return bad("ledger_cache_bytes", "must be at least 1 MiB".into());
        }
        let mut listens: Vec<(&'static str, SocketAddr)> = vec![
            ("ledger_listen", self.ledger_listen),
            ("ledger_http_listen", self.ledger_http_listen),
            ("gateway_listen", self.gateway_listen),
            ("gateway_http_listen", self.gateway_http_listen),
            ("api_listen", self.api_listen),
            ("api_http_listen", self.api_http_listen),
        ];
        if self.executor {
            listens.push(("executor_listen", self.executor_listen));
            listens.push(("executor_http_listen", self.executor_http_listen));
        }
        if let Some(g) = self.api_grpc_listen {
            listens.push(("api_grpc_listen", g));
        }
        for (i, (key, a)) in listens.iter().enumerate() {
            if a.port() != 0
                && let Some((other, _)) = listens[..i].iter().find(|(_, b)| b == a)
            {
                return bad(key, format!("{a} is also {other}"));
            }
        }
        Ok(())
    }
}

impl FileRefs for MemberConfig {
    fn file_refs(&self) -> Vec<FileRef> {
        vec![
            FileRef::Tls("tls", self.tls.clone()),
            FileRef::Genesis("genesis_file", self.genesis_file.clone()),
            FileRef::Dir("signers_dir", self.signers_dir.clone()),
            FileRef::File("clients_file", self.clients_file.clone()),
            FileRef::DataDir("data_dir", self.data_dir.clone()),
        ]
    }
}

impl MemberConfig {
    fn local(&self, a: SocketAddr) -> Endpoint {
        // A wildcard listen address is dialled on loopback.
        let host = if a.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            a.ip().to_string()
        };
        Endpoint {
            addr: format!("{host}:{}", a.port()),
            server_name: self.server_name.clone(),
        }
    }

    pub(crate) fn executor(&self) -> fiscus_contract_executor::server::Config {
        fiscus_contract_executor::server::Config {
            listen: self.executor_listen,
            http_listen: self.executor_http_listen,
            tls: self.tls.clone(),
            json_logs: self.json_logs,
            ..Default::default()
        }
    }

    pub(crate) fn ledger(&self) -> fiscus_ledger_store::server::Config {
        fiscus_ledger_store::server::Config {
            listen: self.ledger_listen,
            http_listen: self.ledger_http_listen,
            data_dir: self.data_dir.join("ledger"),
            tls: self.tls.clone(),
            genesis_file: self.genesis_file.clone(),
            signers_dir: self.signers_dir.clone(),
            executor: self.executor.then(|| self.local(self.executor_listen)),
            min_free_bytes: self.ledger_min_free_bytes,
            cache_bytes: self.ledger_cache_bytes,
            json_logs: self.json_logs,
            ..Default::default()
        }
    }

    pub(crate) fn gateway(&self) -> fiscus_gossip_gateway::Config {
        fiscus_gossip_gateway::Config {
            listen: self.gateway_listen,
            http_listen: self.gateway_http_listen,
            tls: self.tls.clone(),
            signers_dir: self.signers_dir.clone(),
            genesis_file: self.genesis_file.clone(),
            ledger: self.local(self.ledger_listen),
            orderers: self.orderers.clone(),
            peers: self.peers.clone(),
            nats_url: self.nats_url.clone(),
            json_logs: self.json_logs,
            ..Default::default()
        }
    }

    pub(crate) fn adapter(&self) -> fiscus_exchange_adapter::Config {
        fiscus_exchange_adapter::Config {
            listen: self.api_listen,
            rest_tls: self.api_tls,
            http_listen: self.api_http_listen,
            grpc_listen: self.api_grpc_listen,
            tls: self.tls.clone(),
            ledger: self.local(self.ledger_listen),
            orderers: self.orderers.clone(),
            signers_dir: self.signers_dir.clone(),
            genesis_file: self.genesis_file.clone(),
            clients_file: self.clients_file.clone(),
            data_dir: self.data_dir.join("adapter"),
            json_logs: self.json_logs,
            ..Default::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct MemberCmd {
    /// Config file (TOML); `FISCUS_MEMBER__*` variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    check: crate::check_config::CheckArgs,
}

/// Starts the member's services in dependency order, serves until Ctrl-C or
/// SIGTERM, and stops them in reverse order. A service that fails to start
/// stops the ones already started: never a half-started member.
pub(crate) async fn run(cmd: MemberCmd) -> Result<()> {
    cmd.check.run_if_asked::<MemberConfig>();
    let config: MemberConfig =
        fiscus_common::config::load(cmd.config.as_deref()).context("loading member config")?;
    let _telemetry = fiscus_common::telemetry::init_with_attributes(
        "member",
        config.json_logs,
        &[("fiscus.member", config.member.clone())],
    )?;
    let me = TlsContext::load(&config.tls)
        .context("tls: the member's node certificate")?
        .identity();
    if me.member != config.member {
        bail!(
            "member: the node certificate in tls.cert_file is for {}, not {}",
            me.member,
            config.member
        );
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir: creating {}", config.data_dir.display()))?;
    let executor = if config.executor {
        Some(
            fiscus_contract_executor::server::start(config.executor())
                .await
                .context("starting the contract-executor")?,
        )
    } else {
        None
    };
    let ledger = match fiscus_ledger_store::server::start(config.ledger()).await {
        Ok(l) => l,
        Err(e) => {
            if let Some(x) = executor {
                x.stop().await;
            }
            return Err(e).context("starting the ledger-store");
        }
    };
    let gateway = match fiscus_gossip_gateway::start(config.gateway()).await {
        Ok(g) => g,
        Err(e) => {
            ledger.stop().await;
            if let Some(x) = executor {
                x.stop().await;
            }
            return Err(e).context("starting the gossip-gateway");
        }
    };
    let adapter = match fiscus_exchange_adapter::start(config.adapter()).await {
        Ok(a) => a,
        Err(e) => {
            gateway.stop().await;
            ledger.stop().await;
            if let Some(x) = executor {
                x.stop().await;
            }
            return Err(e).context("starting the exchange-adapter");
        }
    };
    println!(
        "member {} ready: ledger-store grpc={} gossip-gateway grpc={} exchange-adapter api={}://{}{}{}",
        config.member,
        ledger.addr,
        gateway.addr,
        if config.api_tls { "https" } else { "http" },
        adapter.addr,
        executor
            .as_ref()
            .map(|x| format!(" contract-executor grpc={}", x.addr))
            .unwrap_or_default(),
        adapter
            .grpc_addr
            .map(|g| format!(" api-grpc={g}"))
            .unwrap_or_default(),
    );
    fiscus_common::shutdown_signal().await;
    adapter.stop().await;
    gateway.stop().await;
    ledger.stop().await;
    if let Some(x) = executor {
        x.stop().await;
    }
    Ok(())
}
