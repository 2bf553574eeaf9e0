//! A whole cluster on loopback for tests and `fiscus bench orderer`: a
//! consortium root, orderer and client certificates, one data dir per node.

#![allow(clippy::unwrap_used, clippy::expect_used)] // harness set-up fails loudly

use crate::{Config, Listeners, Peer, Running};
use fiscus_identity_ca::ca::{CaPaths, LeafSpec, RevokedEntry, RootCa, write_file};
use fiscus_proto::envelope::seal;
use fiscus_proto::hash::{Hash32, cert_id};
use fiscus_proto::pb::orderer::orderer_client::OrdererClient;
use fiscus_proto::pb::orderer::{BroadcastAck, StatusRequest};
use fiscus_proto::pb::transfer::{
    AccountRef, DisburseArgs, Recipient, TransferCall, recipient, transfer_call::Method,
};
use fiscus_proto::pb::types::{Envelope, Role, TxPayload, tx_payload::Call};
use fiscus_proto::sign::SigningKey;
use futures::StreamExt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// A client that signs transfer transactions.
#[derive(Debug)]
pub struct Signer {
    pub key: SigningKey,
    pub cert_id: Hash32,
    pub serial: Vec<u8>,
    pub cert_file: PathBuf,
}

impl Signer {
    /// A `disburse` of `n` fen with a 256-byte purpose, nonce `n`.
    pub fn envelope(&self, consortium: &str, n: u64) -> Envelope {
        let payload = TxPayload {
            consortium_id: consortium.into(),
            creator_cert_id: self.cert_id.to_vec(),
            nonce: n,
            client_timestamp_ms: 0,
            call: Some(Call::Transfer(TransferCall {
                method: Some(Method::Disburse(DisburseArgs {
                    from: Some(AccountRef {
                        org_code: "130102".into(),
                        program_id: "2026-edu-01".into(),
                    }),
                    recipient: Some(Recipient {
                        id: Some(recipient::Id::UnifiedSocialCreditCode(
                            "12130102MB1234562B".into(),
                        )),
                        name: "长安区第一小学".into(),
                    }),
                    amount_fen: n as i64 + 1,
                    purpose: "x".repeat(200),
                    economic_code: "50502".into(),
                    external_id: String::new(),
                })),
            })),
        };
        seal(&payload, &[(&self.key, self.cert_id)])
    }
}

/// Everything a cluster needs on disk.
#[derive(Debug)]
pub struct ClusterFiles {
    pub dir: PathBuf,
    pub ca: PathBuf,
    pub consortium: String,
    pub configs: Vec<Config>,
    pub signers: Vec<Signer>,
    pub client_tls: PathBuf,
    /// An admin identity (member 000000) for `OrdererAdmin`.
    pub admin_tls: PathBuf,
}

/// Issues a certificate from the cluster's root into `out` (cert, key, ca
/// PEMs): returns the key, cert id, serial and certificate path.
pub fn issue_from(
    files: &ClusterFiles,
    member: &str,
    role: Role,
    names: &[&str],
    out: &Path,
) -> (SigningKey, Hash32, Vec<u8>, PathBuf) {
    let ca = RootCa::load(&CaPaths::new(&files.ca)).unwrap();
    issue(&ca, member, role, names, out)
}

/// The root certificate (DER) of the cluster's CA.
pub fn root_der(files: &ClusterFiles) -> Vec<u8> {
    RootCa::load(&CaPaths::new(&files.ca)).unwrap().root_der
}

fn issue(
    ca: &RootCa,
    member: &str,
    role: Role,
    names: &[&str],
    out: &Path,
) -> (SigningKey, Hash32, Vec<u8>, PathBuf) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut spec = LeafSpec::valid_for_days(member, role, 30);
    spec.add_names(names);
    let issued = ca.issue_for_key(&key, &spec).unwrap();
    write_file(&out.join("cert.pem"), issued.pem.as_bytes(), 0o644).unwrap();
    write_file(&out.join("key.pem"), key.serialize_pem().as_bytes(), 0o600).unwrap();
    write_file(&out.join("ca.pem"), ca.root_pem.as_bytes(), 0o644).unwrap();
    let sk = SigningKey::from_pkcs8_pem(&key.serialize_pem()).unwrap();
    (
        sk,
        cert_id(&issued.der),
        issued.identity.serial,
        out.join("cert.pem"),
    )
}

/// Binds `n` pairs of listeners on free loopback ports.
pub async fn bind(n: usize) -> Vec<Listeners> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Listeners {
            client: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            raft: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        });
    }
    out
}

