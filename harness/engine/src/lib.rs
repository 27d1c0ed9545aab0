//! The qbench integer inference engine.
//!
//! Every quantization method lowers its trained model to a [`QGraph`]: a DAG of integer operations
//! (convolutions and dense layers over narrow integers or bit-packed +-1 values, requantizers,
//! pooling, residual adds) in topological order, with batch-agnostic shapes. The engine runs that
//! graph with exactly the integer arithmetic the RTL implements, counts its operations and memory,
//! and evaluates it on a labelled image set. It knows nothing of training, methods or datasets.
//!
//! - [`types`]: dtypes ([`DType`]), tensor types and weight kinds.
//! - [`node`]: the operations ([`Op`]) and their parameters.
//! - [`requant`]: the requantizers and the scalar arithmetic (the single definition shared with
//!   RTL co-simulation and the methods' fake-quant forwards).
//! - [`graph`] and [`builder`]: the graph, its validation, and [`GraphBuilder`] for lowering.
//! - [`format`](mod@format): the `qbench-graph` file (safetensors + JSON header); see `FORMAT.md`.
//! - [`exec`]: the reference executor (the oracle) and the fast executor; [`tensor`]: runtime tensors.
//! - [`counts`]: MACs, requantization ops and memory; [`mac_kind`]: the typed MAC kind they are
//!   keyed by (shared with the hardware crate); [`eval`]: accuracy and throughput.
//!
//! # Lowering conventions
//!
//! - **Arithmetic** is two's-complement i32 and wraps, as the hardware does; requantizers compute
//!   their rounding exactly (see [`requant`]). Both executors produce identical integers.
//! - **Signed activations** (`DType::Signed`) are stored as i8 and fed to the u8 x i8 kernels with a
//!   +128 offset; the offset and the input zero point are removed with a per-output-channel
//!   correction `(z + 128) * sum(w)`, so `acc = sum (x - z) * w + bias` exactly.
//! - **Padding** of integer convolutions reads the input zero point (contributes exactly 0); padding
//!   of binary convolutions contributes 0 as well (a tap outside the input is neither +1 nor -1).
//! - **BNN**: the first layer is an integer [`Conv2d`]/[`Dense`] with `WeightKind::Binary` over u8
//!   pixels; batch norm + sign fold into a [`Requant::Threshold`] (direction flipped where the BN
//!   scale is negative); hidden layers are [`BinaryConv2d`]/[`BinaryDense`]; max pooling may run on
//!   the i32 accumulators before the threshold; the last layer's i32 scores are the logits.
//! - **QNN** k-bit activations: BN + quantization fold into a [`Requant::MultiThreshold`].
//! - **Ternary (TNT)** weights go through the int8 path as `WeightKind::Ternary` weights in
//!   {-1, 0, +1}, so counts report ternary MACs; the per-channel or per-layer scales (alpha) are not
//!   part of the weights but folded into the following requantizer's multiplier or shift. The engine
//!   does not support distinct positive/negative scales within one channel; a method that needs them
//!   splits the layer.
//! - **Fixed-point residual add** (TFLite ADD) is an [`Add`] with [`AddAlign::FixedPoint`] followed
//!   by a [`Requant::FixedPoint`] carrying the output multiplier, zero point and clamp.

#![warn(missing_docs)]

pub mod builder;
pub mod counts;
pub mod error;
pub mod eval;
pub mod exec;
pub mod format;
pub mod graph;
mod infer;
pub mod mac_kind;
pub mod node;
pub mod requant;
pub mod tensor;
pub mod types;

pub use builder::GraphBuilder;

pub use counts::{NodeCounts, OpCounts, count_ops};
pub use error::{EngineError, Result};

pub use eval::{EvalReport, accuracy, agreement, argmax_rows, evaluate, predict};
pub use exec::Logits;
pub use exec::fast::FastExecutor;
pub use graph::QGraph;
pub use mac_kind::MacKind;
pub use node::{
    Add, AddAlign, BinaryConv2d, BinaryDense, Conv2d, Dense, Node, NodeId, Op, Pool, RequantNode,
};
pub use requant::Requant;
pub use tensor::{Tensor, TensorData};
pub use types::{DType, TensorType, WeightKind};
