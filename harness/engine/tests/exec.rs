//! The fast executor equals the reference executor bit for bit, and the reference computes what the
//! node docs say on small hand-checked graphs.

mod common;

use common::{random_case, small_cnn};
use proptest::prelude::*;
use qbench_engine::exec::{argmax, fast, reference};
use qbench_engine::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn fast_equals_reference_on_random_graphs(seed in any::<u64>()) {
        let case = random_case(seed);
        let want = reference::run_traced(&case.graph, &case.input, case.batch).unwrap();
        let got = fast::run_traced(&case.graph, &case.input, case.batch).unwrap();
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            prop_assert_eq!(w, g, "node {} ({:?})", i, case.graph.nodes[i].op.name());
        }
        let lw = reference::run(&case.graph, &case.input, case.batch).unwrap();
        let lg = fast::run(&case.graph, &case.input, case.batch).unwrap();
        prop_assert_eq!(&lw, &lg);
        prop_assert_eq!(lw.values, got.last().unwrap().values());
    }
}

#[test]
fn fast_equals_reference_on_small_cnn_across_chunks() {
    let g = small_cnn(7, 4, 8);
    let batch = 70; // more than one parallel chunk
    let input: Vec<u8> = (0..batch * 784).map(|i| (i * 37 % 251) as u8).collect();
    assert_eq!(
        reference::run(&g, &input, batch).unwrap(),
        fast::run(&g, &input, batch).unwrap()
    );
}

fn conv(
    cin: usize,
    cout: usize,
    k: usize,
    pad: usize,
    z: i32,
    weights: Vec<i8>,
    bias: Option<Vec<i32>>,
) -> Conv2d {
    Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel_h: k,
        kernel_w: k,
        stride: 1,
        pad,
        groups: 1,
        weight_kind: WeightKind::Int { bits: 8 },
        input_zero_point: z,
        weights,
        bias,
    }
}

fn values(graph: &QGraph, input: &[u8], node: usize) -> Vec<i32> {
    let r = reference::run_traced(graph, input, 1).unwrap()[node].values();
    let f = fast::run_traced(graph, input, 1).unwrap()[node].values();
    assert_eq!(r, f);
    r
}

#[test]
fn padded_taps_read_the_zero_point_and_contribute_nothing() {
    // 1x2x2 input, 3x3 all-ones kernel, pad 1, z = 10: every output is sum over in-bounds (x - 10).
    let mut b = GraphBuilder::new(&[1, 2, 2]);
    let c = b
        .conv2d("c", 0, conv(1, 1, 3, 1, 10, vec![1; 9], Some(vec![5])))
        .unwrap();
    let f = b.flatten("f", c).unwrap();
    let g = b.finish(f).unwrap();
    let input = [11u8, 12, 13, 14];
    // Each output window covers all 4 pixels: (1+2+3+4) + bias 5.
    assert_eq!(values(&g, &input, 1), vec![15, 15, 15, 15]);
}

#[test]
fn signed_inputs_run_through_the_offset_path() {
    // input -> shift requant to i8 (zp -128 maps pixel p to p - 128) -> 1x3 conv with z = -3.
    let input = [0u8, 128, 255]; // -> -128, 0, 127; minus z -> -125, 3, 130
    let mut b = GraphBuilder::new(&[1, 1, 3]);
    let rq = b
        .requant(
            "rq",
            0,
            DType::Signed { bits: 8 },
            Requant::Shift {
                shift: vec![0],
                zero_point: -128,
                min: -128,
                max: 127,
            },
        )
        .unwrap();
    let mut k = conv(1, 1, 1, 0, -3, vec![2], None);
    k.kernel_w = 3;
    k.pad = 0;
    k.weights = vec![2, -1, 3];
    let c = b.conv2d("c", rq, k).unwrap();
    let f = b.flatten("f", c).unwrap();
    let g = b.finish(f).unwrap();
    assert_eq!(values(&g, &input, 2), vec![2 * -125 - 3 + 3 * 130]);
}

