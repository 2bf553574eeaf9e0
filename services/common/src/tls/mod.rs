//! Mutual TLS for every Fiscus link: rustls server and client configs built
//! from the member's certificate, key, the consortium root and the CRL.
//!
//! - TLS 1.3 only; only certificates issued by the consortium root are accepted.
//! - The CRL can be replaced at run time ([`TlsContext::set_crl`]); new
//!   handshakes use it at once, nothing restarts.
//! - Certificate, key and CRL files are re-read when they change
//!   ([`TlsContext::reload`], or [`TlsContext::spawn_reloader`] to poll).
//! - Clients check the server name against the server certificate's SANs.
//! - A server may hold a second certificate with an ECDSA P-256 key (same
//!   subject and SANs, from the same CA): it is presented to clients that do not
//!   offer Ed25519 (browsers, gRPC's C core, Java); everyone else gets Ed25519.
//! - `fiscus_certificate_expiry_seconds{member,role,key}` reports the seconds
//!   left on each of this process's certificates (`key="ed25519"`, and
//!   `key="ecdsa_p256"` with an ECDSA one), and a warning is logged inside the
//!   renewal window.

mod grpc;
pub mod names;
mod profile;
mod revocations;
mod verifier;

pub use grpc::{
    PeerInfo, PeerStream, connect_channel, lazy_channel, peer_identity, require_own_node,
    serve_incoming, serve_incoming_until,
};
pub use profile::{
    EC_PUBLIC_KEY_OID, ED25519_OID, P256_OID, PeerIdentity, PublicKey, is_member_code, parse_role,
    profile_key, role_name,
};
pub use revocations::{Revocations, crl_serials};
pub use verifier::{
    ClientVerifier, IDENTITY_CA_COMMON_NAME, PinnedServerVerifier, ServerPin, ServerVerifier,
};

use arc_swap::ArcSwap;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SignatureScheme};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Where a process finds its TLS material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM PKCS#8 Ed25519 private key.
    pub key_file: PathBuf,
    /// PEM certificate chain of the same identity with an ECDSA P-256 key,
    /// presented to TLS clients that do not offer Ed25519. Optional; set
    /// together with `ecdsa_key_file`.
    pub ecdsa_cert_file: Option<PathBuf>,
    /// PEM PKCS#8 ECDSA P-256 private key for `ecdsa_cert_file`.
    pub ecdsa_key_file: Option<PathBuf>,
    /// PEM consortium root certificate(s).
    pub ca_file: PathBuf,
    /// The CRL: one DER X.509 CRL signed by a root, or PEM holding one CRL
    /// per root (the Ed25519 root's and the ECDSA TLS root's). Optional until
    /// the first revocation; the CRL on chain replaces it when newer.
    pub crl_file: Option<PathBuf>,
    /// How often the files are checked for changes.
    pub reload_interval_secs: u64,
    /// Warn when the certificate expires within this many days.
    pub renewal_window_days: u32,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            cert_file: PathBuf::from("tls/cert.pem"),
            key_file: PathBuf::from("tls/key.pem"),
            ecdsa_cert_file: None,
            ecdsa_key_file: None,
            ca_file: PathBuf::from("tls/ca.pem"),
            crl_file: None,
            reload_interval_secs: 30,
            renewal_window_days: 30,
        }
    }
}

impl TlsConfig {
    /// The layout `fiscus enroll` writes: `cert.pem`, `key.pem` and `ca.pem` in
    /// one directory, no CRL file, other settings at their defaults; and
    /// `cert-ecdsa.pem` with `key-ecdsa.pem` when both are there.
    pub fn in_dir(dir: &Path) -> Self {
        let (ecdsa_cert, ecdsa_key) = (dir.join(ECDSA_CERT_FILE), dir.join(ECDSA_KEY_FILE));
        let ecdsa = ecdsa_cert.exists() && ecdsa_key.exists();
        Self {
            cert_file: dir.join("cert.pem"),
            key_file: dir.join("key.pem"),
            ecdsa_cert_file: ecdsa.then_some(ecdsa_cert),
            ecdsa_key_file: ecdsa.then_some(ecdsa_key),
            ca_file: dir.join("ca.pem"),
            crl_file: None,
            ..Self::default()
        }
    }

