//! `fiscus bench ledger`: blocks of 500 signed transfer transactions through
//! validate + execute + commit on one member, with fsync.
//!
//! The blocks are signed first and written to a file, then read back one at
//! a time while the ledger commits them: only the ledger is timed, and the
//! bench's own memory does not grow with `--txs`. The report gives the
//! throughput of every million transactions (does the cost grow with the
//! chain?), the peak RSS, the store's bytes per transaction after the engine
//! compacts, and how long the ledger takes to open again.

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use fiscus_common::store::fjall::{FjallOptions, FjallStore};
use fiscus_common::store::{StateStore, StoreLimits, redb::RedbStore};
use fiscus_ledger_store::{Certs, Ledger, LedgerConfig, PhaseTimes};
use fiscus_proto::block::BlockDraft;
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::{Hash32, sha256};
use fiscus_proto::pb::transfer::{
    AccountRef, AllocateArgs, AppropriateArgs, Program, ProgramKind, TransferCall,
    transfer_call::Method,
};
use fiscus_proto::pb::types::{
    ConsortiumConfig, Envelope, Member, Org, OrgLevel, TxPayload, tx_payload::Call,
};
use fiscus_proto::sign::SigningKey;
use prost::Message;
use std::collections::BTreeMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Args)]
pub(crate) struct LedgerBench {
    /// Transactions to commit (in blocks of --block-txs).
    #[arg(long, default_value_t = 200_000)]
    txs: usize,
    #[arg(long, default_value_t = 500)]
    block_txs: usize,
    /// Every transaction allocates from the same province account (a hot account). Without it,
    /// each of 99 cities allocates from its own account to its county.
    #[arg(long, conflicts_with = "hot_credit")]
    hot_account: bool,
    /// Every transaction is the province allocating to the same city, which passes nothing
    /// on: one account receiving every credit (its lots and bundles grow with the run).
    #[arg(long)]
    hot_credit: bool,
    /// Spread the timed blocks' block time evenly over this many days (0: all
    /// within one second, as by default). Lots bundle only with lots that
    /// arrived on the same day (ADR 0004), so with --hot-credit this is what
    /// makes the receiving account's lots grow with the run, as a year of
    /// allocations would. At most 90: the workload's year ends after that.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=90))]
    days: u32,
    /// Also report throughput and CPU per transaction for every window of this many
    /// transactions (`windows` in the JSON), e.g. 10000 to compare the first and last 10,000.
    #[arg(long, default_value_t = 1_000_000)]
    window: usize,
    /// Where the store and the signed blocks go (a temporary directory under it, removed after).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// The fjall block cache, MiB.
    #[arg(long, default_value_t = 64)]
    cache_mib: u64,
    /// The fjall write buffer (memtable) per keyspace, MiB.
    #[arg(long, default_value_t = 64)]
    memtable_mib: u64,
    /// fjall keeps values of this many bytes or more (with the 8-byte version
    /// stored before each) in blob files beside its tables (key-value
    /// separation, e.g. 1024); without it every value stays in the tables, as
    /// in a ledger-store.
    #[arg(long)]
    blob_threshold_bytes: Option<u32>,
    /// The embedded storage engine (ADR 0005).
    #[arg(long, value_enum, default_value_t = Engine::Fjall)]
    store: Engine,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Engine {
    Fjall,
    Redb,
}

const CITIES: usize = 99;
const PROG: &str = "bench";
const T0: i64 = 1_790_000_000_000;

fn city(i: usize) -> String {
    format!("13{:02}00", i + 1)
}

/// The one county under city `i`.
fn county(i: usize) -> String {
    format!("13{:02}01", i + 1)
}

fn acct(org: &str) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: PROG.into(),
    })
}

struct Party {
    key: SigningKey,
    cert: Hash32,
    org: String,
}

fn party(org: &str) -> Party {
    let key = SigningKey::from_seed(&sha256(org.as_bytes()).0);
    Party {
        cert: sha256(&key.public_key()),
        key,
        org: org.to_owned(),
    }
}

