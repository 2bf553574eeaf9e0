//! The transfer-payment contract (version 3: lots under their own keys, ADR 0006). Plain-language rules are in
//! the README; the checks that need no state live in [`crate::rules`] (shared
//! with the exchange-adapter), the Budget Law deadlines in
//! [`crate::deadlines`], lots and bundles in [`crate::lots`]. Each method
//! below is one function.

use crate::calendar::{Day, day_number, day_of, end_of_day_ms, fiscal_year_of};
use crate::context::{Ctx, Declared};
use crate::deadlines::{self, ProgramTerms};
use crate::keys;
use crate::lots::{self, Landing, add, new_lot};
use crate::rejection::Rejection;
use crate::rules::{self, account_ref, tx_ref};
use crate::view::View;
use fiscus_common::codes;
use fiscus_proto::hash::TxId;
use fiscus_proto::pb::state::{
    Account, AllocationRecord, Corrections, LineageRecord, Lot, ProgramRecord,
};
use fiscus_proto::pb::transfer::{
    AccountRef, AcknowledgeArgs, AdjustArgs, AllocateArgs, AppropriateArgs, DisburseArgs,
    RecoverArgs, TransferCall, transfer_call::Method,
};
use fiscus_proto::pb::types::{ContractEvent, OrgLevel, TxStatus};

pub use crate::keys::{BUNDLE_FANOUT, MAX_BUNDLES_PER_CREDIT, bundle_id};

/// The version of the rules below, recorded in the consortium config.
pub const VERSION: u32 = 3;

fn method(call: &TransferCall) -> Result<&Method, Rejection> {
    call.method
        .as_ref()
        .ok_or_else(|| Rejection::malformed("the call names no method"))
}

/// The keys of a call, derived from its args before it runs.
pub fn declared_keys(call: &TransferCall, tx: &TxId) -> Result<Declared, Rejection> {
    let d = Declared::default();
    Ok(match method(call)? {
        Method::Appropriate(a) => {
            let (org, prog) = account_ref(&a.account, "account")?;
            d.write(keys::account(org, prog))
                .write(keys::program(prog))
                .fresh(keys::lineage(tx))
                .bundles(tx)
        }
        Method::Allocate(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            rules::org_code(&a.to_org_code, "to_org_code")?;
            d.read(keys::program(prog))
                .write(keys::account(org, prog))
                .write(keys::account(&a.to_org_code, prog))
                .fresh(keys::allocation(tx))
                .fresh(keys::lineage(tx))
                .bundles(tx)
        }
        Method::Acknowledge(a) => {
            account_ref(&a.account, "account")?;
            let alloc = tx_ref(&a.allocation_tx_id, "allocation_tx_id")?;
            d.write(keys::allocation(&alloc))
        }
        Method::Disburse(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            d.read(keys::program(prog))
                .write(keys::account(org, prog))
                .fresh(keys::lineage(tx))
        }
        Method::Recover(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            rules::org_code(&a.to_org_code, "to_org_code")?;
            d.read(keys::program(prog))
                .write(keys::account(org, prog))
                .write(keys::account(&a.to_org_code, prog))
                .fresh(keys::lineage(tx))
                .bundles(tx)
        }
        Method::Freeze(a) => {
            let (org, prog) = account_ref(&a.account, "account")?;
            d.write(keys::account(org, prog))
        }
        Method::Unfreeze(a) => {
            let (org, prog) = account_ref(&a.account, "account")?;
            d.write(keys::account(org, prog))
        }
        Method::Adjust(a) => {
            let (fo, fp) = account_ref(&a.from, "from")?;
            let (to, tp) = account_ref(&a.to, "to")?;
            let corrected = tx_ref(&a.corrects_tx_id, "corrects_tx_id")?;
            d.read(keys::program(fp))
                .read(keys::lineage(&corrected))
                .write(keys::account(fo, fp))
                .write(keys::account(to, tp))
                .write(keys::corrections(&corrected))
                .fresh(keys::lineage(tx))
                .bundles(tx)
        }
    })
}

