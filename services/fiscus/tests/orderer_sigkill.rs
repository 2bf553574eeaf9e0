//! Three `fiscus orderer` processes on loopback; the leader is killed with
//! SIGKILL under load. Every acknowledged tx stays in the chain exactly once,
//! the survivors agree byte for byte, and a new leader serves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod support;

use fiscus_orderer::testkit::{self, ClusterFiles};
use fiscus_proto::hash::tx_id;
use fiscus_proto::pb::orderer::{AckStatus, StatusRequest};
use fiscus_proto::pb::types::{Block, BlockHeader, Envelope};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::{Proc, spawn_orderer_on};

struct Node {
    proc: Proc,
    addr: std::net::SocketAddr,
}

/// Starts orderer `id` on the listeners this test holds for it.
fn spawn(files: &ClusterFiles, listeners: &fiscus_orderer::Listeners, id: u64) -> Node {
    let cfg = files.configs.iter().find(|c| c.node_id == id).unwrap();
    let path = files.dir.join(format!("orderer-{id}.toml"));
    std::fs::write(&path, toml::to_string(cfg).unwrap()).unwrap();
    let (proc, _) = spawn_orderer_on(&path, listeners);
    Node {
        proc,
        addr: cfg.listen,
    }
}

async fn status(files: &ClusterFiles, node: &Node, id: u64) -> Option<(u64, u64, String)> {
    let mut c = tokio::time::timeout(
        Duration::from_secs(5),
        testkit::client(files, node.addr, &format!("orderer-{id}")),
    )
    .await
    .ok()?;
    let s = c.status(StatusRequest {}).await.ok()?.into_inner();
    Some((s.leader_id, s.height, s.role))
}

/// The id every live node names as leader, once that node says it leads.
async fn agreed_leader(files: &ClusterFiles, nodes: &BTreeMap<u64, Node>, not: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let mut views = Vec::new();
        for (id, n) in nodes {
            views.push((*id, status(files, n, *id).await));
        }
        let leaders: BTreeSet<u64> = views
            .iter()
            .filter_map(|(_, v)| v.as_ref().map(|v| v.0))
            .collect();
        if views.iter().all(|(_, v)| v.is_some()) && leaders.len() == 1 {
            let l = *leaders.iter().next().unwrap();
            let leads = views
                .iter()
                .any(|(id, v)| *id == l && v.as_ref().is_some_and(|v| v.2 == "leader"));
            if l != 0 && l != not && leads {
                return l;
            }
        }
        assert!(Instant::now() < until, "no agreed leader: {views:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_with_sigkill_under_load_loses_no_acknowledged_tx() {
    let dir = tempfile::tempdir().unwrap();
    // The test holds every node's ports; each process serves on its own.
    let bound = testkit::bind(3).await;
    let files = testkit::write_cluster(dir.path(), &bound, 1, &[]);
    let mut listeners: BTreeMap<u64, fiscus_orderer::Listeners> = (1..=3).zip(bound).collect();
    let mut nodes: BTreeMap<u64, Node> = listeners
        .iter()
        .map(|(id, l)| (*id, spawn(&files, l, *id)))
        .collect();
    let leader = agreed_leader(&files, &nodes, 0).await;

    let all: Vec<Envelope> = (0..3000)
        .map(|n| files.signers[0].envelope(&files.consortium, n))
        .collect();
    let client = testkit::client(&files, nodes[&leader].addr, &format!("orderer-{leader}")).await;
    // Load in flight while the leader dies: some of it acknowledged, not all.
    let load = testkit::load_in_flight(client, all[..1500].to_vec(), Duration::from_secs(30)).await;
    let mut dead = nodes.remove(&leader).unwrap();
    dead.proc.0.kill().unwrap(); // SIGKILL
    dead.proc.0.wait().unwrap();
    // A dead host's ports refuse connections: close the test's copies too.
    listeners.remove(&leader);
    let acked: BTreeSet<Vec<u8>> = load
        .finish()
        .await
        .into_iter()
        .filter(|a| a.status == AckStatus::Accepted as i32)
        .map(|a| a.tx_id)
        .collect();
    assert!(
        !acked.is_empty() && acked.len() < 1500,
        "some but not all of the load was acknowledged before the SIGKILL: {}",
        acked.len()
    );
    let new_leader = agreed_leader(&files, &nodes, leader).await;

    // Resubmit everything, to any node, until each tx is decided.
    let mut pending: BTreeMap<Vec<u8>, Envelope> = all
        .iter()
        .map(|e| (tx_id(&e.payload).to_vec(), e.clone()))
        .collect();
    let until = Instant::now() + Duration::from_secs(120);
    let ids: Vec<u64> = nodes.keys().copied().collect();
    let mut round = 0;
    while !pending.is_empty() {
        assert!(Instant::now() < until, "{} txs undecided", pending.len());
        let id = ids[round % ids.len()];
        round += 1;
        let mut c = testkit::client(&files, nodes[&id].addr, &format!("orderer-{id}")).await;
        let batch: Vec<Envelope> = pending.values().take(500).cloned().collect();
        if let Ok(acks) = testkit::broadcast(&mut c, batch, Duration::from_secs(20)).await {
            for a in acks {
                if a.status == AckStatus::Accepted as i32 || a.reason_code == "tx.duplicate" {
                    pending.remove(&a.tx_id);
                }
            }
        }
    }

    let (_, height, _) = status(&files, &nodes[&new_leader], new_leader)
        .await
        .unwrap();
    let mut chains = Vec::new();
    for (id, n) in &nodes {
        let until = Instant::now() + Duration::from_secs(60);
        while status(&files, n, *id).await.is_none_or(|s| s.1 < height) {
            assert!(Instant::now() < until, "node {id} did not catch up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut c = testkit::client(&files, n.addr, &format!("orderer-{id}")).await;
        chains.push(testkit::deliver(&mut c, height).await);
    }
    assert_eq!(chains[0], chains[1], "the survivors agree byte for byte");
    let mut in_chain = BTreeSet::new();
    let mut prev = vec![0u8; 32];
    for (i, bytes) in chains[0].iter().enumerate() {
        let b = Block::decode(&bytes[..]).unwrap();
        let h = BlockHeader::decode(&b.header[..]).unwrap();
        assert_eq!(h.number, i as u64 + 1, "no gap");
        assert_eq!(h.prev_hash, prev, "no fork");
        prev = fiscus_proto::hash::block_hash(&b.header).to_vec();
        for t in &b.txs {
            assert!(
                in_chain.insert(tx_id(&t.payload).to_vec()),
                "a tx is in the chain twice"
            );
        }
    }
    assert!(acked.is_subset(&in_chain), "an acknowledged tx is missing");
    assert_eq!(
        in_chain.len(),
        3000,
        "every tx is in the chain exactly once"
    );
}
