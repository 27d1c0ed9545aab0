//! [`OnnxError`]: every way an export or import can fail, each naming what it concerns.

use thiserror::Error;

/// Result with [`OnnxError`].
pub type Result<T> = std::result::Result<T, OnnxError>;

/// An export or import failure.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] qbench_io::IoError),
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model: {0}")]
    Decode(String),
    /// The model as a whole is unusable (no graph, several inputs, ...).
    #[error("ONNX model: {0}")]
    Model(String),
    /// A node uses an operator qbench cannot lower.
    #[error(
        "ONNX node {position} `{name}` (op {op_type}): unsupported{}",
        if detail.is_empty() { String::new() } else { format!(": {detail}") }
    )]
    Unsupported {
        /// Index of the node in the graph's node list.
        position: usize,
        /// The node's name (or its first output when it has none).
        name: String,
        /// The operator type, with its domain when not the default.
        op_type: String,
        /// Why, when the op type is known but this use of it is not.
        detail: String,
    },
    /// A node's attribute, input or constant is out of range or malformed.
    #[error("ONNX node {position} `{name}` (op {op_type}), {field}: {message}")]
    Node {
        /// Index of the node in the graph's node list.
        position: usize,
        /// The node's name.
        name: String,
        /// The operator type.
        op_type: String,
        /// The attribute, input or tensor at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A constant tensor is malformed (size, data type, storage).
    #[error("ONNX tensor `{name}`: {message}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// The engine rejected the graph being built (a node or field out of its range).
    #[error("engine graph: {0}")]
    Engine(#[from] qbench_engine::EngineError),
    /// An engine graph cannot be written in ONNX form.
    #[error("export of node {node}: {message}")]
    Export {
        /// The engine node's name.
        node: String,
        /// Why.
        message: String,
    },
}
