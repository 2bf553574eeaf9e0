//! The consortium root CA: key and certificate on disk, issuing leaf
//! certificates in the Fiscus profile, and signing X.509 CRLs.

use crate::error::{Error, Result};
use fiscus_common::tls::{PeerIdentity, PublicKey, profile_key, role_name};
use fiscus_proto::pb::types::Role;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams,
    CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
    RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

/// Where the CA keeps its files inside its data directory.
#[derive(Debug, Clone)]
pub struct CaPaths {
    pub dir: PathBuf,
}

impl CaPaths {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn root_cert(&self) -> PathBuf {
        self.dir.join("ca/root.pem")
    }
    pub fn root_key(&self) -> PathBuf {
        self.dir.join("ca/root.key.pem")
    }
    pub fn genesis_json(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }
    pub fn consortium_config(&self) -> PathBuf {
        self.dir.join("consortium-config.pb")
    }
    pub fn secrets(&self) -> PathBuf {
        self.dir.join("enrollment-secrets.json")
    }
    pub fn registry(&self) -> PathBuf {
        self.dir.join("registry.redb")
    }
    /// The ECDSA P-256 TLS root: it issues every ECDSA P-256 certificate, so
    /// that clients whose verifiers have no Ed25519 (browsers) can build a chain.
    pub fn tls_root_cert(&self) -> PathBuf {
        self.dir.join("ca/root-ecdsa.pem")
    }
    pub fn tls_root_key(&self) -> PathBuf {
        self.dir.join("ca/root-ecdsa.key.pem")
    }
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.der")
    }
    /// The same revocations as [`CaPaths::crl`], signed by the ECDSA TLS root,
    /// for relying parties that check the ECDSA certificates.
    pub fn crl_ecdsa(&self) -> PathBuf {
        self.dir.join(ECDSA_CRL_FILE)
    }
    /// The CA's own serving certificate, key and the root, for its gRPC endpoint.
    pub fn tls_dir(&self) -> PathBuf {
        self.dir.join("tls")
    }
}

/// Writes `data` to `path` atomically (temp file, fsync, rename), with `mode` permissions.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    f.write_all(data).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    // The rename must survive a crash too.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// What to put in a leaf certificate.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    pub member: String,
    pub role: Role,
    pub common_name: String,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// Adds subject alternative names: each that parses as an IP address is
    /// an IP SAN, any other a DNS name.
    pub fn add_names<S: AsRef<str>>(&mut self, names: &[S]) {
        for n in names {
            match n.as_ref().parse() {
                Ok(ip) => self.ips.push(ip),
                Err(_) => self.dns_names.push(n.as_ref().to_owned()),
            }
        }
    }

    /// Valid from one minute ago (clock skew) for `days`.
    pub fn valid_for_days(member: &str, role: Role, days: u32) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            member: member.to_owned(),
            role,
            common_name: format!("{member} {}", role_name(role)),
            dns_names: Vec::new(),
            ips: Vec::new(),
            not_before: now - Duration::minutes(1),
            not_after: now + Duration::days(i64::from(days)),
        }
    }

    fn params(&self) -> Result<CertificateParams> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, self.member.as_str());
        dn.push(DnType::OrganizationalUnitName, role_name(self.role));
        dn.push(DnType::CommonName, self.common_name.as_str());
        p.distinguished_name = dn;
        for name in &self.dns_names {
            let ia5 = name
                .as_str()
                .try_into()
                .map_err(|_| Error::InvalidArgument(format!("DNS name {name:?} is not valid")))?;
            p.subject_alt_names.push(SanType::DnsName(ia5));
        }
        p.subject_alt_names
            .extend(self.ips.iter().copied().map(SanType::IpAddress));
        p.not_before = self.not_before;
        p.not_after = self.not_after;
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        p.serial_number = Some(random_serial());
        p.use_authority_key_identifier_extension = true;
        Ok(p)
    }
}

