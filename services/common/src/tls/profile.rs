//! The Fiscus certificate profile, read back from a DER certificate.
//!
//! | field | content |
//! |---|---|
//! | subject `O` | member code: the six-digit GB/T 2260 code of the finance department (`000000` central, `130000` Hebei, …), or a supervisor code (`99xxxx`) |
//! | subject `OU` | role: `node`, `orderer`, `admin`, `operator`, `auditor` or `client` |
//! | subject `CN` | a human-readable name, e.g. `130000 node hebei-1` |
//! | SAN | every DNS name and IP the holder serves on |
//! | key | Ed25519; ECDSA P-256 for TLS only (see below) |
//!
//! The certificate id is SHA-256 over the DER certificate.
//!
//! Transactions, attestations and every other signed message of the ledger are
//! Ed25519 (ADR 0002), so only an Ed25519 certificate can sign. An ECDSA P-256
//! certificate carries the same profile and serves TLS alone: for clients whose
//! TLS stack has no Ed25519 (browsers, gRPC's C core, Java), a server presents
//! its ECDSA certificate beside its Ed25519 one, and an API client may hold one.

use super::TlsError;
use fiscus_proto::hash::{Hash32, cert_id};
use fiscus_proto::pb::types::Role;
use x509_parser::prelude::*;

/// What a certificate says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    pub cert_id: Hash32,
    pub member: String,
    pub role: Role,
    pub common_name: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// Big-endian serial number bytes.
    pub serial: Vec<u8>,
    pub dns_names: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
    /// The subject public key.
    pub public_key: PublicKey,
}

/// A certificate's subject public key: the two kinds the profile allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// The raw 32-byte Ed25519 key: signs transactions and TLS handshakes.
    Ed25519([u8; 32]),
    /// The SEC 1 uncompressed P-256 point (65 bytes): TLS handshakes only.
    EcdsaP256(Vec<u8>),
}

impl PublicKey {
    /// The Ed25519 key, if this is one: the only kind that signs ledger messages.
    pub fn ed25519(&self) -> Option<[u8; 32]> {
        match self {
            Self::Ed25519(k) => Some(*k),
            Self::EcdsaP256(_) => None,
        }
    }

    /// `ed25519` or `ecdsa_p256`, as logs, metrics and errors name the key type.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "ed25519",
            Self::EcdsaP256(_) => "ecdsa_p256",
        }
    }
}

/// The profile's lowercase role names.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Node => "node",
        Role::Orderer => "orderer",
        Role::Admin => "admin",
        Role::Operator => "operator",
        Role::Auditor => "auditor",
        Role::Client => "client",
        Role::Unspecified => "unspecified",
    }
}

/// Parses a profile role name.
pub fn parse_role(name: &str) -> Option<Role> {
    Some(match name {
        "node" => Role::Node,
        "orderer" => Role::Orderer,
        "admin" => Role::Admin,
        "operator" => Role::Operator,
        "auditor" => Role::Auditor,
        "client" => Role::Client,
        _ => return None,
    })
}

/// A member code is exactly six ASCII digits.
pub fn is_member_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// OID of Ed25519 public keys (RFC 8410).
pub const ED25519_OID: &str = "1.3.101.112";
/// OID of elliptic-curve public keys (`id-ecPublicKey`, RFC 5480).
pub const EC_PUBLIC_KEY_OID: &str = "1.2.840.10045.2.1";
/// OID of the P-256 curve (`secp256r1`, `prime256v1`).
pub const P256_OID: &str = "1.2.840.10045.3.1.7";

/// The profile's key check on a SubjectPublicKeyInfo: Ed25519 (32 bytes) or
/// ECDSA on P-256 (an uncompressed 65-byte point); anything else is refused.
pub fn profile_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<PublicKey, String> {
    let bytes = spki.subject_public_key.data.as_ref();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        ED25519_OID => bytes
            .try_into()
            .map(PublicKey::Ed25519)
            .map_err(|_| "Ed25519 public key is not 32 bytes".to_owned()),
        EC_PUBLIC_KEY_OID => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if curve.as_deref() != Some(P256_OID) {
                return Err("ECDSA key is not on the P-256 curve".to_owned());
            }
            if bytes.len() != 65 || bytes[0] != 0x04 {
                return Err("ECDSA P-256 key is not an uncompressed point".to_owned());
            }
            Ok(PublicKey::EcdsaP256(bytes.to_vec()))
        }
        other => Err(format!(
            "public key type {other} is neither Ed25519 nor ECDSA P-256"
        )),
    }
}

impl PeerIdentity {
    /// Reads the profile fields; fails if any is missing or malformed.
    pub fn from_der(der: &[u8]) -> Result<Self, TlsError> {
        let bad = |m: &str| TlsError::Profile(m.to_owned());
        let (rest, cert) = X509Certificate::from_der(der)
            .map_err(|e| bad(&format!("not an X.509 certificate: {e}")))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes after the certificate"));
        }
        let subject = cert.subject();
        let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue<'_>>| -> Option<String> {
            it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
        };
        let member = first(&mut subject.iter_organization())
            .ok_or_else(|| bad("subject has no O (member code)"))?;
        if !is_member_code(&member) {
            return Err(bad(&format!("member code {member:?} is not six digits")));
        }
        let role_str = first(&mut subject.iter_organizational_unit())
            .ok_or_else(|| bad("subject has no OU (role)"))?;
        let role =
            parse_role(&role_str).ok_or_else(|| bad(&format!("unknown role {role_str:?}")))?;
        let common_name = first(&mut subject.iter_common_name()).unwrap_or_default();
        let public_key = profile_key(cert.public_key()).map_err(|e| bad(&e))?;
        let mut dns_names = Vec::new();
        let mut ips = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(d) => dns_names.push((*d).to_owned()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => ips.extend(<[u8; 4]>::try_from(*b).ok().map(std::net::IpAddr::from)),
                        16 => ips.extend(<[u8; 16]>::try_from(*b).ok().map(std::net::IpAddr::from)),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        Ok(Self {
            cert_id: cert_id(der),
            member,
            role,
            common_name,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: cert.raw_serial().to_vec(),
            dns_names,
            ips,
            public_key,
        })
    }
}
