//! `fiscus bench network`: orderers and members (ledger-store + gossip-gateway
//! each) in this process over mutual TLS on loopback. One member stays
//! offline while signed disbursements are driven at a fixed rate; then it
//! starts and catches up from its peers. Built with the `bench` feature (it
//! uses the gateway's and orderer's `testkit` network builders).

use crate::bench::NetworkBench;
use anyhow::{Context, Result, bail};
use fiscus_gossip_gateway::metrics::now_ms;
use fiscus_gossip_gateway::testkit::{self, RunningMember};
use fiscus_proto::pb::transfer::{AccountRef, AllocateArgs, TransferCall, transfer_call::Method};
use fiscus_proto::pb::types::{Envelope, tx_payload::Call};
use prost::Message as _;
use std::time::{Duration, Instant};

fn account(org: &str) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: "2026-edu-01".into(),
    })
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    crate::measure::percentile(v, p)
}

pub(crate) async fn run(b: NetworkBench) -> Result<()> {
    if !(2..=testkit::MEMBERS.len()).contains(&b.members) {
        bail!("--members must be between 2 and {}", testkit::MEMBERS.len());
    }
    if ![1, 3, 5].contains(&b.orderers) {
        bail!("--orderers must be 1, 3 or 5");
    }
    let log = |m: String| {
        if !b.json {
            eprintln!("{m}");
        }
    };
    let dir = tempfile::tempdir().context("temporary directory")?;
    let (mut files, listeners) = testkit::write_network(dir.path(), b.orderers, b.members).await;
    let orderers = testkit::start_orderers(&mut files, listeners).await;
    let orderer_addrs: Vec<_> = orderers.iter().map(|o| o.client_addr).collect();
    let online = b.members - 1;
    let mut members: Vec<RunningMember> = Vec::new();
    for m in &files.members[..online] {
        members.push(testkit::start_member(m).await);
    }
    log(format!(
        "bench network: {} orderers, {} members online, 1 offline; funding…",
        b.orderers, online
    ));

    // Funding: MOF appropriates and allocates to Hebei, which then pays schools.
    let mut client =
        fiscus_orderer::testkit::client(&files.cluster, orderer_addrs[0], "orderer-1").await;
    let setup = vec![
        testkit::edu_appropriation(&files, 1, i64::MAX / 4),
        testkit::envelope(
            &files,
            &files.mof,
            2,
            Call::Transfer(TransferCall {
                method: Some(Method::Allocate(AllocateArgs {
                    from: account("000000"),
                    to_org_code: "130000".into(),
                    amount_fen: i64::MAX / 8,
                    document: "财教〔2026〕2号".into(),
                    external_id: String::new(),
                })),
            }),
        ),
    ];
    let acks = fiscus_orderer::testkit::broadcast(&mut client, setup, Duration::from_secs(60))
        .await
        .map_err(|s| anyhow::anyhow!("setup: {s}"))?;
    let start_height = acks.iter().map(|a| a.block_number).max().unwrap_or(0);
    let refs: Vec<&RunningMember> = members.iter().collect();
    testkit::wait_all_at(&refs, start_height, Duration::from_secs(60)).await;

    let total = (b.rate as f64 * b.duration.as_secs_f64()) as u64;
    log(format!("bench network: signing {total} disbursements…"));
    let envs: Vec<Envelope> = (0..total)
        .map(|i| testkit::school_payment(&files, 1 + i))
        .collect();
    log(format!(
        "bench network: driving {} tx/s for {:?}…",
        b.rate, b.duration
    ));
    // Paced in 20 ms slices on 4 streams; acks are awaited per slice.
    let slice = Duration::from_millis(20);
    let per_slice = ((b.rate as f64) * slice.as_secs_f64()).ceil().max(1.0) as usize;
    let chunks: Vec<Vec<Envelope>> = envs.chunks(per_slice).map(<[Envelope]>::to_vec).collect();
    let began = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..4usize {
        let mine: Vec<(usize, Vec<Envelope>)> = chunks
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 4 == s)
            .map(|(i, c)| (i, c.clone()))
            .collect();
        let mut c =
            fiscus_orderer::testkit::client(&files.cluster, orderer_addrs[0], "orderer-1").await;
        tasks.push(tokio::spawn(async move {
            let mut last = 0;
            for (i, chunk) in mine {
                tokio::time::sleep_until((began + slice * i as u32).into()).await;
                if let Ok(acks) =
                    fiscus_orderer::testkit::broadcast(&mut c, chunk, Duration::from_secs(60)).await
                {
                    last = acks
                        .iter()
                        .map(|a| a.block_number)
                        .max()
                        .unwrap_or(last)
                        .max(last);
                }
            }
            last
        }));
    }
    let mut end_height = start_height;
    for t in tasks {
        end_height = end_height.max(t.await.unwrap_or(0));
    }
    let driven = began.elapsed();
    testkit::wait_all_at(&refs, end_height, Duration::from_secs(300)).await;
    testkit::wait_all_final(&refs, end_height, Duration::from_secs(300)).await;

    // Per block: the slowest member's commit (dissemination) and finality.
    let mut dissemination = Vec::new();
    let mut finality = Vec::new();
    for h in start_height + 1..=end_height {
        let mut commit = None::<i64>;
        let mut fin = None::<i64>;
        let mut block_ms = 0;
        let mut complete = true;
        for m in &members {
            let t = m
                .gateway
                .node
                .timeline
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match t.heights.get(&h) {
                Some((bm, Some(c), f)) => {
                    block_ms = *bm;
                    commit = Some(commit.map_or(*c, |x| x.max(*c)));
                    if let Some(f) = f {
                        fin = Some(fin.map_or(*f, |x| x.max(*f)));
                    }
                }
                _ => complete = false,
            }
        }
        if complete && let Some(c) = commit {
            dissemination.push((c - block_ms) as f64);
            if let Some(f) = fin {
                finality.push((f - block_ms) as f64);
            }
        }
    }
    let committed_txs = total as f64;
    let tx_per_s = committed_txs / driven.as_secs_f64();

    // Catch-up: the offline member starts and replays everything from its peers.
    log(format!(
        "bench network: {} blocks committed at every online member; starting the offline member…",
        end_height
    ));
    let catch_start = Instant::now();
    let late = testkit::start_member(&files.members[online]).await;
    // The replay itself is timed from its first committed block to the head;
    // start-up (opening the store, TLS, finding peers) is reported apart.
    let (mut first, mut last_seen) = (None::<(Instant, u64)>, 0u64);
    let until = Instant::now() + Duration::from_secs(600);
    loop {
        let h = late.ledger.ledger.head().await?.height;
        if h > 0 && first.is_none() {
            first = Some((Instant::now(), h));
        }
        last_seen = last_seen.max(h);
        if h >= end_height {
            break;
        }
        if Instant::now() > until {
            bail!("the offline member reached {last_seen} of {end_height} within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let catch_total = catch_start.elapsed().as_secs_f64();
    let (t_first, h_first) = first.context("no block was replayed")?;
    let replay_s = t_first.elapsed().as_secs_f64().max(1e-9);
    // Transactions in the blocks replayed after the first one observed.
    let mut replayed_txs = 0u64;
    for n in h_first + 1..=end_height {
        let raw = members[0].ledger.ledger.block(n).await?;
        let block = fiscus_proto::pb::types::Block::decode(&raw[..])?;
        replayed_txs += block.txs.len() as u64;
    }
    let replayed_blocks = end_height - h_first;
    // Where the catching-up ledger spent its time (start-up blocks included).
    let ph = late.ledger.ledger.phase_times();
    let same = late.state_hash().await == members[0].state_hash().await;
    if !same {
        bail!("the caught-up member's state hash differs");
    }
    let out = serde_json::json!({
        "members": b.members,
        "orderers": b.orderers,
        "rate": b.rate,
        "duration_s": b.duration.as_secs_f64(),
        "blocks": end_height - start_height,
        "tx_per_s": (tx_per_s * 10.0).round() / 10.0,
        "dissemination_p50_ms": pct(&mut dissemination.clone(), 0.5),
        "dissemination_p99_ms": pct(&mut dissemination, 0.99),
        "finality_p50_ms": pct(&mut finality.clone(), 0.5),
        "finality_p99_ms": pct(&mut finality, 0.99),
        "catchup_blocks_per_s": ((replayed_blocks as f64 / replay_s) * 10.0).round() / 10.0,
        "catchup_tx_per_s": ((replayed_txs as f64 / replay_s) * 10.0).round() / 10.0,
        "catchup_replayed_txs": replayed_txs,
        "catchup_total_s": (catch_total * 100.0).round() / 100.0,
        "catchup_startup_s": ((catch_total - replay_s) * 100.0).round() / 100.0,
        "catchup_ledger_phases_s": {
            "check_and_signatures": (ph.check.as_secs_f64() * 100.0).round() / 100.0,
            "reads": (ph.read.as_secs_f64() * 100.0).round() / 100.0,
            "execute": (ph.execute.as_secs_f64() * 100.0).round() / 100.0,
            "write_and_fsync": (ph.write.as_secs_f64() * 100.0).round() / 100.0,
        },
        "measured_at_ms": now_ms(),
    });
    if b.json {
        println!("{out}");
    } else {
        println!(
            "network bench ({} members, {} orderers, {} tx/s offered for {:?}):",
            b.members, b.orderers, b.rate, b.duration
        );
        for k in [
            "tx_per_s",
            "blocks",
            "dissemination_p50_ms",
            "dissemination_p99_ms",
            "finality_p50_ms",
            "finality_p99_ms",
            "catchup_blocks_per_s",
            "catchup_tx_per_s",
            "catchup_total_s",
            "catchup_startup_s",
        ] {
            println!("  {k:<22} {}", out[k]);
        }
    }
    late.stop().await;
    for m in members {
        m.stop().await;
    }
    for o in orderers {
        o.kill().await;
    }
    Ok(())
}
