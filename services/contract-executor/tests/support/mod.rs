//! Shared builders for the contract tests: a registry, calls, and a chain
//! stand-in that executes blocks and keeps state.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use fiscus_common::testkit::fixtures;
use fiscus_contract_executor::executor::{KeyValues, MAX_READ_ROUNDS, declared_reads};
use fiscus_contract_executor::{
    BlockInput, Calendar, Call, Orgs, TxCtx, execute_block, execute_block_reading, keys, lot_reads,
};
use fiscus_proto::hash::{TxId, sha256};
use fiscus_proto::pb::state::{Account, Lot};
use fiscus_proto::pb::transfer::{
    AccountRef, AllocateArgs, AppropriateArgs, DisburseArgs, Program, ProgramKind, Recipient,
    RecoverArgs, TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{OrgLevel, TxStatus};
use prost::Message;
use std::collections::BTreeSet;

pub(crate) const T0: i64 = 1_790_000_000_000;

pub(crate) fn orgs() -> Orgs {
    Orgs::default()
        .with("000000", OrgLevel::Central, "")
        .with("130000", OrgLevel::Provincial, "000000")
        .with("130100", OrgLevel::Municipal, "130000")
        .with("130102", OrgLevel::County, "130100")
        .with("130200", OrgLevel::Municipal, "130000")
        .with("991300", OrgLevel::Supervisor, "130000")
}

pub(crate) fn acct(org: &str, prog: &str) -> Option<AccountRef> {
    fixtures::account(org, prog)
}

/// A program of `kind`; `ProgramKind::Direct` here stands for a general
/// program with the direct-funds attribute (the v2 shape).
pub(crate) fn program(id: &str, kind: ProgramKind) -> Program {
    let direct = kind == ProgramKind::Direct;
    Program {
        kind: if direct { ProgramKind::General } else { kind } as i32,
        direct,
        ..fixtures::program(id)
    }
}

pub(crate) fn call(m: Method) -> TransferCall {
    TransferCall { method: Some(m) }
}

pub(crate) fn appropriate(org: &str, prog: &str, kind: ProgramKind, amount: i64) -> TransferCall {
    call(Method::Appropriate(AppropriateArgs {
        account: acct(org, prog),
        program: Some(program(prog, kind)),
        amount_fen: amount,
        document: "doc".into(),
    }))
}

pub(crate) fn allocate(from: &str, to: &str, prog: &str, amount: i64) -> TransferCall {
    call(Method::Allocate(AllocateArgs {
        from: acct(from, prog),
        to_org_code: to.into(),
        amount_fen: amount,
        document: "冀财预〔2026〕7号".into(),
        external_id: String::new(),
    }))
}

pub(crate) fn disburse(from: &str, prog: &str, amount: i64) -> TransferCall {
    call(Method::Disburse(DisburseArgs {
        from: acct(from, prog),
        recipient: Some(Recipient {
            id: Some(recipient::Id::UnifiedSocialCreditCode(
                "12130102MB1234562B".into(),
            )),
            name: "长安区第一小学".into(),
        }),
        amount_fen: amount,
        purpose: "义务教育公用经费".into(),
        economic_code: "50502".into(),
        external_id: String::new(),
    }))
}

pub(crate) fn recover(from: &str, to: &str, prog: &str, amount: i64) -> TransferCall {
    call(Method::Recover(RecoverArgs {
        from: acct(from, prog),
        to_org_code: to.into(),
        amount_fen: amount,
        reason: "unspent".into(),
    }))
}

/// A ledger stand-in: state plus a tx counter.
pub(crate) struct Chain {
    pub(crate) orgs: Orgs,
    pub(crate) calendar: Calendar,
    pub(crate) state: KeyValues,
    pub(crate) n: u64,
    pub(crate) now: i64,
}

impl Chain {
    pub(crate) fn new() -> Self {
        Self {
            orgs: orgs(),
            calendar: Calendar::default(),
            state: KeyValues::new(),
            n: 0,
            now: T0,
        }
    }

    pub(crate) fn tx(&mut self, signer: &str, c: TransferCall) -> TxCtx {
        self.n += 1;
        TxCtx {
            tx_id: sha256(&self.n.to_be_bytes()),
            signer_orgs: BTreeSet::from([signer.to_owned()]),
            call: Ok(Call::Transfer(c)),
        }
    }

    /// Executes one block and applies its writes; returns (status, code) per tx.
    pub(crate) fn block(&mut self, txs: Vec<TxCtx>) -> Vec<(TxStatus, &'static str, TxId)> {
        let input = BlockInput {
            height: self.n,
            timestamp_ms: self.now,
            orgs: &self.orgs,
            calendar: &self.calendar,
            txs,
        };
        // The declared keys and the accounts' lots, in rounds as the ledger reads them.
        let out = execute_block_reading(&input, |k| self.state.get(k).cloned().flatten(), 2)
            .expect("every lot a block needs is in the state");
        for (k, v) in &out.writes {
            self.state.insert(k.clone(), v.clone());
        }
        out.results
            .iter()
            .map(|r| (r.status, r.code, r.tx_id))
            .collect()
    }

    pub(crate) fn one(&mut self, signer: &str, c: TransferCall) -> (TxStatus, &'static str, TxId) {
        let t = self.tx(signer, c);
        self.block(vec![t])[0]
    }

    pub(crate) fn account(&self, org: &str, prog: &str) -> Account {
        self.state
            .get(&keys::account(org, prog))
            .cloned()
            .flatten()
            .map(|b| Account::decode(&b[..]).unwrap())
            .unwrap_or_default()
    }

    /// The account's lots, oldest first: the closed ones under their keys
    /// (`lot/<org>/<prog>/…`), then the open ones in the account (ADR 0006).
    pub(crate) fn lots(&self, org: &str, prog: &str) -> Vec<Lot> {
        let prefix = keys::lot_prefix(org, prog);
        let mut lots: Vec<Lot> = self
            .state
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, v)| v.as_deref().map(|b| Lot::decode(b).unwrap()))
            .collect();
        lots.extend(self.account(org, prog).lots);
        lots
    }

    pub(crate) fn get<M: Message + Default>(&self, key: Vec<u8>) -> Option<M> {
        self.state
            .get(&key)
            .cloned()
            .flatten()
            .map(|b| M::decode(&b[..]).unwrap())
    }
}

