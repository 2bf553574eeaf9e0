//! The genesis bundle: the initial orgs, members and their roles, the orderer
//! endpoints and the limits. Block 0's `ConsortiumConfig` is built from it.

use fiscus_common::tls::{is_member_code, names, parse_role};
use fiscus_proto::pb::types::{self as pb, OrgLevel, Role};
use serde::{Deserialize, Serialize};

/// Hebei's GB/T 2260 divisions (province, cities, counties), with `000000` as central.
const HEBEI_DIVISIONS: &str = include_str!("../data/hebei-divisions.csv");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisOrg {
    pub code: String,
    pub name: String,
    /// `central`, `provincial`, `municipal`, `county` or `supervisor`.
    pub level: String,
    pub parent: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisMember {
    pub org_code: String,
    /// Roles this member's certificates may carry, e.g. `["node", "admin", "client"]`.
    pub roles: Vec<String>,
    pub gossip_endpoints: Vec<String>,
    /// The subject alternative names the CA may certify for this member (see
    /// `fiscus_common::tls::names`). Empty: certificates without SANs only.
    #[serde(default)]
    pub allowed_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisOrderer {
    pub raft_id: u64,
    pub node_id: String,
    pub org_code: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisLimits {
    pub max_tx_bytes: u32,
    pub max_signatures_per_tx: u32,
    pub max_block_txs: u32,
    pub max_block_bytes: u32,
    pub batch_timeout_ms: u32,
}

impl Default for GenesisLimits {
    fn default() -> Self {
        Self {
            max_tx_bytes: 64 * 1024,
            max_signatures_per_tx: 4,
            max_block_txs: 1000,
            max_block_bytes: 8 * 1024 * 1024,
            batch_timeout_ms: 200,
        }
    }
}

/// The bundle as written to `genesis.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisBundle {
    pub consortium_id: String,
    /// The consortium root certificate, PEM.
    pub root_certificate_pem: String,
    pub orgs: Vec<GenesisOrg>,
    pub members: Vec<GenesisMember>,
    pub orderers: Vec<GenesisOrderer>,
    pub limits: GenesisLimits,
    /// People's congress budget approvals known at genesis (later ones are
    /// recorded by governance).
    #[serde(default)]
    pub budget_approvals: Vec<GenesisApproval>,
    /// Holiday calendars known at genesis, one per year.
    #[serde(default)]
    pub holiday_calendars: Vec<GenesisHolidays>,
}

/// A budget approval (Budget Law art. 52's start point) in `genesis.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisApproval {
    pub fiscal_year: u32,
    pub org_code: String,
    /// "YYYY-MM-DD", China Standard Time.
    pub approved_on: String,
    pub document: String,
}

/// One year's official holidays and adjusted working days in `genesis.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisHolidays {
    pub year: u32,
    pub holidays: Vec<String>,
    pub workdays: Vec<String>,
}

/// The State Council's 2026 holiday arrangement (New Year, Spring Festival,
/// Qingming, Labour Day, Dragon Boat, Mid-Autumn, National Day) as the devnet
/// records it at genesis. A production consortium records each year's
/// calendar by governance from the published notice.
pub fn holidays_2026() -> GenesisHolidays {
    let span = |m: u32, from: u32, to: u32| (from..=to).map(move |d| format!("2026-{m:02}-{d:02}"));
    GenesisHolidays {
        year: 2026,
        holidays: span(1, 1, 3)
            .chain(span(2, 15, 23))
            .chain(span(4, 4, 6))
            .chain(span(5, 1, 5))
            .chain(span(6, 19, 21))
            .chain(span(9, 25, 27))
            .chain(span(10, 1, 7))
            .collect(),
        workdays: [
            "2026-01-04",
            "2026-02-14",
            "2026-02-28",
            "2026-05-09",
            "2026-09-20",
            "2026-10-10",
        ]
        .map(str::to_owned)
        .to_vec(),
    }
}

