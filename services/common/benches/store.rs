//! The embedded store's commit cost: one 1,000-key batch, fsynced.
//! Run with `make bench` or `cargo bench -p fiscus-common`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fiscus_common::store::{StateStore, StoreLimits, WriteBatch, redb::RedbStore};
use std::hint::black_box;

fn redb_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = RedbStore::open(&dir.path().join("bench.redb"), StoreLimits::default())
        .expect("open store");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut round = 0u64;
    let mut group = c.benchmark_group("redb");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(30);
    group.bench_function("commit_1000_keys_fsync", |b| {
        b.iter_batched(
            || {
                round += 1;
                let mut batch = WriteBatch::new();
                for k in 0..1000u64 {
                    // Account-like keys spread over the key space, 64-byte values.
                    let key = format!("acct/{:06}/{:016x}", k % 997, round.wrapping_mul(1000) + k);
                    batch = batch.put(key, vec![(k % 251) as u8; 64]);
                }
                batch
            },
            |batch| rt.block_on(store.commit(black_box(batch))).expect("commit"),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, redb_commit);
criterion_main!(benches);
