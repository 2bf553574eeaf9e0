//! `fiscus chaos`: a fault campaign on the process devnet (every service its
//! own process, with a nats-server). It drives signed disbursements through
//! the signing members' exchange-adapters (gRPC `Submit`, whose answer means
//! "ordered"), records every acknowledged tx id, and every `--fault-every`
//! injects a fault the seed chooses: SIGKILL or SIGSTOP/SIGCONT of the
//! orderer leader, of a follower, of one member's ledger-store,
//! gossip-gateway or exchange-adapter, or of the nats-server (the devnet's
//! supervisor restarts what was killed); a member cut from the orderers, the
//! orderers split 2/1, one raft direction lost, or an orderer's links
//! delayed, through TCP proxies every orderer link goes through
//! ([`faultnet`]); or one member's ledger disk full ([`diskfull`]). Then it
//! heals everything and checks, printing one JSON report:
//!
//! - every acknowledged tx is committed, valid, exactly once at every member
//!   (`lost`, `duplicates`);
//! - every member holds the same block, state and receipts hashes at every
//!   height (`divergences`) and no gateway raised a divergence alarm;
//! - every member is final at the head within `--final-within` of the heal
//!   (`max_final_after_heal_s`);
//! - every member's event stream holds each height's `blocks`,
//!   `attestations` and per-transaction `txs` event exactly once;
//! - `fiscus verify` passes on every member's store.
//!
//! The history (faults as they happen, then every acknowledged tx) goes to a
//! JSON-lines file; the same seed chooses the same faults in the same order
//! (which orderer leads when a leader fault comes is the run's).

use crate::bench_e2e::{PROGRAMS, SIGNERS, Signer, acct, connect, env, fund, ledger_channel};
use crate::devnet::Devnet;
use crate::devnet::links;
use crate::devnet::processes::member_process;
use diskfull::SmallDisk;
use faultnet::{FaultNet, LinkState};

mod diskfull;
mod faultnet;
use crate::measure::{parse_duration, usage_of};
use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_proto::hash::tx_id;
use fiscus_proto::pb::exchange::exchange_client::ExchangeClient;
use fiscus_proto::pb::ledger::ledger_ingest_client::LedgerIngestClient;
use fiscus_proto::pb::ledger::{ChainInfoRequest, GetAttestationRequest, GetBlockRequest};
use fiscus_proto::pb::transfer::{DisburseArgs, Recipient, recipient, transfer_call::Method};
use fiscus_proto::pb::types::{Attestation, TxStatus};
use prost::Message;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[derive(Debug, Args)]
pub(crate) struct ChaosCmd {
    /// How long to drive load and inject faults, e.g. 300s.
    #[arg(long, default_value = "300s", value_parser = parse_duration)]
    duration: Duration,
    /// Offered load in tx/s over the four signing members.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Chooses the faults, their targets and pauses (default: from the clock;
    /// printed, so a failing campaign can be run again).
    #[arg(long)]
    seed: Option<u64>,
    /// Time between faults.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    fault_every: Duration,
    /// Drive load only (a soak): no faults, and RSS sampled over time.
    #[arg(long)]
    no_faults: bool,
    /// How soon after the heal every member must be final at the head.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    final_within: Duration,
    /// The history file (JSON lines: faults, then acknowledged txs).
    /// Default: chaos-<seed>.jsonl in the current directory.
    #[arg(long)]
    history: Option<PathBuf>,
    /// Keep the devnet's data directory here (it must not exist).
    #[arg(long)]
    keep_data: Option<PathBuf>,
    /// Print the report as one JSON object (progress still goes to stderr).
    #[arg(long)]
    json: bool,
}

/// SplitMix64: a small, seedable generator (the fault schedule must be the
/// same on every machine for a seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    /// SIGKILL; the supervisor restarts it.
    Kill,
    /// SIGSTOP, then SIGCONT after `hold_ms`.
    Pause,
    /// Every link from a member (its gateway and adapter) to the orderers
    /// cut for `hold_ms`.
    Isolate,
    /// One orderer cut from the other two (raft and client links, both
    /// directions) for `hold_ms`: the orderers split 2/1.
    SplitOrderers,
    /// One orderer's raft messages to one peer lost (that direction only)
    /// for `hold_ms`.
    OneWayLoss,
    /// Every link to or from one orderer delayed by `delay_ms` per chunk,
    /// both ways, for `hold_ms`.
    Delay,
    /// A member's ledger filesystem shrunk to what it uses plus 32 MiB for
    /// `hold_ms`.
    DiskFull,
}

impl Action {
    fn network(self) -> bool {
        matches!(
            self,
            Action::Isolate | Action::SplitOrderers | Action::OneWayLoss | Action::Delay
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "role", content = "of")]
enum Target {
    OrdererLeader,
    OrdererFollower,
    LedgerStore(String),
    GossipGateway(String),
    ExchangeAdapter(String),
    NatsServer,
    /// A member's processes (network faults).
    Member(String),
    /// An orderer's node id (network faults).
    Orderer(u64),
    /// The raft link from one orderer to another.
    OrdererLink {
        from: u64,
        to: u64,
    },
}

impl Target {
    fn role(&self) -> &'static str {
        match self {
            Target::OrdererLeader => "the orderers' leader",
            Target::OrdererFollower => "an orderer follower",
            Target::LedgerStore(_) => "a ledger-store",
            Target::GossipGateway(_) => "a gossip-gateway",
            Target::ExchangeAdapter(_) => "an exchange-adapter",
            Target::NatsServer => "the bus",
            Target::Member(_) => "a member",
            Target::Orderer(_) => "an orderer",
            Target::OrdererLink { .. } => "a raft link",
        }
    }
}

