//! `fiscus bench ledger`: blocks of 500 signed transfer transactions through
//! validate + execute + commit on one member, redb with fsync.

use anyhow::{Context, Result};
use clap::Args;
use fiscus_common::store::{StateStore, StoreLimits, fjall::FjallStore, redb::RedbStore};
use fiscus_ledger_store::{Certs, Ledger, LedgerConfig};
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
    #[arg(long)]
    hot_account: bool,
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
            run_on(b, |d| {
                Ok(FjallStore::open(
                    &d.join("ledger.fjall"),
                    StoreLimits::default(),
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

async fn run_on<S: StateStore>(
    b: LedgerBench,
    open: impl FnOnce(&std::path::Path) -> Result<S>,
) -> Result<()> {
    let log = |m: String| {
        if !b.json {
            eprintln!("{m}");
        }
    };
    let dir = tempfile::tempdir().context("temporary directory")?;
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
    let store = open(dir.path())?;
    let ledger = std::sync::Arc::new(Ledger::new(
        store,
        LedgerConfig {
            member: "130000".into(),
            consortium_id: "fiscus-bench".into(),
            limits: Default::default(),
            certs,
            key: SigningKey::from_seed(&[7; 32]),
            cert_id: sha256(b"bench member"),
            certificate: Vec::new(),
            threads: 2,
        },
    ));
    ledger.init(&genesis).await?;

    // Funding: MOF appropriates, then funds the province and every city.
    let mut nonce = 0u64;
    let mut next = |p: &Party, m: Method| {
        nonce += 1;
        envelope(p, nonce, m)
    };
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
    let mut blocks: Vec<Vec<Envelope>> = vec![vec![next(
        &mof,
        Method::Appropriate(AppropriateArgs {
            account: acct("000000"),
            program: Some(program),
            amount_fen: fund,
            document: "bench".into(),
        }),
    )]];
    blocks.push(vec![next(
        &mof,
        Method::Allocate(AllocateArgs {
            from: acct("000000"),
            to_org_code: "130000".into(),
            amount_fen: fund / 2,
            document: "bench".into(),
            external_id: String::new(),
        }),
    )]);
    blocks.push(
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
    );
    let setup_blocks = blocks.len();
    log(format!("bench ledger: signing {} transactions…", b.txs));
    let mut work = Vec::with_capacity(b.txs);
    for i in 0..b.txs {
        let m = if b.hot_account {
            Method::Allocate(AllocateArgs {
                from: acct("130000"),
                to_org_code: city(i % CITIES),
                amount_fen: 1,
                document: "hot".into(),
                external_id: String::new(),
            })
        } else {
            // The same operation spread over 99 accounts: each city allocates to its county.
            Method::Allocate(AllocateArgs {
                from: acct(&city(i % CITIES)),
                to_org_code: county(i % CITIES),
                amount_fen: 1,
                document: "uniform".into(),
                external_id: String::new(),
            })
        };
        let who = if b.hot_account {
            &province
        } else {
            &cities[i % CITIES]
        };
        work.push(next(who, m));
    }
    for chunk in work.chunks(b.block_txs.max(1)) {
        blocks.push(chunk.to_vec());
    }
    // Seal every block up front, chained, so only the ledger is timed.
    let mut encoded = Vec::with_capacity(blocks.len());
    let mut prev = Hash32::ZERO;
    for (i, txs) in blocks.into_iter().enumerate() {
        let block = BlockDraft {
            number: i as u64 + 1,
            prev_hash: prev,
            timestamp_ms: T0 + i as i64,
            orderer_id: "orderer-1",
            txs,
        }
        .seal(&orderer.key, orderer.cert);
        prev = fiscus_proto::hash::block_hash(&block.header);
        encoded.push(block.encode_to_vec());
    }
    for bytes in &encoded[..setup_blocks] {
        ledger.commit_block(bytes).await?;
    }
    log(format!(
        "bench ledger: committing {} blocks of {} txs (fsync on)…",
        encoded.len() - setup_blocks,
        b.block_txs
    ));
    let (cpu_before, _) = crate::measure::process_usage();
    let start = Instant::now();
    let mut valid = 0usize;
    let timed = &encoded[setup_blocks..];
    for (i, bytes) in timed.iter().enumerate() {
        let next = timed.get(i + 1).cloned();
        valid += fiscus_ledger_store::commit_with_lookahead(&ledger, bytes, next)
            .await?
            .valid;
        if !b.json && (i + 1) % 100 == 0 {
            eprintln!(
                "  {} blocks, {:.0} tx/s so far",
                i + 1,
                ((i + 1) * b.block_txs) as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let tx_per_s = b.txs as f64 / elapsed;
    // Process CPU (all threads) during the timed commits, per transaction.
    let cpu_us_per_tx =
        (crate::measure::process_usage().0 - cpu_before) * 1e6 / b.txs.max(1) as f64;
    let ph = ledger.phase_times();
    log(format!(
        "bench ledger: time by phase (setup blocks included): check+signatures {:.2}s, reads {:.2}s, execute {:.2}s, write+fsync {:.2}s",
        ph.check.as_secs_f64(),
        ph.read.as_secs_f64(),
        ph.execute.as_secs_f64(),
        ph.write.as_secs_f64()
    ));
    let out = serde_json::json!({
        "tx_per_s": (tx_per_s * 10.0).round() / 10.0,
        "txs": b.txs,
        "valid": valid,
        "block_txs": b.block_txs,
        "hot_account": b.hot_account,
        "store": format!("{:?}", b.store).to_lowercase(),
        "elapsed_s": (elapsed * 100.0).round() / 100.0,
        "cpu_us_per_tx": (cpu_us_per_tx * 10.0).round() / 10.0,
    });
    if b.json {
        println!("{out}");
    } else {
        println!(
            "ledger bench: {} txs ({} valid) in {elapsed:.1}s = {tx_per_s:.0} tx/s, {cpu_us_per_tx:.1} µs CPU per tx{}",
            b.txs,
            valid,
            if b.hot_account { ", hot account" } else { "" }
        );
    }
    Ok(())
}
