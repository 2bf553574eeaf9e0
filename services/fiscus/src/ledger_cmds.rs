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
    #[command(flatten)]
    check: crate::check_config::CheckArgs,
}

pub(crate) async fn ledger_store(cmd: ServiceCmd) -> Result<()> {
    cmd.check
        .run_if_asked::<fiscus_ledger_store::server::Config>();
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
    cmd.check
        .run_if_asked::<fiscus_contract_executor::server::Config>();
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
    cmd.check.run_if_asked::<fiscus_gossip_gateway::Config>();
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
    cmd.check.run_if_asked::<fiscus_exchange_adapter::Config>();
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
pub(crate) struct AnalyticsCmd {
    #[command(subcommand)]
    action: Option<AnalyticsAction>,
    #[command(flatten)]
    service: ServiceCmd,
}

#[derive(Debug, clap::Subcommand)]
enum AnalyticsAction {
    /// Empty the analytics store and apply the chain again from block 1 up to
    /// the ledger's height now, printing progress; then exit. A running
    /// analytics service on the same store follows on from there.
    Rebuild {
        /// Config file (TOML), as for the service.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

pub(crate) async fn analytics(cmd: AnalyticsCmd) -> Result<()> {
    use fiscus_analytics::service;
    if let Some(AnalyticsAction::Rebuild { config }) = cmd.action {
        let config: service::Config =
            fiscus_common::config::load(config.as_deref()).context("loading analytics config")?;
        let started = std::time::Instant::now();
        let mut last = std::time::Instant::now();
        let pos = service::rebuild(&config, |p, head| {
            let done = p.next_height.saturating_sub(1);
            if done == head || last.elapsed() >= std::time::Duration::from_secs(2) || done == 0 {
                eprintln!(
                    "analytics rebuild: block {done} of {head}, {} movements, {:.1} s",
                    p.movements,
                    started.elapsed().as_secs_f64()
                );
                last = std::time::Instant::now();
            }
        })
        .await?;
        println!(
            "analytics rebuilt: {} blocks, {} movements in {:.1} s into {}",
            pos.next_height.saturating_sub(1),
            pos.movements,
            started.elapsed().as_secs_f64(),
            config.db_path().display()
        );
        return Ok(());
    }
    cmd.service.check.run_if_asked::<service::Config>();
    let config: service::Config = fiscus_common::config::load(cmd.service.config.as_deref())
        .context("loading analytics config")?;
    let _telemetry = fiscus_common::telemetry::init("analytics", config.json_logs)?;
    let running = service::start(config).await?;
    println!(
        "analytics ready api=http://{} http={} (OpenAPI at /openapi.json)",
        running.addr, running.http_addr
    );
    fiscus_common::shutdown_signal().await;
    running.stop().await;
    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct VerifyCmd {
    /// A ledger-store's data directory (it holds `ledger.fjall`). It is only
    /// read: the check runs on a private copy, so nothing in it changes.
    #[arg(long)]
    data_dir: PathBuf,
    /// The height the chain must reach at least (e.g. another member's head):
    /// a store whose chain ends lower fails, naming the missing blocks.
    #[arg(long)]
    expect_height: Option<u64>,
    /// Where the private copy is made (default: the system's temporary
    /// directory). It needs as much free space as the store takes.
    #[arg(long)]
    scratch_dir: Option<PathBuf>,
    /// Print one JSON object instead of a sentence:
    /// `{"ok": true, "height": N}` or `{"ok": false, "first_bad_height": N|null, "problem": "…"}`.
    #[arg(long)]
    json: bool,
}

/// A failure of `fiscus verify`: at a height, or before any block was checked.
struct Failed {
    height: Option<u64>,
    problem: String,
}

impl Failed {
    fn before(problem: impl Into<String>) -> Self {
        Self {
            height: None,
            problem: problem.into(),
        }
    }
}

/// Copies a directory tree file by file (a forensic copy: fjall's recovery
/// on open may cut a torn journal tail and delete obsolete files, so the
/// original is never opened).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(to)?;
    let mut bytes = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            bytes += copy_tree(&entry.path(), &target)?;
        } else {
            bytes += std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(bytes)
}

async fn verify_copy(cmd: &VerifyCmd) -> Result<u64, Failed> {
    let path = cmd.data_dir.join("ledger.fjall");
    if !path.is_dir() {
        return Err(Failed::before(format!(
            "{} does not exist: is this a ledger-store data directory?",
            path.display()
        )));
    }
    let scratch = match &cmd.scratch_dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .map_err(|e| Failed::before(format!("making a scratch directory: {e}")))?;
    let copy = scratch.path().join("ledger.fjall");
    let bytes = copy_tree(&path, &copy).map_err(|e| {
        Failed::before(format!(
            "copying {} failed ({e}); if its ledger-store is running, the store changed while it was copied: stop the member, or verify a copy taken from a snapshot",
            path.display()
        ))
    })?;
    if !cmd.json {
        eprintln!(
            "verifying a private copy of {} ({} MiB; the original is not opened)…",
            path.display(),
            bytes >> 20
        );
    }
    let store = FjallStore::open(&copy, StoreLimits::default())
        .map_err(|e| Failed::before(format!("opening the copy of {}: {e}", path.display())))?;
    let cfg = offline_config(&store)
        .await
        .map_err(|e| Failed::before(format!("reading genesis and certificates: {e}")))?;
    let height = verify_chain(&store, &cfg).await.map_err(|f| Failed {
        height: Some(f.height),
        problem: f.problem,
    })?;
    match cmd.expect_height {
        Some(want) if height < want => Err(Failed {
            height: Some(height + 1),
            problem: format!(
                "the stored chain ends at height {height}, below the expected {want}: blocks {}..={want} are missing (a cut-off tail)",
                height + 1
            ),
        }),
        _ => Ok(height),
    }
}

/// `fiscus verify` of a ledger-store's data directory, for another command
/// (`fiscus chaos`): the height verified, or the problem in words.
pub(crate) async fn verify_store(
    data_dir: &std::path::Path,
    expect_height: Option<u64>,
) -> Result<u64, String> {
    let cmd = VerifyCmd {
        data_dir: data_dir.to_owned(),
        expect_height,
        scratch_dir: None,
        json: true,
    };
    verify_copy(&cmd).await.map_err(|f| match f.height {
        Some(h) => format!("at height {h}: {}", f.problem),
        None => f.problem,
    })
}

/// Re-checks a member's whole stored chain offline. Ok(true) when it is
/// sound; every failure, before or during the replay, is Ok(false) (exit 1),
/// printed as a sentence or as the documented JSON.
pub(crate) async fn verify(cmd: VerifyCmd) -> Result<bool> {
    let outcome = verify_copy(&cmd).await;
    match (&outcome, cmd.json) {
        (Ok(h), true) => println!("{}", serde_json::json!({"ok": true, "height": h})),
        (Ok(h), false) => println!(
            "ok: blocks 1..={h} verified (links, signatures, tx roots, receipts roots, state hashes)"
        ),
        (Err(f), true) => println!(
            "{}",
            serde_json::json!({"ok": false, "first_bad_height": f.height, "problem": f.problem})
        ),
        (
            Err(Failed {
                height: Some(h),
                problem,
            }),
            false,
        ) => {
            println!("FAILED at height {h}: {problem}")
        }
        (
            Err(Failed {
                height: None,
                problem,
            }),
            false,
        ) => println!("FAILED: {problem}"),
    }
    Ok(outcome.is_ok())
}
