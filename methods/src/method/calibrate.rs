//! The folded float model's candle forward, and calibration statistics of every module's
//! activations over calibration images.
//!
//! [`forward`] runs a [`FoldedModel`] on raw pixels (f32 values 0..=255, NCHW) with
//! [`FoldedTensors`] as weights; a [`Hooks`] implementation sees (and may replace) each weight and
//! each activation at named [`Tap`]s. Identity hooks give the float model (eval mode: batch norm is
//! folded); [`calibrate`] records statistics; a method's fine-tuning hooks insert fake quantizers.
//!
//! Statistics ([`TensorStats`]) are deterministic: min, max, per-channel min and max, and a
//! histogram of `|x|` with fixed log-spaced bins (32 per octave, `2^-40 .. 2^40`), so percentiles
//! are exact to within a factor `2^(1/32)` (about 2%) and do not depend on batch order.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};
use qbench_datasets::ImageSet;

use super::fold::{FoldedModel, MacGeometry, MacModule, Module, PoolSpec};
use crate::error::Result;
use crate::model::conv::conv2d;

/// Where in a module an activation is observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TapKind {
    /// A MAC module's raw accumulator with the batch-norm scale divided back out and no bias:
    /// the conv/dense output *before* batch norm (only for modules with a folded batch norm).
    PreBn,
    /// A MAC module's output after bias (folded BN), before ReLU.
    PreActivation,
    /// A module's final output: after ReLU and max pool for MAC modules, after the ReLU for
    /// residual blocks, the pooled map for pooling modules.
    Output,
    /// A residual block's sum, before its ReLU.
    Sum,
}

impl TapKind {
    /// Short name used in statistics keys.
    pub fn label(self) -> &'static str {
        match self {
            TapKind::PreBn => "pre_bn",
            TapKind::PreActivation => "pre_act",
            TapKind::Output => "out",
            TapKind::Sum => "sum",
        }
    }
}

/// A named observation point: the module's name and the place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tap<'a> {
    /// Module name (MAC layer name, residual block name, or `pool{i}` for pooling modules).
    pub module: &'a str,
    /// Place in the module.
    pub kind: TapKind,
}

/// Key of a tap in [`Calibration::stats`]: `"{module}/{kind}"`.
pub fn tap_key(module: &str, kind: TapKind) -> String {
    format!("{module}/{}", kind.label())
}

/// Candle tensors (f32) of a folded model's MAC weights and biases, by module name. As [`Var`]s,
/// so fine-tuning can train them.
pub struct FoldedTensors {
    /// Weights, shaped `[O, C, k, k]` or `[O, F]`.
    pub weights: BTreeMap<String, Var>,
    /// Biases `[O]`.
    pub biases: BTreeMap<String, Var>,
}

impl FoldedTensors {
    /// Copies the folded weights into f32 variables.
    pub fn new(model: &FoldedModel) -> Result<Self> {
        let mut weights = BTreeMap::new();
        let mut biases = BTreeMap::new();
        for m in model.mac_modules() {
            let w: Vec<f32> = m.weight.iter().map(|&v| v as f32).collect();
            let shape = m.geometry.weight_shape();
            let b: Vec<f32> = m.bias.iter().map(|&v| v as f32).collect();
            let nb = b.len();
            weights.insert(
                m.name.clone(),
                Var::from_tensor(&Tensor::from_vec(w, shape, &Device::Cpu)?)?,
            );
            biases.insert(
                m.name.clone(),
                Var::from_tensor(&Tensor::from_vec(b, nb, &Device::Cpu)?)?,
            );
        }
        Ok(FoldedTensors { weights, biases })
    }

    /// Writes the (trained) tensors back into `model`'s f64 weights and biases.
    pub fn write_back(&self, model: &mut FoldedModel) -> Result<()> {
        for m in model.mac_modules_mut() {
            if let Some(w) = self.weights.get(&m.name) {
                m.weight = w
                    .as_tensor()
                    .flatten_all()?
                    .to_dtype(DType::F64)?
                    .to_vec1()?;
            }
            if let Some(b) = self.biases.get(&m.name) {
                m.bias = b.as_tensor().to_dtype(DType::F64)?.to_vec1()?;
            }
        }
        Ok(())
    }

