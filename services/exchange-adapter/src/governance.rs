//! Governance through the API (`/v1/governance/…`): proposals to change the
//! consortium configuration, votes on them, the list of proposals with their
//! tallies, and the configuration at a height.
//!
//! Proposals and votes are signed like transfer operations: a client-signed
//! envelope (`{"envelope": …}`), or custodial signing by the member for a
//! client that has it. Both need the `govern` scope. Before anything is
//! ordered, the governance contract's own checks run against this member's
//! head (`Api::check_governance`), so a refusal carries the contract's code
//! (`governance.not_member`, `governance.already_voted`, …); the chain checks
//! again when it executes the call.

use crate::api::tx_id_param;
use crate::clients::{Client, Scope};
use crate::context::{Api, Caller, GovernScope};
use crate::error::ProblemDoc;
use crate::error::err;
use crate::json::SubmitResult;
use crate::submit::{Wait, custodial_envelope, key_reused};
use actix_web::{HttpRequest, get, post, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_contract_executor::governance::votes_needed;
use fiscus_proto::envelope::CheckedTx;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::governance::{
    AddMember, GovernanceCall, Proposal, ProposeArgs, RecordBudgetApproval, RemoveMember,
    SetHolidayCalendar, UpdateCrl, UpdateDeadlinePolicy, UpdateLimits, UpdateMember,
    UpdateOrderers, UpdatePolicy, UpgradeContract, UpsertOrg, VoteArgs, governance_call,
    proposal::Change,
};
use fiscus_proto::pb::state::{ProposalRecord, ProposalStatus};
use fiscus_proto::pb::types::tx_payload::Call;
use fiscus_proto::pb::types::{
    BudgetApproval, ConsortiumConfig, Crl, DeadlinePolicy, GovernancePolicy, HolidayCalendar,
    Limits, Member, OrdererNode, Org, OrgLevel, Role,
};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

// ---------------------------------------------------------------------------
// The JSON forms of the configuration's parts, both ways.

fn bad(message: impl Into<String>) -> ServiceError {
    err(
        ErrorKind::InvalidArgument,
        codes::governance::INVALID_PROPOSAL,
        message.into(),
    )
}

/// The lowercase name of a protobuf enum value without its prefix
/// (`ORG_LEVEL_COUNTY` → `county`).
fn enum_name(name: &str, prefix: &str) -> String {
    name.trim_start_matches(prefix).to_ascii_lowercase()
}

fn level_name(level: i32) -> String {
    OrgLevel::try_from(level).map_or_else(
        |_| format!("unknown({level})"),
        |l| enum_name(l.as_str_name(), "ORG_LEVEL_"),
    )
}

fn parse_level(s: &str) -> Result<OrgLevel, ServiceError> {
    OrgLevel::from_str_name(&format!("ORG_LEVEL_{}", s.to_ascii_uppercase()))
        .filter(|l| *l != OrgLevel::Unspecified)
        .ok_or_else(|| {
            bad(format!(
                "org level {s:?} is not central, provincial, municipal, county or supervisor"
            ))
        })
}

fn role_name(role: i32) -> String {
    Role::try_from(role).map_or_else(
        |_| format!("unknown({role})"),
        |r| enum_name(r.as_str_name(), "ROLE_"),
    )
}

fn parse_role(s: &str) -> Result<Role, ServiceError> {
    Role::from_str_name(&format!("ROLE_{}", s.to_ascii_uppercase()))
        .filter(|r| *r != Role::Unspecified)
        .ok_or_else(|| {
            bad(format!(
                "role {s:?} is not node, orderer, admin, operator, auditor or client"
            ))
        })
}

/// An org of the registry: a finance department or a supervisor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgJson {
    /// GB/T 2260 code, six digits; "000000" is the Ministry of Finance.
    pub code: String,
    pub name: String,
    /// `central`, `provincial`, `municipal`, `county` or `supervisor`.
    pub level: String,
    /// The parent org's code; empty only for the root.
    #[serde(default)]
    pub parent: String,
}

impl From<&Org> for OrgJson {
    fn from(o: &Org) -> Self {
        Self {
            code: o.code.clone(),
            name: o.name.clone(),
            level: level_name(o.level),
            parent: o.parent.clone(),
        }
    }
}

impl OrgJson {
    fn to_proto(&self) -> Result<Org, ServiceError> {
        Ok(Org {
            code: self.code.clone(),
            name: self.name.clone(),
            level: parse_level(&self.level)? as i32,
            parent: self.parent.clone(),
        })
    }
}