/// Runs one call against its view. On `Err`, nothing it wrote is kept.
pub(crate) fn execute(
    call: &TransferCall,
    ctx: &Ctx<'_>,
    view: &mut View<'_>,
) -> Result<Vec<ContractEvent>, Rejection> {
    rules::check_call(
        call,
        ctx.signer_orgs,
        ctx.orgs,
        Some(fiscal_year_of(ctx.now_ms)),
    )?;
    let mut events = Vec::new();
    match method(call)? {
        Method::Appropriate(a) => appropriate(a, ctx, view)?,
        Method::Allocate(a) => allocate(a, ctx, view, &mut events)?,
        Method::Acknowledge(a) => acknowledge(a, ctx, view, &mut events)?,
        Method::Disburse(a) => disburse(a, ctx, view)?,
        Method::Recover(a) => recover(a, ctx, view)?,
        Method::Freeze(a) => set_frozen(view, &a.account, true)?,
        Method::Unfreeze(a) => set_frozen(view, &a.account, false)?,
        Method::Adjust(a) => adjust(a, ctx, view)?,
    }
    Ok(events)
}

fn load_program(view: &View<'_>, prog: &str) -> Result<ProgramRecord, Rejection> {
    view.get::<ProgramRecord>(&keys::program(prog))?
        .ok_or_else(|| {
            Rejection::not_found(
                codes::contract::UNKNOWN_PROGRAM,
                format!("program {prog} has no appropriation"),
            )
        })
}

/// Whether a program's funds are central funds (its owner is the MOF).
fn is_central(ctx: &Ctx<'_>, program: &ProgramRecord) -> bool {
    ctx.orgs.level(&program.owner_org) == Some(OrgLevel::Central)
}

fn require_unfrozen(acct: &Account, org: &str, prog: &str) -> Result<(), Rejection> {
    if acct.frozen {
        return Err(Rejection::new(
            TxStatus::Frozen,
            codes::contract::FROZEN,
            format!("account {org}/{prog} is frozen"),
        ));
    }
    Ok(())
}

fn account(view: &View<'_>, org: &str, prog: &str) -> Result<(Vec<u8>, Account), Rejection> {
    let key = keys::account(org, prog);
    let acct = view.get::<Account>(&key)?.unwrap_or_default();
    Ok((key, acct))
}

/// One movement of funds, for its lineage record.
struct Flow<'a> {
    kind: &'a str,
    from_org: &'a str,
    to: &'a str,
    prog: &'a str,
    amount: i64,
}

impl Flow<'_> {
    fn lineage(self, sources: Vec<Lot>, document: &str, now: i64) -> LineageRecord {
        LineageRecord {
            kind: self.kind.to_owned(),
            from_org: self.from_org.to_owned(),
            to: self.to.to_owned(),
            program_id: self.prog.to_owned(),
            amount_fen: self.amount,
            sources,
            document: document.to_owned(),
            at_ms: now,
            ..LineageRecord::default()
        }
    }
}

/// appropriate: only the program's owner creates funds in it. The org that
/// creates a program by its first appropriation owns it.
fn appropriate(a: &AppropriateArgs, ctx: &Ctx<'_>, view: &mut View<'_>) -> Result<(), Rejection> {
    let (org, prog) = account_ref(&a.account, "account")?;
    match (view.get::<ProgramRecord>(&keys::program(prog))?, &a.program) {
        (Some(existing), given) => {
            if given.is_some() && existing.program.as_ref() != given.as_ref() {
                return Err(Rejection::new(
                    TxStatus::InvalidArgument,
                    codes::contract::PROGRAM_MISMATCH,
                    format!("program {prog} exists with other details"),
                ));
            }
            if existing.owner_org != org {
                return Err(Rejection::new(
                    TxStatus::Unauthorized,
                    codes::contract::NOT_PROGRAM_OWNER,
                    format!(
                        "program {prog} belongs to {}: only its owner appropriates into it",
                        existing.owner_org
                    ),
                ));
            }
        }
        // The program's details were checked with the call (rules::program).
        (None, Some(p)) => view.put(
            &keys::program(prog),
            &ProgramRecord {
                program: Some(p.clone()),
                owner_org: org.to_owned(),
            },
        )?,
        (None, None) => {
            return Err(Rejection::not_found(
                codes::contract::UNKNOWN_PROGRAM,
                format!("program {prog} is new: give its details"),
            ));
        }
    }
    let (key, mut acct) = account(view, org, prog)?;
    let (tx, now, amount) = (ctx.tx_id, ctx.now_ms, a.amount_fen);
    acct.appropriated_fen = add(acct.appropriated_fen, amount)?;
    let lot = new_lot(&tx, amount, now, 0);
    lots::credit(&mut acct, lot, &Landing { tx, org, prog, now }, view)?;
    view.put(&key, &acct)?;
    view.put(
        &keys::lineage(&tx),
        &Flow {
            kind: "appropriate",
            from_org: org,
            to: org,
            prog,
            amount,
        }
        .lineage(Vec::new(), &a.document, now),
    )
}

