//! Every fast kernel, on every ISA this CPU has, equals the scalar reference bit for bit.

use proptest::prelude::*;
use qbench_kernels::*;

mod common;
use common::{i8s, in_pool, u8s};

fn gemm_case() -> impl Strategy<Value = (usize, usize, usize, Vec<u8>, Vec<i8>)> {
    (1usize..40, 1usize..70, 1usize..200)
        .prop_flat_map(|(m, n, k)| (Just(m), Just(n), Just(k), u8s(m * k), i8s(n * k)))
}

fn check_gemm(m: usize, n: usize, k: usize, a: &[u8], b: &[i8]) {
    let mut want = vec![0i32; m * n];
    reference::gemm_u8i8(a, b, &mut want, m, n, k);
    for isa in Int8Isa::all_available() {
        for threads in [1, 2] {
            let mut got = vec![7i32; m * n];
            in_pool(threads, || gemm_u8i8_with(isa, a, b, &mut got, m, n, k));
            assert_eq!(got, want, "{isa:?} threads={threads} m={m} n={n} k={k}");
        }
    }
    let mut got = vec![7i32; m * n];
    gemm_u8i8(a, b, &mut got, m, n, k);
    assert_eq!(got, want, "dispatched");
    let mut got = vec![7i32; m * n];
    gemm_u8i8_packed(a, &PackedWeightsI8::new(b, n, k), &mut got, m);
    assert_eq!(got, want, "packed");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn gemm_matches_reference((m, n, k, a, b) in gemm_case()) {
        check_gemm(m, n, k, &a, &b);
    }
}

/// K large enough that every accumulator wraps past i32 (255 * -128 * 70001 < i32::MIN), with
/// row/column tails of every tile width; also K crossing the cache block (512) boundary.
#[test]
fn gemm_wraps_like_reference() {
    for (m, n, k) in [(3, 37, 70_001), (130, 33, 1_037)] {
        let a = vec![255u8; m * k];
        let mut b = vec![-128i8; n * k];
        b[5] = 127;
        check_gemm(m, n, k, &a, &b);
        let mut want = vec![0i32; m * n];
        reference::gemm_u8i8(&a, &b, &mut want, m, n, k);
        if k == 70_001 {
            assert!(
                want.iter().all(|&v| v > 0),
                "the test must exercise wrapping"
            );
        }
    }
}

#[derive(Debug, Clone)]
struct ConvCase {
    g: ConvGeometry,
    input: Vec<u8>,
    weights: Vec<i8>,
    pad_value: u8,
}

fn conv_case() -> impl Strategy<Value = ConvCase> {
    (
        1usize..3,
        1usize..4,
        1usize..7,
        1usize..7,
        1usize..4,
        1usize..4,
        1usize..3,
        0usize..3,
        (1usize..20, 1usize..20),
        any::<bool>(),
    )
        .prop_filter_map(
            "kernel larger than padded input",
            |(batch, groups, cin_g, cout_g, kh, kw, stride, pad, (h, w), depthwise)| {
                let (cin_g, cout_g) = if depthwise { (1, 1) } else { (cin_g, cout_g) };
                let groups = if depthwise { groups * 3 } else { groups };
                let g = ConvGeometry {
                    batch,
                    in_channels: groups * cin_g,
                    in_h: h,
                    in_w: w,
                    out_channels: groups * cout_g,
                    kernel_h: kh,
                    kernel_w: kw,
                    stride,
                    pad,
                    groups,
                };
                (h + 2 * pad >= kh && w + 2 * pad >= kw).then_some(g)
            },
        )
        .prop_flat_map(|g| {
            let n_in = g.batch * g.in_channels * g.in_h * g.in_w;
            let n_w = g.out_channels * g.in_channels / g.groups * g.kernel_h * g.kernel_w;
            (Just(g), u8s(n_in), i8s(n_w), any::<u8>())
        })
        .prop_map(|(g, input, weights, pad_value)| ConvCase {
            g,
            input,
            weights,
            pad_value,
        })
}

