//! `fiscus devnet`: a whole consortium on this machine, with real mutual TLS
//! between every part: the identity-ca, 3 orderers, and five members (MOF,
//! Hebei, Shijiazhuang, Chang'an district, the Hebei audit office), each
//! with its ledger-store, gossip-gateway and exchange-adapter. By default
//! they all run in this process; with `--processes` every service is its
//! own OS process, supervised by this one (see [`processes`]).
//!
//! Everything lives under `--data-dir`; a restart resumes from it, and
//! `--reset` starts fresh. `--demo` replays a fiscal year through the
//! exchange-adapters and prints a summary (that is `make run`).

mod add_member;
mod configs;
mod layout;
pub(crate) mod links;
pub(crate) mod processes;
mod setup;
mod supervise;
mod webhooks;

pub(crate) use layout::Layout;
use layout::{check_free, layout};
use setup::create;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
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
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct DevnetCmd {
    #[command(subcommand)]
    action: Option<DevnetAction>,
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
    /// With --processes and no --nats-url, the devnet starts a nats-server
    /// (JetStream, stored under the data directory) when one is installed.
    #[arg(long)]
    nats_url: Option<String>,
    /// Run every service as its own OS process (25 with nats-server), each
    /// from a config file under <data-dir>/config, logging to
    /// <data-dir>/logs, restarted with backoff when it exits. `fiscus devnet
    /// status` lists them.
    #[arg(long)]
    processes: bool,
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

#[derive(Debug, Subcommand)]
enum DevnetAction {
    /// Every process of a running `--processes` devnet: pid, uptime, restarts,
    /// `/readyz` and memory. Exit 1 when it is not running or a process is not ready.
    Status(processes::StatusCmd),
    /// A finance bureau joins the running devnet: proposal and votes through
    /// the members' APIs, enrollment at the CA, its services as one `fiscus
    /// member` process that catches up and attests. Prints each step; serves
    /// until Ctrl-C.
    AddMember(add_member::AddMemberCmd),
}

/// How the devnet's services run.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// All of them in this process, with analytics where `analytics` says
    /// (`fiscus bench e2e` leaves it out, as its process layout does, so that
    /// both layouts run the same services).
    InProcess { analytics: AnalyticsAt },
    /// Each its own OS process, supervised by this one; `log_level` is the
    /// children's `RUST_LOG` when the environment sets none; `start_nats`:
    /// start a nats-server (when installed and no NATS URL is given).
    Processes { log_level: String, start_nats: bool },
}

/// Which members run their analytics (in process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnalyticsAt {
    Nobody,
    EveryMember,
    /// This member only (`fiscus bench e2e --analytics-member`).
    Member(String),
}

impl AnalyticsAt {
    fn runs_at(&self, code: &str) -> bool {
        match self {
            Self::Nobody => false,
            Self::EveryMember => true,
            Self::Member(m) => m == code,
        }
    }
}

/// The running devnet.
pub(crate) struct Devnet {
    pub layout: Layout,
    /// The data directory (absolute).
    pub data: PathBuf,
    /// Whether the REST APIs speak TLS (`--rest-tls`).
    pub rest_tls: bool,
    parts: Parts,
    /// A demo devnet records where its calendar stands every 100 ms
    /// (`demo-clock.json`), so that a restart goes on from there.
    clock_keeper: Option<tokio::task::JoinHandle<()>>,
}

enum Parts {
    InProcess {
        ca: fiscus_identity_ca::Running,
        orderers: Vec<fiscus_orderer::Running>,
        members: Vec<Member>,
    },
    Processes(processes::Processes),
}

struct Member {
    ledger: fiscus_ledger_store::server::Running,
    gateway: fiscus_gossip_gateway::Running,
    api: fiscus_exchange_adapter::Running,
    /// Absent when the devnet was started without analytics.
    analytics: Option<fiscus_analytics::service::Running>,
}

