//! The fake-quant forward of a lowered BNN/QNN, in f64.
//!
//! It computes each layer's accumulators from the same integer weights and activations as the
//! engine (in f64: all partial sums are integers far below 2^53, hence exact), max-pools them, and
//! then applies batch norm **in real units** and the activation quantizer to the result
//! ([`BnFold::real`] and [`ActQuant::of_real`]), not the engine's thresholds. Agreement with the
//! integer graph therefore checks the threshold folding. The scores are `(acc + bias) * scale`
//! with the bias rounded to score units as in the graph, so the documented logit bound is 0.

use candle_core::{Device, Tensor};

use super::lower::{IntLayer, IntNet};
use super::quant::ActQuant;
use super::thresholds::BnFold;
use crate::error::{MethodError, Result};
use crate::method::FakeQuant;
use crate::method::fold::{MacGeometry, PoolSpec};

/// The f64 forward of an [`IntNet`] (see the module docs).
pub struct LowBitFake {
    net: IntNet,
    /// Per layer: the weights as an f64 tensor (`[O, C, k, k]`, or `[F, O]` transposed for dense).
    weights: Vec<Tensor>,
}

fn pool(x: &Tensor, p: &PoolSpec) -> Result<Tensor> {
    crate::method::calibrate::max_pool(x, *p)
}

impl LowBitFake {
    /// Prepares the weights of `net`.
    pub fn new(net: IntNet) -> Result<Self> {
        let dev = Device::Cpu;
        let weights = net
            .layers
            .iter()
            .map(|l: &IntLayer| {
                let w: Vec<f64> = l.weights.iter().map(|&v| f64::from(v)).collect();
                Ok(match l.block.geometry {
                    MacGeometry::Conv {
                        in_channels,
                        out_channels,
                        kernel,
                        ..
                    } => Tensor::from_vec(w, (out_channels, in_channels, kernel, kernel), &dev)?,
                    MacGeometry::Dense {
                        in_features,
                        out_features,
                    } => Tensor::from_vec(w, (out_features, in_features), &dev)?
                        .t()?
                        .contiguous()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(LowBitFake { net, weights })
    }
}

/// Batch norm in real units and the activation quantizer, element by element of `[N, C, ...]`.
fn activate(acc: &Tensor, fold: &BnFold, act: ActQuant) -> Result<Tensor> {
    let dims = acc.dims().to_vec();
    let channels = dims[1];
    let spatial: usize = dims[2..].iter().product();
    let v = acc.flatten_all()?.to_vec1::<f64>()?;
    let out: Vec<f64> = v
        .iter()
        .enumerate()
        .map(|(i, &a)| f64::from(act.of_real(fold.real(a as i64, (i / spatial) % channels))))
        .collect();
    Ok(Tensor::from_vec(out, dims, &Device::Cpu)?)
}

impl FakeQuant for LowBitFake {
    fn logits(&self, images: &[u8], n: usize) -> Result<Vec<f64>> {
        let [c, h, w] = self.net.input;
        if images.len() != n * c * h * w {
            return Err(MethodError::Config(format!(
                "{} bytes for {n} images of {c}x{h}x{w}",
                images.len()
            )));
        }
        let data: Vec<f64> = images.iter().map(|&p| f64::from(p)).collect();
        let mut x = Tensor::from_vec(data, (n, c, h, w), &Device::Cpu)?;
        for (l, wt) in self.net.layers.iter().zip(&self.weights) {
            if l.block.flatten_before && x.rank() > 2 {
                x = x.flatten_from(1)?;
            }
            let mut acc = match l.block.geometry {
                MacGeometry::Conv { stride, pad, .. } => x.conv2d(wt, pad, stride, 1, 1)?,
                MacGeometry::Dense { .. } => x.matmul(wt)?,
            };
            for p in &l.block.pre_pools {
                acc = pool(&acc, p)?;
            }
            let Some((fold, act)) = &l.fold else {
                let o = acc.dim(1)?;
                let bias = l.score_bias.clone().unwrap_or_else(|| vec![0; o]);
                let v = acc.flatten_all()?.to_vec1::<f64>()?;
                return Ok(v
                    .iter()
                    .enumerate()
                    .map(|(i, &a)| (a + f64::from(bias[i % o])) * self.net.logit_scale)
                    .collect());
            };
            let mut a = activate(&acc, fold, *act)?;
            for p in &l.block.post_pools {
                a = pool(&a, p)?;
            }
            x = a;
        }
        Err(MethodError::Config("the network has no score layer".into()))
    }

    fn logit_scale(&self) -> f64 {
        self.net.logit_scale
    }

    fn logit_bound(&self) -> f64 {
        0.0
    }
}
