//! Certificate verifiers whose CRL can be replaced while connections are served.
//!
//! Each wraps rustls's webpki verifier, rebuilt from the consortium roots and
//! the current CRLs whenever new ones arrive. New handshakes use the new
//! verifier at once; nothing restarts.
//!
//! The consortium has two roots (Ed25519, and the ECDSA P-256 TLS root), each
//! with its CRL. A verifier given the process's [`Revocations`] also refuses
//! every serial any installed CRL lists, whichever root issued the
//! certificate: a process that holds only the Ed25519 root's CRL (a CRL file,
//! a chain written before the second CRL) still refuses a revoked ECDSA
//! certificate, and webpki is told not to fail a certificate for want of its
//! own root's CRL.

use super::{PeerIdentity, Revocations, TlsError, role_name};
use arc_swap::ArcSwap;
use fiscus_proto::pb::types::Role;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, Error, RootCertStore, SignatureScheme};
use std::sync::Arc;

fn build_client_verifier(
    roots: &Arc<RootCertStore>,
    crls: &[CertificateRevocationListDer<'static>],
    provider: &Arc<CryptoProvider>,
    optional: bool,
    serial_check: bool,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut b = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls.iter().cloned());
    if optional {
        b = b.allow_unauthenticated();
    }
    if serial_check {
        b = b.allow_unknown_revocation_status();
    }
    b.build().map_err(|e| TlsError::Verifier(e.to_string()))
}

fn build_server_verifier(
    roots: &Arc<RootCertStore>,
    crls: &[CertificateRevocationListDer<'static>],
    provider: &Arc<CryptoProvider>,
    serial_check: bool,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut b = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
        .with_crls(crls.iter().cloned());
    if serial_check {
        b = b.allow_unknown_revocation_status();
    }
    b.build().map_err(|e| TlsError::Verifier(e.to_string()))
}

/// Refuses `end_entity` when `revocations` lists its serial (see the module doc).
fn check_serial(
    revocations: Option<&Revocations>,
    end_entity: &CertificateDer<'_>,
) -> Result<(), Error> {
    let Some(revocations) = revocations else {
        return Ok(());
    };
    let id = PeerIdentity::from_der(end_entity)
        .map_err(|e| Error::General(format!("certificate: {e}")))?;
    if revocations.is_revoked(&id.serial) {
        return Err(Error::InvalidCertificate(rustls::CertificateError::Revoked));
    }
    Ok(())
}

/// Verifies client certificates (used by servers) against the current CRL.
#[derive(Debug)]
pub struct ClientVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    optional: bool,
    revocations: Option<Arc<Revocations>>,
    current: ArcSwap<Arc<dyn ClientCertVerifier>>,
}

impl ClientVerifier {
    /// `optional`: accept handshakes without a client certificate (the
    /// identity-ca, for enrollment with a one-time secret, and the
    /// exchange-adapter's REST API, where API keys are the alternative).
    /// `revocations`: also refuse every serial they list (see the module
    /// doc); without them, webpki alone decides, and a certificate whose
    /// root has no CRL among `crls` is refused once any CRL is given.
    pub fn new(
        roots: Arc<RootCertStore>,
        crls: &[CertificateRevocationListDer<'static>],
        provider: Arc<CryptoProvider>,
        optional: bool,
        revocations: Option<Arc<Revocations>>,
    ) -> Result<Self, TlsError> {
        let v = build_client_verifier(&roots, crls, &provider, optional, revocations.is_some())?;
        Ok(Self {
            roots,
            provider,
            optional,
            revocations,
            current: ArcSwap::from_pointee(v),
        })
    }

    /// Replaces the CRLs for every handshake from now on.
    pub fn set_crls(&self, crls: &[CertificateRevocationListDer<'static>]) -> Result<(), TlsError> {
        let v = build_client_verifier(
            &self.roots,
            crls,
            &self.provider,
            self.optional,
            self.revocations.is_some(),
        )?;
        self.current.store(Arc::new(v));
        Ok(())
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.current.load().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.current.load().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints come from the roots, which never change; an empty list is
        // allowed by TLS 1.3 and avoids borrowing from the swappable inner verifier.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let ok = self
            .current
            .load()
            .verify_client_cert(end_entity, intermediates, now)?;
        check_serial(self.revocations.as_deref(), end_entity)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current
            .load()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current
            .load()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().supported_verify_schemes()
    }
}

/// Verifies server certificates (used by clients), including the server name
/// against the certificate's SANs, against the current CRL.
#[derive(Debug)]
pub struct ServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    revocations: Option<Arc<Revocations>>,
    current: ArcSwap<WebPkiServerVerifier>,
}

impl ServerVerifier {
    /// `revocations` as in [`ClientVerifier::new`].
    pub fn new(
        roots: Arc<RootCertStore>,
        crls: &[CertificateRevocationListDer<'static>],
        provider: Arc<CryptoProvider>,
        revocations: Option<Arc<Revocations>>,
    ) -> Result<Self, TlsError> {
        let v = build_server_verifier(&roots, crls, &provider, revocations.is_some())?;
        Ok(Self {
            roots,
            provider,
            revocations,
            current: ArcSwap::new(v),
        })
    }

    /// Replaces the CRLs for every handshake from now on.
    pub fn set_crls(&self, crls: &[CertificateRevocationListDer<'static>]) -> Result<(), TlsError> {
        let v = build_server_verifier(
            &self.roots,
            crls,
            &self.provider,
            self.revocations.is_some(),
        )?;
        self.current.store(v);
        Ok(())
    }
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let ok = self.current.load().verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        check_serial(self.revocations.as_deref(), end_entity)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current
            .load()
            .verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.current
            .load()
            .verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current.load().supported_verify_schemes()
    }
}

/// Who a server must be, beyond holding a valid certificate for the dialled
/// name: the identity-ca's clients pin the CA's own identity, so that a
/// member's certificate that happens to carry the same name cannot pose as it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPin {
    pub member: String,
    pub role: Role,
    pub common_name: String,
}

impl ServerPin {
    /// The identity-ca's own certificate: member `000000`, role node, common
    /// name `identity-ca`. The CA puts this common name in no other certificate.
    pub fn identity_ca() -> Self {
        Self {
            member: "000000".into(),
            role: Role::Node,
            common_name: IDENTITY_CA_COMMON_NAME.into(),
        }
    }

    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), Error> {
        let id = PeerIdentity::from_der(end_entity)
            .map_err(|e| Error::General(format!("server certificate: {e}")))?;
        if id.member != self.member || id.role != self.role || id.common_name != self.common_name {
            return Err(Error::General(format!(
                "the server is {:?} (member {}, role {}), not the expected {:?} (member {}, role {})",
                id.common_name,
                id.member,
                role_name(id.role),
                self.common_name,
                self.member,
                role_name(self.role)
            )));
        }
        Ok(())
    }
}

/// The common name of the identity-ca's own TLS certificate.
pub const IDENTITY_CA_COMMON_NAME: &str = "identity-ca";

/// A [`ServerVerifier`] that also requires the server to be one identity.
#[derive(Debug)]
pub struct PinnedServerVerifier {
    inner: Arc<ServerVerifier>,
    pin: ServerPin,
}

impl PinnedServerVerifier {
    pub fn new(inner: Arc<ServerVerifier>, pin: ServerPin) -> Self {
        Self { inner, pin }
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let ok = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        self.pin.check(end_entity)?;
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
