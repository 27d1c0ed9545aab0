//! QONNX `Trunc` as Brevitas' `TruncAvgPool2d` and `TruncAdaptiveAvgPool2d` export it:
//! `AveragePool` (or `GlobalAveragePool`) of a quantized activation, a `Mul` by the window size
//! (the float average back to the window's integer sum), then `Trunc` dropping low bits of the sum.
//!
//! The engine computes the sum exactly, as a depthwise convolution with all-ones (binary)
//! weights, and drops the bits with a `Shift` requantizer. The shift rounds half up, so the
//! rounding modes become a bias on the sum: `floor(a / 2^k) = shift_round(a - 2^(k-1), k)` and
//! `ceil(a / 2^k) = shift_round(a + 2^(k-1) - 1, k)`; `HALF_UP` needs no bias on the
//! non-negative sums of unsigned activations. Trunc v1 (five inputs, qonnx's default) keeps the
//! input scale and drops `input_bit_width - output_bit_width` bits; v2 (six inputs) drops
//! `log2(output_scale / scale)` bits, takes `output_scale` and clamps to the output width. Both
//! as qonnx's executor computes them.

use std::collections::HashMap;

use qbench_engine::{Conv2d, DType, Pool, Requant, WeightKind};

use super::{Lower, Val, attr, pool_attrs, scalar_f64};
use crate::error::Result;
use crate::import::Ctx;
use crate::proto::{GraphProto, NodeProto};

/// The `Mul` and `Trunc` that follow an average pool.
pub(super) struct Chain {
    mul: usize,
    trunc: usize,
}

impl Chain {
    /// The positions this chain lowers besides the pool's.
    pub(super) fn rest(&self) -> [usize; 2] {
        [self.mul, self.trunc]
    }

    /// The value the chain defines: the `Trunc`'s output.
    pub(super) fn output<'g>(&self, graph: &'g GraphProto) -> Option<&'g String> {
        graph.node[self.trunc].output.first()
    }
}

/// Which nodes read each value, by position.
pub(super) fn consumers(graph: &GraphProto) -> HashMap<&str, Vec<usize>> {
    let mut map: HashMap<&str, Vec<usize>> = HashMap::new();
    for (position, node) in graph.node.iter().enumerate() {
        for input in &node.input {
            map.entry(input.as_str()).or_default().push(position);
        }
    }
    for output in &graph.output {
        map.entry(output.name.as_str())
            .or_default()
            .push(usize::MAX);
    }
    map
}

/// The chain starting at node `pool` when it is an average pool whose only reader is a `Mul`
/// whose only reader is a QONNX `Trunc`.
pub(super) fn find(
    graph: &GraphProto,
    consumers: &HashMap<&str, Vec<usize>>,
    pool: usize,
) -> Option<Chain> {
    let only_reader = |node: &NodeProto| match consumers.get(node.output.first()?.as_str()) {
        Some(readers) if readers.len() == 1 => graph.node.get(readers[0]).map(|_| readers[0]),
        _ => None,
    };
    let node = &graph.node[pool];
    if !(node.domain.is_empty()
        && matches!(node.op_type.as_str(), "AveragePool" | "GlobalAveragePool"))
    {
        return None;
    }
    let mul = only_reader(node)?;
    if !(graph.node[mul].domain.is_empty() && graph.node[mul].op_type == "Mul") {
        return None;
    }
    let trunc = only_reader(&graph.node[mul])?;
    (graph.node[trunc].op_type == "Trunc").then_some(Chain { mul, trunc })
}

