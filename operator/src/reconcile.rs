//! Reconciling a `FinanceMember`: check the spec against the consortium,
//! enroll (or renew) its node identity (and its client identity, when it
//! has one) at the identity-ca, apply its workloads, read its height
//! against the orderers' head, and report conditions; on deletion, revoke
//! its certificates first. A pass over an unchanged member reads but writes nothing: every
//! object carries the hash of what was last applied to it
//! ([`crate::resources::APPLIED_HASH`]), and the status is written only when
//! it changed.

use crate::crd::{
    Consortium, DeletionPolicy, FinanceMember, FinanceMemberStatus, ObjectKeyRef, ObjectKind,
};
use crate::enroll::{self, CaTarget, EnrollError, Identity};
use crate::resources::{self, APPLIED_HASH, Inputs};
use crate::sync::{self, Dial, Target};
use fiscus_proto::pb::types::Role;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The field manager of every server-side apply, and the events' reporter.
pub const MANAGER: &str = "fiscus-operator";
pub const FINALIZER: &str = "fiscus.io/revoke-certificates";
/// How often a healthy member is looked at again (height, readiness, expiry).
const RESYNC: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Enroll(#[from] EnrollError),
    #[error("{0}")]
    Missing(String),
    #[error("encoding a service config: {0}")]
    Config(#[from] toml::ser::Error),
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

/// Reconcile passes and failures, for `/metrics`.
#[derive(Clone, Debug)]
pub struct Metrics {
    pub reconciles: prometheus::IntCounter,
    pub failures: prometheus::IntCounter,
    pub duration: prometheus::Histogram,
}

impl Metrics {
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let reconciles = prometheus::IntCounter::new(
            "fiscus_operator_reconciles_total",
            "FinanceMember reconcile passes",
        )?;
        let failures = prometheus::IntCounter::new(
            "fiscus_operator_reconcile_errors_total",
            "FinanceMember reconcile passes that failed (requeued with backoff)",
        )?;
        let duration = prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(
            "fiscus_operator_reconcile_seconds",
            "Seconds per FinanceMember reconcile pass",
        ))?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self {
            reconciles,
            failures,
            duration,
        })
    }
}

/// What every reconcile pass shares.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    /// Unix seconds now (the renewal window is counted from it; tests set it).
    pub clock: Box<dyn Fn() -> i64 + Send + Sync>,
    /// Where a member's ledger-store and the orderers are dialled for
    /// `Synced` (tests map cluster names to loopback).
    pub dial: Dial,
    /// How long one connection or call of that read may take.
    pub probe_timeout: Duration,
    /// The operator's namespace, admitted to the ledger-stores' gRPC port.
    pub operator_namespace: Option<String>,
    /// Whether the Prometheus Operator's ServiceMonitor CRD exists (main
    /// looks, at start and every few minutes).
    service_monitors: AtomicBool,
    /// Consecutive failures per member, for the backoff.
    failures: Mutex<BTreeMap<String, u32>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(client: Client, recorder: Recorder, metrics: Metrics) -> Self {
        Self {
            client,
            recorder,
            metrics,
            clock: Box::new(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64)
            }),
            dial: Arc::new(str::to_owned),
            probe_timeout: Duration::from_secs(3),
            operator_namespace: None,
            service_monitors: AtomicBool::new(false),
            failures: Mutex::default(),
        }
    }

    /// Members get a ServiceMonitor from the next pass on (or lose it).
    pub fn set_service_monitors(&self, exists: bool) {
        self.service_monitors.store(exists, Ordering::Relaxed);
    }

    pub fn service_monitors(&self) -> bool {
        self.service_monitors.load(Ordering::Relaxed)
    }

    fn key(m: &FinanceMember) -> String {
        format!("{}/{}", m.namespace().unwrap_or_default(), m.name_any())
    }
}

