//! Errors of this crate; each names the file, field or figure it concerns.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading input or writing outputs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed (the message names it and the reason).
    #[error(transparent)]
    Io(#[from] qbench_io::IoError),
    /// A JSON input file is malformed (serde's message carries line and column).
    #[error("{}: {source}", path.display())]
    Json {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: serde_json::Error,
    },
    /// The claims YAML is malformed (the message carries the field path, line and column).
    #[error("{}: {reason}", path.display())]
    Claims {
        /// The claims file.
        path: PathBuf,
        /// What is wrong and where.
        reason: String,
    },
    /// A field of the input holds a value the renderers cannot use.
    #[error("input field {field}: {reason}")]
    Input {
        /// Path of the field, e.g. `methods[2] (DJQ W4A4).area_um2`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No usable font was found for the plots.
    #[error(
        "no font for the plots: {reason}. Install the Debian package fonts-dejavu-core, \
         or point QBENCH_FONT at a .ttf file"
    )]
    Font {
        /// What was tried.
        reason: String,
    },
    /// Drawing a figure failed.
    #[error("drawing {figure}: {reason}")]
    Plot {
        /// The figure's file stem.
        figure: String,
        /// The backend's message.
        reason: String,
    },
    /// Encoding a table (CSV, Parquet) or image (PNG) failed.
    #[error("encoding {what}: {reason}")]
    Encode {
        /// The output concerned.
        what: String,
        /// The encoder's message.
        reason: String,
    },
}
