//! `fiscus bench analytics`: how fast a member's analytics rebuilds its store
//! from blocks, and how fast the dashboard's province overview answers.
//!
//! The chain is made up first, deterministically, over the whole Hebei
//! division tree (11 cities, the counties below them): each block is
//! encoded as the ledger-store serves it (`Block` with its signed payloads,
//! `BlockReceipts` with a state write per key a transfer touches), and a
//! year of block time passes over the run. Then the timed rebuild reads the
//! blocks back exactly as the follower does (`fiscus_analytics::facts::
//! from_wire`) and applies them in batches into a new SQLite file. Reading
//! the blocks out of the ledger's fjall store and over gRPC is not in the
//! timing (see the README: the follower adds two loopback calls per block).
//!
//! With `--live 30s` it then also follows a live chain: the in-process
//! devnet with every member's analytics at its peak rate (the load of
//! `fiscus bench e2e --analytics`), and reports the lag behind commit.
//!
//! The workload, per 100 transactions: 4 MOF→Hebei allocations, 8
//! Hebei→city, 18 city→county, 15 acknowledgements of earlier allocations,
//! 52 county disbursements to recipients, 3 county recoveries to their city;
//! 24 central programs appropriated in the first block. The bench does not
//! execute the contract: amounts need not balance for the statistics, and
//! every transaction is recorded valid.

use anyhow::{Context, Result};
use clap::Args;
use fiscus_analytics::facts::from_wire;
use fiscus_analytics::indicators::{
    Filter, Tree, breakdown, compliance, idle as idle_funds, late_items, series,
};
use fiscus_analytics::store::{Division, Store, level_name};
use fiscus_proto::hash::sha256;
use fiscus_proto::pb::ledger::BlockReceipts;
use fiscus_proto::pb::transfer::{
    AccountRef, AcknowledgeArgs, AllocateArgs, AppropriateArgs, DisburseArgs, Program, ProgramKind,
    Recipient, RecoverArgs, TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{
    Block, BlockHeader, Envelope, OrgLevel, Receipt, Signature, StateWrite, TxPayload, TxStatus,
    tx_payload::Call,
};
use prost::Message;
use std::collections::VecDeque;
use std::time::Instant;

#[derive(Debug, Args)]
pub(crate) struct AnalyticsBench {
    /// Transactions in the chain to rebuild from.
    #[arg(long, default_value_t = 1_000_000)]
    txs: usize,
    #[arg(long, default_value_t = 500)]
    block_txs: usize,
    /// Blocks per SQLite transaction (the service's `batch_blocks`).
    #[arg(long, default_value_t = 256)]
    batch_blocks: usize,
    /// Times each dashboard query is run for its percentiles.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    /// Where the SQLite file goes (a temporary directory under it, removed after).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Also follow a live chain for this long (e.g. 30s): the in-process
    /// devnet with every member's analytics, driven at its peak rate as
    /// `fiscus bench e2e --analytics` drives it; `lag_p99_ms` is how far the
    /// audit office's analytics applies each block after its ledger commits
    /// it. Without it `lag_p99_ms` is null.
    #[arg(long, value_parser = crate::measure::parse_duration)]
    live: Option<std::time::Duration>,
    /// With `--live`: only the measured member (the audit office) runs its
    /// analytics, as on a member's own machine; by default every member's does.
    #[arg(long, requires = "live")]
    live_one: bool,
    #[arg(long)]
    json: bool,
}

/// A small deterministic generator (xorshift64*): the same chain every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn hebei() -> Vec<Division> {
    let mut d: Vec<Division> = fiscus_identity_ca::genesis::hebei_orgs()
        .into_iter()
        .map(|o| Division {
            level: level_name(level_of(&o.level) as i32),
            code: o.code,
            name: o.name,
            parent: o.parent,
        })
        .collect();
    d.push(Division {
        code: "991300".into(),
        name: "河北省审计厅".into(),
        level: "supervisor",
        parent: "130000".into(),
    });
    d
}

fn level_of(s: &str) -> OrgLevel {
    match s {
        "central" => OrgLevel::Central,
        "provincial" => OrgLevel::Provincial,
        "municipal" => OrgLevel::Municipal,
        "county" => OrgLevel::County,
        _ => OrgLevel::Supervisor,
    }
}

fn acct(org: &str, program: &str) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: program.into(),
    })
}

