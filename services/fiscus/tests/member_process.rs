//! `fiscus member --config member.toml` as an OS process: one member's
//! ledger-store, contract-executor (called by the ledger over gRPC),
//! gossip-gateway and exchange-adapter in one process, each on its own
//! endpoint. A transaction submitted through its REST API is ordered,
//! executed and committed, with the same state hash as a member running the
//! services in the test process; SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use base64::Engine as _;
use fiscus_exchange_adapter::clients::{ClientEntry, ClientsFile, Scope, key_hash, new_api_key};
use fiscus_gossip_gateway::testkit;
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn http(addr: &str, method: &str, path: &str, key: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let (head, payload) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(payload).unwrap_or(serde_json::Value::Null),
    )
}

/// The member process, killed if the test fails before stopping it.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_runs_as_one_process_and_commits_what_the_others_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (mut files, listeners) = testkit::write_network(dir.path(), 1, 2).await;
    let orderers = testkit::start_orderers(&mut files, listeners).await;
    // MOF (000000) runs as `fiscus member`; Hebei runs in this process.
    let other = testkit::start_member(&files.members[1]).await;
    let m = files.members[0].clone();
    assert_eq!(m.code, "000000");

    // Its API key, and its member.toml.
    let key = new_api_key();
    let clients = dir.path().join("api-clients.toml");
    std::fs::write(
        &clients,
        toml::to_string(&ClientsFile {
            clients: vec![ClientEntry {
                name: "test".into(),
                key_sha256: key_hash(&key),
                org: m.code.clone(),
                scopes: vec![Scope::Submit, Scope::Read],
                custodial_cert: None,
                custodial_key: None,
            }],
        })
        .unwrap(),
    )
    .unwrap();
    let config = toml::toml! {
        server_name = "127.0.0.1"
        executor = true
        api_tls = false
        api_http_listen = "127.0.0.1:0"
        ledger_http_listen = "127.0.0.1:0"
        executor_http_listen = "127.0.0.1:0"
        gateway_http_listen = "127.0.0.1:0"
    };
    let mut config = config;
    let set = |c: &mut toml::Table, k: &str, v: String| {
        c.insert(k.into(), toml::Value::String(v));
    };
    set(&mut config, "member", m.code.clone());
    set(
        &mut config,
        "genesis_file",
        files.genesis_file.display().to_string(),
    );
    set(
        &mut config,
        "signers_dir",
        files.signers_dir.display().to_string(),
    );
    set(
        &mut config,
        "data_dir",
        dir.path().join("member-data").display().to_string(),
    );
    set(&mut config, "clients_file", clients.display().to_string());
    set(&mut config, "ledger_listen", m.ledger.listen.to_string());
    set(&mut config, "gateway_listen", m.gateway.listen.to_string());
    set(
        &mut config,
        "executor_listen",
        testkit::free_loopback_addr().to_string(),
    );
    set(&mut config, "api_listen", "127.0.0.1:0".into());
    config.insert(
        "tls".into(),
        toml::Value::try_from(fiscus_common::tls::TlsConfig::in_dir(&m.tls_dir)).unwrap(),
    );
    config.insert(
        "orderers".into(),
        toml::Value::try_from(&m.gateway.orderers).unwrap(),
    );
    let file = dir.path().join("member.toml");
    std::fs::write(&file, toml::to_string(&config).unwrap()).unwrap();

    // The config passes its own check, files included.
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["member", "--check-config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    let mut child = Killed(
        Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(["member", "--config"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the member prints its ready line");
    assert!(
        ready.starts_with(&format!("member {} ready", m.code)),
        "{ready}"
    );
    assert!(ready.contains("contract-executor grpc="), "{ready}");
    let api = ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix("api=http://"))
        .unwrap()
        .to_owned();

    // One appropriation through the member's own REST API.
    let env = testkit::edu_appropriation(&files, 1, 1_000_000);
    let body = serde_json::json!({
        "envelope": base64::engine::general_purpose::STANDARD.encode(env.encode_to_vec())
    })
    .to_string();
    let api2 = api.clone();
    let key2 = key.clone();
    let (status, r) = tokio::task::spawn_blocking(move || {
        http(&api2, "POST", "/v1/transactions?wait=commit", &key2, &body)
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["receipt"]["status"], "valid", "{r}");
    let height = r["block_number"].as_u64().unwrap();

    // Both members reach that height with the same state hash.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (api3, key3) = (api.clone(), key.clone());
        let (_, chain) =
            tokio::task::spawn_blocking(move || http(&api3, "GET", "/v1/chain", &key3, ""))
                .await
                .unwrap();
        let (h, hash) = other.state_hash().await;
        if h >= height && chain["height"].as_u64() == Some(h) {
            assert_eq!(chain["state_hash"].as_str().unwrap(), hex::encode(hash));
            break;
        }
        assert!(
            Instant::now() < until,
            "the members did not meet at height {height}: {chain}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGTERM: a clean stop.
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            assert!(s.success(), "fiscus member exited with {s}");
            break;
        }
        assert!(
            Instant::now() < until,
            "fiscus member did not stop within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    other.stop().await;
    for o in orderers {
        o.kill().await;
    }
}
