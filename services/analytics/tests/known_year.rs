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