fn envelope(p: &Party, nonce: u64, m: Method) -> Envelope {
    let payload = TxPayload {
        consortium_id: "fiscus-bench".into(),
        creator_cert_id: p.cert.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(Call::Transfer(TransferCall { method: Some(m) })),
    };
    seal(&payload, &[(&p.key, p.cert)])
}

pub(crate) async fn run(b: LedgerBench) -> Result<()> {
    match b.store {
        Engine::Fjall => {
            let options = FjallOptions {
                cache_bytes: b.cache_mib.max(1) << 20,
                memtable_bytes: b.memtable_mib.max(1) << 20,
                blob_threshold_bytes: b.blob_threshold_bytes,
            };
            run_on(b, move |d| {
                Ok(FjallStore::open_with(
                    &d.join("ledger.fjall"),
                    StoreLimits::default(),
                    options,
                )?)
            })
            .await
        }
        Engine::Redb => {
            run_on(b, |d| {
                Ok(RedbStore::open(
                    &d.join("ledger.redb"),
                    StoreLimits::default(),
                )?)
            })
            .await
        }
    }
}

async fn run_on<S: StateStore>(b: LedgerBench, open: impl Fn(&Path) -> Result<S>) -> Result<()> {
    if b.txs == 0 || b.block_txs == 0 || b.window == 0 {
        bail!("--txs, --block-txs and --window must be at least 1");
    }
    let log = |m: String| {
        if !b.json {
            eprintln!("{m}");
        }
    };
    let dir = match &b.dir {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .context("temporary directory")?;
    let store_dir = dir.path().join("store");
    std::fs::create_dir(&store_dir).context("store directory")?;
    let orderer = party("orderer");
    let mof = party("000000");
    let province = party("130000");
    let cities: Vec<Party> = (0..CITIES).map(|i| party(&city(i))).collect();
    let org = |code: &str, level: OrgLevel, parent: &str| Org {
        code: code.into(),
        name: code.into(),
        level: level as i32,
        parent: parent.into(),
    };
    let mut orgs = vec![
        org("000000", OrgLevel::Central, ""),
        org("130000", OrgLevel::Provincial, "000000"),
    ];
    let mut certs = Certs::default();
    for p in [&orderer, &mof, &province].into_iter().chain(&cities) {
        certs.insert_key(
            p.cert,
            if p.org == "orderer" { "000000" } else { &p.org },
            p.key.public_key(),
        );
    }
    for (i, c) in cities.iter().enumerate() {
        orgs.push(org(&c.org, OrgLevel::Municipal, "130000"));
        orgs.push(org(&county(i), OrgLevel::County, &c.org));
    }
    let genesis = ConsortiumConfig {
        consortium_id: "fiscus-bench".into(),
        version: 1,
        members: orgs
            .iter()
            .map(|o| Member {
                org_code: o.code.clone(),
                ..Member::default()
            })
            .collect(),
        orgs,
        ..ConsortiumConfig::default()
    };
    let config = || LedgerConfig {
        member: "130000".into(),
        consortium_id: "fiscus-bench".into(),
        limits: Default::default(),
        certs: certs.clone(),
        key: SigningKey::from_seed(&[7; 32]),
        cert_id: sha256(b"bench member"),
        certificate: Vec::new(),
        threads: 2,
    };
    let ledger = Arc::new(Ledger::new(open(&store_dir)?, config()));
    ledger.init(&genesis).await?;

    // Funding: MOF appropriates, then funds the province and every city.
    let fund = i64::MAX / 4;
    let program = Program {
        id: PROG.into(),
        name: "bench".into(),
        kind: ProgramKind::General as i32,
        functional_code: "2050202".into(),
        fiscal_year: 2026,
        document: "bench".into(),
        ..Program::default()
    };
    let mut nonce = 0u64;
    let mut next = |p: &Party, m: Method| {
        nonce += 1;
        envelope(p, nonce, m)
    };
    let setup: Vec<Vec<Envelope>> = vec![
        vec![next(
            &mof,
            Method::Appropriate(AppropriateArgs {
                account: acct("000000"),
                program: Some(program),
                amount_fen: fund,
                document: "bench".into(),
            }),
        )],
        vec![next(
            &mof,
            Method::Allocate(AllocateArgs {
                from: acct("000000"),
                to_org_code: "130000".into(),
                amount_fen: fund / 2,
                document: "bench".into(),
                external_id: String::new(),
            }),
        )],
        cities
            .iter()
            .map(|c| {
                next(
                    &province,
                    Method::Allocate(AllocateArgs {
                        from: acct("130000"),
                        to_org_code: c.org.clone(),
                        amount_fen: fund / 400,
                        document: "bench".into(),
                        external_id: String::new(),
                    }),
                )
            })
            .collect(),
    ];
    let first_nonce = nonce + 1;
    let mut chain = Chain {
        orderer: &orderer,
        number: 0,
        prev: Hash32::ZERO,
        step_ms: 1,
        at_ms: 0,
    };
    for txs in setup {
        ledger.commit_block(&chain.seal(txs)).await?;
    }

    // Sign every timed block first, into a file, so that only the ledger is
    // timed and the blocks do not sit in memory.
    let blocks_path = dir.path().join("blocks.bin");
    let timed_blocks = b.txs.div_ceil(b.block_txs) as i64;
    chain.step_ms = (i64::from(b.days) * 86_400_000 / timed_blocks).max(1);
    let workload = Workload {
        b: &b,
        province: &province,
        cities: &cities,
        first_nonce,
    };
    let blocks = write_blocks(&workload, &mut chain, &blocks_path, &log)?;
    let peak_after_signing = crate::measure::process_usage().1;
    log(format!(
        "bench ledger: committing {blocks} blocks of {} txs (fsync on)…",
        b.block_txs
    ));

    let mut reader = BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(&blocks_path).context("the signed blocks")?,
    );
    let first = Sample::now(ledger.phase_times());
    let (start, cpu_before) = (first.at, first.cpu);
    let mut millions = Windows::new(1_000_000, first);
    let mut windows = Windows::new(b.window, first);
    let mut valid = 0usize;
    let mut committed = 0usize;
    let mut cur = read_block(&mut reader)?;
    let mut i = 0usize;
    while let Some(bytes) = cur {
        let next = read_block(&mut reader)?;
        valid += fiscus_ledger_store::commit_with_lookahead(&ledger, &bytes, next.clone())
            .await?
            .valid;
        let n = b.block_txs.min(b.txs - committed);
        committed += n;
        millions.add(n, || ledger.phase_times());
        windows.add(n, || ledger.phase_times());
        i += 1;
        if !b.json && i.is_multiple_of(100) {
            eprintln!(
                "  {i} of {blocks} blocks, {:.0} tx/s so far",
                committed as f64 / start.elapsed().as_secs_f64()
            );
        }
        cur = next;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let tx_per_s = b.txs as f64 / elapsed;
    // Process CPU (all threads) during the timed commits, per transaction.
    let cpu_us_per_tx =
        (crate::measure::process_usage().0 - cpu_before) * 1e6 / b.txs.max(1) as f64;
    let ph = ledger.phase_times();
    let millions = millions.finish(ph);
    let windows = windows.finish(ph);
    log(format!(
        "bench ledger: time by phase (setup blocks included): check+signatures {:.2}s, reads {:.2}s, execute {:.2}s, write+fsync {:.2}s",
        ph.check.as_secs_f64(),
        ph.read.as_secs_f64(),
        ph.execute.as_secs_f64(),
        ph.write.as_secs_f64()
    ));
    let head = ledger.head().await?;
    let peak_after_commits = crate::measure::process_usage().1;
    std::fs::remove_file(&blocks_path).context("removing the signed blocks")?;
    log("bench ledger: sizing the records…".into());
    let records = record_bytes(ledger.store()).await?;

    // What the chain costs on disk once the engine has compacted it.
    log("bench ledger: compacting the store…".into());
    ledger.store().compact().await?;
    let peak_compaction = crate::measure::process_usage().1;

    // How long a member takes to open this ledger again.
    drop(Arc::try_unwrap(ledger).map_err(|_| anyhow!("the ledger is still in use"))?);
    let t = Instant::now();
    let reopened = Ledger::new(open(&store_dir)?, config());
    let head_again = reopened.init(&genesis).await?;
    let reopen_s = t.elapsed().as_secs_f64();
    if head_again != head {
        bail!("the reopened ledger's head differs from the one it closed with");
    }
    drop(reopened);
    // Measured closed: the engine deletes the tables a compaction replaced
    // once nothing reads them.
    let disk_bytes = dir_bytes(&store_dir)?;
    let mut disk_parts = BTreeMap::new();
    parts_bytes(&store_dir, &store_dir, 3, &mut disk_parts)?;

    let round = |x: f64, d: f64| (x * d).round() / d;
    let out = serde_json::json!({
        "tx_per_s": round(tx_per_s, 10.0),
        "txs": b.txs,
        "valid": valid,
        "block_txs": b.block_txs,
        "hot_account": b.hot_account,
        "hot_credit": b.hot_credit,
        "days": b.days,
        "store": format!("{:?}", b.store).to_lowercase(),
        "blob_threshold_bytes": b.blob_threshold_bytes.filter(|_| matches!(b.store, Engine::Fjall)),
        "elapsed_s": round(elapsed, 100.0),
        "cpu_us_per_tx": round(cpu_us_per_tx, 10.0),
        "per_million_tx_per_s": millions.iter().map(|w| round(w.tx_per_s, 10.0)).collect::<Vec<_>>(),
        "window_txs": b.window,
        "windows": windows.iter().map(|w| serde_json::json!({
            "txs": w.txs,
            "tx_per_s": round(w.tx_per_s, 10.0),
            "cpu_us_per_tx": round(w.cpu_us_per_tx, 10.0),
            "storage_cpu_us_per_tx": round(w.storage_cpu_us_per_tx, 10.0),
            "rss_mib": round(w.rss_mib, 1.0),
            "phase_us_per_tx": {
                "check": round(w.phase_us_per_tx[0], 10.0),
                "read": round(w.phase_us_per_tx[1], 10.0),
                "execute": round(w.phase_us_per_tx[2], 10.0),
                "write": round(w.phase_us_per_tx[3], 10.0),
            },
        })).collect::<Vec<_>>(),
        // Through the commits: what a member committing this workload holds.
        "peak_rss_mib": round(peak_after_commits, 10.0),
        // The peak so far at the end of each phase; the last is the forced
        // major compaction (a measuring step no member runs).
        "peak_rss_mib_by_phase": {
            "signing": round(peak_after_signing, 10.0),
            "commits": round(peak_after_commits, 10.0),
            "compaction": round(peak_compaction, 10.0),
        },
        "height": head.height,
        "disk_bytes": disk_bytes,
        "disk_bytes_per_tx": round(disk_bytes as f64 / b.txs as f64, 10.0),
        "reopen_s": round(reopen_s, 1000.0),
        "disk_bytes_by_path": disk_parts,
        "record_bytes_per_tx": records
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::json!(round(*v as f64 / b.txs as f64, 10.0))))
            .collect::<serde_json::Map<_, _>>(),
    });
    if b.json {
        println!("{out}");
    } else {
        println!(
            "ledger bench: {} txs ({} valid) in {elapsed:.1}s = {tx_per_s:.0} tx/s, {cpu_us_per_tx:.1} µs CPU per tx{}",
            b.txs,
            valid,
            if b.hot_account {
                ", hot account"
            } else if b.hot_credit {
                ", hot credit"
            } else {
                ""
            }
        );
        println!(
            "  per million: {:?} tx/s; peak RSS {peak_after_commits:.0} MiB; {disk_bytes} bytes on disk after compaction ({:.0} per tx); reopened in {reopen_s:.3}s",
            millions
                .iter()
                .map(|w| w.tx_per_s.round())
                .collect::<Vec<_>>(),
            disk_bytes as f64 / b.txs as f64
        );
    }
    Ok(())
}

