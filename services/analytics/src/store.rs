//! The analytics store: one SQLite file per member (ADR 0007). Facts in chain
//! order, the division tree with its closure table, two rollups kept with each
//! batch, and the cursor, all written in one transaction per batch of blocks,
//! so that a restart resumes exactly where the last batch ended.
//!
//! The tables are meant to be read with SQL by officials and BI tools too
//! (`sqlite3 -readonly analytics.sqlite3`); their columns are documented in
//! the service's README.

use crate::facts::{BlockFacts, Fact, Kind};
use fiscus_proto::pb::types::{ConsortiumConfig, OrgLevel};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;

/// Bumped whenever a table changes shape or meaning: a store of another
/// version is emptied and rebuilt from the ledger.
pub const SCHEMA_VERSION: i64 = 8;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("analytics store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("analytics store: {0}")]
    Inconsistent(String),
}

/// One org of the division tree, as the consortium configuration names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    pub code: String,
    pub name: String,
    pub level: &'static str,
    /// Empty for the root.
    pub parent: String,
}

pub fn level_name(level: i32) -> &'static str {
    match OrgLevel::try_from(level) {
        Ok(OrgLevel::Central) => "central",
        Ok(OrgLevel::Provincial) => "provincial",
        Ok(OrgLevel::Municipal) => "municipal",
        Ok(OrgLevel::County) => "county",
        Ok(OrgLevel::Supervisor) => "supervisor",
        _ => "unspecified",
    }
}

