//! Profiling helper: run one benchmark shape in a loop on one thread, e.g.
//! `perf record target/release/examples/one gemm`. Shapes: `gemm`, `c64`, `c32`, `bin`, or
//! `cfg:BATCH:CIN:HW:COUT:STRIDE` (a 3x3 convolution with pad 1), `gcfg:M:N:K` (int8 GEMM),
//! `dwcfg:BATCH:C:HW:K:STRIDE` (a KxK depthwise convolution with pad K/2),
//! `bcfg:BATCH:CIN:HW:COUT` (binary 3x3), `bgemm`.
use qbench_kernels::*;

fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "c32".into());
    let conv = |batch, cin, hw| ConvGeometry {
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
    };
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut run: Box<dyn FnMut() + Send> = match which.as_str() {
        "gemm" => {
            let (a, b) = (vec![3u8; 1 << 20], vec![-3i8; 1 << 20]);
            let pb = PackedWeightsI8::new(&b, 1024, 1024);
            let mut c = vec![0; 1 << 20];
            Box::new(move || gemm_u8i8_packed(&a, &pb, &mut c, 1024))
        }
        "bin" => {
            let g = conv(1, 64, 56);
            let input = vec![0x5555_aaaa_0f0f_f0f0u64; 56 * 56];
            let pw = PackedBinaryConvWeights::new(&vec![0x1234_5678_9abc_def0u64; 64 * 9], &g);
            let mut out = vec![0; 64 * 56 * 56];
            Box::new(move || binary_conv2d_packed(&input, &pw, &mut out, &g))
        }
        "bgemm" => {
            // A binary MLP layer: 64 rows x 4096 bits against 4096 weight rows.
            let (m, n, bits) = (64, 4096, 4096);
            let a = vec![0x5555_aaaa_0f0f_f0f0u64; m * bits / 64];
            let pw =
                PackedBinaryWeights::new(&vec![0x1234_5678_9abc_def0u64; n * bits / 64], n, bits);
            let mut c = vec![0; m * n];
            Box::new(move || binary_gemm_packed(&a, &pw, &mut c, m))
        }
        x if x.starts_with("bcfg:") => {
            // bcfg:batch:cin:hw:cout (binary 3x3, pad 1).
            let v: Vec<usize> = x.split(':').skip(1).map(|t| t.parse().unwrap()).collect();
            let g = ConvGeometry {
                out_channels: v[3],
                ..conv(v[0], v[1], v[2])
            };
            let words = words_for_bits(v[1]);
            let input = vec![0x5555_aaaa_0f0f_f0f0u64; v[0] * v[2] * v[2] * words];
            let pw =
                PackedBinaryConvWeights::new(&vec![0x1234_5678_9abc_def0u64; v[3] * 9 * words], &g);
            let mut out = vec![0; v[0] * v[3] * v[2] * v[2]];
            eprintln!(
                "{:.1} G bit-MAC per call",
                (v[0] * v[3] * v[2] * v[2] * 9 * v[1]) as f64 / 1e9
            );
            Box::new(move || binary_conv2d_packed(&input, &pw, &mut out, &g))
        }
        x if x.starts_with("gcfg:") => {
            // gcfg:m:n:k (int8 GEMM with packed weights).
            let v: Vec<usize> = x.split(':').skip(1).map(|t| t.parse().unwrap()).collect();
            let (m, n, k) = (v[0], v[1], v[2]);
            let a = vec![3u8; m * k];
            let pb = PackedWeightsI8::new(&vec![-3i8; n * k], n, k);
            let mut c = vec![0; m * n];
            eprintln!("{:.1} MMAC per call", (m * n * k) as f64 / 1e6);
            Box::new(move || gemm_u8i8_packed(&a, &pb, &mut c, m))
        }
        x if x.starts_with("dwcfg:") => {
            // dwcfg:batch:c:hw:k:stride (depthwise KxK, pad K/2).
            let v: Vec<usize> = x.split(':').skip(1).map(|t| t.parse().unwrap()).collect();
            let g = ConvGeometry {
                out_channels: v[1],
                groups: v[1],
                kernel_h: v[3],
                kernel_w: v[3],
                stride: v[4],
                pad: v[3] / 2,
                ..conv(v[0], v[1], v[2])
            };
            let input = vec![3u8; g.batch * g.in_channels * g.in_h * g.in_w];
            let pw = PackedDepthwiseWeights::new(&vec![-3i8; v[1] * v[3] * v[3]], &g);
            let mut out = vec![0; g.batch * v[1] * g.out_h() * g.out_w()];
            let macs = g.batch * v[1] * g.out_h() * g.out_w() * v[3] * v[3];
            eprintln!("{:.1} MMAC per call", macs as f64 / 1e6);
            Box::new(move || depthwise_conv2d_u8i8_packed(&input, &pw, &mut out, &g, 0))
        }
        x if x.starts_with("cfg:") => {
            // cfg:batch:cin:hw:cout:stride (3x3, pad 1).
            let v: Vec<usize> = x.split(':').skip(1).map(|t| t.parse().unwrap()).collect();
            let g = ConvGeometry {
                out_channels: v[3],
                stride: v[4],
                ..conv(v[0], v[1], v[2])
            };
            let input = vec![3u8; g.batch * g.in_channels * g.in_h * g.in_w];
            let pw = PackedConvWeights::new(&vec![-3i8; v[3] * v[1] * 9], &g);
            let mut out = vec![0; g.batch * v[3] * g.out_h() * g.out_w()];
            let macs = g.batch * v[3] * g.out_h() * g.out_w() * v[1] * 9;
            eprintln!("{:.1} MMAC per call", macs as f64 / 1e6);
            Box::new(move || conv2d_u8i8_packed(&input, &pw, &mut out, &g, 0))
        }
        s => {
            let g = if s == "c64" {
                conv(1, 64, 56)
            } else {
                conv(64, 32, 14)
            };
            let input = vec![3u8; g.batch * g.in_channels * g.in_h * g.in_w];
            let pw = PackedConvWeights::new(&vec![-3i8; 64 * g.in_channels * 9], &g);
            let mut out = vec![0; g.batch * 64 * g.out_h() * g.out_w()];
            Box::new(move || conv2d_u8i8_packed(&input, &pw, &mut out, &g, 0))
        }
    };
    let reps = if which == "gemm" { 40 } else { 500 };
    let cpu = || qbench_kernels::bench::thread_cpu_secs().unwrap_or(0.0);
    let best = pool.install(|| {
        (0..reps)
            .map(|_| {
                let c0 = cpu();
                run();
                cpu() - c0
            })
            .fold(f64::MAX, f64::min)
    });
    println!("{which}: best {:.3} ms of thread CPU time", best * 1e3);
}
