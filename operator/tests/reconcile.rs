//! The operator's reconcile paths against a fake Kubernetes API server (the
//! kube-rs `tower-test` pattern: only the API server is mocked) and a real
//! identity-ca over mutual TLS.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests assert by panicking

use base64::Engine as _;
use fiscus_operator::crd::FinanceMember;
use fiscus_operator::reconcile::{self, Context, FINALIZER, Metrics};
use fiscus_operator::testkit::{FakeApi, Fault, path};
use http::Method;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const NS: &str = "fiscus";
const CODE: &str = "130100";

struct World {
    api: FakeApi,
    _ca: fiscus_identity_ca::Running,
    _dir: tempfile::TempDir,
    ca_dir: std::path::PathBuf,
    /// Unused one-time secrets, by (member, role).
    secrets: Value,
}

impl World {
    fn secret(&self, member: &str, role: &str) -> String {
        self.secrets
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["member"] == member && s["role"] == role)
            .unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn member_path() -> String {
    path("fiscus.io/v1alpha1", "financemembers", NS, "shijiazhuang")
}

fn object(kind_path: (&str, &str), name: &str) -> String {
    path(kind_path.0, kind_path.1, NS, name)
}

/// A real identity-ca (its genesis has the five devnet members), and the
/// cluster objects a data center would have made: the Consortium, its
/// genesis and root certificate, and the member's enrollment secret.
async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    fiscus_identity_ca::init(&fiscus_identity_ca::InitOptions {
        data_dir: ca_dir.clone(),
        consortium_id: "fiscus-test".into(),
        force: false,
        all_hebei: true,
        server_names: vec!["127.0.0.1".into(), "localhost".into()],
        root_validity_years: 10,
        cert_validity_days: 825,
    })
    .await
    .unwrap();
    let ca = fiscus_identity_ca::start(fiscus_identity_ca::Config {
        data_dir: ca_dir.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
    .await
    .unwrap();
    let paths = fiscus_identity_ca::ca::CaPaths::new(&ca_dir);
    let secrets: Value = serde_json::from_slice(&std::fs::read(paths.secrets()).unwrap()).unwrap();
    let secret = |role: &str| {
        secrets
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["member"] == CODE && s["role"] == role)
            .unwrap()["secret"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    let api = FakeApi::default();
    api.insert(
        &path("fiscus.io/v1alpha1", "consortiums", NS, "hebei"),
        json!({
            "apiVersion": "fiscus.io/v1alpha1", "kind": "Consortium",
            "metadata": {"name": "hebei", "namespace": NS},
            "spec": {
                "consortiumId": "fiscus-test",
                "genesis": {"kind": "Secret", "name": "fiscus-genesis", "key": "consortium-config.pb"},
                "signersConfigMap": "fiscus-signers",
                "identityCa": {
                    "endpoint": ca.grpc_addr.to_string(), "serverName": "localhost",
                    "rootCert": {"kind": "ConfigMap", "name": "fiscus-root", "key": "ca.pem"},
                },
                "orderers": [{"endpoint": "fiscus-orderer-0.fiscus-orderer:7050", "serverName": "orderer-1"}],
                "image": {"repository": "registry.example/fiscus", "tag": "0.1.0"},
            }
        }),
    );
    api.insert(
        &object(("v1", "secrets"), "fiscus-genesis"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "fiscus-genesis", "namespace": NS},
               "data": {"consortium-config.pb": b64(&std::fs::read(paths.consortium_config()).unwrap())}}),
    );
    api.insert(
        &object(("v1", "configmaps"), "fiscus-root"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "fiscus-root", "namespace": NS},
               "data": {"ca.pem": std::fs::read_to_string(paths.root_cert()).unwrap()}}),
    );
    api.insert(
        &object(("v1", "configmaps"), "fiscus-signers"),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "fiscus-signers", "namespace": NS},
               "data": {"orderer-1.pem": "-----BEGIN CERTIFICATE----- (kept)"}}),
    );
    api.insert(
        &object(("v1", "secrets"), "enroll-130100"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "enroll-130100", "namespace": NS},
               "data": {"secret": b64(secret("node").as_bytes())}}),
    );
    api.insert(
        &object(("v1", "secrets"), "enroll-130100-client"),
        json!({"apiVersion": "v1", "kind": "Secret",
               "metadata": {"name": "enroll-130100-client", "namespace": NS},
               "data": {"secret": b64(secret("client").as_bytes())}}),
    );
    World {
        api,
        _ca: ca,
        _dir: dir,
        ca_dir,
        secrets,
    }
}

