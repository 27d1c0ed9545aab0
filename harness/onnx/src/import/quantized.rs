//! Import of quantized models by meaning: QDQ (QuantizeLinear/DequantizeLinear around float
//! Conv, Gemm, MatMul, Add, pooling and Relu, as onnxruntime's `quantize_static` writes),
//! QOperator (QLinearConv, QLinearMatMul, com.microsoft QGemm, ConvInteger, MatMulInteger) and QONNX as Brevitas'
//! `export_qonnx` writes it (domains `qonnx.custom_op.general` and `onnx.brevitas`): `Quant` of
//! weights (2 to 8 bits, any per-channel scale along the output channels; a 32-bit `Quant` of a
//! bias, Brevitas' `Int32Bias`), of the input and of accumulators (a requantizer to 1 to 8
//! bits; `ROUND` (half to even) or `HALF_UP` (half away from zero, which the engine's `Shift`
//! matches on the non-negative values after a ReLU); otherwise the engine rounds as its
//! requantizer does),
//! `BipolarQuant` (+-1 weights: binary layers over +-1 activations; of an accumulator: the sign
//! as a threshold requantizer) and `MultiThreshold` (each threshold `t` becomes `ceil(t / S)` in
//! accumulator units: `BIPOLAR` with out_scale 2 and out_bias -1 a threshold, `UINTk` with
//! `2^k - 1` thresholds a multi-threshold) and `Trunc` after an average pool (Brevitas'
//! `TruncAvgPool2d`: see [`trunc`]).
//!
//! Every ONNX value is tracked as one of [`Val`]: the float pixels of the graph input, an integer
//! activation of the engine with its scale and zero point, an i32 accumulator with its real scale
//! per channel, or a constant. A `QuantizeLinear` of an accumulator becomes the engine's
//! requantizer for `M = S_acc / S_out`: a `Shift` when every `M` is a power of two `2^-k`
//! (`k` in 0..=31), else a `FixedPoint` from TFLite's `QuantizeMultiplier` (gemmlowp). Rounding
//! then differs from onnxruntime's float path (which rounds the float product half to even, after
//! float accumulation): the engine rounds half up (`Shift`) or as gemmlowp (`FixedPoint`), so
//! a logit may differ by a unit where a value lies on or near a tie. A residual `Add` of two
//! quantized tensors is TFLite's ADD (left shift 20, multipliers `S_a / 2 max(S_a, S_b)`).
//!
//! The float input must be quantized to the pixel bytes themselves: the first `QuantizeLinear`
//! must map the float input `p / 255` (or `p`) of every byte `p` to `p` (checked for all 256).

use std::collections::HashMap;

use qbench_engine::requant::quantize_multiplier;
use qbench_engine::{
    Add, AddAlign, Conv2d, DType, Dense, GraphBuilder, NodeId, Pool, QGraph, Requant, WeightKind,
};

use super::{Ctx, input_shape};
use crate::error::{OnnxError, Result};
use crate::proto::{GraphProto, NodeProto, TensorProto};
use crate::tensor;

mod trunc;

/// What an ONNX value is, as far as the lowering knows.
#[derive(Clone, Debug)]
enum Val {
    /// The float graph input: pixel bytes `p`, as `p / 255` (`unit = true`) or `p`.
    Pixels,
    /// An engine integer tensor: `real = scale (q - zero_point)`.
    Act {
        id: NodeId,
        scale: f64,
        zero_point: i32,
        dtype: DType,
    },
    /// An engine i32 accumulator: `real = scale[c] acc`; `relu` once a ReLU was applied.
    Acc {
        id: NodeId,
        scale: Vec<f64>,
        relu: bool,
    },
    /// A constant: integers with an optional dequantization (scale and zero point per `axis`),
    /// and the weight kind a QONNX quantizer gave them (int8 otherwise).
    Int {
        values: Vec<i64>,
        dims: Vec<usize>,
        scale: Option<Vec<f64>>,
        zero_point: Vec<i64>,
        kind: Option<WeightKind>,
    },
    /// A float constant.
    Float { values: Vec<f64>, dims: Vec<usize> },
}

impl Val {
    /// The same activation or accumulator (scale, zero point, dtype) as the engine node `id`:
    /// what an op that moves values without rescaling them (ReLU, pooling, flatten) gives.
    fn with_id(mut self, new: NodeId) -> Val {
        if let Val::Act { id, .. } | Val::Acc { id, .. } = &mut self {
            *id = new;
        }
        self
    }
}

struct Lower<'a> {
    b: GraphBuilder,
    vals: HashMap<String, Val>,
    names: std::collections::HashSet<String>,
    inits: HashMap<&'a str, &'a TensorProto>,
}

/// Lowers a QDQ or QOperator graph (see the module docs).
pub fn import(graph: &GraphProto) -> Result<QGraph> {
    let shape = input_shape(graph)?;
    let inits: HashMap<&str, &TensorProto> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let mut l = Lower {
        b: GraphBuilder::new(&shape),
        vals: HashMap::new(),
        names: std::collections::HashSet::from(["input".to_string(), "output".to_string()]),
        inits,
    };
    for i in &graph.input {
        if !l.inits.contains_key(i.name.as_str()) {
            let elem = i
                .r#type
                .as_ref()
                .and_then(|t| t.tensor_type.as_ref())
                .map_or(0, |t| t.elem_type);
            let v = if elem == crate::proto::data_type::UINT8 {
                Val::Act {
                    id: 0,
                    scale: 1.0,
                    zero_point: 0,
                    dtype: DType::U8,
                }
            } else {
                Val::Pixels
            };
            l.vals.insert(i.name.clone(), v);
        }
    }
    let readers = trunc::consumers(graph);
    let mut lowered = std::collections::HashSet::new();
    for (position, node) in graph.node.iter().enumerate() {
        if lowered.contains(&position) {
            continue;
        }
        if let Some(chain) = trunc::find(graph, &readers, position) {
            let out = l.trunc_pool(graph, position, &chain)?;
            lowered.extend(chain.rest());
            if let Some(name) = chain.output(graph) {
                l.vals.insert(name.clone(), out);
            }
            continue;
        }
        let ctx = Ctx { position, node };
        let out = l.lower(&ctx)?;
        let name = node
            .output
            .first()
            .ok_or_else(|| ctx.err("output", "no output".into()))?;
        l.vals.insert(name.clone(), out);
    }
    let [output] = graph.output.as_slice() else {
        return Err(OnnxError::Model(format!(
            "the graph has {} outputs; qbench takes one",
            graph.output.len()
        )));
    };
    let id = match l.vals.get(&output.name) {
        Some(Val::Act { id, .. } | Val::Acc { id, .. }) => *id,
        _ => {
            return Err(OnnxError::Model(format!(
                "output `{}` is not an integer tensor the engine computes",
                output.name
            )));
        }
    };
    Ok(l.b.finish(id)?)
}

