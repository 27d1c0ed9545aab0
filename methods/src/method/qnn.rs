//! `qnn`: Quantized Neural Networks (Hubara et al. 2016, arXiv 1609.07061).
//!
//! k-bit weights and k-bit activations, linear quantization with straight-through estimators:
//! weights `w_bits == 1` are BNN's `sign`, `w_bits >= 2` symmetric narrow-range linear
//! (`clamp(round(w / s), -(2^(k-1) - 1), 2^(k-1) - 1)`, `s = max |w| / (2^(k-1) - 1)` per output
//! channel, one scale for the score layer); activations are unsigned levels
//! `round(clamp(y, 0, 1) (2^a - 1))` of the batch-normalised value. At inference batch norm +
//! activation quantization is `2^a - 1` integer thresholds per channel (the engine's
//! `MultiThreshold`, as FINN does). The first layer reads the u8 pixels; the last produces integer
//! scores. Shared details are in [`super::lowbit`].

use serde::{Deserialize, Serialize};

use super::config::{Validate, check_range};
use super::lowbit::quant::{ActQuant, WeightQuant};
use super::lowbit::train::Precision;
use super::lowbit::{FLOAT_MODEL, Run, TrainOptions, quantize, validate_model};
use super::{QuantInput, QuantMethod, Quantized};
use crate::error::Result;
use crate::train::TrainObserver;

/// Options of `qnn` (YAML keys of the same names; unknown keys are errors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QnnOptions {
    /// Weight bits, 1..=8 (default 2; 1 is binary).
    #[serde(default = "default_bits")]
    pub weight_bits: u8,
    /// Activation bits, 1..=8 (default 2).
    #[serde(default = "default_bits")]
    pub activation_bits: u8,
    /// `float` (default) or a built-in architecture trained from scratch (see `bnn`).
    #[serde(default = "default_model")]
    pub model: String,
    /// Training settings.
    #[serde(default)]
    pub train: TrainOptions,
}

fn default_bits() -> u8 {
    2
}
fn default_model() -> String {
    FLOAT_MODEL.into()
}

impl Validate for QnnOptions {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        check_range("weight_bits", self.weight_bits, 1, 8)?;
        check_range("activation_bits", self.activation_bits, 1, 8)?;
        validate_model(&self.model)?;
        self.train.validate()
    }
}

/// The QNN method with validated options.
pub struct Qnn {
    /// Options.
    pub options: QnnOptions,
}

impl Qnn {
    /// Builds the method from options, validating them as a config would.
    pub fn new(options: QnnOptions) -> Result<Self> {
        options.validate().map_err(|(key, message)| {
            crate::error::MethodError::Config(format!("method qnn: key `{key}`: {message}"))
        })?;
        Ok(Qnn { options })
    }

    fn precision(&self) -> Precision {
        Precision {
            weights: match self.options.weight_bits {
                1 => WeightQuant::Binary,
                bits => WeightQuant::Linear { bits },
            },
            activations: ActQuant::Levels {
                bits: self.options.activation_bits,
            },
        }
    }
}

impl QuantMethod for Qnn {
    fn label(&self) -> String {
        let o = &self.options;
        let model = if o.model == FLOAT_MODEL {
            String::new()
        } else {
            format!(" {}", o.model)
        };
        format!("QNN W{}A{}{model}", o.weight_bits, o.activation_bits)
    }

    fn quantize(&self, input: &QuantInput, observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let run = Run {
            method: "qnn",
            label: self.label(),
            config: serde_json::to_value(&self.options).unwrap_or(serde_json::Value::Null),
            model: &self.options.model,
            train: &self.options.train,
        };
        quantize(&run, self.precision(), input, observer)
    }
}
