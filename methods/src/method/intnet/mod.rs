//! The one integer form every method lowers through.
//!
//! A lowering appends nodes to the engine's [`GraphBuilder`] (which infers every shape and checks
//! every parameter as the node is appended), using [`push_mac`] for its conv and dense layers, and
//! wraps the finished graph in an [`IntNet`] with the real value of one logit unit and its layer
//! rows. From there every method gets the same three things: the engine graph, the exact f64
//! mirror of that graph as its fake-quant forward ([`IntMirror`], logit bound 0) and a report
//! whose quantization counts are the engine's own ([`IntNet::into_quantized`]).
//!
//! Requantizers (`Shift`, `FixedPoint`, `Threshold`, `MultiThreshold`), binary, ternary and k-bit
//! weights and residual adds are all engine nodes, so there is no second integer form to keep in
//! step with the engine: a new layer kind is an engine op, a case of [`push_mac`] (or a builder
//! call) in the lowerings that use it, and a case of the mirror.

mod mirror;

pub use mirror::IntMirror;

use qbench_engine::{
    BinaryConv2d, BinaryDense, Conv2d, DType, Dense, GraphBuilder, NodeId, QGraph, WeightKind,
    count_ops,
};

use super::fold::MacGeometry;
use super::{LayerReport, MethodReport, Quantized};
use crate::error::{MethodError, Result};

/// A conv or dense layer in integers: `acc = sum (x - z) * w + bias` in wrapping i32.
#[derive(Clone, Debug, PartialEq)]
pub struct Mac {
    /// Convolution or dense geometry.
    pub geometry: MacGeometry,
    /// Integer weights, `[O][C][k][k]` or `[O][F]`.
    pub weights: Vec<i8>,
    /// What the weight integers mean (`Int { bits }`, `Binary`, `Ternary`).
    pub weight_kind: WeightKind,
    /// Per-output-channel bias in accumulator units, if any.
    pub bias: Option<Vec<i32>>,
    /// Zero point `z` of the input (0 for a binary input).
    pub input_zero_point: i32,
}

/// Appends the engine node(s) of `mac` reading `x`: a `{name}.flatten` first when a dense layer
/// reads a map, then the layer named `name`. A binary (+-1) input selects the xnor-popcount ops
/// and needs binary weights and zero point 0; any other input the integer ops.
pub fn push_mac(b: &mut GraphBuilder, name: &str, mut x: NodeId, mac: Mac) -> Result<NodeId> {
    let Mac {
        geometry,
        weights,
        weight_kind,
        bias,
        input_zero_point,
    } = mac;
    if matches!(geometry, MacGeometry::Dense { .. }) && b.ty(x).is_map() {
        x = b.flatten(&format!("{name}.flatten"), x)?;
    }
    let binary = b.ty(x).dtype == DType::Binary;
    if binary && (weight_kind != WeightKind::Binary || input_zero_point != 0) {
        return Err(MethodError::Config(format!(
            "layer {name}: a binary input needs binary weights and zero point 0, got {weight_kind:?} \
             weights and zero point {input_zero_point}"
        )));
    }
    let id = match geometry {
        MacGeometry::Conv(c) if binary => b.binary_conv2d(
            name,
            x,
            BinaryConv2d {
                in_channels: c.in_channels,
                out_channels: c.out_channels,
                kernel_h: c.kernel,
                kernel_w: c.kernel,
                stride: c.stride,
                pad: c.pad,
                groups: c.groups,
                weights,
                bias,
            },
        )?,
        MacGeometry::Conv(c) => b.conv2d(
            name,
            x,
            Conv2d {
                in_channels: c.in_channels,
                out_channels: c.out_channels,
                kernel_h: c.kernel,
                kernel_w: c.kernel,
                stride: c.stride,
                pad: c.pad,
                groups: c.groups,
                weight_kind,
                input_zero_point,
                weights,
                bias,
            },
        )?,
        MacGeometry::Dense {
            in_features,
            out_features,
        } if binary => b.binary_dense(
            name,
            x,
            BinaryDense {
                in_features,
                out_features,
                weights,
                bias,
            },
        )?,
        MacGeometry::Dense {
            in_features,
            out_features,
        } => b.dense(
            name,
            x,
            Dense {
                in_features,
                out_features,
                weight_kind,
                input_zero_point,
                weights,
                bias,
            },
        )?,
    };
    Ok(id)
}

/// A lowered model: the engine graph, the real value of one logit unit, and how each layer was
/// lowered.
#[derive(Clone, Debug)]
pub struct IntNet {
    /// The validated engine graph.
    pub graph: QGraph,
    /// Real value of one unit of the integer logits.
    pub logit_scale: f64,
    /// One row per conv/dense layer (or unified module), in order.
    pub layers: Vec<LayerReport>,
}

/// What a method says about its result beyond what the [`IntNet`] knows.
pub struct ReportHead {
    /// The method's registry name.
    pub method: &'static str,
    /// Its label in tables.
    pub label: String,
    /// Its validated options as JSON.
    pub config: serde_json::Value,
    /// How activations were calibrated.
    pub calibration: String,
    /// Fine-tuning or training epochs run (0 for post-training quantization).
    pub finetune_epochs: usize,
    /// The structural variant of the method, if it has one (see [`MethodReport::variant`]).
    pub variant: Option<String>,
    /// The architecture the method trained itself, if not the float model's (see
    /// [`MethodReport::own_model`]).
    pub own_model: Option<String>,
    /// Notes for the report.
    pub notes: Vec<String>,
}

impl IntNet {
    /// Finishes `builder` with `logits` as the output node.
    pub fn finish(
        builder: GraphBuilder,
        logits: NodeId,
        logit_scale: f64,
        layers: Vec<LayerReport>,
    ) -> Result<Self> {
        if !(logit_scale.is_finite() && logit_scale > 0.0) {
            return Err(MethodError::Config(format!(
                "logit scale {logit_scale} is not a positive number"
            )));
        }
        Ok(IntNet {
            graph: builder.finish(logits)?,
            logit_scale,
            layers,
        })
    }

    /// The method result of this network: its engine graph, its exact mirror as the fake-quant
    /// forward, and a report whose layers come from the lowering and whose quantization counts
    /// are the engine's count of the graph.
    pub fn into_quantized(self, head: ReportHead) -> Result<Quantized> {
        let report = MethodReport {
            method: head.method.into(),
            label: head.label,
            config: head.config,
            layers: self.layers,
            quant_ops: count_ops(&self.graph).requant_by_kind,
            calibration: head.calibration,
            finetune_epochs: head.finetune_epochs,
            variant: head.variant,
            own_model: head.own_model,
            notes: head.notes,
        };
        let fake_quant = Box::new(IntMirror::new(&self.graph, self.logit_scale)?);
        Ok(Quantized {
            graph: self.graph,
            fake_quant,
            report,
        })
    }
}
