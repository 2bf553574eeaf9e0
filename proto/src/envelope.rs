//! Envelopes: decoding network bytes into checked transactions, and sealing
//! payloads with signatures.

use crate::hash::{Hash32, TxId, tx_id};
use crate::limits::{DecodeLimits, decode_bounded};
use crate::pb::types::{Envelope, Signature, TxPayload};
use crate::sign::{SIGNATURE_LEN, SigningKey};
use crate::{Error, Result};
use prost::Message;

/// One signature from an envelope, with its lengths checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxSignature {
    /// SHA-256 of the signer's DER certificate.
    pub cert_id: Hash32,
    pub signature: [u8; SIGNATURE_LEN],
    /// The signer's DER certificate when the envelope carries it (empty
    /// otherwise); its SHA-256 is `cert_id`.
    pub certificate: Vec<u8>,
}

/// The largest certificate a signature may carry.
pub const MAX_INLINE_CERTIFICATE_BYTES: usize = 4096;

/// Checks a carried certificate's size and that it is the one `cert_id` names.
pub fn check_inline_certificate(cert_id: &[u8], certificate: &[u8]) -> Result<()> {
    if certificate.is_empty() {
        return Ok(());
    }
    if certificate.len() > MAX_INLINE_CERTIFICATE_BYTES {
        return Err(Error::TooLarge {
            what: "signature certificate",
            len: certificate.len(),
            limit: MAX_INLINE_CERTIFICATE_BYTES,
        });
    }
    if crate::hash::sha256(certificate).0[..] != *cert_id {
        return Err(Error::Invalid(
            "the signature's certificate is not the one its cert_id names".into(),
        ));
    }
    Ok(())
}

impl TryFrom<&Signature> for TxSignature {
    type Error = Error;

    fn try_from(s: &Signature) -> Result<Self> {
        let signature = s
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| Error::BadLength {
                field: "signature",
                expected: SIGNATURE_LEN,
                got: s.signature.len(),
            })?;
        let cert_id = Hash32::from_slice("cert_id", &s.cert_id)?;
        check_inline_certificate(&s.cert_id, &s.certificate)?;
        Ok(Self {
            cert_id,
            signature,
            certificate: s.certificate.clone(),
        })
    }
}

impl From<&TxSignature> for Signature {
    fn from(s: &TxSignature) -> Self {
        Self {
            cert_id: s.cert_id.to_vec(),
            signature: s.signature.to_vec(),
            certificate: s.certificate.clone(),
        }
    }
}

/// A transaction whose shape has been checked: sizes, counts, field lengths and
/// payload decoding. Signatures are not yet verified; that needs certificates.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedTx {
    pub tx_id: TxId,
    /// The exact signed bytes; never re-encode `payload` to get them back.
    pub payload_bytes: Vec<u8>,
    pub payload: TxPayload,
    pub creator_cert_id: Hash32,
    pub signatures: Vec<TxSignature>,
}

impl CheckedTx {
    /// Decodes and checks an encoded `Envelope`.
    pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Self> {
        let env: Envelope = decode_bounded("envelope", bytes, limits.max_tx_bytes)?;
        Self::from_wire(env, limits)
    }

    /// Checks an already-decoded `Envelope`, e.g. one from a gRPC request.
    pub fn from_wire(env: Envelope, limits: &DecodeLimits) -> Result<Self> {
        let size = env.encoded_len();
        if size > limits.max_tx_bytes {
            return Err(Error::TooLarge {
                what: "envelope",
                len: size,
                limit: limits.max_tx_bytes,
            });
        }
        if env.signatures.is_empty() {
            return Err(Error::Missing("envelope signature"));
        }
        if env.signatures.len() > limits.max_signatures_per_tx {
            return Err(Error::TooMany {
                what: "envelope signatures",
                count: env.signatures.len(),
                limit: limits.max_signatures_per_tx,
            });
        }
        let signatures = env
            .signatures
            .iter()
            .map(TxSignature::try_from)
            .collect::<Result<Vec<_>>>()?;
        let payload: TxPayload = decode_bounded("payload", &env.payload, limits.max_tx_bytes)?;
        if payload.consortium_id.is_empty() {
            return Err(Error::Missing("payload.consortium_id"));
        }
        if payload.call.is_none() {
            return Err(Error::Missing("payload.call"));
        }
        let creator_cert_id =
            Hash32::from_slice("payload.creator_cert_id", &payload.creator_cert_id)?;
        if !signatures.iter().any(|s| s.cert_id == creator_cert_id) {
            return Err(Error::Invalid(
                "no signature is by the payload's creator".to_owned(),
            ));
        }
        Ok(Self {
            tx_id: tx_id(&env.payload),
            payload_bytes: env.payload,
            payload,
            creator_cert_id,
            signatures,
        })
    }

    /// The wire form, carrying the original payload bytes.
    pub fn to_wire(&self) -> Envelope {
        Envelope {
            payload: self.payload_bytes.clone(),
            signatures: self.signatures.iter().map(Signature::from).collect(),
        }
    }
}

/// Encodes `payload` once and signs those bytes with each signer.
/// Each signer is a key and the id of the certificate that names it.
pub fn seal(payload: &TxPayload, signers: &[(&SigningKey, Hash32)]) -> Envelope {
    seal_carrying(
        payload,
        &signers
            .iter()
            .map(|(key, id)| (*key, *id, &[][..]))
            .collect::<Vec<_>>(),
    )
}

/// [`seal`], each signature carrying its signer's DER certificate (or none,
/// when it is empty): for a signer the network may not have on file.
pub fn seal_carrying(payload: &TxPayload, signers: &[(&SigningKey, Hash32, &[u8])]) -> Envelope {
    let payload = payload.encode_to_vec();
    let signatures = signers
        .iter()
        .map(|(key, cert_id, certificate)| Signature {
            cert_id: cert_id.to_vec(),
            signature: key.sign(&payload).to_vec(),
            certificate: certificate.to_vec(),
        })
        .collect();
    Envelope {
        payload,
        signatures,
    }
}