fn member_json(parent: &str) -> Value {
    json!({
        "apiVersion": "fiscus.io/v1alpha1", "kind": "FinanceMember",
        "metadata": {"name": "shijiazhuang", "namespace": NS, "generation": 1,
                     "finalizers": [FINALIZER]},
        "spec": {
            "code": CODE, "nameZh": "石家庄市财政局", "nameEn": "Shijiazhuang Finance Bureau",
            "level": "city", "parentCode": parent, "roles": ["node", "client"],
            "consortiumRef": {"name": "hebei"},
            "enrollmentSecretRef": {"name": "enroll-130100"},
            "apiEnrollmentSecretRef": {"name": "enroll-130100-client"},
        }
    })
}

/// A loopback port nothing listens on: where the fake cluster's names lead.
fn closed_port() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn context(api: &FakeApi) -> Arc<Context> {
    let closed = closed_port();
    context_dialling(api, Arc::new(move |_: &str| closed.clone()))
}

/// A context whose gRPC reads (`Synced`) dial where `dial` says.
fn context_dialling(api: &FakeApi, dial: fiscus_operator::sync::Dial) -> Arc<Context> {
    let client = api.client();
    let registry = prometheus::Registry::new();
    let mut ctx = Context::new(
        client.clone(),
        Recorder::new(
            client,
            Reporter {
                controller: "fiscus-operator".into(),
                instance: Some("test".into()),
            },
        ),
        Metrics::register(&registry).unwrap(),
    );
    ctx.dial = dial;
    Arc::new(ctx)
}

/// The stored FinanceMember, as the controller would hand it over.
fn stored_member(api: &FakeApi) -> Arc<FinanceMember> {
    Arc::new(serde_json::from_value(api.get(&member_path()).unwrap()).unwrap())
}

fn condition<'a>(m: &'a Value, type_: &str) -> &'a Value {
    m["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition: {}", m["status"]))
}

