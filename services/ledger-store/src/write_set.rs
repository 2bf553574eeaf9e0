//! `state_hash[n] = H(state_hash[n-1] ‖ H(sorted write set of block n))`.

use fiscus_contract_executor::executor::KeyValues;
use fiscus_proto::hash::Hash32;
use sha2::{Digest, Sha256};

/// SHA-256 over the write set in key order: for each key, its length and
/// bytes, a tag (0 deleted, 1 put), and the value's length and bytes.
pub fn write_set_hash(writes: &KeyValues) -> Hash32 {
    let mut h = Sha256::new();
    for (k, v) in writes {
        h.update((k.len() as u64).to_be_bytes());
        h.update(k);
        match v {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v);
            }
        }
    }
    Hash32(h.finalize().into())
}

pub fn next_state_hash(prev: &Hash32, writes: &KeyValues) -> Hash32 {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(write_set_hash(writes).0);
    Hash32(h.finalize().into())
}
