//! The `StateStore` trait: an ordered, versioned key-value store with atomic
//! multi-key batches. No storage engine leaks through it.
//!
//! - Every commit gets the next commit number (1, 2, 3, …); every key written
//!   by that commit takes the commit number as its version.
//! - A batch is all or nothing, and durable once `commit` returns
//!   (the embedded backend fsyncs).
//! - A batch may carry version expectations (compare-and-set); if any fails,
//!   nothing is written and the commit is rejected with [`StoreError::Conflict`].
//!
//! Backends: [`redb::RedbStore`] (embedded, default). TiKV will follow behind
//! the `tikv` cargo feature and must pass the same [`conformance`] suite.

use std::future::Future;

#[cfg(feature = "testkit")]
pub mod conformance;
pub mod fjall;
pub mod redb;

/// `fiscus_store_fsync_seconds{store}`: seconds per durable commit (the
/// fsync dominates), by store: `fjall` (the ledger's journal), `redb` (the
/// identity-ca's registry), `raft` (the orderer's Raft log and applied
/// blocks). One per process, registered in each service's registry by
/// [`register_metrics`]; the target's `component` label tells the services
/// apart.
pub fn fsync_seconds() -> &'static prometheus::HistogramVec {
    static FSYNC: std::sync::LazyLock<prometheus::HistogramVec> = std::sync::LazyLock::new(|| {
        prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "fiscus_store_fsync_seconds",
                "Seconds per durable (fsynced) store commit",
            )
            .buckets(vec![
                0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0,
            ]),
            &["store"],
        )
        // The options are constants: this cannot fail.
        .unwrap_or_else(|e| unreachable!("fiscus_store_fsync_seconds: {e}"))
    });
    &FSYNC
}

/// Registers [`fsync_seconds`] in `registry`.
pub fn register_metrics(registry: &prometheus::Registry) -> Result<(), prometheus::Error> {
    registry.register(Box::new(fsync_seconds().clone()))
}

/// A stored value with the commit number that last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub version: u64,
}

/// One change in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

/// An atomic set of changes, applied in order (a later op on the same key wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub ops: Vec<Op>,
    /// Each key must be at this version (`None`: absent) when the batch commits.
    pub expect: Vec<(Vec<u8>, Option<u64>)>,
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Put {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    pub fn delete(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.ops.push(Op::Delete { key: key.into() });
        self
    }

    /// Requires `key` to be at `version` (`None`: absent) at commit time.
    pub fn expect_version(mut self, key: impl Into<Vec<u8>>, version: Option<u64>) -> Self {
        self.expect.push((key.into(), version));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.expect.is_empty()
    }
}

/// Explicit bounds on what one call may ask of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub max_batch_ops: usize,
    pub max_scan_items: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 4 * 1024,
            max_value_bytes: 32 * 1024 * 1024,
            max_batch_ops: 1_000_000,
            max_scan_items: 100_000,
        }
    }
}

impl StoreLimits {
    /// Checks a batch against the limits before anything is written.
    pub fn check_batch(&self, batch: &WriteBatch) -> Result<()> {
        let n = batch.ops.len() + batch.expect.len();
        if n > self.max_batch_ops {
            return Err(StoreError::Limit(format!(
                "batch has {n} entries, over the limit of {}",
                self.max_batch_ops
            )));
        }
        for op in &batch.ops {
            let (key, value_len) = match op {
                Op::Put { key, value } => (key, value.len()),
                Op::Delete { key } => (key, 0),
            };
            self.check_key(key)?;
            if value_len > self.max_value_bytes {
                return Err(StoreError::Limit(format!(
                    "value of {value_len} bytes is over the limit of {}",
                    self.max_value_bytes
                )));
            }
        }
        batch.expect.iter().try_for_each(|(k, _)| self.check_key(k))
    }

