//! The transfer-payment contract: each rule and rejection, lineage and
//! deadlines, and property tests over random operation sequences.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_contract_executor::executor::KeyValues;
use fiscus_contract_executor::lot_reads;
use fiscus_contract_executor::{
    BlockInput, Call, DAY_MS, TxCtx, execute_block, execute_sequential, keys,
};
use fiscus_proto::hash::{TxId, sha256};
use fiscus_proto::pb::state::{Account, AllocationRecord, LineageRecord, Lot};
use fiscus_proto::pb::transfer::{
    AcknowledgeArgs, AdjustArgs, AllocateArgs, FreezeArgs, ProgramKind, TransferCall, UnfreezeArgs,
    transfer_call::Method,
};
use fiscus_proto::pb::types::{OrgLevel, TxStatus};
use proptest::prelude::*;
use prost::Message;
use std::collections::BTreeSet;

mod support;
use support::*;

#[test]
fn funds_flow_from_the_ministry_to_a_school_and_trace_back_to_the_appropriation() {
    let mut c = Chain::new();
    let appr = ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 1_000_000),
    ));
    let a1 = ok(c.one("000000", allocate("000000", "130000", "edu", 600_000)));
    ok(c.one(
        "130000",
        call(Method::Acknowledge(AcknowledgeArgs {
            allocation_tx_id: a1.to_vec(),
            account: acct("130000", "edu"),
        })),
    ));
    let a2 = ok(c.one("130000", allocate("130000", "130100", "edu", 400_000)));
    let mut a3_call = allocate("130100", "130102", "edu", 250_000);
    if let Some(Method::Allocate(a)) = &mut a3_call.method {
        a.external_id = "SJZ-2026-0001".into();
    }
    let a3 = ok(c.one("130100", a3_call));
    let mut d_call = disburse("130102", "edu", 120_000);
    if let Some(Method::Disburse(a)) = &mut d_call.method {
        a.external_id = "CA-PAY-7".into();
    }
    let d = ok(c.one("130102", d_call));
    // The senders' own ids stay on chain for reconciliation.
    let a3_rec: AllocationRecord = c.get(keys::allocation(&a3)).unwrap();
    assert_eq!(a3_rec.external_id, "SJZ-2026-0001");
    let a3_line: LineageRecord = c.get(keys::lineage(&a3)).unwrap();
    assert_eq!(a3_line.external_id, "SJZ-2026-0001");
    let d_line: LineageRecord = c.get(keys::lineage(&d)).unwrap();
    assert_eq!(d_line.external_id, "CA-PAY-7");
    let a2_line: LineageRecord = c.get(keys::lineage(&a2)).unwrap();
    assert_eq!(a2_line.external_id, "");

    assert_eq!(c.account("000000", "edu").balance_fen, 400_000);
    assert_eq!(c.account("130000", "edu").balance_fen, 200_000);
    assert_eq!(c.account("130102", "edu").balance_fen, 130_000);
    assert_eq!(c.account("130102", "edu").disbursed_fen, 120_000);

    // Trace: disbursement → a3 → a2 → a1 → appropriation.
    let mut chain = vec![d];
    let mut cur = d;
    loop {
        let l: LineageRecord = c.get(keys::lineage(&cur)).unwrap();
        if l.kind == "appropriate" {
            break;
        }
        assert_eq!(
            l.sources.iter().map(|s| s.amount_fen).sum::<i64>(),
            l.amount_fen,
            "sources cover the amount"
        );
        cur = TxId::from_slice("src", &l.sources[0].source_tx_id).unwrap();
        chain.push(cur);
    }
    assert_eq!(chain, vec![d, a3, a2, a1, appr]);
}

#[test]
fn lots_are_spent_first_in_first_out() {
    let mut c = Chain::new();
    let first = ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 100),
    ));
    let second = ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 100),
    ));
    let a = ok(c.one("000000", allocate("000000", "130000", "edu", 150)));
    let l: LineageRecord = c.get(keys::lineage(&a)).unwrap();
    let src: Vec<(Vec<u8>, i64)> = l
        .sources
        .iter()
        .map(|s| (s.source_tx_id.clone(), s.amount_fen))
        .collect();
    assert_eq!(src, vec![(first.to_vec(), 100), (second.to_vec(), 50)]);
}

