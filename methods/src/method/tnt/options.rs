//! Options of `tnt` (YAML keys of the same names; unknown keys are errors naming them).

use serde::de::MapAccess;
use serde::{Deserialize, Deserializer, Serialize};

use super::super::act_range::{
    ActivationCalibration, WithCalibration, deserialize_with_calibration,
};
use super::super::config::Validate;
use crate::method::qat::Finetune;

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

/// Options of `tnt` (the calibration keys, as `int8`'s, at the top level).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TntOptions {
    /// Ternarization granularity (default `per_kernel`, the authors' choice).
    pub granularity: Granularity,
    /// Positive and negative scales or one (default `asymmetric`, the paper's).
    pub scales: Scales,
    /// Activation calibration, as `int8`'s (keys `calibration`, `ema_decay`, `percentile`,
    /// `calibration_images`, `calibration_batch`).
    #[serde(flatten)]
    pub activations: ActivationCalibration,
    /// Optional straight-through fine-tuning, keys as `int8`'s (default: none, the method's point;
    /// experimental, see [`super::finetune`]).
    pub finetune: Finetune,
}

impl Default for TntOptions {
    fn default() -> Self {
        TntOptions {
            granularity: Granularity::PerKernel,
            scales: Scales::Asymmetric,
            activations: ActivationCalibration::default(),
            finetune: Finetune::default(),
        }
    }
}

impl WithCalibration for TntOptions {
    const EXPECTING: &'static str = "tnt options";
    const FIELDS: &'static [&'static str] = &[
        "granularity",
        "scales",
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
            "granularity" => self.granularity = map.next_value()?,
            "scales" => self.scales = map.next_value()?,
            "finetune" => self.finetune = map.next_value()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl<'de> Deserialize<'de> for TntOptions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        deserialize_with_calibration(d)
    }
}

impl Validate for TntOptions {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        self.activations.validate()?;
        self.finetune.validate()
    }
}
