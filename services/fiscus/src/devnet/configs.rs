//! Every devnet service's configuration, built in one place: the in-process
//! devnet starts the services from these values, and the process devnet
//! writes the same values to TOML files that `fiscus <service> --config`
//! reads. The two layouts cannot drift apart.

use super::layout::{Layout, MemberPorts, OrdererPorts};
use super::links;
use super::setup::{DEVNET_TLS_RELOAD_SECS, member_dir};
use fiscus_common::tls::{Endpoint, TlsConfig};
use fiscus_identity_ca::ca::CaPaths;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Threads of a devnet ledger-store and contract-executor: fifteen or more
/// services share this machine.
const THREADS: usize = 2;

/// Where the devnet's files are, from its data directory.
pub(crate) struct Files {
    pub data: PathBuf,
    /// From `<data>/webhooks.toml`, for the adapters.
    pub webhooks: super::webhooks::Webhooks,
    /// From `<data>/links.json`: links that go through a fault proxy.
    pub links: super::links::Links,
}

impl Files {
    fn ca(&self) -> CaPaths {
        CaPaths::new(self.data.join("ca"))
    }
    fn signers(&self) -> PathBuf {
        self.data.join("signers")
    }
    /// The CRL every service reloads when the CA revokes or re-signs (within
    /// [`DEVNET_TLS_RELOAD_SECS`]), closing the connections of revoked peers.
    fn tls_in(&self, dir: &Path) -> TlsConfig {
        TlsConfig {
            crl_file: Some(self.ca().crl()),
            reload_interval_secs: DEVNET_TLS_RELOAD_SECS,
            ..TlsConfig::in_dir(dir)
        }
    }
    fn member_tls(&self, m: &MemberPorts) -> TlsConfig {
        self.tls_in(&member_dir(&self.data, &m.code).node())
    }
}

fn endpoint(addr: SocketAddr, name: &str) -> Endpoint {
    Endpoint {
        addr: addr.to_string(),
        server_name: name.into(),
    }
}

/// The orderers' client endpoints, as member `code`'s processes dial them.
fn orderer_endpoints(files: &Files, layout: &Layout, code: &str) -> Vec<Endpoint> {
    let from = links::member(code);
    layout
        .orderers
        .iter()
        .map(|o| {
            let addr = files
                .links
                .addr(&from, &links::orderer_client(o.id), o.client);
            endpoint(addr, &format!("orderer-{}", o.id))
        })
        .collect()
}

pub(crate) fn identity_ca(
    files: &Files,
    layout: &Layout,
    http: SocketAddr,
) -> fiscus_identity_ca::Config {
    fiscus_identity_ca::Config {
        data_dir: files.data.join("ca"),
        listen: layout.ca_grpc,
        http_listen: http,
        // The CA certifies the members the chain lists (the Ministry's ledger):
        // a bureau voted in by `fiscus governance` can then enroll.
        ledger: layout
            .members
            .iter()
            .find(|m| m.code == "000000")
            .map(|m| endpoint(m.ledger, "127.0.0.1")),
        ..Default::default()
    }
}

pub(crate) fn orderer(
    files: &Files,
    layout: &Layout,
    o: &OrdererPorts,
    http: SocketAddr,
) -> fiscus_orderer::Config {
    let dir = files.data.join(format!("orderer-{}", o.id));
    fiscus_orderer::Config {
        node_id: o.id,
        consortium_id: layout.consortium_id.clone(),
        listen: o.client,
        raft_listen: o.raft,
        http_listen: http,
        data_dir: dir.join("data"),
        peers: layout
            .orderers
            .iter()
            .map(|p| {
                // Its own entry is where it listens; a peer's may be a proxy.
                let via = |to: String, direct: SocketAddr| {
                    if p.id == o.id {
                        direct
                    } else {
                        files.links.addr(&format!("orderer-{}", o.id), &to, direct)
                    }
                };
                fiscus_orderer::Peer {
                    id: p.id,
                    raft_addr: via(links::orderer_raft(p.id), p.raft).to_string(),
                    client_addr: via(links::orderer_client(p.id), p.client).to_string(),
                    server_name: format!("orderer-{}", p.id),
                }
            })
            .collect(),
        tls: files.tls_in(&dir.join("tls")),
        signers_dir: files.signers(),
        block_clock: layout.block_clock,
        ..Default::default()
    }
}

/// A member's ledger-store; `executor`: its contract-executor's gRPC
/// endpoint (none: it executes in process).
pub(crate) fn ledger_store(
    files: &Files,
    m: &MemberPorts,
    http: SocketAddr,
    executor: Option<SocketAddr>,
) -> fiscus_ledger_store::server::Config {
    fiscus_ledger_store::server::Config {
        listen: m.ledger,
        http_listen: http,
        data_dir: member_dir(&files.data, &m.code).0.join("ledger"),
        tls: files.member_tls(m),
        genesis_file: files.ca().consortium_config(),
        signers_dir: files.signers(),
        executor: executor.map(|a| endpoint(a, "127.0.0.1")),
        threads: THREADS,
        ..Default::default()
    }
}

pub(crate) fn contract_executor(
    files: &Files,
    m: &MemberPorts,
    listen: SocketAddr,
    http: SocketAddr,
) -> fiscus_contract_executor::server::Config {
    fiscus_contract_executor::server::Config {
        listen,
        http_listen: http,
        tls: files.member_tls(m),
        threads: THREADS,
        ..Default::default()
    }
}

pub(crate) fn gossip_gateway(
    files: &Files,
    layout: &Layout,
    m: &MemberPorts,
    http: SocketAddr,
    nats_url: Option<String>,
) -> fiscus_gossip_gateway::Config {
    fiscus_gossip_gateway::Config {
        listen: m.gateway,
        http_listen: http,
        tls: files.member_tls(m),
        signers_dir: files.signers(),
        genesis_file: files.ca().consortium_config(),
        ledger: endpoint(m.ledger, "127.0.0.1"),
        orderers: orderer_endpoints(files, layout, &m.code),
        nats_url,
        ..Default::default()
    }
}

pub(crate) fn exchange_adapter(
    files: &Files,
    layout: &Layout,
    m: &MemberPorts,
    http: SocketAddr,
    rest_tls: bool,
) -> fiscus_exchange_adapter::Config {
    let dir = member_dir(&files.data, &m.code);
    fiscus_exchange_adapter::Config {
        listen: m.api,
        rest_tls,
        http_listen: http,
        grpc_listen: m.grpc,
        tls: files.member_tls(m),
        ledger: endpoint(m.ledger, "127.0.0.1"),
        orderers: orderer_endpoints(files, layout, &m.code),
        signers_dir: files.signers(),
        genesis_file: files.ca().consortium_config(),
        clients_file: dir.clients_file(),
        // Webhook cursors and dead letters: the member's own directory, not
        // the working directory.
        data_dir: dir.0.join("adapter"),
        webhooks: files.webhooks.for_member(&m.code),
        ..Default::default()
    }
}

pub(crate) fn analytics(
    files: &Files,
    m: &MemberPorts,
    http: SocketAddr,
) -> fiscus_analytics::service::Config {
    let dir = member_dir(&files.data, &m.code);
    fiscus_analytics::service::Config {
        listen: m.analytics.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0))),
        http_listen: http,
        tls: files.member_tls(m),
        ledger: endpoint(m.ledger, "127.0.0.1"),
        genesis_file: files.ca().consortium_config(),
        // The same API keys as the member's exchange-adapter.
        clients_file: dir.clients_file(),
        data_dir: dir.0.join("analytics"),
        ..Default::default()
    }
}
