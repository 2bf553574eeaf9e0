//! The gossip-gateway's configuration (`config/gossip-gateway.example.toml`).

use fiscus_common::config::{ConfigError, ServiceConfig};
use fiscus_common::tls::Endpoint;
use fiscus_common::tls::TlsConfig;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A peer to dial at start, besides those in the consortium config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerEndpoint {
    /// The member code its certificate must carry.
    pub member: String,
    pub addr: String,
    pub server_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The `Gossip` service for other members (mutual TLS).
    pub listen: SocketAddr,
    /// `/metrics`, `/healthz`, `/readyz`, `/v1/members`, `/v1/finality`, `/v1/alarms`.
    pub http_listen: SocketAddr,
    /// This member's node certificate, key and the consortium root.
    pub tls: TlsConfig,
    /// PEM certificates of the orderers (to check block signatures) and of the
    /// members' nodes (to check attestations).
    pub signers_dir: PathBuf,
    /// The genesis `ConsortiumConfig` (root certificates, first member list).
    pub genesis_file: PathBuf,
    /// This member's ledger-store (`Ledger` and `LedgerIngest`).
    pub ledger: Endpoint,
    /// Orderer client endpoints for `Deliver`, tried in turn. May be empty: the
    /// member then follows the chain through its peers alone.
    pub orderers: Vec<Endpoint>,
    /// Peers to dial besides the members' `gossip_endpoints` in the config.
    pub peers: Vec<PeerEndpoint>,
    /// NATS server for events; unset: the in-process bus.
    pub nats_url: Option<String>,
    /// Peers each new block is pushed to.
    pub fanout: usize,
    /// Heartbeat (and height digest) period.
    pub heartbeat_ms: u64,
    /// Missed heartbeats before a peer is suspected, and before it is declared down.
    pub suspect_after: u32,
    pub down_after: u32,
    /// Blocks asked for in one pull.
    pub pull_batch: u64,
    /// Blocks buffered ahead of the ledger; further blocks wait (back-pressure).
    pub max_pending_blocks: usize,
    /// A peer whose score falls to this is disconnected for `ban_secs`.
    pub ban_score: i32,
    pub ban_secs: u64,
    pub max_message_bytes: usize,
    pub json_logs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7500)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7520)),
            tls: TlsConfig::default(),
            signers_dir: PathBuf::from("signers"),
            genesis_file: PathBuf::from("consortium-config.pb"),
            ledger: Endpoint {
                addr: "127.0.0.1:7300".into(),
                server_name: "ledger".into(),
            },
            orderers: Vec::new(),
            peers: Vec::new(),
            nats_url: None,
            fanout: 3,
            heartbeat_ms: 500,
            suspect_after: 3,
            down_after: 10,
            pull_batch: 500,
            max_pending_blocks: 4096,
            ban_score: -30,
            ban_secs: 60,
            max_message_bytes: 64 * 1024 * 1024,
            json_logs: false,
        }
    }
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "gossip_gateway";

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.into(),
            })
        };
        if self.heartbeat_ms == 0 {
            return bad("heartbeat_ms", "must be positive");
        }
        if self.suspect_after == 0 || self.down_after <= self.suspect_after {
            return bad(
                "down_after",
                "must exceed suspect_after, which must be positive",
            );
        }
        if self.pull_batch == 0 || self.pull_batch > 10_000 {
            return bad("pull_batch", "must be between 1 and 10,000");
        }
        if self.max_pending_blocks < self.pull_batch as usize {
            return bad("max_pending_blocks", "must hold at least one pull batch");
        }
        if self.ban_score >= 0 {
            return bad("ban_score", "must be negative");
        }
        Ok(())
    }
}
