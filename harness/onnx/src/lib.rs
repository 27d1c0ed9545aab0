//! ONNX import and export of qbench integer graphs.
//!
//! - [`export()`]: a [`QGraph`] as an ONNX model computing the engine's exact integers
//!   (QOperator integer ops; QONNX `MultiThreshold` for BNN/QNN requantizers).
//! - [`import`](mod@import): ONNX models (qbench's own export, QDQ, QOperator, QONNX) lowered to a
//!   [`QGraph`] through the engine's `GraphBuilder`.
//! - [`proto`]: the ONNX protobuf messages (hand-written `prost` structs of `onnx.proto`).

#![warn(missing_docs)]

pub mod crosscheck;
pub mod emit;
pub mod error;
pub mod export;
pub mod import;
pub mod proto;
pub mod python;
pub mod qlinear;
pub mod tensor;

use std::path::Path;

use prost::Message;

pub use crosscheck::{CrossCheck, crosscheck, crosscheck_form};
pub use error::{OnnxError, Result};
pub use export::{Form, Provenance, export, export_form};
pub use import::import;
pub use proto::ModelProto;

use qbench_engine::QGraph;

/// Encodes a model as ONNX protobuf bytes.
pub fn to_bytes(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Decodes ONNX protobuf bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<ModelProto> {
    ModelProto::decode(bytes).map_err(|e| OnnxError::Decode(e.to_string()))
}

/// Exports `graph` to the ONNX file `path` (written atomically); `sha256` is the graph file's hash.
pub fn export_file(
    graph: &QGraph,
    sha256: &str,
    provenance: &Provenance,
    path: &Path,
) -> Result<()> {
    let model = export(graph, sha256, provenance)?;
    qbench_io::write_atomic(path, to_bytes(&model))?;
    Ok(())
}

/// Reads an ONNX file.
pub fn read_model(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|e| qbench_io::IoError::new("read", path, e))?;
    from_bytes(&bytes)
}
