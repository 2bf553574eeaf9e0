//! A province's worth of members: 200 `FinanceMember`s reconciled against
//! the fake API server (`fiscus_operator::testkit`), 16 at a time as the
//! controller would run them. Two passes are measured: the first (every
//! object of every member applied) and an unchanged one (reads only).
//! Identities are issued beforehand by the consortium root, so no CA round
//! trip is timed. No ledger-store or orderer runs: the `Synced` read of each
//! member dials a closed loopback port and is refused, so its TLS set-up and
//! connection attempts are timed but no gRPC answer is.
//! Run with `cargo bench -p fiscus-operator`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark

use base64::Engine as _;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fiscus_identity_ca::ca::{CaPaths, LeafSpec, RootCa, private_key_pem};
use fiscus_operator::crd::FinanceMember;
use fiscus_operator::reconcile::{self, Context, FINALIZER, Metrics};
use fiscus_operator::testkit::{FakeApi, path};
use fiscus_proto::pb::types::Role;
use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use prost::Message;
use serde_json::json;
use std::sync::Arc;

const NS: &str = "fiscus";
const MEMBERS: usize = 200;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The fake cluster with the consortium and 200 enrolled members.
fn province(rt: &tokio::runtime::Runtime) -> (FakeApi, Vec<String>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    rt.block_on(fiscus_identity_ca::init(&fiscus_identity_ca::InitOptions {
        data_dir: ca_dir.clone(),
        consortium_id: "fiscus-bench".into(),
        force: false,
        all_hebei: true,
        server_names: vec!["localhost".into()],
        root_validity_years: 10,
        cert_validity_days: 825,
    }))
    .unwrap();
    let paths = CaPaths::new(&ca_dir);
    let root = RootCa::load(&paths).unwrap();
    // Hebei's divisions, and made-up ones under Hebei to reach 200.
    let mut config = fiscus_proto::pb::types::ConsortiumConfig::decode(
        &std::fs::read(paths.consortium_config()).unwrap()[..],
    )
    .unwrap();
    let mut orgs: Vec<(String, String)> = config
        .orgs
        .iter()
        .filter(|o| !o.parent.is_empty() && !o.code.starts_with("99"))
        .map(|o| (o.code.clone(), o.parent.clone()))
        .collect();
    let mut n = 0;
    while orgs.len() < MEMBERS {
        n += 1;
        let code = format!("1398{n:02}");
        config.orgs.push(fiscus_proto::pb::types::Org {
            code: code.clone(),
            name: format!("bench {n}"),
            level: 3,
            parent: "130000".into(),
        });
        orgs.push((code, "130000".into()));
    }
    orgs.truncate(MEMBERS);

    let api = FakeApi::default();
    api.insert(
        &path("fiscus.io/v1alpha1", "consortiums", NS, "hebei"),
        json!({"apiVersion": "fiscus.io/v1alpha1", "kind": "Consortium",
               "metadata": {"name": "hebei", "namespace": NS},
               "spec": {"consortiumId": "fiscus-bench",
                        "genesis": {"kind": "Secret", "name": "genesis", "key": "config.pb"},
                        "signersConfigMap": "signers",
                        "identityCa": {"endpoint": "ca:7100", "serverName": "ca",
                                       "rootCert": {"kind": "ConfigMap", "name": "root", "key": "ca.pem"}},
                        "orderers": [{"endpoint": "orderer-0:7050", "serverName": "orderer-1"}],
                        "image": {"repository": "fiscus", "tag": "bench"}}}),
    );
    api.insert(
        &path("v1", "secrets", NS, "genesis"),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "genesis", "namespace": NS},
               "data": {"config.pb": b64(&config.encode_to_vec())}}),
    );
    api.insert(
        &path("v1", "configmaps", NS, "root"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "root", "namespace": NS},
               "data": {"ca.pem": root.root_pem}}),
    );
    let mut names = Vec::new();
    for (code, parent) in &orgs {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut spec = LeafSpec::valid_for_days(code, Role::Node, 825);
        let dns = fiscus_operator::resources::dns_names(code);
        spec.add_names(&dns.iter().map(String::as_str).collect::<Vec<_>>());
        let issued = root.issue_for_key(&key, &spec).unwrap();
        api.insert(
            &path("v1", "secrets", NS, &fiscus_operator::resources::tls_secret_name(code)),
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": fiscus_operator::resources::tls_secret_name(code), "namespace": NS},
                   "data": {"cert.pem": b64(issued.pem.as_bytes()),
                            "key.pem": b64(private_key_pem(&key).as_bytes()),
                            "ca.pem": b64(root.root_pem.as_bytes())}}),
        );
        let name = format!("m-{code}");
        api.insert(
            &path("fiscus.io/v1alpha1", "financemembers", NS, &name),
            json!({"apiVersion": "fiscus.io/v1alpha1", "kind": "FinanceMember",
                   "metadata": {"name": name, "namespace": NS, "generation": 1, "finalizers": [FINALIZER]},
                   "spec": {"code": code, "nameZh": "财政局", "nameEn": "Finance Bureau",
                            "level": "county", "parentCode": parent, "roles": ["node"],
                            "consortiumRef": {"name": "hebei"},
                            "enrollmentSecretRef": {"name": "unused"}}}),
        );
        names.push(name);
    }
    (api, names, dir)
}

async fn pass(api: &FakeApi, names: &[String], closed: &str) {
    let client = api.client();
    let mut ctx = Context::new(
        client.clone(),
        Recorder::new(
            client,
            Reporter {
                controller: "fiscus-operator".into(),
                instance: None,
            },
        ),
        Metrics::register(&prometheus::Registry::new()).unwrap(),
    );
    let closed = closed.to_owned();
    ctx.dial = Arc::new(move |_: &str| closed.clone());
    let ctx = Arc::new(ctx);
    futures::stream::iter(names)
        .for_each_concurrent(16, |name| {
            let ctx = ctx.clone();
            async move {
                let m: FinanceMember = serde_json::from_value(
                    api.get(&path("fiscus.io/v1alpha1", "financemembers", NS, name))
                        .unwrap(),
                )
                .unwrap();
                reconcile::reconcile(Arc::new(m), ctx).await.unwrap();
            }
        })
        .await;
}

fn province_of_members(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (api, names, _dir) = province(&rt);
    // A loopback port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let mut group = c.benchmark_group("operator");
    group.sample_size(10);
    group.bench_function("first_pass_200_members", |b| {
        b.iter_batched(
            || api.fork(),
            |fresh| rt.block_on(pass(&fresh, &names, &closed)),
            BatchSize::PerIteration,
        );
    });
    let settled = api.fork();
    rt.block_on(pass(&settled, &names, &closed));
    group.bench_function("unchanged_pass_200_members", |b| {
        b.iter(|| rt.block_on(pass(&settled, &names, &closed)));
    });
    let writes = settled.take_seen();
    let _ = writes;
    rt.block_on(pass(&settled, &names, &closed));
    let writes = settled.take_seen().iter().filter(|s| s.is_write()).count();
    assert_eq!(writes, 0, "an unchanged pass wrote");
    group.finish();
}

criterion_group!(benches, province_of_members);
criterion_main!(benches);
