//! The Raft node actor: raft-rs `RawNode` plus the block cutter and the
//! commit pipeline, on one actix Arbiter.

use crate::block_cutter::{BlockCutter, Proposer};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::recent_txs::RecentTxs;
use crate::storage::{OrdererStore, Tip};
use crate::transport::{Step, Transport};
use actix::prelude::*;
use fiscus_common::codes;
use fiscus_proto::hash::{TxId, block_hash, tx_id};
use fiscus_proto::pb::types::{Block, BlockHeader, Envelope};
use prost::Message as _;
use raft::eraftpb::{Entry, EntryType, Message as RaftMsg};
use raft::{RawNode, StateRole};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// What finally happened to an admitted transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Committed(u64),
    /// Already in an earlier block.
    Duplicate(u64),
    Failed {
        code: &'static str,
        reason: String,
    },
}

/// The node's state as others may read it at any time.
#[derive(Debug, Clone, Default)]
pub struct StatusView {
    pub node_id: u64,
    pub leader_id: u64,
    pub term: u64,
    pub role: &'static str,
    pub height: u64,
    pub commit_index: u64,
    pub applied_index: u64,
    /// (peer id, matched index) as seen by a leader.
    pub progress: Vec<(u64, u64)>,
}

/// Admitted transactions for the block cutter, each with who to tell.
#[derive(Debug, Message)]
#[rtype(result = "Result<()>")]
pub struct Submit(
    pub  Vec<(
        TxId,
        Envelope,
        oneshot::Sender<Outcome>,
        Option<fiscus_proto::pb::types::TraceLink>,
    )>,
);

/// Adds or removes an orderer node through a Raft conf change (leader only).
#[derive(Debug, Message)]
#[rtype(result = "Result<()>")]
pub enum ChangeMembership {
    Add(crate::config::Peer),
    Remove(u64),
}

pub struct RaftNode {
    pub(crate) raw: RawNode<OrdererStore>,
    pub(crate) store: OrdererStore,
    pub(crate) transport: Transport,
    proposer: Proposer,
    cutter: BlockCutter,
    tick: Duration,
    /// Admitted and not yet committed, with everyone waiting on each.
    waiters: HashMap<TxId, Vec<oneshot::Sender<Outcome>>>,
    was_leader: bool,
    /// The last non-zero leader id seen, for the leader-changes counter.
    last_leader: u64,
    max_pending: usize,
    status: Arc<RwLock<StatusView>>,
    tip_tx: watch::Sender<u64>,
    pub(crate) metrics: crate::metrics::Metrics,
    pub(crate) recent: RecentTxs,
    /// This node's own address entry, kept in the stored peer list.
    me: crate::config::Peer,
    compact_after: u64,
    compact_keep: u64,
    block_clock: Option<crate::config::BlockClock>,
    /// Blocks fetched ahead of a snapshot (`snapshot.rs`).
    pub(crate) catch_up: crate::snapshot::CatchUp,
}

impl std::fmt::Debug for RaftNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RaftNode")
            .field("id", &self.raw.raft.id)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Shared handles the service needs.
#[derive(Debug, Clone)]
pub struct NodeHandles {
    pub status: Arc<RwLock<StatusView>>,
    pub tip: watch::Receiver<u64>,
}

