//! Criterion benchmarks of the `qbench bench kernels` shapes, on 1 and 2 threads (local rayon
//! pools): `cargo bench -p qbench-kernels`. Throughput is reported in MACs (bit-MACs for the
//! binary convolution) as "elements".

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use qbench_kernels::*;
use std::hint::black_box;

fn conv(batch: usize, cin: usize, hw: usize) -> ConvGeometry {
    ConvGeometry {
        batch,
        in_channels: cin,
        in_h: hw,
        in_w: hw,
        out_channels: 64,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    }
}

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

fn words(n: usize, seed: u64) -> Vec<u64> {
    bytes(n * 8, seed)
        .chunks(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn benches(c: &mut Criterion) {
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut group = c.benchmark_group(format!("kernels/{threads}t"));
        group.sample_size(20);

        let (m, n, k) = (1024, 1024, 1024);
        let a = bytes(m * k, 1);
        let b: Vec<i8> = bytes(n * k, 2).into_iter().map(|v| v as i8).collect();
        let pb = PackedWeightsI8::new(&b, n, k);
        let mut out = vec![0i32; m * n];
        group.throughput(Throughput::Elements((m * n * k) as u64));
        group.bench_function("gemm_u8i8_1024", |bch| {
            bch.iter(|| pool.install(|| gemm_u8i8_packed(black_box(&a), &pb, &mut out, m)))
        });

        for (name, g) in [
            ("conv3x3_64x64_56x56_n1", conv(1, 64, 56)),
            ("conv3x3_32x64_14x14_n64", conv(64, 32, 14)),
        ] {
            let input = bytes(g.batch * g.in_channels * g.in_h * g.in_w, 3);
            let w: Vec<i8> = bytes(64 * g.in_channels * 9, 4)
                .into_iter()
                .map(|v| v as i8)
                .collect();
            let pw = PackedConvWeights::new(&w, &g);
            let mut out = vec![0i32; g.batch * 64 * g.out_h() * g.out_w()];
            let macs = (g.batch * 64 * g.out_h() * g.out_w() * g.in_channels * 9) as u64;
            group.throughput(Throughput::Elements(macs));
            group.bench_function(name, |bch| {
                bch.iter(|| {
                    pool.install(|| conv2d_u8i8_packed(black_box(&input), &pw, &mut out, &g, 3))
                })
            });
        }

        let g = ConvGeometry {
            in_channels: 128,
            out_channels: 128,
            groups: 128,
            ..conv(1, 128, 56)
        };
        let input = bytes(128 * 56 * 56, 7);
        let w: Vec<i8> = bytes(128 * 9, 8).into_iter().map(|v| v as i8).collect();
        let pw = PackedDepthwiseWeights::new(&w, &g);
        let mut out = vec![0i32; 128 * 56 * 56];
        group.throughput(Throughput::Elements((128 * 56 * 56 * 9) as u64));
        group.bench_function("depthwise3x3_128_56x56_n1", |bch| {
            bch.iter(|| {
                pool.install(|| {
                    depthwise_conv2d_u8i8_packed(black_box(&input), &pw, &mut out, &g, 3)
                })
            })
        });

        let g = conv(1, 64, 56);
        let input = words(56 * 56, 5);
        let pw = PackedBinaryConvWeights::new(&words(64 * 9, 6), &g);
        let mut out = vec![0i32; 64 * 56 * 56];
        group.throughput(Throughput::Elements((64 * 56 * 56 * 9 * 64) as u64));
        group.bench_function("binary_conv3x3_64x64_56x56_n1", |bch| {
            bch.iter(|| pool.install(|| binary_conv2d_packed(black_box(&input), &pw, &mut out, &g)))
        });
        group.finish();
    }
}

criterion_group!(kernel_benches, benches);
criterion_main!(kernel_benches);
