//! The orderer's durable state in one redb file: the Raft log, hard state and
//! conf state, and the committed blocks.
//!
//! Every Ready is written in two redb transactions with fsync
//! (`Durability::Immediate`): the first holds the new entries, the hard state
//! and what the Ready committed, and is durable before the Ready's persisted
//! messages (votes, append acks) are sent, so a node that restarts never
//! forgets what it acknowledged; the second holds the commit index and what
//! the light Ready committed after `advance` (`crate::node`, `on_ready`).

use crate::error::{Error, Result};
use fiscus_proto::hash::Hash32;
use protobuf::Message as _;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use std::path::Path;
use std::sync::{Arc, RwLock};

const LOG: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("raft_log");
const TERMS: TableDefinition<'_, u64, u64> = TableDefinition::new("raft_terms");
const META: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("blocks");

const HARD_STATE: &str = "hard_state";
const CONF_STATE: &str = "conf_state";
const APPLIED: &str = "applied";
const TIP: &str = "tip";
const PEERS: &str = "peers";
/// (index, term) of the last entry removed by compaction or replaced by a snapshot.
const SNAP_META: &str = "snap_meta";

fn db_err(e: impl Into<redb::Error>) -> Error {
    Error::Db(e.into())
}

fn raft_err(e: Error) -> raft::Error {
    raft::Error::Store(StorageError::Other(Box::new(e)))
}

/// The last committed block: what the next block must link to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tip {
    pub height: u64,
    pub hash: Hash32,
    pub timestamp_ms: i64,
}

impl Tip {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(48);
        b.extend_from_slice(&self.height.to_be_bytes());
        b.extend_from_slice(&self.hash.0);
        b.extend_from_slice(&self.timestamp_ms.to_be_bytes());
        b
    }

    pub fn decode(b: &[u8]) -> Result<Self> {
        if b.len() != 48 {
            return Err(Error::Corrupt("corrupt tip record".into()));
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&b[8..40]);
        let height = u64::from_be_bytes(
            b[..8]
                .try_into()
                .map_err(|_| Error::Corrupt("tip".into()))?,
        );
        let ts = i64::from_be_bytes(
            b[40..]
                .try_into()
                .map_err(|_| Error::Corrupt("tip".into()))?,
        );
        Ok(Self {
            height,
            hash: Hash32(hash),
            timestamp_ms: ts,
        })
    }
}

/// What is kept in memory to answer raft-rs quickly; always equal to the disk.
#[derive(Debug, Default, Clone)]
struct Cached {
    hard_state: HardState,
    conf_state: ConfState,
    first_index: u64,
    last_index: u64,
    applied: u64,
    tip: Tip,
    /// (index, term) of the entry just before `first_index`; (0, 0) before any compaction.
    snap: (u64, u64),
}

/// The node's store. Cloning shares the same database.
#[derive(Debug, Clone)]
pub struct OrdererStore {
    db: Arc<Database>,
    cached: Arc<RwLock<Cached>>,
}

