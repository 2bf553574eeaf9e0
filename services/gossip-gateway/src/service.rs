//! The `Gossip` service other members call. Only node certificates of
//! current members get in; a member removed by governance, or disconnected
//! for bad blocks, is refused.

use crate::chain::{claimed_height, verify_block, verify_known_block};
use crate::node::{Incoming, Node, Source};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::pb::gossip::gossip_server::Gossip;
use fiscus_proto::pb::gossip::{
    AttestationBatch, HeartbeatRequest, HeartbeatResponse, PullRequest, PushAck,
};
use fiscus_proto::pb::ledger::{GetBlockRequest, GetFinalAttestationsRequest};
use fiscus_proto::pb::types::{Attestation, Block, Role};
use prost::Message;
use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

#[derive(Debug, Clone)]
pub struct GossipService {
    pub node: Arc<Node>,
}

fn denied(code: &'static str, msg: String) -> Status {
    ServiceError::new(ErrorKind::PermissionDenied, code, msg).into()
}

impl GossipService {
    /// The calling member, if it may talk to us.
    async fn caller<T>(&self, req: &Request<T>) -> Result<String, Status> {
        let id = fiscus_common::tls::peer_identity(req).ok_or_else(|| {
            Status::from(ServiceError::new(
                ErrorKind::Unauthenticated,
                codes::gossip::UNAUTHENTICATED,
                "no client certificate",
            ))
        })?;
        if id.role != Role::Node {
            return Err(denied(
                codes::gossip::FORBIDDEN,
                format!("role {:?} is not a node", id.role),
            ));
        }
        // A member voted in a moment ago may call before this gateway's
        // periodic re-read of the member list: re-read it (at most once a
        // second) before refusing, or its first attestations would be lost.
        if !self.node.is_member(&id.member) {
            self.node.refresh_members_soon().await;
        }
        let peers = self.node.peers.lock().unwrap_or_else(|e| e.into_inner());
        if !peers.is_member(&id.member) {
            return Err(denied(
                codes::gossip::NOT_MEMBER,
                format!("{} is not a current consortium member", id.member),
            ));
        }
        if peers.is_banned(&id.member) {
            return Err(denied(
                codes::gossip::BANNED,
                format!(
                    "{} sent bad blocks and is disconnected for a while",
                    id.member
                ),
            ));
        }
        Ok(id.member.clone())
    }
}

type BlockStream = Pin<Box<dyn futures::Stream<Item = Result<Block, Status>> + Send>>;

#[tonic::async_trait]
impl Gossip for GossipService {
    async fn push_blocks(
        &self,
        req: Request<Streaming<Block>>,
    ) -> Result<Response<PushAck>, Status> {
        let from = self.caller(&req).await?;
        let mut stream = req.into_inner();
        let mut n = 0usize;
        while let Some(b) = stream.next().await {
            n += 1;
            if n > 1024 {
                return Err(Status::from(fiscus_common::error::ServiceError::new(
                    fiscus_common::error::ErrorKind::ResourceExhausted,
                    codes::gossip::TOO_MANY,
                    "at most 1,024 blocks per push",
                )));
            }
            let b = b?;
            // A block this member already has (it usually came from an
            // orderer first) only needs its header signature checked.
            let known = match claimed_height(&b) {
                Ok(n) if n <= self.node.height() => {
                    verify_known_block(&self.node.certs, &b, n).map(|()| None)
                }
                Ok(_) => verify_block(&self.node.certs, &self.node.limits, b).map(Some),
                Err(e) => Err(e),
            };
            match known {
                Ok(None) => {}
                Ok(Some(v)) => {
                    if v.number > self.node.height() {
                        // try_send: a full inbox drops the push; anti-entropy pulls it later.
                        let _ = self
                            .node
                            .inbox
                            .try_send(Incoming::Block(Box::new(v), Source::Push(from.clone())));
                    }
                }
                Err(e) => {
                    let banned = self
                        .node
                        .peers
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .penalize(&from, 10, &self.node.cfg);
                    self.node
                        .metrics
                        .refused
                        .with_label_values(&["bad_push"])
                        .inc();
                    tracing::warn!(peer = %from, error = %e, banned, "refused a pushed block");
                    return Err(ServiceError::new(
                        ErrorKind::InvalidArgument,
                        codes::gossip::BAD_BLOCK,
                        e.to_string(),
                    )
                    .into());
                }
            }
        }
        Ok(Response::new(PushAck {
            highest_known: self.node.height(),
        }))
    }

    type PullBlocksStream = BlockStream;

