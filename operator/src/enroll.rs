//! A member's identities at the identity-ca (its node identity, and the
//! client identity its exchange-adapter signs with): each enrolled once with
//! its one-time secret, renewed over mutual TLS with the identity itself
//! before it expires, and revoked by its holder when the member is deleted.
//! The enrollment secret is passed to the CA and nowhere else: never logged,
//! never stored by the operator.

use fiscus_common::tls::{PeerIdentity, ServerPin, TlsConfig, TlsContext};
use fiscus_proto::pb::identity::{RenewRequest, RevokeRequest};
use fiscus_proto::pb::types::Role;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("identity-ca: {0}")]
    Ca(String),
    #[error("the certificate: {0}")]
    Certificate(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where the CA is and the root it must chain to.
#[derive(Debug, Clone)]
pub struct CaTarget {
    pub endpoint: String,
    pub server_name: String,
    pub root_pem: String,
}

/// An identity (certificate, key, chain, and the ECDSA P-256 certificate and
/// key of a node identity), as its Secret holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub cert_pem: String,
    pub key_pem: String,
    pub ca_pem: String,
    /// `cert-ecdsa.pem` and `key-ecdsa.pem`: served to TLS clients without Ed25519.
    pub ecdsa: Option<(String, String)>,
}

impl std::fmt::Debug for Identity {
    // The private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// Secret data keys.
pub const CERT: &str = "cert.pem";
pub const KEY: &str = "key.pem";
pub const CA: &str = "ca.pem";
pub use fiscus_common::tls::{ECDSA_CERT_FILE as ECDSA_CERT, ECDSA_KEY_FILE as ECDSA_KEY};

impl Identity {
    /// From a Secret's data; None when a key is missing or not UTF-8.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Option<Self> {
        let get = |k: &str| String::from_utf8(data.get(k)?.clone()).ok();
        Some(Self {
            cert_pem: get(CERT)?,
            key_pem: get(KEY)?,
            ca_pem: get(CA)?,
            ecdsa: get(ECDSA_CERT).zip(get(ECDSA_KEY)),
        })
    }

    pub fn to_secret(&self) -> BTreeMap<String, String> {
        let mut data = BTreeMap::from([
            (CERT.to_owned(), self.cert_pem.clone()),
            (KEY.to_owned(), self.key_pem.clone()),
            (CA.to_owned(), self.ca_pem.clone()),
        ]);
        if let Some((cert, key)) = &self.ecdsa {
            data.insert(ECDSA_CERT.to_owned(), cert.clone());
            data.insert(ECDSA_KEY.to_owned(), key.clone());
        }
        data
    }

    /// What the certificate says: member, role, id, validity.
    pub fn peer(&self) -> Result<PeerIdentity, EnrollError> {
        let der = fiscus_common::tls::parse_certs(Path::new(CERT), self.cert_pem.as_bytes())
            .map_err(|e| EnrollError::Certificate(e.to_string()))?;
        let first = der
            .first()
            .ok_or_else(|| EnrollError::Certificate("no certificate in cert.pem".into()))?;
        PeerIdentity::from_der(first).map_err(|e| EnrollError::Certificate(e.to_string()))
    }

    /// Writes the three files to a private temporary directory (the TLS
    /// stack reads identities from files).
    pub fn to_dir(&self) -> Result<tempfile::TempDir, EnrollError> {
        let dir = tempfile::tempdir()?;
        let ecdsa = self
            .ecdsa
            .iter()
            .flat_map(|(c, k)| [(ECDSA_CERT, c), (ECDSA_KEY, k)]);
        for (name, text) in [
            (CERT, &self.cert_pem),
            (KEY, &self.key_pem),
            (CA, &self.ca_pem),
        ]
        .into_iter()
        .chain(ecdsa)
        {
            fiscus_identity_ca::ca::write_file(&dir.path().join(name), text.as_bytes(), 0o600)
                .map_err(|e| EnrollError::Ca(e.to_string()))?;
        }
        Ok(dir)
    }
}