fn writes(api: &FakeApi) -> Vec<String> {
    api.take_seen()
        .into_iter()
        .filter(|s| s.is_write())
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

fn node_cert(api: &FakeApi) -> fiscus_common::tls::PeerIdentity {
    cert_in(api, "fiscus-130100-node-tls")
}

/// A Secret's file, as the pods would read it.
fn secret_file(api: &FakeApi, name: &str, key: &str) -> Vec<u8> {
    let secret = api
        .get(&object(("v1", "secrets"), name))
        .unwrap_or_else(|| panic!("no Secret {name}"));
    base64::engine::general_purpose::STANDARD
        .decode(secret["data"][key].as_str().unwrap())
        .unwrap()
}

/// The certificate an identity Secret holds.
fn cert_in(api: &FakeApi, secret: &str) -> fiscus_common::tls::PeerIdentity {
    file_cert(api, secret, "cert.pem")
}

/// The certificate in one file of an identity Secret.
fn file_cert(api: &FakeApi, secret: &str, key: &str) -> fiscus_common::tls::PeerIdentity {
    let pem = secret_file(api, secret, key);
    let der = fiscus_common::tls::parse_certs(std::path::Path::new(key), &pem).unwrap();
    fiscus_common::tls::PeerIdentity::from_der(&der[0]).unwrap()
}

/// Whether an identity Secret has the ECDSA pair.
fn has_ecdsa(api: &FakeApi, secret: &str) -> bool {
    let s = api.get(&object(("v1", "secrets"), secret)).unwrap();
    s["data"].get("cert-ecdsa.pem").is_some() && s["data"].get("key-ecdsa.pem").is_some()
}

/// The id of the certificate published as `node-130100.pem` in the signers ConfigMap.
fn signer_cert_id(api: &FakeApi) -> fiscus_proto::hash::Hash32 {
    let signers = api
        .get(&object(("v1", "configmaps"), "fiscus-signers"))
        .expect("the signers ConfigMap");
    let pem = signers["data"]["node-130100.pem"].as_str().unwrap();
    let der = fiscus_common::tls::parse_certs(std::path::Path::new("x"), pem.as_bytes()).unwrap();
    fiscus_common::tls::PeerIdentity::from_der(&der[0])
        .unwrap()
        .cert_id
}

/// Creates the member and runs one full pass (enrollment included).
async fn created(w: &World) -> Arc<Context> {
    w.api.insert(&member_path(), member_json("130000"));
    let ctx = context(&w.api);
    let action = reconcile::reconcile(stored_member(&w.api), ctx.clone())
        .await
        .unwrap();
    // Its ledger-store does not answer (no pod runs here): looked at again in a minute.
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    ctx
}

#[tokio::test]
async fn a_new_member_is_enrolled_at_the_ca_and_gets_the_chart_s_workloads() {
    let w = world().await;
    let _ctx = created(&w).await;
    let cert = node_cert(&w.api);
    assert_eq!(cert.member, CODE);
    assert!(
        cert.dns_names
            .contains(&"fiscus-130100-ledger-store".to_owned()),
        "{:?}",
        cert.dns_names
    );
    for (kind, name) in [
        (("apps/v1", "statefulsets"), "fiscus-130100-ledger-store"),
        (
            ("apps/v1", "deployments"),
            "fiscus-130100-contract-executor",
        ),
        (("apps/v1", "deployments"), "fiscus-130100-gossip-gateway"),
        (("apps/v1", "deployments"), "fiscus-130100-exchange-adapter"),
        (("v1", "services"), "fiscus-130100-gossip-gateway"),
        (("v1", "configmaps"), "fiscus-130100-ledger-store"),
        (
            ("networking.k8s.io/v1", "networkpolicies"),
            "fiscus-130100-ledger-store",
        ),
        (
            ("policy/v1", "poddisruptionbudgets"),
            "fiscus-130100-exchange-adapter",
        ),
        (("v1", "secrets"), "fiscus-130100-api-clients"),
    ] {
        let o = w
            .api
            .get(&object(kind, name))
            .unwrap_or_else(|| panic!("no {name}"));
        let owner = &o["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "FinanceMember", "{name}");
        assert_eq!(owner["controller"], true, "{name}");
    }
    // Beside it, the same identity with an ECDSA P-256 key, for TLS clients
    // without Ed25519; the adapter's configs name both.
    let ecdsa = file_cert(&w.api, "fiscus-130100-node-tls", "cert-ecdsa.pem");
    assert!(matches!(
        ecdsa.public_key,
        fiscus_common::tls::PublicKey::EcdsaP256(_)
    ));
    assert_eq!(
        (&ecdsa.member, ecdsa.role, &ecdsa.dns_names),
        (&cert.member, cert.role, &cert.dns_names)
    );
    assert!(has_ecdsa(&w.api, "fiscus-130100-node-tls"));
    assert!(
        !has_ecdsa(&w.api, "fiscus-130100-client-tls"),
        "the custodial client identity serves nothing"
    );
    let adapter_cm = w
        .api
        .get(&object(
            ("v1", "configmaps"),
            "fiscus-130100-exchange-adapter",
        ))
        .unwrap();
    let toml = adapter_cm["data"]["exchange-adapter.toml"]
        .as_str()
        .unwrap();
    assert!(
        toml.contains("ecdsa_cert_file = \"/etc/fiscus/tls/cert-ecdsa.pem\""),
        "{toml}"
    );
    // Its node certificate is published for the other members' services,
    // beside theirs.
    assert_eq!(signer_cert_id(&w.api), cert.cert_id);
    let signers = w
        .api
        .get(&object(("v1", "configmaps"), "fiscus-signers"))
        .unwrap();
    assert_eq!(
        signers["data"]["orderer-1.pem"],
        "-----BEGIN CERTIFICATE----- (kept)"
    );
    let m = w.api.get(&member_path()).unwrap();
    assert_eq!(condition(&m, "Enrolled")["status"], "True");
    assert_eq!(condition(&m, "Ready")["status"], "True");
    assert_eq!(condition(&m, "CertificateExpiring")["status"], "False");
    assert_eq!(condition(&m, "Synced")["status"], "Unknown");
    assert_eq!(condition(&m, "Synced")["reason"], "LedgerUnreachable");
    assert_eq!(m["status"]["observedGeneration"], 1);
    assert_eq!(m["status"]["certificateId"], cert.cert_id.to_hex());
    // Transitions were announced as Events.
    let seen = w.api.take_seen();
    assert!(
        seen.iter()
            .any(|s| s.method == Method::POST && s.path.ends_with("/events")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_unchanged_member_is_reconciled_without_a_single_write_or_event() {
    let w = world().await;
    let ctx = created(&w).await;
    w.api.take_seen();
    reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    let seen = w.api.take_seen();
    assert!(!seen.is_empty());
    let writes: Vec<_> = seen.iter().filter(|s| s.is_write()).collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn a_spec_change_rewrites_only_what_it_changes() {
    let w = world().await;
    let ctx = created(&w).await;
    w.api.take_seen();
    let mut m = w.api.get(&member_path()).unwrap();
    m["spec"]["gateway"] = json!({"serviceType": "NodePort"});
    m["metadata"]["generation"] = json!(2);
    w.api.insert(&member_path(), m);
    reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    let writes = writes(&w.api);
    assert_eq!(
        writes,
        vec![
            format!(
                "PATCH {}",
                object(("v1", "services"), "fiscus-130100-gossip-gateway")
            ),
            format!("PATCH {}/status", member_path()),
        ]
    );
    let svc = w
        .api
        .get(&object(("v1", "services"), "fiscus-130100-gossip-gateway"))
        .unwrap();
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(
        w.api.get(&member_path()).unwrap()["status"]["observedGeneration"],
        2
    );
}

#[tokio::test]
async fn a_certificate_inside_the_renewal_window_is_renewed_and_rolls_the_pods() {
    let w = world().await;
    let ctx = created(&w).await;
    let before = node_cert(&w.api);
    let client_before = cert_in(&w.api, "fiscus-130100-client-tls");
    let template_sum = |api: &FakeApi| {
        api.get(&object(
            ("apps/v1", "deployments"),
            "fiscus-130100-exchange-adapter",
        ))
        .unwrap()["spec"]["template"]["metadata"]["annotations"]["checksum/tls"]
            .clone()
    };
    let sum_before = template_sum(&w.api);
    // The clock moves to 10 days before expiry (the window is 30 days).
    let mut later = Arc::try_unwrap(ctx).expect("one owner");
    let expiry = before.not_after;
    later.clock = Box::new(move || expiry - 10 * 86_400);
    reconcile::reconcile(stored_member(&w.api), Arc::new(later))
        .await
        .unwrap();
    let after = node_cert(&w.api);
    assert_ne!(after.cert_id, before.cert_id);
    assert_eq!(
        file_cert(&w.api, "fiscus-130100-node-tls", "cert-ecdsa.pem").not_after,
        after.not_after,
        "the ECDSA certificate is renewed with it"
    );
    let client_after = cert_in(&w.api, "fiscus-130100-client-tls");
    assert_ne!(
        client_after.cert_id, client_before.cert_id,
        "the client certificate is renewed too"
    );
    assert_eq!(after.member, CODE);
    assert_ne!(
        template_sum(&w.api),
        sum_before,
        "pods roll with the new certificate"
    );
    let m = w.api.get(&member_path()).unwrap();
    assert_eq!(m["status"]["certificateId"], after.cert_id.to_hex());
    assert_eq!(
        signer_cert_id(&w.api),
        after.cert_id,
        "the renewed certificate is published"
    );
}

#[tokio::test]
async fn a_member_whose_parent_is_not_in_the_consortium_gets_invalid_spec_and_nothing_else() {
    let w = world().await;
    w.api.insert(&member_path(), member_json("139999"));
    let ctx = context(&w.api);
    let action = reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    let m = w.api.get(&member_path()).unwrap();
    let ready = condition(&m, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(
        ready["message"].as_str().unwrap().contains("139999"),
        "{ready}"
    );
    let writes = writes(&w.api);
    assert!(
        writes
            .iter()
            .all(|w| w.ends_with("/status") || w.ends_with("/events")),
        "{writes:?}"
    );
    assert!(
        w.api
            .get(&object(("v1", "secrets"), "fiscus-130100-node-tls"))
            .is_none()
    );
}

#[tokio::test]
async fn a_failing_api_call_fails_the_pass_and_requeues_with_growing_backoff() {
    let w = world().await;
    w.api.insert(&member_path(), member_json("130000"));
    w.api.fail(Fault {
        method: Method::PATCH,
        path_suffix: "/statefulsets/fiscus-130100-ledger-store".into(),
        status: 500,
        times: 2,
    });
    let ctx = context(&w.api);
    let m = stored_member(&w.api);
    let e = reconcile::reconcile(m.clone(), ctx.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("injected failure"), "{e}");
    assert_eq!(
        reconcile::error_policy(m.clone(), &e, ctx.clone()),
        Action::requeue(Duration::from_secs(5))
    );
    let e = reconcile::reconcile(stored_member(&w.api), ctx.clone())
        .await
        .unwrap_err();
    assert_eq!(
        reconcile::error_policy(m.clone(), &e, ctx.clone()),
        Action::requeue(Duration::from_secs(10))
    );
    // The fault is gone: the next pass succeeds and the backoff resets.
    reconcile::reconcile(stored_member(&w.api), ctx.clone())
        .await
        .unwrap();
    assert!(
        w.api
            .get(&object(
                ("apps/v1", "statefulsets"),
                "fiscus-130100-ledger-store"
            ))
            .is_some()
    );
    assert_eq!(ctx.metrics.failures.get(), 2);
}

#[tokio::test]
async fn a_new_member_first_gets_the_finalizer() {
    let w = world().await;
    let mut m = member_json("130000");
    m["metadata"]["finalizers"] = Value::Null;
    w.api.insert(&member_path(), m);
    let ctx = context(&w.api);
    let action = reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
    assert_eq!(
        w.api.get(&member_path()).unwrap()["metadata"]["finalizers"],
        json!([FINALIZER])
    );
    assert_eq!(writes(&w.api), vec![format!("PATCH {}", member_path())]);
}

async fn delete(w: &World, ctx: Arc<Context>, policy: &str) {
    let mut m = w.api.get(&member_path()).unwrap();
    m["metadata"]["deletionTimestamp"] = json!("2026-12-02T00:00:00Z");
    m["spec"]["deletionPolicy"] = json!(policy);
    w.api.insert(&member_path(), m);
    w.api.take_seen();
    let action = reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::await_change());
}

/// Whether the CA's CRL lists `cert`.
async fn revoked_at_ca(w: &World, cert: &fiscus_common::tls::PeerIdentity) -> bool {
    let svc = fiscus_identity_ca::ca::CaPaths::new(&w.ca_dir);
    let crl = std::fs::read(svc.crl()).unwrap();
    let crl = x509_parser::parse_x509_crl(&crl).unwrap().1;
    crl.iter_revoked_certificates()
        .any(|r| r.raw_serial() == cert.serial.as_slice())
}

#[tokio::test]
async fn deleting_a_member_revokes_its_certificate_first_and_keeps_its_ledger() {
    let w = world().await;
    let ctx = created(&w).await;
    let cert = node_cert(&w.api);
    let client = cert_in(&w.api, "fiscus-130100-client-tls");
    assert!(!revoked_at_ca(&w, &cert).await);
    assert!(!revoked_at_ca(&w, &client).await);
    delete(&w, ctx, "Retain").await;
    assert!(
        revoked_at_ca(&w, &cert).await,
        "the CRL lists the node certificate"
    );
    assert!(
        revoked_at_ca(&w, &client).await,
        "the CRL lists the client certificate"
    );
    let writes = writes(&w.api);
    assert!(
        writes.contains(&format!(
            "DELETE {}",
            object(("v1", "secrets"), "fiscus-130100-node-tls")
        )) && writes.contains(&format!(
            "DELETE {}",
            object(("v1", "secrets"), "fiscus-130100-client-tls")
        )),
        "{writes:?}"
    );
    assert!(
        !writes.iter().any(|w| w.contains("persistentvolumeclaims")),
        "{writes:?}"
    );
    assert_eq!(
        w.api.get(&member_path()).unwrap()["metadata"]["finalizers"],
        json!([])
    );
}

#[tokio::test]
async fn deleting_a_member_with_deletion_policy_delete_also_deletes_its_ledger_volume() {
    let w = world().await;
    let ctx = created(&w).await;
    let pvc = object(
        ("v1", "persistentvolumeclaims"),
        "data-fiscus-130100-ledger-store-0",
    );
    w.api.insert(
        &pvc,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "data-fiscus-130100-ledger-store-0", "namespace": NS}}),
    );
    delete(&w, ctx, "Delete").await;
    assert!(w.api.get(&pvc).is_none());
}

#[test]
fn the_committed_crds_are_the_ones_the_types_generate() {
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/crds/fiscus.io.yaml"),
    )
    .unwrap();
    assert!(
        committed == fiscus_operator::crds_yaml().unwrap(),
        "k8s/crds/fiscus.io.yaml drifted from operator/src/crd.rs: regenerate it with \
         `cargo run -p fiscus-operator -- crd > k8s/crds/fiscus.io.yaml` (and copy it to \
         charts/fiscus-operator/crds/)"
    );
}

/// The CRD's CEL rules, evaluated as the API server would.
#[test]
fn the_schema_refuses_a_missing_parent_a_wrong_supervisor_code_and_a_changed_code() {
    use fiscus_operator::crd::FinanceMemberSpec;
    let spec = member_json("130000")["spec"].clone();
    assert!(FinanceMemberSpec::validate_cel(&spec, None).is_ok());
    let mut no_parent = spec.clone();
    no_parent.as_object_mut().unwrap().remove("parentCode");
    let e = FinanceMemberSpec::validate_cel(&no_parent, None).unwrap_err();
    assert!(format!("{e:?}").contains("parentCode"), "{e:?}");
    let mut supervisor = spec.clone();
    supervisor["level"] = json!("supervisor");
    assert!(FinanceMemberSpec::validate_cel(&supervisor, None).is_err());
    let mut central = spec.clone();
    central["level"] = json!("central");
    assert!(
        FinanceMemberSpec::validate_cel(&central, None).is_err(),
        "central is 000000"
    );
    let mut renamed = spec.clone();
    renamed["code"] = json!("130200");
    assert!(FinanceMemberSpec::validate_cel(&renamed, Some(&spec)).is_err());
}

#[test]
fn the_schema_pins_codes_levels_and_roles() {
    let yaml = fiscus_operator::crds_yaml().unwrap();
    for needle in [
        "^[0-9]{6}$",
        "- central",
        "- supervisor",
        "- auditor",
        "x-kubernetes-validations",
    ] {
        assert!(yaml.contains(needle), "{needle} not in the CRD");
    }
}

#[tokio::test]
async fn a_member_with_an_api_enrollment_secret_gets_a_client_identity_for_its_adapter() {
    let w = world().await;
    let _ctx = created(&w).await;
    let client = cert_in(&w.api, "fiscus-130100-client-tls");
    assert_eq!(client.member, CODE);
    assert_eq!(client.role, fiscus_proto::pb::types::Role::Client);
    // Published beside the node certificate, so the transactions the
    // adapter signs with it verify at every member.
    let signers = w
        .api
        .get(&object(("v1", "configmaps"), "fiscus-signers"))
        .unwrap();
    let pem = signers["data"]["client-130100.pem"].as_str().unwrap();
    let der = fiscus_common::tls::parse_certs(std::path::Path::new("x"), pem.as_bytes()).unwrap();
    assert_eq!(
        fiscus_common::tls::PeerIdentity::from_der(&der[0])
            .unwrap()
            .cert_id,
        client.cert_id
    );
    assert!(signers["data"]["node-130100.pem"].is_string());
    // Mounted where api-clients.toml entries name the custodial signer.
    let adapter = w
        .api
        .get(&object(
            ("apps/v1", "deployments"),
            "fiscus-130100-exchange-adapter",
        ))
        .unwrap();
    let pod = &adapter["spec"]["template"]["spec"];
    assert!(
        pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "custodial" && v["mountPath"] == "/etc/fiscus/client"),
        "{pod}"
    );
    assert!(
        pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["secret"]["secretName"] == "fiscus-130100-client-tls"),
        "{pod}"
    );
    let m = w.api.get(&member_path()).unwrap();
    let enrolled = condition(&m, "Enrolled")["message"].as_str().unwrap();
    assert!(
        enrolled.contains("node certificate") && enrolled.contains("client certificate"),
        "{enrolled}"
    );
    assert!(
        m["status"]["clientCertificateNotAfter"].is_string(),
        "{}",
        m["status"]
    );
}

