//! Training a BNN/QNN with straight-through estimators.
//!
//! The forward ([`forward`]) runs each [`Block`] as the float model would, with the weights
//! replaced by [`WeightQuant::ste`] of the latent weights, the ReLU by [`ActQuant::ste`], and the
//! network input taken as `p / 255` of the raw pixels (zero padding is then pixel 0, as in the
//! engine; the dataset normalization is not applied, since a per-channel scale could not be folded
//! into +-1 weights and the first batch norm absorbs any offset). The scores are
//! `alpha * (x . w_q) + b` with one learned `alpha = exp(log_alpha)`, initialised so that the
//! first batch's scores have standard deviation [`INITIAL_SCORE_STD`].
//!
//! [`train`] is AdamW with a cosine-decayed learning rate, no weight decay, cross-entropy loss,
//! shuffles seeded by the method seed; binary latent weights are clipped to `[-1, 1]` after every
//! update (BNN).

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};
use qbench_datasets::shuffled_indices;

use super::net::{Block, Net};
use super::pool;
use super::quant::{ActQuant, WeightQuant};
use crate::error::{MethodError, Result};
use crate::method::QuantInput;
use crate::method::calibrate::raw_batch;
use crate::method::fold::MacGeometry;
use crate::model::conv::conv2d;
use crate::model::forward::{Mode, batch_norm};
use crate::model::params::Params;
use crate::objective::Objective;
use crate::optim::{AdamW, AdamWConfig};
use crate::train::{TrainObserver, cosine_lr, train_epoch};

/// Standard deviation of the first batch's scores that the score scale is initialised to.
pub const INITIAL_SCORE_STD: f64 = 3.0;

/// Name of the learned log score scale among the trainable variables.
pub const LOG_ALPHA: &str = "scores.log_alpha";

/// The quantizers of a network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Precision {
    /// Weights of every layer.
    pub weights: WeightQuant,
    /// Activations of every hidden layer.
    pub activations: ActQuant,
}

/// Training settings (validated by the methods' options).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Passes over the training images.
    pub epochs: usize,
    /// Training images used (the first of a seeded shuffle of `train_idx`; 0 = all).
    pub images: usize,
    /// Images per step.
    pub batch_size: usize,
    /// Peak AdamW learning rate.
    pub lr: f64,
}

/// A network's trainable state: the float model's parameters and the score scale.
pub struct Trainable {
    /// Weights, biases, batch norms.
    pub params: Params,
    /// `log(alpha)`, a scalar.
    pub log_alpha: Var,
}

/// One block's layer up to (not including) its batch norm: the real accumulator plus bias.
fn mac(block: &Block, params: &Params, wq: WeightQuant, last: bool, x: &Tensor) -> Result<Tensor> {
    let w = params.get(&format!("{}.weight", block.name))?;
    let wq = wq.ste(&w, !last)?;
    let mut y = match block.geometry {
        MacGeometry::Conv(c) => conv2d(x, &wq, &c)?,
        MacGeometry::Dense { .. } => x.matmul(&wq.t()?)?,
    };
    if block.bias && !last {
        let b = params.get(&format!("{}.bias", block.name))?;
        y = match block.geometry {
            MacGeometry::Conv(_) => y.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
            MacGeometry::Dense { .. } => y.broadcast_add(&b.reshape((1, ()))?)?,
        };
    }
    for p in &block.pre_pools {
        y = pool(&y, p)?;
    }
    Ok(y)
}

/// The input of the score layer (the last hidden activation), flattened if the net says so.
fn features(
    net: &Net,
    prec: Precision,
    params: &mut Params,
    x: &Tensor,
    mode: Mode,
) -> Result<Tensor> {
    let mut x = x.clone();
    let (last, hidden) = net.blocks.split_last().expect("a net has a score layer");
    for block in hidden {
        if block.flatten_before {
            x = x.flatten_from(1)?;
        }
        let y = mac(block, params, prec.weights, false, &x)?;
        let bn = block
            .batch_norm
            .as_deref()
            .expect("hidden blocks have a batch norm");
        let mut a = prec.activations.ste(&batch_norm(bn, params, &y, mode)?)?;
        for p in &block.post_pools {
            a = pool(&a, p)?;
        }
        x = a;
    }
    if last.flatten_before {
        x = x.flatten_from(1)?;
    }
    Ok(x)
}