/// A consortium member: the nodes one org runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberJson {
    pub org_code: String,
    /// Its gossip-gateway's endpoints, e.g. "https://gw.baoding.example:7443".
    #[serde(default)]
    pub gossip_endpoints: Vec<String>,
    /// What its certificates may be: `node`, `orderer`, `admin`, `operator`,
    /// `auditor`, `client`.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The names the identity-ca may certify for it: DNS names, "*." wildcards
    /// over a domain of two or more labels, IP addresses.
    #[serde(default)]
    pub allowed_names: Vec<String>,
}

impl From<&Member> for MemberJson {
    fn from(m: &Member) -> Self {
        Self {
            org_code: m.org_code.clone(),
            gossip_endpoints: m.gossip_endpoints.clone(),
            roles: m.roles.iter().map(|r| role_name(*r)).collect(),
            allowed_names: m.allowed_names.clone(),
        }
    }
}

impl MemberJson {
    fn to_proto(&self) -> Result<Member, ServiceError> {
        Ok(Member {
            org_code: self.org_code.clone(),
            gossip_endpoints: self.gossip_endpoints.clone(),
            roles: self
                .roles
                .iter()
                .map(|r| parse_role(r).map(|r| r as i32))
                .collect::<Result<_, _>>()?,
            allowed_names: self.allowed_names.clone(),
        })
    }
}

/// Bounds on what arrives from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsJson {
    pub max_tx_bytes: u32,
    pub max_signatures_per_tx: u32,
    pub max_block_txs: u32,
    pub max_block_bytes: u32,
    pub batch_timeout_ms: u32,
}

impl From<&Limits> for LimitsJson {
    fn from(l: &Limits) -> Self {
        Self {
            max_tx_bytes: l.max_tx_bytes,
            max_signatures_per_tx: l.max_signatures_per_tx,
            max_block_txs: l.max_block_txs,
            max_block_bytes: l.max_block_bytes,
            batch_timeout_ms: l.batch_timeout_ms,
        }
    }
}

impl From<&LimitsJson> for Limits {
    fn from(l: &LimitsJson) -> Self {
        Self {
            max_tx_bytes: l.max_tx_bytes,
            max_signatures_per_tx: l.max_signatures_per_tx,
            max_block_txs: l.max_block_txs,
            max_block_bytes: l.max_block_bytes,
            batch_timeout_ms: l.batch_timeout_ms,
        }
    }
}

/// One orderer of the Raft cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrdererJson {
    /// Raft node id; never reused.
    pub raft_id: u64,
    pub node_id: String,
    pub org_code: String,
    pub endpoint: String,
    /// SHA-256 of the node's DER certificate, 64 hex digits.
    pub cert_id: String,
}

impl From<&OrdererNode> for OrdererJson {
    fn from(o: &OrdererNode) -> Self {
        Self {
            raft_id: o.raft_id,
            node_id: o.node_id.clone(),
            org_code: o.org_code.clone(),
            endpoint: o.endpoint.clone(),
            cert_id: hex::encode(&o.cert_id),
        }
    }
}

impl OrdererJson {
    fn to_proto(&self) -> Result<OrdererNode, ServiceError> {
        let cert_id = hex::decode(&self.cert_id)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| bad("orderer cert_id must be 64 hex digits"))?;
        Ok(OrdererNode {
            raft_id: self.raft_id,
            node_id: self.node_id.clone(),
            org_code: self.org_code.clone(),
            endpoint: self.endpoint.clone(),
            cert_id,
        })
    }
}

/// A proposal passes when yes votes × denominator > members × numerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyJson {
    pub numerator: u32,
    pub denominator: u32,
}

/// A people's congress approval of a budget (Budget Law art. 52's start point).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetApprovalJson {
    pub fiscal_year: u32,
    pub org_code: String,
    /// "YYYY-MM-DD", China Standard Time.
    pub approved_on: String,
    /// The approving resolution, e.g. "十四届全国人大四次会议决议".
    pub document: String,
}

impl From<&BudgetApproval> for BudgetApprovalJson {
    fn from(a: &BudgetApproval) -> Self {
        Self {
            fiscal_year: a.fiscal_year,
            org_code: a.org_code.clone(),
            approved_on: a.approved_on.clone(),
            document: a.document.clone(),
        }
    }
}

impl From<&BudgetApprovalJson> for BudgetApproval {
    fn from(a: &BudgetApprovalJson) -> Self {
        Self {
            fiscal_year: a.fiscal_year,
            org_code: a.org_code.clone(),
            approved_on: a.approved_on.clone(),
            document: a.document.clone(),
        }
    }
}