#[tokio::test]
async fn a_member_without_an_api_enrollment_secret_gets_no_client_identity() {
    let w = world().await;
    let mut m = member_json("130000");
    m["spec"]
        .as_object_mut()
        .unwrap()
        .remove("apiEnrollmentSecretRef");
    w.api.insert(&member_path(), m);
    reconcile::reconcile(stored_member(&w.api), context(&w.api))
        .await
        .unwrap();
    assert!(
        w.api
            .get(&object(("v1", "secrets"), "fiscus-130100-client-tls"))
            .is_none()
    );
    let adapter = w
        .api
        .get(&object(
            ("apps/v1", "deployments"),
            "fiscus-130100-exchange-adapter",
        ))
        .unwrap();
    assert!(!adapter.to_string().contains("custodial"));
}

#[tokio::test]
async fn a_cluster_with_the_prometheus_operator_gets_a_service_monitor_per_member() {
    let w = world().await;
    let discovery = "/apis/monitoring.coreos.com/v1";
    assert!(!reconcile::service_monitor_crd_exists(&w.api.client()).await);
    let ctx = created(&w).await;
    let monitor = path(
        "monitoring.coreos.com/v1",
        "servicemonitors",
        NS,
        "fiscus-130100",
    );
    assert!(w.api.get(&monitor).is_none());

    w.api.insert(
        discovery,
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "monitoring.coreos.com/v1",
               "resources": [{"name": "servicemonitors", "singularName": "servicemonitor",
                              "namespaced": true, "kind": "ServiceMonitor",
                              "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}]}),
    );
    assert!(reconcile::service_monitor_crd_exists(&w.api.client()).await);
    ctx.set_service_monitors(true);
    reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    let sm = w.api.get(&monitor).expect("a ServiceMonitor");
    assert_eq!(
        sm["metadata"]["ownerReferences"][0]["kind"],
        "FinanceMember"
    );
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "ops");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    let service = w
        .api
        .get(&object(("v1", "services"), "fiscus-130100-metrics"))
        .expect("the metrics Service it selects");
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(&service["metadata"]["labels"][k], v, "{k}");
    }
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "ops");
}

