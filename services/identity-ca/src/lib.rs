//! identity-ca: the consortium CA ("agency management service").
//!
//! It creates the root CA and the genesis bundle (`init`), issues X.509
//! e-certificates in the Fiscus profile against one-time secrets or admin
//! certificates, revokes them through a numbered, root-signed CRL, and
//! verifies certificate chains and signatures for other services. See the
//! service README for the certificate profile and the authorization rules.
#![forbid(unsafe_code)]

pub mod ca;
pub mod client;
mod error;
pub mod genesis;
mod http;
pub mod members;
pub mod registry;
mod service;
mod verify;

pub use error::{Error, Result};
pub use service::{CaService, Grpc};
pub use verify::{ChainVerifier, Verdict};

use ca::{CaPaths, LeafSpec, RootCa, write_file};
use fiscus_common::config::{ConfigError, ServiceConfig};
use fiscus_common::ops_server::{OpsServer, Readiness};
use fiscus_common::tls::{ClientAuth, TlsConfig, TlsContext, serve_incoming};
use fiscus_proto::pb::identity::identity_ca_server::IdentityCaServer;
use fiscus_proto::pb::types::Role;
use prost::Message;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The identity-ca's configuration (`config/identity-ca.example.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where `init` wrote the CA, the genesis bundle and the registry.
    pub data_dir: PathBuf,
    /// gRPC over mutual TLS. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// `/ca.pem`, `/crl.der`, `/metrics`, `/healthz`, `/readyz`.
    pub http_listen: SocketAddr,
    /// Validity of issued certificates.
    pub cert_validity_days: u32,
    /// Largest gRPC request accepted.
    pub max_request_bytes: usize,
    /// How often the CA's own TLS files are checked for rotation.
    pub tls_reload_interval_secs: u64,
    /// A CRL's validity (`nextUpdate`). The CA re-signs the CRL (the next
    /// number, the same entries) once half of it has passed, so relying
    /// parties never hold an expired one after a quiet week.
    pub crl_validity_secs: u64,
    /// A member's ledger-store to follow (mutual TLS with the CA's own
    /// certificate): the CA then certifies the members `gov/config` lists at
    /// its head, not only those of the genesis bundle, so a finance bureau
    /// voted in later can enroll and one voted out cannot. Unset: genesis.
    #[serde(default)]
    pub ledger: Option<fiscus_common::tls::Endpoint>,
    pub json_logs: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data/identity-ca"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7100)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 7101)),
            cert_validity_days: 365,
            max_request_bytes: 64 * 1024,
            tls_reload_interval_secs: 30,
            crl_validity_secs: ca::DEFAULT_CRL_VALIDITY.as_secs(),
            ledger: None,
            json_logs: false,
        }
    }
}

impl ServiceConfig for Config {
    const SERVICE: &'static str = "identity-ca";

    fn validate(&self) -> Result<(), ConfigError> {
        if !(4..=366 * 86_400).contains(&self.crl_validity_secs) {
            return Err(ConfigError::Invalid {
                key: "crl_validity_secs",
                message: "must be between 4 seconds and 366 days".into(),
            });
        }
        if !(1..=3650).contains(&self.cert_validity_days) {
            return Err(ConfigError::Invalid {
                key: "cert_validity_days",
                message: "must be between 1 and 3650".into(),
            });
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_request_bytes) {
            return Err(ConfigError::Invalid {
                key: "max_request_bytes",
                message: "must be between 1 KiB and 16 MiB".into(),
            });
        }
        Ok(())
    }
}

/// Options of `fiscus identity-ca init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub data_dir: PathBuf,
    pub consortium_id: String,
    pub force: bool,
    /// Every Hebei division as an org, instead of the five-org devnet set.
    pub all_hebei: bool,
    /// DNS names and IPs for the CA's own serving certificate.
    pub server_names: Vec<String>,
    pub root_validity_years: u32,
    pub cert_validity_days: u32,
}

/// What `init` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub root_certificate: PathBuf,
    pub genesis: PathBuf,
    pub consortium_config: PathBuf,
    pub enrollment_secrets: PathBuf,
    pub secrets_issued: usize,
}

/// One line of `enrollment-secrets.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentSecret {
    pub member: String,
    pub role: String,
    pub secret: String,
}

/// The TLS material of the CA's own endpoint.
pub fn ca_tls_config(data_dir: &Path) -> TlsConfig {
    let paths = CaPaths::new(data_dir);
    TlsConfig {
        crl_file: Some(paths.crl()),
        ..TlsConfig::in_dir(&paths.tls_dir())
    }
}

