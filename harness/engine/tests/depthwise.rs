//! Depthwise convolutions (`groups == in_channels == out_channels > 1`) run on the kernels crate's
//! depthwise kernel in the fast executor; every node's output equals the reference executor's bit
//! for bit, for unsigned and signed inputs of several widths, nonzero zero points, with and
//! without bias, and with the per-channel add left to a following requantizer.

use proptest::prelude::*;
use qbench_engine::exec::{fast, reference};
use qbench_engine::*;

/// The dtype the depthwise layer reads: the raw u8 input, or a requantized narrow map.
#[derive(Clone, Copy, Debug)]
enum Input {
    U8,
    U4,
    S8,
    S4,
}

impl Input {
    fn dtype(self) -> DType {
        match self {
            Input::U8 => DType::Unsigned { bits: 8 },
            Input::U4 => DType::Unsigned { bits: 4 },
            Input::S8 => DType::Signed { bits: 8 },
            Input::S4 => DType::Signed { bits: 4 },
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    channels: usize,
    h: usize,
    w: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride: usize,
    pad: usize,
    batch: usize,
    input_kind: Input,
    zero_point: i32,
    weights: Vec<i8>,
    bias: Option<Vec<i32>>,
    /// Follow the convolution with a per-channel requantizer (untraced runs then leave the
    /// correction to it).
    requant_after: bool,
    input: Vec<u8>,
}

/// The graph: input, optional requantizer to the layer's input dtype, the depthwise layer, an
/// optional requantizer, flatten.
fn graph(c: &Case) -> QGraph {
    let mut b = GraphBuilder::new(&[c.channels, c.h, c.w]);
    let shift = |bits: u32, zero_point: i32, min: i32, max: i32| Requant::Shift {
        shift: vec![bits as u8],
        zero_point,
        min,
        max,
    };
    let x = match c.input_kind {
        Input::U8 => b.input(),
        Input::U4 => b
            .requant("to_u4", 0, c.input_kind.dtype(), shift(4, 0, 0, 15))
            .unwrap(),
        Input::S8 => b
            .requant("to_s8", 0, c.input_kind.dtype(), shift(0, -128, -128, 127))
            .unwrap(),
        Input::S4 => b
            .requant("to_s4", 0, c.input_kind.dtype(), shift(4, -8, -8, 7))
            .unwrap(),
    };
    let conv = Conv2d {
        in_channels: c.channels,
        out_channels: c.channels,
        kernel_h: c.kernel_h,
        kernel_w: c.kernel_w,
        stride: c.stride,
        pad: c.pad,
        groups: c.channels,
        weight_kind: WeightKind::Int { bits: 8 },
        input_zero_point: c.zero_point,
        weights: c.weights.clone(),
        bias: c.bias.clone(),
    };
    let mut y = b.conv2d("dw", x, conv).unwrap();
    if c.requant_after {
        let shifts = (0..c.channels).map(|i| (i % 7) as u8 + 3).collect();
        y = b
            .requant(
                "rq",
                y,
                DType::Unsigned { bits: 8 },
                Requant::Shift {
                    shift: shifts,
                    zero_point: 7,
                    min: 0,
                    max: 255,
                },
            )
            .unwrap();
    }
    let f = b.flatten("f", y).unwrap();
    b.finish(f).unwrap()
}

fn check(c: &Case) {
    let g = graph(c);
    let want = reference::run_traced(&g, &c.input, c.batch).unwrap();
    let got = fast::run_traced(&g, &c.input, c.batch).unwrap();
    assert_eq!(want.len(), got.len());
    for (i, (w, f)) in want.iter().zip(&got).enumerate() {
        assert_eq!(w, f, "node {i} ({}) of {c:?}", g.nodes[i].op.name());
    }
    assert_eq!(
        reference::run(&g, &c.input, c.batch).unwrap(),
        fast::run(&g, &c.input, c.batch).unwrap(),
        "untraced run of {c:?}"
    );
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(2usize), Just(3), Just(5), Just(8), Just(13)],
        (1usize..20, 1usize..34),
        prop_oneof![Just(1usize), Just(3), Just(5)],
        prop_oneof![3 => Just(0usize), 1 => Just(1), 1 => Just(2)],
        prop_oneof![Just(1usize), Just(2)],
        0usize..=2,
        1usize..=3,
        prop_oneof![
            Just(Input::U8),
            Just(Input::U4),
            Just(Input::S8),
            Just(Input::S4)
        ],
        (any::<bool>(), any::<bool>(), any::<u64>()),
    )
        .prop_filter_map(
            "kernel larger than the padded input, or padding not below it",
            |(channels, (h, w), k, dk, stride, pad, batch, input_kind, (bias, rq, seed))| {
                // Square kernels, and now and then one row or column wider or narrower.
                let (kernel_h, kernel_w) = match dk {
                    0 => (k, k),
                    1 => (k, k.max(2) - 1),
                    _ => (k + 1, k),
                };
                // A valid graph pads by less than the kernel (every window reads an input tap).
                let fits = h + 2 * pad >= kernel_h && w + 2 * pad >= kernel_w;
                (fits && pad < kernel_h.min(kernel_w)).then(|| {
                    let mut x = seed | 1;
                    let mut next = move || {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x
                    };
                    let t = input_kind.dtype();
                    let span = (t.max_value() - t.min_value() + 1) as u64;
                    let zero_point = (t.min_value() + (next() % span) as i64) as i32;
                    let weights = (0..channels * kernel_h * kernel_w)
                        .map(|_| next() as i8)
                        .collect();
                    let bias = bias.then(|| {
                        (0..channels)
                            .map(|i| {
                                if i % 3 == 0 {
                                    next() as i32
                                } else {
                                    (next() % 4000) as i32 - 2000
                                }
                            })
                            .collect()
                    });
                    let input = (0..batch * channels * h * w)
                        .map(|_| next() as u8)
                        .collect();
                    Case {
                        channels,
                        h,
                        w,
                        kernel_h,
                        kernel_w,
                        stride,
                        pad,
                        batch,
                        input_kind,
                        zero_point,
                        weights,
                        bias,
                        requant_after: rq,
                        input,
                    }
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn depthwise_fast_equals_reference(c in case()) {
        check(&c);
    }
}

/// MobileNet-like layers (wide rows, many channels, both strides), a batch large enough to split
/// into several parallel chunks, and the extreme zero points.
#[test]
fn depthwise_mobilenet_like_layers() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let layers = [
        (32, 28, 28, 3, 1, 1, 2, Input::U8, 0),
        (32, 28, 28, 3, 2, 1, 1, Input::S8, -128),
        (16, 9, 9, 5, 1, 2, 20, Input::U8, 255),
        (7, 14, 14, 3, 1, 1, 3, Input::S4, 7),
    ];
    for (channels, h, w, k, stride, pad, batch, input_kind, zero_point) in layers {
        check(&Case {
            channels,
            h,
            w,
            kernel_h: k,
            kernel_w: k,
            stride,
            pad,
            batch,
            input_kind,
            zero_point,
            weights: (0..channels * k * k).map(|_| next() as i8).collect(),
            bias: Some((0..channels).map(|_| next() as i32).collect()),
            requant_after: batch > 1,
            input: (0..batch * channels * h * w)
                .map(|_| next() as u8)
                .collect(),
        });
    }
}
