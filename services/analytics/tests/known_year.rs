//! A small fiscal year with every indicator computed by hand.
//!
//! | block | day | what |
//! |---|---|---|
//! | 1 | 2026-01-10 | MOF appropriates 1,000,000 fen to P1 |
//! | 2 | 2026-02-03 | MOF allocates 600,000 to Hebei |
//! | 3 | 2026-02-10 | Hebei acknowledges; allocates 250,000 to Shijiazhuang and 150,000 to Tangshan; a 10-fen allocation straight to Chang'an is refused (not a child, P1 is not direct funds) |
//! | 4 | 2026-03-02 | Shijiazhuang allocates 100,000 to Chang'an and pays 50,000 |
//! | 5 | 2026-04-15 | Chang'an pays 40,000 and 30,000; a 999,999 payment is refused (insufficient funds); it returns 10,000 to Shijiazhuang |
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use fiscus_analytics::indicators::{Figures, Filter, Tree, breakdown, series};
use fiscus_analytics::synthetic::Chain;
use fiscus_proto::pb::types::TxStatus;
use support::*;

fn year() -> Chain {
    let mut c = Chain::new(orgs());
    c.block(
        at(2026, 1, 10),
        vec![(
            vec!["000000"],
            appropriate("000000", "P1", false, 1_000_000),
        )],
    );
    let to_hebei = c.next_tx_id();
    c.block(
        at(2026, 2, 3),
        vec![(vec!["000000"], allocate("000000", "130000", "P1", 600_000))],
    );
    let b = c.block(
        at(2026, 2, 10),
        vec![
            (vec!["130000"], acknowledge(to_hebei, "130000", "P1")),
            (vec!["130000"], allocate("130000", "130100", "P1", 250_000)),
            (vec!["130000"], allocate("130000", "130200", "P1", 150_000)),
            (vec!["130000"], allocate("130000", "130102", "P1", 10)),
        ],
    );
    let statuses: Vec<_> = b.txs.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        [
            TxStatus::Valid,
            TxStatus::Valid,
            TxStatus::Valid,
            TxStatus::InvalidArgument
        ],
        "{:?}",
        b.txs.iter().map(|t| t.code).collect::<Vec<_>>()
    );
    c.block(
        at(2026, 3, 2),
        vec![
            (vec!["130100"], allocate("130100", "130102", "P1", 100_000)),
            (vec!["130100"], disburse("130100", "P1", 50_000)),
        ],
    );
    let b = c.block(
        at(2026, 4, 15),
        vec![
            (vec!["130102"], disburse("130102", "P1", 40_000)),
            (vec!["130102"], disburse("130102", "P1", 30_000)),
            (vec!["130102"], disburse("130102", "P1", 999_999)),
            (vec!["130102"], recover("130102", "130100", "P1", 10_000)),
        ],
    );
    assert_eq!(b.txs[2].status, TxStatus::InsufficientFunds);
    assert_eq!(b.txs[3].status, TxStatus::Valid, "{}", b.txs[3].code);
    c
}

fn figures(f: &[(&str, i64)]) -> Figures {
    let mut out = Figures::default();
    for (name, v) in f {
        match *name {
            "appropriated" => out.appropriated_fen = *v,
            "received" => out.received_fen = *v,
            "allocated" => out.allocated_fen = *v,
            "acknowledged" => out.acknowledged_fen = *v,
            "disbursed" => out.disbursed_fen = *v,
            "recovered_out" => out.recovered_out_fen = *v,
            "recovered_in" => out.recovered_in_fen = *v,
            "disbursements" => out.disbursements = *v,
            "allocations_received" => out.allocations_received = *v,
            other => panic!("no figure {other}"),
        }
    }
    out
}