fn level_of(s: &str) -> Option<OrgLevel> {
    Some(match s {
        "central" => OrgLevel::Central,
        "provincial" => OrgLevel::Provincial,
        "municipal" => OrgLevel::Municipal,
        "county" => OrgLevel::County,
        "supervisor" => OrgLevel::Supervisor,
        _ => return None,
    })
}

/// A finance department's name from its division name.
fn department_name(code: &str, division: &str, level: &str) -> String {
    match level {
        "central" => "中华人民共和国财政部".to_owned(),
        "provincial" => format!("{division}财政厅"),
        _ if code == "000000" => division.to_owned(),
        _ => format!("{division}财政局"),
    }
}

/// Hebei's divisions as orgs, leaving out development zones (codes ending 71/72),
/// which have no finance bureau of their own.
pub fn hebei_orgs() -> Vec<GenesisOrg> {
    HEBEI_DIVISIONS
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut f = line.split(',');
            let (code, name, level, parent) =
                (f.next()?, f.next()?, f.next()?, f.next().unwrap_or(""));
            if code.ends_with("71") || code.ends_with("72") {
                return None;
            }
            Some(GenesisOrg {
                code: code.to_owned(),
                name: department_name(code, name, level),
                level: level.to_owned(),
                parent: parent.to_owned(),
            })
        })
        .collect()
}

/// The devnet bundle: MOF, Hebei, Shijiazhuang, Chang'an district and the
/// Hebei audit office (supervisor code `991300`: `99` + the province prefix,
/// outside GB/T 2260's range), or every Hebei division with `all_hebei`.
pub fn devnet_bundle(
    consortium_id: &str,
    root_certificate_pem: String,
    all_hebei: bool,
) -> GenesisBundle {
    let picked = ["000000", "130000", "130100", "130102"];
    let mut orgs: Vec<GenesisOrg> = hebei_orgs()
        .into_iter()
        .filter(|o| all_hebei || picked.contains(&o.code.as_str()))
        .collect();
    orgs.push(GenesisOrg {
        code: "991300".into(),
        name: "河北省审计厅".into(),
        level: "supervisor".into(),
        parent: "130000".into(),
    });
    let orderer_hosts = ["000000", "130000", "130100"];
    let members = orgs
        .iter()
        .map(|o| {
            let mut allowed_names = devnet_allowed_names(&o.code);
            // The orderer chart's node N carries the SAN orderer-N.
            if let Some(i) = orderer_hosts.iter().position(|h| *h == o.code) {
                allowed_names.push(format!("orderer-{}", i + 1));
            }
            let mut roles = vec!["node", "admin", "operator", "client"];
            if orderer_hosts.contains(&o.code.as_str()) {
                roles.push("orderer");
            }
            if o.level == "supervisor" || o.code == "000000" {
                roles.push("auditor");
            }
            GenesisMember {
                org_code: o.code.clone(),
                roles: roles.into_iter().map(str::to_owned).collect(),
                gossip_endpoints: Vec::new(),
                allowed_names,
            }
        })
        .collect();
    let orderers = orderer_hosts
        .iter()
        .enumerate()
        .map(|(i, org)| GenesisOrderer {
            raft_id: i as u64 + 1,
            node_id: format!("orderer-{org}"),
            org_code: (*org).to_owned(),
            endpoint: format!("127.0.0.1:{}", 7200 + i),
        })
        .collect();
    GenesisBundle {
        consortium_id: consortium_id.to_owned(),
        root_certificate_pem,
        orgs,
        members,
        orderers,
        limits: GenesisLimits::default(),
        // Sample approvals for the devnet (Budget Law art. 52's start points):
        // the NPC's and Hebei's people's congress's approval of the 2026 budgets.
        budget_approvals: vec![
            GenesisApproval {
                fiscal_year: 2026,
                org_code: "000000".into(),
                approved_on: "2026-03-12".into(),
                document: "全国人民代表大会关于2026年中央预算的决议 (devnet sample)".into(),
            },
            GenesisApproval {
                fiscal_year: 2026,
                org_code: "130000".into(),
                approved_on: "2026-01-24".into(),
                document: "河北省人民代表大会关于2026年省级预算的决议 (devnet sample)".into(),
            },
        ],
        holiday_calendars: vec![holidays_2026()],
    }
}

