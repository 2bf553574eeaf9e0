//! `fiscus devnet`: a whole consortium on this machine, in this process, with
//! real mutual TLS between every part: the identity-ca, 3 orderers, and five
//! members (MOF, Hebei, Shijiazhuang, Chang'an district, the Hebei audit
//! office), each with its ledger-store, gossip-gateway and exchange-adapter.
//!
//! Everything lives under `--data-dir`; a restart resumes from it, and
//! `--reset` starts fresh. `--demo` replays a fiscal year through the
//! exchange-adapters and prints a summary (that is `make run`).

mod layout;
mod setup;

pub(crate) use layout::Layout;
use layout::{check_free, layout};
use setup::{create, member_dir};

use crate::devnet::setup::DEVNET_TLS_RELOAD_SECS;
use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_common::tls::Endpoint;
use fiscus_common::tls::TlsConfig;
use fiscus_identity_ca::ca::CaPaths;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(crate) const CONSORTIUM: &str = "fiscus-devnet";

/// The five members: code, and a short English label.
pub(crate) const MEMBERS: [(&str, &str); 5] = [
    ("000000", "Ministry of Finance 财政部"),
    ("130000", "Hebei Finance Department 河北省财政厅"),
    ("130100", "Shijiazhuang Finance Bureau 石家庄市财政局"),
    ("130102", "Chang'an District Finance Bureau 长安区财政局"),
    ("991300", "Hebei Audit Office 河北省审计厅 (supervisor)"),
];

#[derive(Debug, Args)]
pub(crate) struct DevnetCmd {
    /// Where the devnet keeps its certificates, keys, configs and ledgers.
    #[arg(long, default_value = "devnet-data")]
    data_dir: PathBuf,
    /// Delete the data directory first and start a fresh chain.
    #[arg(long)]
    reset: bool,
    /// First of the 27 consecutive loopback ports the devnet uses; 0 picks
    /// free ports below the ephemeral range. Only used when the data directory is created.
    #[arg(long, default_value_t = 7100)]
    base_port: u16,
    /// Publish events on this NATS server instead of the in-process bus.
    #[arg(long)]
    nats_url: Option<String>,
    /// Replay a fiscal year through the exchange-adapters and print a summary.
    #[arg(long)]
    demo: bool,
    /// Stop after starting (and after the demo) instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Serve each exchange-adapter's REST API over TLS with the member's node
    /// certificate; a caller may present its client certificate instead of
    /// an API key. The CLI then needs --ca-file; the demo speaks plain HTTP,
    /// hence no --demo.
    #[arg(long, conflicts_with = "demo")]
    rest_tls: bool,
}

/// The running parts.
pub(crate) struct Devnet {
    pub layout: Layout,
    pub data: PathBuf,
    ca: fiscus_identity_ca::Running,
    pub orderers: Vec<fiscus_orderer::Running>,
    pub members: Vec<Member>,
    /// Whether the REST APIs speak TLS (`--rest-tls`).
    pub rest_tls: bool,
}

pub(crate) struct Member {
    pub code: String,
    pub ledger: fiscus_ledger_store::server::Running,
    pub gateway: fiscus_gossip_gateway::Running,
    pub api: fiscus_exchange_adapter::Running,
}

impl Devnet {
    pub(crate) async fn stop(self) {
        for m in self.members {
            m.api.stop().await;
            m.gateway.stop().await;
            m.ledger.stop().await;
        }
        for o in self.orderers {
            o.stop().await;
        }
        let _ = self.ca.stop().await;
    }
}

fn endpoint(addr: SocketAddr, name: &str) -> Endpoint {
    Endpoint {
        addr: addr.to_string(),
        server_name: name.into(),
    }
}

