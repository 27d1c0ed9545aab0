//! The fixed-point lowering shared by `linear`, `int8` and `tnt`: quantizes a [`FoldedModel`] into
//! an [`IntNet`] with a method's [`Scheme`] (how weights and activations are quantized) and
//! calibration statistics.
//!
//! - Every conv/dense layer but the logits layer requantizes its accumulator with
//!   `Requant::FixedPoint`, `(M0, shift) = quantize_multiplier(S_in S_w[c] / S_out)` (TFLite's
//!   `QuantizeMultiplier`), output zero point and clamp `[max(Z_out, min), max]` after a ReLU, the
//!   dtype's range without. The output range comes from the layer's pre-activation statistics
//!   ([`TapKind::PreActivation`]; the scheme clamps it at 0 for a ReLU), the activation the engine
//!   requantizes, before any max pool.
//! - The bias is i32 at scale `S_in S_w[c]`; the first layer reads raw pixels (scale 1, zero point
//!   the folded module's `input_zero_point`).
//! - A residual block is TFLite's ADD: the body's last layer and a projection shortcut requantize to
//!   their own scale and zero point (an identity shortcut keeps the block input's), then
//!   `mbqm((a - Za) << 20, Ma, ea) + mbqm((b - Zb) << 20, Mb, eb)` with `Ma = S_a / (2 max(S_a,
//!   S_b))` (likewise `Mb`), and a `FixedPoint` requantizer with `S = 2 max(S_a, S_b) / (2^20
//!   S_out)` whose clamp is the block's ReLU. `S_out` comes from the sum's statistics after the ReLU
//!   ([`TapKind::Sum`] clamped at 0).
//! - Pools and flatten carry the activation's scale and zero point unchanged (an average of
//!   `q` is an average of `q - Z` plus `Z`).

use qbench_engine::requant::quantize_multiplier;
use qbench_engine::{Add, AddAlign, DType, GraphBuilder, NodeId, Requant, WeightKind};

use super::LayerReport;
use super::calibrate::{Calibration, TapKind, TensorStats};
use super::fold::{FoldedModel, MacModule, Module};
use super::intnet::{IntNet, Mac, push_mac};
use crate::error::{MethodError, Result};

/// Left shift of TFLite's 8-bit ADD inputs.
pub const ADD_LEFT_SHIFT: u8 = 20;

/// A layer's integer weights.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantWeights {
    /// Integers in the layout of the float weights.
    pub weights: Vec<i8>,
    /// Real value of one unit: one per output channel, or one for the layer.
    pub scales: Vec<f64>,
    /// Engine weight kind.
    pub kind: WeightKind,
    /// Engine path as reported (`int8`, `ternary`).
    pub path: String,
}

/// The quantization of an activation: `r = scale (q - zero_point)`, `q` of `dtype`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutQuant {
    /// Real value of one step.
    pub scale: f64,
    /// Integer representing real 0.
    pub zero_point: i32,
    /// Unsigned or signed narrow integer.
    pub dtype: DType,
}

/// How a method quantizes weights and activations; the rest of the lowering is shared.
pub trait Scheme {
    /// The method's name, for errors.
    fn method(&self) -> &str;
    /// Integer weights of `m`; `logits` for the logits layer, whose outputs must share one scale.
    fn weights(&self, m: &MacModule, logits: bool) -> Result<QuantWeights>;
    /// The quantization of the activation `name` observed as `stats`; `relu` when a ReLU follows
    /// (the real activation is then `max(x, 0)`).
    fn activation(&self, name: &str, stats: &TensorStats, relu: bool) -> Result<OutQuant>;
}

/// Symmetric weight quantization to `[-qmax, qmax]`, `qmax = 2^(bits-1) - 1`, with one scale per
/// tensor or per output channel (`max |w| / qmax`; 1 for an all-zero group). Rounds half away
/// from zero. Returns the integers and the scales (length 1 or `out_channels`).
pub fn quantize_weights(
    weight: &[f64],
    out_channels: usize,
    bits: u8,
    per_channel: bool,
) -> (Vec<i8>, Vec<f64>) {
    let qmax = f64::from((1i32 << (bits - 1)) - 1);
    let row = weight.len() / out_channels.max(1);
    let scale_of = |ws: &[f64]| {
        let m = ws.iter().fold(0f64, |a, &w| a.max(w.abs()));
        if m > 0.0 { m / qmax } else { 1.0 }
    };
    let scales: Vec<f64> = if per_channel {
        weight.chunks(row.max(1)).map(scale_of).collect()
    } else {
        vec![scale_of(weight)]
    };
    let q = weight
        .iter()
        .enumerate()
        .map(|(i, &w)| {
            let s = scales[if per_channel { i / row } else { 0 }];
            (w / s).round().clamp(-qmax, qmax) as i8
        })
        .collect();
    (q, scales)
}

