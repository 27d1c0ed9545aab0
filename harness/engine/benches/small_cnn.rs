//! Throughput of the fast executor on the reference small CNN (conv 1->32 3x3 pad 1, shift requant,
//! max pool 2, conv 32->64 3x3 pad 1, shift requant, max pool 2, dense 3136->10; random int8 weights)
//! over 10,000 random 28x28 images: the engine's speed target is under one second on 2 cores.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-engine cargo bench -p qbench-engine --bench small_cnn`

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qbench_engine::{FastExecutor, evaluate};
use rand::Rng;

const IMAGES: usize = 10_000;

fn bench(c: &mut Criterion) {
    let graph = common::small_cnn(42, 32, 64);
    let mut r = common::rng(1);
    let images: Vec<u8> = (0..IMAGES * 784).map(|_| r.random()).collect();
    let labels: Vec<u16> = (0..IMAGES).map(|_| r.random_range(0..10)).collect();
    let exec = FastExecutor::new(&graph).unwrap();

    let mut group = c.benchmark_group("small_cnn_mnist");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(IMAGES as u64));
    group.bench_function("run_10k_batch256", |b| {
        b.iter(|| {
            for chunk in images.chunks(256 * 784) {
                std::hint::black_box(exec.run(chunk, chunk.len() / 784).unwrap());
            }
        })
    });
    group.bench_function("evaluate_10k_batch256", |b| {
        b.iter(|| std::hint::black_box(evaluate(&graph, &images, &labels, 256, |_| {}).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