#[test]
fn direct_funds_may_skip_levels_and_other_funds_may_not() {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "direct", ProgramKind::Direct, 1000),
    ));
    ok(c.one(
        "000000",
        appropriate("000000", "gen", ProgramKind::General, 1000),
    ));
    ok(c.one("000000", allocate("000000", "130102", "direct", 100)));
    let r = c.one("000000", allocate("000000", "130102", "gen", 100));
    assert_eq!(
        (r.0, r.1),
        (TxStatus::InvalidArgument, "contract.not_descendant")
    );
    let r = c.one("000000", allocate("000000", "991300", "direct", 100));
    assert_eq!(
        (r.0, r.1),
        (TxStatus::Unauthorized, "contract.supervisor_moves_no_money"),
        "a supervisor under Hebei is a descendant, but receives no funds"
    );
}

#[test]
fn late_allocations_are_recorded_but_not_blocked() {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "sp", ProgramKind::Special, 1000),
    ));
    ok(c.one(
        "000000",
        appropriate("000000", "gen", ProgramKind::General, 1000),
    ));
    let day0 = fiscus_contract_executor::calendar::day_of(T0);
    let end = |days: i64| fiscus_contract_executor::calendar::end_of_day_ms(day0 + days);
    c.now = T0 + 45 * DAY_MS;
    // No approval recorded: the period counts from the appropriation's day.
    // Central special funds: 90 days. 45 days in: on time.
    let on_time = ok(c.one("000000", allocate("000000", "130000", "sp", 100)));
    // Central general funds: 30 days. 45 days in: late, still transferred.
    let late = ok(c.one("000000", allocate("000000", "130000", "gen", 100)));
    let r1: AllocationRecord = c.get(keys::allocation(&on_time)).unwrap();
    let r2: AllocationRecord = c.get(keys::allocation(&late)).unwrap();
    // T0 is Monday 2026-09-21 (CST); +90 days is Sunday 2026-12-20 → Monday.
    assert!(!r1.late && r1.due_at_ms == end(91), "{r1:?}");
    assert_eq!(
        (rule_of(&r1).0, rule_of(&r1).1),
        ("art52.2.special", "appropriation")
    );
    // +30 days is Wednesday 2026-10-21, a working day.
    assert!(r2.late && r2.due_at_ms == end(30), "{r2:?}");
    assert_eq!(rule_of(&r2).2, 45);
    assert_eq!(c.account("130000", "gen").balance_fen, 100);
    // The province's 30 days run from receipt, whenever it acknowledges.
    c.now += 20 * DAY_MS;
    ok(c.one(
        "130000",
        call(Method::Acknowledge(AcknowledgeArgs {
            allocation_tx_id: late.to_vec(),
            account: acct("130000", "gen"),
        })),
    ));
    let acked: AllocationRecord = c.get(keys::allocation(&late)).unwrap();
    assert!(
        acked.acknowledged_late,
        "acknowledged 20 days after arrival"
    );
    // Day 78: one day past the province's window.
    c.now += 13 * DAY_MS;
    let onward = ok(c.one("130000", allocate("130000", "130100", "gen", 50)));
    let r3: AllocationRecord = c.get(keys::allocation(&onward)).unwrap();
    // Received on day 45 (Thursday 2026-11-05); +30 = Saturday 12-05 → Monday 12-07.
    assert!(r3.late && r3.due_at_ms == end(45 + 32), "{r3:?}");
    assert_eq!(rule_of(&r3).0, "art52.3");
}