/// One year's holidays (法定节假日) and adjusted working days (调休上班).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HolidayCalendarJson {
    pub year: u32,
    #[serde(default)]
    pub holidays: Vec<String>,
    #[serde(default)]
    pub workdays: Vec<String>,
}

/// Policy thresholds where the law sets no number of days (0: 10 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlinePolicyJson {
    #[serde(default)]
    pub emergency_days: u32,
    #[serde(default)]
    pub acknowledge_days: u32,
}

/// A change to the consortium configuration, by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChangeJson {
    /// A new member (and its org, added to the registry or updated).
    AddMember {
        org: OrgJson,
        member: MemberJson,
    },
    /// A member leaves: from the next block every certificate of its org is
    /// refused; its past transactions stay readable and provable.
    RemoveMember {
        org_code: String,
        reason: String,
    },
    /// A current member's endpoints, roles and certifiable names.
    UpdateMember {
        member: MemberJson,
    },
    /// Adds an org to the registry or changes its name, level or parent.
    UpsertOrg {
        org: OrgJson,
    },
    UpdateLimits {
        limits: LimitsJson,
    },
    /// A newer CRL as `fiscus identity-ca` issues it: the protobuf
    /// `fiscus.types.v1.Crl`, standard base64, signed by the root.
    UpdateCrl {
        crl: String,
    },
    /// Replaces the orderer set.
    UpdateOrderers {
        orderers: Vec<OrdererJson>,
    },
    /// Changes the vote threshold itself.
    UpdatePolicy {
        policy: PolicyJson,
    },
    RecordBudgetApproval {
        approval: BudgetApprovalJson,
    },
    SetHolidayCalendar {
        calendar: HolidayCalendarJson,
    },
    UpdateDeadlinePolicy {
        policy: DeadlinePolicyJson,
    },
    UpgradeContract {
        contract: String,
        version: u32,
    },
}

impl ChangeJson {
    /// The protobuf change; only shape is checked here, the contract checks
    /// the rest.
    pub fn to_proto(&self) -> Result<Change, ServiceError> {
        Ok(match self {
            Self::AddMember { org, member } => Change::AddMember(AddMember {
                org: Some(org.to_proto()?),
                member: Some(member.to_proto()?),
            }),
            Self::RemoveMember { org_code, reason } => Change::RemoveMember(RemoveMember {
                org_code: org_code.clone(),
                reason: reason.clone(),
            }),
            Self::UpdateMember { member } => Change::UpdateMember(UpdateMember {
                member: Some(member.to_proto()?),
            }),
            Self::UpsertOrg { org } => Change::UpsertOrg(UpsertOrg {
                org: Some(org.to_proto()?),
            }),
            Self::UpdateLimits { limits } => Change::UpdateLimits(UpdateLimits {
                limits: Some(limits.into()),
            }),
            Self::UpdateCrl { crl } => {
                let bytes = B64
                    .decode(crl.trim())
                    .map_err(|_| bad("crl is not standard base64"))?;
                let crl = Crl::decode(&bytes[..])
                    .map_err(|e| bad(format!("crl is not a fiscus.types.v1.Crl: {e}")))?;
                Change::UpdateCrl(UpdateCrl { crl: Some(crl) })
            }
            Self::UpdateOrderers { orderers } => Change::UpdateOrderers(UpdateOrderers {
                orderers: orderers
                    .iter()
                    .map(OrdererJson::to_proto)
                    .collect::<Result<_, _>>()?,
            }),
            Self::UpdatePolicy { policy } => Change::UpdatePolicy(UpdatePolicy {
                policy: Some(GovernancePolicy {
                    numerator: policy.numerator,
                    denominator: policy.denominator,
                }),
            }),
            Self::RecordBudgetApproval { approval } => {
                Change::RecordBudgetApproval(RecordBudgetApproval {
                    approval: Some(approval.into()),
                })
            }
            Self::SetHolidayCalendar { calendar } => {
                Change::SetHolidayCalendar(SetHolidayCalendar {
                    calendar: Some(HolidayCalendar {
                        year: calendar.year,
                        holidays: calendar.holidays.clone(),
                        workdays: calendar.workdays.clone(),
                    }),
                })
            }
            Self::UpdateDeadlinePolicy { policy } => {
                Change::UpdateDeadlinePolicy(UpdateDeadlinePolicy {
                    policy: Some(DeadlinePolicy {
                        emergency_days: policy.emergency_days,
                        acknowledge_days: policy.acknowledge_days,
                    }),
                })
            }
            Self::UpgradeContract { contract, version } => {
                Change::UpgradeContract(UpgradeContract {
                    contract: contract.clone(),
                    version: *version,
                })
            }
        })
    }