fn to_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Enrolls `code`'s identity in `role` with its one-time `secret` (which
/// must be a secret for that role), for `dns_names`; with its ECDSA P-256
/// certificate if `ecdsa`.
pub async fn enroll(
    ca: &CaTarget,
    code: &str,
    role: Role,
    secret: &str,
    dns_names: &[String],
    ecdsa: bool,
) -> Result<Identity, EnrollError> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root.pem");
    std::fs::write(&root, &ca.root_pem)?;
    let mut client =
        fiscus_identity_ca::client::connect(&ca.endpoint, &ca.server_name, None, &root)
            .await
            .map_err(|e| EnrollError::Ca(e.to_string()))?;
    let out = dir.path().join("node");
    std::fs::create_dir_all(&out)?;
    fiscus_identity_ca::client::enroll(
        &mut client,
        &fiscus_identity_ca::client::EnrollArgs {
            member: code.to_owned(),
            role,
            secret: Some(secret.to_owned()),
            dns_names: dns_names.to_vec(),
            ips: Vec::new(),
            out_dir: out.clone(),
            key_type: fiscus_identity_ca::ca::KeyType::Ed25519,
            ecdsa_certificate: ecdsa,
        },
    )
    .await
    .map_err(|e| EnrollError::Ca(e.to_string()))?;
    let read = |name: &str| std::fs::read_to_string(out.join(name));
    Ok(Identity {
        cert_pem: read(CERT)?,
        key_pem: read(KEY)?,
        ca_pem: read(CA)?,
        ecdsa: if ecdsa {
            Some((read(ECDSA_CERT)?, read(ECDSA_KEY)?))
        } else {
            None
        },
    })
}

async fn connect_as(
    ca: &CaTarget,
    me: &Identity,
) -> Result<
    (
        fiscus_proto::pb::identity::identity_ca_client::IdentityCaClient<tonic::transport::Channel>,
        tempfile::TempDir,
    ),
    EnrollError,
> {
    let dir = me.to_dir()?;
    let config = TlsContext::load(&TlsConfig::in_dir(dir.path()))
        .and_then(|c| c.client_config_pinned(ServerPin::identity_ca()))
        .map_err(|e| EnrollError::Certificate(e.to_string()))?;
    let ch = fiscus_common::tls::connect_channel(&ca.endpoint, &ca.server_name, config)
        .await
        .map_err(|e| EnrollError::Ca(e.to_string()))?;
    Ok((
        fiscus_proto::pb::identity::identity_ca_client::IdentityCaClient::new(ch),
        dir,
    ))
}

/// A new certificate and key for the same identity, asked for by the
/// identity itself over mutual TLS; with a new ECDSA P-256 certificate and
/// key too if `ecdsa` (which also gives an identity enrolled without one its
/// first).
pub async fn renew(ca: &CaTarget, me: &Identity, ecdsa: bool) -> Result<Identity, EnrollError> {
    use fiscus_identity_ca::ca::{KeyType, new_key_and_csr_of};
    let peer = me.peer()?;
    let (mut client, _dir) = connect_as(ca, me).await?;
    let new = |key_type| {
        new_key_and_csr_of(&peer.member, peer.role, key_type)
            .map_err(|e| EnrollError::Ca(e.to_string()))
    };
    let (key, csr) = new(KeyType::Ed25519)?;
    let second = if ecdsa {
        Some(new(KeyType::EcdsaP256)?)
    } else {
        None
    };
    let resp = client
        .renew(RenewRequest {
            csr,
            ecdsa_csr: second.as_ref().map(|(_, c)| c.clone()).unwrap_or_default(),
        })
        .await
        .map_err(|s| EnrollError::Ca(format!("{}: {}", s.code(), s.message())))?
        .into_inner();
    let ecdsa = match second {
        Some((key, _)) if !resp.ecdsa_certificate.is_empty() => {
            Some((to_pem(&resp.ecdsa_certificate), key.serialize_pem()))
        }
        Some(_) => {
            return Err(EnrollError::Ca(
                "the identity-ca issued no ECDSA certificate (an identity-ca older than this operator?)".into(),
            ));
        }
        None => None,
    };
    Ok(Identity {
        cert_pem: to_pem(&resp.certificate),
        key_pem: fiscus_identity_ca::ca::private_key_pem(&key),
        ca_pem: resp.chain.iter().map(|c| to_pem(c)).collect(),
        ecdsa,
    })
}

/// Revokes the identity's own certificate (its holder may).
pub async fn revoke(ca: &CaTarget, me: &Identity, reason: &str) -> Result<(), EnrollError> {
    let peer = me.peer()?;
    let (mut client, _dir) = connect_as(ca, me).await?;
    client
        .revoke(RevokeRequest {
            cert_id: peer.cert_id.to_vec(),
            reason: reason.to_owned(),
        })
        .await
        .map_err(|s| EnrollError::Ca(format!("{}: {}", s.code(), s.message())))?;
    Ok(())
}