    /// All variables (weights and biases), for an optimiser, keyed `{module}.weight` / `.bias`.
    pub fn vars(&self) -> BTreeMap<String, Var> {
        let mut all = BTreeMap::new();
        for (k, v) in &self.weights {
            all.insert(format!("{k}.weight"), v.clone());
        }
        for (k, v) in &self.biases {
            all.insert(format!("{k}.bias"), v.clone());
        }
        all
    }
}

/// Observes and may replace weights and activations during [`forward`]. Defaults are identity.
pub trait Hooks {
    /// The weight tensor a MAC module uses (e.g. fake-quantized).
    fn weight(&mut self, _module: &MacModule, w: &Tensor) -> Result<Tensor> {
        Ok(w.clone())
    }
    /// The bias tensor a MAC module uses.
    fn bias(&mut self, _module: &MacModule, b: &Tensor) -> Result<Tensor> {
        Ok(b.clone())
    }
    /// A MAC module's accumulator without bias (`sum w (x - z)`), before [`TapKind::PreBn`] would
    /// be derived from it; for observation only.
    fn accumulator(&mut self, _module: &MacModule, _acc: &Tensor) -> Result<()> {
        Ok(())
    }
    /// The activation at `tap`; the returned tensor continues the forward pass.
    fn activation(&mut self, _tap: &Tap, x: &Tensor) -> Result<Tensor> {
        Ok(x.clone())
    }
}

/// Hooks that change nothing: the float forward of the folded model.
pub struct Identity;
impl Hooks for Identity {}

fn per_channel(t: &Tensor, v: &Tensor) -> Result<Tensor> {
    Ok(if t.rank() == 4 {
        v.reshape((1, (), 1, 1))?
    } else {
        v.reshape((1, ()))?
    })
}

/// Max pool in candle ([`crate::model::pool::max_pool2d`], differentiable for any window);
/// padded positions replicate the edge, so they never win (as the engine's padded taps, which
/// are ignored).
pub fn max_pool(x: &Tensor, p: PoolSpec) -> Result<Tensor> {
    crate::model::pool::max_pool2d(x, p.kernel, p.stride, p.pad)
}

fn run_mac(
    m: &MacModule,
    tensors: &FoldedTensors,
    x: &Tensor,
    hooks: &mut dyn Hooks,
) -> Result<Tensor> {
    let w = hooks.weight(m, tensors.weights[&m.name].as_tensor())?;
    let b = hooks.bias(m, tensors.biases[&m.name].as_tensor())?;
    let x = if m.input_zero_point != 0 {
        (x - f64::from(m.input_zero_point))?
    } else {
        x.clone()
    };
    let acc = match m.geometry {
        MacGeometry::Conv(c) => conv2d(&x, &w, &c)?,
        MacGeometry::Dense { .. } => x.matmul(&w.t()?)?,
    };
    hooks.accumulator(m, &acc)?;
    let y = acc.broadcast_add(&per_channel(&acc, &b)?)?;
    let mut y = hooks.activation(
        &Tap {
            module: &m.name,
            kind: TapKind::PreActivation,
        },
        &y,
    )?;
    if m.relu {
        y = y.relu()?;
    }
    if let Some(p) = m.pool {
        y = max_pool(&y, p)?;
    }
    hooks.activation(
        &Tap {
            module: &m.name,
            kind: TapKind::Output,
        },
        &y,
    )
}

