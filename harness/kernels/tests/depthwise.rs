//! The depthwise kernel, on every ISA this CPU has and on 1 and 2 threads, equals the scalar
//! reference convolution (`groups == in_channels == out_channels`) bit for bit.

use proptest::prelude::*;
use qbench_kernels::*;

mod common;
use common::{i8s, in_pool, u8s};

#[allow(clippy::too_many_arguments)]
fn geometry(
    batch: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    pad: usize,
) -> ConvGeometry {
    ConvGeometry {
        batch,
        in_channels: c,
        in_h: h,
        in_w: w,
        out_channels: c,
        kernel_h: kh,
        kernel_w: kw,
        stride,
        pad,
        groups: c,
    }
}

fn check(g: &ConvGeometry, input: &[u8], weights: &[i8], pad_value: u8) {
    let n_out = g.batch * g.out_channels * g.out_h() * g.out_w();
    let mut want = vec![0i32; n_out];
    reference::conv2d_u8i8(input, weights, &mut want, g, pad_value);
    for isa in Int8Isa::all_available() {
        let packed = PackedDepthwiseWeights::new_for(isa, weights, g);
        for threads in [1, 2] {
            let mut got = vec![7i32; n_out];
            in_pool(threads, || {
                depthwise_conv2d_u8i8_packed(input, &packed, &mut got, g, pad_value)
            });
            assert_eq!(
                got, want,
                "{isa:?} threads={threads} pad_value={pad_value} {g:?}"
            );
        }
    }
    let mut got = vec![7i32; n_out];
    depthwise_conv2d_u8i8(input, weights, &mut got, g, pad_value);
    assert_eq!(got, want, "dispatched {g:?}");
}

