//! Sequential float models folded into affine modules for the fixed-point methods (`linear`,
//! `int8`): each module is a convolution or dense layer with its batch norm folded into weights and
//! bias, then an optional ReLU and max pools. The dataset normalization is folded into the first
//! module, so it consumes raw u8 pixels minus [`FoldedModel::input_zero_point`].
//!
//! This is the fixed-point methods' own folding, written while the shared `fold.rs` did not exist
//! yet; it supports the sequential models (`cnn`, `lenet5`, `mlp`): layers in the order
//! `conv|dense [batch_norm] [relu] [max_pool]*`, with `flatten` anywhere between modules.

use candle_core::{Device, Tensor};
use qbench_datasets::Normalization;
use qbench_engine::Pool;

use crate::error::{MethodError, Result};
use crate::model::arch::{Architecture, Layer};
use crate::model::params::{BN_EPS, Params};

/// The multiply-accumulate part of a module.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModuleKind {
    /// Square convolution, one group.
    Conv {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel size.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        pad: usize,
    },
    /// Fully connected layer.
    Dense {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
    },
}

impl ModuleKind {
    /// Output channels (features).
    pub fn out_channels(&self) -> usize {
        match *self {
            ModuleKind::Conv { out_channels, .. } => out_channels,
            ModuleKind::Dense { out_features, .. } => out_features,
        }
    }
}

/// One folded module: `pools(relu?(W x + b))`.
#[derive(Clone, Debug)]
pub struct AffineModule {
    /// Name of the conv or dense layer.
    pub name: String,
    /// Convolution or dense geometry.
    pub kind: ModuleKind,
    /// Whether the module's input is flattened first (`[C, H, W] -> [C*H*W]`).
    pub flatten_before: bool,
    /// Folded weights, `[O][C][k][k]` or `[O][F]`.
    pub weight: Vec<f32>,
    /// Folded bias `[O]`.
    pub bias: Vec<f32>,
    /// Whether a ReLU follows.
    pub relu: bool,
    /// Max pools after the activation.
    pub pools: Vec<Pool>,
    /// Per-image shape of the accumulators (before pooling): `[O, OH, OW]` or `[O]`.
    pub acc_shape: Vec<usize>,
}

/// A sequential model as folded affine modules over raw pixels.
#[derive(Clone, Debug)]
pub struct FoldedModel {
    /// Input `[C, H, W]`.
    pub input: [usize; 3],
    /// The pixel value that represents the normalized input 0 (padding reads it): the mean over
    /// channels of `255 * mean[c]`, rounded. 0 for MNIST-like sets.
    pub input_zero_point: i32,
    /// Modules in order; the last one produces the logits.
    pub modules: Vec<AffineModule>,
}

fn unsupported(method: &str, index: usize, layer: &Layer, why: &str) -> MethodError {
    MethodError::Config(format!(
        "method {method}: layer {index} ({}): {why}; supported are sequential models of \
         `conv|dense [batch_norm] [relu] [max_pool]*` modules and `flatten`",
        layer.describe()
    ))
}

fn values(params: &Params, name: &str) -> Result<Vec<f32>> {
    Ok(params.get(name)?.flatten_all()?.to_vec1::<f32>()?)
}

