//! The `fiscus` binary as a user meets it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_proto::envelope::seal;
use fiscus_proto::hash::cert_id;
use fiscus_proto::pb::governance::{GovernanceCall, VoteArgs, governance_call::Method};
use fiscus_proto::pb::types::{TxPayload, tx_payload::Call};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use std::process::Command;

fn fiscus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fiscus"))
}

#[test]
fn inspect_prints_a_valid_envelope_as_json_with_its_tx_id() {
    let dir = tempfile::tempdir().unwrap();
    let payload = TxPayload {
        consortium_id: "fiscus-devnet".into(),
        creator_cert_id: cert_id(b"mof admin").to_vec(),
        nonce: 42,
        client_timestamp_ms: 0,
        call: Some(Call::Governance(GovernanceCall {
            method: Some(Method::Vote(VoteArgs {
                proposal_tx_id: vec![1; 32],
                approve: true,
            })),
        })),
    };
    let env = seal(
        &payload,
        &[(&SigningKey::generate(), cert_id(b"mof admin"))],
    );
    let file = dir.path().join("tx.bin");
    std::fs::write(&file, env.encode_to_vec()).unwrap();

    let out = fiscus()
        .args(["inspect", "envelope"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["tx_id"],
        fiscus_proto::hash::tx_id(&env.payload).to_hex()
    );
    assert_eq!(json["nonce"], 42);
}

#[test]
fn inspect_rejects_garbage_with_a_clear_error_and_a_failing_exit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junk.bin");
    std::fs::write(&file, b"\xff\xff\xff not protobuf").unwrap();
    let out = fiscus()
        .args(["inspect", "block"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a valid block"), "{err}");
}

#[test]
fn inspect_reports_a_missing_file_by_name() {
    let out = fiscus()
        .args(["inspect", "envelope", "/nonexistent/tx.bin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/tx.bin"));
}

#[test]
fn a_role_that_is_not_built_does_not_exist() {
    let out = fiscus().arg("billing").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand"));
    // The analytics service (统计分析) is built: it and its rebuild answer --help.
    for args in [
        &["analytics", "--help"][..],
        &["analytics", "rebuild", "--help"],
    ] {
        let out = fiscus().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
}
