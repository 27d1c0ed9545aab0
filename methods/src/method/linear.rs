//! `linear`: per-tensor symmetric linear k-bit post-training quantization, the worked example of
//! `methods/ADDING_A_METHOD.md`.
//!
//! - Batch norm and the dataset normalization are folded into the conv/dense layers
//!   ([`super::affine::fold`]); the first layer reads raw u8 pixels.
//! - Weights: one scale per tensor, `S_w = max |w| / (2^(k-1) - 1)`, integers in
//!   `[-(2^(k-1) - 1), 2^(k-1) - 1]`.
//! - Activations: every hidden layer must end in a ReLU; its output is unsigned k-bit with zero
//!   point 0 and `S_a = max / (2^k - 1)`, the max over `calibration_images` calibration images.
//! - Bias: i32 at scale `S_in * S_w`. Requantization: the engine's `Requant::FixedPoint` with
//!   `(M0, shift) = quantize_multiplier(S_in * S_w / S_out)`, clamp `[0, 2^k - 1]` (the ReLU).
//! - The last layer's i32 accumulators are the logits (scale `S_in * S_w`).
//! - Fake-quant forward: [`super::intnet::IntMirror`], the exact integer mirror (logit bound 0).

use serde::{Deserialize, Serialize};

use super::affine::fold;
use super::config::{RawMethodConfig, Validate, check_range};
use super::intnet::{IntMirror, IntNet, OutQuant, quantize_module, quantize_weights};
use super::ranges::{RangeRule, activation_ranges};
use super::{MethodReport, QuantInput, QuantMethod, Quantized};
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

    /// The method a YAML config describes (`method: linear`).
    pub fn from_config(config: &RawMethodConfig) -> Result<Self> {
        Ok(Linear {
            options: config.typed()?,
        })
    }
}

impl QuantMethod for Linear {
    fn label(&self) -> String {
        format!("linear W{0}A{0}", self.options.bits)
    }

    fn quantize(&self, input: &QuantInput, _observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let bits = self.options.bits;
        let model = fold(
            input.arch,
            input.params,
            &input.data.normalization,
            "linear",
        )?;
        if let Some(m) = model.modules.iter().rev().skip(1).find(|m| !m.relu) {
            return Err(MethodError::Config(format!(
                "method linear: layer {} has no ReLU; linear quantizes hidden activations unsigned",
                m.name
            )));
        }
        let n = self.options.calibration_images.min(input.calib_idx.len());
        let calib = &input.calib_idx[..n];
        let ranges = activation_ranges(&model, input.data, calib, 100, RangeRule::MinMax)?;
        let (mut in_scale, mut in_zp) = (1.0, model.input_zero_point);
        let mut layers = Vec::new();
        let mut logit_scale = 1.0;
        for (i, m) in model.modules.iter().enumerate() {
            let w = quantize_weights(&m.weight, m.kind.out_channels(), bits, false);
            let out = ranges.get(i).map(|&(_, hi)| OutQuant {
                scale: if hi > 0.0 {
                    hi / f64::from((1u32 << bits) - 1)
                } else {
                    1.0
                },
                zero_point: 0,
                bits,
            });
            let (layer, acc_scale) = quantize_module(m, in_scale, in_zp, w, bits, out)?;
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
        let report = MethodReport {
            method: "linear".into(),
            label: self.label(),
            config: serde_json::to_value(&self.options)
                .map_err(|e| MethodError::Config(e.to_string()))?,
            layers: net.layer_reports(),
            quant_ops: net.requant_ops(),
            calibration: format!("max over {n} calibration images"),
            finetune_epochs: 0,
            notes: vec!["per-tensor symmetric weights, unsigned activations (zero point 0)".into()],
        };
        Ok(Quantized {
            graph,
            fake_quant: Box::new(IntMirror::new(net)?),
            report,
        })
    }
}