    /// The ECDSA certificate and key, when both are configured; an error when
    /// only one of them is.
    pub fn ecdsa_files(&self) -> Result<Option<(&Path, &Path)>, TlsError> {
        match (&self.ecdsa_cert_file, &self.ecdsa_key_file) {
            (Some(c), Some(k)) => Ok(Some((c, k))),
            (None, None) => Ok(None),
            _ => Err(TlsError::Profile(
                "ecdsa_cert_file and ecdsa_key_file must be set together".into(),
            )),
        }
    }
}

/// The file names of an identity's ECDSA P-256 certificate and key beside
/// `cert.pem` and `key.pem`, as `fiscus enroll` and the devnet write them.
pub const ECDSA_CERT_FILE: &str = "cert-ecdsa.pem";
pub const ECDSA_KEY_FILE: &str = "key-ecdsa.pem";

/// Why TLS material could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}")]
    Pem { path: PathBuf, what: &'static str },
    #[error("certificate does not follow the Fiscus profile: {0}")]
    Profile(String),
    #[error("verifier could not be built: {0}")]
    Verifier(String),
    #[error("TLS configuration failed")]
    Rustls(#[from] rustls::Error),
    #[error("cannot connect to {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
}

/// The process-wide crypto provider: rustls on ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses every PEM certificate in `pem`.
pub fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "certificate",
        });
    }
    Ok(certs)
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::Pem {
        path: path.to_owned(),
        what: "private key",
    })
}

/// The CRLs in a CRL file: one DER CRL, or PEM ("X509 CRL") holding one or
/// more (one per root), for operators who prefer text files.
fn parse_crls(path: &Path, bytes: Vec<u8>) -> Result<Vec<Vec<u8>>, TlsError> {
    let bad = || TlsError::Pem {
        path: path.to_owned(),
        what: "CRL",
    };
    if !bytes.starts_with(b"-----BEGIN") {
        return Ok(vec![bytes]);
    }
    let crls: Vec<Vec<u8>> = CertificateRevocationListDer::pem_slice_iter(&bytes)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if crls.is_empty() {
        return Err(bad());
    }
    Ok(crls)
}

/// The CRL number and the revoked serials of a set of CRLs (one per root,
/// with the same number): the highest number, and every serial any lists.
/// `None` when one of them is not a DER X.509 CRL.
fn crls_serials(crls: &[Vec<u8>]) -> Option<(Option<u64>, std::collections::BTreeSet<Vec<u8>>)> {
    let mut number = None;
    let mut serials = std::collections::BTreeSet::new();
    for der in crls {
        let (n, s) = crl_serials(der)?;
        number = number.max(n);
        serials.extend(s);
    }
    Some((number, serials))
}

/// A file's identity for change detection: inode (atomic replacement by rename
/// always changes it, whatever the clock granularity), mtime and length.
type Stamp = (u64, SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.modified().ok()?, m.len()))
}

/// The current certificate and key (and the ECDSA pair, if configured);
/// swapped when the files change.
#[derive(Debug)]
struct Identity {
    key: Arc<CertifiedKey>,
    peer: PeerIdentity,
    ecdsa: Option<(Arc<CertifiedKey>, PeerIdentity)>,
}

impl Identity {
    /// What a server presents: Ed25519 to a client that offers it (and to
    /// every client when there is no ECDSA certificate), ECDSA to the others.
    fn for_client(&self, offered: &[SignatureScheme]) -> &Arc<CertifiedKey> {
        match &self.ecdsa {
            Some((ecdsa, _)) if !offered.contains(&SignatureScheme::ED25519) => ecdsa,
            _ => &self.key,
        }
    }
}

#[derive(Debug)]
struct CertResolver(Arc<ArcSwap<Identity>>);

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load().for_client(hello.signature_schemes()).clone())
    }
}

