//! Client-side helpers used by `fiscus enroll`, `sign`, `verify` and `revoke`.

use crate::ca::{KeyType, new_key_and_csr_of, write_file};
use crate::error::{Error, Result};
use fiscus_common::tls::{
    ServerPin, TlsConfig, TlsContext, anonymous_client_config, connect_channel,
};
use fiscus_proto::pb::identity::{EnrollRequest, identity_ca_client::IdentityCaClient};
use fiscus_proto::pb::types::Role;
use rustls::pki_types::pem::PemObject;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;

/// Connects to the CA: with the identity in `tls_dir` if given, else anonymously
/// (trusting `ca_file`), which only `Enroll` with a secret and `GetCrl` accept.
/// Either way the server must present the identity-ca's own certificate
/// ([`ServerPin::identity_ca`]), not merely one with the dialled name.
pub async fn connect(
    addr: &str,
    server_name: &str,
    tls_dir: Option<&Path>,
    ca_file: &Path,
) -> Result<IdentityCaClient<Channel>> {
    let config = match tls_dir {
        Some(dir) => TlsContext::load(&TlsConfig::in_dir(dir))
            .and_then(|c| c.client_config_pinned(ServerPin::identity_ca()))
            .map_err(|e| {
                Error::InvalidArgument(format!("TLS identity in {}: {e}", dir.display()))
            })?,
        None => anonymous_client_config(ca_file, ServerPin::identity_ca())
            .map_err(|e| Error::InvalidArgument(e.to_string()))?,
    };
    let channel = connect_channel(addr, server_name, config)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(IdentityCaClient::new(channel))
}

/// What to enroll for.
#[derive(Debug, Clone)]
pub struct EnrollArgs {
    pub member: String,
    pub role: Role,
    pub secret: Option<String>,
    pub dns_names: Vec<String>,
    pub ips: Vec<String>,
    pub out_dir: PathBuf,
    /// The main key's type: Ed25519, or ECDSA P-256 for an API client that
    /// only needs TLS ([`crate::ca::RootCa::issue_identity`]).
    pub key_type: KeyType,
    /// Also ask for the identity's ECDSA P-256 TLS certificate, written to
    /// `cert-ecdsa.pem` and `key-ecdsa.pem` (only beside an Ed25519 key).
    pub ecdsa_certificate: bool,
}

/// Generates a key and CSR, enrolls, and writes `cert.pem`, `key.pem` (0600) and `ca.pem` to `out_dir`
/// (and `cert-ecdsa.pem`, `key-ecdsa.pem` when [`EnrollArgs::ecdsa_certificate`] asks for them).
pub async fn enroll(client: &mut IdentityCaClient<Channel>, args: &EnrollArgs) -> Result<PathBuf> {
    let (key, csr) = new_key_and_csr_of(&args.member, args.role, args.key_type)?;
    let ecdsa = if args.ecdsa_certificate && args.key_type == KeyType::Ed25519 {
        Some(new_key_and_csr_of(
            &args.member,
            args.role,
            KeyType::EcdsaP256,
        )?)
    } else {
        None
    };
    let resp = client
        .enroll(EnrollRequest {
            csr,
            ecdsa_csr: ecdsa.as_ref().map(|(_, c)| c.clone()).unwrap_or_default(),
            enrollment_secret: args.secret.clone().unwrap_or_default(),
            org_code: args.member.clone(),
            role: args.role as i32,
            dns_names: args.dns_names.clone(),
            ip_addresses: args.ips.clone(),
        })
        .await
        .map_err(|s| Error::from_status(&s))?
        .into_inner();
    let dir = &args.out_dir;
    write_key_and_cert(
        dir,
        ("key.pem", &crate::ca::private_key_pem(&key)),
        ("cert.pem", &resp.certificate),
    )?;
    let chain: String = resp.chain.iter().map(|c| cert_pem(c)).collect();
    write_file(&dir.join("ca.pem"), chain.as_bytes(), 0o644)?;
    if let Some((ecdsa_key, _)) = ecdsa
        && !resp.ecdsa_certificate.is_empty()
    {
        use fiscus_common::tls::{ECDSA_CERT_FILE, ECDSA_KEY_FILE};
        write_key_and_cert(
            dir,
            (ECDSA_KEY_FILE, &ecdsa_key.serialize_pem()),
            (ECDSA_CERT_FILE, &resp.ecdsa_certificate),
        )?;
    }
    Ok(dir.join("cert.pem"))
}