/// The encoded chain: (block, receipts) per block, as the ledger serves them.
fn make_chain(divisions: &[Division], txs: usize, block_txs: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let cities: Vec<&Division> = divisions
        .iter()
        .filter(|d| d.level == "municipal" && d.parent == "130000")
        .collect();
    let counties_of: Vec<Vec<&str>> = cities
        .iter()
        .map(|c| {
            divisions
                .iter()
                .filter(|d| d.parent == c.code && d.level == "county")
                .map(|d| d.code.as_str())
                .collect()
        })
        .collect();
    let programs: Vec<String> = (0..24).map(|i| format!("central-{i:02}")).collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut unacked: VecDeque<([u8; 32], String, String)> = VecDeque::new();
    let blocks = txs.div_ceil(block_txs.max(1)).max(1);
    // 2026-01-01 00:00 CST, and a year spread over the blocks.
    let start_ms = 1_767_196_800_000i64;
    let step_ms = 365 * 86_400_000 / blocks as i64;
    let mut out = Vec::with_capacity(blocks);
    let mut n = 0u64;
    let mut left = txs;
    for b in 0..blocks {
        let height = b as u64 + 1;
        let ts = start_ms + b as i64 * step_ms;
        let count = left.min(block_txs);
        left -= count;
        let mut envelopes = Vec::with_capacity(count);
        let mut receipts = Vec::with_capacity(count);
        for i in 0..count {
            let call = if b == 0 && i < programs.len() {
                Method::Appropriate(AppropriateArgs {
                    account: acct("000000", &programs[i]),
                    program: Some(Program {
                        id: programs[i].clone(),
                        name: format!("中央转移支付项目 {i}"),
                        kind: ProgramKind::General as i32,
                        functional_code: format!("20502{:02}", i % 100),
                        fiscal_year: 2026,
                        document: "财预〔2026〕1号".into(),
                        direct: i % 6 == 0,
                        ..Program::default()
                    }),
                    amount_fen: 1_000_000_000_000,
                    document: "财预〔2026〕1号".into(),
                })
            } else {
                let p = programs[rng.below(programs.len())].clone();
                let c = rng.below(cities.len());
                let city = cities[c].code.as_str();
                let county = counties_of[c][rng.below(counties_of[c].len())];
                let amount = 1 + rng.below(5_000_000) as i64;
                match rng.below(100) {
                    0..4 => alloc("000000", "130000", &p, amount),
                    4..12 => alloc("130000", city, &p, amount),
                    12..30 => alloc(city, county, &p, amount),
                    30..45 if !unacked.is_empty() => {
                        let (id, to, p) =
                            unacked
                                .pop_front()
                                .unwrap_or(([0; 32], String::new(), String::new()));
                        Method::Acknowledge(AcknowledgeArgs {
                            allocation_tx_id: id.to_vec(),
                            account: acct(&to, &p),
                        })
                    }
                    97.. => Method::Recover(RecoverArgs {
                        from: acct(county, &p),
                        to_org_code: city.into(),
                        amount_fen: amount / 10 + 1,
                        reason: "结余收回 / unspent".into(),
                    }),
                    _ => Method::Disburse(DisburseArgs {
                        from: acct(county, &p),
                        recipient: Some(Recipient {
                            id: Some(recipient::Id::UnifiedSocialCreditCode(format!(
                                "12{county}MB{:07}",
                                rng.below(2_000)
                            ))),
                            name: "学校 / school".into(),
                        }),
                        amount_fen: amount,
                        purpose: "公用经费 / operating funds".into(),
                        economic_code: "50502".into(),
                        external_id: String::new(),
                    }),
                }
            };
            n += 1;
            let payload = TxPayload {
                consortium_id: "fiscus-bench".into(),
                creator_cert_id: sha256(b"bench creator").0.to_vec(),
                nonce: n,
                client_timestamp_ms: ts,
                call: Some(Call::Transfer(TransferCall {
                    method: Some(call.clone()),
                })),
            }
            .encode_to_vec();
            let tx_id = sha256(&payload);
            if let Method::Allocate(a) = &call {
                let p = a
                    .from
                    .as_ref()
                    .map(|f| f.program_id.clone())
                    .unwrap_or_default();
                unacked.push_back((tx_id.0, a.to_org_code.clone(), p));
            }
            envelopes.push(Envelope {
                payload,
                signatures: vec![Signature {
                    cert_id: sha256(b"bench creator").0.to_vec(),
                    signature: vec![7; 64],
                    certificate: Vec::new(),
                }],
            });
            // Receipts as the ledger stores them: a value hash per key written.
            let writes = (0..3)
                .map(|k| StateWrite {
                    key: format!("acct/{n}/{k}").into_bytes(),
                    value: Vec::new(),
                    deleted: false,
                    value_hash: sha256(&[k as u8; 4]).0.to_vec(),
                })
                .collect();
            receipts.push(Receipt {
                tx_id: tx_id.0.to_vec(),
                block_number: height,
                tx_index: i as u32,
                status: TxStatus::Valid as i32,
                reason: String::new(),
                writes,
                events: Vec::new(),
            });
        }
        let header = BlockHeader {
            number: height,
            prev_hash: vec![0; 32],
            tx_root: vec![0; 32],
            timestamp_ms: ts,
            orderer_id: "orderer-1".into(),
            tx_count: count as u32,
        }
        .encode_to_vec();
        let block = Block {
            header,
            orderer_signature: None,
            txs: envelopes,
            trace_links: Vec::new(),
        };
        let r = BlockReceipts {
            block_number: height,
            timestamp_ms: ts,
            receipts,
        };
        out.push((block.encode_to_vec(), r.encode_to_vec()));
    }
    out
}

