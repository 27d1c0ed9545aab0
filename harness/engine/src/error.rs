//! The engine's error type: every failure names what went wrong and, where there is one, the node and
//! field at fault, so a bad graph file or a bad builder call can be fixed without a debugger.

/// Everything that can go wrong while building, validating, loading, saving or running a graph.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A node's parameters or connections are inconsistent.
    #[error("node {index} ({name}): {field}: {message}")]
    Node {
        /// Position of the node in the graph (topological order).
        index: usize,
        /// The node's name.
        name: String,
        /// The parameter, tensor or input at fault.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// A whole-graph rule is broken (no input, several outputs, duplicate names...).
    #[error("graph: {0}")]
    Graph(String),
    /// A graph file is malformed: not safetensors, unknown format or version, bad header JSON,
    /// missing or extra tensors.
    #[error("graph file: {0}")]
    Format(String),
    /// Reading or writing a file failed (the message names it and the reason).
    #[error(transparent)]
    Io(#[from] qbench_io::IoError),
    /// The input handed to an executor or to `evaluate` does not fit the graph.
    #[error("input: {0}")]
    Input(String),
}

impl EngineError {
    /// Builds a [`EngineError::Node`] error.
    pub fn node(
        index: usize,
        name: &str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        EngineError::Node {
            index,
            name: name.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Result alias used throughout the engine.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