/// 128 random bits behind a 0x01 byte: a positive 17-byte integer that DER
/// never shortens (RFC 5280 allows up to 20 bytes).
fn random_serial() -> SerialNumber {
    let random: [u8; 16] = rand::random();
    let mut b = [0u8; 17];
    b[0] = 0x01;
    b[1..].copy_from_slice(&random);
    SerialNumber::from_slice(&b)
}

/// The DER prefix of an Ed25519 PKCS#8 v1 key (RFC 8410), before the 32-byte seed.
const ED25519_PKCS8_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A private key as PEM that every common tool reads: Ed25519 keys as
/// PKCS#8 v1 (RFC 8410, no public key; OpenSSL 3.0 cannot read the v2 form
/// that ring writes), other keys as they are.
pub fn private_key_pem(key: &KeyPair) -> String {
    let der = key.serialize_der();
    // v2 from ring: 30 53 02 01 01 30 05 06 03 2b 65 70 04 22 04 20 <seed> a1 23 …
    let seed = der
        .windows(4)
        .position(|w| w == [0x04, 0x22, 0x04, 0x20])
        .and_then(|i| der.get(i + 4..i + 36));
    match seed {
        Some(seed) if der.get(9..12) == Some(&[0x2b, 0x65, 0x70]) => {
            let mut v1 = ED25519_PKCS8_V1_PREFIX.to_vec();
            v1.extend_from_slice(seed);
            pem::encode(&pem::Pem::new("PRIVATE KEY", v1))
        }
        _ => key.serialize_pem(),
    }
}

/// A newly issued certificate.
#[derive(Debug, Clone)]
pub struct Issued {
    pub der: Vec<u8>,
    pub pem: String,
    pub identity: PeerIdentity,
}

/// An identity whose keys were made beside the CA: its Ed25519 certificate
/// and key, and its ECDSA P-256 TLS certificate and key.
pub struct NewIdentity {
    pub main: Issued,
    pub key: KeyPair,
    pub ecdsa: Issued,
    pub ecdsa_key: KeyPair,
}

impl std::fmt::Debug for NewIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewIdentity")
            .field("main", &self.main.identity.cert_id)
            .field("ecdsa", &self.ecdsa.identity.cert_id)
            .finish_non_exhaustive()
    }
}

impl NewIdentity {
    /// Writes the layout `fiscus enroll` writes ([`fiscus_common::tls::TlsConfig::in_dir`]):
    /// `cert.pem`, `key.pem` (0600), `ca.pem` (every root of `ca`, [`RootCa::trust_pem`]),
    /// `cert-ecdsa.pem`, `key-ecdsa.pem` (0600).
    pub fn write_to(&self, dir: &Path, ca: &RootCa) -> Result<()> {
        use fiscus_common::tls::{ECDSA_CERT_FILE, ECDSA_KEY_FILE};
        write_file(&dir.join("cert.pem"), self.main.pem.as_bytes(), 0o644)?;
        write_file(
            &dir.join("key.pem"),
            private_key_pem(&self.key).as_bytes(),
            0o600,
        )?;
        write_file(&dir.join("ca.pem"), ca.trust_pem().as_bytes(), 0o644)?;
        write_file(&dir.join(ECDSA_CERT_FILE), self.ecdsa.pem.as_bytes(), 0o644)?;
        write_file(
            &dir.join(ECDSA_KEY_FILE),
            self.ecdsa_key.serialize_pem().as_bytes(),
            0o600,
        )
    }

    /// The CA registry's records of both certificates, linked.
    pub fn records(&self) -> Vec<crate::registry::CertRecord> {
        use crate::registry::CertRecord;
        CertRecord::pair(
            CertRecord::issued(&self.main.identity, &self.main.der),
            Some(CertRecord::issued(&self.ecdsa.identity, &self.ecdsa.der)),
        )
    }
}

/// One entry of a CRL.
#[derive(Debug, Clone)]
pub struct RevokedEntry {
    pub serial: Vec<u8>,
    pub revoked_at: i64,
    /// The revocation's free-text reason; its RFC 5280 reason code, when it
    /// starts with one, goes into the CRL entry ([`reason_code`]).
    pub reason: String,
}

