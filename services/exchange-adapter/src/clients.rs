//! API clients: who may call, as which org, with which scopes; API keys are
//! stored as SHA-256 hashes; optional custodial signing keys; a token bucket
//! per client.

use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_proto::hash::{Hash32, cert_id, sha256};
use fiscus_proto::sign::SigningKey;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// What a client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Submit,
    Read,
    Import,
    Admin,
    /// Propose and vote on governance changes (`/v1/governance/…`). Not
    /// implied by `submit` or `admin`: a member grants it to the few
    /// systems (or people) that speak for the member in the consortium.
    Govern,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Read => "read",
            Self::Import => "import",
            Self::Admin => "admin",
            Self::Govern => "govern",
        }
    }
}

/// One `[[client]]` entry of the clients file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub name: String,
    /// SHA-256 of the API key, lowercase hex. The key itself is never stored.
    pub key_sha256: String,
    /// The org (GB/T 2260 code) the client acts for.
    pub org: String,
    pub scopes: Vec<Scope>,
    /// Custodial signing (for systems that cannot sign): the client certificate
    /// and PKCS#8 key the member holds for it. Off unless both are set.
    #[serde(default)]
    pub custodial_cert: Option<PathBuf>,
    #[serde(default)]
    pub custodial_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsFile {
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientEntry>,
}

/// A loaded client.
#[derive(Debug)]
pub struct Client {
    pub name: String,
    pub org: String,
    pub scopes: Vec<Scope>,
    pub custodial: Option<Custodial>,
}

#[derive(Debug)]
pub struct Custodial {
    pub key: SigningKey,
    pub cert_id: Hash32,
    /// Its DER certificate: carried by the envelopes it signs when this
    /// member has no file of it among the signers (a member that joined
    /// after genesis), so that the others can check it.
    pub certificate: Vec<u8>,
}

impl Client {
    /// The key the member signs with for this client, when custodial signing is on.
    pub fn custodial(&self) -> Result<&Custodial, ServiceError> {
        self.custodial.as_ref().ok_or_else(|| {
            ServiceError::new(
                ErrorKind::PermissionDenied,
                codes::api::CUSTODIAL_NOT_ENABLED,
                format!(
                    "custodial signing is not enabled for client {:?}; submit signed envelopes to /v1/transactions (or gRPC)",
                    self.name
                ),
            )
        })
    }

    pub fn require(&self, scope: Scope) -> Result<(), ServiceError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ServiceError::new(
                ErrorKind::PermissionDenied,
                codes::api::SCOPE_NOT_GRANTED,
                format!("client {:?} lacks the {:?} scope", self.name, scope.name()),
            ))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