fn run_modules(
    modules: &[Module],
    tensors: &FoldedTensors,
    mut x: Tensor,
    hooks: &mut dyn Hooks,
    prefix: &str,
) -> Result<Tensor> {
    for (i, m) in modules.iter().enumerate() {
        let name = format!("{prefix}pool{i}");
        let out = |x: Tensor, hooks: &mut dyn Hooks| -> Result<Tensor> {
            hooks.activation(
                &Tap {
                    module: &name,
                    kind: TapKind::Output,
                },
                &x,
            )
        };
        x = match m {
            Module::Mac(mac) => run_mac(mac, tensors, &x, hooks)?,
            Module::MaxPool(p) => out(max_pool(&x, *p)?, hooks)?,
            Module::AvgPool(p) => out(x.avg_pool2d_with_stride(p.kernel, p.stride)?, hooks)?,
            Module::GlobalAvgPool => out(
                x.mean_keepdim(candle_core::D::Minus1)?
                    .mean_keepdim(candle_core::D::Minus2)?,
                hooks,
            )?,
            Module::Flatten => x.flatten_from(1)?,
            Module::Residual {
                name,
                body,
                shortcut,
            } => {
                let main = run_modules(body, tensors, x.clone(), hooks, &format!("{name}."))?;
                let short = run_modules(shortcut, tensors, x, hooks, &format!("{name}.short."))?;
                let sum = hooks.activation(
                    &Tap {
                        module: name,
                        kind: TapKind::Sum,
                    },
                    &(main + short)?,
                )?;
                hooks.activation(
                    &Tap {
                        module: name,
                        kind: TapKind::Output,
                    },
                    &sum.relu()?,
                )?
            }
        };
    }
    Ok(x)
}

/// Runs the folded model on `x`, raw pixel values as f32 `(N, C, H, W)`, and returns the logits.
pub fn forward(
    model: &FoldedModel,
    tensors: &FoldedTensors,
    x: &Tensor,
    hooks: &mut dyn Hooks,
) -> Result<Tensor> {
    run_modules(&model.modules, tensors, x.clone(), hooks, "")
}

/// The images at `indices` as raw pixel values, f32 `(N, C, H, W)`.
pub fn raw_batch(set: &ImageSet, indices: &[usize]) -> Result<Tensor> {
    let per = set.image_len();
    let mut pixels = Vec::with_capacity(indices.len() * per);
    for &i in indices {
        pixels.extend(
            set.images[i * per..(i + 1) * per]
                .iter()
                .map(|&p| f32::from(p)),
        );
    }
    Ok(Tensor::from_vec(
        pixels,
        (indices.len(), set.channels, set.height, set.width),
        &Device::Cpu,
    )?)
}

/// Bins per octave of the `|x|` histogram.
pub const BINS_PER_OCTAVE: usize = 32;
const MIN_LOG2: i32 = -40;
const OCTAVES: usize = 80;

/// Statistics of one activation tensor over all calibration images.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Smallest value per channel (dim 1).
    pub channel_min: Vec<f64>,
    /// Largest value per channel.
    pub channel_max: Vec<f64>,
    /// Values seen.
    pub count: u64,
    /// Exact zeros (and values below `2^-40` in magnitude) seen.
    pub zeros: u64,
    /// Counts of `|x|` in log-spaced bins (see the module docs).
    pub histogram: Vec<u64>,
    /// Counts of `|x|` of the negative values only, same bins (so signed percentiles exist).
    pub neg_histogram: Vec<u64>,
    /// `(min, max)` of each recorded batch in order (for moving averages of batch ranges).
    pub batch_ranges: Vec<(f64, f64)>,
}

impl TensorStats {
    /// Empty statistics of a tensor with `channels` channels (nothing observed yet).
    pub fn new(channels: usize) -> Self {
        TensorStats {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            channel_min: vec![f64::INFINITY; channels],
            channel_max: vec![f64::NEG_INFINITY; channels],
            count: 0,
            zeros: 0,
            histogram: vec![0; OCTAVES * BINS_PER_OCTAVE],
            neg_histogram: vec![0; OCTAVES * BINS_PER_OCTAVE],
            batch_ranges: Vec::new(),
        }
    }

    /// Upper edge of histogram bin `i`.
    fn edge(i: usize) -> f64 {
        2f64.powf(f64::from(MIN_LOG2) + (i + 1) as f64 / BINS_PER_OCTAVE as f64)
    }

