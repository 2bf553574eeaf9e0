//! `fiscus bench e2e`: the devnet (3 orderers, 5 members, in this process,
//! mutual TLS everywhere) driven through the exchange-adapters' gRPC
//! `SubmitStream` by several client streams, each with its org's client
//! certificate. Measures tx/s committed at every member, submit → committed
//! at all members and submit → final latencies, and this process's CPU time
//! and peak RSS.

use crate::measure::{percentile, usage_of};
use anyhow::{Context, Result, bail};
use clap::Args;
use fiscus_common::tls::{TlsConfig, TlsContext, connect_channel};
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::{Hash32, cert_id, tx_id};
use fiscus_proto::pb::exchange::exchange_client::ExchangeClient;
use fiscus_proto::pb::ledger::ChainInfoRequest;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::transfer::{
    AccountRef, AllocateArgs, AppropriateArgs, DisburseArgs, Program, ProgramKind, Recipient,
    TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{Envelope, TxPayload, tx_payload::Call};
use fiscus_proto::sign::SigningKey;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub(crate) struct E2eBench {
    /// Orderer nodes (the devnet has 3).
    #[arg(long, default_value_t = 3)]
    orderers: usize,
    /// Members (the devnet has 5).
    #[arg(long, default_value_t = 5)]
    members: usize,
    /// How long to drive load, e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = crate::measure::parse_duration)]
    duration: Duration,
    /// Offered load in tx/s over all streams; 0: as fast as acks allow.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Client streams (spread over the four signing members' adapters).
    #[arg(long, default_value_t = 8)]
    streams: usize,
    /// Unanswered envelopes allowed per stream.
    #[arg(long, default_value_t = 2000)]
    window: usize,
    /// Every disbursement from one account, instead of 32 accounts.
    #[arg(long)]
    hot_account: bool,
    /// Run every service of the devnet as its own OS process (the layout of
    /// `fiscus devnet --processes`); CPU and memory are then summed over them.
    #[arg(long)]
    processes: bool,
    #[arg(long)]
    json: bool,
    /// Keep the devnet's data directory here (it must not exist) instead of a
    /// temporary one: `fiscus devnet --data-dir DIR` then resumes the chain
    /// the load built, e.g. to time `fiscus devnet add-member` on it.
    #[arg(long)]
    keep_data: Option<std::path::PathBuf>,
    /// Export spans over OTLP/gRPC to a receiver this command runs (it counts
    /// and discards them), sampling `--trace-sampling` of new traces. Without
    /// it, spans are made as in every service and exported nowhere. One
    /// process only (not with `--processes`).
    #[arg(long, conflicts_with = "processes")]
    trace_export: bool,
    /// The sampling ratio with `--trace-export`.
    #[arg(long, default_value_t = 0.01)]
    trace_sampling: f64,
    /// Run every member's analytics too (in process only), and measure how
    /// far the audit office's analytics lags behind its own ledger: for each
    /// block, from the ledger reporting it committed to the analytics
    /// reporting it applied, both polled every 10 ms (`analytics_lag_*`).
    #[arg(long, conflicts_with = "processes")]
    analytics: bool,
    /// With `--analytics`: run the analytics of the audit office only (the
    /// one measured), not of every member.
    #[arg(long, requires = "analytics")]
    analytics_one: bool,
}

impl E2eBench {
    /// The in-process devnet at its peak rate for `duration`, with analytics
    /// (`fiscus bench analytics --live`).
    pub(crate) fn analytics_live(duration: Duration, one: bool) -> Self {
        Self {
            orderers: 3,
            members: 5,
            duration,
            rate: 0,
            streams: 8,
            window: 2000,
            hot_account: false,
            processes: false,
            json: true,
            keep_data: None,
            trace_export: false,
            trace_sampling: 0.01,
            analytics: true,
            analytics_one: one,
        }
    }
}

/// When each height was committed by one member's ledger and applied by its analytics.
#[derive(Debug, Default)]
struct AnalyticsProgress {
    committed_at: BTreeMap<u64, Instant>,
    applied_at: BTreeMap<u64, Instant>,
}

/// An OTLP/gRPC trace receiver that counts the spans it is sent.
#[derive(Debug, Default, Clone)]
struct SpanCounter(Arc<std::sync::atomic::AtomicU64>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService
    for SpanCounter
{
    async fn export(
        &self,
        r: tonic::Request<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse,
        >,
        tonic::Status,
    > {
        let n: usize = r
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum();
        self.0
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(tonic::Response::new(Default::default()))
    }
}

/// Starts a [`SpanCounter`] on a loopback port; returns its endpoint URL.
async fn start_span_counter(counter: SpanCounter) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let incoming = futures::stream::unfold(listener, |l| async move {
        Some((l.accept().await.map(|(s, _)| s), l))
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer::new(
                    counter,
                ),
            )
            .serve_with_incoming(incoming),
    );
    Ok(format!("http://{addr}"))
}

pub(crate) const SIGNERS: [&str; 4] = ["000000", "130000", "130100", "130102"];
pub(crate) const PROGRAMS: usize = 8;

pub(crate) struct Signer {
    pub org: String,
    key: SigningKey,
    cert: Hash32,
    pub tls: TlsConfig,
}

pub(crate) fn signer(data: &std::path::Path, org: &str) -> Result<Signer> {
    let dir = data.join(format!("member-{org}/client"));
    let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(dir.join("key.pem"))?)
        .map_err(|e| anyhow::anyhow!("client key of {org}: {e:?}"))?;
    let pem = std::fs::read(dir.join("cert.pem"))?;
    let der = fiscus_common::tls::parse_certs(&dir.join("cert.pem"), &pem)?;
    Ok(Signer {
        org: org.into(),
        key,
        cert: cert_id(&der[0]),
        tls: TlsConfig::in_dir(&dir),
    })
}

pub(crate) fn env(s: &Signer, nonce: u64, m: Method) -> Envelope {
    let payload = TxPayload {
        consortium_id: crate::devnet::CONSORTIUM.into(),
        creator_cert_id: s.cert.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(Call::Transfer(TransferCall { method: Some(m) })),
    };
    seal(&payload, &[(&s.key, s.cert)])
}

pub(crate) fn acct(org: &str, p: usize) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: format!("bench-{p}"),
    })
}

