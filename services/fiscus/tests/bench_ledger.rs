//! `fiscus bench ledger` on a small run: every transaction commits, and the
//! report's growth figures are consistent with each other (no timing is
//! asserted: benchmarks measure, tests check).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["bench", "ledger", "--json", "--block-txs", "100", "--dir"])
        .arg(dir.path())
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The bench removes what it wrote.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_small_run_commits_everything_and_reports_its_costs() {
    let r = bench(&["--txs", "1050", "--window", "500"]);
    assert_eq!(r["valid"], 1050);
    // 11 blocks of at most 100 (the last has 50), after 3 setup blocks.
    assert_eq!(r["height"], 3 + 11);
    // Windows close on block boundaries: 500, 500, then the last 50.
    let windows = r["windows"].as_array().unwrap();
    let sizes: Vec<u64> = windows.iter().map(|w| w["txs"].as_u64().unwrap()).collect();
    assert_eq!(sizes, vec![500, 500, 50]);
    for w in windows {
        assert!(w["tx_per_s"].as_f64().unwrap() > 0.0, "{w}");
        // The storage engine's threads are a part of the process (/proc
        // counts in ticks of 10 ms, hence the slack).
        let storage = w["storage_cpu_us_per_tx"].as_f64().unwrap();
        let slack = 10_000.0 / w["txs"].as_f64().unwrap();
        assert!(storage >= 0.0, "{w}");
        assert!(
            storage <= w["cpu_us_per_tx"].as_f64().unwrap() + slack,
            "{w}"
        );
        let phases = w["phase_us_per_tx"].as_object().unwrap();
        assert_eq!(phases.len(), 4, "{w}");
        assert!(phases.values().all(|v| v.as_f64().unwrap() >= 0.0), "{w}");
        // Some time is spent executing every block.
        assert!(phases["execute"].as_f64().unwrap() > 0.0, "{w}");
    }
    // Fewer than a million: one partial entry.
    assert_eq!(r["per_million_tx_per_s"].as_array().unwrap().len(), 1);
    let disk = r["disk_bytes"].as_u64().unwrap();
    assert!(disk > 0);
    let by_path: u64 = r["disk_bytes_by_path"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_path, disk, "the files add up to the total");
    // Every transaction writes a block entry, a receipt, a tx index and a
    // nonce index record, a lineage record and an allocation record.
    let rec = r["record_bytes_per_tx"].as_object().unwrap();
    for kind in ["b", "r", "t", "n", "s/lineage", "s/alloc"] {
        assert!(rec[kind].as_f64().unwrap() > 0.0, "{kind}: {rec:?}");
    }
    let phases = &r["peak_rss_mib_by_phase"];
    assert!(phases["commits"].as_f64().unwrap() >= phases["signing"].as_f64().unwrap());
    assert_eq!(r["peak_rss_mib"], phases["commits"]);
    assert!(r["reopen_s"].as_f64().unwrap() >= 0.0);
}

#[test]
fn a_hot_credit_run_pays_one_city_from_the_province() {
    let r = bench(&["--txs", "300", "--hot-credit"]);
    assert_eq!(
        r["valid"], 300,
        "every allocation is within the province's authority"
    );
    assert_eq!(r["hot_credit"], true);
    assert_eq!(r["days"], 0);
}

/// Block time spread over days: lots of different days do not bundle, and
/// the allocations are still all valid (the workload's year is long enough).
#[test]
fn a_hot_credit_run_over_days_is_all_valid_and_days_are_bounded() {
    let r = bench(&["--txs", "300", "--hot-credit", "--days", "90"]);
    assert_eq!(r["valid"], 300);
    assert_eq!(r["days"], 90);
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["bench", "ledger", "--days", "91"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "past the workload's year");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--days"),
        "{out:?}"
    );
}

#[test]
fn bad_sizes_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["bench", "ledger", "--txs", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--txs, --block-txs and --window"),
        "{out:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["bench", "ledger", "--hot-account", "--hot-credit"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the two hot workloads exclude each other"
    );
}