/// Folds `arch` with `params` into affine modules; the normalization `norm` goes into the first
/// module. `method` names the caller in errors about unsupported layers.
pub fn fold(
    arch: &Architecture,
    params: &Params,
    norm: &Normalization,
    method: &str,
) -> Result<FoldedModel> {
    arch.validate()?;
    let [c0, h0, w0] = arch.input;
    if norm.mean.len() != c0 || norm.std.len() != c0 {
        return Err(MethodError::Config(format!(
            "method {method}: the dataset normalization has {} channels, the model {c0}",
            norm.mean.len()
        )));
    }
    let mean255: Vec<f64> = norm.mean.iter().map(|&m| 255.0 * f64::from(m)).collect();
    let zp = (mean255.iter().sum::<f64>() / c0 as f64).round() as i32;
    let mut shape = vec![c0, h0, w0];
    let mut modules: Vec<AffineModule> = Vec::new();
    let mut flatten = false;
    let layers = &arch.layers;
    let mut i = 0;
    while i < layers.len() {
        let layer = &layers[i];
        let (name, kind, has_bias) = match layer {
            Layer::Flatten => {
                flatten = shape.len() == 3;
                i += 1;
                continue;
            }
            Layer::Conv {
                name,
                in_channels,
                out_channels,
                kernel,
                stride,
                pad,
                bias,
            } => {
                if flatten || shape.len() != 3 {
                    return Err(unsupported(method, i, layer, "convolution after flatten"));
                }
                let kind = ModuleKind::Conv {
                    in_channels: *in_channels,
                    out_channels: *out_channels,
                    kernel: *kernel,
                    stride: *stride,
                    pad: *pad,
                };
                (name, kind, *bias)
            }
            Layer::Dense {
                name,
                in_features,
                out_features,
                bias,
            } => {
                let kind = ModuleKind::Dense {
                    in_features: *in_features,
                    out_features: *out_features,
                };
                (name, kind, *bias)
            }
            _ => return Err(unsupported(method, i, layer, "not part of a module")),
        };
        let flatten_before = matches!(kind, ModuleKind::Dense { .. }) && shape.len() == 3;
        if matches!(kind, ModuleKind::Dense { .. }) && shape.len() == 3 && !flatten {
            return Err(unsupported(method, i, layer, "dense layer on a map"));
        }
        flatten = false;
        let o = kind.out_channels();
        let mut weight = values(params, &format!("{name}.weight"))?;
        let mut bias = if has_bias {
            values(params, &format!("{name}.bias"))?
        } else {
            vec![0.0; o]
        };
        let row = weight.len() / o;
        if modules.is_empty() {
            // x = (p / 255 - mean_c) / std_c = ((p - zp) - (255 mean_c - zp)) / (255 std_c).
            let per_channel = row / c0;
            for out in 0..o {
                let mut shift = 0.0f64;
                for (j, w) in weight[out * row..(out + 1) * row].iter_mut().enumerate() {
                    let c = j / per_channel;
                    *w /= 255.0 * norm.std[c];
                    shift += f64::from(*w) * (mean255[c] - f64::from(zp));
                }
                bias[out] -= shift as f32;
            }
        }
        i += 1;
        if let Some(Layer::BatchNorm { name: bn, .. }) = layers.get(i) {
            let gamma = values(params, &format!("{bn}.weight"))?;
            let beta = values(params, &format!("{bn}.bias"))?;
            let mean = values(params, &format!("{bn}.running_mean"))?;
            let var = values(params, &format!("{bn}.running_var"))?;
            for out in 0..o {
                let s = f64::from(gamma[out]) / (f64::from(var[out]) + BN_EPS).sqrt();
                for w in &mut weight[out * row..(out + 1) * row] {
                    *w = (f64::from(*w) * s) as f32;
                }
                bias[out] = ((f64::from(bias[out]) - f64::from(mean[out])) * s
                    + f64::from(beta[out])) as f32;
            }
            i += 1;
        }
        let relu = matches!(layers.get(i), Some(Layer::Relu));
        if relu {
            i += 1;
        }
        let acc_shape = match kind {
            ModuleKind::Conv {
                kernel,
                stride,
                pad,
                ..
            } => vec![
                o,
                (shape[1] + 2 * pad - kernel) / stride + 1,
                (shape[2] + 2 * pad - kernel) / stride + 1,
            ],
            ModuleKind::Dense { .. } => vec![o],
        };
        shape = acc_shape.clone();
        let mut pools = Vec::new();
        while let Some(Layer::MaxPool {
            kernel,
            stride,
            pad,
        }) = layers.get(i)
        {
            pools.push(Pool {
                kernel_h: *kernel,
                kernel_w: *kernel,
                stride: *stride,
                pad: *pad,
            });
            shape[1] = (shape[1] + 2 * pad - kernel) / stride + 1;
            shape[2] = (shape[2] + 2 * pad - kernel) / stride + 1;
            i += 1;
        }
        modules.push(AffineModule {
            name: name.clone(),
            kind,
            flatten_before,
            weight,
            bias,
            relu,
            pools,
            acc_shape,
        });
    }
    if let Some(last) = modules.last() {
        if last.relu || !last.pools.is_empty() {
            return Err(MethodError::Config(format!(
                "method {method}: the last layer must be a plain conv or dense layer (the logits)"
            )));
        }
    } else {
        return Err(MethodError::Config(format!(
            "method {method}: the model has no conv or dense layer"
        )));
    }
    Ok(FoldedModel {
        input: arch.input,
        input_zero_point: zp,
        modules,
    })
}

/// Raw pixels of `n` images minus the input zero point as an f32 `[n, C, H, W]` tensor.
pub fn pixels(model: &FoldedModel, images: &[u8], n: usize) -> Result<Tensor> {
    let [c, h, w] = model.input;
    let zp = model.input_zero_point as f32;
    let data: Vec<f32> = images.iter().map(|&p| f32::from(p) - zp).collect();
    Ok(Tensor::from_vec(data, (n, c, h, w), &Device::Cpu)?)
}

/// Max pool in candle (padded positions replicate the edge, so they never win).
pub fn max_pool(x: &Tensor, p: &Pool) -> Result<Tensor> {
    let x = if p.pad > 0 {
        x.pad_with_same(2, p.pad, p.pad)?
            .pad_with_same(3, p.pad, p.pad)?
    } else {
        x.clone()
    };
    Ok(x.max_pool2d_with_stride(p.kernel_h, p.stride)?)
}

impl FoldedModel {
    /// The float forward of the folded modules on `n` raw images (evaluation mode), calling
    /// `observe(module, activation)` with each hidden module's output after its ReLU and before
    /// pooling. Returns the logits `[n, classes]`.
    pub fn forward(
        &self,
        images: &[u8],
        n: usize,
        mut observe: impl FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let mut x = pixels(self, images, n)?;
        let last = self.modules.len() - 1;
        for (i, m) in self.modules.iter().enumerate() {
            if m.flatten_before {
                x = x.flatten_from(1)?;
            }
            let o = m.kind.out_channels();
            let w = Tensor::from_vec(m.weight.clone(), m.weight.len(), &Device::Cpu)?;
            let b = Tensor::from_vec(m.bias.clone(), o, &Device::Cpu)?;
            x = match m.kind {
                ModuleKind::Conv {
                    in_channels,
                    kernel,
                    stride,
                    pad,
                    ..
                } => x
                    .conv2d(
                        &w.reshape((o, in_channels, kernel, kernel))?,
                        pad,
                        stride,
                        1,
                        1,
                    )?
                    .broadcast_add(&b.reshape((1, o, 1, 1))?)?,
                ModuleKind::Dense { in_features, .. } => x
                    .matmul(&w.reshape((o, in_features))?.t()?.contiguous()?)?
                    .broadcast_add(&b.reshape((1, o))?)?,
            };
            if i == last {
                return Ok(x);
            }
            if m.relu {
                x = x.relu()?;
            }
            observe(i, &x)?;
            for p in &m.pools {
                x = max_pool(&x, p)?;
            }
        }
        Ok(x)
    }
}