impl OrdererStore {
    /// Opens or creates the store. A new store starts with `voters` as its
    /// conf state. Its page cache holds `cache_bytes` at most (redb's default,
    /// 1 GiB, let the orderer's memory grow with the chain).
    pub fn open(path: &Path, voters: &[u64], cache_bytes: u64) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX))
            .create(path)
            .map_err(db_err)?;
        let txn = db.begin_write().map_err(db_err)?;
        {
            txn.open_table(LOG).map_err(db_err)?;
            txn.open_table(TERMS).map_err(db_err)?;
            txn.open_table(BLOCKS).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            if meta.get(CONF_STATE).map_err(db_err)?.is_none() {
                let cs = ConfState {
                    voters: voters.to_vec(),
                    ..Default::default()
                };
                let bytes = cs.write_to_bytes().map_err(Error::from)?;
                meta.insert(CONF_STATE, bytes.as_slice()).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        let store = Self {
            db: Arc::new(db),
            cached: Arc::default(),
        };
        store.reload_cache()?;
        Ok(store)
    }

    fn reload_cache(&self) -> Result<()> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        let get = |k: &str| -> Result<Option<Vec<u8>>> {
            Ok(meta.get(k).map_err(db_err)?.map(|v| v.value().to_vec()))
        };
        let parse_err = Error::from;
        let hard_state = match get(HARD_STATE)? {
            Some(b) => HardState::parse_from_bytes(&b).map_err(parse_err)?,
            None => HardState::default(),
        };
        let conf_state = match get(CONF_STATE)? {
            Some(b) => ConfState::parse_from_bytes(&b).map_err(parse_err)?,
            None => ConfState::default(),
        };
        let applied = match get(APPLIED)? {
            Some(b) => u64::from_be_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| Error::Corrupt("applied".into()))?,
            ),
            None => 0,
        };
        let tip = match get(TIP)? {
            Some(b) => Tip::decode(&b)?,
            None => Tip::default(),
        };
        let snap = match get(SNAP_META)? {
            Some(b) if b.len() == 16 => (
                u64::from_be_bytes(
                    b[..8]
                        .try_into()
                        .map_err(|_| Error::Corrupt("snap_meta".into()))?,
                ),
                u64::from_be_bytes(
                    b[8..]
                        .try_into()
                        .map_err(|_| Error::Corrupt("snap_meta".into()))?,
                ),
            ),
            Some(_) => return Err(Error::Corrupt("corrupt snap_meta".into())),
            None => (0, 0),
        };
        let terms = txn.open_table(TERMS).map_err(db_err)?;
        let first = terms.first().map_err(db_err)?.map(|(k, _)| k.value());
        let last = terms.last().map_err(db_err)?.map(|(k, _)| k.value());
        let mut c = self.cached.write().unwrap_or_else(|e| e.into_inner());
        *c = Cached {
            hard_state,
            conf_state,
            first_index: first.unwrap_or(snap.0 + 1),
            last_index: last.unwrap_or(snap.0),
            applied,
            tip,
            snap,
        };
        Ok(())
    }

    fn cache(&self) -> Cached {
        self.cached
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn applied(&self) -> u64 {
        self.cache().applied
    }

    pub fn tip(&self) -> Tip {
        self.cache().tip
    }

    pub fn hard_state(&self) -> HardState {
        self.cache().hard_state
    }

    /// The peer list as of the last applied membership change, if any.
    pub fn peers(&self) -> Result<Option<Vec<crate::config::Peer>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let meta = txn.open_table(META).map_err(db_err)?;
        match meta.get(PEERS).map_err(db_err)? {
            Some(v) => serde_json::from_slice(v.value())
                .map(Some)
                .map_err(Error::from),
            None => Ok(None),
        }
    }

    /// Starts one atomic, fsynced write.
    pub fn batch(&self) -> Result<StoreBatch<'_>> {
        let mut txn = self.db.begin_write().map_err(db_err)?;
        txn.set_durability(Durability::Immediate).map_err(db_err)?;
        Ok(StoreBatch {
            store: self,
            txn,
            next: self.cache(),
        })
    }

    /// The encoded block at `height`.
    pub fn block(&self, height: u64) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(BLOCKS).map_err(db_err)?;
        Ok(t.get(height).map_err(db_err)?.map(|v| v.value().to_vec()))
    }
}

/// One atomic write: Raft log and state, applied blocks, indexes.
#[allow(missing_debug_implementations)] // holds a redb transaction, which has no Debug
pub struct StoreBatch<'a> {
    store: &'a OrdererStore,
    txn: WriteTransaction,
    next: Cached,
}

