//! Type inference and parameter checks for one node, shared by [`crate::GraphBuilder`] and
//! [`crate::QGraph::validate`] so that a graph built in memory and a graph loaded from a file pass
//! exactly the same checks.

use crate::node::{AddAlign, Op, Pool};
use crate::requant::Requant;
use crate::types::{DType, TensorType};

/// A rule a node breaks: the field at fault and what is wrong.
#[derive(Debug)]
pub(crate) struct Fault {
    pub field: String,
    pub message: String,
}

type Checked<T> = Result<T, Fault>;

fn fault(field: &str, message: impl Into<String>) -> Fault {
    Fault {
        field: field.to_string(),
        message: message.into(),
    }
}

macro_rules! ensure {
    ($cond:expr, $field:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(fault($field, format!($($msg)+)));
        }
    };
}

/// A convolution's channels: the input has `in_channels`, and `groups` divides both counts.
fn check_channels(
    ch: usize,
    in_channels: usize,
    out_channels: usize,
    groups: usize,
) -> Checked<()> {
    ensure!(
        ch == in_channels,
        "in_channels",
        "{in_channels} but the input has {ch} channels"
    );
    ensure!(groups >= 1, "groups", "must be >= 1");
    ensure!(
        in_channels.is_multiple_of(groups) && out_channels.is_multiple_of(groups),
        "groups",
        "{groups} does not divide in_channels {in_channels} and out_channels {out_channels}"
    );
    ensure!(out_channels >= 1, "out_channels", "must be >= 1");
    Ok(())
}

/// A convolution's padding: below the kernel size in both directions, so that every output
/// window reads at least one input tap (a window of padding only computes nothing but the bias,
/// and a large `pad` would make the padded input and the output arbitrarily large).
/// The padded input the kernels build, `C x (H + 2 pad) x (W + 2 pad)`, must also stay within
/// [`MAX_ELEMENTS`] (a large stride could otherwise pair a huge padded input with a small output).
fn check_conv_pad(pad: usize, kernel_h: usize, kernel_w: usize, input: [usize; 3]) -> Checked<()> {
    ensure!(
        pad < kernel_h.min(kernel_w),
        "pad",
        "{pad} must be below the kernel size {kernel_h}x{kernel_w}"
    );
    let [c, h, w] = input;
    let padded = [
        c,
        h.saturating_add(pad.saturating_mul(2)),
        w.saturating_add(pad.saturating_mul(2)),
    ];
    ensure!(
        checked_product(&padded).is_some(),
        "pad",
        "the padded input {padded:?} has too many elements"
    );
    Ok(())
}

/// A Q31 fixed-point multiplier (Jacob et al. 2018, TFLite's `QuantizeMultiplier`): 0, or in
/// `[2^30, 2^31)`, i.e. a real multiplier in `[0.5, 1)` before its exponent. Negative and
/// unnormalised values are not what the format defines.
fn check_multiplier(m: i32, field: &str) -> Checked<()> {
    ensure!(
        m == 0 || m >= 1 << 30,
        field,
        "{m} is not a Q31 multiplier (0 or 2^30..=2^31-1)"
    );
    Ok(())
}

/// Output size of a sliding window, or a fault if the window does not fit.
fn window_out(len: usize, kernel: usize, stride: usize, pad: usize, field: &str) -> Checked<usize> {
    ensure!(kernel >= 1, field, "kernel size must be >= 1");
    ensure!(stride >= 1, "stride", "stride must be >= 1");
    let padded = pad
        .checked_mul(2)
        .and_then(|p| p.checked_add(len))
        .ok_or_else(|| fault("pad", format!("padding {pad} is out of range")))?;
    ensure!(
        padded >= kernel,
        field,
        "kernel {kernel} larger than padded input {padded}"
    );
    Ok((padded - kernel) / stride + 1)
}

/// Largest number of elements one image's tensor (or one layer's weights) may have: 2^28, about
/// 80 times the largest activation (64 x 112 x 112) and 2.6 times the largest weight matrix
/// (VGG-16's 25088 x 4096) of the ImageNet models. Keeps every size computation far from
/// overflow, and a graph claiming absurd shapes (2^40 channels, a 10^9 kernel) is rejected at
/// load time, before anything of that size is allocated.
pub(crate) const MAX_ELEMENTS: usize = 1 << 28;

/// Product of sizes, or `None` if it exceeds [`MAX_ELEMENTS`].
pub(crate) fn checked_product(sizes: &[usize]) -> Option<usize> {
    sizes
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
}

fn weight_count(sizes: &[usize]) -> Checked<usize> {
    checked_product(sizes)
        .ok_or_else(|| fault("weights", format!("weight shape {sizes:?} is too large")))
}

