//! A whole network on loopback for tests and `fiscus bench network`: an
//! orderer cluster, and members that each run a ledger-store and a
//! gossip-gateway, with real mutual TLS between all of them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // harness set-up fails loudly

use crate::config::Config;
use fiscus_common::testkit::fixtures::tree_org;
use fiscus_common::tls::Endpoint;
use fiscus_ledger_store::server::Config as LedgerConfig;
use fiscus_orderer::testkit::{self as ok, ClusterFiles, Signer};
use fiscus_proto::pb::types::{ConsortiumConfig, Member, Org, Role};
use prost::Message;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The members of a test network: MOF, Hebei, Shijiazhuang, Chang'an, the
/// Hebei audit office, then further Hebei cities.
pub const MEMBERS: [&str; 8] = [
    "000000", "130000", "130100", "130102", "991300", "130200", "130300", "130400",
];

/// Everything on disk, and the addresses reserved for each part.
#[derive(Debug)]
pub struct NetworkFiles {
    pub cluster: ClusterFiles,
    pub genesis_file: PathBuf,
    pub signers_dir: PathBuf,
    pub members: Vec<MemberFiles>,
    /// A client of member 000000 that may appropriate and allocate.
    pub mof: Signer,
    /// A client of member 130000 (Hebei), e.g. to vote.
    pub hebei: Signer,
}

#[derive(Debug, Clone)]
pub struct MemberFiles {
    pub code: String,
    pub tls_dir: PathBuf,
    pub ledger: LedgerConfig,
    pub gateway: Config,
}

