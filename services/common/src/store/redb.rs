//! The embedded default backend on redb: pure Rust, ACID, fsync on commit.

use super::{
    Entries, Op, Result, StateStore, StoreError, StoreLimits, Versioned, WriteBatch,
    decode_versioned, display_key,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

/// Values are stored as `version (u64 big-endian) ‖ value`.
const KV: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("kv");
/// Store-wide metadata, e.g. the last commit number.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
const LAST_COMMIT: &str = "last_commit";

fn backend(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Backend(Box::new(e.into()))
}

/// The page cache of a redb store.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// A [`StateStore`] in one redb file.
#[derive(Debug)]
pub struct RedbStore {
    db: Database,
    limits: StoreLimits,
}

impl RedbStore {
    /// Opens (or creates) the database file at `path`. A file left by a crash is
    /// recovered to its last complete commit.
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Self> {
        // A bounded page cache: redb's default (1 GiB) lets memory grow with
        // the chain.
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse(path.to_owned()),
                e => backend(e),
            })?;
        // Create the tables up front so that readers never meet a missing table.
        let txn = db.begin_write().map_err(backend)?;
        txn.open_table(KV).map_err(backend)?;
        txn.open_table(META).map_err(backend)?;
        txn.commit().map_err(backend)?;
        Ok(Self { db, limits })
    }

    fn get_sync(&self, key: &[u8]) -> Result<Option<Versioned>> {
        self.limits.check_key(key)?;
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(KV).map_err(backend)?;
        let found = table.get(key).map_err(backend)?;
        found.map(|v| decode_versioned(key, v.value())).transpose()
    }

    fn commit_sync(&self, batch: WriteBatch) -> Result<u64> {
        self.limits.check_batch(&batch)?;
        let mut txn = self.db.begin_write().map_err(backend)?;
        txn.set_durability(Durability::Immediate).map_err(backend)?;
        let seq = {
            let mut kv = txn.open_table(KV).map_err(backend)?;
            let mut meta = txn.open_table(META).map_err(backend)?;
            for (key, expected) in &batch.expect {
                let found = kv
                    .get(key.as_slice())
                    .map_err(backend)?
                    .map(|v| decode_versioned(key, v.value()))
                    .transpose()?
                    .map(|v| v.version);
                if found != *expected {
                    // Dropping `txn` without commit aborts it: nothing is written.
                    return Err(StoreError::Conflict {
                        key: display_key(key),
                        expected: *expected,
                        found,
                    });
                }
            }
            let last = meta
                .get(LAST_COMMIT)
                .map_err(backend)?
                .map_or(0, |v| v.value());
            let seq = last + 1;
            let mut buf = Vec::new();
            for op in &batch.ops {
                match op {
                    Op::Put { key, value } => {
                        buf.clear();
                        buf.extend_from_slice(&seq.to_be_bytes());
                        buf.extend_from_slice(value);
                        kv.insert(key.as_slice(), buf.as_slice()).map_err(backend)?;
                    }
                    Op::Delete { key } => {
                        kv.remove(key.as_slice()).map_err(backend)?;
                    }
                }
            }
            meta.insert(LAST_COMMIT, seq).map_err(backend)?;
            seq
        };
        let timer = super::fsync_seconds()
            .with_label_values(&["redb"])
            .start_timer();
        txn.commit().map_err(backend)?;
        timer.observe_duration();
        Ok(seq)
    }

    fn range_sync(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Entries> {
        let limit = self.limits.scan_limit(limit);
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(KV).map_err(backend)?;
        let iter = match end {
            Some(end) if end <= start => return Ok(Vec::new()),
            Some(end) => table.range(start..end),
            None => table.range(start..),
        }
        .map_err(backend)?;
        let mut out = Vec::new();
        for item in iter.take(limit) {
            let (k, v) = item.map_err(backend)?;
            let key = k.value().to_vec();
            let versioned = decode_versioned(&key, v.value())?;
            out.push((key, versioned));
        }
        Ok(out)
    }

    fn range_rev_sync(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Entries> {
        let limit = self.limits.scan_limit(limit);
        if end <= start {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().map_err(backend)?;
        let table = txn.open_table(KV).map_err(backend)?;
        let mut out = Vec::new();
        for item in table.range(start..end).map_err(backend)?.rev().take(limit) {
            let (k, v) = item.map_err(backend)?;
            let key = k.value().to_vec();
            let versioned = decode_versioned(&key, v.value())?;
            out.push((key, versioned));
        }
        Ok(out)
    }

    fn last_commit_sync(&self) -> Result<u64> {
        let txn = self.db.begin_read().map_err(backend)?;
        let meta = txn.open_table(META).map_err(backend)?;
        Ok(meta
            .get(LAST_COMMIT)
            .map_err(backend)?
            .map_or(0, |v| v.value()))
    }
}

impl StateStore for RedbStore {
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
}