/// Heights committed (and final) at every member, with when each got there.
#[derive(Default)]
struct Progress {
    committed_at: BTreeMap<u64, Instant>,
    final_at: BTreeMap<u64, Instant>,
}

/// CPU seconds per kind of process (`orderer`, `ledger-store`, …, and
/// `load generator`, which in process also runs the whole devnet).
fn cpu_by_role(net: &crate::devnet::Devnet) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    out.insert("load generator".to_owned(), usage_of("self").cpu_s);
    for (name, pid) in net.child_pids() {
        let role = crate::measure::PROCESS_ROLES
            .into_iter()
            .find(|r| name.contains(r))
            .unwrap_or("other");
        *out.entry(role.to_owned()).or_insert(0.0) += usage_of(&pid.to_string()).cpu_s;
    }
    out
}

/// CPU seconds and peak RSS (MiB) of the devnet: this process (the load
/// generator, and the whole devnet when it runs in process) plus its children.
fn devnet_usage(net: &crate::devnet::Devnet) -> (f64, f64) {
    let me = usage_of("self");
    net.child_pids()
        .iter()
        .map(|(_, pid)| usage_of(&pid.to_string()))
        .fold((me.cpu_s, me.peak_rss_mib), |(cpu, rss), u| {
            (cpu + u.cpu_s, rss + u.peak_rss_mib)
        })
}