/// The controller's reconcile function.
pub async fn reconcile(member: Arc<FinanceMember>, ctx: Arc<Context>) -> Result<Action, Error> {
    let _timer = ctx.metrics.duration.start_timer();
    ctx.metrics.reconciles.inc();
    let ns = member
        .namespace()
        .ok_or_else(|| Error::Missing("a FinanceMember is namespaced".into()))?;
    let span = tracing::info_span!("reconcile", member = %member.spec.code, namespace = %ns);
    let _enter = span.enter();
    let api: Api<FinanceMember> = Api::namespaced(ctx.client.clone(), &ns);
    let key = Context::key(&member);
    let result = finalizer(&api, FINALIZER, member, |event| async {
        match event {
            Finalizer::Apply(m) => apply(&m, &ctx).await,
            Finalizer::Cleanup(m) => cleanup(&m, &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    if result.is_ok() {
        lock(&ctx.failures).remove(&key);
    }
    result
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the cluster serves the Prometheus Operator's ServiceMonitor
/// (`monitoring.coreos.com/v1`); an unanswerable question reads as no.
pub async fn service_monitor_crd_exists(client: &Client) -> bool {
    match client
        .list_api_group_resources("monitoring.coreos.com/v1")
        .await
    {
        Ok(list) => list.resources.iter().any(|r| r.name == "servicemonitors"),
        Err(kube::Error::Api(s)) if s.is_not_found() => false,
        Err(e) => {
            tracing::warn!(error = %e, "could not ask whether ServiceMonitors exist");
            false
        }
    }
}

/// A failed pass is requeued after 5 s, doubling per consecutive failure up to 5 min.
pub fn error_policy(member: Arc<FinanceMember>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.failures.inc();
    let mut failures = lock(&ctx.failures);
    let n = failures.entry(Context::key(&member)).or_insert(0);
    *n = n.saturating_add(1);
    let delay = backoff(*n);
    tracing::warn!(member = %member.spec.code, %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The delay after `n` consecutive failures.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

/// The conditions the operator sets, and how it reports them.
struct Status {
    old: FinanceMemberStatus,
    new: FinanceMemberStatus,
    generation: Option<i64>,
}

impl Status {
    fn of(m: &FinanceMember) -> Self {
        let old = m.status.clone().unwrap_or_default();
        let mut new = old.clone();
        new.observed_generation = m.metadata.generation;
        Self {
            old,
            new,
            generation: m.metadata.generation,
        }
    }

    fn set(&mut self, type_: &str, status: bool, reason: &str, message: impl Into<String>) {
        self.set_raw(
            type_,
            if status { "True" } else { "False" },
            reason,
            message,
        );
    }

    fn set_raw(&mut self, type_: &str, status: &str, reason: &str, message: impl Into<String>) {
        let message = message.into();
        let previous = self.old.conditions.iter().find(|c| c.type_ == type_);
        // The transition time moves only when the status does.
        let since = match previous {
            Some(p) if p.status == status => p.last_transition_time.clone(),
            _ => Time(k8s_openapi::jiff::Timestamp::now()),
        };
        let c = Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            observed_generation: self.generation,
            last_transition_time: since,
        };
        self.new.conditions.retain(|x| x.type_ != type_);
        self.new.conditions.push(c);
        self.new.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
    }

    /// Writes the status if it changed, and one Event per condition whose
    /// status changed (none on a pass that changes nothing).
    async fn write(self, m: &FinanceMember, ctx: &Context) -> Result<(), Error> {
        if self.new == self.old {
            return Ok(());
        }
        let ns = m.namespace().unwrap_or_default();
        let api: Api<FinanceMember> = Api::namespaced(ctx.client.clone(), &ns);
        let body = json!({
            "apiVersion": FinanceMember::api_version(&()),
            "kind": FinanceMember::kind(&()),
            "status": self.new,
        });
        api.patch_status(
            &m.name_any(),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        for c in &self.new.conditions {
            let before = self.old.conditions.iter().find(|o| o.type_ == c.type_);
            if before.is_some_and(|b| b.status == c.status) {
                continue;
            }
            let warning = matches!(
                (c.type_.as_str(), c.status.as_str()),
                ("CertificateExpiring", "True") | (_, "False")
            ) && c.type_ != "CertificateExpiring"
                || (c.type_ == "CertificateExpiring" && c.status == "True");
            let event = Event {
                type_: if warning {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                reason: c.reason.clone(),
                note: Some(format!("{} is {}: {}", c.type_, c.status, c.message)),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(e) = ctx.recorder.publish(&event, &m.object_ref(&())).await {
                tracing::warn!(error = %e, "could not publish an event");
            }
        }
        Ok(())
    }
}

/// Reads one key of a Secret or ConfigMap (ConfigMap: `binaryData`, then `data`).
async fn read_key(client: &Client, ns: &str, r: &ObjectKeyRef) -> Result<Option<Vec<u8>>, Error> {
    Ok(match r.kind {
        ObjectKind::Secret => Api::<Secret>::namespaced(client.clone(), ns)
            .get_opt(&r.name)
            .await?
            .and_then(|s| s.data?.remove(&r.key))
            .map(|b| b.0),
        ObjectKind::ConfigMap => Api::<ConfigMap>::namespaced(client.clone(), ns)
            .get_opt(&r.name)
            .await?
            .and_then(|c| {
                c.binary_data
                    .and_then(|mut b| b.remove(&r.key).map(|b| b.0))
                    .or_else(|| {
                        c.data
                            .and_then(|mut d| d.remove(&r.key).map(String::into_bytes))
                    })
            }),
    })
}

/// Why the spec cannot be acted on, judged against the consortium's genesis
/// org registry: the member and its parent must be orgs of the consortium,
/// and the parent the one the registry names.
pub fn check_spec(m: &FinanceMember, genesis: &[u8]) -> Result<(), String> {
    use prost::Message;
    let config = fiscus_proto::pb::types::ConsortiumConfig::decode(genesis)
        .map_err(|e| format!("the consortium's genesis is not a ConsortiumConfig: {e}"))?;
    let org = |code: &str| config.orgs.iter().find(|o| o.code == code);
    let me = org(&m.spec.code).ok_or_else(|| {
        format!(
            "{} is not an org of consortium {}",
            m.spec.code, config.consortium_id
        )
    })?;
    if let Some(parent) = &m.spec.parent_code {
        if org(parent).is_none() {
            return Err(format!(
                "parent {parent} is not an org of consortium {}",
                config.consortium_id
            ));
        }
        if !me.parent.is_empty() && &me.parent != parent {
            return Err(format!(
                "the consortium records {}'s parent as {}, not {parent}",
                m.spec.code, me.parent
            ));
        }
    }
    Ok(())
}

async fn apply(m: &FinanceMember, ctx: &Context) -> Result<Action, Error> {
    let ns = m.namespace().unwrap_or_default();
    let client = &ctx.client;
    let mut status = Status::of(m);
    let code = m.spec.code.clone();

    let Some(consortium) = Api::<Consortium>::namespaced(client.clone(), &ns)
        .get_opt(&m.spec.consortium_ref.name)
        .await?
    else {
        status.set(
            "Ready",
            false,
            "ConsortiumNotFound",
            format!("no Consortium {} in {ns}", m.spec.consortium_ref.name),
        );
        status.write(m, ctx).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    };
    let Some(genesis) = read_key(client, &ns, &consortium.spec.genesis).await? else {
        status.set(
            "Ready",
            false,
            "GenesisNotFound",
            format!(
                "{:?} {} has no key {}",
                consortium.spec.genesis.kind,
                consortium.spec.genesis.name,
                consortium.spec.genesis.key
            ),
        );
        status.write(m, ctx).await?;
        return Ok(Action::requeue(Duration::from_secs(60)));
    };
    if let Err(why) = check_spec(m, &genesis) {
        // Nothing is created for a spec that cannot be right; a change to it
        // (or to the consortium) is what brings the member back.
        status.set("Ready", false, "InvalidSpec", why);
        status.write(m, ctx).await?;
        return Ok(Action::await_change());
    }

    let mut identities = Vec::new();
    for kind in Kind::of(m) {
        match ensure_identity(m, &consortium, ctx, &mut status, &kind).await {
            Ok(i) => {
                publish_signer(m, &consortium, ctx, &kind, &i).await?;
                identities.push((kind, i));
            }
            Err(e) => {
                status.write(m, ctx).await?;
                return Err(e);
            }
        }
    }
    if m.spec.api_enrollment_secret_ref.is_none() {
        // A client identity the spec no longer names is retired, not left
        // valid and unrenewed.
        let name = resources::client_tls_secret_name(&m.spec.code);
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        if let Some(old) = stored_identity(&secrets, &name).await? {
            retire(m, ctx, &consortium, "client", &name, &old, "Reconcile").await?;
            status.new.client_certificate_not_after = None;
        }
    }
    let mut enrolled = Vec::new();
    let mut earliest = i64::MAX;
    let mut checksum = Sha256::new();
    for (kind, identity) in &identities {
        let peer = identity.peer()?;
        let not_after = k8s_openapi::jiff::Timestamp::from_second(peer.not_after)
            .ok()
            .map(|t| t.to_string());
        if kind.role == Role::Node {
            status.new.certificate_id = Some(peer.cert_id.to_hex());
            status.new.certificate_not_after = not_after;
        } else {
            status.new.client_certificate_not_after = not_after;
        }
        enrolled.push(format!(
            "{} certificate {}",
            kind.what,
            &peer.cert_id.to_hex()[..16]
        ));
        earliest = earliest.min(peer.not_after);
        checksum.update(identity.cert_pem.as_bytes());
    }
    status.set("Enrolled", true, "Enrolled", enrolled.join("; "));
    let expiring = earliest - (ctx.clock)() <= i64::from(m.spec.renew_before_days) * 86_400;
    status.set(
        "CertificateExpiring",
        expiring,
        if expiring { "RenewalDue" } else { "Valid" },
        format!("valid until Unix time {earliest}"),
    );
    let node = identities
        .first()
        .map(|(_, i)| i.clone())
        .ok_or_else(|| Error::Missing("a member has a node identity".into()))?;

    ensure_clients_secret(m, ctx).await?;
    let inputs = Inputs {
        member: m,
        consortium: &consortium,
        namespace: ns.clone(),
        tls_checksum: hex::encode(checksum.finalize()),
        owner: m
            .controller_owner_ref(&())
            .map(|o| serde_json::to_value(o).unwrap_or(Value::Null)),
        service_monitor: ctx.service_monitors(),
        operator_namespace: ctx.operator_namespace.clone(),
    };
    let mut not_ready = Vec::new();
    for desired in inputs.objects()? {
        let current = apply_object(client, &ns, &desired).await?;
        if let Some(why) = unready(&current) {
            not_ready.push(why);
        }
    }
    if not_ready.is_empty() {
        status.set("Ready", true, "WorkloadsReady", "every service is ready");
    } else {
        status.set("Ready", false, "WorkloadsNotReady", not_ready.join("; "));
    }
    let reading = sync::read(
        &node,
        &ledger_target(&code, &ns),
        &orderer_targets(&consortium, &ns),
        &ctx.dial,
        ctx.probe_timeout,
    )
    .await;
    let (synced, reason, message) = sync::condition(&reading, m.spec.synced_lag_blocks);
    status.set_raw("Synced", synced, reason, message);
    if let Ok(r) = &reading {
        status.new.height = Some(r.height);
        status.new.lag = r.lag();
    }
    status.write(m, ctx).await?;
    // A member catching up (or not yet answering) is looked at sooner.
    Ok(Action::requeue(if synced == "True" {
        RESYNC
    } else {
        Duration::from_secs(60)
    }))
}

/// The member's ledger-store, as the operator reaches it from its own
/// namespace (the Service's name is on the node certificate).
pub fn ledger_target(code: &str, ns: &str) -> Target {
    let (_, port) = resources::ports("ledger-store")[0];
    let name = resources::object_name(code, "ledger-store");
    Target {
        addrs: vec![format!("{name}.{ns}.svc:{port}")],
        server_name: name,
    }
}

/// The consortium's orderers, as the operator reaches them.
pub fn orderer_targets(c: &Consortium, ns: &str) -> Vec<Target> {
    c.spec
        .orderers
        .iter()
        .map(|o| Target {
            addrs: sync::cluster_addrs(&o.endpoint, ns),
            server_name: o.server_name.clone(),
        })
        .collect()
}

/// One of a member's identities at the identity-ca.
#[derive(Debug, Clone)]
struct Kind {
    role: Role,
    /// "node" or "client": in messages, and the signers key `<what>-<code>.pem`.
    what: &'static str,
    /// The Secret the operator keeps it in.
    secret: String,
    /// The Secret with its one-time enrollment secret.
    enrollment: String,
    dns_names: Vec<String>,
}

impl Kind {
    /// Whether this identity has an ECDSA P-256 certificate beside its
    /// Ed25519 one: the node identity does (the adapter serves it to
    /// browsers and gRPC clients without Ed25519); the client identity, a
    /// custodial signer that serves nothing, does not.
    fn ecdsa(&self) -> bool {
        self.role == Role::Node
    }

    /// The member's identities: its node identity, then its client identity
    /// when `apiEnrollmentSecretRef` names one.
    fn of(m: &FinanceMember) -> Vec<Self> {
        let code = &m.spec.code;
        let mut out = vec![Self {
            role: Role::Node,
            what: "node",
            secret: resources::tls_secret_name(code),
            enrollment: m.spec.enrollment_secret_ref.name.clone(),
            dns_names: resources::dns_names(code),
        }];
        if let Some(api) = &m.spec.api_enrollment_secret_ref {
            out.push(Self {
                role: Role::Client,
                what: "client",
                secret: resources::client_tls_secret_name(code),
                enrollment: api.name.clone(),
                dns_names: Vec::new(),
            });
        }
        out
    }
}

/// An identity as its Secret holds it, if there is one.
async fn stored_identity(secrets: &Api<Secret>, name: &str) -> Result<Option<Identity>, Error> {
    Ok(secrets.get_opt(name).await?.and_then(|s| {
        let data: BTreeMap<String, Vec<u8>> = s.data?.into_iter().map(|(k, v)| (k, v.0)).collect();
        Identity::from_secret(&data)
    }))
}

/// An identity: read from its Secret, enrolled with the one-time secret if
/// there is none, renewed when it expires within the window.
async fn ensure_identity(
    m: &FinanceMember,
    consortium: &Consortium,
    ctx: &Context,
    status: &mut Status,
    kind: &Kind,
) -> Result<Identity, Error> {
    let ns = m.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = stored_identity(&secrets, &kind.secret).await?;
    let ca = ca_target(ctx, &ns, consortium).await?;
    let window = i64::from(m.spec.renew_before_days) * 86_400;
    let identity = match existing {
        None => {
            let secret_ref = &kind.enrollment;
            let Some(secret) = secrets
                .get_opt(secret_ref)
                .await?
                .and_then(|s| s.data?.remove("secret"))
                .and_then(|b| String::from_utf8(b.0).ok())
            else {
                let why = format!(
                    "Secret {secret_ref} has no key `secret` (the {} identity's one-time enrollment secret)",
                    kind.what
                );
                status.set("Enrolled", false, "EnrollmentSecretMissing", why.clone());
                return Err(Error::Missing(why));
            };
            let identity = enroll::enroll(
                &ca,
                &m.spec.code,
                kind.role,
                secret.trim(),
                &kind.dns_names,
                kind.ecdsa(),
            )
            .await
            .inspect_err(|e| {
                status.set(
                    "Enrolled",
                    false,
                    "EnrollmentFailed",
                    format!("the {} identity: {e}", kind.what),
                )
            })?;
            write_identity(m, ctx, &kind.secret, &identity).await?;
            tracing::info!(member = %m.spec.code, identity = kind.what, "enrolled");
            identity
        }
        Some(current) => {
            let peer = current.peer()?;
            let expiring = peer.not_after - (ctx.clock)() <= window;
            // A node identity enrolled before it had an ECDSA certificate gets
            // one by renewing now: its configs name the ECDSA files.
            let lacks_ecdsa = kind.ecdsa() && current.ecdsa.is_none();
            if expiring || lacks_ecdsa {
                if expiring {
                    status.set(
                        "CertificateExpiring",
                        true,
                        "RenewalDue",
                        format!(
                            "the {} certificate expires within {} days",
                            kind.what, m.spec.renew_before_days
                        ),
                    );
                } else {
                    tracing::info!(member = %m.spec.code, identity = kind.what, "renewing to add the ECDSA certificate");
                }
                let renewed = enroll::renew(&ca, &current, kind.ecdsa())
                    .await
                    .inspect_err(|e| {
                        status.set(
                            "Enrolled",
                            true,
                            "RenewalFailed",
                            format!("the {} certificate: {e}", kind.what),
                        )
                    })?;
                write_identity(m, ctx, &kind.secret, &renewed).await?;
                tracing::info!(member = %m.spec.code, identity = kind.what, "renewed the certificate");
                renewed
            } else {
                current
            }
        }
    };
    Ok(identity)
}

async fn ca_target(ctx: &Context, ns: &str, c: &Consortium) -> Result<CaTarget, Error> {
    let root = read_key(&ctx.client, ns, &c.spec.identity_ca.root_cert)
        .await?
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            Error::Missing(format!(
                "{:?} {} has no key {} (the consortium root certificate)",
                c.spec.identity_ca.root_cert.kind,
                c.spec.identity_ca.root_cert.name,
                c.spec.identity_ca.root_cert.key
            ))
        })?;
    Ok(CaTarget {
        endpoint: c.spec.identity_ca.endpoint.clone(),
        server_name: c.spec.identity_ca.server_name.clone(),
        root_pem: root,
    })
}

async fn write_identity(
    m: &FinanceMember,
    ctx: &Context,
    name: &str,
    id: &Identity,
) -> Result<(), Error> {
    let ns = m.namespace().unwrap_or_default();
    let mut metadata = json!({
        "name": name,
        "namespace": ns,
        "labels": {"app.kubernetes.io/managed-by": MANAGER, "fiscus.io/member": m.spec.code},
    });
    if let Some(o) = m.controller_owner_ref(&()) {
        metadata["ownerReferences"] = json!([o]);
    }
    let body = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": metadata,
        "stringData": id.to_secret(),
    });
    Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(())
}

/// Puts a certificate in the consortium's signers ConfigMap (keys
/// `node-<code>.pem`, `client-<code>.pem`), which every member's services
/// read to check signatures: the node's on attestations, the client's on
/// the transactions the adapter signs for its API clients. Each key has its
/// own field manager, so server-side apply merges them; written only when
/// it differs.
/// Members in other clusters receive it the way the consortium distributes
/// signers today (out of band).
async fn publish_signer(
    m: &FinanceMember,
    consortium: &Consortium,
    ctx: &Context,
    kind: &Kind,
    id: &Identity,
) -> Result<(), Error> {
    let ns = m.namespace().unwrap_or_default();
    let name = &consortium.spec.signers_config_map;
    let key = format!("{}-{}.pem", kind.what, m.spec.code);
    // The node key keeps the manager name it always had.
    let manager = match kind.role {
        Role::Node => format!("{MANAGER}.{}", m.spec.code),
        _ => format!("{MANAGER}.{}.{}", m.spec.code, kind.what),
    };
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let current = api.get_opt(name).await?;
    if current
        .as_ref()
        .and_then(|c| c.data.as_ref()?.get(&key))
        .is_some_and(|pem| *pem == id.cert_pem)
    {
        return Ok(());
    }
    let body = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": {key: id.cert_pem},
    });
    api.patch(
        name,
        &PatchParams::apply(&manager).force(),
        &Patch::Apply(&body),
    )
    .await?;
    Ok(())
}

/// The exchange-adapter's API clients file: created empty once (callers with
/// a consortium client certificate need no key); entries that
/// `fiscus keys api-key` prints are added to it,
/// and the operator never overwrites it.
async fn ensure_clients_secret(m: &FinanceMember, ctx: &Context) -> Result<(), Error> {
    let ns = m.namespace().unwrap_or_default();
    let name = resources::clients_secret_name(&m.spec.code);
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    if api.get_opt(&name).await?.is_some() {
        return Ok(());
    }
    let mut secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": name, "namespace": ns,
                     "labels": {"app.kubernetes.io/managed-by": MANAGER, "fiscus.io/member": m.spec.code}},
        "stringData": {"api-clients.toml": "# API clients of this member's exchange-adapter (entries: fiscus keys api-key).\n"},
    }))
    .map_err(|e| Error::Missing(e.to_string()))?;
    secret.metadata.owner_references = m.controller_owner_ref(&()).map(|o| vec![o]);
    api.create(&PostParams::default(), &secret).await?;
    Ok(())
}

