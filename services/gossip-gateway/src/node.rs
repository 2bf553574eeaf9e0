//! What the gateway's tasks share: the [`Node`] (this member's head, peers,
//! finality, clients and metrics), the recording of attestations and the
//! publication of commit events. The tasks are the committer
//! (`crate::committer`, the only path into the ledger), the orderer follower
//! (`crate::follower`) and the heartbeat / anti-entropy loop
//! (`crate::anti_entropy`); they hand blocks to the committer through one
//! bounded inbox, so a flood of blocks back-pressures the senders.

use crate::bus::Bus;
use crate::chain::{Refusal, Verified, triple, verify_attestation};
use crate::config::Config;
use crate::finality::{Alarm, Finality};
use crate::metrics::{Metrics, Timeline, now_ms};
use crate::peers::Peers;
use fiscus_common::certs::Certs;
use fiscus_common::ops_server::Readiness;
use fiscus_proto::DecodeLimits;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::events::{DivergenceAlarm, TxStatusChanged};
use fiscus_proto::pb::gossip::AttestationBatch;
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::ledger::ledger_ingest_client::LedgerIngestClient;
use fiscus_proto::pb::ledger::{CommitBlockResponse, GetStateRequest};
use fiscus_proto::pb::types::{Attestation, Block, ConsortiumConfig, SignedAttestation};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
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
    pub(crate) fn peer(&self) -> Option<&str> {
        match self {
            Source::Push(m) | Source::Pull(m) => Some(m),
            Source::Orderer(_) => None,
        }
    }

    pub(crate) fn label(&self) -> &'static str {
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

/// Per-block dissemination tasks (attestation exchange, block push) in flight
/// at most. One is started per committed block; when the peers are slower
/// than the commits, later blocks are not pushed (counted in
/// `fiscus_gossip_disseminations_skipped_total`) and reach the peers through
/// anti-entropy instead, so the number of tasks never grows with the backlog.
pub const MAX_DISSEMINATIONS: usize = 32;

/// Heights whose majority attestation sets wait for the ledger at most; past
/// that (the ledger unreachable for long), the oldest are dropped with an
/// error log and those heights have no finality receipt.
pub const MAX_UNREPORTED_MAJORITIES: usize = 10_000;

/// What the ledger has not been told yet: the highest final height and the
/// agreeing majorities of the heights that reached one. Recording an
/// attestation only adds here (it never waits on the ledger); the reporter
/// task ([`report_finality`]) sends everything gathered in one
/// `ReportFinal` call, so a burst of heights costs the ledger one write.
#[derive(Debug, Default)]
pub struct FinalityOutbox {
    pending: Mutex<(u64, BTreeMap<u64, Vec<SignedAttestation>>)>,
    wake: tokio::sync::Notify,
}

impl FinalityOutbox {
    /// Queues `final_height` and, for a height that just reached one, its
    /// agreeing majority (as [`Finality::record`] reports it).
    fn add(&self, final_height: u64, majority: Option<(u64, Vec<SignedAttestation>)>) {
        {
            let mut p = lock(&self.pending);
            p.0 = p.0.max(final_height);
            if let Some((h, set)) = majority {
                p.1.entry(h).or_insert(set);
            }
            while p.1.len() > MAX_UNREPORTED_MAJORITIES {
                if let Some((h, _)) = p.1.pop_first() {
                    tracing::error!(
                        height = h,
                        "the ledger-store has not taken finality reports for long; height {h} will have no finality receipt"
                    );
                }
            }
        }
        self.wake.notify_one();
    }

    fn take(&self) -> (u64, BTreeMap<u64, Vec<SignedAttestation>>) {
        let mut p = lock(&self.pending);
        (p.0, std::mem::take(&mut p.1))
    }

    /// Puts back what could not be reported, under anything newer.
    fn restore(&self, majorities: BTreeMap<u64, Vec<SignedAttestation>>) {
        let mut p = lock(&self.pending);
        for (h, v) in majorities {
            p.1.entry(h).or_insert(v);
        }
    }
}