#[test]
fn every_rejection_has_its_code_and_changes_nothing() {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 1000),
    ));
    ok(c.one("000000", allocate("000000", "130000", "edu", 500)));
    let before = c.state.clone();
    let cases: Vec<(&str, TransferCall, TxStatus, &str)> = vec![
        (
            "130000",
            allocate("130000", "130100", "edu", 501),
            TxStatus::InsufficientFunds,
            "contract.insufficient_funds",
        ),
        (
            "130100",
            allocate("130000", "130100", "edu", 10),
            TxStatus::Unauthorized,
            "contract.not_owner",
        ),
        (
            "139999",
            appropriate("139999", "edu", ProgramKind::General, 10),
            TxStatus::NotFound,
            "contract.unknown_org",
        ),
        (
            "130000",
            allocate("130000", "130100", "nosuch", 10),
            TxStatus::NotFound,
            "contract.unknown_program",
        ),
        (
            "130000",
            allocate("130000", "130102", "edu", 10),
            TxStatus::InvalidArgument,
            "contract.not_descendant",
        ),
        (
            "130000",
            allocate("130000", "130100", "edu", 0),
            TxStatus::InvalidArgument,
            "contract.bad_amount",
        ),
        (
            "130000",
            allocate("130000", "130100", "edu", -5),
            TxStatus::InvalidArgument,
            "contract.bad_amount",
        ),
        (
            "000000",
            appropriate("000000", "edu", ProgramKind::General, i64::MAX),
            TxStatus::InvalidArgument,
            "contract.bad_amount",
        ),
        (
            "130000",
            call(Method::Allocate(AllocateArgs {
                from: None,
                to_org_code: "130100".into(),
                amount_fen: 1,
                document: String::new(),
                external_id: String::new(),
            })),
            TxStatus::InvalidArgument,
            "contract.malformed",
        ),
        (
            "130000",
            TransferCall { method: None },
            TxStatus::InvalidArgument,
            "contract.malformed",
        ),
        (
            "130000",
            call(Method::Freeze(FreezeArgs {
                account: acct("130000", "edu"),
                reason: "audit".into(),
            })),
            TxStatus::Unauthorized,
            "contract.supervisors_only",
        ),
        (
            "130000",
            recover("130000", "130100", "edu", 10),
            TxStatus::InvalidArgument,
            "contract.not_ancestor",
        ),
        (
            "130000",
            call(Method::Adjust(AdjustArgs {
                from: acct("130000", "edu"),
                to: acct("130100", "edu"),
                amount_fen: 1,
                corrects_tx_id: vec![1; 32],
                reason: "fix".into(),
            })),
            TxStatus::Unauthorized,
            "contract.needs_both_parties",
        ),
    ];
    let with_id = |mut t: TransferCall, id: &str| {
        match &mut t.method {
            Some(Method::Allocate(a)) => a.external_id = id.into(),
            Some(Method::Disburse(a)) => a.external_id = id.into(),
            _ => unreachable!(),
        }
        t
    };
    let cases = cases.into_iter().chain([
        (
            "130000",
            with_id(allocate("130000", "130100", "edu", 10), "石财 1"),
            TxStatus::InvalidArgument,
            "contract.bad_external_id",
        ),
        (
            "130000",
            with_id(disburse("130000", "edu", 10), &"x".repeat(65)),
            TxStatus::InvalidArgument,
            "contract.bad_external_id",
        ),
    ]);
    for (signer, call, status, code) in cases {
        let r = c.one(signer, call);
        assert_eq!((r.0, r.1), (status, code));
        assert_eq!(c.state, before, "{code} changed state");
    }
    // A supervisor freezes; the frozen account cannot pay out; unfreezing restores it.
    ok(c.one(
        "991300",
        call(Method::Freeze(FreezeArgs {
            account: acct("130000", "edu"),
            reason: "audit".into(),
        })),
    ));
    let r = c.one("130000", allocate("130000", "130100", "edu", 10));
    assert_eq!((r.0, r.1), (TxStatus::Frozen, "contract.frozen"));
    ok(c.one(
        "991300",
        call(Method::Unfreeze(UnfreezeArgs {
            account: acct("130000", "edu"),
            reason: "cleared".into(),
        })),
    ));
    ok(c.one("130000", allocate("130000", "130100", "edu", 10)));
}

