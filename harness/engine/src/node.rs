//! Graph nodes: the operations of the integer graph and their parameters.
//!
//! Array parameters (weights, biases, thresholds, per-channel shifts and multipliers) are marked
//! `serde(skip)`: the graph file keeps them as safetensors tensors and only scalars go into the JSON
//! header (see [`crate::format`]).

use serde::{Deserialize, Serialize};

use crate::requant::Requant;
use crate::types::{DType, TensorType, WeightKind};

/// Index of a node in its graph; nodes are in topological order, so inputs have smaller ids.
pub type NodeId = usize;

/// Integer convolution: `acc[o] = sum (x - z) * w + bias[o]` in wrapping i32 arithmetic, with padded
/// taps reading `z` (so they contribute exactly 0). Input: a narrow unsigned or signed map;
/// output: i32 accumulators `[O, OH, OW]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2d {
    /// Input channels C (all groups).
    pub in_channels: usize,
    /// Output channels O (all groups).
    pub out_channels: usize,
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Stride, both directions.
    pub stride: usize,
    /// Padding on each side, both directions; below both kernel sizes.
    pub pad: usize,
    /// Groups (C and O are multiples; `groups == C == O` is depthwise).
    pub groups: usize,
    /// What the weight integers mean (int bits, binary, ternary).
    pub weight_kind: WeightKind,
    /// Input zero point `z`, within the input dtype's range.
    pub input_zero_point: i32,
    /// Weights `[O][C/groups][kh][kw]`.
    #[serde(skip)]
    pub weights: Vec<i8>,
    /// Optional per-output-channel bias.
    #[serde(skip)]
    pub bias: Option<Vec<i32>>,
}

/// Integer fully connected layer: `acc[o] = sum_i (x[i] - z) * w[o][i] + bias[o]` (wrapping i32).
/// Input: a narrow `[F]` vector; output: i32 `[O]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// What the weight integers mean.
    pub weight_kind: WeightKind,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Weights `[O][F]`.
    #[serde(skip)]
    pub weights: Vec<i8>,
    /// Optional bias `[O]`.
    #[serde(skip)]
    pub bias: Option<Vec<i32>>,
}

/// Binary (+-1 x +-1) convolution: `acc = sum over in-bounds taps of a * w + bias`, each output
/// channel reading the `C / groups` input channels of its group.
/// Padding rule: a tap outside the input contributes 0 (neither +1 nor -1), which is what a float
/// convolution with zero padding computes on a +-1 tensor. Input: binary map; output: i32 map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryConv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Stride.
    pub stride: usize,
    /// Padding (taps there contribute 0); below both kernel sizes.
    pub pad: usize,
    /// Groups (C and O are multiples; `groups == C == O` is depthwise). Written to the graph
    /// header only when not 1, so graphs without groups keep their bytes.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub groups: usize,
    /// Weights `[O][C/groups][kh][kw]`, each -1 or +1.
    #[serde(skip)]
    pub weights: Vec<i8>,
    /// Optional bias `[O]`.
    #[serde(skip)]
    pub bias: Option<Vec<i32>>,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Binary fully connected layer: `acc[o] = sum_i a[i] * w[o][i] + bias[o]` over +-1 values, computed
/// as `F - 2 * popcount(a XOR w)`. Input: binary `[F]`; output: i32 `[O]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinaryDense {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
    /// Weights `[O][F]`, each -1 or +1.
    #[serde(skip)]
    pub weights: Vec<i8>,
    /// Optional bias `[O]`.
    #[serde(skip)]
    pub bias: Option<Vec<i32>>,
}

/// A requantizer node: maps an integer tensor (normally i32 accumulators) to `out`, channel by channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequantNode {
    /// Output dtype (narrow int for shift/fixed point, binary for threshold, unsigned k-bit for
    /// multi-threshold).
    pub out: DType,
    /// The arithmetic and its parameters.
    pub requant: Requant,
}

/// Window of a max or average pool. Max pool: padded taps are ignored (`pad <= kernel / 2`, so every
/// window has an in-bounds tap). Average pool: `pad` must be 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Stride, both directions.
    pub stride: usize,
    /// Padding, both directions.
    pub pad: usize,
}

