//! From a folded model and calibration statistics to DJQ's [`IntNet`]: power-of-two exponents,
//! quantized weights and biases, and the engine nodes of the unified modules or of the ablation.
//! Every requantizer is the engine's `Requant::Shift` (zero point 0), every residual add an
//! `AddAlign::PowerOfTwo`.

use std::collections::BTreeMap;

use qbench_engine::{
    Add, AddAlign, Conv2d, DType, Dense, GraphBuilder, NodeId, Requant, WeightKind,
};

use super::options::{CalibrationKind, DjqOptions, WeightRange};
use crate::error::{MethodError, Result};
use crate::method::LayerReport;
use crate::method::calibrate::{Calibration, TapKind, TensorStats};
use crate::method::fold::{FoldedModel, MacGeometry, MacModule, Module};
use crate::method::intnet::{IntNet, Mac, push_mac};

/// Exponents below/above these are clamped (a range of `2^±24` is far outside any trained model).
const EXP_LIMIT: i32 = 24;

/// The exponents one MAC module was quantized with (what fine-tuning's fake quantizers use).
#[derive(Clone, Debug, PartialEq)]
pub struct ModuleExponents {
    /// Weight exponent per output channel (all equal when per tensor).
    pub weight: Vec<i32>,
    /// Exponent of the module's input.
    pub input: i32,
    /// Exponent and clamp range `[lo, hi]` of the module's requantized output, or `None` when
    /// the module keeps its i32 accumulator (the logits or a residual branch before the add).
    pub output: Option<(i32, i32, i32)>,
}

/// Exponents of every MAC module by name, and of every residual block's output.
pub type Exponents = BTreeMap<String, ModuleExponents>;

/// `floor(x + 0.5)`: round half up, as the engine's requantizer rounds.
pub fn round_half_up(x: f64) -> f64 {
    (x + 0.5).floor()
}

/// The largest integer exponent `f` with `range * 2^f <= qmax` (clamped to +-24; 0 for an
/// empty range).
pub fn exponent_for(range: f64, qmax: f64) -> i32 {
    if !(range > 0.0 && range.is_finite()) {
        return EXP_LIMIT;
    }
    ((qmax / range).log2().floor() as i32).clamp(-EXP_LIMIT, EXP_LIMIT)
}

fn pow2(e: i32) -> f64 {
    2f64.powi(e)
}

/// Quantizes `w` (`channels` rows) with exponent `exp[c]` to `bits`-bit integers.
pub fn quantize_weights(w: &[f64], exp: &[i32], bits: u8) -> Vec<i8> {
    let per = w.len() / exp.len().max(1);
    let hi = f64::from((1i32 << (bits - 1)) - 1);
    let lo = -f64::from(1i32 << (bits - 1));
    w.iter()
        .enumerate()
        .map(|(i, v)| round_half_up(v * pow2(exp[i / per.max(1)])).clamp(lo, hi) as i8)
        .collect()
}

/// Quantizes a bias to i32 at exponent `exp[c]` (saturating).
pub fn quantize_bias(b: &[f64], exp: &[i32]) -> Vec<i32> {
    b.iter()
        .zip(exp)
        .map(|(v, e)| {
            round_half_up(v * pow2(*e)).clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
        })
        .collect()
}

