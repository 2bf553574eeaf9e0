//! The gateway's Prometheus metrics and the per-height commit/finality
//! timeline that `fiscus bench network` reads.

use std::collections::BTreeMap;

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
    /// Per-block dissemination (attestation exchange and block push) not
    /// started because [`crate::node::MAX_DISSEMINATIONS`] were in flight;
    /// anti-entropy delivers those blocks and attestations instead.
    pub disseminations_skipped: prometheus::IntCounter,
    /// Highest height this gateway knows exists (its own, an orderer's
    /// verified block, a peer's heartbeat or attestation): `known - height`
    /// is the commit lag in blocks.
    pub known_height: prometheus::IntGauge,
    /// The highest height whose events the bus has stored.
    pub events_height: prometheus::IntGauge,
    /// Highest height for which this gateway holds a valid attestation
    /// signed by member `peer` (this member included).
    pub attested_height: prometheus::IntGaugeVec,
    /// Each peer's score (a ban at `ban_score`).
    pub peer_score: prometheus::IntGaugeVec,
}

impl Metrics {
    /// Raises `known_height` to `h` if it is higher.
    pub fn knows(&self, h: u64) {
        let h = i64::try_from(h).unwrap_or(i64::MAX);
        if h > self.known_height.get() {
            self.known_height.set(h);
        }
    }

    /// Raises `peer`'s attested height to `h` if it is higher.
    pub fn attested(&self, peer: &str, h: u64) {
        let g = self.attested_height.with_label_values(&[peer]);
        let h = i64::try_from(h).unwrap_or(i64::MAX);
        if h > g.get() {
            g.set(h);
        }
    }
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
            known_height: prometheus::IntGauge::new(
                "fiscus_gossip_known_height",
                "Highest height this gateway knows exists, from orderers or peers",
            )?,
            events_height: prometheus::IntGauge::new(
                "fiscus_gossip_events_published_height",
                "Highest height whose events (blocks, txs, attestations) the bus has stored; \
                 behind fiscus_gossip_height while the bus is unreachable",
            )?,
            attested_height: prometheus::IntGaugeVec::new(
                prometheus::Opts::new(
                    "fiscus_gossip_member_attested_height",
                    "Highest height with a valid attestation signed by member peer",
                ),
                &["peer"],
            )?,
            peer_score: prometheus::IntGaugeVec::new(
                prometheus::Opts::new("fiscus_gossip_peer_score", "Each peer's score"),
                &["peer"],
            )?,
            disseminations_skipped: prometheus::IntCounter::new(
                "fiscus_gossip_disseminations_skipped_total",
                "Committed blocks not pushed to peers because too many pushes were in flight (anti-entropy covers them)",
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
        r.register(Box::new(m.disseminations_skipped.clone()))?;
        r.register(Box::new(m.blocks.clone()))?;
        r.register(Box::new(m.refused.clone()))?;
        r.register(Box::new(m.alarms.clone()))?;
        r.register(Box::new(m.peers_alive.clone()))?;
        r.register(Box::new(m.commit_lag.clone()))?;
        r.register(Box::new(m.known_height.clone()))?;
        r.register(Box::new(m.events_height.clone()))?;
        r.register(Box::new(m.attested_height.clone()))?;
        r.register(Box::new(m.peer_score.clone()))?;
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

    pub(crate) fn committed(&mut self, height: u64, block_ms: i64, now: i64) {
        let e = self.heights.entry(height).or_insert((block_ms, None, None));
        e.0 = block_ms;
        e.1 = Some(now);
        while self.heights.len() > Self::KEEP {
            self.heights.pop_first();
        }
    }

    pub(crate) fn finalized(&mut self, height: u64, now: i64) {
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

/// The fiscal year (China Standard Time) of blocks cut now by orderers that
/// stamp wall-clock time: a new program must name it (transfer contract v2).
/// For load generators (`fiscus bench`, tests), never for the contract.
pub fn fiscal_year_now() -> u32 {
    u32::try_from(fiscus_contract_executor::calendar::fiscal_year_of(now_ms())).unwrap_or(0)
}