    /// The JSON form of a change on chain (`None`: a proposal without one,
    /// which the contract never records).
    pub fn from_proto(c: &Change) -> Option<Self> {
        Some(match c {
            Change::AddMember(a) => Self::AddMember {
                org: a.org.as_ref()?.into(),
                member: a.member.as_ref()?.into(),
            },
            Change::RemoveMember(r) => Self::RemoveMember {
                org_code: r.org_code.clone(),
                reason: r.reason.clone(),
            },
            Change::UpdateMember(u) => Self::UpdateMember {
                member: u.member.as_ref()?.into(),
            },
            Change::UpsertOrg(u) => Self::UpsertOrg {
                org: u.org.as_ref()?.into(),
            },
            Change::UpdateLimits(u) => Self::UpdateLimits {
                limits: u.limits.as_ref()?.into(),
            },
            Change::UpdateCrl(u) => Self::UpdateCrl {
                crl: B64.encode(u.crl.as_ref()?.encode_to_vec()),
            },
            Change::UpdateOrderers(u) => Self::UpdateOrderers {
                orderers: u.orderers.iter().map(Into::into).collect(),
            },
            Change::UpdatePolicy(u) => {
                let p = u.policy.as_ref()?;
                Self::UpdatePolicy {
                    policy: PolicyJson {
                        numerator: p.numerator,
                        denominator: p.denominator,
                    },
                }
            }
            Change::RecordBudgetApproval(r) => Self::RecordBudgetApproval {
                approval: r.approval.as_ref()?.into(),
            },
            Change::SetHolidayCalendar(s) => {
                let c = s.calendar.as_ref()?;
                Self::SetHolidayCalendar {
                    calendar: HolidayCalendarJson {
                        year: c.year,
                        holidays: c.holidays.clone(),
                        workdays: c.workdays.clone(),
                    },
                }
            }
            Change::UpdateDeadlinePolicy(u) => {
                let p = u.policy.unwrap_or_default();
                Self::UpdateDeadlinePolicy {
                    policy: DeadlinePolicyJson {
                        emergency_days: p.emergency_days,
                        acknowledge_days: p.acknowledge_days,
                    },
                }
            }
            Change::UpgradeContract(u) => Self::UpgradeContract {
                contract: u.contract.clone(),
                version: u.version,
            },
        })
    }
}

// ---------------------------------------------------------------------------
// Requests and answers.

/// A proposal: either a client-signed envelope whose call is a governance
/// `propose`, or (custodial signing) a `title` and a `change`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposeRequest {
    /// The protobuf `fiscus.types.v1.Envelope`, standard base64, signed by a
    /// certificate of the caller's org. Alone, or leave it out and give
    /// `title` and `change`.
    #[serde(default)]
    pub envelope: Option<String>,
    /// What the change is for, e.g. "保定市财政局加入联盟".
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub change: Option<ChangeJson>,
}

/// A vote: either a client-signed envelope whose call is a governance `vote`
/// on this proposal, or (custodial signing) `approve`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteRequest {
    #[serde(default)]
    pub envelope: Option<String>,
    /// `true`: yes; `false`: no. A member's vote never changes.
    #[serde(default)]
    pub approve: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// `ordered` (default), `commit` or `final`.
    #[serde(default)]
    #[param(value_type = Option<String>)]
    pub wait: Wait,
}

/// A proposal and its tally.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProposalJson {
    /// The proposal's id: the tx id of the transaction that made it.
    pub id: String,
    pub title: String,
    pub change: Option<ChangeJson>,
    pub proposer_org: String,
    /// `open`, `passed` or `failed`.
    pub status: String,
    /// Members that voted yes (the proposer's signing members among them), sorted.
    pub yes: Vec<String>,
    pub no: Vec<String>,
    /// Current members that have not voted (open proposals only).
    pub not_voted: Vec<String>,
    /// Yes votes of current members it needs to pass, under the
    /// configuration at `height`.
    pub votes_needed: u64,
    /// The block in which it passed or failed; 0 while open. A passed
    /// change takes effect from the next block.
    pub decided_height: u64,
    /// The time of the block that recorded it (ms since the epoch).
    pub proposed_at_ms: i64,
}

