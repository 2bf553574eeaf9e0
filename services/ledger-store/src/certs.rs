//! Who may sign: orderer and member certificates known to this ledger, with
//! the height from which a revoked one is refused.

use fiscus_common::tls::PeerIdentity;
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
    /// Adds a certificate already verified against the consortium root.
    pub fn insert(&mut self, id: &PeerIdentity) {
        self.insert_key(id.cert_id, &id.member, id.public_key);
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