impl Lower<'_> {
    /// Lowers a pool, its `Mul` and its `Trunc` (see the module docs).
    pub(super) fn trunc_pool(
        &mut self,
        graph: &GraphProto,
        pool: usize,
        chain: &Chain,
    ) -> Result<Val> {
        let ctx = |position: usize| Ctx {
            position,
            node: &graph.node[position],
        };
        let (pool_ctx, mul_ctx, trunc_ctx) = (ctx(pool), ctx(chain.mul), ctx(chain.trunc));
        let Val::Act {
            id,
            scale,
            zero_point: 0,
            dtype,
        } = self.input(&pool_ctx, 0)?
        else {
            return Err(pool_ctx.unsupported(
                "a truncated average pool needs a quantized activation with zero point 0",
            ));
        };
        let window = if graph.node[pool].op_type == "GlobalAveragePool" {
            let shape = &self.b.ty(id).shape;
            if shape.len() != 3 {
                return Err(pool_ctx.unsupported("global pooling of a vector"));
            }
            Pool {
                kernel_h: shape[1],
                kernel_w: shape[2],
                stride: 1,
                pad: 0,
            }
        } else {
            let window = pool_attrs(&pool_ctx)?;
            if window.pad > 0 && super::attr_i(pool_ctx.node, "count_include_pad", 0) == 0 {
                return Err(pool_ctx.unsupported(
                    "padding without count_include_pad: the average is not a window sum",
                ));
            }
            window
        };
        let size = (window.kernel_h * window.kernel_w) as f64;

        // The Mul restores the window sum.
        let pool_out = &graph.node[pool].output[0];
        let factor = mul_ctx
            .node
            .input
            .iter()
            .position(|i| i != pool_out)
            .unwrap_or(1);
        let m = scalar_f64(&mul_ctx, &self.floats(&mul_ctx, factor)?, "factor")?;
        if (m - size).abs() > 1e-6 * size {
            return Err(mul_ctx.unsupported(format!(
                "a Mul by {m} after an average pool of {size} values (Trunc needs the window sum)"
            )));
        }

        // Trunc(x, scale, zeropt, input_bit_width, [output_scale,] output_bit_width).
        let t = &trunc_ctx;
        let v2 = t.node.input.len() == 6;
        if !(t.node.input.len() == 5 || v2) {
            return Err(t.err(
                "inputs",
                format!(
                    "{} inputs; Trunc takes 5 (v1) or 6 (v2)",
                    t.node.input.len()
                ),
            ));
        }
        let t_scale = scalar_f64(t, &self.floats(t, 1)?, "scale")?;
        let t_zero = scalar_f64(t, &self.floats(t, 2)?, "zero point")?;
        if (t_scale - scale).abs() > 1e-6 * scale || t_zero != 0.0 {
            return Err(t.unsupported(format!(
                "Trunc of scale {t_scale} and zero point {t_zero} over activations of scale {scale} and zero point 0"
            )));
        }
        let in_bits = self.floats(t, 3)?;
        let in_bits = bit_width(t, &in_bits, "input_bit_width")?;
        let out_bits = self.floats(t, if v2 { 5 } else { 4 })?;
        let out_bits = bit_width(t, &out_bits, "output_bit_width")?;
        let unsigned = matches!(dtype, DType::U8 | DType::Unsigned { .. });
        let (shift, out_scale, signed, narrow) = if v2 {
            let out_scale = scalar_f64(t, &self.floats(t, 4)?, "output_scale")?;
            let shift = (out_scale / t_scale).log2().round();
            let signed = super::attr_i(t.node, "signed", 1) != 0;
            (
                shift,
                out_scale,
                signed,
                super::attr_i(t.node, "narrow", 0) != 0,
            )
        } else {
            (
                f64::from(in_bits) - f64::from(out_bits),
                scale,
                !unsigned,
                false,
            )
        };
        if !(0.0..=31.0).contains(&shift) || out_bits > 8 {
            return Err(t.unsupported(format!(
                "a truncation by {shift} bits to {out_bits} bits (0 to 31 bits, to at most 8)"
            )));
        }
        let shift = shift as u32;
        let half = if shift == 0 { 0 } else { 1i32 << (shift - 1) };
        let mode = attr(t.node, "rounding_mode")
            .map(|a| String::from_utf8_lossy(&a.s).to_uppercase())
            .unwrap_or_else(|| "FLOOR".into());
        let bias = match mode.as_str() {
            "FLOOR" => -half,
            "CEIL" => (half - 1).max(0),
            "HALF_UP" if unsigned => 0,
            _ if shift == 0 => 0,
            _ => {
                return Err(t.unsupported(format!(
                    "rounding mode {mode} here (FLOOR, CEIL, or HALF_UP of unsigned values)"
                )));
            }
        };
        let (lo, hi, out) = match (signed, narrow) {
            (false, _) => (
                0,
                (1i32 << out_bits) - 1 - i32::from(narrow),
                DType::Unsigned {
                    bits: out_bits as u8,
                },
            ),
            (true, _) if out_bits < 2 => return Err(t.unsupported("a 1-bit signed output")),
            (true, _) => (
                -(1i32 << (out_bits - 1)) + i32::from(narrow),
                (1i32 << (out_bits - 1)) - 1,
                DType::Signed {
                    bits: out_bits as u8,
                },
            ),
        };

        let channels = self.b.ty(id).shape[0];
        let sum = Conv2d {
            in_channels: channels,
            out_channels: channels,
            kernel_h: window.kernel_h,
            kernel_w: window.kernel_w,
            stride: window.stride,
            pad: window.pad,
            groups: channels,
            weight_kind: WeightKind::Binary,
            input_zero_point: 0,
            weights: vec![1; channels * window.kernel_h * window.kernel_w],
            bias: Some(vec![bias; channels]),
        };
        let name = self.name(&pool_ctx);
        let acc = self.b.conv2d(&name, id, sum)?;
        let name = self.name(t);
        let requant = Requant::Shift {
            shift: vec![shift as u8],
            zero_point: 0,
            min: lo,
            max: hi,
        };
        Ok(Val::Act {
            id: self.b.requant(&name, acc, out, requant)?,
            scale: out_scale,
            zero_point: 0,
            dtype: out,
        })
    }
}

/// A bit width input: an integer in 1..=32.
fn bit_width(t: &Ctx, v: &[f64], what: &str) -> Result<u32> {
    let b = scalar_f64(t, v, what)?;
    if b.fract() == 0.0 && (1.0..=32.0).contains(&b) {
        Ok(b as u32)
    } else {
        Err(t.err(what, format!("{b} is not a bit width in 1..=32")))
    }
}