/// The registry of a consortium configuration as divisions.
pub fn divisions(config: &ConsortiumConfig) -> Vec<Division> {
    config
        .orgs
        .iter()
        .map(|o| Division {
            code: o.code.clone(),
            name: o.name.clone(),
            level: level_name(o.level),
            parent: o.parent.clone(),
        })
        .collect()
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- The last height applied; absent before the first block.
CREATE TABLE IF NOT EXISTS cursor (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  height INTEGER NOT NULL,
  block_time_ms INTEGER NOT NULL,
  movements INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS division (
  code TEXT PRIMARY KEY, name TEXT NOT NULL, level TEXT NOT NULL, parent TEXT NOT NULL
) WITHOUT ROWID;
-- Every (ancestor, org) pair of the tree; each org is its own ancestor too.
CREATE TABLE IF NOT EXISTS subtree (
  ancestor TEXT NOT NULL, org TEXT NOT NULL, PRIMARY KEY (ancestor, org)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS program (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, functional_code TEXT NOT NULL,
  fiscal_year INTEGER NOT NULL, direct INTEGER NOT NULL, owner TEXT NOT NULL
) WITHOUT ROWID;
-- One row per value movement of a valid transaction, in chain order.
CREATE TABLE IF NOT EXISTS movement (
  height INTEGER NOT NULL, idx INTEGER NOT NULL, tx_id BLOB NOT NULL, kind TEXT NOT NULL,
  from_org TEXT NOT NULL, to_org TEXT NOT NULL, program TEXT NOT NULL,
  day INTEGER NOT NULL, month TEXT NOT NULL, amount_fen INTEGER NOT NULL,
  recipient TEXT NOT NULL, refers BLOB, late_due_day INTEGER,
  PRIMARY KEY (height, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS movement_allocation ON movement (tx_id) WHERE kind = 'allocate';
CREATE INDEX IF NOT EXISTS movement_late ON movement (from_org, height, idx)
  WHERE kind = 'allocate' AND late_due_day IS NOT NULL;
-- Allocations by payer, program and month: how many, how much, how many late.
CREATE TABLE IF NOT EXISTS deadline (
  from_org TEXT NOT NULL, program TEXT NOT NULL, month TEXT NOT NULL,
  allocations INTEGER NOT NULL, allocated_fen INTEGER NOT NULL,
  late INTEGER NOT NULL, late_fen INTEGER NOT NULL,
  PRIMARY KEY (from_org, program, month)
) WITHOUT ROWID;
-- Disbursements by recipient, for the anomaly rules.
CREATE INDEX IF NOT EXISTS movement_recipient ON movement (program, recipient, from_org)
  WHERE kind = 'disburse';
-- Freezes and unfreezes of accounts by supervisors, in chain order.
CREATE TABLE IF NOT EXISTS freeze (
  height INTEGER NOT NULL, idx INTEGER NOT NULL, tx_id BLOB NOT NULL, org TEXT NOT NULL, program TEXT NOT NULL,
  day INTEGER NOT NULL, frozen INTEGER NOT NULL,
  PRIMARY KEY (height, idx)
) WITHOUT ROWID;
-- Each account's money as parcels oldest first (crate::lots): 24 bytes each,
-- the day it arrived, the day it was appropriated, the amount (i64 LE).
CREATE TABLE IF NOT EXISTS account_lots (
  org TEXT NOT NULL, program TEXT NOT NULL, pieces BLOB NOT NULL,
  balance_fen INTEGER NOT NULL, last_out_day INTEGER,
  PRIMARY KEY (org, program)
) WITHOUT ROWID;
-- Each account's first payment to a recipient (the anomaly rule
-- recovery_after_disbursement).
CREATE TABLE IF NOT EXISTS first_payment (
  org TEXT NOT NULL, program TEXT NOT NULL, height INTEGER NOT NULL, idx INTEGER NOT NULL,
  day INTEGER NOT NULL,
  PRIMARY KEY (org, program)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS movement_recovery ON movement (from_org) WHERE kind = 'recover';
-- Money passed down by each org, by how many days it had waited there.
CREATE TABLE IF NOT EXISTS passdown (
  org TEXT NOT NULL, program TEXT NOT NULL, days INTEGER NOT NULL, amount_fen INTEGER NOT NULL,
  PRIMARY KEY (org, program, days)
) WITHOUT ROWID;
-- Money paid to recipients by each org, by days since its appropriation.
CREATE TABLE IF NOT EXISTS payment_age (
  org TEXT NOT NULL, program TEXT NOT NULL, days INTEGER NOT NULL, amount_fen INTEGER NOT NULL,
  PRIMARY KEY (org, program, days)
) WITHOUT ROWID;

-- Sums by (kind, from, to, program, month); by (kind, from, to, month) and
-- (kind, from, to, program), for the month and program views; and by (kind,
-- from, to) alone, for the region views.
CREATE TABLE IF NOT EXISTS flow (
  kind TEXT NOT NULL, from_org TEXT NOT NULL, to_org TEXT NOT NULL, program TEXT NOT NULL,
  month TEXT NOT NULL, amount_fen INTEGER NOT NULL, tx_count INTEGER NOT NULL,
  PRIMARY KEY (kind, from_org, to_org, program, month)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flow_month (
  kind TEXT NOT NULL, from_org TEXT NOT NULL, to_org TEXT NOT NULL, month TEXT NOT NULL,
  amount_fen INTEGER NOT NULL, tx_count INTEGER NOT NULL,
  PRIMARY KEY (kind, from_org, to_org, month)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flow_program (
  kind TEXT NOT NULL, from_org TEXT NOT NULL, to_org TEXT NOT NULL, program TEXT NOT NULL,
  amount_fen INTEGER NOT NULL, tx_count INTEGER NOT NULL,
  PRIMARY KEY (kind, from_org, to_org, program)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edge (
  kind TEXT NOT NULL, from_org TEXT NOT NULL, to_org TEXT NOT NULL,
  amount_fen INTEGER NOT NULL, tx_count INTEGER NOT NULL,
  PRIMARY KEY (kind, from_org, to_org)
) WITHOUT ROWID;
";

/// The tables whose rows come from the chain (emptied by a rebuild).
const CHAIN_TABLES: [&str; 13] = [
    "cursor",
    "program",
    "movement",
    "flow",
    "flow_month",
    "flow_program",
    "edge",
    "deadline",
    "freeze",
    "account_lots",
    "first_payment",
    "passdown",
    "payment_age",
];

/// A batch's money passed down and paid, by (org, program, days waited).
#[derive(Debug, Default)]
struct Ages {
    passdown: BTreeMap<(String, String, i64), i64>,
    payment: BTreeMap<(String, String, i64), i64>,
}

/// Moves the fact's money between the accounts' queues of pieces, oldest
/// first, and counts how long it had waited.
fn follow_lots(
    tx: &rusqlite::Transaction<'_>,
    q: &mut crate::lots::Queues,
    ages: &mut Ages,
    f: &Fact,
) -> Result<(), rusqlite::Error> {
    use crate::lots::Piece;
    match f.kind {
        Kind::Appropriate => q.put(
            tx,
            &f.to_org,
            &f.program,
            Piece {
                arrived: f.day,
                origin: f.day,
                amount: f.amount_fen,
            },
        ),
        Kind::Allocate | Kind::Recover | Kind::Adjust | Kind::Disburse => {
            for p in q.take(tx, &f.from_org, &f.program, f.amount_fen, f.day)? {
                match f.kind {
                    Kind::Disburse => {
                        *ages
                            .payment
                            .entry((f.from_org.clone(), f.program.clone(), f.day - p.origin))
                            .or_default() += p.amount;
                        continue;
                    }
                    Kind::Allocate => {
                        *ages
                            .passdown
                            .entry((f.from_org.clone(), f.program.clone(), f.day - p.arrived))
                            .or_default() += p.amount;
                    }
                    _ => {}
                }
                q.put(
                    tx,
                    &f.to_org,
                    &f.program,
                    Piece {
                        arrived: f.day,
                        ..p
                    },
                )?;
            }
            Ok(())
        }
        Kind::Acknowledge => Ok(()),
    }
}

/// Where the store stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The next height to apply: 1 before the first block (height 0 is the
    /// genesis configuration, which has no block).
    pub next_height: u64,
    /// The last applied block's time; 0 before the first.
    pub block_time_ms: i64,
    /// Movements recorded so far.
    pub movements: u64,
}

/// The writer's connection.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

fn pragmas(conn: &Connection) -> Result<(), rusqlite::Error> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // Durable at each batch's commit once the WAL is synced at checkpoints;
    // a crash loses at most the last batches, which the cursor makes the
    // follower apply again.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

/// A read-only connection, for queries alongside the writer (WAL).
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "cache_size", -65_536)?;
    Ok(conn)
}

/// A rollup key: (kind, from org, to org, program, month).
type FlowKey = (Kind, String, String, String, String);

/// A batch's sums per rollup key: (amount, movements); per (payer, program,
/// month): (allocations, amount, late, late amount).
#[derive(Debug, Default)]
struct Sums {
    flow: BTreeMap<FlowKey, (i64, i64)>,
    deadline: BTreeMap<(String, String, String), [i64; 4]>,
    /// The batch's first payment per account.
    first_payment: BTreeMap<(String, String), (u64, u32, i64)>,
}

impl Sums {
    fn add(&mut self, f: &Fact) {
        if f.kind == Kind::Allocate {
            let d = self
                .deadline
                .entry((f.from_org.clone(), f.program.clone(), f.month.clone()))
                .or_default();
            d[0] += 1;
            d[1] += f.amount_fen;
            if f.late_due_day.is_some() {
                d[2] += 1;
                d[3] += f.amount_fen;
            }
        }
        if f.kind == Kind::Disburse {
            self.first_payment
                .entry((f.from_org.clone(), f.program.clone()))
                .or_insert((f.height, f.index, f.day));
        }
        let e = self
            .flow
            .entry((
                f.kind,
                f.from_org.clone(),
                f.to_org.clone(),
                f.program.clone(),
                f.month.clone(),
            ))
            .or_default();
        e.0 += f.amount_fen;
        e.1 += 1;
    }
}

/// The cursor, read on `conn` (a connection or a transaction).
fn position_in(conn: &Connection) -> Result<Position, StoreError> {
    Ok(conn
        .query_row(
            "SELECT height, block_time_ms, movements FROM cursor WHERE id = 0",
            [],
            |r| {
                Ok(Position {
                    next_height: r.get::<_, i64>(0)? as u64 + 1,
                    block_time_ms: r.get(1)?,
                    movements: r.get::<_, i64>(2)? as u64,
                })
            },
        )
        .optional()?
        .unwrap_or(Position {
            next_height: 1,
            block_time_ms: 0,
            movements: 0,
        }))
}

impl Store {
    /// Opens (or creates) the store at `path`. A store written under another
    /// schema version is emptied: the follower then rebuilds it from genesis.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        pragmas(&conn)?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .or_else(|e| match e {
                // A new file has no meta table yet.
                rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                    Ok(None)
                }
                e => Err(e),
            })?;
        if version.is_some_and(|v| v != SCHEMA_VERSION.to_string()) {
            // All in one transaction, `meta` (the version) last: a kill
            // midway leaves the old version stamped, and the next open drops again.
            let mut drop = String::from("BEGIN;");
            for t in ["division", "subtree"].iter().chain(&CHAIN_TABLES) {
                drop.push_str(&format!("DROP TABLE IF EXISTS {t};"));
            }
            drop.push_str("DROP TABLE IF EXISTS meta; COMMIT;");
            conn.execute_batch(&drop)?;
        }
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?1)",
            [SCHEMA_VERSION.to_string()],
        )?;
        Ok(Self { conn })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn position(&self) -> Result<Position, StoreError> {
        position_in(&self.conn)
    }

    /// Replaces the division tree (and its closure table) with `divisions`.
    /// A parent chain longer than the tree (a cycle in bad config) ends the
    /// walk instead of looping.
    pub fn set_divisions(&mut self, divisions: &[Division]) -> Result<(), StoreError> {
        let parent: BTreeMap<&str, &str> = divisions
            .iter()
            .map(|d| (d.code.as_str(), d.parent.as_str()))
            .collect();
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM division", [])?;
        tx.execute("DELETE FROM subtree", [])?;
        {
            let mut div = tx.prepare(
                "INSERT INTO division (code, name, level, parent) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut sub =
                tx.prepare("INSERT OR IGNORE INTO subtree (ancestor, org) VALUES (?1, ?2)")?;
            for d in divisions {
                div.execute(params![d.code, d.name, d.level, d.parent])?;
                let mut cur = d.code.as_str();
                sub.execute(params![cur, d.code])?;
                for _ in 0..divisions.len() {
                    match parent.get(cur) {
                        Some(p) if !p.is_empty() => {
                            sub.execute(params![p, d.code])?;
                            cur = p;
                        }
                        _ => break,
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn divisions(&self) -> Result<Vec<Division>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT code, name, level, parent FROM division ORDER BY code")?;
        let rows = st.query_map([], |r| {
            let level: String = r.get(2)?;
            Ok(Division {
                code: r.get(0)?,
                name: r.get(1)?,
                level: static_level(&level),
                parent: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Applies consecutive blocks, `next_height` first, in one transaction
    /// with the cursor. `blocks` is (height, block time, facts).
    pub fn apply(&mut self, blocks: &[(u64, i64, BlockFacts)]) -> Result<Position, StoreError> {
        let Some(last) = blocks.last() else {
            return self.position();
        };
        // The write lock first, then the cursor, in the same transaction: a
        // `rebuild` emptying the store meanwhile cannot be written over.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut pos = position_in(&tx)?;
        let mut sums = Sums::default();
        let mut queues = crate::lots::Queues::default();
        let mut ages = Ages::default();
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO movement (height, idx, tx_id, kind, from_org, to_org, program, day, month,
                   amount_fen, recipient, refers, late_due_day)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            let mut alloc = tx.prepare_cached(
                "SELECT from_org, to_org, amount_fen FROM movement WHERE tx_id = ?1 AND kind = 'allocate'",
            )?;
            let mut freeze = tx.prepare_cached(
                "INSERT INTO freeze (height, idx, tx_id, org, program, day, frozen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut prog = tx.prepare_cached(
                "INSERT OR IGNORE INTO program (id, name, kind, functional_code, fiscal_year, direct, owner)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (height, _, facts) in blocks {
                if *height != pos.next_height {
                    return Err(StoreError::Inconsistent(format!(
                        "block {height} offered where {} is next",
                        pos.next_height
                    )));
                }
                for f in &facts.freezes {
                    freeze.execute(params![
                        f.height as i64,
                        f.index,
                        &f.tx_id.0[..],
                        f.org,
                        f.program,
                        f.day,
                        f.frozen
                    ])?;
                }
                for p in &facts.programs {
                    prog.execute(params![
                        p.id,
                        p.name,
                        p.kind,
                        p.functional_code,
                        p.fiscal_year,
                        p.direct,
                        p.owner
                    ])?;
                }
                for f in &facts.facts {
                    let mut f = f.clone();
                    if f.kind == Kind::Acknowledge {
                        // The amount and the two orgs are the allocation's.
                        let refers = f.refers.map(|h| h.0.to_vec()).unwrap_or_default();
                        let found: Option<(String, String, i64)> = alloc
                            .query_row([refers], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                            .optional()?;
                        let Some((from, to, amount)) = found else {
                            return Err(StoreError::Inconsistent(format!(
                                "block {height}: a valid acknowledgement of an allocation the store does not hold"
                            )));
                        };
                        f.from_org = from;
                        f.to_org = to;
                        f.amount_fen = amount;
                    }
                    ins.execute(params![
                        f.height as i64,
                        f.index,
                        &f.tx_id.0[..],
                        f.kind.name(),
                        f.from_org,
                        f.to_org,
                        f.program,
                        f.day,
                        f.month,
                        f.amount_fen,
                        f.recipient,
                        f.refers.map(|h| h.0.to_vec()),
                        f.late_due_day,
                    ])?;
                    sums.add(&f);
                    follow_lots(&tx, &mut queues, &mut ages, &f)?;
                    pos.movements += 1;
                }
                pos.next_height += 1;
            }
        }
        {
            let mut flow = tx.prepare_cached(
                "INSERT INTO flow (kind, from_org, to_org, program, month, amount_fen, tx_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT DO UPDATE SET amount_fen = amount_fen + excluded.amount_fen,
                   tx_count = tx_count + excluded.tx_count",
            )?;
            let mut edge_sums: BTreeMap<(Kind, &str, &str), (i64, i64)> = BTreeMap::new();
            let mut month_sums: BTreeMap<(Kind, &str, &str, &str), (i64, i64)> = BTreeMap::new();
            let mut program_sums: BTreeMap<(Kind, &str, &str, &str), (i64, i64)> = BTreeMap::new();
            for ((kind, from, to, program, month), (amount, count)) in &sums.flow {
                flow.execute(params![
                    kind.name(),
                    from,
                    to,
                    program,
                    month,
                    amount,
                    count
                ])?;
                for e in [
                    edge_sums.entry((*kind, from, to)).or_default(),
                    month_sums.entry((*kind, from, to, month)).or_default(),
                    program_sums.entry((*kind, from, to, program)).or_default(),
                ] {
                    e.0 += amount;
                    e.1 += count;
                }
            }
            let mut edge = tx.prepare_cached(
                "INSERT INTO edge (kind, from_org, to_org, amount_fen, tx_count) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO UPDATE SET amount_fen = amount_fen + excluded.amount_fen,
                   tx_count = tx_count + excluded.tx_count",
            )?;
            for ((kind, from, to), (amount, count)) in edge_sums {
                edge.execute(params![kind.name(), from, to, amount, count])?;
            }
            let mut deadline = tx.prepare_cached(
                "INSERT INTO deadline (from_org, program, month, allocations, allocated_fen, late, late_fen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT DO UPDATE SET allocations = allocations + excluded.allocations,
                   allocated_fen = allocated_fen + excluded.allocated_fen,
                   late = late + excluded.late, late_fen = late_fen + excluded.late_fen",
            )?;
            for ((from, program, month), [n, amount, late, late_fen]) in &sums.deadline {
                deadline.execute(params![from, program, month, n, amount, late, late_fen])?;
            }
            let mut first = tx.prepare_cached(
                "INSERT OR IGNORE INTO first_payment (org, program, height, idx, day)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for ((org, program), (h, i, d)) in &sums.first_payment {
                first.execute(params![org, program, *h as i64, i, d])?;
            }
            for (table, col, sums) in [
                ("flow_month", "month", month_sums),
                ("flow_program", "program", program_sums),
            ] {
                let mut st = tx.prepare_cached(&format!(
                    "INSERT INTO {table} (kind, from_org, to_org, {col}, amount_fen, tx_count)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT DO UPDATE SET amount_fen = amount_fen + excluded.amount_fen,
                       tx_count = tx_count + excluded.tx_count"
                ))?;
                for ((kind, from, to, key), (amount, count)) in sums {
                    st.execute(params![kind.name(), from, to, key, amount, count])?;
                }
            }
        }
        queues.flush(&tx)?;
        for (table, sums) in [("passdown", &ages.passdown), ("payment_age", &ages.payment)] {
            let mut st = tx.prepare_cached(&format!(
                "INSERT INTO {table} (org, program, days, amount_fen) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT DO UPDATE SET amount_fen = amount_fen + excluded.amount_fen"
            ))?;
            for ((org, program, days), amount) in sums {
                st.execute(params![org, program, days, amount])?;
            }
        }
        pos.block_time_ms = last.1;
        tx.execute(
            "INSERT OR REPLACE INTO cursor (id, height, block_time_ms, movements) VALUES (0, ?1, ?2, ?3)",
            params![
                (pos.next_height - 1) as i64,
                pos.block_time_ms,
                pos.movements as i64
            ],
        )?;
        tx.commit()?;
        Ok(pos)
    }

    /// Empties facts, rollups, programs and the cursor, keeping the division
    /// tree: the follower then applies the chain again from genesis.
    pub fn reset(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for t in CHAIN_TABLES {
            tx.execute_batch(&format!("DELETE FROM {t};"))?;
        }
        tx.commit()?;
        Ok(())
    }
}

pub(crate) fn static_level(s: &str) -> &'static str {
    match s {
        "central" => "central",
        "provincial" => "provincial",
        "municipal" => "municipal",
        "county" => "county",
        "supervisor" => "supervisor",
        _ => "unspecified",
    }
}