#[test]
fn an_adjustment_needs_both_parties_and_moves_funds() {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 1000),
    ));
    let over = ok(c.one("000000", allocate("000000", "130000", "edu", 500)));
    c.n += 1;
    let tx = TxCtx {
        tx_id: sha256(&c.n.to_be_bytes()),
        signer_orgs: BTreeSet::from(["130000".to_owned(), "000000".to_owned()]),
        call: Ok(Call::Transfer(call(Method::Adjust(AdjustArgs {
            from: acct("130000", "edu"),
            to: acct("000000", "edu"),
            amount_fen: 100,
            corrects_tx_id: over.to_vec(),
            reason: "over-allocated".into(),
        })))),
    };
    assert_eq!(c.block(vec![tx])[0].0, TxStatus::Valid);
    assert_eq!(c.account("130000", "edu").balance_fen, 400);
    assert_eq!(c.account("000000", "edu").balance_fen, 600);
}

// ---- property tests over random operation sequences ----

const PROGS: [(&str, ProgramKind); 3] = [
    ("gen", ProgramKind::General),
    ("sp", ProgramKind::Special),
    ("dir", ProgramKind::Direct),
];
const ORGS: [&str; 6] = ["000000", "130000", "130100", "130102", "130200", "991300"];

#[derive(Debug, Clone)]
enum Op {
    Appropriate(usize, usize, i64),
    Allocate(usize, usize, usize, i64),
    Disburse(usize, usize, i64),
    Recover(usize, usize, usize, i64),
    Freeze(usize, usize, bool),
}

fn op() -> impl Strategy<Value = Op> {
    let org = 0..ORGS.len();
    let prog = 0..PROGS.len();
    let amount = prop_oneof![1i64..1000, 1000i64..1_000_000, Just(0i64), Just(-1i64)];
    prop_oneof![
        2 => (org.clone(), prog.clone(), amount.clone()).prop_map(|(o, p, a)| Op::Appropriate(o, p, a)),
        4 => (org.clone(), org.clone(), prog.clone(), amount.clone()).prop_map(|(f, t, p, a)| Op::Allocate(f, t, p, a)),
        2 => (org.clone(), prog.clone(), amount.clone()).prop_map(|(o, p, a)| Op::Disburse(o, p, a)),
        1 => (org.clone(), org.clone(), prog.clone(), amount).prop_map(|(f, t, p, a)| Op::Recover(f, t, p, a)),
        1 => (org, prog, any::<bool>()).prop_map(|(o, p, f)| Op::Freeze(o, p, f)),
    ]
}

fn to_call(op: &Op) -> (String, TransferCall) {
    match *op {
        Op::Appropriate(o, p, a) => (
            ORGS[o].into(),
            appropriate(ORGS[o], PROGS[p].0, PROGS[p].1, a),
        ),
        Op::Allocate(f, t, p, a) => (ORGS[f].into(), allocate(ORGS[f], ORGS[t], PROGS[p].0, a)),
        Op::Disburse(o, p, a) => (ORGS[o].into(), disburse(ORGS[o], PROGS[p].0, a)),
        Op::Recover(f, t, p, a) => (ORGS[f].into(), recover(ORGS[f], ORGS[t], PROGS[p].0, a)),
        Op::Freeze(o, p, f) => (
            "991300".into(),
            if f {
                call(Method::Freeze(FreezeArgs {
                    account: acct(ORGS[o], PROGS[p].0),
                    reason: "audit".into(),
                }))
            } else {
                call(Method::Unfreeze(UnfreezeArgs {
                    account: acct(ORGS[o], PROGS[p].0),
                    reason: "cleared".into(),
                }))
            },
        ),
    }
}

fn accounts(state: &KeyValues) -> Vec<Account> {
    state
        .iter()
        .filter(|(k, _)| k.starts_with(b"acct/"))
        .filter_map(|(_, v)| v.as_ref().map(|b| Account::decode(&b[..]).unwrap()))
        .collect()
}