/// Writes a root CA, `nodes` orderer identities, `signers` client identities
/// (their certificates in the shared signers dir) and revokes the client
/// certificates whose index is in `revoked`.
pub fn write_cluster(
    dir: &Path,
    listeners: &[Listeners],
    signers: usize,
    revoked: &[usize],
) -> ClusterFiles {
    let ca_dir = dir.join("ca");
    let ca = RootCa::create(&CaPaths::new(&ca_dir), "fiscus-test", 1, false).unwrap();
    let signers_dir = dir.join("signers");
    let mut clients = Vec::new();
    for i in 0..signers {
        let out = dir.join(format!("client-{i}"));
        let (key, id, serial, cert) = issue(&ca, "130102", Role::Client, &[], &out);
        std::fs::create_dir_all(&signers_dir).unwrap();
        std::fs::copy(&cert, signers_dir.join(format!("client-{i}.pem"))).unwrap();
        clients.push(Signer {
            key,
            cert_id: id,
            serial,
            cert_file: cert,
        });
    }
    let revoked_entries: Vec<RevokedEntry> = revoked
        .iter()
        .map(|i| RevokedEntry {
            serial: clients[*i].serial.clone(),
            revoked_at: 0,
            reason: String::new(),
        })
        .collect();
    let crl = ca_dir.join("crl.der");
    write_file(
        &crl,
        &ca.sign_crl(
            2,
            &revoked_entries,
            fiscus_identity_ca::ca::DEFAULT_CRL_VALIDITY,
        )
        .unwrap()
        .der,
        0o644,
    )
    .unwrap();
    let peers: Vec<Peer> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| Peer {
            id: i as u64 + 1,
            raft_addr: l.raft.local_addr().unwrap().to_string(),
            client_addr: l.client.local_addr().unwrap().to_string(),
            server_name: format!("orderer-{}", i + 1),
        })
        .collect();
    let orgs = ["000000", "130000", "130100", "130000", "130100"];
    let mut configs = Vec::new();
    for (i, p) in peers.iter().enumerate() {
        let tls_dir = dir.join(format!("orderer-{}", p.id));
        issue(
            &ca,
            orgs[i % orgs.len()],
            Role::Orderer,
            &[&p.server_name, "127.0.0.1"],
            &tls_dir,
        );
        configs.push(Config {
            node_id: p.id,
            consortium_id: "fiscus-test".into(),
            listen: p.client_addr.parse().unwrap(),
            raft_listen: p.raft_addr.parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.join(format!("data-{}", p.id)),
            peers: peers.clone(),
            tls: fiscus_common::tls::TlsConfig {
                crl_file: Some(crl.clone()),
                ..fiscus_common::tls::TlsConfig::in_dir(&tls_dir)
            },
            signers_dir: signers_dir.clone(),
            raft: crate::RaftTiming {
                tick_ms: 50,
                ..Default::default()
            },
            commit_timeout_ms: 10_000,
            ..Config::default()
        });
    }
    let client_tls = dir.join("client-0");
    let admin_tls = dir.join("admin");
    issue(&ca, "000000", Role::Admin, &[], &admin_tls);
    ClusterFiles {
        dir: dir.to_owned(),
        ca: ca_dir,
        consortium: "fiscus-test".into(),
        configs,
        signers: clients,
        client_tls,
        admin_tls,
    }
}

/// A gRPC channel to `addr` with the TLS identity in `tls_dir`.
pub async fn channel(tls_dir: &Path, addr: SocketAddr, server_name: &str) -> Channel {
    let ctx = fiscus_common::tls::TlsContext::load(&fiscus_common::tls::TlsConfig::in_dir(tls_dir))
        .unwrap();
    fiscus_common::tls::connect_channel(
        &addr.to_string(),
        server_name,
        ctx.client_config().unwrap(),
    )
    .await
    .unwrap()
}

/// Connects a client (signer 0's certificate) to `addr`, checking `server_name`.
pub async fn client(
    files: &ClusterFiles,
    addr: SocketAddr,
    server_name: &str,
) -> OrdererClient<Channel> {
    OrdererClient::new(channel(&files.client_tls, addr, server_name).await)
        .max_decoding_message_size(64 * 1024 * 1024)
}

/// What a broadcast got before its stream failed: the acks already received
/// (the orderer may have ordered those) and the failure.
#[derive(Debug)]
pub struct Interrupted {
    pub acks: Vec<BroadcastAck>,
    pub status: tonic::Status,
}

impl Interrupted {
    pub fn code(&self) -> tonic::Code {
        self.status.code()
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (after {} acks)", self.status, self.acks.len())
    }
}

impl std::error::Error for Interrupted {}

/// Sends `envs` on one `Broadcast` stream and collects an ack per envelope.
/// On a stream error the acks already received come back with it.
pub async fn broadcast(
    client: &mut OrdererClient<Channel>,
    envs: Vec<Envelope>,
    deadline: Duration,
) -> Result<Vec<BroadcastAck>, Interrupted> {
    let n = envs.len();
    broadcast_stream(client, futures::stream::iter(envs), n, deadline, None).await
}