    /// The power-of-two range with the least squared quantization error: `qmax * 2^-f` for the
    /// exponent `f` that minimises the histogram's estimate of `E[(|x| - q_f(|x|))^2]`, where
    /// `q_f(v) = min(round(v 2^f), qmax) 2^-f` (clipping and rounding error together; each bin
    /// counts at its geometric centre). The candidates run from the exponent that clips nothing
    /// down to 8 below it, so the result never has more error than min/max's.
    pub fn mse_pow2_range(&self, qmax: f64) -> f64 {
        let top = self.abs_max();
        if !(top > 0.0 && top.is_finite() && qmax > 0.0) {
            return top;
        }
        let widest = (qmax / top).log2().floor() as i32;
        let error = |f: i32| -> f64 {
            let scale = 2f64.powi(f);
            self.histogram
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(|(i, &c)| {
                    let v = (Self::edge(i) * 2f64.powf(-0.5 / BINS_PER_OCTAVE as f64)).min(top);
                    let q = (v * scale + 0.5).floor().min(qmax) / scale;
                    c as f64 * (v - q).powi(2)
                })
                .sum()
        };
        let best = (widest..=widest + 8)
            .map(|f| (error(f), f))
            .fold(
                (f64::INFINITY, widest),
                |a, b| if b.0 < a.0 { b } else { a },
            )
            .1;
        qmax * 2f64.powi(-best)
    }

    /// The signed `p`-th percentile (0..=100) of `x`, to the histogram's resolution and rounded
    /// away from zero (the outer edge of the bin where the cumulative count reaches `p%`, capped
    /// at [`TensorStats::min`] / [`TensorStats::max`]), so a range from two percentiles only
    /// widens.
    pub fn percentile(&self, p: f64) -> f64 {
        let target = ((p / 100.0 * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        // Negative values, most negative first.
        for (i, c) in self.neg_histogram.iter().enumerate().rev() {
            seen += c;
            if seen >= target {
                return (-Self::edge(i)).max(self.min);
            }
        }
        seen += self.zeros;
        if seen >= target {
            return 0.0;
        }
        for (i, (all, neg)) in self.histogram.iter().zip(&self.neg_histogram).enumerate() {
            seen += all - neg;
            if seen >= target {
                return Self::edge(i).min(self.max);
            }
        }
        self.max
    }

    /// Exponential moving average of the batch ranges, `r = decay r + (1 - decay) batch`,
    /// starting from the first batch; `clamp_at_zero` first raises each batch's bounds to at
    /// least 0 (the range of the tensor after a ReLU).
    pub fn ema_range(&self, decay: f64, clamp_at_zero: bool) -> (f64, f64) {
        let fix = |(lo, hi): (f64, f64)| {
            if clamp_at_zero {
                (lo.max(0.0), hi.max(0.0))
            } else {
                (lo, hi)
            }
        };
        let mut it = self.batch_ranges.iter().copied().map(fix);
        let Some(first) = it.next() else {
            return (0.0, 0.0);
        };
        it.fold(first, |(a, b), (lo, hi)| {
            (
                decay * a + (1.0 - decay) * lo,
                decay * b + (1.0 - decay) * hi,
            )
        })
    }

    /// Largest magnitude.
    pub fn abs_max(&self) -> f64 {
        self.max.abs().max(self.min.abs())
    }

    /// Largest magnitude per channel.
    pub fn channel_abs_max(&self) -> Vec<f64> {
        self.channel_min
            .iter()
            .zip(&self.channel_max)
            .map(|(a, b)| a.abs().max(b.abs()))
            .collect()
    }

    /// The `p`-th percentile (0..=100) of `|x|`: the upper edge of the histogram bin where the
    /// cumulative count reaches `p%`, capped at [`TensorStats::abs_max`].
    pub fn abs_percentile(&self, p: f64) -> f64 {
        let target = (p / 100.0 * self.count as f64).ceil() as u64;
        let mut seen = self.zeros;
        if seen >= target {
            return 0.0;
        }
        for (i, c) in self.histogram.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::edge(i).min(self.abs_max());
            }
        }
        self.abs_max()
    }

