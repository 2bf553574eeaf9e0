//! The transfer-payment contract. Plain-language rules are in the README;
//! every rule below is enforced where it is written.

use crate::DAY_MS;
use crate::keys;
use crate::orgs::Orgs;
use crate::rejection::Rejection;
use crate::view::View;
use fiscus_proto::hash::{Hash32, TxId};
use fiscus_proto::pb::state::{Account, AllocationRecord, LineageRecord, Lot, ProgramRecord};
use fiscus_proto::pb::transfer::{
    AccountRef, ProgramKind, TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{ContractEvent, OrgLevel, TxStatus};
use std::collections::BTreeSet;

/// The keys a call reads and the keys it may write, from its args alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    pub reads: BTreeSet<Vec<u8>>,
    pub writes: BTreeSet<Vec<u8>>,
    /// Keys derived from this transaction's own id (its lineage, allocation
    /// and bundle records): written at most once and absent before, since a tx
    /// id never repeats. They are not read from the store and conflict with
    /// nothing.
    pub fresh: BTreeSet<Vec<u8>>,
    /// The tx whose bundle records (`lineage/<bundle_id(tx, i)>`, i below
    /// [`MAX_BUNDLES_PER_CREDIT`]) the call may write; fresh like the above,
    /// and only computed when a bundle is actually written.
    pub bundles_of: Option<TxId>,
}

impl Declared {
    pub(crate) fn read(mut self, k: Vec<u8>) -> Self {
        self.reads.insert(k);
        self
    }
    pub(crate) fn write(mut self, k: Vec<u8>) -> Self {
        self.writes.insert(k);
        self
    }
    pub(crate) fn fresh(mut self, k: Vec<u8>) -> Self {
        self.fresh.insert(k);
        self
    }
    /// Every key, for the view's access check.
    pub fn all(&self) -> BTreeSet<Vec<u8>> {
        self.reads
            .iter()
            .chain(&self.writes)
            .chain(&self.fresh)
            .cloned()
            .collect()
    }
    /// The keys whose current values the ledger must send.
    pub fn to_read(&self) -> impl Iterator<Item = &Vec<u8>> {
        self.reads.iter().chain(&self.writes)
    }
    /// A credit may fold lots into bundles: up to this many bundle records.
    fn bundles(mut self, tx: &TxId) -> Self {
        self.bundles_of = Some(*tx);
        self
    }

    /// Whether `key` is one of this call's fresh keys (its own records).
    pub fn is_fresh(&self, key: &[u8]) -> bool {
        self.fresh.contains(key)
            || self.bundles_of.is_some_and(|tx| {
                key.starts_with(b"lineage/")
                    && (0..MAX_BUNDLES_PER_CREDIT).any(|i| keys::lineage(&bundle_id(&tx, i)) == key)
            })
    }

    /// Whether the call may write `key`.
    pub fn may_write(&self, key: &[u8]) -> bool {
        self.writes.contains(key) || self.is_fresh(key)
    }
}

/// Who signed and when, as the contract sees it.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub tx_id: TxId,
    pub signer_orgs: &'a BTreeSet<String>,
    /// The block timestamp: the only clock.
    pub now_ms: i64,
    /// The block number.
    pub height: u64,
    pub orgs: &'a Orgs,
}

const MAX_ID_LEN: usize = 64;
const MAX_TEXT_LEN: usize = 256;

fn account_ref<'a>(
    r: &'a Option<AccountRef>,
    field: &str,
) -> Result<(&'a str, &'a str), Rejection> {
    let r = r
        .as_ref()
        .ok_or_else(|| Rejection::malformed(format!("{field} is missing")))?;
    let org_ok = r.org_code.len() == 6 && r.org_code.bytes().all(|b| b.is_ascii_digit());
    if !org_ok {
        return Err(Rejection::malformed(format!(
            "{field}.org_code {:?} is not six digits",
            r.org_code
        )));
    }
    if r.program_id.is_empty() || r.program_id.len() > MAX_ID_LEN {
        return Err(Rejection::malformed(format!(
            "{field}.program_id must be 1..={MAX_ID_LEN} bytes"
        )));
    }
    Ok((&r.org_code, &r.program_id))
}