/// allocate: to a child (any descendant for direct funds), judged against
/// Budget Law art. 52; lateness is recorded, not blocked.
fn allocate(
    a: &AllocateArgs,
    ctx: &Ctx<'_>,
    view: &mut View<'_>,
    events: &mut Vec<ContractEvent>,
) -> Result<(), Rejection> {
    let (org, prog) = account_ref(&a.from, "from")?;
    let to_org = a.to_org_code.as_str();
    // `rules::check_call` established that both orgs move money and that the
    // receiver lies below the payer; a child is required unless the program
    // is direct funds (直达资金), which only the program record says.
    let level = rules::level(ctx.orgs, org)?;
    let program = load_program(view, prog)?;
    let direct = program.program.as_ref().is_some_and(|p| p.direct);
    let to_level = if direct {
        rules::level(ctx.orgs, to_org)?
    } else {
        rules::allocation_target(ctx.orgs, org, to_org, false)?
    };
    let (tx, now, amount) = (ctx.tx_id, ctx.now_ms, a.amount_fen);
    let (from_key, mut from) = account(view, org, prog)?;
    require_unfrozen(&from, org, prog)?;
    let taken = lots::take(view, org, prog, &mut from, amount)?;
    from.allocated_out_fen = add(from.allocated_out_fen, amount)?;
    let terms = ProgramTerms::of(&program, ctx.orgs);
    let deadline = deadlines::strictest(&taken, org, level, &terms, ctx.calendar);
    let late = deadline.is_some_and(|d| d.is_late_at(now));
    let central = is_central(ctx, &program);
    // Central funds' art. 52 para. 3 window opens when they first reach a
    // local level and stays open for the levels below.
    let window = lots::window_lag(central, level, to_level, &taken, now);
    let (to_key, mut to) = account(view, to_org, prog)?;
    to.received_fen = add(to.received_fen, amount)?;
    let landing = Landing {
        tx,
        org: to_org,
        prog,
        now,
    };
    lots::credit(&mut to, new_lot(&tx, amount, now, window), &landing, view)?;
    view.put(&from_key, &from)?;
    view.put(&to_key, &to)?;
    let ack_due = ctx
        .calendar
        .period_end(day_of(now), ctx.calendar.acknowledge_days);
    view.put(
        &keys::allocation(&tx),
        &AllocationRecord {
            from_org: org.to_owned(),
            to_org: to_org.to_owned(),
            program_id: prog.to_owned(),
            amount_fen: amount,
            allocated_at_ms: now,
            due_at_ms: deadline.map(|d| d.due_at_ms()).unwrap_or(0),
            late,
            acknowledged: false,
            acknowledged_at_ms: 0,
            document: a.document.clone(),
            rule: deadline.map_or(0, |d| d.rule as i32),
            clock_basis: deadline.map_or(0, |d| d.basis as i32),
            clock_start_day: deadline.map_or(0, |d| day_number(d.start)),
            acknowledge_due_day: day_number(ack_due),
            acknowledged_late: false,
            external_id: a.external_id.clone(),
        },
    )?;
    let mut record = Flow {
        kind: "allocate",
        from_org: org,
        to: to_org,
        prog,
        amount,
    }
    .lineage(taken, &a.document, now);
    record.external_id = a.external_id.clone();
    view.put(&keys::lineage(&tx), &record)?;
    if late {
        let due = deadline.map(|d| d.due_at_ms()).unwrap_or(0);
        events.push(ContractEvent {
            name: "deadline.late".into(),
            data: due.to_be_bytes().to_vec(),
        });
    }
    Ok(())
}

