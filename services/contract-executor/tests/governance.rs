//! The governance contract: proposals, votes, thresholds and the config
//! changes they make, including CRL updates and members leaving.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::testkit::fixtures::{self, org};
use fiscus_contract_executor::executor::{KeyValues, declared_reads};
use fiscus_contract_executor::{
    BlockInput, Call, Orgs, TxCtx, execute_block, execute_sequential, keys,
};
use fiscus_proto::hash::{TxId, sha256};
use fiscus_proto::pb::governance::{
    AddMember, GovernanceCall, Proposal, ProposeArgs, RemoveMember, UpdateCrl, UpdatePolicy,
    UpgradeContract, VoteArgs, governance_call, proposal::Change,
};
use fiscus_proto::pb::state::{ProposalRecord, ProposalStatus};
use fiscus_proto::pb::types::{
    ConsortiumConfig, Crl, GovernancePolicy, Member, OrgLevel, RevokedCertificate, TxStatus,
};
use fiscus_proto::sign::SigningKey;
use prost::Message;

const MEMBERS: [&str; 5] = ["000000", "130000", "130100", "130102", "991300"];

fn genesis(ca_roots: Vec<Vec<u8>>) -> ConsortiumConfig {
    ConsortiumConfig {
        ca_roots,
        ..fixtures::genesis(
            "test",
            &["000000", "130000", "130100", "130102", "130200", "991300"],
            &MEMBERS,
        )
    }
}

struct Chain {
    state: KeyValues,
    n: u64,
    height: u64,
}

impl Chain {
    fn new(config: ConsortiumConfig) -> Self {
        let mut state = KeyValues::new();
        state.insert(keys::CONFIG.to_vec(), Some(config.encode_to_vec()));
        Self {
            state,
            n: 0,
            height: 0,
        }
    }

    fn config(&self) -> ConsortiumConfig {
        ConsortiumConfig::decode(&self.state[keys::CONFIG].clone().unwrap()[..]).unwrap()
    }

    fn proposal(&self, id: &TxId) -> ProposalRecord {
        ProposalRecord::decode(&self.state[&keys::proposal(id)].clone().unwrap()[..]).unwrap()
    }

    fn tx(&mut self, signers: &[&str], m: governance_call::Method) -> TxCtx {
        self.n += 1;
        TxCtx {
            tx_id: sha256(&self.n.to_be_bytes()),
            signer_orgs: signers.iter().map(|s| (*s).to_owned()).collect(),
            call: Ok(Call::Governance(GovernanceCall { method: Some(m) })),
        }
    }

    /// One block; parallel and sequential execution must agree.
    fn block(&mut self, txs: Vec<TxCtx>) -> Vec<(TxStatus, &'static str, TxId, Vec<String>)> {
        self.height += 1;
        let reads: KeyValues = declared_reads(&txs)
            .into_iter()
            .map(|k| {
                let v = self.state.get(&k).cloned().flatten();
                (k, v)
            })
            .collect();
        let orgs = Orgs::from_config(&self.config());
        let calendar = fiscus_contract_executor::Calendar::from_config(&self.config());
        let input = BlockInput {
            height: self.height,
            timestamp_ms: 1_790_000_000_000 + self.height as i64,
            orgs: &orgs,
            calendar: &calendar,
            txs,
        };
        let out = execute_block(&input, &reads, 3);
        assert_eq!(out, execute_sequential(&input, &reads));
        for (k, v) in &out.writes {
            self.state.insert(k.clone(), v.clone());
        }
        out.results
            .into_iter()
            .map(|r| {
                (
                    r.status,
                    r.code,
                    r.tx_id,
                    r.events.into_iter().map(|e| e.name).collect(),
                )
            })
            .collect()
    }

    fn propose(&mut self, by: &str, change: Change) -> (TxStatus, &'static str, TxId, Vec<String>) {
        let t = self.tx(
            &[by],
            governance_call::Method::Propose(ProposeArgs {
                proposal: Some(Proposal {
                    title: "a change".into(),
                    change: Some(change),
                }),
            }),
        );
        self.block(vec![t]).remove(0)
    }

    fn vote(
        &mut self,
        by: &str,
        id: &TxId,
        approve: bool,
    ) -> (TxStatus, &'static str, Vec<String>) {
        let t = self.tx(
            &[by],
            governance_call::Method::Vote(VoteArgs {
                proposal_tx_id: id.to_vec(),
                approve,
            }),
        );
        let (s, c, _, e) = self.block(vec![t]).remove(0);
        (s, c, e)
    }
}

fn remove(org: &str) -> Change {
    Change::RemoveMember(RemoveMember {
        org_code: org.into(),
        reason: "left by vote".into(),
    })
}

