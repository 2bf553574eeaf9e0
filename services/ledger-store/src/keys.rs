//! The ledger's key layout in the `StateStore`. Contract state lives under
//! `s/`, so no contract key can collide with the ledger's own records.

use fiscus_proto::hash::TxId;

pub const HEAD: &[u8] = b"head";

/// The genesis `ConsortiumConfig` bytes, written once by `Ledger::init`.
pub const GENESIS: &[u8] = b"genesis";

/// Block hash → block number.
pub fn block_hash(hash: &fiscus_proto::hash::Hash32) -> Vec<u8> {
    hash.prefixed_hex(b"bh/")
}

/// The current value of a contract key, stored as `height (8 bytes, BE) ‖
/// value`: the block that wrote it travels with it.
pub fn state(contract_key: &[u8]) -> Vec<u8> {
    [b"s/".as_slice(), contract_key].concat()
}

pub fn encode_state(height: u64, value: &[u8]) -> Vec<u8> {
    [&height.to_be_bytes()[..], value].concat()
}

/// (writing block, value) of a stored state record, or None if it is too short.
pub fn decode_state(raw: &[u8]) -> Option<(u64, &[u8])> {
    let (h, v) = raw.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*h), v))
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
    id.prefixed_hex(b"t/")
}

/// Earlier values of a contract key: when block n overwrites a value that
/// block h wrote, the old value is archived here under h (tag 1 ‖ value); a
/// deletion at n leaves a tombstone under n (tag 0). With the current value
/// in `s/`, this answers "the value at height x" for any x.
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

/// The agreeing majority's signed attestations for block `n` (an encoded
/// `fiscus.gossip.v1.AttestationBatch`), as the gateway reported them.
pub fn final_attestations(n: u64) -> Vec<u8> {
    format!("fa/{n:020}").into_bytes()
}

/// A signer certificate the ledger knew: org ‖ 0x00 ‖ Ed25519 key. Kept so
/// that `fiscus verify` can re-check signatures from the data dir alone.
pub fn cert(id: &fiscus_proto::hash::Hash32) -> Vec<u8> {
    id.prefixed_hex(CERT_PREFIX)
}

pub const CERT_PREFIX: &[u8] = b"c/";

/// The transaction that used a creator's nonce: `n/` ‖ creator certificate
/// id (32 bytes) ‖ nonce (8 bytes, big-endian) → tx id. Binary, not hex: one
/// is written per transaction. A creator's nonce is used once (`crate::seen`).
pub fn nonce_index(creator: &fiscus_proto::hash::Hash32, nonce: u64) -> Vec<u8> {
    [b"n/".as_slice(), &creator.0, &nonce.to_be_bytes()].concat()
}

/// Present when every transaction of the chain since genesis has its nonce
/// in [`nonce_index`] (chains begun by this version): a nonce not found
/// there proves the transaction new, without a [`tx_index`] lookup.
pub const NONCES_SINCE_GENESIS: &[u8] = b"nonces-since-genesis";
