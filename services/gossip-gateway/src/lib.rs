//! gossip-gateway: the network layer between members.
//!
//! - **Peering** over mutual TLS (gRPC): only node certificates of members
//!   current at the chain head get in; a member removed by governance is
//!   dropped and refused. Heartbeats carry heights; a peer that misses
//!   `suspect_after` is suspected, `down_after` declared down.
//! - **Blocks** come from the orderers (`Deliver`, failing over), from
//!   peers' pushes (each new block is pushed to `fanout` peers) and from
//!   anti-entropy pulls (a peer ahead of us is asked for the range we lack,
//!   `pull_batch` at a time, throttled by a bounded inbox). Every block is
//!   checked (encoding, `tx_root`, orderer signature, then the link) before
//!   the member's ledger-store sees it; a peer that sends a bad one loses
//!   score and is disconnected at `ban_score`.
//! - **Attestations** are exchanged after each commit and on every
//!   heartbeat; a height is final when a majority of members attest the same
//!   hashes; different hashes at one height raise the divergence alarm.
//! - **Events** go on the bus under `fiscus.<consortium>.<member>.{blocks,txs,attestations,alarms}`,
//!   at least once and in height order through an outbox ([`events`]): a bus outage or a
//!   restart loses none, and never slows the chain.
#![forbid(unsafe_code)]

mod anti_entropy;
pub mod bus;
pub mod chain;
mod committer;
pub mod config;
mod error;
pub mod events;
pub mod finality;
mod follower;
pub mod metrics;
pub mod node;
pub mod peers;
pub mod service;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use config::Config;
pub use error::StartError;

use fiscus_common::certs::Certs;
use fiscus_common::ops_server::{OpsServer, Readiness};
use fiscus_common::tls::{ClientAuth, TlsContext, connect_channel, serve_incoming_until};
use fiscus_proto::DecodeLimits;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::gossip::gossip_server::GossipServer;
use fiscus_proto::pb::ledger::ChainInfoRequest;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::ledger::ledger_ingest_client::LedgerIngestClient;
use fiscus_proto::pb::types::Role;
use metrics::Metrics;
use node::Node;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.to_string();
    move |source| StartError::Io { what, source }
}

/// A running gateway.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub node: Arc<Node>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    ops: OpsServer,
    /// Fails every accepted connection at once, so that nothing keeps the
    /// service (and its store) alive after `stop`.
    kill: tokio::sync::watch::Sender<bool>,
}

impl Running {
    pub async fn stop(self) {
        let _ = self.kill.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
        self.ops.stop().await;
    }
}

pub async fn start(config: Config) -> Result<Running, StartError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(io(config.listen))?;
    start_with(config, listener).await
}

