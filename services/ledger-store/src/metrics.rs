//! The ledger-store's Prometheus metrics, updated on both commit paths: the
//! ledger following an orderer itself (`server::follow`) and `LedgerIngest`,
//! which the member's gossip-gateway feeds.

use crate::ledger::CommitSummary;

#[derive(Debug, Clone)]
pub struct Metrics {
    pub height: prometheus::IntGauge,
    pub committed: prometheus::IntCounter,
    pub refused: prometheus::IntCounter,
    pub txs: prometheus::IntCounterVec,
}

impl Metrics {
    pub fn register(r: &prometheus::Registry) -> prometheus::Result<Self> {
        let height = prometheus::IntGauge::new("fiscus_ledger_height", "Committed height")?;
        let committed = prometheus::IntCounter::new(
            "fiscus_ledger_blocks_committed_total",
            "Blocks committed",
        )?;
        let refused = prometheus::IntCounter::new(
            "fiscus_ledger_blocks_refused_total",
            "Blocks refused by validation",
        )?;
        let txs = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "fiscus_ledger_txs_total",
                "Committed transactions by outcome",
            ),
            &["outcome"],
        )?;
        r.register(Box::new(height.clone()))?;
        r.register(Box::new(committed.clone()))?;
        r.register(Box::new(refused.clone()))?;
        r.register(Box::new(txs.clone()))?;
        Ok(Self {
            height,
            committed,
            refused,
            txs,
        })
    }

    /// One block committed: the height, the block and its transactions by outcome.
    pub fn committed_block(&self, s: &CommitSummary) {
        self.height
            .set(i64::try_from(s.head.height).unwrap_or(i64::MAX));
        self.committed.inc();
        self.txs
            .with_label_values(&["valid"])
            .inc_by(s.valid as u64);
        self.txs
            .with_label_values(&["invalid"])
            .inc_by(s.invalid as u64);
    }
}
