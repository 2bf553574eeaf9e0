//! The request context: the state every handler shares ([`Api`]), who the
//! caller is (API key or consortium client certificate, rate limit, scope)
//! and what the disclosure policy lets it read.

use crate::backend::Backend;
use crate::clients::{Client, Clients, Scope};
use crate::error::err;
use actix_web::{HttpRequest, web};
use fiscus_common::codes;
use fiscus_common::error::{ErrorKind, ServiceError};
use fiscus_common::tls::PeerIdentity;
use fiscus_contract_executor::Orgs;
use fiscus_proto::DecodeLimits;
use fiscus_proto::hash::Hash32;
use fiscus_proto::pb::types::{OrgLevel, Role};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Everything the handlers share.
#[derive(Debug)]
pub struct Api {
    pub consortium_id: String,
    pub clients: Clients,
    pub backend: Backend,
    /// Signer certificates on file: id → (org, public key).
    pub signers: BTreeMap<Hash32, (String, [u8; 32])>,
    /// The consortium roots, for a certificate a signature carries
    /// (a signer not on file: a member that joined after genesis).
    pub roots: fiscus_common::certs::Roots,
    /// The org registry as the chain's config says now: the contract's own
    /// [`Orgs`], swapped whenever governance changes `gov/config`
    /// ([`follow_orgs`]). Read it with [`Api::orgs`].
    pub registry: std::sync::RwLock<Arc<Orgs>>,
    /// The on-chain CRL and the orgs that left, as of the same config
    /// ([`follow_orgs`]): a signer they revoke is refused before ordering.
    pub chain_revocations: std::sync::RwLock<Arc<fiscus_common::certs::ChainRevocations>>,
    /// The consortium's salt for personal id hashes (from genesis).
    pub recipient_id_salt: Vec<u8>,
    /// Seals pagination cursors (`crate::cursor`).
    pub cursor_key: crate::cursor::CursorKey,
    pub limits: DecodeLimits,
    pub max_page: u32,
    pub max_import_bytes: usize,
    pub wait_timeout: Duration,
    pub hub: crate::hub::Hub,
    /// The configured webhooks (a dead letter is replayed to its own).
    pub webhooks: Vec<crate::hub::WebhookConfig>,
    pub metrics: crate::metrics::Metrics,
    /// What a caller with a consortium client certificate may do (REST over TLS).
    pub cert_scopes: Vec<Scope>,
    /// The serials the CRL in force revokes: a REST connection authenticated
    /// by a certificate revoked after its handshake is refused per request.
    pub revocations: Arc<fiscus_common::tls::Revocations>,
}

/// The scope an extractor demands.
pub(crate) trait NeedsScope {
    const SCOPE: Scope;
}

/// `Caller<SubmitScope>` authenticates for submitting.
pub(crate) struct SubmitScope;

impl NeedsScope for SubmitScope {
    const SCOPE: Scope = Scope::Submit;
}

/// What a caller authenticated by a consortium certificate may do: the
/// scopes this API grants certificate callers, and `govern` for an `admin`
/// certificate (the identity the member's administrators hold), whatever
/// those are. The same for REST over TLS and for gRPC.
pub(crate) fn certificate_scopes(granted: &[Scope], role: Role) -> Vec<Scope> {
    let mut scopes = granted.to_vec();
    if role == Role::Admin && !scopes.contains(&Scope::Govern) {
        scopes.push(Scope::Govern);
    }
    scopes
}

/// `Caller<GovernScope>` authenticates for proposing and voting.
pub(crate) struct GovernScope;

impl NeedsScope for GovernScope {
    const SCOPE: Scope = Scope::Govern;
}

/// The authenticated caller, as an extractor. Placed before the body and
/// query extractors, it answers 401/403/429 before anything of the request
/// is parsed, and an unauthenticated body is never read (actix polls a
/// handler's extractors in order and stops at the first error).
pub(crate) struct Caller<S>(pub Arc<Client>, std::marker::PhantomData<S>);

impl<S: NeedsScope> actix_web::FromRequest for Caller<S> {
    type Error = ServiceError;
    type Future = std::future::Ready<Result<Self, ServiceError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let out = match req.app_data::<web::Data<Api>>() {
            Some(api) => api
                .caller(req, S::SCOPE)
                .map(|c| Caller(c, std::marker::PhantomData)),
            None => Err(err(
                ErrorKind::Internal,
                codes::api::INTERNAL,
                "no API state",
            )),
        };
        std::future::ready(out)
    }
}

impl Api {
    /// Authenticates the caller, charges its rate bucket and checks the scope.
    pub(crate) fn caller(
        &self,
        req: &HttpRequest,
        scope: Scope,
    ) -> Result<Arc<Client>, ServiceError> {
        // An API key, when sent, decides; otherwise a TLS client certificate.
        let client = self.authenticated(req)?;
        self.clients.admit(&client)?;
        client.require(scope)?;
        Ok(client)
    }

