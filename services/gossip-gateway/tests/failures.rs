//! How the network behaves when something is wrong: a peer serving forged
//! blocks, a member whose stored state was tampered with, a member removed
//! by governance; a NATS subscriber following tx statuses across its
//! own restart; and events of blocks committed while NATS is down, across a
//! gateway restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::bus::EventBus;
use fiscus_common::store::{StateStore, WriteBatch};
use fiscus_gossip_gateway::testkit::{self, NetworkFiles, RunningMember, envelope};
use fiscus_orderer::testkit as ok;
use fiscus_proto::hash::{Hash32, tx_id};
use fiscus_proto::pb::events::{BlockCommitted, TxStatusChanged};
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::gossip::{AttestationBatch, HeartbeatRequest};
use fiscus_proto::pb::governance::{
    GovernanceCall, Proposal, ProposeArgs, RemoveMember, VoteArgs, governance_call,
    proposal::Change,
};
use fiscus_proto::pb::transfer::{AccountRef, AllocateArgs, TransferCall, transfer_call::Method};
use fiscus_proto::pb::types::{Attestation, Envelope, tx_payload::Call};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn account(org: &str) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: "2026-edu-01".into(),
    })
}

fn transfer(files: &NetworkFiles, nonce: u64, m: Method) -> Envelope {
    envelope(
        files,
        &files.mof,
        nonce,
        Call::Transfer(TransferCall { method: Some(m) }),
    )
}

fn appropriate(files: &NetworkFiles) -> Envelope {
    testkit::edu_appropriation(files, 1, 100_000_000)
}

fn allocate(files: &NetworkFiles, nonce: u64) -> Envelope {
    transfer(
        files,
        nonce,
        Method::Allocate(AllocateArgs {
            from: account("000000"),
            to_org_code: "130000".into(),
            amount_fen: 1000 + nonce as i64,
            document: format!("财教〔2026〕{nonce}号"),
            external_id: String::new(),
        }),
    )
}

/// Sends each envelope and returns the highest block that holds one.
async fn submit(orderer: SocketAddr, files: &NetworkFiles, envs: Vec<Envelope>) -> u64 {
    let mut client = ok::client(&files.cluster, orderer, "orderer-1").await;
    let acks = ok::broadcast(&mut client, envs, Duration::from_secs(30))
        .await
        .unwrap();
    acks.iter().map(|a| a.block_number).max().unwrap()
}

struct Net {
    _dir: tempfile::TempDir,
    files: NetworkFiles,
    orderer: SocketAddr,
    orderers: Vec<fiscus_orderer::Running>,
    members: Vec<RunningMember>,
}

async fn network(members: usize, nats: Option<String>) -> Net {
    let dir = tempfile::tempdir().unwrap();
    let (mut files, listeners) = testkit::write_network(dir.path(), 1, members).await;
    for m in &mut files.members {
        m.gateway.nats_url = nats.clone();
    }
    let orderers = testkit::start_orderers(&mut files, listeners).await;
    let orderer = orderers[0].client_addr;
    let mut running = Vec::new();
    for m in &files.members {
        running.push(testkit::start_member(m).await);
    }
    Net {
        _dir: dir,
        files,
        orderer,
        orderers,
        members: running,
    }
}

impl Net {
    async fn stop(self) {
        for m in self.members {
            m.stop().await;
        }
        for o in self.orderers {
            o.kill().await;
        }
    }

    fn refs(&self) -> Vec<&RunningMember> {
        self.members.iter().collect()
    }
}