fn attr<'n>(n: &'n NodeProto, name: &str) -> Option<&'n crate::proto::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i)
}

/// ONNX QuantizeLinear rounding: half to even.
fn round_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

impl Lower<'_> {
    fn input(&mut self, ctx: &Ctx, k: usize) -> Result<Val> {
        let name = ctx
            .node
            .input
            .get(k)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ctx.err(&format!("input {k}"), "missing".into()))?;
        if let Some(v) = self.vals.get(name) {
            return Ok(v.clone());
        }
        let t = self.inits.get(name.as_str()).ok_or_else(|| {
            ctx.err(
                &format!("input {k}"),
                format!("value `{name}` is not produced earlier"),
            )
        })?;
        let dims = tensor::dims(t)?;
        Ok(
            if t.data_type == crate::proto::data_type::FLOAT
                || t.data_type == crate::proto::data_type::DOUBLE
            {
                Val::Float {
                    values: tensor::to_f64(t)?,
                    dims,
                }
            } else {
                Val::Int {
                    values: tensor::to_i64(t)?,
                    dims,
                    scale: None,
                    zero_point: vec![0],
                    kind: None,
                }
            },
        )
    }

    fn has_input(&self, ctx: &Ctx, k: usize) -> bool {
        ctx.node.input.get(k).is_some_and(|s| !s.is_empty())
    }

    fn floats(&mut self, ctx: &Ctx, k: usize) -> Result<Vec<f64>> {
        match self.input(ctx, k)? {
            Val::Float { values, .. } => Ok(values),
            Val::Int { values, .. } => Ok(values.iter().map(|&v| v as f64).collect()),
            _ => Err(ctx.unsupported(format!("input {k} must be a constant"))),
        }
    }

    /// The zero point input `k` (0 when absent) and its dtype (uint8 when absent).
    fn zero_point(&mut self, ctx: &Ctx, k: usize) -> Result<(Vec<i64>, DType)> {
        if !self.has_input(ctx, k) {
            return Ok((vec![0], DType::U8));
        }
        let name = ctx.node.input[k].clone();
        let t = self
            .inits
            .get(name.as_str())
            .ok_or_else(|| ctx.unsupported("zero points must be constants"))?;
        let dt = match t.data_type {
            crate::proto::data_type::UINT8 => DType::U8,
            crate::proto::data_type::INT8 => DType::Signed { bits: 8 },
            crate::proto::data_type::INT32 => DType::I32,
            other => {
                return Err(ctx.unsupported(format!(
                    "zero point of type {}",
                    crate::proto::data_type::name(other)
                )));
            }
        };
        Ok((tensor::to_i64(t)?, dt))
    }

    /// Input `k` of an integer op (ConvInteger, QLinearConv, ...) as an engine integer tensor of
    /// real `scale`, with the zero point of input `zk`.
    fn integer_input(&mut self, ctx: &Ctx, k: usize, scale: f64, zk: usize) -> Result<Val> {
        let Val::Act { id, .. } = self.input(ctx, k)? else {
            return Err(ctx.unsupported("the data input must be an integer tensor"));
        };
        let (z, dtype) = self.zero_point(ctx, zk)?;
        Ok(Val::Act {
            id,
            scale,
            zero_point: scalar(ctx, &z)? as i32,
            dtype,
        })
    }

    fn name(&mut self, ctx: &Ctx) -> String {
        let base = if ctx.node.name.is_empty() {
            ctx.node.output.first().cloned().unwrap_or_default()
        } else {
            ctx.node.name.clone()
        };
        let base: String = base
            .chars()
            .map(|c| if c == '/' { '_' } else { c })
            .collect();
        let base = if base.is_empty() {
            format!("node{}", ctx.position)
        } else {
            base
        };
        let mut name = base.clone();
        let mut k = 1;
        while !self.names.insert(name.clone()) {
            name = format!("{base}.{k}");
            k += 1;
        }
        name
    }

    fn lower(&mut self, ctx: &Ctx) -> Result<Val> {
        let n = ctx.node;
        if n.domain == crate::export::QONNX_DOMAIN || n.domain == "onnx.brevitas" {
            return match n.op_type.as_str() {
                "Quant" | "IntQuant" => self.qonnx_quant(ctx),
                "BipolarQuant" => self.bipolar_quant(ctx),
                "MultiThreshold" => self.multi_threshold(ctx),
                "Trunc" => Err(ctx.unsupported(
                    "Trunc is read after an AveragePool or GlobalAveragePool and a Mul by its window size (Brevitas' TruncAvgPool2d)",
                )),
                _ => Err(ctx.unsupported("")),
            };
        }
        if n.domain == "com.microsoft" && n.op_type == "QGemm" {
            return self.qlinear(ctx);
        }
        if !(n.domain.is_empty() || n.domain == "ai.onnx") {
            return Err(ctx.unsupported(""));
        }
        match n.op_type.as_str() {
            "QuantizeLinear" => self.quantize(ctx),
            "DequantizeLinear" => self.dequantize(ctx),
            "Conv" => {
                let x = self.input(ctx, 0)?;
                let w = self.input(ctx, 1)?;
                let b = if self.has_input(ctx, 2) {
                    Some(self.input(ctx, 2)?)
                } else {
                    None
                };
                self.mac(ctx, x, w, b, true)
            }
            "Gemm" | "MatMul" => {
                if n.op_type == "Gemm"
                    && (attr_i(n, "transA", 0) != 0
                        || attr(n, "alpha").is_some_and(|a| a.f != 1.0)
                        || attr(n, "beta").is_some_and(|a| a.f != 1.0))
                {
                    return Err(ctx.unsupported("Gemm with transA or alpha/beta other than 1"));
                }
                let x = self.input(ctx, 0)?;
                let mut w = self.input(ctx, 1)?;
                let trans_b = n.op_type == "Gemm" && attr_i(n, "transB", 0) != 0;
                if !trans_b {
                    w = transpose_const(ctx, w)?;
                }
                let b = if n.op_type == "Gemm" && self.has_input(ctx, 2) {
                    Some(self.input(ctx, 2)?)
                } else {
                    None
                };
                self.mac(ctx, x, w, b, false)
            }
            "QLinearConv" | "QLinearMatMul" => self.qlinear(ctx),
            "ConvInteger" | "MatMulInteger" => {
                let x = self.integer_input(ctx, 0, 1.0, 2)?;
                let mut w = self.input(ctx, 1)?;
                if n.op_type == "MatMulInteger" {
                    w = transpose_const(ctx, w)?;
                }
                let (wz, _) = self.zero_point(ctx, 3)?;
                if let Val::Int { scale, values, .. } = &mut w {
                    *scale = Some(vec![1.0]);
                    let wz = scalar(ctx, &wz)?;
                    values.iter_mut().for_each(|v| *v -= wz);
                }
                let v = self.mac(ctx, x, w, None, n.op_type == "ConvInteger")?;
                Ok(v)
            }
            "Relu" => match self.input(ctx, 0)? {
                Val::Acc { id, scale, .. } => Ok(Val::Acc {
                    id,
                    scale,
                    relu: true,
                }),
                x @ Val::Act { id, zero_point, .. } => {
                    let name = self.name(ctx);
                    Ok(x.with_id(self.b.relu(&name, id, zero_point)?))
                }
                _ => Err(ctx.unsupported("Relu of a constant or of the float input")),
            },
            "MaxPool" | "AveragePool" => {
                let pool = pool_attrs(ctx)?;
                let x = self.input(ctx, 0)?;
                let name = self.name(ctx);
                let avg = n.op_type == "AveragePool";
                match x {
                    Val::Act { id, .. } if avg => {
                        let pooled = self.b.avg_pool(&name, id, pool)?;
                        Ok(x.with_id(pooled))
                    }
                    Val::Act { id, .. } | Val::Acc { id, .. } if !avg => {
                        let pooled = self.b.max_pool(&name, id, pool)?;
                        Ok(x.with_id(pooled))
                    }
                    _ => Err(ctx.unsupported("pooling of this value")),
                }
            }
            "GlobalAveragePool" => match self.input(ctx, 0)? {
                x @ Val::Act { id, .. } => {
                    let name = self.name(ctx);
                    Ok(x.with_id(self.b.global_avg_pool(&name, id)?))
                }
                _ => Err(ctx.unsupported("global pooling of a non-quantized value")),
            },
            "Flatten" | "Reshape" | "Squeeze" => {
                let x = self.input(ctx, 0)?;
                let id = match &x {
                    Val::Act { id, .. } | Val::Acc { id, .. } => *id,
                    _ => return Err(ctx.unsupported("reshaping a constant")),
                };
                if self.b.ty(id).is_vector() {
                    return Ok(x);
                }
                if n.op_type == "Flatten" && attr_i(n, "axis", 1) != 1 {
                    return Err(ctx.unsupported("Flatten with axis other than 1"));
                }
                if n.op_type == "Reshape" {
                    let shape = self.floats(ctx, 1)?;
                    let numel = self.b.ty(id).numel() as f64;
                    if !(shape.len() == 2 && (shape[1] == -1.0 || shape[1] == numel)) {
                        return Err(ctx.unsupported(format!(
                            "Reshape to {shape:?}: only [N, C*H*W] is supported"
                        )));
                    }
                }
                let name = self.name(ctx);
                let f = self.b.flatten(&name, id)?;
                match &x {
                    Val::Acc { scale, .. } if scale.len() != 1 => {
                        Err(ctx.unsupported("flattening per-channel accumulators"))
                    }
                    _ => Ok(x.with_id(f)),
                }
            }
            "Add" => self.add(ctx),
            "Identity" | "Cast" => self.input(ctx, 0),
            "Mul" => match (self.input(ctx, 0)?, self.input(ctx, 1)?) {
                (Val::Acc { id, scale, relu }, Val::Float { values, .. })
                    if !values.is_empty()
                        && !scale.is_empty()
                        && (values.len() == 1
                            || values.len() == scale.len()
                            || scale.len() == 1) =>
                {
                    let m = values.len().max(scale.len());
                    let s = (0..m)
                        .map(|c| scale[c.min(scale.len() - 1)] * values[c.min(values.len() - 1)])
                        .collect();
                    Ok(Val::Acc { id, scale: s, relu })
                }
                _ => Err(ctx.unsupported("Mul other than an accumulator by a constant scale")),
            },
            _ => Err(ctx.unsupported("")),
        }
    }

    fn quantize(&mut self, ctx: &Ctx) -> Result<Val> {
        let x = self.input(ctx, 0)?;
        let s = self.floats(ctx, 1)?;
        let (z, dtype) = self.zero_point(ctx, 2)?;
        let (&[s], &[z]) = (s.as_slice(), z.as_slice()) else {
            return Err(ctx.unsupported("per-channel activation quantization"));
        };
        if !(s.is_finite() && s > 0.0) {
            return Err(ctx.err("y_scale", format!("{s} is not a positive scale")));
        }
        if !dtype.is_narrow_int() {
            return Err(ctx.unsupported(format!("quantization to {}", dtype.label())));
        }
        let z = z as i32;
        match x {
            Val::Pixels => self.pixels(ctx, s, z, dtype),
            Val::Act {
                id,
                scale,
                zero_point,
                dtype: d,
            } => {
                if (scale - s).abs() <= 1e-6 * s && zero_point == z && d == dtype {
                    Ok(Val::Act {
                        id,
                        scale,
                        zero_point,
                        dtype,
                    })
                } else {
                    Err(ctx.unsupported(format!(
                        "requantizing an integer tensor from scale {scale} to {s}"
                    )))
                }
            }
            Val::Acc { id, scale, relu } => {
                let name = self.name(ctx);
                let requant = requantizer(ctx, &scale, s, z, dtype, relu)?;
                let id = self.b.requant(&name, id, dtype, requant)?;
                Ok(Val::Act {
                    id,
                    scale: s,
                    zero_point: z,
                    dtype,
                })
            }
            Val::Float { values, dims } => {
                let (lo, hi) = (dtype.min_value() as f64, dtype.max_value() as f64);
                let q = values
                    .iter()
                    .map(|&v| (round_even(v / s) + f64::from(z)).clamp(lo, hi) as i64)
                    .collect();
                Ok(Val::Int {
                    values: q,
                    dims,
                    scale: None,
                    zero_point: vec![0],
                    kind: None,
                })
            }
            Val::Int { .. } => Err(ctx.unsupported("quantizing an integer constant")),
        }
    }

    /// QONNX `Quant(x, scale, zero_point, bit_width)` (attributes `signed`, `narrow`,
    /// `rounding_mode`): of a float constant, integer weights of that width; of the float input,
    /// the pixel bytes; of an accumulator, the engine's requantizer to that width.
    fn qonnx_quant(&mut self, ctx: &Ctx) -> Result<Val> {
        let n = ctx.node;
        let x = self.input(ctx, 0)?;
        let s = self.floats(ctx, 1)?;
        let z = scalar_f64(ctx, &self.floats(ctx, 2)?, "zero point")?;
        // (bit widths above 8 are only taken for constants, below)
        let bits = scalar_f64(ctx, &self.floats(ctx, 3)?, "bit width")?;
        let signed = attr_i(n, "signed", 1) != 0;
        let narrow = attr_i(n, "narrow", 0) != 0;
        let mode = attr(n, "rounding_mode").map_or(b"ROUND".to_vec(), |a| a.s.to_ascii_uppercase());
        let half_up = mode == b"HALF_UP";
        if !(mode == b"ROUND" || mode == b"HALF_EVEN" || half_up) {
            return Err(
                ctx.unsupported(format!("rounding mode {}", String::from_utf8_lossy(&mode)))
            );
        }
        // Constants (an Int32Bias) may be wider than 8 bits; activations and weights may not.
        let widest = if matches!(x, Val::Float { .. }) {
            32.0
        } else {
            8.0
        };
        if !(bits.fract() == 0.0 && (1.0..=widest).contains(&bits)) || z.fract() != 0.0 {
            return Err(ctx.unsupported(format!(
                "bit width {bits} with zero point {z} (1 to 8 bits, integer zero point)"
            )));
        }
        let bits = bits as u8;
        if s.is_empty() || s.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
            return Err(ctx.err("scale", "scales must be positive".into()));
        }
        let (lo, hi) = match (signed, narrow) {
            (true, false) => (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1),
            (true, true) => (-(1i64 << (bits - 1)) + 1, (1i64 << (bits - 1)) - 1),
            (false, false) => (0, (1i64 << bits) - 1),
            (false, true) => (0, (1i64 << bits) - 2),
        };
        match x {
            Val::Float { values, dims } => {
                if !signed || bits < 2 || z != 0.0 {
                    return Err(
                        ctx.unsupported("weights must be signed, 2 to 8 bits, zero point 0")
                    );
                }
                let per = values.len() / s.len().max(1);
                if s.len() > 1 && (dims.first() != Some(&s.len()) || per * s.len() != values.len())
                {
                    return Err(ctx
                        .unsupported("per-channel weight scales other than along the first axis"));
                }
                let q = values
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let x = (v / s[if s.len() == 1 { 0 } else { i / per }])
                            .clamp(lo as f64, hi as f64);
                        // HALF_UP is half away from zero (f64::round); ROUND half to even.
                        (if half_up { x.round() } else { round_even(x) }) as i64
                    })
                    .collect();
                Ok(Val::Int {
                    values: q,
                    dims,
                    scale: Some(s),
                    zero_point: vec![0],
                    kind: (bits <= 8).then_some(WeightKind::Int { bits }),
                })
            }
            Val::Pixels => {
                if signed || bits != 8 || z != 0.0 || s.len() != 1 {
                    return Err(
                        ctx.unsupported("the input quantizer must be unsigned 8-bit, zero point 0")
                    );
                }
                self.pixels(ctx, s[0], 0, DType::U8)
            }
            Val::Acc { id, scale, relu } => {
                let &[s] = s.as_slice() else {
                    return Err(ctx.unsupported("per-channel activation quantization"));
                };
                let dtype = if signed {
                    if bits < 2 {
                        return Err(ctx.unsupported("1-bit signed activations: use BipolarQuant"));
                    }
                    DType::Signed { bits }
                } else {
                    DType::Unsigned { bits }
                };
                let name = self.name(ctx);
                let mut requant = requantizer(ctx, &scale, s, z as i32, dtype, relu)?;
                // HALF_UP rounds half away from zero; the engine's shift rounds half up, the same
                // on the non-negative values after a ReLU. Elsewhere it is a stated difference,
                // like ROUND's half to even.
                match &mut requant {
                    Requant::Shift { min, max, .. } | Requant::FixedPoint { min, max, .. } => {
                        *min = (*min).max(lo as i32);
                        *max = (*max).min(hi as i32);
                    }
                    _ => {}
                }
                let id = self.b.requant(&name, id, dtype, requant)?;
                Ok(Val::Act {
                    id,
                    scale: s,
                    zero_point: z as i32,
                    dtype,
                })
            }
            Val::Act {
                id,
                scale,
                zero_point,
                dtype,
            } if s.len() == 1 && (scale - s[0]).abs() <= 1e-6 * s[0] && zero_point == z as i32 => {
                Ok(Val::Act {
                    id,
                    scale,
                    zero_point,
                    dtype,
                })
            }
            _ => Err(ctx.unsupported("Quant of this value")),
        }
    }

    /// QONNX `BipolarQuant(x, scale)`: of a float constant, +-1 weights; of an accumulator, the
    /// sign (`acc >= 0`) as a threshold requantizer.
    fn bipolar_quant(&mut self, ctx: &Ctx) -> Result<Val> {
        let x = self.input(ctx, 0)?;
        let s = self.floats(ctx, 1)?;
        if s.is_empty() || s.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
            return Err(ctx.err("scale", "scales must be positive".into()));
        }
        match x {
            Val::Float { values, dims } => {
                if s.len() > 1 && dims.first() != Some(&s.len()) {
                    return Err(
                        ctx.unsupported("per-channel scales other than along the first axis")
                    );
                }
                Ok(Val::Int {
                    values: values
                        .iter()
                        .map(|&v| if v >= 0.0 { 1 } else { -1 })
                        .collect(),
                    dims,
                    scale: Some(s),
                    zero_point: vec![0],
                    kind: Some(WeightKind::Binary),
                })
            }
            Val::Acc { id, .. } => {
                let &[s] = s.as_slice() else {
                    return Err(ctx.unsupported("per-channel activation scale"));
                };
                let name = self.name(ctx);
                let requant = Requant::Threshold {
                    thresholds: vec![0],
                    flip: vec![false],
                };
                let id = self.b.requant(&name, id, DType::Binary, requant)?;
                Ok(Val::Act {
                    id,
                    scale: s,
                    zero_point: 0,
                    dtype: DType::Binary,
                })
            }
            _ => Err(ctx.unsupported("BipolarQuant of this value")),
        }
    }

    /// QONNX `MultiThreshold(x, thresholds)` of an accumulator: `count(acc S >= t)` as the
    /// engine's multi-threshold (`UINTk`, `2^k - 1` thresholds) or, for `BIPOLAR` with out_scale
    /// 2 and out_bias -1, its threshold; each threshold becomes `ceil(t / S)` in accumulator units.
    fn multi_threshold(&mut self, ctx: &Ctx) -> Result<Val> {
        let n = ctx.node;
        let Val::Acc { id, scale, relu } = self.input(ctx, 0)? else {
            return Err(ctx.unsupported("thresholds of anything but an accumulator"));
        };
        let t = self.input(ctx, 1)?;
        let (tv, tdims) = match t {
            Val::Float { values, dims } => (values, dims),
            Val::Int { values, dims, .. } => (values.iter().map(|&v| v as f64).collect(), dims),
            _ => return Err(ctx.unsupported("thresholds must be a constant")),
        };
        let &[sets, levels] = tdims.as_slice() else {
            return Err(ctx.err(
                "thresholds",
                format!("dimensions {tdims:?} are not [channels, levels]"),
            ));
        };
        let layout = attr(n, "data_layout").map_or(Vec::new(), |a| a.s.clone());
        if !(layout.is_empty() || layout == b"NCHW" || layout == b"NC") {
            return Err(ctx.unsupported("data layouts other than NCHW / NC"));
        }
        let out_dtype = attr(n, "out_dtype").map_or(Vec::new(), |a| a.s.clone());
        let out_scale = attr(n, "out_scale").map_or(1.0, |a| f64::from(a.f));
        let out_bias = attr(n, "out_bias").map_or(0.0, |a| f64::from(a.f));
        let channels = self.b.ty(id).channels();
        if !(sets == 1 || sets == channels) || (scale.len() != 1 && scale.len() != channels) {
            return Err(ctx.err("thresholds", format!("{sets} sets for {channels} channels")));
        }
        let out_sets = if sets == 1 && scale.len() == 1 {
            1
        } else {
            channels
        };
        let mut thresholds = Vec::with_capacity(out_sets * levels);
        for c in 0..out_sets {
            let sc = scale[c.min(scale.len() - 1)];
            for k in 0..levels {
                let t = tv[c.min(sets - 1) * levels + k];
                let ta = if relu && t <= 0.0 {
                    i32::MIN as f64
                } else {
                    (t / sc).ceil()
                };
                thresholds.push(ta.clamp(i32::MIN as f64, i32::MAX as f64) as i32);
            }
        }
        let flip = vec![false; out_sets];
        let name = self.name(ctx);
        if out_dtype == b"BIPOLAR" {
            if levels != 1 || out_scale != 2.0 || out_bias != -1.0 {
                return Err(
                    ctx.unsupported("BIPOLAR output needs one threshold, out_scale 2, out_bias -1")
                );
            }
            let id = self.b.requant(
                &name,
                id,
                DType::Binary,
                Requant::Threshold { thresholds, flip },
            )?;
            return Ok(Val::Act {
                id,
                scale: 1.0,
                zero_point: 0,
                dtype: DType::Binary,
            });
        }
        let bits = std::str::from_utf8(&out_dtype)
            .ok()
            .and_then(|d| d.strip_prefix("UINT"))
            .and_then(|b| b.parse::<u8>().ok())
            .filter(|&b| (1..=8).contains(&b) && levels == (1usize << b) - 1)
            .ok_or_else(|| {
                ctx.unsupported(format!(
                "out_dtype {} with {levels} thresholds (UINTk with 2^k - 1 thresholds, or BIPOLAR)",
                String::from_utf8_lossy(&out_dtype)
            ))
            })?;
        let zp = -out_bias / out_scale;
        if !(out_scale > 0.0 && zp.fract() == 0.0 && zp.abs() < 256.0) {
            return Err(ctx.unsupported("out_bias must be an integer multiple of -out_scale"));
        }
        let dtype = DType::Unsigned { bits };
        let id = self.b.requant(
            &name,
            id,
            dtype,
            Requant::MultiThreshold { thresholds, flip },
        )?;
        Ok(Val::Act {
            id,
            scale: out_scale,
            zero_point: zp as i32,
            dtype,
        })
    }

    /// The graph input quantized to `scale`, zero point `z`: must give the pixel bytes.
    fn pixels(&mut self, ctx: &Ctx, s: f64, z: i32, dtype: DType) -> Result<Val> {
        let s32 = s as f32;
        let fits = |unit: bool| {
            (0..=255u8).all(|p| {
                let x = if unit {
                    f32::from(p) / 255.0
                } else {
                    f32::from(p)
                };
                round_even(f64::from(x / s32)) + f64::from(z) == f64::from(p)
            })
        };
        if dtype != DType::U8 || !(fits(true) || fits(false)) {
            return Err(ctx.unsupported(format!(
                "the input quantization (scale {s}, zero point {z}) must give the pixel bytes (scale 1/255 or 1, zero point 0, uint8)"
            )));
        }
        Ok(Val::Act {
            id: 0,
            scale: s,
            zero_point: 0,
            dtype,
        })
    }

    fn dequantize(&mut self, ctx: &Ctx) -> Result<Val> {
        let x = self.input(ctx, 0)?;
        let s = self.floats(ctx, 1)?;
        let (z, _) = self.zero_point(ctx, 2)?;
        match x {
            Val::Int {
                values, dims, kind, ..
            } => {
                let axis = attr_i(ctx.node, "axis", 1);
                if s.len() > 1 && (axis != 0 || dims.first() != Some(&s.len())) {
                    return Err(ctx.unsupported(
                        "per-channel dequantization other than along axis 0 (output channels)",
                    ));
                }
                Ok(Val::Int {
                    values,
                    dims,
                    scale: Some(s),
                    zero_point: z,
                    kind,
                })
            }
            Val::Act {
                id,
                scale,
                zero_point,
                dtype,
            } => {
                let (&[s0], &[z0]) = (s.as_slice(), z.as_slice()) else {
                    return Err(ctx.unsupported("per-channel activation dequantization"));
                };
                if (s0 - scale).abs() > 1e-6 * scale || z0 as i32 != zero_point {
                    return Err(ctx.err("x_scale", format!("scale {s0} zero point {z0} differ from the quantization's {scale}, {zero_point}")));
                }
                Ok(Val::Act {
                    id,
                    scale,
                    zero_point,
                    dtype,
                })
            }
            _ => Err(ctx.unsupported("dequantizing this value")),
        }
    }

    /// A conv (`conv`) or dense layer of the quantized `x` with dequantized integer weights `w`
    /// (`[O, ...]`) and bias `b`; returns the accumulator.
    fn mac(&mut self, ctx: &Ctx, x: Val, w: Val, b: Option<Val>, conv: bool) -> Result<Val> {
        let Val::Act {
            id: xid,
            scale: sx,
            zero_point: zx,
            dtype: xdt,
        } = x
        else {
            return Err(ctx.unsupported("the data input must be a quantized tensor (QDQ)"));
        };
        let Val::Int {
            values,
            dims,
            scale: Some(sw),
            zero_point: zw,
            kind,
        } = w
        else {
            return Err(ctx.unsupported("the weights must be dequantized integer constants"));
        };
        if zw.iter().any(|&z| z != 0) {
            return Err(ctx.unsupported("weights with a non-zero zero point"));
        }
        let weights: Vec<i8> = values
            .iter()
            .map(|&v| i8::try_from(v).map_err(|_| ctx.err("weight", format!("{v} is not an int8"))))
            .collect::<Result<_>>()?;
        let out = *dims
            .first()
            .ok_or_else(|| ctx.err("weight", "no dimensions".into()))?;
        if sw.is_empty() || (sw.len() != 1 && sw.len() != out) {
            return Err(ctx.err(
                "weight scale",
                format!("{} scales for {out} output channels", sw.len()),
            ));
        }
        let sacc: Vec<f64> = (0..if sw.len() == 1 { 1 } else { out })
            .map(|c| sx * sw[c.min(sw.len() - 1)])
            .collect();
        let bias = match b {
            None => None,
            Some(Val::Int { values, scale, .. }) => {
                let s = scale.unwrap_or_else(|| sacc.clone());
                if s.is_empty() {
                    return Err(ctx.err("bias", "no scale".into()));
                }
                Some(requantize_bias(
                    ctx,
                    &values.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                    &s,
                    &sacc,
                    out,
                )?)
            }
            Some(Val::Float { values, .. }) => {
                Some(requantize_bias(ctx, &values, &[1.0], &sacc, out)?)
            }
            Some(_) => return Err(ctx.unsupported("the bias must be a constant")),
        };
        let name = self.name(ctx);
        let kind = kind.unwrap_or(WeightKind::Int { bits: 8 });
        let binary = xdt == DType::Binary;
        if binary && kind != WeightKind::Binary {
            return Err(
                ctx.unsupported("a layer over +-1 activations needs +-1 weights (BipolarQuant)")
            );
        }
        let id = if conv {
            let n = ctx.node;
            let ints = |a: &str| attr(n, a).map(|a| a.ints.clone());
            let st = ints("strides").unwrap_or_else(|| vec![1, 1]);
            let pads = ints("pads").unwrap_or_else(|| vec![0; 4]);
            let group = attr_i(n, "group", 1);
            let ok = dims.len() == 4
                && st.len() == 2
                && st[0] == st[1]
                && pads.len() == 4
                && pads.iter().all(|&p| p == pads[0])
                && ints("dilations").is_none_or(|d| d.iter().all(|&d| d == 1))
                && attr(n, "auto_pad").is_none_or(|a| a.s.is_empty() || a.s == b"NOTSET")
                && (1..=1 << 20).contains(&st[0])
                && (0..=1 << 20).contains(&pads[0])
                && (1..=1 << 20).contains(&group);
            if !ok {
                return Err(ctx.unsupported(
                    "Conv needs 4-D weights, equal strides, equal pads, no dilation",
                ));
            }
            let groups = group as usize;
            if binary {
                self.b.binary_conv2d(
                    &name,
                    xid,
                    qbench_engine::BinaryConv2d {
                        in_channels: dims[1] * groups,
                        out_channels: out,
                        kernel_h: dims[2],
                        kernel_w: dims[3],
                        stride: st[0] as usize,
                        pad: pads[0] as usize,
                        groups,
                        weights,
                        bias,
                    },
                )?
            } else {
                self.b.conv2d(
                    &name,
                    xid,
                    Conv2d {
                        in_channels: dims[1] * groups,
                        out_channels: out,
                        kernel_h: dims[2],
                        kernel_w: dims[3],
                        stride: st[0] as usize,
                        pad: pads[0] as usize,
                        groups,
                        weight_kind: kind,
                        input_zero_point: zx,
                        weights,
                        bias,
                    },
                )?
            }
        } else if dims.len() != 2 {
            return Err(ctx.unsupported("dense weights must be 2-D"));
        } else if binary {
            self.b.binary_dense(
                &name,
                xid,
                qbench_engine::BinaryDense {
                    in_features: dims[1],
                    out_features: out,
                    weights,
                    bias,
                },
            )?
        } else {
            self.b.dense(
                &name,
                xid,
                Dense {
                    in_features: dims[1],
                    out_features: out,
                    weight_kind: kind,
                    input_zero_point: zx,
                    weights,
                    bias,
                },
            )?
        };
        Ok(Val::Acc {
            id,
            scale: sacc,
            relu: false,
        })
    }

    /// QLinearConv, QLinearMatMul and com.microsoft's QGemm: the layer and (when the output is
    /// quantized; a QGemm without `y_scale` outputs its float accumulator) its requantizer.
    fn qlinear(&mut self, ctx: &Ctx) -> Result<Val> {
        let op = ctx.node.op_type.as_str();
        let conv = op == "QLinearConv";
        // (y_scale, y_zero_point, bias) input positions and whether B is [F, O].
        let (ys, yz, bias, transpose) = match op {
            "QLinearConv" => (6, 7, Some(8), false),
            "QLinearMatMul" => (6, 7, None, true),
            _ => {
                if attr_i(ctx.node, "transA", 0) != 0
                    || attr(ctx.node, "alpha").is_some_and(|a| a.f != 1.0)
                {
                    return Err(ctx.unsupported("QGemm with transA or alpha other than 1"));
                }
                (7, 8, Some(6), attr_i(ctx.node, "transB", 0) == 0)
            }
        };
        let sx = self.floats(ctx, 1)?;
        let x = self.integer_input(ctx, 0, scalar_f(ctx, &sx)?, 2)?;
        let mut w = self.input(ctx, 3)?;
        let sw = self.floats(ctx, 4)?;
        let (zw, _) = self.zero_point(ctx, 5)?;
        if transpose {
            w = transpose_const(ctx, w)?;
        }
        if let Val::Int {
            scale, zero_point, ..
        } = &mut w
        {
            *scale = Some(sw);
            *zero_point = zw;
        }
        let b = match bias {
            Some(k) if self.has_input(ctx, k) => Some(self.input(ctx, k)?),
            _ => None,
        };
        let acc = self.mac(ctx, x, w, b, conv)?;
        if !self.has_input(ctx, ys) {
            return Ok(acc);
        }
        let Val::Acc { id, scale, .. } = acc else {
            return Err(ctx.unsupported("internal: no accumulator"));
        };
        let sy = scalar_f(ctx, &self.floats(ctx, ys)?)?;
        let (zy, dty) = self.zero_point(ctx, yz)?;
        let zy = scalar(ctx, &zy)? as i32;
        let requant = requantizer(ctx, &scale, sy, zy, dty, false)?;
        let name = format!("{}.requant", self.name(ctx));
        let id = self.b.requant(&name, id, dty, requant)?;
        Ok(Val::Act {
            id,
            scale: sy,
            zero_point: zy,
            dtype: dty,
        })
    }

    fn add(&mut self, ctx: &Ctx) -> Result<Val> {
        let (a, b) = (self.input(ctx, 0)?, self.input(ctx, 1)?);
        let (
            Val::Act {
                id: ia,
                scale: sa,
                zero_point: za,
                ..
            },
            Val::Act {
                id: ib,
                scale: sb,
                zero_point: zb,
                ..
            },
        ) = (a, b)
        else {
            return Err(ctx.unsupported("Add of anything but two quantized tensors"));
        };
        let twice = 2.0 * sa.max(sb);
        let (multiplier_a, shift_a) = quantize_multiplier(sa / twice);
        let (multiplier_b, shift_b) = quantize_multiplier(sb / twice);
        let name = self.name(ctx);
        let id = self.b.add(
            &name,
            ia,
            ib,
            Add {
                zero_point_a: za,
                zero_point_b: zb,
                align: AddAlign::FixedPoint {
                    left_shift: 20,
                    multiplier_a,
                    shift_a,
                    multiplier_b,
                    shift_b,
                },
            },
        )?;
        Ok(Val::Acc {
            id,
            scale: vec![twice / f64::from(1u32 << 20)],
            relu: false,
        })
    }
}

