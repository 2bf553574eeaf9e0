//! The client API: `Broadcast`, `Deliver`, `Status`.

use crate::admission::Admission;
use crate::config::Peer;
use crate::node::{NodeHandles, Outcome, RaftNode, Submit};
use crate::storage::OrdererStore;
use actix::Addr;
use fiscus_common::codes;
use fiscus_common::tls::connect_channel;
use fiscus_proto::pb::orderer::orderer_client::OrdererClient;
use fiscus_proto::pb::orderer::orderer_server::Orderer;
use fiscus_proto::pb::orderer::{
    AckStatus, BroadcastAck, DeliverRequest, PeerStatus, StatusRequest, StatusResponse,
};
use fiscus_proto::pb::types::{Block, Envelope, TraceLink};
use futures::{FutureExt, StreamExt, stream::FuturesUnordered};
use prost::Message;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status, Streaming};

/// Envelopes read from one stream before they are admitted together.
const ADMIT_BATCH: usize = 512;
/// Acks buffered per stream.
const ACK_BUFFER: usize = 8192;

#[derive(Debug, Clone)]
pub(crate) struct OrdererService {
    pub node: Addr<RaftNode>,
    pub handles: NodeHandles,
    pub store: OrdererStore,
    pub admission: Admission,
    pub transport: crate::transport::Transport,
    pub client_tls: Arc<rustls::ClientConfig>,
    pub commit_timeout: Duration,
    /// A follower's connection to the leader, shared by every stream it
    /// relays (HTTP/2 multiplexes them): one TLS handshake per leader, not
    /// one per relayed submission.
    pub leader_link: Arc<std::sync::Mutex<Option<LeaderLink>>>,
}

/// The channel to one leader, by its client address and name.
#[derive(Debug, Clone)]
pub(crate) struct LeaderLink {
    addr: String,
    server_name: String,
    channel: tonic::transport::Channel,
}

fn ack(
    tx_id: Vec<u8>,
    status: AckStatus,
    code: &str,
    reason: String,
    block_number: u64,
) -> BroadcastAck {
    BroadcastAck {
        tx_id,
        status: status as i32,
        reason_code: code.to_owned(),
        reason,
        block_number,
    }
}

type AckStream = Pin<Box<dyn futures::Stream<Item = Result<BroadcastAck, Status>> + Send>>;
type BlockStream = Pin<Box<dyn futures::Stream<Item = Result<Block, Status>> + Send>>;

impl OrdererService {
    fn leader(&self) -> (bool, Option<Peer>) {
        let s = self
            .handles
            .status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let is_leader = s.role == "leader";
        (
            is_leader,
            self.transport
                .peers()
                .into_iter()
                .find(|p| p.id == s.leader_id && p.id != s.node_id),
        )
    }

