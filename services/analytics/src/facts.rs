//! What a committed block means to the statistics: one [`Fact`] per value
//! movement a valid transaction made, read from the transaction's call and
//! its receipt's status. Rejected transactions move nothing and make no fact.
//!
//! A pure function of the block: no clock, no store. The one thing a block
//! alone cannot say, the amount an acknowledgement confirms, is resolved by
//! the store from the allocation it names ([`Fact::refers`]).

use fiscus_contract_executor::calendar::{civil_from_days, day_of};
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::ledger::BlockReceipts;
use fiscus_proto::pb::transfer::{Program, ProgramKind, recipient, transfer_call::Method};
use fiscus_proto::pb::types::{Block, BlockHeader, ContractEvent, TxPayload, TxStatus, tx_payload};
use prost::Message;

/// What a fact records. The names are the SQL values of `movement.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// 拨入: funds created at an org (`to_org`).
    Appropriate,
    /// 下达: from an org to one below it.
    Allocate,
    /// 确认: the receiver confirms an allocation; the amount is the
    /// allocation's, `from_org`/`to_org` are the allocation's.
    Acknowledge,
    /// 支付: from an org to a final recipient (`to_org` empty).
    Disburse,
    /// 收回: from an org back up to one above it.
    Recover,
    /// 调整: a correction moving money back between two orgs' accounts.
    Adjust,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Appropriate,
        Kind::Allocate,
        Kind::Acknowledge,
        Kind::Disburse,
        Kind::Recover,
        Kind::Adjust,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Appropriate => "appropriate",
            Kind::Allocate => "allocate",
            Kind::Acknowledge => "acknowledge",
            Kind::Disburse => "disburse",
            Kind::Recover => "recover",
            Kind::Adjust => "adjust",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

/// One value movement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub height: u64,
    pub index: u32,
    pub tx_id: Hash32,
    pub kind: Kind,
    /// Empty for an appropriation.
    pub from_org: String,
    /// Empty for a disbursement.
    pub to_org: String,
    pub program: String,
    /// The block's day (China Standard Time), days since 1970-01-01.
    pub day: i64,
    /// "YYYY-MM" of `day`.
    pub month: String,
    /// Zero for an acknowledgement until the store resolves it.
    pub amount_fen: i64,
    /// A disbursement's recipient: `uscc:<code>` or `person:<hex hash>`.
    pub recipient: String,
    /// The allocation an acknowledgement confirms, the transaction an
    /// adjustment corrects.
    pub refers: Option<Hash32>,
    /// Set when the contract recorded the movement as late: an allocation
    /// past its Budget Law art. 52 deadline (`deadline.late`), an
    /// acknowledgement past its due day (`deadline.acknowledged_late`). The
    /// CST day it was due by.
    pub late_due_day: Option<i64>,
}

/// A program as its first appropriation described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramInfo {
    pub id: String,
    pub name: String,
    pub kind: &'static str,
    pub functional_code: String,
    pub fiscal_year: u32,
    pub direct: bool,
    /// The org whose appropriation created it.
    pub owner: String,
}

/// One transaction of a committed block, with its receipt's verdict.
#[derive(Debug, Clone)]
pub struct CommittedTx<'a> {
    pub tx_id: Hash32,
    pub index: u32,
    pub status: TxStatus,
    /// The envelope's payload bytes (the signed `TxPayload`).
    pub payload: &'a [u8],
    /// The contract's events in the receipt.
    pub events: &'a [ContractEvent],
}

/// The CST day of the due time an event of `name` carries (8 bytes, Unix
/// ms, big-endian), if the transaction has one.
fn due_day(events: &[ContractEvent], name: &str) -> Option<i64> {
    events
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| <[u8; 8]>::try_from(&e.data[..]).ok())
        .map(|b| day_of(i64::from_be_bytes(b)))
}

/// A supervisor froze (or unfroze) an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freeze {
    pub height: u64,
    pub index: u32,
    pub tx_id: Hash32,
    pub org: String,
    pub program: String,
    pub day: i64,
    pub frozen: bool,
}

/// What one block contributes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlockFacts {
    pub facts: Vec<Fact>,
    pub freezes: Vec<Freeze>,
    pub programs: Vec<ProgramInfo>,
    /// A valid governance transaction: the org registry may have changed.
    pub governance: bool,
}

/// "YYYY-MM" of a day.
pub fn month_of(day: i64) -> String {
    let (y, m, _) = civil_from_days(day);
    format!("{y:04}-{m:02}")
}

fn kind_name(k: i32) -> &'static str {
    match ProgramKind::try_from(k) {
        Ok(ProgramKind::General) => "general",
        Ok(ProgramKind::Special) => "special",
        Ok(ProgramKind::Direct) => "direct",
        Ok(ProgramKind::Disaster) => "disaster",
        _ => "unspecified",
    }
}

fn program_info(p: &Program, owner: &str) -> ProgramInfo {
    ProgramInfo {
        id: p.id.clone(),
        name: p.name.clone(),
        kind: kind_name(p.kind),
        functional_code: p.functional_code.clone(),
        fiscal_year: p.fiscal_year,
        direct: p.direct || p.kind == ProgramKind::Direct as i32,
        owner: owner.to_owned(),
    }
}

