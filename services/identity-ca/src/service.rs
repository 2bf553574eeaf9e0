//! The `IdentityCa` gRPC service.
//!
//! Authorization (the caller is the certificate on the TLS connection):
//! - `Enroll` with a one-time secret needs no certificate; the secret fixes
//!   member and role. `Enroll` without a secret needs an admin certificate of
//!   the same member, or of the Ministry of Finance (`000000`).
//! - The org must be a member, and the role one it may hold, as the
//!   configuration says: the genesis bundle, or `gov/config` at the head of
//!   the ledger the CA follows (`crate::members`).
//! - `Renew`: any valid certificate, for a new one with the same member, role and SANs.
//! - `Revoke`: an admin of the same member, a MOF admin, or the holder itself.
//! - `IssueSecrets`: an admin of `000000` (the CA's operator), for a current member.
//! - `GetCrl`: anyone. `ListCertificates`: admin, operator or auditor. `Verify`: any valid certificate.

use crate::ca::{LeafSpec, RootCa, write_crl_files};
use crate::error::{Error, Result};
use crate::registry::{CertRecord, CrlRecord, Registry, Revocation};
use crate::verify::{ChainVerifier, Verdict};
use fiscus_common::tls::{PeerIdentity, TlsContext, names, peer_identity, role_name};
use fiscus_proto::pb::identity::{self as pb, identity_ca_server::IdentityCa};
use fiscus_proto::pb::types::{Crl, RevokedCertificate, Role};
use prost::Message;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Bounds on request fields, on top of the gRPC message size limit.
const MAX_CSR_BYTES: usize = 8 * 1024;
const MAX_NAMES: usize = 16;
const MAX_NAME_LEN: usize = 253;
const MAX_SECRET_LEN: usize = 128;
const MAX_CHAIN: usize = 4;
const MAX_CERT_BYTES: usize = 8 * 1024;

/// Everything the service needs, shared across requests.
#[derive(Debug)]
pub struct CaService {
    pub(crate) ca: Arc<RootCa>,
    /// Who may be certified: the genesis members, or the chain's (`members`).
    pub(crate) members: Arc<crate::members::MemberList>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) tls: Arc<TlsContext>,
    pub(crate) verifier: ChainVerifier,
    pub(crate) crl_path: PathBuf,
    /// A CRL's validity; it is re-signed once half has passed.
    pub(crate) crl_validity: std::time::Duration,
    pub(crate) validity_days: u32,
    /// Revocations are serialized so that CRL numbers never collide.
    /// Serializes revocations, CRL re-signing and the issue-and-record step
    /// (the one-key-per-member check).
    pub(crate) revoke_lock: tokio::sync::Mutex<()>,
    pub(crate) metrics: Metrics,
}

#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    pub(crate) issued: prometheus::IntCounterVec,
    pub(crate) refused: prometheus::IntCounterVec,
    pub(crate) verified: prometheus::IntCounterVec,
}

impl Metrics {
    pub(crate) fn register(
        registry: &prometheus::Registry,
    ) -> std::result::Result<Self, prometheus::Error> {
        let issued = prometheus::IntCounterVec::new(
            prometheus::Opts::new("fiscus_ca_certificates_issued_total", "Certificates issued"),
            &["role"],
        )?;
        let refused = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "fiscus_ca_requests_refused_total",
                "Requests refused, by stable error code",
            ),
            &["code"],
        )?;
        let verified = prometheus::IntCounterVec::new(
            prometheus::Opts::new("fiscus_ca_verifications_total", "Verify calls by outcome"),
            &["valid"],
        )?;
        registry.register(Box::new(issued.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(verified.clone()))?;
        Ok(Self {
            issued,
            refused,
            verified,
        })
    }
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn parse_role(v: i32) -> Result<Role> {
    match Role::try_from(v) {
        Ok(Role::Unspecified) | Err(_) => Err(Error::InvalidArgument(format!(
            "role {v} is not a valid role"
        ))),
        Ok(r) => Ok(r),
    }
}