/// Creates the root CA, the genesis bundle, one enrollment secret per member
/// and role, the CA's own serving certificate and CRL number 1 (empty).
pub async fn init(opts: &InitOptions) -> Result<InitReport> {
    let paths = CaPaths::new(&opts.data_dir);
    let ca = RootCa::create(
        &paths,
        &opts.consortium_id,
        opts.root_validity_years,
        opts.force,
    )?;
    let bundle = genesis::devnet_bundle(&opts.consortium_id, ca.root_pem.clone(), opts.all_hebei);
    bundle.validate().map_err(Error::InvalidArgument)?;
    let json = serde_json::to_vec_pretty(&bundle).map_err(|e| Error::Internal(e.to_string()))?;
    write_file(&paths.genesis_json(), &json, 0o644)?;
    write_file(
        &paths.consortium_config(),
        &bundle.to_consortium_config(&ca.root_der).encode_to_vec(),
        0o644,
    )?;

    if opts.force && paths.registry().exists() {
        std::fs::remove_file(paths.registry()).map_err(|e| Error::io(&paths.registry(), e))?;
    }
    let registry = registry::Registry::open(&paths.registry())?;
    let mut secrets = Vec::new();
    for m in &bundle.members {
        for role in &m.roles {
            let secret = hex::encode(rand::random::<[u8; 16]>());
            registry.add_secret(&secret, &m.org_code, role).await?;
            secrets.push(EnrollmentSecret {
                member: m.org_code.clone(),
                role: role.clone(),
                secret,
            });
        }
    }
    let secrets_json =
        serde_json::to_vec_pretty(&secrets).map_err(|e| Error::Internal(e.to_string()))?;
    write_file(&paths.secrets(), &secrets_json, 0o600)?;

    // The CA's own endpoint identity: member 000000, role node, with its ECDSA
    // certificate for clients without Ed25519.
    let mut spec = LeafSpec::valid_for_days("000000", Role::Node, opts.cert_validity_days);
    spec.common_name = fiscus_common::tls::IDENTITY_CA_COMMON_NAME.into();
    spec.add_names(&opts.server_names);
    let own = ca.issue_new_identity(&spec)?;
    own.write_to(&paths.tls_dir(), &ca)?;
    registry.record_issued(&own.records(), None).await?;
    let crl = ca.sign_crl(1, &[], ca::DEFAULT_CRL_VALIDITY)?;
    ca::write_crl_files(&paths.crl(), &crl)?;
    let empty = registry::CrlRecord::new(1, &crl, Vec::new());
    registry.commit_initial_crl(&empty).await?;
    Ok(InitReport {
        root_certificate: paths.root_cert(),
        genesis: paths.genesis_json(),
        consortium_config: paths.consortium_config(),
        enrollment_secrets: paths.secrets(),
        secrets_issued: secrets.len(),
    })
}

/// A running identity-ca.
#[derive(Debug)]
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub service: Arc<CaService>,
    server: tokio::task::JoinHandle<Result<(), tonic::transport::Error>>,
    stop: tokio::sync::oneshot::Sender<()>,
    ops: OpsServer,
    reloader: tokio::task::JoinHandle<()>,
    crl_refresher: tokio::task::JoinHandle<()>,
    follower: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops serving: the gRPC server drains, then the rest stops.
    pub async fn stop(self) -> Result<()> {
        let _ = self.stop.send(());
        let served = self.server.await;
        self.reloader.abort();
        self.crl_refresher.abort();
        if let Some(f) = &self.follower {
            f.abort();
        }
        self.ops.stop().await;
        match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Internal(format!("gRPC server failed: {e}"))),
            Err(e) => Err(Error::Internal(format!("gRPC server task failed: {e}"))),
        }
    }
}