#[test]
fn the_year_gives_the_hand_computed_figures() {
    let dir = tempfile::tempdir().unwrap();
    let chain = year();
    let store = store_of(dir.path(), &chain, 2);
    let conn = store.connection();
    let tree = Tree::new(divisions());
    let all = Filter::default();

    let nation = breakdown(conn, &tree, "000000", &all).unwrap();
    assert_eq!(
        nation.region,
        figures(&[
            ("appropriated", 1_000_000),
            ("disbursed", 120_000),
            ("disbursements", 3)
        ])
    );
    assert_eq!(nation.region.held_fen(), 880_000);
    assert_eq!(nation.region.expenditure_progress_bp(), Some(1200));
    assert_eq!(
        nation.department,
        figures(&[("appropriated", 1_000_000), ("allocated", 600_000)])
    );
    assert_eq!(nation.department.allocation_progress_bp(), Some(6000));
    assert_eq!(nation.department.held_fen(), 400_000);

    let hebei = breakdown(conn, &tree, "130000", &all).unwrap();
    assert_eq!(
        hebei.region,
        figures(&[
            ("received", 600_000),
            ("acknowledged", 600_000),
            ("disbursed", 120_000),
            ("disbursements", 3),
            ("allocations_received", 1),
        ])
    );
    assert_eq!(hebei.region.held_fen(), 480_000);
    assert_eq!(hebei.region.expenditure_progress_bp(), Some(2000));
    assert_eq!(
        hebei.department,
        figures(&[
            ("received", 600_000),
            ("acknowledged", 600_000),
            ("allocated", 400_000),
            ("allocations_received", 1),
        ])
    );
    // 400,000 / 600,000 = 66.666…%, rounded to 66.67%.
    assert_eq!(hebei.department.allocation_progress_bp(), Some(6667));
    assert_eq!(hebei.department.held_fen(), 200_000);
    // The supervisor holds no money and is not a child row.
    let kids: Vec<_> = hebei.children.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(kids, ["130100", "130200"]);
    let sjz = hebei.children[0].1;
    assert_eq!(
        sjz,
        figures(&[
            ("received", 250_000),
            ("disbursed", 120_000),
            ("disbursements", 3),
            ("allocations_received", 1),
        ])
    );
    assert_eq!(sjz.held_fen(), 130_000);
    assert_eq!(sjz.expenditure_progress_bp(), Some(4800));
    let ts = hebei.children[1].1;
    assert_eq!(
        ts,
        figures(&[("received", 150_000), ("allocations_received", 1)])
    );
    assert_eq!(ts.expenditure_progress_bp(), Some(0));

    let city = breakdown(conn, &tree, "130100", &all).unwrap();
    assert_eq!(
        city.department,
        figures(&[
            ("received", 250_000),
            ("allocated", 100_000),
            ("disbursed", 50_000),
            ("recovered_in", 10_000),
            ("disbursements", 1),
            ("allocations_received", 1),
        ])
    );
    assert_eq!(city.department.held_fen(), 110_000);
    assert_eq!(city.department.allocation_progress_bp(), Some(4000));

    let county = breakdown(conn, &tree, "130102", &all).unwrap();
    assert_eq!(county.region, county.department);
    assert!(county.children.is_empty());
    assert_eq!(
        county.region,
        figures(&[
            ("received", 100_000),
            ("disbursed", 70_000),
            ("recovered_out", 10_000),
            ("disbursements", 2),
            ("allocations_received", 1),
        ])
    );
    assert_eq!(county.region.held_fen(), 20_000);
    assert_eq!(county.region.expenditure_progress_bp(), Some(7000));

    // By month, over Hebei: what entered in February, what was paid after.
    let months = series(conn, &tree, "130000", &all, "month").unwrap();
    let months: Vec<_> = months.iter().map(|(m, f)| (m.as_str(), *f)).collect();
    assert_eq!(
        months,
        [
            (
                "2026-02",
                figures(&[
                    ("received", 600_000),
                    ("acknowledged", 600_000),
                    ("allocations_received", 1)
                ])
            ),
            (
                "2026-03",
                figures(&[("disbursed", 50_000), ("disbursements", 1)])
            ),
            (
                "2026-04",
                figures(&[("disbursed", 70_000), ("disbursements", 2)])
            ),
        ]
    );
    // A month range and a program filter use the fine rollup.
    let spring = Filter {
        program: Some("P1".into()),
        from_month: Some("2026-03".into()),
        to_month: Some("2026-04".into()),
    };
    let b = breakdown(conn, &tree, "130000", &spring).unwrap();
    assert_eq!(
        b.region,
        figures(&[("disbursed", 120_000), ("disbursements", 3)])
    );
    let other = Filter {
        program: Some("P2".into()),
        ..Filter::default()
    };
    assert_eq!(
        breakdown(conn, &tree, "130000", &other).unwrap().region,
        Figures::default()
    );
    let programs = series(conn, &tree, "000000", &all, "program").unwrap();
    assert_eq!(programs.len(), 1);
    assert_eq!(programs[0].0, "P1");
    assert_eq!(programs[0].1, nation.region);

    let pos = store.position().unwrap();
    assert_eq!(pos.next_height, 6);
    // 1 + 1 + 3 + 2 + 3 valid movements.
    assert_eq!(pos.movements, 10);
}