/// The RFC 5280 (sect. 5.3.1) reason code a revocation reason names by its
/// first word, e.g. "keyCompromise: laptop stolen"; `unspecified` otherwise.
pub fn reason_code(reason: &str) -> RevocationReason {
    let word = reason
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match word.as_str() {
        "keycompromise" => RevocationReason::KeyCompromise,
        "cacompromise" => RevocationReason::CaCompromise,
        "affiliationchanged" => RevocationReason::AffiliationChanged,
        "superseded" => RevocationReason::Superseded,
        "cessationofoperation" => RevocationReason::CessationOfOperation,
        "privilegewithdrawn" => RevocationReason::PrivilegeWithdrawn,
        _ => RevocationReason::Unspecified,
    }
}

/// How long a CRL is valid (`nextUpdate - thisUpdate`) unless configured.
/// The CA re-signs it when half of that has passed, revocation or not.
pub const DEFAULT_CRL_VALIDITY: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// The `nextUpdate` of a DER CRL, as Unix seconds.
pub fn crl_next_update(der: &[u8]) -> Option<i64> {
    use x509_parser::prelude::FromDer;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(der).ok()?;
    crl.next_update().map(|t| t.timestamp())
}

/// One root: its issuer (key and certificate) and the certificate as DER and PEM.
struct Root {
    issuer: Issuer<'static, KeyPair>,
    der: Vec<u8>,
    pem: String,
}

impl Root {
    /// A new self-signed root with `key`, valid until `not_after`, written to
    /// `cert_path` and `key_path` (0600).
    fn create(
        key: KeyPair,
        common_name: String,
        not_after: OffsetDateTime,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<()> {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "000000");
        dn.push(DnType::CommonName, common_name);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.not_before = OffsetDateTime::now_utc() - Duration::minutes(1);
        p.not_after = not_after;
        p.serial_number = Some(random_serial());
        p.key_identifier_method = KeyIdMethod::Sha256;
        let cert = p.self_signed(&key)?;
        write_file(key_path, private_key_pem(&key).as_bytes(), 0o600)?;
        write_file(cert_path, cert.pem().as_bytes(), 0o644)
    }

    fn load(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let missing = |p: &Path, e: &dyn std::fmt::Display| Error::NotInitialized {
            path: p.display().to_string(),
            message: format!("{e}; run `fiscus identity-ca init` first"),
        };
        let key_pem = std::fs::read_to_string(key_path).map_err(|e| missing(key_path, &e))?;
        let pem = std::fs::read_to_string(cert_path).map_err(|e| missing(cert_path, &e))?;
        let key = KeyPair::from_pem(&key_pem)?;
        let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
            .map(|c: CertificateDer<'static>| c.to_vec())
            .map_err(|e| missing(cert_path, &e))?;
        let issuer = Issuer::from_ca_cert_der(&CertificateDer::from(der.clone()), key)?;
        Ok(Self { issuer, der, pem })
    }
}

/// The loaded consortium CA: the Ed25519 root, which certifies every key that
/// signs ledger messages and is the root on chain (`ConsortiumConfig.ca_roots`),
/// and the ECDSA P-256 TLS root, which issues the ECDSA P-256 certificates
/// that browsers and other clients without Ed25519 verify. The TLS root is a
/// TLS trust anchor only: it is never a root for signatures.
pub struct RootCa {
    root: Root,
    tls_root: Option<Root>,
    /// The Ed25519 root certificate, DER (the root on chain).
    pub root_der: Vec<u8>,
    /// The Ed25519 root certificate, PEM.
    pub root_pem: String,
}

impl std::fmt::Debug for RootCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RootCa")
            .field("root_pem", &self.root_pem)
            .field("tls_root", &self.tls_root.is_some())
            .finish_non_exhaustive()
    }
}

