//! State keys. Every key a transaction may touch is derived from its args
//! before it runs.

use fiscus_proto::hash::TxId;

pub fn account(org: &str, program: &str) -> Vec<u8> {
    format!("acct/{org}/{program}").into_bytes()
}

pub fn program(id: &str) -> Vec<u8> {
    format!("prog/{id}").into_bytes()
}

pub fn allocation(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"alloc/")
}

pub fn lineage(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"lineage/")
}

/// An adjustment `adj` that corrects transaction `corrected`: listing the
/// prefix `corr/<corrected>/` finds every correction of a transaction.
pub fn correction(corrected: &TxId, adj: &TxId) -> Vec<u8> {
    let mut k = corrected.prefixed_hex(b"corr/");
    k.push(b'/');
    k.extend_from_slice(adj.to_hex().as_bytes());
    k
}

/// The consortium configuration (`ConsortiumConfig`), written only by governance.
pub const CONFIG: &[u8] = b"gov/config";

pub fn proposal(tx: &TxId) -> Vec<u8> {
    tx.prefixed_hex(b"gov/proposal/")
}
