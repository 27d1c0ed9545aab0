//! `linear`: per-tensor symmetric linear k-bit post-training quantization, the worked example of
//! `methods/ADDING_A_METHOD.md`.
//!
//! - Batch norm and the dataset normalization are folded into the conv/dense layers
//!   ([`super::fold`]); the first layer reads raw u8 pixels.
//! - Weights: one scale per tensor, `S_w = max |w| / (2^(k-1) - 1)`, integers in
//!   `[-(2^(k-1) - 1), 2^(k-1) - 1]`.
//! - Activations: every hidden layer must end in a ReLU; its output is unsigned k-bit with zero
//!   point 0 and `S_a = max / (2^k - 1)`, the max over `calibration_images` calibration images
//!   ([`super::calibrate`]). Inside a residual block, the body's last layer and a projection
//!   shortcut have no ReLU: their outputs are signed k-bit, zero point 0,
//!   `S_a = max |x| / (2^(k-1) - 1)`; the block's sum (after its ReLU) is unsigned again.
//! - Bias: i32 at scale `S_in * S_w`. Requantization: the engine's `Requant::FixedPoint` with
//!   `(M0, shift) = quantize_multiplier(S_in * S_w / S_out)`, clamp `[0, 2^k - 1]` (the ReLU).
//!   Residual adds: TFLite's ADD, shared with `int8` ([`super::fixed_point`]).
//! - The last layer's i32 accumulators are the logits (scale `S_in * S_w`).
//! - Fake-quant forward: [`super::intnet::IntMirror`], the exact integer mirror (logit bound 0).

use qbench_engine::{DType, WeightKind};
use serde::{Deserialize, Serialize};

use super::act_range::calibrate_model;
use super::calibrate::TensorStats;
use super::config::{Validate, check_range};
use super::fixed_point::{OutQuant, QuantWeights, Scheme, build, quantize_weights};
use super::fold::{MacModule, Module, fold};
use super::intnet::ReportHead;
use super::{QuantInput, QuantMethod, Quantized};
use crate::error::{MethodError, Result};
use crate::train::TrainObserver;

/// Options of `linear` (YAML keys of the same names; unknown keys are errors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearOptions {
    /// Weight and activation bits, 2..=8 (default 8).
    #[serde(default = "default_bits")]
    pub bits: u8,
    /// Calibration images for the activation ranges, 1..=60000 (default 1000; at most the
    /// calibration split is used).
    #[serde(default = "default_calibration_images")]
    pub calibration_images: usize,
}

fn default_bits() -> u8 {
    8
}

fn default_calibration_images() -> usize {
    1000
}

impl Default for LinearOptions {
    fn default() -> Self {
        LinearOptions {
            bits: default_bits(),
            calibration_images: default_calibration_images(),
        }
    }
}

impl Validate for LinearOptions {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        check_range("bits", self.bits, 2, 8)?;
        check_range("calibration_images", self.calibration_images, 1, 60_000)
    }
}

/// The `linear` method.
#[derive(Clone, Debug)]
pub struct Linear {
    /// Its validated options.
    pub options: LinearOptions,
}

impl Linear {
    /// The method with `options`, validated.
    pub fn new(options: LinearOptions) -> Result<Self> {
        Ok(Linear {
            options: super::config::validated("linear", options)?,
        })
    }
}

impl QuantMethod for Linear {
    fn label(&self) -> String {
        format!("linear W{0}A{0}", self.options.bits)
    }

    fn quantize(&self, input: &QuantInput, _observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let bits = self.options.bits;
        let model = fold(input.arch, input.params, &input.data.normalization)?;
        let logits = model.mac_modules().last().map(|m| m.name.clone());
        if let Some(m) = model.modules.iter().find_map(|m| match m {
            Module::Mac(mac) if !mac.relu && Some(&mac.name) != logits.as_ref() => Some(mac),
            _ => None,
        }) {
            return Err(MethodError::Config(format!(
                "method linear: layer {} has no ReLU; linear quantizes hidden activations unsigned",
                m.name
            )));
        }
        let (cal, n) = calibrate_model(
            &model,
            input,
            self.options.calibration_images,
            100,
            "linear",
        )?;
        let net = build(&model, &cal, &LinearScheme { bits })?;
        let mut notes =
            vec!["per-tensor symmetric weights, unsigned activations (zero point 0)".to_string()];
        notes.extend(model.notes.iter().cloned());
        net.into_quantized(ReportHead {
            method: "linear",
            label: self.label(),
            config: serde_json::to_value(&self.options)
                .map_err(|e| MethodError::Config(e.to_string()))?,
            calibration: format!("max over {n} calibration images"),
            finetune_epochs: 0,
            variant: None,
            own_model: None,
            notes,
        })
    }
}

/// `linear`'s quantization: symmetric k-bit weights per tensor, zero-point-0 activations.
struct LinearScheme {
    bits: u8,
}

impl Scheme for LinearScheme {
    fn method(&self) -> &str {
        "linear"
    }

    fn weights(&self, m: &MacModule, _logits: bool) -> Result<QuantWeights> {
        let (weights, scales) = quantize_weights(&m.weight, m.out_channels(), self.bits, false);
        Ok(QuantWeights {
            weights,
            scales,
            kind: WeightKind::Int { bits: self.bits },
            path: "int8".into(),
        })
    }

    fn activation(&self, _name: &str, stats: &TensorStats, relu: bool) -> Result<OutQuant> {
        let bits = self.bits;
        let (top, dtype) = if relu {
            (stats.max.max(0.0), DType::Unsigned { bits })
        } else {
            (stats.abs_max(), DType::Signed { bits })
        };
        let levels = f64::from((1u32 << if relu { bits } else { bits - 1 }) - 1);
        Ok(OutQuant {
            scale: if top > 0.0 { top / levels } else { 1.0 },
            zero_point: 0,
            dtype,
        })
    }
}
