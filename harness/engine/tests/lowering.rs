//! Templates for the methods' lowerings, end to end: build with the builder, save, load, run on both
//! executors, evaluate. One graph per family: BNN (binary first layer over pixels, pooling on i32
//! accumulators, thresholds, binary layers), QNN (multi-threshold k-bit activations), TFLite int8 with
//! a fixed-point residual add, and ternary weights with the scale folded into a shift requantizer.

mod common;

use common::{random_weights, rng};
use qbench_engine::exec::{fast, reference};
use qbench_engine::requant::quantize_multiplier;
use qbench_engine::*;

fn pool2() -> Pool {
    Pool {
        kernel_h: 2,
        kernel_w: 2,
        stride: 2,
        pad: 0,
    }
}

fn check_end_to_end(g: &QGraph) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.qgraph");
    let sha = g.save(&path).unwrap();
    let (g2, sha2) = QGraph::load(&path).unwrap();
    assert_eq!(&g2, g);
    assert_eq!(sha, sha2);
    let n = 9;
    let mut r = rng(3);
    let images: Vec<u8> = (0..n * g.input_len())
        .map(|_| rand::Rng::random(&mut r))
        .collect();
    let want = reference::run(&g2, &images, n).unwrap();
    assert_eq!(fast::run(&g2, &images, n).unwrap(), want);
    let labels: Vec<u16> = want.argmax().iter().map(|&p| p as u16).collect();
    let report = evaluate(&g2, &images, &labels, 4, |_| {}).unwrap();
    assert_eq!(report.top1, 1.0);
}

#[test]
fn bnn() {
    let mut r = rng(1);
    let mut b = GraphBuilder::new(&[1, 8, 8]);
    // First layer: +-1 weights over raw u8 pixels on the integer path.
    let c1 = b
        .conv2d(
            "conv1",
            0,
            Conv2d {
                in_channels: 1,
                out_channels: 16,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                pad: 1,
                groups: 1,
                weight_kind: WeightKind::Binary,
                input_zero_point: 0,
                weights: random_weights(&mut r, WeightKind::Binary, 16 * 9),
                bias: None,
            },
        )
        .unwrap();
    // BNN pools the accumulators, then BN + sign as per-channel thresholds (some flipped).
    let p1 = b.max_pool("pool1", c1, pool2()).unwrap();
    let s1 = b
        .requant(
            "sign1",
            p1,
            DType::Binary,
            Requant::Threshold {
                thresholds: (0..16).map(|i| i * 10 - 80).collect(),
                flip: (0..16).map(|i| i % 5 == 0).collect(),
            },
        )
        .unwrap();
    let c2 = b
        .binary_conv2d(
            "conv2",
            s1,
            BinaryConv2d {
                in_channels: 16,
                out_channels: 8,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                pad: 1,
                groups: 1,
                weights: random_weights(&mut r, WeightKind::Binary, 8 * 16 * 9),
                bias: None,
            },
        )
        .unwrap();
    let s2 = b
        .requant(
            "sign2",
            c2,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![0; 8],
                flip: vec![false; 8],
            },
        )
        .unwrap();
    let f = b.flatten("flat", s2).unwrap();
    let fc = b
        .binary_dense(
            "fc",
            f,
            BinaryDense {
                in_features: 8 * 4 * 4,
                out_features: 10,
                weights: random_weights(&mut r, WeightKind::Binary, 10 * 128),
                bias: Some((0..10).collect()),
            },
        )
        .unwrap();
    let g = b.finish(fc).unwrap();
    let counts = count_ops(&g);
    assert_eq!(counts.macs_by_kind["wbin_au8"], 16 * 64 * 9);
    assert_eq!(counts.binary_macs, (8 * 16 * 16 * 9 + 128 * 10) as u64);
    assert_eq!(
        counts.requant_by_kind["threshold"],
        (16 * 16 + 8 * 16) as u64
    );
    check_end_to_end(&g);
}

#[test]
fn qnn_two_bit() {
    let mut r = rng(2);
    let mut b = GraphBuilder::new(&[64]);
    let w2 = WeightKind::Int { bits: 2 };
    let d1 = b
        .dense(
            "fc1",
            0,
            Dense {
                in_features: 64,
                out_features: 32,
                weight_kind: w2,
                input_zero_point: 0,
                weights: random_weights(&mut r, w2, 32 * 64),
                bias: None,
            },
        )
        .unwrap();
    let mut thresholds = Vec::new();
    for c in 0..32 {
        thresholds.extend([-200 + c, 0, 150 + c]);
    }
    let a1 = b
        .requant(
            "act1",
            d1,
            DType::Unsigned { bits: 2 },
            Requant::MultiThreshold {
                thresholds,
                flip: vec![false; 32],
            },
        )
        .unwrap();
    let d2 = b
        .dense(
            "fc2",
            a1,
            Dense {
                in_features: 32,
                out_features: 10,
                weight_kind: w2,
                input_zero_point: 0,
                weights: random_weights(&mut r, w2, 320),
                bias: None,
            },
        )
        .unwrap();
    let g = b.finish(d2).unwrap();
    assert_eq!(count_ops(&g).macs_by_kind["wint2_au2"], 320);
    check_end_to_end(&g);
}

