//! Issue 20, item 1: a revoked certificate loses every link of a running
//! devnet without a restart. Chang'an's node certificate holds open gRPC
//! connections to an orderer, MOF's ledger-store, gossip-gateway and
//! exchange-adapter, and the identity-ca; once `fiscus revoke` revokes it,
//! each of those open connections is closed (a call on it fails) and a new
//! connection is refused at the handshake, while MOF's own certificate keeps
//! working everywhere.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

mod devnet_support;

use devnet_support::*;
use fiscus_common::tls::{TlsConfig, TlsContext, connect_channel};
use fiscus_proto::pb::exchange::TxStatusRequest;
use fiscus_proto::pb::exchange::exchange_client::ExchangeClient;
use fiscus_proto::pb::gossip::HeartbeatRequest;
use fiscus_proto::pb::gossip::gossip_client::GossipClient;
use fiscus_proto::pb::identity::GetCrlRequest;
use fiscus_proto::pb::identity::identity_ca_client::IdentityCaClient;
use fiscus_proto::pb::ledger::ChainInfoRequest;
use fiscus_proto::pb::ledger::ledger_client::LedgerClient;
use fiscus_proto::pb::orderer::StatusRequest;
use fiscus_proto::pb::orderer::orderer_client::OrdererClient;
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// One service endpoint and how to make one call on a channel to it.
#[derive(Clone, Copy)]
enum Link {
    Orderer,
    Ledger,
    Gateway,
    Adapter,
    Ca,
}

impl Link {
    /// Makes one call; `Ok` when the server answered at the application
    /// level (a refusal by the service counts: the connection carried it),
    /// `Err` when the transport failed.
    async fn call(self, ch: Channel) -> Result<(), tonic::Status> {
        let r = match self {
            Link::Orderer => OrdererClient::new(ch)
                .status(StatusRequest {})
                .await
                .map(|_| ()),
            Link::Ledger => LedgerClient::new(ch)
                .get_chain_info(ChainInfoRequest {})
                .await
                .map(|_| ()),
            Link::Gateway => GossipClient::new(ch)
                .heartbeat(HeartbeatRequest {
                    member: "130102".into(),
                    height: 0,
                })
                .await
                .map(|_| ()),
            Link::Adapter => ExchangeClient::new(ch)
                .get_tx_status(TxStatusRequest {
                    tx_id: vec![0; 32],
                    require_final: false,
                })
                .await
                .map(|_| ()),
            Link::Ca => IdentityCaClient::new(ch)
                .get_crl(GetCrlRequest {})
                .await
                .map(|_| ()),
        };
        match r {
            Err(s) if s.metadata().get("fiscus-error-code").is_none() => Err(s),
            _ => Ok(()),
        }
    }
}

async fn channel(addr: &str, name: &str, tls_dir: &Path) -> Result<Channel, String> {
    let tls = TlsContext::load(&TlsConfig::in_dir(tls_dir)).map_err(|e| e.to_string())?;
    connect_channel(addr, name, tls.client_config().unwrap())
        .await
        .map_err(|e| e.to_string())
}