impl StoreBatch<'_> {
    /// Appends entries, first dropping any conflicting suffix.
    pub fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let Some(first) = entries.first() else {
            return Ok(());
        };
        let mut log = self.txn.open_table(LOG).map_err(db_err)?;
        let mut terms = self.txn.open_table(TERMS).map_err(db_err)?;
        // Raft may overwrite uncommitted entries from a deposed leader.
        if first.index <= self.next.last_index {
            for idx in first.index..=self.next.last_index {
                log.remove(idx).map_err(db_err)?;
                terms.remove(idx).map_err(db_err)?;
            }
        }
        for e in entries {
            let bytes = e.write_to_bytes().map_err(Error::from)?;
            log.insert(e.index, bytes.as_slice()).map_err(db_err)?;
            terms.insert(e.index, e.term).map_err(db_err)?;
        }
        if let Some(last) = entries.last() {
            self.next.last_index = last.index;
        }
        if self.next.first_index > first.index {
            self.next.first_index = first.index;
        }
        Ok(())
    }

    pub fn set_hard_state(&mut self, hs: &HardState) -> Result<()> {
        let bytes = hs.write_to_bytes().map_err(Error::from)?;
        self.txn
            .open_table(META)
            .map_err(db_err)?
            .insert(HARD_STATE, bytes.as_slice())
            .map_err(db_err)?;
        self.next.hard_state = hs.clone();
        Ok(())
    }

    pub fn set_commit(&mut self, commit: u64) -> Result<()> {
        let mut hs = self.next.hard_state.clone();
        hs.commit = commit;
        self.set_hard_state(&hs)
    }

    pub fn set_conf_state(&mut self, cs: &ConfState) -> Result<()> {
        let bytes = cs.write_to_bytes().map_err(Error::from)?;
        self.txn
            .open_table(META)
            .map_err(db_err)?
            .insert(CONF_STATE, bytes.as_slice())
            .map_err(db_err)?;
        self.next.conf_state = cs.clone();
        Ok(())
    }

    /// Drops log entries below `upto` (exclusive); they must be applied.
    pub fn compact(&mut self, upto: u64) -> Result<()> {
        if upto <= self.next.first_index || upto > self.next.applied + 1 {
            return Ok(());
        }
        let mut log = self.txn.open_table(LOG).map_err(db_err)?;
        let mut terms = self.txn.open_table(TERMS).map_err(db_err)?;
        let last_term = terms
            .get(upto - 1)
            .map_err(db_err)?
            .map(|v| v.value())
            .ok_or_else(|| Error::Corrupt(format!("no term for index {}", upto - 1)))?;
        for idx in self.next.first_index..upto {
            log.remove(idx).map_err(db_err)?;
            terms.remove(idx).map_err(db_err)?;
        }
        drop((log, terms));
        self.set_snap((upto - 1, last_term))?;
        self.next.first_index = upto;
        Ok(())
    }

    /// Replaces the log with a snapshot's position: entries up to `index` are
    /// now known only through the snapshot (their blocks are fetched separately).
    pub fn apply_snapshot(&mut self, index: u64, term: u64, conf: &ConfState) -> Result<()> {
        let mut log = self.txn.open_table(LOG).map_err(db_err)?;
        let mut terms = self.txn.open_table(TERMS).map_err(db_err)?;
        for idx in self.next.first_index..=self.next.last_index {
            log.remove(idx).map_err(db_err)?;
            terms.remove(idx).map_err(db_err)?;
        }
        drop((log, terms));
        self.set_snap((index, term))?;
        self.next.first_index = index + 1;
        self.next.last_index = index;
        self.set_conf_state(conf)?;
        let mut hs = self.next.hard_state.clone();
        hs.commit = hs.commit.max(index);
        hs.term = hs.term.max(term);
        self.set_hard_state(&hs)?;
        self.set_applied(index)
    }

    fn set_snap(&mut self, snap: (u64, u64)) -> Result<()> {
        let mut b = snap.0.to_be_bytes().to_vec();
        b.extend_from_slice(&snap.1.to_be_bytes());
        self.txn
            .open_table(META)
            .map_err(db_err)?
            .insert(SNAP_META, b.as_slice())
            .map_err(db_err)?;
        self.next.snap = snap;
        Ok(())
    }

    pub fn first_index(&self) -> u64 {
        self.next.first_index
    }

    /// Records the peer list after a membership change.
    pub fn set_peers(&mut self, peers: &[crate::config::Peer]) -> Result<()> {
        let bytes = serde_json::to_vec(peers).map_err(Error::from)?;
        self.txn
            .open_table(META)
            .map_err(db_err)?
            .insert(PEERS, bytes.as_slice())
            .map_err(db_err)?;
        Ok(())
    }

    /// Records that entries up to `index` are applied.
    pub fn set_applied(&mut self, index: u64) -> Result<()> {
        self.txn
            .open_table(META)
            .map_err(db_err)?
            .insert(APPLIED, index.to_be_bytes().as_slice())
            .map_err(db_err)?;
        self.next.applied = index;
        Ok(())
    }

    /// Stores a committed block and makes it the tip.
    pub fn put_block(&mut self, tip: Tip, block: &[u8]) -> Result<()> {
        self.txn
            .open_table(BLOCKS)
            .map_err(db_err)?
            .insert(tip.height, block)
            .map_err(db_err)?;
        self.txn
            .open_table(META)
            .map_err(db_err)?
            .insert(TIP, tip.encode().as_slice())
            .map_err(db_err)?;
        self.next.tip = tip;
        Ok(())
    }

    pub fn tip(&self) -> Tip {
        self.next.tip
    }

    /// Makes everything durable (fsync), then updates the in-memory view.
    pub fn commit(self) -> Result<()> {
        self.txn.commit().map_err(db_err)?;
        *self.store.cached.write().unwrap_or_else(|e| e.into_inner()) = self.next;
        Ok(())
    }
}

impl Storage for OrdererStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.cache();
        Ok(RaftState {
            hard_state: c.hard_state,
            conf_state: c.conf_state,
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let c = self.cache();
        if low < c.first_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > c.last_index + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let txn = self.db.begin_read().map_err(|e| raft_err(db_err(e)))?;
        let log = txn.open_table(LOG).map_err(|e| raft_err(db_err(e)))?;
        let mut out = Vec::with_capacity((high - low) as usize);
        for item in log.range(low..high).map_err(|e| raft_err(db_err(e)))? {
            let (_, v) = item.map_err(|e| raft_err(db_err(e)))?;
            out.push(Entry::parse_from_bytes(v.value()).map_err(|e| raft_err(Error::from(e)))?);
        }
        raft::util::limit_size(&mut out, max_size.into());
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let c = self.cache();
        if idx == 0 {
            return Ok(0);
        }
        if idx == c.snap.0 {
            return Ok(c.snap.1);
        }
        if idx < c.first_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > c.last_index {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let txn = self.db.begin_read().map_err(|e| raft_err(db_err(e)))?;
        let terms = txn.open_table(TERMS).map_err(|e| raft_err(db_err(e)))?;
        terms
            .get(idx)
            .map_err(|e| raft_err(db_err(e)))?
            .map(|v| v.value())
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.cache().first_index)
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.cache().last_index)
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // The snapshot is the applied position plus the chain tip; the blocks
        // themselves are fetched from a peer's Deliver by whoever installs it.
        let c = self.cache();
        if c.applied < request_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let term = self.term(c.applied)?;
        let mut s = Snapshot {
            data: c.tip.encode().into(),
            ..Default::default()
        };
        let m = s.mut_metadata();
        m.index = c.applied;
        m.term = term;
        m.set_conf_state(c.conf_state);
        Ok(s)
    }
}