#[test]
fn a_majority_of_members_passes_a_removal_that_takes_effect_next_block() {
    let mut c = Chain::new(genesis(vec![]));
    let (s, code, id, events) = c.propose("000000", remove("130102"));
    assert_eq!((s, code), (TxStatus::Valid, ""));
    assert!(events.contains(&"governance.proposed".to_owned()));
    assert_eq!(c.proposal(&id).yes, vec!["000000".to_owned()]);

    let (s, _, e) = c.vote("130000", &id, true);
    assert_eq!(s, TxStatus::Valid);
    assert!(
        !e.contains(&"governance.proposal_passed".to_owned()),
        "2 of 5 is no majority"
    );
    assert_eq!(c.config().version, 1);

    let (s, _, e) = c.vote("130100", &id, true);
    assert_eq!(s, TxStatus::Valid);
    assert!(
        e.contains(&"governance.proposal_passed".to_owned()),
        "3 of 5 is a majority"
    );
    let cfg = c.config();
    assert_eq!(cfg.version, 2);
    assert!(cfg.members.iter().all(|m| m.org_code != "130102"));
    assert_eq!(cfg.revoked_orgs.len(), 1);
    assert_eq!(cfg.revoked_orgs[0].org_code, "130102");
    assert_eq!(cfg.revoked_orgs[0].effective_height, c.height + 1);
    let rec = c.proposal(&id);
    assert_eq!(rec.status, ProposalStatus::Passed as i32);
    assert_eq!(rec.decided_height, c.height);

    // Decided: further votes are refused and change nothing.
    let before = c.state.clone();
    let (s, code, _) = c.vote("991300", &id, true);
    assert_eq!(
        (s, code),
        (TxStatus::Conflict, "governance.proposal_closed")
    );
    assert_eq!(c.state, before);
    // The removed org is no longer a member: it cannot vote or propose.
    let (s, code, _, _) = c.propose("130102", remove("130000"));
    assert_eq!((s, code), (TxStatus::Unauthorized, "governance.not_member"));
}

#[test]
fn a_vote_by_a_non_member_is_refused_and_changes_nothing() {
    let mut c = Chain::new(genesis(vec![]));
    let (_, _, id, _) = c.propose("000000", remove("130102"));
    let before = c.state.clone();
    // 130200 is an org in the registry but not a consortium member.
    let (s, code, _) = c.vote("130200", &id, true);
    assert_eq!((s, code), (TxStatus::Unauthorized, "governance.not_member"));
    let (s, code, _, _) = c.propose("130200", remove("130102"));
    assert_eq!((s, code), (TxStatus::Unauthorized, "governance.not_member"));
    assert_eq!(c.state.get(keys::CONFIG), before.get(keys::CONFIG));
    assert_eq!(c.proposal(&id).yes, vec!["000000".to_owned()]);
}

#[test]
fn a_proposal_that_fails_its_threshold_is_closed_and_later_votes_are_refused() {
    let mut c = Chain::new(genesis(vec![]));
    let (_, _, id, _) = c.propose("000000", remove("130102"));
    assert_eq!(c.vote("130000", &id, false).0, TxStatus::Valid);
    assert_eq!(c.vote("130100", &id, false).0, TxStatus::Valid);
    // 3 no of 5: at most 2 yes remain possible, never a majority.
    let (s, _, e) = c.vote("991300", &id, false);
    assert_eq!(s, TxStatus::Valid);
    assert!(e.contains(&"governance.proposal_failed".to_owned()));
    assert_eq!(c.proposal(&id).status, ProposalStatus::Failed as i32);
    assert_eq!(c.config().version, 1, "nothing applied");

    let before = c.state.clone();
    let (s, code, _) = c.vote("130102", &id, true);
    assert_eq!(
        (s, code),
        (TxStatus::Conflict, "governance.proposal_failed")
    );
    assert_eq!(c.state, before);
}

#[test]
fn each_member_votes_once_and_unknown_proposals_are_not_found() {
    let mut c = Chain::new(genesis(vec![]));
    let (_, _, id, _) = c.propose("000000", remove("130102"));
    let (s, code, _) = c.vote("000000", &id, true);
    assert_eq!((s, code), (TxStatus::Conflict, "governance.already_voted"));
    let (s, code, _) = c.vote("130000", &sha256(b"no such proposal"), true);
    assert_eq!(
        (s, code),
        (TxStatus::NotFound, "governance.unknown_proposal")
    );
}

