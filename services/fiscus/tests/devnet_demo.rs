//! `fiscus devnet --demo`, what `make run` runs: the fiscal-year replay
//! finishes, flags its late allocation, and ends with a finality receipt
//! from one member that verifies offline as final, by the same command the
//! summary prints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod devnet_support;

use devnet_support::*;
use std::process::Command;

#[test]
fn the_demo_replays_a_fiscal_year_and_proves_a_receipt_final() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let (_devnet, lines) = Devnet::start_collecting(&data, &["--demo"]);
    check_summary(&lines);
}

/// `fiscus devnet --processes --demo`: the same replay and summary with
/// every service its own process, and the memory of all of them at rest.
#[test]
fn the_process_devnet_prints_the_same_summary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let (_devnet, lines) = Devnet::start_collecting(&data, &["--processes", "--demo"]);
    check_summary(&lines);
    let text = lines.join("\n");
    assert!(text.contains("is up as 2"), "{text}");
    let rest = lines
        .iter()
        .find(|l| l.starts_with("Memory at rest 静止内存: "))
        .unwrap_or_else(|| panic!("no memory line: {text}"));
    let mib: f64 = rest
        .trim_start_matches("Memory at rest 静止内存: ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(mib > 100.0, "{rest}");
}

fn check_summary(lines: &[String]) {
    let text = lines.join("\n");
    assert!(text.contains("1 flagged late (逾期)"), "{text}");
    let receipt = lines
        .iter()
        .find(|l| l.starts_with("离线验证回执 / receipt verified offline"))
        .unwrap_or_else(|| panic!("no receipt line: {text}"));
    assert!(receipt.contains("最终确认 / final by"), "{receipt}");
    // The command the summary prints, run as printed.
    let by_hand = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("(again by hand: fiscus "))
        .and_then(|l| l.strip_suffix(')'))
        .unwrap();
    let args: Vec<&str> = by_hand.split_whitespace().collect();
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(&args)
        .arg("--require-final")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("已最终确认 / FINAL"),
        "{out:?}"
    );
}