#[test]
fn binary_padding_contributes_zero() {
    // Binary map 1x1x1 of +1, 3x3 kernel of +1, pad 1: only the centre tap is inside: output 1.
    let mut b = GraphBuilder::new(&[1, 1, 1]);
    let t = b
        .requant(
            "sign",
            0,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![0],
                flip: vec![false],
            },
        )
        .unwrap();
    let c = b
        .binary_conv2d(
            "bc",
            t,
            BinaryConv2d {
                in_channels: 1,
                out_channels: 2,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                pad: 1,
                groups: 1,
                weights: [vec![1; 9], vec![-1; 9]].concat(),
                bias: Some(vec![10, 20]),
            },
        )
        .unwrap();
    let f = b.flatten("f", c).unwrap();
    let g = b.finish(f).unwrap();
    assert_eq!(values(&g, &[7], 2), vec![11, 19]);
}

#[test]
fn threshold_directions_and_multi_threshold() {
    let mut b = GraphBuilder::new(&[4]);
    let t = b
        .requant(
            "t",
            0,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![5, 5, 5, 5],
                flip: vec![false, false, true, true],
            },
        )
        .unwrap();
    let m = b
        .requant(
            "m",
            0,
            DType::Unsigned { bits: 2 },
            Requant::MultiThreshold {
                thresholds: vec![1, 5, 9],
                flip: vec![false],
            },
        )
        .unwrap();
    let d = b
        .binary_dense(
            "d",
            t,
            BinaryDense {
                in_features: 4,
                out_features: 4,
                weights: vec![
                    1, -1, -1, -1, //
                    -1, 1, -1, -1, //
                    -1, -1, 1, -1, //
                    -1, -1, -1, 1,
                ],
                bias: None,
            },
        )
        .unwrap();
    let _ = m;
    let g = b.finish(d).unwrap();
    let input = [5u8, 4, 5, 6];
    // acc >= 5: +1, -1; acc <= 5 (flipped): +1, -1.
    assert_eq!(values(&g, &input, 1), vec![1, -1, 1, -1]);
    // thresholds 1, 5, 9 passed: 5 -> 2, 4 -> 1, 5 -> 2, 6 -> 2.
    assert_eq!(values(&g, &input, 2), vec![2, 1, 2, 2]);
}

#[test]
fn flatten_of_binary_uses_chw_order() {
    // 2 channels x 1 x 2: channel 0 = [+1, -1], channel 1 = [-1, +1]; flattened: [+1, -1, -1, +1].
    let mut b = GraphBuilder::new(&[2, 1, 2]);
    let t = b
        .requant(
            "t",
            0,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![1],
                flip: vec![false],
            },
        )
        .unwrap();
    let f = b.flatten("f", t).unwrap();
    let d = b
        .binary_dense(
            "d",
            f,
            BinaryDense {
                in_features: 4,
                out_features: 1,
                weights: vec![1, -1, -1, 1],
                bias: None,
            },
        )
        .unwrap();
    let g = b.finish(d).unwrap();
    let input = [1u8, 0, 0, 1];
    assert_eq!(values(&g, &input, 2), vec![1, -1, -1, 1]);
    assert_eq!(values(&g, &input, 4), vec![4]);
}

#[test]
fn average_pool_rounds_half_up() {
    // Windows of 2: (1+2)/2 = 1.5 -> 2; signed (-128 zero point): (-127 + -126)/2 = -126.5 -> -126,
    // (-3 + -2)/2 = -2.5 -> -2.
    let mut b = GraphBuilder::new(&[1, 1, 4]);
    let p = Pool {
        kernel_h: 1,
        kernel_w: 2,
        stride: 2,
        pad: 0,
    };
    let a = b.avg_pool("a", 0, p).unwrap();
    let s = b
        .requant(
            "s",
            0,
            DType::Signed { bits: 8 },
            Requant::Shift {
                shift: vec![0],
                zero_point: -128,
                min: -128,
                max: 127,
            },
        )
        .unwrap();
    let sa = b.avg_pool("sa", s, p).unwrap();
    let gp = b.global_avg_pool("g", s).unwrap();
    let f = b.flatten("f", a).unwrap();
    let _ = (sa, gp);
    let g = b.finish(f).unwrap();
    let input = [1u8, 2, 125, 126];
    assert_eq!(values(&g, &input, 1), vec![2, 126]);
    assert_eq!(values(&g, &input, 3), vec![-126, -2]);
    // mean of -127, -126, -3, -2 = -64.5 -> -64.
    assert_eq!(values(&g, &input, 4), vec![-64]);
}

