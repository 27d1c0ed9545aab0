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
    /// A file could not be read, written or run (the message names it and the reason).
    #[error(transparent)]
    Io(#[from] qbench_io::IoError),
    /// An EDA tool ran but failed; `detail` holds its exit status and the tail of its log.
    #[error("{tool} failed: {detail}")]
    ToolFailed {
        /// Binary name.
        tool: String,
        /// What went wrong (exit status, log tail, log path).
        detail: String,
    },
    /// A Liberty or cell-model file is missing.
    #[error("library file {path} not found: install `{package}`")]
    MissingLibrary {
        /// The missing file.
        path: PathBuf,
        /// The Debian package (or hint) that provides it.
        package: String,
    },
    /// A library file given by path (not the default library) does not exist.
    #[error("library file {path} does not exist (a Liberty or cell-model file given by path)")]
    NoSuchLibrary {
        /// The path given.
        path: PathBuf,
    },
    /// A tool's output could not be understood (a Yosys report, a simulator line, a VCD).
    #[error("cannot parse {what} in {path}: {detail}")]
    Parse {
        /// What was being read (e.g. `yosys stat report`).
        what: String,
        /// The file (or log) it came from.
        path: PathBuf,
        /// The offending line or reason.
        detail: String,
    },
    /// A unit or vector set was used in a way it does not support.
    #[error("unit {unit}: {detail}")]
    Unit {
        /// The unit's name.
        unit: String,
        /// What is wrong.
        detail: String,
    },
    /// The engine rejected a graph built for reference values or operand capture.
    #[error("engine: {0}")]
    Engine(#[from] qbench_engine::EngineError),
    /// An operation of a graph has no hardware unit to cost it (energy per inference).
    #[error("no hardware unit for operation `{kind}`: {detail}")]
    UnmappedOp {
        /// The operation kind (e.g. `mac:wint16_au8`).
        kind: String,
        /// Why it has no unit.
        detail: String,
    },
    /// Several EDA tools are missing; the message names every Debian package to install.
    #[error("missing EDA tools {tools}: install them with `sudo apt-get install {packages}`")]
    MissingTools {
        /// The missing binaries, comma separated.
        tools: String,
        /// The Debian packages, space separated.
        packages: String,
    },
    /// A flow setting is out of range.
    #[error("hardware flow setting `{field}`: {detail}")]
    Config {
        /// The setting (e.g. `clock_mhz`).
        field: String,
        /// What is wrong.
        detail: String,
    },
}

/// Result with [`HwError`].
pub type Result<T> = std::result::Result<T, HwError>;