/// Weight exponents per output channel: from each channel's largest magnitude, or all equal to
/// the per-tensor one; with [`WeightRange::Mse`] the exponent (of the max rule's and the three
/// finer ones) with the least squared quantization error.
pub fn weight_exponents(
    w: &[f64],
    channels: usize,
    bits: u8,
    per_channel: bool,
    rule: WeightRange,
) -> Vec<i32> {
    let qmax = f64::from((1i32 << (bits - 1)) - 1);
    let per = w.len() / channels.max(1);
    let rows: Vec<&[f64]> = (0..channels).map(|c| &w[c * per..(c + 1) * per]).collect();
    let best = |rows: &[&[f64]]| -> i32 {
        let max = rows
            .iter()
            .flat_map(|r| r.iter())
            .fold(0f64, |m, v| m.max(v.abs()));
        let f0 = exponent_for(max, qmax);
        if rule == WeightRange::Max || max == 0.0 {
            return f0;
        }
        let error = |f: i32| -> f64 {
            let exps = [f];
            rows.iter()
                .flat_map(|r| r.iter())
                .map(|v| {
                    let q = f64::from(quantize_weights(&[*v], &exps, bits)[0]);
                    (v - q * pow2(-f)).powi(2)
                })
                .sum()
        };
        (f0..=(f0 + 3).min(EXP_LIMIT))
            .map(|f| (f, error(f)))
            .fold((f0, f64::INFINITY), |b, c| if c.1 < b.1 { c } else { b })
            .0
    };
    if per_channel {
        rows.iter().map(|r| best(std::slice::from_ref(r))).collect()
    } else {
        vec![best(&rows); channels]
    }
}

/// The current activation: node id, exponent, dtype.
#[derive(Clone, Copy, Debug)]
struct Act {
    id: NodeId,
    exp: i32,
    dtype: DType,
}

struct Lowering<'a> {
    opts: &'a DjqOptions,
    cal: &'a Calibration,
    graph: GraphBuilder,
    layers: Vec<LayerReport>,
    exps: Exponents,
    notes: Vec<String>,
}

fn unsigned(bits: u8) -> DType {
    DType::Unsigned { bits }
}

fn signed(bits: u8) -> DType {
    DType::Signed { bits }
}

