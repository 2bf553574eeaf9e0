//! Heartbeats with suspicion, height digests, anti-entropy pulls of missing
//! blocks and the exchange of recent attestations between members.

use crate::chain::verify_block;
use crate::node::{Incoming, Node, Source, lock, refusal_label};
use crate::peers::Liveness;
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::gossip::{AttestationBatch, HeartbeatRequest, PullRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Heartbeats with suspicion, height digests, anti-entropy pulls and
/// attestation exchange, every `heartbeat_ms`.
pub(crate) async fn heartbeats(node: Arc<Node>) {
    let period = Duration::from_millis(node.cfg.heartbeat_ms);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds = 0u64;
    // One catch-up at a time, from one peer: several would fetch the same range.
    let pulling: Arc<std::sync::atomic::AtomicBool> = Arc::default();
    loop {
        tick.tick().await;
        rounds += 1;
        if rounds % 10 == 1
            && let Err(e) = node.refresh_members().await
        {
            tracing::warn!(error = %e.message(), "could not read the member list from the ledger");
        }
        let members = lock(&node.peers).dialable(&node.cfg);
        let height = node.height();
        for m in members {
            let node = node.clone();
            let pulling = pulling.clone();
            tokio::spawn(async move {
                let Some(mut c) = node.client(&m).await else {
                    lock(&node.peers).missed(&m, &node.cfg);
                    return;
                };
                let req = HeartbeatRequest {
                    member: node.me.clone(),
                    height,
                };
                match tokio::time::timeout(period * 2, c.heartbeat(req)).await {
                    Ok(Ok(r)) => {
                        let theirs = r.into_inner().height;
                        lock(&node.peers).heard(&m, theirs);
                        node.metrics.knows(theirs);
                        if theirs > node.height()
                            && !pulling.swap(true, std::sync::atomic::Ordering::AcqRel)
                        {
                            let r = pull(&node, &m, &mut c, theirs).await;
                            pulling.store(false, std::sync::atomic::Ordering::Release);
                            if let Err(e) = r {
                                tracing::debug!(peer = %m, error = %e, "pull ended");
                            }
                        }
                        exchange_recent(&node, &mut c).await;
                    }
                    _ => lock(&node.peers).missed(&m, &node.cfg),
                }
            });
        }
        let (alive, view) = {
            let peers = lock(&node.peers);
            (peers.count(Liveness::Alive), peers.view())
        };
        node.metrics.peers_alive.set(alive as i64);
        for p in view {
            node.metrics
                .peer_score
                .with_label_values(&[p.member.as_str()])
                .set(i64::from(p.score));
        }
    }
}

/// Pulls everything this member lacks up to `theirs` from `peer`, a batch at
/// a time, without waiting for commits in between; the bounded inbox
/// throttles it to the ledger's pace.
async fn pull(
    node: &Arc<Node>,
    peer: &str,
    c: &mut GossipClient<Channel>,
    theirs: u64,
) -> Result<(), String> {
    let mut from = node.height() + 1;
    let started = Instant::now();
    let first = from;
    while from <= theirs {
        let to = theirs.min(from + node.cfg.pull_batch - 1);
        pull_range(node, peer, c, from, to).await?;
        from = to + 1;
        if to - first >= 1000 {
            let rate = (to + 1 - first) as f64 / started.elapsed().as_secs_f64().max(0.001);
            tracing::info!(
                peer,
                pulled_to = to,
                target = theirs,
                blocks_per_s = rate as u64,
                "catching up"
            );
        }
    }
    Ok(())
}

async fn pull_range(
    node: &Arc<Node>,
    peer: &str,
    c: &mut GossipClient<Channel>,
    from: u64,
    to: u64,
) -> Result<(), String> {
    let mut stream = c
        .pull_blocks(PullRequest {
            from_height: from,
            to_height: to,
        })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    while let Some(b) = stream.next().await {
        let b = b.map_err(|s| s.message().to_owned())?;
        match verify_block(&node.certs, &node.limits, b) {
            Ok(v) => node
                .inbox
                .send(Incoming::Block(Box::new(v), Source::Pull(peer.to_owned())))
                .await
                .map_err(|_| "gateway stopping".to_owned())?,
            Err(e) => {
                node.blame(&Source::Pull(peer.to_owned()), &e);
                return Err(e.to_string());
            }
        }
    }
    Ok(())
}

/// Sends our own attestations for the heights not yet final and records
/// everyone's the peer holds for them. It asks by range: a member that caught
/// up before it knew itself a member holds none of its own for those heights.
async fn exchange_recent(node: &Arc<Node>, c: &mut GossipClient<Channel>) {
    let (from, to) = {
        let f = lock(&node.finality);
        (f.final_height() + 1, node.height())
    };
    if from > to {
        return;
    }
    // The oldest heights not yet final first: a member catching up works forward.
    let to = to.min(from + MAX_EXCHANGE_HEIGHTS - 1);
    let ours = lock(&node.finality).own(from, to);
    if let Ok(r) = c
        .exchange_attestations(AttestationBatch {
            attestations: ours,
            want_from: from,
            want_to: to,
        })
        .await
    {
        for a in r.into_inner().attestations {
            if let Err(e) = node.record_attestation(a).await {
                node.metrics
                    .refused
                    .with_label_values(&[refusal_label(&e)])
                    .inc();
            }
        }
    }
}

/// Heights one attestation exchange covers at most (either way).
pub(crate) const MAX_EXCHANGE_HEIGHTS: u64 = 256;

/// Records the attestations this member already has (after a restart).
pub(crate) async fn load_own_attestations(node: &Arc<Node>, from: u64, to: u64) {
    for h in from..=to {
        let r = node
            .ingest
            .clone()
            .get_attestation(fiscus_proto::pb::ledger::GetAttestationRequest { height: h })
            .await;
        if let Ok(a) = r {
            let _ = node.record_attestation(a.into_inner()).await;
        }
    }
}