    /// Who the request authenticates as, without checking scope or rate:
    /// error handlers ask it so that an unauthenticated request is answered
    /// 401 before anything about its query, path or body.
    pub(crate) fn authenticated(&self, req: &HttpRequest) -> Result<Arc<Client>, ServiceError> {
        let headers = req.headers();
        let key = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
            .map(str::trim);
        match (key, req.conn_data::<PeerIdentity>()) {
            (None, Some(id)) => self.certificate_client(id),
            _ => self.clients.authenticate(key),
        }
    }

    /// The client a verified consortium client certificate stands for.
    fn certificate_client(&self, id: &PeerIdentity) -> Result<Arc<Client>, ServiceError> {
        if self.revocations.is_revoked(&id.serial) {
            return Err(err(
                ErrorKind::Unauthenticated,
                codes::api::CERTIFICATE_REVOKED,
                format!("certificate {} is revoked", id.cert_id),
            ));
        }
        if !matches!(id.role, Role::Client | Role::Admin) {
            return Err(err(
                ErrorKind::PermissionDenied,
                codes::api::WRONG_ROLE,
                format!(
                    "a {:?} certificate may not call the API; use a client certificate",
                    id.role
                ),
            ));
        }
        if !self.orgs().contains(&id.member) {
            return Err(err(
                ErrorKind::PermissionDenied,
                codes::api::UNKNOWN_ORG,
                format!("org {} is not in the consortium's registry", id.member),
            ));
        }
        Ok(Arc::new(Client {
            name: format!("certificate {}", id.cert_id),
            org: id.member.clone(),
            scopes: certificate_scopes(&self.cert_scopes, id.role),
            custodial: None,
        }))
    }

    /// The org registry in force (cheap: one `Arc` clone).
    pub fn orgs(&self) -> Arc<Orgs> {
        self.registry
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Refuses a signer the chain's config revokes (its CRL, or its org left
    /// by governance), with the code the ledger would give it. Everything in
    /// the config at the head is in force for the next block, so any height
    /// ahead is the same.
    pub(crate) fn check_not_revoked(&self, cert: &Hash32, org: &str) -> Result<(), ServiceError> {
        let revoked = self
            .chain_revocations
            .read()
            .map(|g| g.revoked(cert, org, u64::MAX))
            .unwrap_or_else(|e| e.into_inner().revoked(cert, org, u64::MAX));
        if revoked {
            return Err(err(
                ErrorKind::PermissionDenied,
                codes::tx::REVOKED_CERTIFICATE,
                format!(
                    "certificate {cert} of org {org} is revoked on chain (the consortium CRL, or the org left the consortium)"
                ),
            ));
        }
        Ok(())
    }

    /// The disclosure policy ([`may_read`]) for this client.
    pub(crate) fn may_read_org(&self, client: &Client, org: &str) -> bool {
        may_read(&self.orgs(), &client.org, org)
    }

    pub(crate) fn require_read_org(&self, client: &Client, org: &str) -> Result<(), ServiceError> {
        if self.may_read_org(client, org) {
            Ok(())
        } else {
            Err(err(
                ErrorKind::PermissionDenied,
                codes::api::NOT_DISCLOSED,
                format!(
                    "org {} may not read the accounts of org {org} (disclosure policy: own org and the orgs below it)",
                    client.org
                ),
            ))
        }
    }

    pub(crate) fn page(&self, limit: Option<u32>) -> u32 {
        limit.unwrap_or(100).clamp(1, self.max_page)
    }
}

/// The disclosure policy, one rule for the adapter and analytics:
/// supervisors and the central level read every org; any other org reads
/// its own and those below it.
pub fn may_read(orgs: &Orgs, reader: &str, org: &str) -> bool {
    matches!(
        orgs.level(reader),
        Some(OrgLevel::Supervisor | OrgLevel::Central)
    ) || reader == org
        || orgs.is_descendant(reader, org)
}

/// How often the adapter reads `gov/config` for governance changes to the org
/// registry.
pub const ORGS_FOLLOW_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps [`Api::registry`] equal to the org registry of the chain's config at
/// the member's head, forever: governance adds and removes orgs, and the API's
/// authentication, disclosure policy and submit checks must see what the
/// contract sees.
pub async fn follow_orgs(api: actix_web::web::Data<Api>) {
    use prost::Message as _;
    let mut seen_version = None;
    let mut tick = tokio::time::interval(ORGS_FOLLOW_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Ok(resp) = api
            .backend
            .state(fiscus_contract_executor::keys::CONFIG, 0)
            .await
        else {
            continue;
        };
        if !resp.found || seen_version == Some(resp.version) {
            continue;
        }
        match fiscus_proto::pb::types::ConsortiumConfig::decode(&resp.value[..]) {
            Ok(config) => {
                if let Ok(mut g) = api.chain_revocations.write() {
                    *g = Arc::new(fiscus_common::certs::ChainRevocations::from_config(&config));
                }
                let orgs = Arc::new(Orgs::from_config(&config));
                if let Ok(mut g) = api.registry.write() {
                    if **g != *orgs {
                        tracing::info!(
                            config_height = resp.version,
                            orgs = orgs.codes().count(),
                            "the org registry changed on chain"
                        );
                    }
                    *g = orgs;
                }
                seen_version = Some(resp.version);
            }
            Err(e) => tracing::error!(error = %e, "gov/config on chain does not decode"),
        }
    }
}