/// The devnet's resident memory and open files at one moment.
#[derive(Debug, Serialize)]
struct Sample {
    /// Seconds since the load started.
    t_s: u64,
    /// Resident memory of all the devnet's processes, MiB.
    rss_mib: f64,
    /// Open file descriptors of all the devnet's processes.
    fds: usize,
    /// (resident MiB, open files) by kind of process, summed over its processes.
    by_role: BTreeMap<&'static str, (f64, usize)>,
}

/// One fault as chosen by the seed, and what became of it.
#[derive(Debug, Clone, Serialize)]
struct Fault {
    n: usize,
    at_ms: u64,
    action: Action,
    target: Target,
    /// How long a pause, a cut, a delay or a full disk lasts (0: a kill).
    hold_ms: u64,
    /// The extra latency of a `delay` fault.
    delay_ms: u64,
    /// The process it hit, or the links it cut or slowed (empty when it was skipped).
    process: String,
    /// The process's pid (0: not a process fault, or skipped).
    pid: u32,
    /// Links a network fault changed.
    links: usize,
    /// What the target said about the fault (a full disk: its `/readyz`
    /// and `fiscus_ledger_commits_paused`).
    observed: Option<String>,
    /// Why nothing was done (the process was being restarted, …).
    skipped: Option<String>,
}

/// One fault of the schedule: what, where, for how long, and a delay's size.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Choice {
    action: Action,
    target: Target,
    hold_ms: u64,
    delay_ms: u64,
}

/// The seeded fault schedule. Its first faults are each kind the campaign
/// can inject, once, in an order the seed chooses (so a short campaign
/// covers them all); after that, kinds are chosen at random.
struct Schedule {
    rng: Rng,
    kinds: Vec<Action>,
    first: Vec<Action>,
    members: Vec<String>,
    orderers: Vec<u64>,
    nats: bool,
    /// The member whose ledger sits on the campaign's small disk.
    disk: Option<String>,
}

impl Schedule {
    fn new(
        seed: u64,
        members: Vec<String>,
        orderers: Vec<u64>,
        nats: bool,
        network: bool,
        disk: Option<String>,
    ) -> Self {
        let mut kinds = vec![Action::Kill, Action::Pause];
        if network {
            kinds.extend([
                Action::Isolate,
                Action::SplitOrderers,
                Action::OneWayLoss,
                Action::Delay,
            ]);
        }
        if disk.is_some() {
            kinds.push(Action::DiskFull);
        }
        let mut rng = Rng(seed);
        // Fisher–Yates with the seed's generator.
        let mut first = kinds.clone();
        for i in (1..first.len()).rev() {
            first.swap(i, rng.below(i + 1));
        }
        first.reverse();
        Self {
            rng,
            kinds,
            first,
            members,
            orderers,
            nats,
            disk,
        }
    }

    fn next(&mut self) -> Choice {
        let rng = &mut self.rng;
        let action = match self.first.pop() {
            Some(a) => a,
            None => self.kinds[rng.below(self.kinds.len())],
        };
        let member = self.members[rng.below(self.members.len())].clone();
        let orderer = self.orderers[rng.below(self.orderers.len())];
        let target = match action {
            Action::Kill | Action::Pause => {
                let mut targets = vec![
                    Target::OrdererLeader,
                    Target::OrdererFollower,
                    Target::LedgerStore(member.clone()),
                    Target::GossipGateway(member.clone()),
                    Target::ExchangeAdapter(member),
                ];
                if self.nats {
                    targets.push(Target::NatsServer);
                }
                targets[rng.below(targets.len())].clone()
            }
            Action::Isolate => Target::Member(member),
            Action::SplitOrderers | Action::Delay => Target::Orderer(orderer),
            Action::OneWayLoss => {
                let others: Vec<u64> = self
                    .orderers
                    .iter()
                    .copied()
                    .filter(|o| *o != orderer)
                    .collect();
                Target::OrdererLink {
                    from: orderer,
                    to: others[rng.below(others.len())],
                }
            }
            Action::DiskFull => Target::LedgerStore(self.disk.clone().unwrap_or(member)),
        };
        let hold_ms = 1_000 + rng.below(3_000) as u64;
        let delay_ms = 50 + rng.below(250) as u64;
        Choice {
            hold_ms: if action == Action::Kill { 0 } else { hold_ms },
            delay_ms: if action == Action::Delay { delay_ms } else { 0 },
            action,
            target,
        }
    }
}

/// The links a network fault changes.
fn fault_links<'a>(net: &'a FaultNet, action: Action, target: &Target) -> Vec<&'a str> {
    let parse = |name: &'a str| name.split_once("->");
    net.names()
        .filter(|name| {
            let Some((from, to)) = parse(name) else {
                return false;
            };
            match (action, target) {
                (Action::Isolate, Target::Member(m)) => from == links::member(m),
                (Action::SplitOrderers, Target::Orderer(k)) => {
                    let me = format!("orderer-{k}");
                    from.starts_with("orderer-")
                        && (from == me || to.starts_with(&format!("{me}/")))
                }
                (Action::OneWayLoss, Target::OrdererLink { from: a, to: b }) => {
                    from == format!("orderer-{a}") && to == links::orderer_raft(*b)
                }
                (Action::Delay, Target::Orderer(k)) => {
                    let me = format!("orderer-{k}");
                    from == me || to.starts_with(&format!("{me}/"))
                }
                _ => false,
            }
        })
        .collect()
}

/// What ends a fault that lasts.
enum Undo {
    Cont(u32),
    Links(Vec<String>),
    Disk,
}

fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
}