#[test]
fn tflite_int8_residual() {
    let mut r = rng(3);
    let int8 = WeightKind::Int { bits: 8 };
    let i8t = DType::Signed { bits: 8 };
    let conv = |r: &mut rand_chacha::ChaCha8Rng, cin: usize, cout: usize, z: i32| Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad: 1,
        groups: 1,
        weight_kind: int8,
        input_zero_point: z,
        weights: (0..cout * cin * 9)
            .map(|_| rand::Rng::random_range(r, -127..=127))
            .collect(),
        bias: Some(
            (0..cout)
                .map(|_| rand::Rng::random_range(r, -999..999))
                .collect(),
        ),
    };
    let fixed = |m: f64, zp: i32, min: i32| {
        let (mult, shift) = quantize_multiplier(m);
        Requant::FixedPoint {
            multiplier: vec![mult],
            shift: vec![shift],
            zero_point: zp,
            min,
            max: 127,
        }
    };
    let mut b = GraphBuilder::new(&[3, 8, 8]);
    // Pixels (u8, zero point 0) -> int8 activations with zero point -128 after a fused ReLU.
    let c1 = b.conv2d("conv1", 0, conv(&mut r, 3, 8, 0)).unwrap();
    let x = b
        .requant("rq1", c1, i8t, fixed(0.0004, -128, -128))
        .unwrap();
    let c2 = b.conv2d("conv2", x, conv(&mut r, 8, 8, -128)).unwrap();
    let y = b.requant("rq2", c2, i8t, fixed(0.002, -10, -128)).unwrap();
    // TFLite ADD: left shift 20, per-input multipliers, then the output requantizer.
    let (ma, sa) = quantize_multiplier(0.4);
    let (mb, sb) = quantize_multiplier(0.25);
    let sum = b
        .add(
            "add",
            x,
            y,
            Add {
                zero_point_a: -128,
                zero_point_b: -10,
                align: AddAlign::FixedPoint {
                    left_shift: 20,
                    multiplier_a: ma,
                    shift_a: sa,
                    multiplier_b: mb,
                    shift_b: sb,
                },
            },
        )
        .unwrap();
    let z = b
        .requant(
            "rq_add",
            sum,
            i8t,
            fixed(1.0 / f64::from(1 << 20), -128, -128),
        )
        .unwrap();
    let gap = b.global_avg_pool("gap", z).unwrap();
    let fc = b
        .dense(
            "fc",
            gap,
            Dense {
                in_features: 8,
                out_features: 10,
                weight_kind: int8,
                input_zero_point: -128,
                weights: (0..80).map(|i| (i % 17 - 8) as i8).collect(),
                bias: None,
            },
        )
        .unwrap();
    let g = b.finish(fc).unwrap();
    assert_eq!(count_ops(&g).requant_by_kind["fixed_point"], 3 * 8 * 64);
    check_end_to_end(&g);
}

#[test]
fn ternary_with_folded_scale() {
    let mut r = rng(4);
    let mut b = GraphBuilder::new(&[1, 6, 6]);
    let c = b
        .conv2d(
            "tconv",
            0,
            Conv2d {
                in_channels: 1,
                out_channels: 4,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                pad: 0,
                groups: 1,
                weight_kind: WeightKind::Ternary,
                input_zero_point: 0,
                weights: random_weights(&mut r, WeightKind::Ternary, 36),
                bias: None,
            },
        )
        .unwrap();
    // Per-channel alpha folded into per-channel shifts (DJQ-style power-of-two requantizer).
    let a = b
        .requant(
            "rq",
            c,
            DType::U8,
            Requant::Shift {
                shift: vec![2, 3, 4, 5],
                zero_point: 0,
                min: 0,
                max: 255,
            },
        )
        .unwrap();
    let f = b.flatten("flat", a).unwrap();
    let d = b
        .dense(
            "fc",
            f,
            Dense {
                in_features: 64,
                out_features: 10,
                weight_kind: WeightKind::Ternary,
                input_zero_point: 0,
                weights: random_weights(&mut r, WeightKind::Ternary, 640),
                bias: None,
            },
        )
        .unwrap();
    let g = b.finish(d).unwrap();
    let counts = count_ops(&g);
    assert_eq!(counts.macs_by_kind["wter_au8"], 4 * 16 * 9 + 640);
    assert_eq!(counts.weight_bits, (36 + 640) * 2);
    check_end_to_end(&g);
}