/// Writes an identity Secret's three files into `dir` (as its pod would see them).
fn identity_dir(api: &FakeApi, secret: &str, dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["cert.pem", "key.pem", "ca.pem"] {
        std::fs::write(dir.join(f), secret_file(api, secret, f)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_reports_the_ledger_s_height_and_its_lag_behind_the_orderers() {
    use fiscus_common::tls::{Endpoint, TlsConfig};
    use fiscus_orderer::testkit;

    let w = world().await;
    let _ = created(&w).await;
    let dir = tempfile::tempdir().unwrap();

    // A real orderer, with an orderer identity from the same identity-ca.
    let ca = fiscus_operator::enroll::CaTarget {
        endpoint: w._ca.grpc_addr.to_string(),
        server_name: "localhost".into(),
        root_pem: std::fs::read_to_string(
            fiscus_identity_ca::ca::CaPaths::new(&w.ca_dir).root_cert(),
        )
        .unwrap(),
    };
    let orderer_id = fiscus_operator::enroll::enroll(
        &ca,
        "000000",
        fiscus_proto::pb::types::Role::Orderer,
        &w.secret("000000", "orderer"),
        &["orderer-1".into()],
        false,
    )
    .await
    .unwrap();
    let orderer_tls = dir.path().join("orderer-tls");
    std::fs::create_dir_all(&orderer_tls).unwrap();
    for (f, text) in [
        ("cert.pem", &orderer_id.cert_pem),
        ("key.pem", &orderer_id.key_pem),
        ("ca.pem", &orderer_id.ca_pem),
    ] {
        std::fs::write(orderer_tls.join(f), text).unwrap();
    }
    // Both read the signers the operator published: the client certificate
    // signs the transactions, the orderer's signs the blocks.
    let signers = dir.path().join("signers");
    std::fs::create_dir_all(&signers).unwrap();
    let published = w
        .api
        .get(&object(("v1", "configmaps"), "fiscus-signers"))
        .unwrap();
    for key in ["node-130100.pem", "client-130100.pem"] {
        std::fs::write(signers.join(key), published["data"][key].as_str().unwrap()).unwrap();
    }
    std::fs::write(signers.join("orderer-1.pem"), &orderer_id.cert_pem).unwrap();
    let listeners = testkit::bind(1).await;
    let orderer_addr = listeners[0].client.local_addr().unwrap();
    let peer = fiscus_orderer::config::Peer {
        id: 1,
        raft_addr: listeners[0].raft.local_addr().unwrap().to_string(),
        client_addr: orderer_addr.to_string(),
        server_name: "orderer-1".into(),
    };
    let orderer = fiscus_orderer::start_with(
        fiscus_orderer::Config {
            node_id: 1,
            consortium_id: "fiscus-test".into(),
            listen: orderer_addr,
            raft_listen: peer.raft_addr.parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: dir.path().join("orderer-data"),
            peers: vec![peer],
            tls: TlsConfig::in_dir(&orderer_tls),
            signers_dir: signers.clone(),
            raft: fiscus_orderer::RaftTiming {
                tick_ms: 50,
                ..Default::default()
            },
            ..Default::default()
        },
        listeners.into_iter().next().unwrap(),
    )
    .await
    .unwrap();
    testkit::wait_for_leader(&[&orderer], Duration::from_secs(60)).await;

    // Three transactions signed with the member's client identity: blocks.
    let client_tls = dir.path().join("client-tls");
    identity_dir(&w.api, "fiscus-130100-client-tls", &client_tls);
    let key_pem =
        String::from_utf8(secret_file(&w.api, "fiscus-130100-client-tls", "key.pem")).unwrap();
    let signer = testkit::Signer {
        key: fiscus_proto::sign::SigningKey::from_pkcs8_pem(&key_pem).unwrap(),
        cert_id: cert_in(&w.api, "fiscus-130100-client-tls").cert_id,
        serial: Vec::new(),
        cert_file: client_tls.join("cert.pem"),
    };
    let mut client = fiscus_proto::pb::orderer::orderer_client::OrdererClient::new(
        testkit::channel(&client_tls, orderer_addr, "orderer-1").await,
    );
    let envelopes = (1..=3).map(|n| signer.envelope("fiscus-test", n)).collect();
    let acks = testkit::broadcast(&mut client, envelopes, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(acks.len(), 3);
    testkit::wait_for_height(&[&orderer], 1, Duration::from_secs(60)).await;

    // Two ledger-stores with the member's node identity, as its pod has it:
    // one that follows the orderer, one that does not.
    let node_tls = dir.path().join("node-tls");
    identity_dir(&w.api, "fiscus-130100-node-tls", &node_tls);
    let genesis = fiscus_identity_ca::ca::CaPaths::new(&w.ca_dir).consortium_config();
    let ledger = |name: &str, follow: bool| fiscus_ledger_store::server::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        http_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().join(name),
        tls: TlsConfig::in_dir(&node_tls),
        genesis_file: genesis.clone(),
        signers_dir: signers.clone(),
        orderers: if follow {
            vec![Endpoint {
                addr: orderer_addr.to_string(),
                server_name: "orderer-1".into(),
            }]
        } else {
            Vec::new()
        },
        executor: None,
        ..Default::default()
    };
    let behind = fiscus_ledger_store::server::start(ledger("behind", false))
        .await
        .unwrap();
    let following = fiscus_ledger_store::server::start(ledger("following", true))
        .await
        .unwrap();

    // The operator dials the cluster's names; here they lead to loopback.
    let dialling = |ledger_addr: std::net::SocketAddr| -> fiscus_operator::sync::Dial {
        Arc::new(move |addr: &str| {
            if addr.starts_with("fiscus-130100-ledger-store.") {
                ledger_addr.to_string()
            } else if addr.starts_with("fiscus-orderer-0.") {
                orderer_addr.to_string()
            } else {
                closed_port()
            }
        })
    };
    let mut m = w.api.get(&member_path()).unwrap();
    m["spec"]["syncedLagBlocks"] = json!(0);
    w.api.insert(&member_path(), m);

    let ctx = context_dialling(&w.api, dialling(behind.addr));
    let action = reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    assert_eq!(action, Action::requeue(Duration::from_secs(60)));
    let m = w.api.get(&member_path()).unwrap();
    let synced = condition(&m, "Synced");
    assert_eq!(synced["status"], "False", "{synced}");
    assert_eq!(synced["reason"], "Behind");
    assert_eq!(m["status"]["height"], 0);
    let head = m["status"]["lag"].as_u64().unwrap();
    assert!(head >= 1, "{}", m["status"]);

    // The following ledger catches up; the condition turns True.
    let ctx = context_dialling(&w.api, dialling(following.addr));
    let until = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let action = reconcile::reconcile(stored_member(&w.api), ctx.clone())
            .await
            .unwrap();
        let m = w.api.get(&member_path()).unwrap();
        if condition(&m, "Synced")["status"] == "True" {
            assert_eq!(action, Action::requeue(Duration::from_secs(300)));
            assert_eq!(condition(&m, "Synced")["reason"], "CaughtUp");
            assert!(
                m["status"]["height"].as_u64().unwrap() >= head,
                "{}",
                m["status"]
            );
            assert_eq!(m["status"]["lag"], 0);
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "never synced: {}",
            condition(&m, "Synced")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_client_identity_the_spec_no_longer_names_is_revoked_and_unmounted() {
    let w = world().await;
    let ctx = created(&w).await;
    let client = cert_in(&w.api, "fiscus-130100-client-tls");
    let mut m = w.api.get(&member_path()).unwrap();
    m["spec"]
        .as_object_mut()
        .unwrap()
        .remove("apiEnrollmentSecretRef");
    m["metadata"]["generation"] = json!(2);
    w.api.insert(&member_path(), m);
    reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    assert!(revoked_at_ca(&w, &client).await, "the CRL lists it");
    assert!(
        w.api
            .get(&object(("v1", "secrets"), "fiscus-130100-client-tls"))
            .is_none()
    );
    let adapter = w
        .api
        .get(&object(
            ("apps/v1", "deployments"),
            "fiscus-130100-exchange-adapter",
        ))
        .unwrap();
    assert!(!adapter.to_string().contains("custodial"));
    let m = w.api.get(&member_path()).unwrap();
    assert!(
        m["status"]["clientCertificateNotAfter"].is_null(),
        "{}",
        m["status"]
    );
    // The node identity is untouched.
    assert!(!revoked_at_ca(&w, &node_cert(&w.api)).await);
}

#[tokio::test]
async fn a_node_identity_without_an_ecdsa_certificate_is_renewed_to_get_one() {
    let w = world().await;
    let ctx = created(&w).await;
    let before = node_cert(&w.api);
    // As an operator before the ECDSA certificate left it.
    let path = object(("v1", "secrets"), "fiscus-130100-node-tls");
    let mut secret = w.api.get(&path).unwrap();
    let data = secret["data"].as_object_mut().unwrap();
    data.remove("cert-ecdsa.pem");
    data.remove("key-ecdsa.pem");
    w.api.insert(&path, secret);
    reconcile::reconcile(stored_member(&w.api), ctx)
        .await
        .unwrap();
    assert!(has_ecdsa(&w.api, "fiscus-130100-node-tls"));
    let after = node_cert(&w.api);
    assert_ne!(after.cert_id, before.cert_id, "renewed, not expiring");
    let ecdsa = file_cert(&w.api, "fiscus-130100-node-tls", "cert-ecdsa.pem");
    assert_eq!((&ecdsa.member, ecdsa.role), (&after.member, after.role));
    assert_eq!(signer_cert_id(&w.api), after.cert_id);
}
