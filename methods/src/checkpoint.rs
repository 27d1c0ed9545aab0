//! Safetensors files for float tensors: atomic writes, sha256 of the exact bytes, and clear errors
//! for files that are not what they claim to be.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use qbench_io::{IoError, sha256_hex, write_atomic};

use crate::error::{MethodError, Result};

/// Saves named tensors as one safetensors file, atomically; returns the file's sha256.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<String> {
    let sorted: BTreeMap<&String, &Tensor> = tensors.iter().collect();
    let bytes = safetensors::serialize(sorted, None).map_err(|e| MethodError::Checkpoint {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes)?;
    Ok(sha256_hex(&bytes))
}

/// Loads every tensor of a safetensors file (converted to f32 on the CPU) and the file's sha256.
pub fn load_tensors(path: &Path) -> Result<(BTreeMap<String, Tensor>, String)> {
    let bytes = std::fs::read(path).map_err(|e| IoError::new("read", path, e))?;
    let bad = |reason: String| MethodError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    let map = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| bad(e.to_string()))?;
    let mut out = BTreeMap::new();
    for (name, t) in map {
        let t = t
            .to_dtype(candle_core::DType::F32)
            .map_err(|e| bad(format!("tensor `{name}`: {e}")))?;
        out.insert(name, t);
    }
    Ok((out, sha256_hex(&bytes)))
}