/// The timed transactions: who signs transaction `i` and what it does.
struct Workload<'a> {
    b: &'a LedgerBench,
    province: &'a Party,
    cities: &'a [Party],
    first_nonce: u64,
}

impl Workload<'_> {
    fn tx(&self, i: usize) -> Envelope {
        let c = i % CITIES;
        let (who, m) = if self.b.hot_account || self.b.hot_credit {
            (
                self.province,
                Method::Allocate(AllocateArgs {
                    from: acct("130000"),
                    to_org_code: city(if self.b.hot_credit { 0 } else { c }),
                    amount_fen: 1,
                    document: "hot".into(),
                    external_id: String::new(),
                }),
            )
        } else {
            // The same operation spread over 99 accounts: each city allocates to
            // its county.
            (
                &self.cities[c],
                Method::Allocate(AllocateArgs {
                    from: acct(&city(c)),
                    to_org_code: county(c),
                    amount_fen: 1,
                    document: "uniform".into(),
                    external_id: String::new(),
                }),
            )
        };
        envelope(who, self.first_nonce + i as u64, m)
    }
}

/// Seals blocks one after another, each naming the hash of the last.
struct Chain<'a> {
    orderer: &'a Party,
    number: u64,
    prev: Hash32,
    /// Block time between consecutive blocks, ms.
    step_ms: i64,
    at_ms: i64,
}