/// [`broadcast`] for envelopes that arrive over time (the stream stays open
/// until `envs` ends), counting acks into `progress` as they arrive, so a
/// test can act once some but not all are acknowledged.
pub async fn broadcast_stream(
    client: &mut OrdererClient<Channel>,
    envs: impl futures::Stream<Item = Envelope> + Send + 'static,
    expected: usize,
    deadline: Duration,
    progress: Option<std::sync::Arc<std::sync::atomic::AtomicUsize>>,
) -> Result<Vec<BroadcastAck>, Interrupted> {
    let mut acks = Vec::with_capacity(expected);
    let resp = match client.broadcast(envs).await {
        Ok(r) => r,
        Err(status) => return Err(Interrupted { acks, status }),
    };
    let mut stream = resp.into_inner();
    let until = Instant::now() + deadline;
    while acks.len() < expected {
        match tokio::time::timeout_at(until.into(), stream.next()).await {
            Ok(Some(Ok(a))) => {
                acks.push(a);
                if let Some(p) = &progress {
                    p.store(acks.len(), std::sync::atomic::Ordering::SeqCst);
                }
            }
            Ok(Some(Err(status))) => return Err(Interrupted { acks, status }),
            Ok(None) => break,
            Err(_) => {
                let status = tonic::Status::deadline_exceeded(format!(
                    "{} of {expected} acks before the deadline",
                    acks.len()
                ));
                return Err(Interrupted { acks, status });
            }
        }
    }
    Ok(acks)
}

/// A broadcast in flight, for tests that kill a node under load: the first
/// half of its envelopes were sent and at least one was acknowledged; the
/// second half is never sent on it and the stream is held open, so when the
/// test acts some but not all envelopes can have been acknowledged.
#[derive(Debug)]
pub struct InFlight {
    handle: tokio::task::JoinHandle<Result<Vec<BroadcastAck>, Interrupted>>,
    hold: tokio::sync::mpsc::Sender<Envelope>,
    /// Envelopes sent before [`InFlight::finish`].
    pub sent: usize,
}

/// Starts [`InFlight`] load on `client`'s node; returns once an ack arrived.
/// Panics if none arrives within `deadline`.
pub async fn load_in_flight(
    mut client: OrdererClient<Channel>,
    mut envs: Vec<Envelope>,
    deadline: Duration,
) -> InFlight {
    let n = envs.len();
    envs.truncate(n / 2);
    let sent = envs.len();
    let (hold, rx) = tokio::sync::mpsc::channel(n.max(1));
    for e in envs {
        hold.send(e).await.expect("the channel is open");
    }
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = progress.clone();
    let handle = tokio::spawn(async move {
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        broadcast_stream(&mut client, stream, n, deadline, Some(p)).await
    });
    let until = Instant::now() + deadline;
    while progress.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            Instant::now() < until && !handle.is_finished(),
            "no ack for the in-flight load within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    InFlight { handle, hold, sent }
}

impl InFlight {
    /// Closes the stream and returns every ack received, also those received
    /// before the stream failed.
    pub async fn finish(self) -> Vec<BroadcastAck> {
        drop(self.hold);
        match self.handle.await.expect("the broadcast task") {
            Ok(acks) => acks,
            Err(i) => i.acks,
        }
    }
}

/// Waits until some node reports a leader that every running node agrees on.
pub async fn wait_for_leader(nodes: &[&Running], deadline: Duration) -> u64 {
    wait_for_new_leader(nodes, 0, deadline).await
}

/// Like [`wait_for_leader`], for a leader other than `old` (after killing or
/// cutting it off), which must itself report being leader.
pub async fn wait_for_new_leader(nodes: &[&Running], old: u64, deadline: Duration) -> u64 {
    let until = Instant::now() + deadline;
    loop {
        let views: Vec<(u64, u64, &'static str)> = nodes
            .iter()
            .map(|n| {
                let s = n.handles.status.read().unwrap();
                (s.node_id, s.leader_id, s.role)
            })
            .collect();
        let leader = views[0].1;
        let agreed = leader != 0 && leader != old && views.iter().all(|v| v.1 == leader);
        if agreed && views.iter().any(|v| v.0 == leader && v.2 == "leader") {
            return leader;
        }
        assert!(
            Instant::now() < until,
            "no agreed new leader within {deadline:?}: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every node's height is at least `height`.
pub async fn wait_for_height(nodes: &[&Running], height: u64, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let hs: Vec<u64> = nodes
            .iter()
            .map(|n| n.handles.status.read().unwrap().height)
            .collect();
        if hs.iter().all(|h| *h >= height) {
            return;
        }
        assert!(
            Instant::now() < until,
            "heights {hs:?} did not reach {height} within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads blocks `1..=height` from a node with Deliver, as encoded bytes.
pub async fn deliver(client: &mut OrdererClient<Channel>, height: u64) -> Vec<Vec<u8>> {
    use prost::Message;
    let mut stream = client
        .deliver(fiscus_proto::pb::orderer::DeliverRequest { from_height: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while (out.len() as u64) < height {
        let b = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        out.push(b.encode_to_vec());
    }
    out
}

/// The leader's id as `Status` on `addr` reports it.
pub async fn status_leader(client: &mut OrdererClient<Channel>) -> u64 {
    client
        .status(StatusRequest {})
        .await
        .unwrap()
        .into_inner()
        .leader_id
}
