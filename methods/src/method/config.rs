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
//!
//! A config is parsed once, by [`MethodConfig::from_yaml`], [`MethodConfig::from_path`] or
//! [`MethodConfig::from_value`] (through [`super::registry::parse`]): the result holds the method
//! built from its typed options and those options serialized back with every default filled in
//! ([`MethodConfig::options`]). That one value is what a caller hashes, runs and stores, so
//! `bits: 8` written out and the same default left implicit are the same config.

use std::path::Path;
use std::sync::Arc;

use qbench_io::IoError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::QuantMethod;
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
    /// The folder relative paths in the options are taken from: the config file's (or spec's)
    /// folder, empty for the current folder.
    pub base: std::path::PathBuf,
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
        Self::from_value(value, source)
    }

    /// Splits an already parsed YAML value (a mapping with a `method:` key, e.g. one entry of an
    /// experiment spec) into the method name and its options; `source` names it in errors.
    pub fn from_value(value: serde_yaml_ng::Value, source: &str) -> Result<Self> {
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
            base: std::path::PathBuf::new(),
        })
    }

    /// Reads and parses a YAML file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| IoError::new("read", path, e))?;
        let mut raw = Self::from_yaml(&text, &path.display().to_string())?;
        raw.base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(raw)
    }

    /// The options as the method's typed struct, validated. Unknown keys, wrong types and values
    /// out of range are errors naming the key and the file. This is the one typing step of a
    /// config; callers outside the registry want [`MethodConfig`], which keeps its result.
    pub fn typed<T: DeserializeOwned + Validate>(&self) -> Result<T> {
        // Deserializing from text (not from a `Value`) keeps the key path in type errors,
        // e.g. "bits: invalid type: string \"eight\", expected u8". The text never leaves this
        // function: it is how the options are typed, not a second copy of them.
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

/// A method config parsed once: the method built from its typed, validated options, and those
/// options as canonical JSON (every default filled in, keys sorted). Cheap to clone (the method is
/// shared); equal when the method name and the canonical options are equal.
#[derive(Clone)]
pub struct MethodConfig {
    name: String,
    options: serde_json::Value,
    method: Arc<dyn QuantMethod + Send + Sync>,
}

impl MethodConfig {
    /// Types `raw`'s options as `T` (validated, errors naming the key and `raw.source`), builds
    /// the method from them with `build`, and keeps both the method and `T` serialized. Each
    /// registry arm is one call of this.
    pub fn typed<T, M>(raw: &RawMethodConfig, build: impl FnOnce(T) -> Result<M>) -> Result<Self>
    where
        T: DeserializeOwned + Serialize + Validate,
        M: QuantMethod + Send + Sync + 'static,
    {
        let typed: T = raw.typed()?;
        Self::built(raw, typed, build)
    }

    /// [`MethodConfig::typed`] for options a registry arm has typed and completed itself (e.g.
    /// with the hash of a file they name).
    pub fn built<T, M>(
        raw: &RawMethodConfig,
        typed: T,
        build: impl FnOnce(T) -> Result<M>,
    ) -> Result<Self>
    where
        T: Serialize,
        M: QuantMethod + Send + Sync + 'static,
    {
        let options = serde_json::to_value(&typed).map_err(|e| {
            MethodError::Config(format!("{} (method {}): {e}", raw.source, raw.method))
        })?;
        Ok(MethodConfig {
            name: raw.method.clone(),
            options,
            method: Arc::new(build(typed)?),
        })
    }

    /// Parses YAML text (`source` names it in errors) into a built, validated config.
    pub fn from_yaml(text: &str, source: &str) -> Result<Self> {
        super::registry::parse(&RawMethodConfig::from_yaml(text, source)?)
    }

    /// Reads and parses a YAML file into a built, validated config.
    pub fn from_path(path: &Path) -> Result<Self> {
        super::registry::parse(&RawMethodConfig::from_path(path)?)
    }

    /// Parses an already parsed YAML value (a mapping with a `method:` key) into a built,
    /// validated config; `source` names it in errors.
    pub fn from_value(value: serde_yaml_ng::Value, source: &str) -> Result<Self> {
        Self::from_value_in(value, source, Path::new(""))
    }

    /// [`MethodConfig::from_value`] with relative paths in the options taken from `base` (an
    /// experiment spec's folder).
    pub fn from_value_in(value: serde_yaml_ng::Value, source: &str, base: &Path) -> Result<Self> {
        let mut raw = RawMethodConfig::from_value(value, source)?;
        raw.base = base.to_path_buf();
        super::registry::parse(&raw)
    }

    /// The method's registered name (the `method:` key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The typed options serialized as JSON, defaults included: what identifies the config in
    /// hashes and what a result records as its options.
    pub fn options(&self) -> &serde_json::Value {
        &self.options
    }

    /// The method built from the typed options.
    pub fn method(&self) -> &(dyn QuantMethod + Send + Sync) {
        self.method.as_ref()
    }
}

impl PartialEq for MethodConfig {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.options == other.options
    }
}

impl std::fmt::Debug for MethodConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MethodConfig")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
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