/// The process a target names now (the leader is asked for).
async fn resolve(net: &Devnet, target: &Target) -> Result<Option<String>> {
    Ok(match target {
        Target::OrdererLeader | Target::OrdererFollower => {
            let statuses =
                crate::devnet::processes::orderer_statuses(&net.data, &net.layout).await?;
            let leader = statuses
                .iter()
                .find_map(|(id, s)| (s.role == "leader").then_some(*id));
            let pick = match (target, leader) {
                (Target::OrdererLeader, Some(l)) => Some(l),
                (Target::OrdererFollower, Some(l)) => {
                    statuses.iter().map(|(id, _)| *id).find(|id| *id != l)
                }
                _ => None,
            };
            pick.map(|id| format!("orderer-{id}"))
        }
        Target::LedgerStore(m) => Some(member_process(m, "ledger-store")),
        Target::GossipGateway(m) => Some(member_process(m, "gossip-gateway")),
        Target::ExchangeAdapter(m) => Some(member_process(m, "exchange-adapter")),
        Target::NatsServer => Some("nats-server".to_owned()),
        Target::Member(_) | Target::Orderer(_) | Target::OrdererLink { .. } => None,
    })
}

/// Appends lines to the history file, flushed at once (a campaign that
/// crashes keeps the faults it injected).
struct History(std::io::BufWriter<std::fs::File>);

impl History {
    fn line(&mut self, v: &serde_json::Value) -> Result<()> {
        writeln!(self.0, "{v}")?;
        self.0.flush()?;
        Ok(())
    }
}

/// What the load recorded.
#[derive(Default)]
struct Load {
    submitted: u64,
    /// Acknowledged (ordered) tx ids, with their signer.
    acked: BTreeMap<Vec<u8>, String>,
    /// Submissions without an answer (a paused or restarting adapter or
    /// orderer): they may or may not be committed.
    unanswered: u64,
    /// Answered with an error code, by code.
    refused: BTreeMap<String, u64>,
}

