//! `tnt`: TNT, target non-retraining ternary weights (Zhang, Zhu, Zhao et al., arXiv 1912.09236),
//! with 8-bit activations.
//!
//! - Batch norm and the dataset normalization are folded first ([`super::affine::fold`]); the
//!   folded weights (the ones the engine multiplies) are ternarized by the cosine-similarity
//!   algorithm ([`ternarize`]) at the configured [`Granularity`], with the paper's `alpha+`/`alpha-`
//!   or one symmetric scale ([`Scales`]). No retraining by default; `finetune: {epochs: N}` trains
//!   the folded float weights through the ternarizer with a straight-through estimator
//!   ([`finetune`]) before the final ternarization.
//! - Activations: `int8`'s machinery, asymmetric u8 with zero points, ranges calibrated on the
//!   *ternarized* folded float model (so they see the activations the ternary weights produce).
//! - Requantizer: `Requant::FixedPoint` (gemmlowp), because the ternary scales are arbitrary reals;
//!   a `Shift` would need power-of-two ones. A ternary-path layer folds its per-channel or
//!   per-layer `alpha` into the multiplier `S_in alpha / S_out`.
//! - Path per layer ([`weights`]): ternary where every requantizer channel has one weight
//!   magnitude, else int8 weights `round(alpha t / s)` (per-kernel scales, `alpha+ != alpha-`, and
//!   the logits layer unless its scale is per layer). The report gives each layer's path.
//! - Fake-quant forward: [`super::intnet::IntMirror`], the exact integer mirror (logit bound 0).

pub mod finetune;
pub mod options;
pub mod ternarize;
pub mod weights;

pub use options::{Granularity, Scales, TntOptions};

use candle_core::Tensor;

use super::affine::{FoldedModel, ModuleKind, fold};
use super::config::RawMethodConfig;
use super::int8::Calibration;
use super::int8_qat::finetune_with;
use super::intnet::{IntMirror, IntNet, OutQuant, activation_params, quantize_module};
use super::ranges::activation_ranges;
use super::{LayerReport, MethodReport, QuantInput, QuantMethod, Quantized};
use crate::error::{MethodError, Result};
use crate::train::TrainObserver;
use weights::{LayerWeights, TernaryLayer, lower_weights, ternarize_layer};

/// The `tnt` method.
#[derive(Clone, Debug)]
pub struct Tnt {
    /// Its validated options.
    pub options: TntOptions,
}

impl Tnt {
    /// The method with `options`, validated.
    pub fn new(options: TntOptions) -> Result<Self> {
        Ok(Tnt {
            options: crate::method::config::validated("tnt", options)?,
        })
    }

    /// The method a YAML config describes (`method: tnt`).
    pub fn from_config(config: &RawMethodConfig) -> Result<Self> {
        Ok(Tnt {
            options: config.typed()?,
        })
    }
}

impl QuantMethod for Tnt {
    fn label(&self) -> String {
        let mut label = format!("TNT ternary/A8 {}", self.options.granularity.name());
        if self.options.scales == Scales::Symmetric {
            label.push_str(" symmetric");
        }
        if self.options.finetune.epochs > 0 {
            label.push_str(&format!(" FT{}", self.options.finetune.epochs));
        }
        label
    }

