//! `bnn`: Binarized Neural Networks (Courbariaux, Hubara et al. 2016, arXiv 1602.02830).
//!
//! Weights and hidden activations are +-1 (`sign`, `sign(0) = +1`); latent real weights are
//! clipped to `[-1, 1]` after every update; the straight-through estimator passes the gradient
//! where `|x| <= 1`. Every hidden layer is followed by batch norm; the first layer takes the u8
//! pixels (an integer layer with +-1 weights), the last produces integer scores. At inference
//! batch norm + sign is one integer threshold per channel (flipped where gamma < 0, the layer bias
//! included), and the hidden layers run on the engine's xnor-popcount kernels. Details and the
//! choices that are qbench's own (cross-entropy instead of the paper's squared hinge loss, one
//! learned score scale, AdamW without per-layer learning-rate scaling) are in
//! [`super::lowbit`].

use serde::{Deserialize, Serialize};

use super::config::Validate;
use super::lowbit::quant::{ActQuant, WeightQuant};
use super::lowbit::train::Precision;
use super::lowbit::{FLOAT_MODEL, Run, TrainOptions, quantize, validate_model};
use super::{QuantInput, QuantMethod, Quantized};
use crate::error::Result;
use crate::train::TrainObserver;

/// Options of `bnn` (YAML keys of the same names; unknown keys are errors).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BnnOptions {
    /// `float` (default): binarize the trained float model (its architecture, starting from its
    /// parameters); or a built-in architecture name (e.g. `mlp`, `bnn-mlp`, `bnn-vgg`) trained
    /// from scratch.
    #[serde(default = "default_model")]
    pub model: String,
    /// Training settings.
    #[serde(default)]
    pub train: TrainOptions,
}

fn default_model() -> String {
    FLOAT_MODEL.into()
}

impl Default for BnnOptions {
    fn default() -> Self {
        BnnOptions {
            model: default_model(),
            train: TrainOptions::default(),
        }
    }
}

impl Validate for BnnOptions {
    fn validate(&self) -> std::result::Result<(), (String, String)> {
        validate_model(&self.model)?;
        self.train.validate()
    }
}

/// The BNN method with validated options.
pub struct Bnn {
    /// Options.
    pub options: BnnOptions,
}

impl Bnn {
    /// Builds the method from options, validating them as a config would.
    pub fn new(options: BnnOptions) -> Result<Self> {
        options.validate().map_err(|(key, message)| {
            crate::error::MethodError::Config(format!("method bnn: key `{key}`: {message}"))
        })?;
        Ok(Bnn { options })
    }
}

impl QuantMethod for Bnn {
    fn label(&self) -> String {
        if self.options.model == FLOAT_MODEL {
            "BNN".into()
        } else {
            format!("BNN {}", self.options.model)
        }
    }

    fn quantize(&self, input: &QuantInput, observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let run = Run {
            method: "bnn",
            label: self.label(),
            config: serde_json::to_value(&self.options).unwrap_or(serde_json::Value::Null),
            model: &self.options.model,
            train: &self.options.train,
        };
        let prec = Precision {
            weights: WeightQuant::Binary,
            activations: ActQuant::Sign,
        };
        quantize(&run, prec, input, observer)
    }
}
