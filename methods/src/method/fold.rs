//! Batch-norm folding and module grouping: the float model as a sequence of quantization-ready
//! modules, shared by every method that lowers conv/dense layers to the integer engine.
//!
//! A [`MacModule`] is a conv or dense layer with its following batch norm folded into weights and
//! bias (`w' = gamma w / sqrt(var + eps)`, `b' = beta + gamma (b - mean) / sqrt(var + eps)`), plus
//! flags for a following ReLU and a following max pool. Flatten, pools and residual blocks stay as
//! their own [`Module`]s; a residual block keeps its body and shortcut as module lists and always
//! ends in `relu(body + shortcut)`.
//!
//! **Input normalization.** The first MAC module consumes raw u8 pixels `p`: the dataset's
//! normalization `x = (p / 255 - mean_c) / std_c` is folded into it (`w' = w / (255 std_c)`,
//! `b' = b - sum w mean_c / std_c`). Every MAC module computes
//! `y = sum w' (x - input_zero_point) + bias` with zero padding *after* the zero point is removed,
//! which is exactly the engine's integer convolution. The float model pads with 0 in normalized
//! units, i.e. pixel value `255 mean_c`; the first module therefore uses
//! `input_zero_point = round(255 mean)` (and adds `input_zero_point * sum w'` back into the bias).
//! For a zero-mean dataset (Fashion-MNIST, MNIST) this is exact. When the channels' `255 mean_c`
//! differ or are not integers, padded taps read the common rounded value instead of each channel's
//! mean; [`FoldedModel::notes`] says so, and calibration and fake-quant use the same semantics, so
//! only the float reference differs from it at the border.
//!
//! A batch norm that follows a max pool (conv, pool, BN, ReLU) is folded too when every BN scale is
//! positive (a positive per-channel affine map commutes with max); otherwise folding fails with an
//! error naming the layer.

use candle_core::DType;
use qbench_datasets::Normalization;

use crate::error::{MethodError, Result};
use crate::model::arch::{Architecture, ConvShape, Layer};
use crate::model::params::{BN_EPS, Params};

/// Window of a pooling module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// Square window size.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding (max pool only; padded positions never win).
    pub pad: usize,
}

/// The engine's window of the same pool.
impl From<PoolSpec> for qbench_engine::Pool {
    fn from(p: PoolSpec) -> Self {
        qbench_engine::Pool {
            kernel_h: p.kernel,
            kernel_w: p.kernel,
            stride: p.stride,
            pad: p.pad,
        }
    }
}

/// Geometry of a multiply-accumulate module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacGeometry {
    /// 2-D convolution, weights `[O, C, k, k]`.
    Conv(ConvShape),
    /// Fully connected, weights `[O, F]`.
    Dense {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
    },
}

impl MacGeometry {
    /// Output channels (or features).
    pub fn out_channels(&self) -> usize {
        match self {
            MacGeometry::Conv(c) => c.out_channels,
            MacGeometry::Dense { out_features, .. } => *out_features,
        }
    }

    /// Weights per output channel (`C k k` or `F`).
    pub fn fan_in(&self) -> usize {
        match self {
            MacGeometry::Conv(c) => c.fan_in(),
            MacGeometry::Dense { in_features, .. } => *in_features,
        }
    }

    /// Shape of the weight tensor (`[O, C, k, k]` or `[O, F]`).
    pub fn weight_shape(&self) -> Vec<usize> {
        match self {
            MacGeometry::Conv(c) => c.weight_shape().to_vec(),
            MacGeometry::Dense {
                in_features,
                out_features,
            } => vec![*out_features, *in_features],
        }
    }
}

/// A conv or dense layer with batch norm folded in, and its following ReLU and max pool.
#[derive(Clone, Debug, PartialEq)]
pub struct MacModule {
    /// Name of the conv/dense layer (parameter prefix).
    pub name: String,
    /// Geometry.
    pub geometry: MacGeometry,
    /// Folded weights, row-major `[O, C, k, k]` or `[O, F]`.
    pub weight: Vec<f64>,
    /// Folded bias `[O]` (zero where the layer had none and no batch norm followed).
    pub bias: Vec<f64>,
    /// The batch-norm scale `gamma / sqrt(var + eps)` folded into `weight`, if a batch norm was
    /// folded (methods that keep batch norm separate divide it back out).
    pub bn_scale: Option<Vec<f64>>,
    /// Whether a ReLU follows.
    pub relu: bool,
    /// A max pool following (after the ReLU), if any.
    pub pool: Option<PoolSpec>,
    /// Value subtracted from the input before the MAC (and read by padded taps): nonzero only
    /// for the first module over raw pixels (see the module docs).
    pub input_zero_point: i32,
}

