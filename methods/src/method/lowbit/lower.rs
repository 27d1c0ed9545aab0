//! From the trained network to integers: quantized weights, folded thresholds, the score layer's
//! integer bias, and the engine graph.
//!
//! - The first layer reads the u8 pixels (input zero point 0) with an integer [`Conv2d`]/[`Dense`]
//!   whose weights are `WeightKind::Binary` (BNN, QNN W1) or `WeightKind::Int { bits }`.
//! - A hidden layer over +-1 activations with +-1 weights is a [`BinaryConv2d`]/[`BinaryDense`]
//!   (xnor-popcount); over k-bit levels it is an integer layer with zero point 0.
//! - Max pools between a layer and its batch norm run on the i32 accumulators; batch norm +
//!   activation is one [`Requant::Threshold`] (sign) or [`Requant::MultiThreshold`] (levels) per
//!   channel ([`super::thresholds`]); max pools after the activation run on the binary or k-bit
//!   values.
//! - The score layer has no requantizer: its i32 accumulators plus the bias
//!   `round(b / (alpha s_w s_in))` are the logits, in units of `alpha s_w s_in`.

use std::collections::BTreeMap;

use qbench_engine::{
    BinaryConv2d, BinaryDense, Conv2d, DType, Dense, GraphBuilder, Pool, QGraph, Requant,
    WeightKind,
};

use super::net::{Block, Net};
use super::quant::{ActQuant, WeightQuant};
use super::thresholds::{BnFold, acc_ranges};
use super::train::{Precision, Trainable};
use crate::error::{MethodError, Result};
use crate::method::LayerReport;
use crate::method::fold::{MacGeometry, PoolSpec};
use crate::model::params::Params;

/// What a layer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Raw u8 pixels.
    Pixels,
    /// The previous layer's quantized activations.
    Act(ActQuant),
}

impl Input {
    /// Integer range and real value of one unit.
    fn range_and_unit(self) -> ((i64, i64), f64) {
        match self {
            Input::Pixels => ((0, 255), 1.0 / 255.0),
            Input::Act(a) => {
                let (lo, hi) = a.int_range();
                ((i64::from(lo), i64::from(hi)), a.unit())
            }
        }
    }
}

/// One lowered layer.
#[derive(Clone, Debug, PartialEq)]
pub struct IntLayer {
    /// The block it came from.
    pub block: Block,
    /// What it reads.
    pub input: Input,
    /// How its weights are quantized.
    pub weights_kind: WeightQuant,
    /// Integer weights `[O, fan_in]` row-major (`[O][C][k][k]` for convs).
    pub weights: Vec<i8>,
    /// Hidden layers: the folded batch norm and the activation it feeds.
    pub fold: Option<(BnFold, ActQuant)>,
    /// Hidden layers: the engine requantizer (thresholds) computed from `fold`.
    pub requant: Option<Requant>,
    /// Score layer: the integer bias.
    pub score_bias: Option<Vec<i32>>,
}

/// The whole lowered network.
#[derive(Clone, Debug, PartialEq)]
pub struct IntNet {
    /// Input channels, height, width.
    pub input: [usize; 3],
    /// Layers in order; the last produces the scores.
    pub layers: Vec<IntLayer>,
    /// Real value of one unit of the integer scores.
    pub logit_scale: f64,
}