/// One signer's load: `rate` disbursements per second, each its own unary
/// `Submit` (at most 256 unanswered), until `until`.
async fn drive(
    signer: Arc<Signer>,
    client: ExchangeClient<Channel>,
    stream: u64,
    rate: f64,
    until: Instant,
    load: Arc<Mutex<Load>>,
) {
    let sem = Arc::new(tokio::sync::Semaphore::new(256));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0u64.. {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if due >= until {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let e = env(
            &signer,
            stream << 40 | i,
            Method::Disburse(DisburseArgs {
                from: acct(&signer.org, (i as usize) % PROGRAMS),
                recipient: Some(Recipient {
                    id: Some(recipient::Id::UnifiedSocialCreditCode(
                        "12130102MB1234562B".into(),
                    )),
                    name: "chaos school".into(),
                }),
                amount_fen: 1,
                purpose: "chaos".into(),
                economic_code: "50502".into(),
                external_id: String::new(),
            }),
        );
        let id = tx_id(&e.payload).to_vec();
        let mut client = client.clone();
        let load = load.clone();
        let org = signer.org.clone();
        lock(&load).submitted += 1;
        tasks.spawn(async move {
            let answer = tokio::time::timeout(Duration::from_secs(10), client.submit(e)).await;
            let mut l = lock(&load);
            match answer {
                Ok(Ok(_)) => {
                    l.acked.insert(id, org);
                }
                Ok(Err(status)) => {
                    let code = status
                        .metadata()
                        .get(fiscus_common::error::GRPC_CODE_METADATA)
                        .and_then(|v| v.to_str().ok())
                        .map_or_else(|| format!("grpc.{:?}", status.code()), str::to_owned);
                    if matches!(
                        status.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::Cancelled
                            | tonic::Code::Unknown
                    ) {
                        l.unanswered += 1;
                    } else {
                        *l.refused.entry(code).or_insert(0) += 1;
                    }
                }
                Err(_) => l.unanswered += 1,
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A height's block, state and receipts hashes, as a member attests them.
type Hashes = (Vec<u8>, Vec<u8>, Vec<u8>);

/// Resident memory of the devnet's processes now (MiB) and their open file
/// descriptors.
fn devnet_sample(net: &Devnet, t_s: u64) -> Sample {
    let mut sample = Sample {
        t_s,
        rss_mib: 0.0,
        fds: 0,
        by_role: BTreeMap::new(),
    };
    for (name, pid) in net.child_pids() {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        let rss = usage_of(&pid.to_string()).rss_mib;
        sample.rss_mib += rss;
        sample.fds += fds;
        let role = crate::measure::PROCESS_ROLES
            .into_iter()
            .find(|r| name.contains(r))
            .unwrap_or("other");
        let e = sample.by_role.entry(role).or_insert((0.0, 0));
        e.0 += rss;
        e.1 += fds;
    }
    sample.rss_mib = (sample.rss_mib * 10.0).round() / 10.0;
    for v in sample.by_role.values_mut() {
        v.0 = (v.0 * 10.0).round() / 10.0;
    }
    sample
}

#[derive(Debug, Default, Serialize)]
struct Events {
    /// Expected events absent from a member's stream, over all members.
    missing: u64,
    /// Events stored more than once (same `Nats-Msg-Id`), over all members.
    duplicated: u64,
    /// `alarms` events (divergence alarms) over all members.
    alarms: u64,
    /// The first few missing ids, for the report.
    first_missing: Vec<String>,
    /// Missing events by member.
    missing_by_member: BTreeMap<String, u64>,
}

/// Reads a member's whole event stream and compares it with what the chain
/// says it must hold: for each height 1..=head, its `blocks` event, one
/// `txs` event per receipt and its `attestations` event.
async fn check_events(
    nats_url: &str,
    consortium: &str,
    member: &str,
    tx_counts: &[usize],
    out: &mut Events,
) -> Result<()> {
    use fiscus_common::bus::EventBus;
    let bus = fiscus_common::bus::nats::NatsBus::connect(
        nats_url,
        "fiscus-chaos",
        fiscus_common::bus::BusLimits::default(),
    )
    .await?;
    let stream = format!("FISCUS_{}_{member}", consortium.replace(['-', '.'], "_"));
    let prefix = format!("fiscus.{consortium}.{member}.");
    let consumer = format!("chaos-check-{member}-{}", std::process::id());
    let mut c = bus
        .durable_consumer(&stream, &consumer, &format!("{prefix}>"))
        .await?;
    let expected: usize = tx_counts.iter().map(|n| n + 2).sum();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    // Until every expected event is there, or nothing new for 5 s.
    loop {
        if seen.len() >= expected {
            // Anything more is a duplicate or an alarm: read what is left.
            match tokio::time::timeout(Duration::from_millis(500), c.next()).await {
                Ok(Some(m)) => {
                    let m = m?;
                    record(&m.event, &prefix, &mut seen, out);
                    m.ack().await?;
                    continue;
                }
                _ => break,
            }
        }
        match tokio::time::timeout(Duration::from_secs(5), c.next()).await {
            Ok(Some(m)) => {
                let m = m?;
                record(&m.event, &prefix, &mut seen, out);
                m.ack().await?;
            }
            Ok(None) | Err(_) => break,
        }
    }
    for (i, n) in tx_counts.iter().enumerate() {
        let h = i + 1;
        let ids = std::iter::once(format!("{member}.{h}.blocks.0"))
            .chain((0..*n).map(|k| format!("{member}.{h}.txs.{k}")))
            .chain(std::iter::once(format!("{member}.{h}.attestations.0")));
        for id in ids {
            match seen.get(&id) {
                None => {
                    out.missing += 1;
                    *out.missing_by_member.entry(member.to_owned()).or_insert(0) += 1;
                    if out.first_missing.len() < 10 {
                        out.first_missing.push(id);
                    }
                }
                Some(k) if *k > 1 => out.duplicated += u64::from(*k - 1),
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// `fiscus_gossip_events_published_height` on a gateway's `/metrics` (0 when unknown).
async fn published_height(addr: std::net::SocketAddr) -> u64 {
    let Some((200, body)) = crate::devnet::processes::http_get(addr, "/metrics").await else {
        return 0;
    };
    body.lines()
        .find_map(|l| l.strip_prefix("fiscus_gossip_events_published_height "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

fn record(
    e: &fiscus_common::bus::Event,
    prefix: &str,
    seen: &mut BTreeMap<String, u32>,
    out: &mut Events,
) {
    if e.subject.strip_prefix(prefix) == Some("alarms") {
        out.alarms += 1;
        return;
    }
    if let Some(id) = e.headers.get("Nats-Msg-Id") {
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
}

#[derive(Debug, Serialize)]
struct Report {
    passed: bool,
    first_violation: Option<String>,
    seed: u64,
    duration_s: f64,
    rate: u64,
    submitted: u64,
    acked: usize,
    unanswered: u64,
    refused: BTreeMap<String, u64>,
    lost: usize,
    duplicates: usize,
    divergences: usize,
    divergence_alarms: u64,
    events_missing: u64,
    events_duplicated: u64,
    events_first_missing: Vec<String>,
    events_missing_by_member: BTreeMap<String, u64>,
    verify_failures: Vec<String>,
    faults: usize,
    faults_skipped: usize,
    fault_list: Vec<Fault>,
    head: u64,
    max_final_after_heal_s: f64,
    /// The devnet's memory and open files every 10 s of the load.
    samples: Vec<Sample>,
    history: PathBuf,
    /// Faults this campaign could not inject, and why (empty: none).
    not_tested: Vec<String>,
}

pub(crate) async fn run(cmd: ChaosCmd) -> Result<bool> {
    if cmd.rate == 0 {
        bail!("--rate 0: give an offered load in tx/s");
    }
    if cmd.fault_every < Duration::from_secs(1) {
        bail!("--fault-every {:?}: one second at least", cmd.fault_every);
    }
    let seed = cmd.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let history_path = cmd
        .history
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("chaos-{seed}.jsonl")));
    let mut history = History(std::io::BufWriter::new(
        std::fs::File::create(&history_path)
            .with_context(|| format!("creating {}", history_path.display()))?,
    ));
    let _telemetry = fiscus_common::telemetry::init_with_default("chaos", false, "warn")?;
    let dir = tempfile::tempdir()?;
    let data = match &cmd.keep_data {
        Some(d) if d.exists() => bail!("--keep-data {}: it exists", d.display()),
        Some(d) => d.clone(),
        None => dir.path().join("devnet"),
    };
    eprintln!(
        "chaos: seed {seed}; history in {}; starting the process devnet (3 orderers, 5 members, NATS)…",
        history_path.display()
    );
    history.line(
        &serde_json::json!({"op": "start", "seed": seed, "rate": cmd.rate,
        "duration_s": cmd.duration.as_secs_f64(), "fault_every_s": cmd.fault_every.as_secs_f64(),
        "no_faults": cmd.no_faults}),
    )?;
    let layout = crate::devnet::create_only(&data).await?;
    let faults_at = prepare(&cmd, seed, &data, &layout).await?;
    for what in &faults_at.not_tested {
        eprintln!("chaos: not tested: {what}");
    }
    let mode = crate::devnet::Mode::Processes {
        log_level: "warn".into(),
        start_nats: true,
    };
    let net = crate::devnet::start(&data, 0, None, false, false, mode).await?;
    let outcome = campaign(&cmd, seed, &net, &mut history, &history_path, &faults_at).await;
    eprintln!("chaos: stopping the devnet…");
    let (head, mut report) = match outcome {
        Ok(r) => r,
        Err(e) => {
            net.stop().await;
            faults_at.release(&data, cmd.keep_data.is_some());
            return Err(e.context(format!(
                "the campaign (seed {seed}) could not finish; logs in {}/logs",
                data.display()
            )));
        }
    };
    let members: Vec<String> = net.layout.members.iter().map(|m| m.code.clone()).collect();
    net.stop().await;
    for m in &members {
        let store = crate::devnet::member_ledger_dir(&data, m);
        match crate::ledger_cmds::verify_store(&store, Some(head)).await {
            Ok(_) => eprintln!("chaos: fiscus verify {m}: ok"),
            Err(problem) => report.verify_failures.push(format!("{m}: {problem}")),
        }
    }
    faults_at.release(&data, cmd.keep_data.is_some());
    let violation = [
        (
            report.lost > 0,
            format!("{} acknowledged txs lost", report.lost),
        ),
        (
            report.duplicates > 0,
            format!("{} txs committed more than once", report.duplicates),
        ),
        (
            report.divergences > 0,
            format!("{} heights where members disagree", report.divergences),
        ),
        (
            report.divergence_alarms > 0,
            format!("{} divergence alarms", report.divergence_alarms),
        ),
        (
            report.max_final_after_heal_s > cmd.final_within.as_secs_f64(),
            format!(
                "a member was final {:.1} s after the heal (limit {:?})",
                report.max_final_after_heal_s, cmd.final_within
            ),
        ),
        (
            report.events_missing > 0,
            format!("{} events missing from the streams", report.events_missing),
        ),
        (
            report.events_duplicated > 0,
            format!("{} events stored twice", report.events_duplicated),
        ),
        (
            !report.verify_failures.is_empty(),
            format!(
                "fiscus verify failed: {}",
                report.verify_failures.join("; ")
            ),
        ),
        (
            report.acked == 0,
            "no transaction was acknowledged".to_owned(),
        ),
    ]
    .into_iter()
    .find_map(|(bad, what)| bad.then_some(what));
    report.passed = violation.is_none();
    report.first_violation = violation.clone();
    if let Some(keep) = &cmd.keep_data {
        eprintln!("chaos: the devnet's data is kept in {}", keep.display());
    }
    if cmd.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    match violation {
        None => eprintln!(
            "chaos: PASSED (seed {seed}): {} acknowledged, 0 lost, {} faults",
            report.acked, report.faults
        ),
        Some(v) => eprintln!(
            "chaos: FAILED (seed {seed}): {v}; history in {}; run again with --seed {seed}",
            history_path.display()
        ),
    }
    Ok(report.passed)
}

/// Routes the orderer links through fault proxies and puts one member's
/// ledger (chosen by the seed) on a small disk; a soak (`--no-faults`) gets
/// neither.
async fn prepare(
    cmd: &ChaosCmd,
    seed: u64,
    data: &Path,
    layout: &crate::devnet::Layout,
) -> Result<FaultPoints> {
    let mut at = FaultPoints {
        net: None,
        disk: None,
        not_tested: Vec::new(),
    };
    if cmd.no_faults {
        return Ok(at);
    }
    let (fnet, routes) = FaultNet::start(layout).await?;
    routes.save(data)?;
    at.net = Some(fnet);
    let member = &layout.members[Rng(seed ^ 0xD15C_F011).below(layout.members.len())].code;
    match SmallDisk::mount(member, &crate::devnet::member_ledger_dir(data, member)) {
        Ok(d) => at.disk = Some(d),
        Err(e) => at.not_tested.push(format!(
            "a full disk: cannot mount a small filesystem ({e:#})"
        )),
    }
    Ok(at)
}

/// Where the campaign can inject faults besides processes.
struct FaultPoints {
    /// The proxies every orderer link goes through (none in a soak).
    net: Option<FaultNet>,
    /// One member's ledger on a small disk (none without the right to mount).
    disk: Option<SmallDisk>,
    /// What could not be prepared, and why.
    not_tested: Vec<String>,
}

impl FaultPoints {
    /// With every process stopped: the links direct again (a kept data
    /// directory resumes without the proxies), the small disk unmounted
    /// (its store moved back first when the data is kept).
    fn release(self, data: &Path, keep: bool) {
        if self.net.is_some()
            && let Err(e) = crate::devnet::links::Links::remove(data)
        {
            eprintln!("chaos: removing links.json: {e:#}");
        }
        if let Some(disk) = self.disk
            && let Err(e) = disk.unmount(keep)
        {
            eprintln!("chaos: unmounting the small disk: {e:#}");
        }
    }
}

/// Injects one fault; what lasts is pushed on `ongoing`, to end at `ends`.
async fn inject(
    net: &Devnet,
    at: &FaultPoints,
    choice: &Choice,
    f: &mut Fault,
    ongoing: &mut Vec<(Instant, Undo)>,
    ends: Instant,
) -> Result<()> {
    let action = choice.action;
    if action.network() {
        let Some(fnet) = &at.net else {
            f.skipped = Some("no fault proxies".into());
            return Ok(());
        };
        if ongoing.iter().any(|(_, u)| matches!(u, Undo::Links(_))) {
            f.skipped = Some("a network fault is in force already".into());
            return Ok(());
        }
        let names: Vec<String> = fault_links(fnet, action, &choice.target)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let state = if action == Action::Delay {
            LinkState::Delayed(choice.delay_ms)
        } else {
            LinkState::Down
        };
        f.links = fnet.set(names.iter().map(String::as_str), state);
        f.process = names.join(" ");
        ongoing.push((ends, Undo::Links(names)));
        return Ok(());
    }
    if action == Action::DiskFull {
        let Some(disk) = &at.disk else {
            f.skipped = Some("no small disk".into());
            return Ok(());
        };
        if ongoing.iter().any(|(_, u)| matches!(u, Undo::Disk)) {
            f.skipped = Some("the disk is full already".into());
            return Ok(());
        }
        let free = match disk.fill() {
            Ok(free) => free,
            Err(e) => {
                f.skipped = Some(format!("shrinking the disk: {e:#}"));
                return Ok(());
            }
        };
        let name = member_process(&disk.member, "ledger-store");
        f.process = format!("{name} ({} MiB left free)", free / (1024 * 1024));
        ongoing.push((ends, Undo::Disk));
        f.observed = Some(paused_commits(net, &name).await);
        return Ok(());
    }
    let pid_of = |name: &str| {
        net.child_pids()
            .into_iter()
            .find_map(|(n, pid)| (n == name).then_some(pid))
    };
    match resolve(net, &choice.target).await {
        Ok(Some(name)) => match pid_of(&name) {
            Some(pid)
                if ongoing
                    .iter()
                    .any(|(_, u)| matches!(u, Undo::Cont(p) if *p == pid)) =>
            {
                f.skipped = Some(format!("{name} is paused already"));
            }
            Some(pid) => {
                f.process = name;
                f.pid = pid;
                match action {
                    Action::Pause => {
                        signal(pid, nix::sys::signal::Signal::SIGSTOP);
                        ongoing.push((ends, Undo::Cont(pid)));
                    }
                    _ => signal(pid, nix::sys::signal::Signal::SIGKILL),
                }
            }
            None => f.skipped = Some(format!("{name} is being restarted")),
        },
        Ok(None) => f.skipped = Some("no orderer leads now".into()),
        Err(e) => f.skipped = Some(format!("asking the orderers: {e:#}")),
    }
    Ok(())
}

/// Waits (10 s at most) for a ledger-store to say on `/readyz` and in its
/// metrics that its commits are paused; returns what it said.
async fn paused_commits(net: &Devnet, name: &str) -> String {
    let Some(addr) = net.ops_addr(name) else {
        return "no ops port".into();
    };
    // Long enough for a ledger-store that a kill left restarting.
    let until = Instant::now() + Duration::from_secs(10);
    let mut seen = String::from("no answer");
    while Instant::now() < until {
        if let Some((status, body)) = crate::devnet::processes::http_get(addr, "/readyz").await {
            let paused = crate::devnet::processes::http_get(addr, "/metrics")
                .await
                .and_then(|(_, m)| {
                    m.lines()
                        .find(|l| l.starts_with("fiscus_ledger_commits_paused "))
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            seen = format!("readyz {status}: {}; {paused}", body.trim());
            if status == 503 && body.contains("disk") && paused.ends_with(" 1") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen
}

/// Ends a lasting fault. A failure is reported and the heal goes on: the
/// campaign's checks then show what it left behind.
fn undo_fault(at: &FaultPoints, undo: Undo) {
    match undo {
        Undo::Cont(pid) => signal(pid, nix::sys::signal::Signal::SIGCONT),
        Undo::Links(names) => {
            if let Some(n) = &at.net {
                n.set(names.iter().map(String::as_str), LinkState::Up);
            }
        }
        Undo::Disk => {
            if let Some(d) = &at.disk
                && let Err(e) = d.free()
            {
                eprintln!("chaos: giving the disk its space back: {e:#}");
            }
        }
    }
}

/// One line for the progress output.
fn describe(f: &Fault) -> String {
    let Fault {
        action,
        target,
        hold_ms,
        ..
    } = f;
    if let Some(why) = &f.skipped {
        return format!("{action:?} {target:?} skipped ({why})");
    }
    match action {
        Action::Kill => format!("SIGKILL {} ({}, pid {})", f.process, target.role(), f.pid),
        Action::Pause => format!(
            "SIGSTOP {} ({}, pid {}) for {hold_ms} ms",
            f.process,
            target.role(),
            f.pid
        ),
        Action::Delay => format!(
            "{} ms delay on {} links of {target:?} for {hold_ms} ms",
            f.delay_ms, f.links
        ),
        Action::DiskFull => format!(
            "disk full: {} for {hold_ms} ms; {}",
            f.process,
            f.observed.as_deref().unwrap_or("")
        ),
        _ => format!(
            "{action:?}: {} links of {target:?} cut for {hold_ms} ms",
            f.links
        ),
    }
}

/// Load and faults, the heal, and the checks that need the running devnet.
async fn campaign(
    cmd: &ChaosCmd,
    seed: u64,
    net: &Devnet,
    history: &mut History,
    history_path: &Path,
    faults_at: &FaultPoints,
) -> Result<(u64, Report)> {
    net.wait_leader(Duration::from_secs(60)).await?;
    let nats_url = net.nats_url();
    if nats_url.is_none() {
        eprintln!("chaos: no nats-server on this machine: no NATS faults and no event checks");
    }
    let (signers, mut ledgers, mut clients) = connect(net).await?;
    eprintln!("chaos: funding the signers…");
    fund(net, &signers, &mut clients, &mut ledgers).await?;

    let load = Arc::new(Mutex::new(Load::default()));
    let start = Instant::now();
    let until = start + cmd.duration;
    eprintln!(
        "chaos: driving {} tx/s for {:?}{}…",
        cmd.rate,
        cmd.duration,
        if cmd.no_faults {
            " without faults".to_owned()
        } else {
            format!(", a fault every {:?}", cmd.fault_every)
        }
    );
    let mut drivers = Vec::new();
    for (i, s) in signers.into_iter().enumerate() {
        let client = clients.get(&s.org).context("client")?.clone();
        drivers.push(tokio::spawn(drive(
            Arc::new(s),
            client,
            i as u64 + 1,
            cmd.rate as f64 / SIGNERS.len() as f64,
            until,
            load.clone(),
        )));
    }

    // Faults (and RSS samples) until the load ends.
    let members: Vec<String> = net.layout.members.iter().map(|m| m.code.clone()).collect();
    let orderers: Vec<u64> = net.layout.orderers.iter().map(|o| o.id).collect();
    let mut schedule = Schedule::new(
        seed,
        members.clone(),
        orderers,
        nats_url.is_some(),
        faults_at.net.is_some(),
        faults_at.disk.as_ref().map(|d| d.member.clone()),
    );
    let mut faults: Vec<Fault> = Vec::new();
    let mut ongoing: Vec<(Instant, Undo)> = Vec::new();
    let mut rss = Vec::new();
    let mut next_fault = start + cmd.fault_every;
    let mut next_sample = start;
    while Instant::now() < until {
        let now = Instant::now();
        // End what lasts (pauses, cuts, delays, a full disk) when its time is up.
        let (done, going): (Vec<_>, Vec<_>) = ongoing.into_iter().partition(|(at, _)| *at <= now);
        ongoing = going;
        for (_, undo) in done {
            undo_fault(faults_at, undo);
        }
        if now >= next_sample {
            let sample = devnet_sample(net, now.duration_since(start).as_secs());
            // In the history as it is taken: a soak cut short keeps its curve.
            history.line(&serde_json::json!({"op": "sample", "sample": &sample}))?;
            rss.push(sample);
            next_sample += Duration::from_secs(10);
        }
        if !cmd.no_faults && now >= next_fault {
            next_fault += cmd.fault_every;
            let choice = schedule.next();
            let mut f = Fault {
                n: faults.len() + 1,
                at_ms: now.duration_since(start).as_millis() as u64,
                action: choice.action,
                target: choice.target.clone(),
                hold_ms: choice.hold_ms,
                delay_ms: choice.delay_ms,
                process: String::new(),
                pid: 0,
                links: 0,
                observed: None,
                skipped: None,
            };
            let ends = now + Duration::from_millis(choice.hold_ms);
            inject(net, faults_at, &choice, &mut f, &mut ongoing, ends).await?;
            eprintln!(
                "chaos: {:>5.1}s fault #{}: {}",
                f.at_ms as f64 / 1000.0,
                f.n,
                describe(&f)
            );
            history.line(&serde_json::json!({"op": "fault", "fault": &f}))?;
            faults.push(f);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for d in drivers {
        d.await?;
    }
    // The heal: everything paused goes on, every link is up, the disk has
    // room; everything killed is running again.
    for (_, undo) in ongoing.drain(..) {
        undo_fault(faults_at, undo);
    }
    if let Some(n) = &faults_at.net {
        n.heal();
    }
    eprintln!("chaos: load done; healing (every process running and ready)…");
    net.wait_ready(Duration::from_secs(60)).await?;
    let healed = Instant::now();
    history.line(&serde_json::json!({"op": "healed",
        "at_ms": healed.duration_since(start).as_millis() as u64}))?;
    // The head: the highest height any orderer has cut (no load any more).
    let head = net.orderer_height().await?;
    let mut final_after = 0f64;
    for (m, l) in members.iter().zip(ledgers.iter_mut()) {
        let until = healed + Duration::from_secs(120);
        loop {
            let info = l.get_chain_info(ChainInfoRequest {}).await;
            if let Ok(i) = &info
                && i.get_ref().final_height >= head
            {
                break;
            }
            if Instant::now() > until {
                bail!("member {m} was not final at height {head} within 120 s of the heal");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        final_after = final_after.max(healed.elapsed().as_secs_f64());
    }
    eprintln!(
        "chaos: every member final at height {head} {final_after:.1} s after the heal; checking…"
    );

    let load = std::mem::take(&mut *lock(&load));
    for (id, org) in &load.acked {
        history.line(&serde_json::json!({"op": "acked", "tx_id": hex::encode(id), "org": org}))?;
    }

    // Every height: the same hashes at every member; every tx's count.
    let mut divergences = 0;
    let mut lost: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut duplicates: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut tx_counts = vec![0usize; head as usize];
    let mut reference: Vec<Option<Hashes>> = vec![None; head as usize];
    for (m, l) in members.iter().zip(ledgers.iter_mut()) {
        // Attestations are read on the member-internal service, with the
        // member's own node certificate (as its gateway does).
        let mut ingest = LedgerIngestClient::new(ledger_channel(net, m).await?);
        let mut valid: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
        for h in 1..=head {
            let receipts = l
                .get_block_receipts(GetBlockRequest {
                    number: h,
                    hash: Vec::new(),
                })
                .await
                .with_context(|| format!("receipts of block {h} at {m}"))?
                .into_inner();
            tx_counts[h as usize - 1] = receipts.receipts.len();
            for r in receipts.receipts {
                if r.status == TxStatus::Valid as i32 {
                    *valid.entry(r.tx_id).or_insert(0) += 1;
                }
            }
            let signed = ingest
                .get_attestation(GetAttestationRequest { height: h })
                .await
                .with_context(|| format!("attestation of block {h} at {m}"))?
                .into_inner();
            let a = Attestation::decode(&signed.attestation[..])?;
            let hashes = (a.block_hash, a.state_hash, a.receipts_root);
            match &reference[h as usize - 1] {
                None => reference[h as usize - 1] = Some(hashes),
                Some(r) if *r != hashes => {
                    divergences += 1;
                    eprintln!("chaos: member {m} disagrees at height {h}");
                }
                Some(_) => {}
            }
        }
        for id in load.acked.keys() {
            match valid.get(id) {
                None => {
                    lost.insert(id.clone());
                }
                Some(n) if *n > 1 => {
                    duplicates.insert(id.clone());
                }
                Some(_) => {}
            }
        }
        duplicates.extend(valid.into_iter().filter(|(_, n)| *n > 1).map(|(id, _)| id));
    }
    for id in lost.iter().take(10) {
        eprintln!(
            "chaos: acknowledged but not committed everywhere: {}",
            hex::encode(id)
        );
    }
    let mut events = Events::default();
    if let Some(url) = &nats_url {
        // Each gateway's publisher catches up after the faults: wait (60 s
        // at most) until it says the stream has every height.
        let until = Instant::now() + Duration::from_secs(60);
        for m in &members {
            let addr = net
                .ops_addr(&member_process(m, "gossip-gateway"))
                .context("no ops port for a gateway")?;
            while published_height(addr).await < head && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        for m in &members {
            check_events(url, &net.layout.consortium_id, m, &tx_counts, &mut events).await?;
        }
    }
    let skipped = faults.iter().filter(|f| f.skipped.is_some()).count();
    let report = Report {
        passed: false,
        first_violation: None,
        seed,
        duration_s: cmd.duration.as_secs_f64(),
        rate: cmd.rate,
        submitted: load.submitted,
        acked: load.acked.len(),
        unanswered: load.unanswered,
        refused: load.refused,
        lost: lost.len(),
        duplicates: duplicates.len(),
        divergences,
        divergence_alarms: events.alarms,
        events_missing: events.missing,
        events_duplicated: events.duplicated,
        events_first_missing: events.first_missing,
        events_missing_by_member: events.missing_by_member,
        verify_failures: Vec::new(),
        faults: faults.len() - skipped,
        faults_skipped: skipped,
        fault_list: faults,
        head,
        max_final_after_heal_s: (final_after * 10.0).round() / 10.0,
        samples: rss,
        history: history_path.to_owned(),
        not_tested: faults_at.not_tested.clone(),
    };
    Ok((head, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed chooses the same faults, in the same order, with the
    /// same targets and holds; another seed chooses others. The first
    /// faults are every kind once; NATS, network and disk faults appear
    /// only where the campaign can inject them.
    #[test]
    fn a_seed_fixes_the_fault_schedule() {
        let members: Vec<String> = ["000000", "130000", "130100"].map(String::from).to_vec();
        let schedule = |seed, nats, network, disk: Option<&str>| {
            let mut s = Schedule::new(
                seed,
                members.clone(),
                vec![1, 2, 3],
                nats,
                network,
                disk.map(str::to_owned),
            );
            (0..60).map(|_| s.next()).collect::<Vec<_>>()
        };
        let all = schedule(7, true, true, Some("130100"));
        assert_eq!(all, schedule(7, true, true, Some("130100")));
        assert_ne!(all, schedule(8, true, true, Some("130100")));
        let kinds = [
            Action::Kill,
            Action::Pause,
            Action::Isolate,
            Action::SplitOrderers,
            Action::OneWayLoss,
            Action::Delay,
            Action::DiskFull,
        ];
        let first: BTreeSet<String> = all[..kinds.len()]
            .iter()
            .map(|c| format!("{:?}", c.action))
            .collect();
        assert_eq!(first.len(), kinds.len(), "{all:?}");
        assert!(all.iter().any(|c| c.target == Target::NatsServer));
        for c in &all {
            match c.action {
                Action::Kill => assert_eq!(c.hold_ms, 0),
                _ => assert!((1_000..4_000).contains(&c.hold_ms), "{c:?}"),
            }
            assert_eq!(c.action == Action::Delay, c.delay_ms > 0, "{c:?}");
            if c.action == Action::DiskFull {
                assert_eq!(c.target, Target::LedgerStore("130100".into()));
            }
            if let Target::OrdererLink { from, to } = c.target {
                assert_ne!(from, to);
            }
        }
        let plain = schedule(7, false, false, None);
        assert!(
            plain
                .iter()
                .all(|c| matches!(c.action, Action::Kill | Action::Pause))
        );
        assert!(plain.iter().all(|c| c.target != Target::NatsServer));
    }

    /// The links each network fault changes, on the devnet's link names.
    #[tokio::test]
    async fn a_network_fault_changes_the_links_it_names_and_no_other() {
        let orderers: Vec<serde_json::Value> = [1u16, 2, 3]
            .map(|id| {
                serde_json::json!({"id": id, "org": "o",
                    "client": format!("127.0.0.1:{}", 10 + id),
                    "raft": format!("127.0.0.1:{}", 20 + id)})
            })
            .to_vec();
        let members: Vec<serde_json::Value> = ["000000", "130000"]
            .map(|code| {
                serde_json::json!({"code": code, "ledger": "127.0.0.1:30",
                    "gateway": "127.0.0.1:31", "api": "127.0.0.1:32"})
            })
            .to_vec();
        let layout: crate::devnet::Layout = serde_json::from_value(serde_json::json!({
            "consortium_id": "t", "ca_grpc": "127.0.0.1:1",
            "orderers": orderers, "members": members,
        }))
        .unwrap();
        let (net, routes) = FaultNet::start(&layout).await.unwrap();
        // 3 orderers × 2 peers × (raft, client) + 2 members × 3 orderers.
        assert_eq!(routes.via.len(), 18);
        let names = |action, target: Target| {
            let mut v = fault_links(&net, action, &target);
            v.sort_unstable();
            v
        };
        assert_eq!(
            names(Action::Isolate, Target::Member("130000".into())),
            [
                "member-130000->orderer-1/client",
                "member-130000->orderer-2/client",
                "member-130000->orderer-3/client"
            ]
        );
        assert_eq!(
            names(Action::SplitOrderers, Target::Orderer(2)),
            [
                "orderer-1->orderer-2/client",
                "orderer-1->orderer-2/raft",
                "orderer-2->orderer-1/client",
                "orderer-2->orderer-1/raft",
                "orderer-2->orderer-3/client",
                "orderer-2->orderer-3/raft",
                "orderer-3->orderer-2/client",
                "orderer-3->orderer-2/raft"
            ]
        );
        assert_eq!(
            names(Action::OneWayLoss, Target::OrdererLink { from: 3, to: 1 }),
            ["orderer-3->orderer-1/raft"]
        );
        // A delayed orderer: its peer links both ways and the members' links to it.
        let delayed = names(Action::Delay, Target::Orderer(1));
        assert_eq!(delayed.len(), 10, "{delayed:?}");
        assert!(delayed.contains(&"member-000000->orderer-1/client"));
        assert!(!delayed.iter().any(|n| n.contains("orderer-2->orderer-3")));
    }
}
