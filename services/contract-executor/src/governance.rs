//! The governance contract: changes to the consortium configuration
//! (`ConsortiumConfig`, state key `gov/config`) by proposal and member vote.
//!
//! - Only current members (orgs listed in `members`) may propose or vote; the
//!   proposer's signing orgs count as yes votes.
//! - A proposal passes in the block whose vote makes
//!   `yes × denominator > members × numerator` (a strict majority when no
//!   policy is set) and fails once enough members voted no that it no longer
//!   can. Later votes on it are refused.
//! - A passed change bumps the config version and takes effect from the next
//!   block: a member that leaves has every certificate refused from the block
//!   after the one that passed its removal.

use crate::calendar::{day_of, parse_date};
use crate::context::{Ctx, Declared};
use crate::keys;
use crate::orgs::Orgs;
use crate::rejection::Rejection;
use crate::rules::{org_code, text, tx_ref};
use crate::view::View;
use fiscus_common::codes;
use fiscus_common::tls::names;
use fiscus_proto::hash::TxId;
use fiscus_proto::pb::governance::{GovernanceCall, Proposal, governance_call, proposal::Change};
use fiscus_proto::pb::state::{ProposalRecord, ProposalStatus};
use fiscus_proto::pb::types::{
    BudgetApproval, ConsortiumConfig, ContractEvent, Crl, GovernancePolicy, HolidayCalendar,
    OrgLevel, RevokedOrg, TxStatus,
};
use prost::Message;
use std::collections::BTreeSet;

/// The contracts this executor implements, with their versions. A config that
/// names another version makes the ledger stop rather than diverge: a newer
/// one needs a newer binary; an older one (transfer v1) is not kept, so a
/// chain started with it is replayed by the binary that wrote it, or reset.
pub const IMPLEMENTED: &[(&str, u32)] =
    &[("governance", 1), ("transfer", crate::transfer::VERSION)];

/// Contract versions in `config` this binary does not implement.
pub fn unsupported_versions(config: &ConsortiumConfig) -> Vec<(String, u32)> {
    config
        .contracts
        .iter()
        .filter(|c| {
            IMPLEMENTED
                .iter()
                .all(|(name, v)| *name != c.contract || *v != c.version)
        })
        .map(|c| (c.contract.clone(), c.version))
        .collect()
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::new(
        TxStatus::InvalidArgument,
        codes::governance::INVALID_PROPOSAL,
        reason,
    )
}

fn method(call: &GovernanceCall) -> Result<&governance_call::Method, Rejection> {
    call.method
        .as_ref()
        .ok_or_else(|| Rejection::malformed("the governance call names no method"))
}

/// Governance calls read and may write the config, plus their proposal record.
pub fn declared_keys(call: &GovernanceCall, tx: &TxId) -> Result<Declared, Rejection> {
    let d = Declared::default()
        .read(keys::CONFIG.to_vec())
        .write(keys::CONFIG.to_vec());
    Ok(match method(call)? {
        governance_call::Method::Propose(_) => d.write(keys::proposal(tx)),
        governance_call::Method::Vote(v) => {
            let id = tx_ref(&v.proposal_tx_id, "proposal_tx_id")?;
            d.read(keys::proposal(&id)).write(keys::proposal(&id))
        }
    })
}

fn load_config(view: &View<'_>) -> Result<ConsortiumConfig, Rejection> {
    view.get::<ConsortiumConfig>(keys::CONFIG)?.ok_or_else(|| {
        Rejection::not_found(
            codes::governance::NO_CONFIG,
            "the chain has no consortium configuration",
        )
    })
}

fn is_member(config: &ConsortiumConfig, org: &str) -> bool {
    config.members.iter().any(|m| m.org_code == org)
}

