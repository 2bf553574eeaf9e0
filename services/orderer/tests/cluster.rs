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
        let dir = tempfile::tempdir().unwrap();
        let listeners = testkit::bind(n).await;
        let files = testkit::write_cluster(dir.path(), &listeners, 3, revoked);
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

    let height = c.nodes[&leader].handles.status.read().unwrap().height;
    testkit::wait_for_height(&c.running(), height, DEADLINE).await;
    let chains: Vec<Vec<Vec<u8>>> =
        futures::future::join_all(c.nodes.keys().map(|id| c.chain(*id, height))).await;
    assert!(
        chains.windows(2).all(|w| w[0] == w[1]),
        "every node stores byte-identical blocks"
    );
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
