//! `fiscus devnet`: a whole consortium on this machine, in this process, with
//! real mutual TLS between every part: the identity-ca, 3 orderers, and five
//! members (MOF, Hebei, Shijiazhuang, Chang'an district, the Hebei audit
//! office), each with its ledger-store, gossip-gateway and exchange-adapter.
//!
//! Everything lives under `--data-dir`; a restart resumes from it, and
//! `--reset` starts fresh. `--demo` replays a fiscal year through the
//! exchange-adapters and prints a summary (that is `make run`).

use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_common::tls::Endpoint;
use fiscus_common::tls::TlsConfig;
use fiscus_exchange_adapter::clients::{ClientEntry, ClientsFile, Scope, key_hash, new_api_key};
use fiscus_identity_ca::ca::{CaPaths, LeafSpec, RootCa, write_file};
use fiscus_identity_ca::genesis::{GenesisBundle, GenesisMember, GenesisOrderer};
use fiscus_proto::pb::types::Role;
use prost::Message;
use serde::{Deserialize, Serialize};
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

/// What `devnet.json` records: the ports chosen when the data directory was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Layout {
    pub consortium_id: String,
    pub ca_grpc: SocketAddr,
    pub orderers: Vec<OrdererPorts>,
    pub members: Vec<MemberPorts>,
    /// Set when the devnet was created for `--demo`: blocks carry a fast
    /// fiscal calendar (see [`demo_clock`]).
    #[serde(default)]
    pub block_clock: Option<fiscus_orderer::BlockClock>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrdererPorts {
    pub id: u64,
    pub org: String,
    pub client: SocketAddr,
    pub raft: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberPorts {
    pub code: String,
    pub ledger: SocketAddr,
    pub gateway: SocketAddr,
    pub api: SocketAddr,
    /// The exchange-adapter's gRPC API (absent in devnets made before it existed).
    #[serde(default)]
    pub grpc: Option<SocketAddr>,
}

/// Loopback ports below Linux's ephemeral range (32768–60999), so that no
/// outgoing connection of the devnet itself can take one before the service
/// that owns it binds it (which a port from `bind(":0")` allowed).
const FREE_PORTS: std::ops::Range<u16> = 10_000..32_000;

fn ports(base: u16, n: usize) -> Result<Vec<SocketAddr>> {
    if base != 0 {
        return (0..n)
            .map(|i| {
                let port = base
                    .checked_add(i as u16)
                    .context("--base-port is too high")?;
                Ok(SocketAddr::from(([127, 0, 0, 1], port)))
            })
            .collect();
    }
    // Probe from a start that differs between concurrent devnets, holding each
    // free port found until all are found.
    let span = u64::from(FREE_PORTS.end - FREE_PORTS.start);
    let seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()));
    let mut held = Vec::new();
    for step in 0..span {
        if held.len() == n {
            break;
        }
        let port = FREE_PORTS.start + ((seed + step) % span) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    if held.len() < n {
        bail!("fewer than {n} free loopback ports in {FREE_PORTS:?}");
    }
    held.iter().map(|l| Ok(l.local_addr()?)).collect()
}

/// Simulated milliseconds per wall millisecond in a demo devnet: one day per 100 ms.
pub(crate) const DEMO_SPEEDUP: u32 = 864_000;

/// The demo's calendar: block time starts at 2026-03-13 00:00 Beijing time
/// (UTC+8) when the devnet is created, and a day passes every 100 ms.
fn demo_clock() -> fiscus_orderer::BlockClock {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    fiscus_orderer::BlockClock {
        // 2026-03-13 00:00 China Standard Time, the day after the NPC approved
        // the 2026 budget (the devnet genesis records that approval).
        start_ms: 1_773_331_200_000,
        anchor_unix_ms: now,
        speedup: DEMO_SPEEDUP,
    }
}

fn layout(base: u16, demo: bool) -> Result<Layout> {
    let p = ports(base, 1 + 3 * 2 + MEMBERS.len() * 4)?;
    let orderer_orgs = ["000000", "130000", "130100"];
    Ok(Layout {
        consortium_id: CONSORTIUM.into(),
        ca_grpc: p[0],
        orderers: (0..3)
            .map(|i| OrdererPorts {
                id: i as u64 + 1,
                org: orderer_orgs[i].into(),
                client: p[1 + 2 * i],
                raft: p[2 + 2 * i],
            })
            .collect(),
        members: MEMBERS
            .iter()
            .enumerate()
            .map(|(j, (code, _))| MemberPorts {
                code: (*code).into(),
                ledger: p[7 + 3 * j],
                gateway: p[8 + 3 * j],
                api: p[9 + 3 * j],
                grpc: Some(p[7 + 3 * MEMBERS.len() + j]),
            })
            .collect(),
        block_clock: demo.then(demo_clock),
    })
}