fn check_names(dns: &[String], ips: &[String]) -> Result<Vec<IpAddr>> {
    if dns.len() > MAX_NAMES || ips.len() > MAX_NAMES {
        return Err(Error::TooLarge("SAN list"));
    }
    if let Some(n) = dns.iter().find(|n| n.is_empty() || n.len() > MAX_NAME_LEN) {
        return Err(Error::InvalidArgument(format!(
            "DNS name {n:?} is empty or too long"
        )));
    }
    ips.iter()
        .map(|s| {
            s.parse()
                .map_err(|_| Error::InvalidArgument(format!("{s:?} is not an IP address")))
        })
        .collect()
}

impl CaService {
    /// The caller's certificate, which must be known and neither revoked nor expired.
    async fn caller(&self, peer: Option<&PeerIdentity>) -> Result<PeerIdentity> {
        let peer = peer.ok_or(Error::Unauthenticated)?;
        let rec = self.registry.get(&peer.cert_id.to_hex()).await?;
        let revoked = rec.as_ref().is_some_and(|r| r.revoked.is_some());
        if revoked || peer.not_after < now_unix() {
            return Err(Error::CallerInvalid);
        }
        Ok(peer.clone())
    }

    fn check_grant(&self, member: &str, role: Role) -> Result<()> {
        let members = self.members.get();
        let roles = members
            .roles_of(member)
            .ok_or_else(|| Error::UnknownMember(member.to_owned()))?;
        if !roles.contains(&role) {
            return Err(Error::RoleNotAllowed {
                member: member.to_owned(),
                role: role_name(role),
            });
        }
        Ok(())
    }

    /// Every requested SAN must be on `member`'s allow-list in the consortium
    /// config, and none may be one of the identity-ca's own names (loopback
    /// aside), so that no member can pose as the CA.
    fn check_sans(&self, member: &str, dns: &[String], ips: &[IpAddr]) -> Result<()> {
        let members = self.members.get();
        let allowed = members
            .allowed_names_of(member)
            .ok_or_else(|| Error::UnknownMember(member.to_owned()))?;
        let own = self.tls.identity();
        let ip_names: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
        for name in dns.iter().chain(&ip_names) {
            let refuse = |why| {
                Err(Error::NameNotAllowed {
                    member: member.to_owned(),
                    name: name.clone(),
                    why,
                })
            };
            let lowered = name.to_ascii_lowercase();
            let is_own = own.dns_names.iter().any(|n| n.eq_ignore_ascii_case(name))
                || own.ips.iter().any(|ip| ip.to_string() == lowered);
            if is_own && !names::is_loopback(&lowered) {
                return refuse("it is a name of the identity-ca");
            }
            if !names::name_allowed(allowed, name) {
                return refuse("it is not on the member's allowed_names in the consortium config");
            }
        }
        Ok(())
    }

    /// The registry records of one identity's certificates, linked.
    fn records(issued: &crate::ca::Issued, ecdsa: Option<&crate::ca::Issued>) -> Vec<CertRecord> {
        CertRecord::pair(
            CertRecord::issued(&issued.identity, &issued.der),
            ecdsa.map(|e| CertRecord::issued(&e.identity, &e.der)),
        )
    }

    /// One public key is certified for one member only: a key that a
    /// certificate of another member already carries is refused, so that a
    /// member cannot obtain a certificate that speaks for another's key.
    async fn require_key_unused_elsewhere(&self, issued: &crate::ca::Issued) -> Result<()> {
        let mine = &issued.identity;
        for r in self.registry.list(None, None).await? {
            if r.member == mine.member {
                continue;
            }
            let Ok(der) = hex::decode(&r.der_hex) else {
                continue;
            };
            if PeerIdentity::from_der(&der).is_ok_and(|id| id.public_key == mine.public_key) {
                return Err(Error::KeyOfAnotherMember(r.member));
            }
        }
        Ok(())
    }

    fn response(
        &self,
        issued: crate::ca::Issued,
        ecdsa: Option<crate::ca::Issued>,
    ) -> pb::CertificateResponse {
        pb::CertificateResponse {
            certificate: issued.der,
            chain: self.ca.trust_ders(),
            ecdsa_certificate: ecdsa.map(|e| e.der).unwrap_or_default(),
        }
    }

