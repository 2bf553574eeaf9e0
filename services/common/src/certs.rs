//! Who may sign: orderer and member certificates known to this ledger, with
//! the height from which a revoked one is refused.

use crate::tls::PeerIdentity;
use fiscus_proto::hash::Hash32;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertStatus {
    Valid { org: String, public_key: [u8; 32] },
    Unknown,
    Revoked,
}

/// Whom the chain's configuration (`gov/config`) revokes, from which height:
/// the certificates on its CRL and every certificate of an org that left by
/// governance. The one rule the ledger applies when it validates a block and
/// the exchange-adapter applies before it orders anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainRevocations {
    certs: BTreeMap<Hash32, u64>,
    orgs: BTreeMap<String, u64>,
}

impl ChainRevocations {
    pub fn from_config(config: &fiscus_proto::pb::types::ConsortiumConfig) -> Self {
        Self {
            certs: config
                .crl
                .iter()
                .flat_map(|c| &c.revoked)
                .filter_map(|r| {
                    Hash32::from_slice("cert id", &r.cert_id)
                        .ok()
                        .map(|id| (id, r.effective_height))
                })
                .collect(),
            orgs: config
                .revoked_orgs
                .iter()
                .map(|r| (r.org_code.clone(), r.effective_height))
                .collect(),
        }
    }

    /// Whether certificate `cert` of `org` is revoked in a block at `height`.
    pub fn revoked(&self, cert: &Hash32, org: &str, height: u64) -> bool {
        self.certs.get(cert).is_some_and(|h| height >= *h)
            || self.orgs.get(org).is_some_and(|h| height >= *h)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Certs {
    /// cert id → (member org, Ed25519 key, revoked from this height on)
    by_id: BTreeMap<Hash32, (String, [u8; 32], Option<u64>)>,
}

impl Certs {
    /// Adds a certificate already verified against the consortium root. An
    /// ECDSA certificate (TLS only) is not a signer and is not added.
    pub fn insert(&mut self, id: &PeerIdentity) {
        if let Some(key) = id.public_key.ed25519() {
            self.insert_key(id.cert_id, &id.member, key);
        }
    }

    pub fn insert_key(&mut self, cert_id: Hash32, org: &str, public_key: [u8; 32]) {
        self.by_id
            .insert(cert_id, (org.to_owned(), public_key, None));
    }

    /// Refuses signatures by `cert` in blocks from `height` on.
    pub fn revoke_from(&mut self, cert: &Hash32, height: u64) {
        if let Some(e) = self.by_id.get_mut(cert) {
            e.2 = Some(height);
        }
    }

    /// The certificate's Ed25519 key, whatever its status.
    pub fn public_key(&self, cert: &Hash32) -> Option<[u8; 32]> {
        self.by_id.get(cert).map(|(_, pk, _)| *pk)
    }

    /// The certificate's Ed25519 key, borrowed, whatever its status.
    pub fn key_bytes(&self, cert: &Hash32) -> Option<&[u8; 32]> {
        self.by_id.get(cert).map(|(_, pk, _)| pk)
    }

    /// The certificate's status for a transaction in block `height`.
    pub fn status(&self, cert: &Hash32, height: u64) -> CertStatus {
        match self.by_id.get(cert) {
            None => CertStatus::Unknown,
            Some((_, _, Some(from))) if height >= *from => CertStatus::Revoked,
            Some((org, pk, _)) => CertStatus::Valid {
                org: org.clone(),
                public_key: *pk,
            },
        }
    }
}

const ED25519_OID: &str = "1.3.101.112";

/// Why a signer directory could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// The consortium roots a signer's certificate must chain to: each root's
/// subject and Ed25519 key. Consortium certificates are Ed25519 throughout.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    roots: Vec<(Vec<u8>, [u8; 32])>,
}

impl Roots {
    /// The roots among `root_ders` that parse (others are skipped).
    pub fn from_ders(root_ders: &[Vec<u8>]) -> Self {
        use x509_parser::prelude::FromDer;
        Self {
            roots: root_ders
                .iter()
                .filter_map(|d| x509_parser::certificate::X509Certificate::from_der(d).ok())
                .filter_map(|(_, c)| {
                    let key: [u8; 32] = c
                        .public_key()
                        .subject_public_key
                        .data
                        .as_ref()
                        .try_into()
                        .ok()?;
                    Some((c.subject().as_raw().to_vec(), key))
                })
                .collect(),
        }
    }

