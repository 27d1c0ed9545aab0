//! The float forward pass of an [`Architecture`] in candle, in training mode (batch statistics,
//! running-statistics update) or evaluation mode (running statistics).

use candle_core::{D, Tensor};

use super::arch::{Architecture, Layer};
use super::conv::conv2d;
use super::params::{BN_EPS, BN_MOMENTUM, Params};
use super::pool::max_pool2d;
use crate::error::Result;

/// Whether batch norm uses batch statistics (and updates its running statistics) or the stored ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; running statistics are updated in place.
    Train,
    /// Running statistics; nothing is updated.
    Eval,
}

/// Runs the model on `x` (N,C,H,W f32, already normalised) and returns the logits (N, classes).
pub fn forward(arch: &Architecture, params: &mut Params, x: &Tensor, mode: Mode) -> Result<Tensor> {
    run_layers(&arch.layers, params, x.clone(), mode)
}

fn run_layers(layers: &[Layer], params: &mut Params, mut x: Tensor, mode: Mode) -> Result<Tensor> {
    for layer in layers {
        x = run_layer(layer, params, x, mode)?;
    }
    Ok(x)
}

fn run_layer(layer: &Layer, params: &mut Params, x: Tensor, mode: Mode) -> Result<Tensor> {
    Ok(match layer {
        Layer::Conv { name, shape, bias } => {
            let w = params.get(&format!("{name}.weight"))?;
            let y = conv2d(&x, &w, shape)?;
            if *bias {
                let b = params.get(&format!("{name}.bias"))?;
                y.broadcast_add(&b.reshape((1, (), 1, 1))?)?
            } else {
                y
            }
        }
        Layer::Dense { name, bias, .. } => {
            let w = params.get(&format!("{name}.weight"))?;
            let y = x.matmul(&w.t()?)?;
            if *bias {
                y.broadcast_add(&params.get(&format!("{name}.bias"))?)?
            } else {
                y
            }
        }
        Layer::BatchNorm { name, .. } => batch_norm(name, params, &x, mode)?,
        Layer::Relu => x.relu()?,
        Layer::MaxPool {
            kernel,
            stride,
            pad,
        } => max_pool2d(&x, *kernel, *stride, *pad)?,
        Layer::AvgPool { kernel, stride } => x.avg_pool2d_with_stride(*kernel, *stride)?,
        Layer::GlobalAvgPool => x.mean_keepdim(D::Minus1)?.mean_keepdim(D::Minus2)?,
        Layer::Flatten => x.flatten_from(1)?,
        Layer::Residual { body, shortcut } => {
            let main = run_layers(body, params, x.clone(), mode)?;
            let short = run_layers(shortcut, params, x, mode)?;
            (main + short)?.relu()?
        }
    })
}

/// Batch norm over dim 1 of an NCHW or NF tensor (also used by the BNN/QNN training forward).
pub(crate) fn batch_norm(
    name: &str,
    params: &mut Params,
    x: &Tensor,
    mode: Mode,
) -> Result<Tensor> {
    let gamma = params.get(&format!("{name}.weight"))?;
    let beta = params.get(&format!("{name}.bias"))?;
    let mean_key = format!("{name}.running_mean");
    let var_key = format!("{name}.running_var");
    if mode == Mode::Train {
        // One fused operation over the batch (and spatial) positions of each channel.
        let (y, mean, var) = super::batch_norm::batch_norm_train(x, &gamma, &beta, BN_EPS)?;
        let count = (x.elem_count() / x.dim(1)?) as f64;
        // Running statistics use the unbiased variance, as PyTorch does.
        let unbiased = (var * (count / (count - 1.0).max(1.0)))?;
        let old_mean = params.get(&mean_key)?;
        let old_var = params.get(&var_key)?;
        let new_mean = ((old_mean * (1.0 - BN_MOMENTUM))? + (mean * BN_MOMENTUM)?)?;
        let new_var = ((old_var * (1.0 - BN_MOMENTUM))? + (unbiased * BN_MOMENTUM)?)?;
        params.buffers.insert(mean_key, new_mean);
        params.buffers.insert(var_key, new_var);
        return Ok(y);
    }
    let (mean, var) = (params.get(&mean_key)?, params.get(&var_key)?);
    let spatial = x.rank() == 4;
    let bshape = |t: &Tensor| -> Result<Tensor> {
        Ok(if spatial {
            t.reshape((1, (), 1, 1))?
        } else {
            t.reshape((1, ()))?
        })
    };
    let inv_std = (var + BN_EPS)?.sqrt()?.recip()?;
    let scale = (gamma * inv_std)?;
    let shift = (beta - (&mean * &scale)?)?;
    Ok(x.broadcast_mul(&bshape(&scale)?)?
        .broadcast_add(&bshape(&shift)?)?)
}
