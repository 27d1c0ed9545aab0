//! The exact f64 mirror of an engine graph: every method's fake-quant forward.
//!
//! Activations are f64 tensors `[N, ...]` holding the engine's integers (binary activations as
//! -1 and +1). Convolutions and dense layers run in candle on `x - z` and the integer weights:
//! all products and partial sums are integers below 2^53, so they are exact whatever the summation
//! order, and zero padding after the zero point is removed is the engine's padding with the zero
//! point (and, on +-1 inputs, the binary ops' rule that padded taps contribute 0). Accumulators
//! then wrap to i32 as the engine's do. Requantizers, residual adds and average pools call the
//! engine's own arithmetic ([`qbench_engine::Requant::apply`], [`residual_add`], [`avg_round`]);
//! max pools and ReLUs compare the same integers. So the mirror's logits equal the engine's times
//! the logit scale, and the documented bound is 0.

use candle_core::{Device, Tensor};
use qbench_engine::requant::{avg_round, residual_add};
use qbench_engine::{Op, Pool, QGraph};

use crate::error::{MethodError, Result};
use crate::method::FakeQuant;
use crate::method::calibrate::max_pool;
use crate::method::fold::PoolSpec;

/// The exact fake-quant mirror of a graph (see the module documentation); logit bound 0.
pub struct IntMirror {
    graph: QGraph,
    logit_scale: f64,
    /// Per node: the weights of a conv (`[O, C/groups, kh, kw]`) or dense layer (transposed,
    /// `[F, O]`) as f64, and its bias as `[O]`.
    weights: Vec<Option<(Tensor, Option<Tensor>)>>,
    /// Per node: the last node reading its output (so values are dropped after it).
    last_use: Vec<usize>,
}

