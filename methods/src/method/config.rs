//! Method configuration from YAML: typed, validated, and with errors that name the key.
//!
//! A method config is a YAML mapping with a `method:` key naming the method; the other keys are the
//! method's options, deserialized into its own options struct with `#[serde(deny_unknown_fields)]`
//! (so an unknown key is an error naming it) and then range-checked by [`Validate`].
//!
//! ```yaml
//! method: linear
//! bits: 8
//! ```

use std::path::Path;

use qbench_io::IoError;
use serde::de::DeserializeOwned;

use crate::error::{MethodError, Result};

/// A method's name and its still-untyped options.
#[derive(Clone, Debug)]
pub struct RawMethodConfig {
    /// The `method:` key.
    pub method: String,
    /// All other keys.
    pub options: serde_yaml_ng::Mapping,
    /// Where it came from (a file path or `<inline>`), for errors.
    pub source: String,
}

/// A range or consistency check of typed options. The error names the offending key.
pub trait Validate {
    /// Returns `Err((key, message))` for the first unusable value.
    fn validate(&self) -> std::result::Result<(), (String, String)>;
}

/// `options` after its range checks, for callers that build options in Rust; the error names the
/// method and the key, as a YAML config's would.
pub fn validated<T: Validate>(method: &str, options: T) -> Result<T> {
    options
        .validate()
        .map_err(|(k, m)| MethodError::Config(format!("method {method}: key `{k}`: {m}")))?;
    Ok(options)
}

impl RawMethodConfig {
    /// Parses YAML text; `source` names it in errors.
    pub fn from_yaml(text: &str, source: &str) -> Result<Self> {
        let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text)
            .map_err(|e| MethodError::Config(format!("{source}: {e}")))?;
        let serde_yaml_ng::Value::Mapping(mut map) = value else {
            return Err(MethodError::Config(format!(
                "{source}: a method config must be a mapping with a `method:` key"
            )));
        };
        let method = match map.remove("method") {
            Some(serde_yaml_ng::Value::String(s)) => s,
            Some(_) => {
                return Err(MethodError::Config(format!(
                    "{source}: key `method` must be a string"
                )));
            }
            None => {
                return Err(MethodError::Config(format!(
                    "{source}: key `method` is missing"
                )));
            }
        };
        Ok(RawMethodConfig {
            method,
            options: map,
            source: source.to_string(),
        })
    }

    /// Reads and parses a YAML file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| IoError::new("read", path, e))?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// The options as the method's typed struct, validated. Unknown keys, wrong types and values
    /// out of range are errors naming the key and the file.
    pub fn typed<T: DeserializeOwned + Validate>(&self) -> Result<T> {
        // Deserializing from text (not from a `Value`) keeps the key path in type errors,
        // e.g. "bits: invalid type: string \"eight\", expected u8".
        let text = serde_yaml_ng::to_string(&self.options)
            .map_err(|e| MethodError::Config(format!("{}: {e}", self.source)))?;
        let typed: T = serde_yaml_ng::from_str(&text).map_err(|e| {
            MethodError::Config(format!("{} (method {}): {e}", self.source, self.method))
        })?;
        typed.validate().map_err(|(key, message)| {
            MethodError::Config(format!(
                "{} (method {}): key `{key}`: {message}",
                self.source, self.method
            ))
        })?;
        Ok(typed)
    }
}

/// Checks that `value` of `key` lies in `lo..=hi`.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    lo: T,
    hi: T,
) -> std::result::Result<(), (String, String)> {
    if value < lo || value > hi {
        return Err((
            key.to_string(),
            format!("{value} is out of range {lo}..={hi}"),
        ));
    }
    Ok(())
}