/// Every account with the sequence numbers and lots stored under its prefix
/// (`lot/<org>/<prog>/<seq>`), oldest first.
fn accounts_with_lots(state: &KeyValues) -> Vec<(Account, Vec<(u64, Lot)>)> {
    state
        .iter()
        .filter(|(k, _)| k.starts_with(b"acct/"))
        .filter_map(|(k, v)| {
            let a = Account::decode(&v.as_ref()?[..]).unwrap();
            let prefix = keys::lot_prefix_of(k).unwrap();
            let lots = state
                .range(prefix.clone()..)
                .take_while(|(lk, _)| lk.starts_with(&prefix))
                .filter_map(|(lk, lv)| {
                    let seq = keys::lot_owner(lk).unwrap().1;
                    Some((seq, Lot::decode(&lv.as_ref()?[..]).unwrap()))
                })
                .collect();
            Some((a, lots))
        })
        .collect()
}

/// Follows lineage from `tx` (of which `portion` fen is being traced) to
/// appropriations: at every step the sources cover the amount, a portion never
/// exceeds the transaction it came from, and every path ends at an appropriation.
/// Returns how many appropriations were reached.
fn trace(state: &KeyValues, tx: &[u8], portion: i64, depth: usize) -> usize {
    assert!(depth < 64, "lineage loops");
    let key = format!("lineage/{}", hex::encode(tx)).into_bytes();
    let l = LineageRecord::decode(
        &state
            .get(&key)
            .cloned()
            .flatten()
            .expect("every funding tx has lineage")[..],
    )
    .unwrap();
    assert!(
        portion <= l.amount_fen,
        "{portion} fen drawn from a {} fen {}",
        l.amount_fen,
        l.kind
    );
    if l.kind == "appropriate" {
        let owner = fiscus_proto::pb::state::ProgramRecord::decode(
            &state
                .get(&keys::program(&l.program_id))
                .cloned()
                .flatten()
                .expect("an appropriated program has a record")[..],
        )
        .unwrap()
        .owner_org;
        assert_eq!(
            l.from_org, owner,
            "a trace ends at the program owner's appropriation"
        );
        return 1;
    }
    assert_eq!(
        l.sources.iter().map(|s| s.amount_fen).sum::<i64>(),
        l.amount_fen,
        "sources cover the amount"
    );
    l.sources
        .iter()
        .map(|s| trace(state, &s.source_tx_id, s.amount_fen, depth + 1))
        .sum()
}

#[test]
fn an_allocation_acknowledged_in_its_own_block_runs_the_same_in_parallel_and_in_order() {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 1_000_000),
    ));
    // The acknowledgement reads the allocation record that the allocation
    // creates in the same block (a "fresh" key of the allocation, which the
    // wave planner counts as a write), so it must run after it.
    let alloc = c.tx("000000", allocate("000000", "130000", "edu", 500));
    let ack = c.tx(
        "130000",
        call(Method::Acknowledge(AcknowledgeArgs {
            allocation_tx_id: alloc.tx_id.to_vec(),
            account: acct("130000", "edu"),
        })),
    );
    let txs = vec![alloc, ack];
    let input = BlockInput {
        height: 9,
        timestamp_ms: c.now,
        orgs: &c.orgs,
        calendar: &c.calendar,
        txs,
    };
    let (reads, _) = reads_in_rounds(&c.state, &input);
    let par = execute_block(&input, &reads, 4);
    assert_eq!(par, execute_sequential(&input, &reads));
    assert!(
        par.results.iter().all(|r| r.status == TxStatus::Valid),
        "{:?}",
        par.results
    );
}

#[test]
fn many_small_allocations_fold_into_bundles_and_still_trace_to_the_appropriation() {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 10_000_000),
    ));
    ok(c.one("000000", allocate("000000", "130000", "edu", 5_000_000)));
    // 1,000 allocations to one city, 100 per block: one lot each before folding.
    for _ in 0..10 {
        let txs = (0..100)
            .map(|_| c.tx("130000", allocate("130000", "130100", "edu", 7)))
            .collect();
        assert!(c.block(txs).iter().all(|r| r.0 == TxStatus::Valid));
    }
    let city = c.account("130100", "edu");
    assert_eq!(city.balance_fen, 7_000);
    // One day's lots: all open, none closed under its own key.
    assert_eq!((city.lot_head, city.lot_tail), (0, 0));
    let lots = c.lots("130100", "edu");
    assert!(
        lots.len() <= 3 * fiscus_contract_executor::transfer::BUNDLE_FANOUT,
        "{} lots kept",
        lots.len()
    );
    assert!(
        lots.iter().any(|l| l.level >= 2),
        "bundles of bundles formed"
    );
    // A disbursement of most of it traces through bundles to the appropriation.
    let d = ok(c.one("130100", disburse("130100", "edu", 6_999)));
    assert!(trace(&c.state, d.as_bytes(), 6_999, 0) >= 1);
    assert_eq!(c.account("130100", "edu").balance_fen, 1);
}