pub(crate) fn org_code(code: &str, field: &str) -> Result<(), Rejection> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Rejection::malformed(format!(
            "{field} {code:?} is not six digits"
        )))
    }
}

pub(crate) fn tx_ref(bytes: &[u8], field: &str) -> Result<TxId, Rejection> {
    Hash32::from_slice("tx id", bytes)
        .map_err(|_| Rejection::malformed(format!("{field} must be a 32-byte tx id")))
}

fn positive(amount: i64) -> Result<i64, Rejection> {
    if amount <= 0 {
        return Err(Rejection::bad_amount(format!(
            "amount must be positive, got {amount} fen"
        )));
    }
    Ok(amount)
}

pub(crate) fn text(s: &str, field: &str, required: bool) -> Result<(), Rejection> {
    if (required && s.is_empty()) || s.len() > MAX_TEXT_LEN {
        return Err(Rejection::malformed(format!(
            "{field} must be {}..={MAX_TEXT_LEN} bytes",
            u8::from(required)
        )));
    }
    Ok(())
}

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
            org_code(&a.to_org_code, "to_org_code")?;
            d.read(keys::program(prog))
                .write(keys::account(org, prog))
                .write(keys::account(&a.to_org_code, prog))
                .fresh(keys::allocation(tx))
                .fresh(keys::lineage(tx))
                .bundles(tx)
        }
        Method::Acknowledge(a) => {
            let (org, prog) = account_ref(&a.account, "account")?;
            let alloc = tx_ref(&a.allocation_tx_id, "allocation_tx_id")?;
            d.write(keys::allocation(&alloc))
                .write(keys::account(org, prog))
        }
        Method::Disburse(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            d.read(keys::program(prog))
                .write(keys::account(org, prog))
                .fresh(keys::lineage(tx))
        }
        Method::Recover(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            org_code(&a.to_org_code, "to_org_code")?;
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
            d.write(keys::account(fo, fp))
                .write(keys::account(to, tp))
                .fresh(keys::lineage(tx))
                .bundles(tx)
        }
    })
}

fn require_signer(ctx: &Ctx<'_>, org: &str) -> Result<(), Rejection> {
    if ctx.signer_orgs.contains(org) {
        Ok(())
    } else {
        Err(Rejection::not_owner(org))
    }
}

fn require_org(ctx: &Ctx<'_>, org: &str) -> Result<OrgLevel, Rejection> {
    ctx.orgs.level(org).ok_or_else(|| {
        Rejection::not_found(
            "contract.unknown_org",
            format!("org {org} is not in the registry"),
        )
    })
}

fn load_program(view: &View<'_>, prog: &str) -> Result<ProgramRecord, Rejection> {
    view.get::<ProgramRecord>(&keys::program(prog))?
        .ok_or_else(|| {
            Rejection::not_found(
                "contract.unknown_program",
                format!("program {prog} has no appropriation"),
            )
        })
}

fn program_kind(p: &ProgramRecord) -> ProgramKind {
    p.program
        .as_ref()
        .and_then(|p| ProgramKind::try_from(p.kind).ok())
        .unwrap_or(ProgramKind::Unspecified)
}

fn require_unfrozen(acct: &Account, org: &str, prog: &str) -> Result<(), Rejection> {
    if acct.frozen {
        return Err(Rejection::new(
            TxStatus::Frozen,
            "contract.frozen",
            format!("account {org}/{prog} is frozen"),
        ));
    }
    Ok(())
}

fn add(a: i64, b: i64) -> Result<i64, Rejection> {
    a.checked_add(b)
        .ok_or_else(|| Rejection::bad_amount("amount overflows"))
}