/// The window of a `MaxPool` or `AveragePool` node: a 2-D kernel, equal strides, equal pads, no
/// dilation or ceil mode.
fn pool_attrs(ctx: &Ctx) -> Result<Pool> {
    let n = ctx.node;
    let ks: Vec<i64> = attr(n, "kernel_shape")
        .map(|a| a.ints.clone())
        .unwrap_or_default();
    let st: Vec<i64> = attr(n, "strides")
        .map(|a| a.ints.clone())
        .unwrap_or_else(|| vec![1, 1]);
    let pads: Vec<i64> = attr(n, "pads")
        .map(|a| a.ints.clone())
        .unwrap_or_else(|| vec![0; 4]);
    let ok = ks.len() == 2
        && st.len() == 2
        && st[0] == st[1]
        && pads.len() == 4
        && pads.iter().all(|&p| p == pads[0])
        && attr(n, "dilations").is_none_or(|a| a.ints.iter().all(|&d| d == 1))
        && attr(n, "auto_pad").is_none_or(|a| a.s.is_empty() || a.s == b"NOTSET")
        && attr_i(n, "ceil_mode", 0) == 0;
    if !ok
        || ks
            .iter()
            .chain(&st)
            .chain(&pads)
            .any(|&v| !(0..=1 << 20).contains(&v))
    {
        return Err(ctx.unsupported(
            "pooling needs a 2-D kernel, equal strides, equal pads, no dilation, no ceil mode",
        ));
    }
    Ok(Pool {
        kernel_h: ks[0] as usize,
        kernel_w: ks[1] as usize,
        stride: st[0] as usize,
        pad: pads[0] as usize,
    })
}

