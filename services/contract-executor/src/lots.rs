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

/// Takes `amount` from the account's lots, oldest first: deletes the lots it
/// uses up and rewrites the one it splits, so a debit touches only the lots
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
    while need > 0 {
        if acct.lot_head >= acct.lot_tail {
            // Balance and lots disagree: stored state is corrupt. Refuse rather than mint.
            return Err(Rejection::malformed(
                "account lots do not cover its balance",
            ));
        }
        let key = keys::lot(org, prog, acct.lot_head);
        let mut lot: Lot = view
            .get(&key)?
            .ok_or_else(|| Rejection::malformed("an account lot is missing"))?;
        if lot.amount_fen <= need {
            need -= lot.amount_fen;
            view.delete(&key)?;
            acct.lot_head += 1;
            taken.push(lot);
        } else {
            let mut part = lot.clone();
            part.amount_fen = need;
            lot.amount_fen -= need;
            need = 0;
            view.put(&key, &lot)?;
            taken.push(part);
        }
    }
    acct.balance_fen -= amount;
    Ok(taken)
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

/// Adds `lot` to the account at its tail, then folds the newest lots: while
/// the last 16 lots share a level and a class, they become one bundle lot
/// one level up (in the first of their places), whose lineage record lists
/// them. A trace through bundles is logarithmic in the number of lots, and a
/// credit touches only the lots at the tail (ADR 0006).
pub(crate) fn credit(
    acct: &mut Account,
    lot: Lot,
    at: &Landing<'_>,
    view: &mut View<'_>,
) -> Result<(), Rejection> {
    acct.balance_fen = add(acct.balance_fen, lot.amount_fen)?;
    let mut last = lot;
    view.put(&keys::lot(at.org, at.prog, acct.lot_tail), &last)?;
    acct.lot_tail += 1;
    for i in 0..MAX_BUNDLES_PER_CREDIT {
        let fanout = BUNDLE_FANOUT as u64;
        if acct.lot_tail - acct.lot_head < fanout {
            break;
        }
        let start = acct.lot_tail - fanout;
        // Newest first, stopping at the first lot that differs from the last.
        let (level, class) = (last.level, lot_class(&last));
        let mut parts = vec![last.clone()];
        for seq in (start..acct.lot_tail - 1).rev() {
            let l: Lot = view
                .get(&keys::lot(at.org, at.prog, seq))?
                .ok_or_else(|| Rejection::malformed("an account lot is missing"))?;
            if l.level != level || lot_class(&l) != class {
                break;
            }
            parts.push(l);
        }
        if parts.len() < BUNDLE_FANOUT {
            break;
        }
        parts.reverse();
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
        for seq in start + 1..acct.lot_tail {
            view.delete(&keys::lot(at.org, at.prog, seq))?;
        }
        view.put(&keys::lot(at.org, at.prog, start), &bundle)?;
        acct.lot_tail = start + 1;
        last = bundle;
    }
    Ok(())
}