    /// Issues `csr` (and `ecdsa_csr`, if not empty) for `spec`, checks that no
    /// other member's certificate has either key, and records both, spending
    /// `lease`; all under the revocation lock, so two enrollments cannot race.
    async fn issue_and_record(
        &self,
        csr: &[u8],
        ecdsa_csr: &[u8],
        spec: &LeafSpec,
        lease: Option<crate::registry::SecretLease>,
    ) -> Result<pb::CertificateResponse> {
        let ecdsa_csr = (!ecdsa_csr.is_empty()).then_some(ecdsa_csr);
        let (issued, ecdsa) = self.ca.issue_identity(csr, ecdsa_csr, spec)?;
        let _guard = self.revoke_lock.lock().await;
        self.require_key_unused_elsewhere(&issued).await?;
        if let Some(e) = &ecdsa {
            self.require_key_unused_elsewhere(e).await?;
        }
        self.registry
            .record_issued(&Self::records(&issued, ecdsa.as_ref()), lease)
            .await?;
        let role = role_name(spec.role);
        self.metrics.issued.with_label_values(&[role]).inc();
        if ecdsa.is_some() {
            self.metrics.issued.with_label_values(&[role]).inc();
        }
        tracing::info!(
            member = %spec.member,
            role,
            cert_id = %issued.identity.cert_id,
            key = issued.identity.public_key.algorithm(),
            ecdsa_cert_id = ecdsa.as_ref().map(|e| e.identity.cert_id.to_hex()),
            "issued certificate"
        );
        Ok(self.response(issued, ecdsa))
    }

    pub(crate) async fn enroll(
        &self,
        peer: Option<&PeerIdentity>,
        req: pb::EnrollRequest,
    ) -> Result<pb::CertificateResponse> {
        if req.csr.len() > MAX_CSR_BYTES || req.ecdsa_csr.len() > MAX_CSR_BYTES {
            return Err(Error::TooLarge("CSR"));
        }
        if req.enrollment_secret.len() > MAX_SECRET_LEN {
            return Err(Error::TooLarge("enrollment secret"));
        }
        let role = parse_role(req.role)?;
        let ips = check_names(&req.dns_names, &req.ip_addresses)?;
        self.check_grant(&req.org_code, role)?;
        self.check_sans(&req.org_code, &req.dns_names, &ips)?;
        let lease = if req.enrollment_secret.is_empty() {
            let caller = self.caller(peer).await?;
            if caller.role != Role::Admin {
                return Err(Error::PermissionDenied {
                    member: caller.member,
                    role: role_name(caller.role),
                    why: "only admins enroll without a secret",
                });
            }
            if caller.member != req.org_code && caller.member != "000000" {
                return Err(Error::PermissionDenied {
                    member: caller.member,
                    role: role_name(caller.role),
                    why: "admins enroll only for their own member",
                });
            }
            None
        } else {
            let lease = self.registry.lease_secret(&req.enrollment_secret).await?;
            if lease.record.member != req.org_code || lease.record.role != role_name(role) {
                return Err(Error::SecretMismatch {
                    member: lease.record.member,
                    role: parse_role_name(&lease.record.role),
                });
            }
            Some(lease)
        };
        let mut spec = LeafSpec::valid_for_days(&req.org_code, role, self.validity_days);
        spec.dns_names = req.dns_names;
        spec.ips = ips;
        self.issue_and_record(&req.csr, &req.ecdsa_csr, &spec, lease)
            .await
    }

    pub(crate) async fn renew(
        &self,
        peer: Option<&PeerIdentity>,
        req: pb::RenewRequest,
    ) -> Result<pb::CertificateResponse> {
        if req.csr.len() > MAX_CSR_BYTES || req.ecdsa_csr.len() > MAX_CSR_BYTES {
            return Err(Error::TooLarge("CSR"));
        }
        let caller = self.caller(peer).await?;
        self.check_grant(&caller.member, caller.role)?;
        if caller.common_name == fiscus_common::tls::IDENTITY_CA_COMMON_NAME {
            return Err(Error::PermissionDenied {
                member: caller.member,
                role: role_name(caller.role),
                why: "the identity-ca's own certificate is not renewed over the API",
            });
        }
        // The allow-list may have shrunk since the certificate was issued.
        self.check_sans(&caller.member, &caller.dns_names, &caller.ips)?;
        let mut spec = LeafSpec::valid_for_days(&caller.member, caller.role, self.validity_days);
        spec.common_name = caller.common_name.clone();
        spec.dns_names = caller.dns_names.clone();
        spec.ips = caller.ips.clone();
        self.issue_and_record(&req.csr, &req.ecdsa_csr, &spec, None)
            .await
    }