impl MacModule {
    /// Output channels (or features).
    pub fn out_channels(&self) -> usize {
        self.geometry.out_channels()
    }
}

/// One step of a folded model.
#[derive(Clone, Debug, PartialEq)]
pub enum Module {
    /// Conv/dense + folded BN (+ ReLU) (+ max pool).
    Mac(MacModule),
    /// A max pool not preceded by a MAC module.
    MaxPool(PoolSpec),
    /// Average pool (no padding).
    AvgPool(PoolSpec),
    /// Global average pool, `[C, H, W] -> [C, 1, 1]`.
    GlobalAvgPool,
    /// `[C, H, W] -> [C H W]`.
    Flatten,
    /// `relu(body(x) + shortcut(x))`; an empty shortcut is the identity.
    Residual {
        /// Name for nodes and statistics (`res{i}` by position, or the first body layer's prefix).
        name: String,
        /// Main branch.
        body: Vec<Module>,
        /// Projection branch, or empty.
        shortcut: Vec<Module>,
    },
}

/// A float model folded into modules, consuming raw u8 pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct FoldedModel {
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// Output classes.
    pub num_classes: usize,
    /// Modules in execution order.
    pub modules: Vec<Module>,
    /// Approximations made while folding (empty when exact).
    pub notes: Vec<String>,
}