/// Scores before `alpha` and bias: `x . w_q` of the last layer.
fn raw_scores(
    net: &Net,
    prec: Precision,
    params: &mut Params,
    x: &Tensor,
    mode: Mode,
) -> Result<Tensor> {
    let f = features(net, prec, params, x, mode)?;
    let last = net.blocks.last().expect("a net has a score layer");
    mac(last, params, prec.weights, true, &f)
}

/// The training forward: scores `[N, classes]` for pixels `x = p / 255` `[N, C, H, W]`.
pub fn forward(
    net: &Net,
    prec: Precision,
    t: &mut Trainable,
    x: &Tensor,
    mode: Mode,
) -> Result<Tensor> {
    let raw = raw_scores(net, prec, &mut t.params, x, mode)?;
    let mut s = raw.broadcast_mul(&t.log_alpha.as_tensor().exp()?)?;
    let last = net.blocks.last().expect("a net has a score layer");
    if last.bias {
        let b = t.params.get(&format!("{}.bias", last.name))?;
        s = match last.geometry {
            MacGeometry::Conv(_) => s.broadcast_add(&b.reshape((1, (), 1, 1))?)?,
            MacGeometry::Dense { .. } => s.broadcast_add(&b)?,
        };
    }
    if net.flatten_after {
        s = s.flatten_from(1)?;
    }
    Ok(s)
}

fn pixels(input: &QuantInput, idx: &[usize]) -> Result<Tensor> {
    Ok((raw_batch(input.data, idx)? / 255.0)?)
}

/// `alpha` such that the raw scores of `idx` have standard deviation [`INITIAL_SCORE_STD`].
pub fn initial_log_alpha(
    net: &Net,
    prec: Precision,
    params: &mut Params,
    input: &QuantInput,
    idx: &[usize],
) -> Result<f64> {
    let x = pixels(input, idx)?;
    // Evaluation statistics would be those of the float model (or of the initialisation); the
    // batch's own statistics match what training starts from. Running statistics are restored.
    let saved = params.buffers.clone();
    let raw = raw_scores(net, prec, params, &x, Mode::Train)?;
    params.buffers = saved;
    let v = raw
        .flatten_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_vec1::<f64>()?;
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    Ok(if std > 0.0 && std.is_finite() {
        (INITIAL_SCORE_STD / std).ln()
    } else {
        0.0
    })
}

/// Trains `t` in place; returns the optimiser steps taken.
pub fn train(
    net: &Net,
    prec: Precision,
    t: &mut Trainable,
    settings: &Settings,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<u64> {
    let mut pool_idx: Vec<usize> =
        shuffled_indices(input.train_idx.len(), input.seed.wrapping_add(0xb22_0000))
            .into_iter()
            .map(|i| input.train_idx[i])
            .collect();
    if settings.images > 0 {
        pool_idx.truncate(settings.images);
    }
    let n = pool_idx.len();
    let batches = n / settings.batch_size;
    if batches == 0 {
        return Err(MethodError::Config(format!(
            "train.batch_size {} is larger than the {n} training images",
            settings.batch_size
        )));
    }
    let mut vars: BTreeMap<String, Var> = t.params.vars.clone();
    vars.insert(LOG_ALPHA.to_string(), t.log_alpha.clone());
    let mut opt = AdamW::new(
        AdamWConfig {
            lr: settings.lr,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
        &vars,
    )?;
    let binary_weights: Vec<Var> = if prec.weights == WeightQuant::Binary {
        net.blocks
            .iter()
            .filter_map(|b| t.params.vars.get(&format!("{}.weight", b.name)).cloned())
            .collect()
    } else {
        Vec::new()
    };
    let total = (batches * settings.epochs) as f64;
    let objective = Objective::of(input.arch);
    for epoch in 0..settings.epochs {
        let seed = input.seed.wrapping_add(0xb22_1000 + epoch as u64);
        train_epoch(
            observer,
            epoch,
            &pool_idx,
            settings.batch_size,
            seed,
            |idx| {
                let x = pixels(input, idx)?;
                let y = objective.targets(input.data, idx)?;
                let logits = forward(net, prec, t, &x, Mode::Train)?;
                let loss = objective.loss(&logits, &y)?;
                let grads = loss.backward()?;
                let progress = opt.step as f64 / total.max(1.0);
                opt.step(&vars, &grads, cosine_lr(settings.lr, progress))?;
                for w in &binary_weights {
                    w.set(&w.as_tensor().clamp(-1f32, 1f32)?)?;
                }
                Ok((loss.to_scalar::<f32>()?, objective.hits(&logits, &y)?))
            },
        )?;
        observer.epoch_end(epoch, None);
    }
    Ok(opt.step)
}