impl Lowering<'_> {
    fn stats(&self, module: &str, kind: TapKind) -> Result<&TensorStats> {
        self.cal.get(module, kind).ok_or_else(|| {
            MethodError::Config(format!(
                "calibration has no statistics for {module}/{}",
                kind.label()
            ))
        })
    }

    /// The calibrated range of a tap whose values are stored as `dtype`.
    fn range(&self, module: &str, kind: TapKind, dtype: DType) -> Result<f64> {
        let s = self.stats(module, kind)?;
        Ok(match self.opts.calibration.kind {
            CalibrationKind::Minmax => s.abs_max(),
            CalibrationKind::Percentile => s.abs_percentile(self.opts.calibration.percentile),
            CalibrationKind::Mse => s.mse_pow2_range(dtype.max_value() as f64),
        })
    }

    /// Exponent for an output of `dtype` over `range`, at most `cap` (no left shifts).
    fn out_exponent(&self, range: f64, dtype: DType, cap: i32) -> i32 {
        exponent_for(range, dtype.max_value() as f64).min(cap)
    }

    fn shift(
        &mut self,
        name: String,
        x: Act,
        out: DType,
        exp_out: i32,
        acc_exp: &[i32],
        relu: bool,
    ) -> Result<Act> {
        let shifts: Vec<u8> = acc_exp
            .iter()
            .map(|e| (e - exp_out).clamp(0, 31) as u8)
            .collect();
        let shift = if shifts.iter().all(|s| *s == shifts[0]) {
            vec![shifts[0]]
        } else {
            shifts
        };
        let min = if relu { 0 } else { out.min_value() as i32 };
        let id = self.graph.requant(
            &name,
            x.id,
            out,
            Requant::Shift {
                shift,
                zero_point: 0,
                min,
                max: out.max_value() as i32,
            },
        )?;
        Ok(Act {
            id,
            exp: exp_out,
            dtype: out,
        })
    }

    /// Appends the conv/dense node with the given integer weights and bias.
    fn mac_step(
        &mut self,
        name: String,
        m: &MacModule,
        x: Act,
        weights: Vec<i8>,
        bias: Vec<i32>,
    ) -> Result<NodeId> {
        push_mac(
            &mut self.graph,
            &name,
            x.id,
            Mac {
                geometry: m.geometry,
                weights,
                weight_kind: WeightKind::Int {
                    bits: self.opts.weight_bits,
                },
                bias: Some(bias),
                input_zero_point: m.input_zero_point,
            },
        )
    }

    fn report(&mut self, name: &str, output_bits: u8) {
        self.layers.push(LayerReport {
            name: name.to_string(),
            path: "int8".into(),
            weight_bits: self.opts.weight_bits,
            output_bits,
        });
    }

    /// A unified module: one MAC, one requantizer (unless `keep_acc`), then the max pool.
    fn mac_unified(&mut self, m: &MacModule, x: Act, keep_acc: bool) -> Result<Act> {
        let o = m.out_channels();
        let a = self.opts.activation_bits;
        let mut fw = weight_exponents(
            &m.weight,
            o,
            self.opts.weight_bits,
            self.opts.per_channel && !keep_acc,
            self.opts.weight_range,
        );
        let (out, exp_out) = if keep_acc {
            (DType::I32, None)
        } else {
            let out = if m.relu { unsigned(a) } else { signed(a) };
            let range = self.range(&m.name, TapKind::Output, out)?;
            let mut f = self.out_exponent(range, out, i32::MAX);
            // Shifts must lie in 0..=31: coarser weights if a shift would exceed 31, coarser
            // output if one would be negative.
            for e in fw.iter_mut() {
                *e = (*e).min(f + 31 - x.exp);
            }
            f = f.min(fw.iter().map(|e| e + x.exp).min().unwrap_or(f));
            (out, Some(f))
        };
        let acc_exp: Vec<i32> = fw.iter().map(|e| e + x.exp).collect();
        let weights = quantize_weights(&m.weight, &fw, self.opts.weight_bits);
        let bias = quantize_bias(&m.bias, &acc_exp);
        let id = self.mac_step(m.name.clone(), m, x, weights, bias)?;
        let acc = Act {
            id,
            exp: acc_exp[0],
            dtype: DType::I32,
        };
        let lohi = exp_out.map(|f| {
            let lo = if m.relu { 0 } else { out.min_value() as i32 };
            (f, lo, out.max_value() as i32)
        });
        self.exps.insert(
            m.name.clone(),
            ModuleExponents {
                weight: fw.clone(),
                input: x.exp,
                output: lohi,
            },
        );
        let Some(f) = exp_out else {
            self.report(&m.name, 32);
            return Ok(acc);
        };
        self.report(&m.name, a);
        let mut y = self.shift(format!("{}.requant", m.name), acc, out, f, &acc_exp, m.relu)?;
        if let Some(p) = m.pool {
            y.id = self
                .graph
                .max_pool(&format!("{}.pool", m.name), y.id, p.into())?;
        }
        Ok(y)
    }

    /// The ablation: requantize after the conv, after batch norm, after ReLU and after the pool.
    fn mac_ablation(&mut self, m: &MacModule, x: Act, last: bool) -> Result<Act> {
        let o = m.out_channels();
        let a = self.opts.activation_bits;
        let wb = self.opts.weight_bits;
        let per_channel = self.opts.per_channel;
        let per = m.geometry.fan_in();
        let mut y;
        let final_exp;
        if let Some(scale) = &m.bn_scale {
            // Conv with the batch-norm scale divided back out, no bias.
            let raw: Vec<f64> = m
                .weight
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let s = scale[i / per];
                    if s == 0.0 { 0.0 } else { w / s }
                })
                .collect();
            let mut fw = weight_exponents(&raw, o, wb, per_channel, self.opts.weight_range);
            let out = signed(a);
            let range = self.range(&m.name, TapKind::PreBn, out)?;
            let mut f = self.out_exponent(range, out, i32::MAX);
            for e in fw.iter_mut() {
                *e = (*e).min(f + 31 - x.exp);
            }
            f = f.min(fw.iter().map(|e| e + x.exp).min().unwrap_or(f));
            let acc_exp: Vec<i32> = fw.iter().map(|e| e + x.exp).collect();
            let id = self.mac_step(
                m.name.clone(),
                m,
                x,
                quantize_weights(&raw, &fw, wb),
                vec![0; o],
            )?;
            let acc = Act {
                id,
                exp: 0,
                dtype: DType::I32,
            };
            let conv_q = self.shift(format!("{}.requant", m.name), acc, out, f, &acc_exp, false)?;
            // Batch norm as a per-channel integer affine map.
            let fb = weight_exponents(scale, o, wb, per_channel && !last, self.opts.weight_range);
            let bn_acc: Vec<i32> = fb.iter().map(|e| e + f).collect();
            let bw = quantize_weights(scale, &fb, wb);
            let bb = quantize_bias(&m.bias, &bn_acc);
            let bn = format!("{}.bn", m.name);
            let weight_kind = WeightKind::Int { bits: wb };
            let id = match m.geometry {
                MacGeometry::Conv(_) => self.graph.conv2d(
                    &bn,
                    conv_q.id,
                    Conv2d {
                        in_channels: o,
                        out_channels: o,
                        kernel_h: 1,
                        kernel_w: 1,
                        stride: 1,
                        pad: 0,
                        groups: o,
                        weight_kind,
                        input_zero_point: 0,
                        weights: bw,
                        bias: Some(bb),
                    },
                )?,
                MacGeometry::Dense { .. } => {
                    let mut diag = vec![0i8; o * o];
                    for (c, w) in bw.iter().enumerate() {
                        diag[c * o + c] = *w;
                    }
                    if !self.notes.iter().any(|n| n.contains("diagonal")) {
                        self.notes.push("the ablation runs a batch norm after a dense layer as a diagonal dense layer (F^2 MACs counted, F nonzero)".into());
                    }
                    self.graph.dense(
                        &bn,
                        conv_q.id,
                        Dense {
                            in_features: o,
                            out_features: o,
                            weight_kind,
                            input_zero_point: 0,
                            weights: diag,
                            bias: Some(bb),
                        },
                    )?
                }
            };
            y = Act {
                id,
                exp: 0,
                dtype: DType::I32,
            };
            final_exp = bn_acc;
        } else {
            let fw = weight_exponents(
                &m.weight,
                o,
                wb,
                per_channel && !last,
                self.opts.weight_range,
            );
            let acc_exp: Vec<i32> = fw.iter().map(|e| e + x.exp).collect();
            let w = quantize_weights(&m.weight, &fw, wb);
            let b = quantize_bias(&m.bias, &acc_exp);
            let id = self.mac_step(m.name.clone(), m, x, w, b)?;
            y = Act {
                id,
                exp: 0,
                dtype: DType::I32,
            };
            final_exp = acc_exp;
        }
        if last {
            self.report(&m.name, 32);
            y.exp = final_exp[0];
            return Ok(y);
        }
        self.report(&m.name, a);
        let out = signed(a);
        let range = self.range(&m.name, TapKind::PreActivation, out)?;
        let cap = final_exp.iter().copied().min().unwrap_or(0);
        let f = self.out_exponent(range, out, cap);
        let name = if m.bn_scale.is_some() {
            format!("{}.bn.requant", m.name)
        } else {
            format!("{}.requant", m.name)
        };
        y = self.shift(name, y, out, f, &final_exp, false)?;
        if m.relu {
            let id = self.graph.relu(&format!("{}.relu", m.name), y.id, 0)?;
            let out = unsigned(a);
            let range = self.range(&m.name, TapKind::Output, out)?;
            let f = self.out_exponent(range, out, y.exp);
            let r = Act { id, ..y };
            y = self.shift(
                format!("{}.relu.requant", m.name),
                r,
                out,
                f,
                &[y.exp],
                true,
            )?;
        }
        if let Some(p) = m.pool {
            let id = self
                .graph
                .max_pool(&format!("{}.pool", m.name), y.id, p.into())?;
            let range = self.range(&m.name, TapKind::Output, y.dtype)?;
            let f = self.out_exponent(range, y.dtype, y.exp);
            let r = Act { id, ..y };
            y = self.shift(
                format!("{}.pool.requant", m.name),
                r,
                y.dtype,
                f,
                &[y.exp],
                m.relu,
            )?;
        }
        Ok(y)
    }

    /// After a standalone pool: the ablation requantizes (to the calibrated exponent, at most the
    /// input's), the unified model does not.
    fn after_pool(&mut self, name: &str, y: Act) -> Result<Act> {
        if self.opts.unified {
            return Ok(y);
        }
        let range = self.range(name, TapKind::Output, y.dtype)?;
        let f = self.out_exponent(range, y.dtype, y.exp);
        let relu = matches!(y.dtype, DType::Unsigned { .. });
        self.shift(format!("{name}.requant"), y, y.dtype, f, &[y.exp], relu)
    }

    fn modules(
        &mut self,
        modules: &[Module],
        mut x: Act,
        prefix: &str,
        top: bool,
        keep_last: bool,
    ) -> Result<Act> {
        let last_mac = modules.iter().rposition(|m| matches!(m, Module::Mac(_)));
        let tail_is_flat = last_mac.is_some_and(|i| {
            modules[i + 1..]
                .iter()
                .all(|m| matches!(m, Module::Flatten))
        });
        for (i, m) in modules.iter().enumerate() {
            let is_last = Some(i) == last_mac && tail_is_flat && (top || keep_last);
            x = match m {
                Module::Mac(mac) => {
                    if self.opts.unified {
                        self.mac_unified(mac, x, is_last)?
                    } else {
                        self.mac_ablation(mac, x, is_last && top)?
                    }
                }
                Module::Flatten if !self.graph.ty(x.id).is_map() => x,
                Module::Flatten => {
                    let id = self.graph.flatten(&format!("{prefix}flatten{i}"), x.id)?;
                    Act { id, ..x }
                }
                Module::MaxPool(p) => {
                    let name = format!("{prefix}pool{i}");
                    let id = self.graph.max_pool(&name, x.id, (*p).into())?;
                    self.after_pool(&name, Act { id, ..x })?
                }
                Module::AvgPool(p) => {
                    let name = format!("{prefix}pool{i}");
                    let id = self.graph.avg_pool(&name, x.id, (*p).into())?;
                    self.after_pool(&name, Act { id, ..x })?
                }
                Module::GlobalAvgPool => {
                    let name = format!("{prefix}pool{i}");
                    let id = self.graph.global_avg_pool(&name, x.id)?;
                    // The engine's global pool gives a [C] vector; a following flatten is skipped.
                    self.after_pool(&name, Act { id, ..x })?
                }
                Module::Residual {
                    name,
                    body,
                    shortcut,
                } => self.residual(name, body, shortcut, x)?,
            };
        }
        Ok(x)
    }

    fn residual(
        &mut self,
        name: &str,
        body: &[Module],
        shortcut: &[Module],
        x: Act,
    ) -> Result<Act> {
        let a = self.opts.activation_bits;
        let unified = self.opts.unified;
        let main = self.modules(body, x, &format!("{name}."), false, unified)?;
        let short = if shortcut.is_empty() {
            x
        } else {
            self.modules(shortcut, x, &format!("{name}.short."), false, unified)?
        };
        let e = main.exp.max(short.exp);
        let (sa, sb) = (e - main.exp, e - short.exp);
        if sa > 31 || sb > 31 {
            return Err(MethodError::Config(format!(
                "residual block {name}: branch exponents {} and {} are too far apart to align",
                main.exp, short.exp
            )));
        }
        let id = self.graph.add(
            &format!("{name}.add"),
            main.id,
            short.id,
            Add {
                zero_point_a: 0,
                zero_point_b: 0,
                align: AddAlign::PowerOfTwo {
                    shift_a: sa as u8,
                    shift_b: sb as u8,
                },
            },
        )?;
        let sum = Act {
            id,
            exp: e,
            dtype: DType::I32,
        };
        let out = unsigned(a);
        if unified {
            let range = self.range(name, TapKind::Output, out)?;
            let f = self.out_exponent(range, out, e).max(e - 31);
            self.exps.insert(
                name.to_string(),
                ModuleExponents {
                    weight: vec![],
                    input: e,
                    output: Some((f, 0, out.max_value() as i32)),
                },
            );
            return self.shift(format!("{name}.requant"), sum, out, f, &[e], true);
        }
        let range = self.range(name, TapKind::Sum, signed(a))?;
        let f = self.out_exponent(range, signed(a), e).max(e - 31);
        let s = self.shift(format!("{name}.requant"), sum, signed(a), f, &[e], false)?;
        let id = self.graph.relu(&format!("{name}.relu"), s.id, 0)?;
        let range = self.range(name, TapKind::Output, out)?;
        let f2 = self.out_exponent(range, out, f);
        self.shift(
            format!("{name}.relu.requant"),
            Act { id, ..s },
            out,
            f2,
            &[f],
            true,
        )
    }
}

