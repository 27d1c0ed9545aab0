//! Quantization-aware fine-tuning shared by the methods that lower through [`super::intnet`]
//! (Jacob et al. 2018, section 3): the folded model ([`super::fold`]) is trained through
//! [`super::calibrate::forward`] with a method's straight-through weight quantizer (`int8`: 8-bit
//! symmetric; `tnt`: its ternarizer) and straight-through fake quantization
//! (`x + (q(x) - x).detach()`) of every activation the integer graph requantizes: each hidden
//! layer's output (before its ReLU and max pool, which commute with the quantizer) and each
//! residual sum, quantized as the method's [`Scheme`] does with the calibrated ranges, held fixed.
//! AdamW with a cosine-decayed learning rate; shuffles seeded by the method input's seed. The
//! methods depend on this module; it depends on none of them.

use std::collections::BTreeMap;

use candle_core::Tensor;
use qbench_datasets::shuffled_indices;
use serde::{Deserialize, Serialize};

use super::QuantInput;
use super::calibrate::{Calibration, FoldedTensors, Hooks, Tap, TapKind, forward, raw_batch};
use super::config::check_range;
use super::fixed_point::{OutQuant, Scheme};
use super::fold::{FoldedModel, MacModule, Module};
use crate::error::{MethodError, Result};
use crate::objective::Objective;
use crate::optim::{AdamW, AdamWConfig};
use crate::train::TrainObserver;

/// Quantization-aware fine-tuning settings (`finetune:` mapping).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finetune {
    /// Passes over the training split, 0..=100 (default 0: post-training quantization only).
    #[serde(default)]
    pub epochs: usize,
    /// AdamW learning rate, in (0, 1] (default 1e-4).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Images per step, 2..=4096 (default 64).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
}

fn default_lr() -> f64 {
    1e-4
}
fn default_batch() -> usize {
    64
}

impl Default for Finetune {
    fn default() -> Self {
        Finetune {
            epochs: 0,
            lr: default_lr(),
            batch_size: default_batch(),
        }
    }
}

impl Finetune {
    /// Range checks; the error names the key (`finetune.lr`, ...).
    pub fn validate(&self) -> std::result::Result<(), (String, String)> {
        check_range("finetune.epochs", self.epochs, 0, 100)?;
        check_range("finetune.batch_size", self.batch_size, 2, 4096)?;
        if !(self.lr > 0.0 && self.lr <= 1.0) {
            return Err((
                "finetune.lr".into(),
                format!("{} is out of range (0, 1]", self.lr),
            ));
        }
        Ok(())
    }
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

/// Fine-tunes `model`'s folded weights and biases in place with any straight-through weight
/// quantizer (activations as `scheme` quantizes them from `cal`); errors name `scheme`'s method.
pub fn finetune(
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
    let objective = Objective::of(input.arch);
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
            let x = raw_batch(input.data, &idx)?;
            let y = objective.targets(input.data, &idx)?;
            let logits = forward(model, &tensors, &x, &mut hooks)?;
            let loss = objective.loss(&logits, &y)?;
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
