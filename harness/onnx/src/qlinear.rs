//! The QLinear form of an export ([`Form::QLinear`](crate::export::Form::QLinear)): onnxruntime's
//! fused quantized operators for the pairs that have one (a u8 convolution with its `Shift` or
//! `FixedPoint` requantizer to u8, a fixed-point residual add with its requantizer to u8).

use qbench_engine::{AddAlign, DType, Node, NodeId, Op, QGraph, Requant};

use crate::emit::{Emitter, int, ints};
use crate::error::{OnnxError, Result};
use crate::tensor::{f32_tensor, i32_tensor, u8_tensor};

/// For every node, `Some(first)` when it is the requantizer fused with node `first`.
pub fn fusions(graph: &QGraph) -> Vec<Option<NodeId>> {
    let mut users = vec![0usize; graph.nodes.len()];
    for n in &graph.nodes {
        for &i in &n.inputs {
            users[i] += 1;
        }
    }
    graph
        .nodes
        .iter()
        .map(|n| {
            let Op::Requant(r) = &n.op else { return None };
            let &[first] = n.inputs.as_slice() else {
                return None;
            };
            let fits = n.output.dtype == DType::U8
                && matches!(
                    r.requant,
                    Requant::Shift { .. } | Requant::FixedPoint { .. }
                )
                && users[first] == 1;
            let head = &graph.nodes[first];
            let head_ok = match &head.op {
                Op::Conv2d(c) => {
                    matches!(
                        c.weight_kind,
                        qbench_engine::WeightKind::Int { .. } | qbench_engine::WeightKind::Ternary
                    ) && graph.nodes[head.inputs[0]].output.dtype == DType::U8
                }
                Op::Add(a) => {
                    matches!(a.align, AddAlign::FixedPoint { .. })
                        && matches!(r.requant, Requant::FixedPoint { .. })
                        && head
                            .inputs
                            .iter()
                            .all(|&k| graph.nodes[k].output.dtype == DType::U8)
                }
                _ => false,
            };
            (fits && head_ok).then_some(first)
        })
        .collect()
}

/// The real multipliers of a `Shift` or `FixedPoint` requantizer, one per set.
fn multipliers(r: &Requant) -> Vec<f64> {
    match r {
        Requant::Shift { shift, .. } => shift.iter().map(|&s| 2f64.powi(-i32::from(s))).collect(),
        Requant::FixedPoint {
            multiplier, shift, ..
        } => multiplier
            .iter()
            .zip(shift)
            .map(|(&m, &s)| f64::from(m) * 2f64.powi(s - 31))
            .collect(),
        _ => Vec::new(),
    }
}

/// Emits `head` and its requantizer `rq` as one fused operator; returns the output value.
pub fn emit_pair(e: &mut Emitter, head: &Node, rq: &Node, inputs: &[&str]) -> Result<String> {
    let err = |m: &str| OnnxError::Export {
        node: rq.name.clone(),
        message: m.into(),
    };
    let Op::Requant(r) = &rq.op else {
        return Err(err("not a requantizer"));
    };
    let (zp, min, max) = match &r.requant {
        Requant::Shift {
            zero_point,
            min,
            max,
            ..
        }
        | Requant::FixedPoint {
            zero_point,
            min,
            max,
            ..
        } => (*zero_point, *min, *max),
        _ => return Err(err("not a shift or fixed-point requantizer")),
    };
    let zp8 = u8::try_from(zp).map_err(|_| err("zero point outside u8"))?;
    let m = multipliers(&r.requant);
    e.begin(&rq.name);
    let one = e.constant("one", f32_tensor("", &[], &[1.0]));
    let yz = e.constant("y_zero_point", u8_tensor("", &[], &[zp8]));
    let mut y = match &head.op {
        Op::Conv2d(c) => {
            let xz = crate::export::zero_point_const(
                e,
                "x_zero_point",
                DType::U8,
                c.input_zero_point,
                head,
            )?;
            // uint8 weights w + 128 (zero point 128), as in the exact form: onnxruntime's u8 x s8
            // kernels on AVX2 saturate pairs of products.
            let wu = crate::export::offset_weights(&c.weights);
            let w = e.constant(
                "weight",
                u8_tensor(
                    "",
                    &[
                        c.out_channels,
                        c.in_channels / c.groups,
                        c.kernel_h,
                        c.kernel_w,
                    ],
                    &wu,
                ),
            );
            let scales: Vec<f32> = (0..c.out_channels)
                .map(|o| m[o.min(m.len() - 1)] as f32)
                .collect();
            let ws = e.constant("w_scale", f32_tensor("", &[c.out_channels], &scales));
            let wz = e.constant(
                "w_zero_point",
                u8_tensor("", &[c.out_channels], &vec![128; c.out_channels]),
            );
            let mut ins = vec![
                inputs[0].to_string(),
                one.clone(),
                xz,
                w,
                ws,
                wz,
                one.clone(),
                yz.clone(),
            ];
            if let Some(b) = &c.bias {
                ins.push(e.constant("bias", i32_tensor("", &[c.out_channels], b)));
            }
            let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
            let attrs = vec![
                ints("kernel_shape", &[c.kernel_h as i64, c.kernel_w as i64]),
                ints("strides", &[c.stride as i64; 2]),
                ints("pads", &[c.pad as i64; 4]),
                int("group", c.groups as i64),
            ];
            e.op("QLinearConv", &refs, attrs)
        }
        Op::Add(a) => {
            let AddAlign::FixedPoint {
                left_shift,
                multiplier_a,
                shift_a,
                multiplier_b,
                shift_b,
            } = a.align
            else {
                return Err(err("not a fixed-point add"));
            };
            let out = m.first().copied().ok_or_else(|| err("no multiplier"))?;
            let side =
                |mm: i32, s: i32| f64::from(mm) * 2f64.powi(s - 31 + i32::from(left_shift)) * out;
            let sa = e.constant(
                "a_scale",
                f32_tensor("", &[], &[side(multiplier_a, shift_a) as f32]),
            );
            let sb = e.constant(
                "b_scale",
                f32_tensor("", &[], &[side(multiplier_b, shift_b) as f32]),
            );
            let za = crate::export::zero_point_const(
                e,
                "a_zero_point",
                DType::U8,
                a.zero_point_a,
                head,
            )?;
            let zb = crate::export::zero_point_const(
                e,
                "b_zero_point",
                DType::U8,
                a.zero_point_b,
                head,
            )?;
            e.op_in(
                "com.microsoft",
                "QLinearAdd",
                &[inputs[0], &sa, &za, inputs[1], &sb, &zb, &one, &yz],
                vec![],
            )
        }
        _ => return Err(err("no fused form")),
    };
    if min > 0 {
        let lo = e.constant("min", u8_tensor("", &[], &[min.clamp(0, 255) as u8]));
        y = e.op("Max", &[&y, &lo], vec![]);
    }
    if max < 255 {
        let hi = e.constant("max", u8_tensor("", &[], &[max.clamp(0, 255) as u8]));
        e.op("Min", &[&y, &hi], vec![]);
    }
    Ok(e.end(r#"{"op":"fused"}"#, None))
}
