//! Where qbench writes: the results folder and atomic JSON records.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// The results folder: `--results`, else `$QBENCH_RESULTS`, else `results` in the current folder.
pub fn root(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("QBENCH_RESULTS")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("results"))
}

/// Writes `value` as pretty JSON, atomically (a reader never sees half a file).
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising a record")?;
    text.push('\n');
    Ok(qbench_io::write_atomic(path, text)?)
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    Ok(qbench_io::write_atomic(path, text)?)
}
