//! The CA's persistent registry on the embedded `StateStore`: issued
//! certificates, one-time enrollment secrets (stored hashed) and every CRL.

use crate::ca::RevokedEntry;
use crate::error::{Error, Result};
use fiscus_common::store::{StateStore, StoreLimits, WriteBatch, redb::RedbStore};
use fiscus_proto::hash::sha256;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Most certificates one listing returns.
pub const MAX_LIST: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub reason: String,
    pub at: i64,
    pub crl_number: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertRecord {
    pub cert_id: String,
    pub der_hex: String,
    pub member: String,
    pub role: String,
    pub serial_hex: String,
    pub not_before: i64,
    pub not_after: i64,
    pub revoked: Option<Revocation>,
    /// The other certificate of the same identity (its ECDSA P-256 TLS
    /// certificate, or the Ed25519 one it was issued beside): revoking either
    /// revokes both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companion: Option<String>,
}

impl CertRecord {
    /// The record of a certificate just issued, not revoked, with no companion.
    pub fn issued(identity: &fiscus_common::tls::PeerIdentity, der: &[u8]) -> Self {
        Self {
            cert_id: identity.cert_id.to_hex(),
            der_hex: hex::encode(der),
            member: identity.member.clone(),
            role: fiscus_common::tls::role_name(identity.role).to_owned(),
            serial_hex: hex::encode(&identity.serial),
            not_before: identity.not_before,
            not_after: identity.not_after,
            revoked: None,
            companion: None,
        }
    }

    /// The records of one identity's two certificates, each naming the other.
    pub fn pair(mut main: Self, second: Option<Self>) -> Vec<Self> {
        match second {
            None => vec![main],
            Some(mut second) => {
                main.companion = Some(second.cert_id.clone());
                second.companion = Some(main.cert_id.clone());
                vec![main, second]
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    pub member: String,
    pub role: String,
    /// The certificate the secret was spent on.
    pub used_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrlRecord {
    pub number: u64,
    /// Signed by the Ed25519 root.
    pub der_hex: String,
    /// The same CRL signed by the ECDSA P-256 TLS root (absent in records
    /// written before the CA had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecdsa_der_hex: Option<String>,
    /// Ids of the certificates this CRL revokes.
    pub revoked: Vec<String>,
}

impl CrlRecord {
    /// The record of `crl`, number `number`, revoking the certificates `ids`.
    pub fn new(number: u64, crl: &crate::ca::SignedCrl, revoked: Vec<String>) -> Self {
        Self {
            number,
            der_hex: hex::encode(&crl.der),
            ecdsa_der_hex: crl.ecdsa_der.as_ref().map(hex::encode),
            revoked,
        }
    }

    /// The CRL signed by the Ed25519 root, DER.
    pub fn der(&self) -> Result<Vec<u8>> {
        hex::decode(&self.der_hex).map_err(|e| Error::Internal(format!("stored CRL: {e}")))
    }

    /// The CRL signed by the ECDSA P-256 TLS root, DER, if there is one.
    pub fn ecdsa_der(&self) -> Result<Option<Vec<u8>>> {
        self.ecdsa_der_hex
            .as_ref()
            .map(|h| hex::decode(h).map_err(|e| Error::Internal(format!("stored CRL: {e}"))))
            .transpose()
    }

    /// Both DER CRLs, the Ed25519 root's first.
    pub fn ders(&self) -> Result<Vec<Vec<u8>>> {
        Ok(std::iter::once(self.der()?)
            .chain(self.ecdsa_der()?)
            .collect())
    }
}

fn cert_key(cert_id: &str) -> Vec<u8> {
    format!("cert/{cert_id}").into_bytes()
}

fn secret_key(secret: &str) -> Vec<u8> {
    format!("secret/{}", sha256(secret.as_bytes()).to_hex()).into_bytes()
}

fn crl_key(number: u64) -> Vec<u8> {
    format!("crl/{number:020}").into_bytes()
}

const CRL_CURRENT: &[u8] = b"crl/current";

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(e.to_string()))
}

fn dec<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::Internal(format!("corrupt registry record: {e}")))
}

/// A spent-or-not secret, with the version that must still hold when it is consumed.
#[derive(Debug, Clone)]
pub struct SecretLease {
    key: Vec<u8>,
    version: u64,
    pub record: SecretRecord,
}

#[derive(Debug)]
pub struct Registry {
    store: RedbStore,
}

