//! Ed25519 signing and verification.
//!
//! Every node must reach the same verdict on every signature, or the chain
//! forks. Single verification is `verify_strict`. Batch verification is only a
//! faster route to the same verdicts:
//!
//! 1. every item gets the checks that `verify_strict` makes and the batch
//!    equation does not: the key must not be weak (small order) and the
//!    signature's R must not be of small order;
//! 2. the items that pass are verified as one batch;
//! 3. if the batch fails, each item is verified on its own, so the caller
//!    learns exactly which signatures are bad.
//!
//! A proptest below checks that [`verify_batch`] and [`verify`] agree on random
//! mixes of good, forged, malformed and weak-key signatures.
//! See `docs/adr/0002-signature-verification.md` for the one adversarial case
//! (mixed-order R) that the batch equation can still accept.

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_dalek::{Signature, Signer, VerifyingKey};
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

/// Parses and applies the checks that must precede any equation.
fn precheck(item: &SigCheck<'_>) -> Result<(VerifyingKey, Signature), VerifyError> {
    let key_bytes: &[u8; PUBLIC_KEY_LEN] = item
        .public_key
        .try_into()
        .map_err(|_| VerifyError::MalformedKey)?;
    let key = VerifyingKey::from_bytes(key_bytes).map_err(|_| VerifyError::MalformedKey)?;
    if key.is_weak() {
        return Err(VerifyError::WeakKey);
    }
    let sig_bytes: &[u8; SIGNATURE_LEN] = item
        .signature
        .try_into()
        .map_err(|_| VerifyError::MalformedSignature)?;
    let sig = Signature::from_bytes(sig_bytes);
    // verify_strict rejects a small-order R; the batch equation would not notice it.
    match CompressedEdwardsY(*sig.r_bytes()).decompress() {
        Some(r) if r.is_small_order() => return Err(VerifyError::SmallOrderR),
        Some(_) => {}
        None => return Err(VerifyError::Invalid),
    }
    Ok((key, sig))
}

/// Verifies one signature with `verify_strict`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    let item = SigCheck {
        public_key,
        message,
        signature,
    };
    let (key, sig) = precheck(&item)?;
    key.verify_strict(message, &sig)
        .map_err(|_| VerifyError::Invalid)
}

/// Verifies many signatures, giving the same verdict as [`verify`] on each.
pub fn verify_batch(items: &[SigCheck<'_>]) -> Vec<Result<(), VerifyError>> {
    let mut verdicts: Vec<Result<(), VerifyError>> = Vec::with_capacity(items.len());
    let mut batch = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match precheck(item) {
            Ok(parsed) => {
                verdicts.push(Ok(()));
                batch.push((i, parsed));
            }
            Err(e) => verdicts.push(Err(e)),
        }
    }
    if batch.len() >= 2 {
        let messages: Vec<&[u8]> = batch.iter().map(|(i, _)| items[*i].message).collect();
        let sigs: Vec<Signature> = batch.iter().map(|(_, (_, s))| *s).collect();
        let keys: Vec<VerifyingKey> = batch.iter().map(|(_, (k, _))| *k).collect();
        if ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok() {
            return verdicts;
        }
    }
    // The batch failed (or was too small to be worth it): find the bad ones.
    for (i, (key, sig)) in batch {
        verdicts[i] = key
            .verify_strict(items[i].message, &sig)
            .map_err(|_| VerifyError::Invalid);
    }
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::{constants::ED25519_BASEPOINT_POINT, scalar::Scalar};
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
        ]
    }

    struct Owned {
        key: Vec<u8>,
        msg: Vec<u8>,
        sig: Vec<u8>,
        good: bool,
    }

    fn make(kind: &Kind, signer: &SigningKey, n: usize) -> Owned {
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
