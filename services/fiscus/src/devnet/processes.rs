//! `fiscus devnet --processes`: the same consortium as the in-process devnet,
//! but every service of every member is its own OS process, started from a
//! TOML file with `fiscus <service> --config`, as a Kubernetes pod or a
//! systemd unit would start it: one identity-ca, 3 orderers, and per member
//! a contract-executor, a ledger-store (which calls it over gRPC), a
//! gossip-gateway and an exchange-adapter; with a nats-server for events
//! when one is on the PATH and no `--nats-url` is given.
//!
//! Under the data directory: `config/<process>.toml` (written on every
//! start from [`super::configs`]), `logs/<process>.log`, `run/<process>.pid`
//! and `run/status.json` (see [`super::supervise`]), and `processes.json`,
//! the ports chosen for the processes' ops endpoints the first time.

use super::configs::{self, Files};
use super::layout::{Layout, ports};
use super::supervise::{ProcSpec, ProcStatus, StatusFile, Supervisor, alive, read_status};
use crate::measure::usage_of;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long one tier of processes may take to become ready.
const READY_DEADLINE: Duration = Duration::from_secs(120);

/// What `processes.json` records: ports the in-process devnet does not need.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProcPorts {
    /// Each member's contract-executor (gRPC), by member code.
    pub executors: BTreeMap<String, SocketAddr>,
    /// Each process's ops endpoint (`/healthz`, `/readyz`, `/metrics`), by process name.
    pub http: BTreeMap<String, SocketAddr>,
    /// The nats-server the devnet starts when none is given.
    pub nats: SocketAddr,
}

impl ProcPorts {
    /// Every port recorded, whatever listens there.
    pub(crate) fn addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        std::iter::once(self.nats)
            .chain(self.executors.values().copied())
            .chain(self.http.values().copied())
    }

    /// What `processes.json` in `data` records, if the devnet has run as processes.
    pub(crate) fn read(data: &Path) -> Result<Option<Self>> {
        let file = data.join("processes.json");
        if !file.exists() {
            return Ok(None);
        }
        serde_json::from_slice(&std::fs::read(&file)?)
            .map(Some)
            .with_context(|| format!("reading {}", file.display()))
    }
}

/// The services of one member, in start order, with their process names.
pub(crate) const MEMBER_SERVICES: [&str; 4] = [
    "contract-executor",
    "ledger-store",
    "gossip-gateway",
    "exchange-adapter",
];

pub(crate) fn member_process(code: &str, service: &str) -> String {
    format!("member-{code}-{service}")
}

/// Every process name the layout has (besides nats-server), in start order.
pub(crate) fn process_names(layout: &Layout) -> Vec<String> {
    let mut names = vec!["identity-ca".to_owned()];
    names.extend(layout.orderers.iter().map(|o| format!("orderer-{}", o.id)));
    for service in MEMBER_SERVICES {
        names.extend(
            layout
                .members
                .iter()
                .map(|m| member_process(&m.code, service)),
        );
    }
    names
}

fn proc_ports(data: &Path, layout: &Layout) -> Result<ProcPorts> {
    let taken: Vec<SocketAddr> = layout.addrs().into_iter().map(|(_, a)| a).collect();
    if let Some(recorded) = ProcPorts::read(data)? {
        if !recorded.addrs().any(|a| taken.contains(&a)) {
            super::layout::lease_all(recorded.addrs())?;
            return Ok(recorded);
        }
        // Made by a version that could give a port out twice: choose again
        // (nothing of this devnet runs now, so nothing holds them).
        eprintln!(
            "devnet: processes.json shares a port with devnet.json; choosing its ports again"
        );
    }
    let file = data.join("processes.json");
    let names = process_names(layout);
    let n = names.len() + layout.members.len() + 1;
    let mut p = ports(0, n, &taken)?.into_iter();
    let mut next = || p.next().context("too few free ports");
    let mut made = ProcPorts {
        executors: BTreeMap::new(),
        http: BTreeMap::new(),
        nats: next()?,
    };
    for m in &layout.members {
        made.executors.insert(m.code.clone(), next()?);
    }
    for name in names {
        made.http.insert(name, next()?);
    }
    fiscus_identity_ca::ca::write_file(&file, &serde_json::to_vec_pretty(&made)?, 0o644)?;
    Ok(made)
}