impl RootCa {
    /// Creates both roots (Ed25519, and the ECDSA P-256 TLS root), valid for
    /// `years`, and writes them.
    pub fn create(paths: &CaPaths, consortium_id: &str, years: u32, force: bool) -> Result<Self> {
        if !force && (paths.root_key().exists() || paths.root_cert().exists()) {
            return Err(Error::AlreadyInitialized(paths.dir.display().to_string()));
        }
        let not_after = OffsetDateTime::now_utc() + Duration::days(365 * i64::from(years));
        Root::create(
            KeyPair::generate_for(&PKCS_ED25519)?,
            format!("Fiscus consortium root CA ({consortium_id})"),
            not_after,
            &paths.root_cert(),
            &paths.root_key(),
        )?;
        Self::create_tls_root(paths, consortium_id, not_after)?;
        Self::load(paths)
    }

    fn create_tls_root(
        paths: &CaPaths,
        consortium_id: &str,
        not_after: OffsetDateTime,
    ) -> Result<()> {
        Root::create(
            KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
            format!("Fiscus consortium TLS root CA, ECDSA P-256 ({consortium_id})"),
            not_after,
            &paths.tls_root_cert(),
            &paths.tls_root_key(),
        )
    }

    /// Loads the roots written by [`RootCa::create`]. A CA initialized before
    /// the TLS root existed loads without it (its ECDSA certificates are then
    /// issued by the Ed25519 root, as they were); [`RootCa::add_tls_root`]
    /// adds it.
    pub fn load(paths: &CaPaths) -> Result<Self> {
        let root = Root::load(&paths.root_cert(), &paths.root_key())?;
        let tls_root = if paths.tls_root_cert().exists() || paths.tls_root_key().exists() {
            Some(Root::load(&paths.tls_root_cert(), &paths.tls_root_key())?)
        } else {
            None
        };
        Ok(Self {
            root_der: root.der.clone(),
            root_pem: root.pem.clone(),
            root,
            tls_root,
        })
    }

    /// Creates the ECDSA P-256 TLS root of a CA initialized without one
    /// (valid as long as the Ed25519 root) and loads the CA; loads it as it
    /// is otherwise. Returns whether a root was added.
    pub fn add_tls_root(paths: &CaPaths, consortium_id: &str) -> Result<(Self, bool)> {
        let ca = Self::load(paths)?;
        if ca.tls_root.is_some() {
            return Ok((ca, false));
        }
        let not_after = PeerIdentity::from_der(&ca.root_der)
            .ok()
            .and_then(|id| OffsetDateTime::from_unix_timestamp(id.not_after).ok())
            .ok_or_else(|| Error::Internal("the root certificate has no validity".into()))?;
        Self::create_tls_root(paths, consortium_id, not_after)?;
        Ok((Self::load(paths)?, true))
    }

    /// The ECDSA P-256 TLS root certificate, DER, if this CA has one.
    pub fn tls_root_der(&self) -> Option<&[u8]> {
        self.tls_root.as_ref().map(|r| r.der.as_slice())
    }

    /// Every root certificate, DER: the Ed25519 root, then the TLS root.
    pub fn trust_ders(&self) -> Vec<Vec<u8>> {
        std::iter::once(&self.root)
            .chain(&self.tls_root)
            .map(|r| r.der.clone())
            .collect()
    }

    /// Every root certificate, PEM, one after the other: what a TLS peer of
    /// the consortium trusts (`ca.pem`).
    pub fn trust_pem(&self) -> String {
        std::iter::once(&self.root)
            .chain(&self.tls_root)
            .map(|r| r.pem.as_str())
            .collect()
    }

