//! `fiscus devnet --processes`: every service its own OS process, supervised
//! by the devnet. Under a steady load through one member's exchange-adapter,
//! an orderer follower, the orderer leader and one member's ledger-store are
//! each killed with SIGKILL in turn; the devnet restarts each, it becomes
//! ready again and catches up, and in the end every acknowledged
//! transaction is committed at every member, with equal state hashes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod devnet_support;

use devnet_support::*;
use fiscus_proto::pb::orderer::{StatusRequest, orderer_client::OrdererClient};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `run/status.json`: the named process's pid (if running) and restarts.
fn proc_state(data: &Path, name: &str) -> (Option<u32>, u64) {
    let v: Value =
        serde_json::from_slice(&std::fs::read(data.join("run/status.json")).unwrap()).unwrap();
    let p = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name} in status.json"));
    (
        p["pid"].as_u64().map(|p| p as u32),
        p["restarts"].as_u64().unwrap(),
    )
}

fn ops_addr(data: &Path, name: &str) -> String {
    let v: Value =
        serde_json::from_slice(&std::fs::read(data.join("processes.json")).unwrap()).unwrap();
    v["http"][name].as_str().unwrap().to_owned()
}

fn ready(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if write!(
        s,
        "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// Which orderer leads, asked over mutual TLS with MOF's node certificate.
async fn leader(data: &Path) -> u64 {
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let tls = fiscus_common::tls::TlsContext::load(&fiscus_common::tls::TlsConfig::in_dir(
        &data.join("member-000000/node-tls"),
    ))
    .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        for o in layout["orderers"].as_array().unwrap() {
            let id = o["id"].as_u64().unwrap();
            let ask = async {
                let ch = fiscus_common::tls::connect_channel(
                    o["client"].as_str().unwrap(),
                    &format!("orderer-{id}"),
                    tls.client_config().ok()?,
                )
                .await
                .ok()?;
                let s = OrdererClient::new(ch)
                    .status(StatusRequest {})
                    .await
                    .ok()?
                    .into_inner();
                (s.role == "leader").then_some(id)
            };
            if let Ok(Some(id)) = tokio::time::timeout(Duration::from_secs(3), ask).await {
                return id;
            }
        }
        assert!(Instant::now() < until, "no orderer leads");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Kills `name` with SIGKILL and waits until the devnet has restarted it and
/// it answers ready again; returns how long that took.
fn kill_and_wait_back(data: &Path, name: &str) -> Duration {
    let (pid, restarts) = proc_state(data, name);
    let pid = pid.unwrap_or_else(|| panic!("{name} is not running"));
    let killed = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let addr = ops_addr(data, name);
    let until = killed + Duration::from_secs(120);
    loop {
        let (now, r) = proc_state(data, name);
        if r == restarts + 1 && now.is_some_and(|p| p != pid) && ready(&addr) {
            return killed.elapsed();
        }
        assert!(
            Instant::now() < until,
            "{name} was not restarted and ready within 120 s (pid {now:?}, restarts {r}); see {}",
            data.join(format!("logs/{name}.log")).display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_processes_come_back_and_no_acknowledged_tx_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let (devnet, lines) = Devnet::start_collecting(&data, &["--processes"]);
    let text = lines.join("\n");
    assert!(text.contains("is up as 2"), "{text}");
    let net = Net::read(&data);
    let (mof, key, _) = net.api("000000");
    let (mof, key) = (mof.to_owned(), key.to_owned());

    let r = call(
        &mof,
        "POST",
        "/v1/operations?wait=commit",
        Some(&key),
        Some(&appropriate("冀财教〔2026〕1号", 1_000_000_000)),
        &[],
    );
    assert!(r.0 == 200 || r.0 == 201, "{:?}", r.2);

    // A steady load: MOF allocates 1 fen at a time to Hebei, waiting for
    // each commit; an acknowledgement (2xx) is recorded, a refusal or a
    // broken connection during a fault is retried as a new transaction.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked, stop, mof, key) = (acked.clone(), stop.clone(), mof.clone(), key.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let body = json!({"op": "allocate",
                    "from": {"org_code": "000000", "program_id": "t-edu"},
                    "to_org_code": "130000", "amount_fen": 1,
                    "document": format!("财预〔2026〕{n}号")})
                .to_string();
                let r = call(
                    &mof,
                    "POST",
                    "/v1/operations?wait=commit",
                    Some(&key),
                    Some(&body),
                    &[],
                );
                if (200..300).contains(&r.0)
                    && let Some(tx) = r.2["tx_id"].as_str()
                {
                    acked.lock().unwrap().push(tx.to_owned());
                } else {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    // Waits for 10 more acknowledgements; returns how long that took.
    let progress = |from: usize| {
        let start = Instant::now();
        let until = start + Duration::from_secs(120);
        while acked.lock().unwrap().len() < from + 10 {
            assert!(Instant::now() < until, "the load made no progress");
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    };

    progress(0);
    let lead = leader(&data).await;
    let follower = (1..=3).find(|i| *i != lead).unwrap();
    let mut times = Vec::new();
    for (what, name) in [
        ("orderer follower", format!("orderer-{follower}")),
        ("orderer leader", format!("orderer-{lead}")),
        (
            "ledger-store of 130100",
            "member-130100-ledger-store".to_owned(),
        ),
    ] {
        let now = acked.lock().unwrap().len();
        let t = kill_and_wait_back(&data, &name);
        let more = progress(now);
        eprintln!(
            "{what} {name}: SIGKILL → restarted and ready in {t:.2?}; \
             10 more commits acknowledged {more:.2?} later"
        );
        times.push((name, t));
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 40, "only {} acknowledged", acked.len());

    // Every acknowledged tx at every member; then one head and state hash.
    let until = Instant::now() + Duration::from_secs(120);
    for m in ["000000", "130000", "130100", "130102", "991300"] {
        let (addr, key, _) = net.api(m);
        for tx in &acked {
            wait_committed_until(addr, key, tx, &format!("{tx} at {m}"), until);
        }
    }
    loop {
        let heads: Vec<(u64, String)> = ["000000", "130000", "130100", "130102", "991300"]
            .iter()
            .map(|m| {
                let c = net.chain(m);
                (
                    c["height"].as_u64().unwrap(),
                    c["state_hash"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        if heads.iter().all(|h| *h == heads[0]) {
            break;
        }
        assert!(Instant::now() < until, "members disagree: {heads:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // `fiscus devnet status` sees every process ready and counts the restarts.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["devnet", "status", "--json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["all_ready"], true);
    for (name, _) in &times {
        let p = status["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name.as_str())
            .unwrap();
        if p["restarts"] != 1 {
            // Seen twice: a ledger-store that exited at start because its
            // executor (same tier) was not listening yet; it now connects
            // on first use. Keep what the process's log says if it recurs.
            let log =
                std::fs::read_to_string(p["log"].as_str().unwrap_or_default()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "{name}: {} restarts, 1 expected: {p}\nits log ends:\n{}",
                p["restarts"],
                tail.join("\n")
            );
        }
        assert!(p["last_exit"].as_str().unwrap().contains("SIGKILL"), "{p}");
    }

    // Ctrl-C stops every child.
    let pids: Vec<u32> = status["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["pid"].as_u64().map(|p| p as u32))
        .collect();
    assert!(pids.len() >= 24, "{pids:?}");
    devnet.interrupt();
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "process {pid} outlived the devnet"
        );
    }
}
