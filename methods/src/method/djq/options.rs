//! DJQ options as configured in YAML, with range checks naming the key.

use serde::{Deserialize, Serialize};

use crate::method::config::{Validate, check_range};

/// How activation ranges are taken from calibration statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationKind {
    /// The largest magnitude seen.
    Minmax,
    /// A percentile of the magnitudes seen (clips rare outliers).
    Percentile,
    /// The power-of-two range with the least squared quantization error over the magnitudes
    /// seen (clipping traded against rounding; matters most at 2-4 bits).
    Mse,
}

/// How a weight exponent is chosen from the weights it scales.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightRange {
    /// The largest exponent that keeps the largest magnitude in range (no weight clips).
    #[default]
    Max,
    /// Of that exponent and the three finer ones, the one with the least squared quantization
    /// error (a few large weights clip so the many small ones keep their resolution; at 2 bits
    /// the max rule rounds most weights to zero).
    Mse,
}

impl WeightRange {
    /// True for the default (kept out of the serialized config, so existing hashes stay).
    pub fn is_max(&self) -> bool {
        *self == WeightRange::Max
    }
}

/// Calibration settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalibrationOptions {
    /// Range statistic.
    pub kind: CalibrationKind,
    /// Percentile of `|x|` for `kind: percentile`, in (50, 100].
    pub percentile: f64,
    /// Calibration images (the first ones of `calib_idx`).
    pub images: usize,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        CalibrationOptions {
            kind: CalibrationKind::Minmax,
            percentile: 99.99,
            images: 1024,
        }
    }
}

/// Fine-tuning settings (straight-through estimators on the folded, quantized model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneOptions {
    /// Passes over `train_idx`; 0 is plain post-training quantization.
    pub epochs: usize,
    /// Peak AdamW learning rate (cosine decay to zero).
    pub lr: f64,
    /// Images per step.
    pub batch_size: usize,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        FinetuneOptions {
            epochs: 0,
            lr: 1e-4,
            batch_size: 64,
        }
    }
}

/// All DJQ options. Every key is optional; the defaults are W8A8, per tensor, min/max over 1024
/// images, unified modules, no fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DjqOptions {
    /// Weight bits, 2..=8.
    pub weight_bits: u8,
    /// Activation bits, 2..=8.
    pub activation_bits: u8,
    /// Per-output-channel weight exponents (the last layer and residual-join layers stay per
    /// tensor, see the module docs).
    pub per_channel: bool,
    /// Weight exponent rule (`max` by default).
    #[serde(skip_serializing_if = "WeightRange::is_max")]
    pub weight_range: WeightRange,
    /// Calibration.
    pub calibration: CalibrationOptions,
    /// Unified modules (one requantization per module); `false` is the ablation that
    /// requantizes after every operation.
    pub unified: bool,
    /// Fine-tuning.
    pub finetune: FinetuneOptions,
}

impl Default for DjqOptions {
    fn default() -> Self {
        DjqOptions {
            weight_bits: 8,
            activation_bits: 8,
            per_channel: false,
            weight_range: WeightRange::Max,
            calibration: CalibrationOptions::default(),
            unified: true,
            finetune: FinetuneOptions::default(),
        }
    }
}

impl Validate for DjqOptions {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        check_range("weight_bits", self.weight_bits, 2, 8)?;
        check_range("activation_bits", self.activation_bits, 2, 8)?;
        let p = self.calibration.percentile;
        if !(p > 50.0 && p <= 100.0) {
            return Err((
                "calibration.percentile".into(),
                format!("{p} is out of range (50, 100]"),
            ));
        }
        check_range("calibration.images", self.calibration.images, 1, 1 << 20)?;
        check_range("finetune.epochs", self.finetune.epochs, 0, 1000)?;
        let lr = self.finetune.lr;
        if !(lr > 0.0 && lr.is_finite() && lr <= 1.0) {
            return Err(("finetune.lr".into(), format!("{lr} is out of range (0, 1]")));
        }
        check_range("finetune.batch_size", self.finetune.batch_size, 1, 1 << 16)?;
        Ok(())
    }
}