/// Sends the finality outbox to the member's ledger-store, forever: one call
/// per wake-up with everything gathered, retried with backoff while the
/// ledger is unreachable.
pub async fn report_finality(node: Arc<Node>) {
    let mut reported = 0u64;
    let mut pause = Duration::from_millis(200);
    loop {
        node.finality_outbox.wake.notified().await;
        loop {
            let (final_height, majorities) = node.finality_outbox.take();
            if final_height <= reported && majorities.is_empty() {
                break;
            }
            let req = fiscus_proto::pb::ledger::ReportFinalRequest {
                final_height,
                majority: majorities.values().flatten().cloned().collect(),
            };
            match node.ingest.clone().report_final(req).await {
                Ok(_) => {
                    reported = final_height;
                    pause = Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::debug!(error = %e, "could not report finality to the ledger; retrying");
                    node.finality_outbox.restore(majorities);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// What every task shares.
#[derive(Debug)]
pub struct Node {
    pub timeline: Mutex<Timeline>,
    pub cfg: Config,
    pub me: String,
    pub consortium: String,
    pub certs: Certs,
    /// The consortium roots: an attestation by a node not on file (a member
    /// that joined after genesis) counts when its carried certificate chains
    /// to one.
    pub roots: fiscus_common::certs::Roots,
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
    /// Permits for dissemination tasks ([`MAX_DISSEMINATIONS`]).
    pub disseminations: Arc<tokio::sync::Semaphore>,
    /// When the member list was last re-read on a stranger's call.
    pub refreshed_for_caller: Mutex<Option<std::time::Instant>>,
    /// Finality not yet reported to the ledger ([`report_finality`]).
    pub finality_outbox: FinalityOutbox,
    /// Committed heights' events not yet stored by the bus ([`crate::events`]).
    pub event_outbox: crate::events::EventOutbox,
}

fn member_set(config: &ConsortiumConfig) -> BTreeSet<String> {
    config.members.iter().map(|m| m.org_code.clone()).collect()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Node {
    pub fn height(&self) -> u64 {
        lock(&self.head).0
    }

    pub fn subject(&self, kind: &str) -> String {
        format!("fiscus.{}.{}.{kind}", self.consortium, self.me)
    }

    /// The consortium config as of `at_height` (0: the head) and the block
    /// that wrote it (0: genesis).
    async fn config_at(&self, at_height: u64) -> Result<(ConsortiumConfig, u64), tonic::Status> {
        let resp = self
            .ledger
            .clone()
            .get_state(GetStateRequest {
                key: b"gov/config".to_vec(),
                at_height,
            })
            .await?
            .into_inner();
        let config = ConsortiumConfig::decode(&resp.value[..])
            .map_err(|e| tonic::Status::internal(format!("gov/config: {e}")))?;
        Ok((config, resp.version))
    }

    /// Members as the chain's config says now; finality also learns the
    /// member sets of the history it did not know (walking back through the
    /// config's versions: one written in block v is in force from v + 1).
    pub async fn refresh_members(&self) -> Result<BTreeSet<String>, tonic::Status> {
        let (config, version) = self.config_at(0).await?;
        let members = member_set(&config);
        let mut eras = BTreeMap::new();
        let (mut era_config, mut v) = (config.clone(), version);
        // At most this many changes are read back per refresh; the rest on the next.
        for _ in 0..64 {
            let from = if v == 0 { 0 } else { v + 1 };
            if lock(&self.finality).has_era(from) {
                break;
            }
            eras.insert(from, member_set(&era_config));
            // Before block 1 is the genesis config, which era 0 holds (and
            // `at_height` 0 would read the head).
            if v <= 1 {
                break;
            }
            match self.config_at(v - 1).await {
                Ok(c) => (era_config, v) = c,
                Err(e) => {
                    tracing::debug!(error = %e.message(), height = v - 1, "could not read an older config");
                    break;
                }
            }
        }
        lock(&self.finality).add_eras(eras);
        lock(&self.peers).retain_members(&members, &config, &self.cfg.peers, &self.me);
        Ok(members)
    }

    /// Whether `member` is a current member as this gateway last read it.
    pub fn is_member(&self, member: &str) -> bool {
        lock(&self.peers).is_member(member)
    }

    /// Re-reads the member list unless that was done for a caller less than
    /// a second ago (a stranger cannot make this gateway read it more often).
    pub async fn refresh_members_soon(&self) {
        {
            let mut last = lock(&self.refreshed_for_caller);
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Err(e) = self.refresh_members().await {
            tracing::warn!(error = %e.message(), "could not re-read the member list");
        }
    }

    pub(crate) fn blame(&self, source: &Source, why: &Refusal) {
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
        let att = verify_attestation(&self.certs, &self.roots, &signed)?;
        // Whoever relayed it, its signer has committed that height.
        lock(&self.peers).has_height(&att.member, att.height);
        self.metrics.attested(&att.member, att.height);
        self.metrics.knows(att.height);
        let mut out =
            lock(&self.finality).record(&att.member, att.height, triple(&att), signed.clone());
        if out.majority.is_some() || !out.newly_final.is_empty() {
            let final_height = lock(&self.finality).final_height();
            // The ledger serves the final height in ChainInfo and keeps the
            // majority's attestations for finality receipts: queued for the
            // reporter task, which sends whatever has gathered in one call.
            self.finality_outbox.add(final_height, out.majority.take());
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

    #[tracing::instrument(
        name = "gateway.divergence_alarm",
        skip_all,
        fields(fiscus.member = %self.me, fiscus.block = alarm.height, messaging.system = "nats")
    )]
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
        let theirs = lock(&self.finality).at(alarm.height).unwrap_or_default();
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

    /// After a commit: events, our attestation, and the push to peers. One
    /// span, so that every event published for the block carries its trace
    /// context (`traceparent`).
    #[tracing::instrument(
        name = "gateway.committed",
        skip_all,
        fields(fiscus.member = %self.me, fiscus.block = v.number, messaging.system = "nats")
    )]
    pub(crate) async fn committed(
        self: &Arc<Self>,
        v: &Verified,
        source: &Source,
        resp: CommitBlockResponse,
    ) {
        self.metrics.height.set(v.number as i64);
        self.metrics.knows(v.number);
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
        let summary =
            crate::events::block_summary(v.number, &att, resp.txs.len(), resp.timestamp_ms);
        let txs = resp.txs.iter().map(|t| TxStatusChanged {
            tx_id: t.tx_id.clone(),
            block_number: v.number,
            status: t.status,
            reason: t.reason.clone(),
        });
        // Handed to the publisher: the bus never holds up the chain.
        self.event_outbox.push(
            v.number,
            crate::events::height_events(self, &summary, txs, &att),
        );
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
        let Ok(permit) = self.disseminations.clone().try_acquire_owned() else {
            self.metrics.disseminations_skipped.inc();
            return;
        };
        let node = self.clone();
        let block = v.block.clone();
        let height = v.number;
        tokio::spawn(async move {
            let _permit = permit;
            for p in peers {
                let Some(mut c) = node.client(&p).await else {
                    continue;
                };
                let batch = AttestationBatch {
                    attestations: vec![att.clone()],
                    ..Default::default()
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

pub(crate) fn refusal_label(r: &Refusal) -> &'static str {
    match r {
        Refusal::Malformed(_) => "malformed",
        Refusal::BadOrdererSignature(_) => "bad_orderer_signature",
        Refusal::BadLink(..) => "bad_link",
        Refusal::BadAttestation(_) => "bad_attestation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(height: u64) -> SignedAttestation {
        SignedAttestation {
            attestation: Attestation {
                member: "130000".into(),
                height,
                ..Attestation::default()
            }
            .encode_to_vec(),
            signature: None,
        }
    }

    #[test]
    fn the_finality_outbox_coalesces_keeps_the_highest_height_and_takes_back_failures() {
        let o = FinalityOutbox::default();
        o.add(5, Some((5, vec![signed(5)])));
        o.add(7, Some((7, vec![signed(7)])));
        o.add(6, None);
        let (h, m) = o.take();
        assert_eq!(h, 7, "the highest final height wins");
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![5, 7]);
        // A failed report is put back under what arrived meanwhile.
        o.add(8, Some((8, vec![signed(8)])));
        o.restore(m);
        let (h, m) = o.take();
        assert_eq!(h, 8);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![5, 7, 8]);
        assert!(o.take().1.is_empty(), "taken means gone");
    }

    #[test]
    fn the_finality_outbox_is_bounded_and_drops_the_oldest_heights() {
        let o = FinalityOutbox::default();
        let n = MAX_UNREPORTED_MAJORITIES as u64 + 2;
        for h in 1..=n {
            o.add(h, Some((h, vec![signed(h)])));
        }
        let (h, m) = o.take();
        assert_eq!(h, n);
        assert_eq!(m.len(), MAX_UNREPORTED_MAJORITIES);
        assert_eq!(m.keys().next(), Some(&3), "heights 1 and 2 were dropped");
    }
}
