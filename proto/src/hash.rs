//! SHA-256 identifiers: tx ids, block hashes and certificate ids.

use sha2::{Digest, Sha256};
use std::fmt;

/// Length of every hash in Fiscus.
pub const HASH_LEN: usize = 32;

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; HASH_LEN]);

/// A transaction id: SHA-256 of the envelope's payload bytes.
pub type TxId = Hash32;

impl Hash32 {
    /// All zeros: the `prev_hash` of block 0.
    pub const ZERO: Self = Self([0; HASH_LEN]);

    /// Takes exactly 32 bytes from a wire field.
    pub fn from_slice(field: &'static str, bytes: &[u8]) -> crate::Result<Self> {
        let arr: [u8; HASH_LEN] = bytes.try_into().map_err(|_| crate::Error::BadLength {
            field,
            expected: HASH_LEN,
            got: bytes.len(),
        })?;
        Ok(Self(arr))
    }

    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }

    pub fn to_vec(self) -> Vec<u8> {
        self.0.to_vec()
    }

    pub fn to_hex(&self) -> String {
        self.hex_bytes().iter().map(|b| char::from(*b)).collect()
    }

    /// The lowercase hex digits, as bytes.
    pub fn hex_bytes(&self) -> [u8; 2 * HASH_LEN] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 2 * HASH_LEN];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        out
    }

    /// `prefix ‖ hex(self)`: a store key naming this hash, built without
    /// formatting (keys are made for every transaction, many times).
    pub fn prefixed_hex(&self, prefix: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(prefix.len() + 2 * HASH_LEN);
        key.extend_from_slice(prefix);
        key.extend_from_slice(&self.hex_bytes());
        key
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.to_hex())
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl AsRef<[u8]> for Hash32 {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash32 {
    Hash32(Sha256::digest(data).into())
}

/// The tx id: SHA-256 over exactly the payload bytes that were signed.
pub fn tx_id(payload: &[u8]) -> TxId {
    sha256(payload)
}

/// What a block's `tx_root` commits to for one envelope: its tx id and every
/// signature exactly as carried, so that nobody who relays an orderer-signed
/// block can alter a signature without breaking the orderer's signature.
///
/// `SHA-256(0x01 ‖ tx_id ‖ u32be(count) ‖ for each signature:
/// u32be(len) ‖ cert_id ‖ u32be(len) ‖ signature)`.
pub fn envelope_commitment(env: &crate::pb::types::Envelope) -> Hash32 {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update([1u8]);
    h.update(tx_id(&env.payload).0);
    h.update((env.signatures.len() as u32).to_be_bytes());
    for s in &env.signatures {
        h.update((s.cert_id.len() as u32).to_be_bytes());
        h.update(&s.cert_id);
        h.update((s.signature.len() as u32).to_be_bytes());
        h.update(&s.signature);
    }
    Hash32(h.finalize().into())
}

/// The block hash: SHA-256 over exactly the encoded header bytes.
pub fn block_hash(header_bytes: &[u8]) -> Hash32 {
    sha256(header_bytes)
}

/// A certificate id: SHA-256 over the DER certificate.
pub fn cert_id(der: &[u8]) -> Hash32 {
    sha256(der)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_matches_the_hex_crate_and_prefixed_keys_are_prefix_then_hex() {
        for seed in [0u8, 1, 0x7f, 0xab, 0xff] {
            let h = sha256(&[seed; 3]);
            assert_eq!(h.to_hex(), hex::encode(h.0));
            assert_eq!(
                h.prefixed_hex(b"t/"),
                format!("t/{}", hex::encode(h.0)).into_bytes()
            );
        }
        assert_eq!(Hash32([0xff; 32]).to_hex(), "f".repeat(64));
    }

    #[test]
    fn sha256_matches_the_fips_180_test_vector() {
        assert_eq!(
            sha256(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_hash_field_of_the_wrong_length_is_rejected() {
        let err = Hash32::from_slice("prev_hash", &[0; 31]).unwrap_err();
        assert!(matches!(
            err,
            crate::Error::BadLength {
                field: "prev_hash",
                expected: 32,
                got: 31
            }
        ));
    }
}