fn f64_tensor(v: &[i8], shape: &[usize]) -> Result<Tensor> {
    let data: Vec<f64> = v.iter().map(|&w| f64::from(w)).collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

fn bias_tensor(bias: &Option<Vec<i32>>) -> Result<Option<Tensor>> {
    bias.as_ref()
        .map(|b| {
            let data: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
            let n = data.len();
            Ok(Tensor::from_vec(data, n, &Device::Cpu)?)
        })
        .transpose()
}

fn dense_weights(w: &[i8], out: usize, inp: usize) -> Result<Tensor> {
    Ok(f64_tensor(w, &[out, inp])?.t()?.contiguous()?)
}

impl IntMirror {
    /// Prepares the mirror of `graph`, whose integer logits are worth `logit_scale` each.
    pub fn new(graph: &QGraph, logit_scale: f64) -> Result<Self> {
        let mut weights = Vec::with_capacity(graph.nodes.len());
        let mut last_use: Vec<usize> = (0..graph.nodes.len()).collect();
        for (i, node) in graph.nodes.iter().enumerate() {
            for &p in &node.inputs {
                last_use[p] = i;
            }
            // Every MAC node's weights and bias, from (O, C/groups, kh, kw) or (O, F).
            let conv_shape =
                |o: usize, c: usize, g: usize, kh: usize, kw: usize| [o, c / g, kh, kw];
            let (w, shape, bias): (&[i8], Vec<usize>, &Option<Vec<i32>>) = match &node.op {
                Op::Conv2d(c) => (
                    &c.weights,
                    conv_shape(
                        c.out_channels,
                        c.in_channels,
                        c.groups,
                        c.kernel_h,
                        c.kernel_w,
                    )
                    .to_vec(),
                    &c.bias,
                ),
                Op::BinaryConv2d(c) => (
                    &c.weights,
                    conv_shape(
                        c.out_channels,
                        c.in_channels,
                        c.groups,
                        c.kernel_h,
                        c.kernel_w,
                    )
                    .to_vec(),
                    &c.bias,
                ),
                Op::Dense(d) => (&d.weights, vec![d.out_features, d.in_features], &d.bias),
                Op::BinaryDense(d) => (&d.weights, vec![d.out_features, d.in_features], &d.bias),
                _ => {
                    weights.push(None);
                    continue;
                }
            };
            let w = if shape.len() == 2 {
                dense_weights(w, shape[0], shape[1])?
            } else {
                f64_tensor(w, &shape)?
            };
            weights.push(Some((w, bias_tensor(bias)?)));
        }
        Ok(IntMirror {
            graph: graph.clone(),
            logit_scale,
            weights,
            last_use,
        })
    }

    /// The output of node `i` for the batch, given the values of its inputs.
    fn node(&self, i: usize, x: &[&Tensor]) -> Result<Tensor> {
        let node = &self.graph.nodes[i];
        let weights = || {
            self.weights[i]
                .as_ref()
                .ok_or_else(|| MethodError::Config(format!("node {}: no weights", node.name)))
        };
        Ok(match &node.op {
            Op::Input => unreachable!("the input is not computed"),
            Op::Conv2d(c) => {
                let (w, b) = weights()?;
                let x = (x[0] - f64::from(c.input_zero_point))?;
                accumulate(x.conv2d(w, c.pad, c.stride, 1, c.groups)?, b.as_ref())?
            }
            Op::BinaryConv2d(c) => {
                let (w, b) = weights()?;
                accumulate(x[0].conv2d(w, c.pad, c.stride, 1, c.groups)?, b.as_ref())?
            }
            Op::Dense(d) => {
                let (w, b) = weights()?;
                let x = (x[0].flatten_from(1)? - f64::from(d.input_zero_point))?;
                accumulate(x.matmul(w)?, b.as_ref())?
            }
            Op::BinaryDense(_) => {
                let (w, b) = weights()?;
                accumulate(x[0].flatten_from(1)?.matmul(w)?, b.as_ref())?
            }
            Op::Requant(r) => {
                let dims = x[0].dims();
                let channels = dims[1];
                let spatial: usize = dims[2..].iter().product();
                map(x[0], |k, a| {
                    f64::from(r.requant.apply(a as i32, (k / spatial) % channels))
                })?
            }
            Op::MaxPool(p) => max_pool(x[0], spec(p))?,
            Op::AvgPool(p) => avg_pool(x[0], p)?,
            Op::GlobalAvgPool => global_avg_pool(x[0])?,
            Op::Relu { zero_point } => x[0].maximum(f64::from(*zero_point))?,
            Op::Add(add) => {
                let b = x[1].flatten_all()?.to_vec1::<f64>()?;
                map(x[0], |k, a| {
                    f64::from(residual_add(a as i32, b[k] as i32, add))
                })?
            }
            Op::Flatten => x[0].flatten_from(1)?,
            Op::Output => x[0].clone(),
        })
    }
}

/// Adds the per-channel bias to exact accumulators `[N, O, ...]` and wraps them to i32 as the
/// engine's wrapping arithmetic does.
fn accumulate(acc: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let acc = match bias {
        Some(b) => {
            let mut shape = vec![1; acc.rank()];
            shape[1] = b.dim(0)?;
            acc.broadcast_add(&b.reshape(shape)?)?
        }
        None => acc,
    };
    map(&acc, |_, a| f64::from(a as i64 as i32))
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
        let input = &self.graph.nodes[0].output.shape;
        let per: usize = input.iter().product();
        if images.len() != n * per {
            return Err(MethodError::Config(format!(
                "{} bytes for {n} images of {input:?}",
                images.len()
            )));
        }
        let mut shape = vec![n];
        shape.extend_from_slice(input);
        let data: Vec<f64> = images.iter().map(|&p| f64::from(p)).collect();
        let mut values: Vec<Option<Tensor>> = vec![None; self.graph.nodes.len()];
        values[0] = Some(Tensor::from_vec(data, shape, &Device::Cpu)?);
        for i in 1..self.graph.nodes.len() {
            let node = &self.graph.nodes[i];
            let inputs = node
                .inputs
                .iter()
                .map(|&p| {
                    values[p].as_ref().ok_or_else(|| {
                        MethodError::Config(format!("node {}: input {p} missing", node.name))
                    })
                })
                .collect::<Result<Vec<&Tensor>>>()?;
            let y = self.node(i, &inputs)?;
            for &p in &node.inputs {
                if self.last_use[p] == i {
                    values[p] = None;
                }
            }
            values[i] = Some(y);
        }
        let logits = values
            .pop()
            .flatten()
            .ok_or_else(|| MethodError::Config("the graph has no output".into()))?;
        Ok(logits
            .flatten_all()?
            .to_vec1::<f64>()?
            .iter()
            .map(|&a| a * self.logit_scale)
            .collect())
    }

    fn logit_scale(&self) -> f64 {
        self.logit_scale
    }

    fn logit_bound(&self) -> f64 {
        0.0
    }
}
