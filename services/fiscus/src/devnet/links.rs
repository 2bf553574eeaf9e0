//! Links between the process devnet's services that go through another
//! address: the fault campaign's TCP proxies (`fiscus chaos`). The file
//! `<data>/links.json` maps a link, named `"<from>-><to>"`, to the address
//! that process dials instead of the direct one; without the file (every
//! other devnet) every link is direct.
//!
//! Links are directed: `orderer-1->orderer-2/raft` carries orderer 1's raft
//! messages to orderer 2 (each orderer dials its peers for what it sends),
//! so cutting it alone is a one-way loss.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Links {
    /// Link name → the address dialled instead of the direct one.
    pub via: BTreeMap<String, SocketAddr>,
}

/// The name of the link from process `from` to the endpoint `to`.
pub(crate) fn name(from: &str, to: &str) -> String {
    format!("{from}->{to}")
}

/// An orderer's raft endpoint, as a link's destination.
pub(crate) fn orderer_raft(id: u64) -> String {
    format!("orderer-{id}/raft")
}

/// An orderer's client endpoint, as a link's destination.
pub(crate) fn orderer_client(id: u64) -> String {
    format!("orderer-{id}/client")
}

/// The source name of a member's processes (its gateway and adapter).
pub(crate) fn member(code: &str) -> String {
    format!("member-{code}")
}

fn path(data: &Path) -> PathBuf {
    data.join("links.json")
}

impl Links {
    /// The devnet's links; none recorded: every link is direct.
    pub(crate) fn load(data: &Path) -> Result<Self> {
        let p = path(data);
        match std::fs::read(&p) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).with_context(|| format!("reading {}", p.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
        }
    }

    pub(crate) fn save(&self, data: &Path) -> Result<()> {
        fiscus_identity_ca::ca::write_file(&path(data), &serde_json::to_vec_pretty(self)?, 0o644)?;
        Ok(())
    }

    /// Makes every link direct again (after the proxies are gone).
    pub(crate) fn remove(data: &Path) -> Result<()> {
        match std::fs::remove_file(path(data)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path(data).display()))
            }
            _ => Ok(()),
        }
    }

    /// What `from` dials to reach `to`, whose direct address is `direct`.
    pub(crate) fn addr(&self, from: &str, to: &str, direct: SocketAddr) -> SocketAddr {
        self.via.get(&name(from, to)).copied().unwrap_or(direct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_link_replaces_the_direct_address_and_only_that_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Links::load(dir.path()).unwrap(), Links::default());
        let direct: SocketAddr = "127.0.0.1:7100".parse().unwrap();
        let proxy: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let mut links = Links::default();
        links.via.insert(name("orderer-1", &orderer_raft(2)), proxy);
        links.save(dir.path()).unwrap();
        let links = Links::load(dir.path()).unwrap();
        assert_eq!(links.addr("orderer-1", &orderer_raft(2), direct), proxy);
        // The other direction, and another endpoint, stay direct.
        assert_eq!(links.addr("orderer-2", &orderer_raft(1), direct), direct);
        assert_eq!(links.addr("orderer-1", &orderer_client(2), direct), direct);
        Links::remove(dir.path()).unwrap();
        Links::remove(dir.path()).unwrap();
        assert_eq!(Links::load(dir.path()).unwrap(), Links::default());
    }
}
