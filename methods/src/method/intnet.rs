//! A sequential fixed-point network (the common lowering of `linear` and `int8`): per module the
//! integer weights, i32 bias, input zero point and `FixedPoint` requantizer; lowered to the engine
//! with [`GraphBuilder`], and mirrored exactly by [`IntMirror`], the methods' fake-quant forward.
//!
//! The mirror computes every convolution and dense layer in candle on f64 tensors holding the same
//! integers `(q - z)` and `w` the engine multiplies: all products and partial sums are integers
//! below 2^53, so they are exact whatever the summation order. Each requantizer is the engine's own
//! [`Requant::apply`]; max pools compare the same integers. So the mirror's logits equal the
//! engine's times [`IntNet::logit_scale`], and the documented logit bound is 0.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use qbench_engine::requant::quantize_multiplier;
use qbench_engine::{Conv2d, DType, Dense, GraphBuilder, Pool, QGraph, Requant, WeightKind};

use super::affine::{AffineModule, ModuleKind, max_pool};
use super::{FakeQuant, LayerReport};
use crate::error::{MethodError, Result};

/// One integer module: `pools(requant(sum (x - z) * w + bias))`, or raw i32 logits for the last.
#[derive(Clone, Debug)]
pub struct IntLayer {
    /// Node name prefix (the float layer's name).
    pub name: String,
    /// Convolution or dense geometry.
    pub kind: ModuleKind,
    /// Whether the input is flattened first.
    pub flatten_before: bool,
    /// Integer weights, same layout as the float ones.
    pub weights: Vec<i8>,
    /// Their kind (`Int { bits }`).
    pub weight_kind: WeightKind,
    /// Bias at scale `S_in * S_w[o]`.
    pub bias: Vec<i32>,
    /// Zero point of the input activations.
    pub input_zero_point: i32,
    /// Requantizer and output dtype; `None` for the logits layer.
    pub requant: Option<(Requant, DType)>,
    /// Max pools after the requantizer.
    pub pools: Vec<Pool>,
    /// Per-image accumulator shape.
    pub acc_shape: Vec<usize>,
}

/// A lowered-ready fixed-point network.
#[derive(Clone, Debug)]
pub struct IntNet {
    /// Input `[C, H, W]` (raw u8 pixels).
    pub input: [usize; 3],
    /// Modules in order.
    pub layers: Vec<IntLayer>,
    /// Real value of one unit of the integer logits.
    pub logit_scale: f64,
}

/// Symmetric weight quantization to `[-qmax, qmax]`, `qmax = 2^(bits-1) - 1`, with one scale per
/// tensor or per output channel (`max |w| / qmax`; 1 for an all-zero group). Rounds half away
/// from zero. Returns the integers and the scales (length 1 or `out_channels`).
pub fn quantize_weights(
    weight: &[f32],
    out_channels: usize,
    bits: u8,
    per_channel: bool,
) -> (Vec<i8>, Vec<f64>) {
    let qmax = f64::from((1i32 << (bits - 1)) - 1);
    let row = weight.len() / out_channels;
    let scale_of = |ws: &[f32]| {
        let m = ws.iter().fold(0f64, |a, &w| a.max(f64::from(w).abs()));
        if m > 0.0 { m / qmax } else { 1.0 }
    };
    let scales: Vec<f64> = if per_channel {
        weight.chunks(row).map(scale_of).collect()
    } else {
        vec![scale_of(weight)]
    };
    let q = weight
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let s = scales[if per_channel { i / row } else { 0 }];
            (f64::from(w) / s).round().clamp(-qmax, qmax) as i8
        })
        .collect();
    (q, scales)
}

/// Asymmetric unsigned `bits`-bit activation quantization of the range `[lo, hi]` (widened to
/// contain 0, so real 0 is exact): `(scale, zero_point)` with `r = scale * (q - zero_point)`.
pub fn activation_params(lo: f64, hi: f64, bits: u8) -> (f64, i32) {
    let qmax = f64::from((1i32 << bits) - 1);
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi - lo > 1e-12 {
        (hi - lo) / qmax
    } else {
        1.0
    };
    let zp = (-lo / scale).round().clamp(0.0, qmax) as i32;
    (scale, zp)
}

/// The activation a module's requantizer produces.
#[derive(Clone, Copy, Debug)]
pub struct OutQuant {
    /// Real value of one step.
    pub scale: f64,
    /// Integer representing real 0.
    pub zero_point: i32,
    /// Unsigned bit width.
    pub bits: u8,
}

