//! A consortium of processes on loopback: orderers run as `fiscus orderer`,
//! and each member runs `fiscus ledger-store` and `fiscus gossip-gateway`, all
//! over mutual TLS, with events on a real nats-server.
//!
//! - Every member reaches the same head and state hash, and every height
//!   becomes final at every member.
//! - The member whose orderer links are cut follows the head through its peers.
//! - A NATS subscriber sees every tx status once, in order, across its restart.
//! - A member removed by governance can no longer connect.
//! - A member whose stored state was edited on disk attests differently, and
//!   every member raises the divergence alarm.
//! - A peer that pushes a block with a forged orderer signature is refused,
//!   then banned, and the honest chain goes on.
//! - A member whose processes stop for 5,000 blocks catches up from its peers
//!   with the same state hash.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod support;

use support::{http_get, spawn_orderer_on, spawn_quiet, word};

use fiscus_gossip_gateway::testkit::{self, envelope};
use fiscus_orderer::testkit as ok;
use fiscus_proto::pb::gossip::HeartbeatRequest;
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::governance::{
    GovernanceCall, Proposal, ProposeArgs, RemoveMember, VoteArgs, governance_call,
    proposal::Change,
};
use fiscus_proto::pb::ledger::ChainInfoRequest;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::transfer::{AccountRef, AllocateArgs, TransferCall, transfer_call::Method};
use fiscus_proto::pb::types::tx_payload::Call;
use std::path::Path;
use std::time::{Duration, Instant};

/// Reads `fiscus.<consortium>.000000.txs` through a durable JetStream consumer:
/// 12 messages, a restart, then the rest. Each tx exactly once, in block order.
async fn subscriber_sees_every_tx_once(
    url: &str,
    files: &testkit::NetworkFiles,
    ledger: &str,
    height: u64,
    sent: usize,
) {
    use fiscus_common::bus::EventBus as _;
    use prost::Message as _;
    // One message in flight: a restarted consumer then gets what its first
    // instance fetched and never acked before anything newer (with more in
    // flight those return after ack_wait, behind newer ones: seen in CI).
    let limits = fiscus_common::bus::BusLimits {
        ack_wait: Duration::from_secs(2),
        max_ack_pending: 1,
        ..Default::default()
    };
    let bus = fiscus_common::bus::nats::NatsBus::connect(url, "subscriber", limits)
        .await
        .unwrap();
    let consortium = &files.cluster.consortium;
    let stream = format!("FISCUS_{}_000000", consortium.replace(['-', '.'], "_"));
    let filter = format!("fiscus.{consortium}.000000.txs");
    let mut seen: Vec<Vec<u8>> = Vec::new();
    // Every event carries the trace context of the commit that produced it
    // (docs/events.md): a block's events share one trace at this member (blocks
    // committed in one run share it too), no collector needed.
    let mut traces: std::collections::BTreeMap<u64, std::collections::BTreeSet<String>> =
        Default::default();
    for stop_at in [12, sent] {
        // A fresh consumer object each time: the second is the restarted subscriber.
        let mut c = bus
            .durable_consumer(&stream, "audit-office", &filter)
            .await
            .unwrap();
        while seen.len() < stop_at {
            let m = tokio::time::timeout(Duration::from_secs(60), c.next())
                .await
                .expect("a tx status within 60 s")
                .unwrap()
                .unwrap();
            let e =
                fiscus_proto::pb::events::TxStatusChanged::decode(&m.event.payload[..]).unwrap();
            let trace = fiscus_common::telemetry::trace_id_of(&m.event.headers)
                .unwrap_or_else(|| panic!("no traceparent on a tx event: {:?}", m.event.headers));
            traces.entry(e.block_number).or_default().insert(trace);
            seen.push(e.tx_id);
            m.ack().await.unwrap();
        }
    }
    let ch = ok::channel(
        &files.members[0].tls_dir,
        ledger.parse().unwrap(),
        "127.0.0.1",
    )
    .await;
    let mut lc = LedgerClient::new(ch);
    let mut expected = Vec::new();
    for n in 1..=height {
        let r = lc
            .get_block_receipts(fiscus_proto::pb::ledger::GetBlockRequest {
                number: n,
                hash: Vec::new(),
            })
            .await
            .unwrap()
            .into_inner();
        expected.extend(r.receipts.into_iter().map(|r| r.tx_id));
    }
    assert_eq!(expected.len(), sent);
    assert_eq!(seen, expected, "every tx exactly once, in chain order");
    assert!(
        traces.values().all(|t| t.len() == 1),
        "one trace per block: {traces:?}"
    );
}