fn f64s(params: &Params, name: &str) -> Result<Vec<f64>> {
    Ok(params
        .get(name)?
        .to_dtype(candle_core::DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?)
}

/// Lowers the trained network `t` (see the module docs).
pub fn lower(net: &Net, prec: Precision, t: &Trainable) -> Result<IntNet> {
    let params = &t.params;
    let alpha = f64::from(t.log_alpha.as_tensor().exp()?.to_scalar::<f32>()?);
    let mut layers = Vec::with_capacity(net.blocks.len());
    let mut input = Input::Pixels;
    let mut logit_scale = 1.0;
    for (i, block) in net.blocks.iter().enumerate() {
        let last = i + 1 == net.blocks.len();
        let rows = block.geometry.out_channels();
        let w = f64s(params, &format!("{}.weight", block.name))?;
        let (weights, w_scale) = prec.weights.quantize(&w, rows, !last);
        let ((amin, amax), unit) = input.range_and_unit();
        let bias = if block.bias {
            f64s(params, &format!("{}.bias", block.name))?
        } else {
            vec![0.0; rows]
        };
        let acc_scale: Vec<f64> = w_scale.iter().map(|s| s * unit).collect();
        let mut layer = IntLayer {
            block: block.clone(),
            input,
            weights_kind: prec.weights,
            weights,
            fold: None,
            requant: None,
            score_bias: None,
        };
        if last {
            let s = alpha * acc_scale[0];
            let b = bias
                .iter()
                .map(|b| {
                    let q = (b / s).round();
                    if q.abs() < 2f64.powi(30) {
                        Ok(q as i32)
                    } else {
                        Err(MethodError::Config(format!(
                            "score bias {b} of layer {} is {q} score units, beyond i32",
                            block.name
                        )))
                    }
                })
                .collect::<Result<Vec<i32>>>()?;
            layer.score_bias = block.bias.then_some(b);
            logit_scale = s;
        } else {
            let bn = block
                .batch_norm
                .as_deref()
                .expect("hidden blocks have a batch norm");
            let fold = BnFold::new(
                acc_scale,
                bias,
                &f64s(params, &format!("{bn}.weight"))?,
                &f64s(params, &format!("{bn}.bias"))?,
                &f64s(params, &format!("{bn}.running_mean"))?,
                &f64s(params, &format!("{bn}.running_var"))?,
            )?;
            let ranges = acc_ranges(&layer.weights, rows, amin, amax);
            layer.requant = Some(fold.requant(prec.activations, &ranges)?);
            layer.fold = Some((fold, prec.activations));
            input = Input::Act(prec.activations);
        }
        layers.push(layer);
    }
    Ok(IntNet {
        input: net.input,
        layers,
        logit_scale,
    })
}

fn engine_pool(p: &PoolSpec) -> Pool {
    Pool {
        kernel_h: p.kernel,
        kernel_w: p.kernel,
        stride: p.stride,
        pad: p.pad,
    }
}

impl IntLayer {
    /// Whether it runs on the xnor-popcount kernels.
    pub fn is_binary(&self) -> bool {
        self.input == Input::Act(ActQuant::Sign) && self.weights_kind == WeightQuant::Binary
    }

    fn weight_kind(&self) -> WeightKind {
        match self.weights_kind {
            WeightQuant::Binary => WeightKind::Binary,
            WeightQuant::Linear { bits } => WeightKind::Int { bits },
        }
    }

    /// The engine dtype of its activations, if hidden.
    fn out_dtype(&self) -> Option<DType> {
        self.fold.as_ref().map(|(_, a)| match a {
            ActQuant::Sign => DType::Binary,
            ActQuant::Levels { bits } => DType::Unsigned { bits: *bits },
        })
    }
}

impl IntNet {
    /// The engine graph and its quantization operations per inference by requantizer kind (one
    /// per thresholded activation, counted before any pool that follows).
    pub fn to_graph(&self) -> Result<(QGraph, BTreeMap<String, u64>)> {
        let mut ops = BTreeMap::new();
        let [c, h, w] = self.input;
        let mut b = GraphBuilder::new(&[c, h, w]);
        let mut x = b.input();
        for l in &self.layers {
            let name = l.block.name.as_str();
            if l.block.flatten_before && b.ty(x).is_map() {
                x = b.flatten(&format!("{name}.flatten"), x)?;
            }
            let bias = l.score_bias.clone();
            x = match (l.block.geometry, l.is_binary()) {
                (
                    MacGeometry::Conv {
                        in_channels,
                        out_channels,
                        kernel,
                        stride,
                        pad,
                    },
                    true,
                ) => b.binary_conv2d(
                    name,
                    x,
                    BinaryConv2d {
                        in_channels,
                        out_channels,
                        kernel_h: kernel,
                        kernel_w: kernel,
                        stride,
                        pad,
                        weights: l.weights.clone(),
                        bias,
                    },
                )?,
                (
                    MacGeometry::Conv {
                        in_channels,
                        out_channels,
                        kernel,
                        stride,
                        pad,
                    },
                    false,
                ) => b.conv2d(
                    name,
                    x,
                    Conv2d {
                        in_channels,
                        out_channels,
                        kernel_h: kernel,
                        kernel_w: kernel,
                        stride,
                        pad,
                        groups: 1,
                        weight_kind: l.weight_kind(),
                        input_zero_point: 0,
                        weights: l.weights.clone(),
                        bias,
                    },
                )?,
                (
                    MacGeometry::Dense {
                        in_features,
                        out_features,
                    },
                    true,
                ) => b.binary_dense(
                    name,
                    x,
                    BinaryDense {
                        in_features,
                        out_features,
                        weights: l.weights.clone(),
                        bias,
                    },
                )?,
                (
                    MacGeometry::Dense {
                        in_features,
                        out_features,
                    },
                    false,
                ) => b.dense(
                    name,
                    x,
                    Dense {
                        in_features,
                        out_features,
                        weight_kind: l.weight_kind(),
                        input_zero_point: 0,
                        weights: l.weights.clone(),
                        bias,
                    },
                )?,
            };
            for (i, p) in l.block.pre_pools.iter().enumerate() {
                x = b.max_pool(&format!("{name}.acc_pool{i}"), x, engine_pool(p))?;
            }
            if let (Some(rq), Some(out)) = (&l.requant, l.out_dtype()) {
                x = b.requant(&format!("{name}.threshold"), x, out, rq.clone())?;
                *ops.entry(rq.kind_name().to_string()).or_insert(0) += b.ty(x).numel() as u64;
            }
            for (i, p) in l.block.post_pools.iter().enumerate() {
                x = b.max_pool(&format!("{name}.pool{i}"), x, engine_pool(p))?;
            }
        }
        Ok((b.finish(x)?, ops))
    }

    /// How each layer was lowered.
    pub fn layer_reports(&self) -> Vec<LayerReport> {
        self.layers
            .iter()
            .map(|l| LayerReport {
                name: l.block.name.clone(),
                path: if l.is_binary() { "binary" } else { "int8" }.into(),
                weight_bits: l.weights_kind.bits(),
                output_bits: match l.fold {
                    Some((_, ActQuant::Sign)) => 1,
                    Some((_, ActQuant::Levels { bits })) => bits,
                    None => 32,
                },
            })
            .collect()
    }
}
