//! DJQ: dataflow-based joint quantization (Geng et al., arXiv 1901.02064, DCC 2019).
//!
//! Only the paper's abstract is public (see `shared/reference/methods.md`); this is qbench's
//! reading of it, every choice below being ours where the abstract is silent.
//!
//! - **Power-of-two scales.** Every weight and activation is an integer times a power of two:
//!   `w_q = clamp(round(w 2^fw))`, `a_q = clamp(round(a 2^fa))`, rounding half up. Weight exponents
//!   are the largest `fw` with `max|w| 2^fw <= 2^(b-1) - 1` (or, with `weight_range: mse`, that or
//!   one of the three finer exponents, whichever quantizes the weights with the least squared
//!   error), per tensor by default or per output
//!   channel (`per_channel: true`; the last layer and a residual branch's last layer stay per
//!   tensor, because logits and residual adds need one common scale). Activation exponents are
//!   the largest `fa` with `R 2^fa <= qmax` where `R` is the calibrated range (`calibration.kind`:
//!   the largest magnitude, or a percentile of the magnitudes) and `qmax` the output type's
//!   largest value (`2^a - 1` after a ReLU, unsigned; `2^(a-1) - 1` otherwise, signed). The
//!   network input is the dataset's u8 pixels with exponent 0: the normalization is folded into
//!   the first layer ([`crate::method::fold`]).
//! - **Unified modules.** Conv or dense + batch norm (folded) + ReLU (+ the following max pool) is
//!   one module with exactly one requantization at its output, a [`qbench_engine::Requant::Shift`]
//!   with `s = fw + fa_in - fa_out` (ReLU is its lower clamp bound 0). The max pool runs on the
//!   requantized integers (shift and clamp are monotone, so this equals pooling first). Biases are
//!   i32 at scale `2^-(fw + fa_in)`. If a shift would leave `0..=31` the output exponent is lowered
//!   (no left shifts) or the weight exponent lowered (shift above 31).
//! - **Residual blocks.** The body's last conv and the projection shortcut keep their i32
//!   accumulators; an engine `Add` with power-of-two alignment left-shifts both to the finer of the
//!   two exponents, and one requantizer after the add (with ReLU as its clamp) finishes the block.
//! - **Ablation** (`unified: false`): quantize after every operation. The conv runs with the
//!   batch-norm scale divided back out of its weights and no bias, and is requantized (signed);
//!   batch norm is an integer per-channel affine map (a depthwise 1x1 convolution, or a diagonal
//!   dense layer after a dense layer, with power-of-two-quantized scale and i32 bias) and is
//!   requantized (signed); ReLU is an engine `Relu` followed by a requantizer to unsigned; the max
//!   pool is followed by a requantizer; standalone pools and residual adds likewise. Each
//!   requantizer's exponent comes from the calibration of its own tap, capped so that it never
//!   needs a left shift (after ReLU and max pool this usually makes it a pure clamp at shift 0,
//!   which still counts as a quantization operation, as in a graph without restructuring).
//! - **Fine-tuning** ([`finetune`]): `finetune.epochs` passes over `train_idx` with
//!   straight-through estimators on the folded model of the unified structure (also when
//!   `unified: false`: the ablation is then lowered from the fine-tuned folded weights and
//!   recalibrated, since its extra quantizers were not part of the training). Activation exponents
//!   stay those calibrated before fine-tuning (unified); weight exponents are recomputed from the
//!   fine-tuned weights. 0 epochs is plain post-training quantization.
//! - **Fake quant**: the exact f64 mirror of the graph every method shares
//!   ([`crate::method::intnet::IntMirror`]); documented bound 0.
//!
//! Quantization operations are counted from the graph (one per requantizer output element), the
//! same count the engine makes.

pub mod finetune;
pub mod lower;
pub mod options;

use crate::error::Result;
use crate::method::calibrate::{Calibration, FoldedTensors, calibrate};
use crate::method::fold::{FoldedModel, fold};
use crate::method::intnet::ReportHead;
use crate::method::{QuantInput, QuantMethod, Quantized};
use crate::train::TrainObserver;

pub use options::{CalibrationKind, CalibrationOptions, DjqOptions, FinetuneOptions, WeightRange};

/// The DJQ method with its validated options.
pub struct Djq {
    /// Options.
    pub options: DjqOptions,
}

impl Djq {
    /// A DJQ method with these (already validated) options.
    pub fn new(options: DjqOptions) -> Self {
        Djq { options }
    }

    fn calibrate(&self, model: &FoldedModel, input: &QuantInput) -> Result<Calibration> {
        let n = self.options.calibration.images.min(input.calib_idx.len());
        let tensors = FoldedTensors::new(model)?;
        calibrate(model, &tensors, input.data, &input.calib_idx[..n], 256)
    }
}

impl Djq {
    /// The structural variant: unified modules, or the ablation that quantizes after every op.
    fn variant(&self) -> &'static str {
        if self.options.unified {
            "unified"
        } else {
            "per-op"
        }
    }
}

impl QuantMethod for Djq {
    fn label(&self) -> String {
        let o = &self.options;
        format!(
            "DJQ W{}A{} {}{}{}{}",
            o.weight_bits,
            o.activation_bits,
            self.variant(),
            if o.per_channel { " per-channel" } else { "" },
            if o.weight_range.is_max() {
                ""
            } else {
                " mse-w"
            },
            if o.finetune.epochs > 0 {
                format!(" ft{}", o.finetune.epochs)
            } else {
                String::new()
            }
        )
    }

    fn quantize(&self, input: &QuantInput, observer: &mut dyn TrainObserver) -> Result<Quantized> {
        let o = &self.options;
        let mut model = fold(input.arch, input.params, &input.data.normalization)?;
        let mut cal = self.calibrate(&model, input)?;
        let mut notes = model.notes.clone();
        if o.finetune.epochs > 0 {
            let steps = finetune::finetune(&mut model, &cal, o, input, observer)?;
            notes.push(format!(
                "fine-tuned for {steps} steps with straight-through estimators"
            ));
            if !o.unified {
                cal = self.calibrate(&model, input)?;
            }
        }
        let lowered = lower::lower(&model, &cal, o)?;
        notes.extend(lowered.notes);
        let kind = match o.calibration.kind {
            CalibrationKind::Minmax => "min/max".to_string(),
            CalibrationKind::Percentile => {
                format!("{} percentile of |x|", o.calibration.percentile)
            }
            CalibrationKind::Mse => "least-squared-error power-of-two range of |x|".to_string(),
        };
        lowered.net.into_quantized(ReportHead {
            method: "djq",
            label: self.label(),
            config: serde_json::to_value(o).unwrap_or(serde_json::Value::Null),
            calibration: format!("{kind} over {} images", cal.images),
            finetune_epochs: o.finetune.epochs,
            variant: Some(self.variant().to_string()),
            own_model: None,
            notes,
        })
    }
}