/// Issues a devnet certificate. `valid_from` (Unix ms): a demo devnet's
/// blocks carry a fiscal calendar that starts before today, and a receipt
/// verifier checks each signer's validity at the block's time, so its
/// certificates are valid from a day before that calendar starts.
fn issue(
    ca: &RootCa,
    member: &str,
    role: Role,
    names: &[&str],
    out: &Path,
    valid_from: Option<i64>,
) -> Result<PathBuf> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let mut spec = LeafSpec::valid_for_days(member, role, 825);
    if let Some(ms) = valid_from {
        let from = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000) - 86_400)?;
        spec.not_before = spec.not_before.min(from);
    }
    spec.add_names(names);
    let issued = ca.issue_for_key(&key, &spec)?;
    write_file(&out.join("cert.pem"), issued.pem.as_bytes(), 0o644)?;
    write_file(
        &out.join("key.pem"),
        fiscus_identity_ca::ca::private_key_pem(&key).as_bytes(),
        0o600,
    )?;
    write_file(&out.join("ca.pem"), ca.root_pem.as_bytes(), 0o644)?;
    Ok(out.join("cert.pem"))
}

/// Records every certificate the devnet issued (the copies in `signers`) in
/// the CA's registry, as if enrolled, so that `fiscus revoke` and the CA's
/// list and verify calls know them.
async fn register_issued(paths: &CaPaths, signers: &Path) -> Result<()> {
    let registry = fiscus_identity_ca::registry::Registry::open(&paths.registry())?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(signers)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        .collect();
    files.sort();
    for f in files {
        let pem = std::fs::read(&f)?;
        let der = fiscus_common::tls::parse_certs(&f, &pem)?;
        let id = fiscus_common::tls::PeerIdentity::from_der(&der[0])?;
        registry
            .record_issued(
                &fiscus_identity_ca::registry::CertRecord {
                    cert_id: id.cert_id.to_hex(),
                    der_hex: hex::encode(&der[0]),
                    member: id.member.clone(),
                    role: fiscus_common::tls::role_name(id.role).to_owned(),
                    serial_hex: hex::encode(&id.serial),
                    not_before: id.not_before,
                    not_after: id.not_after,
                    revoked: None,
                },
                None,
            )
            .await?;
    }
    Ok(())
}

/// How often devnet services look for a new CRL or certificate (the default
/// for deployed services is 30 s; a devnet shares one machine and one CA file).
const DEVNET_TLS_RELOAD_SECS: u64 = 2;

/// The paths of one member's files.
pub(crate) struct MemberDir(pub PathBuf);

impl MemberDir {
    fn node(&self) -> PathBuf {
        self.0.join("node-tls")
    }
    fn client(&self) -> PathBuf {
        self.0.join("client")
    }
    fn clients_file(&self) -> PathBuf {
        self.0.join("api-clients.toml")
    }
}

fn member_dir(data: &Path, code: &str) -> MemberDir {
    MemberDir(data.join(format!("member-{code}")))
}

