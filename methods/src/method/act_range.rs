//! Activation ranges from calibration statistics, as the fixed-point methods (`int8`, `tnt`,
//! `linear`) estimate them: min/max, an exponential moving average of batch min/max (Jacob et al.),
//! or percentiles.

use serde::{Deserialize, Serialize};

use super::QuantInput;
use super::calibrate::{self, FoldedTensors, TensorStats, calibrate};
use super::fold::FoldedModel;
use crate::error::{MethodError, Result};

/// How activation ranges are calibrated (the `calibration:` option of `int8` and `tnt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// Min and max over all calibration images.
    Minmax,
    /// Exponential moving average of per-batch min and max (decay `ema_decay`).
    Ema,
    /// The `percentile`-th and `(100 - percentile)`-th percentiles.
    Percentile,
}

/// How a range is estimated from the statistics of one activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeRule {
    /// Smallest and largest value over all calibration images.
    MinMax,
    /// Exponential moving average of each batch's min and max:
    /// `r = decay * r + (1 - decay) * batch`, starting from the first batch.
    Ema {
        /// Weight of the running value, in [0, 1).
        decay: f64,
    },
    /// The `(100 - p)`-th and `p`-th percentiles of all values (to the statistics' histogram
    /// resolution, rounded outward; see [`TensorStats::percentile`]).
    Percentile {
        /// Percentile in [50, 100].
        p: f64,
    },
}

impl RangeRule {
    /// The rule the `calibration`, `ema_decay` and `percentile` options select.
    pub fn from_options(calibration: Calibration, ema_decay: f64, percentile: f64) -> Self {
        match calibration {
            Calibration::Minmax => RangeRule::MinMax,
            Calibration::Ema => RangeRule::Ema { decay: ema_decay },
            Calibration::Percentile => RangeRule::Percentile { p: percentile },
        }
    }

    /// `(lo, hi)` of the activation observed as `stats`, or of `max(x, 0)` when `relu`.
    pub fn range(self, stats: &TensorStats, relu: bool) -> (f64, f64) {
        let (lo, hi) = match self {
            RangeRule::MinMax => (stats.min, stats.max),
            RangeRule::Ema { decay } => stats.ema_range(decay, relu),
            RangeRule::Percentile { p } => (stats.percentile(100.0 - p), stats.percentile(p)),
        };
        if relu {
            (lo.max(0.0), hi.max(0.0))
        } else {
            (lo, hi)
        }
    }

    /// A short description for reports (`min/max`, `EMA (decay 0.9) of batch min/max`, ...).
    pub fn describe(self) -> String {
        match self {
            RangeRule::MinMax => "min/max".into(),
            RangeRule::Ema { decay } => format!("EMA (decay {decay}) of batch min/max"),
            RangeRule::Percentile { p } => format!("{p} percentile"),
        }
    }
}

/// Statistics of `model` over the first `images` calibration images of `input` (at most the
/// calibration split) in batches of `batch`, and the number of images used. An empty calibration
/// split is an error naming `method`.
pub fn calibrate_model(
    model: &FoldedModel,
    input: &QuantInput,
    images: usize,
    batch: usize,
    method: &str,
) -> Result<(calibrate::Calibration, usize)> {
    let n = images.min(input.calib_idx.len());
    if n == 0 {
        return Err(MethodError::Config(format!(
            "method {method}: no calibration images (calib_idx is empty)"
        )));
    }
    let tensors = FoldedTensors::new(model)?;
    let cal = calibrate(model, &tensors, input.data, &input.calib_idx[..n], batch)?;
    Ok((cal, n))
}
