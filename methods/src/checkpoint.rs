//! Safetensors files for float tensors: atomic writes, sha256 of the exact bytes, and clear errors
//! for files that are not what they claim to be.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use candle_core::{Device, Tensor};
use sha2::{Digest, Sha256};

use crate::error::{MethodError, Result};

/// Hex sha256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk, then
/// renamed over the target, so a reader never sees a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| MethodError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

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
    let bytes = std::fs::read(path).map_err(|e| MethodError::Io {
        path: path.display().to_string(),
        source: e,
    })?;
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