/// Quantizes one folded module: its input has scale `in_scale` and zero point `in_zp`, its weights
/// `(q, w_scales)` come from [`quantize_weights`], and `out` is `None` for the logits layer.
/// Returns the layer and the scale of its accumulators' channel 0 (the logit scale when `out` is
/// `None`; per-channel scales are only allowed with an `out`).
pub fn quantize_module(
    m: &AffineModule,
    in_scale: f64,
    in_zp: i32,
    (weights, w_scales): (Vec<i8>, Vec<f64>),
    weight_bits: u8,
    out: Option<OutQuant>,
) -> Result<(IntLayer, f64)> {
    let o = m.kind.out_channels();
    let at = |c: usize| w_scales[if w_scales.len() == 1 { 0 } else { c }];
    let bias = (0..o)
        .map(|c| {
            (f64::from(m.bias[c]) / (in_scale * at(c)))
                .round()
                .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect();
    let requant = match out {
        None => None,
        Some(q) => {
            let mut multiplier = Vec::with_capacity(w_scales.len());
            let mut shift = Vec::with_capacity(w_scales.len());
            for s in &w_scales {
                let (m0, e) = quantize_multiplier(in_scale * s / q.scale);
                if !(-31..=30).contains(&e) {
                    return Err(MethodError::Config(format!(
                        "layer {}: requantization multiplier {} is out of the fixed-point range",
                        m.name,
                        in_scale * s / q.scale
                    )));
                }
                multiplier.push(m0);
                shift.push(e);
            }
            let max = (1i32 << q.bits) - 1;
            let min = if m.relu { q.zero_point } else { 0 };
            let rq = Requant::FixedPoint {
                multiplier,
                shift,
                zero_point: q.zero_point,
                min,
                max,
            };
            Some((rq, DType::Unsigned { bits: q.bits }))
        }
    };
    let layer = IntLayer {
        name: m.name.clone(),
        kind: m.kind,
        flatten_before: m.flatten_before,
        weights,
        weight_kind: WeightKind::Int { bits: weight_bits },
        bias,
        input_zero_point: in_zp,
        requant,
        pools: m.pools.clone(),
        acc_shape: m.acc_shape.clone(),
    };
    Ok((layer, in_scale * at(0)))
}

impl IntNet {
    /// The engine graph: per module an optional flatten, the conv or dense node (named like the
    /// float layer), a `{name}.requant` node and `{name}.pool{j}` max pools.
    pub fn lower(&self) -> Result<QGraph> {
        let mut b = GraphBuilder::new(&self.input);
        let mut x = b.input();
        for l in &self.layers {
            if l.flatten_before {
                x = b.flatten(&format!("{}.flatten", l.name), x)?;
            }
            x = match l.kind {
                ModuleKind::Conv {
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    pad,
                } => b.conv2d(
                    &l.name,
                    x,
                    Conv2d {
                        in_channels,
                        out_channels,
                        kernel_h: kernel,
                        kernel_w: kernel,
                        stride,
                        pad,
                        groups: 1,
                        weight_kind: l.weight_kind,
                        input_zero_point: l.input_zero_point,
                        weights: l.weights.clone(),
                        bias: Some(l.bias.clone()),
                    },
                )?,
                ModuleKind::Dense {
                    in_features,
                    out_features,
                } => b.dense(
                    &l.name,
                    x,
                    Dense {
                        in_features,
                        out_features,
                        weight_kind: l.weight_kind,
                        input_zero_point: l.input_zero_point,
                        weights: l.weights.clone(),
                        bias: Some(l.bias.clone()),
                    },
                )?,
            };
            if let Some((rq, dtype)) = &l.requant {
                x = b.requant(&format!("{}.requant", l.name), x, *dtype, rq.clone())?;
            }
            for (j, p) in l.pools.iter().enumerate() {
                x = b.max_pool(&format!("{}.pool{j}", l.name), x, *p)?;
            }
        }
        Ok(b.finish(x)?)
    }

    /// Requantization operations per inference by kind (one per requantized accumulator).
    pub fn requant_ops(&self) -> BTreeMap<String, u64> {
        let mut ops = BTreeMap::new();
        for l in &self.layers {
            if let Some((rq, _)) = &l.requant {
                let n: usize = l.acc_shape.iter().product();
                *ops.entry(rq.kind_name().to_string()).or_insert(0) += n as u64;
            }
        }
        ops
    }

    /// How each module was lowered.
    pub fn layer_reports(&self) -> Vec<LayerReport> {
        self.layers
            .iter()
            .map(|l| LayerReport {
                name: l.name.clone(),
                path: "int8".into(),
                weight_bits: l.weight_kind.storage_bits() as u8,
                output_bits: l
                    .requant
                    .as_ref()
                    .map_or(32, |(_, d)| d.storage_bits() as u8),
            })
            .collect()
    }
}

/// The exact fake-quant mirror of an [`IntNet`] (see the module documentation); logit bound 0.
pub struct IntMirror {
    net: IntNet,
    /// Per layer: the weights as f64 `[O, C, k, k]` or transposed `[F, O]`, and the bias `[O]`.
    tensors: Vec<(Tensor, Tensor)>,
}

impl IntMirror {
    /// Prepares the mirror of `net`.
    pub fn new(net: IntNet) -> Result<Self> {
        let dev = Device::Cpu;
        let mut tensors = Vec::with_capacity(net.layers.len());
        for l in &net.layers {
            let o = l.kind.out_channels();
            let w: Vec<f64> = l.weights.iter().map(|&w| f64::from(w)).collect();
            let b: Vec<f64> = l.bias.iter().map(|&b| f64::from(b)).collect();
            let w = match l.kind {
                ModuleKind::Conv {
                    in_channels,
                    kernel,
                    ..
                } => Tensor::from_vec(w, (o, in_channels, kernel, kernel), &dev)?,
                ModuleKind::Dense { in_features, .. } => {
                    Tensor::from_vec(w, (o, in_features), &dev)?
                        .t()?
                        .contiguous()?
                }
            };
            tensors.push((w, Tensor::from_vec(b, o, &dev)?));
        }
        Ok(IntMirror { net, tensors })
    }

    /// The mirrored network.
    pub fn net(&self) -> &IntNet {
        &self.net
    }
}

/// Applies `rq` to accumulators held exactly in f64 (wrapping to i32 as the engine does).
fn requantize(acc: &Tensor, rq: &Requant, channels: usize, spatial: usize) -> Result<Tensor> {
    let v = acc.flatten_all()?.to_vec1::<f64>()?;
    let q: Vec<f64> = v
        .iter()
        .enumerate()
        .map(|(i, &a)| f64::from(rq.apply(a as i64 as i32, (i / spatial) % channels)))
        .collect();
    Ok(Tensor::from_vec(q, acc.shape(), &Device::Cpu)?)
}

impl FakeQuant for IntMirror {
    fn logits(&self, images: &[u8], n: usize) -> Result<Vec<f64>> {
        let [c, h, w] = self.net.input;
        if images.len() != n * c * h * w {
            return Err(MethodError::Config(format!(
                "{} bytes for {n} images of {c}x{h}x{w}",
                images.len()
            )));
        }
        let zp0 = f64::from(self.net.layers[0].input_zero_point);
        let data: Vec<f64> = images.iter().map(|&p| f64::from(p) - zp0).collect();
        let mut x = Tensor::from_vec(data, (n, c, h, w), &Device::Cpu)?;
        for (i, (l, (wt, bt))) in self.net.layers.iter().zip(&self.tensors).enumerate() {
            if l.flatten_before {
                x = x.flatten_from(1)?;
            }
            let o = l.kind.out_channels();
            let acc = match l.kind {
                ModuleKind::Conv { stride, pad, .. } => x
                    .conv2d(wt, pad, stride, 1, 1)?
                    .broadcast_add(&bt.reshape((1, o, 1, 1))?)?,
                ModuleKind::Dense { .. } => x.matmul(wt)?.broadcast_add(&bt.reshape((1, o))?)?,
            };
            let Some((rq, _)) = &l.requant else {
                let logits = acc.flatten_all()?.to_vec1::<f64>()?;
                // Wrap as the engine's i32 logits do, then scale.
                return Ok(logits
                    .iter()
                    .map(|&a| f64::from(a as i64 as i32) * self.net.logit_scale)
                    .collect());
            };
            let spatial: usize = l.acc_shape.iter().skip(1).product();
            let mut q = requantize(&acc, rq, o, spatial)?;
            for p in &l.pools {
                q = max_pool(&q, p)?;
            }
            let next_zp = self
                .net
                .layers
                .get(i + 1)
                .map_or(0.0, |n| f64::from(n.input_zero_point));
            x = (q - next_zp)?;
        }
        Err(MethodError::Config(
            "the network has no logits layer".into(),
        ))
    }

    fn logit_scale(&self) -> f64 {
        self.net.logit_scale
    }

    fn logit_bound(&self) -> f64 {
        0.0
    }
}