/// Starts (creating on first use) the devnet in `data`.
pub(crate) async fn start(
    data: &Path,
    base_port: u16,
    nats_url: Option<String>,
    demo: bool,
    rest_tls: bool,
) -> Result<Devnet> {
    let manifest = data.join("devnet.json");
    let layout = if manifest.exists() {
        eprintln!("devnet: resuming from {}", data.display());
        serde_json::from_slice(&std::fs::read(&manifest)?)
            .with_context(|| format!("reading {}", manifest.display()))?
    } else {
        eprintln!("devnet: creating a consortium in {}", data.display());
        create(data, base_port, demo).await?
    };
    check_free(&layout)?;
    let ca_dir = data.join("ca");
    let paths = CaPaths::new(&ca_dir);
    let genesis_file = paths.consortium_config();
    let signers = data.join("signers");
    let ca = fiscus_identity_ca::start(fiscus_identity_ca::Config {
        data_dir: ca_dir.clone(),
        listen: layout.ca_grpc,
        http_listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    })
    .await
    .context("starting the identity-ca")?;
    eprintln!("devnet: identity-ca up; starting 3 orderers…");
    let peers: Vec<fiscus_orderer::Peer> = layout
        .orderers
        .iter()
        .map(|o| fiscus_orderer::Peer {
            id: o.id,
            raft_addr: o.raft.to_string(),
            client_addr: o.client.to_string(),
            server_name: format!("orderer-{}", o.id),
        })
        .collect();
    let mut orderers = Vec::new();
    for o in &layout.orderers {
        let dir = data.join(format!("orderer-{}", o.id));
        orderers.push(
            fiscus_orderer::start(fiscus_orderer::Config {
                node_id: o.id,
                consortium_id: layout.consortium_id.clone(),
                listen: o.client,
                raft_listen: o.raft,
                http_listen: "127.0.0.1:0".parse()?,
                data_dir: dir.join("data"),
                peers: peers.clone(),
                tls: TlsConfig {
                    crl_file: Some(paths.crl()),
                    reload_interval_secs: DEVNET_TLS_RELOAD_SECS,
                    ..TlsConfig::in_dir(&dir.join("tls"))
                },
                signers_dir: signers.clone(),
                block_clock: layout.block_clock,
                ..Default::default()
            })
            .await
            .with_context(|| format!("starting orderer {} on {}", o.id, o.client))?,
        );
    }
    let orderer_endpoints: Vec<Endpoint> = layout
        .orderers
        .iter()
        .map(|o| endpoint(o.client, &format!("orderer-{}", o.id)))
        .collect();
    eprintln!("devnet: orderers up; starting 5 members…");
    let mut members = Vec::new();
    for m in &layout.members {
        let dir = member_dir(data, &m.code);
        // The CA's CRL file: every member service reloads it when the CA
        // revokes or re-signs (within `reload_interval_secs`), and closes the
        // connections of peers it revokes.
        let tls = TlsConfig {
            crl_file: Some(paths.crl()),
            reload_interval_secs: DEVNET_TLS_RELOAD_SECS,
            ..TlsConfig::in_dir(&dir.node())
        };
        let ledger = fiscus_ledger_store::server::start(fiscus_ledger_store::server::Config {
            listen: m.ledger,
            http_listen: "127.0.0.1:0".parse()?,
            data_dir: dir.0.join("ledger"),
            tls: tls.clone(),
            genesis_file: genesis_file.clone(),
            signers_dir: signers.clone(),
            threads: 2,
            ..Default::default()
        })
        .await
        .with_context(|| format!("starting the ledger-store of {}", m.code))?;
        let gateway = fiscus_gossip_gateway::start(fiscus_gossip_gateway::Config {
            listen: m.gateway,
            http_listen: "127.0.0.1:0".parse()?,
            tls: tls.clone(),
            signers_dir: signers.clone(),
            genesis_file: genesis_file.clone(),
            ledger: endpoint(m.ledger, "127.0.0.1"),
            orderers: orderer_endpoints.clone(),
            nats_url: nats_url.clone(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("starting the gossip-gateway of {}", m.code))?;
        let api = fiscus_exchange_adapter::start(fiscus_exchange_adapter::Config {
            listen: m.api,
            rest_tls,
            http_listen: "127.0.0.1:0".parse()?,
            grpc_listen: m.grpc,
            tls,
            ledger: endpoint(m.ledger, "127.0.0.1"),
            orderers: orderer_endpoints.clone(),
            signers_dir: signers.clone(),
            genesis_file: genesis_file.clone(),
            clients_file: dir.clients_file(),
            ..Default::default()
        })
        .await
        .with_context(|| format!("starting the exchange-adapter of {}", m.code))?;
        members.push(Member {
            code: m.code.clone(),
            ledger,
            gateway,
            api,
        });
    }
    Ok(Devnet {
        layout,
        data: data.to_owned(),
        ca,
        orderers,
        members,
        rest_tls,
    })
}

/// Each member's full-scope API key, from `api-keys.txt`.
pub(crate) fn api_keys(data: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(data.join("api-keys.txt"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[3].contains("submit")).then(|| (f[0].to_owned(), f[2].to_owned()))
        })
        .collect())
}