#[test]
fn the_threshold_is_part_of_the_config_and_changes_by_vote() {
    let mut c = Chain::new(genesis(vec![]));
    let (_, _, id, _) = c.propose(
        "000000",
        Change::UpdatePolicy(UpdatePolicy {
            policy: Some(GovernancePolicy {
                numerator: 2,
                denominator: 3,
            }),
        }),
    );
    c.vote("130000", &id, true);
    c.vote("130100", &id, true);
    assert_eq!(
        c.config().governance,
        Some(GovernancePolicy {
            numerator: 2,
            denominator: 3
        })
    );
    // Now 3 of 5 (60%) no longer passes; 4 of 5 does.
    let (_, _, id, _) = c.propose("000000", remove("130102"));
    c.vote("130000", &id, true);
    c.vote("130100", &id, true);
    assert_eq!(c.proposal(&id).status, ProposalStatus::Open as i32);
    let (_, _, e) = c.vote("991300", &id, true);
    assert!(e.contains(&"governance.proposal_passed".to_owned()));
}

#[test]
fn invalid_changes_are_refused_when_proposed() {
    let mut c = Chain::new(genesis(vec![]));
    let cases = [
        remove("130200"), // not a member
        Change::AddMember(AddMember {
            org: Some(org("130100", OrgLevel::Municipal, "130000")),
            member: Some(Member {
                org_code: "130100".into(),
                ..Member::default()
            }),
        }), // already a member
        Change::AddMember(AddMember {
            org: Some(org("130300", OrgLevel::Municipal, "139999")),
            member: Some(Member {
                org_code: "130300".into(),
                ..Member::default()
            }),
        }), // unknown parent
        Change::AddMember(AddMember {
            org: Some(org("130200", OrgLevel::Municipal, "130000")),
            member: Some(Member {
                org_code: "130200".into(),
                allowed_names: vec!["*".into()],
                ..Member::default()
            }),
        }), // a lone wildcard the CA would then certify
        Change::UpdatePolicy(UpdatePolicy {
            policy: Some(GovernancePolicy {
                numerator: 3,
                denominator: 3,
            }),
        }),
        Change::UpgradeContract(UpgradeContract {
            contract: "transfer".into(),
            version: 1,
        }),
    ];
    for change in cases {
        let before = c.state.clone();
        let (s, code, _, _) = c.propose("000000", change.clone());
        assert_eq!(
            (s, code),
            (TxStatus::InvalidArgument, "governance.invalid_proposal"),
            "{change:?}"
        );
        assert_eq!(c.state, before);
    }
}

#[test]
fn a_new_member_joins_and_can_then_vote() {
    let mut c = Chain::new(genesis(vec![]));
    let (_, _, id, _) = c.propose(
        "000000",
        Change::AddMember(AddMember {
            org: Some(org("130200", OrgLevel::Municipal, "130000")),
            member: Some(Member {
                org_code: "130200".into(),
                gossip_endpoints: vec!["https://tangshan.example:7443".into()],
                allowed_names: vec!["tangshan.example".into(), "*.tangshan.example".into()],
                ..Member::default()
            }),
        }),
    );
    c.vote("130000", &id, true);
    c.vote("130100", &id, true);
    assert_eq!(c.config().members.len(), 6);
    let (_, _, id2, _) = c.propose("000000", remove("130102"));
    assert_eq!(c.vote("130200", &id2, true).0, TxStatus::Valid);
}

#[test]
fn a_crl_update_must_be_newer_and_signed_by_the_root() {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let root = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let key = SigningKey::from_pkcs8_pem(&kp.serialize_pem()).unwrap();
    let mut c = Chain::new(genesis(vec![root.der().to_vec()]));
    let mut crl = Crl {
        number: 1,
        revoked: vec![RevokedCertificate {
            cert_id: vec![9; 32],
            reason: "key compromise".into(),
            effective_height: 0,
        }],
        ..Crl::default()
    };
    crl.signature = key.sign(&crl.encode_to_vec()).to_vec();

    let mut forged = crl.clone();
    forged.revoked[0].cert_id = vec![8; 32];
    let (s, code, _, _) = c.propose("000000", Change::UpdateCrl(UpdateCrl { crl: Some(forged) }));
    assert_eq!(
        (s, code),
        (TxStatus::BadSignature, "governance.bad_crl_signature")
    );

    let (_, _, id, _) = c.propose(
        "000000",
        Change::UpdateCrl(UpdateCrl {
            crl: Some(crl.clone()),
        }),
    );
    c.vote("130000", &id, true);
    c.vote("130100", &id, true);
    let stored = c.config().crl.unwrap();
    assert_eq!(stored.number, 1);
    assert_eq!(stored.revoked[0].effective_height, c.height + 1);

    // The same number again is not newer.
    let (s, code, _, _) = c.propose("000000", Change::UpdateCrl(UpdateCrl { crl: Some(crl) }));
    assert_eq!(
        (s, code),
        (TxStatus::InvalidArgument, "governance.invalid_proposal")
    );
}

