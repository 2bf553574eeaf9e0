//! `fiscus orderer-admin add-node|remove-node`: Raft membership changes.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use fiscus_common::tls::{TlsConfig, TlsContext, connect_channel};
use fiscus_proto::pb::orderer::orderer_admin_client::OrdererAdminClient;
use fiscus_proto::pb::orderer::{AddNodeRequest, RemoveNodeRequest};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub(crate) struct OrdererAdminCmd {
    /// `host:port` of the leader's client API.
    #[arg(long)]
    orderer: String,
    /// The name on the orderer's certificate (SAN).
    #[arg(long)]
    orderer_name: String,
    /// Directory with an admin's `cert.pem`, `key.pem`, `ca.pem`.
    #[arg(long)]
    tls_dir: PathBuf,
    #[command(subcommand)]
    change: Change,
}

#[derive(Debug, Subcommand)]
enum Change {
    /// Add a node that was started with `join = true`.
    AddNode {
        #[arg(long)]
        id: u64,
        /// `host:port` of its RaftTransport.
        #[arg(long)]
        raft: String,
        /// `host:port` of its client API.
        #[arg(long)]
        client: String,
        /// The name on its certificate.
        #[arg(long)]
        server_name: String,
    },
    /// Remove a node from the cluster.
    RemoveNode {
        #[arg(long)]
        id: u64,
    },
}

pub(crate) async fn run(cmd: OrdererAdminCmd) -> Result<()> {
    let tls = TlsContext::load(&TlsConfig::in_dir(&cmd.tls_dir))
        .with_context(|| format!("TLS identity in {}", cmd.tls_dir.display()))?;
    let channel = connect_channel(&cmd.orderer, &cmd.orderer_name, tls.client_config()?).await?;
    let mut admin = OrdererAdminClient::new(channel);
    let status = match cmd.change {
        Change::AddNode {
            id,
            raft,
            client,
            server_name,
        } => {
            admin
                .add_node(AddNodeRequest {
                    raft_id: id,
                    raft_endpoint: raft,
                    client_endpoint: client,
                    server_name,
                })
                .await
        }
        Change::RemoveNode { id } => admin.remove_node(RemoveNodeRequest { raft_id: id }).await,
    }
    .map_err(|s| anyhow::anyhow!("refused: {} ({:?})", s.message(), s.code()))?
    .into_inner();
    println!(
        "{}",
        serde_json::json!({ "proposed": true, "leader": status.leader_id, "term": status.term, "height": status.height })
    );
    Ok(())
}