fn print_endpoints(net: &Devnet) {
    println!();
    println!(
        "Fiscus devnet 开发网络 ({}) is up:",
        net.layout.consortium_id
    );
    println!(
        "  identity-ca  grpc {}   (root: {})",
        net.layout.ca_grpc,
        CaPaths::new(net.data.join("ca")).root_cert().display()
    );
    for o in &net.orderers {
        println!(
            "  orderer      grpc {}   metrics http://{}/metrics",
            o.client_addr, o.http_addr
        );
    }
    let scheme = if net.rest_tls { "https" } else { "http" };
    for (m, (_, label)) in net.members.iter().zip(MEMBERS) {
        println!("  member {}  {label}", m.code);
        println!(
            "    exchange-adapter  {scheme}://{}  (API page {scheme}://{}/docs){}",
            m.api.addr,
            m.api.addr,
            m.api
                .grpc_addr
                .map(|g| format!("  gRPC {g}"))
                .unwrap_or_default()
        );
        println!(
            "    ledger-store grpc {}   gossip-gateway grpc {}",
            m.ledger.addr, m.gateway.addr
        );
    }
    println!(
        "  certificates and keys: {}/member-*/ ; API keys: {}",
        net.data.display(),
        net.data.join("api-keys.txt").display()
    );
}

/// Runs the devnet until Ctrl-C. With `--demo`, `demo` replays the fiscal
/// year once the devnet is ready (`crate::demo::run`; passed in, so that the
/// devnet does not depend on the demo that drives it).
pub(crate) async fn run(
    cmd: DevnetCmd,
    demo: impl AsyncFnOnce(&Devnet) -> Result<()>,
) -> Result<()> {
    // Fifteen services share this process's log; RUST_LOG=info shows all of it.
    let _telemetry = fiscus_common::telemetry::init_with_default("devnet", false, "warn")?;
    if cmd.reset && cmd.data_dir.exists() {
        eprintln!("devnet: --reset: deleting {}", cmd.data_dir.display());
        std::fs::remove_dir_all(&cmd.data_dir)
            .with_context(|| format!("deleting {}", cmd.data_dir.display()))?;
    }
    let net = start(
        &cmd.data_dir,
        cmd.base_port,
        cmd.nats_url.clone(),
        cmd.demo,
        cmd.rest_tls,
    )
    .await?;
    wait_ready(&net, Duration::from_secs(60)).await?;
    print_endpoints(&net);
    if cmd.demo
        && let Err(e) = demo(&net).await
    {
        net.stop().await;
        return Err(e.context("the fiscal-year demo failed"));
    }
    let keys = api_keys(&net.data)?;
    if net.rest_tls
        && let (Some(m), Some((_, key))) = (net.members.get(1), keys.get(1))
    {
        println!();
        println!("Try it over TLS (Hebei's key) / 试用:");
        println!(
            "  curl -s --cacert {root} -H 'Authorization: Bearer {key}' https://{addr}/v1/chain",
            root = CaPaths::new(net.data.join("ca")).root_cert().display(),
            addr = m.api.addr,
        );
        println!(
            "  fiscus status --api https://{addr} --ca-file {root} --key {key}",
            root = CaPaths::new(net.data.join("ca")).root_cert().display(),
            addr = m.api.addr,
        );
        println!(
            "  A program holding a member's client certificate ({}) needs no key.",
            net.data.join("member-130000/client").display()
        );
    } else if let (Some(m), Some((_, key))) = (net.members.get(1), keys.get(1)) {
        println!();
        println!("Try it (Hebei's key) / 试用:");
        println!(
            "  curl -s -H 'Authorization: Bearer {key}' http://{}/v1/chain",
            m.api.addr
        );
        println!(
            "  curl -s -H 'Authorization: Bearer {key}' 'http://{}/v1/accounts?org=130100'",
            m.api.addr
        );
        println!("  OpenAPI: http://{}/openapi.json", m.api.addr);
    }
    if !cmd.exit {
        println!();
        println!(
            "Serving until Ctrl-C (按 Ctrl-C 停止). Restart resumes from {}; --reset starts fresh.",
            cmd.data_dir.display()
        );
        fiscus_common::shutdown_signal().await;
        eprintln!("devnet: stopping…");
    }
    net.stop().await;
    Ok(())
}

/// Waits until the orderers have a leader and every member's gateway is up.
async fn wait_ready(net: &Devnet, deadline: Duration) -> Result<()> {
    let until = Instant::now() + deadline;
    loop {
        let leader = net.orderers.iter().any(|o| {
            o.handles
                .status
                .read()
                .map(|s| s.role == "leader")
                .unwrap_or(false)
        });
        if leader {
            return Ok(());
        }
        if Instant::now() > until {
            bail!("the orderers elected no leader within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
