//! The integer graph: a list of [`Node`]s in topological order, with whole-graph validation.

use std::collections::HashSet;

use crate::error::{EngineError, Result};
use crate::infer::infer;
use crate::node::{Node, NodeId, Op};
use crate::types::{DType, TensorType};

/// A quantized model lowered to integer operations: the only thing the engine runs.
///
/// Invariants (checked by [`QGraph::validate`], which the builder and the file loader call):
/// node 0 is the single [`Op::Input`], the last node is the single [`Op::Output`], every node's inputs
/// come earlier, names are unique, and every node's declared output type equals the type inferred from
/// its inputs and parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct QGraph {
    /// The nodes in topological order.
    pub nodes: Vec<Node>,
}

impl QGraph {
    /// Checks the whole graph: structure, shapes, dtype compatibility between producer and consumer,
    /// bit widths, weight values within their declared bits, thresholds sorted, shifts and Q31
    /// multipliers in range, paddings below their kernels, sizes within the element limit and
    /// tensor lengths (every range is listed in `FORMAT.md`). The error names the node and field at
    /// fault.
    pub fn validate(&self) -> Result<()> {
        let n = self.nodes.len();
        if n < 2 {
            return Err(EngineError::Graph(
                "a graph needs at least an input and an output node".into(),
            ));
        }
        let mut names = HashSet::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let err = |field: &str, msg: String| EngineError::node(i, &node.name, field, msg);
            if node.name.is_empty() {
                return Err(err("name", "empty node name".into()));
            }
            if node.name.contains('/') {
                return Err(err(
                    "name",
                    "'/' is reserved (tensor names are <node>/<slot>)".into(),
                ));
            }
            if !names.insert(node.name.as_str()) {
                return Err(err("name", "duplicate node name".into()));
            }
            match (&node.op, i) {
                (Op::Input, 0) => {}
                (Op::Input, _) => return Err(err("op", "input node must be node 0 only".into())),
                (_, 0) => return Err(err("op", "node 0 must be the input".into())),
                (Op::Output, j) if j != n - 1 => {
                    return Err(err("op", "output node must be the last node only".into()));
                }
                (op, j) if j == n - 1 && !matches!(op, Op::Output) => {
                    return Err(err("op", "the last node must be an output node".into()));
                }
                _ => {}
            }
            if let Some(&bad) = node.inputs.iter().find(|&&p| p >= i) {
                return Err(err(
                    "inputs",
                    format!("input {bad} does not precede this node (topological order)"),
                ));
            }
            let inferred = if matches!(node.op, Op::Input) {
                check_input_type(&node.output).map_err(|m| err("output", m))?;
                if !node.inputs.is_empty() {
                    return Err(err("inputs", "the input node takes no inputs".into()));
                }
                node.output.clone()
            } else {
                let types: Vec<&TensorType> =
                    node.inputs.iter().map(|&p| &self.nodes[p].output).collect();
                infer(&node.op, &types).map_err(|f| err(&f.field, f.message))?
            };
            if inferred != node.output {
                return Err(err(
                    "output",
                    format!(
                        "declared {} {:?} but the inputs and parameters give {} {:?}",
                        node.output.dtype.label(),
                        node.output.shape,
                        inferred.dtype.label(),
                        inferred.shape
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The input type (u8 `[C, H, W]` or `[F]`): what one image must look like.
    pub fn input_type(&self) -> &TensorType {
        &self.nodes[0].output
    }

    /// Bytes of one input image.
    pub fn input_len(&self) -> usize {
        self.input_type().numel()
    }

    /// Number of logits (classes).
    pub fn classes(&self) -> usize {
        self.nodes.last().map_or(0, |n| n.output.numel())
    }

    /// For every node, the id of the last node that reads its output (itself if none does; the output
    /// node is its own last user). Executors free tensors after their last use.
    pub fn last_use(&self) -> Vec<NodeId> {
        let mut last: Vec<NodeId> = (0..self.nodes.len()).collect();
        for (i, node) in self.nodes.iter().enumerate() {
            for &p in &node.inputs {
                last[p] = last[p].max(i);
            }
        }
        last
    }
}

fn check_input_type(t: &TensorType) -> std::result::Result<(), String> {
    if t.dtype != DType::U8 {
        return Err(format!("the input must be u8, got {}", t.dtype.label()));
    }
    if crate::infer::checked_product(&t.shape).is_none() {
        return Err(format!("the input shape {:?} is too large", t.shape));
    }
    if !(t.is_map() || t.is_vector()) || t.shape.contains(&0) {
        return Err(format!(
            "the input shape must be [C, H, W] or [F] with non-zero sizes, got {:?}",
            t.shape
        ));
    }
    Ok(())
}
