//! An account's funds as lots, spent first-in, first-out, and folded into
//! bundles so that an account's lot list and a trace's depth stay small
//! (ADR 0004).

use crate::calendar::day_of;
use crate::keys;
use crate::rejection::Rejection;
use crate::view::View;
use fiscus_proto::hash::TxId;
use fiscus_proto::pb::state::{Account, LineageRecord, Lot};
use fiscus_proto::pb::types::OrgLevel;

/// Consecutive same-level, same-class lots folded into one bundle (ADR 0004).
pub const BUNDLE_FANOUT: usize = 16;
/// Bundles one credit may create: a cascade through this many levels covers
/// 16^8 lots, far beyond any account's life.
pub const MAX_BUNDLES_PER_CREDIT: u8 = 8;

/// The id of the `i`-th bundle that transaction `tx` creates.
pub fn bundle_id(tx: &TxId, i: u8) -> TxId {
    fiscus_proto::hash::sha256(&[b"fiscus.bundle/".as_slice(), &tx.0, &[i]].concat())
}

pub(crate) fn add(a: i64, b: i64) -> Result<i64, Rejection> {
    a.checked_add(b)
        .ok_or_else(|| Rejection::bad_amount("amount overflows"))
}

/// Takes `amount` from the account's lots, oldest first.
pub(crate) fn take(acct: &mut Account, amount: i64) -> Result<Vec<Lot>, Rejection> {
    if acct.balance_fen < amount {
        return Err(Rejection::insufficient(acct.balance_fen, amount));
    }
    let mut need = amount;
    let mut taken = Vec::new();
    let mut keep = Vec::new();
    for mut lot in std::mem::take(&mut acct.lots) {
        if need == 0 {
            keep.push(lot);
        } else if lot.amount_fen <= need {
            need -= lot.amount_fen;
            taken.push(lot);
        } else {
            let mut part = lot.clone();
            part.amount_fen = need;
            lot.amount_fen -= need;
            need = 0;
            taken.push(part);
            keep.push(lot);
        }
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

/// A lot created by transaction `tx`, arriving now. `window_start_ms` is the
/// art. 52 para. 3 window of central funds (0 for local programs).
pub(crate) fn new_lot(
    tx: &TxId,
    amount: i64,
    now: i64,
    from_central: bool,
    window_start_ms: i64,
) -> Lot {
    Lot {
        source_tx_id: tx.to_vec(),
        amount_fen: amount,
        received_at_ms: now,
        acknowledged_at_ms: 0,
        from_central,
        level: 0,
        window_start_ms,
        recovered: false,
    }
}

/// Where the art. 52 para. 3 window of central funds moving from a holder at
/// `from_level` to one at `to_level` starts, for the new lot: 0 means "at the
/// lot's own receipt" (funds the MOF sends down open their window where they
/// land, and a county's funds need none: art. 52 ends there), otherwise the
/// earliest window of the lots `taken`, so a city's onward allocation stays
/// inside the province's window. Storing 0 rather than the receipt again
/// keeps every lot a province holds a few bytes shorter.
pub(crate) fn window_for(
    central: bool,
    from_level: OrgLevel,
    to_level: OrgLevel,
    taken: &[Lot],
) -> i64 {
    if !central
        || from_level == OrgLevel::Central
        || to_level != OrgLevel::Provincial && to_level != OrgLevel::Municipal
    {
        return 0;
    }
    taken
        .iter()
        .filter(|l| l.from_central)
        .map(|l| match l.window_start_ms {
            0 => l.received_at_ms,
            w => w,
        })
        .min()
        .unwrap_or(0)
}

/// The earliest window among `lots` (0 when none has one).
pub(crate) fn earliest_window(lots: &[Lot]) -> i64 {
    lots.iter()
        .map(|l| l.window_start_ms)
        .filter(|w| *w > 0)
        .min()
        .unwrap_or(0)
}

/// Lots may share a bundle only if every Budget Law clock reads them alike:
/// the same arrival day, the same art. 52 para. 3 window day, the same origin.
/// (Acknowledgement moves no clock in transfer v2, so unacknowledged lots
/// bundle like any other.)
fn lot_class(l: &Lot) -> (i64, i64, bool, bool) {
    (
        day_of(l.received_at_ms),
        day_of(l.window_start_ms),
        l.from_central,
        l.recovered,
    )
}

/// Where a credit lands, for the bundle records it may write.
pub(crate) struct Landing<'a> {
    pub tx: TxId,
    pub org: &'a str,
    pub prog: &'a str,
    pub now: i64,
}

/// Adds `lot` to the account, then folds the newest lots: while the last
/// 16 lots share a level and a class, they become one bundle lot one level up,
/// whose lineage record lists them. An account's lot list stays short and a
/// trace through bundles is logarithmic in the number of lots.
pub(crate) fn credit(
    acct: &mut Account,
    lot: Lot,
    at: &Landing<'_>,
    view: &mut View<'_>,
) -> Result<(), Rejection> {
    acct.balance_fen = add(acct.balance_fen, lot.amount_fen)?;
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
            from_central: parts[0].from_central,
            level: level + 1,
            window_start_ms: earliest_window(&parts),
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
