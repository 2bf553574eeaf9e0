//! `fiscus-operator`: `run` (the controller), `crd` (print the CRDs),
//! `render` (print the objects a FinanceMember becomes, without a cluster).
#![forbid(unsafe_code)]

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use fiscus_operator::crd::{Consortium, FinanceMember};
use fiscus_operator::reconcile::{self, Context, MANAGER, Metrics};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use kube::runtime::{Controller, events::Recorder, events::Reporter, watcher};
use kube::{Api, Client};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "fiscus-operator",
    version,
    about = "Provisions one Fiscus member per finance department (FinanceMember, Consortium)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the controller (in-cluster config, or the kubeconfig).
    Run {
        /// `/metrics`, `/healthz`, `/readyz`.
        #[arg(
            long,
            default_value = "0.0.0.0:9490",
            env = "FISCUS_OPERATOR_HTTP_LISTEN"
        )]
        http_listen: SocketAddr,
        /// The namespace of the leader-election Lease (default: the pod's).
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        lease_namespace: String,
        /// This replica's identity in the Lease.
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        #[arg(long, env = "FISCUS_OPERATOR_JSON_LOGS")]
        json_logs: bool,
    },
    /// Print the CustomResourceDefinitions (YAML), as `k8s/crds/` holds them.
    Crd,
    /// Print the objects a FinanceMember becomes (YAML), from files.
    Render {
        /// A FinanceMember (YAML or JSON).
        #[arg(long)]
        member: PathBuf,
        /// Its Consortium (YAML or JSON).
        #[arg(long)]
        consortium: PathBuf,
        #[arg(long, default_value = "default")]
        namespace: String,
        /// Include the ServiceMonitor (as when the Prometheus Operator's CRD exists).
        #[arg(long)]
        service_monitor: bool,
        /// The operator's namespace, admitted to the ledger-store's gRPC port.
        #[arg(long)]
        operator_namespace: Option<String>,
    },
}

#[tokio::main]
async fn main() {
    if let Err(e) = dispatch(Cli::parse()).await {
        eprintln!("error: {e:#}");
        std::process::exit(2);
    }
}

fn read<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

async fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Crd => {
            print!("{}", fiscus_operator::crds_yaml()?);
            Ok(())
        }
        Command::Render {
            member,
            consortium,
            namespace,
            service_monitor,
            operator_namespace,
        } => {
            let member: FinanceMember = read(&member)?;
            let consortium: Consortium = read(&consortium)?;
            let inputs = fiscus_operator::resources::Inputs {
                member: &member,
                consortium: &consortium,
                namespace,
                tls_checksum: String::new(),
                owner: None,
                service_monitor,
                operator_namespace,
            };
            for o in inputs.objects()? {
                println!("---");
                print!("{}", serde_saphyr::to_string(&o)?);
            }
            Ok(())
        }
        Command::Run {
            http_listen,
            lease_namespace,
            identity,
            json_logs,
        } => run(http_listen, lease_namespace, identity, json_logs).await,
    }
}

async fn run(
    http_listen: SocketAddr,
    lease_namespace: String,
    identity: Option<String>,
    json_logs: bool,
) -> Result<()> {
    let _telemetry = fiscus_common::telemetry::init("operator", json_logs)?;
    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry)?;
    let is_leader = prometheus::IntGauge::new(
        "fiscus_operator_leader",
        "1 while this replica holds the Lease and reconciles",
    )?;
    registry.register(Box::new(is_leader.clone()))?;
    // Ready once it can reach the API server, leader or standby: a standby
    // that never turned Ready would block rolling updates and node drains.
    let readiness = fiscus_common::ops_server::Readiness::default();
    readiness.set("api", Err("not connected yet".into()));
    let ops = fiscus_common::ops_server::OpsServer::start(http_listen, registry, readiness.clone())
        .context("starting the ops endpoint")?;
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;
    let identity = identity.unwrap_or_else(|| format!("{MANAGER}-{}", std::process::id()));

    // Only the Lease holder reconciles: two replicas never act at once.
    let lease = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), "fiscus-operator")
        .with_namespace(lease_namespace.clone())
        .with_identity(identity.clone())
        .with_duration(15)
        .with_grace(5)
        .build()
        .await
        .context("leader election")?;
    let (mut leader, lease_task) = lease.watch().await;
    tracing::info!(%identity, "waiting to lead");
    while !*leader.borrow_and_update() {
        tokio::select! {
            r = leader.changed() => r.context("leader election ended")?,
            () = fiscus_common::shutdown_signal() => return Ok(()),
        }
    }
    is_leader.set(1);
    tracing::info!(%identity, "leading: reconciling FinanceMembers");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: MANAGER.into(),
            instance: Some(identity),
        },
    );
    let mut ctx = Context::new(client.clone(), recorder, metrics);
    ctx.operator_namespace = Some(lease_namespace.clone());
    let ctx = Arc::new(ctx);
    // Members get a ServiceMonitor on their next pass once the Prometheus
    // Operator's CRD exists (asked at start and every 5 minutes); when the
    // CRD goes, the API server deletes the ServiceMonitors with it.
    ctx.set_service_monitors(reconcile::service_monitor_crd_exists(&client).await);
    tracing::info!(exists = ctx.service_monitors(), "the ServiceMonitor CRD");
    let watch_monitors = {
        let (ctx, client) = (ctx.clone(), client.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(300)).await;
                let exists = reconcile::service_monitor_crd_exists(&client).await;
                if exists != ctx.service_monitors() {
                    tracing::info!(exists, "the ServiceMonitor CRD");
                }
                ctx.set_service_monitors(exists);
            }
        })
    };
    let wc = watcher::Config::default();
    let controller = Controller::new(Api::<FinanceMember>::all(client.clone()), wc.clone())
        .owns(Api::<StatefulSet>::all(client.clone()), wc.clone())
        .owns(Api::<Deployment>::all(client.clone()), wc.clone())
        .owns(Api::<Service>::all(client.clone()), wc.clone())
        .owns(Api::<ConfigMap>::all(client.clone()), wc.clone())
        .owns(Api::<Secret>::all(client.clone()), wc)
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "controller");
            }
        });
    tokio::select! {
        () = controller => {}
        () = fiscus_common::shutdown_signal() => {}
        r = leader.changed() => {
            // Lost the Lease: stop at once; Kubernetes restarts the pod, which waits to lead again.
            let _ = r;
            tracing::warn!("lost the leader Lease; exiting");
            ops.stop().await;
            std::process::exit(1);
        }
    }
    watch_monitors.abort();
    drop(leader);
    let _ = lease_task.await;
    ops.stop().await;
    Ok(())
}