fn file_err(path: &Path, message: impl std::fmt::Display) -> ClientsError {
    ClientsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// The hash an API key is stored and looked up by.
pub fn key_hash(api_key: &str) -> String {
    sha256(api_key.as_bytes()).to_hex()
}

/// A fresh random API key (`fsk_` + 32 hex bytes).
pub fn new_api_key() -> String {
    format!("fsk_{}", hex::encode(rand::random::<[u8; 24]>()))
}

/// Clients by key hash, and their rate buckets.
#[derive(Debug)]
pub struct Clients {
    by_hash: BTreeMap<String, std::sync::Arc<Client>>,
    rate_per_s: f64,
    burst: f64,
    buckets: Mutex<BTreeMap<String, BucketState>>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    at: Instant,
}

impl Clients {
    pub fn load(path: &Path, rate_per_s: u32, burst: u32) -> Result<Self, ClientsError> {
        let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e))?;
        let file: ClientsFile = toml::from_str(&text).map_err(|e| file_err(path, e))?;
        Self::from_entries(&file.clients, rate_per_s, burst).map_err(|m| file_err(path, m))
    }

    pub fn from_entries(
        entries: &[ClientEntry],
        rate_per_s: u32,
        burst: u32,
    ) -> Result<Self, String> {
        let mut by_hash = BTreeMap::new();
        for e in entries {
            let hash = e.key_sha256.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "client {:?}: key_sha256 must be 64 hex digits",
                    e.name
                ));
            }
            if !fiscus_common::tls::is_member_code(&e.org) {
                return Err(format!(
                    "client {:?}: org {:?} is not a six-digit code",
                    e.name, e.org
                ));
            }
            let custodial = match (&e.custodial_cert, &e.custodial_key) {
                (Some(cert), Some(key)) => Some(load_custodial(cert, key)?),
                (None, None) => None,
                _ => {
                    return Err(format!(
                        "client {:?}: custodial signing needs both custodial_cert and custodial_key",
                        e.name
                    ));
                }
            };
            let client = Client {
                name: e.name.clone(),
                org: e.org.clone(),
                scopes: e.scopes.clone(),
                custodial,
            };
            if by_hash.insert(hash, std::sync::Arc::new(client)).is_some() {
                return Err(format!("client {:?}: its key is used twice", e.name));
            }
        }
        Ok(Self {
            by_hash,
            rate_per_s: f64::from(rate_per_s.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(BTreeMap::new()),
        })
    }

    /// The client an API key belongs to.
    pub fn authenticate(
        &self,
        api_key: Option<&str>,
    ) -> Result<std::sync::Arc<Client>, ServiceError> {
        let key = api_key.ok_or_else(|| {
            ServiceError::new(
                ErrorKind::Unauthenticated,
                codes::api::MISSING_API_KEY,
                "send an API key as `Authorization: Bearer <key>` or `X-Api-Key: <key>`",
            )
        })?;
        self.by_hash.get(&key_hash(key)).cloned().ok_or_else(|| {
            ServiceError::new(
                ErrorKind::Unauthenticated,
                codes::api::INVALID_API_KEY,
                "the API key is not known to this member",
            )
        })
    }

    /// Takes one token from the client's bucket.
    pub fn admit(&self, client: &Client) -> Result<(), ServiceError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets.entry(client.name.clone()).or_insert(BucketState {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(b.at).as_secs_f64() * self.rate_per_s;
        b.tokens = (b.tokens + refill).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(ServiceError::new(
                ErrorKind::ResourceExhausted,
                codes::api::RATE_LIMITED,
                format!(
                    "client {:?} is over its rate of {} requests/s; retry shortly",
                    client.name, self.rate_per_s
                ),
            ))
        }
    }
}

fn load_custodial(cert: &Path, key: &Path) -> Result<Custodial, String> {
    let pem = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
    let der = fiscus_common::tls::parse_certs(cert, &pem)
        .map_err(|e| e.to_string())?
        .into_iter()
        .next()
        .ok_or_else(|| format!("{}: no certificate", cert.display()))?;
    let key_pem = std::fs::read_to_string(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let key = SigningKey::from_pkcs8_pem(&key_pem)
        .map_err(|_| format!("{}: not an Ed25519 PKCS#8 key", key.display()))?;
    Ok(Custodial {
        key,
        cert_id: cert_id(&der),
        certificate: der.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, key: &str) -> ClientEntry {
        ClientEntry {
            name: name.into(),
            key_sha256: key_hash(key),
            org: "130000".into(),
            scopes: vec![Scope::Read],
            custodial_cert: None,
            custodial_key: None,
        }
    }

    #[test]
    fn keys_are_looked_up_by_hash_and_scopes_are_enforced() {
        let c = Clients::from_entries(&[entry("a", "fsk_a")], 10, 10).unwrap();
        let a = c.authenticate(Some("fsk_a")).unwrap();
        assert_eq!(a.org, "130000");
        assert_eq!(
            c.authenticate(Some("fsk_b")).unwrap_err().code,
            "api.invalid_api_key"
        );
        assert_eq!(
            c.authenticate(None).unwrap_err().code,
            "api.missing_api_key"
        );
        assert!(a.require(Scope::Read).is_ok());
        assert_eq!(
            a.require(Scope::Submit).unwrap_err().code,
            "api.scope_not_granted"
        );
    }

    #[test]
    fn the_bucket_refuses_past_its_burst() {
        let c = Clients::from_entries(&[entry("a", "fsk_a")], 1, 3).unwrap();
        let a = c.authenticate(Some("fsk_a")).unwrap();
        for _ in 0..3 {
            c.admit(&a).unwrap();
        }
        assert_eq!(c.admit(&a).unwrap_err().code, "api.rate_limited");
    }

    #[test]
    fn a_bad_entry_is_refused_with_its_name() {
        let mut e = entry("broken", "k");
        e.key_sha256 = "xyz".into();
        let err = Clients::from_entries(&[e], 1, 1).unwrap_err();
        assert!(err.contains("broken"), "{err}");
        let mut e = entry("half", "k");
        e.custodial_key = Some("k.pem".into());
        assert!(
            Clients::from_entries(&[e], 1, 1)
                .unwrap_err()
                .contains("both")
        );
    }
}
