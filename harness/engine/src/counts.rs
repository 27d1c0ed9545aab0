//! Operation and memory counts of a graph for one input image (the graph's declared input size):
//! the raw material of energy estimates.
//!
//! Conventions: a convolution counts every kernel tap of every output, padded taps included (the
//! hardware computes them); a dense layer `F x O` counts `F * O`. MACs are keyed by their
//! [`MacKind`] (the layer's weight kind and its input dtype; written `w<weights>_a<activations>`,
//! e.g. `wint8_au8`, `wter_au8`, `wbin_au8`); xnor-popcount MACs are [`MacKind::xnor`] (`wbin_abin`)
//! and also totalled as `binary_macs`. A requantizer counts one op per output element, by kind. Weight memory is
//! `count * bits` of the declared weight kind (binary 1, ternary 2); other parameters (bias,
//! thresholds, multipliers as 32 bits, shifts as 8 bits) go to `param_bits`. Activation memory is
//! each node output's `numel * bits` (i32 = 32, binary = 1); the peak is the largest sum of tensors
//! alive at once when nodes run in order and a tensor is freed after its last reader.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::graph::QGraph;
use crate::mac_kind::MacKind;
use crate::node::Op;
use crate::requant::Requant;
use crate::types::DType;

/// Counts of one node, per image.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCounts {
    /// Node id.
    pub index: usize,
    /// Node name.
    pub name: String,
    /// Operation name.
    pub op: String,
    /// MACs (integer and binary) of this node.
    pub macs: u64,
    /// Their kind (see the module doc), if the node does MACs.
    pub mac_kind: Option<MacKind>,
    /// Requantization ops (one per output element).
    pub requant_ops: u64,
    /// Requantizer kind, if any.
    pub requant_kind: Option<String>,
    /// Other integer ops (pool compares and adds, relu maxes, residual adds), by kind.
    pub other_ops: BTreeMap<String, u64>,
    /// Weight memory in bits.
    pub weight_bits: u64,
    /// Other parameter memory in bits.
    pub param_bits: u64,
    /// Bits of this node's output tensor.
    pub activation_bits: u64,
}

/// Counts of a whole graph, per image, with totals and per-node rows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpCounts {
    /// The input shape the counts are for.
    pub input_shape: Vec<usize>,
    /// MACs by kind (binary xnor MACs under [`MacKind::xnor`], `wbin_abin`).
    pub macs_by_kind: BTreeMap<MacKind, u64>,
    /// All MACs (integer and binary).
    pub total_macs: u64,
    /// xnor-popcount MACs.
    pub binary_macs: u64,
    /// Requantization ops by kind.
    pub requant_by_kind: BTreeMap<String, u64>,
    /// All requantization ops.
    pub total_requant_ops: u64,
    /// Other ops by kind.
    pub other_ops: BTreeMap<String, u64>,
    /// Weight memory in bits.
    pub weight_bits: u64,
    /// Other parameter memory in bits.
    pub param_bits: u64,
    /// Sum of all node outputs' bits (input included).
    pub activation_bits_total: u64,
    /// Peak bits of simultaneously live tensors.
    pub peak_activation_bits: u64,
    /// Per-node rows, in node order.
    pub nodes: Vec<NodeCounts>,
}

fn bias_bits(b: &Option<Vec<i32>>) -> u64 {
    b.as_ref().map_or(0, |b| 32 * b.len() as u64)
}