fn scalar(ctx: &Ctx, v: &[i64]) -> Result<i64> {
    match v {
        [x] => Ok(*x),
        _ => Err(ctx.unsupported("a per-channel zero point")),
    }
}

fn scalar_f64(ctx: &Ctx, v: &[f64], what: &str) -> Result<f64> {
    match v {
        [x] if x.is_finite() => Ok(*x),
        _ => Err(ctx.unsupported(format!("a per-channel or non-finite {what}"))),
    }
}

fn scalar_f(ctx: &Ctx, v: &[f64]) -> Result<f64> {
    match v {
        [x] if x.is_finite() && *x > 0.0 => Ok(*x),
        _ => Err(ctx.unsupported("a per-channel or non-positive activation scale")),
    }
}

/// A `[F, O]` constant as `[O, F]`.
fn transpose_const(ctx: &Ctx, w: Val) -> Result<Val> {
    match w {
        Val::Int {
            values,
            dims,
            scale,
            zero_point,
            kind,
        } if dims.len() == 2 => {
            let (f, o) = (dims[0], dims[1]);
            let mut t = vec![0; values.len()];
            for i in 0..f {
                for j in 0..o {
                    t[j * f + i] = values[i * o + j];
                }
            }
            Ok(Val::Int {
                values: t,
                dims: vec![o, f],
                scale,
                zero_point,
                kind,
            })
        }
        _ => Err(ctx.unsupported("the weights must be a 2-D integer constant")),
    }
}

