//! Method names to implementations: the one place a new method is registered.

use super::QuantMethod;
use super::config::RawMethodConfig;
use crate::error::{MethodError, Result};

/// Every registered method name with a one-line description (for `--help` and errors).
pub const METHODS: &[(&str, &str)] = &[(
    "linear",
    "per-tensor symmetric linear k-bit post-training quantization (worked example)",
)];

/// Builds the method a config names, with its options typed and validated.
pub fn build(config: &RawMethodConfig) -> Result<Box<dyn QuantMethod>> {
    match config.method.as_str() {
        "linear" => Ok(Box::new(super::linear::Linear::from_config(config)?)),
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
