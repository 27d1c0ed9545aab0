//! Errors of the methods crate.

/// Everything that can go wrong while building, training, saving or quantizing a model.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// A tensor computation failed (shape mismatch inside candle, for example).
    #[error("tensor operation failed: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The integer engine rejected a graph or an input.
    #[error("integer engine: {0}")]
    Engine(#[from] qbench_engine::EngineError),
    /// Reading or writing a file failed (the message names it and the reason).
    #[error(transparent)]
    Io(#[from] qbench_io::IoError),
    /// A checkpoint file does not match the model or is not a valid safetensors file.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A parameter the model needs is absent.
    #[error("parameter `{0}` is missing")]
    MissingParameter(String),
    /// The architecture is inconsistent.
    #[error(transparent)]
    Architecture(#[from] crate::model::arch::ArchError),
    /// A configuration value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Training was interrupted by the caller (Ctrl-C); the last checkpoint is intact.
    #[error("interrupted; resume from the last checkpoint")]
    Interrupted,
}

/// Result with [`MethodError`].
pub type Result<T, E = MethodError> = std::result::Result<T, E>;