/// A chain where the city 130100 received 7 fen of "edu" from its province
/// on each of `days` days: lots of different days never bundle, and each
/// day's lot closes the day before's, so it holds `days - 1` closed lots and
/// one open one.
fn city_with_daily_lots(days: usize) -> Chain {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 10_000_000),
    ));
    ok(c.one("000000", allocate("000000", "130000", "edu", 5_000_000)));
    for _ in 0..days {
        c.now += DAY_MS;
        ok(c.one("130000", allocate("130000", "130100", "edu", 7)));
    }
    c
}

/// A payment that takes more closed lots than the ledger read ahead (2 at the
/// oldest end) needs more: the block runs again with them, and the result is
/// the one every lot read at once gives (ADR 0006).
#[test]
fn a_debit_past_the_lots_read_ahead_runs_again_with_more_and_gets_the_same_result() {
    let mut c = city_with_daily_lots(100);
    let city = c.account("130100", "edu");
    assert_eq!((city.lot_head, city.lot_tail, city.lots.len()), (0, 99, 1));
    assert_eq!(c.lots("130100", "edu").len(), 100);
    let pay = c.tx("130100", disburse("130100", "edu", 700));
    let input = BlockInput {
        height: c.n,
        timestamp_ms: c.now,
        orgs: &c.orgs,
        calendar: &c.calendar,
        txs: vec![pay],
    };
    let mut first = reads_declared(&c.state, &input);
    let ahead = lot_reads(&first, &BTreeSet::new(), 0);
    assert_eq!(ahead.len(), 2, "the oldest two closed lots");
    for k in ahead {
        let v = c.state.get(&k).cloned().flatten();
        first.insert(k, v);
    }
    let out = execute_block(&input, &first, 1);
    assert!(out.results.is_empty() && out.writes.is_empty());
    assert_eq!(
        out.need,
        BTreeSet::from([keys::lot("130100", "edu", 2)]),
        "the third lot, the first not read"
    );
    let by_rounds = execute_block(&input, &reads_in_rounds(&c.state, &input).0, 2);
    let at_once = execute_block(&input, &reads_all_lots(&c.state, &input), 2);
    assert_eq!(by_rounds, at_once);
    assert_eq!(by_rounds.results[0].status, TxStatus::Valid);
    let deleted = by_rounds
        .writes
        .iter()
        .filter(|(k, v)| k.starts_with(b"lot/") && v.is_none())
        .count();
    assert_eq!(deleted, 99, "every closed lot used up is deleted");
    // Committed the test chain's way (rounds of reads too): nothing is left.
    ok(c.one("130100", disburse("130100", "edu", 700)));
    let city = c.account("130100", "edu");
    assert_eq!(
        (city.balance_fen, city.lot_head, city.lot_tail),
        (0, 99, 99)
    );
    assert!(c.lots("130100", "edu").is_empty());
}

