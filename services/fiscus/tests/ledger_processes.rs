//! A member's `fiscus ledger-store` and `fiscus contract-executor` as two
//! processes over mutual TLS, following a real orderer: the ledger-store
//! starts before its executor and commits once it is up, blocks commit, the
//! query API answers with proofs that verify, a ledger executing in process
//! reaches the same state hash, and `fiscus verify` checks the stored chain
//! offline and finds one flipped byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod support;

use support::{spawn, word};

use fiscus_common::store::{StateStore, StoreLimits, WriteBatch, fjall::FjallStore};
use fiscus_common::testkit::fixtures;
use fiscus_common::tls::Endpoint;
use fiscus_ledger_store::server::Config as LedgerConfig;
use fiscus_orderer::testkit::{self, ClusterFiles, Signer};
use fiscus_proto::hash::{Hash32, tx_id};
use fiscus_proto::merkle;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::ledger::{
    ChainInfoRequest, GetReceiptRequest, GetStateRequest, ScanStateRequest, TraceRequest,
};
use fiscus_proto::pb::state::Account;
use fiscus_proto::pb::transfer::{
    AccountRef, AllocateArgs, AppropriateArgs, Program, ProgramKind, transfer_call::Method,
};
use fiscus_proto::pb::types::{ConsortiumConfig, Envelope, Receipt, Role, TxStatus};
use prost::Message;
use std::process::Command;
use std::time::{Duration, Instant};

fn account(org: &str) -> Option<AccountRef> {
    fixtures::account(org, "2026-edu-01")
}

fn transfer(files: &ClusterFiles, s: &Signer, nonce: u64, m: Method) -> Envelope {
    fixtures::transfer_tx(&files.consortium, &s.key, s.cert_id, nonce, m)
}