    fn add(&mut self, t: &Tensor) -> Result<()> {
        let dims = t.dims().to_vec();
        let channels = dims.get(1).copied().unwrap_or(1);
        let spatial: usize = dims.iter().skip(2).product();
        let values = t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for (i, &v) in values.iter().enumerate() {
            let v = f64::from(v);
            lo = lo.min(v);
            hi = hi.max(v);
            let c = (i / spatial.max(1)) % channels;
            self.min = self.min.min(v);
            self.max = self.max.max(v);
            self.channel_min[c] = self.channel_min[c].min(v);
            self.channel_max[c] = self.channel_max[c].max(v);
            let a = v.abs();
            if a < 2f64.powi(MIN_LOG2) {
                self.zeros += 1;
            } else {
                let bin = ((a.log2() - f64::from(MIN_LOG2)) * BINS_PER_OCTAVE as f64) as usize;
                let bin = bin.min(OCTAVES * BINS_PER_OCTAVE - 1);
                self.histogram[bin] += 1;
                if v < 0.0 {
                    self.neg_histogram[bin] += 1;
                }
            }
        }
        if !values.is_empty() {
            self.batch_ranges.push((lo, hi));
        }
        self.count += values.len() as u64;
        Ok(())
    }
}

/// Statistics of every tap of a folded model.
#[derive(Clone, Debug, Default)]
pub struct Calibration {
    /// Statistics by [`tap_key`].
    pub stats: BTreeMap<String, TensorStats>,
    /// Images the statistics are over.
    pub images: usize,
}

impl Calibration {
    /// The statistics of a tap, if it was observed.
    pub fn get(&self, module: &str, kind: TapKind) -> Option<&TensorStats> {
        self.stats.get(&tap_key(module, kind))
    }
}

struct Recorder<'a> {
    cal: &'a mut Calibration,
}

impl Recorder<'_> {
    fn record(&mut self, key: String, t: &Tensor) -> Result<()> {
        let channels = t.dims().get(1).copied().unwrap_or(1);
        self.cal
            .stats
            .entry(key)
            .or_insert_with(|| TensorStats::new(channels))
            .add(t)
    }
}

impl Hooks for Recorder<'_> {
    fn accumulator(&mut self, module: &MacModule, acc: &Tensor) -> Result<()> {
        if let Some(scale) = &module.bn_scale {
            // Division by zero gives inf; a zero BN scale means that channel's input is ignored.
            let inv: Vec<f32> = scale
                .iter()
                .map(|&s| if s == 0.0 { 0.0 } else { (1.0 / s) as f32 })
                .collect();
            let inv = Tensor::from_vec(inv, scale.len(), &Device::Cpu)?;
            let raw = acc.broadcast_mul(&per_channel(acc, &inv)?)?;
            self.record(tap_key(&module.name, TapKind::PreBn), &raw)?;
        }
        Ok(())
    }

    fn activation(&mut self, tap: &Tap, x: &Tensor) -> Result<Tensor> {
        self.record(tap_key(tap.module, tap.kind), x)?;
        Ok(x.clone())
    }
}

