//! `fiscus`: one binary, one subcommand per role.
//!
//! Not built yet: the analytics service (统计分析).
#![forbid(unsafe_code)]

use anyhow::{Context, Result};

/// glibc's allocator slows down as a long-running ledger's heap fragments
/// (measured: block execution time grew 2.5× over 400 blocks); mimalloc
/// stays flat. See ADR 0005. It is built without transparent huge pages
/// (`no_thp`): with them, memory it gives back and takes again is faulted in
/// 2 MiB at a time and zeroed whole (measured: ~4% of `fiscus bench e2e`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand};
use fiscus_proto::{DecodeLimits, block::CheckedBlock, envelope::CheckedTx, pb};
use prost::Message;
use std::path::PathBuf;

mod bench;
mod bench_analytics;
mod bench_e2e;
mod bench_ledger;
#[cfg(feature = "bench")]
mod bench_network;
#[cfg(feature = "bench")]
mod bench_orderer;
mod chaos;
mod check_config;
mod cli;
mod demo;
mod devnet;
mod identity;
mod ledger_cmds;
mod measure;
mod member;
mod orderer_admin;
mod receipt;

#[derive(Debug, Parser)]
#[command(
    name = "fiscus",
    version,
    about = "Fiscus: a consortium ledger for fiscal transfer payments (财政转移支付)"
)]
struct Cli {
    /// Threads of this process: its async workers (tokio) and its CPU pool
    /// (rayon), each this many. Default: one per core the process may use.
    /// `fiscus devnet --processes` gives each of its processes 1.
    #[arg(
        long,
        global = true,
        env = WORKER_THREADS_ENV,
        value_parser = clap::value_parser!(u16).range(1..=1024)
    )]
    worker_threads: Option<u16>,
    #[command(subcommand)]
    command: Command,
}

/// The environment variable behind `--worker-threads`.
pub(crate) const WORKER_THREADS_ENV: &str = "FISCUS_WORKER_THREADS";

/// Set by `fiscus devnet --processes` for its children: the devnet's pid. A
/// child whose parent is no longer that process (the devnet was killed, and
/// could not stop it) stops itself, as on SIGTERM, so that a killed devnet
/// does not leave two dozen processes running.
pub(crate) const EXIT_WITH_PARENT_ENV: &str = "FISCUS_EXIT_WITH_PARENT";