pub async fn start_with(
    config: Config,
    listener: tokio::net::TcpListener,
) -> Result<Running, StartError> {
    let tls = TlsContext::load(&config.tls)?;
    let me = tls.identity();
    if me.role != Role::Node {
        return Err(StartError::WrongRole(me.role));
    }
    let genesis = fiscus_common::genesis::read_genesis(&config.genesis_file)?;
    let certs = Certs::load_dir(&config.signers_dir, &genesis.ca_roots)?;
    let client_tls = tls.client_config()?;
    let ledger_err = |message: String| StartError::Ledger {
        addr: config.ledger.addr.clone(),
        message,
    };
    let ch = connect_channel(
        &config.ledger.addr,
        &config.ledger.server_name,
        client_tls.clone(),
    )
    .await?;
    let ledger = LedgerClient::new(ch.clone()).max_decoding_message_size(config.max_message_bytes);
    let ingest = LedgerIngestClient::new(ch)
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let info = ledger
        .clone()
        .get_chain_info(ChainInfoRequest {})
        .await
        .map_err(|s| ledger_err(s.message().to_owned()))?
        .into_inner();
    let head_hash = Hash32::from_slice("hash", &info.last_block_hash).unwrap_or_default();
    let bus =
        bus::Bus::connect(config.nats_url.as_deref(), &format!("gossip-{}", me.member)).await?;
    if !bus.is_durable() {
        bus.ensure_member_stream(&genesis.consortium_id, &me.member)
            .await?;
    } else {
        // With NATS up, the stream exists once the gateway is up, as
        // consumers started right after it expect. A NATS outage does not
        // keep the member from starting: the event publisher makes the
        // stream when NATS answers.
        let made = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            bus.ensure_member_stream(&genesis.consortium_id, &me.member),
        )
        .await;
        if !matches!(made, Ok(Ok(_))) {
            tracing::warn!("NATS is not answering; the gateway starts, and its events wait for it");
        }
    }

    let registry = prometheus::Registry::new();
    let metrics = Metrics::register(&registry)?;
    tls.register_expiry_metric(&registry)?;
    if let bus::Bus::Nats(nats) = &bus {
        nats.register_connected_metric(&registry)?;
    }
    metrics.height.set(info.height as i64);
    let readiness = Readiness::default();
    readiness.set("ledger", Ok(()));
    readiness.set("divergence", Ok(()));
    if !config.orderers.is_empty() {
        readiness.set("orderer", Err("not connected yet".into()));
    }
    let members = genesis.members.iter().map(|m| m.org_code.clone()).collect();
    let (inbox, rx) = tokio::sync::mpsc::channel(config.max_pending_blocks.max(64));
    let node = Arc::new(Node {
        timeline: Mutex::default(),
        me: me.member.clone(),
        consortium: genesis.consortium_id.clone(),
        certs,
        roots: fiscus_common::certs::Roots::from_ders(&genesis.ca_roots),
        limits: DecodeLimits::default(),
        ledger: ledger.clone(),
        ingest,
        tls: client_tls,
        head: Mutex::new((info.height, head_hash)),
        peers: Mutex::new(peers::Peers::default()),
        // Heights well below the head were settled before this process started;
        // finality is tracked from the last 64.
        finality: Mutex::new(finality::Finality::new(
            &me.member,
            members,
            info.height.saturating_sub(64),
        )),
        inbox,
        bus,
        metrics,
        disseminations: Arc::new(tokio::sync::Semaphore::new(node::MAX_DISSEMINATIONS)),
        refreshed_for_caller: std::sync::Mutex::new(None),
        finality_outbox: node::FinalityOutbox::default(),
        event_outbox: events::EventOutbox::new(info.height),
        readiness: readiness.clone(),
        cfg: config.clone(),
    });
    node.peers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain_members(
            &node
                .finality
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .members()
                .clone(),
            &genesis,
            &config.peers,
            &me.member,
        );
    node.refresh_members()
        .await
        .map_err(|s| ledger_err(s.message().to_owned()))?;
    anti_entropy::load_own_attestations(&node, info.height.saturating_sub(64).max(1), info.height)
        .await;
    // The heights settled before this start are final from the first
    // scrape: a final height of 0 beside the head would read as a finality
    // lag (alert FiscusFinalityLag) until the next height became final.
    node.metrics.final_height.set(
        node.finality
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .final_height() as i64,
    );

    let addr = listener.local_addr().map_err(io(config.listen))?;
    let svc = GossipServer::new(service::GossipService { node: node.clone() })
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    let (kill, kill_rx) = tokio::sync::watch::channel(false);
    let incoming = serve_incoming_until(
        listener,
        tls.server_config(ClientAuth::Required)?,
        tls.revocations(),
        kill_rx,
        None,
    );
    let grpc_metrics = fiscus_common::red::GrpcMetricsLayer::register(&registry)?;
    let mut tasks = vec![
        tokio::spawn(async move {
            if let Err(e) = tonic::transport::Server::builder()
                .layer(grpc_metrics)
                .add_service(svc)
                .serve_with_incoming(incoming)
                .await
            {
                tracing::error!(error = %e, "gossip API stopped");
            }
        }),
        tokio::spawn(committer::committer(node.clone(), rx)),
        tokio::spawn(node::report_finality(node.clone())),
        tokio::spawn(events::publisher(node.clone(), info.height)),
        tokio::spawn(anti_entropy::heartbeats(node.clone())),
        // Certificate renewals and CRL updates without a restart; the CRL
        // on chain, through the ledger-store, wins over the file.
        tls.spawn_reloader(),
        tokio::spawn(fiscus_ledger_store::chain_crl::follow(
            tls.clone(),
            ledger.clone(),
        )),
    ];
    if !config.orderers.is_empty() {
        tasks.push(tokio::spawn(follower::orderer_follower(
            node.clone(),
            config.orderers.clone(),
        )));
    }
    let routes_node = node.clone();
    let ops = OpsServer::start_with(config.http_listen, registry, readiness, move |cfg| {
        let n = routes_node.clone();
        let n2 = routes_node.clone();
        let n3 = routes_node.clone();
        cfg.route(
            "/v1/members",
            actix_web::web::get().to(move || {
                let n = n.clone();
                async move {
                    let view = n.peers.lock().unwrap_or_else(|e| e.into_inner()).view();
                    actix_web::HttpResponse::Ok()
                        .json(serde_json::json!({"member": n.me, "peers": view}))
                }
            }),
        )
        .route(
            "/v1/finality",
            actix_web::web::get().to(move || {
                let n = n2.clone();
                async move {
                    let f = n
                        .finality
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .final_height();
                    actix_web::HttpResponse::Ok()
                        .json(serde_json::json!({"height": n.height(), "final_height": f}))
                }
            }),
        )
        .route(
            "/v1/alarms",
            actix_web::web::get().to(move || {
                let n = n3.clone();
                async move {
                    let a = n
                        .finality
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .alarms();
                    actix_web::HttpResponse::Ok().json(serde_json::json!({"alarms": a}))
                }
            }),
        );
    })
    .map_err(io(config.http_listen))?;
    Ok(Running {
        addr,
        http_addr: ops.addr,
        node,
        tasks,
        ops,
        kill,
    })
}