/// The signing orgs that are current members; refuses a call with none.
fn member_signers(
    signer_orgs: &BTreeSet<String>,
    config: &ConsortiumConfig,
) -> Result<Vec<String>, Rejection> {
    let orgs: Vec<String> = signer_orgs
        .iter()
        .filter(|o| is_member(config, o))
        .cloned()
        .collect();
    if orgs.is_empty() {
        return Err(Rejection::new(
            TxStatus::Unauthorized,
            codes::governance::NOT_MEMBER,
            format!(
                "no signer ({}) is a consortium member",
                signer_orgs.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok(orgs)
}

fn voting_orgs(ctx: &Ctx<'_>, config: &ConsortiumConfig) -> Result<Vec<String>, Rejection> {
    member_signers(ctx.signer_orgs, config)
}

fn policy(config: &ConsortiumConfig) -> (u64, u64) {
    match config.governance {
        Some(GovernancePolicy {
            numerator,
            denominator,
        }) if denominator > 0 => (u64::from(numerator), u64::from(denominator)),
        _ => (1, 2),
    }
}

/// How many yes votes of current members pass a proposal under `config`.
pub fn votes_needed(config: &ConsortiumConfig) -> u64 {
    let (num, den) = policy(config);
    (config.members.len() as u64 * num) / den + 1
}

/// Passed, failed or still open, counting only current members' votes.
fn decide(config: &ConsortiumConfig, rec: &ProposalRecord) -> ProposalStatus {
    let members = config.members.len() as u64;
    let count = |v: &[String]| v.iter().filter(|o| is_member(config, o)).count() as u64;
    let (yes, no) = (count(&rec.yes), count(&rec.no));
    let (num, den) = policy(config);
    if yes * den > members * num {
        ProposalStatus::Passed
    } else if members.saturating_sub(no) * den <= members * num {
        ProposalStatus::Failed
    } else {
        ProposalStatus::Open
    }
}

/// Root CA Ed25519 keys from the config's DER certificates.
fn root_keys(config: &ConsortiumConfig) -> Vec<[u8; 32]> {
    use x509_parser::prelude::FromDer;
    config
        .ca_roots
        .iter()
        .filter_map(|der| {
            let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
            cert.tbs_certificate
                .subject_pki
                .subject_public_key
                .data
                .as_ref()
                .try_into()
                .ok()
        })
        .collect()
}

/// Checks the root's signature over the CRL as identity-ca issued it
/// (signature empty, effective heights 0).
fn crl_signed_by_root(config: &ConsortiumConfig, crl: &Crl) -> bool {
    let mut issued = crl.clone();
    issued.signature = Vec::new();
    for r in &mut issued.revoked {
        r.effective_height = 0;
    }
    let bytes = issued.encode_to_vec();
    root_keys(config)
        .iter()
        .any(|k| fiscus_proto::sign::verify(k, &bytes, &crl.signature).is_ok())
}

/// Checks `change` against `config` and returns the config it produces.
/// `height` is the block that passes it; effects start at `height + 1`.
fn apply(
    config: &ConsortiumConfig,
    proposal: &Proposal,
    height: u64,
    now_ms: i64,
) -> Result<ConsortiumConfig, Rejection> {
    let mut next = config.clone();
    let from = height + 1;
    match proposal.change.as_ref() {
        None => return Err(invalid("the proposal has no change")),
        Some(Change::AddMember(a)) => {
            let org = a
                .org
                .as_ref()
                .ok_or_else(|| invalid("add_member needs an org"))?;
            let member = a
                .member
                .as_ref()
                .ok_or_else(|| invalid("add_member needs a member"))?;
            org_code(&org.code, "org.code")?;
            text(&org.name, "org.name", true)?;
            if member.org_code != org.code {
                return Err(invalid("member.org_code must equal org.code"));
            }
            if is_member(config, &org.code) {
                return Err(invalid(format!("{} is already a member", org.code)));
            }
            if config.revoked_orgs.iter().any(|r| r.org_code == org.code) {
                return Err(invalid(format!(
                    "{} left the consortium; its certificates stay revoked, so it cannot rejoin under the same code",
                    org.code
                )));
            }
            // The identity-ca certifies only these names for the new member:
            // the same rule the genesis bundle is checked with.
            names::check_allow_list(&member.allowed_names)
                .map_err(|e| invalid(format!("member.allowed_names: {e}")))?;
            names::check_disjoint(
                config
                    .members
                    .iter()
                    .chain(std::iter::once(member))
                    .map(|m| (m.org_code.as_str(), &m.allowed_names[..])),
            )
            .map_err(invalid)?;
            upsert_org(&mut next, org.clone())?;
            next.members.push(member.clone());
        }
        Some(Change::RemoveMember(r)) => {
            if !is_member(config, &r.org_code) {
                return Err(invalid(format!("{} is not a member", r.org_code)));
            }
            if config.members.len() <= 1 {
                return Err(invalid("the last member cannot leave"));
            }
            text(&r.reason, "reason", false)?;
            next.members.retain(|m| m.org_code != r.org_code);
            next.revoked_orgs.push(RevokedOrg {
                org_code: r.org_code.clone(),
                reason: r.reason.clone(),
                effective_height: from,
            });
        }
        Some(Change::UpdateLimits(u)) => {
            let l = u
                .limits
                .as_ref()
                .ok_or_else(|| invalid("update_limits needs limits"))?;
            if l.max_tx_bytes == 0
                || l.max_signatures_per_tx == 0
                || l.max_block_txs == 0
                || l.max_block_bytes < l.max_tx_bytes
                || l.batch_timeout_ms == 0
            {
                return Err(invalid(
                    "limits must be positive, with max_block_bytes >= max_tx_bytes",
                ));
            }
            next.limits = Some(*l);
        }
        Some(Change::UpdateCrl(u)) => {
            let crl = u
                .crl
                .as_ref()
                .ok_or_else(|| invalid("update_crl needs a CRL"))?;
            let current = config.crl.as_ref().map_or(0, |c| c.number);
            if crl.number <= current {
                return Err(invalid(format!(
                    "CRL number {} is not newer than {current}",
                    crl.number
                )));
            }
            if !crl_signed_by_root(config, crl) {
                return Err(Rejection::new(
                    TxStatus::BadSignature,
                    codes::governance::BAD_CRL_SIGNATURE,
                    "the CRL is not signed by a consortium root",
                ));
            }
            let before: Vec<_> = config
                .crl
                .iter()
                .flat_map(|c| &c.revoked)
                .map(|r| (r.cert_id.clone(), r.effective_height))
                .collect();
            let mut crl = crl.clone();
            for r in &mut crl.revoked {
                // Entries already in force keep their height; new ones start next block.
                r.effective_height = before
                    .iter()
                    .find(|(id, _)| *id == r.cert_id)
                    .map_or(from, |(_, h)| *h);
            }
            next.crl = Some(crl);
        }
        Some(Change::UpgradeContract(u)) => {
            let current = config
                .contracts
                .iter()
                .find(|c| c.contract == u.contract)
                .map_or(1, |c| c.version);
            if !IMPLEMENTED.iter().any(|(n, _)| *n == u.contract) {
                return Err(invalid(format!("unknown contract {:?}", u.contract)));
            }
            if u.version <= current {
                return Err(invalid(format!(
                    "{} is already at version {current}",
                    u.contract
                )));
            }
            next.contracts.retain(|c| c.contract != u.contract);
            next.contracts
                .push(fiscus_proto::pb::types::ContractVersion {
                    contract: u.contract.clone(),
                    version: u.version,
                });
            next.contracts.sort_by(|a, b| a.contract.cmp(&b.contract));
        }
        Some(Change::UpsertOrg(u)) => {
            let org = u
                .org
                .as_ref()
                .ok_or_else(|| invalid("upsert_org needs an org"))?;
            upsert_org(&mut next, org.clone())?;
        }
        Some(Change::UpdateMember(u)) => {
            let m = u
                .member
                .as_ref()
                .ok_or_else(|| invalid("update_member needs a member"))?;
            let slot = next
                .members
                .iter_mut()
                .find(|x| x.org_code == m.org_code)
                .ok_or_else(|| invalid(format!("{} is not a member", m.org_code)))?;
            *slot = m.clone();
        }
        Some(Change::UpdateOrderers(u)) => {
            let ids: BTreeSet<u64> = u.orderers.iter().map(|o| o.raft_id).collect();
            if u.orderers.is_empty() || ids.len() != u.orderers.len() || ids.contains(&0) {
                return Err(invalid(
                    "the orderer set must be non-empty with distinct non-zero raft ids",
                ));
            }
            next.orderers = u.orderers.clone();
        }
        Some(Change::UpdatePolicy(u)) => {
            let p = u
                .policy
                .ok_or_else(|| invalid("update_policy needs a policy"))?;
            if p.denominator == 0 || p.numerator >= p.denominator {
                return Err(invalid(
                    "the threshold must be a fraction below one, e.g. 1/2 or 2/3",
                ));
            }
            next.governance = Some(p);
        }
        Some(Change::RecordBudgetApproval(r)) => {
            let a = r
                .approval
                .as_ref()
                .ok_or_else(|| invalid("record_budget_approval needs an approval"))?;
            record_approval(&mut next, a, now_ms)?;
        }
        Some(Change::SetHolidayCalendar(h)) => {
            let cal = h
                .calendar
                .as_ref()
                .ok_or_else(|| invalid("set_holiday_calendar needs a calendar"))?;
            set_holidays(&mut next, cal)?;
        }
        Some(Change::UpdateDeadlinePolicy(u)) => {
            let p = u
                .policy
                .ok_or_else(|| invalid("update_deadline_policy needs a policy"))?;
            let ok = |d: u32| (1..=365).contains(&d);
            if !ok(p.emergency_days) || !ok(p.acknowledge_days) {
                return Err(invalid("deadline policy days must be 1 to 365"));
            }
            next.deadline_policy = Some(p);
        }
    }
    next.version += 1;
    Ok(next)
}

fn upsert_org(
    config: &mut ConsortiumConfig,
    org: fiscus_proto::pb::types::Org,
) -> Result<(), Rejection> {
    org_code(&org.code, "org.code")?;
    text(&org.name, "org.name", true)?;
    let level = OrgLevel::try_from(org.level).unwrap_or(OrgLevel::Unspecified);
    if level == OrgLevel::Unspecified {
        return Err(invalid("org.level must be set"));
    }
    let orgs = Orgs::from_config(config);
    if !org.parent.is_empty() {
        if !orgs.contains(&org.parent) {
            return Err(invalid(format!(
                "parent {} is not in the registry",
                org.parent
            )));
        }
        if org.parent == org.code || orgs.is_descendant(&org.code, &org.parent) {
            return Err(invalid("the change would make the org its own ancestor"));
        }
    }
    match config.orgs.iter_mut().find(|o| o.code == org.code) {
        Some(slot) => *slot = org,
        None => {
            config.orgs.push(org);
            config.orgs.sort_by(|a, b| a.code.cmp(&b.code));
        }
    }
    Ok(())
}

/// A people's congress approval: a real org that holds funds, a date in the
/// fiscal year that is not in the future, and never a second one for the same
/// (year, org): an approval once recorded cannot be moved to push deadlines back.
fn record_approval(
    config: &mut ConsortiumConfig,
    a: &BudgetApproval,
    now_ms: i64,
) -> Result<(), Rejection> {
    org_code(&a.org_code, "approval.org_code").map_err(|r| invalid(r.reason))?;
    let level = Orgs::from_config(config).level(&a.org_code);
    if matches!(
        level,
        None | Some(OrgLevel::Supervisor | OrgLevel::Unspecified)
    ) {
        return Err(invalid(format!(
            "{} is not a finance department in the registry",
            a.org_code
        )));
    }
    text(&a.document, "approval.document", true).map_err(|r| invalid(r.reason))?;
    let day = parse_date(&a.approved_on)
        .ok_or_else(|| invalid("approval.approved_on must be a date YYYY-MM-DD"))?;
    if crate::calendar::civil_from_days(day).0 != i64::from(a.fiscal_year) {
        return Err(invalid(format!(
            "a {} budget is approved in {}",
            a.fiscal_year, a.fiscal_year
        )));
    }
    if day > day_of(now_ms) {
        return Err(invalid("approval.approved_on is in the future"));
    }
    let key = |x: &BudgetApproval| (x.fiscal_year, x.org_code.clone());
    if config.budget_approvals.iter().any(|x| key(x) == key(a)) {
        return Err(invalid(format!(
            "the {} budget approval of {} is already recorded and never changes",
            a.fiscal_year, a.org_code
        )));
    }
    config.budget_approvals.push(a.clone());
    config.budget_approvals.sort_by_key(key);
    Ok(())
}

/// One year's holidays and adjusted working days (which must be weekend days).
fn set_holidays(config: &mut ConsortiumConfig, h: &HolidayCalendar) -> Result<(), Rejection> {
    let dates = |list: &[String]| -> Result<BTreeSet<i64>, Rejection> {
        if list.len() > 366 {
            return Err(invalid("at most 366 dates a year"));
        }
        list.iter()
            .map(|d| {
                parse_date(d)
                    .filter(|day| crate::calendar::civil_from_days(*day).0 == i64::from(h.year))
                    .ok_or_else(|| invalid(format!("{d:?} is not a date in {}", h.year)))
            })
            .collect()
    };
    let holidays = dates(&h.holidays)?;
    let workdays = dates(&h.workdays)?;
    if holidays.intersection(&workdays).next().is_some() {
        return Err(invalid("a day cannot be both a holiday and a working day"));
    }
    if workdays.iter().any(|d| (d + 3).rem_euclid(7) < 5) {
        return Err(invalid("adjusted working days (调休) are weekend days"));
    }
    let canonical = HolidayCalendar {
        year: h.year,
        holidays: holidays
            .into_iter()
            .map(crate::calendar::format_date)
            .collect(),
        workdays: workdays
            .into_iter()
            .map(crate::calendar::format_date)
            .collect(),
    };
    config.holiday_calendars.retain(|c| c.year != h.year);
    config.holiday_calendars.push(canonical);
    config.holiday_calendars.sort_by_key(|c| c.year);
    Ok(())
}

fn event(name: &str, proposal: &TxId) -> ContractEvent {
    ContractEvent {
        name: name.into(),
        data: proposal.to_vec(),
    }
}

/// Records the decision; on a pass, writes the new config.
fn settle(
    view: &mut View<'_>,
    config: &ConsortiumConfig,
    id: &TxId,
    mut rec: ProposalRecord,
    (height, now_ms): (u64, i64),
    events: &mut Vec<ContractEvent>,
) -> Result<(), Rejection> {
    match decide(config, &rec) {
        ProposalStatus::Passed => match rec
            .proposal
            .as_ref()
            .map(|p| apply(config, p, height, now_ms))
        {
            Some(Ok(next)) => {
                view.put(keys::CONFIG, &next)?;
                rec.status = ProposalStatus::Passed as i32;
                rec.decided_height = height;
                events.push(event("governance.proposal_passed", id));
            }
            // Valid when proposed, but an earlier change made it inapplicable.
            _ => {
                rec.status = ProposalStatus::Failed as i32;
                rec.decided_height = height;
                events.push(event("governance.proposal_inapplicable", id));
            }
        },
        ProposalStatus::Failed => {
            rec.status = ProposalStatus::Failed as i32;
            rec.decided_height = height;
            events.push(event(codes::governance::PROPOSAL_FAILED, id));
        }
        _ => rec.status = ProposalStatus::Open as i32,
    }
    view.put(&keys::proposal(id), &rec)
}

/// The proposal a `propose` call may make, with the signing members that
/// vote yes with it: a title, and a change that applies to `config` now.
fn check_propose<'p>(
    call: &'p governance_call::Method,
    voters: &[String],
    config: &ConsortiumConfig,
    (height, now_ms): (u64, i64),
) -> Result<Option<&'p Proposal>, Rejection> {
    let governance_call::Method::Propose(p) = call else {
        return Ok(None);
    };
    debug_assert!(!voters.is_empty());
    let proposal = p
        .proposal
        .as_ref()
        .ok_or_else(|| Rejection::malformed("propose needs a proposal"))?;
    text(&proposal.title, "title", true)?;
    // Refuse a change that could not apply now, before anyone votes on it.
    apply(config, proposal, height, now_ms)?;
    Ok(Some(proposal))
}

/// A vote on `rec` (proposal `id`) by `voters`: the proposal is open and
/// none of them voted on it yet.
fn check_vote(id: &TxId, rec: &ProposalRecord, voters: &[String]) -> Result<(), Rejection> {
    match ProposalStatus::try_from(rec.status).unwrap_or(ProposalStatus::Unspecified) {
        ProposalStatus::Open => {}
        ProposalStatus::Failed => {
            return Err(Rejection::new(
                TxStatus::Conflict,
                codes::governance::PROPOSAL_FAILED,
                format!(
                    "proposal {id} failed its threshold at height {}",
                    rec.decided_height
                ),
            ));
        }
        _ => {
            return Err(Rejection::new(
                TxStatus::Conflict,
                codes::governance::PROPOSAL_CLOSED,
                format!("proposal {id} was decided at height {}", rec.decided_height),
            ));
        }
    }
    for org in voters {
        if rec.yes.contains(org) || rec.no.contains(org) {
            return Err(Rejection::new(
                TxStatus::Conflict,
                codes::governance::ALREADY_VOTED,
                format!("{org} already voted on proposal {id}"),
            ));
        }
    }
    Ok(())
}

fn unknown_proposal(id: &TxId) -> Rejection {
    Rejection::not_found(
        codes::governance::UNKNOWN_PROPOSAL,
        format!("no proposal {id}"),
    )
}

/// The checks `execute` makes before it writes anything, against the state
/// an API reads at its head: `config`, and for a vote the proposal's record
/// (`None`: no such proposal). An API refuses with these before it orders
/// the call; the chain checks again when it executes it, against the state
/// of that block. `at` is the (height, time) the call is expected to run at;
/// a budget approval dated "today" may still differ by a day around midnight.
pub fn precheck(
    call: &GovernanceCall,
    signer_orgs: &BTreeSet<String>,
    config: &ConsortiumConfig,
    proposal: Option<&ProposalRecord>,
    at: (u64, i64),
) -> Result<(), Rejection> {
    let method = method(call)?;
    match method {
        governance_call::Method::Propose(_) => {
            let voters = member_signers(signer_orgs, config)?;
            check_propose(method, &voters, config, at)?;
        }
        governance_call::Method::Vote(v) => {
            let id = tx_ref(&v.proposal_tx_id, "proposal_tx_id")?;
            let voters = member_signers(signer_orgs, config)?;
            let rec = proposal.ok_or_else(|| unknown_proposal(&id))?;
            check_vote(&id, rec, &voters)?;
        }
    }
    Ok(())
}

/// The proposal a vote names, if the call is a vote (for [`precheck`]).
pub fn voted_proposal(call: &GovernanceCall) -> Result<Option<TxId>, Rejection> {
    match method(call)? {
        governance_call::Method::Vote(v) => tx_ref(&v.proposal_tx_id, "proposal_tx_id").map(Some),
        governance_call::Method::Propose(_) => Ok(None),
    }
}

pub(crate) fn execute(
    call: &GovernanceCall,
    ctx: &Ctx<'_>,
    view: &mut View<'_>,
) -> Result<Vec<ContractEvent>, Rejection> {
    let config = load_config(view)?;
    let mut events = Vec::new();
    let m = method(call)?;
    match m {
        governance_call::Method::Propose(_) => {
            let voters = voting_orgs(ctx, &config)?;
            let proposal = check_propose(m, &voters, &config, (ctx.height, ctx.now_ms))?
                .ok_or_else(|| Rejection::malformed("propose needs a proposal"))?;
            let rec = ProposalRecord {
                proposal: Some(proposal.clone()),
                proposer_org: voters.first().cloned().unwrap_or_default(),
                yes: voters,
                no: Vec::new(),
                status: ProposalStatus::Open as i32,
                decided_height: 0,
                proposed_at_ms: ctx.now_ms,
            };
            events.push(event("governance.proposed", &ctx.tx_id));
            settle(
                view,
                &config,
                &ctx.tx_id,
                rec,
                (ctx.height, ctx.now_ms),
                &mut events,
            )?;
        }
        governance_call::Method::Vote(v) => {
            let id = tx_ref(&v.proposal_tx_id, "proposal_tx_id")?;
            let voters = voting_orgs(ctx, &config)?;
            let mut rec = view
                .get::<ProposalRecord>(&keys::proposal(&id))?
                .ok_or_else(|| unknown_proposal(&id))?;
            check_vote(&id, &rec, &voters)?;
            let side = if v.approve { &mut rec.yes } else { &mut rec.no };
            side.extend(voters);
            side.sort();
            events.push(event(
                if v.approve {
                    "governance.voted_yes"
                } else {
                    "governance.voted_no"
                },
                &id,
            ));
            settle(
                view,
                &config,
                &id,
                rec,
                (ctx.height, ctx.now_ms),
                &mut events,
            )?;
        }
    }
    Ok(events)
}