/// Creates the CA, certificates, genesis and API keys.
async fn create(data: &Path, base_port: u16, demo: bool) -> Result<Layout> {
    let layout = layout(base_port, demo)?;
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let ca_dir = data.join("ca");
    fiscus_identity_ca::init(&fiscus_identity_ca::InitOptions {
        data_dir: ca_dir.clone(),
        consortium_id: CONSORTIUM.into(),
        force: false,
        all_hebei: true,
        server_names: vec!["127.0.0.1".into(), "localhost".into()],
        root_validity_years: 10,
        cert_validity_days: 825,
    })
    .await
    .context("creating the consortium root CA")?;
    let paths = CaPaths::new(&ca_dir);
    let ca = RootCa::load(&paths)?;
    let signers = data.join("signers");
    std::fs::create_dir_all(&signers)?;
    let valid_from = layout.block_clock.as_ref().map(|c| c.start_ms);
    for o in &layout.orderers {
        let name = format!("orderer-{}", o.id);
        let cert = issue(
            &ca,
            &o.org,
            Role::Orderer,
            &[&name, "127.0.0.1", "localhost"],
            &data.join(&name).join("tls"),
            valid_from,
        )?;
        std::fs::copy(&cert, signers.join(format!("{name}.pem")))?;
    }
    let mut keys = String::from(
        "# Devnet API keys (plaintext; the adapters store only their SHA-256).\n# member  api  key  scopes\n",
    );
    for m in &layout.members {
        let dir = member_dir(data, &m.code);
        let cert = issue(
            &ca,
            &m.code,
            Role::Node,
            &["127.0.0.1", "localhost"],
            &dir.node(),
            valid_from,
        )?;
        std::fs::copy(&cert, signers.join(format!("node-{}.pem", m.code)))?;
        let cert = issue(&ca, &m.code, Role::Client, &[], &dir.client(), valid_from)?;
        std::fs::copy(&cert, signers.join(format!("client-{}.pem", m.code)))?;
        let key = new_api_key();
        let read_key = new_api_key();
        keys.push_str(&format!(
            "{}  http://{}  {key}  submit,read,import,admin\n{}  http://{}  {read_key}  read\n",
            m.code, m.api, m.code, m.api
        ));
        let file = ClientsFile {
            clients: vec![
                ClientEntry {
                    name: format!("devnet-{}", m.code),
                    key_sha256: key_hash(&key),
                    org: m.code.clone(),
                    scopes: vec![Scope::Submit, Scope::Read, Scope::Import, Scope::Admin],
                    custodial_cert: Some(dir.client().join("cert.pem")),
                    custodial_key: Some(dir.client().join("key.pem")),
                },
                ClientEntry {
                    name: format!("devnet-{}-read-only", m.code),
                    key_sha256: key_hash(&read_key),
                    org: m.code.clone(),
                    scopes: vec![Scope::Read],
                    custodial_cert: None,
                    custodial_key: None,
                },
            ],
        };
        write_file(
            &dir.clients_file(),
            toml::to_string(&file)?.as_bytes(),
            0o600,
        )?;
    }
    write_file(&data.join("api-keys.txt"), keys.as_bytes(), 0o600)?;
    register_issued(&paths, &signers).await?;

    // The genesis: every Hebei division as an org, five of them members.
    let mut bundle: GenesisBundle =
        serde_json::from_slice(&std::fs::read(paths.genesis_json())?).context("genesis.json")?;
    bundle.members = layout
        .members
        .iter()
        .map(|m| GenesisMember {
            org_code: m.code.clone(),
            roles: ["node", "admin", "operator", "client", "auditor"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            gossip_endpoints: vec![format!("https://{}", m.gateway)],
            allowed_names: fiscus_identity_ca::genesis::devnet_allowed_names(&m.code),
        })
        .collect();
    bundle.orderers = layout
        .orderers
        .iter()
        .map(|o| GenesisOrderer {
            raft_id: o.id,
            node_id: format!("orderer-{}", o.id),
            org_code: o.org.clone(),
            endpoint: o.client.to_string(),
        })
        .collect();
    write_file(
        &paths.genesis_json(),
        &serde_json::to_vec_pretty(&bundle)?,
        0o644,
    )?;
    write_file(
        &paths.consortium_config(),
        &bundle.to_consortium_config(&ca.root_der).encode_to_vec(),
        0o644,
    )?;
    write_file(
        &data.join("devnet.json"),
        &serde_json::to_vec_pretty(&layout)?,
        0o644,
    )?;
    Ok(layout)
}

/// Fails with the port's name when one of the layout's ports is taken.
fn check_free(layout: &Layout) -> Result<()> {
    let mut all = vec![("identity-ca".to_owned(), layout.ca_grpc)];
    for o in &layout.orderers {
        all.push((format!("orderer {} client", o.id), o.client));
        all.push((format!("orderer {} raft", o.id), o.raft));
    }
    for m in &layout.members {
        all.push((format!("{} ledger-store", m.code), m.ledger));
        all.push((format!("{} gossip-gateway", m.code), m.gateway));
        all.push((format!("{} exchange-adapter", m.code), m.api));
        if let Some(g) = m.grpc {
            all.push((format!("{} exchange gRPC", m.code), g));
        }
    }
    for (what, addr) in all {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            bail!(
                "port {addr} ({what}, recorded in devnet.json) is not free: {e}. \
                 Is another devnet running? Stop it, or start fresh with --reset (and --base-port)."
            );
        }
    }
    Ok(())
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
