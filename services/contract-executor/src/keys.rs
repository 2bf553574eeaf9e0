//! State keys. Every key a transaction may touch is derived from its args
//! before it runs.

use fiscus_proto::hash::TxId;

// Keys are built by concatenation, not `format!`: several per transaction.
pub fn account(org: &str, program: &str) -> Vec<u8> {
    [
        b"acct/".as_slice(),
        org.as_bytes(),
        b"/",
        program.as_bytes(),
    ]
    .concat()
}

pub fn program(id: &str) -> Vec<u8> {
    [b"prog/".as_slice(), id.as_bytes()].concat()
}

pub fn allocation(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"alloc/")
}

pub fn lineage(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"lineage/")
}

/// The adjustments that correct transaction `corrected` (`Corrections`).
pub fn corrections(corrected: &TxId) -> Vec<u8> {
    corrected.prefixed_hex(b"corr/")
}

/// The consortium configuration (`ConsortiumConfig`), written only by governance.
pub const CONFIG: &[u8] = b"gov/config";

pub fn proposal(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"gov/proposal/")
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