/// A DER certificate as PEM.
fn cert_pem(der: &[u8]) -> String {
    pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec()))
}

/// Writes a private key (0600) and then its certificate (0644) in `dir`,
/// each replaced atomically: a reader that sees the new certificate finds
/// its key already there.
fn write_key_and_cert(
    dir: &Path,
    (key_file, key_pem): (&str, &str),
    (cert_file, cert_der): (&str, &[u8]),
) -> Result<()> {
    write_file(&dir.join(key_file), key_pem.as_bytes(), 0o600)?;
    write_file(&dir.join(cert_file), cert_pem(cert_der).as_bytes(), 0o644)
}

/// Renews the identity in `dir` over mutual TLS as that identity: new keys,
/// new certificates with the same subject and names, written over the old
/// files (each replaced atomically; running services pick them up on their
/// next reload). The ECDSA P-256 pair is renewed too when `dir` has one, or
/// added when `add_ecdsa`. `client` must be connected with `dir`'s identity.
pub async fn renew(
    client: &mut IdentityCaClient<Channel>,
    dir: &Path,
    add_ecdsa: bool,
) -> Result<PathBuf> {
    use fiscus_common::tls::{ECDSA_CERT_FILE, ECDSA_KEY_FILE, PeerIdentity};
    let current = read_pem_certs(&dir.join("cert.pem"))?;
    let me = PeerIdentity::from_der(&current[0])
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", dir.display())))?;
    let (key, csr) = new_key_and_csr_of(&me.member, me.role, KeyType::Ed25519)?;
    let ecdsa = if add_ecdsa || dir.join(ECDSA_CERT_FILE).exists() {
        Some(new_key_and_csr_of(&me.member, me.role, KeyType::EcdsaP256)?)
    } else {
        None
    };
    let resp = client
        .renew(fiscus_proto::pb::identity::RenewRequest {
            csr,
            ecdsa_csr: ecdsa.as_ref().map(|(_, c)| c.clone()).unwrap_or_default(),
        })
        .await
        .map_err(|s| Error::from_status(&s))?
        .into_inner();
    // The ECDSA pair first, then the main one, each key before its certificate.
    if let Some((ecdsa_key, _)) = ecdsa {
        if resp.ecdsa_certificate.is_empty() {
            return Err(Error::Internal(
                "the identity-ca issued no ECDSA certificate".into(),
            ));
        }
        write_key_and_cert(
            dir,
            (ECDSA_KEY_FILE, &ecdsa_key.serialize_pem()),
            (ECDSA_CERT_FILE, &resp.ecdsa_certificate),
        )?;
    }
    write_key_and_cert(
        dir,
        ("key.pem", &crate::ca::private_key_pem(&key)),
        ("cert.pem", &resp.certificate),
    )?;
    Ok(dir.join("cert.pem"))
}

/// Signs `message` with the Ed25519 PKCS#8 PEM key in `key_file`.
pub fn sign_with_key_file(key_file: &Path, message: &[u8]) -> Result<Vec<u8>> {
    use rcgen::SigningKey;
    let pem = std::fs::read_to_string(key_file).map_err(|e| Error::io(key_file, e))?;
    let key = rcgen::KeyPair::from_pem(&pem)?;
    if key.algorithm() != &rcgen::PKCS_ED25519 {
        return Err(Error::KeyType(format!(
            "{} is not an Ed25519 key: ledger messages are signed with Ed25519 only",
            key_file.display()
        )));
    }
    Ok(key.sign(message)?)
}

/// Reads the DER certificates in a PEM file.
pub fn read_pem_certs(path: &Path) -> Result<Vec<Vec<u8>>> {
    let pem = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let certs: Vec<Vec<u8>> = rustls::pki_types::CertificateDer::pem_slice_iter(&pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{} holds no certificate",
            path.display()
        )));
    }
    Ok(certs)
}