pub(crate) fn ok(r: (TxStatus, &'static str, TxId)) -> TxId {
    assert_eq!(r.0, TxStatus::Valid, "refused: {}", r.1);
    r.2
}

/// An allocation record's rule and clock basis as their report codes, and
/// its days taken (what exports and traces show).
#[allow(dead_code)]
pub(crate) fn rule_of(
    r: &fiscus_proto::pb::state::AllocationRecord,
) -> (&'static str, &'static str, u32) {
    fiscus_contract_executor::deadlines::recorded(r)
}

/// The keys the block's transactions declare, read from `state`.
pub(crate) fn reads_declared(state: &KeyValues, input: &BlockInput<'_>) -> KeyValues {
    declared_reads(&input.txs)
        .into_iter()
        .map(|k| {
            let v = state.get(&k).cloned().flatten();
            (k, v)
        })
        .collect()
}

/// The reads a block ends up with when executed the ledger's way: the
/// declared keys, then the accounts' oldest closed lots, then more lots in
/// rounds until no transaction lacks one; and how many rounds after the
/// first that took.
pub(crate) fn reads_in_rounds(state: &KeyValues, input: &BlockInput<'_>) -> (KeyValues, u32) {
    let mut reads = reads_declared(state, input);
    let mut need = BTreeSet::new();
    for round in 0..=MAX_READ_ROUNDS {
        for k in lot_reads(&reads, &need, round) {
            let v = state.get(&k).cloned().flatten();
            reads.insert(k, v);
        }
        let out = execute_block(input, &reads, 1);
        if out.need.is_empty() {
            return (reads, round);
        }
        need = out.need;
    }
    panic!("still lacking {need:?}");
}

/// The declared keys and every lot in `state`: reads that never lack a lot.
pub(crate) fn reads_all_lots(state: &KeyValues, input: &BlockInput<'_>) -> KeyValues {
    let mut reads = reads_declared(state, input);
    for (k, v) in state
        .range(b"lot/".to_vec()..)
        .take_while(|(k, _)| k.starts_with(b"lot/"))
    {
        reads.insert(k.clone(), v.clone());
    }
    reads
}