fn api_resource(obj: &Value) -> Result<(ApiResource, String), Error> {
    let api_version = obj["apiVersion"].as_str().unwrap_or_default();
    let kind = obj["kind"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if kind.is_empty() || name.is_empty() {
        return Err(Error::Missing(format!(
            "an object without kind or name: {obj}"
        )));
    }
    Ok((
        ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)),
        name,
    ))
}

/// Applies `desired` (server-side apply, forced) unless the object already
/// carries its hash; returns the object as the API server has it.
pub async fn apply_object(client: &Client, ns: &str, desired: &Value) -> Result<Value, Error> {
    let (ar, name) = api_resource(desired)?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    let want = desired["metadata"]["annotations"][APPLIED_HASH].as_str();
    if let Some(current) = api.get_opt(&name).await?
        && current.annotations().get(APPLIED_HASH).map(String::as_str) == want
    {
        return Ok(serde_json::to_value(current).unwrap_or(Value::Null));
    }
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await?;
    Ok(serde_json::to_value(applied).unwrap_or(Value::Null))
}

/// Why a workload is not ready, from its status; None for other kinds.
fn unready(o: &Value) -> Option<String> {
    let kind = o["kind"].as_str()?;
    if kind != "StatefulSet" && kind != "Deployment" {
        return None;
    }
    let want = o["spec"]["replicas"].as_i64().unwrap_or(1);
    let have = o["status"]["readyReplicas"].as_i64().unwrap_or(0);
    (have < want).then(|| {
        format!(
            "{} {}: {have}/{want} ready",
            kind,
            o["metadata"]["name"].as_str().unwrap_or("?")
        )
    })
}

