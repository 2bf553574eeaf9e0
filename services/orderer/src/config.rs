//! The orderer's configuration (`config/orderer.example.toml`).

use fiscus_common::config::{ConfigError, ServiceConfig};
use fiscus_common::tls::TlsConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Another orderer node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Raft node id; never reused.
    pub id: u64,
    /// `host:port` of its RaftTransport.
    pub raft_addr: String,
    /// `host:port` of its client API (for forwarding Broadcast to the leader).
    pub client_addr: String,
    /// The name on its certificate (SAN).
    pub server_name: String,
}

/// Raft timing, in ticks of `tick_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftTiming {
    pub tick_ms: u64,
    /// A follower starts an election after this many ticks without a leader (randomized up to 2×).
    /// Generous, so that a busy machine does not depose a healthy leader.
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    /// Most un-acknowledged append messages in flight per follower.
    pub max_inflight_msgs: usize,
    /// Largest append message, in bytes (a block is one entry, so keep it above `max_block_bytes`).
    pub max_msg_bytes: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            tick_ms: 100,
            election_ticks: 20,
            heartbeat_ticks: 2,
            max_inflight_msgs: 64,
            max_msg_bytes: 16 * 1024 * 1024,
        }
    }
}

/// When a block is cut: whichever limit is reached first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Batching {
    pub max_txs: usize,
    pub max_bytes: usize,
    pub batch_timeout_ms: u64,
    /// Blocks proposed but not yet committed; cutting waits beyond this (back-pressure).
    pub max_blocks_in_flight: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            max_txs: 2000,
            max_bytes: 4 * 1024 * 1024,
            batch_timeout_ms: 50,
            max_blocks_in_flight: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node's Raft id (must appear in `peers`).
    pub node_id: u64,
    /// Joining a running cluster: start with no voters and wait for an admin's
    /// `AddNode` (conf change) instead of founding the cluster with `peers`.
    pub join: bool,
    /// The consortium whose transactions this cluster orders.
    pub consortium_id: String,
    /// Client API (Orderer, OrdererAdmin) over mutual TLS.
    pub listen: SocketAddr,
    /// RaftTransport, for orderer certificates only.
    pub raft_listen: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Every node of the cluster, this one included: 3 or 5.
    pub peers: Vec<Peer>,
    /// This node's certificate (role `orderer`), key, the root and the CRL.
    pub tls: TlsConfig,
    /// PEM certificates of the signers whose transactions are admitted.
    pub signers_dir: PathBuf,
    pub raft: RaftTiming,
    pub batching: Batching,
    /// Largest envelope accepted.
    pub max_tx_bytes: usize,
    pub max_signatures_per_tx: usize,
    /// Envelopes admitted but not yet committed, over all streams; more are refused with `orderer.busy`.
    pub max_pending_txs: usize,
    /// A client waits this long for its tx to commit before it gets `orderer.timeout`.
    pub commit_timeout_ms: u64,
    /// Compact the Raft log once this many applied entries are kept (0: never).
    pub compact_after_entries: u64,
    /// Entries kept after a compaction, so that a briefly lagging follower is
    /// caught up from the log rather than a snapshot.
    pub compact_keep_entries: u64,
    /// Tx ids of this many recent blocks are deduplicated by the orderer. Part of
    /// the apply rule: it must be the same on every node of the cluster.
    pub dedupe_window_blocks: u64,
    /// The store's page cache (blocks and Raft log), bytes. Memory is bounded
    /// by it whatever the chain's length.
    pub cache_bytes: u64,
    /// A simulated block clock for demonstrations; unset (the default): the
    /// leader's wall clock. Every node of a cluster must use the same one.
    pub block_clock: Option<BlockClock>,
    pub json_logs: bool,
}

/// Block time = `start_ms + (wall − anchor_unix_ms) × speedup`, so a devnet
/// can replay a fiscal year, Budget Law deadlines included, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockClock {
    /// Block time (Unix ms) at the anchor.
    pub start_ms: i64,
    /// Wall time (Unix ms) of the anchor.
    pub anchor_unix_ms: i64,
    /// Simulated milliseconds per wall millisecond.
    pub speedup: u32,
}

impl BlockClock {
    /// The block time at wall time `wall_ms`.
    pub fn at(&self, wall_ms: i64) -> i64 {
        let elapsed = wall_ms.saturating_sub(self.anchor_unix_ms).max(0);
        self.start_ms
            .saturating_add(elapsed.saturating_mul(i64::from(self.speedup)))
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            node_id: 1,
            join: false,
            consortium_id: "fiscus-devnet".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7200)),
            raft_listen: SocketAddr::from(([127, 0, 0, 1], 7210)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7220)),
            data_dir: PathBuf::from("data/orderer"),
            peers: Vec::new(),
            tls: TlsConfig::default(),
            signers_dir: PathBuf::from("signers"),
            raft: RaftTiming::default(),
            batching: Batching::default(),
            max_tx_bytes: 64 * 1024,
            max_signatures_per_tx: 4,
            max_pending_txs: 200_000,
            commit_timeout_ms: 30_000,
            compact_after_entries: 10_000,
            compact_keep_entries: 1000,
            dedupe_window_blocks: 1000,
            cache_bytes: 64 * 1024 * 1024,
            block_clock: None,
            json_logs: false,
        }
    }
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "orderer";

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if !self.peers.iter().any(|p| p.id == self.node_id) {
            return bad("node_id", "must be one of the peers' ids");
        }
        if self.node_id == 0 || self.peers.iter().any(|p| p.id == 0) {
            return bad("peers", "raft ids start at 1");
        }
        let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.peers.len() {
            return bad("peers", "ids must be unique");
        }
        if self.cache_bytes < 1024 * 1024 {
            return bad("cache_bytes", "must be at least 1 MiB");
        }
        if self.raft.election_ticks <= self.raft.heartbeat_ticks {
            return bad("raft.election_ticks", "must exceed heartbeat_ticks");
        }
        if self.batching.max_txs == 0
            || self.batching.max_bytes == 0
            || self.batching.max_blocks_in_flight == 0
        {
            return bad("batching", "limits must be at least 1");
        }
        if self.raft.max_msg_bytes < self.batching.max_bytes as u64 + 64 * 1024 {
            return bad(
                "raft.max_msg_bytes",
                "must exceed batching.max_bytes, or a full block cannot be replicated",
            );
        }
        Ok(())
    }
}