/// Kernel 1/3/5 (square or not), stride 1/2 (sometimes 3, the scalar fallback), pad 0..=2, odd
/// and even channel counts, batch 1..3, widths around the 16-output block.
fn depthwise_case() -> impl Strategy<Value = (ConvGeometry, Vec<u8>, Vec<i8>, u8)> {
    (
        1usize..4,
        prop_oneof![Just(2usize), Just(3), Just(5), Just(8), Just(13)],
        prop_oneof![Just(1usize), Just(3), Just(5)],
        prop_oneof![Just(1usize), Just(3), Just(5), Just(2)],
        prop_oneof![4 => Just(1usize), 4 => Just(2), 1 => Just(3)],
        0usize..=2,
        (1usize..24, 1usize..40),
    )
        .prop_filter_map(
            "kernel larger than padded input",
            |(batch, c, kh, kw, stride, pad, (h, w))| {
                (h + 2 * pad >= kh && w + 2 * pad >= kw)
                    .then(|| geometry(batch, c, h, w, kh, kw, stride, pad))
            },
        )
        .prop_flat_map(|g| {
            let n_in = g.batch * g.in_channels * g.in_h * g.in_w;
            let n_w = g.out_channels * g.kernel_h * g.kernel_w;
            (Just(g), u8s(n_in), i8s(n_w), any::<u8>())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn depthwise_matches_reference((g, input, weights, pad_value) in depthwise_case()) {
        check(&g, &input, &weights, pad_value);
    }
}

/// MobileNet-like layers (wide rows, many channels, both strides), a 7x7 kernel (the run-time
/// tap count), repeated calls on the reused plane buffer with new pad values and sizes, and the
/// extreme values where every pair sum is largest.
#[test]
fn depthwise_mobilenet_like_and_reuse() {
    let shapes = [
        (1, 128, 56, 56, 3, 3, 1, 1),
        (2, 32, 30, 30, 3, 3, 2, 1),
        (1, 17, 20, 37, 5, 5, 1, 2),
        (1, 9, 33, 18, 5, 5, 2, 2),
        (3, 4, 15, 15, 7, 7, 1, 3),
        (1, 6, 16, 16, 7, 7, 2, 3),
        (1, 3, 17, 16, 3, 1, 1, 0),
        (1, 3, 16, 17, 1, 3, 2, 1),
    ];
    for (i, &(b, c, h, w, kh, kw, s, p)) in shapes.iter().enumerate() {
        let g = geometry(b, c, h, w, kh, kw, s, p);
        let input = bench::lcg_bytes(b * c * h * w, i as u64);
        let weights: Vec<i8> = bench::lcg_bytes(c * kh * kw, 100 + i as u64)
            .into_iter()
            .map(|v| v as i8)
            .collect();
        check(&g, &input, &weights, (i * 37) as u8);
        check(&g, &vec![255; input.len()], &vec![-128; weights.len()], 255);
    }
    threads::set_max_threads(1);
    let g = geometry(2, 5, 9, 19, 3, 3, 1, 1);
    let input = bench::lcg_bytes(2 * 5 * 9 * 19, 7);
    let weights: Vec<i8> = bench::lcg_bytes(45, 8)
        .into_iter()
        .map(|v| v as i8)
        .collect();
    check(&g, &input, &weights, 3);
    threads::set_max_threads(0);
}

/// Every alignment of the output (the AVX2 path shifts its blocks when rows start 16 bytes past
/// a 32-byte boundary), for widths that are multiples of 8 and not, both strides.
#[test]
fn depthwise_output_alignment() {
    for (i, &(c, h, w, s, p)) in [
        (3, 9, 16, 1, 1),
        (2, 7, 56, 1, 1),
        (2, 11, 24, 2, 1),
        (2, 6, 17, 1, 1),
        (3, 5, 8, 1, 1),
        (2, 9, 31, 2, 0),
    ]
    .iter()
    .enumerate()
    {
        let g = geometry(2, c, h, w, 3, 3, s, p);
        let input = bench::lcg_bytes(2 * c * h * w, 200 + i as u64);
        let weights: Vec<i8> = bench::lcg_bytes(c * 9, 300 + i as u64)
            .into_iter()
            .map(|v| v as i8)
            .collect();
        let n_out = 2 * c * g.out_h() * g.out_w();
        let mut want = vec![0i32; n_out];
        reference::conv2d_u8i8(&input, &weights, &mut want, &g, 11);
        for isa in Int8Isa::all_available() {
            let packed = PackedDepthwiseWeights::new_for(isa, &weights, &g);
            for offset in 0..8 {
                let mut buf = vec![7i32; n_out + 16];
                // Start the output `offset` i32 past a 32-byte boundary.
                let skew = (8 - (buf.as_ptr() as usize / 4) % 8) % 8;
                let got = &mut buf[skew + offset..skew + offset + n_out];
                depthwise_conv2d_u8i8_packed(&input, &packed, got, &g, 11);
                assert_eq!(&got[..], &want[..], "{isa:?} offset {offset} {g:?}");
            }
        }
    }
}

/// Geometries that are not depthwise are refused; a depthwise one is recognised.
#[test]
fn depthwise_recognition() {
    assert!(is_depthwise(&geometry(1, 4, 5, 5, 3, 3, 1, 1)));
    let mut g = geometry(1, 4, 5, 5, 3, 3, 1, 1);
    g.groups = 1;
    assert!(!is_depthwise(&g));
    let mut g = geometry(1, 4, 5, 5, 3, 3, 1, 1);
    g.out_channels = 8;
    assert!(!is_depthwise(&g));
    assert!(!is_depthwise(&geometry(1, 1, 5, 5, 3, 3, 1, 1)));
    let r = std::panic::catch_unwind(|| {
        let mut g = geometry(1, 4, 5, 5, 3, 3, 1, 1);
        g.groups = 2;
        PackedDepthwiseWeights::new(&[0; 4 * 9], &g)
    });
    assert!(r.is_err());
}

/// The AVX2 path that reads 3x3, stride-1, pad-1 planes in place (rows of 16 inputs or more):
/// every width from 16 to 41 (multiples of 8 and not), heights 1 to 5 (the padding rows next to
/// each other), every output alignment (the shifted blocks and the block wrapping from one row to
/// the next), random and extreme values, several pad values.
#[test]
fn depthwise_3x3_in_place_borders() {
    for w in 16..=41 {
        for h in 1..=5 {
            let g = geometry(2, 3, h, w, 3, 3, 1, 1);
            let n_in = 2 * 3 * h * w;
            let random = bench::lcg_bytes(n_in, (w * 8 + h) as u64);
            let weights: Vec<i8> = bench::lcg_bytes(27, (w * 8 + h + 1000) as u64)
                .into_iter()
                .map(|v| v as i8)
                .collect();
            let n_out = 2 * 3 * g.out_h() * g.out_w();
            for (input, weights, pad_value) in [
                (random.clone(), weights.clone(), (w * 13 + h) as u8),
                (vec![255; n_in], vec![-128; 27], 255),
                (random, weights, 0),
            ] {
                let mut want = vec![0i32; n_out];
                reference::conv2d_u8i8(&input, &weights, &mut want, &g, pad_value);
                for isa in Int8Isa::all_available() {
                    let packed = PackedDepthwiseWeights::new_for(isa, &weights, &g);
                    for offset in 0..8 {
                        let mut buf = vec![7i32; n_out + 16];
                        let skew = (8 - (buf.as_ptr() as usize / 4) % 8) % 8;
                        let got = &mut buf[skew + offset..skew + offset + n_out];
                        depthwise_conv2d_u8i8_packed(&input, &packed, got, &g, pad_value);
                        assert_eq!(
                            &got[..],
                            &want[..],
                            "{isa:?} offset {offset} pad {pad_value} {g:?}"
                        );
                    }
                }
            }
        }
    }
}