    /// The root that certifies a key: the TLS root an ECDSA P-256 key (when
    /// there is one), the Ed25519 root every other. The one rule for it.
    fn issuer_for(&self, ecdsa_p256: bool) -> &Issuer<'static, KeyPair> {
        match &self.tls_root {
            Some(tls) if ecdsa_p256 => &tls.issuer,
            _ => &self.root.issuer,
        }
    }

    /// Issues a certificate for `key` (used for the CA's own TLS identity and in tests).
    pub fn issue_for_key(&self, key: &KeyPair, spec: &LeafSpec) -> Result<Issued> {
        let ecdsa = key.algorithm() == &PKCS_ECDSA_P256_SHA256;
        let cert = spec.params()?.signed_by(key, self.issuer_for(ecdsa))?;
        issued(cert.der().to_vec(), cert.pem())
    }

    /// Makes both keys of an identity here and issues both its certificates
    /// (the CA's own TLS identity, and the devnet's identities).
    pub fn issue_new_identity(&self, spec: &LeafSpec) -> Result<NewIdentity> {
        let key = KeyType::Ed25519.generate()?;
        let ecdsa_key = KeyType::EcdsaP256.generate()?;
        Ok(NewIdentity {
            main: self.issue_for_key(&key, spec)?,
            ecdsa: self.issue_for_key(&ecdsa_key, spec)?,
            key,
            ecdsa_key,
        })
    }

    /// Issues a certificate for the key in a PKCS#10 CSR. Only the CSR's key is
    /// taken from it; subject, SANs and validity come from `spec`. The key must
    /// be Ed25519 or ECDSA P-256 ([`check_csr`]); which one a caller may have
    /// is [`RootCa::issue_identity`]'s rule.
    pub fn issue_from_csr(&self, csr_der: &[u8], spec: &LeafSpec) -> Result<Issued> {
        let key = check_csr(csr_der)?;
        let mut csr =
            CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
                .map_err(|e| Error::BadCsr(e.to_string()))?;
        csr.params = spec.params()?;
        let cert = csr.signed_by(self.issuer_for(matches!(key, PublicKey::EcdsaP256(_))))?;
        issued(cert.der().to_vec(), cert.pem())
    }

    /// Issues one identity's certificates: `csr` for the main one and, if
    /// given, `ecdsa_csr` for its ECDSA P-256 TLS certificate (same subject,
    /// SANs and validity). The rule, in this one place:
    ///
    /// - the main key is Ed25519, the key that signs ledger messages; an API
    ///   client (role `client`) may instead have an ECDSA P-256 key, for TLS
    ///   only, and then asks for no second certificate;
    /// - the second key is ECDSA P-256;
    /// - any other key type is refused (`ca.key_type`).
    pub fn issue_identity(
        &self,
        csr: &[u8],
        ecdsa_csr: Option<&[u8]>,
        spec: &LeafSpec,
    ) -> Result<(Issued, Option<Issued>)> {
        let main_key = check_csr(csr)?;
        if matches!(main_key, PublicKey::EcdsaP256(_)) {
            if spec.role != Role::Client {
                return Err(Error::KeyType(format!(
                    "a {} certificate needs an Ed25519 key (it signs ledger messages); \
                     ECDSA P-256 goes in ecdsa_csr, beside it",
                    role_name(spec.role)
                )));
            }
            if ecdsa_csr.is_some() {
                return Err(Error::InvalidArgument(
                    "the main CSR already has an ECDSA P-256 key: send no ecdsa_csr".into(),
                ));
            }
        }
        if let Some(second) = ecdsa_csr
            && !matches!(check_csr(second)?, PublicKey::EcdsaP256(_))
        {
            return Err(Error::KeyType(
                "ecdsa_csr must carry an ECDSA P-256 key".into(),
            ));
        }
        let main = self.issue_from_csr(csr, spec)?;
        let second = ecdsa_csr
            .map(|c| self.issue_from_csr(c, spec))
            .transpose()?;
        Ok((main, second))
    }

    /// Signs CRL number `number` listing `revoked`, valid for `validity`
    /// (its `nextUpdate`; [`DEFAULT_CRL_VALIDITY`] unless configured).
    /// One CRL per root, with the same number, entries and validity: the
    /// entries list the serials of both certificates of a revoked identity,
    /// so each CRL revokes whatever its root issued.
    pub fn sign_crl(
        &self,
        number: u64,
        revoked: &[RevokedEntry],
        validity: std::time::Duration,
    ) -> Result<SignedCrl> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::minutes(1),
            next_update: now + validity,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: OffsetDateTime::from_unix_timestamp(r.revoked_at)
                        .unwrap_or(now),
                    reason_code: Some(reason_code(&r.reason)),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(SignedCrl {
            der: params.signed_by(&self.root.issuer)?.der().to_vec(),
            ecdsa_der: self
                .tls_root
                .as_ref()
                .map(|tls| Ok::<_, Error>(params.signed_by(&tls.issuer)?.der().to_vec()))
                .transpose()?,
        })
    }
}