/// Kills the children an earlier `--processes` run left behind (its
/// supervisor was killed), so that their ports are free again. Fails if that
/// supervisor still runs.
fn stop_leftovers(data: &Path) -> Result<()> {
    let Some(old) = read_status(data)? else {
        return Ok(());
    };
    if old.supervisor_pid != std::process::id()
        && alive(old.supervisor_pid)
        && is_supervisor(old.supervisor_pid)
    {
        bail!(
            "a devnet already runs on {} (pid {}); stop it first (Ctrl-C, or kill {})",
            data.display(),
            old.supervisor_pid,
            old.supervisor_pid
        );
    }
    for p in &old.processes {
        if let Some(pid) = p.pid
            && alive(pid)
            && is_ours(pid, data)
        {
            eprintln!(
                "devnet: stopping {} (pid {pid}), left running by an earlier devnet",
                p.name
            );
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            let until = Instant::now() + Duration::from_secs(10);
            while alive(pid) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    Ok(())
}

/// Whether process `pid` is a `fiscus … --processes` (not a recycled pid).
fn is_supervisor(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| c.split(|b| *b == 0).any(|arg| arg == b"--processes"))
}

/// Whether process `pid`'s command line names this data directory (so a
/// recycled pid of some other program is never killed).
fn is_ours(pid: u32, data: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let dir = data.to_string_lossy();
    String::from_utf8_lossy(&cmdline)
        .split('\0')
        .any(|arg| arg.contains(dir.as_ref()))
}

/// The running process devnet.
pub(crate) struct Processes {
    pub supervisor: Supervisor,
    pub ports: ProcPorts,
    /// The NATS server the gateways publish on, if any.
    pub nats_url: Option<String>,
}

pub(crate) fn write_config<T: serde::Serialize>(
    data: &Path,
    name: &str,
    config: &T,
) -> Result<PathBuf> {
    std::fs::create_dir_all(data.join("config"))
        .with_context(|| format!("creating {}", data.join("config").display()))?;
    let path = data.join("config").join(format!("{name}.toml"));
    let text = toml::to_string(config).with_context(|| format!("encoding the config of {name}"))?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Starts every process in dependency order, each tier ready before the
/// next starts. On failure every process already started is stopped again:
/// never a half-started devnet.
pub(crate) async fn start(
    data: &Path,
    layout: &Layout,
    nats_url: Option<String>,
    rest_tls: bool,
    log_level: &str,
    start_nats: bool,
    check_layout_free: impl FnOnce() -> Result<()>,
) -> Result<Processes> {
    stop_leftovers(data)?;
    check_layout_free()?;
    let ports = proc_ports(data, layout)?;
    for (name, addr) in ports.http.iter().chain(ports.executors.iter()) {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            bail!(
                "port {addr} ({name}, recorded in processes.json) is not free: {e}. \
                 Is another devnet running? Stop it, or start fresh with --reset."
            );
        }
    }
    std::fs::create_dir_all(data.join("config"))?;
    let mut supervisor = Supervisor::new(data, log_level)?;
    match start_all(
        data,
        layout,
        &ports,
        nats_url,
        rest_tls,
        start_nats,
        &mut supervisor,
    )
    .await
    {
        Ok(nats_url) => Ok(Processes {
            supervisor,
            ports,
            nats_url,
        }),
        Err(e) => {
            supervisor.stop().await;
            Err(e)
        }
    }
}

async fn start_all(
    data: &Path,
    layout: &Layout,
    ports: &ProcPorts,
    mut nats_url: Option<String>,
    rest_tls: bool,
    start_nats: bool,
    sup: &mut Supervisor,
) -> Result<Option<String>> {
    let exe = std::env::current_exe().context("finding the fiscus binary")?;
    let files = Files {
        data: data.to_owned(),
        webhooks: super::webhooks::Webhooks::load(data, layout)?,
        links: super::links::Links::load(data)?,
    };
    if nats_url.is_none() && start_nats {
        match fiscus_common::bus::nats::server_binary() {
            Some(bin) => {
                // JetStream's limit is set, not left to its default share of
                // the free disk: the members' streams (1 GiB each at most)
                // must fit on a nearly full machine too.
                let conf = data.join("config/nats-server.conf");
                let text = format!(
                    "jetstream {{\n  store_dir: {:?}\n  max_file_store: 16GB\n  max_memory_store: 256MB\n}}\n",
                    data.join("nats").display().to_string()
                );
                fiscus_identity_ca::ca::write_file(&conf, text.as_bytes(), 0o644)?;
                let args: Vec<OsString> = vec![
                    "-a".into(),
                    ports.nats.ip().to_string().into(),
                    "-p".into(),
                    ports.nats.port().to_string().into(),
                    "-c".into(),
                    conf.into_os_string(),
                ];
                sup.spawn(ProcSpec {
                    name: "nats-server".into(),
                    program: bin,
                    args,
                    http: None,
                })?;
                wait_nats(ports.nats, sup).await?;
                nats_url = Some(format!("nats://{}", ports.nats));
            }
            None => eprintln!(
                "devnet: nats-server is not installed; events stay inside each gateway \
                 (install it, or give --nats-url)"
            ),
        }
    }

    let mut tier = Tier {
        data,
        exe: &exe,
        ports,
        names: Vec::new(),
    };
    tier.launch(sup, "identity-ca".into(), "identity-ca", |h| {
        configs::identity_ca(&files, layout, h)
    })?;
    tier.ready(sup).await?;
    eprintln!("devnet: identity-ca up; starting 3 orderers…");

    for o in &layout.orderers {
        tier.launch(sup, format!("orderer-{}", o.id), "orderer", |h| {
            configs::orderer(&files, layout, o, h)
        })?;
    }
    tier.ready(sup).await?;
    eprintln!("devnet: orderers up; starting 5 members' executors and ledger-stores…");

    for m in &layout.members {
        let listen = ports
            .executors
            .get(&m.code)
            .copied()
            .context("processes.json has no executor port")?;
        let executor = member_process(&m.code, "contract-executor");
        tier.launch(sup, executor, "contract-executor", |h| {
            configs::contract_executor(&files, m, listen, h)
        })?;
        let ledger = member_process(&m.code, "ledger-store");
        tier.launch(sup, ledger, "ledger-store", |h| {
            configs::ledger_store(&files, m, h, Some(listen))
        })?;
    }
    tier.ready(sup).await?;
    eprintln!("devnet: ledger-stores up; starting gateways and exchange-adapters…");

    for m in &layout.members {
        let gateway = member_process(&m.code, "gossip-gateway");
        tier.launch(sup, gateway, "gossip-gateway", |h| {
            configs::gossip_gateway(&files, layout, m, h, nats_url.clone())
        })?;
        let adapter = member_process(&m.code, "exchange-adapter");
        tier.launch(sup, adapter, "exchange-adapter", |h| {
            configs::exchange_adapter(&files, layout, m, h, rest_tls)
        })?;
    }
    tier.ready(sup).await?;
    Ok(nats_url)
}

/// Processes started together, then waited for together.
struct Tier<'a> {
    data: &'a Path,
    exe: &'a Path,
    ports: &'a ProcPorts,
    names: Vec<String>,
}