/// Re-signs the CRL whenever half of its validity has passed (checked a
/// few times per validity period, and at start).
async fn refresh_crl_forever(svc: Arc<CaService>) {
    let every = (svc.crl_validity / 8).clamp(
        std::time::Duration::from_millis(500),
        std::time::Duration::from_secs(3600),
    );
    loop {
        match svc.refresh_crl_if_due().await {
            Ok(Some(number)) => tracing::info!(
                crl_number = number,
                "re-signed the CRL before its nextUpdate"
            ),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "could not re-sign the CRL; relying parties will see it expire")
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// Loads the CA from `config.data_dir` and starts serving; returns once bound.
/// [`Running::stop`] stops it.
pub async fn start(config: Config) -> Result<Running> {
    let paths = CaPaths::new(&config.data_dir);
    let bundle_bytes =
        std::fs::read(paths.genesis_json()).map_err(|e| Error::io(&paths.genesis_json(), e))?;
    let bundle: genesis::GenesisBundle = serde_json::from_slice(&bundle_bytes)
        .map_err(|e| Error::InvalidArgument(format!("genesis.json: {e}")))?;
    bundle.validate().map_err(Error::InvalidArgument)?;
    let bundle_consortium = bundle.consortium_id.clone();
    let (ca, added) = RootCa::add_tls_root(&paths, &bundle_consortium)?;
    if added {
        tracing::warn!(
            path = %paths.tls_root_cert().display(),
            "created the ECDSA P-256 TLS root this CA was initialized without; ECDSA certificates \
             are issued by it from now on: distribute the new ca.pem (both roots) and renew"
        );
    }
    let ca = Arc::new(ca);
    // The CA's own endpoint trusts both roots, whenever it was initialized.
    let own_trust = paths.tls_dir().join("ca.pem");
    if std::fs::read_to_string(&own_trust).ok().as_deref() != Some(ca.trust_pem().as_str()) {
        write_file(&own_trust, ca.trust_pem().as_bytes(), 0o644)?;
    }
    let registry = Arc::new(registry::Registry::open(&paths.registry())?);
    let tls_cfg = TlsConfig {
        reload_interval_secs: config.tls_reload_interval_secs,
        ..ca_tls_config(&config.data_dir)
    };
    let tls =
        TlsContext::load(&tls_cfg).map_err(|e| Error::Internal(format!("CA TLS material: {e}")))?;
    if let Some(crl) = registry.current_crl().await? {
        tls.set_crls(crl.ders()?)
            .map_err(|e| Error::Internal(format!("the stored CRL: {e}")))?;
    }

    let prom = prometheus::Registry::new();
    let metrics = service::Metrics::register(&prom).map_err(|e| Error::Internal(e.to_string()))?;
    tls.register_expiry_metric(&prom)
        .map_err(|e| Error::Internal(e.to_string()))?;
    fiscus_common::store::register_metrics(&prom).map_err(|e| Error::Internal(e.to_string()))?;
    let svc = Arc::new(CaService {
        verifier: ChainVerifier::new(&ca.trust_ders())?,
        ca,
        members: Arc::new(members::MemberList::new(members::Members::from_bundle(
            &bundle,
        ))),
        registry,
        tls: tls.clone(),
        crl_path: paths.crl(),
        validity_days: config.cert_validity_days,
        crl_validity: std::time::Duration::from_secs(config.crl_validity_secs),
        revoke_lock: tokio::sync::Mutex::new(()),
        metrics,
    });

    let server_config = tls
        .server_config(ClientAuth::Optional)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Io {
            path: config.listen.to_string(),
            source: e,
        })?;
    let grpc_addr = listener.local_addr().map_err(|e| Error::Io {
        path: config.listen.to_string(),
        source: e,
    })?;
    let incoming = serve_incoming(listener, server_config, tls.revocations());
    let grpc = IdentityCaServer::new(Grpc(svc.clone()))
        .max_decoding_message_size(config.max_request_bytes)
        .max_encoding_message_size(4 * 1024 * 1024);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let grpc_metrics = fiscus_common::red::GrpcMetricsLayer::register(&prom)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .layer(grpc_metrics)
            .add_service(grpc)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped.await;
            }),
    );

    let readiness = Readiness::default();
    readiness.set("grpc", Ok(()));
    let ops = OpsServer::start_with(
        config.http_listen,
        prom,
        readiness,
        http::routes(svc.clone()),
    )
    .map_err(|e| Error::Io {
        path: config.http_listen.to_string(),
        source: e,
    })?;
    let reloader = tls.spawn_reloader();
    let crl_refresher = tokio::spawn(refresh_crl_forever(svc.clone()));
    let follower = config.ledger.clone().map(|ledger| {
        tokio::spawn(members::follow(
            svc.members.clone(),
            tls.clone(),
            ledger,
            bundle_consortium.clone(),
        ))
    });
    tracing::info!(grpc = %grpc_addr, http = %ops.addr, "identity-ca serving");
    Ok(Running {
        grpc_addr,
        http_addr: ops.addr,
        service: svc,
        server,
        stop,
        ops,
        reloader,
        crl_refresher,
        follower,
    })
}