fn check_weights(
    weights: &[i8],
    expected: usize,
    allowed: impl Fn(i8) -> bool,
    kind: &str,
) -> Checked<()> {
    ensure!(
        weights.len() == expected,
        "weights",
        "length {} but the shape needs {expected}",
        weights.len()
    );
    if let Some((i, w)) = weights.iter().enumerate().find(|(_, w)| !allowed(**w)) {
        return Err(fault(
            "weights",
            format!("value {w} at index {i} outside the declared {kind} weights"),
        ));
    }
    Ok(())
}

fn check_bias(bias: &Option<Vec<i32>>, out: usize) -> Checked<()> {
    if let Some(b) = bias {
        ensure!(
            b.len() == out,
            "bias",
            "length {} but there are {out} output channels",
            b.len()
        );
    }
    Ok(())
}

fn narrow_input(t: &TensorType, what: &str) -> Checked<()> {
    ensure!(
        t.dtype.is_narrow_int(),
        "input",
        "{what} takes a narrow (1..=8-bit) integer input, got {}",
        t.dtype.label()
    );
    Ok(())
}

fn non_binary(t: &TensorType, what: &str) -> Checked<()> {
    ensure!(
        t.dtype != DType::Binary,
        "input",
        "{what} does not take a binary input"
    );
    Ok(())
}

fn map(t: &TensorType, what: &str) -> Checked<(usize, usize, usize)> {
    ensure!(
        t.is_map(),
        "input",
        "{what} takes a [C, H, W] input, got shape {:?}",
        t.shape
    );
    Ok((t.shape[0], t.shape[1], t.shape[2]))
}

fn vector(t: &TensorType, what: &str) -> Checked<usize> {
    ensure!(
        t.is_vector(),
        "input",
        "{what} takes an [F] input, got shape {:?}",
        t.shape
    );
    Ok(t.shape[0])
}

fn pool_out(p: &Pool, t: &TensorType, what: &str) -> Checked<Vec<usize>> {
    let (c, h, w) = map(t, what)?;
    ensure!(
        p.pad <= p.kernel_h / 2 && p.pad <= p.kernel_w / 2,
        "pad",
        "pad {} exceeds half the window {}x{}",
        p.pad,
        p.kernel_h,
        p.kernel_w
    );
    let oh = window_out(h, p.kernel_h, p.stride, p.pad, "kernel_h")?;
    let ow = window_out(w, p.kernel_w, p.stride, p.pad, "kernel_w")?;
    Ok(vec![c, oh, ow])
}

fn check_sets(n: usize, channels: usize, field: &str) -> Checked<()> {
    ensure!(
        n == 1 || n == channels,
        field,
        "{n} entries, expected 1 (per tensor) or {channels} (per channel)"
    );
    Ok(())
}

fn check_clamp(out: DType, zero_point: i32, min: i32, max: i32) -> Checked<()> {
    ensure!(
        out.contains(i64::from(zero_point)),
        "zero_point",
        "{zero_point} outside {}",
        out.label()
    );
    ensure!(
        out.contains(i64::from(min)),
        "min",
        "{min} outside {}",
        out.label()
    );
    ensure!(
        out.contains(i64::from(max)),
        "max",
        "{max} outside {}",
        out.label()
    );
    ensure!(min <= max, "min", "min {min} > max {max}");
    Ok(())
}

