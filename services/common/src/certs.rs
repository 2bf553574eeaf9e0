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

impl Certs {
    /// Every `*.pem` certificate in `dir` whose signature verifies under one
    /// of `root_ders`. No clock is read: whether a signer may sign at a height
    /// is the chain's business (CRL and departed orgs in `gov/config`), so
    /// every member decides it the same way whenever it loads the directory.
    pub fn load_dir(dir: &std::path::Path, root_ders: &[Vec<u8>]) -> Result<Self, LoadError> {
        use x509_parser::prelude::FromDer;
        let io = |p: &std::path::Path| {
            let path = p.display().to_string();
            move |source| LoadError::Io { path, source }
        };
        let roots: Vec<_> = root_ders
            .iter()
            .filter_map(|d| x509_parser::certificate::X509Certificate::from_der(d).ok())
            .map(|(_, c)| c)
            .collect();
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
            let Ok((_, parsed)) = x509_parser::certificate::X509Certificate::from_der(leaf) else {
                tracing::warn!(file = %path.display(), "skipping a file that is not a certificate");
                continue;
            };
            // Consortium certificates are Ed25519 throughout (root included).
            let signed = parsed.signature_algorithm.algorithm.to_id_string() == ED25519_OID
                && roots.iter().any(|r| {
                    let key: Result<[u8; 32], _> =
                        r.public_key().subject_public_key.data.as_ref().try_into();
                    parsed.issuer() == r.subject()
                        && key.is_ok_and(|k| {
                            fiscus_proto::sign::verify(
                                &k,
                                parsed.tbs_certificate.as_ref(),
                                &parsed.signature_value.data,
                            )
                            .is_ok()
                        })
                });
            if !signed {
                tracing::warn!(file = %path.display(), "skipping a certificate no consortium root signed");
                continue;
            }
            match PeerIdentity::from_der(leaf) {
                Ok(id) => certs.insert(&id),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping a certificate outside the profile")
                }
            }
        }
        Ok(certs)
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
