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
//! - [`format`]: the `qbench-graph` file (safetensors + JSON header); see `FORMAT.md`.
//! - [`exec`]: the reference executor (the oracle) and the fast executor; [`tensor`]: runtime tensors.
//! - [`counts`]: MACs, requantization ops and memory; [`eval`]: accuracy and throughput.

pub mod builder;
pub mod counts;
pub mod error;
pub mod eval;
pub mod exec;
pub mod format;
pub mod graph;
mod infer;
pub mod node;
pub mod requant;
pub mod tensor;
pub mod types;

pub use builder::GraphBuilder;

pub use counts::{NodeCounts, OpCounts, count_ops};
pub use error::{EngineError, Result};

pub use eval::{EvalReport, evaluate};
pub use exec::Logits;
pub use exec::fast::FastExecutor;
pub use graph::QGraph;
pub use node::{
    Add, AddAlign, BinaryConv2d, BinaryDense, Conv2d, Dense, Node, NodeId, Op, Pool, RequantNode,
};
pub use requant::Requant;
pub use tensor::{Tensor, TensorData};
pub use types::{DType, TensorType, WeightKind};
