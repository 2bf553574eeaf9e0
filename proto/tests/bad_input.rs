//! Decoding network bytes never panics: truncated, oversized and random input
//! gets an error, and valid input round-trips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_proto::block::{BlockDraft, CheckedBlock};
use fiscus_proto::envelope::{CheckedTx, seal};
use fiscus_proto::hash::{Hash32, cert_id};
use fiscus_proto::pb::transfer::{AccountRef, AllocateArgs, TransferCall, transfer_call::Method};
use fiscus_proto::pb::types::{TxPayload, tx_payload::Call};
use fiscus_proto::sign::SigningKey;
use fiscus_proto::{DecodeLimits, Error};
use proptest::prelude::*;
use prost::Message;

fn allocate(nonce: u64) -> TxPayload {
    TxPayload {
        consortium_id: "fiscus-devnet".into(),
        creator_cert_id: cert_id(b"hebei cert").to_vec(),
        nonce,
        client_timestamp_ms: 1_790_000_000_000,
        call: Some(Call::Transfer(TransferCall {
            method: Some(Method::Allocate(AllocateArgs {
                from: Some(AccountRef {
                    org_code: "130000".into(),
                    program_id: "2026-edu-01".into(),
                }),
                to_org_code: "130100".into(),
                amount_fen: 12_345_600,
                document: "冀财预〔2026〕7号".into(),
                external_id: String::new(),
            })),
        })),
    }
}

fn signed_envelope_bytes(nonce: u64) -> Vec<u8> {
    let key = SigningKey::from_seed(&[9; 32]);
    seal(&allocate(nonce), &[(&key, cert_id(b"hebei cert"))]).encode_to_vec()
}

fn block_bytes(txs: usize) -> Vec<u8> {
    let orderer = SigningKey::from_seed(&[1; 32]);
    let key = SigningKey::from_seed(&[9; 32]);
    let txs = (0..txs as u64)
        .map(|n| seal(&allocate(n), &[(&key, cert_id(b"hebei cert"))]))
        .collect();
    BlockDraft {
        number: 1,
        prev_hash: Hash32::ZERO,
        timestamp_ms: 1_790_000_000_000,
        orderer_id: "orderer-0",
        txs,
    }
    .seal(&orderer, cert_id(b"orderer cert"))
    .encode_to_vec()
}

