//! `fiscus chaos` for 60 s on the process devnet (every service its own
//! process, a real nats-server): a fault every 5 s (kills and pauses of the
//! orderer leader and followers, ledger-stores, gateways, adapters, NATS;
//! cut, one-way and slowed links through the campaign's TCP proxies; one
//! member's ledger on a tmpfs shrunk until its commits pause),
//! then the heal and the campaign's own checks. The test reads its report
//! and history: nothing acknowledged lost or duplicated, no divergence,
//! every event stored once, every store verified, final soon after the heal.

use serde_json::Value;
use std::process::Command;

#[test]
fn a_60_s_fault_campaign_loses_nothing_and_every_member_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args([
            "chaos",
            "--duration",
            "60s",
            "--rate",
            "40",
            "--seed",
            "20261204",
            "--fault-every",
            "5s",
            "--json",
            "--history",
        ])
        .arg(&history)
        .args(["--keep-data"])
        .arg(tmp.path().join("devnet"))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); exit {:?}; stderr:\n{stderr}",
            out.status
        )
    });
    let show = || format!("{report:#}\nstderr:\n{stderr}");
    assert!(out.status.success(), "the campaign failed:\n{}", show());
    assert_eq!(report["passed"], true, "{}", show());
    assert_eq!(report["first_violation"], Value::Null);
    assert_eq!(report["seed"], 20261204);
    // Load got through the faults, and the checks counted something.
    let acked = report["acked"].as_u64().unwrap();
    assert!(acked > 1_000, "only {acked} acknowledged:\n{}", show());
    assert!(report["head"].as_u64().unwrap() > 10);
    for zero in [
        "lost",
        "duplicates",
        "divergences",
        "divergence_alarms",
        "events_missing",
        "events_duplicated",
    ] {
        assert_eq!(report[zero], 0, "{zero}:\n{}", show());
    }
    assert_eq!(report["verify_failures"], serde_json::json!([]));
    assert!(report["max_final_after_heal_s"].as_f64().unwrap() <= 10.0);
    // Eleven faults were due (one every 5 s of 60 s); most were injected.
    let faults = report["fault_list"].as_array().unwrap();
    assert_eq!(faults.len(), 11, "{}", show());
    let injected = report["faults"].as_u64().unwrap();
    assert!(
        injected >= 8,
        "only {injected} faults injected:\n{}",
        show()
    );
    for f in faults.iter().filter(|f| f["skipped"].is_null()) {
        assert!(f["process"].as_str().unwrap().len() > 3, "{f}");
        match f["action"].as_str().unwrap() {
            "kill" | "pause" => assert!(f["pid"].as_u64().unwrap() > 0, "{f}"),
            "isolate" | "split_orderers" | "one_way_loss" | "delay" => {
                assert!(f["links"].as_u64().unwrap() > 0, "{f}")
            }
            "disk_full" => {
                // The ledger-store said so: not ready, and the gauge at 1.
                let seen = f["observed"].as_str().unwrap();
                assert!(seen.starts_with("readyz 503"), "{f}");
                assert!(seen.contains("disk"), "{f}");
                assert!(seen.ends_with("fiscus_ledger_commits_paused 1"), "{f}");
            }
            other => panic!("unknown action {other}"),
        }
    }
    // The first faults are every kind the campaign can inject, once: a full
    // disk needs the right to mount a tmpfs (the report says when it was not
    // tested).
    let kinds: std::collections::BTreeSet<&str> = faults
        .iter()
        .filter(|f| f["skipped"].is_null())
        .map(|f| f["action"].as_str().unwrap())
        .collect();
    let mut expected = vec![
        "kill",
        "pause",
        "isolate",
        "split_orderers",
        "one_way_loss",
        "delay",
    ];
    if report["not_tested"].as_array().unwrap().is_empty() {
        expected.push("disk_full");
    }
    for kind in expected {
        assert!(kinds.contains(kind), "no {kind} fault:\n{}", show());
    }
    // The history has every fault as it happened, the heal, and every ack.
    let lines: Vec<Value> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ops = |op: &str| lines.iter().filter(|l| l["op"] == op).count();
    assert_eq!(ops("start"), 1);
    assert_eq!(ops("fault"), faults.len());
    assert_eq!(ops("healed"), 1);
    assert_eq!(ops("sample"), report["samples"].as_array().unwrap().len());
    assert!(ops("sample") >= 6, "a sample every 10 s of 60 s");
    assert_eq!(ops("acked") as u64, acked);
    // The supervisor restarted what was killed: its log says so.
    let killed = faults
        .iter()
        .filter(|f| f["action"] == "kill" && f["skipped"].is_null())
        .count();
    if killed > 0 {
        assert!(stderr.contains("restarted (pid"), "{}", show());
    }
}
