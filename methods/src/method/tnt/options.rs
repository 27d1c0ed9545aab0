//! Options of `tnt` (YAML keys of the same names; unknown keys are errors naming them).

use serde::{Deserialize, Serialize};

use super::super::act_range::{Calibration, RangeRule};
use super::super::config::{Validate, check_range};
use super::super::int8::Finetune;

/// Which weights share one ternarization (one `k*` and one pair of scales).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// Each 2-D kernel slice `w[o][c]` of a convolution, as the authors' code; dense layers, whose
    /// rows have no 2-D slices, are ternarized per layer, also as the authors do.
    PerKernel,
    /// Each output channel (a conv filter `w[o]` or a dense row).
    PerChannel,
    /// The whole layer.
    PerLayer,
}

impl Granularity {
    /// The YAML spelling (`per_kernel`, ...), for labels and notes.
    pub fn name(self) -> &'static str {
        match self {
            Granularity::PerKernel => "per_kernel",
            Granularity::PerChannel => "per_channel",
            Granularity::PerLayer => "per_layer",
        }
    }
}

/// How many scales one ternarization has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scales {
    /// The paper's `alpha+` (mean selected positive weight) and `alpha-` (mean selected negative
    /// magnitude).
    Asymmetric,
    /// One `alpha`, the mean selected magnitude (the least-squares scale of the same codes). Lets
    /// per-channel and per-layer ternarizations fold into the requantizer (the ternary path).
    Symmetric,
}

/// Options of `tnt`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TntOptions {
    /// Ternarization granularity (default `per_kernel`, the authors' choice).
    #[serde(default = "default_granularity")]
    pub granularity: Granularity,
    /// Positive and negative scales or one (default `asymmetric`, the paper's).
    #[serde(default = "default_scales")]
    pub scales: Scales,
    /// Activation range estimate, as `int8`'s (default `ema`).
    #[serde(default = "default_calibration")]
    pub calibration: Calibration,
    /// EMA decay for `calibration: ema`, in [0, 1) (default 0.9).
    #[serde(default = "default_ema_decay")]
    pub ema_decay: f64,
    /// Percentile for `calibration: percentile`, in [50, 100] (default 99.99).
    #[serde(default = "default_percentile")]
    pub percentile: f64,
    /// Calibration images, 1..=60000 (default 1000; at most the calibration split).
    #[serde(default = "default_calibration_images")]
    pub calibration_images: usize,
    /// Images per calibration batch (one EMA step), 1..=4096 (default 100).
    #[serde(default = "default_calibration_batch")]
    pub calibration_batch: usize,
    /// Optional straight-through fine-tuning, keys as `int8`'s (default: none, the method's point;
    /// experimental, see [`super::finetune`]).
    #[serde(default)]
    pub finetune: Finetune,
}

fn default_granularity() -> Granularity {
    Granularity::PerKernel
}
fn default_scales() -> Scales {
    Scales::Asymmetric
}
fn default_calibration() -> Calibration {
    Calibration::Ema
}
fn default_ema_decay() -> f64 {
    0.9
}
fn default_percentile() -> f64 {
    99.99
}
fn default_calibration_images() -> usize {
    1000
}
fn default_calibration_batch() -> usize {
    100
}

impl Default for TntOptions {
    fn default() -> Self {
        TntOptions {
            granularity: default_granularity(),
            scales: default_scales(),
            calibration: default_calibration(),
            ema_decay: default_ema_decay(),
            percentile: default_percentile(),
            calibration_images: default_calibration_images(),
            calibration_batch: default_calibration_batch(),
            finetune: Finetune::default(),
        }
    }
}

impl Validate for TntOptions {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        if !(self.ema_decay.is_finite() && (0.0..1.0).contains(&self.ema_decay)) {
            return Err((
                "ema_decay".into(),
                format!("{} is out of range [0, 1)", self.ema_decay),
            ));
        }
        if !(self.percentile.is_finite() && (50.0..=100.0).contains(&self.percentile)) {
            return Err((
                "percentile".into(),
                format!("{} is out of range [50, 100]", self.percentile),
            ));
        }
        check_range("calibration_images", self.calibration_images, 1, 60_000)?;
        check_range("calibration_batch", self.calibration_batch, 1, 4096)?;
        check_range("finetune.epochs", self.finetune.epochs, 0, 100)?;
        check_range("finetune.batch_size", self.finetune.batch_size, 2, 4096)?;
        if !(self.finetune.lr > 0.0 && self.finetune.lr <= 1.0) {
            return Err((
                "finetune.lr".into(),
                format!("{} is out of range (0, 1]", self.finetune.lr),
            ));
        }
        Ok(())
    }
}

impl TntOptions {
    /// The range rule the calibration options select.
    pub fn range_rule(&self) -> RangeRule {
        RangeRule::from_options(self.calibration, self.ema_decay, self.percentile)
    }
}
