//! Transfer contract v2: who may create and move funds, what a program and a
//! recipient must carry, and Budget Law art. 52 as the law reads. Each
//! refusal is checked for its code and for leaving state unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_contract_executor::calendar::{end_of_day_ms, parse_date, start_of_day_ms};
use fiscus_contract_executor::deadlines::{self, ProgramTerms};
use fiscus_contract_executor::{Calendar, Call, Orgs, TxCtx, keys};
use fiscus_proto::hash::sha256;
use fiscus_proto::pb::state::{AllocationRecord, LineageRecord, ProgramRecord};
use fiscus_proto::pb::transfer::{
    AcknowledgeArgs, AdjustArgs, AppropriateArgs, DisburseArgs, FreezeArgs, Program, ProgramKind,
    Recipient, TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{BudgetApproval, HolidayCalendar, OrgLevel, TxStatus};
use proptest::prelude::*;
use std::collections::BTreeSet;

mod support;
use support::*;

/// Asserts a refusal's status and code, and that it changed nothing.
fn refused(c: &mut Chain, signer: &str, call: TransferCall, status: TxStatus, code: &str) {
    let before = c.state.clone();
    let r = c.one(signer, call);
    assert_eq!((r.0, r.1), (status, code));
    assert_eq!(c.state, before, "{code} changed state");
}

fn funded() -> Chain {
    let mut c = Chain::new();
    ok(c.one(
        "000000",
        appropriate("000000", "edu", ProgramKind::General, 1000),
    ));
    ok(c.one("000000", allocate("000000", "130000", "edu", 500)));
    ok(c.one("130000", allocate("130000", "130100", "edu", 200)));
    c
}

fn with_program(id: &str, edit: impl FnOnce(&mut Program)) -> TransferCall {
    let mut p = program(id, ProgramKind::General);
    edit(&mut p);
    call(Method::Appropriate(AppropriateArgs {
        account: acct("130000", id),
        program: Some(p),
        amount_fen: 100,
        document: "冀财预〔2026〕1号".into(),
    }))
}

// ---- authority ----

#[test]
fn a_city_cannot_appropriate_into_a_central_program() {
    let mut c = funded();
    let into_central = call(Method::Appropriate(AppropriateArgs {
        account: acct("130100", "edu"),
        program: None,
        amount_fen: 1,
        document: String::new(),
    }));
    refused(
        &mut c,
        "130100",
        into_central,
        TxStatus::Unauthorized,
        "contract.not_program_owner",
    );
}

#[test]
fn the_owner_appropriates_only_into_its_own_account_of_the_program() {
    // Even the MOF signing for a province's account is not the province.
    let mut c = funded();
    let r = c.one(
        "000000",
        call(Method::Appropriate(AppropriateArgs {
            account: acct("130000", "edu"),
            program: None,
            amount_fen: 1,
            document: String::new(),
        })),
    );
    assert_eq!(r.1, "contract.not_owner");
}

#[test]
fn a_province_owns_the_local_program_it_creates_and_only_it_appropriates_into_it() {
    let mut c = funded();
    ok(c.one("130000", with_program("130000-roads", |_| {})));
    let rec: ProgramRecord = c.get(keys::program("130000-roads")).unwrap();
    assert_eq!(rec.owner_org, "130000");
    let by_mof = call(Method::Appropriate(AppropriateArgs {
        account: acct("000000", "130000-roads"),
        program: None,
        amount_fen: 1,
        document: String::new(),
    }));
    refused(
        &mut c,
        "000000",
        by_mof,
        TxStatus::Unauthorized,
        "contract.not_program_owner",
    );
}

#[test]
fn a_supervisor_cannot_appropriate() {
    let mut c = funded();
    refused(
        &mut c,
        "991300",
        appropriate("991300", "audit-own", ProgramKind::General, 100),
        TxStatus::Unauthorized,
        "contract.supervisor_moves_no_money",
    );
}

#[test]
fn a_province_cannot_allocate_to_the_audit_office() {
    let mut c = funded();
    refused(
        &mut c,
        "130000",
        allocate("130000", "991300", "edu", 10),
        TxStatus::Unauthorized,
        "contract.supervisor_moves_no_money",
    );
}

#[test]
fn a_supervisor_cannot_adjust_even_with_both_signatures() {
    let mut c = funded();
    let before = c.state.clone();
    c.n += 1;
    let tx = TxCtx {
        tx_id: sha256(&c.n.to_be_bytes()),
        signer_orgs: BTreeSet::from(["130000".to_owned(), "991300".to_owned()]),
        call: Ok(Call::Transfer(call(Method::Adjust(AdjustArgs {
            from: acct("130000", "edu"),
            to: acct("991300", "edu"),
            amount_fen: 1,
            corrects_tx_id: vec![1; 32],
            reason: "fix".into(),
        })))),
    };
    let r = c.block(vec![tx]);
    assert_eq!(r[0].1, "contract.supervisor_moves_no_money");
    assert_eq!(c.state, before);
}

#[test]
fn a_supervisor_freezes_but_cannot_acknowledge_or_disburse() {
    let mut c = funded();
    refused(
        &mut c,
        "991300",
        disburse("991300", "edu", 1),
        TxStatus::Unauthorized,
        "contract.supervisor_moves_no_money",
    );
    refused(
        &mut c,
        "991300",
        call(Method::Acknowledge(AcknowledgeArgs {
            allocation_tx_id: vec![2; 32],
            account: acct("991300", "edu"),
        })),
        TxStatus::Unauthorized,
        "contract.supervisor_moves_no_money",
    );
    ok(c.one(
        "991300",
        call(Method::Freeze(FreezeArgs {
            account: acct("130100", "edu"),
            reason: "审计调查".into(),
        })),
    ));
}

// ---- programs ----

#[test]
fn a_program_needs_a_functional_code_of_three_five_or_seven_digits() {
    let mut c = funded();
    for code in ["", "2050", "20502020"] {
        refused(
            &mut c,
            "130000",
            with_program("130000-p1", |p| p.functional_code = code.into()),
            TxStatus::InvalidArgument,
            "contract.bad_functional_code",
        );
    }
}

#[test]
fn a_program_needs_a_document_number() {
    let mut c = funded();
    refused(
        &mut c,
        "130000",
        with_program("130000-p2", |p| p.document = String::new()),
        TxStatus::InvalidArgument,
        "contract.missing_document",
    );
}

#[test]
fn a_program_of_another_fiscal_year_is_refused_unless_it_is_an_advance_allocation() {
    let mut c = funded();
    refused(
        &mut c,
        "130000",
        with_program("130000-p3", |p| p.fiscal_year = 1999),
        TxStatus::InvalidArgument,
        "contract.bad_fiscal_year",
    );
    refused(
        &mut c,
        "130000",
        with_program("130000-p4", |p| p.fiscal_year = 2027),
        TxStatus::InvalidArgument,
        "contract.bad_fiscal_year",
    );
    refused(
        &mut c,
        "130000",
        with_program("130000-p5", |p| p.advance = true),
        TxStatus::InvalidArgument,
        "contract.bad_fiscal_year",
    );
    ok(c.one(
        "130000",
        with_program("130000-p6", |p| {
            p.fiscal_year = 2027;
            p.advance = true;
        }),
    ));
}

#[test]
fn direct_and_disaster_are_attributes_not_kinds() {
    let mut c = funded();
    for kind in [
        ProgramKind::Direct,
        ProgramKind::Disaster,
        ProgramKind::Unspecified,
    ] {
        refused(
            &mut c,
            "130000",
            with_program("130000-p7", |p| p.kind = kind as i32),
            TxStatus::InvalidArgument,
            "contract.bad_program_kind",
        );
    }
    // A special program can be direct funds.
    ok(c.one(
        "130000",
        with_program("130000-p8", |p| {
            p.kind = ProgramKind::Special as i32;
            p.direct = true;
        }),
    ));
}

// ---- recipients ----

fn pay(to: recipient::Id, name: &str) -> TransferCall {
    call(Method::Disburse(DisburseArgs {
        from: acct("130100", "edu"),
        recipient: Some(Recipient {
            id: Some(to),
            name: name.into(),
        }),
        amount_fen: 10,
        purpose: "公用经费".into(),
        economic_code: "50502".into(),
        external_id: String::new(),
    }))
}

#[test]
fn a_unified_social_credit_code_with_a_wrong_check_character_is_refused() {
    let mut c = funded();
    refused(
        &mut c,
        "130100",
        pay(
            recipient::Id::UnifiedSocialCreditCode("123456789012345678".into()),
            "某小学",
        ),
        TxStatus::InvalidArgument,
        "contract.bad_recipient",
    );
}

#[test]
fn a_recipient_without_a_name_is_refused() {
    let mut c = funded();
    refused(
        &mut c,
        "130100",
        pay(
            recipient::Id::UnifiedSocialCreditCode("12130102MB1234562B".into()),
            "",
        ),
        TxStatus::InvalidArgument,
        "contract.malformed",
    );
}

#[test]
fn the_recipients_name_and_economic_code_stay_in_the_lineage() {
    let mut c = funded();
    let hash =
        fiscus_contract_executor::identifiers::personal_id_hash(b"salt", "11010519491231002X")
            .unwrap();
    let d = ok(c.one(
        "130100",
        pay(recipient::Id::PersonalIdHash(hash.to_vec()), "农户 甲"),
    ));
    let l: LineageRecord = c.get(keys::lineage(&d)).unwrap();
    assert_eq!(l.to, hash.to_hex());
    assert_eq!(l.recipient_name, "农户 甲");
    assert_eq!(l.economic_code, "50502");
}

#[test]
fn an_adjustment_links_to_the_transaction_it_corrects_and_leaves_it_as_it_was() {
    let mut c = funded();
    let wrong = ok(c.one("130000", allocate("130000", "130100", "edu", 50)));
    let original: LineageRecord = c.get(keys::lineage(&wrong)).unwrap();
    c.n += 1;
    let tx = TxCtx {
        tx_id: sha256(&c.n.to_be_bytes()),
        signer_orgs: BTreeSet::from(["130000".to_owned(), "130100".to_owned()]),
        call: Ok(Call::Transfer(call(Method::Adjust(AdjustArgs {
            from: acct("130100", "edu"),
            to: acct("130000", "edu"),
            amount_fen: 20,
            corrects_tx_id: wrong.to_vec(),
            reason: "多拨 20 分 / over-allocated".into(),
        })))),
    };
    let adj = tx.tx_id;
    assert_eq!(c.block(vec![tx])[0].0, TxStatus::Valid);
    let link: fiscus_proto::pb::state::Corrections = c.get(keys::corrections(&wrong)).unwrap();
    assert_eq!(
        (link.adjust_tx_ids, link.amount_fen),
        (vec![adj.to_vec()], 20)
    );
    let adjustment: LineageRecord = c.get(keys::lineage(&adj)).unwrap();
    assert_eq!(
        (adjustment.kind.as_str(), adjustment.corrects_tx_id.clone()),
        ("adjust", wrong.to_vec())
    );
    let after: LineageRecord = c.get(keys::lineage(&wrong)).unwrap();
    assert_eq!(
        after, original,
        "the corrected record stays visible as it was"
    );
}

fn adjust_by_both(
    c: &mut Chain,
    from: &str,
    to: &str,
    amount: i64,
    corrects: &[u8],
) -> (TxStatus, &'static str) {
    c.n += 1;
    let tx = TxCtx {
        tx_id: sha256(&c.n.to_be_bytes()),
        signer_orgs: BTreeSet::from([from.to_owned(), to.to_owned()]),
        call: Ok(Call::Transfer(call(Method::Adjust(AdjustArgs {
            from: acct(from, "edu"),
            to: acct(to, "edu"),
            amount_fen: amount,
            corrects_tx_id: corrects.to_vec(),
            reason: "correction".into(),
        })))),
    };
    let r = c.block(vec![tx]);
    (r[0].0, r[0].1)
}

#[test]
fn an_adjustment_only_reverses_a_transfer_between_the_same_two_orgs_and_never_more_than_it_moved() {
    let mut c = funded();
    let wrong = ok(c.one("130000", allocate("130000", "130100", "edu", 50)));
    let before = c.state.clone();
    // Forward, as a way round a late allocation: refused.
    assert_eq!(
        adjust_by_both(&mut c, "130000", "130100", 10, wrong.as_bytes()).1,
        "contract.not_a_reversal"
    );
    // A correction of something that moved no funds between them: refused.
    assert_eq!(
        adjust_by_both(&mut c, "130100", "130000", 10, &[9; 32]).1,
        "contract.unknown_correction_target"
    );
    assert_eq!(c.state, before);
    assert_eq!(
        adjust_by_both(&mut c, "130100", "130000", 30, wrong.as_bytes()).0,
        TxStatus::Valid
    );
    let before = c.state.clone();
    assert_eq!(
        adjust_by_both(&mut c, "130100", "130000", 21, wrong.as_bytes()),
        (TxStatus::InvalidArgument, "contract.over_correction")
    );
    assert_eq!(c.state, before);
}

#[test]
fn a_recovery_never_goes_above_the_programs_owner() {
    let mut c = funded();
    ok(c.one("130000", with_program("130000-p9", |_| {})));
    ok(c.one("130000", allocate("130000", "130100", "130000-p9", 40)));
    let before = c.state.clone();
    refused(
        &mut c,
        "130100",
        recover("130100", "000000", "130000-p9", 10),
        TxStatus::InvalidArgument,
        "contract.not_ancestor",
    );
    assert_eq!(c.state, before);
    ok(c.one("130100", recover("130100", "130000", "130000-p9", 10)));
}

#[test]
fn a_local_level_cannot_take_a_central_programs_id_first() {
    let mut c = funded();
    refused(
        &mut c,
        "130000",
        with_program("edu-2027", |p| {
            p.fiscal_year = 2027;
            p.advance = true;
        }),
        TxStatus::Unauthorized,
        "contract.program_namespace",
    );
    refused(
        &mut c,
        "130000",
        with_program("130100-roads", |_| {}),
        TxStatus::Unauthorized,
        "contract.program_namespace",
    );
}

// ---- Budget Law art. 52 ----

/// Blocks at noon China Standard Time on `date`.
fn noon(date: &str) -> i64 {
    start_of_day_ms(parse_date(date).unwrap()) + 12 * 3_600_000
}

fn end(date: &str) -> i64 {
    end_of_day_ms(parse_date(date).unwrap())
}

fn approval(org: &str, on: &str) -> BudgetApproval {
    BudgetApproval {
        fiscal_year: 2026,
        org_code: org.into(),
        approved_on: on.into(),
        document: "决议".into(),
    }
}

/// The 2026 National Day holiday (Oct 1-7; Sep 20 and Oct 10 worked).
fn national_day() -> HolidayCalendar {
    HolidayCalendar {
        year: 2026,
        holidays: (1..=7).map(|d| format!("2026-10-{d:02}")).collect(),
        workdays: vec!["2026-09-20".into(), "2026-10-10".into()],
    }
}

fn record(c: &Chain, tx: &fiscus_proto::hash::TxId) -> AllocationRecord {
    c.get(keys::allocation(tx)).unwrap()
}

/// A fiscal year worked by hand. The NPC approved the budget on Tuesday
/// 2026-09-01 (moved late into the year so that the periods cross the
/// National Day holiday); the MOF recorded its appropriation only on 09-10.
///
/// - Central general funds: 30 days after 09-01 is Thursday 10-01, a
///   holiday through 10-07, so the MOF has until Thursday 10-08.
/// - Central special funds: 90 days after 09-01 is Monday 11-30.
/// - The province received its first general funds on Thursday 10-08; 30
///   days is Saturday 11-07, so Monday 11-09 at every level down to the county.
#[test]
fn a_fiscal_year_with_hand_computed_deadlines_across_a_weekend_and_the_national_day() {
    let mut c = Chain::new();
    c.calendar = Calendar::default()
        .with_approval(&approval("000000", "2026-09-01"))
        .with_holidays(&national_day());
    c.now = noon("2026-09-10");
    // Appropriated nine days after the approval: the deadline still counts from the approval.
    ok(c.one(
        "000000",
        appropriate("000000", "gen", ProgramKind::General, 10_000),
    ));
    ok(c.one(
        "000000",
        appropriate("000000", "sp", ProgramKind::Special, 10_000),
    ));

    c.now = noon("2026-10-08");
    let gen_on_time = ok(c.one("000000", allocate("000000", "130000", "gen", 3000)));
    let r = record(&c, &gen_on_time);
    assert_eq!(
        (rule_of(&r).0, rule_of(&r).1),
        ("art52.2.general", "approval")
    );
    assert_eq!(
        start_of_day_ms(r.clock_start_day.into()),
        start_of_day_ms(parse_date("2026-09-01").unwrap())
    );
    assert_eq!(r.due_at_ms, end("2026-10-08"));
    assert!(!r.late, "the holiday moved the last day to 10-08");
    assert_eq!(rule_of(&r).2, 37);

    c.now = noon("2026-10-09");
    let gen_late = ok(c.one("000000", allocate("000000", "130000", "gen", 3000)));
    assert!(
        record(&c, &gen_late).late,
        "one day after the moved deadline"
    );

    c.now = noon("2026-11-30");
    let sp = ok(c.one("000000", allocate("000000", "130000", "sp", 1000)));
    let r = record(&c, &sp);
    assert_eq!(
        (rule_of(&r).0, r.due_at_ms, r.late),
        ("art52.2.special", end("2026-11-30"), false)
    );

    // The province's clock starts on receipt of the first (10-08) lot, not on
    // acknowledgement; it never acknowledges here.
    c.now = noon("2026-11-09");
    let prov = ok(c.one("130000", allocate("130000", "130100", "gen", 2000)));
    let r = record(&c, &prov);
    assert_eq!(rule_of(&r).0, "art52.3");
    assert_eq!(rule_of(&r).1, "receipt");
    assert_eq!(
        r.due_at_ms,
        end("2026-11-09"),
        "10-08 + 30 = Saturday 11-07 → Monday 11-09"
    );
    assert!(!r.late);

    // The chain rule: the city's onward allocation is inside the province's window.
    c.now = noon("2026-11-10");
    let city = ok(c.one("130100", allocate("130100", "130102", "gen", 500)));
    let r = record(&c, &city);
    assert_eq!((rule_of(&r).0, r.due_at_ms), ("art52.3", end("2026-11-09")));
    assert!(
        r.late,
        "the city passed it on after the province's 30 days ended"
    );
}

#[test]
fn a_province_that_delays_its_acknowledgement_does_not_move_its_deadline() {
    let mut c = Chain::new();
    c.now = noon("2026-09-21");
    ok(c.one(
        "000000",
        appropriate("000000", "gen", ProgramKind::General, 1000),
    ));
    let arrived = ok(c.one("000000", allocate("000000", "130000", "gen", 1000)));
    // Acknowledged 50 days after arrival, passed on 52 days after arrival.
    c.now = noon("2026-11-10");
    ok(c.one(
        "130000",
        call(Method::Acknowledge(AcknowledgeArgs {
            allocation_tx_id: arrived.to_vec(),
            account: acct("130000", "gen"),
        })),
    ));
    assert!(
        record(&c, &arrived).acknowledged_late,
        "a late acknowledgement is flagged"
    );
    c.now = noon("2026-11-12");
    let onward = ok(c.one("130000", allocate("130000", "130100", "gen", 400)));
    assert!(
        record(&c, &onward).late,
        "52 days after arrival is late whatever the acknowledgement"
    );
}

#[test]
fn a_local_program_counts_from_its_own_congress_approval() {
    let mut c = Chain::new();
    c.calendar = Calendar::default().with_approval(&approval("130000", "2026-01-20"));
    c.now = noon("2026-02-10");
    ok(c.one(
        "130000",
        with_program("130000-sp", |p| p.kind = ProgramKind::Special as i32),
    ));
    c.now = noon("2026-03-23");
    let a = ok(c.one("130000", allocate("130000", "130100", "130000-sp", 50)));
    let r = record(&c, &a);
    // 01-20 + 60 days = Saturday 03-21 → Monday 03-23.
    assert_eq!(
        (rule_of(&r).0, rule_of(&r).1),
        ("art52.4.special", "approval")
    );
    assert_eq!(r.due_at_ms, end("2026-03-23"));
    assert!(!r.late);
}

#[test]
fn emergency_transfers_are_judged_against_the_policy_threshold_from_receipt() {
    let mut c = Chain::new();
    c.now = noon("2026-07-01");
    ok(c.one(
        "000000",
        call(Method::Appropriate(AppropriateArgs {
            account: acct("000000", "flood"),
            program: Some(Program {
                emergency: true,
                ..program("flood", ProgramKind::General)
            }),
            amount_fen: 1000,
            document: String::new(),
        })),
    ));
    c.now = noon("2026-07-15");
    let a = ok(c.one("000000", allocate("000000", "130000", "flood", 100)));
    let r = record(&c, &a);
    assert_eq!(rule_of(&r).0, "art52.5.emergency");
    assert_eq!(rule_of(&r).2, 14);
    assert!(
        r.late,
        "14 days is past the default 10-day threshold (07-11, a Saturday → 07-13)"
    );
}

#[test]
fn settlement_programs_may_be_issued_in_instalments_without_a_deadline() {
    let mut c = Chain::new();
    c.now = noon("2026-01-05");
    ok(c.one(
        "000000",
        call(Method::Appropriate(AppropriateArgs {
            account: acct("000000", "settle"),
            program: Some(Program {
                settlement: true,
                ..program("settle", ProgramKind::General)
            }),
            amount_fen: 1000,
            document: String::new(),
        })),
    ));
    c.now = noon("2026-12-20");
    let a = ok(c.one("000000", allocate("000000", "130000", "settle", 100)));
    let r = record(&c, &a);
    assert_eq!(
        (rule_of(&r).0, r.due_at_ms, r.late),
        ("art52.5.settlement", 0, false)
    );
}

#[test]
fn money_that_never_moves_is_reported_overdue_at_any_height() {
    let mut c = Chain::new();
    c.calendar = Calendar::default().with_approval(&approval("000000", "2026-03-12"));
    c.now = noon("2026-03-13");
    ok(c.one(
        "000000",
        appropriate("000000", "gen", ProgramKind::General, 1000),
    ));
    ok(c.one("000000", allocate("000000", "130000", "gen", 600)));
    let held = c.lots("000000", "gen");
    let prog: ProgramRecord = c.get(keys::program("gen")).unwrap();
    let overdue = |at: &str| {
        deadlines::overdue_in_account(
            "000000",
            "gen",
            &held,
            &prog,
            &c.orgs,
            &c.calendar,
            noon(at),
        )
    };
    // 03-12 + 30 = Saturday 04-11 → Monday 04-13.
    assert!(
        overdue("2026-04-13").is_empty(),
        "due that day, not yet overdue"
    );
    let late = overdue("2026-04-20");
    assert_eq!(late.len(), 1);
    assert_eq!((late[0].amount_fen, late[0].days_overdue), (400, 7));
    // A county holds funds with nobody below it: never overdue (the same lots).
    assert!(
        deadlines::overdue_in_account(
            "130102",
            "gen",
            &held,
            &prog,
            &c.orgs,
            &c.calendar,
            noon("2027-01-01")
        )
        .is_empty()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The same lot, holder, program and calendar always give the same
    /// verdict, whatever else happened; and a holiday can only move a
    /// deadline later, never earlier.
    #[test]
    fn deadline_verdicts_are_a_pure_function_of_block_times_approvals_and_holidays(
        received in 0i64..400,
        window in 0i64..400,
        approval_day in 0i64..200,
        holidays in prop::collection::btree_set(0i64..500, 0..40),
        special in any::<bool>(),
        level in prop_oneof![Just(OrgLevel::Central), Just(OrgLevel::Provincial), Just(OrgLevel::Municipal), Just(OrgLevel::County)],
    ) {
        let base = parse_date("2026-01-01").unwrap();
        let date = |d: i64| fiscus_contract_executor::calendar::format_date(base + d);
        let plain = Calendar::default().with_approval(&BudgetApproval {
            fiscal_year: 2026, org_code: "000000".into(), approved_on: date(approval_day), document: "d".into(),
        });
        let with_holidays = plain.clone().with_holidays(&HolidayCalendar {
            year: 2026,
            holidays: holidays.iter().map(|d| date(*d)).filter(|d| d.starts_with("2026")).collect(),
            workdays: Vec::new(),
        });
        let lot = fiscus_proto::pb::state::Lot {
            received_at_ms: start_of_day_ms(base + received) + 5,
            window_lag_days: if level == OrgLevel::Central { 0 } else { u32::try_from(received - window.min(received)).unwrap() },
            amount_fen: 1,
            ..Default::default()
        };
        let holder = match level { OrgLevel::Central => "000000", OrgLevel::Provincial => "130000", OrgLevel::Municipal => "130100", _ => "130102" };
        let rec = ProgramRecord {
            program: Some(Program { kind: if special { ProgramKind::Special } else { ProgramKind::General } as i32, fiscal_year: 2026, ..Default::default() }),
            owner_org: "000000".into(),
        };
        let terms = ProgramTerms::of(&rec, &Orgs::default().with("000000", OrgLevel::Central, ""));
        let a = deadlines::deadline(&lot, holder, level, &terms, &with_holidays);
        let b = deadlines::deadline(&lot.clone(), holder, level, &terms, &with_holidays.clone());
        prop_assert_eq!(a, b);
        let without = deadlines::deadline(&lot, holder, level, &terms, &plain);
        match (a.due, without.due) {
            (Some(x), Some(y)) => prop_assert!(x >= y, "a holiday moved a deadline earlier"),
            (x, y) => prop_assert_eq!(x, y),
        }
        if let Some(due) = a.due {
            prop_assert!(with_holidays.is_working_day(due) || holidays.len() > 30, "a deadline ends on a working day");
            prop_assert!(!a.is_late_at(end_of_day_ms(due)) && a.is_late_at(end_of_day_ms(due) + 1));
        }
    }
}

#[test]
fn a_supervisor_freezes_only_within_its_jurisdiction() {
    let mut c = funded();
    // The Hebei audit office sits under 130000: the MOF's accounts are not its to freeze.
    refused(
        &mut c,
        "991300",
        call(Method::Freeze(FreezeArgs {
            account: acct("000000", "edu"),
            reason: "审计".into(),
        })),
        TxStatus::Unauthorized,
        "contract.outside_jurisdiction",
    );
    ok(c.one(
        "991300",
        call(Method::Freeze(FreezeArgs {
            account: acct("130000", "edu"),
            reason: "审计".into(),
        })),
    ));
}

#[test]
fn recovered_funds_carry_no_deadline_and_an_adjustment_cannot_be_undone_by_another() {
    let mut c = funded();
    c.now += 200 * fiscus_contract_executor::DAY_MS;
    let back = ok(c.one("130100", recover("130100", "130000", "edu", 50)));
    let held = c.lots("130000", "edu");
    let prog: ProgramRecord = c.get(keys::program("edu")).unwrap();
    let overdue =
        deadlines::overdue_in_account("130000", "edu", &held, &prog, &c.orgs, &c.calendar, c.now);
    assert!(
        overdue.iter().all(|o| o.source_tx_id != back.to_vec()),
        "returned funds are not overdue: {overdue:?}"
    );
    assert!(
        !overdue.is_empty(),
        "the province's own unpassed funds still are"
    );
    // An adjustment reverses an allocation; a second adjustment of that
    // adjustment (sending the funds forward again) is refused.
    let sent = ok(c.one("130000", allocate("130000", "130100", "edu", 30)));
    c.n += 1;
    let fix = TxCtx {
        tx_id: sha256(&c.n.to_be_bytes()),
        signer_orgs: BTreeSet::from(["130000".to_owned(), "130100".to_owned()]),
        call: Ok(Call::Transfer(call(Method::Adjust(AdjustArgs {
            from: acct_ref("130100"),
            to: acct_ref("130000"),
            amount_fen: 10,
            corrects_tx_id: sent.to_vec(),
            reason: "r".into(),
        })))),
    };
    let fix_id = fix.tx_id;
    assert_eq!(c.block(vec![fix])[0].0, TxStatus::Valid);
    c.n += 1;
    let undo = TxCtx {
        tx_id: sha256(&c.n.to_be_bytes()),
        signer_orgs: BTreeSet::from(["130000".to_owned(), "130100".to_owned()]),
        call: Ok(Call::Transfer(call(Method::Adjust(AdjustArgs {
            from: acct_ref("130000"),
            to: acct_ref("130100"),
            amount_fen: 10,
            corrects_tx_id: fix_id.to_vec(),
            reason: "undo".into(),
        })))),
    };
    assert_eq!(
        c.block(vec![undo])[0].1,
        "contract.unknown_correction_target"
    );
}

fn acct_ref(org: &str) -> Option<fiscus_proto::pb::transfer::AccountRef> {
    acct(org, "edu")
}