fn alloc(from: &str, to: &str, p: &str, amount: i64) -> Method {
    Method::Allocate(AllocateArgs {
        from: acct(from, p),
        to_org_code: to.into(),
        amount_fen: amount,
        document: "冀财预〔2026〕7号".into(),
        external_id: String::new(),
    })
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (
        crate::measure::percentile(&v, 0.5),
        crate::measure::percentile(&v, 0.99),
    )
}

pub(crate) async fn run(b: AnalyticsBench) -> Result<()> {
    let divisions = hebei();
    let tree = Tree::new(divisions.clone());
    let counties = divisions.iter().filter(|d| d.level == "county").count();
    eprintln!(
        "bench analytics: making a chain of {} transactions over {} orgs ({} counties)…",
        b.txs,
        divisions.len(),
        counties
    );
    let made = Instant::now();
    let chain = tokio::task::block_in_place(|| make_chain(&divisions, b.txs, b.block_txs));
    let chain_bytes: usize = chain.iter().map(|(a, r)| a.len() + r.len()).sum();
    eprintln!(
        "bench analytics: {} blocks, {:.0} MiB encoded, made in {:.1} s; rebuilding…",
        chain.len(),
        chain_bytes as f64 / 1_048_576.0,
        made.elapsed().as_secs_f64()
    );
    let parent = b.dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("fiscus-bench-analytics-")
        .tempdir_in(&parent)
        .with_context(|| format!("a temporary directory in {}", parent.display()))?;
    let db = tmp.path().join("analytics.sqlite3");
    let mut store = Store::open(&db)?;
    store.set_divisions(&divisions)?;

    let started = Instant::now();
    let (mut decode_s, mut apply_s) = (0.0f64, 0.0f64);
    let mut last_report = Instant::now();
    let mut movements = 0u64;
    for (i, batch) in chain.chunks(b.batch_blocks.max(1)).enumerate() {
        let t = Instant::now();
        let mut facts = Vec::with_capacity(batch.len());
        for (block, receipts) in batch {
            let block = Block::decode(&block[..])?;
            let receipts = BlockReceipts::decode(&receipts[..])?;
            facts.push(from_wire(&block, &receipts).map_err(anyhow::Error::msg)?);
        }
        decode_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        movements = tokio::task::block_in_place(|| store.apply(&facts))?.movements;
        apply_s += t.elapsed().as_secs_f64();
        if last_report.elapsed().as_secs() >= 5 {
            eprintln!(
                "bench analytics: {} of {} blocks applied, {:.1} s",
                (i + 1) * b.batch_blocks,
                chain.len(),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
    }
    let rebuild_s = started.elapsed().as_secs_f64();
    drop(chain);
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(db.with_extension("sqlite3-wal"))
            .map(|m| m.len())
            .unwrap_or(0);

    // The province overview page: Hebei with its cities, its months, its programs.
    let conn = fiscus_analytics::store::open_reader(&db)?;
    let all = Filter::default();
    let mut overview = Vec::with_capacity(b.queries);
    let mut county = Vec::with_capacity(b.queries);
    let mut filtered = Vec::with_capacity(b.queries);
    let (mut deadlines, mut idle, mut anomalies, mut dashboard) = (
        Vec::with_capacity(b.queries),
        Vec::with_capacity(b.queries),
        Vec::with_capacity(b.queries),
        Vec::with_capacity(b.queries),
    );
    let as_of_day = fiscus_contract_executor::calendar::day_of(store.position()?.block_time_ms);
    let thresholds = fiscus_analytics::anomalies::Thresholds::default();
    let some_county = divisions
        .iter()
        .find(|d| d.level == "county")
        .map(|d| d.code.clone())
        .unwrap_or_default();
    let spring = Filter {
        program: Some("central-03".into()),
        from_month: Some("2026-03".into()),
        to_month: Some("2026-05".into()),
    };
    tokio::task::block_in_place(|| -> Result<()> {
        for _ in 0..b.queries {
            let t = Instant::now();
            let r = breakdown(&conn, &tree, "130000", &all)?;
            let m = series(&conn, &tree, "130000", &all, "month")?;
            let p = series(&conn, &tree, "130000", &all, "program")?;
            overview.push(t.elapsed().as_secs_f64() * 1e3);
            anyhow::ensure!(
                r.children.len() == 11 && !m.is_empty() && p.len() == 24,
                "the overview lacks rows"
            );
            let t = Instant::now();
            breakdown(&conn, &tree, &some_county, &all)?;
            series(&conn, &tree, &some_county, &all, "month")?;
            county.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            breakdown(&conn, &tree, "130000", &spring)?;
            filtered.push(t.elapsed().as_secs_f64() * 1e3);
            // The rest of the province's dashboard page.
            let t = Instant::now();
            compliance(&conn, &tree, "130000", &all)?;
            late_items(&conn, "130000", &all, (0, 0), 101)?;
            deadlines.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            idle_funds(&conn, &tree, "130000", None, as_of_day - 90)?;
            idle.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            fiscus_analytics::anomalies::flags(&conn, "130000", &thresholds, as_of_day)?;
            anomalies.push(t.elapsed().as_secs_f64() * 1e3);
            let n = overview.len() - 1;
            dashboard.push(overview[n] + deadlines[n] + idle[n] + anomalies[n]);
        }
        Ok(())
    })?;
    let (o50, o99) = percentiles(overview);
    let (c50, c99) = percentiles(county);
    let (f50, f99) = percentiles(filtered);
    let (d50, d99) = percentiles(deadlines);
    let (i50, i99) = percentiles(idle);
    let (a50, a99) = percentiles(anomalies);
    let (p50, p99) = percentiles(dashboard);
    let rate = b.txs as f64 / rebuild_s;
    let report = serde_json::json!({
        "txs": b.txs,
        "movements": movements,
        "blocks": b.txs.div_ceil(b.block_txs),
        "orgs": divisions.len(),
        "rebuild_s": rebuild_s,
        "rebuild_tx_per_s": rate,
        "decode_s": decode_s,
        "apply_s": apply_s,
        "db_bytes": db_bytes,
        "db_bytes_per_tx": db_bytes as f64 / b.txs.max(1) as f64,
        "overview_p50_ms": o50,
        "overview_p99_ms": o99,
        "county_p50_ms": c50,
        "county_p99_ms": c99,
        "filtered_overview_p50_ms": f50,
        "filtered_overview_p99_ms": f99,
        "deadlines_p50_ms": d50,
        "deadlines_p99_ms": d99,
        "idle_p50_ms": i50,
        "idle_p99_ms": i99,
        "anomalies_p50_ms": a50,
        "anomalies_p99_ms": a99,
        "dashboard_p50_ms": p50,
        "dashboard_p99_ms": p99,
        "lag_p50_ms": null,
        "lag_p99_ms": null,
    });
    let mut report = report;
    if let Some(d) = b.live {
        eprintln!("bench analytics: following a live devnet at its peak rate for {d:?}…");
        let live =
            crate::bench_e2e::measure(crate::bench_e2e::E2eBench::analytics_live(d, b.live_one))
                .await?;
        report["lag_p50_ms"] = live["analytics_lag_p50_ms"].clone();
        report["lag_p99_ms"] = live["analytics_lag_p99_ms"].clone();
        report["live_blocks"] = live["analytics_blocks"].clone();
        report["live_tx_per_s"] = live["tx_per_s"].clone();
        report["live_duration_s"] = serde_json::json!(d.as_secs_f64());
        report["live_analytics"] = live["analytics"].clone();
    }
    if b.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "analytics rebuild: {} tx ({} movements) in {:.1} s = {:.0} tx/s (decode + facts {:.1} s, SQLite {:.1} s), {:.0} bytes/tx",
            b.txs,
            movements,
            rebuild_s,
            rate,
            decode_s,
            apply_s,
            db_bytes as f64 / b.txs.max(1) as f64
        );
        println!(
            "province overview (Hebei, 11 cities, months, programs): p50 {o50:.2} ms, p99 {o99:.2} ms; a county: p50 {c50:.2} ms, p99 {c99:.2} ms; Hebei for one program over three months: p50 {f50:.2} ms, p99 {f99:.2} ms"
        );
        println!(
            "the rest of the province's page: art. 52 p50 {d50:.2} / p99 {d99:.2} ms, idle funds {i50:.2} / {i99:.2} ms, anomalies {a50:.2} / {a99:.2} ms; the whole page (six calls) {p50:.2} / {p99:.2} ms"
        );
        match report["lag_p99_ms"].as_f64() {
            Some(p99) => println!(
                "lag behind commit on a live devnet ({} tx/s, {} blocks): p50 {:.0} ms, p99 {p99:.0} ms",
                report["live_tx_per_s"],
                report["live_blocks"],
                report["lag_p50_ms"].as_f64().unwrap_or(0.0)
            ),
            None => println!("lag behind commit: not measured (give --live 30s)"),
        }
    }
    Ok(())
}
