//! A 3-node orderer cluster in process, over real gRPC and mutual TLS on
//! loopback: ordering, identical blocks, admission, failures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_orderer::testkit::{self, ClusterFiles};
use fiscus_orderer::{Running, start_with};
use fiscus_proto::hash::tx_id;
use fiscus_proto::pb::orderer::{AckStatus, BroadcastAck};
use fiscus_proto::pb::types::{Block, BlockHeader, Envelope};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const DEADLINE: Duration = Duration::from_secs(60);

struct Cluster {
    _dir: tempfile::TempDir,
    files: ClusterFiles,
    nodes: BTreeMap<u64, Running>,
}

impl Cluster {
    async fn start(n: usize, revoked: &[usize]) -> Self {
        Self::start_with_configs(n, 3, revoked, |_| {}).await
    }

    /// Starts `n` nodes after `tweak` has adjusted every node's config.
    async fn start_with_configs(
        n: usize,
        signers: usize,
        revoked: &[usize],
        tweak: impl Fn(&mut fiscus_orderer::Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listeners = testkit::bind(n).await;
        let mut files = testkit::write_cluster(dir.path(), &listeners, signers, revoked);
        files.configs.iter_mut().for_each(&tweak);
        let mut nodes = BTreeMap::new();
        for (cfg, l) in files.configs.clone().into_iter().zip(listeners) {
            let id = cfg.node_id;
            nodes.insert(id, start_with(cfg, l).await.unwrap());
        }
        Self {
            _dir: dir,
            files,
            nodes,
        }
    }

    fn running(&self) -> Vec<&Running> {
        self.nodes.values().collect()
    }

    async fn leader(&self) -> u64 {
        testkit::wait_for_leader(&self.running(), DEADLINE).await
    }

    async fn client(
        &self,
        id: u64,
    ) -> fiscus_proto::pb::orderer::orderer_client::OrdererClient<tonic::transport::Channel> {
        testkit::client(
            &self.files,
            self.nodes[&id].client_addr,
            &format!("orderer-{id}"),
        )
        .await
    }

    fn envelopes(&self, signer: usize, range: std::ops::Range<u64>) -> Vec<Envelope> {
        range
            .map(|n| self.files.signers[signer].envelope(&self.files.consortium, n))
            .collect()
    }

    /// Blocks 1..=height of node `id`, decoded with their tx ids.
    async fn chain(&self, id: u64, height: u64) -> Vec<Vec<u8>> {
        testkit::deliver(&mut self.client(id).await, height).await
    }

    /// The height node `id` has committed.
    fn height(&self, id: u64) -> u64 {
        self.nodes[&id].handles.status.read().unwrap().height
    }

    /// Waits until every node reaches `height`, asserts that all of them hold
    /// byte-identical blocks `1..=height` (`what` says why that matters here),
    /// and returns every node's chain, in node-id order.
    async fn agreed_chains(&self, height: u64, what: &str) -> Vec<Vec<Vec<u8>>> {
        testkit::wait_for_height(&self.running(), height, DEADLINE).await;
        let chains: Vec<Vec<Vec<u8>>> =
            futures::future::join_all(self.nodes.keys().map(|id| self.chain(*id, height))).await;
        assert!(chains.windows(2).all(|w| w[0] == w[1]), "{what}");
        chains
    }

    /// A follower of `leader`, with its config.
    fn follower_of(&self, leader: u64) -> (u64, fiscus_orderer::Config) {
        let id = *self.nodes.keys().find(|id| **id != leader).unwrap();
        let cfg = self
            .files
            .configs
            .iter()
            .find(|x| x.node_id == id)
            .unwrap()
            .clone();
        (id, cfg)
    }

    /// Starts a node again on its old data dir and addresses.
    async fn restart(&mut self, cfg: fiscus_orderer::Config) {
        let listeners = fiscus_orderer::Listeners {
            client: tokio::net::TcpListener::bind(cfg.listen).await.unwrap(),
            raft: tokio::net::TcpListener::bind(cfg.raft_listen)
                .await
                .unwrap(),
        };
        let id = cfg.node_id;
        self.nodes
            .insert(id, start_with(cfg, listeners).await.unwrap());
    }
}

fn accepted(acks: &[BroadcastAck]) -> BTreeSet<Vec<u8>> {
    acks.iter()
        .filter(|a| a.status == AckStatus::Accepted as i32)
        .map(|a| a.tx_id.clone())
        .collect()
}

/// Checks the chain links and returns every tx id in it (asserting no duplicates).
fn check_chain(blocks: &[Vec<u8>]) -> BTreeSet<Vec<u8>> {
    let mut prev = [0u8; 32].to_vec();
    let mut ids = BTreeSet::new();
    let mut last_ts = i64::MIN;
    for (i, bytes) in blocks.iter().enumerate() {
        let b = Block::decode(&bytes[..]).unwrap();
        let checked =
            fiscus_proto::block::CheckedBlock::from_wire(b.clone(), &Default::default()).unwrap();
        let h = BlockHeader::decode(&b.header[..]).unwrap();
        assert_eq!(h.number, i as u64 + 1, "heights continue with no gap");
        assert_eq!(
            h.prev_hash, prev,
            "block {} links to its predecessor",
            h.number
        );
        assert!(h.timestamp_ms >= last_ts, "timestamps never go backwards");
        last_ts = h.timestamp_ms;
        prev = checked.hash.to_vec();
        for t in &b.txs {
            assert!(
                ids.insert(tx_id(&t.payload).to_vec()),
                "a tx appears twice in the chain"
            );
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_order_transactions_into_byte_identical_blocks() {
    let c = Cluster::start(3, &[]).await;
    let leader = c.leader().await;
    let follower = *c.nodes.keys().find(|id| **id != leader).unwrap();

    // Half through the leader, half through a follower that forwards to it.
    let mut to_leader = c.client(leader).await;
    let mut to_follower = c.client(follower).await;
    let (a, b) = tokio::join!(
        testkit::broadcast(&mut to_leader, c.envelopes(0, 0..300), DEADLINE),
        testkit::broadcast(&mut to_follower, c.envelopes(1, 0..300), DEADLINE),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        accepted(&a).len() + accepted(&b).len(),
        600,
        "every valid tx is accepted: {:?}",
        a.iter()
            .chain(&b)
            .find(|x| x.status != AckStatus::Accepted as i32)
    );

    let height = c.height(leader);
    let chains = c
        .agreed_chains(height, "every node stores byte-identical blocks")
        .await;
    let ids = check_chain(&chains[0]);
    let acked: BTreeSet<Vec<u8>> = accepted(&a).union(&accepted(&b)).cloned().collect();
    assert_eq!(ids, acked, "the chain holds exactly the acknowledged txs");
    // Each ack names the block that holds the tx.
    for ack in a.iter().chain(&b) {
        let block = Block::decode(&chains[0][ack.block_number as usize - 1][..]).unwrap();
        assert!(
            block
                .txs
                .iter()
                .any(|t| tx_id(&t.payload).to_vec() == ack.tx_id)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelopes_are_rejected_with_a_typed_reason_and_never_reach_a_block() {
    // Signer 2's certificate is revoked in the CRL.
    let c = Cluster::start(3, &[2]).await;
    let leader = c.leader().await;
    let mut client = c.client(leader).await;

    let good = c.files.signers[0].envelope(&c.files.consortium, 1);
    let first = testkit::broadcast(&mut client, vec![good.clone()], DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        first[0].status,
        AckStatus::Accepted as i32,
        "{:?}",
        first[0]
    );

    let mut forged = c.files.signers[0].envelope(&c.files.consortium, 2);
    forged.signatures[0].signature[7] ^= 1;
    let wrong_consortium = c.files.signers[0].envelope("another-consortium", 3);
    let revoked = c.files.signers[2].envelope(&c.files.consortium, 4);
    let mut oversized = c.files.signers[0].envelope(&c.files.consortium, 5);
    oversized
        .payload
        .extend(std::iter::repeat_n(0u8, 70 * 1024));
    let mut unknown_signer = c.files.signers[0].envelope(&c.files.consortium, 6);
    unknown_signer.signatures[0].cert_id = vec![0xab; 32];
    let garbage = Envelope {
        payload: b"not a payload".to_vec(),
        signatures: forged.signatures.clone(),
    };

    let cases: Vec<(Envelope, &str)> = vec![
        (good.clone(), "tx.duplicate"),
        (forged, "tx.bad_signature"),
        (wrong_consortium, "tx.wrong_consortium"),
        (revoked, "tx.revoked_certificate"),
        (unknown_signer, "tx.bad_encoding"),
        (garbage, "tx.bad_encoding"),
    ];
    let envs: Vec<Envelope> = cases.iter().map(|(e, _)| e.clone()).collect();
    let acks = testkit::broadcast(&mut client, envs.clone(), DEADLINE)
        .await
        .unwrap();
    // Acks come in any order: match them by tx id (refusals before decoding carry none).
    for (env, code) in &cases {
        let id = tx_id(&env.payload).to_vec();
        let ack = acks
            .iter()
            .find(|a| a.tx_id == id || (a.tx_id.is_empty() && a.reason_code == *code))
            .unwrap_or_else(|| panic!("no ack for {code}: {acks:?}"));
        assert_eq!(ack.status, AckStatus::Rejected as i32);
        assert_eq!(ack.reason_code, *code, "{ack:?}");
    }
    // A little over the limit: a typed refusal. Far over: gRPC cuts the stream with an error.
    let acks = testkit::broadcast(&mut client, vec![oversized], DEADLINE)
        .await
        .unwrap();
    assert_eq!(acks[0].reason_code, "tx.too_large", "{acks:?}");
    let mut huge = c.files.signers[0].envelope(&c.files.consortium, 8);
    huge.payload.extend(std::iter::repeat_n(0u8, 300 * 1024));
    let err = testkit::broadcast(&mut client, vec![huge], DEADLINE)
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::OutOfRange, "{err}");

    // One more good tx makes sure no refused one slipped into a later block.
    let mut client = c.client(leader).await;
    let last = testkit::broadcast(
        &mut client,
        vec![c.files.signers[1].envelope(&c.files.consortium, 7)],
        DEADLINE,
    )
    .await
    .unwrap();
    assert_eq!(last[0].status, AckStatus::Accepted as i32);
    let height = last[0].block_number;
    let ids = check_chain(&c.chain(leader, height).await);
    assert_eq!(ids.len(), 2, "only the two good txs are in the chain");
}

/// Codes after which resubmitting the same envelope is the documented thing to do.
fn retryable(code: &str) -> bool {
    matches!(
        code,
        "orderer.no_leader" | "orderer.retry" | "orderer.timeout" | "orderer.busy"
    )
}

/// Submits `envs` to whichever node answers, resubmitting on retryable
/// refusals and broken streams, until each tx is accepted or known committed.
/// Returns (accepted tx ids, duplicate-answered tx ids).
async fn submit_until_decided(
    c: &Cluster,
    envs: Vec<Envelope>,
    deadline: Duration,
) -> (BTreeSet<Vec<u8>>, BTreeSet<Vec<u8>>) {
    let until = std::time::Instant::now() + deadline;
    let mut pending: BTreeMap<Vec<u8>, Envelope> = envs
        .into_iter()
        .map(|e| (tx_id(&e.payload).to_vec(), e))
        .collect();
    let (mut ok, mut dup) = (BTreeSet::new(), BTreeSet::new());
    let mut round = 0usize;
    while !pending.is_empty() {
        assert!(
            std::time::Instant::now() < until,
            "{} txs undecided at the deadline",
            pending.len()
        );
        let ids: Vec<u64> = c.nodes.keys().copied().collect();
        let target = ids[round % ids.len()];
        round += 1;
        let mut client = c.client(target).await;
        let batch: Vec<Envelope> = pending.values().take(100).cloned().collect();
        match testkit::broadcast(&mut client, batch, Duration::from_secs(20)).await {
            Ok(acks) => {
                for a in acks {
                    if a.status == AckStatus::Accepted as i32 {
                        pending.remove(&a.tx_id);
                        ok.insert(a.tx_id);
                    } else if a.reason_code == "tx.duplicate" {
                        pending.remove(&a.tx_id);
                        dup.insert(a.tx_id);
                    } else {
                        assert!(retryable(&a.reason_code), "unexpected refusal {a:?}");
                    }
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    (ok, dup)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_under_load_loses_no_acknowledged_tx_and_duplicates_none() {
    let mut c = Cluster::start(3, &[]).await;
    let old_leader = c.leader().await;
    let all: Vec<Envelope> = c.envelopes(0, 0..1200);
    let (first, rest) = all.split_at(600);

    // Load in flight while the leader dies: some of it acknowledged, not all.
    let load = testkit::load_in_flight(
        c.client(old_leader).await,
        first.to_vec(),
        Duration::from_secs(30),
    )
    .await;
    let killed_at = std::time::Instant::now();
    c.nodes.remove(&old_leader).unwrap().kill().await;
    let new_leader = testkit::wait_for_new_leader(&c.running(), old_leader, DEADLINE).await;
    assert_ne!(new_leader, old_leader);
    assert!(
        killed_at.elapsed() < Duration::from_secs(15),
        "a new leader took {:?}",
        killed_at.elapsed()
    );

    // Whatever the dead leader acknowledged counts; everything else is resubmitted.
    let sent = load.sent;
    let acked_before = accepted(&load.finish().await);
    assert!(
        !acked_before.is_empty() && acked_before.len() < first.len(),
        "some but not all of the load was acknowledged before the kill: {} of {} ({sent} sent)",
        acked_before.len(),
        first.len()
    );
    let (ok, dup) = submit_until_decided(&c, all.clone(), Duration::from_secs(120)).await;
    let decided: BTreeSet<Vec<u8>> = ok.union(&dup).cloned().collect();
    assert_eq!(decided.len(), 1200, "every tx is eventually ordered");
    let _ = rest;

    let height = c.height(new_leader);
    let chains = c
        .agreed_chains(height, "survivors agree byte for byte")
        .await;
    let ids = check_chain(&chains[0]);
    assert!(
        acked_before.is_subset(&ids),
        "an acknowledged tx went missing"
    );
    assert_eq!(ids, decided, "the chain holds every tx exactly once");

    // What the SREs' alerts read: each survivor knows the new leader, its
    // term and height, and saw two leaders (the first, then the new one).
    for (id, node) in &c.nodes {
        let status = node.handles.status.read().unwrap().clone();
        let m = &node.metrics;
        assert_eq!(m.raft_leader_id.get(), new_leader as i64, "orderer {id}");
        assert_eq!(m.raft_term.get(), status.term as i64, "orderer {id}");
        assert!(
            status.term >= 2,
            "a new election raised the term: {}",
            status.term
        );
        assert_eq!(m.height.get(), status.height as i64, "orderer {id}");
        assert!(m.raft_leader_changes.get() >= 2, "orderer {id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_follower_catches_up_and_serves_deliver_from_zero() {
    let mut c = Cluster::start(3, &[]).await;
    let leader = c.leader().await;
    let (follower, cfg) = c.follower_of(leader);

    let mut client = c.client(leader).await;
    testkit::broadcast(&mut client, c.envelopes(0, 0..200), DEADLINE)
        .await
        .unwrap();
    c.nodes.remove(&follower).unwrap().kill().await;
    let acks = testkit::broadcast(&mut client, c.envelopes(0, 200..500), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        accepted(&acks).len(),
        300,
        "two of three nodes keep committing"
    );

    // Same data dir, same addresses.
    c.restart(cfg).await;
    let height = c.height(leader);
    testkit::wait_for_height(&c.running(), height, DEADLINE).await;
    let restarted = c.chain(follower, height).await;
    assert_eq!(
        restarted,
        c.chain(leader, height).await,
        "the restarted follower serves the same chain from height 0"
    );
    assert_eq!(check_chain(&restarted).len(), 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_partition_commits_nothing_and_everyone_converges_after_healing() {
    let c = Cluster::start(3, &[]).await;
    let leader = c.leader().await;
    let mut client = c.client(leader).await;
    testkit::broadcast(&mut client, c.envelopes(0, 0..100), DEADLINE)
        .await
        .unwrap();
    let before = c.height(leader);

    // Cut the leader off: it is now the minority.
    let others: Vec<u64> = c.nodes.keys().copied().filter(|id| *id != leader).collect();
    c.nodes[&leader].partition_from(&others);
    for id in &others {
        c.nodes[id].partition_from(&[leader]);
    }
    // The old leader takes txs it can never commit.
    let minority_load = {
        let envs = c.envelopes(1, 0..50);
        let mut client = c.client(leader).await;
        tokio::spawn(
            async move { testkit::broadcast(&mut client, envs, Duration::from_secs(30)).await },
        )
    };
    let majority: Vec<&Running> = others.iter().map(|id| &c.nodes[id]).collect();
    let new_leader = testkit::wait_for_new_leader(&majority, leader, DEADLINE).await;
    assert_ne!(new_leader, leader);
    let mut client = c.client(new_leader).await;
    let acks = testkit::broadcast(&mut client, c.envelopes(2, 0..200), DEADLINE)
        .await
        .unwrap();
    assert_eq!(accepted(&acks).len(), 200, "the majority goes on");
    assert_eq!(c.height(leader), before, "the minority committed nothing");
    let minority_acks = minority_load.await.unwrap();
    if let Ok(acks) = &minority_acks {
        assert!(
            accepted(acks).is_empty(),
            "nothing submitted to the minority was acknowledged"
        );
    }

    for n in c.nodes.values() {
        n.heal();
    }
    let height = c.height(new_leader);
    let chains = c
        .agreed_chains(height, "everyone converges on one chain")
        .await;
    assert_eq!(check_chain(&chains[0]).len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_a_fourth_node_which_catches_up_and_then_removes_it() {
    use fiscus_proto::pb::orderer::orderer_admin_client::OrdererAdminClient;
    use fiscus_proto::pb::orderer::{AddNodeRequest, RemoveNodeRequest};
    let dir = tempfile::tempdir().unwrap();
    let mut listeners = testkit::bind(4).await;
    let files = testkit::write_cluster(dir.path(), &listeners, 1, &[]);
    let fourth_listeners = listeners.pop().unwrap();
    let mut nodes = BTreeMap::new();
    for (mut cfg, l) in files.configs.clone().into_iter().take(3).zip(listeners) {
        cfg.peers.truncate(3); // the founders know only each other
        nodes.insert(cfg.node_id, start_with(cfg, l).await.unwrap());
    }
    let c = Cluster {
        _dir: dir,
        files,
        nodes,
    };
    let leader = c.leader().await;
    let mut client = c.client(leader).await;
    assert_eq!(
        accepted(
            &testkit::broadcast(&mut client, c.envelopes(0, 0..200), DEADLINE)
                .await
                .unwrap()
        )
        .len(),
        200
    );

    let mut c = c;
    let mut fourth_cfg = c.files.configs[3].clone();
    fourth_cfg.join = true;
    let fourth = fourth_cfg.peers[3].clone();
    c.nodes
        .insert(4, start_with(fourth_cfg, fourth_listeners).await.unwrap());

    let leader_addr = c.nodes[&leader].client_addr;
    let add = AddNodeRequest {
        raft_id: 4,
        raft_endpoint: fourth.raft_addr.clone(),
        client_endpoint: fourth.client_addr.clone(),
        server_name: fourth.server_name.clone(),
    };
    // A client certificate may not change membership.
    let mut not_admin = OrdererAdminClient::new(
        testkit::channel(
            &c.files.client_tls,
            leader_addr,
            &format!("orderer-{leader}"),
        )
        .await,
    );
    let err = not_admin.add_node(add.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let mut admin = OrdererAdminClient::new(
        testkit::channel(
            &c.files.admin_tls,
            leader_addr,
            &format!("orderer-{leader}"),
        )
        .await,
    );
    admin.add_node(add).await.unwrap();

    let acks = testkit::broadcast(&mut client, c.envelopes(0, 200..400), DEADLINE)
        .await
        .unwrap();
    assert_eq!(accepted(&acks).len(), 200);
    let height = c.height(leader);
    let chains = c
        .agreed_chains(height, "the new node holds the same chain")
        .await;
    assert_eq!(check_chain(&chains[3]).len(), 400);
    let progress = c.nodes[&leader]
        .handles
        .status
        .read()
        .unwrap()
        .progress
        .clone();
    assert!(
        progress.iter().any(|(id, _)| *id == 4),
        "the leader replicates to node 4: {progress:?}"
    );

    admin
        .remove_node(RemoveNodeRequest { raft_id: 4 })
        .await
        .unwrap();
    let until = std::time::Instant::now() + DEADLINE;
    while c.nodes[&leader]
        .handles
        .status
        .read()
        .unwrap()
        .progress
        .iter()
        .any(|(id, _)| *id == 4)
    {
        assert!(std::time::Instant::now() < until, "node 4 was not removed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acks = testkit::broadcast(&mut client, c.envelopes(0, 400..500), DEADLINE)
        .await
        .unwrap();
    assert_eq!(
        accepted(&acks).len(),
        100,
        "three nodes go on after the removal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_compaction_point_catches_up_from_a_snapshot_plus_blocks() {
    let mut c = Cluster::start_with_configs(3, 1, &[], |cfg| {
        // Small blocks and an eager compaction, so that a short outage falls behind it.
        cfg.batching.max_txs = 10;
        cfg.compact_after_entries = 20;
        cfg.compact_keep_entries = 5;
    })
    .await;
    let leader = c.leader().await;
    let (follower, cfg) = c.follower_of(leader);
    let mut client = c.client(leader).await;
    testkit::broadcast(&mut client, c.envelopes(0, 0..50), DEADLINE)
        .await
        .unwrap();
    let before = c.height(leader);
    testkit::wait_for_height(&c.running(), before, DEADLINE).await;

    c.nodes.remove(&follower).unwrap().kill().await;
    // Enough blocks that the survivors compact their logs past the follower.
    let acks = testkit::broadcast(&mut client, c.envelopes(0, 50..600), DEADLINE)
        .await
        .unwrap();
    assert_eq!(accepted(&acks).len(), 550);
    let height = c.height(leader);
    assert!(height >= before + 40, "{height} blocks");

    c.restart(cfg).await;
    let chains = c
        .agreed_chains(height, "the caught-up follower holds the same chain")
        .await;
    assert_eq!(check_chain(&chains[0]).len(), 600);
    assert!(
        c.nodes[&leader].metrics.compactions.get() > 0,
        "the leader compacted its log"
    );
    assert_eq!(
        c.nodes[&follower].metrics.snapshots_installed.get(),
        1,
        "the follower caught up through a snapshot"
    );
    // And it keeps up with new blocks after the snapshot.
    let acks = testkit::broadcast(&mut client, c.envelopes(0, 600..650), DEADLINE)
        .await
        .unwrap();
    assert_eq!(accepted(&acks).len(), 50);
    let height = c.height(leader);
    testkit::wait_for_height(&c.running(), height, DEADLINE).await;
}
