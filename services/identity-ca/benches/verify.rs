//! `Verify` throughput: the check itself (chain + CRL + Ed25519), and the
//! whole RPC over mutual TLS on loopback, one at a time and 64 at once.
//! Run with `cargo bench -p fiscus-identity-ca`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fiscus_identity_ca::client::{self, EnrollArgs};
use fiscus_identity_ca::registry::Registry;
use fiscus_identity_ca::{ChainVerifier, Config, EnrollmentSecret, InitOptions, Verdict};
use fiscus_proto::pb::identity::VerifyRequest;
use fiscus_proto::pb::types::Role;
use std::path::Path;

fn init_opts(dir: &Path) -> InitOptions {
    InitOptions {
        data_dir: dir.to_owned(),
        consortium_id: "bench".into(),
        force: false,
        all_hebei: false,
        server_names: vec!["localhost".into()],
        root_validity_years: 1,
        cert_validity_days: 30,
    }
}

fn secret(dir: &Path, member: &str, role: &str) -> String {
    let all: Vec<EnrollmentSecret> =
        serde_json::from_slice(&std::fs::read(dir.join("enrollment-secrets.json")).unwrap())
            .unwrap();
    all.into_iter()
        .find(|s| s.member == member && s.role == role)
        .unwrap()
        .secret
}

fn verify(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ca_dir = tmp.path().join("ca");
    rt.block_on(fiscus_identity_ca::init(&init_opts(&ca_dir)))
        .unwrap();
    let running = rt
        .block_on(fiscus_identity_ca::start(Config {
            data_dir: ca_dir.clone(),
            listen: "127.0.0.1:0".parse().unwrap(),
            http_listen: "127.0.0.1:0".parse().unwrap(),
            ..Config::default()
        }))
        .unwrap();
    let addr = running.grpc_addr.to_string();
    let root = ca_dir.join("ca/root.pem");
    let signer_dir = tmp.path().join("signer");
    rt.block_on(async {
        let mut anon = client::connect(&addr, "localhost", None, &root)
            .await
            .unwrap();
        client::enroll(
            &mut anon,
            &EnrollArgs {
                key_type: fiscus_identity_ca::ca::KeyType::Ed25519,
                ecdsa_certificate: true,
                member: "130102".into(),
                role: Role::Client,
                secret: Some(secret(&ca_dir, "130102", "client")),
                dns_names: vec![],
                ips: vec![],
                out_dir: signer_dir.clone(),
            },
        )
        .await
        .unwrap();
    });
    let chain = client::read_pem_certs(&signer_dir.join("cert.pem")).unwrap();
    let message = vec![0x5au8; 256];
    let signature = client::sign_with_key_file(&signer_dir.join("key.pem"), &message).unwrap();

    // The check alone, on a second CA's registry (the running one holds its own open).
    let core_dir = tmp.path().join("core");
    rt.block_on(fiscus_identity_ca::init(&init_opts(&core_dir)))
        .unwrap();
    let core_registry = Registry::open(&core_dir.join("registry.redb")).unwrap();
    let core_root = client::read_pem_certs(&core_dir.join("ca/root.pem")).unwrap();
    let core_verifier = ChainVerifier::new(&core_root).unwrap();
    let core_chain = {
        let ca =
            fiscus_identity_ca::ca::RootCa::load(&fiscus_identity_ca::ca::CaPaths::new(&core_dir))
                .unwrap();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let issued = ca
            .issue_for_key(
                &key,
                &fiscus_identity_ca::ca::LeafSpec::valid_for_days("130102", Role::Client, 30),
            )
            .unwrap();
        let sig = rcgen::SigningKey::sign(&key, &message).unwrap();
        (vec![issued.der], sig)
    };
    let mut group = c.benchmark_group("identity_ca/verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("check_chain_crl_signature", |b| {
        b.iter(|| {
            let v = rt
                .block_on(core_verifier.verify(
                    &core_registry,
                    &core_chain.0,
                    &message,
                    &core_chain.1,
                    0,
                ))
                .unwrap();
            assert!(matches!(v, Verdict::Valid(_)));
        })
    });

    let mut conn = rt
        .block_on(client::connect(
            &addr,
            "localhost",
            Some(&signer_dir),
            &root,
        ))
        .unwrap();
    let req = VerifyRequest {
        chain,
        message,
        signature,
        crl_number: 0,
    };
    group.bench_function("grpc_mtls_sequential", |b| {
        b.iter(|| {
            let r = rt.block_on(conn.verify(req.clone())).unwrap().into_inner();
            assert!(r.valid);
        })
    });
    group.throughput(Throughput::Elements(64));
    group.bench_function("grpc_mtls_64_concurrent", |b| {
        b.iter(|| {
            rt.block_on(async {
                let calls = (0..64).map(|_| {
                    let mut c = conn.clone();
                    let r = req.clone();
                    async move { c.verify(r).await.unwrap().into_inner().valid }
                });
                assert!(
                    futures::future::join_all(calls)
                        .await
                        .into_iter()
                        .all(|v| v)
                );
            })
        })
    });
    group.finish();
    rt.block_on(running.stop()).unwrap();
}

criterion_group!(benches, verify);
criterion_main!(benches);