    pub(crate) async fn revoke(
        &self,
        peer: Option<&PeerIdentity>,
        req: pb::RevokeRequest,
    ) -> Result<Crl> {
        if req.reason.len() > 1024 {
            return Err(Error::TooLarge("reason"));
        }
        let caller = self.caller(peer).await?;
        let target_id = hex::encode(&req.cert_id);
        let _guard = self.revoke_lock.lock().await;
        let target = self
            .registry
            .get(&target_id)
            .await?
            .ok_or_else(|| Error::NotFound(target_id.clone()))?;
        let is_admin_over = caller.role == Role::Admin
            && (caller.member == target.member || caller.member == "000000");
        let caller_id = caller.cert_id.to_hex();
        let is_holder =
            caller_id == target.cert_id || target.companion.as_ref() == Some(&caller_id);
        if !is_admin_over && !is_holder {
            return Err(Error::PermissionDenied {
                member: caller.member,
                role: role_name(caller.role),
                why: "only the holder, its member's admin or a MOF admin may revoke",
            });
        }
        // An identity's two certificates (Ed25519 and ECDSA) are revoked together.
        let companion = match &target.companion {
            Some(id) => self.registry.get(id).await?,
            None => None,
        };
        let mut newly: Vec<CertRecord> = [Some(target), companion]
            .into_iter()
            .flatten()
            .filter(|c| c.revoked.is_none())
            .collect();
        if !newly.is_empty() {
            let number = self.registry.current_crl().await?.map_or(0, |c| c.number) + 1;
            let at = now_unix();
            let (mut entries, mut ids) = self.registry.revoked_entries().await?;
            for cert in &mut newly {
                cert.revoked = Some(Revocation {
                    reason: req.reason.clone(),
                    at,
                    crl_number: number,
                });
                entries.push(crate::ca::RevokedEntry {
                    serial: hex::decode(&cert.serial_hex)
                        .map_err(|e| Error::Internal(e.to_string()))?,
                    revoked_at: at,
                    reason: req.reason.clone(),
                });
                ids.push(cert.cert_id.clone());
            }
            let (signed, crl) = self.sign_crl(number, &entries, ids)?;
            self.registry.commit_revocation(&newly, &crl).await?;
            // This server refuses the revoked certificates from the next handshake on.
            self.publish_crl(&signed)?;
            for cert in &newly {
                tracing::warn!(cert_id = %cert.cert_id, member = %cert.member, crl_number = number, reason = %req.reason, "revoked certificate");
            }
        }
        self.crl_message().await
    }

    /// Re-signs the current CRL (the next number, the same entries) if less
    /// than half of its validity is left; returns the new number.
    pub(crate) async fn refresh_crl_if_due(&self) -> Result<Option<u64>> {
        let _guard = self.revoke_lock.lock().await;
        let Some(current) = self.registry.current_crl().await? else {
            return Ok(None);
        };
        let left = crate::ca::crl_next_update(&current.der()?).map_or(0, |t| t - now_unix());
        let half = i64::try_from(self.crl_validity.as_secs() / 2).unwrap_or(i64::MAX);
        if left > half {
            return Ok(None);
        }
        let number = current.number + 1;
        let (entries, ids) = self.registry.revoked_entries().await?;
        let (signed, crl) = self.sign_crl(number, &entries, ids)?;
        self.registry.commit_refreshed_crl(&crl).await?;
        self.publish_crl(&signed)?;
        Ok(Some(number))
    }

