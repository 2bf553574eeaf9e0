//! Ed25519 signing and verification.
//!
//! Every node must reach the same verdict on every signature, or the chain
//! forks. The rule (ADR 0002) is *strict encodings, cofactored equation*:
//!
//! 1. the public key `A` and the signature's `R` are canonical encodings of
//!    curve points, neither of small order, and `s` is a canonical scalar;
//! 2. `[8]([s]B - R - [k]A)` is the identity, with `k = SHA-512(R ‖ A ‖ M)`.
//!
//! With the cofactored equation, checking a batch with random weights gives
//! exactly the verdicts of checking each item alone (up to a 2^-128 chance), so
//! [`verify_batch`] is only a faster route to the verdicts of [`verify`]. The
//! weights are derived by hashing the whole batch: verification reads no
//! randomness, and a signer cannot choose them. If a batch fails, each item is
//! checked alone, so the caller learns exactly which signatures are bad.
//!
//! Honest Ed25519 signatures (RFC 8032) pass; so does everything that
//! ed25519-dalek's `verify_strict` accepts. The signatures this rule accepts
//! and `verify_strict` may reject involve a small-order component that only
//! the key's holder could have put there: in `R`, or in the public key itself
//! (a key `aB + T` that is not of small order; consortium keys come from
//! certificates the CA issued).
//!
//! A proptest below checks that [`verify_batch`] and [`verify`] agree on random
//! mixes of good, forged, malformed, weak-key and mixed-order-`R` signatures.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::Signer;
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;
use std::fmt;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Why a signature was rejected. Stable: other services map these to codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("public key is not a valid Ed25519 point encoding")]
    MalformedKey,
    #[error("public key is a weak (small-order) point")]
    WeakKey,
    #[error("signature is not {SIGNATURE_LEN} bytes")]
    MalformedSignature,
    #[error("signature R is a small-order point")]
    SmallOrderR,
    #[error("signature does not verify")]
    Invalid,
}

