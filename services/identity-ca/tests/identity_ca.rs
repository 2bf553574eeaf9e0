//! identity-ca over real mutual TLS on loopback: enrollment and its refusals,
//! revocation picked up without restarts, expiry, SAN checks and foreign CAs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use fiscus_common::error::GRPC_CODE_METADATA;
use fiscus_common::tls::{
    ClientAuth, PeerIdentity, TlsConfig, TlsContext, connect_channel, peer_identity, serve_incoming,
};
use fiscus_identity_ca::ca::{CaPaths, LeafSpec, RootCa, new_key_and_csr, write_file};
use fiscus_identity_ca::client::{self, EnrollArgs};
use fiscus_identity_ca::{Config, EnrollmentSecret, InitOptions, Running};
use fiscus_proto::pb::gossip::gossip_server::{Gossip, GossipServer};
use fiscus_proto::pb::gossip::{
    AttestationBatch, HeartbeatRequest, HeartbeatResponse, PullRequest, PushAck,
    gossip_client::GossipClient,
};
use fiscus_proto::pb::identity::{
    EnrollRequest, GetCrlRequest, ListCertificatesRequest, RevokeRequest, VerifyRequest,
    identity_ca_client::IdentityCaClient,
};
use fiscus_proto::pb::types::{Block, Role};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};
use x509_parser::prelude::FromDer;

/// A CA initialised in its own temp dir and served on free ports.
struct TestCa {
    dir: tempfile::TempDir,
    running: Running,
    secrets: Vec<EnrollmentSecret>,
}

impl TestCa {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("ca");
        fiscus_identity_ca::init(&InitOptions {
            data_dir: data_dir.clone(),
            consortium_id: "fiscus-test".into(),
            force: false,
            all_hebei: false,
            // The CA's own names: loopback, and one in MOF's domain, which
            // no member may then be certified for.
            server_names: vec![
                "localhost".into(),
                "127.0.0.1".into(),
                "ca.000000.fiscus.test".into(),
            ],
            root_validity_years: 1,
            cert_validity_days: 30,
        })
        .await
        .unwrap();
        let secrets = serde_json::from_slice(
            &std::fs::read(data_dir.join("enrollment-secrets.json")).unwrap(),
        )
        .unwrap();
        let mut config = Config {
            data_dir,
            cert_validity_days: 30,
            listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        };
        tune(&mut config);
        // Dropping `running` (with the TestCa) stops the server.
        let running = fiscus_identity_ca::start(config).await.unwrap();
        Self {
            dir,
            running,
            secrets,
        }
    }

    fn root_pem(&self) -> PathBuf {
        CaPaths::new(self.dir.path().join("ca")).root_cert()
    }

    fn crl_path(&self) -> PathBuf {
        CaPaths::new(self.dir.path().join("ca")).crl()
    }

    /// Both roots (Ed25519 and the ECDSA TLS root), as the CA's own endpoint
    /// and every enrolled identity trust them.
    fn trust_pem(&self) -> PathBuf {
        CaPaths::new(self.dir.path().join("ca"))
            .tls_dir()
            .join("ca.pem")
    }

    fn secret(&self, member: &str, role: &str) -> String {
        self.secrets
            .iter()
            .find(|s| s.member == member && s.role == role)
            .unwrap()
            .secret
            .clone()
    }

    fn ca(&self) -> RootCa {
        RootCa::load(&CaPaths::new(self.dir.path().join("ca"))).unwrap()
    }

    async fn anonymous(&self) -> IdentityCaClient<Channel> {
        client::connect(
            &self.running.grpc_addr.to_string(),
            "localhost",
            None,
            &self.root_pem(),
        )
        .await
        .unwrap()
    }

    async fn as_identity(&self, tls_dir: &Path) -> IdentityCaClient<Channel> {
        client::connect(
            &self.running.grpc_addr.to_string(),
            "localhost",
            Some(tls_dir),
            &self.root_pem(),
        )
        .await
        .unwrap()
    }

    /// Enrolls `member`/`role` with its genesis secret into `<tmp>/<name>`.
    async fn enroll(&self, member: &str, role: &str, name: &str, dns: &[&str]) -> PathBuf {
        let out = self.dir.path().join(name);
        client::enroll(
            &mut self.anonymous().await,
            &EnrollArgs {
                key_type: fiscus_identity_ca::ca::KeyType::Ed25519,
                ecdsa_certificate: true,
                member: member.into(),
                role: fiscus_common::tls::parse_role(role).unwrap(),
                secret: Some(self.secret(member, role)),
                dns_names: dns.iter().map(|s| s.to_string()).collect(),
                ips: vec!["127.0.0.1".into()],
                out_dir: out.clone(),
            },
        )
        .await
        .unwrap();
        out
    }

    /// Writes a certificate issued directly by the root (e.g. already expired) into `<tmp>/<name>`.
    fn issue_direct(&self, spec: &LeafSpec, name: &str) -> PathBuf {
        issue_into(&self.ca(), spec, &self.dir.path().join(name))
    }
}

fn issue_into(ca: &RootCa, spec: &LeafSpec, out: &Path) -> PathBuf {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let issued = ca.issue_for_key(&key, spec).unwrap();
    write_file(&out.join("cert.pem"), issued.pem.as_bytes(), 0o644).unwrap();
    write_file(&out.join("key.pem"), key.serialize_pem().as_bytes(), 0o600).unwrap();
    write_file(&out.join("ca.pem"), ca.root_pem.as_bytes(), 0o644).unwrap();
    out.to_owned()
}