    pub fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(StoreError::Limit("empty key".into()));
        }
        if key.len() > self.max_key_bytes {
            return Err(StoreError::Limit(format!(
                "key of {} bytes is over the limit of {}",
                key.len(),
                self.max_key_bytes
            )));
        }
        Ok(())
    }

    /// Clamps a requested scan size to `1..=max_scan_items`.
    pub fn scan_limit(&self, requested: usize) -> usize {
        requested.clamp(1, self.max_scan_items)
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("version check failed on key {key}: expected {expected:?}, found {found:?}")]
    Conflict {
        key: String,
        expected: Option<u64>,
        found: Option<u64>,
    },
    #[error("request exceeds a store limit: {0}")]
    Limit(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "the store at {0} is in use by another process (a running ledger-store, member or \
         devnet holds its lock); stop that process first, or work on a copy"
    )]
    InUse(std::path::PathBuf),
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Key-value pairs from a scan, in ascending key order.
pub type Entries = Vec<(Vec<u8>, Versioned)>;

/// An ordered, versioned, transactional key-value store.
///
/// Calls may block the calling thread for the length of a disk write (the
/// embedded backend fsyncs inside `commit`): call from the actor that owns
/// the store, not from a latency-sensitive handler.
pub trait StateStore: Send + Sync + 'static {
    /// The value and version of `key`, if present.
    fn get(&self, key: &[u8]) -> impl Future<Output = Result<Option<Versioned>>> + Send;

    /// Applies `batch` atomically and durably; returns its commit number.
    fn commit(&self, batch: WriteBatch) -> impl Future<Output = Result<u64>> + Send;

    /// Keys in `[start, end)` (`end: None` is unbounded), ascending, at most `limit`.
    fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> impl Future<Output = Result<Entries>> + Send;

    /// Keys in `[start, end)`, descending, at most `limit`: e.g. the newest
    /// entries of a key's history first.
    fn range_rev(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
    ) -> impl Future<Output = Result<Entries>> + Send;

    /// The greatest key in `[start, end)` with its value: e.g. the last
    /// history entry of a key at or below a height.
    fn last_in_range(
        &self,
        start: &[u8],
        end: &[u8],
    ) -> impl Future<Output = Result<Option<(Vec<u8>, Versioned)>>> + Send {
        async move { Ok(self.range_rev(start, end, 1).await?.into_iter().next()) }
    }

    /// The number of the last commit; 0 before the first.
    fn last_commit(&self) -> impl Future<Output = Result<u64>> + Send;

    /// Writes what is buffered in memory out to the store's files and
    /// compacts them as far as the engine can, waiting until it is done: for
    /// measuring what the data costs on disk. A no-op where the engine keeps
    /// nothing to compact.
    fn compact(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Keys that start with `prefix`, ascending, at most `limit`.
    fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> impl Future<Output = Result<Entries>> + Send {
        let end = prefix_end(prefix);
        async move { self.range(prefix, end.as_deref(), limit).await }
    }
}

/// A stored value as both embedded backends keep it: `version (u64 BE) ‖ value`.
pub(crate) fn decode_versioned(key: &[u8], raw: &[u8]) -> Result<Versioned> {
    let (version, value) = raw.split_first_chunk::<8>().ok_or_else(|| {
        StoreError::Corrupt(format!(
            "value of {} is shorter than its version",
            display_key(key)
        ))
    })?;
    Ok(Versioned {
        value: value.to_vec(),
        version: u64::from_be_bytes(*version),
    })
}

/// The smallest key greater than every key with `prefix`, or `None` if the
/// prefix is empty or all `0xff` (then the range is unbounded above).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Renders a key for error messages: UTF-8 when printable, else hex.
pub(crate) fn display_key(key: &[u8]) -> String {
    match std::str::from_utf8(key) {
        Ok(s) if s.chars().all(|c| !c.is_control()) => s.to_owned(),
        _ => format!("0x{}", hex_of(key)),
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte_below_0xff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn oversized_keys_and_values_are_refused_before_any_write() {
        let limits = StoreLimits {
            max_key_bytes: 4,
            max_value_bytes: 4,
            ..StoreLimits::default()
        };
        assert!(limits.check_batch(&WriteBatch::new().put("k", "v")).is_ok());
        assert!(matches!(
            limits.check_batch(&WriteBatch::new().put("kkkkk", "v")),
            Err(StoreError::Limit(_))
        ));
        assert!(matches!(
            limits.check_batch(&WriteBatch::new().put("k", "vvvvv")),
            Err(StoreError::Limit(_))
        ));
        assert!(matches!(
            limits.check_batch(&WriteBatch::new().delete("")),
            Err(StoreError::Limit(_))
        ));
    }
}