    fn quantize(&self, input: &QuantInput, observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let o = &self.options;
        let mut float = fold(input.arch, input.params, &input.data.normalization, "tnt")?;
        let n = o.calibration_images.min(input.calib_idx.len());
        let calibrate = |model: &FoldedModel| {
            let calib = &input.calib_idx[..n];
            activation_ranges(
                model,
                input.data,
                calib,
                o.calibration_batch,
                o.range_rule(),
            )
        };
        if o.finetune.epochs > 0 {
            let (model, _) = ternarized(&float, o)?;
            let ranges = calibrate(&model)?;
            let kinds: Vec<ModuleKind> = float.modules.iter().map(|m| m.kind).collect();
            let quant = |i: usize, w: &Tensor| {
                finetune::straight_through(w, kinds[i], o.granularity, o.scales)
            };
            finetune_with(
                &mut float,
                &ranges,
                &quant,
                &o.finetune,
                "tnt",
                input,
                observer,
            )?;
        }
        let (model, ternary) = ternarized(&float, o)?;
        let ranges = calibrate(&model)?;
        let (mut in_scale, mut in_zp) = (1.0, model.input_zero_point);
        let (mut layers, mut reports, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        let mut logit_scale = 1.0;
        let last = model.modules.len() - 1;
        for (i, (m, t)) in model.modules.iter().zip(&ternary).enumerate() {
            let lw = lower_weights(t, m.kind.out_channels(), i != last);
            let out = ranges.get(i).map(|&(lo, hi)| {
                let (scale, zero_point) = activation_params(if m.relu { 0.0 } else { lo }, hi, 8);
                OutQuant {
                    scale,
                    zero_point,
                    bits: 8,
                }
            });
            notes.push(layer_note(&m.name, &lw, t.group, i == last));
            let LayerWeights {
                weights,
                scales,
                kind,
                ..
            } = &lw;
            let (mut layer, acc_scale) = quantize_module(
                m,
                in_scale,
                in_zp,
                (weights.clone(), scales.clone()),
                8,
                out,
            )?;
            layer.weight_kind = *kind;
            reports.push(LayerReport {
                name: m.name.clone(),
                path: lw.path().into(),
                weight_bits: kind.storage_bits() as u8,
                output_bits: out.map_or(32, |q| q.bits),
            });
            layers.push(layer);
            logit_scale = acc_scale;
            if let Some(q) = out {
                (in_scale, in_zp) = (q.scale, q.zero_point);
            }
        }
        let net = IntNet {
            input: model.input,
            layers,
            logit_scale,
        };
        let graph = net.lower()?;
        notes.insert(
            0,
            "8-bit asymmetric u8 activations (int8's calibration and zero points); FixedPoint \
             (gemmlowp) requantizers, which carry the ternary scales of ternary-path layers"
                .into(),
        );
        let what = match o.calibration {
            Calibration::Minmax => "min/max".to_string(),
            Calibration::Ema => format!("EMA (decay {}) of batch min/max", o.ema_decay),
            Calibration::Percentile => format!("{} percentile", o.percentile),
        };
        let report = MethodReport {
            method: "tnt".into(),
            label: self.label(),
            config: serde_json::to_value(o).map_err(|e| MethodError::Config(e.to_string()))?,
            layers: reports,
            quant_ops: net.requant_ops(),
            calibration: format!(
                "{what} of the ternarized float model over {n} images in batches of {}",
                o.calibration_batch
            ),
            finetune_epochs: o.finetune.epochs,
            notes,
        };
        Ok(Quantized {
            graph,
            fake_quant: Box::new(IntMirror::new(net)?),
            report,
        })
    }
}

/// The folded model with every layer's weights replaced by their ternary values, and the
/// ternarizations. Non-finite weights are an error naming the layer.
fn ternarized(float: &FoldedModel, o: &TntOptions) -> Result<(FoldedModel, Vec<TernaryLayer>)> {
    let mut model = float.clone();
    let mut ternary = Vec::with_capacity(model.modules.len());
    for m in &mut model.modules {
        if let Some(i) = m.weight.iter().position(|w| !w.is_finite()) {
            return Err(MethodError::Config(format!(
                "method tnt: layer {}: weight {i} is not finite",
                m.name
            )));
        }
        let t = ternarize_layer(&m.weight, m.kind, o.granularity, o.scales);
        m.weight = t.values.iter().map(|&v| v as f32).collect();
        ternary.push(t);
    }
    Ok((model, ternary))
}

/// One sentence on how a layer was lowered and why.
fn layer_note(name: &str, lw: &LayerWeights, group: usize, logits: bool) -> String {
    let unit = if logits {
        "the logits layer (one unit for all outputs)"
    } else {
        "each output channel"
    };
    match lw.path() {
        "ternary" => format!(
            "{name}: ternary path, groups of {group} weights; one scale for {unit}, folded \
             into the FixedPoint requantizer or the logit scale"
        ),
        _ => format!(
            "{name}: int8 path, groups of {group} weights; the ternary scales vary within \
             {unit}, so 8-bit weights carry alpha*t (scales to 8 bits, largest relative \
             error {:.3}%)",
            100.0 * lw.max_scale_error
        ),
    }
}
