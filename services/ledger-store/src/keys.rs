//! The ledger's key layout in the `StateStore`. Contract state lives under
//! `s/`, so no contract key can collide with the ledger's own records.

use fiscus_proto::hash::TxId;

pub const HEAD: &[u8] = b"head";

/// The genesis `ConsortiumConfig` bytes, written once by `Ledger::init`.
pub const GENESIS: &[u8] = b"genesis";

/// Block hash → block number.
pub fn block_hash(hash: &fiscus_proto::hash::Hash32) -> Vec<u8> {
    format!("bh/{}", hash.to_hex()).into_bytes()
}

pub fn state(contract_key: &[u8]) -> Vec<u8> {
    [b"s/".as_slice(), contract_key].concat()
}

pub fn block(n: u64) -> Vec<u8> {
    format!("b/{n:020}").into_bytes()
}

/// Per-block commitments: block hash, state hash, receipts root.
pub fn block_meta(n: u64) -> Vec<u8> {
    format!("m/{n:020}").into_bytes()
}

/// All receipts of block `n`, as one value: written compactly per block.
pub fn receipts(n: u64) -> Vec<u8> {
    format!("r/{n:020}").into_bytes()
}

pub fn tx_index(id: &TxId) -> Vec<u8> {
    format!("t/{}", id.to_hex()).into_bytes()
}

/// History of a contract key: one entry per block that wrote it.
pub fn history(contract_key: &[u8], n: u64) -> Vec<u8> {
    [
        b"h/".as_slice(),
        contract_key,
        format!("/{n:020}").as_bytes(),
    ]
    .concat()
}

pub fn history_prefix(contract_key: &[u8]) -> Vec<u8> {
    [b"h/".as_slice(), contract_key, b"/"].concat()
}

pub fn attestation(n: u64) -> Vec<u8> {
    format!("a/{n:020}").into_bytes()
}

/// A signer certificate the ledger knew: org ‖ 0x00 ‖ Ed25519 key. Kept so
/// that `fiscus verify` can re-check signatures from the data dir alone.
pub fn cert(id: &fiscus_proto::hash::Hash32) -> Vec<u8> {
    format!("c/{}", id.to_hex()).into_bytes()
}

pub const CERT_PREFIX: &[u8] = b"c/";
