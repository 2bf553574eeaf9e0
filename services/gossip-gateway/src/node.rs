//! The gateway's moving parts: one committer task (the only path into the
//! ledger), the orderer follower, the heartbeat / anti-entropy loop, and
//! event publication. They share a [`Node`] and talk through one bounded
//! inbox, so a flood of blocks back-pressures the senders.

use crate::bus::Bus;
use crate::chain::{Refusal, Verified, triple, verify_attestation, verify_block};
use crate::config::Config;
use crate::finality::{Alarm, Finality};
use crate::peers::{Liveness, Peers};
use fiscus_common::ops_server::Readiness;
use fiscus_ledger_store::Certs;
use fiscus_ledger_store::server::Endpoint;
use fiscus_proto::DecodeLimits;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::events::{BlockCommitted, DivergenceAlarm, TxStatusChanged};
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::gossip::{AttestationBatch, HeartbeatRequest, PullRequest};
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::ledger::ledger_ingest_client::LedgerIngestClient;
use fiscus_proto::pb::ledger::{ChainInfoRequest, CommitBlockResponse, GetStateRequest};
use fiscus_proto::pb::orderer::DeliverRequest;
use fiscus_proto::pb::orderer::orderer_client::OrdererClient;
use fiscus_proto::pb::types::{Attestation, Block, ConsortiumConfig, SignedAttestation};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tonic::transport::Channel;

/// Where a block came from: it decides whom to blame and whether to push it on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Orderer(String),
    /// Pushed by a peer: new to the network, worth pushing on.
    Push(String),
    /// Pulled from a peer (anti-entropy or catch-up).
    Pull(String),
}

impl Source {
    fn peer(&self) -> Option<&str> {
        match self {
            Source::Push(m) | Source::Pull(m) => Some(m),
            Source::Orderer(_) => None,
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Source::Orderer(_) => "orderer",
            Source::Push(_) => "push",
            Source::Pull(_) => "pull",
        }
    }
}

#[derive(Debug)]
pub enum Incoming {
    Block(Box<Verified>, Source),
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub height: prometheus::IntGauge,
    pub final_height: prometheus::IntGauge,
    pub blocks: prometheus::IntCounterVec,
    pub refused: prometheus::IntCounterVec,
    pub alarms: prometheus::IntCounter,
    pub peers_alive: prometheus::IntGauge,
    /// Seconds from the block's timestamp (cut by the orderer leader) to its commit here.
    pub commit_lag: prometheus::Histogram,
}

impl Metrics {
    pub fn register(r: &prometheus::Registry) -> prometheus::Result<Self> {
        let m = Self {
            height: prometheus::IntGauge::new(
                "fiscus_gossip_height",
                "Height committed by this member",
            )?,
            final_height: prometheus::IntGauge::new(
                "fiscus_gossip_final_height",
                "Highest height final (a majority of members attested the same hashes)",
            )?,
            blocks: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "fiscus_gossip_blocks_committed_total",
                    "Blocks committed, by source",
                ),
                &["source"],
            )?,
            refused: prometheus::IntCounterVec::new(
                prometheus::Opts::new(
                    "fiscus_gossip_refused_total",
                    "Blocks and attestations refused, by reason",
                ),
                &["reason"],
            )?,
            alarms: prometheus::IntCounter::new(
                "fiscus_gossip_divergence_alarms_total",
                "Heights at which members attested different hashes",
            )?,
            peers_alive: prometheus::IntGauge::new(
                "fiscus_gossip_peers_alive",
                "Peers answering heartbeats",
            )?,
            commit_lag: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "fiscus_gossip_commit_lag_seconds",
                    "From a block's timestamp to its commit at this member",
                )
                .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )?,
        };
        r.register(Box::new(m.height.clone()))?;
        r.register(Box::new(m.final_height.clone()))?;
        r.register(Box::new(m.blocks.clone()))?;
        r.register(Box::new(m.refused.clone()))?;
        r.register(Box::new(m.alarms.clone()))?;
        r.register(Box::new(m.peers_alive.clone()))?;
        r.register(Box::new(m.commit_lag.clone()))?;
        Ok(m)
    }
}

/// Wall-clock milliseconds when this member committed each recent height and
/// saw it final, for lag measurements (`fiscus bench network`).
#[derive(Debug, Default)]
pub struct Timeline {
    /// height → (block timestamp, committed here, final here), Unix ms.
    pub heights: BTreeMap<u64, (i64, Option<i64>, Option<i64>)>,
}

impl Timeline {
    const KEEP: usize = 200_000;