fn check_conv(c: &ConvCase) {
    let g = &c.g;
    let n_out = g.batch * g.out_channels * g.out_h() * g.out_w();
    let mut want = vec![0i32; n_out];
    reference::conv2d_u8i8(&c.input, &c.weights, &mut want, g, c.pad_value);
    for isa in Int8Isa::all_available() {
        for threads in [1, 2] {
            let mut got = vec![7i32; n_out];
            in_pool(threads, || {
                conv2d_u8i8_with(isa, &c.input, &c.weights, &mut got, g, c.pad_value)
            });
            assert_eq!(got, want, "{isa:?} threads={threads} {g:?}");
        }
    }
    let mut got = vec![7i32; n_out];
    conv2d_u8i8(&c.input, &c.weights, &mut got, g, c.pad_value);
    assert_eq!(got, want, "dispatched {g:?}");
    check_conv_sink(c, &want);
}

/// Collects a sink's blocks into the output tensor layout and counts each element's deliveries.
struct Collect {
    g: ConvGeometry,
    out: std::sync::Mutex<(Vec<i32>, Vec<u32>)>,
}

impl ConvSink for Collect {
    fn put(&self, n: usize, o0: usize, rows: usize, px0: usize, cols: usize, b: &[i32], ld: usize) {
        let plane = self.g.out_h() * self.g.out_w();
        assert!(px0 + cols <= plane && o0 + rows <= self.g.out_channels);
        let mut out = self.out.lock().unwrap();
        for r in 0..rows {
            for c in 0..cols {
                let i = (n * self.g.out_channels + o0 + r) * plane + px0 + c;
                out.0[i] = b[r * ld + c];
                out.1[i] += 1;
            }
        }
    }
}