/// Writes a CA, `orderers` orderer identities and configs, and `members`
/// members (node certificate, ledger and gateway configs on free ports).
pub async fn write_network(
    dir: &Path,
    orderers: usize,
    members: usize,
) -> (NetworkFiles, Vec<fiscus_orderer::Listeners>) {
    let listeners = ok::bind(orderers).await;
    let cluster = ok::write_cluster(dir, &listeners, 1, &[]);
    let signers_dir = cluster.configs[0].signers_dir.clone();
    for i in 1..=orderers {
        std::fs::copy(
            dir.join(format!("orderer-{i}/cert.pem")),
            signers_dir.join(format!("orderer-{i}.pem")),
        )
        .unwrap();
    }
    let (key, cert_id, serial, cert) =
        ok::issue_from(&cluster, "000000", Role::Client, &[], &dir.join("mof"));
    std::fs::copy(&cert, signers_dir.join("mof.pem")).unwrap();
    let mof = Signer {
        key,
        cert_id,
        serial,
        cert_file: cert,
    };
    let (key, cert_id, serial, cert) =
        ok::issue_from(&cluster, "130000", Role::Client, &[], &dir.join("hebei"));
    std::fs::copy(&cert, signers_dir.join("hebei.pem")).unwrap();
    let hebei = Signer {
        key,
        cert_id,
        serial,
        cert_file: cert,
    };
    let free = free_loopback_addr;
    let mut out = Vec::new();
    for code in MEMBERS.iter().take(members) {
        let tls_dir = dir.join(format!("node-{code}"));
        let (_, _, _, cert) = ok::issue_from(
            &cluster,
            code,
            Role::Node,
            &["127.0.0.1", "localhost"],
            &tls_dir,
        );
        std::fs::copy(&cert, signers_dir.join(format!("node-{code}.pem"))).unwrap();
        let tls = fiscus_common::tls::TlsConfig::in_dir(&tls_dir);
        let ledger_addr = free();
        let ledger = LedgerConfig {
            listen: ledger_addr,
            http_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.join(format!("ledger-{code}")),
            tls: tls.clone(),
            genesis_file: dir.join("consortium-config.pb"),
            signers_dir: signers_dir.clone(),
            threads: 2,
            ..LedgerConfig::default()
        };
        let gateway = Config {
            listen: free(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            tls,
            signers_dir: signers_dir.clone(),
            genesis_file: dir.join("consortium-config.pb"),
            ledger: Endpoint {
                addr: ledger_addr.to_string(),
                server_name: "127.0.0.1".into(),
            },
            orderers: cluster
                .configs
                .iter()
                .map(|c| Endpoint {
                    addr: c.listen.to_string(),
                    server_name: format!("orderer-{}", c.node_id),
                })
                .collect(),
            heartbeat_ms: 200,
            ..Config::default()
        };
        out.push(MemberFiles {
            code: (*code).to_owned(),
            tls_dir,
            ledger,
            gateway,
        });
    }
    let mut orgs: Vec<Org> = MEMBERS.iter().map(|c| tree_org(c)).collect();
    orgs.push(tree_org("130200"));
    orgs.sort_by(|a, b| a.code.cmp(&b.code));
    orgs.dedup_by(|a, b| a.code == b.code);
    let genesis = ConsortiumConfig {
        consortium_id: cluster.consortium.clone(),
        version: 1,
        orgs,
        members: out
            .iter()
            .map(|m| Member {
                org_code: m.code.clone(),
                gossip_endpoints: vec![format!("https://{}", m.gateway.listen)],
                roles: vec![Role::Node as i32],
                allowed_names: Vec::new(),
            })
            .collect(),
        ca_roots: vec![ok::root_der(&cluster)],
        ..ConsortiumConfig::default()
    };
    let genesis_file = dir.join("consortium-config.pb");
    std::fs::write(&genesis_file, genesis.encode_to_vec()).unwrap();
    (
        NetworkFiles {
            cluster,
            genesis_file,
            signers_dir,
            members: out,
            mof,
            hebei,
        },
        listeners,
    )
}

/// A member running in this process.
#[derive(Debug)]
pub struct RunningMember {
    pub code: String,
    pub ledger: fiscus_ledger_store::server::Running,
    pub gateway: crate::Running,
}

impl RunningMember {
    pub async fn stop(self) {
        self.gateway.stop().await;
        self.ledger.stop().await;
    }

    /// Stops this member's gateway and starts it again (a restarted pod).
    pub async fn restart_gateway(self, m: &MemberFiles) -> Self {
        self.gateway.stop().await;
        let until = Instant::now() + Duration::from_secs(30);
        let gateway = loop {
            match crate::start(m.gateway.clone()).await {
                Ok(g) => break g,
                Err(e) if Instant::now() < until && format!("{e:?}").contains("AddrInUse") => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("gossip-gateway {}: {e:?}", m.code),
            }
        };
        Self { gateway, ..self }
    }

    pub async fn state_hash(&self) -> (u64, Vec<u8>) {
        let h = self.ledger.ledger.head().await.unwrap();
        (h.height, h.state_hash.to_vec())
    }
}

pub async fn start_member(m: &MemberFiles) -> RunningMember {
    // A store or a listener just closed in this process may be held a moment longer.
    let until = Instant::now() + Duration::from_secs(30);
    let transient =
        |e: &str| e.contains("InUse") || e.contains("Locked") || e.contains("AddrInUse");
    let ledger = loop {
        match fiscus_ledger_store::server::start(m.ledger.clone()).await {
            Ok(l) => break l,
            Err(e) if Instant::now() < until && transient(&format!("{e:?}")) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("ledger-store {}: {e}", m.code),
        }
    };
    let gateway = loop {
        match crate::start(m.gateway.clone()).await {
            Ok(g) => break g,
            Err(e) if Instant::now() < until && transient(&format!("{e:?}")) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("gossip-gateway {}: {e:?}", m.code),
        }
    };
    RunningMember {
        code: m.code.clone(),
        ledger,
        gateway,
    }
}

/// Waits until every member's ledger is at `height` or more.
pub async fn wait_all_at(members: &[&RunningMember], height: u64, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let mut hs = Vec::new();
        for m in members {
            hs.push(m.ledger.ledger.head().await.unwrap().height);
        }
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

/// Waits until every member's gateway sees `height` final.
pub async fn wait_all_final(members: &[&RunningMember], height: u64, deadline: Duration) {
    let until = Instant::now() + deadline;
    loop {
        let fs: Vec<u64> = members
            .iter()
            .map(|m| m.gateway.node.finality.lock().unwrap().final_height())
            .collect();
        if fs.iter().all(|f| *f >= height) {
            return;
        }
        assert!(
            Instant::now() < until,
            "final heights {fs:?} did not reach {height} within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A signed transfer or governance call by `who`.
pub fn envelope(
    files: &NetworkFiles,
    who: &Signer,
    nonce: u64,
    call: fiscus_proto::pb::types::tx_payload::Call,
) -> fiscus_proto::pb::types::Envelope {
    let payload = fiscus_proto::pb::types::TxPayload {
        consortium_id: files.cluster.consortium.clone(),
        creator_cert_id: who.cert_id.to_vec(),
        nonce,
        client_timestamp_ms: 0,
        call: Some(call),
    };
    fiscus_proto::envelope::seal(&payload, &[(&who.key, who.cert_id)])
}

/// MOF appropriates `amount_fen` to itself for the test program
/// `2026-edu-01` (compulsory education, 2050202): how the network tests and
/// `fiscus bench network` fund their chains.
pub fn edu_appropriation(
    files: &NetworkFiles,
    nonce: u64,
    amount_fen: i64,
) -> fiscus_proto::pb::types::Envelope {
    use fiscus_proto::pb::transfer::{
        AccountRef, AppropriateArgs, Program, ProgramKind, TransferCall, transfer_call::Method,
    };
    envelope(
        files,
        &files.mof,
        nonce,
        fiscus_proto::pb::types::tx_payload::Call::Transfer(TransferCall {
            method: Some(Method::Appropriate(AppropriateArgs {
                account: Some(AccountRef {
                    org_code: "000000".into(),
                    program_id: "2026-edu-01".into(),
                }),
                program: Some(Program {
                    id: "2026-edu-01".into(),
                    name: "义务教育补助经费".into(),
                    kind: ProgramKind::General as i32,
                    functional_code: "2050202".into(),
                    fiscal_year: fiscal_year_now(),
                    document: "财教〔2026〕1号".into(),
                    ..Program::default()
                }),
                amount_fen,
                document: "财教〔2026〕1号".into(),
            })),
        }),
    )
}

/// Hebei pays a school 1 fen from its account in the test program
/// `2026-edu-01`: the load of the catch-up tests and `fiscus bench network`.
pub fn school_payment(files: &NetworkFiles, nonce: u64) -> fiscus_proto::pb::types::Envelope {
    use fiscus_proto::pb::transfer::{
        AccountRef, DisburseArgs, Recipient, TransferCall, recipient, transfer_call::Method,
    };
    envelope(
        files,
        &files.hebei,
        nonce,
        fiscus_proto::pb::types::tx_payload::Call::Transfer(TransferCall {
            method: Some(Method::Disburse(DisburseArgs {
                from: Some(AccountRef {
                    org_code: "130000".into(),
                    program_id: "2026-edu-01".into(),
                }),
                recipient: Some(Recipient {
                    id: Some(recipient::Id::UnifiedSocialCreditCode(
                        "12130102MB1234562B".into(),
                    )),
                    name: "长安区第一小学".into(),
                }),
                amount_fen: 1,
                purpose: "营养改善计划".into(),
                economic_code: "30305".into(),
                external_id: String::new(),
            })),
        }),
    )
}

/// Starts the cluster's orderers in this process and waits for a leader.
pub async fn start_orderers(
    files: &mut NetworkFiles,
    listeners: Vec<fiscus_orderer::Listeners>,
) -> Vec<fiscus_orderer::Running> {
    let mut out = Vec::new();
    for (c, l) in files.cluster.configs.drain(..).zip(listeners) {
        out.push(fiscus_orderer::start_with(c, l).await.unwrap());
    }
    let refs: Vec<&fiscus_orderer::Running> = out.iter().collect();
    ok::wait_for_leader(&refs, Duration::from_secs(60)).await;
    out
}

/// A loopback address whose port is free now and lies below Linux's ephemeral
/// range (32768–60999). A port from `bind(":0")` is an ephemeral one: while a
/// member is stopped, an outgoing connection of this process could take it as
/// its local port, and the member could not bind it again.
pub fn free_loopback_addr() -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const START: u32 = 10_000;
    const SPAN: u32 = 22_000;
    // Concurrent test processes start at different places.
    let seed = std::process::id().wrapping_mul(7_919);
    for _ in 0..SPAN {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = START + seed.wrapping_add(n) % SPAN;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return l.local_addr().unwrap();
        }
    }
    panic!("no free loopback port in {START}..{}", START + SPAN);
}

pub use crate::metrics::fiscal_year_now;
