//! `fiscus bench orderer`: a local cluster with fsync on, driven by signed
//! envelopes from several client streams over mutual TLS. Built with the
//! `bench` feature (it uses the orderer's `testkit` cluster builder).

use crate::bench::OrdererBench;
use crate::measure::percentile;
use anyhow::{Context, Result, bail};

use fiscus_orderer::testkit;
use fiscus_proto::hash::tx_id;
use fiscus_proto::pb::orderer::AckStatus;
use fiscus_proto::pb::types::Envelope;
use futures::StreamExt;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

pub(crate) async fn run(b: OrdererBench) -> Result<()> {
    if !(b.nodes == 3 || b.nodes == 5) {
        bail!("--nodes must be 3 or 5");
    }
    if b.streams == 0 || b.window == 0 {
        bail!("--streams and --window must be at least 1");
    }
    let log = |m: String| {
        if !b.json {
            eprintln!("{m}");
        }
    };
    let dir = tempfile::tempdir().context("temporary directory")?;
    let listeners = testkit::bind(b.nodes).await;
    let files = testkit::write_cluster(dir.path(), &listeners, b.streams, &[]);
    let mut nodes = Vec::new();
    for (mut cfg, l) in files.configs.clone().into_iter().zip(listeners) {
        cfg.raft = fiscus_orderer::RaftTiming::default();
        cfg.commit_timeout_ms = 60_000;
        nodes.push(fiscus_orderer::start_with(cfg, l).await?);
    }
    let refs: Vec<&fiscus_orderer::Running> = nodes.iter().collect();
    let leader = testkit::wait_for_leader(&refs, Duration::from_secs(30)).await;
    log(format!(
        "bench orderer: {} nodes up, leader is node {leader}; data in {}",
        b.nodes,
        dir.path().display()
    ));

    // Sign everything up front, so that client-side signing does not compete with the cluster.
    let per_stream = {
        let cap = if b.rate > 0 { b.rate } else { 60_000 };
        ((cap * b.duration.as_secs().max(1) + cap) as usize / b.streams).max(1000)
    };
    log(format!(
        "bench orderer: signing {} envelopes ({} streams × {per_stream})…",
        per_stream * b.streams,
        b.streams
    ));
    let signed_at = Instant::now();
    let mut pools: Vec<Vec<Envelope>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..b.streams)
            .map(|i| {
                let signer = &files.signers[i];
                let consortium = &files.consortium;
                s.spawn(move || {
                    (0..per_stream as u64)
                        .map(|n| signer.envelope(consortium, n))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            pools.push(h.join().unwrap_or_default());
        }
    });
    log(format!(
        "bench orderer: signed in {:.1}s; driving load for {:?}…",
        signed_at.elapsed().as_secs_f64(),
        b.duration
    ));

    let leader_node = &nodes[(leader - 1) as usize];
    let persist_before = leader_node.metrics.persist_seconds.get_sample_sum();
    let verify_before = leader_node.metrics.verify_seconds.get_sample_sum();
    let start = Instant::now();
    let stop_at = start + b.duration;
    let per_stream_rate = b.rate as f64 / b.streams as f64;
    let mut tasks = Vec::new();
    for pool in pools {
        let mut client = testkit::client(
            &files,
            leader_node.client_addr,
            &format!("orderer-{leader}"),
        )
        .await;
        let window = b.window;
        tasks.push(tokio::spawn(async move {
            let (tx, rx) = tokio::sync::mpsc::channel::<Envelope>(window);
            let req =
                futures::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
                );
            let mut acks = client.broadcast(req).await?.into_inner();
            let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(window));
            let sent: std::sync::Arc<std::sync::Mutex<HashMap<Vec<u8>, Instant>>> =
                Default::default();
            let sender = {
                let sem = sem.clone();
                let sent = sent.clone();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    for env in pool {
                        if Instant::now() >= stop_at {
                            break;
                        }
                        if per_stream_rate > 0.0 {
                            let due = start + Duration::from_secs_f64(n as f64 / per_stream_rate);
                            tokio::time::sleep_until(due.into()).await;
                        }
                        let Ok(permit) = sem.clone().acquire_owned().await else {
                            break;
                        };
                        permit.forget();
                        sent.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(tx_id(&env.payload).to_vec(), Instant::now());
                        if tx.send(env).await.is_err() {
                            break;
                        }
                        n += 1;
                    }
                    n
                })
            };
            let mut latencies = Vec::new();
            let (mut accepted, mut rejected) = (0u64, 0u64);
            let mut last_commit = start;
            let mut codes: std::collections::BTreeMap<String, u64> = Default::default();
            loop {
                let outstanding = sent.lock().unwrap_or_else(|e| e.into_inner()).len();
                if sender.is_finished() && outstanding == 0 {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(60), acks.next()).await {
                    Ok(Some(Ok(a))) => {
                        sem.add_permits(1);
                        let at = sent
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&a.tx_id);
                        if a.status == AckStatus::Accepted as i32 {
                            accepted += 1;
                            last_commit = Instant::now();
                            if let Some(t) = at {
                                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                            }
                        } else {
                            rejected += 1;
                            *codes.entry(a.reason_code).or_insert(0u64) += 1;
                        }
                    }
                    Ok(Some(Err(s))) => return Err(anyhow::anyhow!("stream failed: {s}")),
                    Ok(None) | Err(_) => break,
                }
            }
            let offered = sender.await.unwrap_or(0);
            Ok::<_, anyhow::Error>((accepted, rejected, offered, latencies, last_commit, codes))
        }));
    }
    let (mut accepted, mut rejected, mut offered) = (0u64, 0u64, 0u64);
    let mut latencies = Vec::new();
    let mut end = start;
    let mut codes: std::collections::BTreeMap<String, u64> = Default::default();
    for t in tasks {
        let (a, r, o, l, last, c) = t.await??;
        for (k, v) in c {
            *codes.entry(k).or_insert(0) += v;
        }
        accepted += a;
        rejected += r;
        offered += o;
        latencies.extend(l);
        end = end.max(last);
    }
    let elapsed = end.duration_since(start).as_secs_f64().max(1e-9);
    latencies.sort_by(f64::total_cmp);
    let tx_per_s = accepted as f64 / elapsed;
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let persist = leader_node.metrics.persist_seconds.get_sample_sum() - persist_before;
    let persist_n = leader_node.metrics.persist_seconds.get_sample_count();
    let verify = leader_node.metrics.verify_seconds.get_sample_sum() - verify_before;
    let height = leader_node
        .handles
        .status
        .read()
        .map(|s| s.height)
        .unwrap_or(0);
    let result = serde_json::json!({
        "tx_per_s": (tx_per_s * 10.0).round() / 10.0,
        "p50_ms": (p50 * 100.0).round() / 100.0,
        "p99_ms": (p99 * 100.0).round() / 100.0,
        "nodes": b.nodes,
        "streams": b.streams,
        "offered_rate": b.rate,
        "offered": offered,
        "accepted": accepted,
        "rejected": rejected,
        "rejected_by_code": codes,
        "elapsed_s": (elapsed * 100.0).round() / 100.0,
        "blocks": height,
        "leader_fsync_s": (persist * 1000.0).round() / 1000.0,
        "leader_fsync_writes": persist_n,
        "leader_verify_s": (verify * 1000.0).round() / 1000.0,
    });
    if b.json {
        println!("{result}");
    } else {
        println!(
            "orderer bench: {} nodes, {} streams, fsync on",
            b.nodes, b.streams
        );
        println!(
            "  ordered      {tx_per_s:>10.0} tx/s  ({accepted} accepted, {rejected} rejected, {height} blocks in {elapsed:.1}s)"
        );
        println!("  latency p50  {p50:>10.1} ms   p99 {p99:.1} ms  (submit → committed ack)");
        if !codes.is_empty() {
            println!("  rejected by code: {codes:?}");
        }
        println!(
            "  leader time  {verify:>10.2} s verifying signatures, {persist:.2} s in fsynced writes"
        );
    }
    std::io::stdout().flush()?;
    for n in nodes {
        n.kill().await;
    }
    Ok(())
}
