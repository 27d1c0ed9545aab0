//! Method names to implementations: the one place a new method is registered.

use super::QuantMethod;
use super::config::RawMethodConfig;
use crate::error::{MethodError, Result};

/// Every registered method name with a one-line description (for `--help` and errors).
pub const METHODS: &[(&str, &str)] = &[
    (
        "linear",
        "per-tensor symmetric linear k-bit post-training quantization (worked example)",
    ),
    (
        "int8",
        "TFLite/gemmlowp integer-only int8 (Jacob et al. 2018): u8 activations, i8 weights, fixed-point requantization",
    ),
    (
        "djq",
        "DJQ dataflow-based joint quantization: power-of-two scales, unified conv+BN+ReLU modules with one shift requantizer",
    ),
    (
        "tnt",
        "TNT non-retraining ternary weights (Zhang et al. 2019): cosine-similarity ternarization, u8 activations, fixed-point requantization",
    ),
    (
        "bnn",
        "BNN binarized network (Courbariaux, Hubara et al. 2016): +-1 weights and activations, xnor-popcount layers, BN+sign as integer thresholds",
    ),
    (
        "qnn",
        "QNN quantized network (Hubara et al. 2016): k-bit weights and activations trained with STE, BN+quantization as multi-thresholds",
    ),
];

/// Builds the method a config names, with its options typed and validated.
pub fn build(config: &RawMethodConfig) -> Result<Box<dyn QuantMethod>> {
    match config.method.as_str() {
        "linear" => Ok(Box::new(super::linear::Linear::from_config(config)?)),
        "int8" => Ok(Box::new(super::int8::Int8::from_config(config)?)),
        "djq" => Ok(Box::new(super::djq::Djq::new(config.typed()?))),
        "tnt" => Ok(Box::new(super::tnt::Tnt::from_config(config)?)),
        "bnn" => Ok(Box::new(super::bnn::Bnn::from_config(config)?)),
        "qnn" => Ok(Box::new(super::qnn::Qnn::from_config(config)?)),
        other => {
            let known: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
            Err(MethodError::Config(format!(
                "{}: unknown method `{other}`; known methods: {}",
                config.source,
                known.join(", ")
            )))
        }
    }
}