/// Revokes an identity at the identity-ca (unless it has expired: an
/// expired certificate opens nothing, and could not ask to be revoked),
/// then deletes its Secret, so that a retry does not try to revoke again
/// with an identity the CA now refuses.
async fn retire(
    m: &FinanceMember,
    ctx: &Context,
    consortium: &Consortium,
    what: &str,
    secret: &str,
    identity: &Identity,
    action: &str,
) -> Result<(), Error> {
    let ns = m.namespace().unwrap_or_default();
    let code = &m.spec.code;
    let expired = identity.peer()?.not_after <= (ctx.clock)();
    let note = if expired {
        tracing::info!(member = %code, identity = what, "the certificate has expired: nothing to revoke");
        format!("{code}'s {what} certificate had expired; its Secret is deleted")
    } else {
        let ca = ca_target(ctx, &ns, consortium).await?;
        enroll::revoke(&ca, identity, "cessationOfOperation").await?;
        tracing::info!(member = %code, identity = what, "revoked the certificate");
        format!("{code}'s {what} certificate was revoked at the identity-ca")
    };
    Api::<Secret>::namespaced(ctx.client.clone(), &ns)
        .delete(secret, &DeleteParams::default())
        .await?;
    let event = Event {
        type_: EventType::Normal,
        reason: if expired {
            "CertificateExpired"
        } else {
            "CertificateRevoked"
        }
        .into(),
        note: Some(note),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &m.object_ref(&())).await {
        tracing::warn!(error = %e, "could not publish an event");
    }
    Ok(())
}