impl ResolvesClientCert for CertResolver {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.load().key.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client config that trusts the roots in `ca_file` but presents no
/// certificate: only for enrolling with a one-time secret at the identity-ca
/// (and fetching its CRL), so the server must also be `pin`.
pub fn anonymous_client_config(
    ca_file: &Path,
    pin: ServerPin,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for c in parse_certs(ca_file, &read(ca_file)?)? {
        roots.add(c)?;
    }
    let verifier = Arc::new(PinnedServerVerifier::new(
        Arc::new(ServerVerifier::new(
            Arc::new(roots),
            &[],
            provider.clone(),
            None,
        )?),
        pin,
    ));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Whether a server demands a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every service: no certificate, no connection.
    Required,
    /// The identity-ca, so that a new member can enroll with a one-time secret,
    /// and the exchange-adapter's REST API, where API keys are the alternative.
    /// Handlers must then check [`peer_identity`] (or the connection's identity) themselves.
    Optional,
}

/// TLS state shared by every server and client of one process.
#[derive(Debug)]
pub struct TlsContext {
    config: TlsConfig,
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    identity: Arc<ArcSwap<Identity>>,
    crls: ArcSwap<Vec<CertificateRevocationListDer<'static>>>,
    client_verifiers: Mutex<Vec<Arc<ClientVerifier>>>,
    server_verifier: Arc<ServerVerifier>,
    stamps: Mutex<[Option<Stamp>; 5]>,
    /// The serials the current CRL revokes; connections served with
    /// [`serve_incoming`] close when their peer's serial joins them.
    revocations: Arc<Revocations>,
}

impl TlsContext {
    /// Loads certificate, key, roots and (if configured) the CRL.
    pub fn load(config: &TlsConfig) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        for c in parse_certs(&config.ca_file, &read(&config.ca_file)?)? {
            roots.add(c)?;
        }
        let roots = Arc::new(roots);
        let crl_ders = match &config.crl_file {
            Some(p) if p.exists() => parse_crls(p, read(p)?)?,
            _ => Vec::new(),
        };
        let revocations = Arc::new(Revocations::default());
        if !crl_ders.is_empty() {
            let (number, serials) = crls_serials(&crl_ders).ok_or_else(|| {
                TlsError::Verifier("the CRL file does not hold DER X.509 CRLs".into())
            })?;
            revocations.install(number, serials);
        }
        let crls: Vec<CertificateRevocationListDer<'static>> =
            crl_ders.into_iter().map(Into::into).collect();
        let identity = Self::load_identity(config, &provider)?;
        let server_verifier = Arc::new(ServerVerifier::new(
            roots.clone(),
            &crls,
            provider.clone(),
            Some(revocations.clone()),
        )?);
        let ctx = Self {
            revocations,
            stamps: Mutex::new(Self::stamps(config)),
            config: config.clone(),
            provider,
            roots,
            identity: Arc::new(ArcSwap::from_pointee(identity)),
            crls: ArcSwap::from_pointee(crls),
            client_verifiers: Mutex::new(Vec::new()),
            server_verifier,
        };
        ctx.warn_if_expiring();
        Ok(Arc::new(ctx))
    }

    fn stamps(config: &TlsConfig) -> [Option<Stamp>; 5] {
        [
            stamp(&config.cert_file),
            stamp(&config.key_file),
            config.crl_file.as_deref().and_then(stamp),
            config.ecdsa_cert_file.as_deref().and_then(stamp),
            config.ecdsa_key_file.as_deref().and_then(stamp),
        ]
    }

    fn load_pair(
        cert_file: &Path,
        key_file: &Path,
        provider: &CryptoProvider,
    ) -> Result<(Arc<CertifiedKey>, PeerIdentity), TlsError> {
        let chain = parse_certs(cert_file, &read(cert_file)?)?;
        let key = parse_key(key_file, &read(key_file)?)?;
        let peer = PeerIdentity::from_der(&chain[0])?;
        let signing = provider.key_provider.load_private_key(key)?;
        let certified = CertifiedKey::new(chain, signing);
        certified.keys_match()?;
        Ok((Arc::new(certified), peer))
    }