/// acknowledge: the receiver confirms an allocation. The art. 52 clock ran
/// from receipt already; a late acknowledgement is itself recorded.
fn acknowledge(
    a: &AcknowledgeArgs,
    ctx: &Ctx<'_>,
    view: &mut View<'_>,
    events: &mut Vec<ContractEvent>,
) -> Result<(), Rejection> {
    let (org, prog) = account_ref(&a.account, "account")?;
    let alloc_id = tx_ref(&a.allocation_tx_id, "allocation_tx_id")?;
    let key = keys::allocation(&alloc_id);
    let mut rec = view.get::<AllocationRecord>(&key)?.ok_or_else(|| {
        Rejection::not_found(
            codes::contract::UNKNOWN_ALLOCATION,
            format!("no allocation {alloc_id}"),
        )
    })?;
    if rec.to_org != org || rec.program_id != prog {
        return Err(Rejection::malformed(
            "the account is not the allocation's receiving account",
        ));
    }
    if rec.acknowledged {
        return Err(Rejection::new(
            TxStatus::Conflict,
            codes::contract::ALREADY_ACKNOWLEDGED,
            format!("allocation {alloc_id} was acknowledged"),
        ));
    }
    rec.acknowledged = true;
    rec.acknowledged_at_ms = ctx.now_ms;
    rec.acknowledged_late =
        rec.acknowledge_due_day > 0 && day_of(ctx.now_ms) > Day::from(rec.acknowledge_due_day);
    if rec.acknowledged_late {
        events.push(ContractEvent {
            name: "deadline.acknowledged_late".into(),
            data: end_of_day_ms(Day::from(rec.acknowledge_due_day))
                .to_be_bytes()
                .to_vec(),
        });
    }
    view.put(&key, &rec)
}

/// disburse: pay a final recipient; the recipient's name and the economic
/// classification code stay in the lineage record.
fn disburse(a: &DisburseArgs, ctx: &Ctx<'_>, view: &mut View<'_>) -> Result<(), Rejection> {
    let (org, prog) = account_ref(&a.from, "from")?;
    let recipient = rules::recipient(&a.recipient)?;
    load_program(view, prog)?;
    let (key, mut acct) = account(view, org, prog)?;
    require_unfrozen(&acct, org, prog)?;
    let taken = lots::take(view, org, prog, &mut acct, a.amount_fen)?;
    acct.disbursed_fen = add(acct.disbursed_fen, a.amount_fen)?;
    view.put(&key, &acct)?;
    let mut record = Flow {
        kind: "disburse",
        from_org: org,
        to: &recipient,
        prog,
        amount: a.amount_fen,
    }
    .lineage(taken, &a.purpose, ctx.now_ms);
    record.recipient_name = a
        .recipient
        .as_ref()
        .map(|r| r.name.clone())
        .unwrap_or_default();
    record.economic_code = a.economic_code.clone();
    record.external_id = a.external_id.clone();
    view.put(&keys::lineage(&ctx.tx_id), &record)
}

/// recover: return funds to an org above, never above the program's owner.
/// Recovered funds carry no art. 52 deadline where they land (nothing obliges
/// passing them down again); central funds keep their window, so a recovery
/// and a re-allocation never restart the 30 days.
fn recover(a: &RecoverArgs, ctx: &Ctx<'_>, view: &mut View<'_>) -> Result<(), Rejection> {
    let (org, prog) = account_ref(&a.from, "from")?;
    let to_org = a.to_org_code.as_str();
    let to_level = rules::recovery_target(ctx.orgs, org, to_org)?;
    let from_level = rules::level(ctx.orgs, org)?;
    let program = load_program(view, prog)?;
    rules::recovery_within_program(ctx.orgs, &program.owner_org, to_org)?;
    let (tx, now, amount) = (ctx.tx_id, ctx.now_ms, a.amount_fen);
    let (from_key, mut from) = account(view, org, prog)?;
    require_unfrozen(&from, org, prog)?;
    let taken = lots::take(view, org, prog, &mut from, amount)?;
    from.recovered_out_fen = add(from.recovered_out_fen, amount)?;
    let (to_key, mut to) = account(view, to_org, prog)?;
    to.recovered_in_fen = add(to.recovered_in_fen, amount)?;
    let central = is_central(ctx, &program);
    let window = lots::window_lag(central, from_level, to_level, &taken, now);
    let mut lot = new_lot(&tx, amount, now, window);
    lot.recovered = true;
    let landing = Landing {
        tx,
        org: to_org,
        prog,
        now,
    };
    lots::credit(&mut to, lot, &landing, view)?;
    view.put(&from_key, &from)?;
    view.put(&to_key, &to)?;
    view.put(
        &keys::lineage(&tx),
        &Flow {
            kind: "recover",
            from_org: org,
            to: to_org,
            prog,
            amount,
        }
        .lineage(taken, &a.reason, now),
    )
}

