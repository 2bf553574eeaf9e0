//! What every contract runs with: the keys a call declares before it runs
//! and the context of the transaction (signers, block time, registry).

use crate::calendar::Calendar;
use crate::keys;
use crate::keys::{MAX_BUNDLES_PER_CREDIT, bundle_id};
use crate::orgs::Orgs;
use fiscus_proto::hash::TxId;
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
    #[inline]
    pub(crate) fn read(mut self, k: Vec<u8>) -> Self {
        self.reads.insert(k);
        self
    }
    #[inline]
    pub(crate) fn write(mut self, k: Vec<u8>) -> Self {
        self.writes.insert(k);
        self
    }
    #[inline]
    pub(crate) fn fresh(mut self, k: Vec<u8>) -> Self {
        self.fresh.insert(k);
        self
    }
    /// A credit may fold lots into bundles: up to this many bundle records.
    pub(crate) fn bundles(mut self, tx: &TxId) -> Self {
        self.bundles_of = Some(*tx);
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

    /// Whether `key` is one of this call's fresh keys (its own records).
    pub fn is_fresh(&self, key: &[u8]) -> bool {
        self.fresh.contains(key)
            || self.bundles_of.is_some_and(|tx| {
                key.starts_with(b"lineage/")
                    && (0..MAX_BUNDLES_PER_CREDIT).any(|i| keys::lineage(&bundle_id(&tx, i)) == key)
            })
    }

    /// Whether the call may write `key`. An account's lots (ADR 0006) go
    /// with the account: a call that may write it may write them.
    pub fn may_write(&self, key: &[u8]) -> bool {
        self.writes.contains(key)
            || self.is_fresh(key)
            || keys::lot_owner(key).is_some_and(|(acct, _)| self.writes.contains(&acct))
    }

    /// Whether `key` is a lot of an account this call declared: it may read it.
    pub fn is_declared_lot(&self, key: &[u8]) -> bool {
        keys::lot_owner(key)
            .is_some_and(|(acct, _)| self.reads.contains(&acct) || self.writes.contains(&acct))
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
    /// Budget approvals, holidays and deadline policy at this height.
    pub calendar: &'a Calendar,
}
