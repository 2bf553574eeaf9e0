//! Builders shared by the analytics tests: a small registry, its divisions,
//! calls, and a store filled from a chain stand-in.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use fiscus_analytics::store::{Division, Store};
use fiscus_analytics::synthetic::Chain;
use fiscus_common::testkit::fixtures;
use fiscus_contract_executor::Orgs;
use fiscus_contract_executor::calendar::{days_from_civil, start_of_day_ms};
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::transfer::{
    AccountRef, AcknowledgeArgs, AdjustArgs, AllocateArgs, AppropriateArgs, DisburseArgs,
    FreezeArgs, Program, ProgramKind, Recipient, RecoverArgs, TransferCall, recipient,
    transfer_call::Method,
};
use fiscus_proto::pb::types::OrgLevel;

/// (code, name, level, parent)
pub(crate) const ORGS: [(&str, &str, &str, &str); 6] = [
    ("000000", "财政部", "central", ""),
    ("130000", "河北省财政厅", "provincial", "000000"),
    ("130100", "石家庄市财政局", "municipal", "130000"),
    ("130102", "长安区财政局", "county", "130100"),
    ("130200", "唐山市财政局", "municipal", "130000"),
    ("991300", "河北省审计厅", "supervisor", "130000"),
];

pub(crate) fn divisions() -> Vec<Division> {
    ORGS.iter()
        .map(|(code, name, level, parent)| Division {
            code: (*code).into(),
            name: (*name).into(),
            level: fiscus_analytics::store::level_name(level_of(level) as i32),
            parent: (*parent).into(),
        })
        .collect()
}

fn level_of(s: &str) -> OrgLevel {
    match s {
        "central" => OrgLevel::Central,
        "provincial" => OrgLevel::Provincial,
        "municipal" => OrgLevel::Municipal,
        "county" => OrgLevel::County,
        _ => OrgLevel::Supervisor,
    }
}

pub(crate) fn orgs() -> Orgs {
    ORGS.iter()
        .fold(Orgs::default(), |o, (code, _, level, parent)| {
            o.with(code, level_of(level), parent)
        })
}

/// 10:00 China Standard Time on the given day.
pub(crate) fn at(y: i64, m: u32, d: u32) -> i64 {
    start_of_day_ms(days_from_civil(y, m, d)) + 10 * 3_600_000
}

fn acct(org: &str, prog: &str) -> Option<AccountRef> {
    fixtures::account(org, prog)
}

fn call(m: Method) -> TransferCall {
    TransferCall { method: Some(m) }
}

pub(crate) fn program(id: &str, direct: bool) -> Program {
    Program {
        direct,
        kind: ProgramKind::General as i32,
        ..fixtures::program(id)
    }
}

pub(crate) fn appropriate(org: &str, prog: &str, direct: bool, amount: i64) -> TransferCall {
    call(Method::Appropriate(AppropriateArgs {
        account: acct(org, prog),
        program: Some(program(prog, direct)),
        amount_fen: amount,
        document: "财预〔2026〕12号".into(),
    }))
}

pub(crate) fn allocate(from: &str, to: &str, prog: &str, amount: i64) -> TransferCall {
    call(Method::Allocate(AllocateArgs {
        from: acct(from, prog),
        to_org_code: to.into(),
        amount_fen: amount,
        document: "冀财预〔2026〕7号".into(),
        external_id: String::new(),
    }))
}

pub(crate) fn acknowledge(allocation: Hash32, org: &str, prog: &str) -> TransferCall {
    call(Method::Acknowledge(AcknowledgeArgs {
        allocation_tx_id: allocation.0.to_vec(),
        account: acct(org, prog),
    }))
}

pub(crate) fn disburse(from: &str, prog: &str, amount: i64) -> TransferCall {
    call(Method::Disburse(DisburseArgs {
        from: acct(from, prog),
        recipient: Some(Recipient {
            id: Some(recipient::Id::UnifiedSocialCreditCode(
                "12130102MB1234562B".into(),
            )),
            name: "长安区第一小学".into(),
        }),
        amount_fen: amount,
        purpose: "义务教育公用经费".into(),
        economic_code: "50502".into(),
        external_id: String::new(),
    }))
}

pub(crate) fn recover(from: &str, to: &str, prog: &str, amount: i64) -> TransferCall {
    call(Method::Recover(RecoverArgs {
        from: acct(from, prog),
        to_org_code: to.into(),
        amount_fen: amount,
        reason: "unspent".into(),
    }))
}

pub(crate) fn freeze(org: &str, prog: &str) -> TransferCall {
    call(Method::Freeze(FreezeArgs {
        account: acct(org, prog),
        reason: "审计冻结 / audit".into(),
    }))
}

/// Moves `amount` back from `from` (the corrected transfer's receiver) to `to`.
pub(crate) fn adjust(
    from: &str,
    to: &str,
    prog: &str,
    amount: i64,
    corrects: Hash32,
) -> TransferCall {
    call(Method::Adjust(AdjustArgs {
        from: acct(from, prog),
        to: acct(to, prog),
        amount_fen: amount,
        corrects_tx_id: corrects.0.to_vec(),
        reason: "wrong amount".into(),
    }))
}

/// A store at `dir` holding the divisions and every block of `chain`,
/// applied `batch` blocks at a time.
pub(crate) fn store_of(dir: &std::path::Path, chain: &Chain, batch: usize) -> Store {
    let mut store = Store::open(&dir.join("analytics.sqlite3")).unwrap();
    store.set_divisions(&divisions()).unwrap();
    let blocks: Vec<_> = chain
        .blocks
        .iter()
        .map(|b| (b.height, b.timestamp_ms, b.facts()))
        .collect();
    for part in blocks.chunks(batch.max(1)) {
        store.apply(part).unwrap();
    }
    store
}
