//! The peer table: who the members are, how to reach them, whether they
//! answer (heartbeats with suspicion before "down"), and how they behaved
//! (a score; a peer that sends bad blocks is disconnected for a while).

use crate::config::{Config, PeerEndpoint};
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::types::ConsortiumConfig;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Alive,
    Suspect,
    Down,
}

#[derive(Debug, Clone)]
pub struct Peer {
    pub member: String,
    pub addr: String,
    pub server_name: String,
    pub height: u64,
    pub missed: u32,
    pub liveness: Liveness,
    pub score: i32,
    pub banned_until: Option<Instant>,
    pub client: Option<GossipClient<Channel>>,
}

/// One row of `/v1/members`.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub member: String,
    pub addr: String,
    pub height: u64,
    pub liveness: Liveness,
    pub score: i32,
    pub banned: bool,
}

#[derive(Debug, Default)]
pub struct Peers {
    map: BTreeMap<String, Peer>,
    /// Current members; inbound calls from anyone else are refused.
    members: BTreeSet<String>,
    rotation: usize,
}

/// `https://host:port` → (`host:port`, `host`).
fn parse_endpoint(e: &str) -> Option<(String, String)> {
    let rest = e.strip_prefix("https://").unwrap_or(e);
    let rest = rest.trim_end_matches('/');
    let host = rest.rsplit_once(':')?.0;
    Some((rest.to_owned(), host.to_owned()))
}

impl Peers {
    /// Keeps exactly the current members (minus `me`): config endpoints first,
    /// then the local overrides. A removed member is dropped with its connection.
    pub fn retain_members(
        &mut self,
        members: &BTreeSet<String>,
        config: &ConsortiumConfig,
        overrides: &[PeerEndpoint],
        me: &str,
    ) {
        self.members = members.clone();
        self.map.retain(|m, _| members.contains(m));
        let mut endpoints: BTreeMap<String, (String, String)> = BTreeMap::new();
        for m in &config.members {
            if let Some((addr, name)) = m.gossip_endpoints.first().and_then(|e| parse_endpoint(e)) {
                endpoints.insert(m.org_code.clone(), (addr, name));
            }
        }
        for o in overrides {
            endpoints.insert(o.member.clone(), (o.addr.clone(), o.server_name.clone()));
        }
        for (member, (addr, server_name)) in endpoints {
            if member == me || !members.contains(&member) {
                continue;
            }
            let e = self.map.entry(member.clone()).or_insert_with(|| Peer {
                member: member.clone(),
                addr: addr.clone(),
                server_name: server_name.clone(),
                height: 0,
                missed: 0,
                liveness: Liveness::Suspect,
                score: 0,
                banned_until: None,
                client: None,
            });
            if e.addr != addr || e.server_name != server_name {
                e.addr = addr;
                e.server_name = server_name;
                e.client = None;
            }
        }
    }

    pub fn is_member(&self, m: &str) -> bool {
        self.members.contains(m)
    }

    pub fn get(&self, m: &str) -> Option<&Peer> {
        self.map.get(m)
    }

    pub fn set_client(&mut self, m: &str, c: GossipClient<Channel>) {
        if let Some(p) = self.map.get_mut(m) {
            p.client = Some(c);
        }
    }

    pub fn is_banned(&self, m: &str) -> bool {
        self.map
            .get(m)
            .and_then(|p| p.banned_until)
            .is_some_and(|t| Instant::now() < t)
    }

    /// Peers to heartbeat: members not banned.
    pub fn dialable(&self, _cfg: &Config) -> Vec<String> {
        self.map
            .values()
            .filter(|p| p.banned_until.is_none_or(|t| Instant::now() >= t))
            .map(|p| p.member.clone())
            .collect()
    }

    /// Peers answering heartbeats and not banned.
    pub fn alive(&self, cfg: &Config) -> Vec<String> {
        self.dialable(cfg)
            .into_iter()
            .filter(|m| {
                self.map
                    .get(m)
                    .is_some_and(|p| p.liveness == Liveness::Alive)
            })
            .collect()
    }

    /// Up to `n` alive peers for block `height`, rotating so the load spreads,
    /// never the one it came from.
    pub fn fanout(&mut self, n: usize, height: u64, not: Option<&str>) -> Vec<String> {
        let alive: Vec<String> = self
            .map
            .values()
            .filter(|p| p.liveness == Liveness::Alive && Some(p.member.as_str()) != not)
            .filter(|p| p.banned_until.is_none_or(|t| Instant::now() >= t))
            // A peer known to have the block already needs no push.
            .filter(|p| p.height < height)
            .map(|p| p.member.clone())
            .collect();
        if alive.is_empty() {
            return alive;
        }
        self.rotation = self.rotation.wrapping_add(1);
        let start = (height as usize).wrapping_add(self.rotation) % alive.len();
        alive
            .iter()
            .cycle()
            .skip(start)
            .take(n.min(alive.len()))
            .cloned()
            .collect()
    }

    /// Peer `m` has committed `height` (its signed attestation says so),
    /// which says nothing about whether it is reachable.
    pub fn has_height(&mut self, m: &str, height: u64) {
        if let Some(p) = self.map.get_mut(m) {
            p.height = p.height.max(height);
        }
    }

    pub fn heard(&mut self, m: &str, height: u64) {
        if let Some(p) = self.map.get_mut(m) {
            p.height = p.height.max(height);
            p.missed = 0;
            p.liveness = Liveness::Alive;
        }
    }

    pub fn missed(&mut self, m: &str, cfg: &Config) {
        if let Some(p) = self.map.get_mut(m) {
            p.missed = p.missed.saturating_add(1);
            p.liveness = if p.missed >= cfg.down_after {
                p.client = None;
                Liveness::Down
            } else if p.missed >= cfg.suspect_after {
                Liveness::Suspect
            } else {
                p.liveness
            };
        }
    }

    /// Lowers `m`'s score; at the ban threshold, disconnects it for `ban_secs`.
    /// Returns whether it is now banned.
    pub fn penalize(&mut self, m: &str, by: i32, cfg: &Config) -> bool {
        let Some(p) = self.map.get_mut(m) else {
            return false;
        };
        p.score = p.score.saturating_sub(by);
        if p.score <= cfg.ban_score {
            p.banned_until = Some(Instant::now() + Duration::from_secs(cfg.ban_secs));
            p.client = None;
            p.liveness = Liveness::Down;
            p.score = 0;
            return true;
        }
        false
    }

    pub fn count(&self, l: Liveness) -> usize {
        self.map.values().filter(|p| p.liveness == l).count()
    }

    pub fn view(&self) -> Vec<PeerView> {
        self.map
            .values()
            .map(|p| PeerView {
                member: p.member.clone(),
                addr: p.addr.clone(),
                height: p.height,
                liveness: p.liveness,
                score: p.score,
                banned: p.banned_until.is_some_and(|t| Instant::now() < t),
            })
            .collect()
    }
}
