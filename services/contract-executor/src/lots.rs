//! An account's funds as lots, spent first-in, first-out, and folded into
//! bundles so that an account's lot list and a trace's depth stay small
//! (ADR 0004).

use crate::calendar::day_of;
use crate::keys;
use crate::keys::{BUNDLE_FANOUT, MAX_BUNDLES_PER_CREDIT, bundle_id};
use crate::rejection::Rejection;
use crate::view::View;
use fiscus_proto::hash::TxId;
use fiscus_proto::pb::state::{Account, LineageRecord, Lot};
use fiscus_proto::pb::types::OrgLevel;

pub(crate) fn add(a: i64, b: i64) -> Result<i64, Rejection> {
    a.checked_add(b)
        .ok_or_else(|| Rejection::bad_amount("amount overflows"))
}

/// Takes `amount` from the account's lots, oldest first: the closed lots
/// under their own keys (deleting those it uses up, rewriting the one it
/// splits), then the open lots in the account. A debit touches only the lots
/// it takes (ADR 0006).
pub(crate) fn take(
    view: &mut View<'_>,
    org: &str,
    prog: &str,
    acct: &mut Account,
    amount: i64,
) -> Result<Vec<Lot>, Rejection> {
    if acct.balance_fen < amount {
        return Err(Rejection::insufficient(acct.balance_fen, amount));
    }
    let mut need = amount;
    let mut taken = Vec::new();
    while need > 0 && acct.lot_head < acct.lot_tail {
        let key = keys::lot(org, prog, acct.lot_head);
        let mut lot: Lot = view
            .get(&key)?
            .ok_or_else(|| Rejection::malformed("an account lot is missing"))?;
        taken.push(take_part(&mut lot, &mut need));
        if lot.amount_fen == 0 {
            view.delete(&key)?;
            acct.lot_head += 1;
        } else {
            view.put(&key, &lot)?;
        }
    }
    let mut keep = Vec::new();
    for mut lot in std::mem::take(&mut acct.lots) {
        if need > 0 {
            taken.push(take_part(&mut lot, &mut need));
            if lot.amount_fen == 0 {
                continue;
            }
        }
        keep.push(lot);
    }
    if need != 0 {
        // Balance and lots disagree: stored state is corrupt. Refuse rather than mint.
        return Err(Rejection::malformed(
            "account lots do not cover its balance",
        ));
    }
    acct.lots = keep;
    acct.balance_fen -= amount;
    Ok(taken)
}

/// Takes up to `need` from `lot`: the part taken (the whole lot, or a split
/// of it), leaving the rest in `lot` (0 when used up) and in `need`.
fn take_part(lot: &mut Lot, need: &mut i64) -> Lot {
    let mut part = lot.clone();
    part.amount_fen = lot.amount_fen.min(*need);
    lot.amount_fen -= part.amount_fen;
    *need -= part.amount_fen;
    part
}

/// A lot created by transaction `tx`, arriving now. `window_lag_days` places
/// the art. 52 para. 3 window of central funds (see [`window_lag`]). Whether
/// the funds are central is the program's (every lot of an account belongs to
/// its one program), so lots do not repeat it.
pub(crate) fn new_lot(tx: &TxId, amount: i64, now: i64, window_lag_days: u32) -> Lot {
    Lot {
        source_tx_id: tx.to_vec(),
        amount_fen: amount,
        received_at_ms: now,
        window_lag_days,
        ..Lot::default()
    }
}

/// The CST day a lot's art. 52 para. 3 window opened.
pub fn window_day(l: &Lot) -> i64 {
    day_of(l.received_at_ms) - i64::from(l.window_lag_days)
}

