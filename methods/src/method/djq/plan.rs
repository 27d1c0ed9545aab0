//! The lowered DJQ model: integer steps that become graph nodes one to one. Both the engine graph
//! ([`Plan::to_graph`]) and the fake-quant forward ([`super::fake`]) are derived from the same
//! plan, so they use the very same quantized integers.

use std::collections::BTreeMap;

use qbench_engine::{
    Add, AddAlign, Conv2d, DType, Dense, GraphBuilder, Pool, QGraph, Requant, WeightKind,
};

use crate::error::Result;
use crate::method::fold::PoolSpec;

/// One integer operation.
#[derive(Clone, Debug, PartialEq)]
pub enum StepOp {
    /// Convolution over a narrow input: `acc = sum (x - z) w + bias`.
    Conv {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Square kernel.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Padding.
        pad: usize,
        /// Groups (channels for the ablation's batch-norm step).
        groups: usize,
        /// Weights `[O][C/groups][k][k]`.
        weights: Vec<i8>,
        /// Bias `[O]`.
        bias: Vec<i32>,
        /// Input zero point.
        zero_point: i32,
        /// Weight bits.
        bits: u8,
    },
    /// Dense layer over a narrow vector.
    Dense {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
        /// Weights `[O][F]`.
        weights: Vec<i8>,
        /// Bias `[O]`.
        bias: Vec<i32>,
        /// Input zero point.
        zero_point: i32,
        /// Weight bits.
        bits: u8,
    },
    /// `clamp(shift_round(x, s_c), min, max)` to `out` (zero point 0).
    Shift {
        /// Right shifts, 1 or C entries.
        shift: Vec<u8>,
        /// Output dtype.
        out: DType,
        /// Lower clamp bound (0 folds a ReLU).
        min: i32,
        /// Upper clamp bound.
        max: i32,
    },
    /// `max(x, 0)`.
    Relu,
    /// Max pool.
    MaxPool(PoolSpec),
    /// Average pool (round half up).
    AvgPool(PoolSpec),
    /// Global average pool.
    GlobalAvgPool,
    /// `[C, H, W] -> [C H W]`.
    Flatten,
    /// `(a << shift_a) + (b << shift_b)`.
    Add {
        /// Left shift of the first input.
        shift_a: u8,
        /// Left shift of the second input.
        shift_b: u8,
    },
}

/// A named step and the ids of its inputs (0 is the graph input; step `i` is id `i + 1`).
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Node name.
    pub name: String,
    /// Input ids.
    pub inputs: Vec<usize>,
    /// Operation.
    pub op: StepOp,
}

/// A whole lowered model.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Input `[C, H, W]` (u8 pixels).
    pub input: [usize; 3],
    /// Steps in order; the last one produces the logits.
    pub steps: Vec<Step>,
    /// Exponent of the logits: real logit = integer * 2^-logit_exponent.
    pub logit_exponent: i32,
}

impl Plan {
    /// Appends a step reading `inputs`; returns its id.
    pub fn push(&mut self, name: String, inputs: Vec<usize>, op: StepOp) -> usize {
        self.steps.push(Step { name, inputs, op });
        self.steps.len()
    }

    /// Requantization operations per image by kind, from the plan's own shapes. Equal to the
    /// engine's count of [`Plan::to_graph`] (checked by the conformance suite).
    pub fn quant_ops(&self, graph: &QGraph) -> BTreeMap<String, u64> {
        let mut ops = BTreeMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            if let StepOp::Shift { .. } = step.op {
                let n = graph.nodes[i + 1].output.numel() as u64;
                *ops.entry("shift".to_string()).or_insert(0) += n;
            }
        }
        ops
    }

    /// Lowers the plan to the engine's graph.
    pub fn to_graph(&self) -> Result<QGraph> {
        let mut b = GraphBuilder::new(&self.input);
        let mut last = b.input();
        for step in &self.steps {
            let x = step.inputs[0];
            last = match &step.op {
                StepOp::Conv {
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    pad,
                    groups,
                    weights,
                    bias,
                    zero_point,
                    bits,
                } => b.conv2d(
                    &step.name,
                    x,
                    Conv2d {
                        in_channels: *in_channels,
                        out_channels: *out_channels,
                        kernel_h: *kernel,
                        kernel_w: *kernel,
                        stride: *stride,
                        pad: *pad,
                        groups: *groups,
                        weight_kind: WeightKind::Int { bits: *bits },
                        input_zero_point: *zero_point,
                        weights: weights.clone(),
                        bias: Some(bias.clone()),
                    },
                )?,
                StepOp::Dense {
                    in_features,
                    out_features,
                    weights,
                    bias,
                    zero_point,
                    bits,
                } => b.dense(
                    &step.name,
                    x,
                    Dense {
                        in_features: *in_features,
                        out_features: *out_features,
                        weight_kind: WeightKind::Int { bits: *bits },
                        input_zero_point: *zero_point,
                        weights: weights.clone(),
                        bias: Some(bias.clone()),
                    },
                )?,
                StepOp::Shift {
                    shift,
                    out,
                    min,
                    max,
                } => b.requant(
                    &step.name,
                    x,
                    *out,
                    Requant::Shift {
                        shift: shift.clone(),
                        zero_point: 0,
                        min: *min,
                        max: *max,
                    },
                )?,
                StepOp::Relu => b.relu(&step.name, x, 0)?,
                StepOp::MaxPool(p) => b.max_pool(&step.name, x, pool(*p))?,
                StepOp::AvgPool(p) => b.avg_pool(&step.name, x, pool(*p))?,
                StepOp::GlobalAvgPool => b.global_avg_pool(&step.name, x)?,
                StepOp::Flatten => b.flatten(&step.name, x)?,
                StepOp::Add { shift_a, shift_b } => b.add(
                    &step.name,
                    x,
                    step.inputs[1],
                    Add {
                        zero_point_a: 0,
                        zero_point_b: 0,
                        align: AddAlign::PowerOfTwo {
                            shift_a: *shift_a,
                            shift_b: *shift_b,
                        },
                    },
                )?,
            };
        }
        Ok(b.finish(last)?)
    }
}

fn pool(p: PoolSpec) -> Pool {
    Pool {
        kernel_h: p.kernel,
        kernel_w: p.kernel,
        stride: p.stride,
        pad: p.pad,
    }
}
