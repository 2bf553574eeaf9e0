//! Shared by the devnet tests: start `fiscus devnet` as a process, call its
//! REST API over plain HTTP/1.1, read its keys, build sample operations.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::cert_id;
use fiscus_proto::pb::transfer::{AccountRef, AllocateArgs, TransferCall, transfer_call::Method};
use fiscus_proto::pb::types::{TxPayload, tx_payload::Call};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Devnet(pub(crate) Child);

impl Drop for Devnet {
    /// Stops the devnet as Ctrl-C would (SIGTERM: a process devnet stops its
    /// children first), SIGKILL after 30 s.
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let until = Instant::now() + Duration::from_secs(30);
        while Instant::now() < until {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Devnet {
    /// Starts `fiscus devnet` and waits for its "Serving" line.
    pub(crate) fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    pub(crate) fn start_with(dir: &Path, extra: &[&str]) -> Self {
        Self::start_collecting(dir, extra).0
    }

    /// Starts it and returns the lines it printed before serving.
    pub(crate) fn start_collecting(dir: &Path, extra: &[&str]) -> (Self, Vec<String>) {
        Self::start_collecting_env(dir, extra, &[])
    }

    /// [`Self::start_collecting`] with these environment variables set.
    pub(crate) fn start_collecting_env(
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Self, Vec<String>) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fiscus"))
            .args(["devnet", "--base-port", "0", "--data-dir"])
            .arg(dir)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            // Kept beside the data dir: a devnet that fails to start says why there.
            .stderr(std::fs::File::create(dir.with_extension("stderr.log")).unwrap())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let mut lines = lines.map_while(Result::ok);
        for line in lines.by_ref() {
            if line.starts_with("Serving until Ctrl-C") {
                std::thread::spawn(move || for _ in lines {});
                return (Self(child), seen);
            }
            seen.push(line);
        }
        let _ = child.kill();
        let status = child.wait();
        let err = std::fs::read_to_string(dir.with_extension("stderr.log")).unwrap_or_default();
        let tail: Vec<&str> = err
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!(
            "the devnet exited ({status:?}) before serving: {seen:#?}\nits stderr ends:\n{}",
            tail.join("\n")
        );
    }

    /// Stops it as Ctrl-C would, and waits for a clean exit.
    pub(crate) fn interrupt(mut self) {
        let status = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.0.try_wait().unwrap() {
                assert!(s.success(), "the devnet exited with {s}");
                return;
            }
            assert!(
                Instant::now() < until,
                "the devnet did not stop within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One request; returns status, content type and the JSON body.
pub(crate) fn call(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, String, Value) {
    call_bytes(
        addr,
        method,
        path,
        key,
        body.unwrap_or("").as_bytes(),
        extra,
    )
}

/// [`call`] with a body that need not be UTF-8 (e.g. a GB18030 CSV).
pub(crate) fn call_bytes(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
    extra: &[(&str, &str)],
) -> (u16, String, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    // The server may answer (413) before reading a large body; ignore a reset.
    let _ = s.write_all(req.as_bytes());
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let ctype = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    let v = serde_json::from_str(&payload).unwrap_or(Value::String(payload));
    (status, ctype, v)
}

pub(crate) fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Asserts a problem+json answer with `status` and `code`.
pub(crate) fn problem(r: (u16, String, Value), status: u16, code: &str) {
    assert_eq!(r.0, status, "{:?}", r.2);
    assert!(r.1.starts_with("application/problem+json"), "{r:?}");
    assert_eq!(r.2["code"], code, "{:?}", r.2);
    assert_eq!(r.2["status"], status);
}

pub(crate) struct Net {
    /// member → (api address, full key, read-only key)
    pub(crate) members: BTreeMap<String, (String, String, String)>,
}

impl Net {
    pub(crate) fn read(dir: &Path) -> Self {
        let text = std::fs::read_to_string(dir.join("api-keys.txt")).unwrap();
        let mut members: BTreeMap<String, (String, String, String)> = BTreeMap::new();
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let f: Vec<&str> = l.split_whitespace().collect();
            let e = members.entry(f[0].to_owned()).or_default();
            e.0 = f[1].trim_start_matches("http://").to_owned();
            if f[3] == "read" {
                e.2 = f[2].to_owned();
            } else {
                e.1 = f[2].to_owned();
            }
        }
        Self { members }
    }

    pub(crate) fn api(&self, m: &str) -> (&str, &str, &str) {
        let e = &self.members[m];
        (&e.0, &e.1, &e.2)
    }

    pub(crate) fn chain(&self, m: &str) -> Value {
        let (addr, key, _) = self.api(m);
        let r = call(addr, "GET", "/v1/chain", Some(key), None, &[]);
        assert_eq!(r.0, 200, "{:?}", r.2);
        r.2
    }
}

pub(crate) fn appropriate(doc: &str, amount: i64) -> String {
    json!({"op": "appropriate", "account": {"org_code": "000000", "program_id": "t-edu"},
           "program": {"id": "t-edu", "name": "test education", "kind": "special",
                       "functional_code": "2050202",
                       "fiscal_year": fiscus_gossip_gateway::testkit::fiscal_year_now(),
                       "document": doc},
           "amount_fen": amount, "document": doc})
    .to_string()
}

/// An allocation MOF → Hebei, signed with MOF's client key from the devnet's files.
pub(crate) fn signed_allocation(dir: &Path, nonce: u64) -> Vec<u8> {
    signed_call(
        dir,
        "000000",
        nonce,
        Call::Transfer(TransferCall {
            method: Some(Method::Allocate(AllocateArgs {
                from: Some(AccountRef {
                    org_code: "000000".into(),
                    program_id: "t-edu".into(),
                }),
                to_org_code: "130000".into(),
                amount_fen: 5_000,
                document: "signed".into(),
                external_id: String::new(),
            })),
        }),
    )
}

/// An envelope for `call`, signed by member `m`'s client certificate.
pub(crate) fn signed_call(dir: &Path, m: &str, nonce: u64, call: Call) -> Vec<u8> {
    let (key, id) = signer(&dir.join(format!("member-{m}/client")));
    let payload = TxPayload {
        consortium_id: "fiscus-devnet".into(),
        creator_cert_id: id.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(call),
    };
    seal(&payload, &[(&key, id)]).encode_to_vec()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The signing key and certificate id of the identity in `tls_dir`
/// (`key.pem`, `cert.pem`), e.g. `member-000000/client` of a devnet.
pub(crate) fn signer(tls_dir: &Path) -> (SigningKey, fiscus_proto::hash::Hash32) {
    let key =
        SigningKey::from_pkcs8_pem(&std::fs::read_to_string(tls_dir.join("key.pem")).unwrap())
            .unwrap();
    let pem = std::fs::read(tls_dir.join("cert.pem")).unwrap();
    let der = fiscus_common::tls::parse_certs(&tls_dir.join("cert.pem"), &pem).unwrap();
    (key, cert_id(&der[0]))
}

/// `fiscus revoke`: the holder of the identity in `tls_dir` revokes its own
/// certificate at the devnet's identity-ca.
pub(crate) fn revoke_own_certificate(data: &Path, tls_dir: &Path, reason: &str) {
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args([
            "revoke",
            "--ca",
            layout["ca_grpc"].as_str().unwrap(),
            "--ca-cert",
        ])
        .arg(data.join("ca/ca/root.pem"))
        .arg("--tls-dir")
        .arg(tls_dir)
        .arg("--cert")
        .arg(tls_dir.join("cert.pem"))
        .args(["--reason", reason])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

/// An `Exchange` gRPC client of the adapter at `addr`, as the identity in `tls_dir`.
pub(crate) async fn exchange_client(
    addr: &str,
    tls_dir: &Path,
) -> fiscus_proto::pb::exchange::exchange_client::ExchangeClient<tonic::transport::Channel> {
    use fiscus_common::tls::{TlsConfig, TlsContext, connect_channel};
    let tls = TlsContext::load(&TlsConfig::in_dir(tls_dir)).unwrap();
    let ch = connect_channel(addr, "127.0.0.1", tls.client_config().unwrap())
        .await
        .unwrap();
    fiscus_proto::pb::exchange::exchange_client::ExchangeClient::new(ch)
}

/// Waits (60 s at most) until `tx` reads as committed at the adapter `addr`.
pub(crate) fn wait_committed(addr: &str, key: &str, tx: &str, what: &str) {
    wait_committed_until(
        addr,
        key,
        tx,
        what,
        Instant::now() + Duration::from_secs(60),
    );
}

/// [`wait_committed`] with a deadline shared by the caller's other waits.
pub(crate) fn wait_committed_until(addr: &str, key: &str, tx: &str, what: &str, until: Instant) {
    while call(
        addr,
        "GET",
        &format!("/v1/transactions/{tx}"),
        Some(key),
        None,
        &[],
    )
    .0 != 200
    {
        assert!(Instant::now() < until, "{what} did not commit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `fiscus verify-receipt` on `file` with the devnet's root, signer
/// certificates (or `certs_dir`) and consortium config (or none).
pub(crate) fn verify_receipt(
    data: &Path,
    file: &Path,
    certs_dir: Option<&Path>,
    config: Option<&Path>,
) -> (Option<i32>, Value) {
    let default_config = data.join("ca/consortium-config.pb");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fiscus"));
    cmd.args(["verify-receipt", "--json", "--file"])
        .arg(file)
        .arg("--root")
        .arg(data.join("ca/ca/root.pem"))
        .arg("--certs-dir")
        .arg(certs_dir.map_or_else(|| data.join("signers"), Path::to_path_buf));
    match config {
        Some(c) if c.as_os_str().is_empty() => {}
        Some(c) => {
            cmd.arg("--config").arg(c);
        }
        None => {
            cmd.arg("--config").arg(&default_config);
        }
    }
    let out = cmd.output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

/// The independent verifier (`tests/receipt/verify_receipt.py`, Python
/// `cryptography`, built from docs/receipts.md) on `file` with `config`,
/// certificates from `certs_dir` (default `<data>/signers`): exit code and JSON.
pub(crate) fn verify_receipt_py(
    data: &Path,
    file: &Path,
    config: &Path,
    certs_dir: Option<&Path>,
) -> (Option<i32>, Value) {
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/receipt/verify_receipt.py"
        ))
        .arg("--file")
        .arg(file)
        .arg("--root")
        .arg(data.join("ca/ca/root.pem"))
        .arg("--certs-dir")
        .arg(certs_dir.map_or_else(|| data.join("signers"), Path::to_path_buf))
        .arg("--config")
        .arg(config)
        .output()
        .expect("python3 runs (make deps installs it with cryptography)");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}
