//! `tnt`: TNT, target non-retraining ternary weights (Zhang, Zhu, Zhao et al., arXiv 1912.09236),
//! with 8-bit activations.
//!
//! - Batch norm and the dataset normalization are folded first ([`super::fold`]); the
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
//! - Residual blocks: `int8`'s TFLite ADD ([`super::intnet`]), each conv on its own path as above.
//! - Fake-quant forward: [`super::intnet::IntMirror`], the exact integer mirror (logit bound 0).

pub mod finetune;
pub mod options;
pub mod ternarize;
pub mod weights;

pub use options::{Granularity, Scales, TntOptions};

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::act_range::{RangeRule, calibrate_model};
use super::calibrate::TensorStats;
use super::fixed_point::{OutQuant, QuantWeights, Scheme, activation_params, build};
use super::fold::{FoldedModel, MacModule, fold};
use super::intnet::ReportHead;
use super::qat;
use super::{QuantInput, QuantMethod, Quantized};
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
        let mut float = fold(input.arch, input.params, &input.data.normalization)?;
        let a = &o.activations;
        let calibrate = |model: &FoldedModel| {
            calibrate_model(
                model,
                input,
                a.calibration_images,
                a.calibration_batch,
                "tnt",
            )
        };
        let logits = float
            .mac_modules()
            .last()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        if o.finetune.epochs > 0 {
            let (model, ternary) = ternarized(&float, o)?;
            let (cal, _) = calibrate(&model)?;
            let scheme = TntScheme {
                ternary,
                rule: a.rule(),
            };
            let quant = |m: &MacModule, w: &Tensor| {
                finetune::straight_through(w, m.geometry, o.granularity, o.scales)
            };
            qat::finetune(
                &mut float,
                &cal,
                &scheme,
                &quant,
                &o.finetune,
                input,
                observer,
            )?;
        }
        let (model, ternary) = ternarized(&float, o)?;
        let (cal, n) = calibrate(&model)?;
        let mut notes = vec![
            "8-bit asymmetric u8 activations (int8's calibration and zero points); FixedPoint \
             (gemmlowp) requantizers, which carry the ternary scales of ternary-path layers"
                .to_string(),
        ];
        for m in model.mac_modules() {
            let t = &ternary[&m.name];
            let last = m.name == logits;
            let lw = lower_weights(t, m.out_channels(), !last);
            notes.push(layer_note(&m.name, &lw, t.group, last));
        }
        notes.extend(model.notes.iter().cloned());
        let scheme = TntScheme {
            ternary,
            rule: a.rule(),
        };
        let net = build(&model, &cal, &scheme)?;
        net.into_quantized(ReportHead {
            method: "tnt",
            label: self.label(),
            config: serde_json::to_value(o).map_err(|e| MethodError::Config(e.to_string()))?,
            calibration: format!(
                "{} of the ternarized float model over {n} images in batches of {}",
                scheme.rule.describe(),
                a.calibration_batch
            ),
            finetune_epochs: o.finetune.epochs,
            variant: None,
            own_model: None,
            notes,
        })
    }
}

/// `tnt`'s quantization: each layer's ternarization on its engine path ([`lower_weights`]),
/// `int8`'s u8 activations.
struct TntScheme {
    /// Ternarization of every layer, by name.
    ternary: BTreeMap<String, TernaryLayer>,
    rule: RangeRule,
}

impl Scheme for TntScheme {
    fn method(&self) -> &str {
        "tnt"
    }

    fn weights(&self, m: &MacModule, logits: bool) -> Result<QuantWeights> {
        let t = self.ternary.get(&m.name).ok_or_else(|| {
            MethodError::Config(format!("method tnt: layer {} was not ternarized", m.name))
        })?;
        let lw = lower_weights(t, m.out_channels(), !logits);
        let path = lw.path().to_string();
        let LayerWeights {
            weights,
            scales,
            kind,
            ..
        } = lw;
        Ok(QuantWeights {
            weights,
            scales,
            kind,
            path,
        })
    }

    fn activation(&self, _name: &str, stats: &TensorStats, relu: bool) -> Result<OutQuant> {
        let (lo, hi) = self.rule.range(stats, relu);
        Ok(activation_params(lo, hi, 8))
    }
}

/// The folded model with every layer's weights replaced by their ternary values, and the
/// ternarizations by layer name. Non-finite weights are an error naming the layer.
fn ternarized(
    float: &FoldedModel,
    o: &TntOptions,
) -> Result<(FoldedModel, BTreeMap<String, TernaryLayer>)> {
    let mut model = float.clone();
    let mut ternary = BTreeMap::new();
    for m in model.mac_modules_mut() {
        if let Some(i) = m.weight.iter().position(|w| !w.is_finite()) {
            return Err(MethodError::Config(format!(
                "method tnt: layer {}: weight {i} is not finite",
                m.name
            )));
        }
        let w32: Vec<f32> = m.weight.iter().map(|&w| w as f32).collect();
        let t = ternarize_layer(&w32, m.geometry, o.granularity, o.scales);
        m.weight = t.values.clone();
        ternary.insert(m.name.clone(), t);
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