impl Chain<'_> {
    fn seal(&mut self, txs: Vec<Envelope>) -> Vec<u8> {
        self.number += 1;
        self.at_ms += self.step_ms;
        let block = BlockDraft {
            number: self.number,
            prev_hash: self.prev,
            timestamp_ms: T0 + self.at_ms,
            orderer_id: "orderer-1",
            txs,
        }
        .seal(&self.orderer.key, self.orderer.cert);
        self.prev = fiscus_proto::hash::block_hash(&block.header);
        block.encode_to_vec()
    }
}

/// Signs the timed blocks (each block's transactions on every core) and
/// writes them to `path`, each as `length (u32 LE) ‖ block`. Returns how many.
fn write_blocks(
    w: &Workload<'_>,
    chain: &mut Chain<'_>,
    path: &Path,
    log: &dyn Fn(String),
) -> Result<usize> {
    use rayon::prelude::*;
    log(format!("bench ledger: signing {} transactions…", w.b.txs));
    let mut out = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(path).context("the signed blocks' file")?,
    );
    let blocks = w.b.txs.div_ceil(w.b.block_txs);
    let tenth = (blocks / 10).max(1);
    for k in 0..blocks {
        let from = k * w.b.block_txs;
        let to = (from + w.b.block_txs).min(w.b.txs);
        let txs: Vec<Envelope> = (from..to).into_par_iter().map(|i| w.tx(i)).collect();
        let bytes = chain.seal(txs);
        let len = u32::try_from(bytes.len()).context("a block over 4 GiB")?;
        out.write_all(&len.to_le_bytes())?;
        out.write_all(&bytes)?;
        if (k + 1).is_multiple_of(tenth) && k + 1 < blocks {
            log(format!("  signed {} of {blocks} blocks", k + 1));
        }
    }
    out.flush()?;
    Ok(blocks)
}

