//! `fiscus ledger-store`, `fiscus contract-executor` and `fiscus verify`.

use anyhow::{Context, Result};
use clap::Args;
use fiscus_common::store::{StoreLimits, fjall::FjallStore};
use fiscus_ledger_store::verify::{offline_config, verify_chain};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct ServiceCmd {
    /// Config file (TOML); `FISCUS_<SERVICE>__*` variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

pub(crate) async fn ledger_store(cmd: ServiceCmd) -> Result<()> {
    let config: fiscus_ledger_store::server::Config =
        fiscus_common::config::load(cmd.config.as_deref())
            .context("loading ledger-store config")?;
    let _telemetry = fiscus_common::telemetry::init("ledger-store", config.json_logs)?;
    let running = fiscus_ledger_store::server::start(config).await?;
    let head = running.ledger.head().await?;
    println!(
        "ledger-store ready grpc={} http={} height={}",
        running.addr, running.http_addr, head.height
    );
    fiscus_common::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

pub(crate) async fn contract_executor(cmd: ServiceCmd) -> Result<()> {
    let config: fiscus_contract_executor::server::Config =
        fiscus_common::config::load(cmd.config.as_deref())
            .context("loading contract-executor config")?;
    let _telemetry = fiscus_common::telemetry::init("contract-executor", config.json_logs)?;
    let running = fiscus_contract_executor::server::start(config).await?;
    println!(
        "contract-executor ready grpc={} http={}",
        running.addr, running.http_addr
    );
    fiscus_common::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

pub(crate) async fn gossip_gateway(cmd: ServiceCmd) -> Result<()> {
    let config: fiscus_gossip_gateway::Config = fiscus_common::config::load(cmd.config.as_deref())
        .context("loading gossip-gateway config")?;
    let _telemetry = fiscus_common::telemetry::init("gossip-gateway", config.json_logs)?;
    let running = fiscus_gossip_gateway::start(config).await?;
    println!(
        "gossip-gateway ready grpc={} http={} height={}",
        running.addr,
        running.http_addr,
        running.node.height()
    );
    fiscus_common::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

pub(crate) async fn exchange_adapter(cmd: ServiceCmd) -> Result<()> {
    let config: fiscus_exchange_adapter::Config =
        fiscus_common::config::load(cmd.config.as_deref())
            .context("loading exchange-adapter config")?;
    let _telemetry = fiscus_common::telemetry::init("exchange-adapter", config.json_logs)?;
    let running = fiscus_exchange_adapter::start(config).await?;
    println!(
        "exchange-adapter ready api=http://{} http={} (OpenAPI at /openapi.json, API page at /docs)",
        running.addr, running.http_addr
    );
    fiscus_common::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct VerifyCmd {
    /// A ledger-store's data directory (it holds `ledger.fjall`).
    #[arg(long)]
    data_dir: PathBuf,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// Re-checks a member's whole stored chain offline. Ok(true) when it is sound.
pub(crate) async fn verify(cmd: VerifyCmd) -> Result<bool> {
    let path = cmd.data_dir.join("ledger.fjall");
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist: is this a ledger-store data directory?",
            path.display()
        );
    }
    let store = FjallStore::open(&path, StoreLimits::default())
        .with_context(|| format!("opening {}", path.display()))?;
    let cfg = offline_config(&store)
        .await
        .context("reading genesis and certificates")?;
    if !cmd.json {
        eprintln!(
            "verifying {} ({} signer certificates) by replay from genesis…",
            path.display(),
            cfg.certs.len()
        );
    }
    let outcome = verify_chain(&store, &cfg).await;
    match (&outcome, cmd.json) {
        (Ok(h), true) => println!("{}", serde_json::json!({"ok": true, "height": h})),
        (Ok(h), false) => println!(
            "ok: blocks 1..={h} verified (links, signatures, tx roots, receipts roots, state hashes)"
        ),
        (Err(f), true) => println!(
            "{}",
            serde_json::json!({"ok": false, "first_bad_height": f.height, "problem": f.problem})
        ),
        (Err(f), false) => println!("FAILED at height {}: {}", f.height, f.problem),
    }
    Ok(outcome.is_ok())
}