impl RaftNode {
    pub fn new(
        cfg: &Config,
        store: OrdererStore,
        transport: Transport,
        proposer: Proposer,
        metrics: crate::metrics::Metrics,
    ) -> Result<(Self, NodeHandles)> {
        let raft_cfg = raft::Config {
            id: cfg.node_id,
            election_tick: cfg.raft.election_ticks,
            heartbeat_tick: cfg.raft.heartbeat_ticks,
            max_size_per_msg: cfg.raft.max_msg_bytes,
            max_inflight_msgs: cfg.raft.max_inflight_msgs,
            applied: store.applied(),
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        raft_cfg.validate()?;
        let hs = store.hard_state();
        tracing::info!(
            node = cfg.node_id,
            term = hs.term,
            commit = hs.commit,
            applied = store.applied(),
            height = store.tip().height,
            "raft node starting"
        );
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let raw = RawNode::new(&raft_cfg, store.clone(), &logger)?;
        let tip = store.tip();
        let recent = RecentTxs::load(&store, cfg.dedupe_window_blocks)?;
        let status = Arc::new(RwLock::new(StatusView {
            node_id: cfg.node_id,
            height: tip.height,
            ..StatusView::default()
        }));
        let (tip_tx, tip_rx) = watch::channel(tip.height);
        let node = Self {
            raw,
            cutter: BlockCutter::new(cfg.batching.clone(), tip),
            store,
            transport,
            proposer,
            tick: Duration::from_millis(cfg.raft.tick_ms),
            waiters: HashMap::new(),
            was_leader: false,
            last_leader: 0,
            max_pending: cfg.max_pending_txs,
            status: status.clone(),
            tip_tx,
            metrics,
            recent,
            compact_after: cfg.compact_after_entries,
            compact_keep: cfg.compact_keep_entries,
            block_clock: cfg.block_clock,
            catch_up: Default::default(),
            me: cfg
                .peers
                .iter()
                .find(|p| p.id == cfg.node_id)
                .cloned()
                .ok_or_else(|| Error::Config("node_id is not among the peers".into()))?,
        };
        Ok((
            node,
            NodeHandles {
                status,
                tip: tip_rx,
            },
        ))
    }

    fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }

    fn fail_all(&mut self, ids: Vec<TxId>, code: &'static str, reason: &str) {
        for id in ids {
            if let Some(ws) = self.waiters.remove(&id) {
                for w in ws {
                    let _ = w.send(Outcome::Failed {
                        code,
                        reason: reason.to_owned(),
                    });
                }
            }
        }
    }