/// The next block of the file [`write_blocks`] wrote, or None at its end.
fn read_block(r: &mut impl Read) -> Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e).context("reading the signed blocks"),
    }
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)
        .context("reading the signed blocks")?;
    Ok(Some(buf))
}

/// Where a window starts: wall time, CPU (all threads, and the storage
/// engine's background workers alone) and the ledger's time in each phase.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    cpu: f64,
    storage_cpu: f64,
    /// Resident memory (VmRSS), MiB.
    rss_mib: f64,
    phases: PhaseTimes,
}

impl Sample {
    fn now(phases: PhaseTimes) -> Self {
        let usage = crate::measure::usage_of("self");
        Self {
            at: Instant::now(),
            cpu: usage.cpu_s,
            storage_cpu: crate::measure::threads_cpu(STORAGE_THREADS),
            rss_mib: usage.rss_mib,
            phases,
        }
    }
}

/// The name fjall gives its flush and compaction threads.
const STORAGE_THREADS: &str = "fjall:";

/// Throughput and CPU per transaction over consecutive windows of `size`
/// transactions (the last one may be shorter).
struct Windows {
    size: usize,
    txs: usize,
    since: Sample,
    done: Vec<Window>,
}

struct Window {
    txs: usize,
    tx_per_s: f64,
    cpu_us_per_tx: f64,
    /// Of which the storage engine's background flushes and compactions.
    storage_cpu_us_per_tx: f64,
    /// Wall µs per tx in each ledger phase (check, read, execute, write);
    /// with lookahead the next block's check overlaps this one's work.
    phase_us_per_tx: [f64; 4],
    /// Resident memory at the window's end, MiB.
    rss_mib: f64,
}