#[test]
fn a_signed_envelope_decodes_with_its_tx_id_and_a_verifiable_signature() {
    let bytes = signed_envelope_bytes(1);
    let tx = CheckedTx::decode(&bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(tx.tx_id, fiscus_proto::hash::tx_id(&tx.payload_bytes));
    assert_eq!(tx.payload, allocate(1));
    let key = SigningKey::from_seed(&[9; 32]);
    fiscus_proto::sign::verify(
        &key.public_key(),
        &tx.payload_bytes,
        &tx.signatures[0].signature,
    )
    .unwrap();
}

#[test]
fn a_sealed_block_decodes_and_its_tx_root_matches() {
    let b = CheckedBlock::decode(&block_bytes(5), &DecodeLimits::default()).unwrap();
    assert_eq!(b.txs.len(), 5);
    assert_eq!(b.hash, fiscus_proto::hash::block_hash(&b.header_bytes));
    let orderer = SigningKey::from_seed(&[1; 32]);
    fiscus_proto::sign::verify(
        &orderer.public_key(),
        &b.header_bytes,
        &b.orderer_signature.signature,
    )
    .unwrap();
}

#[test]
fn an_envelope_over_the_size_limit_is_refused_before_decoding() {
    let limits = DecodeLimits {
        max_tx_bytes: 64,
        ..DecodeLimits::default()
    };
    let err = CheckedTx::decode(&signed_envelope_bytes(1), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                what: "envelope",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_block_with_too_many_txs_is_refused() {
    let limits = DecodeLimits {
        max_block_txs: 3,
        ..DecodeLimits::default()
    };
    let err = CheckedBlock::decode(&block_bytes(4), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooMany {
                what: "block txs",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_envelope_without_signatures_is_refused() {
    let mut env = fiscus_proto::pb::types::Envelope::decode(&signed_envelope_bytes(1)[..]).unwrap();
    env.signatures.clear();
    let err = CheckedTx::from_wire(env, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, Error::Missing("envelope signature")), "{err}");
}

#[test]
fn an_envelope_not_signed_by_its_creator_is_refused() {
    let key = SigningKey::from_seed(&[9; 32]);
    let env = seal(&allocate(1), &[(&key, cert_id(b"someone else"))]);
    let err = CheckedTx::from_wire(env, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn a_block_whose_txs_were_swapped_fails_its_tx_root() {
    let mut block = fiscus_proto::pb::types::Block::decode(&block_bytes(3)[..]).unwrap();
    block.txs.swap(0, 2);
    let err = CheckedBlock::from_wire(block, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn a_relayed_block_with_an_altered_signature_fails_its_tx_root() {
    // tx_root commits to the signatures too: a relay that flips one bit of a
    // transaction signature breaks the orderer-signed header, so no member
    // can be made to record a bad-signature receipt the others do not.
    let limits = DecodeLimits::default();
    let mut block = fiscus_proto::pb::types::Block::decode(&block_bytes(3)[..]).unwrap();
    block.txs[1].signatures[0].signature[5] ^= 1;
    let err = fiscus_proto::block::CheckedHeader::check(&block, &limits).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let err = CheckedBlock::from_wire(block.clone(), &limits).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    // So does a dropped or added signature.
    let mut block = fiscus_proto::pb::types::Block::decode(&block_bytes(3)[..]).unwrap();
    let extra = block.txs[0].signatures[0].clone();
    block.txs[0].signatures.push(extra);
    assert!(fiscus_proto::block::CheckedHeader::check(&block, &limits).is_err());
}

#[test]
fn every_truncation_of_a_valid_envelope_and_block_is_an_error_or_a_valid_prefix() {
    let limits = DecodeLimits::default();
    let env = signed_envelope_bytes(7);
    for len in 0..env.len() {
        // Protobuf can parse some prefixes; the checks must still hold or fail cleanly.
        if let Ok(tx) = CheckedTx::decode(&env[..len], &limits) {
            assert_eq!(tx.tx_id, fiscus_proto::hash::tx_id(&tx.payload_bytes));
        }
    }
    let block = block_bytes(3);
    for len in 0..block.len() {
        assert!(
            CheckedBlock::decode(&block[..len], &limits).is_err(),
            "prefix of {len} bytes passed"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_the_envelope_decoder(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = CheckedTx::decode(&bytes, &DecodeLimits::default());
    }

    #[test]
    fn random_bytes_never_panic_the_block_decoder(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = CheckedBlock::decode(&bytes, &DecodeLimits::default());
    }

    #[test]
    fn mutated_valid_blocks_never_panic_the_decoder(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut bytes = block_bytes(2);
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] ^= b;
        }
        let _ = CheckedBlock::decode(&bytes, &DecodeLimits::default());
    }
}

#[test]
fn a_carried_certificate_must_be_the_one_its_cert_id_names_and_bounded() {
    use fiscus_proto::envelope::{MAX_INLINE_CERTIFICATE_BYTES, seal_carrying};
    let key = SigningKey::from_seed(&[9; 32]);
    // `cert_id(b"hebei cert")` is the SHA-256 of these bytes: they stand for the DER.
    let env = seal_carrying(
        &allocate(1),
        &[(&key, cert_id(b"hebei cert"), b"hebei cert")],
    );
    let tx = CheckedTx::from_wire(env.clone(), &DecodeLimits::default()).unwrap();
    assert_eq!(tx.signatures[0].certificate, b"hebei cert");
    assert_eq!(tx.to_wire(), env, "the carried certificate round-trips");

    let env = seal_carrying(
        &allocate(1),
        &[(&key, cert_id(b"hebei cert"), b"another cert")],
    );
    let err = CheckedTx::from_wire(env, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");

    let big = vec![7u8; MAX_INLINE_CERTIFICATE_BYTES + 1];
    let mut env = seal_carrying(&allocate(1), &[(&key, cert_id(&big), &big)]);
    let mut payload = allocate(1);
    payload.creator_cert_id = cert_id(&big).to_vec();
    env.payload = payload.encode_to_vec();
    let err = CheckedTx::from_wire(env, &DecodeLimits::default()).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
}