/// The year, and on 2026-06-20 Hebei passes 50,000 more of P1 to Tangshan:
/// central funds it received on 2026-02-03, long past art. 52 para. 3's 30
/// days, so the contract records the allocation as late.
#[test]
fn late_allocations_and_idle_funds_are_the_hand_computed_ones() {
    use fiscus_analytics::indicators::{Compliance, compliance, idle, late_items};
    use fiscus_contract_executor::calendar::{days_from_civil, format_date};
    let mut chain = year();
    let late_id = chain.next_tx_id();
    let b = chain.block(
        at(2026, 6, 20),
        vec![(vec!["130000"], allocate("130000", "130200", "P1", 50_000))],
    );
    assert_eq!(b.txs[0].status, TxStatus::Valid, "{}", b.txs[0].code);
    let event = b.txs[0]
        .events
        .iter()
        .find(|e| e.name == "deadline.late")
        .expect("the contract records the allocation as late");
    let due_ms = i64::from_be_bytes(event.data[..].try_into().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(dir.path(), &chain, 3);
    let conn = store.connection();
    let tree = Tree::new(divisions());
    let all = Filter::default();

    let c = |allocations, allocated_fen, late, late_fen| Compliance {
        allocations,
        allocated_fen,
        late,
        late_fen,
    };
    let hebei = compliance(conn, &tree, "130000", &all).unwrap();
    // Hebei: 250,000 + 150,000 on time, 50,000 late; Shijiazhuang: 100,000 on time.
    assert_eq!(hebei.region, c(4, 550_000, 1, 50_000));
    assert_eq!(hebei.region.on_time_bp(), Some(7500));
    assert_eq!(hebei.department, c(3, 450_000, 1, 50_000));
    assert_eq!(hebei.department.on_time_bp(), Some(6667));
    assert_eq!(
        hebei.children,
        [
            ("130100".to_owned(), c(1, 100_000, 0, 0)),
            ("130200".to_owned(), c(0, 0, 0, 0))
        ]
    );
    let nation = compliance(conn, &tree, "000000", &all).unwrap();
    assert_eq!(nation.region, c(5, 1_150_000, 1, 50_000));
    assert_eq!(nation.department, c(1, 600_000, 0, 0));
    // Months before June: nothing late.
    let spring = Filter {
        to_month: Some("2026-05".into()),
        ..Filter::default()
    };
    assert_eq!(
        compliance(conn, &tree, "130000", &spring)
            .unwrap()
            .region
            .late,
        0
    );

    let items = late_items(conn, "000000", &all, (0, 0), 100).unwrap();
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert_eq!(item.tx_id, late_id.to_string());
    assert_eq!((item.height, item.index), (6, 0));
    assert_eq!(
        (item.from_org.as_str(), item.to_org.as_str()),
        ("130000", "130200")
    );
    assert_eq!(item.amount_fen, 50_000);
    assert_eq!(format_date(item.day), "2026-06-20");
    assert_eq!(
        item.due_day,
        fiscus_contract_executor::calendar::day_of(due_ms)
    );
    // 30 days from receipt on 2026-02-03: due by the end of 2026-03-05.
    assert_eq!(format_date(item.due_day), "2026-03-05");
    assert!(
        late_items(conn, "130100", &all, (0, 0), 100)
            .unwrap()
            .is_empty()
    );
    assert!(
        late_items(conn, "000000", &all, (6, 0), 100)
            .unwrap()
            .is_empty()
    );

    // Idle funds as of 2026-06-20 with N = 90: arrived by 2026-03-22, not moved since.
    let cutoff = days_from_civil(2026, 3, 22);
    let report = idle(conn, &tree, "000000", None, cutoff).unwrap();
    let accounts: Vec<(&str, i64, i64)> = report
        .accounts
        .iter()
        .map(|a| (a.org.as_str(), a.idle_fen, a.balance_fen))
        .collect();
    assert_eq!(
        accounts,
        [
            ("000000", 400_000, 400_000),
            ("130000", 150_000, 150_000),
            // Tangshan's 50,000 of June is not idle yet.
            ("130200", 150_000, 200_000),
            // Shijiazhuang's 10,000 returned in April is not idle yet.
            ("130100", 100_000, 110_000),
            ("130102", 20_000, 20_000),
        ]
    );
    assert_eq!(report.idle_fen, 820_000);
    let hebei = idle(conn, &tree, "130000", None, cutoff).unwrap();
    assert_eq!(hebei.idle_fen, 420_000);
    assert_eq!(hebei.department_idle_fen, 150_000);
    assert_eq!(
        hebei.children,
        [
            ("130100".to_owned(), 120_000),
            ("130200".to_owned(), 150_000)
        ]
    );
    assert_eq!(
        report.accounts[3].last_out_day.map(format_date).as_deref(),
        Some("2026-03-02")
    );
    // A later cut-off: only what arrived by 2026-02-05 counts.
    let early = idle(
        conn,
        &tree,
        "000000",
        Some("P1"),
        days_from_civil(2026, 2, 5),
    )
    .unwrap();
    assert_eq!(early.idle_fen, 400_000 + 150_000);
}

/// The year, then: Chang'an pays the same school 8,500 and 9,000 three days
/// apart (each just under a 10,000 threshold, together over it); the audit
/// office freezes Tangshan's P1 account on 2026-04-25; a last block on
/// 2026-06-01. Shijiazhuang and Chang'an both paid that school, and
/// Chang'an returned money on the day it paid.
#[test]
fn the_anomaly_rules_flag_what_they_describe() {
    use fiscus_analytics::anomalies::{Thresholds, flags};
    use fiscus_contract_executor::calendar::{days_from_civil, format_date};
    let mut chain = year();
    let b = chain.block(
        at(2026, 4, 20),
        vec![(vec!["130102"], disburse("130102", "P1", 8_500))],
    );
    assert_eq!(b.txs[0].status, TxStatus::Valid, "{}", b.txs[0].code);
    let split_a = b.txs[0].tx_id;
    let b = chain.block(
        at(2026, 4, 23),
        vec![(vec!["130102"], disburse("130102", "P1", 9_000))],
    );
    let split_b = b.txs[0].tx_id;
    let b = chain.block(
        at(2026, 4, 25),
        vec![(vec!["991300"], freeze("130200", "P1"))],
    );
    assert_eq!(b.txs[0].status, TxStatus::Valid, "{}", b.txs[0].code);
    let frozen = b.txs[0].tx_id;
    let b = chain.block(
        at(2026, 6, 1),
        vec![(vec!["130000"], allocate("130000", "130100", "P1", 1_000))],
    );
    assert_eq!(b.txs[0].status, TxStatus::Valid, "{}", b.txs[0].code);
    let dir = tempfile::tempdir().unwrap();
    let store = store_of(dir.path(), &chain, 2);
    let conn = store.connection();
    let t = Thresholds {
        split_threshold_fen: 10_000,
        split_window_days: 7,
        frozen_days: 30,
    };
    let as_of = days_from_civil(2026, 6, 1);
    let all = flags(conn, "000000", &t, as_of).unwrap();
    let summary: Vec<(&str, &str, i64, String, String, usize)> = all
        .iter()
        .map(|f| {
            (
                f.rule,
                f.org.as_str(),
                f.amount_fen,
                format_date(f.first_day),
                format_date(f.last_day),
                f.tx_ids.len(),
            )
        })
        .collect();
    let d = |s: &str| s.to_owned();
    assert_eq!(
        summary,
        [
            (
                "split_payment",
                "130102",
                17_500,
                d("2026-04-20"),
                d("2026-04-23"),
                2
            ),
            // 50,000 by Shijiazhuang; 40,000, 30,000, 8,500 and 9,000 by Chang'an.
            (
                "shared_recipient",
                "130100,130102",
                137_500,
                d("2026-03-02"),
                d("2026-04-23"),
                5
            ),
            (
                "recovery_after_disbursement",
                "130102",
                10_000,
                d("2026-04-15"),
                d("2026-04-15"),
                1
            ),
            // Frozen 2026-04-25, 37 days before the last block.
            (
                "long_freeze",
                "130200",
                0,
                d("2026-04-25"),
                d("2026-06-01"),
                1
            ),
        ]
    );
    assert_eq!(all[0].tx_ids, [split_a.to_string(), split_b.to_string()]);
    assert_eq!(all[0].recipient, "uscc:12130102MB1234562B");
    assert_eq!(all[3].tx_ids, [frozen.to_string()]);
    // A region sees the flags of its own orgs only.
    let rules = |top: &str| -> Vec<&'static str> {
        flags(conn, top, &t, as_of)
            .unwrap()
            .iter()
            .map(|f| f.rule)
            .collect()
    };
    assert_eq!(
        rules("130100"),
        [
            "split_payment",
            "shared_recipient",
            "recovery_after_disbursement"
        ]
    );
    assert_eq!(
        rules("130102"),
        ["split_payment", "recovery_after_disbursement"]
    );
    assert_eq!(rules("130200"), ["long_freeze"]);
    // Thresholds move the flags: a wider band, a longer freeze allowed.
    let loose = Thresholds {
        split_threshold_fen: 1_000_000,
        frozen_days: 40,
        ..t
    };
    assert_eq!(
        flags(conn, "000000", &loose, as_of)
            .unwrap()
            .iter()
            .map(|f| f.rule)
            .collect::<Vec<_>>(),
        ["shared_recipient", "recovery_after_disbursement"]
    );
}