/// The window of central funds moving from a holder at `from_level` to one at
/// `to_level`, arriving `now`, as the new lot's lag in days: 0 where the
/// window opens on this receipt (funds the MOF sends down) or none is needed
/// (a county's: art. 52 ends there); otherwise the days back to the earliest
/// window of the lots `taken`, so a city's onward allocation stays inside the
/// province's window.
pub(crate) fn window_lag(
    central: bool,
    from_level: OrgLevel,
    to_level: OrgLevel,
    taken: &[Lot],
    now: i64,
) -> u32 {
    if !central
        || from_level == OrgLevel::Central
        || to_level != OrgLevel::Provincial && to_level != OrgLevel::Municipal
    {
        return 0;
    }
    taken
        .iter()
        .map(window_day)
        .min()
        .map_or(0, |w| u32::try_from(day_of(now) - w).unwrap_or(0))
}

/// Lots may share a bundle only if every Budget Law clock reads them alike:
/// the same arrival day, the same art. 52 para. 3 window day, the same way in
/// (recovered or not). (Acknowledgement moves no clock in transfer v2, so
/// unacknowledged lots bundle like any other.)
fn lot_class(l: &Lot) -> (i64, u32, bool) {
    (day_of(l.received_at_ms), l.window_lag_days, l.recovered)
}

/// Where a credit lands, for the bundle records it may write.
pub(crate) struct Landing<'a> {
    pub tx: TxId,
    pub org: &'a str,
    pub prog: &'a str,
    pub now: i64,
}

/// Adds `lot` to the account's open lots (closing them first if it is of
/// another day), then folds the newest lots: while the last 16 lots share a
/// level and a class, they become one bundle lot one level up, whose lineage
/// record lists them. The open lots stay few (at most 15 per level of one
/// day's bundles) and a trace through bundles is logarithmic in the number of
/// lots; a credit writes at most the lots it closes (ADR 0006).
pub(crate) fn credit(
    acct: &mut Account,
    lot: Lot,
    at: &Landing<'_>,
    view: &mut View<'_>,
) -> Result<(), Rejection> {
    acct.balance_fen = add(acct.balance_fen, lot.amount_fen)?;
    // A lot of another day (class): the open lots can never fold again (a
    // fold looks at the newest 16 and this one stays newest until every
    // older lot is spent), so they close, each under its own key.
    if acct
        .lots
        .last()
        .is_some_and(|l| lot_class(l) != lot_class(&lot))
    {
        for closed in std::mem::take(&mut acct.lots) {
            view.put(&keys::lot(at.org, at.prog, acct.lot_tail), &closed)?;
            acct.lot_tail += 1;
        }
    }
    acct.lots.push(lot);
    for i in 0..MAX_BUNDLES_PER_CREDIT {
        let n = acct.lots.len();
        let Some(start) = n.checked_sub(BUNDLE_FANOUT) else {
            break;
        };
        let level = acct.lots[start].level;
        let class = lot_class(&acct.lots[start]);
        if !acct.lots[start..]
            .iter()
            .all(|l| l.level == level && lot_class(l) == class)
        {
            break;
        }
        let parts: Vec<Lot> = acct.lots.drain(start..).collect();
        let mut amount = 0i64;
        for p in &parts {
            amount = add(amount, p.amount_fen)?;
        }
        let id = bundle_id(&at.tx, i);
        let bundle = Lot {
            source_tx_id: id.to_vec(),
            amount_fen: amount,
            received_at_ms: parts
                .iter()
                .map(|p| p.received_at_ms)
                .min()
                .unwrap_or(at.now),
            acknowledged_at_ms: 0,
            from_central: false,
            level: level + 1,
            // Same receipt day and lag in one class: the same window day.
            window_lag_days: parts[0].window_lag_days,
            recovered: parts[0].recovered,
        };
        view.put(
            &keys::lineage(&id),
            &LineageRecord {
                kind: "bundle".into(),
                from_org: at.org.to_owned(),
                to: at.org.to_owned(),
                program_id: at.prog.to_owned(),
                amount_fen: amount,
                sources: parts,
                at_ms: at.now,
                ..LineageRecord::default()
            },
        )?;
        acct.lots.push(bundle);
    }
    Ok(())
}
