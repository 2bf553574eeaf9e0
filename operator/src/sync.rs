//! The `Synced` condition: the member's height, read from its own
//! ledger-store (`Ledger.GetChainInfo`), against the consortium's head, read
//! from the orderers (`Orderer.Status`, the highest height any of them
//! reports). Both over mutual TLS with the member's node identity: the
//! operator asks as the member itself, so it needs no identity of its own.

use crate::enroll::Identity;
use fiscus_common::tls::{TlsConfig, TlsContext};
use fiscus_proto::pb::ledger::{ChainInfoRequest, ledger_client::LedgerClient};
use fiscus_proto::pb::orderer::{StatusRequest, orderer_client::OrdererClient};
use std::sync::Arc;
use std::time::Duration;

/// Where a cluster address is dialled (the identity in a cluster; tests map
/// cluster names to loopback). The TLS server name stays the cluster's.
pub type Dial = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// One gRPC target: the addresses to try in order, and the name its
/// certificate carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub addrs: Vec<String>,
    pub server_name: String,
}

/// What was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The member's height (its ledger-store's last committed block).
    pub height: u64,
    /// The highest height an orderer reports; None when none answered.
    pub head: Option<u64>,
    /// Why the head is unknown, when it is.
    pub head_error: Option<String>,
}

impl Reading {
    /// Blocks behind the head (0 when ahead: an orderer that has not caught
    /// up is not the consortium's head).
    pub fn lag(&self) -> Option<u64> {
        self.head.map(|h| h.saturating_sub(self.height))
    }
}

/// The condition `Synced` says for a reading (or a failed one), given the
/// lag the member allows: (status, reason, message).
pub fn condition(
    reading: &Result<Reading, String>,
    max_lag: u64,
) -> (&'static str, &'static str, String) {
    match reading {
        Err(e) => (
            "Unknown",
            "LedgerUnreachable",
            format!("could not read the ledger-store's height: {e}"),
        ),
        Ok(r) => match (r.head, r.lag()) {
            (Some(head), Some(lag)) if lag <= max_lag => (
                "True",
                "CaughtUp",
                format!(
                    "height {}, the orderers' head {head}: {lag} blocks behind",
                    r.height
                ),
            ),
            (Some(head), Some(lag)) => (
                "False",
                "Behind",
                format!(
                    "height {}, the orderers' head {head}: {lag} blocks behind (allowed: {max_lag})",
                    r.height
                ),
            ),
            _ => (
                "Unknown",
                "HeadUnknown",
                format!(
                    "height {}; no orderer answered: {}",
                    r.height,
                    r.head_error.as_deref().unwrap_or("no orderers configured")
                ),
            ),
        },
    }
}

/// The addresses a cluster address is tried at from the operator's
/// namespace: a name relative to the member's namespace
/// (`fiscus-orderer-0.fiscus-orderer:7050`) qualified with it first, then
/// as given (an external name or an IP).
pub fn cluster_addrs(addr: &str, namespace: &str) -> Vec<String> {
    let Some((host, port)) = addr.rsplit_once(':') else {
        return vec![addr.to_owned()];
    };
    let is_ip =
        host.parse::<std::net::IpAddr>().is_ok() || (host.starts_with('[') && host.ends_with(']'));
    if is_ip || host.contains(".svc") || host == "localhost" {
        return vec![addr.to_owned()];
    }
    vec![format!("{host}.{namespace}:{port}"), addr.to_owned()]
}

async fn channel(
    target: &Target,
    config: &Arc<rustls::ClientConfig>,
    dial: &Dial,
    timeout: Duration,
) -> Result<tonic::transport::Channel, String> {
    let mut errors = Vec::new();
    for addr in &target.addrs {
        let to = dial(addr);
        match tokio::time::timeout(
            timeout,
            fiscus_common::tls::connect_channel(&to, &target.server_name, config.clone()),
        )
        .await
        {
            Ok(Ok(ch)) => return Ok(ch),
            Ok(Err(e)) => errors.push(format!("{addr}: {e}")),
            Err(_) => errors.push(format!("{addr}: no answer within {timeout:?}")),
        }
    }
    Err(errors.join("; "))
}

/// Reads the member's height and the orderers' head. Fails only when the
/// ledger-store cannot be read; an unknown head is part of the reading.
pub async fn read(
    identity: &Identity,
    ledger: &Target,
    orderers: &[Target],
    dial: &Dial,
    timeout: Duration,
) -> Result<Reading, String> {
    let dir = identity.to_dir().map_err(|e| e.to_string())?;
    let config = TlsContext::load(&TlsConfig::in_dir(dir.path()))
        .and_then(|c| c.client_config())
        .map_err(|e| format!("the node identity: {e}"))?;
    let ch = channel(ledger, &config, dial, timeout).await?;
    let info = tokio::time::timeout(
        timeout,
        LedgerClient::new(ch).get_chain_info(ChainInfoRequest {}),
    )
    .await
    .map_err(|_| format!("GetChainInfo: no answer within {timeout:?}"))?
    .map_err(|s| format!("GetChainInfo: {}: {}", s.code(), s.message()))?
    .into_inner();
    let mut head = None;
    let mut errors = Vec::new();
    for o in orderers {
        let status = async {
            let ch = channel(o, &config, dial, timeout).await?;
            tokio::time::timeout(timeout, OrdererClient::new(ch).status(StatusRequest {}))
                .await
                .map_err(|_| format!("{}: no answer within {timeout:?}", o.server_name))?
                .map_err(|s| format!("{}: {}: {}", o.server_name, s.code(), s.message()))
        };
        match status.await {
            Ok(s) => head = Some(head.unwrap_or(0).max(s.into_inner().height)),
            Err(e) => errors.push(e),
        }
    }
    Ok(Reading {
        height: info.height,
        head,
        head_error: (!errors.is_empty()).then(|| errors.join("; ")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_relative_to_the_member_s_namespace_is_qualified_first() {
        assert_eq!(
            cluster_addrs("fiscus-orderer-0.fiscus-orderer:7050", "hebei"),
            [
                "fiscus-orderer-0.fiscus-orderer.hebei:7050",
                "fiscus-orderer-0.fiscus-orderer:7050"
            ]
        );
        assert_eq!(cluster_addrs("10.0.0.7:7050", "hebei"), ["10.0.0.7:7050"]);
        assert_eq!(cluster_addrs("[::1]:7050", "hebei"), ["[::1]:7050"]);
        assert_eq!(
            cluster_addrs("fiscus-130100-ledger-store.hebei.svc:7300", "hebei"),
            ["fiscus-130100-ledger-store.hebei.svc:7300"]
        );
    }

    #[test]
    fn synced_is_true_within_the_allowed_lag_false_beyond_and_unknown_without_a_head() {
        let r = |height, head: Option<u64>| {
            Ok(Reading {
                height,
                head,
                head_error: None,
            })
        };
        assert_eq!(condition(&r(95, Some(100)), 10).0, "True");
        assert_eq!(condition(&r(100, Some(100)), 0).1, "CaughtUp");
        let (status, reason, message) = condition(&r(80, Some(100)), 10);
        assert_eq!((status, reason), ("False", "Behind"));
        assert!(message.contains("20 blocks behind"), "{message}");
        assert_eq!(condition(&r(7, None), 10).1, "HeadUnknown");
        assert_eq!(condition(&Err("refused".into()), 10).1, "LedgerUnreachable");
        // An orderer behind the member is not a head the member lags.
        assert_eq!(r(10, Some(8)).unwrap().lag(), Some(0));
    }
}
