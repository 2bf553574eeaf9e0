//! Who the CA may certify, and with which roles and names: the members of the
//! consortium configuration. From the genesis bundle at start; with
//! `Config::ledger` set, from `gov/config` at that ledger-store's head,
//! re-read every [`FOLLOW_INTERVAL`], so that a finance bureau voted in
//! after genesis can enroll once (and only once) the chain lists it, and a
//! member voted out can enroll no more.

use crate::genesis::GenesisBundle;
use fiscus_common::tls::{Endpoint, TlsContext, connect_channel, parse_role};
use fiscus_proto::pb::ledger::GetStateRequest;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::types::{ConsortiumConfig, Role};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often a CA that follows the chain re-reads the configuration.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// Where the member list came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Genesis,
    /// `gov/config` as of `height`, configuration `version`.
    Chain {
        height: u64,
        version: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    roles: Vec<Role>,
    allowed_names: Vec<String>,
}

/// The members, by org code.
#[derive(Debug, Clone)]
pub struct Members {
    by_org: BTreeMap<String, Entry>,
    pub source: Source,
}

impl Members {
    pub fn from_bundle(bundle: &GenesisBundle) -> Self {
        Self {
            by_org: bundle
                .members
                .iter()
                .map(|m| {
                    (
                        m.org_code.clone(),
                        Entry {
                            roles: m.roles.iter().filter_map(|r| parse_role(r)).collect(),
                            allowed_names: m.allowed_names.clone(),
                        },
                    )
                })
                .collect(),
            source: Source::Genesis,
        }
    }

    pub fn from_config(config: &ConsortiumConfig, height: u64) -> Self {
        Self {
            by_org: config
                .members
                .iter()
                .map(|m| {
                    (
                        m.org_code.clone(),
                        Entry {
                            roles: m
                                .roles
                                .iter()
                                .filter_map(|r| Role::try_from(*r).ok())
                                .filter(|r| *r != Role::Unspecified)
                                .collect(),
                            allowed_names: m.allowed_names.clone(),
                        },
                    )
                })
                .collect(),
            source: Source::Chain {
                height,
                version: config.version,
            },
        }
    }

    /// The roles `org` may hold, or `None` if it is not a member.
    pub fn roles_of(&self, org: &str) -> Option<&[Role]> {
        self.by_org.get(org).map(|e| &e.roles[..])
    }

    /// The names the CA may certify for `org`, or `None` if it is not a member.
    pub fn allowed_names_of(&self, org: &str) -> Option<&[String]> {
        self.by_org.get(org).map(|e| &e.allowed_names[..])
    }
}

/// The member list in force, swapped whole by [`follow`].
#[derive(Debug)]
pub struct MemberList(RwLock<Arc<Members>>);

impl MemberList {
    pub fn new(members: Members) -> Self {
        Self(RwLock::new(Arc::new(members)))
    }

    pub fn get(&self) -> Arc<Members> {
        self.0
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    fn set(&self, members: Members) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(members);
    }
}

/// `gov/config` at the ledger's head, with that height.
async fn read_config(
    ledger: &mut LedgerClient<tonic::transport::Channel>,
) -> Result<(ConsortiumConfig, u64), String> {
    let r = ledger
        .get_state(GetStateRequest {
            key: b"gov/config".to_vec(),
            at_height: 0,
        })
        .await
        .map_err(|s| s.message().to_owned())?
        .into_inner();
    if !r.found {
        return Err("the ledger has no gov/config (no genesis yet)".into());
    }
    let config = ConsortiumConfig::decode(&r.value[..]).map_err(|e| format!("gov/config: {e}"))?;
    Ok((config, r.height))
}

/// Follows the chain's member list at `ledger` forever, every
/// [`FOLLOW_INTERVAL`]; until the first read succeeds the genesis list
/// stands. A configuration of another consortium is refused.
pub async fn follow(
    list: Arc<MemberList>,
    tls: Arc<TlsContext>,
    ledger: Endpoint,
    consortium: String,
) {
    let mut client: Option<LedgerClient<tonic::transport::Channel>> = None;
    let mut warned = false;
    loop {
        if client.is_none() {
            match tls.client_config() {
                Ok(cfg) => match connect_channel(&ledger.addr, &ledger.server_name, cfg).await {
                    Ok(ch) => client = Some(LedgerClient::new(ch)),
                    Err(e) if !warned => {
                        warned = true;
                        tracing::warn!(ledger = %ledger.addr, error = %e, "cannot reach the ledger-store to follow the member list; keeping the last one");
                    }
                    Err(_) => {}
                },
                Err(e) => tracing::error!(error = %e, "no TLS client config to follow the ledger"),
            }
        }
        if let Some(c) = client.as_mut() {
            match read_config(c).await {
                Ok((config, _)) if config.consortium_id != consortium => {
                    tracing::error!(theirs = %config.consortium_id, ours = %consortium, "the ledger serves another consortium; not following it");
                }
                Ok((config, height)) => {
                    let next = Members::from_config(&config, height);
                    let changed = list.get().by_org != next.by_org;
                    if changed {
                        tracing::info!(
                            height,
                            version = config.version,
                            members = next.by_org.len(),
                            "member list from the chain"
                        );
                    }
                    list.set(next);
                    warned = false;
                }
                Err(e) => {
                    if !warned {
                        warned = true;
                        tracing::warn!(ledger = %ledger.addr, error = %e, "cannot read the member list from the ledger; keeping the last one");
                    }
                    client = None;
                }
            }
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}
