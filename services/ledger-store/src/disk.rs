//! The free-space guard: a ledger-store stops committing **before** the
//! filesystem under its data directory is full, and goes on by itself when
//! space returns.
//!
//! A commit is one atomic, fsynced batch; a disk that fills in the middle of
//! one leaves the storage engine to refuse the write (the block is then not
//! committed and is retried), but an engine that cannot write its journal or
//! flush its memtables may also have to be reopened. So the guard keeps a
//! margin: every commit first asks the filesystem how much is free (one
//! `statvfs`, about a microsecond) and is refused with `ledger.disk_full`
//! (gRPC `UNAVAILABLE`, the store unchanged) while less than
//! `min_free_bytes` is. The member's gateway keeps the blocks and retries; a
//! watcher task reports the state on `/readyz` (check `disk`) and in two
//! gauges, and logs each change once.

use crate::error::LedgerError;
use fiscus_common::ops_server::Readiness;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the watcher refreshes `/readyz` and the gauges.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

const MIB: u64 = 1024 * 1024;

/// The guard of one data directory.
#[derive(Debug, Clone)]
pub struct DiskGuard {
    dir: PathBuf,
    min_free: u64,
    paused: Arc<AtomicBool>,
    free_gauge: prometheus::IntGauge,
    paused_gauge: prometheus::IntGauge,
    readiness: Readiness,
}

impl DiskGuard {
    /// A guard of `dir` that pauses commits below `min_free` bytes free
    /// (0: never), with its gauges in `registry`.
    pub fn register(
        dir: PathBuf,
        min_free: u64,
        registry: &prometheus::Registry,
        readiness: Readiness,
    ) -> prometheus::Result<Self> {
        let free_gauge = prometheus::IntGauge::new(
            "fiscus_ledger_disk_free_bytes",
            "Bytes free (for this process's user) on the filesystem of the ledger's data directory",
        )?;
        let paused_gauge = prometheus::IntGauge::new(
            "fiscus_ledger_commits_paused",
            "1 while commits are paused because less than min_free_bytes is free",
        )?;
        registry.register(Box::new(free_gauge.clone()))?;
        registry.register(Box::new(paused_gauge.clone()))?;
        let guard = Self {
            dir,
            min_free,
            paused: Arc::new(AtomicBool::new(false)),
            free_gauge,
            paused_gauge,
            readiness,
        };
        let _ = guard.check();
        Ok(guard)
    }

    /// Bytes free for unprivileged writes on the data directory's filesystem.
    pub fn free_bytes(&self) -> std::io::Result<u64> {
        let s = nix::sys::statvfs::statvfs(&self.dir).map_err(std::io::Error::from)?;
        Ok(s.blocks_available().saturating_mul(s.fragment_size()))
    }

    /// Whether a commit may go ahead now; updates the gauges, `/readyz`, and
    /// logs a change of state. A filesystem that cannot be asked does not
    /// stop commits (the engine's own errors still do).
    pub fn check(&self) -> Result<(), LedgerError> {
        let free = match self.free_bytes() {
            Ok(f) => f,
            Err(e) => {
                tracing::debug!(dir = %self.dir.display(), error = %e, "statvfs failed");
                return Ok(());
            }
        };
        self.free_gauge.set(i64::try_from(free).unwrap_or(i64::MAX));
        let full = free < self.min_free;
        let was = self.paused.swap(full, Ordering::Relaxed);
        self.paused_gauge.set(i64::from(full));
        if full {
            let message = format!(
                "{} MiB free under {}, less than min_free_bytes ({} MiB): commits are paused until space is freed",
                free / MIB,
                self.dir.display(),
                self.min_free / MIB
            );
            if !was {
                tracing::error!(
                    free_bytes = free,
                    min_free_bytes = self.min_free,
                    "{message}"
                );
            }
            self.readiness.set("disk", Err(message));
            return Err(LedgerError::DiskFull {
                free,
                min: self.min_free,
            });
        }
        if was {
            tracing::warn!(free_bytes = free, "disk space is back: commits go on");
        }
        self.readiness.set("disk", Ok(()));
        Ok(())
    }

    /// Refreshes the state every [`WATCH_INTERVAL`], so `/readyz` and the
    /// gauges follow the disk while no block arrives.
    pub async fn watch(self) {
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            tick.tick().await;
            let _ = self.check();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_margin_larger_than_the_disk_pauses_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let registry = prometheus::Registry::new();
        let readiness = Readiness::default();
        let guard = DiskGuard::register(
            dir.path().to_owned(),
            u64::MAX,
            &registry,
            readiness.clone(),
        )
        .unwrap();
        let free = guard.free_bytes().unwrap();
        assert!(free > 0);
        match guard.check() {
            Err(LedgerError::DiskFull { free: f, min }) => {
                assert_eq!(min, u64::MAX);
                assert!(f > 0);
            }
            other => panic!("expected DiskFull, got {other:?}"),
        }
        let failing = readiness.failing();
        assert!(
            failing["disk"].contains("commits are paused"),
            "{failing:?}"
        );
        assert_eq!(guard.paused_gauge.get(), 1);
        assert!(guard.free_gauge.get() > 0);

        let open = DiskGuard::register(
            dir.path().to_owned(),
            0,
            &prometheus::Registry::new(),
            readiness.clone(),
        )
        .unwrap();
        open.check().unwrap();
        assert!(readiness.failing().is_empty());
        assert_eq!(open.paused_gauge.get(), 0);
    }
}
