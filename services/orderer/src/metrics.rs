//! Prometheus metrics of one orderer node, also read by `fiscus bench orderer`
//! to split where the time goes.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

#[derive(Debug, Clone)]
pub struct Metrics {
    /// Seconds per fsynced write of one Ready (log entries, hard state, applied blocks).
    pub persist_seconds: Histogram,
    /// Seconds a pool thread spends verifying one admission batch (CPU, not queueing).
    pub verify_seconds: Histogram,
    pub blocks_committed: IntCounter,
    pub txs_committed: IntCounter,
    pub txs_refused: IntCounter,
    /// Snapshots installed (this node had fallen behind the leader's compaction point).
    pub snapshots_installed: IntCounter,
    /// Log compactions done.
    pub compactions: IntCounter,
    /// The leader this node knows (0: none), its Raft term, and the number
    /// of the last block it applied.
    pub raft_leader_id: IntGauge,
    pub raft_term: IntGauge,
    pub height: IntGauge,
    /// Changes to a different known leader this node has seen (the first
    /// leader it learns of counts as one).
    pub raft_leader_changes: IntCounter,
    /// Seconds from proposing a block to Raft to applying it (leader only).
    pub proposal_commit_seconds: Histogram,
    /// Admitted envelopes waiting to be cut into a block (leader only; 0 elsewhere).
    pub admission_queue_depth: IntGauge,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let buckets = vec![
            0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5,
        ];
        let persist_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "fiscus_orderer_persist_seconds",
                "Seconds per fsynced Raft Ready write",
            )
            .buckets(buckets.clone()),
        )?;
        let verify_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "fiscus_orderer_admission_verify_seconds",
                "Seconds per batched signature check",
            )
            .buckets(buckets),
        )?;
        let blocks_committed = IntCounter::new(
            "fiscus_orderer_blocks_committed_total",
            "Blocks applied by this node",
        )?;
        let txs_committed = IntCounter::new(
            "fiscus_orderer_txs_committed_total",
            "Transactions in applied blocks",
        )?;
        let txs_refused = IntCounter::new(
            "fiscus_orderer_txs_refused_total",
            "Envelopes refused at admission",
        )?;
        registry.register(Box::new(persist_seconds.clone()))?;
        registry.register(Box::new(verify_seconds.clone()))?;
        registry.register(Box::new(blocks_committed.clone()))?;
        registry.register(Box::new(txs_committed.clone()))?;
        registry.register(Box::new(txs_refused.clone()))?;
        let snapshots_installed = IntCounter::new(
            "fiscus_orderer_snapshots_installed_total",
            "Snapshots installed by this node",
        )?;
        let compactions = IntCounter::new(
            "fiscus_orderer_log_compactions_total",
            "Raft log compactions",
        )?;
        registry.register(Box::new(snapshots_installed.clone()))?;
        registry.register(Box::new(compactions.clone()))?;
        let raft_leader_id = IntGauge::new(
            "fiscus_orderer_raft_leader_id",
            "Node id of the Raft leader this node knows; 0 = none",
        )?;
        let raft_term = IntGauge::new("fiscus_orderer_raft_term", "Current Raft term")?;
        let height = IntGauge::new(
            "fiscus_orderer_height",
            "Number of the last block this node applied",
        )?;
        let raft_leader_changes = IntCounter::new(
            "fiscus_orderer_raft_leader_changes_total",
            "Changes to a different known Raft leader seen by this node",
        )?;
        registry.register(Box::new(raft_leader_id.clone()))?;
        registry.register(Box::new(raft_term.clone()))?;
        registry.register(Box::new(height.clone()))?;
        registry.register(Box::new(raft_leader_changes.clone()))?;
        let proposal_commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "fiscus_orderer_proposal_commit_seconds",
                "Seconds from proposing a block to Raft to applying it, on the leader",
            )
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5,
            ]),
        )?;
        let admission_queue_depth = IntGauge::new(
            "fiscus_orderer_admission_queue_depth",
            "Admitted envelopes waiting to be cut into a block",
        )?;
        registry.register(Box::new(proposal_commit_seconds.clone()))?;
        registry.register(Box::new(admission_queue_depth.clone()))?;
        Ok(Self {
            proposal_commit_seconds,
            admission_queue_depth,
            raft_leader_id,
            raft_term,
            height,
            raft_leader_changes,
            persist_seconds,
            verify_seconds,
            blocks_committed,
            txs_committed,
            txs_refused,
            snapshots_installed,
            compactions,
        })
    }
}