/// Asymmetric unsigned `bits`-bit quantization of the range `[lo, hi]` (widened to contain 0, so
/// real 0 is exact): `r = scale (q - zero_point)`.
pub fn activation_params(lo: f64, hi: f64, bits: u8) -> OutQuant {
    let qmax = f64::from((1i32 << bits) - 1);
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi - lo > 1e-12 {
        (hi - lo) / qmax
    } else {
        1.0
    };
    let zero_point = (-lo / scale).round().clamp(0.0, qmax) as i32;
    OutQuant {
        scale,
        zero_point,
        dtype: DType::Unsigned { bits },
    }
}

/// The activation flowing between modules while building: its node, scale and zero point.
#[derive(Clone, Copy, Debug)]
struct Act {
    id: NodeId,
    scale: f64,
    zero_point: i32,
}

struct Builder<'a> {
    cal: &'a Calibration,
    scheme: &'a dyn Scheme,
    logits: &'a str,
    graph: GraphBuilder,
    layers: Vec<LayerReport>,
    logit_scale: f64,
}

/// Quantizes `model` with `scheme` and the statistics `cal` (see the module docs). The last
/// top-level module (before a detector's final flatten) must be a conv or dense layer without
/// ReLU or pool: its i32 accumulators are the logits.
///
/// Node names: each layer is named like the float layer, with `{name}.requant` and `{name}.pool`
/// after it; standalone pools and flattens are `{prefix}pool{i}` and `{prefix}flatten{i}`; a
/// residual block's body is prefixed `{block}.`, its shortcut `{block}.short.`, and it ends in
/// `{block}.add` and `{block}.requant`.
pub fn build(model: &FoldedModel, cal: &Calibration, scheme: &dyn Scheme) -> Result<IntNet> {
    let last = model
        .modules
        .iter()
        .rev()
        .find(|m| !matches!(m, Module::Flatten));
    let logits = match last {
        Some(Module::Mac(m)) if !m.relu && m.pool.is_none() => m.name.as_str(),
        _ => {
            return Err(MethodError::Config(format!(
                "method {}: the last layer must be a plain conv or dense layer (the logits)",
                scheme.method()
            )));
        }
    };
    let graph = GraphBuilder::new(&model.input);
    let input = Act {
        id: graph.input(),
        scale: 1.0,
        zero_point: 0,
    };
    let mut b = Builder {
        cal,
        scheme,
        logits,
        graph,
        layers: Vec::new(),
        logit_scale: 1.0,
    };
    let out = b.modules(&model.modules, input, "")?;
    IntNet::finish(b.graph, out.id, b.logit_scale, b.layers)
}