    /// CRL `number` over `entries` (the certificates `ids`), signed by each
    /// root for `crl_validity`, and its registry record.
    fn sign_crl(
        &self,
        number: u64,
        entries: &[crate::ca::RevokedEntry],
        ids: Vec<String>,
    ) -> Result<(crate::ca::SignedCrl, CrlRecord)> {
        let signed = self.ca.sign_crl(number, entries, self.crl_validity)?;
        let crl = CrlRecord::new(number, &signed, ids);
        Ok((signed, crl))
    }

    /// Serves a stored CRL: `crl.der` (and `crl-ecdsa.der`) for relying
    /// parties, and this server's own TLS verifier from its next handshake.
    fn publish_crl(&self, crl: &crate::ca::SignedCrl) -> Result<()> {
        write_crl_files(&self.crl_path, crl)?;
        self.tls
            .set_crls(crl.ders())
            .map(|_| ())
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// The current CRL as the on-chain message, signed by the root over its bytes.
    pub(crate) async fn crl_message(&self) -> Result<Crl> {
        let Some(record) = self.registry.current_crl().await? else {
            return Ok(Crl::default());
        };
        let mut revoked = Vec::new();
        for id in &record.revoked {
            let reason = self
                .registry
                .get(id)
                .await?
                .and_then(|r| r.revoked)
                .map(|r| r.reason)
                .unwrap_or_default();
            revoked.push(RevokedCertificate {
                cert_id: hex::decode(id).map_err(|e| Error::Internal(e.to_string()))?,
                reason,
                effective_height: 0,
            });
        }
        let mut crl = Crl {
            number: record.number,
            revoked,
            signature: Vec::new(),
            x509_der: record.der()?,
            x509_der_ecdsa: record.ecdsa_der()?.unwrap_or_default(),
        };
        crl.signature = self.ca.sign_bytes(&crl.encode_to_vec())?;
        Ok(crl)
    }

    pub(crate) async fn list(
        &self,
        peer: Option<&PeerIdentity>,
        req: pb::ListCertificatesRequest,
    ) -> Result<pb::ListCertificatesResponse> {
        let caller = self.caller(peer).await?;
        if !matches!(caller.role, Role::Admin | Role::Operator | Role::Auditor) {
            return Err(Error::PermissionDenied {
                member: caller.member,
                role: role_name(caller.role),
                why: "listing needs admin, operator or auditor",
            });
        }
        let role = match req.role {
            0 => None,
            r => Some(role_name(parse_role(r)?)),
        };
        let member = (!req.org_code.is_empty()).then_some(req.org_code.as_str());
        let certificates = self
            .registry
            .list(member, role)
            .await?
            .into_iter()
            .map(|r| pb::CertificateInfo {
                cert_id: hex::decode(&r.cert_id).unwrap_or_default(),
                org_code: r.member,
                role: fiscus_common::tls::parse_role(&r.role).unwrap_or(Role::Unspecified) as i32,
                not_before_ms: r.not_before * 1000,
                not_after_ms: r.not_after * 1000,
                revoked: r.revoked.is_some(),
            })
            .collect();
        Ok(pb::ListCertificatesResponse { certificates })
    }

    /// One-time enrollment secrets for a member the configuration lists now:
    /// an admin of 000000 (the CA's operator) hands them to the new member.
    pub(crate) async fn issue_secrets(
        &self,
        peer: Option<&PeerIdentity>,
        req: pb::IssueSecretsRequest,
    ) -> Result<pb::IssueSecretsResponse> {
        let caller = self.caller(peer).await?;
        if caller.role != Role::Admin || caller.member != "000000" {
            return Err(Error::PermissionDenied {
                member: caller.member,
                role: role_name(caller.role),
                why: "only an admin of 000000 (the CA's operator) issues enrollment secrets",
            });
        }
        if req.roles.is_empty() || req.roles.len() > 8 {
            return Err(Error::InvalidArgument(
                "ask for 1 to 8 roles, e.g. node, client and admin".into(),
            ));
        }
        let roles = req
            .roles
            .iter()
            .map(|r| parse_role(*r))
            .collect::<Result<std::collections::BTreeSet<_>>>()?;
        for role in &roles {
            self.check_grant(&req.org_code, *role)?;
        }
        let mut secrets = Vec::new();
        for role in roles {
            let secret = hex::encode(rand::random::<[u8; 16]>());
            self.registry
                .add_secret(&secret, &req.org_code, role_name(role))
                .await?;
            secrets.push(pb::IssuedSecret {
                role: role as i32,
                secret,
            });
        }
        tracing::info!(member = %req.org_code, roles = secrets.len(), by = %caller.cert_id, "issued enrollment secrets");
        Ok(pb::IssueSecretsResponse { secrets })
    }

    pub(crate) async fn verify(
        &self,
        peer: Option<&PeerIdentity>,
        req: pb::VerifyRequest,
    ) -> Result<pb::VerifyResponse> {
        self.caller(peer).await?;
        if req.chain.len() > MAX_CHAIN || req.chain.iter().any(|c| c.len() > MAX_CERT_BYTES) {
            return Err(Error::TooLarge("certificate chain"));
        }
        let verdict = self
            .verifier
            .verify(
                &self.registry,
                &req.chain,
                &req.message,
                &req.signature,
                req.crl_number,
            )
            .await?;
        Ok(match verdict {
            Verdict::Valid(id) => {
                self.metrics.verified.with_label_values(&["true"]).inc();
                pb::VerifyResponse {
                    valid: true,
                    reason: String::new(),
                    org_code: id.member,
                    role: id.role as i32,
                }
            }
            Verdict::Invalid(reason) => {
                self.metrics.verified.with_label_values(&["false"]).inc();
                pb::VerifyResponse {
                    valid: false,
                    reason,
                    org_code: String::new(),
                    role: 0,
                }
            }
        })
    }

    fn refuse(&self, e: Error) -> Status {
        let se = fiscus_common::ServiceError::from(&e);
        self.metrics.refused.with_label_values(&[se.code]).inc();
        tracing::info!(code = se.code, error = %e, "request refused");
        se.into()
    }
}

fn parse_role_name(name: &str) -> &'static str {
    fiscus_common::tls::parse_role(name).map_or("unknown", role_name)
}

