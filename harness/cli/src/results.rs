//! Where qbench writes: the results folder and atomic JSON records.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// The results folder: `--results`, else `$QBENCH_RESULTS`, else `results` in the current folder.
/// The first folder a command resolves is also [`chosen_root`] for the rest of the process.
pub fn root(explicit: Option<&Path>) -> PathBuf {
    let root = explicit
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os("QBENCH_RESULTS")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("results"));
    let _ = CHOSEN.set(root.clone());
    root
}

static CHOSEN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The results folder this command works in (the one [`root`] resolved first), for what lives
/// there without being handed the folder: the generated datasets under `data/`.
pub fn chosen_root() -> PathBuf {
    CHOSEN.get().cloned().unwrap_or_else(|| root(None))
}

/// Writes `value` as pretty JSON, atomically (a reader never sees half a file).
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).context("serialising a record")?;
    text.push('\n');
    Ok(qbench_io::write_atomic(path, text)?)
}

/// Writes `value` as pretty JSON sealed with the sha256 of its content
/// ([`qbench_io::seal_json`]), atomically: a record whose figures are published.
pub fn write_sealed(path: &Path, value: &impl Serialize) -> Result<()> {
    let text =
        qbench_io::seal_json(value).with_context(|| format!("sealing {}", path.display()))?;
    Ok(qbench_io::write_atomic(path, text)?)
}

/// Reads a record written by [`write_sealed`]; an edited or damaged file (its seal does not
/// match) is an error naming it.
pub fn read_sealed<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).map_err(|e| qbench_io::IoError::new("read", path, e))?;
    Ok(qbench_io::open_sealed(&text, path)?)
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    Ok(qbench_io::write_atomic(path, text)?)
}