/// Watches for the parent named by [`EXIT_WITH_PARENT_ENV`], if any, once a
/// second; when it is gone, sends this process SIGTERM (its graceful stop),
/// and exits after 15 s if that did not stop it.
fn exit_with_parent() {
    let Some(parent) = std::env::var(EXIT_WITH_PARENT_ENV)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
    else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            if std::os::unix::process::parent_id() != parent {
                break;
            }
        }
        tracing::warn!(
            parent,
            "the devnet that started this process is gone; stopping"
        );
        eprintln!("fiscus: the devnet that started this process (pid {parent}) is gone; stopping");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGTERM);
        tokio::time::sleep(std::time::Duration::from_secs(15)).await;
        std::process::exit(1);
    });
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Decode and check a wire object (envelope or block) from a file, and print it as JSON.
    Inspect {
        /// What the file holds.
        #[arg(value_enum)]
        kind: Kind,
        /// The encoded protobuf bytes; `-` reads standard input.
        file: PathBuf,
    },
    /// Print the protobuf packages this build speaks.
    Protocols,
    /// Run the consortium CA, or `init` it.
    IdentityCa(identity::IdentityCaCmd),
    /// Get a certificate from the identity-ca (new key + CSR).
    Enroll(identity::EnrollCmd),
    /// Renew a certificate (and its ECDSA one) as its holder, before it expires.
    Renew(identity::RenewCmd),
    /// Sign a file with an Ed25519 key.
    Sign(identity::SignCmd),
    /// Ask the identity-ca whether a signature and its certificate chain are valid.
    VerifySignature(identity::VerifyCmd),
    /// Re-check a member's stored chain offline: links, signatures, Merkle roots
    /// and every state hash by replay from genesis. Exit 1 names the first bad height.
    Verify(ledger_cmds::VerifyCmd),
    /// Run a member's ledger-store (validate, execute, commit; query API).
    LedgerStore(ledger_cmds::ServiceCmd),
    /// Run a member's stateless contract-executor (ExecuteBlock over gRPC).
    ContractExecutor(ledger_cmds::ServiceCmd),
    /// Run a member's gossip-gateway (blocks and attestations between members).
    GossipGateway(ledger_cmds::ServiceCmd),
    /// Run a member's exchange-adapter (the REST API for external systems).
    ExchangeAdapter(ledger_cmds::ServiceCmd),
    /// Run a member's analytics (统计分析): follow its ledger-store into an
    /// SQLite store and serve indicators; `rebuild` applies the chain again.
    Analytics(ledger_cmds::AnalyticsCmd),
    /// Run all of one member's services in one process, each on its own
    /// endpoint: ledger-store, contract-executor, gossip-gateway, exchange-adapter.
    Member(member::MemberCmd),
    /// API keys for the exchange-adapter, and what a certificate says.
    #[command(subcommand)]
    Keys(cli::KeysCmd),
    /// Chain head and finality at a member's exchange-adapter.
    Status(cli::StatusCmd),
    /// Read accounts, transactions, blocks or programs through the API.
    Query(cli::QueryCmd),
    /// A transaction's lineage up to the central appropriation.
    Trace(cli::TraceCmd),
    /// Submit one operation (custodial signing by the member for the API client).
    Submit(cli::SubmitCmd),
    /// Bulk-import allocations and disbursements (CSV or JSON): validated first, then
    /// submitted with progress; re-running submits no duplicates. Exit 1 on bad rows.
    Import(cli::ImportCmd),
    /// Export accounts, allocations or disbursements as CSV or JSON.
    Export(cli::ExportCmd),
    /// Membership and configuration changes by member vote: propose, vote,
    /// list proposals, show the configuration.
    Governance(cli::GovernanceCmd),
    /// Verify a receipt proof offline against the consortium root (no network).
    /// Exit 1 when it does not verify.
    VerifyReceipt(receipt::VerifyReceiptCmd),
    /// Run a whole consortium on this machine: identity-ca, 3 orderers and five
    /// members, each with its ledger-store, gossip-gateway and exchange-adapter
    /// (in this process, or with --processes each service its own process;
    /// `fiscus devnet status` lists those).
    Devnet(devnet::DevnetCmd),
    /// Revoke a certificate at the identity-ca.
    Revoke(identity::RevokeCmd),
    /// Run one orderer node.
    Orderer {
        /// Config file (TOML); `FISCUS_ORDERER__*` variables override it.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        check: check_config::CheckArgs,
    },
    /// Change orderer cluster membership (admin certificate, sent to the leader).
    OrdererAdmin(orderer_admin::OrdererAdminCmd),
    /// Measure a component on this machine.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// A fault campaign on the process devnet: load, a fault every few
    /// seconds (kills, pauses, NATS restarts, cut or slowed links, a full
    /// disk under a ledger-store), a heal, and checks that no
    /// acknowledged transaction was lost or duplicated and that every member
    /// agrees; one JSON report, exit 1 when a property fails.
    Chaos(chaos::ChaosCmd),
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Kind {
    Envelope,
    Block,
}

fn read_input(file: &PathBuf) -> Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .context("reading standard input")?;
        Ok(buf)
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))
    }
}