    fn committed(&mut self, height: u64, block_ms: i64, now: i64) {
        let e = self.heights.entry(height).or_insert((block_ms, None, None));
        e.0 = block_ms;
        e.1 = Some(now);
        while self.heights.len() > Self::KEEP {
            self.heights.pop_first();
        }
    }

    fn finalized(&mut self, height: u64, now: i64) {
        if let Some(e) = self.heights.get_mut(&height) {
            e.2.get_or_insert(now);
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What every task shares.
#[derive(Debug)]
pub struct Node {
    pub timeline: Mutex<Timeline>,
    pub cfg: Config,
    pub me: String,
    pub consortium: String,
    pub certs: Certs,
    pub limits: DecodeLimits,
    pub ledger: LedgerClient<Channel>,
    pub ingest: LedgerIngestClient<Channel>,
    pub tls: Arc<rustls::ClientConfig>,
    pub head: Mutex<(u64, Hash32)>,
    pub peers: Mutex<Peers>,
    pub finality: Mutex<Finality>,
    pub inbox: mpsc::Sender<Incoming>,
    pub bus: Bus,
    pub metrics: Metrics,
    pub readiness: Readiness,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    pub fn height(&self) -> u64 {
        lock(&self.head).0
    }

    pub fn subject(&self, kind: &str) -> String {
        format!("fiscus.{}.{}.{kind}", self.consortium, self.me)
    }

    /// Members as the chain's config says now.
    pub async fn refresh_members(&self) -> Result<BTreeSet<String>, tonic::Status> {
        let resp = self
            .ledger
            .clone()
            .get_state(GetStateRequest {
                key: b"gov/config".to_vec(),
                at_height: 0,
            })
            .await?
            .into_inner();
        let config = ConsortiumConfig::decode(&resp.value[..])
            .map_err(|e| tonic::Status::internal(format!("gov/config: {e}")))?;
        let members: BTreeSet<String> = config.members.iter().map(|m| m.org_code.clone()).collect();
        lock(&self.finality).set_members(members.clone());
        lock(&self.peers).retain_members(&members, &config, &self.cfg.peers, &self.me);
        Ok(members)
    }

    fn blame(&self, source: &Source, why: &Refusal) {
        self.metrics
            .refused
            .with_label_values(&[refusal_label(why)])
            .inc();
        if let Some(peer) = source.peer() {
            let banned = lock(&self.peers).penalize(peer, 10, &self.cfg);
            tracing::warn!(peer, error = %why, banned, "refused a block from a peer");
        } else {
            tracing::error!(source = ?source, error = %why, "refused a block from an orderer");
        }
    }

    /// Records an attestation (ours or a peer's) and reacts to what it changed.
    pub async fn record_attestation(&self, signed: SignedAttestation) -> Result<bool, Refusal> {
        // Attestations travel with heartbeats and exchanges, so most arrive
        // more than once: an exact copy of a recorded one changes nothing.
        if let Ok(att) = Attestation::decode(&signed.attestation[..])
            && lock(&self.finality).holds(&att.member, att.height, &signed)
        {
            return Ok(false);
        }
        let att = verify_attestation(&self.certs, &signed)?;
        // Whoever relayed it, its signer has committed that height.
        lock(&self.peers).has_height(&att.member, att.height);
        let out =
            lock(&self.finality).record(&att.member, att.height, triple(&att), signed.clone());
        if out.majority.is_some() || !out.newly_final.is_empty() {
            let final_height = lock(&self.finality).final_height();
            let majority = out.majority.clone().map(|(_, v)| v).unwrap_or_default();
            let mut ingest = self.ingest.clone();
            // The ledger serves the final height in ChainInfo and keeps the
            // majority's attestations for finality receipts. A lost height is
            // superseded by the next report; a lost majority set is retried.
            tokio::spawn(async move {
                let req = fiscus_proto::pb::ledger::ReportFinalRequest {
                    final_height,
                    majority,
                };
                for attempt in 0..5u32 {
                    match ingest.report_final(req.clone()).await {
                        Ok(_) => return,
                        Err(e) => {
                            tracing::debug!(error = %e, attempt, "could not report finality to the ledger");
                            tokio::time::sleep(std::time::Duration::from_millis(200 << attempt))
                                .await;
                        }
                    }
                }
            });
        }
        if let Some(h) = out.newly_final.last() {
            self.metrics.final_height.set(*h as i64);
            let now = now_ms();
            let mut t = lock(&self.timeline);
            for h in &out.newly_final {
                t.finalized(*h, now);
            }
        }
        if let Some(alarm) = out.alarm {
            self.raise(alarm, &att).await;
        }
        Ok(out.new)
    }

    async fn raise(&self, alarm: Alarm, latest: &Attestation) {
        self.metrics.alarms.inc();
        tracing::error!(
            height = alarm.height,
            diverging = ?alarm.diverging,
            attested = ?alarm.attested,
            "DIVERGENCE: members attested different hashes for one height"
        );
        // Re-judged on every change: a tie seen early resolves when more attest.
        let we = lock(&self.finality).we_diverge();
        match we {
            Some(h) => self.readiness.set(
                "divergence",
                Err(format!(
                    "this member's state differs from the majority at height {h}"
                )),
            ),
            None => self.readiness.set("divergence", Ok(())),
        }
        let theirs = lock(&self.finality).known(&BTreeSet::from([alarm.height]));
        let ours = theirs
            .iter()
            .filter_map(|s| Attestation::decode(&s.attestation[..]).ok())
            .find(|a| a.member == self.me)
            .unwrap_or_else(|| latest.clone());
        let event = DivergenceAlarm {
            height: alarm.height,
            ours: Some(ours),
            theirs,
        };
        self.bus
            .publish_durable(&self.subject("alarms"), event.encode_to_vec())
            .await;
    }

    /// After a commit: events, our attestation, and the push to peers.
    async fn committed(self: &Arc<Self>, v: &Verified, source: &Source, resp: CommitBlockResponse) {
        self.metrics.height.set(v.number as i64);
        self.metrics
            .blocks
            .with_label_values(&[source.label()])
            .inc();
        let now = now_ms();
        self.metrics
            .commit_lag
            .observe((now - resp.timestamp_ms).max(0) as f64 / 1000.0);
        lock(&self.timeline).committed(v.number, resp.timestamp_ms, now);
        let att = resp.attestation.clone().unwrap_or_default();
        let parsed = Attestation::decode(&att.attestation[..]).unwrap_or_default();
        let summary = BlockCommitted {
            height: v.number,
            block_hash: v.hash.to_vec(),
            state_hash: parsed.state_hash.clone(),
            receipts_root: parsed.receipts_root.clone(),
            tx_count: resp.txs.len() as u32,
            timestamp_ms: resp.timestamp_ms,
        };
        self.bus
            .publish_durable(&self.subject("blocks"), summary.encode_to_vec())
            .await;
        let txs = self.subject("txs");
        for t in &resp.txs {
            let e = TxStatusChanged {
                tx_id: t.tx_id.clone(),
                block_number: v.number,
                status: t.status,
                reason: t.reason.clone(),
            };
            self.bus.publish_durable(&txs, e.encode_to_vec()).await;
        }
        self.bus
            .publish_durable(&self.subject("attestations"), att.encode_to_vec())
            .await;
        if let Err(e) = self.record_attestation(att.clone()).await {
            tracing::error!(error = %e, "our own attestation does not verify: is this node's certificate in signers_dir?");
        }
        // Tell the others, and push blocks that are new to the network. While
        // catching up (pulled blocks), attestations travel with the heartbeats.
        let peers = match source {
            Source::Pull(_) => Vec::new(),
            _ => lock(&self.peers).alive(&self.cfg),
        };
        let push = matches!(source, Source::Orderer(_) | Source::Push(_));
        let from = source.peer().map(str::to_owned);
        let node = self.clone();
        let block = v.block.clone();
        let height = v.number;
        tokio::spawn(async move {
            for p in peers {
                let Some(mut c) = node.client(&p).await else {
                    continue;
                };
                let batch = AttestationBatch {
                    attestations: vec![att.clone()],
                };
                if let Ok(r) = c.exchange_attestations(batch).await {
                    for a in r.into_inner().attestations {
                        let _ = node.record_attestation(a).await;
                    }
                }
            }
            // Chosen after the exchange: a peer whose attestation for this
            // height came back has the block and needs no push.
            let push_to = if push {
                lock(&node.peers).fanout(node.cfg.fanout, height, from.as_deref())
            } else {
                Vec::new()
            };
            for p in push_to {
                let Some(mut c) = node.client(&p).await else {
                    continue;
                };
                let _ = c
                    .push_blocks(futures::stream::iter(vec![Block::clone(&block)]))
                    .await;
            }
        });
    }

    /// A gRPC client to peer `member`, connecting on first use.
    pub async fn client(&self, member: &str) -> Option<GossipClient<Channel>> {
        let (addr, name, existing) = {
            let p = lock(&self.peers);
            let e = p.get(member)?;
            (e.addr.clone(), e.server_name.clone(), e.client.clone())
        };
        if let Some(c) = existing {
            return Some(c);
        }
        let ch = tokio::time::timeout(
            Duration::from_secs(5),
            fiscus_common::tls::connect_channel(&addr, &name, self.tls.clone()),
        )
        .await
        .ok()?
        .ok()?;
        let c = GossipClient::new(ch)
            .max_decoding_message_size(self.cfg.max_message_bytes)
            .max_encoding_message_size(self.cfg.max_message_bytes);
        lock(&self.peers).set_client(member, c.clone());
        Some(c)
    }
}

fn refusal_label(r: &Refusal) -> &'static str {
    match r {
        Refusal::Malformed(_) => "malformed",
        Refusal::BadOrdererSignature(_) => "bad_orderer_signature",
        Refusal::BadLink(..) => "bad_link",
        Refusal::BadAttestation(_) => "bad_attestation",
    }
}

/// The only path into the ledger: blocks in height order, each linked to the last.
pub async fn committer(node: Arc<Node>, mut rx: mpsc::Receiver<Incoming>) {
    let mut pending: BTreeMap<u64, (Verified, Source)> = BTreeMap::new();
    let mut last_report = Instant::now();
    let mut since_report = 0u64;
    while let Some(first) = rx.recv().await {
        // Take everything already queued, so the next block is at hand for look-ahead.
        let mut batch = vec![first];
        while batch.len() < node.cfg.max_pending_blocks {
            match rx.try_recv() {
                Ok(i) => batch.push(i),
                Err(_) => break,
            }
        }
        let (h, _) = *lock(&node.head);
        for Incoming::Block(v, source) in batch {
            if v.number > h && v.number <= h + node.cfg.max_pending_blocks as u64 {
                pending.entry(v.number).or_insert((*v, source));
            }
        }
        loop {
            // The run of consecutive, linked blocks from the head on.
            let (h, hash) = *lock(&node.head);
            let mut run: Vec<(Verified, Source)> = Vec::new();
            let mut prev = hash;
            while run.len() < MAX_COMMIT_RUN {
                let n = h + 1 + run.len() as u64;
                let Some((v, source)) = pending.remove(&n) else {
                    break;
                };
                if v.prev_hash != prev {
                    node.blame(&source, &Refusal::BadLink(v.number, n - 1));
                    break;
                }
                prev = v.hash;
                run.push((v, source));
            }
            if run.is_empty() {
                break;
            }
            match commit_run(&node, &run).await {
                Ok((committed, refused)) => {
                    let done = committed.len();
                    for ((v, source), resp) in run.iter().zip(committed) {
                        *lock(&node.head) = (v.number, v.hash);
                        node.committed(v, source, resp).await;
                        since_report += 1;
                    }
                    let mut rest = run.into_iter().skip(done);
                    match refused.as_deref() {
                        None => {}
                        Some("ledger.not_next") => {
                            // Someone else fed the ledger: take its head.
                            resync_head(&node).await;
                        }
                        Some("ledger.bad_block") => {
                            if let Some((_, source)) = rest.next() {
                                node.blame(
                                    &source,
                                    &Refusal::Malformed("the ledger refused the block".into()),
                                );
                            }
                        }
                        Some(code) => {
                            // Not the block's fault (e.g. this build lacks a contract version).
                            tracing::error!(code, "the ledger cannot commit; retrying");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                    for (v, source) in rest {
                        pending.insert(v.number, (v, source));
                    }
                }
                Err(s) => {
                    // The ledger is unavailable: keep the blocks and retry shortly.
                    tracing::warn!(error = %s.message(), "ledger-store unavailable; retrying");
                    for (v, source) in run {
                        pending.insert(v.number, (v, source));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
            }
        }
        if last_report.elapsed() >= Duration::from_secs(5) && since_report > 0 {
            let rate = since_report as f64 / last_report.elapsed().as_secs_f64();
            tracing::info!(
                height = node.height(),
                blocks_per_s = rate as u64,
                pending = pending.len(),
                "committing"
            );
            last_report = Instant::now();
            since_report = 0;
        }
    }
}

/// Blocks handed to the ledger in one atomic commit while catching up.
const MAX_COMMIT_RUN: usize = 64;

/// Commits a run of blocks: one block alone, or several in one ledger batch.
/// Returns the answers for the committed ones and the error code of the first
/// refused one.
async fn commit_run(
    node: &Arc<Node>,
    run: &[(Verified, Source)],
) -> Result<(Vec<CommitBlockResponse>, Option<String>), tonic::Status> {
    let mut ingest = node.ingest.clone();
    if run.len() == 1 {
        return match ingest.commit_block(Block::clone(&run[0].0.block)).await {
            Ok(r) => Ok((vec![r.into_inner()], None)),
            Err(s) => match error_code(&s) {
                Some(code)
                    if code.starts_with("ledger.")
                        && code != "ledger.executor_unavailable"
                        && code != "ledger.internal" =>
                {
                    Ok((Vec::new(), Some(code.to_owned())))
                }
                _ => Err(s),
            },
        };
    }
    let req = fiscus_proto::pb::ledger::CommitBlocksRequest {
        blocks: run.iter().map(|(v, _)| Block::clone(&v.block)).collect(),
    };
    let r = ingest.commit_blocks(req).await?.into_inner();
    let refused = (!r.error_code.is_empty()).then_some(r.error_code);
    match refused.as_deref() {
        Some("ledger.executor_unavailable" | "ledger.internal") if r.committed.is_empty() => {
            Err(tonic::Status::unavailable(r.error))
        }
        _ => Ok((r.committed, refused)),
    }
}

/// Takes the ledger's head after someone else fed it.
async fn resync_head(node: &Arc<Node>) {
    if let Ok(info) = node
        .ledger
        .clone()
        .get_chain_info(ChainInfoRequest {})
        .await
    {
        let info = info.into_inner();
        if let Ok(hash) = Hash32::from_slice("hash", &info.last_block_hash) {
            *lock(&node.head) = (info.height, hash);
        }
    }
}

fn error_code(s: &tonic::Status) -> Option<&str> {
    s.metadata()
        .get(fiscus_common::error::GRPC_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
}

/// Follows the orderers' `Deliver` streams from this member's next height,
/// failing over between them.
pub async fn orderer_follower(node: Arc<Node>, orderers: Vec<Endpoint>) {
    let mut backoff = Duration::from_millis(100);
    for ep in orderers.iter().cycle() {
        match follow(&node, ep).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                node.readiness
                    .set("orderer", Err(format!("{}: {e}", ep.addr)));
                tracing::debug!(orderer = %ep.addr, error = %e, "orderer stream ended");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn follow(node: &Arc<Node>, ep: &Endpoint) -> Result<(), String> {
    let ch = tokio::time::timeout(
        Duration::from_secs(5),
        fiscus_common::tls::connect_channel(&ep.addr, &ep.server_name, node.tls.clone()),
    )
    .await
    .map_err(|_| "connect timed out".to_owned())?
    .map_err(|e| e.to_string())?;
    let mut c = OrdererClient::new(ch).max_decoding_message_size(node.cfg.max_message_bytes);
    let from = node.height() + 1;
    let mut stream = c
        .deliver(DeliverRequest { from_height: from })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    node.readiness.set("orderer", Ok(()));
    while let Some(b) = stream.next().await {
        let b = b.map_err(|s| s.message().to_owned())?;
        match verify_block(&node.certs, &node.limits, b) {
            Ok(v) => {
                if v.number <= node.height() {
                    continue;
                }
                node.inbox
                    .send(Incoming::Block(
                        Box::new(v),
                        Source::Orderer(ep.addr.clone()),
                    ))
                    .await
                    .map_err(|_| "gateway stopping".to_owned())?;
            }
            Err(e) => {
                node.blame(&Source::Orderer(ep.addr.clone()), &e);
                return Err(e.to_string());
            }
        }
    }
    Err("the orderer closed the stream".into())
}

/// Heartbeats with suspicion, height digests, anti-entropy pulls and
/// attestation exchange, every `heartbeat_ms`.
pub async fn heartbeats(node: Arc<Node>) {
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
        let alive = lock(&node.peers).count(Liveness::Alive);
        node.metrics.peers_alive.set(alive as i64);
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

/// Sends our attestations for the heights not yet final and records the peer's.
async fn exchange_recent(node: &Arc<Node>, c: &mut GossipClient<Channel>) {
    let (from, to) = {
        let f = lock(&node.finality);
        (f.final_height() + 1, node.height())
    };
    if from > to {
        return;
    }
    // The oldest heights not yet final first: a member catching up works forward.
    let heights: BTreeSet<u64> = (from..=to).take(256).collect();
    let ours = lock(&node.finality).known(&heights);
    if let Ok(r) = c
        .exchange_attestations(AttestationBatch { attestations: ours })
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

/// Records the attestations this member already has (after a restart).
pub async fn load_own_attestations(node: &Arc<Node>, from: u64, to: u64) {
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