    async fn pull_blocks(
        &self,
        req: Request<PullRequest>,
    ) -> Result<Response<BlockStream>, Status> {
        self.caller(&req).await?;
        let r = req.into_inner();
        let max = self.node.cfg.pull_batch.saturating_mul(2);
        let to = r
            .to_height
            .min(self.node.height())
            .min(r.from_height.saturating_add(max - 1));
        if r.from_height == 0 || r.from_height > to {
            return Ok(Response::new(Box::pin(futures::stream::empty())));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(32);
        let mut ledger = self.node.ledger.clone();
        tokio::spawn(async move {
            for n in r.from_height..=to {
                let b = ledger
                    .get_block(GetBlockRequest {
                        number: n,
                        hash: Vec::new(),
                    })
                    .await
                    .map(|r| r.into_inner());
                let stop = b.is_err();
                if tx.send(b).await.is_err() || stop {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn exchange_attestations(
        &self,
        req: Request<AttestationBatch>,
    ) -> Result<Response<AttestationBatch>, Status> {
        self.caller(&req).await?;
        let batch = req.into_inner();
        if batch.attestations.len() > 256 {
            return Err(Status::from(fiscus_common::error::ServiceError::new(
                fiscus_common::error::ErrorKind::ResourceExhausted,
                codes::gossip::TOO_MANY,
                "at most 256 attestations",
            )));
        }
        let mut heights = BTreeSet::new();
        let mut wanted = BTreeSet::new();
        if batch.want_to != 0 {
            if batch.want_to < batch.want_from
                || batch.want_to - batch.want_from >= crate::anti_entropy::MAX_EXCHANGE_HEIGHTS
            {
                return Err(Status::from(fiscus_common::error::ServiceError::new(
                    fiscus_common::error::ErrorKind::InvalidArgument,
                    codes::gossip::TOO_MANY,
                    format!(
                        "want_from..want_to must be at most {} heights, ascending",
                        crate::anti_entropy::MAX_EXCHANGE_HEIGHTS
                    ),
                )));
            }
            wanted.extend(batch.want_from..=batch.want_to);
        }
        for a in batch.attestations {
            if let Ok(att) = Attestation::decode(&a.attestation[..]) {
                heights.insert(att.height);
            }
            if let Err(e) = self.node.record_attestation(a).await {
                self.node
                    .metrics
                    .refused
                    .with_label_values(&["bad_attestation"])
                    .inc();
                tracing::debug!(error = %e, "ignored an attestation");
            }
        }
        heights.extend(wanted.iter().copied());
        // What memory holds; wanted final heights it no longer holds (older
        // than its window, or settled before this process started) come from
        // the majorities the ledger kept: a member joining a long chain
        // needs them to call any of its history final.
        let (mut known, missing) = {
            let f = self.node.finality.lock().unwrap_or_else(|e| e.into_inner());
            let final_height = f.final_height();
            let mut known = Vec::new();
            let mut missing = Vec::new();
            for h in &heights {
                match f.at(*h) {
                    Some(v) => known.extend(v.into_iter().map(|a| (*h, a))),
                    None if *h <= final_height && wanted.contains(h) => missing.push(*h),
                    None => {}
                }
            }
            (known, missing)
        };
        if let (Some(lo), Some(hi)) = (missing.first(), missing.last()) {
            match self
                .node
                .ingest
                .clone()
                .get_final_attestations(GetFinalAttestationsRequest {
                    from_height: *lo,
                    to_height: *hi,
                })
                .await
            {
                Ok(r) => {
                    for a in r.into_inner().attestations {
                        if let Ok(att) = Attestation::decode(&a.attestation[..])
                            && missing.binary_search(&att.height).is_ok()
                        {
                            known.push((att.height, a));
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e.message(), "could not read kept majorities from the ledger");
                }
            }
        }
        known.sort_by_key(|(h, _)| *h);
        // Bounded (4 MiB, or half the message size); the lowest heights
        // come first, and the rest is asked for again once those are final.
        let mut bytes = 0;
        let attestations = known
            .into_iter()
            .map(|(_, a)| a)
            .take_while(|a| {
                bytes += a.encoded_len() + 8;
                bytes <= (self.node.cfg.max_message_bytes / 2).min(4 << 20)
            })
            .collect();
        Ok(Response::new(AttestationBatch {
            attestations,
            ..Default::default()
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        let from = self.caller(&req).await?;
        self.node
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .heard(&from, req.get_ref().height);
        Ok(Response::new(HeartbeatResponse {
            member: self.node.me.clone(),
            height: self.node.height(),
        }))
    }
}