/// A sample member's allow-list: loopback (shared by every service on one
/// machine), its own domain under the reserved `.test` TLD (RFC 2606), e.g.
/// `130000.fiscus.test` and `*.130000.fiscus.test`, and the Service names the
/// member chart gives its services when the release is `fiscus-<org>`
/// (`fiscus-130000-ledger-store`, …). A real consortium edits `allowed_names`
/// in genesis.json to its members' own domains.
pub fn devnet_allowed_names(org: &str) -> Vec<String> {
    let mut names: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        format!("{org}.fiscus.test"),
        format!("*.{org}.fiscus.test"),
    ];
    for service in [
        "ledger-store",
        "contract-executor",
        "gossip-gateway",
        "exchange-adapter",
    ] {
        names.push(format!("fiscus-{org}-{service}"));
    }
    names
}

impl GenesisBundle {
    /// Checks codes, levels, parents, roles and allowed names; returns the first problem found.
    pub fn validate(&self) -> Result<(), String> {
        if self.consortium_id.is_empty() {
            return Err("consortium_id is empty".into());
        }
        let codes: std::collections::BTreeSet<&str> =
            self.orgs.iter().map(|o| o.code.as_str()).collect();
        if codes.len() != self.orgs.len() {
            return Err("an org code appears twice".into());
        }
        for o in &self.orgs {
            if !is_member_code(&o.code) {
                return Err(format!("org code {:?} is not six digits", o.code));
            }
            if level_of(&o.level).is_none() {
                return Err(format!("org {} has unknown level {:?}", o.code, o.level));
            }
            if !o.parent.is_empty() && !codes.contains(o.parent.as_str()) {
                return Err(format!("org {} names unknown parent {}", o.code, o.parent));
            }
        }
        for m in &self.members {
            if !codes.contains(m.org_code.as_str()) {
                return Err(format!("member {} is not an org", m.org_code));
            }
            if let Some(bad) = m.roles.iter().find(|r| parse_role(r).is_none()) {
                return Err(format!("member {} has unknown role {bad:?}", m.org_code));
            }
            names::check_allow_list(&m.allowed_names)
                .map_err(|e| format!("member {} allowed_names: {e}", m.org_code))?;
        }
        names::check_disjoint(
            self.members
                .iter()
                .map(|m| (m.org_code.as_str(), &m.allowed_names[..])),
        )?;
        for o in &self.orderers {
            if !codes.contains(o.org_code.as_str()) {
                return Err(format!(
                    "orderer {} is hosted by unknown org {}",
                    o.node_id, o.org_code
                ));
            }
        }
        Ok(())
    }

    /// The names `org`'s certificates may carry, or `None` if it is not a member.
    pub fn allowed_names_of(&self, org: &str) -> Option<&[String]> {
        self.members
            .iter()
            .find(|m| m.org_code == org)
            .map(|m| &m.allowed_names[..])
    }

    /// The roles `org` may hold, or `None` if it is not a member.
    pub fn roles_of(&self, org: &str) -> Option<Vec<Role>> {
        self.members
            .iter()
            .find(|m| m.org_code == org)
            .map(|m| m.roles.iter().filter_map(|r| parse_role(r)).collect())
    }

