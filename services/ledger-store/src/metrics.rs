//! The ledger-store's Prometheus metrics, updated on both commit paths: the
//! ledger following an orderer itself (`server::follow`) and `LedgerIngest`,
//! which the member's gossip-gateway feeds.

use crate::ledger::CommitSummary;
use fiscus_proto::pb::types::TxStatus;

#[derive(Debug, Clone)]
pub struct Metrics {
    pub height: prometheus::IntGauge,
    pub committed: prometheus::IntCounter,
    pub refused: prometheus::IntCounter,
    pub txs: prometheus::IntCounterVec,
    /// Invalid transactions by their stable rejection code.
    pub rejected: prometheus::IntCounterVec,
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
        let rejected = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "fiscus_ledger_txs_rejected_total",
                "Committed invalid transactions by rejection code",
            ),
            &["code"],
        )?;
        r.register(Box::new(rejected.clone()))?;
        Ok(Self {
            height,
            committed,
            refused,
            txs,
            rejected,
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
        for r in &s.receipts {
            if r.status != TxStatus::Valid as i32 {
                self.rejected
                    .with_label_values(&[rejection_code(&r.reason)])
                    .inc();
            }
        }
    }
}

/// The stable code a rejected receipt's reason starts with (`"<code>: <detail>"`,
/// the codes of `fiscus_common::codes`, a bounded set); `other` for a reason
/// in any other shape, so that no free text becomes a label value.
pub fn rejection_code(reason: &str) -> &str {
    match reason.split_once(": ") {
        Some((code, _))
            if !code.is_empty()
                && code.len() <= 64
                && code.contains('.')
                && code.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                }) =>
        {
            code
        }
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::rejection_code;

    #[test]
    fn the_code_label_is_the_reason_s_code_or_other() {
        assert_eq!(
            rejection_code("contract.insufficient_funds: 13 fen short"),
            "contract.insufficient_funds"
        );
        assert_eq!(
            rejection_code("tx.bad_signature: by 130000"),
            "tx.bad_signature"
        );
        for free in ["", "no code here", "Free Text: x", "a b.c: x", ": x"] {
            assert_eq!(rejection_code(free), "other", "{free:?}");
        }
    }
}
