//! What BNN ([`super::bnn`]) and QNN ([`super::qnn`]) share: a network of conv/dense layers with
//! quantized weights and activations, trained with straight-through estimators and lowered with
//! batch norm + activation folded into integer thresholds.
//!
//! - [`net`]: the architecture as a chain of blocks (layer, pools, batch norm, activation).
//! - [`quant`]: the weight and activation quantizers, as integers and as STE fake quantizers.
//! - [`train`]: the training forward and loop.
//! - [`thresholds`]: batch norm + activation as exact integer thresholds (gamma < 0 flips).
//! - [`lower`]: integer weights, thresholds and the engine graph, in the integer form every
//!   method shares ([`super::intnet`], whose exact mirror is the fake-quant forward).
//!
//! The network either continues from the trained float model (`model: float`: its architecture
//! and parameters are the starting point) or is a built-in architecture trained from scratch
//! (`model: <zoo name>`, seeded initialisation).

pub mod lower;
pub mod net;
pub mod quant;
pub mod thresholds;
pub mod train;

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use super::config::check_range;
use super::fold::PoolSpec;
use super::intnet::ReportHead;
use super::{QuantInput, Quantized};
use crate::error::{MethodError, Result};
use crate::model::arch::Architecture;
use crate::model::params::Params;
use crate::model::zoo;
use crate::train::TrainObserver;
use net::Net;
use train::{Precision, Settings, Trainable};

/// Max pooling of an f32 tensor by a block's pool spec (the training forward).
fn pool(x: &Tensor, p: &PoolSpec) -> Result<Tensor> {
    super::calibrate::max_pool(x, *p)
}

/// The `model:` value that continues from the trained float model.
pub const FLOAT_MODEL: &str = "float";

/// Training settings (`train:` mapping of `bnn` and `qnn`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOptions {
    /// Passes over the training images, 1..=1000 (default 1).
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Training images, the first of a seeded shuffle of the training split; 0 = all (default 0).
    #[serde(default)]
    pub images: usize,
    /// Images per step, 2..=4096 (default 64).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Peak AdamW learning rate (cosine decay to 0), in (0, 1] (default 0.005).
    #[serde(default = "default_lr")]
    pub lr: f64,
}

fn default_epochs() -> usize {
    1
}
fn default_batch() -> usize {
    64
}
fn default_lr() -> f64 {
    5e-3
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            epochs: default_epochs(),
            images: 0,
            batch_size: default_batch(),
            lr: default_lr(),
        }
    }
}

impl TrainOptions {
    /// Range checks, naming keys as `train.<key>`.
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        check_range("train.epochs", self.epochs, 1, 1000)?;
        check_range("train.images", self.images, 0, 100_000_000)?;
        check_range("train.batch_size", self.batch_size, 2, 4096)?;
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err(("train.lr".into(), format!("{} is not in (0, 1]", self.lr)));
        }
        Ok(())
    }

    fn settings(&self) -> Settings {
        Settings {
            epochs: self.epochs,
            images: self.images,
            batch_size: self.batch_size,
            lr: self.lr,
        }
    }
}

/// Checks a `model:` value: `float` or a built-in architecture name.
pub fn validate_model(model: &str) -> std::result::Result<(), (String, String)> {
    if model == FLOAT_MODEL || zoo::ARCHITECTURES.iter().any(|(n, _)| *n == model) {
        return Ok(());
    }
    let known: Vec<&str> = zoo::ARCHITECTURES.iter().map(|(n, _)| *n).collect();
    Err((
        "model".into(),
        format!(
            "`{model}` is neither `{FLOAT_MODEL}` nor a built-in architecture ({})",
            known.join(", ")
        ),
    ))
}

fn copy_params(p: &Params) -> Result<Params> {
    let vars = p
        .vars
        .iter()
        .map(|(k, v)| Ok((k.clone(), Var::from_tensor(&v.as_tensor().copy()?)?)))
        .collect::<Result<_>>()?;
    Ok(Params {
        vars,
        buffers: p.buffers.clone(),
    })
}

/// The starting architecture and parameters for `model`.
fn start(model: &str, input: &QuantInput) -> Result<(Architecture, Params)> {
    if model == FLOAT_MODEL {
        return Ok((input.arch.clone(), copy_params(input.params)?));
    }
    let d = input.data;
    let arch =
        zoo::build(model, [d.channels, d.height, d.width], d.num_classes).ok_or_else(|| {
            MethodError::Config(format!("key `model`: unknown architecture `{model}`"))
        })?;
    let params = Params::init(&arch, input.seed)?;
    Ok((arch, params))
}

/// What a BNN/QNN run is, besides its precision.
pub struct Run<'a> {
    /// Method name (`bnn`, `qnn`).
    pub method: &'static str,
    /// Table label.
    pub label: String,
    /// The validated options as JSON, for the report.
    pub config: serde_json::Value,
    /// `float` or a built-in architecture.
    pub model: &'a str,
    /// Training settings.
    pub train: &'a TrainOptions,
}

/// Trains, lowers and reports a BNN/QNN.
pub fn quantize(
    run: &Run,
    prec: Precision,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<Quantized> {
    let (arch, mut params) = start(run.model, input)?;
    let net = Net::from_arch(&arch)?;
    let settings = run.train.settings();
    let init_idx = &input.calib_idx[..input.calib_idx.len().min(256)];
    if init_idx.len() < 2 {
        return Err(MethodError::Config(
            "BNN/QNN need at least 2 calibration images to initialise the score scale".into(),
        ));
    }
    let log_alpha = train::initial_log_alpha(&net, prec, &mut params, input, init_idx)?;
    let mut t = Trainable {
        params,
        log_alpha: Var::new(log_alpha as f32, &candle_core::Device::Cpu)?,
    };
    let steps = train::train(&net, prec, &mut t, &settings, input, observer)?;
    let int_net = lower::lower(&net, prec, &t)?;
    let images = if settings.images == 0 {
        input.train_idx.len()
    } else {
        settings.images.min(input.train_idx.len())
    };
    let mut notes = vec![
        if run.model == FLOAT_MODEL {
            format!(
                "started from the trained float `{}` model's parameters",
                arch.name
            )
        } else {
            format!(
                "own architecture `{}` trained from scratch (seeded initialisation), not the float model",
                arch.name
            )
        },
        format!(
            "{steps} straight-through training steps over {images} images ({} epoch(s), batch {}, lr {})",
            settings.epochs, settings.batch_size, settings.lr
        ),
        "input pixels p / 255 without the dataset normalization (see lowbit::train)".into(),
        "batch norm + activation folded into exact per-channel integer thresholds".into(),
    ];
    if let Some(b) = net.blocks.last().filter(|b| b.bias) {
        notes.push(format!(
            "score bias of `{}` rounded to score units (also in the fake-quant forward)",
            b.name
        ));
    }
    int_net.into_quantized(ReportHead {
        method: run.method,
        label: run.label.clone(),
        config: run.config.clone(),
        calibration: "batch-norm running statistics from training (no separate calibration)".into(),
        finetune_epochs: settings.epochs,
        variant: None,
        own_model: (run.model != FLOAT_MODEL).then(|| arch.name.clone()),
        notes,
    })
}