/// The facts of one block, in chain order. A valid transaction whose payload
/// does not decode cannot happen (the contract refuses it as
/// `bad_encoding`); if it did, it is skipped rather than guessed at.
pub fn block_facts(height: u64, timestamp_ms: i64, txs: &[CommittedTx<'_>]) -> BlockFacts {
    let day = day_of(timestamp_ms);
    let month = month_of(day);
    let mut out = BlockFacts::default();
    for tx in txs {
        if tx.status != TxStatus::Valid {
            continue;
        }
        let Ok(payload) = TxPayload::decode(tx.payload) else {
            continue;
        };
        let call = match payload.call {
            Some(tx_payload::Call::Transfer(c)) => c,
            Some(tx_payload::Call::Governance(_)) => {
                out.governance = true;
                continue;
            }
            None => continue,
        };
        let fact = |kind, from: &str, to: &str, program: &str, amount_fen| Fact {
            height,
            index: tx.index,
            tx_id: tx.tx_id,
            kind,
            from_org: from.to_owned(),
            to_org: to.to_owned(),
            program: program.to_owned(),
            day,
            month: month.clone(),
            amount_fen,
            recipient: String::new(),
            refers: None,
            late_due_day: None,
        };
        let account = |a: &Option<fiscus_proto::pb::transfer::AccountRef>| {
            a.as_ref()
                .map(|a| (a.org_code.clone(), a.program_id.clone()))
                .unwrap_or_default()
        };
        match call.method {
            Some(Method::Appropriate(a)) => {
                let (org, prog) = account(&a.account);
                if let Some(p) = &a.program {
                    out.programs.push(program_info(p, &org));
                }
                out.facts
                    .push(fact(Kind::Appropriate, "", &org, &prog, a.amount_fen));
            }
            Some(Method::Allocate(a)) => {
                let (org, prog) = account(&a.from);
                let mut f = fact(Kind::Allocate, &org, &a.to_org_code, &prog, a.amount_fen);
                f.late_due_day = due_day(tx.events, "deadline.late");
                out.facts.push(f);
            }
            Some(Method::Acknowledge(a)) => {
                let (org, prog) = account(&a.account);
                let mut f = fact(Kind::Acknowledge, "", &org, &prog, 0);
                f.refers = Hash32::from_slice("allocation", &a.allocation_tx_id).ok();
                f.late_due_day = due_day(tx.events, "deadline.acknowledged_late");
                out.facts.push(f);
            }
            Some(Method::Disburse(a)) => {
                let (org, prog) = account(&a.from);
                let mut f = fact(Kind::Disburse, &org, "", &prog, a.amount_fen);
                f.recipient = match a.recipient.and_then(|r| r.id) {
                    Some(recipient::Id::UnifiedSocialCreditCode(c)) => format!("uscc:{c}"),
                    Some(recipient::Id::PersonalIdHash(h)) => format!("person:{}", hex::encode(h)),
                    None => String::new(),
                };
                out.facts.push(f);
            }
            Some(Method::Recover(a)) => {
                let (org, prog) = account(&a.from);
                out.facts.push(fact(
                    Kind::Recover,
                    &org,
                    &a.to_org_code,
                    &prog,
                    a.amount_fen,
                ));
            }
            Some(Method::Adjust(a)) => {
                let (from, prog) = account(&a.from);
                let (to, _) = account(&a.to);
                let mut f = fact(Kind::Adjust, &from, &to, &prog, a.amount_fen);
                f.refers = Hash32::from_slice("corrected", &a.corrects_tx_id).ok();
                out.facts.push(f);
            }
            Some(Method::Freeze(a)) => {
                let (org, program) = account(&a.account);
                out.freezes.push(Freeze {
                    height,
                    index: tx.index,
                    tx_id: tx.tx_id,
                    org,
                    program,
                    day,
                    frozen: true,
                });
            }
            Some(Method::Unfreeze(a)) => {
                let (org, program) = account(&a.account);
                out.freezes.push(Freeze {
                    height,
                    index: tx.index,
                    tx_id: tx.tx_id,
                    org,
                    program,
                    day,
                    frozen: false,
                });
            }
            None => {}
        }
    }
    out
}

/// A block and its receipts as the ledger-store serves them (`GetBlock`,
/// `GetBlockReceipts`), read into (height, block time, facts). The follower
/// and `fiscus bench analytics` both read blocks through this.
pub fn from_wire(
    block: &Block,
    receipts: &BlockReceipts,
) -> Result<(u64, i64, BlockFacts), String> {
    let header = BlockHeader::decode(&block.header[..]).map_err(|e| {
        format!(
            "block {}: header does not decode: {e}",
            receipts.block_number
        )
    })?;
    let h = header.number;
    if receipts.block_number != h || receipts.receipts.len() != block.txs.len() {
        return Err(format!(
            "block {h}: {} transactions but receipts for block {} with {}",
            block.txs.len(),
            receipts.block_number,
            receipts.receipts.len()
        ));
    }
    let mut txs = Vec::with_capacity(block.txs.len());
    for (env, r) in block.txs.iter().zip(&receipts.receipts) {
        txs.push(CommittedTx {
            tx_id: Hash32::from_slice("tx id", &r.tx_id)
                .map_err(|_| format!("block {h}: a receipt's tx id is not 32 bytes"))?,
            index: r.tx_index,
            status: TxStatus::try_from(r.status).unwrap_or(TxStatus::Unspecified),
            payload: &env.payload,
            events: &r.events,
        });
    }
    Ok((
        h,
        header.timestamp_ms,
        block_facts(h, header.timestamp_ms, &txs),
    ))
}