impl Tier<'_> {
    /// Writes `name`'s config (built for its ops address) and starts
    /// `fiscus <role> --config` on it under supervision.
    fn launch<T: serde::Serialize>(
        &mut self,
        sup: &mut Supervisor,
        name: String,
        role: &str,
        config: impl FnOnce(SocketAddr) -> T,
    ) -> Result<()> {
        let http = self.ports.http.get(&name).copied().with_context(|| {
            format!("processes.json has no port for {name}; start fresh with --reset")
        })?;
        let path = write_config(self.data, &name, &config(http))?;
        sup.spawn(ProcSpec {
            name: name.clone(),
            program: self.exe.to_owned(),
            args: vec![role.into(), "--config".into(), path.into_os_string()],
            http: Some(http),
        })?;
        self.names.push(name);
        Ok(())
    }

    /// Waits until every process launched since the last call is ready.
    async fn ready(&mut self, sup: &Supervisor) -> Result<()> {
        wait_ready(sup, &std::mem::take(&mut self.names), READY_DEADLINE).await
    }
}

async fn wait_nats(addr: SocketAddr, sup: &Supervisor) -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let until = Instant::now() + READY_DEADLINE;
    loop {
        if let Ok(Ok(s)) =
            tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await
        {
            let mut line = String::new();
            let mut r = tokio::io::BufReader::new(s);
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_secs(2), r.read_line(&mut line)).await
                && line.starts_with("INFO")
            {
                return Ok(());
            }
        }
        if Instant::now() > until {
            bail!(
                "nats-server did not accept clients on {addr} within {READY_DEADLINE:?}; see {}",
                sup.log_path("nats-server").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `GET path` on a plain-HTTP ops endpoint: the status code and body.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        let text = String::from_utf8_lossy(&out).into_owned();
        let code = text.split_whitespace().nth(1)?.parse().ok()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Some((code, body))
    };
    tokio::time::timeout(Duration::from_secs(3), io)
        .await
        .ok()
        .flatten()
}