impl Builder<'_> {
    fn error(&self, what: String) -> MethodError {
        MethodError::Config(format!("method {}: {what}", self.scheme.method()))
    }

    fn stats(&self, module: &str, kind: TapKind) -> Result<&TensorStats> {
        self.cal.get(module, kind).ok_or_else(|| {
            self.error(format!(
                "no calibration statistics for {module} ({})",
                kind.label()
            ))
        })
    }

    /// `quantize_multiplier(real)` with the exponent checked against the engine's range.
    fn multiplier(&self, real: f64, what: &str) -> Result<(i32, i32)> {
        if real.is_finite() && real > 0.0 {
            let (m, e) = quantize_multiplier(real);
            if (-31..=30).contains(&e) {
                return Ok((m, e));
            }
        }
        Err(self.error(format!(
            "{what}: requantization multiplier {real} is out of the fixed-point range"
        )))
    }

    fn modules(&mut self, modules: &[Module], mut act: Act, prefix: &str) -> Result<Act> {
        for (i, m) in modules.iter().enumerate() {
            let g = &mut self.graph;
            act.id = match m {
                Module::Mac(mac) => {
                    act = self.layer(mac, act)?;
                    continue;
                }
                Module::MaxPool(p) => {
                    g.max_pool(&format!("{prefix}pool{i}"), act.id, (*p).into())?
                }
                Module::AvgPool(p) => {
                    g.avg_pool(&format!("{prefix}pool{i}"), act.id, (*p).into())?
                }
                Module::GlobalAvgPool => g.global_avg_pool(&format!("{prefix}pool{i}"), act.id)?,
                Module::Flatten if !g.ty(act.id).is_map() => act.id,
                Module::Flatten => g.flatten(&format!("{prefix}flatten{i}"), act.id)?,
                Module::Residual {
                    name,
                    body,
                    shortcut,
                } => {
                    act = self.residual(name, body, shortcut, act)?;
                    continue;
                }
            };
        }
        Ok(act)
    }

    fn layer(&mut self, m: &MacModule, act: Act) -> Result<Act> {
        let is_logits = m.name == self.logits;
        let o = m.out_channels();
        let w = self.scheme.weights(m, is_logits)?;
        if w.scales.len() != 1 && (w.scales.len() != o || is_logits) {
            return Err(self.error(format!(
                "layer {}: {} weight scales for {o} channels",
                m.name,
                w.scales.len()
            )));
        }
        let at = |c: usize| w.scales[if w.scales.len() == 1 { 0 } else { c }];
        let in_scale = act.scale;
        let bias = (0..o)
            .map(|c| {
                (m.bias[c] / (in_scale * at(c)))
                    .round()
                    .clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
            })
            .collect();
        let weight_bits = w.kind.storage_bits() as u8;
        let acc = push_mac(
            &mut self.graph,
            &m.name,
            act.id,
            Mac {
                geometry: m.geometry,
                weights: w.weights,
                weight_kind: w.kind,
                bias: Some(bias),
                // The folded module's own offset (nonzero only on raw pixels, whose zero point
                // is 0).
                input_zero_point: act.zero_point + m.input_zero_point,
            },
        )?;
        let mut report = LayerReport {
            name: m.name.clone(),
            path: w.path,
            weight_bits,
            output_bits: 32,
        };
        if is_logits {
            self.layers.push(report);
            self.logit_scale = in_scale * at(0);
            return Ok(Act {
                id: acc,
                scale: self.logit_scale,
                zero_point: 0,
            });
        }
        let q = self.scheme.activation(
            &m.name,
            self.stats(&m.name, TapKind::PreActivation)?,
            m.relu,
        )?;
        let (mut multiplier, mut shift) = (Vec::new(), Vec::new());
        for s in &w.scales {
            let (m0, e) = self.multiplier(in_scale * s / q.scale, &format!("layer {}", m.name))?;
            multiplier.push(m0);
            shift.push(e);
        }
        let (lo, hi) = (q.dtype.min_value() as i32, q.dtype.max_value() as i32);
        let requant = Requant::FixedPoint {
            multiplier,
            shift,
            zero_point: q.zero_point,
            min: if m.relu { q.zero_point.max(lo) } else { lo },
            max: hi,
        };
        let mut id = self
            .graph
            .requant(&format!("{}.requant", m.name), acc, q.dtype, requant)?;
        if let Some(p) = m.pool {
            id = self
                .graph
                .max_pool(&format!("{}.pool", m.name), id, p.into())?;
        }
        report.output_bits = q.dtype.storage_bits() as u8;
        self.layers.push(report);
        Ok(Act {
            id,
            scale: q.scale,
            zero_point: q.zero_point,
        })
    }

    fn residual(
        &mut self,
        name: &str,
        body: &[Module],
        shortcut: &[Module],
        act: Act,
    ) -> Result<Act> {
        let a = self.modules(body, act, &format!("{name}."))?;
        let b = self.modules(shortcut, act, &format!("{name}.short."))?;
        let q = self
            .scheme
            .activation(name, self.stats(name, TapKind::Sum)?, true)?;
        let twice = 2.0 * a.scale.max(b.scale);
        let what = format!("residual block {name}");
        let (multiplier_a, shift_a) = self.multiplier(a.scale / twice, &what)?;
        let (multiplier_b, shift_b) = self.multiplier(b.scale / twice, &what)?;
        let (m0, e) =
            self.multiplier(twice / (f64::from(1u32 << ADD_LEFT_SHIFT) * q.scale), &what)?;
        let (lo, hi) = (q.dtype.min_value() as i32, q.dtype.max_value() as i32);
        let add = Add {
            zero_point_a: a.zero_point,
            zero_point_b: b.zero_point,
            align: AddAlign::FixedPoint {
                left_shift: ADD_LEFT_SHIFT,
                multiplier_a,
                shift_a,
                multiplier_b,
                shift_b,
            },
        };
        // The engine checks that both branches have the same shape.
        let sum = self.graph.add(&format!("{name}.add"), a.id, b.id, add)?;
        let requant = Requant::FixedPoint {
            multiplier: vec![m0],
            shift: vec![e],
            zero_point: q.zero_point,
            min: q.zero_point.max(lo),
            max: hi,
        };
        let id = self
            .graph
            .requant(&format!("{name}.requant"), sum, q.dtype, requant)?;
        Ok(Act {
            id,
            scale: q.scale,
            zero_point: q.zero_point,
        })
    }
}