/// Takes `amount` from the account's lots, oldest first (ADR 0004).
fn take_lots(acct: &mut Account, amount: i64) -> Result<Vec<Lot>, Rejection> {
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

/// A lot created by transaction `tx`, arriving now.
fn new_lot(tx: &TxId, amount: i64, now: i64, acknowledged_at_ms: i64, from_central: bool) -> Lot {
    Lot {
        source_tx_id: tx.to_vec(),
        amount_fen: amount,
        received_at_ms: now,
        acknowledged_at_ms,
        from_central,
        level: 0,
    }
}

/// Consecutive same-level, same-class lots folded into one bundle (ADR 0004).
pub const BUNDLE_FANOUT: usize = 16;
/// Bundles one credit may create: a cascade through this many levels covers
/// 16^8 lots, far beyond any account's life.
pub const MAX_BUNDLES_PER_CREDIT: u8 = 8;

/// The id of the `i`-th bundle that transaction `tx` creates.
pub fn bundle_id(tx: &TxId, i: u8) -> TxId {
    fiscus_proto::hash::sha256(&[b"fiscus.bundle/".as_slice(), &tx.0, &[i]].concat())
}

/// Lots may share a bundle only if every Budget Law clock reads them alike:
/// the same arrival day, the same acknowledgement day where it matters
/// (central funds at a province), the same origin. A central lot not yet
/// acknowledged is never bundled: its acknowledgement still moves a deadline.
fn lot_class(l: &Lot) -> Option<(i64, i64, bool)> {
    if l.from_central && l.acknowledged_at_ms == 0 {
        return None;
    }
    let ack_day = if l.from_central {
        l.acknowledged_at_ms.div_euclid(DAY_MS)
    } else {
        0
    };
    Some((l.received_at_ms.div_euclid(DAY_MS), ack_day, l.from_central))
}

/// Where a credit lands, for the bundle records it may write.
struct Landing<'a> {
    tx: TxId,
    org: &'a str,
    prog: &'a str,
    now: i64,
}

/// Adds `lot` to the account, then folds the newest lots: while the last
/// 16 lots share a level and a class, they become one bundle lot one level up,
/// whose lineage record lists them. An account's lot list stays short and a
/// trace through bundles is logarithmic in the number of lots.
fn credit(
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
        if class.is_none()
            || !acct.lots[start..]
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
            acknowledged_at_ms: parts
                .iter()
                .map(|p| p.acknowledged_at_ms)
                .min()
                .unwrap_or(0),
            from_central: parts[0].from_central,
            level: level + 1,
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
                document: String::new(),
                at_ms: at.now,
            },
        )?;
        acct.lots.push(bundle);
    }
    Ok(())
}

/// Budget Law art. 52: when funds drawn from `lot` had to be passed on by `from_level`.
fn due_of(lot: &Lot, from_level: OrgLevel, kind: ProgramKind) -> i64 {
    let special = kind == ProgramKind::Special;
    match from_level {
        // Central to local: general 30 days, special 90 days.
        OrgLevel::Central => lot.received_at_ms + if special { 90 } else { 30 } * DAY_MS,
        // A province passes central funds on within 30 days of acknowledging them.
        OrgLevel::Provincial if lot.from_central => {
            let start = if lot.acknowledged_at_ms > 0 {
                lot.acknowledged_at_ms
            } else {
                lot.received_at_ms
            };
            start + 30 * DAY_MS
        }
        // Local to lower levels: general 30 days, special 60 days.
        _ => lot.received_at_ms + if special { 60 } else { 30 } * DAY_MS,
    }
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
        }
    }
}