fn inspect(kind: Kind, file: &PathBuf) -> Result<()> {
    let bytes = read_input(file)?;
    let limits = DecodeLimits::default();
    let summary = match kind {
        Kind::Envelope => {
            let tx = CheckedTx::decode(&bytes, &limits).context("not a valid envelope")?;
            serde_json::json!({
                "tx_id": tx.tx_id.to_hex(),
                "consortium_id": tx.payload.consortium_id,
                "creator_cert_id": tx.creator_cert_id.to_hex(),
                "nonce": tx.payload.nonce,
                "call": format!("{:?}", tx.payload.call),
                "signatures": tx.signatures.iter().map(|s| s.cert_id.to_hex()).collect::<Vec<_>>(),
            })
        }
        Kind::Block => {
            let b = CheckedBlock::decode(&bytes, &limits).context("not a valid block")?;
            serde_json::json!({
                "number": b.number,
                "hash": b.hash.to_hex(),
                "prev_hash": b.prev_hash.to_hex(),
                "tx_root": b.tx_root.to_hex(),
                "timestamp_ms": b.timestamp_ms,
                "orderer_id": b.orderer_id,
                "txs": b.txs.iter().map(|t| t.tx_id.to_hex()).collect::<Vec<_>>(),
            })
        }
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}

fn protocols() {
    // Touch one type per package so this list cannot drift from what is compiled in.
    let packages = [
        (
            "fiscus.types.v1",
            pb::types::Envelope::default().encoded_len(),
        ),
        (
            "fiscus.transfer.v1",
            pb::transfer::TransferCall::default().encoded_len(),
        ),
        (
            "fiscus.governance.v1",
            pb::governance::GovernanceCall::default().encoded_len(),
        ),
        (
            "fiscus.orderer.v1",
            pb::orderer::DeliverRequest::default().encoded_len(),
        ),
        (
            "fiscus.ledger.v1",
            pb::ledger::ChainInfo::default().encoded_len(),
        ),
        ("fiscus.executor.v1", 0),
        (
            "fiscus.identity.v1",
            pb::identity::EnrollRequest::default().encoded_len(),
        ),
        (
            "fiscus.gossip.v1",
            pb::gossip::PullRequest::default().encoded_len(),
        ),
        (
            "fiscus.state.v1",
            pb::state::Account::default().encoded_len(),
        ),
        (
            "fiscus.exchange.v1",
            pb::exchange::TraceRequest::default().encoded_len(),
        ),
        (
            "fiscus.events.v1",
            pb::events::BlockCommitted::default().encoded_len(),
        ),
    ];
    for (name, _) in packages {
        println!("{name}");
    }
}

fn main() {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if let Some(n) = cli.worker_threads {
        builder.worker_threads(n.into());
        // The CPU pool (fiscus_common::cpu) is rayon's global one.
        if let Err(e) = rayon::ThreadPoolBuilder::new()
            .num_threads(n.into())
            .build_global()
        {
            eprintln!("error: sizing the CPU pool: {e}");
            std::process::exit(2);
        }
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = runtime.block_on(async {
        exit_with_parent();
        dispatch(cli).await
    }) {
        // One clear line, never a backtrace: this is what an operator reads.
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Inspect { kind, file } => inspect(kind, &file),
        Command::Protocols => {
            protocols();
            Ok(())
        }
        Command::IdentityCa(cmd) => identity::identity_ca(cmd).await,
        Command::Enroll(cmd) => identity::enroll(cmd).await,
        Command::Renew(cmd) => identity::renew(cmd).await,
        Command::Sign(cmd) => identity::sign(cmd),
        Command::VerifySignature(cmd) => match identity::verify(cmd).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Verify(cmd) => match ledger_cmds::verify(cmd).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::LedgerStore(cmd) => ledger_cmds::ledger_store(cmd).await,
        Command::ContractExecutor(cmd) => ledger_cmds::contract_executor(cmd).await,
        Command::GossipGateway(cmd) => ledger_cmds::gossip_gateway(cmd).await,
        Command::ExchangeAdapter(cmd) => ledger_cmds::exchange_adapter(cmd).await,
        Command::Analytics(cmd) => ledger_cmds::analytics(cmd).await,
        Command::Member(cmd) => member::run(cmd).await,
        Command::Devnet(cmd) => devnet::run(cmd, demo::run).await,
        Command::Keys(cmd) => cli::keys(cmd),
        Command::Status(cmd) => cli::status(cmd).await,
        Command::Query(cmd) => cli::query(cmd).await,
        Command::Trace(cmd) => cli::trace(cmd).await,
        Command::Submit(cmd) => cli::submit(cmd).await,
        Command::Import(cmd) => match cli::import(cmd).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Export(cmd) => cli::export(cmd).await,
        Command::Governance(cmd) => cli::governance(cmd).await,
        Command::VerifyReceipt(cmd) => match receipt::run(cmd) {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
        Command::Revoke(cmd) => identity::revoke(cmd).await,
        Command::Orderer { config, check } => {
            check.run_if_asked::<fiscus_orderer::Config>();
            let config: fiscus_orderer::Config =
                fiscus_common::config::load(config.as_deref()).context("loading orderer config")?;
            let _telemetry = fiscus_common::telemetry::init_with_attributes(
                "orderer",
                config.json_logs,
                &[("fiscus.orderer", config.node_id.to_string())],
            )?;
            let running = fiscus_orderer::start(config).await?;
            println!(
                "orderer ready client={} raft={} http={}",
                running.client_addr, running.raft_addr, running.http_addr
            );
            fiscus_common::shutdown_signal().await;
            running.stop().await;
            Ok(())
        }
        Command::OrdererAdmin(cmd) => orderer_admin::run(cmd).await,
        Command::Bench(cmd) => bench::run(cmd).await,
        Command::Chaos(cmd) => match chaos::run(cmd).await {
            Ok(true) => Ok(()),
            Ok(false) => std::process::exit(1),
            Err(e) => Err(e),
        },
    }
}
