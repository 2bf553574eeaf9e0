//! `fiscus <service> --check-config FILE`: exit 0 with one `ok` line, or exit
//! 2 with one line naming the key and the problem, starting nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use std::path::Path;
use std::process::Command;

fn check(service: &str, file: &Path, skip_files: bool) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fiscus"));
    cmd.arg(service).arg("--check-config").arg(file);
    if skip_files {
        cmd.arg("--skip-files");
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text.trim().to_owned())
}

fn example(service: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../config")
        .join(format!("{service}.example.toml"))
}

#[test]
fn every_example_config_passes_its_key_and_value_check() {
    for service in [
        "identity-ca",
        "orderer",
        "ledger-store",
        "contract-executor",
        "gossip-gateway",
        "exchange-adapter",
        "analytics",
    ] {
        let (code, text) = check(service, &example(service), true);
        assert_eq!(code, Some(0), "{service}: {text}");
        assert!(text.starts_with(&format!("ok: {service} config")), "{text}");
    }
}

#[test]
fn a_bad_config_gets_one_line_naming_the_key_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(example("ledger-store")).unwrap();
    let cases: Vec<(&str, String, bool, &str)> = vec![
        (
            "unknown key",
            format!("{base}\nsurprise = 1\n"),
            true,
            "surprise",
        ),
        (
            "bad address",
            base.replace("listen = \"127.0.0.1:7300\"", "listen = \"not-an-address\""),
            true,
            "listen",
        ),
        (
            "wrong type",
            base.replace("threads = ", "threads = \"many\" #"),
            true,
            "threads",
        ),
        (
            "missing certificate file",
            base.clone(),
            false,
            "tls.cert_file",
        ),
        (
            "not TOML",
            "listen = \n[[".to_owned(),
            true,
            "not valid TOML",
        ),
    ];
    for (what, text, skip, needle) in cases {
        let f = dir.path().join(format!("{}.toml", what.replace(' ', "-")));
        std::fs::write(&f, text).unwrap();
        let (code, out) = check("ledger-store", &f, skip);
        assert_eq!(code, Some(2), "{what}: {out}");
        assert_eq!(out.lines().count(), 1, "{what}: one line, got {out}");
        assert!(out.contains(needle), "{what}: {out} should name {needle}");
    }
    // A missing file is named as such.
    let (code, out) = check("ledger-store", &dir.path().join("absent.toml"), true);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("absent.toml"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_whose_files_are_all_in_place_passes_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    let (files, _listeners) = fiscus_gossip_gateway::testkit::write_network(dir.path(), 1, 1).await;
    let ledger = &files.members[0].ledger;
    let f = dir.path().join("ledger-store.toml");
    std::fs::write(&f, toml::to_string(ledger).unwrap()).unwrap();
    let (code, out) = check("ledger-store", &f, false);
    assert_eq!(code, Some(0), "{out}");
    let gateway = dir.path().join("gossip-gateway.toml");
    std::fs::write(
        &gateway,
        toml::to_string(&files.members[0].gateway).unwrap(),
    )
    .unwrap();
    let (code, out) = check("gossip-gateway", &gateway, false);
    assert_eq!(code, Some(0), "{out}");
    // The key file swapped for another's: refused, naming tls.
    let mut bad = ledger.clone();
    bad.tls.key_file = dir.path().join("mof/key.pem");
    std::fs::write(&f, toml::to_string(&bad).unwrap()).unwrap();
    let (code, out) = check("ledger-store", &f, false);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.starts_with("ledger-store: tls"), "{out}");
}