/// The signers' identities, a ledger client per member (with its node
/// certificate, to watch heights) and an exchange client per signer.
pub(crate) async fn connect(
    net: &crate::devnet::Devnet,
) -> Result<(
    Vec<Signer>,
    Vec<LedgerClient<tonic::transport::Channel>>,
    BTreeMap<String, ExchangeClient<tonic::transport::Channel>>,
)> {
    let data = &net.data;
    let signers: Vec<Signer> = SIGNERS
        .iter()
        .map(|o| signer(data, o))
        .collect::<Result<_>>()?;
    // Ledger clients (node certificate of each member) to watch heights.
    let mut ledgers = Vec::new();
    for m in &net.layout.members {
        ledgers.push(LedgerClient::new(ledger_channel(net, &m.code).await?));
    }
    let grpc_of = |org: &str| {
        net.layout
            .members
            .iter()
            .find(|m| m.code == org)
            .and_then(|m| m.grpc)
            .context("no gRPC address")
    };
    let mut clients = BTreeMap::new();
    for s in &signers {
        let ctx = TlsContext::load(&s.tls)?;
        let ch = connect_channel(
            &grpc_of(&s.org)?.to_string(),
            "127.0.0.1",
            ctx.client_config()?,
        )
        .await?;
        clients.insert(s.org.clone(), ExchangeClient::new(ch));
    }

    Ok((signers, ledgers, clients))
}

/// A channel to member `code`'s ledger-store, with that member's node
/// certificate (which also opens its member-internal `LedgerIngest`).
pub(crate) async fn ledger_channel(
    net: &crate::devnet::Devnet,
    code: &str,
) -> Result<tonic::transport::Channel> {
    let m = net
        .layout
        .members
        .iter()
        .find(|m| m.code == code)
        .context("no such member")?;
    let tls = TlsContext::load(&TlsConfig::in_dir(
        &net.data.join(format!("member-{code}/node-tls")),
    ))?;
    Ok(connect_channel(&m.ledger.to_string(), "127.0.0.1", tls.client_config()?).await?)
}