    /// Cuts and proposes every block that is due.
    fn cut_and_propose(&mut self) {
        if !self.is_leader() {
            return;
        }
        let wall = now_ms();
        let block_time = self.block_clock.map_or(wall, |c| c.at(wall));
        while let Some(cut) = self.cutter.cut(Instant::now(), block_time, &self.proposer) {
            // The cut, linked to the submissions it orders (sampled ones only).
            let span = tracing::info_span!(
                "orderer_node.cut_block",
                fiscus.block = cut.height,
                fiscus.txs = cut.txs
            );
            fiscus_common::telemetry::add_links(&span, &cut.links);
            drop(span);
            match self.raw.propose(vec![], cut.bytes) {
                Ok(()) => {
                    let index = self.raw.raft.raft_log.last_index();
                    self.cutter.proposed_at(index, Instant::now());
                    tracing::debug!(height = cut.height, index, "proposed block");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "proposal refused; queued transactions fail");
                    let ids = self.cutter.drain();
                    self.fail_all(
                        ids,
                        codes::orderer::RETRY,
                        "the block could not be proposed; resubmit",
                    );
                    return;
                }
            }
        }
    }

    /// Applies one committed entry. Block entries are checked against the tip
    /// the same way on every node, so every node keeps or skips the same ones.
    fn apply(
        batch: &mut crate::storage::StoreBatch<'_>,
        recent: &mut RecentTxs,
        entry: &Entry,
        done: &mut Vec<(Vec<TxId>, Outcome)>,
    ) -> Result<()> {
        if entry.get_entry_type() != EntryType::EntryNormal || entry.data.is_empty() {
            // A new leader's empty entry, or a conf change (not used yet).
            return Ok(());
        }
        let tip = batch.tip();
        let verdict = (|| -> std::result::Result<(Tip, Vec<TxId>), String> {
            let block =
                Block::decode(&entry.data[..]).map_err(|e| format!("undecodable block: {e}"))?;
            let header = BlockHeader::decode(&block.header[..])
                .map_err(|e| format!("undecodable header: {e}"))?;
            if header.number != tip.height + 1 || header.prev_hash != tip.hash.0 {
                return Err(format!(
                    "block {} does not extend tip {}",
                    header.number, tip.height
                ));
            }
            if header.timestamp_ms < tip.timestamp_ms {
                return Err("timestamp goes backwards".into());
            }
            let ids: Vec<TxId> = block.txs.iter().map(|t| tx_id(&t.payload)).collect();
            let mut seen = std::collections::BTreeSet::new();
            for id in &ids {
                if !seen.insert(*id) || recent.height_of(id).is_some() {
                    return Err(format!("tx {id} is already ordered"));
                }
            }
            Ok((
                Tip {
                    height: header.number,
                    hash: block_hash(&block.header),
                    timestamp_ms: header.timestamp_ms,
                },
                ids,
            ))
        })();
        match verdict {
            Ok((new_tip, ids)) => {
                batch.put_block(new_tip, &entry.data)?;
                recent.push(new_tip.height, ids.clone());
                done.push((ids, Outcome::Committed(new_tip.height)));
            }
            Err(why) => {
                tracing::info!(index = entry.index, %why, "skipping committed entry that is not the next block");
                if let Ok(block) = Block::decode(&entry.data[..]) {
                    let ids = block.txs.iter().map(|t| tx_id(&t.payload)).collect();
                    done.push((
                        ids,
                        Outcome::Failed {
                            code: codes::orderer::RETRY,
                            reason: "the block was superseded; resubmit".into(),
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    fn apply_all(
        &mut self,
        entries: &[Entry],
        batch: &mut crate::storage::StoreBatch<'_>,
        done: &mut Vec<(Vec<TxId>, Outcome)>,
        last: &mut Option<u64>,
    ) -> Result<()> {
        for e in entries {
            if e.get_entry_type() == EntryType::EntryConfChange {
                self.apply_conf_change(batch, e)?;
            } else {
                Self::apply(batch, &mut self.recent, e, done)?;
            }
            *last = Some(e.index);
        }
        if let Some(i) = *last {
            batch.set_applied(i)?;
        }
        Ok(())
    }

    /// Hands messages to the transport. A snapshot is reported as sent at once:
    /// if it was lost, the follower's next rejection makes the leader send another.
    fn send(&mut self, msgs: Vec<RaftMsg>) {
        let snapshots: Vec<u64> = msgs
            .iter()
            .filter(|m| m.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot)
            .map(|m| m.to)
            .collect();
        self.transport.send_all(msgs);
        for to in snapshots {
            self.raw.report_snapshot(to, raft::SnapshotStatus::Finish);
        }
    }

    /// Compacts the log once enough applied entries have piled up.
    fn maybe_compact(&mut self) -> Result<()> {
        if self.compact_after == 0 {
            return Ok(());
        }
        let applied = self.store.applied();
        let store = self.store.clone();
        let mut batch = store.batch()?;
        if applied + 1 >= batch.first_index() + self.compact_after {
            let upto = applied + 1 - self.compact_keep.min(applied);
            batch.compact(upto)?;
            batch.commit()?;
            self.metrics.compactions.inc();
            // raft-rs keeps no copy of compacted entries; nothing else to tell it.
            tracing::debug!(upto, "compacted raft log");
        }
        Ok(())
    }

    /// A membership change: every node applies it at the same log index.
    fn apply_conf_change(
        &mut self,
        batch: &mut crate::storage::StoreBatch<'_>,
        entry: &Entry,
    ) -> Result<()> {
        use protobuf::Message as _;
        let cc = raft::eraftpb::ConfChange::parse_from_bytes(&entry.data).map_err(Error::from)?;
        let cs = self.raw.apply_conf_change(&cc)?;
        batch.set_conf_state(&cs)?;
        match cc.get_change_type() {
            raft::eraftpb::ConfChangeType::AddNode
            | raft::eraftpb::ConfChangeType::AddLearnerNode => {
                match serde_json::from_slice::<crate::config::Peer>(&cc.context) {
                    Ok(peer) => self.transport.add_peer(peer),
                    Err(e) => {
                        tracing::warn!(node = cc.node_id, error = %e, "added node carries no usable address")
                    }
                }
            }
            raft::eraftpb::ConfChangeType::RemoveNode => self.transport.remove_peer(cc.node_id),
        }
        let mut peers = self.transport.peers();
        peers.push(self.me.clone());
        peers.retain(|p| cs.voters.contains(&p.id) || cs.learners.contains(&p.id));
        peers.sort_by_key(|p| p.id);
        batch.set_peers(&peers)?;
        tracing::info!(voters = ?cs.voters, "membership changed");
        Ok(())
    }

    /// raft-rs `Ready` handling, in the documented order.
    fn on_ready(&mut self) -> Result<()> {
        if !self.raw.has_ready() {
            return Ok(());
        }
        let mut ready = self.raw.ready();
        // 1. A leader may send appends before persisting them: followers persist
        //    before acking, and the leader counts its own vote only once persisted.
        self.send(ready.take_messages());
        let store = self.store.clone();
        let mut batch = store.batch()?;
        // 2. A snapshot means we fell behind the leader's compaction point:
        //    store the blocks it covers (staged before it was stepped), then
        //    take its log position.
        if !ready.snapshot().is_empty() {
            self.install_snapshot(&mut batch, ready.snapshot())?;
        }
        // 3. Committed entries were persisted in an earlier Ready: apply them.
        let mut done = Vec::new();
        let mut last_applied = None;
        let committed = ready.take_committed_entries();
        self.apply_all(&committed, &mut batch, &mut done, &mut last_applied)?;
        // 4. New entries and hard state must be durable before any vote or ack
        //    that depends on them leaves this node: one fsynced write.
        batch.append(ready.entries())?;
        if let Some(hs) = ready.hs() {
            batch.set_hard_state(hs)?;
        }
        let timer = self.metrics.persist_seconds.start_timer();
        batch.commit()?;
        let took = timer.stop_and_record();
        fiscus_common::store::fsync_seconds()
            .with_label_values(&["raft"])
            .observe(took);
        // 5. Now the messages that promise persistence (votes, append acks) may go.
        self.send(ready.take_persisted_messages());
        // 6. Advance; the light ready carries what became committed meanwhile.
        let mut light = self.raw.advance(ready);
        let mut batch = store.batch()?;
        if let Some(commit) = light.commit_index() {
            batch.set_commit(commit)?;
        }
        self.send(light.take_messages());
        let committed = light.take_committed_entries();
        self.apply_all(&committed, &mut batch, &mut done, &mut last_applied)?;
        let timer = self.metrics.persist_seconds.start_timer();
        batch.commit()?;
        let took = timer.stop_and_record();
        fiscus_common::store::fsync_seconds()
            .with_label_values(&["raft"])
            .observe(took);
        // 7. Tell raft-rs the applied index only after the apply is durable.
        self.raw.advance_apply();

        let tip = self.store.tip();
        if let Some(i) = last_applied {
            for took in self.cutter.applied(i, tip, Instant::now()) {
                self.metrics
                    .proposal_commit_seconds
                    .observe(took.as_secs_f64());
            }
        }
        for (ids, outcome) in done {
            if matches!(outcome, Outcome::Committed(_)) {
                self.metrics.blocks_committed.inc();
                self.metrics.txs_committed.inc_by(ids.len() as u64);
            }
            for id in ids {
                if let Some(ws) = self.waiters.remove(&id) {
                    for w in ws {
                        let _ = w.send(outcome.clone());
                    }
                }
            }
        }
        self.tip_tx.send_if_modified(|h| {
            let changed = *h != tip.height;
            *h = tip.height;
            changed
        });
        self.after_ready();
        self.maybe_compact()
    }

    /// Follows leadership changes and publishes the status view.
    fn after_ready(&mut self) {
        let leader = self.is_leader();
        if leader && !self.was_leader {
            tracing::info!(term = self.raw.raft.term, "became leader");
            self.cutter.reset(self.store.tip());
        } else if !leader && self.was_leader {
            tracing::info!(
                term = self.raw.raft.term,
                leader = self.raw.raft.leader_id,
                "lost leadership"
            );
            let ids = self.cutter.drain();
            self.fail_all(
                ids,
                codes::orderer::NO_LEADER,
                "this node lost leadership; resubmit",
            );
        }
        self.was_leader = leader;
        let r = &self.raw.raft;
        if r.leader_id != 0 && r.leader_id != self.last_leader {
            self.last_leader = r.leader_id;
            self.metrics.raft_leader_changes.inc();
        }
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.metrics.raft_leader_id.set(gauge(r.leader_id));
        self.metrics.raft_term.set(gauge(r.term));
        self.metrics.height.set(gauge(self.store.tip().height));
        let mut s = self.status.write().unwrap_or_else(|e| e.into_inner());
        s.leader_id = r.leader_id;
        s.term = r.term;
        s.role = match r.state {
            StateRole::Leader => "leader",
            StateRole::Follower => "follower",
            StateRole::Candidate => "candidate",
            StateRole::PreCandidate => "pre-candidate",
        };
        s.height = self.store.tip().height;
        s.commit_index = r.raft_log.committed;
        s.applied_index = r.raft_log.applied;
        s.progress = if leader {
            let mut p: Vec<(u64, u64)> = r.prs().iter().map(|(id, pr)| (*id, pr.matched)).collect();
            p.sort_unstable();
            p
        } else {
            Vec::new()
        };
    }

    fn drive(&mut self, ctx: &mut Context<Self>) {
        self.cut_and_propose();
        if let Err(e) = self.on_ready() {
            // Storage failure: the node cannot keep its promises; stop it rather than diverge.
            tracing::error!(error = %e, "raft node failed; stopping");
            ctx.stop();
        }
        // Every push, cut and drain ends here.
        self.metrics
            .admission_queue_depth
            .set(i64::try_from(self.cutter.len()).unwrap_or(i64::MAX));
    }
}

impl Actor for RaftNode {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(4096);
        ctx.run_interval(self.tick, |node, ctx| {
            node.raw.tick();
            node.waiters.retain(|_, ws| {
                ws.retain(|w| !w.is_closed());
                !ws.is_empty()
            });
            node.drive(ctx);
        });
        // Batch timeouts are shorter than ticks: check the cutter on its own clock.
        ctx.run_interval(Duration::from_millis(5), |node, ctx| {
            if node.is_leader() && !node.cutter.is_empty() {
                node.drive(ctx);
            }
        });
    }
}

impl Handler<Step> for RaftNode {
    type Result = ();

    fn handle(&mut self, msg: Step, ctx: &mut Context<Self>) {
        for m in msg.0 {
            if m.get_msg_type() == raft::eraftpb::MessageType::MsgSnapshot
                && !self.snapshot_ready(&m, ctx)
            {
                continue;
            }
            if let Err(e) = self.raw.step(m) {
                tracing::debug!(error = %e, "raft step refused a message");
            }
        }
        self.drive(ctx);
    }
}

impl Handler<ChangeMembership> for RaftNode {
    type Result = Result<()>;

    fn handle(&mut self, msg: ChangeMembership, ctx: &mut Context<Self>) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader {
                leader: Some(self.raw.raft.leader_id).filter(|l| *l != 0),
            });
        }
        let mut cc = raft::eraftpb::ConfChange::default();
        match msg {
            ChangeMembership::Add(peer) => {
                cc.set_change_type(raft::eraftpb::ConfChangeType::AddNode);
                cc.node_id = peer.id;
                cc.context = serde_json::to_vec(&peer).map_err(Error::from)?.into();
            }
            ChangeMembership::Remove(id) => {
                cc.set_change_type(raft::eraftpb::ConfChangeType::RemoveNode);
                cc.node_id = id;
            }
        }
        self.raw.propose_conf_change(vec![], cc)?;
        self.drive(ctx);
        Ok(())
    }
}

impl Handler<Submit> for RaftNode {
    type Result = Result<()>;

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) -> Result<()> {
        if !self.is_leader() {
            let leader = Some(self.raw.raft.leader_id).filter(|l| *l != 0);
            for (_, _, w, _) in msg.0 {
                let _ = w.send(Outcome::Failed {
                    code: codes::orderer::NO_LEADER,
                    reason: format!(
                        "node {} is not the leader (leader: {leader:?}); resubmit",
                        self.raw.raft.id
                    ),
                });
            }
            return Err(Error::NotLeader { leader });
        }
        for (id, env, w, link) in msg.0 {
            if let Some(h) = self.recent.height_of(&id) {
                let _ = w.send(Outcome::Duplicate(h));
                continue;
            }
            let full = self.waiters.len() >= self.max_pending;
            match self.waiters.get_mut(&id) {
                // Resubmitted while pending: wait for the same copy, never order it twice.
                Some(ws) => ws.push(w),
                None if full => {
                    let _ = w.send(Outcome::Failed {
                        code: codes::orderer::BUSY,
                        reason: "too many pending transactions; retry later".into(),
                    });
                }
                None => {
                    self.waiters.insert(id, vec![w]);
                    self.cutter.push(id, env, link);
                }
            }
        }
        self.drive(ctx);
        Ok(())
    }
}