/// adjust: a correction signed by both orgs that reverses (part of) an
/// earlier allocation or recovery between them: funds go back
/// from its receiver to its sender, never more than it moved. It links to the
/// transaction it corrects; that record stays as it was.
fn adjust(a: &AdjustArgs, ctx: &Ctx<'_>, view: &mut View<'_>) -> Result<(), Rejection> {
    let (fo, fp) = account_ref(&a.from, "from")?;
    let (to_org, tp) = account_ref(&a.to, "to")?;
    let corrected = tx_ref(&a.corrects_tx_id, "corrects_tx_id")?;
    let program = load_program(view, fp)?;
    let original = view
        .get::<LineageRecord>(&keys::lineage(&corrected))?
        // Not an adjustment: undoing a correction would send funds forward
        // again without an art. 52 judgement; that takes a new allocation.
        .filter(|l| matches!(l.kind.as_str(), "allocate" | "recover"))
        .ok_or_else(|| {
            Rejection::not_found(
                codes::contract::UNKNOWN_CORRECTION_TARGET,
                format!("{corrected} is not an allocation or a recovery"),
            )
        })?;
    if original.program_id != fp || original.to != fo || original.from_org != to_org {
        return Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::NOT_A_REVERSAL,
            format!(
                "an adjustment of {corrected} moves {fp} funds from {} back to {}",
                original.to, original.from_org
            ),
        ));
    }
    let mut done = view
        .get::<Corrections>(&keys::corrections(&corrected))?
        .unwrap_or_default();
    let after = add(done.amount_fen, a.amount_fen)?;
    if after > original.amount_fen {
        return Err(Rejection::new(
            TxStatus::InvalidArgument,
            codes::contract::OVER_CORRECTION,
            format!(
                "{corrected} moved {} fen and {} fen of it are corrected already",
                original.amount_fen, done.amount_fen
            ),
        ));
    }
    done.amount_fen = after;
    done.adjust_tx_ids.push(ctx.tx_id.to_vec());
    let (tx, now, amount) = (ctx.tx_id, ctx.now_ms, a.amount_fen);
    let (from_key, mut from) = account(view, fo, fp)?;
    require_unfrozen(&from, fo, fp)?;
    let taken = lots::take(view, fo, fp, &mut from, amount)?;
    from.allocated_out_fen = add(from.allocated_out_fen, amount)?;
    let (to_key, mut to) = account(view, to_org, tp)?;
    to.received_fen = add(to.received_fen, amount)?;
    let central = is_central(ctx, &program);
    let (from_level, to_level) = (rules::level(ctx.orgs, fo)?, rules::level(ctx.orgs, to_org)?);
    let lot = new_lot(
        &tx,
        amount,
        now,
        lots::window_lag(central, from_level, to_level, &taken, now),
    );
    let landing = Landing {
        tx,
        org: to_org,
        prog: tp,
        now,
    };
    lots::credit(&mut to, lot, &landing, view)?;
    view.put(&from_key, &from)?;
    view.put(&to_key, &to)?;
    let mut record = Flow {
        kind: "adjust",
        from_org: fo,
        to: to_org,
        prog: fp,
        amount,
    }
    .lineage(taken, &a.reason, now);
    record.corrects_tx_id = corrected.to_vec();
    view.put(&keys::lineage(&tx), &record)?;
    view.put(&keys::corrections(&corrected), &done)
}

/// freeze / unfreeze: a supervisor's act (checked with the call).
fn set_frozen(
    view: &mut View<'_>,
    account: &Option<AccountRef>,
    frozen: bool,
) -> Result<(), Rejection> {
    let (org, prog) = account_ref(account, "account")?;
    let key = keys::account(org, prog);
    let mut acct = view.get::<Account>(&key)?.ok_or_else(|| {
        Rejection::not_found(
            codes::contract::UNKNOWN_ACCOUNT,
            format!("account {org}/{prog} does not exist"),
        )
    })?;
    if acct.frozen == frozen {
        return Err(Rejection::new(
            TxStatus::Conflict,
            codes::contract::FROZEN_STATE,
            format!(
                "account {org}/{prog} is already {}",
                if frozen { "frozen" } else { "unfrozen" }
            ),
        ));
    }
    acct.frozen = frozen;
    view.put(&key, &acct)
}