impl Windows {
    fn new(size: usize, since: Sample) -> Self {
        Self {
            size,
            txs: 0,
            since,
            done: Vec::new(),
        }
    }

    fn add(&mut self, n: usize, phases: impl FnOnce() -> PhaseTimes) {
        self.txs += n;
        if self.txs >= self.size {
            self.close(Sample::now(phases()));
        }
    }

    fn close(&mut self, now: Sample) {
        let txs = self.txs.max(1) as f64;
        let per_tx = |a: std::time::Duration, b: std::time::Duration| {
            a.saturating_sub(b).as_secs_f64() * 1e6 / txs
        };
        let (p, q) = (&now.phases, &self.since.phases);
        self.done.push(Window {
            txs: self.txs,
            tx_per_s: txs / now.at.duration_since(self.since.at).as_secs_f64(),
            cpu_us_per_tx: (now.cpu - self.since.cpu) * 1e6 / txs,
            storage_cpu_us_per_tx: (now.storage_cpu - self.since.storage_cpu) * 1e6 / txs,
            phase_us_per_tx: [
                per_tx(p.check, q.check),
                per_tx(p.read, q.read),
                per_tx(p.execute, q.execute),
                per_tx(p.write, q.write),
            ],
            rss_mib: now.rss_mib,
        });
        self.txs = 0;
        self.since = now;
    }

    fn finish(mut self, phases: PhaseTimes) -> Vec<Window> {
        if self.txs > 0 {
            self.close(Sample::now(phases));
        }
        self.done
    }
}

/// Key and value bytes of every record in the store, by kind: the ledger's
/// own records by prefix (`b/` blocks, `r/` receipts, `t/` tx index, …) and
/// contract state (`s/`) and its archived versions (`h/`) by contract key
/// prefix (`s/acct`, `h/acct`, `s/lineage`, …). Uncompressed, before the
/// engine's per-entry overhead.
async fn record_bytes<S: StateStore>(store: &S) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let mut start = Vec::new();
    loop {
        let page = store.range(&start, None, 100_000).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        start = [last.as_slice(), &[0]].concat();
        for (k, v) in &page {
            *out.entry(record_kind(k)).or_insert(0) += (k.len() + v.value.len()) as u64;
        }
    }
    Ok(out)
}

fn record_kind(key: &[u8]) -> String {
    let word = |k: &[u8]| -> String {
        let end = k.iter().position(|&c| c == b'/').unwrap_or(k.len());
        String::from_utf8_lossy(&k[..end]).into_owned()
    };
    match key.split_first_chunk::<2>() {
        Some((p @ (b"s/" | b"h/"), rest)) => {
            format!("{}{}", String::from_utf8_lossy(p), word(rest))
        }
        _ => word(key),
    }
}

/// Bytes under each path `depth` levels below `root` (files above that depth
/// by their own name).
fn parts_bytes(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut BTreeMap<String, u64>,
) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() && depth > 1 {
            parts_bytes(root, &path, depth - 1, out)?;
        } else {
            let bytes = if meta.is_dir() {
                dir_bytes(&path)?
            } else {
                meta.len()
            };
            let name = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            *out.entry(name).or_insert(0) += bytes;
        }
    }
    Ok(())
}

/// Bytes in the files under `dir`.
fn dir_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