/// Runs the folded float model over the images at `indices` (in batches of `batch`) and records
/// statistics of every tap. Deterministic: the same images give the same statistics.
pub fn calibrate(
    model: &FoldedModel,
    tensors: &FoldedTensors,
    set: &ImageSet,
    indices: &[usize],
    batch: usize,
) -> Result<Calibration> {
    let mut cal = Calibration {
        stats: BTreeMap::new(),
        images: indices.len(),
    };
    for chunk in indices.chunks(batch.max(1)) {
        let x = raw_batch(set, chunk)?;
        forward(model, tensors, &x, &mut Recorder { cal: &mut cal })?;
    }
    Ok(cal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use crate::method::fold::fold;
    use crate::model::forward::{Mode, forward as float_forward};
    use crate::model::{params::Params, zoo};
    use qbench_datasets::Normalization;

    fn synthetic(n: usize, norm: Normalization) -> ImageSet {
        let images: Vec<u8> = (0..n * 28 * 28).map(|i| ((i * 37) % 251) as u8).collect();
        ImageSet {
            images,
            labels: (0..n).map(|i| (i % 10) as u16).collect(),
            channels: 1,
            height: 28,
            width: 28,
            num_classes: 10,
            normalization: norm,
            boxes: Vec::new(),
        }
    }

    #[test]
    fn signed_percentiles_and_batch_ema_follow_the_values() {
        let mut s = TensorStats::new(1);
        // Batch 1: -4 .. 5; batch 2: -2 .. 1 (one value each of -4..=5, then -2..=1).
        let b1: Vec<f32> = (-4..=5).map(|v| v as f32).collect();
        let b2: Vec<f32> = (-2..=1).map(|v| v as f32).collect();
        for b in [b1, b2] {
            let n = b.len();
            s.add(&Tensor::from_vec(b, (1, 1, n), &Device::Cpu).unwrap())
                .unwrap();
        }
        assert_eq!(s.batch_ranges, vec![(-4.0, 5.0), (-2.0, 1.0)]);
        assert_eq!(s.ema_range(0.75, false), (-3.5, 4.0));
        assert_eq!(s.ema_range(0.75, true), (0.0, 4.0));
        // 14 values; the extremes are exact, inner ones round outward within a bin (2^(1/32)).
        assert_eq!((s.percentile(0.0), s.percentile(100.0)), (-4.0, 5.0));
        // Sorted: -4 -3 -2 -2 -1 -1 0 0 1 1 2 3 4 5.
        let lo = s.percentile(20.0); // the 3rd smallest (ceil(0.2 * 14)): -2
        assert!((-2.0 * 1.022..=-2.0).contains(&lo), "{lo}");
        assert_eq!(s.percentile(50.0), 0.0); // 7th: 0
        let hi = s.percentile(90.0); // 13th: 4
        assert!((4.0..=4.0 * 1.022).contains(&hi), "{hi}");
    }

    #[test]
    fn folded_forward_matches_the_float_model() {
        let arch = zoo::build("cnn", [1, 28, 28], 10).unwrap();
        let mut params = Params::init(&arch, 3).unwrap();
        // Non-trivial batch-norm statistics.
        for (k, v) in params.buffers.iter_mut() {
            let n = v.dims()[0];
            let vals: Vec<f32> = (0..n)
                .map(|i| {
                    if k.ends_with("mean") {
                        0.1 * i as f32 - 0.3
                    } else {
                        0.5 + 0.05 * i as f32
                    }
                })
                .collect();
            *v = Tensor::from_vec(vals, n, &Device::Cpu).unwrap();
        }
        let norm = Normalization {
            mean: vec![0.0],
            std: vec![0.3],
        };
        let set = synthetic(8, norm.clone());
        let idx: Vec<usize> = (0..8).collect();
        let folded = fold(&arch, &params, &norm).unwrap();
        let tensors = FoldedTensors::new(&folded).unwrap();
        let raw = raw_batch(&set, &idx).unwrap();
        let ours = forward(&folded, &tensors, &raw, &mut Identity).unwrap();
        let (x, _) = data::batch(&set, &idx).unwrap();
        let theirs = float_forward(&arch, &mut params, &x, Mode::Eval).unwrap();
        let diff = crate::model::test_util::max_diff(&ours, &theirs);
        assert!(diff < 1e-3, "folded and float logits differ by {diff}");
        let cal = calibrate(&folded, &tensors, &set, &idx, 3).unwrap();
        let s = cal.get("conv1", TapKind::Output).unwrap();
        assert!(s.min >= 0.0 && s.max > 0.0);
        assert!(s.abs_percentile(50.0) <= s.abs_percentile(99.0));
        assert!(s.abs_percentile(100.0) <= s.abs_max());
        assert!(cal.get("conv1", TapKind::PreBn).is_some());
        assert_eq!(s.channel_max.len(), 16);
    }

    #[test]
    fn the_least_squared_error_range_clips_a_long_tail_at_low_bits() {
        // Mostly small magnitudes with a few large ones, as a ReLU output has.
        let mut values: Vec<f32> = (0..10_000).map(|i| (i % 100) as f32 / 100.0).collect();
        values.extend([8.0f32, 12.0, 16.0]);
        let n = values.len();
        let t = candle_core::Tensor::from_vec(values, (n, 1), &candle_core::Device::Cpu).unwrap();
        let mut s = TensorStats::new(1);
        s.add(&t).unwrap();
        // 2-bit unsigned (qmax 3): clipping the tail beats stretching the scale over it.
        let r2 = s.mse_pow2_range(3.0);
        assert!(r2 < 2.0, "2-bit range {r2}");
        assert_eq!((3.0 / r2).log2().fract(), 0.0, "a power-of-two scale");
        // 16 bits represent the whole range finely: at most the last rounding step is clipped.
        assert!(s.mse_pow2_range(65535.0) > 15.99);
    }
}
