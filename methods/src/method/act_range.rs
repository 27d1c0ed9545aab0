//! Activation ranges from calibration statistics, as the fixed-point methods (`int8`, `tnt`,
//! `linear`) estimate them: min/max, an exponential moving average of batch min/max (Jacob et al.),
//! or percentiles; and the calibration options `int8` and `tnt` share ([`ActivationCalibration`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::QuantInput;
use super::calibrate::{self, FoldedTensors, TensorStats, calibrate};
use super::config::check_range;
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

/// The activation-calibration options `int8` and `tnt` share: YAML keys `calibration`,
/// `ema_decay`, `percentile`, `calibration_images`, `calibration_batch` at the top level of their
/// configs (read by [`deserialize_with_calibration`], since serde's `flatten` does not combine
/// with `deny_unknown_fields`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActivationCalibration {
    /// Activation range estimate (default `ema`).
    pub calibration: Calibration,
    /// EMA decay for `calibration: ema`, in [0, 1) (default 0.9).
    pub ema_decay: f64,
    /// Percentile for `calibration: percentile`, in [50, 100] (default 99.99).
    pub percentile: f64,
    /// Calibration images, 1..=60000 (default 1000; at most the calibration split).
    pub calibration_images: usize,
    /// Images per calibration batch (one EMA step), 1..=4096 (default 100).
    pub calibration_batch: usize,
}

impl Default for ActivationCalibration {
    fn default() -> Self {
        ActivationCalibration {
            calibration: Calibration::Ema,
            ema_decay: 0.9,
            percentile: 99.99,
            calibration_images: 1000,
            calibration_batch: 100,
        }
    }
}

impl ActivationCalibration {
    /// The YAML keys.
    pub const KEYS: [&'static str; 5] = [
        "calibration",
        "ema_decay",
        "percentile",
        "calibration_images",
        "calibration_batch",
    ];

    /// The range rule the options select.
    pub fn rule(&self) -> RangeRule {
        RangeRule::from_options(self.calibration, self.ema_decay, self.percentile)
    }

    /// Range checks; the error names the key.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        let check = |key: &str, v: f64, ok: bool, range: &str| {
            if ok && v.is_finite() {
                Ok(())
            } else {
                Err((key.to_string(), format!("{v} is out of range {range}")))
            }
        };
        check(
            "ema_decay",
            self.ema_decay,
            (0.0..1.0).contains(&self.ema_decay),
            "[0, 1)",
        )?;
        check(
            "percentile",
            self.percentile,
            (50.0..=100.0).contains(&self.percentile),
            "[50, 100]",
        )?;
        check_range("calibration_images", self.calibration_images, 1, 60_000)?;
        check_range("calibration_batch", self.calibration_batch, 1, 4096)
    }

    /// Reads the value of `key` from `map` when `key` is one of [`Self::KEYS`]; returns whether
    /// it was.
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> std::result::Result<bool, A::Error> {
        match key {
            "calibration" => self.calibration = map.next_value()?,
            "ema_decay" => self.ema_decay = map.next_value()?,
            "percentile" => self.percentile = map.next_value()?,
            "calibration_images" => self.calibration_images = map.next_value()?,
            "calibration_batch" => self.calibration_batch = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Method options that hold an [`ActivationCalibration`] whose keys sit at the top level of their
/// YAML mapping next to the method's own keys.
pub trait WithCalibration: Default {
    /// What the mapping is, for type errors (`int8 options`).
    const EXPECTING: &'static str;
    /// Every accepted key, the shared ones included (listed in unknown-key errors).
    const FIELDS: &'static [&'static str];
    /// The embedded calibration options.
    fn calibration_mut(&mut self) -> &mut ActivationCalibration;
    /// Reads the value of one of the method's own keys; returns false for an unknown key.
    fn read_own<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> std::result::Result<bool, A::Error>;
}

/// Deserializes `T` from a mapping: missing keys keep `T::default()`, the shared calibration keys
/// go to its [`ActivationCalibration`], an unknown key is an error naming it. Values are read
/// from the deserializer itself, so YAML type errors keep their key path (`percentile: invalid
/// type ...`).
pub fn deserialize_with_calibration<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: WithCalibration,
{
    struct Fields<T>(PhantomData<T>);
    impl<'de, T: WithCalibration> Visitor<'de> for Fields<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(T::EXPECTING)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<T, A::Error> {
            let mut out = T::default();
            while let Some(key) = map.next_key::<String>()? {
                if !out.calibration_mut().read(&key, &mut map)? && !out.read_own(&key, &mut map)? {
                    return Err(de::Error::unknown_field(&key, T::FIELDS));
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Fields(PhantomData))
}