/// How long the year's money waited: each allocation by the days since its
/// funds arrived at the payer, each payment by the days since the
/// appropriation (2026-01-10), per level, weighted by amount.
#[test]
fn the_waits_are_the_hand_computed_days() {
    use fiscus_analytics::indicators::{Wait, waits};
    let dir = tempfile::tempdir().unwrap();
    let chain = year();
    let store = store_of(dir.path(), &chain, 1);
    let conn = store.connection();
    let w = |top: &str, which| -> Vec<(String, i64, i64, i64)> {
        waits(conn, top, which, None, false)
            .unwrap()
            .into_iter()
            .map(|w| (w.level, w.amount_fen, w.median_days, w.p90_days))
            .collect()
    };
    let l = |s: &str| s.to_owned();
    assert_eq!(
        w("000000", Wait::PassDown),
        [
            // Appropriated 01-10, passed to Hebei 02-03.
            (l("central"), 600_000, 24, 24),
            // Received 02-03, passed to the cities 02-10.
            (l("provincial"), 400_000, 7, 7),
            // Received 02-10, passed to Chang'an 03-02.
            (l("municipal"), 100_000, 20, 20),
        ]
    );
    assert_eq!(
        w("000000", Wait::Payment),
        [
            // Shijiazhuang paid 50,000 on 03-02; Chang'an 70,000 on 04-15.
            (l("municipal"), 50_000, 51, 51),
            (l("county"), 70_000, 95, 95),
        ]
    );
    // A region sees its own orgs' waits.
    assert_eq!(w("130102", Wait::Payment), [(l("county"), 70_000, 95, 95)]);
    assert!(w("130200", Wait::PassDown).is_empty());
    // After the year, what is left in each account arrived when the hand says:
    // Chang'an keeps 20,000 of 03-02; Shijiazhuang 100,000 of 02-10 and the
    // 10,000 returned on 04-15.
    let lots: Vec<(String, i64, i64)> = conn
        .prepare("SELECT org, program, pieces FROM account_lots ORDER BY org")
        .unwrap()
        .query_map([], |r| {
            let (org, blob): (String, Vec<u8>) = (r.get(0)?, r.get(2)?);
            Ok((org, blob))
        })
        .unwrap()
        .flat_map(|r| {
            let (org, blob) = r.unwrap();
            blob.chunks_exact(24)
                .map(|c| {
                    let n = |i: usize| i64::from_le_bytes(c[i..i + 8].try_into().unwrap());
                    (org.clone(), n(0), n(16))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let day = |m, d| fiscus_contract_executor::calendar::days_from_civil(2026, m, d);
    assert_eq!(
        lots,
        [
            (l("000000"), day(1, 10), 400_000),
            (l("130000"), day(2, 3), 200_000),
            (l("130100"), day(2, 10), 100_000),
            (l("130100"), day(4, 15), 10_000),
            (l("130102"), day(3, 2), 20_000),
            (l("130200"), day(2, 10), 150_000),
        ]
    );
}
