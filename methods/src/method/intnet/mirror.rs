//! The exact fake-quant mirror of an [`IntNet`].
//!
//! Activations are f64 tensors holding the engine's integers `q`. Every convolution and dense
//! layer runs in candle on `q - z` and the integer weights: all products and partial sums are
//! integers below 2^53, so they are exact whatever the summation order, and padding with 0 after
//! the zero point is removed is the engine's padding with the zero point. Requantizers, residual
//! adds and average pools call the engine's own functions ([`qbench_engine::Requant::apply`], [`residual_add`],
//! [`avg_round`]); max pools compare the same integers. So the mirror's logits equal the engine's
//! times [`IntNet::logit_scale`], and the documented logit bound is 0.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};
use qbench_engine::Pool;
use qbench_engine::requant::{avg_round, residual_add};

use super::{IntLayer, IntModule, IntNet, IntResidual};
use crate::error::{MethodError, Result};
use crate::method::FakeQuant;
use crate::method::calibrate::max_pool;
use crate::method::fold::{MacGeometry, PoolSpec};

/// The exact fake-quant mirror of an [`IntNet`] (see the module documentation); logit bound 0.
pub struct IntMirror {
    net: IntNet,
    /// Per layer name: the weights as f64 `[O, C, k, k]` or transposed `[F, O]`, and the bias.
    tensors: BTreeMap<String, (Tensor, Tensor)>,
}

impl IntMirror {
    /// Prepares the mirror of `net`.
    pub fn new(net: IntNet) -> Result<Self> {
        let dev = Device::Cpu;
        let mut tensors = BTreeMap::new();
        for l in net.layers() {
            let o = l.geometry.out_channels();
            let w: Vec<f64> = l.weights.iter().map(|&w| f64::from(w)).collect();
            let b: Vec<f64> = l.bias.iter().map(|&b| f64::from(b)).collect();
            let w = match l.geometry {
                MacGeometry::Conv {
                    in_channels,
                    kernel,
                    ..
                } => Tensor::from_vec(w, (o, in_channels, kernel, kernel), &dev)?,
                MacGeometry::Dense { in_features, .. } => {
                    Tensor::from_vec(w, (o, in_features), &dev)?
                        .t()?
                        .contiguous()?
                }
            };
            tensors.insert(l.name.clone(), (w, Tensor::from_vec(b, o, &dev)?));
        }
        Ok(IntMirror { net, tensors })
    }

    /// The mirrored network.
    pub fn net(&self) -> &IntNet {
        &self.net
    }

    fn modules(&self, modules: &[IntModule], mut x: Tensor) -> Result<Tensor> {
        for m in modules {
            x = match m {
                IntModule::Layer(l) => self.layer(l, x)?,
                IntModule::MaxPool(p) => max_pool(&x, spec(p))?,
                IntModule::AvgPool(p) => avg_pool(&x, p)?,
                IntModule::GlobalAvgPool => global_avg_pool(&x)?,
                IntModule::Flatten => x.flatten_from(1)?,
                IntModule::Residual(r) => self.residual(r, x)?,
            };
        }
        Ok(x)
    }

    fn layer(&self, l: &IntLayer, x: Tensor) -> Result<Tensor> {
        let (w, b) = &self.tensors[&l.name];
        let o = l.geometry.out_channels();
        let x = (x - f64::from(l.input_zero_point))?;
        let acc = match l.geometry {
            MacGeometry::Conv { stride, pad, .. } => x
                .conv2d(w, pad, stride, 1, 1)?
                .broadcast_add(&b.reshape((1, o, 1, 1))?)?,
            MacGeometry::Dense { .. } => x
                .flatten_from(1)?
                .matmul(w)?
                .broadcast_add(&b.reshape((1, o))?)?,
        };
        let Some((rq, _)) = &l.requant else {
            // Logits: wrap as the engine's i32 accumulators do.
            return map(&acc, |_, a| f64::from(a as i64 as i32));
        };
        let spatial: usize = l.acc_shape.iter().skip(1).product();
        let q = map(&acc, |i, a| {
            f64::from(rq.apply(a as i64 as i32, (i / spatial.max(1)) % o))
        })?;
        match l.pool {
            Some(p) => max_pool(&q, spec(&p)),
            None => Ok(q),
        }
    }

    fn residual(&self, r: &IntResidual, x: Tensor) -> Result<Tensor> {
        let a = self.modules(&r.body, x.clone())?;
        let b = self.modules(&r.shortcut, x)?;
        let bv = b.flatten_all()?.to_vec1::<f64>()?;
        map(&a, |i, av| {
            let sum = residual_add(av as i32, bv[i] as i32, &r.add);
            f64::from(r.requant.apply(sum, 0))
        })
    }
}

fn spec(p: &Pool) -> PoolSpec {
    PoolSpec {
        kernel: p.kernel_h,
        stride: p.stride,
        pad: p.pad,
    }
}

/// `f(flat index, value)` over every element, same shape.
fn map(t: &Tensor, f: impl Fn(usize, f64) -> f64) -> Result<Tensor> {
    let v = t.flatten_all()?.to_vec1::<f64>()?;
    let out: Vec<f64> = v.iter().enumerate().map(|(i, &a)| f(i, a)).collect();
    Ok(Tensor::from_vec(out, t.shape(), &Device::Cpu)?)
}

/// The engine's average pool: window sums (exact integers in f64) rounded by [`avg_round`].
fn avg_pool(x: &Tensor, p: &Pool) -> Result<Tensor> {
    let count = (p.kernel_h * p.kernel_w) as f64;
    let mean = x.avg_pool2d_with_stride((p.kernel_h, p.kernel_w), (p.stride, p.stride))?;
    map(&mean, |_, m| {
        f64::from(avg_round((m * count).round() as i64, count as i64))
    })
}

/// The engine's global average pool, `[N, C, H, W] -> [N, C]`.
fn global_avg_pool(x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let sums = x.sum((2, 3))?.flatten_all()?.to_vec1::<f64>()?;
    let count = (h * w) as i64;
    let out: Vec<f64> = sums
        .iter()
        .map(|&s| f64::from(avg_round(s as i64, count)))
        .collect();
    Ok(Tensor::from_vec(out, (n, c), &Device::Cpu)?)
}

impl FakeQuant for IntMirror {
    fn logits(&self, images: &[u8], n: usize) -> Result<Vec<f64>> {
        let [c, h, w] = self.net.input;
        if images.len() != n * c * h * w {
            return Err(MethodError::Config(format!(
                "{} bytes for {n} images of {c}x{h}x{w}",
                images.len()
            )));
        }
        let data: Vec<f64> = images.iter().map(|&p| f64::from(p)).collect();
        let x = Tensor::from_vec(data, (n, c, h, w), &Device::Cpu)?;
        let logits = self.modules(&self.net.modules, x)?;
        Ok(logits
            .flatten_all()?
            .to_vec1::<f64>()?
            .iter()
            .map(|&a| a * self.net.logit_scale)
            .collect())
    }

    fn logit_scale(&self) -> f64 {
        self.net.logit_scale
    }

    fn logit_bound(&self) -> f64 {
        0.0
    }
}
