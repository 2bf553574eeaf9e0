//! Raft messages between orderer nodes: raft-rs's own encoding inside our
//! `RaftTransport` gRPC stream, over mutual TLS, for orderer certificates only.
//!
//! Sending never blocks the Raft node: each peer has a bounded queue, and a
//! message that does not fit is dropped (Raft retransmits what matters).

use crate::config::Peer;
use fiscus_common::codes;
use fiscus_common::tls::{connect_channel, peer_identity};
use fiscus_proto::pb::orderer::raft_transport_client::RaftTransportClient;
use fiscus_proto::pb::orderer::raft_transport_server::RaftTransport;
use fiscus_proto::pb::orderer::{RaftAck, RaftMessage};
use fiscus_proto::pb::types::Role;
use futures::StreamExt;
use protobuf::Message as _;
use raft::eraftpb::Message as RaftMsg;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// How long a send may wait on a peer's stream before the stream is rebuilt.
const STALL: Duration = Duration::from_secs(1);

/// Each peer's address and the queue its sender task drains.
type PeerSenders = BTreeMap<u64, (Peer, mpsc::Sender<RaftMsg>)>;

/// The sending side, shared by the node; also the test hook for partitions.
#[derive(Debug, Clone)]
pub struct Transport {
    self_id: u64,
    peers: Arc<RwLock<PeerSenders>>,
    blocked: Arc<RwLock<BTreeSet<u64>>>,
    tls: Arc<rustls::ClientConfig>,
    runtime: tokio::runtime::Handle,
}

impl Transport {
    /// Starts one sender task per other peer on the current tokio runtime.
    pub fn start(self_id: u64, peers: &[Peer], tls: Arc<rustls::ClientConfig>) -> Self {
        let t = Self {
            self_id,
            peers: Arc::default(),
            blocked: Arc::default(),
            tls,
            runtime: tokio::runtime::Handle::current(),
        };
        for p in peers {
            t.add_peer(p.clone());
        }
        t
    }

    /// Starts sending to `peer` (a node added by a conf change); a known id is replaced.
    pub fn add_peer(&self, peer: Peer) {
        if peer.id == self.self_id {
            return;
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        self.runtime
            .spawn(peer_sender(peer.clone(), self.tls.clone(), rx));
        // Replacing the sender drops the old one, which ends its task.
        self.peers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(peer.id, (peer, tx));
    }

    /// Stops sending to a removed node.
    pub fn remove_peer(&self, id: u64) {
        self.peers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// The runtime that network work runs on (for callers on actor threads).
    pub fn runtime(&self) -> tokio::runtime::Handle {
        self.runtime.clone()
    }

    /// The client TLS config, for other node-to-node calls (block catch-up).
    pub fn tls(&self) -> Arc<rustls::ClientConfig> {
        self.tls.clone()
    }

    /// The peers this node sends to, with their addresses.
    pub fn peers(&self) -> Vec<Peer> {
        self.peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|(p, _)| p.clone())
            .collect()
    }

    pub fn send_all(&self, msgs: Vec<RaftMsg>) {
        for m in msgs {
            if self.is_blocked(m.to) {
                continue;
            }
            let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
            if let Some((_, tx)) = peers.get(&m.to) {
                // Full queue or closed peer: drop; Raft resends.
                let _ = tx.try_send(m);
            }
        }
    }

    /// Cuts this node off from `ids` in both directions (tests: network partitions).
    pub fn block(&self, ids: &[u64]) {
        self.blocked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .extend(ids);
    }

    pub fn unblock_all(&self) {
        self.blocked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    pub fn is_blocked(&self, id: u64) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }
}

async fn peer_sender(peer: Peer, tls: Arc<rustls::ClientConfig>, mut rx: mpsc::Receiver<RaftMsg>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let channel = match connect_channel(&peer.raft_addr, &peer.server_name, tls.clone()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(peer = peer.id, error = %e, "raft peer unreachable");
                // Drain what queued up meanwhile: it is stale, and Raft resends.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(50);
        let (conn_tx, conn_rx) = mpsc::channel::<RaftMessage>(256);
        let mut client =
            RaftTransportClient::new(channel).max_encoding_message_size(64 * 1024 * 1024);
        let call = tokio::spawn(async move {
            let stream = futures::stream::unfold(conn_rx, |mut rx| async move {
                rx.recv().await.map(|m| (m, rx))
            });
            client.send(stream).await
        });
        loop {
            let Some(msg) = rx.recv().await else {
                call.abort();
                return;
            };
            let data = match msg.write_to_bytes() {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode raft message");
                    continue;
                }
            };
            // A dead peer can leave the stream hanging rather than failing: a
            // send that cannot go out within a second means reconnect.
            match tokio::time::timeout(STALL, conn_tx.send(RaftMessage { data })).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        call.abort();
        tracing::debug!(peer = peer.id, "raft stream to peer ended; reconnecting");
    }
}

/// Raft messages from a peer, for the node: every message that had arrived
/// on the stream when the first was read (at most [`MAX_STEP_BATCH`]), so the
/// node steps them all and then handles one `Ready` (one fsync) for the lot,
/// as raft-rs's `five_mem_node` example drains its channel.
#[derive(Debug, actix::Message)]
#[rtype(result = "()")]
pub struct Step(pub Vec<RaftMsg>);

/// Messages handed to the node in one [`Step`] at most.
pub const MAX_STEP_BATCH: usize = 256;

/// The receiving side: a gRPC service feeding the node.
#[derive(Debug, Clone)]
pub struct RaftService {
    pub node: actix::Recipient<Step>,
    pub transport: Transport,
}

impl RaftService {
    /// Decodes one message from a peer into `batch`, unless the link from its
    /// sender is blocked (fault injection).
    fn accept(&self, m: RaftMessage, batch: &mut Vec<RaftMsg>) -> Result<(), Status> {
        let msg = RaftMsg::parse_from_bytes(&m.data).map_err(|e| {
            Status::from(fiscus_common::error::ServiceError::new(
                fiscus_common::error::ErrorKind::InvalidArgument,
                codes::orderer::BAD_REQUEST,
                format!("undecodable raft message: {e}"),
            ))
        })?;
        if !self.transport.is_blocked(msg.from) {
            batch.push(msg);
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl RaftTransport for RaftService {
    async fn send(
        &self,
        req: Request<Streaming<RaftMessage>>,
    ) -> Result<Response<RaftAck>, Status> {
        match peer_identity(&req) {
            Some(id) if id.role == Role::Orderer => {}
            _ => {
                return Err(Status::from(fiscus_common::error::ServiceError::new(
                    fiscus_common::error::ErrorKind::PermissionDenied,
                    codes::orderer::FORBIDDEN,
                    "the raft transport is for orderer certificates only",
                )));
            }
        }
        let mut stream = req.into_inner();
        let mut open = true;
        while open {
            let Some(item) = stream.next().await else {
                break;
            };
            let mut batch = Vec::new();
            self.accept(item?, &mut batch)?;
            // Take what else has already arrived: one Ready for all of it.
            while batch.len() < MAX_STEP_BATCH {
                match futures::FutureExt::now_or_never(stream.next()) {
                    Some(Some(item)) => self.accept(item?, &mut batch)?,
                    Some(None) => {
                        open = false;
                        break;
                    }
                    None => break,
                }
            }
            if !batch.is_empty() {
                // A full mailbox drops the messages; Raft resends.
                let _ = self.node.try_send(Step(batch));
            }
        }
        Ok(Response::new(RaftAck {}))
    }
}