    /// Block 0's configuration.
    pub fn to_consortium_config(&self, root_der: &[u8]) -> pb::ConsortiumConfig {
        pb::ConsortiumConfig {
            consortium_id: self.consortium_id.clone(),
            version: 1,
            orgs: self
                .orgs
                .iter()
                .map(|o| pb::Org {
                    code: o.code.clone(),
                    name: o.name.clone(),
                    level: level_of(&o.level).unwrap_or(OrgLevel::Unspecified) as i32,
                    parent: o.parent.clone(),
                })
                .collect(),
            members: self
                .members
                .iter()
                .map(|m| pb::Member {
                    org_code: m.org_code.clone(),
                    gossip_endpoints: m.gossip_endpoints.clone(),
                    allowed_names: m.allowed_names.clone(),
                    roles: m
                        .roles
                        .iter()
                        .filter_map(|r| parse_role(r))
                        .map(|r| r as i32)
                        .collect(),
                })
                .collect(),
            orderers: self
                .orderers
                .iter()
                .map(|o| pb::OrdererNode {
                    raft_id: o.raft_id,
                    node_id: o.node_id.clone(),
                    org_code: o.org_code.clone(),
                    endpoint: o.endpoint.clone(),
                    cert_id: Vec::new(),
                })
                .collect(),
            ca_roots: vec![root_der.to_vec()],
            crl: Some(pb::Crl::default()),
            limits: Some(pb::Limits {
                max_tx_bytes: self.limits.max_tx_bytes,
                max_signatures_per_tx: self.limits.max_signatures_per_tx,
                max_block_txs: self.limits.max_block_txs,
                max_block_bytes: self.limits.max_block_bytes,
                batch_timeout_ms: self.limits.batch_timeout_ms,
            }),
            revoked_orgs: Vec::new(),
            // A strict majority of members, the Budget-Law-neutral default.
            governance: Some(pb::GovernancePolicy {
                numerator: 1,
                denominator: 2,
            }),
            contracts: vec![
                pb::ContractVersion {
                    contract: "governance".into(),
                    version: 1,
                },
                pb::ContractVersion {
                    contract: "transfer".into(),
                    // v3: an account's lots under their own keys (ADR 0006).
                    version: 3,
                },
            ],
            budget_approvals: self
                .budget_approvals
                .iter()
                .map(|a| pb::BudgetApproval {
                    fiscal_year: a.fiscal_year,
                    org_code: a.org_code.clone(),
                    approved_on: a.approved_on.clone(),
                    document: a.document.clone(),
                })
                .collect(),
            holiday_calendars: self
                .holiday_calendars
                .iter()
                .map(|h| pb::HolidayCalendar {
                    year: h.year,
                    holidays: h.holidays.clone(),
                    workdays: h.workdays.clone(),
                })
                .collect(),
            deadline_policy: None,
            // Consortium-specific and reproducible from genesis; it keeps equal
            // id numbers hashing equally across members, not a secret.
            recipient_id_salt: fiscus_proto::hash::sha256(
                format!("fiscus.recipient-id-salt/{}", self.consortium_id).as_bytes(),
            )
            .to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_devnet_bundle_is_valid_and_names_its_departments() {
        let b = devnet_bundle("fiscus-devnet", String::new(), false);
        b.validate().unwrap();
        let names: Vec<&str> = b.orgs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "中华人民共和国财政部",
                "河北省财政厅",
                "石家庄市财政局",
                "长安区财政局",
                "河北省审计厅"
            ]
        );
        assert_eq!(b.orderers.len(), 3);
        assert!(b.roles_of("130102").unwrap().contains(&Role::Node));
        assert!(!b.roles_of("130102").unwrap().contains(&Role::Orderer));
    }

    #[test]
    fn all_of_hebei_leaves_out_development_zones() {
        let b = devnet_bundle("fiscus-devnet", String::new(), true);
        b.validate().unwrap();
        assert!(b.orgs.len() > 150, "{}", b.orgs.len());
        assert!(!b.orgs.iter().any(|o| o.code == "130171"));
    }

    #[test]
    fn a_bundle_with_an_unknown_parent_is_rejected() {
        let mut b = devnet_bundle("fiscus-devnet", String::new(), false);
        b.orgs[2].parent = "139999".into();
        assert!(b.validate().unwrap_err().contains("unknown parent"));
    }
}