/// Funds every signer: programs appropriated at MOF and passed down to
/// each signer's account; returns once every member has committed them.
pub(crate) async fn fund(
    net: &crate::devnet::Devnet,
    signers: &[Signer],
    clients: &mut BTreeMap<String, ExchangeClient<tonic::transport::Channel>>,
    ledgers: &mut [LedgerClient<tonic::transport::Channel>],
) -> Result<()> {
    let mut nonce = 1_000_000u64;
    let mut next = || {
        nonce += 1;
        nonce
    };
    let big = i64::MAX / 64;
    let mut setup: Vec<Vec<(usize, Envelope)>> = vec![Vec::new(); 4];
    for p in 0..PROGRAMS {
        setup[0].push((
            0,
            env(
                &signers[0],
                next(),
                Method::Appropriate(AppropriateArgs {
                    account: acct("000000", p),
                    program: Some(Program {
                        id: format!("bench-{p}"),
                        name: format!("bench program {p}"),
                        kind: ProgramKind::General as i32,
                        functional_code: "2050202".into(),
                        fiscal_year: fiscus_gossip_gateway::metrics::fiscal_year_now(),
                        document: "bench".into(),
                        ..Program::default()
                    }),
                    amount_fen: big,
                    document: "bench".into(),
                }),
            ),
        ));
        for (i, (from, to)) in [
            ("000000", "130000"),
            ("130000", "130100"),
            ("130100", "130102"),
        ]
        .iter()
        .enumerate()
        {
            setup[i + 1].push((
                i,
                env(
                    &signers[i],
                    next(),
                    Method::Allocate(AllocateArgs {
                        from: acct(from, p),
                        to_org_code: (*to).into(),
                        amount_fen: big / (4 << i),
                        document: "bench".into(),
                        external_id: String::new(),
                    }),
                ),
            ));
        }
    }
    // Each answer means "ordered", so a later wave lands in a later block.
    for wave in setup {
        for (signer, e) in wave {
            let org = &signers[signer].org;
            let client = clients.get_mut(org).context("client")?;
            let id = tx_id(&e.payload);
            client
                .submit(e)
                .await
                .with_context(|| format!("setup tx {id}"))?;
        }
    }
    let last_block = net.orderer_height().await?;
    // Wait until every member has the funding.
    loop {
        let mut min = u64::MAX;
        for l in ledgers.iter_mut() {
            min = min.min(
                l.get_chain_info(ChainInfoRequest {})
                    .await?
                    .into_inner()
                    .height,
            );
        }
        if min >= last_block {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    Ok(())
}

pub(crate) async fn run(b: E2eBench) -> Result<()> {
    let json = b.json;
    let out = measure(b).await?;
    if json {
        println!("{out}");
    } else {
        let f = |k: &str| out[k].as_f64().unwrap_or(0.0);
        println!(
            "e2e bench: {:.0} tx/s committed at all 5 members ({} txs{}); submit→all committed p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms; submit→final p99 {:.0} ms; CPU {:.1} s ({:.0} µs per tx under load), peak RSS {:.0} MiB ({})",
            f("tx_per_s"),
            out["committed_at_all_members"],
            if out["hot_account"] == true {
                ", hot account"
            } else {
                ""
            },
            f("p50_ms"),
            f("p95_ms"),
            f("p99_ms"),
            f("final_p99_ms"),
            f("process_cpu_s"),
            f("cpu_us_per_tx"),
            f("process_peak_rss_mib"),
            out["processes"].as_str().unwrap_or_default(),
        );
        if out["analytics_lag_p99_ms"].is_number() {
            println!(
                "analytics lag behind commit (audit office, {} blocks): p50 {:.0} ms, p99 {:.0} ms",
                out["analytics_blocks"],
                f("analytics_lag_p50_ms"),
                f("analytics_lag_p99_ms")
            );
        }
    }
    Ok(())
}

/// Runs the bench and returns its report.
pub(crate) async fn measure(b: E2eBench) -> Result<serde_json::Value> {
    if b.orderers != 3 || b.members != 5 {
        bail!("the devnet has 3 orderers and 5 members; other shapes are not built yet");
    }
    let log = |m: String| {
        if !b.json {
            eprintln!("{m}");
        }
    };
    // Spans as every service makes them; exported only with --trace-export.
    let spans = SpanCounter::default();
    let _telemetry = if b.trace_export {
        if !(0.0..=1.0).contains(&b.trace_sampling) {
            bail!(
                "--trace-sampling {}: a ratio between 0 and 1",
                b.trace_sampling
            );
        }
        let endpoint = start_span_counter(spans.clone()).await?;
        fiscus_common::telemetry::init_with_options(
            "bench",
            false,
            "warn",
            fiscus_common::telemetry::TraceOptions {
                otlp_endpoint: Some(endpoint),
                sampling_ratio: b.trace_sampling,
            },
        )?
    } else {
        fiscus_common::telemetry::init_with_default("bench", false, "warn")?
    };
    let dir = tempfile::tempdir()?;
    let data = match &b.keep_data {
        Some(d) if d.exists() => bail!("--keep-data {}: it exists", d.display()),
        Some(d) => d.clone(),
        None => dir.path().join("devnet"),
    };
    let mode = if b.processes {
        log("bench e2e: starting the devnet (3 orderers, 5 members, every service its own process)…".into());
        // No nats-server: the in-process devnet it is compared with
        // publishes on its in-process bus.
        crate::devnet::Mode::Processes {
            log_level: "warn".into(),
            start_nats: false,
        }
    } else {
        log("bench e2e: starting the devnet (3 orderers, 5 members, one process)…".into());
        crate::devnet::Mode::InProcess {
            analytics: match (b.analytics, b.analytics_one) {
                (false, _) => crate::devnet::AnalyticsAt::Nobody,
                (true, false) => crate::devnet::AnalyticsAt::EveryMember,
                (true, true) => crate::devnet::AnalyticsAt::Member("991300".into()),
            },
        }
    };
    let net = crate::devnet::start(&data, 0, None, false, false, mode).await?;
    if let Err(e) = net.wait_leader(Duration::from_secs(60)).await {
        net.stop().await;
        return Err(e);
    }
    let (signers, mut ledgers, mut clients) = connect(&net).await?;
    fund(&net, &signers, &mut clients, &mut ledgers).await?;

    // The workload, signed before the clock starts.
    let per_stream = if b.rate > 0 {
        (b.rate as f64 * b.duration.as_secs_f64() / b.streams as f64).ceil() as usize
    } else {
        (12_000.0 * b.duration.as_secs_f64() / b.streams as f64).ceil() as usize
    };
    log(format!(
        "bench e2e: signing {} disbursements for {} streams{}…",
        per_stream * b.streams,
        b.streams,
        if b.hot_account { " (hot account)" } else { "" }
    ));
    let mut work: Vec<(String, Vec<Envelope>)> = Vec::new();
    for s in 0..b.streams {
        let who = if b.hot_account { 1 } else { s % SIGNERS.len() };
        let mut v = Vec::with_capacity(per_stream);
        for i in 0..per_stream {
            let p = if b.hot_account { 0 } else { (i + s) % PROGRAMS };
            v.push(env(
                &signers[who],
                (s as u64) << 40 | i as u64,
                Method::Disburse(DisburseArgs {
                    from: acct(&signers[who].org, p),
                    recipient: Some(Recipient {
                        id: Some(recipient::Id::UnifiedSocialCreditCode(
                            "12130102MB1234562B".into(),
                        )),
                        name: "bench school".into(),
                    }),
                    amount_fen: 1,
                    purpose: "bench".into(),
                    economic_code: "50502".into(),
                    external_id: String::new(),
                }),
            ));
        }
        work.push((signers[who].org.clone(), v));
    }

    // Heights at every member, watched while the load runs.
    let progress = Arc::new(Mutex::new(Progress::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let progress = progress.clone();
        let stop = stop.clone();
        let mut ledgers = ledgers.clone();
        tokio::spawn(async move {
            let (mut seen_c, mut seen_f) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (mut c, mut f) = (u64::MAX, u64::MAX);
                for l in &mut ledgers {
                    if let Ok(i) = l.get_chain_info(ChainInfoRequest {}).await {
                        let i = i.into_inner();
                        c = c.min(i.height);
                        f = f.min(i.final_height);
                    }
                }
                let now = Instant::now();
                {
                    let mut p = progress.lock().unwrap_or_else(|e| e.into_inner());
                    for h in seen_c + 1..=c.min(u64::MAX - 1) {
                        p.committed_at.insert(h, now);
                    }
                    for h in seen_f + 1..=f.min(u64::MAX - 1) {
                        p.final_at.insert(h, now);
                    }
                }
                seen_c = seen_c.max(if c == u64::MAX { 0 } else { c });
                seen_f = seen_f.max(if f == u64::MAX { 0 } else { f });
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // With --analytics: the audit office's ledger height and analytics height.
    let lag = Arc::new(Mutex::new(AnalyticsProgress::default()));
    let lag_watcher = if b.analytics {
        let audit = "991300";
        let i = net
            .layout
            .members
            .iter()
            .position(|m| m.code == audit)
            .context("no audit office member")?;
        let mut ledger = ledgers[i].clone();
        let addr = net
            .analytics_addr(audit)
            .context("the devnet runs no analytics")?;
        let key = crate::devnet::api_keys(&net.data)?
            .into_iter()
            .find(|(m, _)| m == audit)
            .map(|(_, k)| k)
            .context("no API key for the audit office")?;
        let (lag, stop) = (lag.clone(), stop.clone());
        Some(tokio::spawn(async move {
            let target = fiscus_exchange_adapter::http_client::Target::plain(addr);
            let (mut seen_c, mut seen_a) = (0u64, 0u64);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let c = ledger
                    .get_chain_info(ChainInfoRequest {})
                    .await
                    .map(|i| i.into_inner().height)
                    .unwrap_or(seen_c);
                let t_c = Instant::now();
                let a = match target
                    .json("GET", "/v1/analytics/status", &key, None, &[])
                    .await
                {
                    Ok((200, v)) => v["as_of"]["height"].as_u64().unwrap_or(seen_a),
                    _ => seen_a,
                };
                let t_a = Instant::now();
                {
                    let mut p = lag.lock().unwrap_or_else(|e| e.into_inner());
                    for h in seen_c + 1..=c {
                        p.committed_at.insert(h, t_c);
                    }
                    for h in seen_a + 1..=a {
                        p.applied_at.insert(h, t_a);
                    }
                }
                seen_c = seen_c.max(c);
                seen_a = seen_a.max(a);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }))
    } else {
        None
    };

    log(format!(
        "bench e2e: driving {} streams for {:?}{}…",
        b.streams,
        b.duration,
        if b.rate > 0 {
            format!(" at {} tx/s", b.rate)
        } else {
            " (as fast as acks allow)".into()
        }
    ));
    let (cpu_before, _) = devnet_usage(&net);
    let roles_before = cpu_by_role(&net);
    let start = Instant::now();
    let deadline = start + b.duration;
    let per_stream_rate = b.rate as f64 / b.streams as f64;
    let mut tasks = Vec::new();
    for (org, envs) in work {
        let mut client = clients.get(&org).context("client")?.clone();
        let window = b.window;
        tasks.push(tokio::spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel::<Envelope>(window);
            let mut results: Vec<(Instant, u64)> = Vec::new();
            let mut refused = 0usize;
            let resp = client
                .submit_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await?;
            let mut acks = resp.into_inner();
            let sem = Arc::new(tokio::sync::Semaphore::new(window));
            let sent_times = Arc::new(Mutex::new(BTreeMap::<Vec<u8>, Instant>::new()));
            let sender = {
                let sem = sem.clone();
                let sent_times = sent_times.clone();
                tokio::spawn(async move {
                    for (i, e) in envs.into_iter().enumerate() {
                        if Instant::now() >= deadline {
                            break;
                        }
                        if per_stream_rate > 0.0 {
                            let due = start + Duration::from_secs_f64(i as f64 / per_stream_rate);
                            tokio::time::sleep_until(due.into()).await;
                        }
                        let Ok(permit) = sem.clone().acquire_owned().await else {
                            break;
                        };
                        permit.forget();
                        sent_times
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(tx_id(&e.payload).to_vec(), Instant::now());
                        if tx.send(e).await.is_err() {
                            break;
                        }
                    }
                })
            };
            loop {
                let next = tokio::time::timeout(Duration::from_secs(30), acks.message()).await;
                let Ok(Ok(Some(r))) = next else { break };
                sem.add_permits(1);
                let t = sent_times
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&r.tx_id);
                if let Some(t) = t {
                    if r.error_code.is_empty() {
                        results.push((t, r.block_number));
                    } else {
                        refused += 1;
                    }
                }
                if sender.is_finished()
                    && sent_times
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .is_empty()
                {
                    break;
                }
            }
            Ok::<_, anyhow::Error>((results, refused))
        }));
    }
    let mut results = Vec::new();
    let mut refused = 0;
    for t in tasks {
        let (r, n) = t.await??;
        results.extend(r);
        refused += n;
    }
    // Wait for the last blocks to be committed and final everywhere.
    let last = results.iter().map(|r| r.1).max().unwrap_or(0);
    let settle = Instant::now() + Duration::from_secs(60);
    loop {
        let done = progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .final_at
            .contains_key(&last);
        if done || Instant::now() > settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // With analytics: until the audit office's analytics has the last block too.
    if b.analytics {
        let settle = Instant::now() + Duration::from_secs(60);
        while !lag
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .applied_at
            .contains_key(&last)
            && Instant::now() < settle
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = watcher.await;
    if let Some(w) = lag_watcher {
        let _ = w.await;
    }
    let (lag_ms, lag_blocks) = {
        let p = std::mem::take(&mut *lag.lock().unwrap_or_else(|e| e.into_inner()));
        let mut v: Vec<f64> = p
            .committed_at
            .iter()
            .filter_map(|(h, c)| {
                p.applied_at
                    .get(h)
                    .map(|a| a.saturating_duration_since(*c).as_secs_f64() * 1000.0)
            })
            .collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (v, n)
    };
    let (cpu, rss) = devnet_usage(&net);
    let processes = net.child_pids().len();
    let cpu_s_by_role: BTreeMap<String, f64> = cpu_by_role(&net)
        .into_iter()
        .map(|(role, cpu)| {
            let before = roles_before.get(&role).copied().unwrap_or(0.0);
            (role, ((cpu - before) * 10.0).round() / 10.0)
        })
        .collect();

    let p = std::mem::take(&mut *progress.lock().unwrap_or_else(|e| e.into_inner()));
    let mut commit_ms = Vec::new();
    let mut final_ms = Vec::new();
    let mut last_commit = start;
    for (t, h) in &results {
        if let Some(c) = p.committed_at.get(h) {
            commit_ms.push(c.duration_since(*t).as_secs_f64() * 1000.0);
            last_commit = last_commit.max(*c);
        }
        if let Some(f) = p.final_at.get(h) {
            final_ms.push(f.duration_since(*t).as_secs_f64() * 1000.0);
        }
    }
    commit_ms.sort_by(f64::total_cmp);
    final_ms.sort_by(f64::total_cmp);
    let span = last_commit.duration_since(start).as_secs_f64().max(1e-9);
    let tx_per_s = commit_ms.len() as f64 / span;
    // CPU of the whole devnet (all parts) from the first submit until the
    // last transaction was final, per transaction committed at all members.
    let cpu_us_per_tx = (cpu - cpu_before) * 1e6 / commit_ms.len().max(1) as f64;
    let out = serde_json::json!({
        "tx_per_s": (tx_per_s * 10.0).round() / 10.0,
        "p50_ms": (percentile(&commit_ms, 0.50) * 10.0).round() / 10.0,
        "p95_ms": (percentile(&commit_ms, 0.95) * 10.0).round() / 10.0,
        "p99_ms": (percentile(&commit_ms, 0.99) * 10.0).round() / 10.0,
        "final_p99_ms": (percentile(&final_ms, 0.99) * 10.0).round() / 10.0,
        "committed_at_all_members": commit_ms.len(),
        "final_at_all_members": final_ms.len(),
        "refused": refused,
        "rate": b.rate,
        "streams": b.streams,
        "hot_account": b.hot_account,
        "duration_s": b.duration.as_secs_f64(),
        "process_cpu_s": (cpu * 10.0).round() / 10.0,
        "cpu_us_per_tx": (cpu_us_per_tx * 10.0).round() / 10.0,
        "process_peak_rss_mib": rss.round(),
        "cpu_s_by_role_under_load": cpu_s_by_role,
        "trace_export": b.trace_export,
        "trace_sampling": if b.trace_export { Some(b.trace_sampling) } else { None },
        "spans_received": spans.0.load(std::sync::atomic::Ordering::Relaxed),
        "analytics": if !b.analytics { "none" } else if b.analytics_one { "the audit office only" } else { "every member" },
        "analytics_blocks": lag_blocks,
        "analytics_lag_p50_ms": if b.analytics { Some((percentile(&lag_ms, 0.5) * 10.0).round() / 10.0) } else { None },
        "analytics_lag_p99_ms": if b.analytics { Some((percentile(&lag_ms, 0.99) * 10.0).round() / 10.0) } else { None },
        "processes": if processes == 0 {
            "one (the whole devnet runs in this process)".to_owned()
        } else {
            format!("{processes} devnet processes and this load generator; CPU and peak RSS summed over all")
        },
    });
    net.stop().await;
    Ok(out)
}
