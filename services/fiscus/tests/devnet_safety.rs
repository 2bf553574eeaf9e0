//! Operations on a devnet's data directory never destroy data (issue 21, §3):
//!
//! - `--reset` on a directory a running devnet uses is refused before
//!   anything is deleted, and the running devnet keeps its transactions;
//! - a directory whose creation was interrupted (no `devnet.json`) is made
//!   again, and a directory the devnet did not make is refused untouched;
//! - Ctrl-C while the devnet starts stops it cleanly (exit 0, not killed by
//!   the signal), and the next start serves.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod devnet_support;

use devnet_support::{Devnet, Net, appropriate, call};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn fiscus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fiscus"))
}

/// Runs `fiscus devnet --exit --base-port 0 [extra] --data-dir data`, which
/// must fail; returns what it said on stderr.
fn refused(data: &std::path::Path, extra: &[&str]) -> String {
    let out = fiscus()
        .args(["devnet", "--exit", "--base-port", "0"])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{err}");
    err
}

#[test]
fn reset_of_a_running_devnet_is_refused_and_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("devnet");
    let devnet = Devnet::start(&data);
    let net = Net::read(&data);
    let (mof, key, _) = net.api("000000");
    let r = call(
        mof,
        "POST",
        "/v1/operations?wait=commit",
        Some(key),
        Some(&appropriate("reset-guard", 100)),
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    let tx = r.2["tx_id"].as_str().unwrap().to_owned();

    let err = refused(&data, &["--reset"]);
    assert!(err.contains("a devnet is running on"), "{err}");
    assert!(!err.contains("deleting"), "{err}");

    // The running devnet and its data are untouched.
    assert!(data.join("devnet.json").exists());
    let r = call(
        mof,
        "GET",
        &format!("/v1/transactions/{tx}"),
        Some(key),
        None,
        &[],
    );
    assert_eq!(r.0, 200, "{:?}", r.2);
    drop(devnet);
}

#[test]
fn a_half_made_data_directory_is_made_again_and_a_foreign_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // What an interrupted creation leaves: the CA and some certificates, no devnet.json.
    let half = tmp.path().join("half");
    std::fs::create_dir_all(half.join("ca")).unwrap();
    std::fs::write(half.join("ca/root.pem"), "partial").unwrap();
    std::fs::create_dir_all(half.join("member-130000/tls")).unwrap();
    let (devnet, _) = Devnet::start_collecting(&half, &[]);
    let log = std::fs::read_to_string(half.with_extension("stderr.log")).unwrap();
    assert!(log.contains("half-made"), "{log}");
    assert!(half.join("devnet.json").exists());
    let r = Net::read(&half).chain("000000");
    assert!(r["height"].as_u64().is_some(), "{r}");
    drop(devnet);

    // A directory of someone else's files is left as it is.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("notes.txt"), "季度报告").unwrap();
    let err = refused(&foreign, &[]);
    assert!(err.contains("is not a devnet's data directory"), "{err}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("notes.txt")).unwrap(),
        "季度报告"
    );
    let mut names: Vec<String> = std::fs::read_dir(&foreign)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["devnet.lock", "notes.txt"]);
}

#[test]
fn ctrl_c_while_the_devnet_starts_stops_it_cleanly_and_the_next_start_serves() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("devnet");
    let mut child = fiscus()
        .args(["devnet", "--base-port", "0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // Interrupt it as soon as it says it is creating the consortium.
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let creating = line.contains("creating a consortium");
        seen.push(line);
        if creating {
            break;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let reader = std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            seen.push(l);
        }
        seen
    });
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "still running 60 s after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    let seen = reader.join().unwrap().join("\n");
    assert!(status.success(), "{status:?}: {seen}");
    assert!(
        seen.contains("interrupted") || seen.contains("stopping"),
        "{seen}"
    );

    // Whatever it had made, the next start serves.
    let devnet = Devnet::start(&data);
    let r = Net::read(&data).chain("000000");
    assert!(r["height"].as_u64().is_some(), "{r}");
    drop(devnet);
}