#[test]
fn argmax_ties_take_the_lowest_index() {
    assert_eq!(argmax(&[3, 7, 7, 1]), 1);
    assert_eq!(argmax(&[-5, -5]), 0);
    let l = Logits {
        batch: 1,
        classes: 4,
        values: vec![2, 9, 2, 9],
    };
    assert_eq!(l.argmax(), vec![1]);
    assert_eq!(l.top_k(0, 3), vec![1, 3, 0]);
}

#[test]
fn wrong_input_length_is_an_error() {
    let g = small_cnn(1, 2, 2);
    assert!(matches!(
        fast::run(&g, &[0; 100], 1),
        Err(EngineError::Input(_))
    ));
    assert!(matches!(
        reference::run(&g, &[0; 784], 2),
        Err(EngineError::Input(_))
    ));
}

#[test]
fn random_graphs_cover_every_op_and_requantizer() {
    use std::collections::BTreeSet;
    let mut seen = BTreeSet::new();
    for seed in 0..400 {
        let case = random_case(seed);
        for (i, n) in case.graph.nodes.iter().enumerate() {
            seen.insert(n.op.name().to_string());
            match &n.op {
                Op::Requant(r) => {
                    seen.insert(format!("rq:{}", r.requant.kind_name()));
                }
                Op::Conv2d(c) => {
                    seen.insert(format!(
                        "w:{}",
                        c.weight_kind.label().replace(char::is_numeric, "")
                    ));
                    if c.groups > 1 {
                        seen.insert("grouped".into());
                    }
                    let input = &case.graph.nodes[n.inputs[0]].output;
                    if matches!(input.dtype, DType::Signed { .. }) {
                        seen.insert("signed_conv".into());
                    }
                }
                Op::Add(a) => {
                    seen.insert(
                        format!("{:?}", a.align)
                            .split(' ')
                            .next()
                            .unwrap()
                            .to_string(),
                    );
                }
                Op::BinaryConv2d(c) => {
                    if c.in_channels / c.groups > 64 {
                        seen.insert("binary_conv_multiword".into());
                    }
                    if c.groups > 1 {
                        seen.insert("binary_grouped".into());
                    }
                }
                Op::MaxPool(_) if case.graph.nodes[n.inputs[0]].output.dtype == DType::Binary => {
                    seen.insert("binary_max_pool".into());
                }
                _ => {}
            }
            let _ = i;
        }
    }
    for want in [
        "conv2d",
        "dense",
        "binary_conv2d",
        "binary_dense",
        "requant",
        "max_pool",
        "avg_pool",
        "global_avg_pool",
        "relu",
        "add",
        "flatten",
        "output",
        "rq:shift",
        "rq:fixed_point",
        "rq:threshold",
        "rq:multi_threshold",
        "w:int",
        "w:bin",
        "w:ter",
        "grouped",
        "signed_conv",
        "PowerOfTwo",
        "FixedPoint",
        "binary_max_pool",
        "binary_conv_multiword",
        "binary_grouped",
    ] {
        assert!(
            seen.contains(want),
            "random graphs never produce {want}: {seen:?}"
        );
    }
}

#[test]
fn binary_conv_with_many_taps_matches_reference() {
    // 9x9 = 81 taps: more than the packed binary kernel takes; the executor falls back.
    let mut r = common::rng(5);
    let mut b = GraphBuilder::new(&[3, 10, 10]);
    let t = b
        .requant(
            "sign",
            0,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![128],
                flip: vec![false],
            },
        )
        .unwrap();
    let c = b
        .binary_conv2d(
            "bc",
            t,
            BinaryConv2d {
                in_channels: 3,
                out_channels: 5,
                kernel_h: 9,
                kernel_w: 9,
                stride: 1,
                pad: 2,
                groups: 1,
                weights: common::random_weights(&mut r, WeightKind::Binary, 5 * 3 * 81),
                bias: None,
            },
        )
        .unwrap();
    let f = b.flatten("f", c).unwrap();
    let g = b.finish(f).unwrap();
    let input: Vec<u8> = (0..3 * 300).map(|i| (i * 97 % 256) as u8).collect();
    let want = reference::run_traced(&g, &input, 3).unwrap();
    assert_eq!(want, fast::run_traced(&g, &input, 3).unwrap());
}