fn code_of(s: &Status) -> &str {
    s.metadata()
        .get(GRPC_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

fn csr_for(member: &str, role: Role) -> Vec<u8> {
    new_key_and_csr(member, role).unwrap().1
}

fn with_names(mut req: EnrollRequest, dns: &[&str], ips: &[&str]) -> EnrollRequest {
    req.dns_names = dns.iter().map(|s| (*s).to_owned()).collect();
    req.ip_addresses = ips.iter().map(|s| (*s).to_owned()).collect();
    req
}

fn enroll_req(csr: Vec<u8>, member: &str, role: Role, secret: &str) -> EnrollRequest {
    EnrollRequest {
        csr,
        enrollment_secret: secret.into(),
        org_code: member.into(),
        role: role as i32,
        dns_names: vec![],
        ip_addresses: vec![],
        ecdsa_csr: vec![],
    }
}

/// A stand-in for any Fiscus service: requires client certificates, says who
/// called, and counts the calls it served.
struct EchoGossip(Arc<std::sync::atomic::AtomicUsize>);

#[tonic::async_trait]
impl Gossip for EchoGossip {
    async fn push_blocks(
        &self,
        _r: Request<Streaming<Block>>,
    ) -> Result<Response<PushAck>, Status> {
        Err(Status::unimplemented("test server"))
    }
    type PullBlocksStream = futures::stream::Empty<Result<Block, Status>>;
    async fn pull_blocks(
        &self,
        _r: Request<PullRequest>,
    ) -> Result<Response<Self::PullBlocksStream>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn exchange_attestations(
        &self,
        r: Request<AttestationBatch>,
    ) -> Result<Response<AttestationBatch>, Status> {
        Ok(Response::new(r.into_inner()))
    }
    async fn heartbeat(
        &self,
        r: Request<HeartbeatRequest>,
    ) -> Result<Response<HeartbeatResponse>, Status> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let caller = peer_identity(&r)
            .map(|p| p.member.clone())
            .unwrap_or_default();
        Ok(Response::new(HeartbeatResponse {
            member: caller,
            height: r.into_inner().height,
        }))
    }
}

struct Service {
    addr: std::net::SocketAddr,
    tls: Arc<TlsContext>,
    served: Arc<std::sync::atomic::AtomicUsize>,
}

impl Service {
    fn served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Serves [`EchoGossip`] with the identity in `tls_dir` and the CA's CRL file.
async fn start_service(tls_dir: &Path, crl: &Path) -> Service {
    let ctx = TlsContext::load(&TlsConfig {
        crl_file: Some(crl.to_owned()),
        ..TlsConfig::in_dir(tls_dir)
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = serve_incoming(
        listener,
        ctx.server_config(ClientAuth::Required).unwrap(),
        ctx.revocations(),
    );
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GossipServer::new(EchoGossip(served.clone())))
            .serve_with_incoming(incoming),
    );
    Service {
        addr,
        tls: ctx,
        served,
    }
}

async fn heartbeat(
    addr: std::net::SocketAddr,
    server_name: &str,
    client_dir: &Path,
) -> Result<String, String> {
    let ctx = TlsContext::load(&TlsConfig::in_dir(client_dir)).map_err(|e| e.to_string())?;
    let channel = connect_channel(&addr.to_string(), server_name, ctx.client_config().unwrap())
        .await
        .map_err(|e| e.to_string())?;
    GossipClient::new(channel)
        .heartbeat(HeartbeatRequest {
            member: String::new(),
            height: 7,
        })
        .await
        .map(|r| r.into_inner().member)
        .map_err(|s| s.to_string())
}

mod mtls {
    use super::*;

    /// OpenSSL 3.0 reads PKCS#8 v1 Ed25519 keys, not ring's v2 form: every key
    /// the project writes (the root's, the CA server's, an enrolled member's)
    /// must open in `openssl pkey`, and the enrolled one must still serve TLS.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_private_key_written_is_pkcs8_v1_that_openssl_reads() {
        let ca = TestCa::start().await;
        let server = ca
            .enroll("130000", "node", "server", &["node.130000.fiscus.test"])
            .await;
        let client = ca.enroll("130100", "node", "client", &[]).await;
        let ca_dir = ca.dir.path().join("ca");
        let keys: Vec<PathBuf> = std::iter::once(server.join("key.pem"))
            .chain(std::iter::once(client.join("key.pem")))
            .chain(walk(&ca_dir).into_iter().filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with("key.pem"))
            }))
            .collect();
        assert!(
            keys.len() >= 3,
            "the root's and the CA server's keys are found: {keys:?}"
        );
        assert!(
            keys.iter().any(|k| k.ends_with("ca/root-ecdsa.key.pem")),
            "the ECDSA TLS root's key is among them: {keys:?}"
        );
        for key in keys {
            let pem = std::fs::read_to_string(&key).unwrap();
            let der = ::pem::parse(&pem).unwrap();
            // Ed25519 keys in PKCS#8 v1 (OpenSSL 3.0 cannot read ring's v2);
            // ECDSA keys (the TLS root's, the ECDSA pairs) as rcgen writes them.
            if !key.to_string_lossy().contains("ecdsa") {
                assert_eq!(
                    der.contents().len(),
                    48,
                    "{}: PKCS#8 v1 (RFC 8410), 48 bytes",
                    key.display()
                );
                assert_eq!(der.contents()[4], 0x00, "{}: version 0 (v1)", key.display());
            }
            let out = std::process::Command::new("openssl")
                .args(["pkey", "-noout", "-in"])
                .arg(&key)
                .output()
                .expect("openssl is installed");
            assert!(
                out.status.success(),
                "{}: {}",
                key.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let svc = start_service(&server, &ca.crl_path()).await;
        assert_eq!(
            heartbeat(svc.addr, "node.130000.fiscus.test", &client)
                .await
                .unwrap(),
            "130100"
        );
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_member_enrolled_at_the_ca_reaches_another_service_over_mutual_tls() {
        let ca = TestCa::start().await;
        let server = ca
            .enroll("130000", "node", "server", &["node.130000.fiscus.test"])
            .await;
        let client = ca.enroll("130100", "node", "client", &[]).await;
        let svc = start_service(&server, &ca.crl_path()).await;
        let addr = svc.addr;
        assert_eq!(
            heartbeat(addr, "node.130000.fiscus.test", &client)
                .await
                .unwrap(),
            "130100",
            "the server sees who called"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_with_a_certificate_from_another_ca_is_refused_at_the_handshake() {
        let ca = TestCa::start().await;
        let server = ca
            .enroll("130000", "node", "server", &["node.130000.fiscus.test"])
            .await;
        let svc = start_service(&server, &ca.crl_path()).await;
        let addr = svc.addr;

        let other_dir = tempfile::tempdir().unwrap();
        let other = RootCa::create(&CaPaths::new(other_dir.path()), "rogue", 1, false).unwrap();
        let rogue = issue_into(
            &other,
            &LeafSpec::valid_for_days("130100", Role::Node, 30),
            &other_dir.path().join("rogue"),
        );
        // The rogue client trusts our root for the server, but presents a foreign certificate.
        std::fs::copy(ca.root_pem(), rogue.join("ca.pem")).unwrap();
        assert!(
            heartbeat(addr, "node.130000.fiscus.test", &rogue)
                .await
                .is_err()
        );
        // How the refusal surfaces (alert, reset, cancelled) varies; that the call never arrived does not.
        assert_eq!(svc.served(), 0, "the call never reached the service");
        // Refused, not absent: a client of our CA gets through on a new connection.
        let good = ca.enroll("130100", "node", "good", &[]).await;
        heartbeat(addr, "node.130000.fiscus.test", &good)
            .await
            .expect("the service is up and serves our CA's clients");
        assert_eq!(svc.served(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_certificate_revoked_after_connecting_is_refused_on_the_next_connection_without_a_restart()
     {
        let ca = TestCa::start().await;
        let server = ca
            .enroll("130000", "node", "server", &["node.130000.fiscus.test"])
            .await;
        let client = ca.enroll("130100", "node", "client", &[]).await;
        let svc = start_service(&server, &ca.crl_path()).await;
        let (addr, server_tls) = (svc.addr, svc.tls.clone());
        assert_eq!(
            heartbeat(addr, "node.130000.fiscus.test", &client)
                .await
                .unwrap(),
            "130100"
        );

        // Shijiazhuang's admin revokes the client's certificate.
        let admin = ca.enroll("130100", "admin", "admin", &[]).await;
        let cert = client::read_pem_certs(&client.join("cert.pem")).unwrap();
        let crl = ca
            .as_identity(&admin)
            .await
            .revoke(RevokeRequest {
                cert_id: fiscus_proto::hash::cert_id(&cert[0]).to_vec(),
                reason: "key compromise".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .crl
            .unwrap();
        assert_eq!(crl.number, 2);

        // The service picks up the new CRL file as its reloader would; it is not restarted.
        assert!(server_tls.reload().unwrap(), "the CRL file changed");
        let served = svc.served();
        let err = heartbeat(addr, "node.130000.fiscus.test", &client)
            .await
            .unwrap_err();
        // The client may see the CertificateRevoked alert or just the closed connection.
        assert!(
            err.contains("CertificateRevoked")
                || err.contains("connection")
                || err.contains("transport"),
            "{err}"
        );
        assert_eq!(
            svc.served(),
            served,
            "the revoked client's call never reached the service"
        );
        // Others still get in.
        assert_eq!(
            heartbeat(addr, "node.130000.fiscus.test", &admin)
                .await
                .unwrap(),
            "130100"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_certificate_is_refused() {
        let ca = TestCa::start().await;
        let server = ca
            .enroll("130000", "node", "server", &["node.130000.fiscus.test"])
            .await;
        let svc = start_service(&server, &ca.crl_path()).await;
        let addr = svc.addr;
        let mut spec = LeafSpec::valid_for_days("130100", Role::Node, 1);
        spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
        spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let expired = ca.issue_direct(&spec, "expired");
        assert!(
            heartbeat(addr, "node.130000.fiscus.test", &expired)
                .await
                .is_err()
        );
        assert_eq!(
            svc.served(),
            0,
            "the expired client's call never reached the service"
        );
        // Refused, not absent: a valid client gets through on a new connection.
        let good = ca.enroll("130100", "node", "good", &[]).await;
        heartbeat(addr, "node.130000.fiscus.test", &good)
            .await
            .expect("the service is up and serves valid clients");
        assert_eq!(svc.served(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_whose_certificate_lacks_the_dialled_name_is_refused() {
        let ca = TestCa::start().await;
        let server = ca
            .enroll("130000", "node", "server", &["node.130000.fiscus.test"])
            .await;
        let client = ca.enroll("130100", "node", "client", &[]).await;
        let svc = start_service(&server, &ca.crl_path()).await;
        let addr = svc.addr;
        let err = heartbeat(addr, "orderer-0.fiscus.example", &client)
            .await
            .unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
        assert_eq!(svc.served(), 0);
        assert!(
            heartbeat(addr, "node.130000.fiscus.test", &client)
                .await
                .is_ok()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotated_certificate_files_are_picked_up_by_reload() {
        let ca = TestCa::start().await;
        let dir = ca.enroll("130000", "node", "rotating", &[]).await;
        let ctx = TlsContext::load(&TlsConfig::in_dir(&dir)).unwrap();
        let before = ctx.identity().cert_id;
        assert!(!ctx.reload().unwrap(), "nothing changed yet");
        // Renew: a new key and certificate land in the same files.
        let (key, csr) = new_key_and_csr("130000", Role::Node).unwrap();
        let resp = ca
            .as_identity(&dir)
            .await
            .renew(fiscus_proto::pb::identity::RenewRequest {
                csr,
                ecdsa_csr: Vec::new(),
            })
            .await
            .unwrap()
            .into_inner();
        write_file(&dir.join("key.pem"), key.serialize_pem().as_bytes(), 0o600).unwrap();
        write_file(
            &dir.join("cert.pem"),
            pem::encode(&pem::Pem::new("CERTIFICATE", resp.certificate)).as_bytes(),
            0o644,
        )
        .unwrap();
        assert!(ctx.reload().unwrap());
        assert_ne!(ctx.identity().cert_id, before);
        assert_eq!(ctx.identity().member, "130000");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_certificate_expiry_metric_reports_member_and_role() {
        let ca = TestCa::start().await;
        let dir = ca.enroll("130100", "node", "metric", &[]).await;
        let ctx = TlsContext::load(&TlsConfig::in_dir(&dir)).unwrap();
        let registry = prometheus::Registry::new();
        ctx.register_expiry_metric(&registry).unwrap();
        let families = registry.gather();
        let m = &families[0];
        assert_eq!(m.name(), "fiscus_certificate_expiry_seconds");
        let metric = &m.get_metric()[0];
        let labels: Vec<(&str, &str)> = metric
            .get_label()
            .iter()
            .map(|l| (l.name(), l.value()))
            .collect();
        assert!(
            labels.contains(&("member", "130100")) && labels.contains(&("role", "node")),
            "{labels:?}"
        );
        // One series per certificate: the Ed25519 one and the ECDSA one.
        let keys: Vec<&str> = m
            .get_metric()
            .iter()
            .flat_map(|x| x.get_label())
            .filter(|l| l.name() == "key")
            .map(|l| l.value())
            .collect();
        assert_eq!(keys, ["ecdsa_p256", "ed25519"]);
        for metric in m.get_metric() {
            let secs = metric.get_gauge().get_value();
            assert!(secs > 29.0 * 86_400.0 && secs <= 30.0 * 86_400.0, "{secs}");
        }
    }
}

mod enroll {
    use super::*;

    /// Connects afresh as `tls_dir` and asks for a client certificate for 130000.
    async fn enroll_over_new_connection(
        ca: &TestCa,
        tls_dir: &Path,
    ) -> Result<(), fiscus_identity_ca::Error> {
        let mut c = client::connect(
            &ca.running.grpc_addr.to_string(),
            "localhost",
            Some(tls_dir),
            &ca.root_pem(),
        )
        .await?;
        c.enroll(enroll_req(
            csr_for("130000", Role::Client),
            "130000",
            Role::Client,
            "",
        ))
        .await
        .map(|_| ())
        .map_err(|s| fiscus_identity_ca::Error::from_status(&s))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_public_key_is_certified_for_one_member_only() {
        let ca = TestCa::start().await;
        let mut anon = ca.anonymous().await;
        let csr = csr_for("130100", Role::Node);
        anon.enroll(enroll_req(
            csr.clone(),
            "130100",
            Role::Node,
            &ca.secret("130100", "node"),
        ))
        .await
        .unwrap();
        // The same key for another member: refused, and its secret stays unspent.
        let err = anon
            .enroll(enroll_req(
                csr,
                "130000",
                Role::Node,
                &ca.secret("130000", "node"),
            ))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), "ca.key_of_another_member", "{err:?}");
        anon.enroll(enroll_req(
            csr_for("130000", Role::Node),
            "130000",
            Role::Node,
            &ca.secret("130000", "node"),
        ))
        .await
        .expect("the secret was not spent by the refused request");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn names_are_certified_only_from_the_member_allow_list_and_never_the_cas_own() {
        let ca = TestCa::start().await;
        let mut anon = ca.anonymous().await;
        let secret = ca.secret("000000", "node");
        // MOF's list allows *.000000.fiscus.test, but ca.000000.fiscus.test is
        // the identity-ca's own name: refused, and the secret stays unspent.
        let err = anon
            .enroll(with_names(
                enroll_req(csr_for("000000", Role::Node), "000000", Role::Node, &secret),
                &["ca.000000.fiscus.test"],
                &[],
            ))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), "ca.name_not_allowed", "{err:?}");
        assert!(err.message().contains("identity-ca"), "{err:?}");
        // Names on the list (a wildcard's child, the domain, loopback) are issued.
        let issued = anon
            .enroll(with_names(
                enroll_req(csr_for("000000", Role::Node), "000000", Role::Node, &secret),
                &["node.000000.fiscus.test", "000000.fiscus.test", "localhost"],
                &["127.0.0.1"],
            ))
            .await
            .unwrap()
            .into_inner();
        let id = PeerIdentity::from_der(&issued.certificate).unwrap();
        assert_eq!(
            id.dns_names,
            ["node.000000.fiscus.test", "000000.fiscus.test", "localhost"]
        );
    }

    /// A member's certificate may carry a name the CA also answers to (here
    /// loopback, which every devnet service shares). The enrollment client must
    /// still refuse to talk to it as the CA, or it would hand over its secret.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_enrollment_client_talks_only_to_the_identity_ca_itself() {
        let ca = TestCa::start().await;
        let impostor = ca
            .enroll("130000", "node", "impostor", &["localhost"])
            .await;
        let ctx = TlsContext::load(&TlsConfig::in_dir(&impostor)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let incoming = serve_incoming(
            listener,
            ctx.server_config(ClientAuth::Optional).unwrap(),
            ctx.revocations(),
        );
        let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(GossipServer::new(EchoGossip(served)))
                .serve_with_incoming(incoming),
        );
        // The impostor's certificate is valid for "localhost" under the same
        // root; only the pin on the CA's own identity tells them apart.
        let attempt = async {
            let mut c = client::connect(&addr.to_string(), "localhost", None, &ca.root_pem())
                .await
                .map_err(|e| format!("{e:?}"))?;
            c.enroll(enroll_req(
                csr_for("130100", Role::Node),
                "130100",
                Role::Node,
                &ca.secret("130100", "node"),
            ))
            .await
            .map_err(|s| format!("{s:?}"))
        };
        let err = attempt.await.unwrap_err();
        assert!(
            !err.contains("Unimplemented"),
            "the request reached the impostor: {err}"
        );
        // The real CA passes the same check.
        ca.enroll("130100", "node", "genuine", &[]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bad_enrollments_get_typed_errors_and_issue_nothing() {
        let ca = TestCa::start().await;
        let mut anon = ca.anonymous().await;
        let secret = ca.secret("130100", "node");
        let good_csr = csr_for("130100", Role::Node);

        let cases: Vec<(&str, EnrollRequest, &str)> = vec![
            (
                "malformed CSR",
                enroll_req(b"not a csr".to_vec(), "130100", Role::Node, &secret),
                "ca.bad_csr",
            ),
            (
                "wrongly signed CSR",
                {
                    let mut csr = good_csr.clone();
                    let n = csr.len();
                    csr[n - 5] ^= 0xff;
                    enroll_req(csr, "130100", Role::Node, &secret)
                },
                "ca.bad_csr",
            ),
            (
                "ECDSA key",
                {
                    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
                    let csr = rcgen::CertificateParams::default()
                        .serialize_request(&key)
                        .unwrap()
                        .der()
                        .to_vec();
                    enroll_req(csr, "130100", Role::Node, &secret)
                },
                "ca.key_type",
            ),
            (
                "unknown member",
                enroll_req(good_csr.clone(), "139999", Role::Node, &secret),
                "ca.unknown_member",
            ),
            (
                "role the member may not hold",
                enroll_req(
                    good_csr.clone(),
                    "130102",
                    Role::Orderer,
                    &ca.secret("130102", "node"),
                ),
                "ca.role_not_allowed",
            ),
            (
                "secret for another member",
                enroll_req(good_csr.clone(), "130000", Role::Node, &secret),
                "ca.secret_mismatch",
            ),
            (
                "unknown secret",
                enroll_req(
                    good_csr.clone(),
                    "130100",
                    Role::Node,
                    "00000000000000000000000000000000",
                ),
                "ca.unknown_secret",
            ),
            (
                "oversized CSR field",
                enroll_req(vec![0x30; 10 * 1024], "130100", Role::Node, &secret),
                "ca.too_large",
            ),
            (
                "no secret and no certificate",
                enroll_req(good_csr.clone(), "130100", Role::Node, ""),
                "ca.unauthenticated",
            ),
            (
                "a lone * as a DNS name",
                with_names(
                    enroll_req(good_csr.clone(), "130100", Role::Node, &secret),
                    &["*"],
                    &[],
                ),
                "ca.name_not_allowed",
            ),
            (
                "another member's domain",
                with_names(
                    enroll_req(good_csr.clone(), "130100", Role::Node, &secret),
                    &["node.130000.fiscus.test"],
                    &[],
                ),
                "ca.name_not_allowed",
            ),
            (
                "a service's bare name",
                with_names(
                    enroll_req(good_csr.clone(), "130100", Role::Node, &secret),
                    &["identity-ca"],
                    &[],
                ),
                "ca.name_not_allowed",
            ),
            (
                "an address not on the member's list",
                with_names(
                    enroll_req(good_csr.clone(), "130100", Role::Node, &secret),
                    &[],
                    &["10.0.0.1"],
                ),
                "ca.name_not_allowed",
            ),
            (
                "a wildcard over the whole test TLD",
                with_names(
                    enroll_req(good_csr.clone(), "130100", Role::Node, &secret),
                    &["*.fiscus.test"],
                    &[],
                ),
                "ca.name_not_allowed",
            ),
        ];
        for (what, req, code) in cases {
            let err = anon.enroll(req).await.expect_err(what);
            assert_eq!(code_of(&err), code, "{what}: {err}");
        }
        // Past the gRPC message limit, tonic refuses before our code runs.
        let huge = enroll_req(vec![0x30; 200 * 1024], "130100", Role::Node, &secret);
        let err = anon.enroll(huge).await.unwrap_err();
        assert!(
            matches!(
                err.code(),
                tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
            ),
            "{err}"
        );

        // The secret was not spent by any refusal: it still works once, then never again.
        anon.enroll(enroll_req(good_csr.clone(), "130100", Role::Node, &secret))
            .await
            .unwrap();
        let err = anon
            .enroll(enroll_req(
                csr_for("130100", Role::Node),
                "130100",
                Role::Node,
                &secret,
            ))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), "ca.secret_reused");

        let auditor = ca.enroll("991300", "auditor", "auditor", &[]).await;
        let listed = ca
            .as_identity(&auditor)
            .await
            .list_certificates(ListCertificatesRequest {
                org_code: "130100".into(),
                role: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .certificates;
        assert_eq!(
            listed.len(),
            1,
            "exactly one certificate was issued for 130100"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn admins_enroll_for_their_own_member_and_mof_admins_for_any() {
        let ca = TestCa::start().await;
        let hebei_admin = ca.enroll("130000", "admin", "hebei-admin", &[]).await;
        let mof_admin = ca.enroll("000000", "admin", "mof-admin", &[]).await;
        let req =
            |member: &str| enroll_req(csr_for(member, Role::Client), member, Role::Client, "");

        ca.as_identity(&hebei_admin)
            .await
            .enroll(req("130000"))
            .await
            .unwrap();
        let err = ca
            .as_identity(&hebei_admin)
            .await
            .enroll(req("130100"))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), "ca.permission_denied");
        ca.as_identity(&mof_admin)
            .await
            .enroll(req("130100"))
            .await
            .unwrap();

        let node = ca.enroll("130000", "node", "node", &[]).await;
        let err = ca
            .as_identity(&node)
            .await
            .enroll(req("130000"))
            .await
            .unwrap_err();
        assert_eq!(
            code_of(&err),
            "ca.permission_denied",
            "a node is not an admin"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_admin_on_an_open_connection_issues_nothing() {
        let ca = TestCa::start().await;
        let admin = ca.enroll("130000", "admin", "admin", &[]).await;
        let mut conn = ca.as_identity(&admin).await;
        let cert = client::read_pem_certs(&admin.join("cert.pem")).unwrap();
        // The admin revokes its own certificate, then tries to keep using the open connection.
        conn.revoke(RevokeRequest {
            cert_id: fiscus_proto::hash::cert_id(&cert[0]).to_vec(),
            reason: "left office".into(),
        })
        .await
        .unwrap();
        let err = conn
            .enroll(enroll_req(
                csr_for("130000", Role::Client),
                "130000",
                Role::Client,
                "",
            ))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), "ca.caller_invalid");
        // A new connection fails at the handshake, which the CA's own verifier refuses now.
        assert!(enroll_over_new_connection(&ca, &admin).await.is_err());
        // Refused, not absent: another admin (the MOF's, which enrolls for any
        // member) still enrolls over a new connection.
        let other = ca.enroll("000000", "admin", "other-admin", &[]).await;
        enroll_over_new_connection(&ca, &other)
            .await
            .expect("the CA is up and serves a valid admin");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_expired_admin_certificate_cannot_connect() {
        let ca = TestCa::start().await;
        let mut spec = LeafSpec::valid_for_days("130000", Role::Admin, 1);
        spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
        spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let expired = ca.issue_direct(&spec, "expired-admin");
        assert!(
            enroll_over_new_connection(&ca, &expired).await.is_err(),
            "an expired admin got a certificate issued"
        );
        // Refused, not absent: a valid admin enrolls over a new connection.
        let valid = ca.enroll("130000", "admin", "valid-admin", &[]).await;
        enroll_over_new_connection(&ca, &valid)
            .await
            .expect("the CA is up and serves a valid admin");
    }
}

mod http {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> Vec<u8> {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: ca\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    }

    fn body(resp: &[u8]) -> &[u8] {
        let at = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        &resp[at + 4..]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn external_verifiers_fetch_the_root_and_the_current_crl_over_http() {
        let ca = TestCa::start().await;
        let root = get(ca.running.http_addr, "/ca.pem").await;
        assert!(root.starts_with(b"HTTP/1.1 200"));
        // Both roots: the Ed25519 root first, then the ECDSA TLS root.
        assert_eq!(
            body(&root),
            std::fs::read(ca.trust_pem()).unwrap().as_slice()
        );
        let roots = client::read_pem_certs(&ca.trust_pem()).unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots[0], ca.ca().root_der);
        assert_eq!(Some(roots[1].as_slice()), ca.ca().tls_root_der());

        let crl = get(ca.running.http_addr, "/crl.der").await;
        assert!(String::from_utf8_lossy(&crl).contains("application/pkix-crl"));
        assert_eq!(body(&crl), std::fs::read(ca.crl_path()).unwrap().as_slice());
        let (_, parsed) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(body(&crl)).unwrap();
        assert_eq!(
            parsed.crl_number().map(|n| n.to_string()),
            Some("1".to_owned())
        );
    }
}

mod crl {
    use super::*;
    use x509_parser::x509::X509Version;

    /// (CRL number, seconds until nextUpdate, reason codes of the entries).
    fn read_crl(path: &Path) -> (u64, i64, Vec<Option<u8>>) {
        let der = std::fs::read(path).unwrap();
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
        assert_eq!(crl.version(), Some(X509Version::V2));
        let number = crl.crl_number().map(|n| u64::try_from(n).unwrap()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let left = crl.next_update().unwrap().timestamp() - now;
        let reasons = crl
            .iter_revoked_certificates()
            .map(|r| r.reason_code().map(|(_, c)| c.0))
            .collect();
        (number, left, reasons)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_crl_is_re_signed_before_its_next_update_and_entries_carry_their_reason_code() {
        // A 4-second CRL: re-signed after 2 seconds, without any revocation.
        let ca = TestCa::start_with(|c| c.crl_validity_secs = 4).await;
        let client = ca.enroll("130102", "client", "client", &[]).await;
        let admin = ca.enroll("130102", "admin", "admin", &[]).await;
        let chain = client::read_pem_certs(&client.join("cert.pem")).unwrap();
        let mut c = ca.as_identity(&admin).await;
        let crl = c
            .revoke(RevokeRequest {
                cert_id: fiscus_proto::hash::cert_id(&chain[0]).to_vec(),
                reason: "keyCompromise: the laptop was stolen".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let (number, left, reasons) = read_crl(&ca.crl_path());
        assert_eq!(number, crl.crl.unwrap().number);
        assert!((0..=4).contains(&left), "nextUpdate in {left} s");
        // The client's Ed25519 certificate and its ECDSA TLS certificate.
        assert_eq!(reasons, vec![Some(1); 2], "RFC 5280 keyCompromise is 1");

        let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (n, left, reasons) = read_crl(&ca.crl_path());
            if n > number {
                assert!(
                    left > 0,
                    "the re-signed CRL is current: nextUpdate in {left} s"
                );
                assert_eq!(reasons, vec![Some(1); 2], "the same entries");
                break;
            }
            assert!(
                std::time::Instant::now() < until,
                "the CRL was not re-signed before its nextUpdate"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        // The served CRL moved on too.
        let served = c.get_crl(GetCrlRequest {}).await.unwrap().into_inner();
        assert!(served.number > number);
        assert_eq!(served.revoked.len(), 2, "the certificate and its ECDSA one");
    }
}

mod verify {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn verify_checks_chain_signature_and_revocation_at_a_given_crl_number() {
        let ca = TestCa::start().await;
        let signer = ca.enroll("130102", "client", "signer", &[]).await;
        let admin = ca.enroll("130102", "admin", "admin", &[]).await;
        let chain = client::read_pem_certs(&signer.join("cert.pem")).unwrap();
        let msg = b"disburse 5000 fen to 12130102MB1234562B".to_vec();
        let sig = client::sign_with_key_file(&signer.join("key.pem"), &msg).unwrap();
        let mut c = ca.as_identity(&admin).await;
        let verify = |crl_number: u64, message: Vec<u8>| VerifyRequest {
            chain: chain.clone(),
            message,
            signature: sig.clone(),
            crl_number,
        };

        let ok = c.verify(verify(0, msg.clone())).await.unwrap().into_inner();
        assert!(ok.valid, "{}", ok.reason);
        assert_eq!(
            (ok.org_code.as_str(), ok.role),
            ("130102", Role::Client as i32)
        );
        let tampered = c
            .verify(verify(0, b"disburse 9999 fen".to_vec()))
            .await
            .unwrap()
            .into_inner();
        assert!(
            !tampered.valid && tampered.reason.starts_with("signature"),
            "{}",
            tampered.reason
        );

        c.revoke(RevokeRequest {
            cert_id: fiscus_proto::hash::cert_id(&chain[0]).to_vec(),
            reason: "lost".into(),
        })
        .await
        .unwrap();
        let now = c.verify(verify(0, msg.clone())).await.unwrap().into_inner();
        assert!(
            !now.valid && now.reason.contains("certificate"),
            "{}",
            now.reason
        );
        let at_crl_1 = c.verify(verify(1, msg.clone())).await.unwrap().into_inner();
        assert!(
            at_crl_1.valid,
            "before the revocation the signature was good: {}",
            at_crl_1.reason
        );
        let err = c.verify(verify(99, msg)).await.unwrap_err();
        assert_eq!(code_of(&err), "ca.not_found");
    }
}

/// ECDSA P-256 TLS certificates (issue 24): for clients whose TLS stack has no
/// Ed25519, as browsers, gRPC's C core and Java have none.
mod ecdsa {
    use super::*;
    use fiscus_common::tls::{ECDSA_CERT_FILE, ECDSA_KEY_FILE, PublicKey};
    use fiscus_identity_ca::ca::{KeyType, new_key_and_csr_of};
    use rustls::SignatureScheme;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    /// A TLS client like Chromium or grpcio: it offers ECDSA, RSA and PSS
    /// signature schemes, never Ed25519, and presents `client` (an ECDSA
    /// certificate and key), if any.
    fn without_ed25519(roots: &Path, client: Option<(&Path, &Path)>) -> Arc<rustls::ClientConfig> {
        let mut provider = rustls::crypto::ring::default_provider();
        let mapping: Vec<_> = provider
            .signature_verification_algorithms
            .mapping
            .iter()
            .filter(|(scheme, _)| *scheme != SignatureScheme::ED25519)
            .copied()
            .collect();
        provider.signature_verification_algorithms.mapping = Box::leak(mapping.into_boxed_slice());
        let mut store = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(roots).unwrap() {
            store.add(c.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(store);
        let mut config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_file_iter(cert)
                        .unwrap()
                        .map(|c| c.unwrap())
                        .collect(),
                    PrivateKeyDer::from_pem_file(key).unwrap(),
                )
                .unwrap(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        Arc::new(config)
    }

    /// Handshakes with `config` and returns the identity the server presented.
    async fn served_identity(
        addr: std::net::SocketAddr,
        name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> PeerIdentity {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
            .await
            .unwrap();
        let der = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
        PeerIdentity::from_der(&der).unwrap()
    }

    async fn heartbeat_with(
        addr: std::net::SocketAddr,
        name: &str,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<String, String> {
        let channel = connect_channel(&addr.to_string(), name, config)
            .await
            .map_err(|e| e.to_string())?;
        GossipClient::new(channel)
            .heartbeat(HeartbeatRequest {
                member: String::new(),
                height: 1,
            })
            .await
            .map(|r| r.into_inner().member)
            .map_err(|s| s.to_string())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_identity_s_ecdsa_certificate_has_its_profile_and_is_revoked_with_it() {
        let ca = TestCa::start().await;
        let dir = ca
            .enroll("130100", "node", "node", &["node.130100.fiscus.test"])
            .await;
        let main =
            PeerIdentity::from_der(&client::read_pem_certs(&dir.join("cert.pem")).unwrap()[0])
                .unwrap();
        let ecdsa =
            PeerIdentity::from_der(&client::read_pem_certs(&dir.join(ECDSA_CERT_FILE)).unwrap()[0])
                .unwrap();
        assert!(matches!(main.public_key, PublicKey::Ed25519(_)));
        assert!(matches!(ecdsa.public_key, PublicKey::EcdsaP256(_)));
        assert_eq!(
            (
                &ecdsa.member,
                ecdsa.role,
                &ecdsa.common_name,
                &ecdsa.dns_names,
                &ecdsa.ips,
                ecdsa.not_after
            ),
            (
                &main.member,
                main.role,
                &main.common_name,
                &main.dns_names,
                &main.ips,
                main.not_after
            ),
            "same subject, SANs and validity"
        );
        assert_ne!(ecdsa.serial, main.serial);
        let key = std::fs::read_to_string(dir.join(ECDSA_KEY_FILE)).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8 PEM");
        // OpenSSL, an independent verifier, checks the ECDSA certificate
        // against the ECDSA TLS root and that root's CRL.
        let paths = CaPaths::new(ca.dir.path().join("ca"));
        let openssl_verify = || {
            let pem = ca.dir.path().join("crl-ecdsa.pem");
            let conv = std::process::Command::new("openssl")
                .args(["crl", "-inform", "DER", "-in"])
                .arg(paths.crl_ecdsa())
                .arg("-out")
                .arg(&pem)
                .output()
                .expect("openssl is installed");
            assert!(conv.status.success(), "{conv:?}");
            let out = std::process::Command::new("openssl")
                .arg("verify")
                .arg("-CAfile")
                .arg(paths.tls_root_cert())
                .arg("-crl_check")
                .arg("-CRLfile")
                .arg(&pem)
                .arg(dir.join(ECDSA_CERT_FILE))
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string()
                    + &String::from_utf8_lossy(&out.stderr),
            )
        };
        let (valid, said) = openssl_verify();
        assert!(valid, "openssl verify: {said}");

        // The holder revokes its Ed25519 certificate: the ECDSA one goes too.
        ca.as_identity(&dir)
            .await
            .revoke(RevokeRequest {
                cert_id: main.cert_id.to_vec(),
                reason: "superseded".into(),
            })
            .await
            .unwrap();
        let crl = std::fs::read(ca.crl_path()).unwrap();
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&crl).unwrap();
        let mut revoked: Vec<Vec<u8>> = crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect();
        revoked.sort();
        let mut expected = vec![main.serial.clone(), ecdsa.serial.clone()];
        expected.sort();
        assert_eq!(revoked, expected);
        // The second CRL, signed by the TLS root: same number, same serials.
        let ecdsa_crl = std::fs::read(paths.crl_ecdsa()).unwrap();
        let (_, ecdsa_crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&ecdsa_crl).unwrap();
        let mut listed: Vec<Vec<u8>> = ecdsa_crl
            .iter_revoked_certificates()
            .map(|r| r.raw_serial().to_vec())
            .collect();
        listed.sort();
        assert_eq!(listed, expected);
        assert_eq!(
            ecdsa_crl.crl_number().map(|n| n.to_string()),
            crl.crl_number().map(|n| n.to_string())
        );
        let (valid, said) = openssl_verify();
        assert!(
            !valid && said.contains("certificate revoked"),
            "openssl verify: {said}"
        );
        let admin = ca.enroll("130100", "admin", "admin", &[]).await;
        let listed = ca
            .as_identity(&admin)
            .await
            .list_certificates(ListCertificatesRequest {
                org_code: "130100".into(),
                role: Role::Node as i32,
            })
            .await
            .unwrap()
            .into_inner()
            .certificates;
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|c| c.revoked), "{listed:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fiscus_renew_replaces_both_certificates_in_place_and_can_add_the_ecdsa_one() {
        let ca = TestCa::start().await;
        let dir = ca
            .enroll("130100", "node", "node", &["node.130100.fiscus.test"])
            .await;
        let ctx = TlsContext::load(&TlsConfig::in_dir(&dir)).unwrap();
        let read = |f: &str| {
            PeerIdentity::from_der(&client::read_pem_certs(&dir.join(f)).unwrap()[0]).unwrap()
        };
        let (main, ecdsa) = (read("cert.pem"), read(ECDSA_CERT_FILE));

        client::renew(&mut ca.as_identity(&dir).await, &dir, false)
            .await
            .unwrap();
        let (main2, ecdsa2) = (read("cert.pem"), read(ECDSA_CERT_FILE));
        assert_ne!(main2.cert_id, main.cert_id);
        assert_ne!(ecdsa2.cert_id, ecdsa.cert_id);
        assert_ne!(main2.public_key, main.public_key, "a new key");
        assert_eq!(
            (&main2.member, main2.role, &main2.dns_names),
            (&main.member, main.role, &main.dns_names)
        );
        assert_eq!(ecdsa2.not_after, main2.not_after);
        // A running service picks the new pair up on its next reload.
        assert!(ctx.reload().unwrap());
        assert_eq!(ctx.identity().cert_id, main2.cert_id);
        assert_eq!(ctx.expiries().len(), 2);

        // An identity enrolled without the ECDSA pair gets one with --add-ecdsa.
        std::fs::remove_file(dir.join(ECDSA_CERT_FILE)).unwrap();
        std::fs::remove_file(dir.join(ECDSA_KEY_FILE)).unwrap();
        client::renew(&mut ca.as_identity(&dir).await, &dir, false)
            .await
            .unwrap();
        assert!(
            !dir.join(ECDSA_CERT_FILE).exists(),
            "not added unless asked"
        );
        client::renew(&mut ca.as_identity(&dir).await, &dir, true)
            .await
            .unwrap();
        assert!(matches!(
            read(ECDSA_CERT_FILE).public_key,
            PublicKey::EcdsaP256(_)
        ));
        assert_eq!(read(ECDSA_CERT_FILE).not_after, read("cert.pem").not_after);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_ca_certifies_ecdsa_keys_for_tls_and_refuses_them_where_ledger_keys_are_needed() {
        let ca = TestCa::start().await;
        let mut anon = ca.anonymous().await;
        let ecdsa_csr = |role| {
            new_key_and_csr_of("130100", role, KeyType::EcdsaP256)
                .unwrap()
                .1
        };

        // A node's main key signs ledger messages: ECDSA there is refused.
        let err = anon
            .enroll(enroll_req(
                ecdsa_csr(Role::Node),
                "130100",
                Role::Node,
                &ca.secret("130100", "node"),
            ))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), "ca.key_type", "{err:?}");
        assert!(err.message().contains("Ed25519"), "{}", err.message());

        // The second CSR must be ECDSA P-256, not another Ed25519 key.
        let mut req = enroll_req(
            csr_for("130100", Role::Node),
            "130100",
            Role::Node,
            &ca.secret("130100", "node"),
        );
        req.ecdsa_csr = csr_for("130100", Role::Node);
        let err = anon.enroll(req).await.unwrap_err();
        assert_eq!(code_of(&err), "ca.key_type", "{err:?}");

        // Another curve is refused.
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "130100");
        let p384_csr = params.serialize_request(&p384).unwrap().der().to_vec();
        let err = anon
            .enroll(enroll_req(
                p384_csr,
                "130100",
                Role::Client,
                &ca.secret("130100", "client"),
            ))
            .await
            .unwrap_err();
        assert_eq!(code_of(&err), "ca.key_type", "{err:?}");
        assert!(err.message().contains("P-256"), "{}", err.message());

        // An API client may hold an ECDSA P-256 key as its only key; nothing
        // refused above spent its secret.
        let issued = anon
            .enroll(enroll_req(
                ecdsa_csr(Role::Client),
                "130100",
                Role::Client,
                &ca.secret("130100", "client"),
            ))
            .await
            .unwrap()
            .into_inner();
        let id = PeerIdentity::from_der(&issued.certificate).unwrap();
        assert!(matches!(id.public_key, PublicKey::EcdsaP256(_)));
        assert_eq!((id.member.as_str(), id.role), ("130100", Role::Client));
        assert!(issued.ecdsa_certificate.is_empty());
        // Its certificate verifies no signature: ledger signatures are Ed25519.
        let admin = ca.enroll("130100", "admin", "admin", &[]).await;
        let verdict = ca
            .as_identity(&admin)
            .await
            .verify(VerifyRequest {
                chain: vec![issued.certificate.clone()],
                message: b"m".to_vec(),
                signature: vec![0; 64],
                crl_number: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(!verdict.valid);
        assert!(verdict.reason.contains("Ed25519"), "{}", verdict.reason);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_without_ed25519_gets_the_ecdsa_certificate_and_may_present_one() {
        let ca = TestCa::start().await;
        let server = ca
            .enroll("130000", "node", "server", &["node.130000.fiscus.test"])
            .await;
        let client = ca.enroll("130100", "node", "client", &[]).await;
        let svc = start_service(&server, &ca.crl_path()).await;
        let name = "node.130000.fiscus.test";
        let roots = client.join("ca.pem");
        assert_eq!(
            client::read_pem_certs(&roots).unwrap(),
            client::read_pem_certs(&ca.trust_pem()).unwrap(),
            "enrollment writes both roots to ca.pem"
        );
        let ecdsa_client = (client.join(ECDSA_CERT_FILE), client.join(ECDSA_KEY_FILE));

        // The ECDSA certificate chains to the ECDSA TLS root, so a verifier
        // without Ed25519 (a browser's) can check the whole chain; trusting
        // only the Ed25519 root, it cannot.
        let tcp = tokio::net::TcpStream::connect(svc.addr).await.unwrap();
        let refused = tokio_rustls::TlsConnector::from(without_ed25519(&ca.root_pem(), None))
            .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");

        // Offered no Ed25519, the server presents its ECDSA certificate;
        // offered Ed25519 (every Fiscus service), its Ed25519 one.
        let seen = served_identity(svc.addr, name, without_ed25519(&roots, None)).await;
        assert!(
            matches!(seen.public_key, PublicKey::EcdsaP256(_)),
            "{seen:?}"
        );
        assert_eq!(seen.member, "130000");
        let own = TlsContext::load(&TlsConfig::in_dir(&client)).unwrap();
        let seen = served_identity(svc.addr, name, own.client_config().unwrap()).await;
        assert!(matches!(seen.public_key, PublicKey::Ed25519(_)), "{seen:?}");

        // An ECDSA client certificate authenticates its member.
        let config = without_ed25519(&roots, Some((&ecdsa_client.0, &ecdsa_client.1)));
        assert_eq!(
            heartbeat_with(svc.addr, name, config.clone())
                .await
                .unwrap(),
            "130100"
        );
        // The dialled name must be on the certificate.
        assert!(
            heartbeat_with(svc.addr, "other.130000.fiscus.test", config.clone())
                .await
                .is_err()
        );

        // An expired ECDSA certificate is refused.
        let mut spec = LeafSpec::valid_for_days("130100", Role::Node, 1);
        spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
        spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        let expired_dir = ca.dir.path().join("expired-ecdsa");
        let key = KeyType::EcdsaP256.generate().unwrap();
        let issued = ca.ca().issue_for_key(&key, &spec).unwrap();
        write_file(&expired_dir.join("cert.pem"), issued.pem.as_bytes(), 0o644).unwrap();
        write_file(
            &expired_dir.join("key.pem"),
            key.serialize_pem().as_bytes(),
            0o600,
        )
        .unwrap();
        let served = svc.served();
        let expired = without_ed25519(
            &roots,
            Some((&expired_dir.join("cert.pem"), &expired_dir.join("key.pem"))),
        );
        assert!(heartbeat_with(svc.addr, name, expired).await.is_err());

        // So is one from a foreign CA.
        let other_dir = tempfile::tempdir().unwrap();
        let other = RootCa::create(&CaPaths::new(other_dir.path()), "rogue", 1, false).unwrap();
        let key = KeyType::EcdsaP256.generate().unwrap();
        let rogue = other
            .issue_for_key(&key, &LeafSpec::valid_for_days("130100", Role::Node, 30))
            .unwrap();
        write_file(
            &other_dir.path().join("cert.pem"),
            rogue.pem.as_bytes(),
            0o644,
        )
        .unwrap();
        write_file(
            &other_dir.path().join("key.pem"),
            key.serialize_pem().as_bytes(),
            0o600,
        )
        .unwrap();
        let foreign = without_ed25519(
            &roots,
            Some((
                &other_dir.path().join("cert.pem"),
                &other_dir.path().join("key.pem"),
            )),
        );
        assert!(heartbeat_with(svc.addr, name, foreign).await.is_err());
        assert_eq!(svc.served(), served, "neither call reached the service");

        // Revoking the client's identity (by its Ed25519 certificate) shuts
        // out its ECDSA certificate too, without a restart.
        let main = client::read_pem_certs(&client.join("cert.pem")).unwrap();
        ca.as_identity(&client)
            .await
            .revoke(RevokeRequest {
                cert_id: fiscus_proto::hash::cert_id(&main[0]).to_vec(),
                reason: "keyCompromise".into(),
            })
            .await
            .unwrap();
        assert!(svc.tls.reload().unwrap(), "the CRL file changed");
        let err = heartbeat_with(svc.addr, name, config.clone())
            .await
            .unwrap_err();
        assert_eq!(
            svc.served(),
            served,
            "the revoked client's call never arrived: {err}"
        );

        // The handshake itself fails: the service's CRL file is the Ed25519
        // root's only, and the revoked serial is refused whichever root
        // issued the certificate (not only by closing the connection later).
        let acceptor =
            tokio_rustls::TlsAcceptor::from(svc.tls.server_config(ClientAuth::Required).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await.map(|_| ())
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        if let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
            .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
            .await
        {
            use tokio::io::AsyncReadExt;
            let _ = tls.read(&mut [0u8; 1]).await;
        }
        let refused = server.await.unwrap().unwrap_err();
        assert!(refused.to_string().contains("Revoked"), "{refused}");
    }
}