    /// Whether one of the roots signed `cert` (Ed25519).
    fn signed(&self, cert: &x509_parser::certificate::X509Certificate<'_>) -> bool {
        cert.signature_algorithm.algorithm.to_id_string() == ED25519_OID
            && self.roots.iter().any(|(subject, key)| {
                cert.issuer().as_raw() == subject.as_slice()
                    && fiscus_proto::sign::verify(
                        key,
                        cert.tbs_certificate.as_ref(),
                        &cert.signature_value.data,
                    )
                    .is_ok()
            })
    }

    /// The identity in `der` when a root signed it and it is inside the
    /// profile. The one rule for a signer's certificate, whether it was on
    /// file (`Certs::load_dir`) or carried by a signature
    /// (`Signature.certificate`, see [`Certs::status_carried`]). No clock is
    /// read: whether a signer may sign at a height is the chain's business.
    pub fn identity(&self, der: &[u8]) -> Option<PeerIdentity> {
        use x509_parser::prelude::FromDer;
        let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
        if !self.signed(&parsed) {
            return None;
        }
        PeerIdentity::from_der(der).ok()
    }

    /// The identity in `der`, a certificate a signature by `cert_id`
    /// carries: its id (SHA-256) must be `cert_id` and [`Roots::identity`]
    /// must accept it. Empty `der` (nothing carried) is `None`.
    pub fn carried(&self, cert_id: &Hash32, der: &[u8]) -> Option<PeerIdentity> {
        if der.is_empty() {
            return None;
        }
        self.identity(der).filter(|id| id.cert_id == *cert_id)
    }
}

impl Certs {
    /// Every `*.pem` certificate in `dir` whose signature verifies under one
    /// of `root_ders`. No clock is read: whether a signer may sign at a height
    /// is the chain's business (CRL and departed orgs in `gov/config`), so
    /// every member decides it the same way whenever it loads the directory.
    pub fn load_dir(dir: &std::path::Path, root_ders: &[Vec<u8>]) -> Result<Self, LoadError> {
        let io = |p: &std::path::Path| {
            let path = p.display().to_string();
            move |source| LoadError::Io { path, source }
        };
        let roots = Roots::from_ders(root_ders);
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .collect();
        paths.sort();
        let mut certs = Self::default();
        for path in paths {
            let pem = std::fs::read(&path).map_err(io(&path))?;
            let chain = crate::tls::parse_certs(&path, &pem)?;
            let Some(leaf) = chain.first() else { continue };
            match roots.identity(leaf) {
                Some(id) => certs.insert(&id),
                None => tracing::warn!(
                    file = %path.display(),
                    "skipping a file that is not a certificate a consortium root signed, inside the profile"
                ),
            }
        }
        Ok(certs)
    }

    /// The status of a signature's certificate at `height`: the one on file
    /// under `cert_id`, or else the one the signature carries (`carried`, the
    /// DER whose SHA-256 the decoder checked is `cert_id`) when a root signed
    /// it. Revocations on file apply to both; the chain's own (CRL, orgs that
    /// left) are the caller's.
    pub fn status_carried(
        &self,
        cert_id: &Hash32,
        carried: &[u8],
        height: u64,
        roots: &Roots,
    ) -> CertStatus {
        match self.status(cert_id, height) {
            CertStatus::Unknown if !carried.is_empty() => {
                match roots.carried(cert_id, carried).and_then(|id| {
                    let key = id.public_key.ed25519()?;
                    Some((id.member, key))
                }) {
                    Some((org, public_key)) => CertStatus::Valid { org, public_key },
                    None => CertStatus::Unknown,
                }
            }
            s => s,
        }
    }

    /// (cert id, org, public key) in cert id order.
    pub fn iter(&self) -> impl Iterator<Item = (&Hash32, &str, &[u8; 32])> {
        self.by_id
            .iter()
            .map(|(id, (org, pk, _))| (id, org.as_str(), pk))
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}
