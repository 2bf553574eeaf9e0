//! `Verify`: a certificate chain plus a signature over bytes, checked against
//! the root at a given CRL number, with the same webpki logic TLS uses.

use crate::error::{Error, Result};
use crate::registry::Registry;
use fiscus_common::tls::{ClientVerifier, PeerIdentity};
use rustls::RootCertStore;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How many CRL numbers keep a ready verifier.
const CACHE: usize = 8;

/// The outcome of a verification: either the signer's identity or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(PeerIdentity),
    Invalid(String),
}

#[derive(Debug)]
pub struct ChainVerifier {
    roots: Arc<RootCertStore>,
    cache: Mutex<BTreeMap<u64, Arc<ClientVerifier>>>,
}

impl ChainVerifier {
    /// A verifier trusting `root_ders` (the CA's roots, [`crate::ca::RootCa::trust_ders`]).
    pub fn new(root_ders: &[Vec<u8>]) -> Result<Self> {
        let mut roots = RootCertStore::empty();
        for der in root_ders {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(Self {
            roots: Arc::new(roots),
            cache: Mutex::new(BTreeMap::new()),
        })
    }

    async fn verifier_at(
        &self,
        registry: &Registry,
        crl_number: u64,
    ) -> Result<Arc<ClientVerifier>> {
        let record = if crl_number == 0 {
            registry.current_crl().await?
        } else {
            Some(
                registry
                    .crl(crl_number)
                    .await?
                    .ok_or_else(|| Error::NotFound(format!("CRL number {crl_number}")))?,
            )
        };
        let number = record.as_ref().map_or(0, |r| r.number);
        if let Some(v) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&number)
        {
            return Ok(v.clone());
        }
        let crls: Vec<CertificateRevocationListDer<'static>> = match &record {
            Some(r) => r.ders()?.into_iter().map(Into::into).collect(),
            None => Vec::new(),
        };
        let v = Arc::new(
            ClientVerifier::new(
                self.roots.clone(),
                &crls,
                fiscus_common::tls::provider(),
                false,
                None,
            )
            .map_err(|e| Error::Internal(e.to_string()))?,
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CACHE {
            let oldest = cache.keys().next().copied();
            if let Some(k) = oldest {
                cache.remove(&k);
            }
        }
        cache.insert(number, v.clone());
        Ok(v)
    }

    /// Checks `chain` (leaf first) against the root, its validity now and the
    /// CRL `crl_number` (0: current), then `signature` over `message` with the leaf key.
    pub async fn verify(
        &self,
        registry: &Registry,
        chain: &[Vec<u8>],
        message: &[u8],
        signature: &[u8],
        crl_number: u64,
    ) -> Result<Verdict> {
        let Some((leaf, rest)) = chain.split_first() else {
            return Err(Error::InvalidArgument("chain is empty".into()));
        };
        let verifier = self.verifier_at(registry, crl_number).await?;
        let leaf_der = CertificateDer::from(leaf.as_slice());
        let intermediates: Vec<CertificateDer<'_>> = rest
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        if let Err(e) = verifier.verify_client_cert(&leaf_der, &intermediates, UnixTime::now()) {
            return Ok(Verdict::Invalid(format!("certificate: {e}")));
        }
        let identity = match PeerIdentity::from_der(leaf) {
            Ok(i) => i,
            Err(e) => return Ok(Verdict::Invalid(e.to_string())),
        };
        let Some(key) = identity.public_key.ed25519() else {
            return Ok(Verdict::Invalid(
                "the certificate has an ECDSA P-256 key, for TLS only: signatures are Ed25519"
                    .into(),
            ));
        };
        match fiscus_proto::sign::verify(&key, message, signature) {
            Ok(()) => Ok(Verdict::Valid(identity)),
            Err(e) => Ok(Verdict::Invalid(format!("signature: {e}"))),
        }
    }
}