/// Counts the operations and memory of `graph` for one image of its declared input shape.
pub fn count_ops(graph: &QGraph) -> OpCounts {
    let mut total = OpCounts {
        input_shape: graph.input_type().shape.clone(),
        ..OpCounts::default()
    };
    for (index, node) in graph.nodes.iter().enumerate() {
        let out_elems = node.output.numel() as u64;
        let input = node.inputs.first().map(|&p| &graph.nodes[p].output);
        let mut row = NodeCounts {
            index,
            name: node.name.clone(),
            op: node.op.name().to_string(),
            activation_bits: node.output.bits(),
            ..NodeCounts::default()
        };
        let in_dtype = input.map_or(DType::U8, |t| t.dtype);
        match &node.op {
            Op::Conv2d(c) => {
                let taps = (c.in_channels / c.groups * c.kernel_h * c.kernel_w) as u64;
                row.macs = out_elems * taps;
                row.mac_kind = Some(MacKind::new(c.weight_kind, in_dtype));
                row.weight_bits = c.weights.len() as u64 * c.weight_kind.storage_bits();
                row.param_bits = bias_bits(&c.bias);
            }
            Op::Dense(d) => {
                row.macs = (d.in_features * d.out_features) as u64;
                row.mac_kind = Some(MacKind::new(d.weight_kind, in_dtype));
                row.weight_bits = d.weights.len() as u64 * d.weight_kind.storage_bits();
                row.param_bits = bias_bits(&d.bias);
            }
            Op::BinaryConv2d(c) => {
                row.macs = out_elems * (c.in_channels / c.groups * c.kernel_h * c.kernel_w) as u64;
                row.mac_kind = Some(MacKind::xnor());
                row.weight_bits = c.weights.len() as u64;
                row.param_bits = bias_bits(&c.bias);
                total.binary_macs += row.macs;
            }
            Op::BinaryDense(d) => {
                row.macs = (d.in_features * d.out_features) as u64;
                row.mac_kind = Some(MacKind::xnor());
                row.weight_bits = d.weights.len() as u64;
                row.param_bits = bias_bits(&d.bias);
                total.binary_macs += row.macs;
            }
            Op::Requant(r) => {
                row.requant_ops = out_elems;
                row.requant_kind = Some(r.requant.kind_name().to_string());
                row.param_bits = match &r.requant {
                    Requant::Shift { shift, .. } => 8 * shift.len() as u64,
                    Requant::FixedPoint { multiplier, .. } => 40 * multiplier.len() as u64,
                    Requant::Threshold { thresholds, flip }
                    | Requant::MultiThreshold { thresholds, flip } => {
                        32 * thresholds.len() as u64 + flip.len() as u64
                    }
                };
            }
            Op::MaxPool(p) => {
                row.other_ops.insert(
                    "max_pool_compare".into(),
                    out_elems * (p.kernel_h * p.kernel_w).saturating_sub(1) as u64,
                );
            }
            Op::AvgPool(p) => {
                row.other_ops.insert(
                    "avg_pool_add".into(),
                    out_elems * (p.kernel_h * p.kernel_w) as u64,
                );
                row.other_ops.insert("avg_pool_divide".into(), out_elems);
            }
            Op::GlobalAvgPool => {
                let s = input.map_or(1, |t| t.spatial()) as u64;
                row.other_ops.insert("avg_pool_add".into(), out_elems * s);
                row.other_ops.insert("avg_pool_divide".into(), out_elems);
            }
            Op::Relu { .. } => {
                row.other_ops.insert("relu_max".into(), out_elems);
            }
            Op::Add(_) => {
                row.other_ops.insert("residual_add".into(), out_elems);
            }
            Op::Input | Op::Flatten | Op::Output => {}
        }
        if let Some(k) = &row.mac_kind {
            *total.macs_by_kind.entry(k.clone()).or_default() += row.macs;
        }
        if let Some(k) = &row.requant_kind {
            *total.requant_by_kind.entry(k.clone()).or_default() += row.requant_ops;
        }
        for (k, v) in &row.other_ops {
            *total.other_ops.entry(k.clone()).or_default() += v;
        }
        total.total_macs += row.macs;
        total.total_requant_ops += row.requant_ops;
        total.weight_bits += row.weight_bits;
        total.param_bits += row.param_bits;
        total.activation_bits_total += row.activation_bits;
        total.nodes.push(row);
    }
    total.peak_activation_bits = peak_live_bits(graph);
    total
}

/// Largest sum of live tensor bits while running node by node: at node `i`, every tensor produced at
/// or before `i` whose last reader is at or after `i` is live.
fn peak_live_bits(graph: &QGraph) -> u64 {
    let last = graph.last_use();
    (0..graph.nodes.len())
        .map(|i| {
            (0..=i)
                .filter(|&p| last[p] >= i)
                .map(|p| graph.nodes[p].output.bits())
                .sum()
        })
        .max()
        .unwrap_or(0)
}