async fn gossip_client(
    files: &NetworkFiles,
    as_member: usize,
    to: SocketAddr,
) -> GossipClient<tonic::transport::Channel> {
    GossipClient::new(ok::channel(&files.members[as_member].tls_dir, to, "127.0.0.1").await)
}

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = Instant::now() + Duration::from_secs(60);
    while !f().await {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_pushing_blocks_with_a_bad_orderer_signature_is_refused_then_disconnected() {
    let net = network(3, None).await;
    let h = submit(net.orderer, &net.files, vec![appropriate(&net.files)]).await;
    testkit::wait_all_at(&net.refs(), h, Duration::from_secs(60)).await;

    // Member 2 turns rogue: it pushes a real block re-signed by a key no orderer has.
    let honest = net.members[0].ledger.ledger.block(h).await.unwrap();
    let mut forged = fiscus_proto::pb::types::Block::decode(&honest[..]).unwrap();
    let sig = forged.orderer_signature.as_mut().unwrap();
    sig.signature = fiscus_proto::sign::SigningKey::from_seed(&[66; 32])
        .sign(&forged.header)
        .to_vec();
    let target = net.members[0].gateway.addr;
    let mut rogue = gossip_client(&net.files, 2, target).await;
    let mut refusals = 0;
    for _ in 0..3 {
        let err = rogue
            .push_blocks(futures::stream::iter(vec![forged.clone()]))
            .await
            .unwrap_err();
        assert_eq!(
            err.metadata().get("fiscus-error-code").unwrap(),
            "gossip.bad_block",
            "{err}"
        );
        refusals += 1;
    }
    assert_eq!(refusals, 3);
    // Three strikes: disconnected, and even a heartbeat is refused now.
    let err = rogue
        .heartbeat(HeartbeatRequest {
            member: "130100".into(),
            height: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.metadata().get("fiscus-error-code").unwrap(),
        "gossip.banned"
    );
    // The honest chain goes on.
    let h2 = submit(net.orderer, &net.files, vec![allocate(&net.files, 2)]).await;
    testkit::wait_all_at(&net.refs(), h2, Duration::from_secs(60)).await;
    let hashes: Vec<_> =
        futures::future::join_all(net.members.iter().map(|m| m.state_hash())).await;
    assert!(hashes.windows(2).all(|w| w[0] == w[1]));
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_one_members_state_raises_the_divergence_alarm_on_every_member() {
    let net = network(3, None).await;
    let h = submit(net.orderer, &net.files, vec![appropriate(&net.files)]).await;
    testkit::wait_all_at(&net.refs(), h, Duration::from_secs(60)).await;

    // Someone edits member 2's stored balance behind the ledger's back.
    let ledger = &net.members[2].ledger.ledger;
    let key = fiscus_ledger_store::keys::state(b"acct/000000/2026-edu-01");
    let mut raw = ledger.store().get(&key).await.unwrap().unwrap().value;
    let (height, value) = fiscus_ledger_store::keys::decode_state(&raw).unwrap();
    let mut acct = fiscus_proto::pb::state::Account::decode(value).unwrap();
    acct.balance_fen += 1_000_000;
    raw = fiscus_ledger_store::keys::encode_state(height, &acct.encode_to_vec());
    ledger
        .store()
        .commit(WriteBatch::new().put(key, raw))
        .await
        .unwrap();

    // The next block that touches the account makes its attestation differ.
    let h2 = submit(net.orderer, &net.files, vec![allocate(&net.files, 2)]).await;
    testkit::wait_all_at(&net.refs(), h2, Duration::from_secs(60)).await;
    for m in &net.members {
        eventually("every member raises the alarm", || async {
            let alarms = m.gateway.node.finality.lock().unwrap().alarms();
            alarms
                .iter()
                .any(|a| a.height == h2 && a.diverging == vec!["130100".to_owned()])
        })
        .await;
        assert!(m.gateway.node.metrics.alarms.get() >= 1);
    }
    // Only the diverging member fails its readiness check.
    let failing = |i: usize| net.members[i].gateway.node.readiness.failing();
    assert!(failing(2).contains_key("divergence"), "{:?}", failing(2));
    assert!(!failing(0).contains_key("divergence"));
    // The honest majority still makes the height final.
    testkit::wait_all_final(&net.refs()[..2], h2, Duration::from_secs(60)).await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_removed_by_governance_can_no_longer_connect() {
    let net = network(3, None).await;
    let gov = |who, nonce, m| {
        envelope(
            &net.files,
            who,
            nonce,
            Call::Governance(GovernanceCall { method: Some(m) }),
        )
    };
    let propose = gov(
        &net.files.mof,
        1,
        governance_call::Method::Propose(ProposeArgs {
            proposal: Some(Proposal {
                title: "Shijiazhuang leaves the consortium".into(),
                change: Some(Change::RemoveMember(RemoveMember {
                    org_code: "130100".into(),
                    reason: "test".into(),
                })),
            }),
        }),
    );
    let pid = tx_id(&propose.payload);
    let hp = submit(net.orderer, &net.files, vec![propose]).await;
    testkit::wait_all_final(&net.refs(), hp, Duration::from_secs(60)).await;

    // A member asks a peer for everyone's attestations by height range while
    // holding none of its own (as one that caught up before it knew itself
    // a member): the peer answers with a majority for every height.
    let mut c = gossip_client(&net.files, 1, net.members[0].gateway.addr).await;
    let got = c
        .exchange_attestations(AttestationBatch {
            attestations: Vec::new(),
            want_from: 1,
            want_to: hp,
        })
        .await
        .unwrap()
        .into_inner()
        .attestations;
    let mut by_height: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for a in &got {
        let att = Attestation::decode(&a.attestation[..]).unwrap();
        by_height.entry(att.height).or_default().insert(att.member);
    }
    for h in 1..=hp {
        assert!(
            by_height.get(&h).is_some_and(|m| m.len() >= 2),
            "height {h}: {by_height:?}"
        );
    }
    // A range over 256 heights is refused, typed.
    let e = c
        .exchange_attestations(AttestationBatch {
            attestations: Vec::new(),
            want_from: 1,
            want_to: 300,
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.metadata()
            .get("fiscus-error-code")
            .map(|v| v.to_str().unwrap()),
        Some("gossip.too_many")
    );
    let vote = gov(
        &net.files.hebei,
        1,
        governance_call::Method::Vote(VoteArgs {
            proposal_tx_id: pid.to_vec(),
            approve: true,
        }),
    );
    let h = submit(net.orderer, &net.files, vec![vote]).await;
    testkit::wait_all_at(&net.refs()[..2], h, Duration::from_secs(60)).await;
    let members = net.members[0]
        .ledger
        .ledger
        .consortium_config()
        .await
        .unwrap()
        .members;
    assert!(members.iter().all(|m| m.org_code != "130100"));

    // Its node certificate is refused by the remaining members' gateways.
    let target = net.members[0].gateway.addr;
    eventually("the removed member is refused", || async {
        let mut c = gossip_client(&net.files, 2, target).await;
        match c
            .heartbeat(HeartbeatRequest {
                member: "130100".into(),
                height: 0,
            })
            .await
        {
            Err(e) => {
                e.metadata()
                    .get("fiscus-error-code")
                    .map(|v| v.to_str().unwrap())
                    == Some("gossip.not_member")
            }
            Ok(_) => false,
        }
    })
    .await;
    // And it is gone from their peer tables.
    eventually("the peer tables drop it", || async {
        net.members[0]
            .gateway
            .node
            .peers
            .lock()
            .unwrap()
            .view()
            .iter()
            .all(|p| p.member != "130100")
    })
    .await;
    // Nor do its attestations count toward finality any more.
    assert!(
        !net.members[0]
            .gateway
            .node
            .finality
            .lock()
            .unwrap()
            .members()
            .contains("130100")
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_subscriber_sees_every_tx_status_once_in_order_across_its_restart() {
    let nats = fiscus_common::testkit::NatsServer::start().unwrap();
    let net = network(2, Some(nats.url())).await;
    let mut envs = vec![appropriate(&net.files)];
    envs.extend((2..=30).map(|n| allocate(&net.files, n)));
    let mut sent = Vec::new();
    let mut h = 0;
    for chunk in envs.chunks(5) {
        sent.extend(chunk.iter().map(|e| tx_id(&e.payload)));
        h = h.max(submit(net.orderer, &net.files, chunk.to_vec()).await);
    }
    testkit::wait_all_at(&net.refs(), h, Duration::from_secs(60)).await;

    // Messages the first run fetched but never acked come back after ack_wait;
    // with one in flight, before anything newer (docs/events.md).
    let limits = fiscus_common::bus::BusLimits {
        ack_wait: Duration::from_secs(2),
        max_ack_pending: 1,
        ..Default::default()
    };
    let bus = fiscus_common::bus::nats::NatsBus::connect(&nats.url(), "subscriber", limits)
        .await
        .unwrap();
    let stream = format!(
        "FISCUS_{}_000000",
        net.files.cluster.consortium.replace(['-', '.'], "_")
    );
    let filter = format!("fiscus.{}.000000.txs", net.files.cluster.consortium);
    let mut seen: Vec<(u64, Hash32)> = Vec::new();
    // First run: take 12, ack them, stop.
    {
        let mut c = bus
            .durable_consumer(&stream, "audit-office", &filter)
            .await
            .unwrap();
        while seen.len() < 12 {
            let m = tokio::time::timeout(Duration::from_secs(30), c.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            let e = TxStatusChanged::decode(&m.event.payload[..]).unwrap();
            seen.push((e.block_number, Hash32::from_slice("tx", &e.tx_id).unwrap()));
            m.ack().await.unwrap();
        }
    }
    // Restarted: resumes after the last ack.
    let mut c = bus
        .durable_consumer(&stream, "audit-office", &filter)
        .await
        .unwrap();
    while seen.len() < sent.len() {
        let m = tokio::time::timeout(Duration::from_secs(30), c.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let e = TxStatusChanged::decode(&m.event.payload[..]).unwrap();
        seen.push((e.block_number, Hash32::from_slice("tx", &e.tx_id).unwrap()));
        m.ack().await.unwrap();
    }
    // Exactly once each, in chain order (block, then position).
    let ids: Vec<Hash32> = seen.iter().map(|(_, id)| *id).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), sent.len(), "every tx exactly once");
    let mut expected = Vec::new();
    for n in 1..=h {
        for r in net.members[0].ledger.ledger.receipts(n).await.unwrap() {
            expected.push(Hash32::from_slice("tx", &r.tx_id).unwrap());
        }
    }
    assert_eq!(ids, expected, "in chain order");
    assert!(
        tokio::time::timeout(Duration::from_millis(500), c.next())
            .await
            .is_err(),
        "nothing more"
    );
    net.stop().await;
}

/// Reads the `kind` events of `member` from the stream until `done` says so
/// (60 s at most), then makes sure nothing more arrives.
async fn read_events<T: Message + Default>(
    nats: &fiscus_common::testkit::NatsServer,
    files: &NetworkFiles,
    member: &str,
    kind: &str,
    done: impl Fn(&[T]) -> bool,
) -> Vec<T> {
    let bus = fiscus_common::bus::nats::NatsBus::connect(
        &nats.url(),
        "reader",
        fiscus_common::bus::BusLimits::default(),
    )
    .await
    .unwrap();
    let consortium = &files.cluster.consortium;
    let stream = format!("FISCUS_{}_{member}", consortium.replace(['-', '.'], "_"));
    let filter = format!("fiscus.{consortium}.{member}.{kind}");
    let mut c = bus
        .durable_consumer(&stream, &format!("reader-{member}-{kind}"), &filter)
        .await
        .unwrap();
    let mut out: Vec<T> = Vec::new();
    let until = Instant::now() + Duration::from_secs(60);
    while !done(&out) {
        let left = until.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, c.next())
            .await
            .unwrap_or_else(|_| panic!("{member} {kind}: {} events within 60 s", out.len()))
            .unwrap()
            .unwrap();
        out.push(T::decode(&m.event.payload[..]).unwrap());
        m.ack().await.unwrap();
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(500), c.next())
            .await
            .is_err(),
        "{member} {kind}: nothing more"
    );
    out
}

/// Waits until member `m`'s gateway says the bus holds every event up to `height`.
async fn events_stored(m: &RunningMember, height: u64) {
    let node = m.gateway.node.clone();
    eventually("the events height reaches the height", || {
        let node = node.clone();
        async move { node.metrics.events_height.get() >= height as i64 }
    })
    .await;
}

/// Member `i`'s stream holds `blocks` for heights 1..=`head` once each, in
/// order, and `txs` statuses for `txs_total` transactions once each, in
/// chain order.
async fn assert_stream_complete(
    nats: &fiscus_common::testkit::NatsServer,
    files: &NetworkFiles,
    i: usize,
    head: u64,
    txs_total: usize,
) {
    let code = files.members[i].code.clone();
    let blocks: Vec<BlockCommitted> =
        read_events(nats, files, &code, "blocks", |b: &[BlockCommitted]| {
            b.last().is_some_and(|b| b.height >= head)
        })
        .await;
    let heights: Vec<u64> = blocks.iter().map(|b| b.height).collect();
    assert_eq!(heights, (1..=head).collect::<Vec<_>>(), "{code}: blocks");
    let txs: Vec<TxStatusChanged> =
        read_events(nats, files, &code, "txs", |t: &[TxStatusChanged]| {
            t.len() >= txs_total
        })
        .await;
    let ids: BTreeSet<Vec<u8>> = txs.iter().map(|t| t.tx_id.clone()).collect();
    assert_eq!(ids.len(), txs_total, "{code}: every tx once");
    assert!(
        txs.windows(2)
            .all(|w| w[0].block_number <= w[1].block_number),
        "{code}: in chain order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_blocks_committed_while_nats_is_down_arrive_once_after_a_gateway_restart() {
    let mut nats = fiscus_common::testkit::NatsServer::start().unwrap();
    let mut net = network(2, Some(nats.url())).await;
    let first = submit(net.orderer, &net.files, vec![appropriate(&net.files)]).await;
    testkit::wait_all_at(&net.refs(), first, Duration::from_secs(60)).await;
    for m in &net.members {
        events_stored(m, first).await;
    }

    // NATS goes down. Blocks still commit at full speed: five blocks of five
    // transactions would take minutes if each event waited for the bus.
    nats.stop();
    let mut head = first;
    for chunk in (2..=26u64).collect::<Vec<_>>().chunks(5) {
        let envs = chunk.iter().map(|n| allocate(&net.files, *n)).collect();
        head = head.max(submit(net.orderer, &net.files, envs).await);
    }
    testkit::wait_all_at(&net.refs(), head, Duration::from_secs(60)).await;
    assert!(head > first);
    for m in &net.members {
        assert!(m.gateway.node.metrics.events_height.get() < head as i64);
    }

    // The first member's gateway restarts before NATS returns; then NATS is back.
    let m0 = net.members.remove(0);
    let m0 = m0.restart_gateway(&net.files.members[0]).await;
    net.members.insert(0, m0);
    nats.restart().unwrap();

    // Both members' streams hold every height's events exactly once, in order.
    for i in 0..2 {
        assert_stream_complete(&nats, &net.files, i, head, 26).await;
        events_stored(&net.members[i], head).await;
    }
    net.stop().await;
}

/// A NATS server that comes back having lost what it acknowledged (here: all
/// of it, a new store; in the fault campaign, the tail a SIGKILL cut off):
/// after the reconnect each gateway looks at its stream again and publishes
/// every height the stream no longer holds, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_that_lost_its_store_gets_every_heights_events_again() {
    let mut nats = fiscus_common::testkit::NatsServer::start().unwrap();
    let net = network(2, Some(nats.url())).await;
    let mut head = submit(net.orderer, &net.files, vec![appropriate(&net.files)]).await;
    for n in 2..=6u64 {
        head = head.max(submit(net.orderer, &net.files, vec![allocate(&net.files, n)]).await);
    }
    testkit::wait_all_at(&net.refs(), head, Duration::from_secs(60)).await;
    for m in &net.members {
        events_stored(m, head).await;
    }
    // The server loses its store; the chain goes on meanwhile.
    nats.stop();
    nats.wipe_storage().unwrap();
    nats.restart().unwrap();
    head = head.max(submit(net.orderer, &net.files, vec![allocate(&net.files, 7)]).await);
    testkit::wait_all_at(&net.refs(), head, Duration::from_secs(60)).await;
    for i in 0..2 {
        assert_stream_complete(&nats, &net.files, i, head, 7).await;
    }
    net.stop().await;
}
