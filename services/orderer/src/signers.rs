//! The signers whose transactions are admitted: consortium-issued
//! certificates from `signers_dir`, minus those the CRL revokes.

use crate::error::{Error, Result};
use fiscus_common::tls::{ClientVerifier, PeerIdentity};
use fiscus_proto::hash::Hash32;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, RwLock};
use x509_parser::prelude::FromDer;

/// Why a signer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerStatus {
    Unknown,
    Revoked,
    Expired,
}

#[derive(Debug, Default)]
struct Inner {
    by_id: BTreeMap<Hash32, PeerIdentity>,
    revoked_serials: BTreeSet<Vec<u8>>,
    /// Checks a certificate a signature carries, as the files were checked.
    verifier: Option<Arc<ClientVerifier>>,
}

/// Known signers, shared by all Broadcast streams; replaced whole on reload.
#[derive(Debug, Clone, Default)]
pub struct SignerDirectory {
    inner: Arc<RwLock<Arc<Inner>>>,
}

fn revoked_serials(crl: &[u8]) -> Result<BTreeSet<Vec<u8>>> {
    let (_, parsed) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl)
        .map_err(|e| Error::Config(format!("CRL: {e}")))?;
    Ok(parsed
        .iter_revoked_certificates()
        .map(|r| r.raw_serial().to_vec())
        .collect())
}

impl SignerDirectory {
    /// Loads every certificate in `dir` that chains to `roots` (checked with the
    /// same webpki logic as TLS), and the CRL if given.
    pub fn load(
        dir: &Path,
        roots: Arc<rustls::RootCertStore>,
        crl_file: Option<&Path>,
    ) -> Result<Self> {
        let d = Self::default();
        d.reload(dir, roots, crl_file)?;
        Ok(d)
    }

    pub fn reload(
        &self,
        dir: &Path,
        roots: Arc<rustls::RootCertStore>,
        crl_file: Option<&Path>,
    ) -> Result<()> {
        let crl = match crl_file {
            Some(p) if p.exists() => Some(std::fs::read(p).map_err(|e| Error::Io {
                what: p.display().to_string(),
                source: e,
            })?),
            _ => None,
        };
        let crls: Vec<CertificateRevocationListDer<'static>> =
            crl.iter().map(|c| c.clone().into()).collect();
        // Chain and validity only: revocation is answered per transaction from the serial set.
        let verifier = Arc::new(ClientVerifier::new(
            roots,
            &[],
            fiscus_common::tls::provider(),
            false,
            None,
        )?);
        let mut by_id = BTreeMap::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(dir = %dir.display(), "signers_dir does not exist: no transaction will be admitted");
                return self.set(by_id, crl.as_deref(), Some(verifier));
            }
            Err(e) => {
                return Err(Error::Io {
                    what: dir.display().to_string(),
                    source: e,
                });
            }
        };
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
        {
            let pem = std::fs::read(&path).map_err(|e| Error::Io {
                what: path.display().to_string(),
                source: e,
            })?;
            let certs = fiscus_common::tls::parse_certs(&path, &pem)?;
            let leaf = &certs[0];
            if let Err(e) = verifier.verify_client_cert(
                &CertificateDer::from(leaf.as_ref()),
                &[],
                UnixTime::now(),
            ) {
                tracing::warn!(file = %path.display(), error = %e, "skipping signer certificate that does not verify");
                continue;
            }
            match PeerIdentity::from_der(leaf) {
                Ok(id) => {
                    by_id.insert(id.cert_id, id);
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "skipping certificate outside the profile")
                }
            }
        }
        drop(crls);
        self.set(by_id, crl.as_deref(), Some(verifier))
    }

    fn set(
        &self,
        by_id: BTreeMap<Hash32, PeerIdentity>,
        crl: Option<&[u8]>,
        verifier: Option<Arc<ClientVerifier>>,
    ) -> Result<()> {
        let revoked_serials = match crl {
            Some(c) => revoked_serials(c)?,
            None => BTreeSet::new(),
        };
        tracing::info!(
            signers = by_id.len(),
            revoked = revoked_serials.len(),
            "signer directory loaded"
        );
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Inner {
            by_id,
            revoked_serials,
            verifier,
        });
        Ok(())
    }

    /// Adds one certificate (already verified by the caller), e.g. in tests and benches.
    pub fn insert(&self, id: PeerIdentity) {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let mut by_id = guard.by_id.clone();
        by_id.insert(id.cert_id, id);
        *guard = Arc::new(Inner {
            by_id,
            revoked_serials: guard.revoked_serials.clone(),
            verifier: guard.verifier.clone(),
        });
    }

    /// The signer's Ed25519 key, or why it may not sign.
    pub fn lookup(&self, cert_id: &Hash32, now_unix: i64) -> Result<[u8; 32], SignerStatus> {
        self.lookup_carried(cert_id, &[], now_unix)
    }

    /// [`Self::lookup`], or for a signer not on file the certificate the
    /// signature carries (`Signature.certificate`: the decoder checked that
    /// its SHA-256 is `cert_id`), verified like the files (chain to the
    /// roots, validity now) and then remembered. The ledgers decide again
    /// by the chain's own rule (`fiscus_common::certs::Roots`).
    pub fn lookup_carried(
        &self,
        cert_id: &Hash32,
        carried: &[u8],
        now_unix: i64,
    ) -> Result<[u8; 32], SignerStatus> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner()).clone();
        let learned;
        let id = match inner.by_id.get(cert_id) {
            Some(id) => id,
            None if !carried.is_empty() => {
                let verifier = inner.verifier.as_ref().ok_or(SignerStatus::Unknown)?;
                verifier
                    .verify_client_cert(&CertificateDer::from(carried), &[], UnixTime::now())
                    .map_err(|_| SignerStatus::Unknown)?;
                learned = PeerIdentity::from_der(carried).map_err(|_| SignerStatus::Unknown)?;
                if learned.cert_id != *cert_id {
                    return Err(SignerStatus::Unknown);
                }
                self.insert(learned.clone());
                &learned
            }
            None => return Err(SignerStatus::Unknown),
        };
        if inner.revoked_serials.contains(&id.serial) {
            return Err(SignerStatus::Revoked);
        }
        if id.not_after < now_unix {
            return Err(SignerStatus::Expired);
        }
        // An ECDSA certificate serves TLS only; it never signs a transaction.
        id.public_key.ed25519().ok_or(SignerStatus::Unknown)
    }
}