/// How a residual add brings its two inputs to a common i32 scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AddAlign {
    /// `((a - za) << shift_a) + ((b - zb) << shift_b)`, wrapping, shifts 0..=31.
    PowerOfTwo {
        /// Left shift of input a.
        shift_a: u8,
        /// Left shift of input b.
        shift_b: u8,
    },
    /// TFLite ADD up to its raw sum: `mbqm((a - za) << left_shift, Ma, sa) + mbqm((b - zb) <<
    /// left_shift, Mb, sb)` (wrapping), with [`crate::requant::multiply_by_quantized_multiplier`]
    /// as `mbqm`. A following `FixedPoint` requantizer applies TFLite's output multiplier, offset and
    /// clamp.
    FixedPoint {
        /// Common left shift, 0..=30 (TFLite uses 20 for 8-bit inputs).
        left_shift: u8,
        /// Q31 multiplier of input a: 0 or `2^30..=2^31-1`.
        multiplier_a: i32,
        /// Exponent of input a, -31..=30.
        shift_a: i32,
        /// Q31 multiplier of input b: 0 or `2^30..=2^31-1`.
        multiplier_b: i32,
        /// Exponent of input b, -31..=30.
        shift_b: i32,
    },
}

/// Residual add of two integer tensors of the same shape into i32.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    /// Zero point subtracted from input a.
    pub zero_point_a: i32,
    /// Zero point subtracted from input b.
    pub zero_point_b: i32,
    /// Scale alignment.
    pub align: AddAlign,
}

/// The operation a node performs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// The graph input: raw dataset bytes (u8), shape declared by the node's output type.
    #[serde(deserialize_with = "crate::types::no_fields")]
    Input,
    /// Integer convolution (see [`Conv2d`]).
    Conv2d(Conv2d),
    /// Integer dense layer (see [`Dense`]).
    Dense(Dense),
    /// Binary convolution (see [`BinaryConv2d`]).
    BinaryConv2d(BinaryConv2d),
    /// Binary dense layer (see [`BinaryDense`]).
    BinaryDense(BinaryDense),
    /// Requantizer (see [`RequantNode`]).
    Requant(RequantNode),
    /// Max pool on any integer tensor (binary: max of +-1, i.e. OR of the bits).
    MaxPool(Pool),
    /// Average pool on a non-binary map: `floor((sum + count/2) / count)` per window, i.e. round half
    /// up, with `count = kh * kw` (no padding).
    AvgPool(Pool),
    /// Global average pool `[C, H, W] -> [C]`, rounding as [`Op::AvgPool`] with `count = H * W`.
    #[serde(deserialize_with = "crate::types::no_fields")]
    GlobalAvgPool,
    /// `max(x, zero_point)` on a non-binary tensor, same dtype.
    Relu {
        /// The value that represents real zero.
        zero_point: i32,
    },
    /// Residual add (see [`Add`]); two inputs, i32 output.
    Add(Add),
    /// `[C, H, W] -> [C * H * W]` in C,H,W order (for binary tensors too).
    #[serde(deserialize_with = "crate::types::no_fields")]
    Flatten,
    /// Final logits: an `[F]` non-binary tensor reported as i32.
    #[serde(deserialize_with = "crate::types::no_fields")]
    Output,
}

impl Op {
    /// Short name of the operation (`conv2d`, `requant`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv2d(_) => "conv2d",
            Op::Dense(_) => "dense",
            Op::BinaryConv2d(_) => "binary_conv2d",
            Op::BinaryDense(_) => "binary_dense",
            Op::Requant(_) => "requant",
            Op::MaxPool(_) => "max_pool",
            Op::AvgPool(_) => "avg_pool",
            Op::GlobalAvgPool => "global_avg_pool",
            Op::Relu { .. } => "relu",
            Op::Add(_) => "add",
            Op::Flatten => "flatten",
            Op::Output => "output",
        }
    }

    /// Number of inputs the operation takes.
    pub fn arity(&self) -> usize {
        match self {
            Op::Input => 0,
            Op::Add(_) => 2,
            _ => 1,
        }
    }
}

/// One node of the graph: a named operation, its inputs and its declared output type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Unique name (also the prefix of its tensors in the graph file).
    pub name: String,
    /// Ids of the producer nodes, all smaller than this node's id.
    pub inputs: Vec<NodeId>,
    /// The operation and its parameters.
    pub op: Op,
    /// Declared output type; validation checks it against the one inferred from the inputs.
    pub output: TensorType,
}
