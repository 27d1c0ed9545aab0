//! The method contract: what every quantization method takes and returns.
//!
//! A method takes a trained float model, access to training and calibration data, a seed and a
//! budget, and returns the integer graph the engine judges it by, its own simulated-quantization
//! ("fake-quant") forward for comparison, and a report. [`conformance`] checks any method,
//! including one a user adds, against the contract with one call.

pub mod act_range;
pub mod bnn;
pub mod calibrate;
pub mod config;
pub mod conformance;
pub mod djq;
pub mod fake_quant;
pub mod fixed_point;
pub mod fold;
pub mod int8;
pub mod intnet;
pub mod linear;
pub mod lowbit;
pub mod onnx;
pub mod qat;
pub mod qnn;
pub mod registry;
pub mod tnt;

use std::collections::BTreeMap;

use qbench_datasets::ImageSet;
use qbench_engine::QGraph;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::arch::Architecture;
use crate::model::params::Params;
use crate::train::TrainObserver;

/// Everything a method may use. Test images are deliberately absent: every choice a method makes
/// (calibration, fine-tuning, thresholds) must come from the training split.
pub struct QuantInput<'a> {
    /// The float model's architecture.
    pub arch: &'a Architecture,
    /// The trained float parameters (read-only: methods copy what they change).
    pub params: &'a Params,
    /// The training split (u8 pixels; `data.normalization` says how the float model saw them).
    pub data: &'a ImageSet,
    /// Indices into `data` a method may fine-tune on.
    pub train_idx: &'a [usize],
    /// Indices into `data` for calibration statistics (a subset of `train_idx`).
    pub calib_idx: &'a [usize],
    /// Held-out indices into `data` for any choice a method makes.
    pub val_idx: &'a [usize],
    /// Seed of every random choice (same seed, same graph bytes).
    pub seed: u64,
}

/// A method's result.
pub struct Quantized {
    /// The integer graph the engine runs; accuracy is always reported from it.
    pub graph: QGraph,
    /// The method's own simulated-quantization forward.
    pub fake_quant: Box<dyn FakeQuant>,
    /// What the method did.
    pub report: MethodReport,
}

/// A method's simulated-quantization forward, the float-side mirror of its integer graph.
pub trait FakeQuant: Send + Sync {
    /// Logits for `n` images of u8 pixels (NCHW, as the dataset stores them), row-major `n x classes`,
    /// in the method's own real-valued units.
    fn logits(&self, images: &[u8], n: usize) -> Result<Vec<f64>>;
    /// Real value of one unit of the integer graph's logits: `fake ≈ int * logit_scale`.
    fn logit_scale(&self) -> f64;
    /// The documented bound on `|fake - int * logit_scale|` for any image (same units as `logits`).
    fn logit_bound(&self) -> f64;
}

/// How one layer was lowered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Layer (or unified module) name.
    pub name: String,
    /// The engine path it runs on: `int8`, `binary` or `ternary`.
    pub path: String,
    /// Weight bits.
    pub weight_bits: u8,
    /// Bits of the activations it produces (32 for logits).
    pub output_bits: u8,
}

/// What a method did, for the result store and the tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodReport {
    /// Method name as configured (e.g. `djq`).
    pub method: String,
    /// A short label for tables (e.g. `DJQ W4A4 unified`).
    pub label: String,
    /// The validated configuration it ran with.
    pub config: serde_json::Value,
    /// Per-layer lowering.
    pub layers: Vec<LayerReport>,
    /// Quantization (requantization) operations per inference, by kind; equals the engine's count.
    pub quant_ops: BTreeMap<String, u64>,
    /// Calibration settings in words (e.g. `min/max over 2048 images`).
    pub calibration: String,
    /// Fine-tuning epochs run (0: post-training quantization).
    pub finetune_epochs: usize,
    /// The structural variant of the method this row ran (e.g. DJQ's `unified` modules or its
    /// `per-op` ablation), `None` where the method has no such choice. Tables show it and figures
    /// pair rows of one method that differ only in it, without knowing any method's name.
    #[serde(default)]
    pub variant: Option<String>,
    /// The architecture the method trained itself instead of quantizing the float model (e.g. a
    /// BNN trained from scratch as `mlp`), `None` when it started from the float model. Tables
    /// name that architecture and give such a row no float baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_model: Option<String>,
    /// Anything else a reader of the results should know.
    pub notes: Vec<String>,
}

impl MethodReport {
    /// Total quantization operations per inference.
    pub fn total_quant_ops(&self) -> u64 {
        self.quant_ops.values().sum()
    }
}

/// A quantization method.
pub trait QuantMethod {
    /// Short label for tables and logs.
    fn label(&self) -> String;
    /// Quantizes the model. Long work (fine-tuning) reports through `observer` and stops when it
    /// asks to.
    fn quantize(&self, input: &QuantInput, observer: &mut dyn TrainObserver) -> Result<Quantized>;
}