/// Runs one call against its view. On `Err`, nothing it wrote is kept.
pub(crate) fn execute(
    call: &TransferCall,
    ctx: &Ctx<'_>,
    view: &mut View<'_>,
) -> Result<Vec<ContractEvent>, Rejection> {
    let tx = ctx.tx_id;
    let now = ctx.now_ms;
    let mut events = Vec::new();
    match method(call)? {
        Method::Appropriate(a) => {
            let (org, prog) = account_ref(&a.account, "account")?;
            let level = require_org(ctx, org)?;
            require_signer(ctx, org)?;
            let amount = positive(a.amount_fen)?;
            text(&a.document, "document", false)?;
            match (view.get::<ProgramRecord>(&keys::program(prog))?, &a.program) {
                (Some(existing), Some(given)) if existing.program.as_ref() != Some(given) => {
                    return Err(Rejection::new(
                        TxStatus::InvalidArgument,
                        "contract.program_mismatch",
                        format!("program {prog} exists with other details"),
                    ));
                }
                (Some(_), _) => {}
                (None, Some(p)) => {
                    if p.id != prog
                        || ProgramKind::try_from(p.kind).unwrap_or(ProgramKind::Unspecified)
                            == ProgramKind::Unspecified
                    {
                        return Err(Rejection::malformed(
                            "program must carry the account's program id and a kind",
                        ));
                    }
                    text(&p.name, "program.name", true)?;
                    view.put(
                        &keys::program(prog),
                        &ProgramRecord {
                            program: Some(p.clone()),
                            owner_org: org.to_owned(),
                        },
                    )?;
                }
                (None, None) => {
                    return Err(Rejection::not_found(
                        "contract.unknown_program",
                        format!("program {prog} is new: give its details"),
                    ));
                }
            }
            let key = keys::account(org, prog);
            let mut acct = view.get::<Account>(&key)?.unwrap_or_default();
            acct.appropriated_fen = add(acct.appropriated_fen, amount)?;
            credit(
                &mut acct,
                new_lot(&tx, amount, now, now, level == OrgLevel::Central),
                &Landing { tx, org, prog, now },
                view,
            )?;
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
            )?;
        }
        Method::Allocate(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            let from_level = require_org(ctx, org)?;
            require_org(ctx, &a.to_org_code)?;
            require_signer(ctx, org)?;
            let amount = positive(a.amount_fen)?;
            text(&a.document, "document", false)?;
            let program = load_program(view, prog)?;
            let kind = program_kind(&program);
            let allowed = if kind == ProgramKind::Direct {
                // Direct funds (直达资金) may go to any descendant.
                ctx.orgs.is_descendant(org, &a.to_org_code)
            } else {
                ctx.orgs.parent(&a.to_org_code) == Some(org)
            };
            if !allowed {
                return Err(Rejection::new(
                    TxStatus::InvalidArgument,
                    "contract.not_descendant",
                    format!(
                        "{} is not a {} of {org}",
                        a.to_org_code,
                        if kind == ProgramKind::Direct {
                            "descendant"
                        } else {
                            "child"
                        }
                    ),
                ));
            }
            let from_key = keys::account(org, prog);
            let mut from = view.get::<Account>(&from_key)?.unwrap_or_default();
            require_unfrozen(&from, org, prog)?;
            let taken = take_lots(&mut from, amount)?;
            from.allocated_out_fen = add(from.allocated_out_fen, amount)?;
            let due = taken
                .iter()
                .map(|l| due_of(l, from_level, kind))
                .min()
                .unwrap_or(0);
            let late = due > 0 && now > due;
            let to_key = keys::account(&a.to_org_code, prog);
            let mut to = view.get::<Account>(&to_key)?.unwrap_or_default();
            to.received_fen = add(to.received_fen, amount)?;
            credit(
                &mut to,
                new_lot(&tx, amount, now, 0, from_level == OrgLevel::Central),
                &Landing {
                    tx,
                    org: &a.to_org_code,
                    prog,
                    now,
                },
                view,
            )?;
            view.put(&from_key, &from)?;
            view.put(&to_key, &to)?;
            view.put(
                &keys::allocation(&tx),
                &AllocationRecord {
                    from_org: org.to_owned(),
                    to_org: a.to_org_code.clone(),
                    program_id: prog.to_owned(),
                    amount_fen: amount,
                    allocated_at_ms: now,
                    due_at_ms: due,
                    late,
                    acknowledged: false,
                    acknowledged_at_ms: 0,
                    document: a.document.clone(),
                },
            )?;
            view.put(
                &keys::lineage(&tx),
                &Flow {
                    kind: "allocate",
                    from_org: org,
                    to: &a.to_org_code,
                    prog,
                    amount,
                }
                .lineage(taken, &a.document, now),
            )?;
            if late {
                events.push(ContractEvent {
                    name: "deadline.late".into(),
                    data: due.to_be_bytes().to_vec(),
                });
            }
        }
        Method::Acknowledge(a) => {
            let (org, prog) = account_ref(&a.account, "account")?;
            let alloc_id = tx_ref(&a.allocation_tx_id, "allocation_tx_id")?;
            let mut rec = view
                .get::<AllocationRecord>(&keys::allocation(&alloc_id))?
                .ok_or_else(|| {
                    Rejection::not_found(
                        "contract.unknown_allocation",
                        format!("no allocation {alloc_id}"),
                    )
                })?;
            if rec.to_org != org || rec.program_id != prog {
                return Err(Rejection::malformed(
                    "the account is not the allocation's receiving account",
                ));
            }
            require_signer(ctx, org)?;
            if rec.acknowledged {
                return Err(Rejection::new(
                    TxStatus::Conflict,
                    "contract.already_acknowledged",
                    format!("allocation {alloc_id} was acknowledged"),
                ));
            }
            rec.acknowledged = true;
            rec.acknowledged_at_ms = now;
            let key = keys::account(org, prog);
            let mut acct = view.get::<Account>(&key)?.unwrap_or_default();
            for lot in &mut acct.lots {
                if lot.source_tx_id == alloc_id.0 {
                    lot.acknowledged_at_ms = now;
                }
            }
            view.put(&keys::allocation(&alloc_id), &rec)?;
            view.put(&key, &acct)?;
        }
        Method::Disburse(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            require_org(ctx, org)?;
            require_signer(ctx, org)?;
            let amount = positive(a.amount_fen)?;
            text(&a.purpose, "purpose", true)?;
            let econ_ok = (3..=7).contains(&a.economic_code.len())
                && a.economic_code.bytes().all(|b| b.is_ascii_digit());
            if !econ_ok {
                return Err(Rejection::malformed("economic_code must be 3 to 7 digits"));
            }
            let recipient = match a.recipient.as_ref().and_then(|r| r.id.as_ref()) {
                Some(recipient::Id::UnifiedSocialCreditCode(c))
                    if c.len() == 18 && c.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                {
                    c.clone()
                }
                Some(recipient::Id::PersonalIdHash(h)) if h.len() == 32 => hex::encode(h),
                _ => {
                    return Err(Rejection::malformed(
                        "recipient needs an 18-character unified social credit code or a 32-byte personal id hash",
                    ));
                }
            };
            load_program(view, prog)?;
            let key = keys::account(org, prog);
            let mut acct = view.get::<Account>(&key)?.unwrap_or_default();
            require_unfrozen(&acct, org, prog)?;
            let taken = take_lots(&mut acct, amount)?;
            acct.disbursed_fen = add(acct.disbursed_fen, amount)?;
            view.put(&key, &acct)?;
            view.put(
                &keys::lineage(&tx),
                &Flow {
                    kind: "disburse",
                    from_org: org,
                    to: &recipient,
                    prog,
                    amount,
                }
                .lineage(taken, &a.purpose, now),
            )?;
        }
        Method::Recover(a) => {
            let (org, prog) = account_ref(&a.from, "from")?;
            require_org(ctx, org)?;
            let to_level = require_org(ctx, &a.to_org_code)?;
            require_signer(ctx, org)?;
            let amount = positive(a.amount_fen)?;
            text(&a.reason, "reason", true)?;
            load_program(view, prog)?;
            if !ctx.orgs.is_descendant(&a.to_org_code, org) {
                return Err(Rejection::new(
                    TxStatus::InvalidArgument,
                    "contract.not_ancestor",
                    format!("{} is not above {org}", a.to_org_code),
                ));
            }
            let from_key = keys::account(org, prog);
            let mut from = view.get::<Account>(&from_key)?.unwrap_or_default();
            require_unfrozen(&from, org, prog)?;
            let taken = take_lots(&mut from, amount)?;
            from.recovered_out_fen = add(from.recovered_out_fen, amount)?;
            let to_key = keys::account(&a.to_org_code, prog);
            let mut to = view.get::<Account>(&to_key)?.unwrap_or_default();
            to.recovered_in_fen = add(to.recovered_in_fen, amount)?;
            credit(
                &mut to,
                new_lot(&tx, amount, now, now, to_level == OrgLevel::Central),
                &Landing {
                    tx,
                    org: &a.to_org_code,
                    prog,
                    now,
                },
                view,
            )?;
            view.put(&from_key, &from)?;
            view.put(&to_key, &to)?;
            view.put(
                &keys::lineage(&tx),
                &Flow {
                    kind: "recover",
                    from_org: org,
                    to: &a.to_org_code,
                    prog,
                    amount,
                }
                .lineage(taken, &a.reason, now),
            )?;
        }
        Method::Freeze(a) => set_frozen(ctx, view, &a.account, &a.reason, true)?,
        Method::Unfreeze(a) => set_frozen(ctx, view, &a.account, &a.reason, false)?,
        Method::Adjust(a) => {
            let (fo, fp) = account_ref(&a.from, "from")?;
            let (to_org, tp) = account_ref(&a.to, "to")?;
            require_org(ctx, fo)?;
            require_org(ctx, to_org)?;
            if !(ctx.signer_orgs.contains(fo) && ctx.signer_orgs.contains(to_org)) {
                return Err(Rejection::new(
                    TxStatus::Unauthorized,
                    "contract.needs_both_parties",
                    "an adjustment needs signatures from both orgs",
                ));
            }
            if fp != tp || (fo, fp) == (to_org, tp) {
                return Err(Rejection::malformed(
                    "an adjustment moves funds between two accounts of the same program",
                ));
            }
            tx_ref(&a.corrects_tx_id, "corrects_tx_id")?;
            text(&a.reason, "reason", true)?;
            let amount = positive(a.amount_fen)?;
            let from_key = keys::account(fo, fp);
            let mut from = view.get::<Account>(&from_key)?.unwrap_or_default();
            require_unfrozen(&from, fo, fp)?;
            let taken = take_lots(&mut from, amount)?;
            from.allocated_out_fen = add(from.allocated_out_fen, amount)?;
            let to_key = keys::account(to_org, tp);
            let mut to = view.get::<Account>(&to_key)?.unwrap_or_default();
            to.received_fen = add(to.received_fen, amount)?;
            credit(
                &mut to,
                new_lot(&tx, amount, now, now, false),
                &Landing {
                    tx,
                    org: to_org,
                    prog: tp,
                    now,
                },
                view,
            )?;
            view.put(&from_key, &from)?;
            view.put(&to_key, &to)?;
            view.put(
                &keys::lineage(&tx),
                &Flow {
                    kind: "adjust",
                    from_org: fo,
                    to: to_org,
                    prog: fp,
                    amount,
                }
                .lineage(taken, &a.reason, now),
            )?;
        }
    }
    Ok(events)
}

fn set_frozen(
    ctx: &Ctx<'_>,
    view: &mut View<'_>,
    account: &Option<AccountRef>,
    reason: &str,
    frozen: bool,
) -> Result<(), Rejection> {
    let (org, prog) = account_ref(account, "account")?;
    let supervisor = ctx
        .signer_orgs
        .iter()
        .any(|o| ctx.orgs.level(o) == Some(OrgLevel::Supervisor));
    if !supervisor {
        return Err(Rejection::new(
            TxStatus::Unauthorized,
            "contract.supervisors_only",
            "only a supervisor (audit office, budget committee) may freeze or unfreeze",
        ));
    }
    text(reason, "reason", true)?;
    let key = keys::account(org, prog);
    let mut acct = view.get::<Account>(&key)?.ok_or_else(|| {
        Rejection::not_found(
            "contract.unknown_account",
            format!("account {org}/{prog} does not exist"),
        )
    })?;
    if acct.frozen == frozen {
        return Err(Rejection::new(
            TxStatus::Conflict,
            "contract.frozen_state",
            format!(
                "account {org}/{prog} is already {}",
                if frozen { "frozen" } else { "unfrozen" }
            ),
        ));
    }
    acct.frozen = frozen;
    view.put(&key, &acct)
}