/// Waits until every named process answers 200 on `/readyz`; on timeout the
/// error names each one that does not, what it says and where its log is.
/// A process without an ops port (the nats-server) counts as ready while it runs.
pub(crate) async fn wait_ready(
    sup: &Supervisor,
    names: &[String],
    deadline: Duration,
) -> Result<()> {
    let until = Instant::now() + deadline;
    loop {
        let mut failing = Vec::new();
        for name in names {
            let Some(st) = sup.status(name) else { continue };
            match (st.pid, st.http) {
                (None, _) => failing.push((st, None)),
                (Some(_), None) => {}
                (Some(_), Some(addr)) => match http_get(addr, "/readyz").await {
                    Some((200, _)) => {}
                    other => failing.push((st, other)),
                },
            }
        }
        if failing.is_empty() {
            return Ok(());
        }
        if Instant::now() > until {
            let what: Vec<String> = failing
                .iter()
                .map(|(st, r)| {
                    let state = match (st.pid, r) {
                        (None, _) => format!(
                            "not running ({})",
                            st.last_exit.as_deref().unwrap_or("exited")
                        ),
                        (Some(_), Some((code, body))) => format!("/readyz {code}: {}", body.trim()),
                        (Some(_), None) => "no answer on its ops port".to_owned(),
                    };
                    format!("{} {state}; log: {}", st.name, st.log.display())
                })
                .collect();
            bail!("not ready within {deadline:?}: {}", what.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The leader's Raft id, once one orderer says it leads (asked over mutual
/// TLS with the first member's node certificate).
pub(crate) async fn wait_leader(data: &Path, layout: &Layout, deadline: Duration) -> Result<u64> {
    let until = Instant::now() + deadline;
    loop {
        if let Some(id) = orderer_statuses(data, layout)
            .await?
            .iter()
            .find_map(|(id, s)| (s.role == "leader").then_some(*id))
        {
            return Ok(id);
        }
        if Instant::now() > until {
            bail!("the orderers elected no leader within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What each orderer that answers says of itself (Raft id, status), asked
/// over mutual TLS with the first member's node certificate.
pub(crate) async fn orderer_statuses(
    data: &Path,
    layout: &Layout,
) -> Result<Vec<(u64, fiscus_proto::pb::orderer::StatusResponse)>> {
    use fiscus_proto::pb::orderer::{StatusRequest, orderer_client::OrdererClient};
    let m = layout
        .members
        .first()
        .context("the devnet has no members")?;
    let tls = fiscus_common::tls::TlsContext::load(&fiscus_common::tls::TlsConfig::in_dir(
        &super::setup::member_dir(data, &m.code).node(),
    ))?;
    let config = tls.client_config()?;
    let mut out = Vec::new();
    for o in &layout.orderers {
        let ask = async {
            let ch = fiscus_common::tls::connect_channel(
                &o.client.to_string(),
                &format!("orderer-{}", o.id),
                config.clone(),
            )
            .await
            .ok()?;
            Some(
                OrdererClient::new(ch)
                    .status(StatusRequest {})
                    .await
                    .ok()?
                    .into_inner(),
            )
        };
        if let Ok(Some(s)) = tokio::time::timeout(Duration::from_secs(3), ask).await {
            out.push((o.id, s));
        }
    }
    Ok(out)
}

/// Resident memory of every child now, summed (MiB), and how many there are.
pub(crate) fn total_rss(sup: &Supervisor) -> (f64, usize) {
    let pids = sup.pids();
    let sum = pids
        .iter()
        .map(|(_, pid)| usage_of(&pid.to_string()).rss_mib)
        .sum();
    (sum, pids.len())
}

#[derive(Debug, clap::Args)]
pub(crate) struct StatusCmd {
    /// The process devnet's data directory.
    #[arg(long, default_value = "devnet-data")]
    data_dir: PathBuf,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    name: String,
    pid: Option<u32>,
    running: bool,
    uptime_s: Option<u64>,
    restarts: u32,
    /// `/readyz` answered 200; None: the process has no ops endpoint.
    ready: Option<bool>,
    readyz: Option<String>,
    rss_mib: Option<f64>,
    last_exit: Option<String>,
    log: PathBuf,
}

/// `fiscus devnet status`: every process with its pid, uptime, restarts and
/// `/readyz`. Ok(false) when the devnet is not running or a process is not ready.
pub(crate) async fn status(cmd: StatusCmd) -> Result<bool> {
    let Some(file) = read_status(&cmd.data_dir)? else {
        bail!(
            "no process devnet runs on {} (it has no run/status.json); start one with \
             `fiscus devnet --processes --data-dir {}`",
            cmd.data_dir.display(),
            cmd.data_dir.display()
        );
    };
    let up = alive(file.supervisor_pid);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut rows = Vec::new();
    for p in &file.processes {
        rows.push(row(p, now).await);
    }
    let ok = up && rows.iter().all(|r| r.running && r.ready != Some(false));
    if cmd.json {
        println!(
            "{}",
            serde_json::json!({
                "supervisor_pid": file.supervisor_pid,
                "supervisor_running": up,
                "all_ready": ok,
                "processes": rows,
            })
        );
        return Ok(ok);
    }
    print_table(&file, up, &rows);
    Ok(ok)
}

async fn row(p: &ProcStatus, now: u64) -> Row {
    let running = p.pid.is_some_and(alive);
    let readyz = match p.http {
        Some(addr) if running => Some(http_get(addr, "/readyz").await),
        _ => None,
    };
    Row {
        name: p.name.clone(),
        pid: p.pid,
        running,
        uptime_s: running.then(|| now.saturating_sub(p.started_unix_ms) / 1000),
        restarts: p.restarts,
        ready: p.http.map(|_| matches!(readyz, Some(Some((200, _))))),
        readyz: readyz.map(|r| match r {
            Some((code, body)) => format!("{code} {}", body.trim()),
            None => "no answer".into(),
        }),
        rss_mib: p
            .pid
            .filter(|_| running)
            .map(|pid| (usage_of(&pid.to_string()).rss_mib * 10.0).round() / 10.0),
        last_exit: p.last_exit.clone(),
        log: p.log.clone(),
    }
}

fn print_table(file: &StatusFile, up: bool, rows: &[Row]) {
    println!(
        "开发网络进程 / devnet processes (supervisor pid {}: {})",
        file.supervisor_pid,
        if up {
            "running 运行中"
        } else {
            "NOT running 未运行"
        }
    );
    println!(
        "{:<40} {:>8} {:>9} {:>8} {:<10} {:>8}  last exit",
        "process", "pid", "uptime", "restarts", "ready", "RSS MiB"
    );
    for r in rows {
        let uptime = r
            .uptime_s
            .map(|s| format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60));
        let ready = match (r.running, r.ready) {
            (false, _) => "down",
            (true, None) => "-",
            (true, Some(true)) => "ready",
            (true, Some(false)) => "NOT READY",
        };
        println!(
            "{:<40} {:>8} {:>9} {:>8} {:<10} {:>8}  {}",
            r.name,
            r.pid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            uptime.unwrap_or_else(|| "-".into()),
            r.restarts,
            ready,
            r.rss_mib
                .map(|m| format!("{m:.1}"))
                .unwrap_or_else(|| "-".into()),
            r.last_exit.as_deref().unwrap_or("-"),
        );
    }
    let total: f64 = rows.iter().filter_map(|r| r.rss_mib).sum();
    println!(
        "total RSS 内存合计: {total:.1} MiB over {} processes",
        rows.iter().filter(|r| r.running).count()
    );
    for r in rows.iter().filter(|r| r.ready == Some(false) && r.running) {
        println!(
            "  {} /readyz: {}",
            r.name,
            r.readyz.as_deref().unwrap_or("?")
        );
    }
}
