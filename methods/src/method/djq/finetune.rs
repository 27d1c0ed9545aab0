//! Fine-tuning of the folded, quantized model with straight-through estimators.
//!
//! The forward is the folded model's candle forward ([`crate::method::calibrate::forward`]) with
//! fake quantizers of the unified modules inserted by [`SteHooks`]: weights
//! `w + (q(w) - w).detach()` with `q(w) = clamp(floor(w 2^fw + 0.5), lo, hi) 2^-fw`, biases at
//! `2^-(fw + f_in)`, and each module's output `c + (q(c) - c).detach()` with `c = clamp(x, lo 2^-fa,
//! hi 2^-fa)` (the clamp passes no gradient outside the range), fused into one operation
//! ([`crate::method::fake_quant`]). Activation exponents are those of
//! the calibration before fine-tuning and stay fixed; weight exponents are recomputed from the
//! current weights before every step with the same rule as the final lowering.

use candle_core::{Device, Tensor};

use super::lower::{Exponents, lower};
use super::options::DjqOptions;
use crate::error::{MethodError, Result};
use crate::method::calibrate::{
    Calibration, FoldedTensors, Hooks, Tap, TapKind, forward, raw_batch,
};
use crate::method::fold::{FoldedModel, MacModule};
use crate::method::{QuantInput, fake_quant};
use crate::objective::Objective;
use crate::optim::{AdamW, AdamWConfig};
use crate::train::{TrainObserver, cosine_lr, train_epoch};

/// Fake quantizers of the unified DJQ model for candle's autograd.
pub struct SteHooks<'a> {
    /// Exponents of every module (from [`lower`]).
    pub exponents: &'a Exponents,
    /// Weight bits.
    pub weight_bits: u8,
}

fn ste(x: &Tensor, q: &Tensor) -> Result<Tensor> {
    Ok((x + (q - x)?.detach())?)
}

fn per_channel_scale(exps: &[i32], rank: usize) -> Result<Tensor> {
    let v: Vec<f32> = exps.iter().map(|e| 2f32.powi(*e)).collect();
    let n = v.len();
    let t = Tensor::from_vec(v, n, &Device::Cpu)?;
    let mut shape = vec![n];
    shape.resize(rank, 1);
    Ok(t.reshape(shape)?)
}

impl Hooks for SteHooks<'_> {
    fn weight(&mut self, m: &MacModule, w: &Tensor) -> Result<Tensor> {
        let Some(e) = self.exponents.get(&m.name) else {
            return Ok(w.clone());
        };
        let scale = per_channel_scale(&e.weight, w.rank())?;
        let hi = f64::from((1i32 << (self.weight_bits - 1)) - 1);
        let lo = -f64::from(1i32 << (self.weight_bits - 1));
        let q = (w.broadcast_mul(&scale)? + 0.5)?
            .floor()?
            .clamp(lo, hi)?
            .broadcast_div(&scale)?;
        ste(w, &q)
    }

    fn bias(&mut self, m: &MacModule, b: &Tensor) -> Result<Tensor> {
        let Some(e) = self.exponents.get(&m.name) else {
            return Ok(b.clone());
        };
        let acc: Vec<i32> = e.weight.iter().map(|w| w + e.input).collect();
        let scale = per_channel_scale(&acc, 1)?;
        let q = (b.broadcast_mul(&scale)? + 0.5)?
            .floor()?
            .broadcast_div(&scale)?;
        ste(b, &q)
    }

    fn activation(&mut self, tap: &Tap, x: &Tensor) -> Result<Tensor> {
        if tap.kind != TapKind::Output {
            return Ok(x.clone());
        }
        let Some((f, lo, hi)) = self.exponents.get(tap.module).and_then(|e| e.output) else {
            return Ok(x.clone());
        };
        fake_quant::pow2(x, f, lo, hi)
    }
}

/// Fine-tunes `model`'s folded weights in place (see the module docs). Returns the number of
/// optimiser steps taken.
pub fn finetune(
    model: &mut FoldedModel,
    cal: &Calibration,
    opts: &DjqOptions,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<u64> {
    let ft = &opts.finetune;
    let unified = DjqOptions {
        unified: true,
        ..opts.clone()
    };
    let tensors = FoldedTensors::new(model)?;
    let vars = tensors.vars();
    let mut opt = AdamW::new(
        AdamWConfig {
            lr: ft.lr,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
        &vars,
    )?;
    let n = input.train_idx.len();
    let batches = n / ft.batch_size;
    if batches == 0 {
        return Err(MethodError::Config(format!(
            "finetune.batch_size {} is larger than the {n} training images",
            ft.batch_size
        )));
    }
    let total = (batches * ft.epochs) as u64;
    let objective = Objective::of(input.arch);
    for epoch in 0..ft.epochs {
        let seed = input.seed.wrapping_add(0x0d1a_0000 + epoch as u64);
        train_epoch(
            observer,
            epoch,
            input.train_idx,
            ft.batch_size,
            seed,
            |idx| {
                tensors.write_back(model)?;
                let lowered = lower(model, cal, &unified)?;
                let x = raw_batch(input.data, idx)?;
                let y = objective.targets(input.data, idx)?;
                let mut hooks = SteHooks {
                    exponents: &lowered.exponents,
                    weight_bits: opts.weight_bits,
                };
                let logits = forward(model, &tensors, &x, &mut hooks)?;
                let loss = objective.loss(&logits, &y)?;
                let grads = loss.backward()?;
                let t = opt.step as f64 / total.max(1) as f64;
                opt.step(&vars, &grads, cosine_lr(ft.lr, t))?;
                Ok((loss.to_scalar::<f32>()?, objective.hits(&logits, &y)?))
            },
        )?;
        observer.epoch_end(epoch, None);
    }
    tensors.write_back(model)?;
    Ok(opt.step)
}