/// The file name of the ECDSA TLS root's CRL, beside `crl.der`.
pub const ECDSA_CRL_FILE: &str = "crl-ecdsa.der";

/// Writes `crl` as `crl_der` (the Ed25519 root's) and, when there is one, the
/// TLS root's as [`ECDSA_CRL_FILE`] in the same directory.
pub fn write_crl_files(crl_der: &Path, crl: &SignedCrl) -> Result<()> {
    write_file(crl_der, &crl.der, 0o644)?;
    if let Some(ecdsa) = &crl.ecdsa_der {
        write_file(&crl_der.with_file_name(ECDSA_CRL_FILE), ecdsa, 0o644)?;
    }
    Ok(())
}

/// A CRL as [`RootCa::sign_crl`] signs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCrl {
    /// Signed by the Ed25519 root: the CRL on chain (`Crl.x509_der`) and `crl.der`.
    pub der: Vec<u8>,
    /// Signed by the ECDSA P-256 TLS root, when the CA has one
    /// (`Crl.x509_der_ecdsa`, `crl-ecdsa.der`).
    pub ecdsa_der: Option<Vec<u8>>,
}

impl SignedCrl {
    /// Both DER CRLs, the Ed25519 root's first.
    pub fn ders(&self) -> Vec<Vec<u8>> {
        std::iter::once(self.der.clone())
            .chain(self.ecdsa_der.clone())
            .collect()
    }
}

fn issued(der: Vec<u8>, pem: String) -> Result<Issued> {
    let identity = PeerIdentity::from_der(&der).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Issued { der, pem, identity })
}

/// Parses a CSR, requires a key the profile allows (Ed25519 or ECDSA P-256),
/// and checks the CSR's self-signature; returns the key.
fn check_csr(der: &[u8]) -> Result<PublicKey> {
    use x509_parser::prelude::FromDer;
    let (rest, csr) = x509_parser::certification_request::X509CertificationRequest::from_der(der)
        .map_err(|e| Error::BadCsr(e.to_string()))?;
    if !rest.is_empty() {
        return Err(Error::BadCsr("trailing bytes after the CSR".into()));
    }
    let key = profile_key(&csr.certification_request_info.subject_pki).map_err(|e| {
        Error::KeyType(format!(
            "{e}: the CA certifies Ed25519 keys, and ECDSA P-256 keys for TLS"
        ))
    })?;
    csr.verify_signature()
        .map_err(|e| Error::BadCsr(format!("signature: {e}")))?;
    Ok(key)
}

/// Makes an Ed25519 key and a CSR for it (what `fiscus enroll` does on the client).
pub fn new_key_and_csr(member: &str, role: Role) -> Result<(KeyPair, Vec<u8>)> {
    new_key_and_csr_of(member, role, KeyType::Ed25519)
}

/// The key types the CA certifies ([`RootCa::issue_identity`] says for what).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Ed25519,
    EcdsaP256,
}

impl KeyType {
    /// A new key of this type.
    pub fn generate(self) -> Result<KeyPair> {
        Ok(KeyPair::generate_for(match self {
            Self::Ed25519 => &PKCS_ED25519,
            Self::EcdsaP256 => &PKCS_ECDSA_P256_SHA256,
        })?)
    }
}

/// Makes a key of `key_type` and a CSR for it.
pub fn new_key_and_csr_of(
    member: &str,
    role: Role,
    key_type: KeyType,
) -> Result<(KeyPair, Vec<u8>)> {
    let key = key_type.generate()?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, member);
    dn.push(DnType::OrganizationalUnitName, role_name(role));
    p.distinguished_name = dn;
    let csr = p.serialize_request(&key)?;
    Ok((key, csr.der().to_vec()))
}

impl RootCa {
    /// Signs arbitrary bytes with the root key (e.g. the on-chain CRL message).
    pub fn sign_bytes(&self, msg: &[u8]) -> Result<Vec<u8>> {
        use rcgen::SigningKey;
        Ok(self.root.issuer.key().sign(msg)?)
    }
}
