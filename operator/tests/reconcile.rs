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
    let secret = secrets
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["member"] == CODE && s["role"] == "node")
        .unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();

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
               "data": {"secret": b64(secret.as_bytes())}}),
    );
    World {
        api,
        _ca: ca,
        _dir: dir,
        ca_dir,
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
        }
    })
}

fn context(api: &FakeApi) -> Arc<Context> {
    let client = api.client();
    let registry = prometheus::Registry::new();
    Arc::new(Context::new(
        client.clone(),
        Recorder::new(
            client,
            Reporter {
                controller: "fiscus-operator".into(),
                instance: Some("test".into()),
            },
        ),
        Metrics::register(&registry).unwrap(),
    ))
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
    let secret = api
        .get(&object(("v1", "secrets"), "fiscus-130100-node-tls"))
        .expect("the node certificate's Secret");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["cert.pem"].as_str().unwrap())
        .unwrap();
    let der = fiscus_common::tls::parse_certs(std::path::Path::new("cert.pem"), &pem).unwrap();
    fiscus_common::tls::PeerIdentity::from_der(&der[0]).unwrap()
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
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
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
    assert!(!revoked_at_ca(&w, &cert).await);
    delete(&w, ctx, "Retain").await;
    assert!(
        revoked_at_ca(&w, &cert).await,
        "the CRL lists the node certificate"
    );
    let writes = writes(&w.api);
    assert!(
        writes.contains(&format!(
            "DELETE {}",
            object(("v1", "secrets"), "fiscus-130100-node-tls")
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