/// Many accounts that each need more closed lots, in waves one after another
/// (every recovery writes the same city account): the read-ahead window
/// doubles for every account each round, so the block is read in a couple of
/// rounds, not one round per wave (45 waves here; a cap on rounds counted per
/// block once made such a year-end sweep halt the chain).
#[test]
fn a_sweep_of_many_accounts_in_consecutive_waves_needs_few_rounds() {
    let mut c = Chain::new();
    let counties: Vec<String> = (0..45).map(|i| format!("1301{:02}", 50 + i)).collect();
    for code in &counties {
        c.orgs = std::mem::take(&mut c.orgs).with(code, OrgLevel::County, "130100");
    }
    ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 10_000_000),
    ));
    ok(c.one("000000", allocate("000000", "130000", "edu", 5_000_000)));
    ok(c.one("130000", allocate("130000", "130100", "edu", 1_000_000)));
    // Five days of allocations to each county: four closed lots and an open one.
    for _ in 0..5 {
        c.now += DAY_MS;
        let txs = counties
            .iter()
            .map(|code| c.tx("130100", allocate("130100", code, "edu", 10)))
            .collect();
        assert!(c.block(txs).iter().all(|r| r.0 == TxStatus::Valid));
    }
    assert_eq!(c.account(&counties[0], "edu").lot_tail, 4);
    c.now += DAY_MS;
    let txs: Vec<TxCtx> = counties
        .iter()
        .map(|code| c.tx(code, recover(code, "130100", "edu", 50)))
        .collect();
    let input = BlockInput {
        height: c.n,
        timestamp_ms: c.now,
        orgs: &c.orgs,
        calendar: &c.calendar,
        txs,
    };
    let (reads, rounds) = reads_in_rounds(&c.state, &input);
    assert_eq!(rounds, 1, "one more round reads four lots of every county");
    let out = execute_block(&input, &reads, 2);
    assert!(
        out.results.iter().all(|r| r.status == TxStatus::Valid),
        "{:?}",
        out.results
    );
    assert_eq!(
        out,
        execute_block(&input, &reads_all_lots(&c.state, &input), 2)
    );
}

