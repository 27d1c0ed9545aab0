//! `int8`: integer-only 8-bit inference as in TFLite/gemmlowp (Jacob et al., CVPR 2018), the strong
//! baseline.
//!
//! - Batch norm and the dataset normalization are folded into the conv/dense layers
//!   ([`super::fold`]); the first layer reads the raw u8 pixel (scale 1, zero point
//!   `round(255 mean)` when it pads, else 0).
//! - Activations: asymmetric u8, `r = S (q - Z)`, range from calibration ([`super::calibrate`]:
//!   `minmax`, `ema` of batch min/max, or `percentile`), widened to contain 0 so real 0 is exact.
//! - Weights: symmetric i8 in `[-127, 127]`, per tensor or (`per_channel: true`) per output
//!   channel. The logits layer always uses one scale, so its i32 logits share one unit.
//! - Bias: i32 at scale `S_in * S_w`. Requantization: the engine's `Requant::FixedPoint` with
//!   `(M0, shift) = quantize_multiplier(S_in * S_w / S_out)` (TFLite's `QuantizeMultiplier`),
//!   then `+ Z_out`, clamped to `[Z_out, 255]` after a ReLU (`[0, 255]` without). Max pools run on
//!   the u8 outputs.
//! - Residual blocks (ResNet): TFLite's ADD. The body's last conv and a projection shortcut each
//!   requantize to u8 with their own scale and zero point; the engine's `Add` with
//!   `AddAlign::FixedPoint` (left shift 20) brings both to a common scale and a `FixedPoint`
//!   requantizer applies the output scale, calibrated on the sum after its ReLU, and the ReLU as
//!   its clamp ([`super::intnet`]).
//! - Optional quantization-aware fine-tuning ([`super::qat`]): straight-through fake quant
//!   in candle, then calibration again.
//! - Fake-quant forward: [`super::intnet::IntMirror`], the exact integer mirror (logit bound 0).

use candle_core::Tensor;
use qbench_engine::WeightKind;
use serde::de::MapAccess;
use serde::{Deserialize, Deserializer, Serialize};

pub use super::act_range::Calibration;
use super::act_range::{
    ActivationCalibration, RangeRule, WithCalibration, calibrate_model,
    deserialize_with_calibration,
};
use super::calibrate::{self, TensorStats};
use super::config::Validate;
use super::fixed_point::{
    OutQuant, QuantWeights, Scheme, activation_params, build, quantize_weights,
};
use super::fold::{FoldedModel, MacModule, fold};
use super::intnet::ReportHead;
use super::qat::{self, Finetune};
use super::{QuantInput, QuantMethod, Quantized};
use crate::error::{MethodError, Result};
use crate::train::TrainObserver;

/// Options of `int8` (YAML keys of the same names, the calibration ones at the top level;
/// unknown keys are errors naming them).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Int8Options {
    /// One weight scale per output channel instead of per tensor (default false).
    pub per_channel: bool,
    /// Activation calibration (keys `calibration`, `ema_decay`, `percentile`,
    /// `calibration_images`, `calibration_batch`).
    #[serde(flatten)]
    pub activations: ActivationCalibration,
    /// Quantization-aware fine-tuning (default: none).
    pub finetune: Finetune,
}

impl WithCalibration for Int8Options {
    const EXPECTING: &'static str = "int8 options";
    const FIELDS: &'static [&'static str] = &[
        "per_channel",
        "calibration",
        "ema_decay",
        "percentile",
        "calibration_images",
        "calibration_batch",
        "finetune",
    ];

    fn calibration_mut(&mut self) -> &mut ActivationCalibration {
        &mut self.activations
    }

    fn read_own<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> std::result::Result<bool, A::Error> {
        match key {
            "per_channel" => self.per_channel = map.next_value()?,
            "finetune" => self.finetune = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for Int8Options {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        deserialize_with_calibration(d)
    }
}

impl Validate for Int8Options {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        self.activations.validate()?;
        self.finetune.validate()
    }
}

/// The `int8` method.
#[derive(Clone, Debug)]
pub struct Int8 {
    /// Its validated options.
    pub options: Int8Options,
}

