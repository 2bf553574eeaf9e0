//! An LSM backend on fjall: pure Rust, one journal fsync per commit.
//!
//! The ledger inserts thousands of random keys per block (tx ids, lineage
//! records). A copy-on-write B-tree rewrites a page per random insert; an LSM
//! appends them to its journal and sorts them in the background. ADR 0005
//! carries the measurements that made this the ledger's default.

use super::{
    Entries, Op, Result, StateStore, StoreError, StoreLimits, Versioned, WriteBatch,
    decode_versioned, display_key,
};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::Path;
use std::sync::Mutex;

const LAST_COMMIT: &[u8] = b"last_commit";

fn backend(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(e))
}

/// A [`StateStore`] in one fjall database directory.
pub struct FjallStore {
    db: Database,
    kv: Keyspace,
    meta: Keyspace,
    limits: StoreLimits,
    /// Serializes commits: version checks and the commit counter are read
    /// and written under it.
    commit: Mutex<()>,
}

impl std::fmt::Debug for FjallStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FjallStore").finish_non_exhaustive()
    }
}

/// What the engine may hold in memory, whatever the size of the data, and
/// where it keeps large values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FjallOptions {
    /// The block cache (data, index and filter blocks read from tables).
    pub cache_bytes: u64,
    /// A keyspace's write buffer (memtable): when it is full it is written to
    /// a table; writes wait while four full ones queue for the disk. Fixed
    /// when the store is created.
    pub memtable_bytes: u64,
    /// Values of this many bytes or more are kept in blob files beside the
    /// tables (key-value separation); the size counts the 8-byte version
    /// stored before each value. `None`: every value in the tables. Fixed
    /// when the store is created.
    pub blob_threshold_bytes: Option<u32>,
}

impl Default for FjallOptions {
    fn default() -> Self {
        Self {
            cache_bytes: DEFAULT_CACHE_BYTES,
            memtable_bytes: DEFAULT_MEMTABLE_BYTES,
            blob_threshold_bytes: None,
        }
    }
}

/// The block cache of a store opened without a configured one.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The write buffer of a store created without a configured one.
pub const DEFAULT_MEMTABLE_BYTES: u64 = 64 * 1024 * 1024;

/// Journals kept before their memtables must be flushed: bounds what a
/// restart replays (fjall's floor is 64 MiB).
const MAX_JOURNAL_BYTES: u64 = 128 * 1024 * 1024;

impl FjallStore {
    /// Opens (or creates) the database in directory `path`, with the default
    /// memory bounds. After a crash the journal is replayed up to its last
    /// complete batch.
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Self> {
        Self::open_with(path, limits, FjallOptions::default())
    }