async fn wait_height(client: &mut LedgerClient<tonic::transport::Channel>, height: u64) -> Vec<u8> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let info = client
            .get_chain_info(ChainInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        if info.height >= height {
            return info.state_hash;
        }
        assert!(
            Instant::now() < until,
            "ledger height {} did not reach {height}",
            info.height
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_and_executor_processes_commit_serve_proofs_and_verify_offline() {
    let dir = tempfile::tempdir().unwrap();
    let listeners = testkit::bind(1).await;
    let orderer_addr = listeners[0].client.local_addr().unwrap();
    let mut files = testkit::write_cluster(dir.path(), &listeners, 1, &[]);
    // The central finance ministry signs the appropriation and allocation.
    let signers_dir = files.configs[0].signers_dir.clone();
    let (key, cert_id, serial, cert) =
        testkit::issue_from(&files, "000000", Role::Client, &[], &dir.path().join("mof"));
    std::fs::copy(&cert, signers_dir.join("mof.pem")).unwrap();
    let mof = Signer {
        key,
        cert_id,
        serial,
        cert_file: cert,
    };
    // The member's node identity, shared by its ledger-store and executor.
    let node_tls = dir.path().join("node-130000");
    testkit::issue_from(
        &files,
        "130000",
        Role::Node,
        &["ledger-130000", "executor-130000", "127.0.0.1"],
        &node_tls,
    );
    // The orderers sign blocks: the ledger must know their certificates.
    std::fs::copy(
        dir.path().join("orderer-1/cert.pem"),
        signers_dir.join("orderer-1.pem"),
    )
    .unwrap();
    let genesis = ConsortiumConfig {
        ca_roots: vec![testkit::root_der(&files)],
        ..fixtures::genesis(
            &files.consortium,
            &["000000", "130000", "130100", "130102"],
            &["000000", "130000", "130102"],
        )
    };
    let genesis_file = dir.path().join("consortium-config.pb");
    std::fs::write(&genesis_file, genesis.encode_to_vec()).unwrap();

    let config = files.configs.remove(0);
    let orderer = fiscus_orderer::start_with(config, listeners.into_iter().next().unwrap())
        .await
        .unwrap();
    testkit::wait_for_leader(&[&orderer], Duration::from_secs(60)).await;

    let exec_toml = dir.path().join("executor.toml");
    // The executor's config, listening for gRPC on `listen`.
    let write_exec_config = |listen: &str| {
        std::fs::write(
            &exec_toml,
            toml::to_string(&fiscus_contract_executor::server::Config {
                listen: listen.parse().unwrap(),
                http_listen: "127.0.0.1:0".parse().unwrap(),
                tls: fiscus_common::tls::TlsConfig::in_dir(&node_tls),
                threads: 2,
                ..Default::default()
            })
            .unwrap(),
        )
        .unwrap();
    };
    write_exec_config("127.0.0.1:0");
    // The executor's port, from a first run stopped at once: the ledger-store
    // below starts while nothing listens there (as it may on Kubernetes,
    // where the executor is its own Deployment) and must wait for it.
    let (executor, line) = spawn("contract-executor", &exec_toml);
    let exec_addr = word(&line, "grpc=");
    drop(executor);

    let data_dir = dir.path().join("ledger-data");
    let ledger_cfg = LedgerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data_dir.clone(),
        tls: fiscus_common::tls::TlsConfig::in_dir(&node_tls),
        genesis_file: genesis_file.clone(),
        signers_dir: signers_dir.clone(),
        orderers: vec![Endpoint {
            addr: orderer_addr.to_string(),
            server_name: "orderer-1".into(),
        }],
        executor: Some(Endpoint {
            addr: exec_addr.clone(),
            server_name: "executor-130000".into(),
        }),
        threads: 2,
        ..LedgerConfig::default()
    };
    let ledger_toml = dir.path().join("ledger.toml");
    std::fs::write(&ledger_toml, toml::to_string(&ledger_cfg).unwrap()).unwrap();
    let (ledger_proc, line) = spawn("ledger-store", &ledger_toml);
    let ledger_addr = word(&line, "grpc=");

    // A ledger in this test process, executing locally, follows the same orderer.
    let local_cfg = LedgerConfig {
        data_dir: dir.path().join("local-data"),
        executor: None,
        ..ledger_cfg.clone()
    };
    let local = fiscus_ledger_store::server::start(local_cfg).await.unwrap();

    // Transactions: appropriate, allocate (valid); a county disbursing from an
    // empty account (refused with a typed reason).
    let appropriate = transfer(
        &files,
        &mof,
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
            amount_fen: 1_000_000,
            document: "财教〔2026〕1号".into(),
        }),
    );
    let allocate = transfer(
        &files,
        &mof,
        2,
        Method::Allocate(AllocateArgs {
            from: account("000000"),
            to_org_code: "130000".into(),
            amount_fen: 400_000,
            document: "财教〔2026〕2号".into(),
            external_id: String::new(),
        }),
    );
    let refused = files.signers[0].envelope(&files.consortium, 7);
    let mut client = testkit::client(&files, orderer_addr, "orderer-1").await;
    let mut height = 0;
    for env in [appropriate.clone(), allocate.clone(), refused.clone()] {
        let acks = testkit::broadcast(&mut client, vec![env], Duration::from_secs(30))
            .await
            .unwrap();
        height = height.max(acks[0].block_number);
    }
    assert!(height >= 1);

    // Nothing commits without the executor; it comes back on its port.
    let channel = testkit::channel(&node_tls, ledger_addr.parse().unwrap(), "ledger-130000").await;
    let mut lc = LedgerClient::new(channel);
    let info = lc
        .get_chain_info(ChainInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.height, 0, "a block committed with no executor");
    write_exec_config(&exec_addr);
    let (_executor, _) = spawn("contract-executor", &exec_toml);
    let remote_hash = wait_height(&mut lc, height).await;

    // The same blocks executed in process give the same state hash.
    let until = Instant::now() + Duration::from_secs(60);
    while local.ledger.head().await.unwrap().height < height {
        assert!(Instant::now() < until, "the local ledger did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let local_head = local.ledger.head().await.unwrap();
    let info = lc
        .get_chain_info(ChainInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    // Each tx was acknowledged before the next was sent, so no block follows `height`.
    assert_eq!(info.height, local_head.height);
    assert_eq!(remote_hash, local_head.state_hash.to_vec());
    assert_eq!(info.state_hash, local_head.state_hash.to_vec());

    // A receipt with a proof that verifies against the block's receipts root.
    let proof = lc
        .get_receipt(GetReceiptRequest {
            tx_id: tx_id(&allocate.payload).to_vec(),
            require_final: false,
        })
        .await
        .unwrap()
        .into_inner();
    let receipt = Receipt::decode(&proof.receipt[..]).unwrap();
    assert_eq!(receipt.status, TxStatus::Valid as i32, "{}", receipt.reason);
    let att = fiscus_proto::pb::types::Attestation::decode(&proof.attestations[0].attestation[..])
        .unwrap();
    assert_eq!(att.member, "130000");
    let root = Hash32::from_slice("root", &att.receipts_root).unwrap();
    let p = proof.proof.unwrap();
    merkle::verify(
        &root,
        &proof.receipt,
        &merkle::InclusionProof {
            leaf_index: p.leaf_index,
            tree_size: p.tree_size,
            path: p
                .path
                .iter()
                .map(|h| Hash32::from_slice("path", h).unwrap())
                .collect(),
        },
    )
    .unwrap();
    let refused_receipt = lc
        .get_receipt(GetReceiptRequest {
            tx_id: tx_id(&refused.payload).to_vec(),
            require_final: false,
        })
        .await
        .unwrap()
        .into_inner();
    let r = Receipt::decode(&refused_receipt.receipt[..]).unwrap();
    assert_ne!(r.status, TxStatus::Valid as i32);
    assert!(r.reason.starts_with("contract."), "{}", r.reason);

    // State reads name the height they were served at; a read at an older
    // height sees the older value.
    let key = b"acct/000000/2026-edu-01".to_vec();
    let now = lc
        .get_state(GetStateRequest {
            key: key.clone(),
            at_height: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(now.found);
    assert_eq!(
        Account::decode(&now.value[..]).unwrap().balance_fen,
        600_000
    );
    let appr_block = lc
        .get_receipt(GetReceiptRequest {
            tx_id: tx_id(&appropriate.payload).to_vec(),
            require_final: false,
        })
        .await
        .unwrap()
        .into_inner();
    let appr_height = Receipt::decode(&appr_block.receipt[..])
        .unwrap()
        .block_number;
    assert!(
        appr_height < receipt.block_number,
        "acknowledged one at a time"
    );
    {
        let then = lc
            .get_state(GetStateRequest {
                key: key.clone(),
                at_height: appr_height,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(then.height, appr_height);
        assert_eq!(
            Account::decode(&then.value[..]).unwrap().balance_fen,
            1_000_000
        );
    }
    let scan = lc
        .scan_state(ScanStateRequest {
            prefix: b"acct/".to_vec(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(scan.entries.len(), 2, "the MOF and Hebei accounts");
    let trace = lc
        .trace(TraceRequest {
            tx_id: tx_id(&allocate.payload).to_vec(),
            at_height: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(trace.steps.len(), 2);
    assert_eq!(trace.steps[0].kind, "allocate");
    assert_eq!(trace.steps[1].kind, "appropriate");
    assert_eq!(trace.steps[1].document, "财教〔2026〕1号");

    // Offline: the stopped member's data dir verifies; one flipped byte of a
    // stored block is found at its height.
    drop(ledger_proc);
    local.stop().await;
    let verify = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_fiscus"));
        c.args(["verify", "--data-dir"]).arg(&data_dir);
        if json {
            c.arg("--json");
        }
        c.output().unwrap()
    };
    // A forensic tool changes nothing it checks: every file of the store is
    // byte for byte the same after `verify` (it checks a private copy).
    let snapshot = || {
        let mut files = std::collections::BTreeMap::new();
        let mut stack = vec![data_dir.join("ledger.fjall")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.insert(p.clone(), std::fs::read(&p).unwrap());
                }
            }
        }
        files
    };
    let before = snapshot();
    assert!(!before.is_empty());
    let ok = verify(true);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["ok"], true);
    let verified = v["height"].as_u64().unwrap();
    assert!(verified >= height);
    assert!(snapshot() == before, "verify changed the store it checked");
    // A chain that ends below the height it should reach is a failure, with
    // the first missing block, through --json and exit 1.
    let short = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args([
            "verify",
            "--json",
            "--expect-height",
            &(verified + 5).to_string(),
            "--data-dir",
        ])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&short.stdout).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["first_bad_height"].clone()),
        (false.into(), (verified + 1).into())
    );
    // So is a directory that holds no store.
    let none = Command::new(env!("CARGO_BIN_EXE_fiscus"))
        .args(["verify", "--json", "--data-dir"])
        .arg(data_dir.join("nothing-here"))
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&none.stdout).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["first_bad_height"].clone()),
        (false.into(), serde_json::Value::Null)
    );
    {
        let store =
            FjallStore::open(&data_dir.join("ledger.fjall"), StoreLimits::default()).unwrap();
        let key = fiscus_ledger_store::keys::block(receipt.block_number);
        let mut bytes = store.get(&key).await.unwrap().unwrap().value;
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        store
            .commit(WriteBatch::new().put(key, bytes))
            .await
            .unwrap();
    }
    let bad = verify(true);
    assert_eq!(bad.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["first_bad_height"], receipt.block_number);
    orderer.kill().await;
}