    /// Admits and submits one stream's envelopes, acking each once decided.
    async fn serve_stream(
        self,
        mut input: Streaming<Envelope>,
        acks: mpsc::Sender<Result<BroadcastAck, Status>>,
    ) {
        let mut waiting = FuturesUnordered::new();
        loop {
            let first = tokio::select! {
                m = input.message() => m,
                Some(a) = waiting.next(), if !waiting.is_empty() => {
                    if acks.send(Ok(a)).await.is_err() { return; }
                    continue;
                }
            };
            let first = match first {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(status) => {
                    // e.g. an envelope over the gRPC size limit: finish what was
                    // admitted, then tell the client why the stream ends.
                    while let Some(a) = waiting.next().await {
                        if acks.send(Ok(a)).await.is_err() {
                            return;
                        }
                    }
                    let _ = acks.send(Err(status)).await;
                    return;
                }
            };
            let mut envs = vec![first];
            while envs.len() < ADMIT_BATCH {
                match input.message().now_or_never() {
                    Some(Ok(Some(e))) => envs.push(e),
                    _ => break,
                }
            }
            let mut submit = Vec::new();
            let link = fiscus_common::telemetry::sampled_ids(&tracing::Span::current()).map(
                |(trace_id, span_id)| TraceLink {
                    trace_id,
                    span_id,
                    tx_indexes: Vec::new(),
                },
            );
            // Admission (signatures, certificates, replay) as a child of the call.
            let admit = tracing::info_span!("orderer_node.admit", fiscus.txs = envs.len());
            for r in tracing::Instrument::instrument(self.admission.admit(envs), admit).await {
                match r {
                    Ok((id, env)) => {
                        let (tx, rx) = oneshot::channel();
                        submit.push((id, env, tx, link.clone()));
                        let timeout = self.commit_timeout;
                        waiting.push(
                            async move {
                                let id_bytes = id.to_vec();
                                match tokio::time::timeout(timeout, rx).await {
                                    Ok(Ok(Outcome::Committed(h))) => {
                                        ack(id_bytes, AckStatus::Accepted, "", String::new(), h)
                                    }
                                    Ok(Ok(Outcome::Duplicate(h))) => ack(
                                        id_bytes,
                                        AckStatus::Rejected,
                                        codes::tx::DUPLICATE,
                                        format!("already ordered in block {h}"),
                                        h,
                                    ),
                                    Ok(Ok(Outcome::Failed { code, reason })) => {
                                        ack(id_bytes, AckStatus::Rejected, code, reason, 0)
                                    }
                                    Ok(Err(_)) => ack(
                                        id_bytes,
                                        AckStatus::Rejected,
                                        codes::orderer::RETRY,
                                        "the orderer dropped the transaction; resubmit".into(),
                                        0,
                                    ),
                                    Err(_) => ack(
                                        id_bytes,
                                        AckStatus::Rejected,
                                        codes::orderer::TIMEOUT,
                                        "not committed in time; resubmitting is safe".into(),
                                        0,
                                    ),
                                }
                            }
                            .boxed(),
                        );
                    }
                    Err(refusal) => {
                        self.admission.metrics.txs_refused.inc();
                        let id = refusal.tx_id.map(|i| i.to_vec()).unwrap_or_default();
                        if acks
                            .send(Ok(ack(
                                id,
                                AckStatus::Rejected,
                                refusal.code,
                                refusal.reason,
                                0,
                            )))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            if !submit.is_empty() {
                // Waits for mailbox room: back-pressure reaches the client's stream.
                // A refusal (not leader) is already reported through each waiter.
                let _ = self.node.send(Submit(submit)).await;
            }
        }
        while let Some(a) = waiting.next().await {
            if acks.send(Ok(a)).await.is_err() {
                return;
            }
        }
    }

    /// The shared channel to `leader`, connected on first use (and again
    /// after the leader changes or the channel failed).
    async fn leader_channel(
        &self,
        leader: &Peer,
    ) -> Result<tonic::transport::Channel, fiscus_common::tls::TlsError> {
        let cached = |link: &Option<LeaderLink>| {
            link.as_ref()
                .filter(|l| l.addr == leader.client_addr && l.server_name == leader.server_name)
                .map(|l| l.channel.clone())
        };
        if let Some(c) = cached(&self.leader_link.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(c);
        }
        let channel = connect_channel(
            &leader.client_addr,
            &leader.server_name,
            self.client_tls.clone(),
        )
        .await?;
        *self.leader_link.lock().unwrap_or_else(|e| e.into_inner()) = Some(LeaderLink {
            addr: leader.client_addr.clone(),
            server_name: leader.server_name.clone(),
            channel: channel.clone(),
        });
        Ok(channel)
    }

    /// Forgets the channel to `leader` (a call on it failed in transport;
    /// `None`: whichever is cached, as when this node leads now). A channel
    /// another relay made since, to another leader, is kept.
    fn drop_leader_channel(&self, leader: Option<&Peer>) {
        let mut link = self.leader_link.lock().unwrap_or_else(|e| e.into_inner());
        if leader.is_none_or(|p| link.as_ref().is_some_and(|l| l.addr == p.client_addr)) {
            *link = None;
        }
    }

    /// A follower relays the whole stream to the leader and its acks back.
    async fn forward(
        self,
        leader: Peer,
        mut input: Streaming<Envelope>,
        acks: mpsc::Sender<Result<BroadcastAck, Status>>,
    ) {
        let channel = match self.leader_channel(&leader).await {
            Ok(c) => c,
            Err(e) => {
                let _ = acks
                    .send(Err(Status::from(fiscus_common::error::ServiceError::new(
                        fiscus_common::error::ErrorKind::Unavailable,
                        codes::orderer::RETRY,
                        format!("leader {} unreachable: {e}", leader.id),
                    ))))
                    .await;
                return;
            }
        };
        let (up_tx, up_rx) = mpsc::channel::<Envelope>(1024);
        let upstream =
            futures::stream::unfold(
                up_rx,
                |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
            );
        let mut client = OrdererClient::new(channel);
        let relay_in = tokio::spawn(async move {
            while let Ok(Some(e)) = input.message().await {
                if up_tx.send(e).await.is_err() {
                    break;
                }
            }
        });
        let mut req = tonic::Request::new(upstream);
        fiscus_common::telemetry::inject_metadata(&tracing::Span::current(), req.metadata_mut());
        match client.broadcast(req).await {
            Ok(resp) => {
                let mut down = resp.into_inner();
                while let Some(item) = down.next().await {
                    if let Err(s) = &item
                        && transport_failure(s)
                    {
                        self.drop_leader_channel(Some(&leader));
                    }
                    if acks.send(item).await.is_err() {
                        break;
                    }
                }
            }
            Err(s) => {
                if transport_failure(&s) {
                    self.drop_leader_channel(Some(&leader));
                }
                let _ = acks.send(Err(s)).await;
            }
        }
        relay_in.abort();
    }
}

/// A relayed call that failed in the connection, not in the leader's answer.
fn transport_failure(s: &Status) -> bool {
    matches!(s.code(), tonic::Code::Unavailable | tonic::Code::Unknown)
        && s.metadata()
            .get(fiscus_common::error::GRPC_CODE_METADATA)
            .is_none()
}

#[tonic::async_trait]
impl Orderer for OrdererService {
    type BroadcastStream = AckStream;

    async fn broadcast(
        &self,
        req: Request<Streaming<Envelope>>,
    ) -> Result<Response<AckStream>, Status> {
        let input = req.into_inner();
        let (tx, rx) = mpsc::channel(ACK_BUFFER);
        let svc = self.clone();
        // The call's span (a child of the submitter's trace): the stream's
        // transactions link to it from every member's spans for their block.
        let span = tracing::Span::current();
        match self.leader() {
            (true, _) => {
                self.drop_leader_channel(None);
                tokio::spawn(tracing::Instrument::instrument(
                    svc.serve_stream(input, tx),
                    span,
                ));
            }
            (false, Some(leader)) => {
                tokio::spawn(tracing::Instrument::instrument(
                    svc.forward(leader, input, tx),
                    span,
                ));
            }
            (false, None) => {
                return Err(Status::from(fiscus_common::error::ServiceError::new(
                    fiscus_common::error::ErrorKind::Unavailable,
                    codes::orderer::NO_LEADER,
                    "no leader is known yet; retry shortly",
                )));
            }
        }
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|a| (a, rx)) });
        Ok(Response::new(Box::pin(stream)))
    }