    fn load_identity(config: &TlsConfig, provider: &CryptoProvider) -> Result<Identity, TlsError> {
        let (key, peer) = Self::load_pair(&config.cert_file, &config.key_file, provider)?;
        if peer.public_key.ed25519().is_none() {
            return Err(TlsError::Profile(format!(
                "{}: a process's main certificate must have an Ed25519 key (ECDSA goes in ecdsa_cert_file)",
                config.cert_file.display()
            )));
        }
        let ecdsa = match config.ecdsa_files()? {
            None => None,
            Some((cert_file, key_file)) => {
                let (ecdsa, other) = Self::load_pair(cert_file, key_file, provider)?;
                if !matches!(other.public_key, PublicKey::EcdsaP256(_)) {
                    return Err(TlsError::Profile(format!(
                        "{}: the certificate does not have an ECDSA P-256 key",
                        cert_file.display()
                    )));
                }
                let same = other.member == peer.member
                    && other.role == peer.role
                    && other.common_name == peer.common_name
                    && other.dns_names == peer.dns_names
                    && other.ips == peer.ips;
                if !same {
                    return Err(TlsError::Profile(format!(
                        "{}: the ECDSA certificate is not for the same identity as {} (member, role, common name and SANs must match)",
                        cert_file.display(),
                        config.cert_file.display()
                    )));
                }
                Some((ecdsa, other))
            }
        };
        Ok(Identity { key, peer, ecdsa })
    }

