//! Quantization-aware fine-tuning for `int8` (Jacob et al. 2018, section 3): the folded model is
//! trained with straight-through fake quantization (`x + (q(x) - x).detach()`) of its weights
//! (symmetric, `[-127, 127]`, per tensor or per channel, scale from the current `max |w|`; `tnt`
//! passes its ternarizer instead through [`finetune_with`]) and of
//! its hidden activations (asymmetric u8 with the calibrated ranges, held fixed). AdamW with a
//! cosine-decayed learning rate; shuffles seeded by the method input's seed.

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};
use qbench_datasets::shuffled_indices;

use super::QuantInput;
use super::affine::{FoldedModel, ModuleKind, max_pool, pixels};
use super::int8::Finetune;
use super::intnet::activation_params;
use super::ranges::gather;
use crate::error::{MethodError, Result};
use crate::model::conv::conv2d;
use crate::optim::{AdamW, AdamWConfig};
use crate::train::TrainObserver;

/// Straight-through symmetric 8-bit fake quantization of a `[O, row]` weight.
fn fake_quant_weight(w: &Tensor, per_channel: bool) -> Result<Tensor> {
    let a = w.detach().abs()?;
    let max = if per_channel {
        a.max_keepdim(1)?
    } else {
        a.flatten_all()?.max_keepdim(0)?.unsqueeze(0)?
    };
    let scale = ((max + 1e-12)? / 127.0)?;
    let q = w
        .detach()
        .broadcast_div(&scale)?
        .round()?
        .clamp(-127f32, 127f32)?
        .broadcast_mul(&scale)?;
    Ok((w + (q - w)?.detach())?)
}

/// Straight-through u8 fake quantization with scale `s` and zero point `z`.
fn fake_quant_act(x: &Tensor, s: f64, z: i32) -> Result<Tensor> {
    let z = f64::from(z);
    let q = ((x.detach() / s)?.round()? + z)?.clamp(0f32, 255f32)?;
    let dq = ((q - z)? * s)?;
    Ok((x + (dq - x)?.detach())?)
}

/// A straight-through weight quantizer: module index and its `[O, row]` weight to the fake-quantized
/// weight (forward: quantized values; backward: identity).
pub type WeightQuant<'a> = dyn Fn(usize, &Tensor) -> Result<Tensor> + 'a;

fn qat_forward(
    model: &FoldedModel,
    vars: &[(Var, Var)],
    acts: &[(f64, i32)],
    weight_quant: &WeightQuant,
    mut x: Tensor,
) -> Result<Tensor> {
    let last = model.modules.len() - 1;
    for (i, (m, (w, b))) in model.modules.iter().zip(vars).enumerate() {
        if m.flatten_before {
            x = x.flatten_from(1)?;
        }
        let o = m.kind.out_channels();
        let wq = weight_quant(i, w.as_tensor())?;
        x = match m.kind {
            ModuleKind::Conv {
                in_channels,
                kernel,
                stride,
                pad,
                ..
            } => conv2d(
                &x,
                &wq.reshape((o, in_channels, kernel, kernel))?,
                stride,
                pad,
            )?
            .broadcast_add(&b.as_tensor().reshape((1, o, 1, 1))?)?,
            ModuleKind::Dense { .. } => x
                .matmul(&wq.t()?)?
                .broadcast_add(&b.as_tensor().reshape((1, o))?)?,
        };
        if i == last {
            break;
        }
        if m.relu {
            x = x.relu()?;
        }
        let (s, z) = acts[i];
        x = fake_quant_act(&x, s, z)?;
        for p in &m.pools {
            x = max_pool(&x, p)?;
        }
    }
    Ok(x)
}

/// Fine-tunes `model`'s folded weights and biases in place (int8 weights, per channel except the
/// logits layer when `per_channel`).
pub fn finetune(
    model: &mut FoldedModel,
    ranges: &[(f64, f64)],
    per_channel: bool,
    config: &Finetune,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<()> {
    let last = model.modules.len() - 1;
    let quant = |i: usize, w: &Tensor| fake_quant_weight(w, per_channel && i != last);
    finetune_with(model, ranges, &quant, config, "int8", input, observer)
}

/// Fine-tunes `model`'s folded weights and biases in place with any straight-through weight
/// quantizer (u8 activations as above); `method` names the caller in errors.
pub fn finetune_with(
    model: &mut FoldedModel,
    ranges: &[(f64, f64)],
    weight_quant: &WeightQuant,
    config: &Finetune,
    method: &str,
    input: &QuantInput,
    observer: &mut dyn TrainObserver,
) -> Result<()> {
    let dev = candle_core::Device::Cpu;
    let mut vars = Vec::new();
    let mut named = BTreeMap::new();
    for m in &model.modules {
        let o = m.kind.out_channels();
        let w = Var::from_tensor(&Tensor::from_vec(
            m.weight.clone(),
            (o, m.weight.len() / o),
            &dev,
        )?)?;
        let b = Var::from_tensor(&Tensor::from_vec(m.bias.clone(), o, &dev)?)?;
        named.insert(format!("{}.weight", m.name), w.clone());
        named.insert(format!("{}.bias", m.name), b.clone());
        vars.push((w, b));
    }
    let acts: Vec<(f64, i32)> = model
        .modules
        .iter()
        .zip(ranges)
        .map(|(m, &(lo, hi))| activation_params(if m.relu { 0.0 } else { lo }, hi, 8))
        .collect();
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
            let x = pixels(model, &gather(input.data, &idx), idx.len())?;
            let labels: Vec<u32> = idx
                .iter()
                .map(|&i| u32::from(input.data.labels[i]))
                .collect();
            let y = Tensor::from_vec(labels, idx.len(), &dev)?;
            let logits = qat_forward(model, &vars, &acts, weight_quant, x)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
            let grads = loss.backward()?;
            let step = opt.step as f64;
            let lr = config.lr * 0.5 * (1.0 + (std::f64::consts::PI * step / total).cos());
            opt.step(&named, &grads, lr)?;
            observer.batch_end(epoch, b, loss.to_scalar::<f32>()?, 0.0);
        }
        observer.epoch_end(epoch, None);
    }
    for (m, (w, b)) in model.modules.iter_mut().zip(&vars) {
        m.weight = w.as_tensor().flatten_all()?.to_vec1::<f32>()?;
        m.bias = b.as_tensor().to_vec1::<f32>()?;
    }
    Ok(())
}