/// The executor service (what a member's ledger-store calls over gRPC): sent
/// too few closed lots, it answers the keys it lacked instead of receipts;
/// sent them, it answers as the in-process execution does (ADR 0006).
#[test]
fn the_executor_service_answers_the_lots_it_lacked_and_then_the_receipts() {
    use fiscus_common::testkit::fixtures;
    use fiscus_contract_executor::service::{execute_request, key_values_pb, receipt_of};
    use fiscus_proto::pb::ledger::{ExecTx, ExecuteBlockRequest};
    let mut c = city_with_daily_lots(20);
    let config = fixtures::genesis(
        "fiscus-test",
        &["000000", "130000", "130100", "130102"],
        &[],
    );
    c.state
        .insert(keys::CONFIG.to_vec(), Some(config.encode_to_vec()));
    let signer = fixtures::Signer::from_seed([7; 32]);
    let pay = disburse("130100", "edu", 140).method.unwrap();
    let env = fixtures::transfer_tx("fiscus-test", &signer.key, signer.cert, 1, pay);
    let block = fixtures::block(
        &signer,
        30,
        fiscus_proto::hash::Hash32::ZERO,
        c.now,
        vec![env],
    );
    let request = |reads: &KeyValues| ExecuteBlockRequest {
        block: Some(block.clone()),
        reads: key_values_pb(reads.clone()),
        txs: vec![ExecTx {
            index: 0,
            signer_orgs: vec!["130100".into()],
        }],
    };
    // What the ledger reads first: the declared keys, the config, two closed lots.
    let tx = TxCtx {
        tx_id: sha256(&block.txs[0].payload),
        signer_orgs: BTreeSet::from(["130100".to_owned()]),
        call: Ok(Call::Transfer(disburse("130100", "edu", 140))),
    };
    let input = BlockInput {
        height: 30,
        timestamp_ms: c.now,
        orgs: &c.orgs,
        calendar: &c.calendar,
        txs: vec![tx],
    };
    let mut first = reads_declared(&c.state, &input);
    first.insert(
        keys::CONFIG.to_vec(),
        c.state.get(keys::CONFIG).cloned().flatten(),
    );
    for k in lot_reads(&first, &BTreeSet::new(), 0) {
        let v = c.state.get(&k).cloned().flatten();
        first.insert(k, v);
    }
    let lacking = execute_request(&request(&first), 1).unwrap();
    assert!(lacking.receipts.is_empty() && lacking.writes.is_empty());
    assert_eq!(lacking.need_keys, vec![keys::lot("130100", "edu", 2)]);
    // With every lot: the receipts the in-process execution gives.
    let mut all = reads_all_lots(&c.state, &input);
    all.insert(
        keys::CONFIG.to_vec(),
        c.state.get(keys::CONFIG).cloned().flatten(),
    );
    let answered = execute_request(&request(&all), 1).unwrap();
    assert!(answered.need_keys.is_empty());
    let local = execute_block(&input, &all, 1);
    assert_eq!(
        local.results[0].status,
        TxStatus::Valid,
        "{}",
        local.results[0].reason
    );
    assert_eq!(
        answered.receipts,
        vec![receipt_of(&local.results[0], 30, 0)]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_operations_conserve_funds_stay_non_negative_trace_fully_and_parallel_equals_sequential(
        blocks in prop::collection::vec(prop::collection::vec(op(), 1..24), 1..8)
    ) {
        let mut par = Chain::new();
        let mut seq_state = KeyValues::new();
        for (bi, ops) in blocks.iter().enumerate() {
            par.now = T0 + bi as i64 * 7 * DAY_MS;
            let txs: Vec<TxCtx> = ops.iter().map(|o| { let (s, c) = to_call(o); par.tx(&s, c) }).collect();
            let input = BlockInput { height: bi as u64 + 1, timestamp_ms: par.now, orgs: &par.orgs, calendar: &par.calendar, txs };
            // Lots read in rounds, as the ledger reads them, against all of them at once.
            let (reads, _) = reads_in_rounds(&par.state, &input);
            let seq_reads = reads_all_lots(&seq_state, &input);
            let p = execute_block(&input, &reads, 3);
            let s = execute_sequential(&input, &seq_reads);
            prop_assert!(p.need.is_empty(), "the rounds read every lot the block needs");
            prop_assert_eq!(&p, &s, "parallel and sequential execution disagree, or rounds of reads differ from reading everything");
            for (o, r) in ops.iter().zip(&p.results) {
                let (signer, _) = to_call(o);
                if signer == "991300" && r.status == TxStatus::Valid {
                    prop_assert!(matches!(o, Op::Freeze(..)), "a supervisor moved money: {o:?}");
                }
            }
            for (k, v) in &p.writes { par.state.insert(k.clone(), v.clone()); }
            for (k, v) in &s.writes { seq_state.insert(k.clone(), v.clone()); }

            let accts = accounts(&par.state);
            for (a, lots) in accounts_with_lots(&par.state) {
                let seqs: Vec<u64> = lots.iter().map(|(s, _)| *s).collect();
                prop_assert_eq!(seqs, (a.lot_head..a.lot_tail).collect::<Vec<_>>(), "an account's lots are exactly lot_head..lot_tail");
                let held: i64 = lots.iter().map(|(_, l)| l.amount_fen).chain(a.lots.iter().map(|l| l.amount_fen)).sum();
                prop_assert_eq!(a.balance_fen, held, "closed and open lots cover the balance");
                prop_assert!(lots.iter().map(|(_, l)| l).chain(&a.lots).all(|l| l.amount_fen > 0), "no empty lot is kept");
                let day = |l: &Lot| l.received_at_ms.div_euclid(DAY_MS);
                prop_assert!(a.lots.windows(2).all(|w| day(&w[0]) == day(&w[1])), "the open lots are of one day");
            }
            let appropriated: i64 = accts.iter().map(|a| a.appropriated_fen).sum();
            let held: i64 = accts.iter().map(|a| a.balance_fen).sum();
            let disbursed: i64 = accts.iter().map(|a| a.disbursed_fen).sum();
            prop_assert_eq!(appropriated, held + disbursed, "funds are conserved");
            for a in &accts {
                prop_assert!(a.balance_fen >= 0, "no negative balance");
            }
            for r in p.results.iter().filter(|r| r.status == TxStatus::Valid) {
                let key = keys::lineage(&r.tx_id);
                if let Some(Some(b)) = par.state.get(&key) {
                    let l = LineageRecord::decode(&b[..]).unwrap();
                    if l.kind == "disburse" {
                        prop_assert!(trace(&par.state, r.tx_id.as_bytes(), l.amount_fen, 0) >= 1, "every disbursed fen traces to appropriations");
                    }
                }
            }
        }
        prop_assert_eq!(par.state, seq_state, "the same blocks give the same state");
    }
}