    /// The DER of this process's Ed25519 certificate (the leaf it signs with).
    pub fn certificate_der(&self) -> Vec<u8> {
        self.identity
            .load()
            .key
            .cert
            .first()
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    /// This process's own identity, from its certificate.
    pub fn identity(&self) -> PeerIdentity {
        self.identity.load().peer.clone()
    }

    /// The consortium roots.
    pub fn roots(&self) -> Arc<RootCertStore> {
        self.roots.clone()
    }

    /// A server config: TLS 1.3, h2 ALPN, client certificates checked against roots and CRL.
    pub fn server_config(&self, auth: ClientAuth) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let verifier = Arc::new(ClientVerifier::new(
            self.roots.clone(),
            &self.crls.load(),
            self.provider.clone(),
            auth == ClientAuth::Optional,
            Some(self.revocations.clone()),
        )?);
        self.client_verifiers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(verifier.clone());
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(CertResolver(self.identity.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// A client config that presents this process's certificate.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(self.server_verifier.clone())
            .with_client_cert_resolver(Arc::new(CertResolver(self.identity.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// Like [`Self::client_config`], for a server that must also be `pin`.
    pub fn client_config_pinned(
        &self,
        pin: ServerPin,
    ) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let verifier = Arc::new(PinnedServerVerifier::new(self.server_verifier.clone(), pin));
        let mut config = rustls::ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(CertResolver(self.identity.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }

    /// The revoked serials of the CRL in force.
    pub fn revocations(&self) -> Arc<Revocations> {
        self.revocations.clone()
    }

    /// Replaces the CRL in every verifier this context built; new handshakes
    /// use it at once, and open connections of newly revoked peers close. A
    /// CRL numbered below the one in force is ignored (returns `false`): an
    /// old cache file must not undo a revocation.
    pub fn set_crl(&self, crl_der: Vec<u8>) -> Result<bool, TlsError> {
        self.set_crls(vec![crl_der])
    }

    /// [`Self::set_crl`] for the CRLs of one CRL number, one per root (the
    /// Ed25519 root's and the ECDSA TLS root's).
    pub fn set_crls(&self, crl_ders: Vec<Vec<u8>>) -> Result<bool, TlsError> {
        let (number, serials) = crls_serials(&crl_ders)
            .filter(|_| !crl_ders.is_empty())
            .ok_or_else(|| TlsError::Verifier("the CRL is not a DER X.509 CRL".into()))?;
        if !self.revocations.accepts(number) {
            tracing::info!(
                offered = ?number,
                in_force = ?self.revocations.crl_number(),
                "ignored a CRL older than the one in force"
            );
            return Ok(false);
        }
        let crls: Vec<CertificateRevocationListDer<'static>> =
            crl_ders.into_iter().map(Into::into).collect();
        // Build every verifier first, so a bad CRL changes nothing.
        self.server_verifier.set_crls(&crls)?;
        for v in self
            .client_verifiers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            v.set_crls(&crls)?;
        }
        self.crls.store(Arc::new(crls));
        self.revocations.install(number, serials);
        Ok(true)
    }

    /// Re-reads certificate, key and CRL if their files changed; returns whether anything did.
    /// A broken new file is reported and the old material stays in use.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let now = Self::stamps(&self.config);
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        if *stamps == now {
            return Ok(false);
        }
        if stamps[0] != now[0] || stamps[1] != now[1] || stamps[3..] != now[3..] {
            let identity = Self::load_identity(&self.config, &self.provider)?;
            tracing::info!(cert_id = %identity.peer.cert_id, not_after = identity.peer.not_after, "reloaded TLS certificate");
            self.identity.store(Arc::new(identity));
            self.warn_if_expiring();
        }
        if stamps[2] != now[2]
            && let Some(p) = &self.config.crl_file
        {
            self.set_crls(parse_crls(p, read(p)?)?)?;
            tracing::info!(path = %p.display(), "reloaded CRL");
        }
        *stamps = now;
        Ok(true)
    }

    /// Polls the files every `reload_interval_secs` on the current tokio runtime.
    pub fn spawn_reloader(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let ctx = self.clone();
        let every = Duration::from_secs(self.config.reload_interval_secs.max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Err(e) = ctx.reload() {
                    tracing::warn!(error = %e, "TLS reload failed; keeping the current certificate");
                }
            }
        })
    }

    /// Seconds until this process's certificate expires (negative once
    /// expired): the sooner of its two when it also has an ECDSA one.
    pub fn seconds_to_expiry(&self) -> i64 {
        self.expiries()
            .iter()
            .map(|(_, left)| *left)
            .min()
            .unwrap_or(0)
    }

    /// Seconds left on each of this process's certificates, by key type
    /// (`ed25519`, then `ecdsa_p256` if there is one).
    pub fn expiries(&self) -> Vec<(&'static str, i64)> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let id = self.identity.load();
        let mut out = vec![(id.peer.public_key.algorithm(), id.peer.not_after - now)];
        if let Some((_, ecdsa)) = &id.ecdsa {
            out.push((ecdsa.public_key.algorithm(), ecdsa.not_after - now));
        }
        out
    }

    fn warn_if_expiring(&self) {
        let left = self.seconds_to_expiry();
        let window = i64::from(self.config.renewal_window_days) * 86_400;
        if left < window {
            let id = self.identity();
            tracing::warn!(
                member = %id.member,
                role = role_name(id.role),
                days_left = left / 86_400,
                "certificate is inside its renewal window: run `fiscus renew --tls-dir <its directory>`"
            );
        }
    }

    /// Registers `fiscus_certificate_expiry_seconds{member,role}`, computed at scrape time.
    pub fn register_expiry_metric(
        self: &Arc<Self>,
        registry: &prometheus::Registry,
    ) -> Result<(), prometheus::Error> {
        registry.register(Box::new(ExpiryCollector::new(self.clone())?))
    }
}

/// A collector that reads the expiry from the live certificates at every
/// scrape, so a rotated certificate is reported without any update call: one
/// series per certificate, labelled by its key type (`key="ed25519"` or
/// `key="ecdsa_p256"`).
struct ExpiryCollector {
    ctx: Arc<TlsContext>,
    desc: prometheus::core::Desc,
}

const EXPIRY_METRIC: &str = "fiscus_certificate_expiry_seconds";
const EXPIRY_HELP: &str = "Seconds until this process's TLS certificate expires";

impl ExpiryCollector {
    fn new(ctx: Arc<TlsContext>) -> Result<Self, prometheus::Error> {
        let desc = prometheus::core::Desc::new(
            EXPIRY_METRIC.into(),
            EXPIRY_HELP.into(),
            vec!["member".into(), "role".into(), "key".into()],
            Default::default(),
        )?;
        Ok(Self { ctx, desc })
    }
}

impl prometheus::core::Collector for ExpiryCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let id = self.ctx.identity();
        let opts = prometheus::Opts::new(EXPIRY_METRIC, EXPIRY_HELP)
            .const_label("member", id.member)
            .const_label("role", role_name(id.role));
        let Ok(gauges) = prometheus::GaugeVec::new(opts, &["key"]) else {
            return Vec::new();
        };
        for (key, left) in self.ctx.expiries() {
            gauges.with_label_values(&[key]).set(left as f64);
        }
        prometheus::core::Collector::collect(&gauges)
    }
}

/// A gRPC endpoint over mutual TLS, as service configs name one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// `host:port`.
    pub addr: String,
    /// The name its certificate carries (SAN).
    pub server_name: String,
}