/// An Ed25519 signing key. Its `Debug` never prints the secret.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the OS random source.
    pub fn generate() -> Self {
        Self(ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from its 32-byte seed (RFC 8032 private key).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// Reads a PKCS#8 PEM Ed25519 private key (as `fiscus enroll` writes it).
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, VerifyError> {
        use ed25519_dalek::pkcs8::DecodePrivateKey;
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(Self)
            .map_err(|_| VerifyError::MalformedKey)
    }

    /// The 32-byte seed, for storing the key (e.g. as PKCS#8).
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs exactly `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

/// One signature to check: raw bytes as they arrived.
#[derive(Debug, Clone, Copy)]
pub struct SigCheck<'a> {
    pub public_key: &'a [u8],
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// Whether a 32-byte point encoding is canonical: its y coordinate (the low
/// 255 bits) is below p = 2^255 - 19. Decompression alone would reduce it.
fn canonical_point_encoding(bytes: &[u8; 32]) -> bool {
    let top_all_ones = bytes[1..31].iter().all(|b| *b == 0xff) && bytes[31] & 0x7f == 0x7f;
    !(top_all_ones && bytes[0] >= 0xed)
}

/// A point from a canonical encoding, or `None`.
fn point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if !canonical_point_encoding(bytes) {
        return None;
    }
    CompressedEdwardsY(*bytes).decompress()
}

/// The public key `A` of rule 1.
fn public_key_point(bytes: &[u8]) -> Result<EdwardsPoint, VerifyError> {
    let bytes: &[u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| VerifyError::MalformedKey)?;
    let a = point(bytes).ok_or(VerifyError::MalformedKey)?;
    if a.is_small_order() {
        return Err(VerifyError::WeakKey);
    }
    Ok(a)
}

/// One signature that passed rule 1, ready for the equation of rule 2.
struct Parsed {
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

/// Rule 1 for the signature, and `k`, for an already-checked key.
fn parse(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> Result<Parsed, VerifyError> {
    let sig: &[u8; SIGNATURE_LEN] = signature
        .try_into()
        .map_err(|_| VerifyError::MalformedSignature)?;
    let mut r_bytes = [0u8; 32];
    r_bytes.copy_from_slice(&sig[..32]);
    let mut s_bytes = [0u8; 32];
    s_bytes.copy_from_slice(&sig[32..]);
    let r = point(&r_bytes).ok_or(VerifyError::Invalid)?;
    if r.is_small_order() {
        return Err(VerifyError::SmallOrderR);
    }
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
        .ok_or(VerifyError::Invalid)?;
    let mut h = Sha512::new();
    h.update(r_bytes);
    h.update(public_key);
    h.update(message);
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Ok(Parsed { r, s, k })
}

/// Rule 2 for one signature.
fn equation_holds(a: &EdwardsPoint, p: &Parsed) -> bool {
    // [s]B - [k]A - R
    let d = EdwardsPoint::vartime_double_scalar_mul_basepoint(&p.k, &-a, &p.s) - p.r;
    d.mul_by_cofactor().is_identity()
}

/// Verifies one signature (rules 1 and 2).
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    let a = public_key_point(public_key)?;
    let key: &[u8; 32] = public_key
        .try_into()
        .map_err(|_| VerifyError::MalformedKey)?;
    let p = parse(key, message, signature)?;
    if equation_holds(&a, &p) {
        Ok(())
    } else {
        Err(VerifyError::Invalid)
    }
}

/// Verifies many signatures, giving the same verdict as [`verify`] on each.
///
/// Items signed by the same key share one term of the batch equation, so a
/// batch from a few signers costs little more than one point per signature.
pub fn verify_batch(items: &[SigCheck<'_>]) -> Vec<Result<(), VerifyError>> {
    // Rule 1, each distinct key once.
    let mut keys: BTreeMap<&[u8], Result<EdwardsPoint, VerifyError>> = BTreeMap::new();
    for item in items {
        keys.entry(item.public_key)
            .or_insert_with(|| public_key_point(item.public_key));
    }
    let mut verdicts: Vec<Result<(), VerifyError>> = Vec::with_capacity(items.len());
    let mut batch: Vec<(usize, Parsed)> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let parsed = match keys.get(item.public_key) {
            Some(Ok(_)) => match <&[u8; 32]>::try_from(item.public_key) {
                Ok(key) => parse(key, item.message, item.signature),
                Err(_) => Err(VerifyError::MalformedKey),
            },
            Some(Err(e)) => Err(*e),
            None => Err(VerifyError::MalformedKey),
        };
        match parsed {
            Ok(p) => {
                verdicts.push(Ok(()));
                batch.push((i, p));
            }
            Err(e) => verdicts.push(Err(e)),
        }
    }
    let key_point = |i: usize| match keys.get(items[i].public_key) {
        Some(Ok(a)) => Some(*a),
        _ => None,
    };
    if batch.len() >= 2 && batch_equation_holds(items, &batch, &key_point) {
        return verdicts;
    }
    // The batch failed (or was a single item): find the bad ones.
    for (i, p) in &batch {
        let ok = key_point(*i).is_some_and(|a| equation_holds(&a, p));
        if !ok {
            verdicts[*i] = Err(VerifyError::Invalid);
        }
    }
    verdicts
}

/// `[8](Σ z_i ([s_i]B - R_i - [k_i]A_i))` is the identity, with weights `z_i`
/// of 128 bits from a hash of the whole batch.
fn batch_equation_holds(
    items: &[SigCheck<'_>],
    batch: &[(usize, Parsed)],
    key_point: &dyn Fn(usize) -> Option<EdwardsPoint>,
) -> bool {
    let mut seed = Sha512::new();
    seed.update(b"fiscus/ed25519-batch/v1");
    seed.update((batch.len() as u64).to_le_bytes());
    for (i, p) in batch {
        seed.update(&items[*i].signature[..32]);
        seed.update(items[*i].public_key);
        seed.update(p.s.as_bytes());
        seed.update(p.k.as_bytes());
    }
    let seed = seed.finalize();
    let mut b_coeff = Scalar::ZERO;
    let mut scalars: Vec<Scalar> = Vec::with_capacity(batch.len() + 8);
    let mut points: Vec<EdwardsPoint> = Vec::with_capacity(batch.len() + 8);
    let mut per_key: BTreeMap<&[u8], (EdwardsPoint, Scalar)> = BTreeMap::new();
    for (n, (i, p)) in batch.iter().enumerate() {
        let Some(a) = key_point(*i) else {
            return false;
        };
        let mut h = Sha512::new();
        h.update(seed);
        h.update((n as u64).to_le_bytes());
        let mut z = [0u8; 32];
        z[..16].copy_from_slice(&h.finalize()[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        b_coeff += z * p.s;
        scalars.push(-z);
        points.push(p.r);
        per_key
            .entry(items[*i].public_key)
            .or_insert((a, Scalar::ZERO))
            .1 += z * p.k;
    }
    for (a, zk) in per_key.into_values() {
        scalars.push(-zk);
        points.push(a);
    }
    scalars.push(b_coeff);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use ed25519_dalek::{Signature, VerifyingKey};
    use proptest::prelude::*;

    /// Encodings of two small-order points: the identity and (0, -1).
    const WEAK_KEYS: [[u8; 32]; 2] = [
        {
            let mut k = [0u8; 32];
            k[0] = 1;
            k
        },
        {
            let mut k = [0xffu8; 32];
            k[0] = 0xec;
            k[31] = 0x7f;
            k
        },
    ];

    /// A "signature" under the identity key that plain (non-strict) Ed25519
    /// accepts for any message: R = rB, s = r.
    fn weak_key_forgery(seed: [u8; 32]) -> ([u8; 32], [u8; 64]) {
        let r = Scalar::from_bytes_mod_order(seed);
        let big_r = (ED25519_BASEPOINT_POINT * r).compress();
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice(r.as_bytes());
        (WEAK_KEYS[0], sig)
    }

    /// A signature whose `R` carries an order-8 component, made by the key's
    /// owner: `R = [r]B + T`, `s = r + k·a`. The cofactored rule accepts it;
    /// ed25519-dalek's (cofactorless) `verify_strict` does not.
    fn mixed_order_r_signature(seed: &[u8; 32], message: &[u8], nonce: [u8; 32]) -> [u8; 64] {
        let h = Sha512::digest(seed);
        let mut a_bytes = [0u8; 32];
        a_bytes.copy_from_slice(&h[..32]);
        a_bytes[0] &= 248;
        a_bytes[31] &= 127;
        a_bytes[31] |= 64;
        let a = Scalar::from_bytes_mod_order(a_bytes);
        let public = (ED25519_BASEPOINT_POINT * a).compress();
        let r = Scalar::from_bytes_mod_order(nonce);
        let big_r = (ED25519_BASEPOINT_POINT * r + EIGHT_TORSION[1]).compress();
        let mut kh = Sha512::new();
        kh.update(big_r.as_bytes());
        kh.update(public.as_bytes());
        kh.update(message);
        let k = Scalar::from_bytes_mod_order_wide(&kh.finalize().into());
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(big_r.as_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        sig
    }

    #[derive(Debug, Clone)]
    enum Kind {
        Good,
        WrongMessage,
        FlippedBit(usize),
        RandomSignature([u8; 32], [u8; 32]),
        WeakKeyForgery([u8; 32]),
        OtherWeakKey(usize),
        RandomKey([u8; 32]),
        ShortSignature(usize),
        MixedOrderR([u8; 32]),
        NonCanonicalS,
    }

    fn kind() -> impl Strategy<Value = Kind> {
        prop_oneof![
            4 => Just(Kind::Good),
            1 => Just(Kind::WrongMessage),
            1 => (0usize..512).prop_map(Kind::FlippedBit),
            1 => (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| Kind::RandomSignature(a, b)),
            1 => any::<[u8; 32]>().prop_map(Kind::WeakKeyForgery),
            1 => (0usize..WEAK_KEYS.len()).prop_map(Kind::OtherWeakKey),
            1 => any::<[u8; 32]>().prop_map(Kind::RandomKey),
            1 => (0usize..64).prop_map(Kind::ShortSignature),
            1 => any::<[u8; 32]>().prop_map(Kind::MixedOrderR),
            1 => Just(Kind::NonCanonicalS),
        ]
    }

    struct Owned {
        key: Vec<u8>,
        msg: Vec<u8>,
        sig: Vec<u8>,
        good: bool,
    }

    fn make(kind: &Kind, signer: &SigningKey, n: usize) -> Owned {
        let seed = signer.seed();
        let msg = format!("payload {n}").into_bytes();
        let good_sig = signer.sign(&msg).to_vec();
        let key = signer.public_key().to_vec();
        let (key, msg, sig, good) = match kind {
            Kind::Good => (key, msg, good_sig, true),
            Kind::WrongMessage => (key, b"other payload".to_vec(), good_sig, false),
            Kind::FlippedBit(bit) => {
                let mut s = good_sig;
                s[bit / 8] ^= 1 << (bit % 8);
                (key, msg, s, false)
            }
            Kind::RandomSignature(a, b) => (key, msg, [a.as_slice(), b.as_slice()].concat(), false),
            Kind::WeakKeyForgery(seed) => {
                let (k, s) = weak_key_forgery(*seed);
                (k.to_vec(), msg, s.to_vec(), false)
            }
            Kind::OtherWeakKey(i) => (WEAK_KEYS[*i].to_vec(), msg, good_sig, false),
            Kind::RandomKey(k) => (k.to_vec(), msg, good_sig, false),
            Kind::ShortSignature(len) => (key, msg, good_sig[..*len].to_vec(), false),
            Kind::MixedOrderR(nonce) => {
                let sig = mixed_order_r_signature(&seed, &msg, *nonce).to_vec();
                (key, msg, sig, true)
            }
            Kind::NonCanonicalS => (key, msg, with_s_plus_l(&good_sig), false),
        };
        Owned {
            key,
            msg,
            sig,
            good,
        }
    }

    #[test]
    fn a_signature_verifies_and_a_tampered_message_does_not() {
        let k = SigningKey::generate();
        let sig = k.sign(b"allocate 100 fen");
        assert_eq!(verify(&k.public_key(), b"allocate 100 fen", &sig), Ok(()));
        assert_eq!(
            verify(&k.public_key(), b"allocate 900 fen", &sig),
            Err(VerifyError::Invalid)
        );
    }

    #[test]
    fn a_weak_key_forgery_passes_plain_ed25519_but_is_rejected_here() {
        let (key, sig) = weak_key_forgery([7; 32]);
        let vk = VerifyingKey::from_bytes(&key).unwrap();
        let s = Signature::from_bytes(&sig);
        // This is the danger: lax verification accepts it for any message...
        assert!(ed25519_dalek::Verifier::verify(&vk, b"any message", &s).is_ok());
        // ...and so does the raw batch equation.
        let good = SigningKey::generate();
        let gsig = Signature::from_bytes(&good.sign(b"m"));
        let gvk = VerifyingKey::from_bytes(&good.public_key()).unwrap();
        assert!(
            ed25519_dalek::verify_batch(&[b"any message", b"m"], &[s, gsig], &[vk, gvk]).is_ok()
        );
        // Ours rejects it on both paths.
        assert_eq!(
            verify(&key, b"any message", &sig),
            Err(VerifyError::WeakKey)
        );
        let items = [
            SigCheck {
                public_key: &key,
                message: b"any message",
                signature: &sig,
            },
            SigCheck {
                public_key: &gvk.to_bytes(),
                message: b"m",
                signature: &gsig.to_bytes(),
            },
        ];
        assert_eq!(
            verify_batch(&items),
            vec![Err(VerifyError::WeakKey), Ok(())]
        );
    }

    /// The same signature with `s + L` in place of `s`: the equation still
    /// holds modulo L, so only the canonical-`s` check rejects it.
    fn with_s_plus_l(sig: &[u8]) -> Vec<u8> {
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut out = sig.to_vec();
        let mut carry = 0u16;
        for i in 0..32 {
            let v = u16::from(out[32 + i]) + u16::from(L[i]) + carry;
            out[32 + i] = v as u8;
            carry = v >> 8;
        }
        out
    }

    #[test]
    fn a_mixed_order_r_is_accepted_on_both_paths_and_a_non_canonical_s_on_neither() {
        let seed = [9u8; 32];
        let signer = SigningKey::from_seed(&seed);
        let pk = signer.public_key();
        let sig = mixed_order_r_signature(&seed, b"disburse 100 fen", [3; 32]);
        let vk = VerifyingKey::from_bytes(&pk).unwrap();
        assert!(
            vk.verify_strict(b"disburse 100 fen", &Signature::from_bytes(&sig))
                .is_err(),
            "cofactorless verify_strict rejects it"
        );
        assert_eq!(verify(&pk, b"disburse 100 fen", &sig), Ok(()));
        let honest = signer.sign(b"other");
        let bad_s = with_s_plus_l(&honest);
        let items = [
            SigCheck {
                public_key: &pk,
                message: b"disburse 100 fen",
                signature: &sig,
            },
            SigCheck {
                public_key: &pk,
                message: b"other",
                signature: &honest,
            },
            SigCheck {
                public_key: &pk,
                message: b"other",
                signature: &bad_s,
            },
        ];
        assert_eq!(
            verify_batch(&items),
            vec![Ok(()), Ok(()), Err(VerifyError::Invalid)]
        );
        assert_eq!(verify(&pk, b"other", &bad_s), Err(VerifyError::Invalid));
    }

    #[test]
    fn honest_signatures_pass_here_exactly_when_they_pass_verify_strict() {
        for i in 0..64u8 {
            let signer = SigningKey::from_seed(&[i; 32]);
            let msg = vec![i; usize::from(i)];
            let sig = signer.sign(&msg);
            let vk = VerifyingKey::from_bytes(&signer.public_key()).unwrap();
            assert!(vk.verify_strict(&msg, &Signature::from_bytes(&sig)).is_ok());
            assert_eq!(verify(&signer.public_key(), &msg, &sig), Ok(()));
            let mut other = msg.clone();
            other.push(1);
            assert!(
                vk.verify_strict(&other, &Signature::from_bytes(&sig))
                    .is_err()
            );
            assert_eq!(
                verify(&signer.public_key(), &other, &sig),
                Err(VerifyError::Invalid)
            );
        }
    }

    #[test]
    fn a_non_canonical_key_encoding_is_malformed() {
        // y = p + 1 decodes to the same point as y = 1 would; p = 2^255 - 19.
        let mut key = [0xffu8; 32];
        key[0] = 0xee;
        key[31] = 0x7f;
        assert!(!canonical_point_encoding(&key));
        assert_eq!(
            verify(&key, b"m", &[0u8; 64]),
            Err(VerifyError::MalformedKey)
        );
        let signer = SigningKey::from_seed(&[1; 32]);
        assert!(canonical_point_encoding(&signer.public_key()));
    }

    #[test]
    fn the_secret_never_appears_in_debug_output() {
        let k = SigningKey::from_seed(&[0xab; 32]);
        assert!(!format!("{k:?}").contains(&"ab".repeat(32)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn batch_and_single_verification_agree_on_every_signature(kinds in prop::collection::vec(kind(), 1..24)) {
            let signers: Vec<SigningKey> = (0..3u8).map(|i| SigningKey::from_seed(&[i + 1; 32])).collect();
            let owned: Vec<Owned> = kinds
                .iter()
                .enumerate()
                .map(|(n, k)| make(k, &signers[n % signers.len()], n))
                .collect();
            let items: Vec<SigCheck<'_>> = owned
                .iter()
                .map(|o| SigCheck { public_key: &o.key, message: &o.msg, signature: &o.sig })
                .collect();
            let batch = verify_batch(&items);
            prop_assert_eq!(batch.len(), items.len());
            for (i, o) in owned.iter().enumerate() {
                let single = verify(&o.key, &o.msg, &o.sig);
                prop_assert_eq!(batch[i], single, "item {} ({:?})", i, kinds[i]);
                prop_assert_eq!(single.is_ok(), o.good, "item {} ({:?})", i, kinds[i]);
            }
        }
    }
}