/// What [`lower`] produces.
pub struct Lowered {
    /// The integer network (logits worth `2^-exponent` each).
    pub net: IntNet,
    /// Exponents of every unified module (empty entries for the ablation's extra steps).
    pub exponents: Exponents,
    /// Approximations worth reporting.
    pub notes: Vec<String>,
}

/// Lowers `model` with activation ranges from `cal` as `opts` say.
pub fn lower(model: &FoldedModel, cal: &Calibration, opts: &DjqOptions) -> Result<Lowered> {
    let graph = GraphBuilder::new(&model.input);
    let x = Act {
        id: graph.input(),
        exp: 0,
        dtype: DType::U8,
    };
    let mut l = Lowering {
        opts,
        cal,
        graph,
        layers: Vec::new(),
        exps: Exponents::new(),
        notes: Vec::new(),
    };
    let y = l.modules(&model.modules, x, "", true, true)?;
    if y.dtype != DType::I32 {
        return Err(MethodError::Config(
            "DJQ expects the model to end in a conv or dense layer (logits as i32)".into(),
        ));
    }
    Ok(Lowered {
        net: IntNet::finish(l.graph, y.id, pow2(-y.exp), l.layers)?,
        exponents: l.exps,
        notes: l.notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squared_error(w: &[f64], f: i32, bits: u8) -> f64 {
        let q = quantize_weights(w, &[f], bits);
        w.iter()
            .zip(q)
            .map(|(v, q)| (v - f64::from(q) * pow2(-f)).powi(2))
            .sum()
    }

    #[test]
    fn mse_weight_exponents_trade_a_clipped_outlier_for_resolution() {
        // One large weight among many small ones: at 2 bits the max rule rounds the small ones
        // to zero; the mse rule clips the outlier instead.
        let mut w: Vec<f64> = (0..64).map(|i| 0.2 + 0.0015 * f64::from(i)).collect();
        w[7] = 0.9;
        let max = weight_exponents(&w, 1, 2, false, WeightRange::Max)[0];
        let mse = weight_exponents(&w, 1, 2, false, WeightRange::Mse)[0];
        assert_eq!(max, exponent_for(0.9, 1.0));
        assert!(mse > max, "mse {mse}, max {max}");
        assert!(squared_error(&w, mse, 2) < squared_error(&w, max, 2));
        // Equal magnitudes: nothing to trade, both rules agree.
        let flat = vec![0.25, -0.25, 0.25, -0.25];
        assert_eq!(
            weight_exponents(&flat, 1, 4, false, WeightRange::Mse),
            weight_exponents(&flat, 1, 4, false, WeightRange::Max)
        );
    }

    #[test]
    fn mse_weight_exponents_are_chosen_per_channel_when_asked() {
        let w = [0.9, 0.01, 0.01, 0.01, 0.1, 0.1, 0.1, 0.1];
        let per = weight_exponents(&w, 2, 2, true, WeightRange::Mse);
        let tensor = weight_exponents(&w, 2, 2, false, WeightRange::Mse);
        assert_ne!(per[0], per[1]);
        assert_eq!(tensor[0], tensor[1]);
        for (c, f) in per.iter().enumerate() {
            let row = &w[c * 4..(c + 1) * 4];
            let f0 = exponent_for(row.iter().fold(0f64, |m, v| m.max(v.abs())), 1.0);
            let best = (f0..=f0 + 3)
                .map(|g| squared_error(row, g, 2))
                .fold(f64::INFINITY, f64::min);
            assert_eq!(squared_error(row, *f, 2), best, "channel {c}");
        }
    }
}
