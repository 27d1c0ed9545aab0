//! Quantization-aware fine-tuning for `int8` (Jacob et al. 2018, section 3): the folded model
//! ([`super::fold`]) is trained through [`super::calibrate::forward`] with straight-through fake
//! quantization (`x + (q(x) - x).detach()`) of its weights (symmetric, `[-127, 127]`, per tensor
//! or per channel, scale from the current `max |w|`; `tnt` passes its ternarizer instead through
//! [`finetune_with`]) and of every activation the integer graph requantizes: each hidden layer's
//! output (before its ReLU and max pool, which commute with the quantizer) and each residual sum,
//! quantized as the method's [`Scheme`] does with the calibrated ranges, held fixed. AdamW with a
//! cosine-decayed learning rate; shuffles seeded by the method input's seed.

use std::collections::BTreeMap;

use candle_core::Tensor;
use qbench_datasets::shuffled_indices;

use super::QuantInput;
use super::calibrate::{Calibration, FoldedTensors, Hooks, Tap, TapKind, forward, raw_batch};
use super::fold::{FoldedModel, MacModule, Module};
use super::int8::Finetune;
use super::intnet::{OutQuant, Scheme};
use crate::error::{MethodError, Result};
use crate::optim::{AdamW, AdamWConfig};
use crate::train::TrainObserver;

/// Straight-through symmetric 8-bit fake quantization of a weight tensor, one scale per tensor or
/// per output channel (dim 0).
fn fake_quant_weight(w: &Tensor, per_channel: bool) -> Result<Tensor> {
    let o = w.dims()[0];
    let rows = w.detach().reshape((o, ()))?;
    let a = rows.abs()?;
    let max = if per_channel {
        a.max_keepdim(1)?
    } else {
        a.flatten_all()?.max_keepdim(0)?.unsqueeze(0)?
    };
    let scale = ((max + 1e-12)? / 127.0)?;
    let q = rows
        .broadcast_div(&scale)?
        .round()?
        .clamp(-127f32, 127f32)?
        .broadcast_mul(&scale)?
        .reshape(w.shape())?;
    Ok((w + (q - w)?.detach())?)
}

/// Straight-through fake quantization to `q`'s scale, zero point and dtype range.
fn fake_quant_act(x: &Tensor, q: &OutQuant) -> Result<Tensor> {
    let z = f64::from(q.zero_point);
    let (lo, hi) = (q.dtype.min_value() as f32, q.dtype.max_value() as f32);
    let v = ((x.detach() / q.scale)?.round()? + z)?.clamp(lo, hi)?;
    let dq = ((v - z)? * q.scale)?;
    Ok((x + (dq - x)?.detach())?)
}

/// A straight-through weight quantizer: a module and its weight tensor to the fake-quantized
/// weight (forward: quantized values; backward: identity).
pub type WeightQuant<'a> = dyn Fn(&MacModule, &Tensor) -> Result<Tensor> + 'a;

/// The activation quantizers by tap key: every hidden layer's pre-activation and every residual
/// sum, as `scheme` quantizes them from `cal`.
fn activation_quants(
    model: &FoldedModel,
    cal: &Calibration,
    scheme: &dyn Scheme,
) -> Result<BTreeMap<(String, TapKind), OutQuant>> {
    fn walk(
        ms: &[Module],
        logits: &str,
        cal: &Calibration,
        scheme: &dyn Scheme,
        out: &mut BTreeMap<(String, TapKind), OutQuant>,
    ) -> Result<()> {
        for m in ms {
            let (name, kind, relu) = match m {
                Module::Mac(mac) if mac.name != logits => {
                    (&mac.name, TapKind::PreActivation, mac.relu)
                }
                Module::Residual {
                    name,
                    body,
                    shortcut,
                } => {
                    walk(body, logits, cal, scheme, out)?;
                    walk(shortcut, logits, cal, scheme, out)?;
                    (name, TapKind::Sum, true)
                }
                _ => continue,
            };
            let stats = cal.get(name, kind).ok_or_else(|| {
                MethodError::Config(format!(
                    "method {}: no calibration statistics for {name}",
                    scheme.method()
                ))
            })?;
            out.insert((name.clone(), kind), scheme.activation(name, stats, relu)?);
        }
        Ok(())
    }
    let logits = model
        .mac_modules()
        .last()
        .map(|m| m.name.clone())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    walk(&model.modules, &logits, cal, scheme, &mut out)?;
    Ok(out)
}