/// The bias, given as `values * scale`, in units of the accumulator scale `sacc`.
fn requantize_bias(
    ctx: &Ctx,
    values: &[f64],
    scale: &[f64],
    sacc: &[f64],
    out: usize,
) -> Result<Vec<i32>> {
    if values.len() != out {
        return Err(ctx.err("bias", format!("{} values for {out} outputs", values.len())));
    }
    (0..out)
        .map(|c| {
            let real = values[c] * scale[c.min(scale.len() - 1)];
            let q = (real / sacc[c.min(sacc.len() - 1)]).round();
            if q.abs() < 2f64.powi(31) {
                Ok(q as i32)
            } else {
                Err(ctx.err("bias", format!("{real} does not fit an i32 accumulator")))
            }
        })
        .collect()
}

/// Relative distance from a power of two within which a requantization ratio is taken as one
/// (2^-20: a few float32 roundings of the scales it is made of).
pub const POT_TOLERANCE: f64 = 1.0 / (1u64 << 20) as f64;

/// The requantizer taking accumulators of real scale `sacc` to `dtype` with scale `s`, zero
/// point `z` (clamped at `z` after a ReLU): `Shift` for power-of-two ratios, else `FixedPoint`.
fn requantizer(
    ctx: &Ctx,
    sacc: &[f64],
    s: f64,
    z: i32,
    dtype: DType,
    relu: bool,
) -> Result<Requant> {
    let (lo, hi) = (dtype.min_value() as i32, dtype.max_value() as i32);
    if !(lo..=hi).contains(&z) {
        return Err(ctx.err("y_zero_point", format!("{z} is outside {}", dtype.label())));
    }
    let min = if relu { z.max(lo) } else { lo };
    let ratios: Vec<f64> = sacc.iter().map(|&a| a / s).collect();
    let pot: Option<Vec<u8>> = ratios
        .iter()
        .map(|&m| {
            // Scales are float32 in ONNX: a ratio within float32 precision of 2^-k (e.g.
            // (1/255) * (255 * 2^-4), neither factor exact) is that power of two.
            let k = (-m.log2()).round();
            ((0.0..=31.0).contains(&k) && (m * 2f64.powf(k) - 1.0).abs() <= POT_TOLERANCE)
                .then_some(k as u8)
        })
        .collect();
    if let Some(shift) = pot {
        return Ok(Requant::Shift {
            shift,
            zero_point: z,
            min,
            max: hi,
        });
    }
    let mut multiplier = Vec::with_capacity(ratios.len());
    let mut shift = Vec::with_capacity(ratios.len());
    for m in ratios {
        if !(m.is_finite() && m > 0.0) {
            return Err(ctx.err("scale", format!("requantization ratio {m} is not positive")));
        }
        let (q, e) = quantize_multiplier(m);
        if !(-31..=30).contains(&e) {
            return Err(ctx.err(
                "scale",
                format!("requantization ratio {m} is outside the fixed-point range"),
            ));
        }
        multiplier.push(q);
        shift.push(e);
    }
    Ok(Requant::FixedPoint {
        multiplier,
        shift,
        zero_point: z,
        min,
        max: hi,
    })
}
