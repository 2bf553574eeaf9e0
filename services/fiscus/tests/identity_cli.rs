//! Enroll → sign → Verify end to end through the `fiscus` binary:
//! `identity-ca init`, the `identity-ca` service as a child process,
//! `enroll` with a one-time secret, `sign`, and `verify` over mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fiscus() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fiscus"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn secret_for(dir: &Path, member: &str, role: &str) -> String {
    let secrets: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("ca/enrollment-secrets.json")).unwrap())
            .unwrap();
    secrets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["member"] == member && s["role"] == role)
        .unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn enroll_sign_and_verify_work_end_to_end_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let init = ok(&run(fiscus()
        .args(["identity-ca", "init", "--data-dir"])
        .arg(&ca_dir)));
    assert!(init.contains("genesis.json"), "{init}");

    let again = run(fiscus()
        .args(["identity-ca", "init", "--data-dir"])
        .arg(&ca_dir));
    assert!(
        !again.status.success(),
        "init must not overwrite an existing CA"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    let mut server = KillOnDrop(
        fiscus()
            .arg("identity-ca")
            .env("FISCUS_IDENTITY_CA__DATA_DIR", &ca_dir)
            .env("FISCUS_IDENTITY_CA__LISTEN", "127.0.0.1:0")
            .env("FISCUS_IDENTITY_CA__HTTP_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let grpc = loop {
        assert!(
            Instant::now() < deadline,
            "identity-ca did not become ready"
        );
        let line = lines.next().expect("identity-ca exited").unwrap();
        if let Some(rest) = line.strip_prefix("identity-ca ready grpc=") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };

    let root = ca_dir.join("ca/root.pem");
    let member = dir.path().join("county");
    ok(&run(fiscus()
        .args(["enroll", "--ca", &grpc, "--ca-cert"])
        .arg(&root)
        .args(["--member", "130102", "--role", "client", "--out"])
        .arg(&member)
        .env(
            "FISCUS_ENROLLMENT_SECRET",
            secret_for(dir.path(), "130102", "client"),
        )));
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(member.join("key.pem"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(
        key_mode & 0o777,
        0o600,
        "the private key is readable only by its owner"
    );

    let doc = dir.path().join("disbursement.bin");
    std::fs::write(&doc, "disburse 120000 fen to 长安区第一小学").unwrap();
    let sig = dir.path().join("disbursement.sig");
    ok(&run(fiscus()
        .args(["sign", "--key"])
        .arg(member.join("key.pem"))
        .arg("--in")
        .arg(&doc)
        .arg("--out")
        .arg(&sig)));

    let verify = |file: &Path| {
        run(fiscus()
            .args(["verify-signature", "--ca", &grpc, "--tls-dir"])
            .arg(&member)
            .arg("--chain")
            .arg(member.join("cert.pem"))
            .arg("--in")
            .arg(file)
            .arg("--sig")
            .arg(&sig))
    };
    let good = verify(&doc);
    let report: serde_json::Value = serde_json::from_str(&ok(&good)).unwrap();
    assert_eq!(report["valid"], true);
    assert_eq!(report["member"], "130102");
    assert_eq!(report["role"], "client");

    let forged = dir.path().join("forged.bin");
    std::fs::write(&forged, "disburse 999999 fen to 长安区第一小学").unwrap();
    let bad = verify(&forged);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "an invalid signature exits with 1"
    );
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["valid"], false);

    // A second enrollment with the spent secret is refused with its stable code.
    let reuse = run(fiscus()
        .args(["enroll", "--ca", &grpc, "--ca-cert"])
        .arg(&root)
        .args(["--member", "130102", "--role", "client", "--out"])
        .arg(dir.path().join("again"))
        .env(
            "FISCUS_ENROLLMENT_SECRET",
            secret_for(dir.path(), "130102", "client"),
        ));
    assert!(!reuse.status.success());
    assert!(String::from_utf8_lossy(&reuse.stderr).contains("ca.secret_reused"));
}