struct QatHooks<'a> {
    acts: &'a BTreeMap<(String, TapKind), OutQuant>,
    weight_quant: &'a WeightQuant<'a>,
}

impl Hooks for QatHooks<'_> {
    fn weight(&mut self, module: &MacModule, w: &Tensor) -> Result<Tensor> {
        (self.weight_quant)(module, w)
    }

    fn activation(&mut self, tap: &Tap, x: &Tensor) -> Result<Tensor> {
        match self.acts.get(&(tap.module.to_string(), tap.kind)) {
            Some(q) => fake_quant_act(x, q),
            None => Ok(x.clone()),
        }
    }
}

/// Fine-tunes `model`'s folded weights and biases in place (int8 weights, per channel except the
/// logits layer when `per_channel`; activations as `scheme` quantizes them from `cal`).
pub fn finetune(
    model: &mut FoldedModel,
    cal: &Calibration,
    scheme: &super::int8::Int8Scheme,
    config: &Finetune,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<()> {
    let logits = model.mac_modules().last().map(|m| m.name.clone());
    let per_channel = scheme.per_channel;
    let quant = |m: &MacModule, w: &Tensor| {
        fake_quant_weight(w, per_channel && Some(&m.name) != logits.as_ref())
    };
    finetune_with(model, cal, scheme, &quant, config, input, observer)
}

/// Fine-tunes `model`'s folded weights and biases in place with any straight-through weight
/// quantizer (activations as `scheme` quantizes them from `cal`); errors name `scheme`'s method.
pub fn finetune_with(
    model: &mut FoldedModel,
    cal: &Calibration,
    scheme: &dyn Scheme,
    weight_quant: &WeightQuant,
    config: &Finetune,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<()> {
    let method = scheme.method();
    let acts = activation_quants(model, cal, scheme)?;
    let tensors = FoldedTensors::new(model)?;
    let named = tensors.vars();
    let mut opt = AdamW::new(
        AdamWConfig {
            lr: config.lr,
            weight_decay: 0.0,
            ..AdamWConfig::default()
        },
        &named,
    )?;
    let batches = input.train_idx.len() / config.batch_size;
    if batches == 0 {
        return Err(MethodError::Config(format!(
            "method {method}: key `finetune.batch_size`: {} is larger than the {} training images",
            config.batch_size,
            input.train_idx.len()
        )));
    }
    let mut hooks = QatHooks {
        acts: &acts,
        weight_quant,
    };
    let total = (batches * config.epochs) as f64;
    for epoch in 0..config.epochs {
        observer.epoch_start(epoch, batches);
        let order = shuffled_indices(
            input.train_idx.len(),
            input.seed.wrapping_add(1000 + epoch as u64),
        );
        for b in 0..batches {
            if observer.should_stop() {
                return Err(MethodError::Interrupted);
            }
            let idx: Vec<usize> = order[b * config.batch_size..(b + 1) * config.batch_size]
                .iter()
                .map(|&i| input.train_idx[i])
                .collect();
            let (x, y) = raw_batch(input.data, &idx)?;
            let logits = forward(model, &tensors, &x, &mut hooks)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let grads = loss.backward()?;
            let step = opt.step as f64;
            let lr = config.lr * 0.5 * (1.0 + (std::f64::consts::PI * step / total).cos());
            opt.step(&named, &grads, lr)?;
            observer.batch_end(epoch, b, loss.to_scalar::<f32>()?, 0.0);
        }
        observer.epoch_end(epoch, None);
    }
    tensors.write_back(model)
}
