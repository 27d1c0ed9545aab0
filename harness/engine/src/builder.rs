//! [`GraphBuilder`]: how methods lower a trained model to a [`QGraph`], one node at a time, with
//! shapes inferred and every node checked as it is appended.

use crate::error::{EngineError, Result};
use crate::graph::QGraph;
use crate::infer::infer;
use crate::node::{
    Add, BinaryConv2d, BinaryDense, Conv2d, Dense, Node, NodeId, Op, Pool, RequantNode,
};
use crate::requant::Requant;
use crate::types::{DType, TensorType};

/// Appends nodes to a graph, inferring each output type and checking parameters immediately, so a
/// lowering bug is reported at the node that causes it.
#[derive(Clone, Debug)]
pub struct GraphBuilder {
    nodes: Vec<Node>,
}

impl GraphBuilder {
    /// Starts a graph whose input (node 0, named `input`) is u8 of the given per-image shape,
    /// `[C, H, W]` or `[F]`.
    pub fn new(input_shape: &[usize]) -> Self {
        GraphBuilder {
            nodes: vec![Node {
                name: "input".into(),
                inputs: vec![],
                op: Op::Input,
                output: TensorType::new(DType::U8, input_shape),
            }],
        }
    }

    /// The input node's id (always 0).
    pub fn input(&self) -> NodeId {
        0
    }

    /// The output type of an existing node.
    pub fn ty(&self, id: NodeId) -> &TensorType {
        &self.nodes[id].output
    }

    /// Appends any operation with the given inputs; returns the new node's id.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[NodeId]) -> Result<NodeId> {
        let name = name.into();
        let index = self.nodes.len();
        if self.nodes.iter().any(|n| n.name == name) || name.is_empty() {
            return Err(EngineError::node(
                index,
                &name,
                "name",
                "empty or duplicate node name",
            ));
        }
        if let Some(&bad) = inputs.iter().find(|&&i| i >= index) {
            return Err(EngineError::node(
                index,
                &name,
                "inputs",
                format!("no node {bad}"),
            ));
        }
        let types: Vec<&TensorType> = inputs.iter().map(|&i| &self.nodes[i].output).collect();
        let output =
            infer(&op, &types).map_err(|f| EngineError::node(index, &name, f.field, f.message))?;
        self.nodes.push(Node {
            name,
            inputs: inputs.to_vec(),
            op,
            output,
        });
        Ok(index)
    }

    /// Appends an integer convolution.
    pub fn conv2d(&mut self, name: &str, x: NodeId, conv: Conv2d) -> Result<NodeId> {
        self.push(name, Op::Conv2d(conv), &[x])
    }

    /// Appends an integer dense layer.
    pub fn dense(&mut self, name: &str, x: NodeId, dense: Dense) -> Result<NodeId> {
        self.push(name, Op::Dense(dense), &[x])
    }

    /// Appends a binary convolution.
    pub fn binary_conv2d(&mut self, name: &str, x: NodeId, conv: BinaryConv2d) -> Result<NodeId> {
        self.push(name, Op::BinaryConv2d(conv), &[x])
    }

    /// Appends a binary dense layer.
    pub fn binary_dense(&mut self, name: &str, x: NodeId, dense: BinaryDense) -> Result<NodeId> {
        self.push(name, Op::BinaryDense(dense), &[x])
    }

    /// Appends a requantizer producing `out`.
    pub fn requant(
        &mut self,
        name: &str,
        x: NodeId,
        out: DType,
        requant: Requant,
    ) -> Result<NodeId> {
        self.push(name, Op::Requant(RequantNode { out, requant }), &[x])
    }

    /// Appends a max pool.
    pub fn max_pool(&mut self, name: &str, x: NodeId, pool: Pool) -> Result<NodeId> {
        self.push(name, Op::MaxPool(pool), &[x])
    }

    /// Appends an average pool.
    pub fn avg_pool(&mut self, name: &str, x: NodeId, pool: Pool) -> Result<NodeId> {
        self.push(name, Op::AvgPool(pool), &[x])
    }

    /// Appends a global average pool (`[C, H, W] -> [C]`).
    pub fn global_avg_pool(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.push(name, Op::GlobalAvgPool, &[x])
    }

    /// Appends `max(x, zero_point)`.
    pub fn relu(&mut self, name: &str, x: NodeId, zero_point: i32) -> Result<NodeId> {
        self.push(name, Op::Relu { zero_point }, &[x])
    }

    /// Appends a residual add of `a` and `b`.
    pub fn add(&mut self, name: &str, a: NodeId, b: NodeId, add: Add) -> Result<NodeId> {
        self.push(name, Op::Add(add), &[a, b])
    }

    /// Appends a flatten (`[C, H, W] -> [C * H * W]`).
    pub fn flatten(&mut self, name: &str, x: NodeId) -> Result<NodeId> {
        self.push(name, Op::Flatten, &[x])
    }

    /// Appends the output node (named `output`) reading `logits` and returns the validated graph.
    pub fn finish(mut self, logits: NodeId) -> Result<QGraph> {
        self.push("output", Op::Output, &[logits])?;
        let graph = QGraph { nodes: self.nodes };
        graph.validate()?;
        Ok(graph)
    }
}