impl Registry {
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Self {
            store: RedbStore::open(path, StoreLimits::default())?,
        })
    }

    /// Registers a one-time enrollment secret for `member`/`role`.
    pub async fn add_secret(&self, secret: &str, member: &str, role: &str) -> Result<()> {
        let rec = SecretRecord {
            member: member.to_owned(),
            role: role.to_owned(),
            used_by: None,
        };
        let key = secret_key(secret);
        self.store
            .commit(
                WriteBatch::new()
                    .put(key.clone(), enc(&rec)?)
                    .expect_version(key, None),
            )
            .await?;
        Ok(())
    }

    /// Looks a secret up; unknown and spent secrets are errors.
    pub async fn lease_secret(&self, secret: &str) -> Result<SecretLease> {
        let key = secret_key(secret);
        let found = self.store.get(&key).await?.ok_or(Error::UnknownSecret)?;
        let record: SecretRecord = dec(&found.value)?;
        if record.used_by.is_some() {
            return Err(Error::SecretReused);
        }
        Ok(SecretLease {
            key,
            version: found.version,
            record,
        })
    }

    /// Stores the certificates of one identity (the first is the main one),
    /// spending `lease` in the same atomic batch: if the secret was spent
    /// meanwhile, nothing is stored.
    pub async fn record_issued(
        &self,
        recs: &[CertRecord],
        lease: Option<SecretLease>,
    ) -> Result<()> {
        let Some(main) = recs.first() else {
            return Ok(());
        };
        let mut batch = WriteBatch::new();
        for rec in recs {
            batch = batch.put(cert_key(&rec.cert_id), enc(rec)?);
        }
        if let Some(mut lease) = lease {
            lease.record.used_by = Some(main.cert_id.clone());
            batch = batch
                .put(lease.key.clone(), enc(&lease.record)?)
                .expect_version(lease.key, Some(lease.version));
        }
        match self.store.commit(batch).await {
            Err(fiscus_common::store::StoreError::Conflict { .. }) => Err(Error::SecretReused),
            other => other.map(|_| ()).map_err(Error::from),
        }
    }

    pub async fn get(&self, cert_id: &str) -> Result<Option<CertRecord>> {
        self.store
            .get(&cert_key(cert_id))
            .await?
            .map(|v| dec(&v.value))
            .transpose()
    }

    /// Certificates, optionally filtered by member and role, in cert-id order.
    pub async fn list(&self, member: Option<&str>, role: Option<&str>) -> Result<Vec<CertRecord>> {
        let rows = self.store.scan_prefix(b"cert/", MAX_LIST).await?;
        let mut out = Vec::new();
        for (_, v) in rows {
            let r: CertRecord = dec(&v.value)?;
            if member.is_none_or(|m| m == r.member) && role.is_none_or(|x| x == r.role) {
                out.push(r);
            }
        }
        Ok(out)
    }

    pub async fn current_crl(&self) -> Result<Option<CrlRecord>> {
        match self.store.get(CRL_CURRENT).await? {
            None => Ok(None),
            Some(v) => {
                let n = u64::from_be_bytes(
                    v.value
                        .as_slice()
                        .try_into()
                        .map_err(|_| Error::Internal("corrupt crl/current".into()))?,
                );
                self.crl(n).await
            }
        }
    }

    /// CRL record `number`.
    pub async fn crl(&self, number: u64) -> Result<Option<CrlRecord>> {
        self.store
            .get(&crl_key(number))
            .await?
            .map(|v| dec(&v.value))
            .transpose()
    }

    /// Every revoked certificate, for the next CRL.
    pub async fn revoked_entries(&self) -> Result<(Vec<RevokedEntry>, Vec<String>)> {
        let mut entries = Vec::new();
        let mut ids = Vec::new();
        for r in self.list(None, None).await? {
            if let Some(rev) = &r.revoked {
                let serial =
                    hex::decode(&r.serial_hex).map_err(|e| Error::Internal(e.to_string()))?;
                entries.push(RevokedEntry {
                    serial,
                    revoked_at: rev.at,
                    reason: rev.reason.clone(),
                });
                ids.push(r.cert_id.clone());
            }
        }
        Ok((entries, ids))
    }

    /// Marks `certs` revoked and stores the new CRL as current, atomically.
    pub async fn commit_revocation(&self, certs: &[CertRecord], crl: &CrlRecord) -> Result<()> {
        let mut batch = WriteBatch::new();
        for cert in certs {
            batch = batch.put(cert_key(&cert.cert_id), enc(cert)?);
        }
        let batch = batch
            .put(crl_key(crl.number), enc(crl)?)
            .put(CRL_CURRENT.to_vec(), crl.number.to_be_bytes().to_vec());
        self.store.commit(batch).await?;
        Ok(())
    }
}

impl Registry {
    /// Stores the first (empty) CRL at `init`.
    /// Stores a re-signed CRL (same entries, the next number) as current.
    pub async fn commit_refreshed_crl(&self, crl: &CrlRecord) -> Result<()> {
        let batch = WriteBatch::new()
            .put(crl_key(crl.number), enc(crl)?)
            .put(CRL_CURRENT.to_vec(), crl.number.to_be_bytes().to_vec());
        self.store.commit(batch).await?;
        Ok(())
    }

    pub async fn commit_initial_crl(&self, crl: &CrlRecord) -> Result<()> {
        let batch = WriteBatch::new()
            .put(crl_key(crl.number), enc(crl)?)
            .put(CRL_CURRENT.to_vec(), crl.number.to_be_bytes().to_vec())
            .expect_version(CRL_CURRENT.to_vec(), None);
        self.store.commit(batch).await?;
        Ok(())
    }
}