impl Int8 {
    /// The method with `options`, validated.
    pub fn new(options: Int8Options) -> Result<Self> {
        Ok(Int8 {
            options: super::config::validated("int8", options)?,
        })
    }
}

impl QuantMethod for Int8 {
    fn label(&self) -> String {
        let mut label = String::from("int8 W8A8");
        if self.options.per_channel {
            label.push_str(" per-channel");
        }
        if self.options.finetune.epochs > 0 {
            label.push_str(&format!(" QAT{}", self.options.finetune.epochs));
        }
        label
    }

    fn quantize(&self, input: &QuantInput, observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let o = &self.options;
        let mut model = fold(input.arch, input.params, &input.data.normalization)?;
        let a = &o.activations;
        let scheme = Int8Scheme {
            per_channel: o.per_channel,
            rule: a.rule(),
        };
        let calibrate = |model: &FoldedModel| {
            calibrate_model(
                model,
                input,
                a.calibration_images,
                a.calibration_batch,
                "int8",
            )
        };
        let (mut cal, n) = calibrate(&model)?;
        if o.finetune.epochs > 0 {
            finetune(&mut model, &cal, &scheme, &o.finetune, input, observer)?;
            cal = calibrate(&model)?.0;
        }
        let net = build(&model, &cal, &scheme)?;
        let mut notes = vec![format!(
            "asymmetric u8 activations, symmetric i8 weights per {}; the logits layer per tensor",
            if o.per_channel { "channel" } else { "tensor" }
        )];
        notes.extend(model.notes.iter().cloned());
        net.into_quantized(ReportHead {
            method: "int8",
            label: self.label(),
            config: serde_json::to_value(o).map_err(|e| MethodError::Config(e.to_string()))?,
            calibration: format!(
                "{} over {n} images in batches of {}",
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

/// `int8`'s quantization: symmetric i8 weights, asymmetric u8 activations.
pub struct Int8Scheme {
    /// One weight scale per output channel (except the logits layer).
    pub per_channel: bool,
    /// How activation ranges are estimated.
    pub rule: RangeRule,
}

impl Scheme for Int8Scheme {
    fn method(&self) -> &str {
        "int8"
    }

    fn weights(&self, m: &MacModule, logits: bool) -> Result<QuantWeights> {
        let (weights, scales) =
            quantize_weights(&m.weight, m.out_channels(), 8, self.per_channel && !logits);
        Ok(QuantWeights {
            weights,
            scales,
            kind: WeightKind::Int { bits: 8 },
            path: "int8".into(),
        })
    }

    fn activation(&self, _name: &str, stats: &TensorStats, relu: bool) -> Result<OutQuant> {
        let (lo, hi) = self.rule.range(stats, relu);
        Ok(activation_params(lo, hi, 8))
    }
}

/// Straight-through symmetric 8-bit fake quantization of a weight tensor, one scale per tensor or
/// per output channel (dim 0).
fn fake_quant_weight(w: &Tensor, per_channel: bool) -> Result<Tensor> {
    let o = w.dims()[0];
    let rows = w.detach().reshape((o, ()))?;
    let a = rows.abs()?;
    let max = if per_channel {
        a.max_keepdim(1)?
    } else {
        a.flatten_all()?.max_keepdim(0)?.unsqueeze(0)?
    };
    let scale = ((max + 1e-12)? / 127.0)?;
    let q = rows
        .broadcast_div(&scale)?
        .round()?
        .clamp(-127f32, 127f32)?
        .broadcast_mul(&scale)?
        .reshape(w.shape())?;
    Ok((w + (q - w)?.detach())?)
}

/// Fine-tunes `model`'s folded weights and biases in place (int8 weights, per channel except the
/// logits layer when `per_channel`; activations as `scheme` quantizes them from `cal`).
fn finetune(
    model: &mut FoldedModel,
    cal: &calibrate::Calibration,
    scheme: &Int8Scheme,
    config: &Finetune,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<()> {
    let logits = model.mac_modules().last().map(|m| m.name.clone());
    let per_channel = scheme.per_channel;
    let quant = |m: &MacModule, w: &Tensor| {
        fake_quant_weight(w, per_channel && Some(&m.name) != logits.as_ref())
    };
    qat::finetune(model, cal, scheme, &quant, config, input, observer)
}
