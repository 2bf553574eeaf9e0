//! System test: signed transfer transactions travel over a real NATS
//! JetStream stream, and the receiving side decodes them under limits and
//! batch-verifies their signatures, singling out the one forged in transit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::bus::conformance::BusHarness;
use fiscus_common::bus::{Event, EventBus, StreamSpec};
use fiscus_common::testkit::NatsHarness;
use fiscus_proto::DecodeLimits;
use fiscus_proto::envelope::{CheckedTx, seal};
use fiscus_proto::hash::cert_id;
use fiscus_proto::pb::transfer::{
    AccountRef, DisburseArgs, Recipient, TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{TxPayload, tx_payload::Call};
use fiscus_proto::sign::{SigCheck, SigningKey, VerifyError, verify_batch};
use prost::Message;
use std::time::Duration;

fn disburse(nonce: u64, amount_fen: i64) -> TxPayload {
    TxPayload {
        consortium_id: "fiscus-devnet".into(),
        creator_cert_id: cert_id(b"130102 county cert").to_vec(),
        nonce,
        client_timestamp_ms: 1_790_000_000_000,
        call: Some(Call::Transfer(TransferCall {
            method: Some(Method::Disburse(DisburseArgs {
                from: Some(AccountRef {
                    org_code: "130102".into(),
                    program_id: "2026-edu-01".into(),
                }),
                recipient: Some(Recipient {
                    id: Some(recipient::Id::UnifiedSocialCreditCode(
                        "12130102MB1234562B".into(),
                    )),
                    name: "长安区第一小学".into(),
                }),
                amount_fen,
                purpose: "义务教育公用经费".into(),
                economic_code: "50502".into(),
                external_id: String::new(),
            })),
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tx_forged_in_transit_is_singled_out_by_batch_verification() {
    let mut nats = NatsHarness::new();
    let bus = nats.connect().await;
    bus.ensure_stream(&StreamSpec::new("TXS", &["fiscus.devnet.*.txs"]))
        .await
        .unwrap();

    let county = SigningKey::generate();
    let county_cert = cert_id(b"130102 county cert");
    let forged_at = 5;
    for n in 0..10u64 {
        let mut env = seal(&disburse(n, 100_000), &[(&county, county_cert)]);
        if n == forged_at {
            // Someone raises the amount after signing: payload bytes change, signature does not.
            let mut p = TxPayload::decode(&env.payload[..]).unwrap();
            if let Some(Call::Transfer(TransferCall {
                method: Some(Method::Disburse(d)),
            })) = &mut p.call
            {
                d.amount_fen = 100_000_000;
            }
            env.payload = p.encode_to_vec();
        }
        bus.publish_durable(
            Event::new("fiscus.devnet.130102.txs", env.encode_to_vec()).with_header(
                "traceparent",
                format!("00-{:032x}-00f067aa0ba902b7-01", n + 1),
            ),
        )
        .await
        .unwrap();
    }

    let limits = DecodeLimits::default();
    let mut consumer = bus
        .durable_consumer("TXS", "ledger-store", "fiscus.devnet.>")
        .await
        .unwrap();
    let mut txs = Vec::new();
    while txs.len() < 10 {
        let msg = tokio::time::timeout(Duration::from_secs(30), consumer.next())
            .await
            .expect("message within the deadline")
            .expect("consumer open")
            .unwrap();
        assert_eq!(
            fiscus_common::telemetry::trace_id_of(&msg.event.headers),
            Some(format!("{:032x}", txs.len() + 1)),
            "trace context travels with each tx"
        );
        txs.push(CheckedTx::decode(&msg.event.payload, &limits).unwrap());
        msg.ack().await.unwrap();
    }

    let pk = county.public_key();
    let checks: Vec<SigCheck<'_>> = txs
        .iter()
        .map(|t| SigCheck {
            public_key: &pk,
            message: &t.payload_bytes,
            signature: &t.signatures[0].signature,
        })
        .collect();
    let verdicts = verify_batch(&checks);
    for (n, v) in verdicts.iter().enumerate() {
        if n as u64 == forged_at {
            assert_eq!(*v, Err(VerifyError::Invalid), "the forged tx is rejected");
        } else {
            assert_eq!(*v, Ok(()), "tx {n} is genuine");
        }
    }
}