    /// [`FjallStore::open`] with the memory bounds and value placement given.
    pub fn open_with(path: &Path, limits: StoreLimits, options: FjallOptions) -> Result<Self> {
        // One background worker. fjall 3.1's pool hands compactions to its
        // second worker: while that one is busy, the first re-queues the
        // request and receives it again at once, spinning a core (measured:
        // 18% of `fiscus bench e2e` CPU after a minute of load). One worker
        // flushes and compacts in turn and never spins. See ADR 0005.
        let db = Database::builder(path)
            .worker_threads(1)
            .cache_size(options.cache_bytes)
            .max_journaling_size(MAX_JOURNAL_BYTES)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => StoreError::InUse(path.to_owned()),
                e => backend(e),
            })?;
        // Key-value separation is off by default: measured at 10^7
        // transactions it did not slow the growth of compaction work (the
        // random keys are most of it) and cost 15% more disk. See ADR 0005.
        let kv = db
            .keyspace("kv", || {
                KeyspaceCreateOptions::default()
                    .max_memtable_size(options.memtable_bytes)
                    .with_kv_separation(
                        options
                            .blob_threshold_bytes
                            .map(|t| fjall::KvSeparationOptions::default().separation_threshold(t)),
                    )
            })
            .map_err(backend)?;
        let meta = db
            .keyspace("meta", KeyspaceCreateOptions::default)
            .map_err(backend)?;
        Ok(Self {
            db,
            kv,
            meta,
            limits,
            commit: Mutex::new(()),
        })
    }

    fn last_commit_sync(&self) -> Result<u64> {
        match self.meta.get(LAST_COMMIT).map_err(backend)? {
            None => Ok(0),
            Some(v) => {
                let b: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                    StoreError::Corrupt("the last commit number is not 8 bytes".into())
                })?;
                Ok(u64::from_be_bytes(b))
            }
        }
    }

    fn get_sync(&self, key: &[u8]) -> Result<Option<Versioned>> {
        self.limits.check_key(key)?;
        self.kv
            .get(key)
            .map_err(backend)?
            .map(|v| decode_versioned(key, &v))
            .transpose()
    }

    fn commit_sync(&self, batch: WriteBatch) -> Result<u64> {
        self.limits.check_batch(&batch)?;
        let _guard = self
            .commit
            .lock()
            .map_err(|_| StoreError::Corrupt("a commit panicked earlier".into()))?;
        for (key, expected) in &batch.expect {
            let found = self.get_sync(key)?.map(|v| v.version);
            if found != *expected {
                return Err(StoreError::Conflict {
                    key: display_key(key),
                    expected: *expected,
                    found,
                });
            }
        }
        let seq = self.last_commit_sync()? + 1;
        let mut b = self.db.batch().durability(Some(PersistMode::SyncAll));
        for op in &batch.ops {
            match op {
                Op::Put { key, value } => {
                    let mut buf = Vec::with_capacity(8 + value.len());
                    buf.extend_from_slice(&seq.to_be_bytes());
                    buf.extend_from_slice(value);
                    b.insert(&self.kv, key.as_slice(), buf);
                }
                Op::Delete { key } => b.remove(&self.kv, key.as_slice()),
            }
        }
        b.insert(&self.meta, LAST_COMMIT, seq.to_be_bytes().to_vec());
        // One journal entry, fsynced: all of the batch survives a crash or none of it.
        let timer = super::fsync_seconds()
            .with_label_values(&["fjall"])
            .start_timer();
        b.commit().map_err(backend)?;
        timer.observe_duration();
        Ok(seq)
    }

    fn range_sync(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Entries> {
        let limit = self.limits.scan_limit(limit);
        let iter = match end {
            Some(end) if end <= start => return Ok(Vec::new()),
            Some(end) => self.kv.range(start.to_vec()..end.to_vec()),
            None => self.kv.range(start.to_vec()..),
        };
        let mut out = Vec::new();
        for guard in iter.take(limit) {
            let (k, v) = guard.into_inner().map_err(backend)?;
            let key = k.to_vec();
            let versioned = decode_versioned(&key, &v)?;
            out.push((key, versioned));
        }
        Ok(out)
    }

    fn range_rev_sync(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Entries> {
        let limit = self.limits.scan_limit(limit);
        if end <= start {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for guard in self
            .kv
            .range(start.to_vec()..end.to_vec())
            .rev()
            .take(limit)
        {
            let (k, v) = guard.into_inner().map_err(backend)?;
            let key = k.to_vec();
            let versioned = decode_versioned(&key, &v)?;
            out.push((key, versioned));
        }
        Ok(out)
    }
}

impl StateStore for FjallStore {
    async fn get(&self, key: &[u8]) -> Result<Option<Versioned>> {
        self.get_sync(key)
    }

    async fn commit(&self, batch: WriteBatch) -> Result<u64> {
        self.commit_sync(batch)
    }

    async fn range(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Entries> {
        self.range_sync(start, end, limit)
    }

    async fn range_rev(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Entries> {
        self.range_rev_sync(start, end, limit)
    }

    async fn last_commit(&self) -> Result<u64> {
        self.last_commit_sync()
    }

    /// Flushes both keyspaces' memtables to tables and merges each
    /// keyspace's tables into one run (fjall's major compaction), which drops
    /// overwritten and deleted values.
    async fn compact(&self) -> Result<()> {
        for ks in [&self.kv, &self.meta] {
            ks.rotate_memtable_and_wait().map_err(backend)?;
            ks.major_compact().map_err(backend)?;
        }
        Ok(())
    }
}