#[test]
fn a_revoked_certificate_loses_its_open_and_new_connections_on_every_link() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("devnet");
    let _devnet = Devnet::start(&data);
    let layout: Value =
        serde_json::from_slice(&std::fs::read(data.join("devnet.json")).unwrap()).unwrap();
    let mof = &layout["members"][0];
    assert_eq!(mof["code"], "000000");
    let links: Vec<(&str, Link, String, &str)> = vec![
        (
            "orderer 1",
            Link::Orderer,
            layout["orderers"][0]["client"].as_str().unwrap().to_owned(),
            "orderer-1",
        ),
        (
            "MOF's ledger-store",
            Link::Ledger,
            mof["ledger"].as_str().unwrap().to_owned(),
            "127.0.0.1",
        ),
        (
            "MOF's gossip-gateway",
            Link::Gateway,
            mof["gateway"].as_str().unwrap().to_owned(),
            "127.0.0.1",
        ),
        (
            "MOF's exchange-adapter (gRPC)",
            Link::Adapter,
            mof["grpc"].as_str().unwrap().to_owned(),
            "127.0.0.1",
        ),
        (
            "the identity-ca",
            Link::Ca,
            layout["ca_grpc"].as_str().unwrap().to_owned(),
            "localhost",
        ),
    ];
    let revoked_dir = data.join("member-130102/node-tls");
    let mof_dir = data.join("member-000000/node-tls");
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Before: Chang'an's node certificate is served on every link.
    let open: Vec<Channel> = rt.block_on(async {
        let mut open = Vec::new();
        for (what, link, addr, name) in &links {
            let ch = channel(addr, name, &revoked_dir)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            link.call(ch.clone())
                .await
                .unwrap_or_else(|e| panic!("{what} before revocation: {e}"));
            open.push(ch);
        }
        open
    });

    revoke_own_certificate(&data, &revoked_dir, "keyCompromise: every-link test");

    rt.block_on(async {
        for ((what, link, addr, name), ch) in links.iter().zip(open) {
            // The open connection is closed: a call on it fails (the channel
            // may reconnect, but its new handshake is refused too).
            let until = Instant::now() + Duration::from_secs(30);
            while link.call(ch.clone()).await.is_ok() {
                assert!(
                    Instant::now() < until,
                    "{what}: the revoked certificate's open connection still answers after 30 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // A new connection is refused.
            match channel(addr, name, &revoked_dir).await {
                Err(_) => {}
                Ok(ch) => assert!(
                    link.call(ch).await.is_err(),
                    "{what}: a new connection with the revoked certificate was served"
                ),
            }
            // Everyone else is unaffected.
            let ch = channel(addr, name, &mof_dir)
                .await
                .unwrap_or_else(|e| panic!("{what}, MOF after the revocation: {e}"));
            link.call(ch)
                .await
                .unwrap_or_else(|e| panic!("{what}, MOF after the revocation: {e}"));
        }
    });
}

/// The CRL in the consortium config (on chain) is enforced even when the CRL
/// file says nothing: a member's ledger-store installs it from its own state,
/// and a service following that ledger (`chain_crl::follow`, as the
/// gossip-gateway and exchange-adapter do) installs it through gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crl_on_chain_is_enforced_over_the_crl_file() {
    use fiscus_identity_ca::ca::{CaPaths, RevokedEntry, RootCa};
    use fiscus_proto::pb::types::{ConsortiumConfig, Crl, RevokedCertificate};
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let (files, _listeners) = fiscus_gossip_gateway::testkit::write_network(dir.path(), 1, 2).await;
    let ca = RootCa::load(&CaPaths::new(&files.cluster.ca)).unwrap();
    // The CRL file every service reads: number 1, nothing revoked.
    let crl_file = dir.path().join("crl.der");
    std::fs::write(
        &crl_file,
        ca.sign_crl(1, &[], Duration::from_secs(86_400))
            .unwrap()
            .der,
    )
    .unwrap();
    // On chain (here in the genesis config): number 2 revokes Hebei's node.
    let victim_dir = files.members[1].tls_dir.clone();
    let victim = TlsContext::load(&TlsConfig::in_dir(&victim_dir))
        .unwrap()
        .identity();
    let x509 = ca
        .sign_crl(
            2,
            &[RevokedEntry {
                serial: victim.serial.clone(),
                revoked_at: 0,
                reason: "keyCompromise: chain CRL test".into(),
            }],
            Duration::from_secs(86_400),
        )
        .unwrap();
    let mut genesis =
        ConsortiumConfig::decode(&std::fs::read(&files.genesis_file).unwrap()[..]).unwrap();
    let mut crl = Crl {
        number: 2,
        revoked: vec![RevokedCertificate {
            cert_id: victim.cert_id.to_vec(),
            reason: "keyCompromise: chain CRL test".into(),
            effective_height: 0,
        }],
        signature: Vec::new(),
        x509_der: x509.der,
        x509_der_ecdsa: x509.ecdsa_der.unwrap_or_default(),
    };
    crl.signature = ca.sign_bytes(&crl.encode_to_vec()).unwrap();
    genesis.crl = Some(crl);
    std::fs::write(&files.genesis_file, genesis.encode_to_vec()).unwrap();

    let mut cfg = files.members[0].ledger.clone();
    cfg.tls.crl_file = Some(crl_file.clone());
    let ledger = fiscus_ledger_store::server::start(cfg).await.unwrap();
    let addr = ledger.addr.to_string();
    // The victim's certificate is refused by the ledger within a few ticks,
    // though the file (number 1) revokes nothing.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let refused = match channel(&addr, "127.0.0.1", &victim_dir).await {
            Err(_) => true,
            Ok(ch) => Link::Ledger.call(ch).await.is_err(),
        };
        if refused {
            break;
        }
        assert!(
            Instant::now() < until,
            "the ledger-store still serves a certificate the chain's CRL revokes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // MOF's node is unaffected.
    let mof_dir = files.members[0].tls_dir.clone();
    let ch = channel(&addr, "127.0.0.1", &mof_dir).await.unwrap();
    Link::Ledger.call(ch.clone()).await.unwrap();
    // A follower with only the file's CRL catches up through the ledger.
    let follower = TlsContext::load(&TlsConfig {
        crl_file: Some(crl_file),
        ..TlsConfig::in_dir(&mof_dir)
    })
    .unwrap();
    assert_eq!(follower.revocations().crl_number(), Some(1));
    assert!(!follower.revocations().is_revoked(&victim.serial));
    let task = tokio::spawn(fiscus_ledger_store::chain_crl::follow(
        follower.clone(),
        LedgerClient::new(ch),
    ));
    let until = Instant::now() + Duration::from_secs(30);
    while !follower.revocations().is_revoked(&victim.serial) {
        assert!(
            Instant::now() < until,
            "the follower never installed the chain's CRL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(follower.revocations().crl_number(), Some(2));
    task.abort();
    ledger.stop().await;
}
