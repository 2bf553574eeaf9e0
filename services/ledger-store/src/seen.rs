//! Replay protection, the one place it is decided. A transaction id is
//! accepted once (`tx.duplicate`), and so is a creator's nonce: a second
//! transaction with the same (creator, nonce) and another body is refused
//! with `tx.nonce_reused` (an `Idempotency-Key` reused for a different
//! operation must not make two valid transactions). Both verdicts are pure
//! given what the chain already holds, so every member reaches the same one.

use fiscus_proto::envelope::CheckedTx;
use fiscus_proto::hash::{Hash32, TxId};
use std::collections::{BTreeMap, BTreeSet};

/// A creator's certificate id and a nonce it signed.
pub type NonceKey = (Hash32, u64);

pub fn nonce_key(t: &CheckedTx) -> NonceKey {
    (t.creator_cert_id, t.payload.nonce)
}

/// What the chain already holds of some transactions: their ids, and the
/// transaction that used each of their (creator, nonce) pairs.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) ids: BTreeSet<TxId>,
    pub(crate) nonces: BTreeMap<NonceKey, TxId>,
}

impl Seen {
    /// Adds what a processed block indexed.
    pub(crate) fn absorb(&mut self, indexed: &[(TxId, u32)], nonces: &[(NonceKey, TxId)]) {
        self.ids.extend(indexed.iter().map(|(id, _)| *id));
        self.nonces.extend(nonces.iter().copied());
    }
}

/// Why a transaction does not run because of what ran before; None if it
/// may run. `block` collects this block's own ids and nonces, so a repeat
/// inside one block is refused like one across blocks.
pub(crate) fn verdict(id: TxId, key: NonceKey, chain: &Seen, block: &mut Seen) -> Option<Repeat> {
    if chain.ids.contains(&id) || !block.ids.insert(id) {
        return Some(Repeat::Tx);
    }
    if let Some(first) = chain.nonces.get(&key).or_else(|| block.nonces.get(&key)) {
        return Some(Repeat::Nonce(*first));
    }
    block.nonces.insert(key, id);
    None
}

/// A transaction that repeats one already in the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// The same transaction (a replay).
    Tx,
    /// Another transaction with the same creator and nonce: the first one.
    Nonce(TxId),
}