impl Devnet {
    /// Where a member's analytics serves, when this devnet runs one.
    pub(crate) fn analytics_addr(&self, code: &str) -> Option<std::net::SocketAddr> {
        match &self.parts {
            Parts::InProcess { members, .. } => self
                .layout
                .members
                .iter()
                .position(|m| m.code == code)
                .and_then(|i| members.get(i))
                .and_then(|m| m.analytics.as_ref())
                .map(|a| a.addr),
            Parts::Processes(_) => None,
        }
    }

    pub(crate) async fn stop(self) {
        if let Some(keeper) = self.clock_keeper {
            keeper.abort();
            if let Some(clock) = self.layout.block_clock {
                let _ = layout::save_clock(&self.data, &clock, layout::now_ms());
            }
        }
        match self.parts {
            Parts::InProcess {
                ca,
                orderers,
                members,
            } => {
                for m in members {
                    if let Some(a) = m.analytics {
                        a.stop().await;
                    }
                    m.api.stop().await;
                    m.gateway.stop().await;
                    m.ledger.stop().await;
                }
                for o in orderers {
                    o.stop().await;
                }
                let _ = ca.stop().await;
            }
            Parts::Processes(p) => p.supervisor.stop().await,
        }
    }

    /// Waits until one orderer leads.
    pub(crate) async fn wait_leader(&self, deadline: Duration) -> Result<()> {
        match &self.parts {
            Parts::InProcess { orderers, .. } => {
                let until = Instant::now() + deadline;
                while !orderers.iter().any(|o| {
                    o.handles
                        .status
                        .read()
                        .map(|s| s.role == "leader")
                        .unwrap_or(false)
                }) {
                    if Instant::now() > until {
                        bail!("the orderers elected no leader within {deadline:?}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(())
            }
            Parts::Processes(_) => {
                processes::wait_leader(&self.data, &self.layout, deadline).await?;
                Ok(())
            }
        }
    }

    /// The highest block height any orderer reports.
    pub(crate) async fn orderer_height(&self) -> Result<u64> {
        Ok(match &self.parts {
            Parts::InProcess { orderers, .. } => orderers
                .iter()
                .filter_map(|o| o.handles.status.read().ok().map(|s| s.height))
                .max()
                .unwrap_or(0),
            Parts::Processes(_) => processes::orderer_statuses(&self.data, &self.layout)
                .await?
                .iter()
                .map(|(_, s)| s.height)
                .max()
                .unwrap_or(0),
        })
    }

    /// The devnet's child processes (name, pid); none when it runs in this process.
    pub(crate) fn child_pids(&self) -> Vec<(String, u32)> {
        match &self.parts {
            Parts::InProcess { .. } => Vec::new(),
            Parts::Processes(p) => p.supervisor.pids(),
        }
    }

    /// The NATS server the gateways publish on (a process devnet's).
    pub(crate) fn nats_url(&self) -> Option<String> {
        match &self.parts {
            Parts::InProcess { .. } => None,
            Parts::Processes(p) => p.nats_url.clone(),
        }
    }

    /// Every process running and answering 200 on `/readyz` (the
    /// nats-server: running), within `deadline`; at once in process.
    pub(crate) async fn wait_ready(&self, deadline: Duration) -> Result<()> {
        match &self.parts {
            Parts::InProcess { .. } => Ok(()),
            Parts::Processes(p) => {
                let mut names = processes::process_names(&self.layout);
                names.push("nats-server".to_owned());
                processes::wait_ready(&p.supervisor, &names, deadline).await
            }
        }
    }

    /// The ops endpoint (`/readyz`, `/metrics`) of the process named `name`
    /// (process devnet only).
    pub(crate) fn ops_addr(&self, name: &str) -> Option<SocketAddr> {
        match &self.parts {
            Parts::InProcess { .. } => None,
            Parts::Processes(p) => p.ports.http.get(name).copied(),
        }
    }

    /// Every service's ops endpoint (`/metrics`), with the labels the
    /// Prometheus configs in `observability/` expect.
    pub(crate) fn metrics_targets(&self) -> Vec<MetricsTarget> {
        let target =
            |addr, component: &str, member: Option<&str>, orderer: Option<u64>| MetricsTarget {
                addr,
                component: component.to_owned(),
                member: member.map(str::to_owned),
                orderer,
            };
        let mut out = Vec::new();
        match &self.parts {
            Parts::InProcess {
                ca,
                orderers,
                members,
            } => {
                out.push(target(ca.http_addr, "identity-ca", None, None));
                for (r, o) in orderers.iter().zip(&self.layout.orderers) {
                    out.push(target(r.http_addr, "orderer", None, Some(o.id)));
                }
                for (m, l) in members.iter().zip(&self.layout.members) {
                    let code = Some(l.code.as_str());
                    out.push(target(m.ledger.http_addr, "ledger-store", code, None));
                    out.push(target(m.gateway.http_addr, "gossip-gateway", code, None));
                    out.push(target(m.api.http_addr, "exchange-adapter", code, None));
                }
            }
            Parts::Processes(p) => {
                for name in processes::process_names(&self.layout) {
                    let Some(addr) = p.ports.http.get(&name).copied() else {
                        continue;
                    };
                    if name == "identity-ca" {
                        out.push(target(addr, "identity-ca", None, None));
                    } else if let Some(id) = name.strip_prefix("orderer-") {
                        out.push(target(addr, "orderer", None, id.parse().ok()));
                    } else if let Some((code, service)) = name
                        .strip_prefix("member-")
                        .and_then(|rest| rest.split_once('-'))
                    {
                        out.push(target(addr, service, Some(code), None));
                    }
                }
            }
        }
        out
    }

    /// The ops endpoint of `component` (of `member`, or orderer `orderer`).
    fn metrics_addr(&self, component: &str, member: Option<&str>, orderer: Option<u64>) -> String {
        self.metrics_targets()
            .into_iter()
            .find(|t| {
                t.component == component && t.member.as_deref() == member && t.orderer == orderer
            })
            .map_or_else(|| "?".to_owned(), |t| format!("http://{}/metrics", t.addr))
    }

    /// Writes [`Self::metrics_targets`] as a Prometheus file-based service
    /// discovery file (what `observability/prometheus/devnet-scrape.yml` reads
    /// from its `targets/` directory), returns its path.
    pub(crate) fn write_prometheus_targets(&self) -> Result<PathBuf> {
        let groups: Vec<serde_json::Value> = self
            .metrics_targets()
            .into_iter()
            .map(|t| {
                let mut labels = serde_json::Map::new();
                labels.insert("component".into(), t.component.into());
                if let Some(m) = t.member {
                    labels.insert("member".into(), m.into());
                }
                if let Some(o) = t.orderer {
                    labels.insert("orderer".into(), o.to_string().into());
                }
                serde_json::json!({"targets": [t.addr.to_string()], "labels": labels})
            })
            .collect();
        let path = self.data.join("prometheus-targets.json");
        fiscus_identity_ca::ca::write_file(&path, &serde_json::to_vec_pretty(&groups)?, 0o644)?;
        Ok(path)
    }
}

/// One service's `/metrics` endpoint and its Prometheus target labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetricsTarget {
    pub addr: SocketAddr,
    pub component: String,
    pub member: Option<String>,
    pub orderer: Option<u64>,
}

/// Starts (creating on first use) the devnet in `data`.
pub(crate) async fn start(
    data: &Path,
    base_port: u16,
    nats_url: Option<String>,
    demo: bool,
    rest_tls: bool,
    mode: Mode,
) -> Result<Devnet> {
    let manifest = data.join("devnet.json");
    let layout: Layout = if manifest.exists() {
        eprintln!("devnet: resuming from {}", data.display());
        serde_json::from_slice(&std::fs::read(&manifest)?)
            .with_context(|| format!("reading {}", manifest.display()))?
    } else {
        eprintln!("devnet: creating a consortium in {}", data.display());
        create(data, base_port, demo).await?
    };
    let mut layout = layout;
    // Ours until this process exits, so that a devnet created meanwhile does
    // not choose them (a created layout's ports are leased already).
    layout::lease_all(layout.addrs().into_iter().map(|(_, a)| a))?;
    // The demo calendar stands still while the devnet is down.
    if let Some(clock) = layout.block_clock {
        layout.block_clock = Some(layout::resume_clock(data, clock, layout::now_ms())?);
    }
    let data =
        std::fs::canonicalize(data).with_context(|| format!("finding {}", data.display()))?;
    let parts = match mode {
        Mode::InProcess { analytics } => {
            check_free(&layout)?;
            start_in_process(&data, &layout, nats_url, rest_tls, analytics).await?
        }
        Mode::Processes {
            log_level,
            start_nats,
        } => {
            // An earlier supervisor's orphans hold the layout's ports until
            // processes::start stops them, so the ports are checked after.
            let p = processes::start(
                &data,
                &layout,
                nats_url,
                rest_tls,
                &log_level,
                start_nats,
                || check_free(&layout),
            )
            .await?;
            Parts::Processes(p)
        }
    };
    let clock_keeper = layout.block_clock.map(|clock| {
        let data = data.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = layout::save_clock(&data, &clock, layout::now_ms()) {
                    eprintln!("devnet: recording the demo calendar: {e:#}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    Ok(Devnet {
        layout,
        data,
        rest_tls,
        parts,
        clock_keeper,
    })
}

async fn start_in_process(
    data: &Path,
    layout: &Layout,
    nats_url: Option<String>,
    rest_tls: bool,
    analytics: AnalyticsAt,
) -> Result<Parts> {
    let files = configs::Files {
        data: data.to_owned(),
        webhooks: webhooks::Webhooks::load(data, layout)?,
        links: links::Links::load(data)?,
    };
    let any_port: SocketAddr = "127.0.0.1:0".parse()?;
    let ca = fiscus_identity_ca::start(configs::identity_ca(&files, layout, any_port))
        .await
        .context("starting the identity-ca")?;
    eprintln!("devnet: identity-ca up; starting 3 orderers…");
    let mut orderers = Vec::new();
    for o in &layout.orderers {
        orderers.push(
            fiscus_orderer::start(configs::orderer(&files, layout, o, any_port))
                .await
                .with_context(|| format!("starting orderer {} on {}", o.id, o.client))?,
        );
    }
    eprintln!("devnet: orderers up; starting 5 members…");
    // The ledgers open side by side (each reads its store; the time grows
    // with the chain), each on a task of its own.
    let opening: Vec<_> = layout
        .members
        .iter()
        .map(|m| {
            let config = configs::ledger_store(&files, m, any_port, None);
            let code = m.code.clone();
            tokio::spawn(async move {
                fiscus_ledger_store::server::start(config)
                    .await
                    .with_context(|| format!("starting the ledger-store of {code}"))
            })
        })
        .collect();
    let mut ledgers = Vec::new();
    for task in opening {
        ledgers.push(task.await.context("a ledger-store's start panicked")?);
    }
    let mut members = Vec::new();
    for (m, ledger) in layout.members.iter().zip(ledgers) {
        let ledger = ledger?;
        let gateway = fiscus_gossip_gateway::start(configs::gossip_gateway(
            &files,
            layout,
            m,
            any_port,
            nats_url.clone(),
        ))
        .await
        .with_context(|| format!("starting the gossip-gateway of {}", m.code))?;
        let api = fiscus_exchange_adapter::start(configs::exchange_adapter(
            &files, layout, m, any_port, rest_tls,
        ))
        .await
        .with_context(|| format!("starting the exchange-adapter of {}", m.code))?;
        let analytics = if analytics.runs_at(&m.code) {
            let config = configs::analytics(&files, m, any_port);
            // Kept for `fiscus analytics rebuild --config` (and to read by hand).
            processes::write_config(
                &files.data,
                &processes::member_process(&m.code, "analytics"),
                &config,
            )?;
            Some(
                fiscus_analytics::service::start(config)
                    .await
                    .with_context(|| format!("starting the analytics of {}", m.code))?,
            )
        } else {
            None
        };
        members.push(Member {
            ledger,
            gateway,
            api,
            analytics,
        });
    }
    Ok(Parts::InProcess {
        ca,
        orderers,
        members,
    })
}

/// Creates the consortium in `data` without starting it; [`start`] then
/// resumes it (the fault campaign prepares its fault points in between).
pub(crate) async fn create_only(data: &Path) -> Result<Layout> {
    create(data, 0, false).await
}

/// A devnet member's ledger-store data directory.
pub(crate) fn member_ledger_dir(data: &Path, code: &str) -> PathBuf {
    setup::member_dir(data, code).0.join("ledger")
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
        "Fiscus devnet 开发网络 ({}) is up{}:",
        net.layout.consortium_id,
        match &net.parts {
            Parts::InProcess { .. } => String::new(),
            Parts::Processes(p) => format!(
                " as {} processes{}",
                p.supervisor.pids().len(),
                p.nats_url
                    .as_deref()
                    .map(|u| format!(", events on {u}"))
                    .unwrap_or_default()
            ),
        }
    );
    println!(
        "  identity-ca  grpc {}   metrics {}   (root: {})",
        net.layout.ca_grpc,
        net.metrics_addr("identity-ca", None, None),
        CaPaths::new(net.data.join("ca")).root_cert().display()
    );
    for o in &net.layout.orderers {
        println!(
            "  orderer      grpc {}   metrics {}",
            o.client,
            net.metrics_addr("orderer", None, Some(o.id))
        );
    }
    let scheme = if net.rest_tls { "https" } else { "http" };
    for (m, (_, label)) in net.layout.members.iter().zip(MEMBERS) {
        println!("  member {}  {label}", m.code);
        println!(
            "    exchange-adapter  {scheme}://{}  (API page {scheme}://{}/docs){}",
            m.api,
            m.api,
            m.grpc.map(|g| format!("  gRPC {g}")).unwrap_or_default()
        );
        if let Some(a) = net.analytics_addr(&m.code) {
            println!(
                "    analytics 统计分析  dashboard http://{a}/  API http://{a}/v1/analytics/regions/{}  (OpenAPI http://{a}/openapi.json)",
                m.code
            );
        }
        println!(
            "    ledger-store grpc {}   gossip-gateway grpc {}",
            m.ledger, m.gateway
        );
        let code = Some(m.code.as_str());
        println!(
            "    metrics  ledger-store {}  gossip-gateway {}  exchange-adapter {}",
            net.metrics_addr("ledger-store", code, None),
            net.metrics_addr("gossip-gateway", code, None),
            net.metrics_addr("exchange-adapter", code, None),
        );
    }
    match net.write_prometheus_targets() {
        Ok(path) => println!(
            "  Prometheus targets 监控目标: {} (file_sd; observability/prometheus/devnet-scrape.yml reads targets/*.json)",
            path.display()
        ),
        Err(e) => eprintln!("devnet: could not write the Prometheus targets: {e:#}"),
    }
    if let Parts::InProcess { .. } = &net.parts {
        println!(
            "  analytics dashboards 统计分析看板: open a member's analytics URL in a browser with an API key; \
             rebuild one: fiscus analytics rebuild --config {}/config/member-<code>-analytics.toml",
            net.data.display()
        );
    }
    println!(
        "  certificates and keys: {}/member-*/ ; API keys: {}",
        net.data.display(),
        net.data.join("api-keys.txt").display()
    );
    if let Parts::Processes(_) = &net.parts {
        println!(
            "  processes 进程: fiscus devnet status --data-dir {} ; configs {}/config ; logs {}/logs",
            net.data.display(),
            net.data.display(),
            net.data.display()
        );
    }
}

/// Runs the devnet until Ctrl-C. With `--demo`, `demo` replays the fiscal
/// year once the devnet is ready (`crate::demo::run`; passed in, so that the
/// devnet does not depend on the demo that drives it).
/// The lock file a running devnet holds in its data directory.
const LOCK_FILE: &str = "devnet.lock";

/// Creates `data` if needed and takes its lock, or says which devnet holds it.
fn lock_data_dir(data: &Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(data).with_context(|| format!("creating {}", data.display()))?;
    let path = data.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            bail!(
                "a devnet is running on {} (pid {}); stop it first (Ctrl-C). Nothing was changed.",
                data.display(),
                holder.trim()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
    // Who holds it, for the message above; the lock itself is the flock.
    let _ = file.set_len(0);
    let _ = std::io::Write::write_all(&mut &file, std::process::id().to_string().as_bytes());
    Ok(file)
}

/// Whether an entry at the top of a data directory is one that creating a
/// devnet makes (before `devnet.json`, its last step).
fn made_by_create(name: &str) -> bool {
    matches!(name, "ca" | "signers" | "api-keys.txt" | LOCK_FILE)
        || name.starts_with("orderer-")
        || name.starts_with("member-")
}

/// Deletes one entry of a data directory, a file or a whole directory.
fn remove_entry(path: &Path) -> Result<()> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.with_context(|| format!("deleting {}", path.display()))
}

/// Deletes everything in `data` but the lock this process holds.
fn clear_data_dir(data: &Path) -> Result<()> {
    for entry in std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))? {
        let entry = entry?;
        if entry.file_name() != LOCK_FILE {
            remove_entry(&entry.path())?;
        }
    }
    Ok(())
}

/// Files a user may put into a data directory before its first start, which
/// the devnet reads and never makes: kept when a half-made directory is made
/// again.
fn user_input(name: &str) -> bool {
    name == webhooks::FILE
}

/// A devnet killed while creating its data directory (before it wrote
/// `devnet.json`, the last step) left no chain behind, only keys and
/// certificates: those are made again (a `webhooks.toml` put there is kept).
/// A directory with anything else is left alone and refused.
fn clear_half_made(data: &Path) -> Result<()> {
    if data.join("devnet.json").exists() {
        return Ok(());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(data).with_context(|| format!("reading {}", data.display()))? {
        names.push(entry?.file_name().to_string_lossy().into_owned());
    }
    names.retain(|n| n != LOCK_FILE && !user_input(n));
    if names.is_empty() {
        return Ok(());
    }
    let foreign: Vec<&String> = names.iter().filter(|n| !made_by_create(n)).collect();
    if !foreign.is_empty() || !names.iter().any(|n| n == "ca") {
        bail!(
            "{} is not a devnet's data directory (no devnet.json) and is not empty ({}); \
             choose another --data-dir",
            data.display(),
            names.join(", ")
        );
    }
    eprintln!(
        "devnet: {} was left half-made (no devnet.json: its creation was interrupted); making it again",
        data.display()
    );
    for name in names {
        remove_entry(&data.join(name))?;
    }
    Ok(())
}

pub(crate) async fn run(
    cmd: DevnetCmd,
    demo: impl AsyncFnOnce(&Devnet) -> Result<()>,
) -> Result<()> {
    match cmd.action {
        Some(DevnetAction::Status(status)) => {
            if !processes::status(status).await? {
                std::process::exit(1);
            }
            return Ok(());
        }
        Some(DevnetAction::AddMember(add)) => return add_member::add_member(add).await,
        None => {}
    }
    // Fifteen services share this process's log (in-process); RUST_LOG=info shows all of it.
    let _telemetry = fiscus_common::telemetry::init_with_default("devnet", false, "warn")?;
    // Held until this devnet stops: a second devnet (or a --reset) on the
    // same directory is refused before it touches anything.
    let _lock = lock_data_dir(&cmd.data_dir)?;
    if cmd.reset {
        eprintln!("devnet: --reset: deleting {}", cmd.data_dir.display());
        clear_data_dir(&cmd.data_dir)?;
    } else {
        clear_half_made(&cmd.data_dir)?;
    }
    let mode = if cmd.processes {
        Mode::Processes {
            log_level: "info".into(),
            start_nats: true,
        }
    } else {
        Mode::InProcess {
            analytics: AnalyticsAt::EveryMember,
        }
    };
    // Ctrl-C or SIGTERM at any point stops the devnet cleanly: while it
    // starts (what was made is kept; a half-made data directory is made
    // again next time), while it waits for a leader, during the demo.
    let mut interrupted = tokio::spawn(
        fiscus_common::install_shutdown_signal().context("installing the Ctrl-C handler")?,
    );
    let starting = start(
        &cmd.data_dir,
        cmd.base_port,
        cmd.nats_url.clone(),
        cmd.demo,
        cmd.rest_tls,
        mode,
    );
    let net = tokio::select! {
        net = starting => net?,
        _ = &mut interrupted => {
            eprintln!("devnet: interrupted while starting; stopped");
            return Ok(());
        }
    };
    let ready = tokio::select! {
        r = net.wait_leader(Duration::from_secs(60)) => Some(r),
        _ = &mut interrupted => None,
    };
    match ready {
        Some(Ok(())) => {}
        Some(Err(e)) => {
            net.stop().await;
            return Err(e);
        }
        None => {
            eprintln!("devnet: interrupted while starting; stopping…");
            net.stop().await;
            return Ok(());
        }
    }
    print_endpoints(&net);
    if cmd.demo {
        let outcome = tokio::select! {
            r = demo(&net) => Some(r),
            _ = &mut interrupted => None,
        };
        match outcome {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                net.stop().await;
                return Err(e.context("the fiscal-year demo failed"));
            }
            None => {
                eprintln!("devnet: interrupted during the demo; stopping…");
                net.stop().await;
                return Ok(());
            }
        }
    }
    if let Parts::Processes(p) = &net.parts {
        let (rss, n) = processes::total_rss(&p.supervisor);
        println!();
        println!(
            "Memory at rest 静止内存: {rss:.0} MiB resident over {n} processes (sum of VmRSS)"
        );
    }
    let keys = api_keys(&net.data)?;
    let hebei = net.layout.members.get(1).map(|m| m.api);
    if net.rest_tls
        && let (Some(api), Some((_, key))) = (hebei, keys.get(1))
    {
        println!();
        println!("Try it over TLS (Hebei's key) / 试用:");
        println!(
            "  curl -s --cacert {root} -H 'Authorization: Bearer {key}' https://{api}/v1/chain",
            root = CaPaths::new(net.data.join("ca")).root_cert().display(),
        );
        println!(
            "  fiscus status --api https://{api} --ca-file {root} --key {key}",
            root = CaPaths::new(net.data.join("ca")).root_cert().display(),
        );
        println!(
            "  A program holding a member's client certificate ({}) needs no key.",
            net.data.join("member-130000/client").display()
        );
        println!(
            "  A browser opens https://{api}/docs once it trusts the ECDSA TLS root {} \
             (浏览器需信任该根证书).",
            CaPaths::new(net.data.join("ca")).tls_root_cert().display()
        );
    } else if let (Some(api), Some((_, key))) = (hebei, keys.get(1)) {
        println!();
        println!("Try it (Hebei's key) / 试用:");
        println!("  curl -s -H 'Authorization: Bearer {key}' http://{api}/v1/chain");
        println!(
            "  curl -s -H 'Authorization: Bearer {key}' 'http://{api}/v1/accounts?org=130100'"
        );
        println!("  OpenAPI: http://{api}/openapi.json");
    }
    if let (Some(a), Some((_, key))) = (net.analytics_addr("130000"), keys.get(1)) {
        // The key rides in the fragment, which the browser never sends.
        println!("  统计分析看板 / analytics dashboard (Hebei): http://{a}/#key={key}");
    }
    if !cmd.exit {
        println!();
        println!(
            "Serving until Ctrl-C (按 Ctrl-C 停止). Restart resumes from {}; --reset starts fresh.",
            cmd.data_dir.display()
        );
        let _ = interrupted.await;
        eprintln!("devnet: stopping…");
    }
    net.stop().await;
    Ok(())
}