/// The tonic service over a shared [`CaService`].
#[derive(Debug, Clone)]
pub struct Grpc(pub Arc<CaService>);

#[tonic::async_trait]
impl IdentityCa for Grpc {
    async fn enroll(
        &self,
        req: Request<pb::EnrollRequest>,
    ) -> Result<Response<pb::CertificateResponse>, Status> {
        let peer = peer_identity(&req).cloned();
        self.0
            .enroll(peer.as_ref(), req.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| self.0.refuse(e))
    }

    async fn renew(
        &self,
        req: Request<pb::RenewRequest>,
    ) -> Result<Response<pb::CertificateResponse>, Status> {
        let peer = peer_identity(&req).cloned();
        self.0
            .renew(peer.as_ref(), req.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| self.0.refuse(e))
    }

    async fn revoke(
        &self,
        req: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        let peer = peer_identity(&req).cloned();
        self.0
            .revoke(peer.as_ref(), req.into_inner())
            .await
            .map(|crl| Response::new(pb::RevokeResponse { crl: Some(crl) }))
            .map_err(|e| self.0.refuse(e))
    }

    async fn get_crl(&self, _req: Request<pb::GetCrlRequest>) -> Result<Response<Crl>, Status> {
        self.0
            .crl_message()
            .await
            .map(Response::new)
            .map_err(|e| self.0.refuse(e))
    }

    async fn list_certificates(
        &self,
        req: Request<pb::ListCertificatesRequest>,
    ) -> Result<Response<pb::ListCertificatesResponse>, Status> {
        let peer = peer_identity(&req).cloned();
        self.0
            .list(peer.as_ref(), req.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| self.0.refuse(e))
    }

    async fn verify(
        &self,
        req: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let peer = peer_identity(&req).cloned();
        self.0
            .verify(peer.as_ref(), req.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| self.0.refuse(e))
    }

    async fn issue_secrets(
        &self,
        req: Request<pb::IssueSecretsRequest>,
    ) -> Result<Response<pb::IssueSecretsResponse>, Status> {
        let peer = peer_identity(&req).cloned();
        self.0
            .issue_secrets(peer.as_ref(), req.into_inner())
            .await
            .map(Response::new)
            .map_err(|e| self.0.refuse(e))
    }
}
