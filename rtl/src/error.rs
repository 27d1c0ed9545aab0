//! The hardware flow's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the hardware flow.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// An EDA tool is not installed; the message names the Debian package that provides it.
    #[error("{tool} not found on PATH: install it with `sudo apt-get install {package}`")]
    MissingTool {
        /// Binary name (e.g. `yosys`).
        tool: String,
        /// Debian package that provides it.
        package: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Result with [`HwError`].
pub type Result<T> = std::result::Result<T, HwError>;
