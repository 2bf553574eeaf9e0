//! `fiscus bench …`: whole-pipeline benchmarks. `bench ledger` and
//! `bench e2e` are always built; `bench orderer` and `bench network` build
//! local clusters with the orderer's and gateway's `testkit` modules, so they
//! need `cargo build --release -p fiscus --features bench` (the production
//! binary carries no test scaffolding).

use crate::measure::parse_duration;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCmd {
    /// Ordered tx/s and submit→committed latency of a local orderer cluster.
    Orderer(OrdererBench),
    /// Validate + execute + commit throughput of one member's ledger (fsync on).
    Ledger(crate::bench_ledger::LedgerBench),
    /// Dissemination, finality and catch-up between members (gossip-gateway).
    Network(NetworkBench),
    /// The whole devnet through the exchange-adapters' gRPC API: tx/s committed at
    /// every member, submit → committed and → final latency, CPU and peak RSS.
    E2e(crate::bench_e2e::E2eBench),
    /// Analytics: rebuild tx/s from encoded blocks into SQLite, and the
    /// province overview's query time.
    Analytics(crate::bench_analytics::AnalyticsBench),
}

#[derive(Debug, Args)]
pub(crate) struct OrdererBench {
    /// Cluster size: 3 or 5.
    #[arg(long, default_value_t = 3)]
    pub(crate) nodes: usize,
    /// How long to drive load, e.g. 30s or 2m.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Concurrent Broadcast streams.
    #[arg(long, default_value_t = 8)]
    pub(crate) streams: usize,
    /// Offered load in tx/s over all streams; 0 means as fast as acks allow.
    #[arg(long, default_value_t = 0)]
    pub(crate) rate: u64,
    /// Unacknowledged envelopes allowed per stream.
    #[arg(long, default_value_t = 4000)]
    pub(crate) window: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) async fn run(cmd: BenchCmd) -> Result<()> {
    match cmd {
        BenchCmd::Orderer(b) => orderer(b).await,
        BenchCmd::Ledger(b) => crate::bench_ledger::run(b).await,
        BenchCmd::Network(b) => network(b).await,
        BenchCmd::E2e(b) => crate::bench_e2e::run(b).await,
        BenchCmd::Analytics(b) => crate::bench_analytics::run(b).await,
    }
}

#[derive(Debug, Args)]
pub(crate) struct NetworkBench {
    /// Members, each a ledger-store and a gossip-gateway (2 to 8); the last one
    /// is offline during the load and then catches up.
    #[arg(long, default_value_t = 4)]
    pub(crate) members: usize,
    /// Orderer nodes: 1, 3 or 5.
    #[arg(long, default_value_t = 3)]
    pub(crate) orderers: usize,
    /// How long to drive load, e.g. 30s or 2m.
    #[arg(long, default_value = "30s", value_parser = crate::measure::parse_duration)]
    pub(crate) duration: Duration,
    /// Offered load in tx/s.
    #[arg(long, default_value_t = 2000)]
    pub(crate) rate: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(feature = "bench")]
async fn orderer(b: OrdererBench) -> Result<()> {
    crate::bench_orderer::run(b).await
}

#[cfg(feature = "bench")]
async fn network(b: NetworkBench) -> Result<()> {
    crate::bench_network::run(b).await
}

#[cfg(not(feature = "bench"))]
const WITHOUT_BENCH: &str = "this binary was built without the `bench` feature: \
    build one with `cargo build --release -p fiscus --features bench`";

#[cfg(not(feature = "bench"))]
async fn orderer(_: OrdererBench) -> Result<()> {
    anyhow::bail!("bench orderer: {WITHOUT_BENCH}")
}

#[cfg(not(feature = "bench"))]
async fn network(_: NetworkBench) -> Result<()> {
    anyhow::bail!("bench network: {WITHOUT_BENCH}")
}
