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
    let (devnet, lines) = Devnet::start_collecting(&data, &["--processes", "--demo"]);
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

    // Killed outright (SIGKILL: it cannot stop its children), the devnet
    // leaves nothing behind: each child sees its parent gone and stops.
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("run/status.json")).unwrap()).unwrap();
    let pids: Vec<u64> = status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    assert!(pids.len() >= 24, "{pids:?}");
    let mut devnet = devnet;
    devnet.0.kill().unwrap();
    devnet.0.wait().unwrap();
    let alive = |pid: &u64| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.contains(") Z") && s.contains("fiscus"))
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pids.iter().any(alive) {
        assert!(
            std::time::Instant::now() < until,
            "children outlived a killed devnet: {:?}",
            pids.iter().filter(|p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // nats-server is not ours to teach: it stays until the devnet's next
    // start stops it (README). The test stops it here.
    for pid in &pids {
        if std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains("(nats-server)"))
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
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