/// Proposals, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProposalList {
    pub items: Vec<ProposalJson>,
    /// The height every item was read at.
    pub height: u64,
    /// How many proposals matched (`items` holds at most `limit` of them).
    pub total: u64,
}

fn status_name(s: i32) -> String {
    ProposalStatus::try_from(s).map_or_else(
        |_| format!("unknown({s})"),
        |s| enum_name(s.as_str_name(), "PROPOSAL_STATUS_"),
    )
}

fn proposal_json(id: &[u8], rec: &ProposalRecord, config: &ConsortiumConfig) -> ProposalJson {
    let proposal = rec.proposal.clone().unwrap_or_default();
    ProposalJson {
        id: hex::encode(id),
        title: proposal.title,
        change: proposal.change.as_ref().and_then(ChangeJson::from_proto),
        proposer_org: rec.proposer_org.clone(),
        status: status_name(rec.status),
        yes: rec.yes.clone(),
        no: rec.no.clone(),
        not_voted: not_voted(rec, config),
        votes_needed: votes_needed(config),
        decided_height: rec.decided_height,
        proposed_at_ms: rec.proposed_at_ms,
    }
}

/// The consortium configuration at a height.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigJson {
    /// The height it was read at.
    pub height: u64,
    /// Bumped by every governance change.
    pub version: u64,
    /// The block that wrote this version (0: genesis).
    pub changed_at_height: u64,
    pub consortium_id: String,
    pub members: Vec<MemberJson>,
    pub orgs: Vec<OrgJson>,
    pub orderers: Vec<OrdererJson>,
    /// Orgs that left by governance; their certificates are refused from
    /// `effective_height` on.
    pub revoked_orgs: Vec<RevokedOrgJson>,
    /// The vote threshold (a strict majority when none was set).
    pub policy: PolicyJson,
    /// Yes votes of current members a proposal needs to pass.
    pub votes_needed: u64,
    pub limits: Option<LimitsJson>,
    /// The CRL in force: its number and the certificates it revokes.
    pub crl_number: u64,
    pub revoked_certificates: Vec<RevokedCertificateJson>,
    /// The contract versions blocks are executed with.
    pub contracts: Vec<ContractVersionJson>,
    pub budget_approvals: Vec<BudgetApprovalJson>,
    /// The years that have a holiday calendar.
    pub holiday_calendar_years: Vec<u32>,
    pub deadline_policy: DeadlinePolicyJson,
    /// All of it as the protobuf `fiscus.types.v1.ConsortiumConfig`, standard
    /// base64: what `fiscus verify-receipt --config` reads to know the members
    /// (and revocations) at a receipt's height, offline.
    pub config_protobuf: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokedOrgJson {
    pub org_code: String,
    pub reason: String,
    pub effective_height: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RevokedCertificateJson {
    /// SHA-256 of the DER certificate, 64 hex digits.
    pub cert_id: String,
    pub reason: String,
    pub effective_height: u64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContractVersionJson {
    pub contract: String,
    pub version: u32,
}

fn config_json(c: &ConsortiumConfig, height: u64, changed_at_height: u64) -> ConfigJson {
    let policy = match c.governance {
        Some(p) if p.denominator > 0 => PolicyJson {
            numerator: p.numerator,
            denominator: p.denominator,
        },
        _ => PolicyJson {
            numerator: 1,
            denominator: 2,
        },
    };
    let crl = c.crl.clone().unwrap_or_default();
    let deadline = c.deadline_policy.unwrap_or_default();
    ConfigJson {
        height,
        version: c.version,
        changed_at_height,
        consortium_id: c.consortium_id.clone(),
        members: c.members.iter().map(Into::into).collect(),
        orgs: c.orgs.iter().map(Into::into).collect(),
        orderers: c.orderers.iter().map(Into::into).collect(),
        revoked_orgs: c
            .revoked_orgs
            .iter()
            .map(|r| RevokedOrgJson {
                org_code: r.org_code.clone(),
                reason: r.reason.clone(),
                effective_height: r.effective_height,
            })
            .collect(),
        policy,
        votes_needed: votes_needed(c),
        limits: c.limits.as_ref().map(Into::into),
        crl_number: crl.number,
        revoked_certificates: crl
            .revoked
            .iter()
            .map(|r| RevokedCertificateJson {
                cert_id: hex::encode(&r.cert_id),
                reason: r.reason.clone(),
                effective_height: r.effective_height,
            })
            .collect(),
        contracts: c
            .contracts
            .iter()
            .map(|v| ContractVersionJson {
                contract: v.contract.clone(),
                version: v.version,
            })
            .collect(),
        budget_approvals: c.budget_approvals.iter().map(Into::into).collect(),
        holiday_calendar_years: c.holiday_calendars.iter().map(|h| h.year).collect(),
        deadline_policy: DeadlinePolicyJson {
            emergency_days: deadline.emergency_days,
            acknowledge_days: deadline.acknowledge_days,
        },
        config_protobuf: B64.encode(prost::Message::encode_to_vec(c)),
    }
}

/// The configuration as one read saw it.
pub(crate) struct ConfigAt {
    pub config: ConsortiumConfig,
    /// The height of the read.
    pub height: u64,
    /// The block that last wrote `gov/config`.
    pub changed_at: u64,
}

impl Api {
    /// `gov/config` at `at_height` (0: the head).
    pub(crate) async fn config_at(&self, at_height: u64) -> Result<ConfigAt, ServiceError> {
        let r = self
            .backend
            .state(fiscus_contract_executor::keys::CONFIG, at_height)
            .await?;
        if !r.found {
            return Err(err(
                ErrorKind::NotFound,
                codes::governance::NO_CONFIG,
                "the chain has no consortium configuration at that height",
            ));
        }
        let config = ConsortiumConfig::decode(&r.value[..]).map_err(|e| {
            err(
                ErrorKind::Internal,
                codes::api::BACKEND_ERROR,
                format!("gov/config does not decode: {e}"),
            )
        })?;
        Ok(ConfigAt {
            config,
            height: r.height,
            changed_at: r.version,
        })
    }

    /// Orders a governance call for the caller: the envelope it signed, or
    /// one the member signs for it (custodial). Checks scope, signatures and
    /// the contract's governance rules first.
    async fn order_governance(
        &self,
        client: Arc<Client>,
        req: &HttpRequest,
        envelope: Option<&str>,
        custodial_call: impl FnOnce() -> Result<GovernanceCall, ServiceError>,
        expect: impl Fn(&GovernanceCall) -> Result<(), ServiceError>,
        wait: Wait,
    ) -> Result<SubmitResult, ServiceError> {
        let key = crate::api::idempotency_key(req)?;
        let retry = key.is_some();
        if let Some(envelope) = envelope {
            let bytes = B64.decode(envelope.trim()).map_err(|_| {
                err(
                    ErrorKind::InvalidArgument,
                    codes::api::BAD_BASE64,
                    "envelope is not standard base64",
                )
            })?;
            let tx = CheckedTx::decode(&bytes, &self.limits).map_err(|e| {
                err(
                    ErrorKind::InvalidArgument,
                    codes::tx::BAD_ENCODING,
                    format!("the envelope does not decode: {e}"),
                )
            })?;
            let Some(Call::Governance(call)) = &tx.payload.call else {
                return Err(bad(
                    "the envelope's call is not a governance call; transfers go to /v1/transactions",
                ));
            };
            expect(call)?;
            let signers = crate::submit::check_envelope(self, &tx, &client.org, &client.scopes)?;
            self.check_governance(call, &signers).await?;
            return self.order(tx.tx_id, tx.to_wire(), wait, retry).await;
        }
        let custodial = client.custodial()?;
        let call = custodial_call()?;
        expect(&call)?;
        self.check_governance(&call, &self.custodial_signers(custodial))
            .await?;
        let (tx_id, env, nonce) = custodial_envelope(
            self,
            custodial,
            &client,
            Call::Governance(call),
            key.as_deref(),
        )?;
        if key.is_some()
            && let Some(first) = self.nonce_used_by_other(custodial, nonce, &tx_id).await?
        {
            return Err(key_reused(format_args!("tx {first}")));
        }
        self.order(tx_id, env, wait, retry).await
    }
}

fn one_of(envelope: bool, fields: bool, what: &str) -> Result<(), ServiceError> {
    match (envelope, fields) {
        (true, false) | (false, true) => Ok(()),
        _ => Err(err(
            ErrorKind::InvalidArgument,
            codes::api::INVALID_BODY,
            format!(
                "give either \"envelope\" (client-signed) or {what} (custodial signing), not both or neither"
            ),
        )),
    }
}

/// Propose a change to the consortium configuration.
///
/// Needs the `govern` scope. The proposer's member votes yes with it. The
/// governance contract's checks run before it is ordered (a non-member, a
/// change that could not apply now); the answer's `tx_id` is the proposal's id.
#[utoipa::path(
    tag = "governance",
    request_body = ProposeRequest,
    params(WaitQuery, ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first result")),
    responses(
        (status = 200, description = "Ordered (and committed or final, as asked); `tx_id` is the proposal id", body = SubmitResult),
        (status = 400, description = "Malformed request, or `governance.invalid_proposal`: the change could not apply", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Scope `govern` not granted, or `governance.not_member`: no signer is a current member", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "A replay of an ordered transaction", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/governance/proposals")]
pub(crate) async fn propose(
    api: web::Data<Api>,
    req: HttpRequest,
    caller: Caller<GovernScope>,
    query: web::Query<WaitQuery>,
    body: web::Json<ProposeRequest>,
) -> Result<web::Json<SubmitResult>, ServiceError> {
    let body = body.into_inner();
    one_of(
        body.envelope.is_some(),
        body.title.is_some() || body.change.is_some(),
        "\"title\" and \"change\"",
    )?;
    let out = api
        .order_governance(
            caller.0,
            &req,
            body.envelope.as_deref(),
            || {
                let change = body
                    .change
                    .as_ref()
                    .ok_or_else(|| bad("a proposal needs a change"))?;
                Ok(GovernanceCall {
                    method: Some(governance_call::Method::Propose(ProposeArgs {
                        proposal: Some(Proposal {
                            title: body.title.clone().unwrap_or_default(),
                            change: Some(change.to_proto()?),
                        }),
                    })),
                })
            },
            |call| match call.method {
                Some(governance_call::Method::Propose(_)) => Ok(()),
                _ => Err(bad("the envelope's governance call is not a proposal")),
            },
            query.wait,
        )
        .await?;
    Ok(web::Json(out))
}

/// Vote on an open proposal.
///
/// Needs the `govern` scope. A member votes once; the vote that reaches the
/// threshold passes the proposal in its block, and the change takes effect
/// from the next block.
#[utoipa::path(
    tag = "governance",
    request_body = VoteRequest,
    params(("tx_id" = String, Path, description = "The proposal id (64 hex digits)"), WaitQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the first result")),
    responses(
        (status = 200, description = "Ordered (and committed or final, as asked)", body = SubmitResult),
        (status = 403, description = "Scope `govern` not granted, or `governance.not_member`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "A replay of an ordered transaction", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`governance.unknown_proposal`, `governance.already_voted`, `governance.proposal_closed` or `governance.proposal_failed`", body = ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
#[post("/v1/governance/proposals/{tx_id}/votes")]
pub(crate) async fn vote(
    api: web::Data<Api>,
    req: HttpRequest,
    caller: Caller<GovernScope>,
    tx_id: web::Path<String>,
    query: web::Query<WaitQuery>,
    body: web::Json<VoteRequest>,
) -> Result<web::Json<SubmitResult>, ServiceError> {
    let id = tx_id_param(&tx_id)?;
    let body = body.into_inner();
    one_of(
        body.envelope.is_some(),
        body.approve.is_some(),
        "\"approve\"",
    )?;
    let out = api
        .order_governance(
            caller.0,
            &req,
            body.envelope.as_deref(),
            || {
                Ok(GovernanceCall {
                    method: Some(governance_call::Method::Vote(VoteArgs {
                        proposal_tx_id: id.to_vec(),
                        approve: body.approve.unwrap_or_default(),
                    })),
                })
            },
            |call| match &call.method {
                Some(governance_call::Method::Vote(v)) if v.proposal_tx_id == id.to_vec() => Ok(()),
                Some(governance_call::Method::Vote(_)) => Err(bad(format!(
                    "the envelope votes on another proposal than {id}"
                ))),
                _ => Err(bad("the envelope's governance call is not a vote")),
            },
            query.wait,
        )
        .await?;
    Ok(web::Json(out))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ProposalsQuery {
    /// `open`, `passed`, `failed` or `all` (default).
    pub status: Option<String>,
    /// At most this many, newest first (default 100, capped by the server).
    pub limit: Option<u32>,
}

/// Proposals, open and decided, with their tallies and who voted.
#[utoipa::path(tag = "governance", params(ProposalsQuery),
    responses((status = 200, body = ProposalList),
        (status = 404, description = "`governance.no_config`: the chain has no configuration", body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/governance/proposals")]
pub(crate) async fn list_proposals(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ProposalsQuery>,
) -> Result<web::Json<ProposalList>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let (found, config, total) = api
        .proposals(q.status.as_deref().unwrap_or("all"), q.limit)
        .await?;
    Ok(web::Json(ProposalList {
        items: found
            .iter()
            .map(|(id, rec)| proposal_json(id, rec, &config.config))
            .collect(),
        height: config.height,
        total,
    }))
}

impl Api {
    /// Proposals with `status` (`open`, `passed`, `failed` or `all`) at the
    /// head, newest first, at most a page: (id, record) pairs, the config
    /// they were read with, and how many matched. REST and gRPC share it.
    pub(crate) async fn proposals(
        &self,
        status: &str,
        limit: Option<u32>,
    ) -> Result<(Vec<(Vec<u8>, ProposalRecord)>, ConfigAt, u64), ServiceError> {
        let want = match status {
            "all" | "" => None,
            s @ ("open" | "passed" | "failed") => Some(s.to_owned()),
            other => {
                return Err(err(
                    ErrorKind::InvalidArgument,
                    codes::api::BAD_QUERY,
                    format!("status {other:?} is not open, passed, failed or all"),
                ));
            }
        };
        let config = self.config_at(0).await?;
        let prefix = b"gov/proposal/";
        let mut found: Vec<(Vec<u8>, ProposalRecord)> = self
            .scan_at(prefix, config.height)
            .await?
            .iter()
            .filter_map(|(k, v)| {
                let id = hex::decode(k.strip_prefix(&prefix[..])?).ok()?;
                let rec = ProposalRecord::decode(&v[..]).ok()?;
                Some((id, rec))
            })
            .filter(|(_, rec)| want.as_ref().is_none_or(|w| *w == status_name(rec.status)))
            .collect();
        found.sort_by(|(ia, a), (ib, b)| (b.proposed_at_ms, ib).cmp(&(a.proposed_at_ms, ia)));
        let total = found.len() as u64;
        found.truncate(self.page(limit) as usize);
        Ok((found, config, total))
    }
}

/// Current members that have not voted on an open proposal.
pub(crate) fn not_voted(rec: &ProposalRecord, config: &ConsortiumConfig) -> Vec<String> {
    if rec.status != ProposalStatus::Open as i32 {
        return Vec::new();
    }
    config
        .members
        .iter()
        .map(|m| m.org_code.clone())
        .filter(|o| !rec.yes.contains(o) && !rec.no.contains(o))
        .collect()
}

/// One proposal with its tally.
#[utoipa::path(tag = "governance",
    params(("tx_id" = String, Path, description = "The proposal id (64 hex digits)")),
    responses((status = 200, body = ProposalJson),
        (status = 404, description = "`governance.unknown_proposal`", body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/governance/proposals/{tx_id}")]
pub(crate) async fn get_proposal(
    api: web::Data<Api>,
    req: HttpRequest,
    tx_id: web::Path<String>,
) -> Result<web::Json<ProposalJson>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    let id: Hash32 = tx_id_param(&tx_id)?;
    let config = api.config_at(0).await?;
    let value = api
        .state_at(
            &fiscus_contract_executor::keys::proposal(&id),
            config.height,
        )
        .await?
        .ok_or_else(|| {
            err(
                ErrorKind::NotFound,
                codes::governance::UNKNOWN_PROPOSAL,
                format!("no proposal {id}"),
            )
        })?;
    let rec = ProposalRecord::decode(&value[..]).map_err(|e| {
        err(
            ErrorKind::Internal,
            codes::api::BACKEND_ERROR,
            e.to_string(),
        )
    })?;
    Ok(web::Json(proposal_json(&id.0, &rec, &config.config)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConfigQuery {
    /// The height to read at (default: the head).
    pub height: Option<u64>,
}

/// The consortium configuration at a height, with its version.
#[utoipa::path(tag = "governance", params(ConfigQuery),
    responses((status = 200, body = ConfigJson),
        (status = 404, description = "`api.not_found`: the chain has no block at that height yet", body = ProblemDoc, content_type = "application/problem+json")),
    security(("api_key" = [])))]
#[get("/v1/governance/config")]
pub(crate) async fn get_config(
    api: web::Data<Api>,
    req: HttpRequest,
    q: web::Query<ConfigQuery>,
) -> Result<web::Json<ConfigJson>, ServiceError> {
    api.caller(&req, Scope::Read)?;
    if q.height == Some(0) {
        return Err(err(
            ErrorKind::InvalidArgument,
            codes::api::BAD_QUERY,
            "height must be at least 1; leave it out for the head",
        ));
    }
    let c = api.config_at(q.height.unwrap_or(0)).await?;
    Ok(web::Json(config_json(&c.config, c.height, c.changed_at)))
}

pub fn routes(app: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    app.service(propose)
        .service(list_proposals)
        .service(get_proposal)
        .service(vote)
        .service(get_config);
}
