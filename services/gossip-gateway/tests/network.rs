//! Members exchange blocks and attestations over mutual TLS: every member
//! reaches the same head and state hash, every height becomes final, and a
//! member cut off from every orderer follows the chain through its peers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_gossip_gateway::testkit::{self, RunningMember};
use fiscus_orderer::testkit as ok;
use fiscus_proto::envelope::seal;
use fiscus_proto::pb::transfer::{
    AccountRef, AllocateArgs, AppropriateArgs, Program, ProgramKind, TransferCall,
    transfer_call::Method,
};
use fiscus_proto::pb::types::{Envelope, TxPayload, tx_payload::Call};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn account(org: &str) -> Option<AccountRef> {
    Some(AccountRef {
        org_code: org.into(),
        program_id: "2026-edu-01".into(),
    })
}

fn tx(files: &testkit::NetworkFiles, nonce: u64, m: Method) -> Envelope {
    let payload = TxPayload {
        consortium_id: files.cluster.consortium.clone(),
        creator_cert_id: files.mof.cert_id.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(Call::Transfer(TransferCall { method: Some(m) })),
    };
    seal(&payload, &[(&files.mof.key, files.mof.cert_id)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_reach_the_same_head_every_height_is_final_and_a_cut_off_member_follows_its_peers()
{
    let dir = tempfile::tempdir().unwrap();
    let (mut files, listeners) = testkit::write_network(dir.path(), 1, 3).await;
    let orderer_addr = files.cluster.configs[0].listen;
    let config = files.cluster.configs.remove(0);
    let orderer = fiscus_orderer::start_with(config, listeners.into_iter().next().unwrap())
        .await
        .unwrap();
    ok::wait_for_leader(&[&orderer], Duration::from_secs(60)).await;

    // The third member has no orderer link at all.
    files.members[2].gateway.orderers.clear();
    let mut members: Vec<RunningMember> = Vec::new();
    for m in &files.members {
        members.push(testkit::start_member(m).await);
    }

    let mut client = ok::client(&files.cluster, orderer_addr, "orderer-1").await;
    let mut envs = vec![tx(
        &files,
        1,
        Method::Appropriate(AppropriateArgs {
            account: account("000000"),
            program: Some(Program {
                id: "2026-edu-01".into(),
                name: "义务教育补助经费".into(),
                kind: ProgramKind::Special as i32,
                functional_code: "2050202".into(),
                fiscal_year: fiscus_gossip_gateway::testkit::fiscal_year_now(),
                document: "财教〔2026〕1号".into(),
                ..Program::default()
            }),
            amount_fen: 100_000_000,
            document: "财教〔2026〕1号".into(),
        }),
    )];
    for i in 0..20 {
        envs.push(tx(
            &files,
            2 + i,
            Method::Allocate(AllocateArgs {
                from: account("000000"),
                to_org_code: "130000".into(),
                amount_fen: 1000 + i as i64,
                document: format!("财教〔2026〕{}号", 10 + i),
                external_id: String::new(),
            }),
        ));
    }
    let mut height = 0;
    for chunk in envs.chunks(3) {
        let acks = ok::broadcast(&mut client, chunk.to_vec(), Duration::from_secs(30))
            .await
            .unwrap();
        height = acks
            .iter()
            .map(|a| a.block_number)
            .max()
            .unwrap()
            .max(height);
    }
    let refs: Vec<&RunningMember> = members.iter().collect();
    testkit::wait_all_at(&refs, height, Duration::from_secs(60)).await;
    let mut hashes = Vec::new();
    for m in &members {
        hashes.push(m.state_hash().await);
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
    testkit::wait_all_final(&refs, height, Duration::from_secs(60)).await;
    // What the SREs' alerts read: each gateway knows the head, holds every
    // member's attestation up to it, and scores its peers.
    let codes: Vec<String> = members.iter().map(|m| m.code.clone()).collect();
    let until = std::time::Instant::now() + Duration::from_secs(60);
    for m in &members {
        let metrics = &m.gateway.node.metrics;
        let caught_up = || {
            metrics.known_height.get() >= height as i64
                && codes.iter().all(|c| {
                    metrics
                        .attested_height
                        .with_label_values(&[c.as_str()])
                        .get()
                        >= height as i64
                })
        };
        while !caught_up() {
            assert!(
                std::time::Instant::now() < until,
                "{}: known {}, attested {:?}",
                m.code,
                metrics.known_height.get(),
                codes
                    .iter()
                    .map(|c| metrics
                        .attested_height
                        .with_label_values(&[c.as_str()])
                        .get())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(metrics.known_height.get() >= metrics.height.get());
        // The series exported (collected, as a scrape would), one per peer.
        let scored = || -> BTreeSet<String> {
            use prometheus::core::Collector as _;
            metrics
                .peer_score
                .collect()
                .iter()
                .flat_map(|f| f.get_metric().iter())
                .flat_map(|x| x.get_label().iter().map(|l| l.value().to_owned()))
                .collect()
        };
        let peers: BTreeSet<String> = codes.iter().filter(|c| **c != m.code).cloned().collect();
        while scored() != peers {
            assert!(
                std::time::Instant::now() < until,
                "{}: peer scores for {:?}",
                m.code,
                scored()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Every member's ledger-store and gateway export the expiry of the node
    // certificate they serve with (FiscusCertificateExpiringSoon reads it),
    // and the ledger-store counts what its gateway hands it (LedgerIngest).
    for m in &members {
        let text = scrape(m.ledger.http_addr).await;
        let value = |name: &str| -> u64 {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
                .unwrap_or_else(|| panic!("{}: no {name} in\n{text}", m.code))
        };
        assert!(value("fiscus_ledger_height") >= height, "{}", m.code);
        assert!(
            value("fiscus_ledger_blocks_committed_total") >= height,
            "{}",
            m.code
        );
    }
    for m in &members {
        for (what, addr) in [
            ("ledger-store", m.ledger.http_addr),
            ("gateway", m.gateway.http_addr),
        ] {
            let text = scrape(addr).await;
            let series = format!(
                "fiscus_certificate_expiry_seconds{{key=\"ed25519\",member=\"{}\",role=\"node\"}}",
                m.code
            );
            assert!(
                text.lines().any(|l| l.starts_with(&series)),
                "{} {what}: no {series} in\n{text}",
                m.code
            );
        }
    }
    for m in &members {
        assert!(m.gateway.node.finality.lock().unwrap().alarms().is_empty());
        let view = m.gateway.node.peers.lock().unwrap().view();
        assert_eq!(view.len(), 2, "{}: {view:?}", m.code);
    }
    // The cut-off member committed only blocks it got from peers. Its block
    // counter moves just after each commit, and finality can arrive through
    // the others' attestations first: wait for the count.
    let cut = &members[2].gateway.node.metrics;
    let from_peers = || {
        cut.blocks.with_label_values(&["push"]).get()
            + cut.blocks.with_label_values(&["pull"]).get()
    };
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while from_peers() < height && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(from_peers() >= height, "{} of {height}", from_peers());
    assert_eq!(cut.blocks.with_label_values(&["orderer"]).get(), 0);
    for m in members {
        m.stop().await;
    }
    orderer.kill().await;
}

/// Blocks a member misses while stopped.
const BLOCKS: u64 = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stopped_for_5000_blocks_catches_up_from_its_peers_with_the_same_state_hash() {
    let dir = tempfile::tempdir().unwrap();
    let (mut files, listeners) = testkit::write_network(dir.path(), 1, 3).await;
    // One transaction per block, so that 5,000 transactions make 5,000 blocks.
    files.cluster.configs[0].batching.max_txs = 1;
    let orderers = testkit::start_orderers(&mut files, listeners).await;
    let orderer_addr = orderers[0].client_addr;
    // The late member catches up from its peers only.
    files.members[2].gateway.orderers.clear();
    let mut members: Vec<RunningMember> = Vec::new();
    for m in &files.members {
        members.push(testkit::start_member(m).await);
    }
    let mut client = ok::client(&files.cluster, orderer_addr, "orderer-1").await;
    let first = testkit::edu_appropriation(&files, 1, 100_000_000);
    let fund = tx(
        &files,
        2,
        Method::Allocate(AllocateArgs {
            from: account("000000"),
            to_org_code: "130000".into(),
            amount_fen: 50_000_000,
            document: "财教〔2026〕2号".into(),
            external_id: String::new(),
        }),
    );
    let h0 = ok::broadcast(&mut client, vec![first, fund], Duration::from_secs(30))
        .await
        .unwrap()
        .iter()
        .map(|a| a.block_number)
        .max()
        .unwrap();
    let refs: Vec<&RunningMember> = members.iter().collect();
    testkit::wait_all_at(&refs, h0, Duration::from_secs(60)).await;

    let late = members.pop().unwrap();
    // Nothing is being ordered now, so this is where it stops.
    let stopped_at = late.state_hash().await.0;
    late.stop().await;
    // Hebei pays schools: one disbursement per block.
    let envs: Vec<Envelope> = (0..BLOCKS)
        .map(|i| testkit::school_payment(&files, 1 + i))
        .collect();
    let acks = ok::broadcast(&mut client, envs, Duration::from_secs(300))
        .await
        .unwrap();
    let height = acks.iter().map(|a| a.block_number).max().unwrap();
    assert!(height >= h0 + BLOCKS, "{height}");
    let refs: Vec<&RunningMember> = members.iter().collect();
    testkit::wait_all_at(&refs, height, Duration::from_secs(300)).await;

    // Restarted, it replays the 5,000 blocks from its peers.
    let late = testkit::start_member(&files.members[2]).await;
    let missing = height - stopped_at;
    testkit::wait_all_at(&[&late], height, Duration::from_secs(300)).await;
    assert_eq!(late.state_hash().await, members[0].state_hash().await);
    // The gateway counts a block just after the ledger's head moves past it.
    let from_peers = || {
        let m = &late.gateway.node.metrics.blocks;
        m.with_label_values(&["pull"]).get() + m.with_label_values(&["push"]).get()
    };
    let until = Instant::now() + Duration::from_secs(60);
    while from_peers() < missing && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(missing >= BLOCKS);
    assert_eq!(from_peers(), missing, "every missing block came from peers");
    // A member restarted on a long, idle chain reports the heights settled
    // before it stopped as final at once (not 0 until the next exchange).
    let first = members.remove(0);
    first.stop().await;
    let first = testkit::start_member(&files.members[0]).await;
    let reported = first.gateway.node.metrics.final_height.get() as u64;
    assert!(
        reported + 64 >= height,
        "final height {reported} after a restart at {height}"
    );
    members.insert(0, first);
    late.stop().await;
    for m in members {
        m.stop().await;
    }
    for o in orderers {
        o.kill().await;
    }
}

/// GET /metrics from an ops server.
async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}
