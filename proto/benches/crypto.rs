//! The physical floor: Ed25519, SHA-256 and Merkle costs on this machine.
//! Run with `make bench` or `cargo bench -p fiscus-proto`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fiscus_proto::hash::{sha256, tx_id};
use fiscus_proto::merkle;
use fiscus_proto::sign::{SigCheck, SigningKey, verify, verify_batch};
use std::hint::black_box;

/// `n` signed payloads from `signers` distinct keys.
fn signed(n: usize, signers: usize) -> Vec<([u8; 32], Vec<u8>, [u8; 64])> {
    (0..n)
        .map(|i| {
            let key = SigningKey::from_seed(&sha256(&((i % signers) as u64).to_be_bytes()).0);
            let msg =
                format!("payload {i}: allocate 100000 fen from 130000 to 130100").into_bytes();
            let sig = key.sign(&msg);
            (key.public_key(), msg, sig)
        })
        .collect()
}

/// The items of [`signed`] as verification inputs.
fn checks(owned: &[([u8; 32], Vec<u8>, [u8; 64])]) -> Vec<SigCheck<'_>> {
    owned
        .iter()
        .map(|(k, m, s)| SigCheck {
            public_key: k,
            message: m,
            signature: s,
        })
        .collect()
}

fn ed25519(c: &mut Criterion) {
    let key = SigningKey::from_seed(&[7; 32]);
    let msg = vec![0x5a; 256];
    let sig = key.sign(&msg);
    let pk = key.public_key();
    c.bench_function("ed25519/sign_256B", |b| {
        b.iter(|| key.sign(black_box(&msg)))
    });
    c.bench_function("ed25519/verify_strict_256B", |b| {
        b.iter(|| verify(black_box(&pk), black_box(&msg), black_box(&sig)))
    });

    let mut group = c.benchmark_group("ed25519/verify_batch");
    for n in [64usize, 256] {
        let items_owned = signed(n, n);
        let items = checks(&items_owned);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("batch", n), &items, |b, items| {
            b.iter(|| verify_batch(black_box(items)))
        });
        // The same signatures checked one by one, for the ratio.
        group.bench_with_input(BenchmarkId::new("one_by_one", n), &items, |b, items| {
            b.iter(|| {
                items
                    .iter()
                    .map(|i| verify(i.public_key, i.message, i.signature))
                    .collect::<Vec<_>>()
            })
        });
    }
    // A block's worth from a handful of client keys, as in a real block.
    let items_owned = signed(256, 4);
    let items = checks(&items_owned);
    group.bench_with_input(
        BenchmarkId::new("batch_4_signers", 256),
        &items,
        |b, items| b.iter(|| verify_batch(black_box(items))),
    );
    group.finish();
}

fn hashing(c: &mut Criterion) {
    let kib = vec![0xa5u8; 1024];
    let mut group = c.benchmark_group("sha256");
    group.throughput(Throughput::Bytes(1024));
    group.bench_function("1KiB", |b| b.iter(|| sha256(black_box(&kib))));
    group.finish();

    let ids: Vec<_> = (0..1000u64).map(|i| tx_id(&i.to_be_bytes())).collect();
    c.bench_function("merkle/root_1000_tx_ids", |b| {
        b.iter(|| merkle::root(black_box(&ids)))
    });
    let root = merkle::root(&ids);
    c.bench_function("merkle/prove_1_of_1000", |b| {
        b.iter(|| merkle::prove(black_box(&ids), black_box(617)))
    });
    let proof = merkle::prove(&ids, 617).expect("index is in range");
    c.bench_function("merkle/verify_1_of_1000", |b| {
        b.iter(|| merkle::verify(black_box(&root), black_box(&ids[617].0), black_box(&proof)))
    });
}

criterion_group!(benches, ed25519, hashing);
criterion_main!(benches);