fn check_requant(out: DType, r: &Requant, channels: usize) -> Checked<()> {
    ensure!(out.is_valid(), "out", "bit width out of range: {out:?}");
    ensure!(
        r.output_allowed(out),
        "out",
        "a {} requantizer cannot produce {}",
        r.kind_name(),
        out.label()
    );
    match r {
        Requant::Shift {
            shift,
            zero_point,
            min,
            max,
        } => {
            check_sets(shift.len(), channels, "shift")?;
            if let Some(s) = shift.iter().find(|s| **s > 31) {
                return Err(fault("shift", format!("shift {s} outside 0..=31")));
            }
            check_clamp(out, *zero_point, *min, *max)
        }
        Requant::FixedPoint {
            multiplier,
            shift,
            zero_point,
            min,
            max,
        } => {
            check_sets(multiplier.len(), channels, "multiplier")?;
            ensure!(
                shift.len() == multiplier.len(),
                "shift",
                "{} shifts for {} multipliers",
                shift.len(),
                multiplier.len()
            );
            for &m in multiplier {
                check_multiplier(m, "multiplier")?;
            }
            if let Some(s) = shift.iter().find(|s| !(-31..=30).contains(*s)) {
                return Err(fault("shift", format!("shift {s} outside -31..=30")));
            }
            check_clamp(out, *zero_point, *min, *max)
        }
        Requant::Threshold { thresholds, flip } => {
            check_sets(flip.len(), channels, "flip")?;
            ensure!(
                thresholds.len() == flip.len(),
                "thresholds",
                "{} thresholds for {} sets",
                thresholds.len(),
                flip.len()
            );
            Ok(())
        }
        Requant::MultiThreshold { thresholds, flip } => {
            check_sets(flip.len(), channels, "flip")?;
            let DType::Unsigned { bits } = out else {
                unreachable!("checked by output_allowed")
            };
            let levels = (1usize << bits) - 1;
            ensure!(
                thresholds.len() == flip.len() * levels,
                "thresholds",
                "{} thresholds, expected {} sets x {levels}",
                thresholds.len(),
                flip.len()
            );
            for (set, ts) in thresholds.chunks(levels).enumerate() {
                if let Some(i) = ts.windows(2).position(|w| w[0] > w[1]) {
                    return Err(fault(
                        "thresholds",
                        format!(
                            "set {set} not sorted: {} > {} at position {i}",
                            ts[i],
                            ts[i + 1]
                        ),
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Checks `op`'s parameters against its input types and returns its output type, which must have at
/// most [`MAX_ELEMENTS`] elements. `Op::Input` is handled by the graph (its type is declared).
pub(crate) fn infer(op: &Op, inputs: &[&TensorType]) -> Checked<TensorType> {
    let t = infer_unchecked(op, inputs)?;
    ensure!(
        checked_product(&t.shape).is_some(),
        "output",
        "shape {:?} has too many elements",
        t.shape
    );
    Ok(t)
}

fn infer_unchecked(op: &Op, inputs: &[&TensorType]) -> Checked<TensorType> {
    ensure!(
        inputs.len() == op.arity(),
        "inputs",
        "{} takes {} inputs, got {}",
        op.name(),
        op.arity(),
        inputs.len()
    );
    match op {
        Op::Input => Err(fault("op", "an input node has no inferred type")),
        Op::Conv2d(c) => {
            let t = inputs[0];
            narrow_input(t, "conv2d")?;
            let (ch, h, w) = map(t, "conv2d")?;
            check_channels(ch, c.in_channels, c.out_channels, c.groups)?;
            ensure!(
                c.weight_kind.is_valid(),
                "weight_kind",
                "bit width out of range: {:?}",
                c.weight_kind
            );
            ensure!(
                t.dtype.contains(i64::from(c.input_zero_point)),
                "input_zero_point",
                "{} outside the input's {}",
                c.input_zero_point,
                t.dtype.label()
            );
            let oh = window_out(h, c.kernel_h, c.stride, c.pad, "kernel_h")?;
            let ow = window_out(w, c.kernel_w, c.stride, c.pad, "kernel_w")?;
            check_conv_pad(c.pad, c.kernel_h, c.kernel_w, [ch, h, w])?;
            let n = weight_count(&[
                c.out_channels,
                c.in_channels / c.groups,
                c.kernel_h,
                c.kernel_w,
            ])?;
            check_weights(
                &c.weights,
                n,
                |v| c.weight_kind.contains(v),
                &c.weight_kind.label(),
            )?;
            check_bias(&c.bias, c.out_channels)?;
            Ok(TensorType::new(DType::I32, &[c.out_channels, oh, ow]))
        }
        Op::Dense(d) => {
            let t = inputs[0];
            narrow_input(t, "dense")?;
            let f = vector(t, "dense")?;
            ensure!(
                f == d.in_features,
                "in_features",
                "{} but the input has {f} features",
                d.in_features
            );
            ensure!(d.out_features >= 1, "out_features", "must be >= 1");
            ensure!(
                d.weight_kind.is_valid(),
                "weight_kind",
                "bit width out of range: {:?}",
                d.weight_kind
            );
            ensure!(
                t.dtype.contains(i64::from(d.input_zero_point)),
                "input_zero_point",
                "{} outside the input's {}",
                d.input_zero_point,
                t.dtype.label()
            );
            check_weights(
                &d.weights,
                weight_count(&[d.out_features, d.in_features])?,
                |v| d.weight_kind.contains(v),
                &d.weight_kind.label(),
            )?;
            check_bias(&d.bias, d.out_features)?;
            Ok(TensorType::new(DType::I32, &[d.out_features]))
        }
        Op::BinaryConv2d(c) => {
            let t = inputs[0];
            ensure!(
                t.dtype == DType::Binary,
                "input",
                "binary_conv2d takes a binary input, got {}",
                t.dtype.label()
            );
            let (ch, h, w) = map(t, "binary_conv2d")?;
            check_channels(ch, c.in_channels, c.out_channels, c.groups)?;
            let oh = window_out(h, c.kernel_h, c.stride, c.pad, "kernel_h")?;
            let ow = window_out(w, c.kernel_w, c.stride, c.pad, "kernel_w")?;
            check_conv_pad(c.pad, c.kernel_h, c.kernel_w, [ch, h, w])?;
            let n = weight_count(&[
                c.out_channels,
                c.in_channels / c.groups,
                c.kernel_h,
                c.kernel_w,
            ])?;
            check_weights(&c.weights, n, |v| v == 1 || v == -1, "+-1")?;
            check_bias(&c.bias, c.out_channels)?;
            Ok(TensorType::new(DType::I32, &[c.out_channels, oh, ow]))
        }
        Op::BinaryDense(d) => {
            let t = inputs[0];
            ensure!(
                t.dtype == DType::Binary,
                "input",
                "binary_dense takes a binary input, got {}",
                t.dtype.label()
            );
            let f = vector(t, "binary_dense")?;
            ensure!(
                f == d.in_features,
                "in_features",
                "{} but the input has {f} features",
                d.in_features
            );
            ensure!(d.out_features >= 1, "out_features", "must be >= 1");
            check_weights(
                &d.weights,
                weight_count(&[d.out_features, d.in_features])?,
                |v| v == 1 || v == -1,
                "+-1",
            )?;
            check_bias(&d.bias, d.out_features)?;
            Ok(TensorType::new(DType::I32, &[d.out_features]))
        }
        Op::Requant(r) => {
            let t = inputs[0];
            non_binary(t, "requant")?;
            check_requant(r.out, &r.requant, t.channels())?;
            Ok(TensorType::new(r.out, &t.shape))
        }
        Op::MaxPool(p) => {
            let shape = pool_out(p, inputs[0], "max_pool")?;
            Ok(TensorType::new(inputs[0].dtype, &shape))
        }
        Op::AvgPool(p) => {
            non_binary(inputs[0], "avg_pool")?;
            ensure!(p.pad == 0, "pad", "average pooling takes no padding");
            let shape = pool_out(p, inputs[0], "avg_pool")?;
            Ok(TensorType::new(inputs[0].dtype, &shape))
        }
        Op::GlobalAvgPool => {
            non_binary(inputs[0], "global_avg_pool")?;
            let (c, _, _) = map(inputs[0], "global_avg_pool")?;
            Ok(TensorType::new(inputs[0].dtype, &[c]))
        }
        Op::Relu { zero_point } => {
            non_binary(inputs[0], "relu")?;
            ensure!(
                inputs[0].dtype.contains(i64::from(*zero_point)),
                "zero_point",
                "{zero_point} outside {}",
                inputs[0].dtype.label()
            );
            Ok(inputs[0].clone())
        }
        Op::Add(a) => {
            let (x, y) = (inputs[0], inputs[1]);
            non_binary(x, "add")?;
            non_binary(y, "add")?;
            ensure!(
                x.shape == y.shape,
                "inputs",
                "shapes {:?} and {:?} differ",
                x.shape,
                y.shape
            );
            ensure!(
                x.dtype.contains(i64::from(a.zero_point_a)),
                "zero_point_a",
                "{} outside {}",
                a.zero_point_a,
                x.dtype.label()
            );
            ensure!(
                y.dtype.contains(i64::from(a.zero_point_b)),
                "zero_point_b",
                "{} outside {}",
                a.zero_point_b,
                y.dtype.label()
            );
            match a.align {
                AddAlign::PowerOfTwo { shift_a, shift_b } => {
                    ensure!(shift_a <= 31, "shift_a", "{shift_a} outside 0..=31");
                    ensure!(shift_b <= 31, "shift_b", "{shift_b} outside 0..=31");
                }
                AddAlign::FixedPoint {
                    left_shift,
                    multiplier_a,
                    shift_a,
                    multiplier_b,
                    shift_b,
                } => {
                    check_multiplier(multiplier_a, "multiplier_a")?;
                    check_multiplier(multiplier_b, "multiplier_b")?;
                    ensure!(
                        left_shift <= 30,
                        "left_shift",
                        "{left_shift} outside 0..=30"
                    );
                    ensure!(
                        (-31..=30).contains(&shift_a),
                        "shift_a",
                        "{shift_a} outside -31..=30"
                    );
                    ensure!(
                        (-31..=30).contains(&shift_b),
                        "shift_b",
                        "{shift_b} outside -31..=30"
                    );
                }
            }
            Ok(TensorType::new(DType::I32, &x.shape))
        }
        Op::Flatten => {
            let t = inputs[0];
            map(t, "flatten")?;
            Ok(TensorType::new(t.dtype, &[t.numel()]))
        }
        Op::Output => {
            non_binary(inputs[0], "output")?;
            let f = vector(inputs[0], "output")?;
            Ok(TensorType::new(DType::I32, &[f]))
        }
    }
}
