//! Helpers for the tests that run `fiscus` roles as separate processes.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // not every test uses all

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process, killed when dropped (as a crash would).
pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `fiscus <role> --config <toml>` (its log on this test's stderr) and
/// returns it with its ready line, e.g. `ledger-store ready grpc=… http=…`.
pub(crate) fn spawn(role: &str, config: &Path) -> (Proc, String) {
    spawn_with(role, config, Stdio::inherit())
}

/// [`spawn`] with the child's log discarded (tests with many processes).
pub(crate) fn spawn_quiet(role: &str, config: &Path) -> (Proc, String) {
    spawn_with(role, config, Stdio::null())
}

fn spawn_with(role: &str, config: &Path, stderr: Stdio) -> (Proc, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fiscus"));
    cmd.stderr(stderr);
    spawn_cmd(role, config, cmd)
}

/// [`spawn_quiet`] for an orderer that serves on the test's own bound
/// listeners, handed over as systemd socket activation does
/// (`fiscus_common::listen`): the ports stay held by this test from before
/// the child starts until after it dies, so a restart never races another
/// process for them.
pub(crate) fn spawn_orderer_on(
    config: &Path,
    listeners: &fiscus_orderer::Listeners,
) -> (Proc, String) {
    use command_fds::{CommandFdExt, FdMapping};
    use std::os::fd::AsFd;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fiscus"));
    let dup = |l: &tokio::net::TcpListener| l.as_fd().try_clone_to_owned().unwrap();
    cmd.fd_mappings(vec![
        FdMapping {
            parent_fd: dup(&listeners.client),
            child_fd: 3,
        },
        FdMapping {
            parent_fd: dup(&listeners.raft),
            child_fd: 4,
        },
    ])
    .unwrap()
    .env("LISTEN_FDS", "2")
    .env("LISTEN_FDNAMES", "client:raft")
    .env_remove("LISTEN_PID")
    .stderr(Stdio::null());
    spawn_cmd("orderer", config, cmd)
}

fn spawn_cmd(role: &str, config: &Path, mut cmd: Command) -> (Proc, String) {
    let mut child = cmd
        .args([role, "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next()
        .unwrap_or_else(|| panic!("{role} exited before it was ready"))
        .unwrap();
    assert!(line.starts_with(&format!("{role} ready")), "{line}");
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), line)
}

/// The value after `key` in a ready line, e.g. `word(line, "grpc=")`.
pub(crate) fn word(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap()
        .to_owned()
}

/// `GET path` on a plain-HTTP ops endpoint, returning the body.
pub(crate) fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}