/// Deletion: the member's certificate is revoked at the identity-ca before
/// anything goes (owned objects are then garbage-collected). The ledger's
/// volume is kept unless `deletionPolicy: Delete`.
async fn cleanup(m: &FinanceMember, ctx: &Context) -> Result<Action, Error> {
    let ns = m.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let code = &m.spec.code;
    // Both identities, whether or not the spec still names the client one.
    for (what, name) in [
        ("node", resources::tls_secret_name(code)),
        ("client", resources::client_tls_secret_name(code)),
    ] {
        let Some(identity) = stored_identity(&secrets, &name).await? else {
            continue;
        };
        let consortium = Api::<Consortium>::namespaced(ctx.client.clone(), &ns)
            .get_opt(&m.spec.consortium_ref.name)
            .await?
            .ok_or_else(|| {
                Error::Missing(format!(
                    "Consortium {} is gone: cannot reach its identity-ca to revoke {code}'s {what} certificate",
                    m.spec.consortium_ref.name
                ))
            })?;
        retire(m, ctx, &consortium, what, &name, &identity, "Delete").await?;
    }
    if m.spec.deletion_policy == DeletionPolicy::Delete {
        let pvc = format!(
            "data-{}-0",
            resources::object_name(&m.spec.code, "ledger-store")
        );
        match Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), &ns)
            .delete(&pvc, &DeleteParams::default())
            .await
        {
            Ok(_) => {
                tracing::warn!(member = %m.spec.code, pvc, "deleted the ledger's volume (deletionPolicy: Delete)")
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Action::await_change())
}