impl FoldedModel {
    /// Every MAC module, depth first, in execution order (body before shortcut).
    pub fn mac_modules(&self) -> Vec<&MacModule> {
        fn walk<'a>(ms: &'a [Module], out: &mut Vec<&'a MacModule>) {
            for m in ms {
                match m {
                    Module::Mac(mac) => out.push(mac),
                    Module::Residual { body, shortcut, .. } => {
                        walk(body, out);
                        walk(shortcut, out);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.modules, &mut out);
        out
    }

    /// Mutable access to every MAC module, in the order of [`FoldedModel::mac_modules`].
    pub fn mac_modules_mut(&mut self) -> Vec<&mut MacModule> {
        fn walk<'a>(ms: &'a mut [Module], out: &mut Vec<&'a mut MacModule>) {
            for m in ms {
                match m {
                    Module::Mac(mac) => out.push(mac),
                    Module::Residual { body, shortcut, .. } => {
                        walk(body, out);
                        walk(shortcut, out);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&mut self.modules, &mut out);
        out
    }
}

fn unsupported(layer: &Layer, why: &str) -> MethodError {
    MethodError::Config(format!("cannot fold {}: {why}", layer.describe()))
}

fn tensor_f64(params: &Params, name: &str) -> Result<Vec<f64>> {
    Ok(params
        .get(name)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?)
}

/// `gamma / sqrt(var + eps)` and `beta - mean * scale` of a batch norm.
fn bn_affine(params: &Params, name: &str) -> Result<(Vec<f64>, Vec<f64>)> {
    let gamma = tensor_f64(params, &format!("{name}.weight"))?;
    let beta = tensor_f64(params, &format!("{name}.bias"))?;
    let mean = tensor_f64(params, &format!("{name}.running_mean"))?;
    let var = tensor_f64(params, &format!("{name}.running_var"))?;
    let scale: Vec<f64> = gamma
        .iter()
        .zip(&var)
        .map(|(g, v)| g / (v + BN_EPS).sqrt())
        .collect();
    let shift = beta
        .iter()
        .zip(&mean)
        .zip(&scale)
        .map(|((b, m), s)| b - m * s)
        .collect();
    Ok((scale, shift))
}

/// A conv or dense layer's parameter name, geometry and whether it has a bias; `None` for any
/// other layer.
pub fn mac_of(layer: &Layer) -> Option<(&String, MacGeometry, bool)> {
    match layer {
        Layer::Conv { name, shape, bias } => Some((name, MacGeometry::Conv(*shape), *bias)),
        Layer::Dense {
            name,
            in_features,
            out_features,
            bias,
        } => Some((
            name,
            MacGeometry::Dense {
                in_features: *in_features,
                out_features: *out_features,
            },
            *bias,
        )),
        _ => None,
    }
}

fn mac_from_layer(layer: &Layer, params: &Params) -> Result<MacModule> {
    let (name, geometry, has_bias) =
        mac_of(layer).ok_or_else(|| unsupported(layer, "not a conv or dense layer"))?;
    let weight = tensor_f64(params, &format!("{name}.weight"))?;
    let bias = if has_bias {
        tensor_f64(params, &format!("{name}.bias"))?
    } else {
        vec![0.0; geometry.out_channels()]
    };
    Ok(MacModule {
        name: name.clone(),
        geometry,
        weight,
        bias,
        bn_scale: None,
        relu: false,
        pool: None,
        input_zero_point: 0,
    })
}

fn fold_bn(mac: &mut MacModule, params: &Params, bn: &str) -> Result<()> {
    let (scale, shift) = bn_affine(params, bn)?;
    let o = mac.out_channels();
    if scale.len() != o {
        return Err(MethodError::Config(format!(
            "batch norm {bn} has {} channels, layer {} {o}",
            scale.len(),
            mac.name
        )));
    }
    let per = mac.geometry.fan_in();
    for (c, s) in scale.iter().enumerate() {
        for w in &mut mac.weight[c * per..(c + 1) * per] {
            *w *= s;
        }
        mac.bias[c] = shift[c] + s * mac.bias[c];
    }
    mac.bn_scale = Some(scale);
    Ok(())
}

fn max_pool_spec(layer: &Layer) -> Option<PoolSpec> {
    match layer {
        Layer::MaxPool {
            kernel,
            stride,
            pad,
        } => Some(PoolSpec {
            kernel: *kernel,
            stride: *stride,
            pad: *pad,
        }),
        _ => None,
    }
}

/// Groups a layer list into modules.
fn fold_layers(layers: &[Layer], params: &Params, prefix: &str) -> Result<Vec<Module>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < layers.len() {
        let layer = &layers[i];
        i += 1;
        match layer {
            Layer::Conv { .. } | Layer::Dense { .. } => {
                let mut mac = mac_from_layer(layer, params)?;
                // Conv, max pool, BN (bnn-vgg order): fold when every scale is positive.
                if let (Some(pool), Some(Layer::BatchNorm { name, .. })) =
                    (layers.get(i).and_then(max_pool_spec), layers.get(i + 1))
                {
                    let (scale, _) = bn_affine(params, name)?;
                    if scale.iter().any(|s| *s <= 0.0) {
                        return Err(unsupported(
                            &layers[i + 1],
                            "a batch norm with non-positive scales after a max pool does not commute with it",
                        ));
                    }
                    fold_bn(&mut mac, params, name)?;
                    mac.pool = Some(pool);
                    i += 2;
                } else if let Some(Layer::BatchNorm { name, .. }) = layers.get(i) {
                    fold_bn(&mut mac, params, name)?;
                    i += 1;
                }
                if let Some(Layer::Relu) = layers.get(i) {
                    mac.relu = true;
                    i += 1;
                }
                if let (None, Some(pool)) = (mac.pool, layers.get(i).and_then(max_pool_spec)) {
                    mac.pool = Some(pool);
                    i += 1;
                }
                out.push(Module::Mac(mac));
            }
            Layer::MaxPool { .. } => {
                out.push(Module::MaxPool(max_pool_spec(layer).expect("max pool")));
            }
            Layer::AvgPool { kernel, stride } => out.push(Module::AvgPool(PoolSpec {
                kernel: *kernel,
                stride: *stride,
                pad: 0,
            })),
            Layer::GlobalAvgPool => out.push(Module::GlobalAvgPool),
            Layer::Flatten => out.push(Module::Flatten),
            Layer::Residual { body, shortcut } => {
                let name = match body.first() {
                    Some(Layer::Conv { name, .. }) => name
                        .rsplit_once('.')
                        .map(|(p, _)| p.to_string())
                        .unwrap_or_else(|| name.clone()),
                    _ => format!("{prefix}res{}", out.len()),
                };
                out.push(Module::Residual {
                    body: fold_layers(body, params, &format!("{name}."))?,
                    shortcut: fold_layers(shortcut, params, &format!("{name}.short."))?,
                    name,
                });
            }
            Layer::BatchNorm { .. } => {
                return Err(unsupported(
                    layer,
                    "a batch norm must follow a conv or dense layer (optionally after its max pool)",
                ));
            }
            Layer::Relu => {
                return Err(unsupported(
                    layer,
                    "a ReLU must follow a conv or dense layer (or its batch norm)",
                ));
            }
        }
    }
    Ok(out)
}

/// Folds the dataset normalization into the first MAC module (see the module docs).
fn fold_normalization(
    model: &mut FoldedModel,
    norm: &Normalization,
    notes: &mut Vec<String>,
) -> Result<()> {
    let [c, h, w] = model.input;
    if norm.mean.len() != c || norm.std.len() != c {
        return Err(MethodError::Config(format!(
            "the normalization has {} means and {} stds for {c} input channels",
            norm.mean.len(),
            norm.std.len()
        )));
    }
    if norm.std.iter().any(|s| !(*s > 0.0 && s.is_finite())) {
        return Err(MethodError::Config(
            "the normalization has a non-positive or non-finite std".into(),
        ));
    }
    // The first module must be a MAC, possibly after a flatten.
    let first = model.modules.iter_mut().find_map(|m| match m {
        Module::Flatten => None,
        Module::Mac(mac) => Some(Ok(mac)),
        _ => Some(Err(())),
    });
    let Some(Ok(mac)) = first else {
        return Err(MethodError::Config(
            "the first layer (after an optional flatten) must be a conv or dense layer to take raw pixels"
                .into(),
        ));
    };
    let plane = h * w;
    // Input channel that weight `j` of output row `o` reads.
    let channel_of = |o: usize, j: usize| -> usize {
        match mac.geometry {
            MacGeometry::Conv(c) => c.input_channel(o, j),
            MacGeometry::Dense { .. } => j / plane,
        }
    };
    let per = mac.geometry.fan_in();
    let pixel_mean: Vec<f64> = norm.mean.iter().map(|m| 255.0 * f64::from(*m)).collect();
    let padded = matches!(mac.geometry, MacGeometry::Conv(c) if c.pad > 0);
    let zp = if padded {
        let avg = pixel_mean.iter().sum::<f64>() / c as f64;
        let z = avg.round().clamp(0.0, 255.0);
        if pixel_mean.iter().any(|m| (m - z).abs() > 1e-6) {
            notes.push(format!(
                "first layer {}: padded taps read pixel value {z} (the float model pads with 255 * mean = {pixel_mean:?})",
                mac.name
            ));
        }
        z as i32
    } else {
        0
    };
    for o in 0..mac.out_channels() {
        let row = &mut mac.weight[o * per..(o + 1) * per];
        let mut shift = 0.0;
        let mut sum = 0.0;
        for (j, wv) in row.iter_mut().enumerate() {
            let ch = channel_of(o, j);
            let std = f64::from(norm.std[ch]);
            shift += *wv * f64::from(norm.mean[ch]) / std;
            *wv /= 255.0 * std;
            sum += *wv;
        }
        mac.bias[o] += -shift + f64::from(zp) * sum;
    }
    mac.input_zero_point = zp;
    Ok(())
}

/// Folds `arch` with `params` (read-only) into modules over raw u8 pixels normalized by `norm`.
pub fn fold(arch: &Architecture, params: &Params, norm: &Normalization) -> Result<FoldedModel> {
    arch.validate()?;
    let modules = fold_layers(&arch.layers, params, "")?;
    let mut model = FoldedModel {
        input: arch.input,
        num_classes: arch.num_classes,
        modules,
        notes: Vec::new(),
    };
    let mut notes = Vec::new();
    fold_normalization(&mut model, norm, &mut notes)?;
    model.notes = notes;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::zoo;

    #[test]
    fn cnn_folds_into_three_modules() {
        let arch = zoo::build("cnn", [1, 28, 28], 10).unwrap();
        let params = Params::init(&arch, 1).unwrap();
        let norm = Normalization {
            mean: vec![0.0],
            std: vec![1.0],
        };
        let m = fold(&arch, &params, &norm).unwrap();
        let macs = m.mac_modules();
        assert_eq!(macs.len(), 3);
        assert!(macs[0].relu && macs[0].pool.is_some() && macs[0].bn_scale.is_some());
        assert!(!macs[2].relu && macs[2].pool.is_none());
        assert!(m.notes.is_empty());
    }

    #[test]
    fn resnet_blocks_keep_body_and_shortcut() {
        let arch = zoo::build("resnet20", [3, 32, 32], 10).unwrap();
        let params = Params::init(&arch, 1).unwrap();
        let norm = Normalization {
            mean: vec![0.5, 0.4, 0.3],
            std: vec![0.2, 0.2, 0.2],
        };
        let m = fold(&arch, &params, &norm).unwrap();
        assert_eq!(m.mac_modules().len(), 1 + 9 * 2 + 2 + 1);
        assert_eq!(m.notes.len(), 1, "non-uniform mean padding is noted");
    }
}
