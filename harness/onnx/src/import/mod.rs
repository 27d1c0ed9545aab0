//! Import: an ONNX model lowered to a [`QGraph`] through the engine's `GraphBuilder`.
//!
//! [`import`] picks the dialect: a model qbench exported (`qbench.format` metadata) is read back
//! exactly ([`qbench`](mod@qbench)); any other model is lowered by meaning
//! ([`quantized`](mod@quantized)): QDQ (QuantizeLinear/DequantizeLinear around float ops, as
//! onnxruntime's `quantize_static` writes), QOperator (QLinearConv, QLinearMatMul, ConvInteger,
//! MatMulInteger) and QONNX (Quant, BipolarQuant, Trunc, MultiThreshold).

pub mod qbench;
pub mod quantized;

use qbench_engine::QGraph;

use crate::error::{OnnxError, Result};
use crate::export::FORMAT;
use crate::proto::{GraphProto, ModelProto, NodeProto};

/// Lowers `model` to an engine graph (see the module docs).
pub fn import(model: &ModelProto) -> Result<QGraph> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Model("the model has no graph".into()))?;
    let ours = model
        .metadata_props
        .iter()
        .any(|p| p.key == "qbench.format" && p.value == FORMAT);
    if ours {
        qbench::import(graph)
    } else {
        quantized::import(graph)
    }
}

/// The node being lowered, for errors.
pub struct Ctx<'a> {
    /// Its index in the graph's node list.
    pub position: usize,
    /// The node.
    pub node: &'a NodeProto,
}

impl Ctx<'_> {
    /// An error about `field` of this node.
    pub fn err(&self, field: &str, message: String) -> OnnxError {
        OnnxError::Node {
            position: self.position,
            name: self.node.name.clone(),
            op_type: op_type(self.node),
            field: field.to_string(),
            message,
        }
    }

    /// The node's op is not supported (`detail` says what of it, or is empty).
    pub fn unsupported(&self, detail: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            position: self.position,
            name: if self.node.name.is_empty() {
                self.node.output.first().cloned().unwrap_or_default()
            } else {
                self.node.name.clone()
            },
            op_type: op_type(self.node),
            detail: detail.into(),
        }
    }
}

/// The op type with its domain when not the default.
pub fn op_type(n: &NodeProto) -> String {
    if n.domain.is_empty() || n.domain == "ai.onnx" {
        n.op_type.clone()
    } else {
        format!("{}.{}", n.domain, n.op_type)
    }
}

/// The per-image shape of the graph's single data input (`[N, C, H, W]` or `[N, F]`, any batch
/// dimension): `[C, H, W]` or `[F]`, every size known and positive.
pub fn input_shape(graph: &GraphProto) -> Result<Vec<usize>> {
    let inits: std::collections::HashSet<&str> =
        graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let data: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .collect();
    let [input] = data.as_slice() else {
        return Err(OnnxError::Model(format!(
            "the graph has {} data inputs; qbench takes one image input",
            data.len()
        )));
    };
    let dims = input
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .and_then(|t| t.shape.as_ref())
        .map(|s| s.dim.clone())
        .ok_or_else(|| OnnxError::Model(format!("input `{}` has no tensor shape", input.name)))?;
    if !(dims.len() == 4 || dims.len() == 2) {
        return Err(OnnxError::Model(format!(
            "input `{}` has {} dimensions; qbench takes [N, C, H, W] or [N, F]",
            input.name,
            dims.len()
        )));
    }
    dims[1..]
        .iter()
        .map(|d| match d.dim_value {
            Some(v) if v > 0 && v <= 1 << 28 => Ok(v as usize),
            _ => Err(OnnxError::Model(format!(
                "input `{}`: every dimension but the batch must be a positive size",
                input.name
            ))),
        })
        .collect()
}
