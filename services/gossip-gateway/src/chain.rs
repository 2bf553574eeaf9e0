//! What a gateway checks before a block or an attestation goes anywhere:
//! size and count bounds, the header, `tx_root` and the orderer's signature for
//! blocks (the link is checked when the block is next; the transactions'
//! payloads are decoded and checked by the ledger); the member node's signature
//! for attestations.

use fiscus_ledger_store::{CertStatus, Certs};
use fiscus_proto::DecodeLimits;
use fiscus_proto::block::CheckedHeader;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::types::{Attestation, Block, SignedAttestation};
use prost::Message;

/// Why a block or attestation from a peer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("block {0}: the orderer signature does not verify or its certificate is unknown")]
    BadOrdererSignature(u64),
    #[error("block {0} does not link to block {1}")]
    BadLink(u64, u64),
    #[error("attestation of {0}: bad or unknown signature")]
    BadAttestation(String),
}

/// A block that passed the checks that need no chain state.
#[derive(Debug, Clone)]
pub struct Verified {
    pub number: u64,
    pub hash: Hash32,
    pub prev_hash: Hash32,
    /// Shared: the block goes to the ledger and may be pushed to peers.
    pub block: std::sync::Arc<Block>,
}

/// Checks a block's encoding, `tx_root` and orderer signature.
pub fn verify_block(
    certs: &Certs,
    limits: &DecodeLimits,
    block: Block,
) -> Result<Verified, Refusal> {
    let checked =
        CheckedHeader::check(&block, limits).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let n = checked.number;
    let sig = &checked.orderer_signature;
    if !orderer_signed(certs, n, &sig.cert_id, &block.header, &sig.signature) {
        return Err(Refusal::BadOrdererSignature(n));
    }
    Ok(Verified {
        number: n,
        hash: checked.hash,
        prev_hash: checked.prev_hash,
        block: std::sync::Arc::new(block),
    })
}

/// The height a block's header claims, read without any check.
pub fn claimed_height(block: &Block) -> Result<u64, Refusal> {
    fiscus_proto::limits::decode_bounded::<fiscus_proto::pb::types::BlockHeader>(
        "block header",
        &block.header,
        1024,
    )
    .map(|h| h.number)
    .map_err(|e| Refusal::Malformed(e.to_string()))
}

/// Whether the orderer's signature on the header of block `n` (its height
/// from [`claimed_height`]) verifies. Enough to drop a block this member
/// already has (and to penalize a peer that forged one) without hashing its
/// envelopes.
pub fn verify_known_block(certs: &Certs, block: &Block, n: u64) -> Result<(), Refusal> {
    let signed = block.orderer_signature.as_ref().is_some_and(|sig| {
        Hash32::from_slice("cert id", &sig.cert_id)
            .is_ok_and(|cert| orderer_signed(certs, n, &cert, &block.header, &sig.signature))
    });
    if signed {
        Ok(())
    } else {
        Err(Refusal::BadOrdererSignature(n))
    }
}

/// Whether `cert` is a known certificate, valid at height `n`, whose key
/// signed exactly `header`.
fn orderer_signed(certs: &Certs, n: u64, cert: &Hash32, header: &[u8], signature: &[u8]) -> bool {
    matches!(
        certs.status(cert, n),
        CertStatus::Valid { public_key, .. }
            if fiscus_proto::sign::verify(&public_key, header, signature).is_ok()
    )
}

/// The attestation inside `signed`, if its signature is by a known node
/// certificate of the member it names.
pub fn verify_attestation(
    certs: &Certs,
    roots: &fiscus_common::certs::Roots,
    signed: &SignedAttestation,
) -> Result<Attestation, Refusal> {
    let att = Attestation::decode(&signed.attestation[..])
        .map_err(|e| Refusal::Malformed(format!("attestation: {e}")))?;
    let sig = signed
        .signature
        .as_ref()
        .ok_or_else(|| Refusal::BadAttestation(att.member.clone()))?;
    let cert = Hash32::from_slice("cert id", &sig.cert_id)
        .map_err(|_| Refusal::BadAttestation(att.member.clone()))?;
    match certs.status_carried(&cert, &sig.certificate, att.height, roots) {
        CertStatus::Valid { org, public_key }
            if org == att.member
                && fiscus_proto::sign::verify(&public_key, &signed.attestation, &sig.signature)
                    .is_ok() =>
        {
            Ok(att)
        }
        _ => Err(Refusal::BadAttestation(att.member)),
    }
}

/// The (block hash, state hash, receipts root) an attestation vouches for.
pub type Triple = (Vec<u8>, Vec<u8>, Vec<u8>);

pub fn triple(a: &Attestation) -> Triple {
    (
        a.block_hash.clone(),
        a.state_hash.clone(),
        a.receipts_root.clone(),
    )
}
