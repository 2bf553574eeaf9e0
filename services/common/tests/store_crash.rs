//! Crash safety of both embedded stores (redb and fjall): a writer process
//! killed with SIGKILL in the middle of a stream of batches leaves exactly the
//! batches it committed, never half of one.
//!
//! The writer is this same test binary, re-run with `CRASH_WRITER_DIR` (and
//! `CRASH_BACKEND`) set so that only `crash_writer_child` does anything.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::store::{
    StateStore, StoreLimits, WriteBatch, fjall::FjallStore, redb::RedbStore,
};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEYS_PER_BATCH: u32 = 50;
const CHILD_ENV: &str = "CRASH_WRITER_DIR";
const BACKEND_ENV: &str = "CRASH_BACKEND";

fn batch(n: u32) -> WriteBatch {
    let mut b = WriteBatch::new();
    for k in 0..KEYS_PER_BATCH {
        b = b.put(format!("batch/{n:08}/{k:03}"), n.to_be_bytes().to_vec());
    }
    b.put("last", n.to_be_bytes().to_vec())
}

/// The writer: commits batch 0, 1, 2, … forever and prints each number after its commit returns.
#[test]
#[ignore = "run only as the crash test's child process"]
fn crash_writer_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    match std::env::var(BACKEND_ENV).as_deref() {
        Ok("fjall") => write_forever(
            FjallStore::open(&dir.join("state.fjall"), StoreLimits::default()).unwrap(),
        ),
        _ => {
            write_forever(RedbStore::open(&dir.join("state.redb"), StoreLimits::default()).unwrap())
        }
    }
}

fn write_forever<S: StateStore>(store: S) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for n in 0.. {
        rt.block_on(store.commit(batch(n))).unwrap();
        println!("committed {n}");
    }
}

/// Never leave a writer running when an assertion fails early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_killed_redb_writer_leaves_exactly_its_committed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let acknowledged = kill_writer_mid_stream(dir.path(), "redb");
    check(
        RedbStore::open(&dir.path().join("state.redb"), StoreLimits::default()).unwrap(),
        acknowledged,
    );
}

#[test]
fn a_killed_fjall_writer_leaves_exactly_its_committed_batches() {
    let dir = tempfile::tempdir().unwrap();
    let acknowledged = kill_writer_mid_stream(dir.path(), "fjall");
    check(
        FjallStore::open(&dir.path().join("state.fjall"), StoreLimits::default()).unwrap(),
        acknowledged,
    );
}

/// Runs the writer child on `backend`, kills it after at least 40
/// acknowledged commits and returns the last acknowledged batch.
fn kill_writer_mid_stream(dir: &std::path::Path, backend: &str) -> u32 {
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([
                "crash_writer_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir)
            .env(BACKEND_ENV, backend)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;

    // Let it commit a good number of batches, then kill it mid-stream.
    let target = 40;
    let mut acknowledged: Option<u32> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while acknowledged.is_none_or(|n| n < target) {
        assert!(
            Instant::now() < deadline,
            "writer did not reach {target} commits in time"
        );
        let line = lines.next().expect("writer exited early").unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            acknowledged = Some(n.parse().unwrap());
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Batches the writer acknowledged after we stopped reading still count.
    for line in lines.map_while(Result::ok) {
        if let Some(n) = line.strip_prefix("committed ") {
            acknowledged = Some(n.parse().unwrap());
        }
    }
    acknowledged.unwrap()
}

/// The reopened store holds every acknowledged batch, at most one more, and
/// no partial batch.
fn check<S: StateStore>(store: S, acknowledged: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let last = rt
        .block_on(store.get(b"last"))
        .unwrap()
        .expect("some batch committed");
    let last = u32::from_be_bytes(last.value.try_into().unwrap());
    assert!(
        last >= acknowledged,
        "batch {acknowledged} was acknowledged but the store only has up to {last}"
    );
    // The writer may have committed one more batch after its last printed line.
    assert!(
        last <= acknowledged + 1,
        "store has batch {last}, writer only reached {acknowledged}"
    );
    assert_eq!(
        rt.block_on(store.last_commit()).unwrap(),
        u64::from(last) + 1,
        "batch n is commit n + 1"
    );

    let rows = rt
        .block_on(store.scan_prefix(b"batch/", 1_000_000))
        .unwrap();
    assert_eq!(
        rows.len() as u32,
        (last + 1) * KEYS_PER_BATCH,
        "no batch is partly present"
    );
    for n in 0..=last {
        let present = rt
            .block_on(store.scan_prefix(format!("batch/{n:08}/").as_bytes(), 1000))
            .unwrap();
        assert_eq!(
            present.len() as u32,
            KEYS_PER_BATCH,
            "batch {n} is incomplete"
        );
    }
}