/// The sink form of the packed convolution delivers `want`, every element once.
fn check_conv_sink(c: &ConvCase, want: &[i32]) {
    let g = &c.g;
    for isa in Int8Isa::all_available() {
        let packed = PackedConvWeights::new_for(isa, &c.weights, g);
        for threads in [1, 2] {
            let sink = Collect {
                g: *g,
                out: std::sync::Mutex::new((vec![7; want.len()], vec![0; want.len()])),
            };
            in_pool(threads, || {
                conv2d_u8i8_packed_sink(&c.input, &packed, g, c.pad_value, &sink)
            });
            let (got, count) = sink.out.into_inner().unwrap();
            assert_eq!(got, want, "sink {isa:?} threads={threads} {g:?}");
            assert!(
                count.iter().all(|&k| k == 1),
                "sink deliveries {isa:?} {g:?}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn conv_matches_reference(c in conv_case()) {
        check_conv(&c);
    }
}

/// Wider layers: channel counts around the tile sizes, pixel panels within one row (56 wide),
/// spanning rows and images, and a batch of images too large for per-task padding.
#[test]
fn conv_resnet_like_shapes() {
    let mut seed = 1u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    for (batch, cin, cout, hw, stride, pad, groups) in [
        (1, 64, 64, 56, 1, 1, 1),
        (2, 7, 5, 33, 1, 2, 1),
        (2, 64, 16, 32, 1, 1, 1),
        (1, 32, 40, 45, 2, 1, 1),
        (1, 64, 64, 14, 1, 1, 1),
        (3, 32, 20, 7, 1, 1, 1),
        (2, 17, 35, 9, 2, 1, 1),
        (2, 48, 48, 10, 1, 1, 48),
        (1, 16, 8, 5, 1, 0, 2),
    ] {
        let g = ConvGeometry {
            batch,
            in_channels: cin,
            in_h: hw,
            in_w: hw,
            out_channels: cout,
            kernel_h: 3,
            kernel_w: 3,
            stride,
            pad,
            groups,
        };
        let input: Vec<u8> = (0..batch * cin * hw * hw).map(|_| next() as u8).collect();
        let weights: Vec<i8> = (0..cout * cin / groups * 9).map(|_| next() as i8).collect();
        check_conv(&ConvCase {
            g,
            input,
            weights,
            pad_value: 128,
        });
    }
}

/// Convolution accumulators that wrap: K = 9 * 8000 = 72000 taps of 255 x -128 (the border taps
/// read pad_value = 255).
#[test]
fn conv_wraps_like_reference() {
    let g = ConvGeometry {
        batch: 1,
        in_channels: 8000,
        in_h: 1,
        in_w: 2,
        out_channels: 5,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let c = ConvCase {
        g,
        input: vec![255; 8000 * 2],
        weights: vec![-128; 5 * 8000 * 9],
        pad_value: 255,
    };
    check_conv(&c);
}

// ---------------------------------------------------------------- binary

fn bits_words(rows: usize, bits: usize) -> impl Strategy<Value = Vec<u64>> {
    let words = words_for_bits(bits);
    prop_oneof![
        prop::collection::vec(any::<u64>(), rows * words),
        Just(vec![!0u64; rows * words]),
        Just(vec![0u64; rows * words]),
    ]
    .prop_map(move |mut v| {
        // Bits past `bits` in each row's last word are 0 (the packing convention).
        if !bits.is_multiple_of(64) {
            let mask = (1u64 << (bits % 64)) - 1;
            for r in 0..rows {
                v[r * words + words - 1] &= mask;
            }
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn binary_gemm_matches_reference(
        (m, n, bits, a, b) in (1usize..30, 1usize..30, 1usize..300)
            .prop_flat_map(|(m, n, bits)| (Just(m), Just(n), Just(bits), bits_words(m, bits), bits_words(n, bits)))
    ) {
        let mut want = vec![0i32; m * n];
        reference::binary_gemm(&a, &b, &mut want, m, n, bits);
        for isa in BinaryIsa::all_available() {
            for threads in [1, 2] {
                let mut got = vec![7i32; m * n];
                in_pool(threads, || binary_gemm_with(isa, &a, &b, &mut got, m, n, bits));
                prop_assert_eq!(&got, &want, "{:?} threads={}", isa, threads);
            }
        }
        let mut got = vec![7i32; m * n];
        binary_gemm(&a, &b, &mut got, m, n, bits);
        prop_assert_eq!(&got, &want);
    }

    #[test]
    fn binary_conv_matches_reference(
        (g, input, weights) in (1usize..3, 1usize..200, 1usize..12, 1usize..16, 1usize..16, 1usize..4, 1usize..4, 1usize..3, 0usize..3)
            .prop_filter_map("kernel larger than padded input", |(batch, c, o, h, w, kh, kw, stride, pad)| {
                let g = ConvGeometry { batch, in_channels: c, in_h: h, in_w: w, out_channels: o,
                    kernel_h: kh, kernel_w: kw, stride, pad, groups: 1 };
                (h + 2 * pad >= kh && w + 2 * pad >= kw).then_some(g)
            })
            .prop_flat_map(|g| {
                let taps = g.kernel_h * g.kernel_w;
                (Just(g), bits_words(g.batch * g.in_h * g.in_w, g.in_channels),
                 bits_words(g.out_channels * taps, g.in_channels))
            })
    ) {
        let n_out = g.batch * g.out_channels * g.out_h() * g.out_w();
        let mut want = vec![0i32; n_out];
        reference::binary_conv2d(&input, &weights, &mut want, &g);
        for isa in BinaryIsa::all_available() {
            for threads in [1, 2] {
                let mut got = vec![7i32; n_out];
                in_pool(threads, || binary_conv2d_with(isa, &input, &weights, &mut got, &g));
                prop_assert_eq!(&got, &want, "{:?} threads={} {:?}", isa, threads, g);
            }
        }
        let mut got = vec![7i32; n_out];
        binary_conv2d(&input, &weights, &mut got, &g);
        prop_assert_eq!(&got, &want);
    }
}

/// Many words per row (the AVX2 byte accumulators are folded every 31 words), a kernel with more
/// than 64 taps, and the ResNet-18 binary layer shape with its padded border.
#[test]
fn binary_long_rows_and_resnet_layer() {
    let bits = 64 * 70 + 13;
    let words = words_for_bits(bits);
    let (m, n) = (5, 11);
    let mut x = 3u64;
    let mut make = |len: usize| -> Vec<u64> {
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(i as u64);
                if i % words == words - 1 {
                    x & ((1 << 13) - 1)
                } else {
                    x
                }
            })
            .collect()
    };
    let (a, b) = (make(m * words), make(n * words));
    let mut want = vec![0; m * n];
    reference::binary_gemm(&a, &b, &mut want, m, n, bits);
    for isa in BinaryIsa::all_available() {
        let mut got = vec![0; m * n];
        binary_gemm_with(isa, &a, &b, &mut got, m, n, bits);
        assert_eq!(got, want, "{isa:?}");
    }
    let g = ConvGeometry {
        batch: 2,
        in_channels: 70,
        in_h: 10,
        in_w: 12,
        out_channels: 5,
        kernel_h: 9,
        kernel_w: 9,
        stride: 1,
        pad: 4,
        groups: 1,
    };
    let words = words_for_bits(70);
    let cut = |i: usize, v: u64| {
        if i % words == words - 1 {
            v & ((1 << 6) - 1)
        } else {
            v
        }
    };
    let input: Vec<u64> = (0..2 * 10 * 12 * words)
        .map(|i| cut(i, (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15)))
        .collect();
    let w: Vec<u64> = (0..5 * 81 * words)
        .map(|i| cut(i, (i as u64 + 5).wrapping_mul(0xD1B54A32D192ED03)))
        .collect();
    let n_out = 2 * 5 * g.out_h() * g.out_w();
    let mut want = vec![0; n_out];
    reference::binary_conv2d(&input, &w, &mut want, &g);
    for isa in BinaryIsa::all_available() {
        let mut got = vec![0; n_out];
        binary_conv2d_with(isa, &input, &w, &mut got, &g);
        assert_eq!(got, want, "81 taps {isa:?}");
    }
    let g = ConvGeometry {
        batch: 1,
        in_channels: 64,
        in_h: 56,
        in_w: 56,
        out_channels: 64,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    let input: Vec<u64> = (0..56 * 56)
        .map(|i| (i as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15))
        .collect();
    let w: Vec<u64> = (0..64 * 9)
        .map(|i| (i as u64 + 5).wrapping_mul(0xD1B54A32D192ED03))
        .collect();
    let mut want = vec![0; 64 * 56 * 56];
    reference::binary_conv2d(&input, &w, &mut want, &g);
    for isa in BinaryIsa::all_available() {
        let mut got = vec![0; 64 * 56 * 56];
        in_pool(2, || binary_conv2d_with(isa, &input, &w, &mut got, &g));
        assert_eq!(got, want, "{isa:?}");
    }
}

/// Packed binary weights, and a small `m` (the split over weight panels) on two threads.
#[test]
fn binary_gemm_packed_matches_reference() {
    for (m, n, bits) in [(1, 100, 200), (2, 9, 64), (33, 17, 129)] {
        let words = words_for_bits(bits);
        let mask = |i: usize, v: u64| {
            if i % words == words - 1 && bits % 64 != 0 {
                v & ((1 << (bits % 64)) - 1)
            } else {
                v
            }
        };
        let a: Vec<u64> = (0..m * words)
            .map(|i| mask(i, (i as u64 + 3).wrapping_mul(0x9E3779B97F4A7C15)))
            .collect();
        let b: Vec<u64> = (0..n * words)
            .map(|i| mask(i, (i as u64 + 11).wrapping_mul(0xD1B54A32D192ED03)))
            .collect();
        let mut want = vec![0; m * n];
        reference::binary_gemm(&a, &b, &mut want, m, n, bits);
        for isa in BinaryIsa::all_available() {
            let pw = PackedBinaryWeights::new_for(isa, &b, n, bits);
            for threads in [1, 2] {
                let mut got = vec![0; m * n];
                in_pool(threads, || binary_gemm_packed(&a, &pw, &mut got, m));
                assert_eq!(got, want, "{isa:?} threads={threads} m={m}");
            }
        }
    }
}

/// The padded-input buffer is reused between calls: same geometry with new inputs and a new pad
/// value, batched (per-task padding) and single-image (shared padding), and a thread cap.
#[test]
fn conv_repeated_calls_and_thread_cap() {
    for batch in [1, 3] {
        let g = ConvGeometry {
            batch,
            in_channels: 5,
            in_h: 9,
            in_w: 11,
            out_channels: 6,
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            pad: 2,
            groups: 1,
        };
        let n_in = batch * 5 * 9 * 11;
        let w: Vec<i8> = (0..6 * 5 * 9).map(|i| (i * 37 % 256) as u8 as i8).collect();
        let n_out = batch * 6 * g.out_h() * g.out_w();
        for (round, pad_value) in [(0u8, 9u8), (1, 9), (2, 200), (3, 9)] {
            let input: Vec<u8> = (0..n_in)
                .map(|i| (i * 13 + round as usize * 71) as u8)
                .collect();
            let mut want = vec![0; n_out];
            reference::conv2d_u8i8(&input, &w, &mut want, &g, pad_value);
            for isa in Int8Isa::all_available() {
                let pw = PackedConvWeights::new_for(isa, &w, &g);
                for threads in [1, 2] {
                    let mut got = vec![0; n_out];
                    in_pool(threads, || {
                        conv2d_u8i8_packed(&input, &pw, &mut got, &g, pad_value)
                    });
                    assert_eq!(got, want, "{isa:?} threads={threads} round={round}");
                }
            }
        }
    }
    // Same padded size, different layout (H and W swapped): borders must be rewritten.
    for (h, w) in [(9, 11), (11, 9), (9, 11)] {
        let g = ConvGeometry {
            batch: 1,
            in_channels: 3,
            in_h: h,
            in_w: w,
            out_channels: 2,
            kernel_h: 3,
            kernel_w: 3,
            stride: 1,
            pad: 1,
            groups: 1,
        };
        let input: Vec<u8> = (0..3 * h * w).map(|i| (i * 7 + h) as u8).collect();
        let wt: Vec<i8> = (0..2 * 3 * 9).map(|i| (i as i8).wrapping_mul(3)).collect();
        let n_out = 2 * g.out_h() * g.out_w();
        let mut want = vec![0; n_out];
        reference::conv2d_u8i8(&input, &wt, &mut want, &g, 77);
        for isa in Int8Isa::all_available() {
            let mut got = vec![0; n_out];
            conv2d_u8i8_with(isa, &input, &wt, &mut got, &g, 77);
            assert_eq!(got, want, "{isa:?} {h}x{w}");
        }
    }
    // No input channels: an empty reduction.
    let g = ConvGeometry {
        batch: 2,
        in_channels: 0,
        in_h: 4,
        in_w: 4,
        out_channels: 3,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad: 1,
        groups: 1,
    };
    for isa in Int8Isa::all_available() {
        let mut got = vec![5; 2 * 3 * 16];
        conv2d_u8i8_with(isa, &[], &[], &mut got, &g, 1);
        assert!(got.iter().all(|&v| v == 0), "{isa:?}");
    }
    threads::set_max_threads(1);
    assert_eq!(in_pool(2, threads::max_threads), 1);
    threads::set_max_threads(0);
    assert_eq!(in_pool(2, threads::max_threads), 2);
}