/// MOF allocates `amount` fen of the test program to Hebei.
fn mof_to_hebei(
    files: &testkit::NetworkFiles,
    nonce: u64,
    amount: i64,
    document: &str,
) -> fiscus_proto::pb::types::Envelope {
    envelope(
        files,
        &files.mof,
        nonce,
        Call::Transfer(TransferCall {
            method: Some(Method::Allocate(AllocateArgs {
                from: account("000000"),
                to_org_code: "130000".into(),
                amount_fen: amount,
                document: document.into(),
                external_id: String::new(),
            })),
        }),
    )
}

fn account(org: &str) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: "2026-edu-01".into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_orderers_and_four_members_as_processes_agree_and_finalize_every_height() {
    let dir = tempfile::tempdir().unwrap();
    let (mut files, listeners) = testkit::write_network(dir.path(), 3, 4).await;
    // Events go to a real nats-server (JetStream), started here on a free port.
    let nats = fiscus_common::testkit::NatsServer::start().unwrap();
    for m in &mut files.members {
        m.gateway.nats_url = Some(nats.url());
    }
    // A third voter for governance: a client of Shijiazhuang (130100).
    let (key, cert_id, serial, cert) = ok::issue_from(
        &files.cluster,
        "130100",
        fiscus_proto::pb::types::Role::Client,
        &[],
        &dir.path().join("sjz"),
    );
    std::fs::copy(&cert, files.signers_dir.join("sjz.pem")).unwrap();
    let sjz = ok::Signer {
        key,
        cert_id,
        serial,
        cert_file: cert,
    };
    let mut procs = Vec::new();
    let orderer_addr = files.cluster.configs[0].listen;
    for (c, l) in files.cluster.configs.iter_mut().zip(&listeners) {
        c.raft.tick_ms = 50;
        let path = dir.path().join(format!("orderer-{}.toml", c.node_id));
        std::fs::write(&path, toml::to_string(c).unwrap()).unwrap();
        procs.push(spawn_orderer_on(&path, l).0);
    }
    // The fourth member's orderer links are cut: its orderer endpoints refuse
    // connections (closed ports), so it can only follow through its peers.
    for o in &mut files.members[3].gateway.orderers {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        o.addr = closed.local_addr().unwrap().to_string();
    }
    let mut ledgers = Vec::new();
    let mut gateways = Vec::new();
    for m in &files.members {
        let path = dir.path().join(format!("ledger-{}.toml", m.code));
        std::fs::write(&path, toml::to_string(&m.ledger).unwrap()).unwrap();
        let (p, line) = spawn_quiet("ledger-store", &path);
        procs.push(p);
        ledgers.push(word(&line, "grpc="));
    }
    for m in &files.members {
        let path = dir.path().join(format!("gateway-{}.toml", m.code));
        std::fs::write(&path, toml::to_string(&m.gateway).unwrap()).unwrap();
        let (p, line) = spawn_quiet("gossip-gateway", &path);
        procs.push(p);
        gateways.push(word(&line, "http="));
    }

    // Transactions through the first orderer (it forwards to the leader).
    let mut envs = vec![testkit::edu_appropriation(&files, 1, 100_000_000)];
    for n in 2..=30 {
        envs.push(mof_to_hebei(
            &files,
            n,
            n as i64,
            &format!("财教〔2026〕{n}号"),
        ));
    }
    let until = Instant::now() + Duration::from_secs(120);
    let mut height = 0;
    for chunk in envs.chunks(5) {
        loop {
            let mut c = ok::client(&files.cluster, orderer_addr, "orderer-1").await;
            match ok::broadcast(&mut c, chunk.to_vec(), Duration::from_secs(30)).await {
                Ok(acks) if acks.iter().all(|a| a.block_number > 0) => {
                    height = height.max(acks.iter().map(|a| a.block_number).max().unwrap());
                    break;
                }
                // No leader yet: try again.
                _ => {
                    assert!(
                        Instant::now() < until,
                        "the orderers never accepted the transactions"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    // Every member at the head with the same state hash.
    let mut hashes = Vec::new();
    for (m, addr) in files.members.iter().zip(&ledgers) {
        let ch = ok::channel(&m.tls_dir, addr.parse().unwrap(), "127.0.0.1").await;
        let mut lc = LedgerClient::new(ch);
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let info = lc
                .get_chain_info(ChainInfoRequest {})
                .await
                .unwrap()
                .into_inner();
            if info.height >= height {
                hashes.push((info.height, info.state_hash));
                break;
            }
            assert!(
                Instant::now() < until,
                "{} stuck at {}",
                m.code,
                info.height
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");

    // A NATS subscriber (the audit office's system) sees every tx status of
    // MOF's member exactly once, in chain order, across its own restart.
    subscriber_sees_every_tx_once(&nats.url(), &files, &ledgers[0], height, envs.len()).await;

    // Every height final at every member.
    for (m, http) in files.members.iter().zip(&gateways) {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let body = http_get(http, "/v1/finality").unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if v["final_height"].as_u64().is_some_and(|f| f >= height) {
                break;
            }
            assert!(Instant::now() < until, "{}: finality {body}", m.code);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let alarms = http_get(http, "/v1/alarms").unwrap();
        assert!(alarms.contains("\"alarms\":[]"), "{alarms}");
    }
    // The cut-off member got every block from its peers and never reached an orderer.
    let metrics = http_get(&gateways[3], "/metrics").unwrap();
    assert!(
        !metrics.contains("fiscus_gossip_blocks_committed_total{source=\"orderer\"}"),
        "{metrics}"
    );
    let readyz = http_get(&gateways[3], "/readyz").unwrap();
    assert!(readyz.contains("orderer"), "{readyz}");

    // Governance removes Chang'an (130102): proposed by MOF, voted by Hebei and
    // Shijiazhuang (3 of 4). Its node can then no longer talk to the others.
    let gov = |who: &ok::Signer, nonce: u64, m: governance_call::Method| {
        envelope(
            &files,
            who,
            nonce,
            Call::Governance(GovernanceCall { method: Some(m) }),
        )
    };
    let propose = gov(
        &files.mof,
        100,
        governance_call::Method::Propose(ProposeArgs {
            proposal: Some(Proposal {
                title: "Chang'an leaves the consortium".into(),
                change: Some(Change::RemoveMember(RemoveMember {
                    org_code: "130102".into(),
                    reason: "test".into(),
                })),
            }),
        }),
    );
    let pid = fiscus_proto::hash::tx_id(&propose.payload);
    let vote = |who, nonce| {
        gov(
            who,
            nonce,
            governance_call::Method::Vote(VoteArgs {
                proposal_tx_id: pid.to_vec(),
                approve: true,
            }),
        )
    };
    let mut c = ok::client(&files.cluster, orderer_addr, "orderer-1").await;
    for env in [propose, vote(&files.hebei, 1), vote(&sjz, 1)] {
        let acks = ok::broadcast(&mut c, vec![env], Duration::from_secs(30))
            .await
            .unwrap();
        assert!(acks[0].block_number > 0, "{acks:?}");
    }
    let gateway0: std::net::SocketAddr = files.members[0].gateway.listen;
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let ch = ok::channel(&files.members[3].tls_dir, gateway0, "127.0.0.1").await;
        let r = GossipClient::new(ch)
            .heartbeat(HeartbeatRequest {
                member: "130102".into(),
                height: 0,
            })
            .await;
        match r {
            Err(e)
                if e.metadata()
                    .get("fiscus-error-code")
                    .map(|v| v.to_str().unwrap())
                    == Some("gossip.not_member") =>
            {
                break;
            }
            _ => {
                assert!(
                    Instant::now() < until,
                    "the removed member is still let in: {r:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let members = http_get(&gateways[0], "/v1/members").unwrap();
    assert!(!members.contains("130102"), "{members}");

    // Tampering: Shijiazhuang's (130100) ledger process is stopped, its stored
    // balance edited on disk behind the ledger's back, and the process started
    // again. The next block that touches the account makes its attestation
    // differ, and every remaining member raises the divergence alarm.
    let tampered = 2;
    let ledger_proc = 3 + tampered;
    let _ = procs[ledger_proc].0.kill();
    let _ = procs[ledger_proc].0.wait();
    {
        use fiscus_common::store::{StateStore, StoreLimits, WriteBatch, fjall::FjallStore};
        use prost::Message as _;
        let store = FjallStore::open(
            &files.members[tampered].ledger.data_dir.join("ledger.fjall"),
            StoreLimits::default(),
        )
        .unwrap();
        let key = fiscus_ledger_store::keys::state(b"acct/000000/2026-edu-01");
        let raw = store.get(&key).await.unwrap().unwrap().value;
        let (h, value) = fiscus_ledger_store::keys::decode_state(&raw).unwrap();
        let mut acct = fiscus_proto::pb::state::Account::decode(value).unwrap();
        acct.balance_fen += 1_000_000;
        let raw = fiscus_ledger_store::keys::encode_state(h, &acct.encode_to_vec());
        store.commit(WriteBatch::new().put(key, raw)).await.unwrap();
    }
    let path = dir
        .path()
        .join(format!("ledger-{}.toml", files.members[tampered].code));
    procs[ledger_proc] = spawn_quiet("ledger-store", &path).0;
    let touch = mof_to_hebei(&files, 200, 7, "after tampering");
    let acks = ok::broadcast(&mut c, vec![touch], Duration::from_secs(30))
        .await
        .unwrap();
    let h2 = acks[0].block_number;
    assert!(h2 > 0, "{acks:?}");
    for http in &gateways[..3] {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let alarms = http_get(http, "/v1/alarms").unwrap_or_default();
            if alarms.contains("\"diverging\":[\"130100\"]")
                && alarms.contains(&format!("\"height\":{h2}"))
            {
                break;
            }
            assert!(
                Instant::now() < until,
                "{http}: no alarm for height {h2}: {alarms}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Only the diverging member fails its readiness check.
    let readyz = http_get(&gateways[tampered], "/readyz").unwrap();
    assert!(readyz.contains("divergence"), "{readyz}");
    let readyz = http_get(&gateways[0], "/readyz").unwrap();
    assert!(!readyz.contains("divergence"), "{readyz}");

    // A rogue peer: MOF's node pushes Hebei's gateway a real block re-signed by
    // a key no orderer holds. Each push is refused; after three it is banned,
    // and even its heartbeat is refused. The honest chain goes on.
    let ch = ok::channel(
        &files.members[0].tls_dir,
        ledgers[0].parse().unwrap(),
        "127.0.0.1",
    )
    .await;
    let mut forged = LedgerClient::new(ch)
        .get_block(fiscus_proto::pb::ledger::GetBlockRequest {
            number: h2,
            hash: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    forged.orderer_signature.as_mut().unwrap().signature =
        fiscus_proto::sign::SigningKey::from_seed(&[66; 32])
            .sign(&forged.header)
            .to_vec();
    let hebei_gateway = files.members[1].gateway.listen;
    let mut rogue =
        GossipClient::new(ok::channel(&files.members[0].tls_dir, hebei_gateway, "127.0.0.1").await);
    let code = |e: &tonic::Status| {
        e.metadata()
            .get("fiscus-error-code")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for _ in 0..3 {
        let err = rogue
            .push_blocks(futures::stream::iter(vec![forged.clone()]))
            .await
            .unwrap_err();
        assert_eq!(code(&err).as_deref(), Some("gossip.bad_block"), "{err}");
    }
    let err = rogue
        .heartbeat(HeartbeatRequest {
            member: "000000".into(),
            height: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err).as_deref(), Some("gossip.banned"), "{err}");
    let refused = http_get(&gateways[1], "/metrics").unwrap();
    assert!(
        refused.contains("fiscus_gossip_refused_total{reason=\"bad_push\"} 3"),
        "{refused}"
    );
    let more = mof_to_hebei(&files, 201, 8, "after the rogue peer");
    let h3 = ok::broadcast(&mut c, vec![more], Duration::from_secs(30))
        .await
        .unwrap()[0]
        .block_number;
    assert!(h3 > h2);
    for addr in &ledgers[..2] {
        let ch = ok::channel(
            &files.members[0].tls_dir,
            addr.parse().unwrap(),
            "127.0.0.1",
        )
        .await;
        let mut lc = LedgerClient::new(ch);
        let until = Instant::now() + Duration::from_secs(120);
        while lc
            .get_chain_info(ChainInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .height
            < h3
        {
            assert!(Instant::now() < until, "{addr} did not reach {h3}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    drop(procs);
}

/// The chain head (height, state hash) of the ledger-store at `addr`.
async fn head(tls_dir: &Path, addr: &str) -> (u64, Vec<u8>) {
    let ch = ok::channel(tls_dir, addr.parse().unwrap(), "127.0.0.1").await;
    let info = LedgerClient::new(ch)
        .get_chain_info(ChainInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    (info.height, info.state_hash)
}

async fn wait_height(tls_dir: &Path, addr: &str, height: u64, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let (h, _) = head(tls_dir, addr).await;
        if h >= height {
            return;
        }
        assert!(
            Instant::now() < until,
            "{addr} stuck at {h}, short of {height}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Blocks a member misses while its processes are stopped.
const MISSED_BLOCKS: u64 = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_processes_stop_for_5000_blocks_catches_up_from_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let (mut files, listeners) = testkit::write_network(dir.path(), 1, 3).await;
    // One transaction per block, so that 5,000 transactions make 5,000 blocks.
    let c = &mut files.cluster.configs[0];
    c.batching.max_txs = 1;
    c.raft.tick_ms = 50;
    let orderer_addr = c.listen;
    let path = dir.path().join("orderer-1.toml");
    std::fs::write(&path, toml::to_string(c).unwrap()).unwrap();
    let _orderer = spawn_orderer_on(&path, &listeners[0]).0;
    // The late member follows its peers only.
    files.members[2].gateway.orderers.clear();
    let mut ledgers = Vec::new();
    let mut procs = Vec::new();
    for m in &files.members {
        let path = dir.path().join(format!("ledger-{}.toml", m.code));
        std::fs::write(&path, toml::to_string(&m.ledger).unwrap()).unwrap();
        let (p, line) = spawn_quiet("ledger-store", &path);
        ledgers.push(word(&line, "grpc="));
        let gpath = dir.path().join(format!("gateway-{}.toml", m.code));
        std::fs::write(&gpath, toml::to_string(&m.gateway).unwrap()).unwrap();
        let (g, _) = spawn_quiet("gossip-gateway", &gpath);
        procs.push((p, g));
    }
    let funding = vec![
        testkit::edu_appropriation(&files, 1, 100_000_000),
        mof_to_hebei(&files, 2, 50_000_000, "财教〔2026〕2号"),
    ];
    let until = Instant::now() + Duration::from_secs(120);
    let h0 = loop {
        let mut c = ok::client(&files.cluster, orderer_addr, "orderer-1").await;
        match ok::broadcast(&mut c, funding.clone(), Duration::from_secs(30)).await {
            Ok(acks) if acks.iter().all(|a| a.block_number > 0) => {
                break acks.iter().map(|a| a.block_number).max().unwrap();
            }
            _ => {
                assert!(
                    Instant::now() < until,
                    "the orderer never accepted the funding"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let late = &files.members[2];
    wait_height(&late.tls_dir, &ledgers[2], h0, Duration::from_secs(120)).await;
    let (stopped_at, _) = head(&late.tls_dir, &ledgers[2]).await;
    // Both of its processes stop (killed, as a crash would).
    drop(procs.pop());

    // Hebei pays schools: one disbursement per block.
    let envs: Vec<_> = (0..MISSED_BLOCKS)
        .map(|i| testkit::school_payment(&files, 1 + i))
        .collect();
    let mut c = ok::client(&files.cluster, orderer_addr, "orderer-1").await;
    let acks = ok::broadcast(&mut c, envs, Duration::from_secs(300))
        .await
        .unwrap();
    let height = acks.iter().map(|a| a.block_number).max().unwrap();
    assert!(height >= stopped_at + MISSED_BLOCKS, "{height}");
    wait_height(
        &files.members[0].tls_dir,
        &ledgers[0],
        height,
        Duration::from_secs(300),
    )
    .await;

    // Started again, it replays the missed blocks from its peers.
    let path = dir.path().join(format!("ledger-{}.toml", late.code));
    let _ledger = spawn_quiet("ledger-store", &path).0;
    let gpath = dir.path().join(format!("gateway-{}.toml", late.code));
    let (_gateway, line) = spawn_quiet("gossip-gateway", &gpath);
    let http = word(&line, "http=");
    wait_height(&late.tls_dir, &ledgers[2], height, Duration::from_secs(300)).await;
    assert_eq!(
        head(&late.tls_dir, &ledgers[2]).await,
        head(&files.members[0].tls_dir, &ledgers[0]).await,
        "the same head and state hash"
    );
    // Every missed block came from its peers (it has no orderer to ask). The
    // gateway counts a block just after the ledger's head moves past it.
    let from_peers = || {
        let metrics = http_get(&http, "/metrics").unwrap_or_default();
        let n: u64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("fiscus_gossip_blocks_committed_total{source=\"pull\"}")
                    || l.starts_with("fiscus_gossip_blocks_committed_total{source=\"push\"}")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        (n, metrics)
    };
    let until = Instant::now() + Duration::from_secs(60);
    let (mut n, mut metrics) = from_peers();
    while n < height - stopped_at && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
        (n, metrics) = from_peers();
    }
    assert_eq!(n, height - stopped_at, "{metrics}");
}