#[test]
fn governance_and_transfer_calls_in_one_block_run_in_block_order() {
    let mut c = Chain::new(genesis(vec![]));
    let (_, _, id, _) = c.propose("000000", remove("130102"));
    let votes: Vec<TxCtx> = ["130000", "130100", "991300"]
        .iter()
        .map(|m| {
            c.tx(
                &[m],
                governance_call::Method::Vote(VoteArgs {
                    proposal_tx_id: id.to_vec(),
                    approve: true,
                }),
            )
        })
        .collect();
    let out = c.block(votes);
    // The second vote passes it; the third arrives after the decision.
    assert_eq!(out[0].0, TxStatus::Valid);
    assert!(out[1].3.contains(&"governance.proposal_passed".to_owned()));
    assert_eq!(out[2].1, "governance.proposal_closed");
}

fn propose_change(c: &mut Chain, change: Change) -> (TxStatus, &'static str) {
    let t = c.tx(
        &["000000", "130000", "130100"],
        governance_call::Method::Propose(ProposeArgs {
            proposal: Some(Proposal {
                title: "budget calendar".into(),
                change: Some(change),
            }),
        }),
    );
    let r = c.block(vec![t]).remove(0);
    (r.0, r.1)
}

fn approval(year: u32, org: &str, on: &str) -> Change {
    Change::RecordBudgetApproval(fiscus_proto::pb::governance::RecordBudgetApproval {
        approval: Some(fiscus_proto::pb::types::BudgetApproval {
            fiscal_year: year,
            org_code: org.into(),
            approved_on: on.into(),
            document: "十四届全国人大四次会议决议".into(),
        }),
    })
}

#[test]
fn a_budget_approval_is_recorded_once_and_never_moved() {
    let mut c = Chain::new(genesis(Vec::new()));
    // Blocks here are on 2026-09-21 (CST).
    assert_eq!(
        propose_change(&mut c, approval(2026, "000000", "2026-03-12")).0,
        TxStatus::Valid
    );
    let cal = fiscus_contract_executor::Calendar::from_config(&c.config());
    assert_eq!(
        cal.approval(2026, "000000"),
        fiscus_contract_executor::calendar::parse_date("2026-03-12")
    );
    let before = c.config();
    for (change, why) in [
        (
            approval(2026, "000000", "2026-03-20"),
            "a second approval for the same year",
        ),
        (
            approval(2026, "130000", "2026-12-01"),
            "a date in the future",
        ),
        (approval(2026, "130000", "2026-02-30"), "an impossible date"),
        (
            approval(2026, "130000", "2025-12-30"),
            "a date outside the fiscal year",
        ),
        (
            approval(2026, "991300", "2026-01-20"),
            "a supervisor has no budget",
        ),
        (
            approval(2026, "139999", "2026-01-20"),
            "an org outside the registry",
        ),
    ] {
        assert_eq!(
            propose_change(&mut c, change),
            (TxStatus::InvalidArgument, "governance.invalid_proposal"),
            "{why}"
        );
        assert_eq!(c.config(), before, "{why} changed the config");
    }
}

#[test]
fn a_holiday_calendar_is_checked_and_replaces_its_year() {
    let mut c = Chain::new(genesis(Vec::new()));
    let cal = |holidays: &[&str], workdays: &[&str]| {
        Change::SetHolidayCalendar(fiscus_proto::pb::governance::SetHolidayCalendar {
            calendar: Some(fiscus_proto::pb::types::HolidayCalendar {
                year: 2026,
                holidays: holidays.iter().map(|d| (*d).to_owned()).collect(),
                workdays: workdays.iter().map(|d| (*d).to_owned()).collect(),
            }),
        })
    };
    assert_eq!(
        propose_change(&mut c, cal(&["2026-10-02", "2026-10-01"], &["2026-10-10"])).0,
        TxStatus::Valid
    );
    let stored = c.config().holiday_calendars;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].holidays,
        vec!["2026-10-01", "2026-10-02"],
        "sorted"
    );
    for (change, why) in [
        (cal(&["2027-01-01"], &[]), "a date of another year"),
        (
            cal(&["2026-10-01"], &["2026-10-01"]),
            "both a holiday and a working day",
        ),
        (
            cal(&[], &["2026-10-09"]),
            "an adjusted working day on a Friday",
        ),
    ] {
        assert_eq!(
            propose_change(&mut c, change),
            (TxStatus::InvalidArgument, "governance.invalid_proposal"),
            "{why}"
        );
    }
}