    type DeliverStream = BlockStream;

    async fn deliver(&self, req: Request<DeliverRequest>) -> Result<Response<BlockStream>, Status> {
        let mut next = req.into_inner().from_height.max(1);
        let store = self.store.clone();
        let mut tip = self.handles.tip.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            loop {
                let height = *tip.borrow_and_update();
                while next <= height {
                    let item = match store.block(next) {
                        Ok(Some(bytes)) => {
                            Block::decode(&bytes[..]).map_err(|e| internal(e.to_string()))
                        }
                        Ok(None) => Err(internal(format!("block {next} is missing"))),
                        Err(e) => Err(internal(e.to_string())),
                    };
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                    next += 1;
                }
                if tip.changed().await.is_err() {
                    return;
                }
            }
        });
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn status(
        &self,
        _req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(status_response(
            &self.handles,
            &self.transport,
        )))
    }
}

/// The node's status as the API reports it (also after an admin change).
pub(crate) fn status_response(
    handles: &NodeHandles,
    transport: &crate::transport::Transport,
) -> StatusResponse {
    let s = handles
        .status
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let peers = transport
        .peers()
        .iter()
        .filter(|p| p.id != s.node_id)
        .map(|p| PeerStatus {
            raft_id: p.id,
            raft_endpoint: p.raft_addr.clone(),
            matched: s
                .progress
                .iter()
                .find(|(id, _)| *id == p.id)
                .map_or(0, |(_, m)| *m),
        })
        .collect();
    StatusResponse {
        node_id: s.node_id,
        leader_id: s.leader_id,
        term: s.term,
        height: s.height,
        role: s.role.to_owned(),
        commit_index: s.commit_index,
        applied_index: s.applied_index,
        peers,
    }
}

/// A fault of this node (a stored block that is missing or does not decode).
fn internal(message: String) -> Status {
    Status::from(fiscus_common::error::ServiceError::new(
        fiscus_common::error::ErrorKind::Internal,
        codes::orderer::INTERNAL,
        message,
    ))
}
