//! From the trained network to the integer form: quantized weights, folded thresholds, the score
//! layer's integer bias, and the engine nodes.
//!
//! - The first layer reads the u8 pixels (input zero point 0) with an integer conv/dense whose
//!   weights are `WeightKind::Binary` (BNN, QNN W1) or `WeightKind::Int { bits }`.
//! - A hidden layer over +-1 activations (with +-1 weights) runs on the xnor-popcount ops; over
//!   k-bit levels it is an integer layer with zero point 0 ([`push_mac`] picks the op from the
//!   input's type).
//! - Max pools between a layer and its batch norm (`{layer}.acc_pool{i}`) run on the i32
//!   accumulators; batch norm + activation is one `Requant::Threshold` (sign) or
//!   `Requant::MultiThreshold` (levels) per channel (`{layer}.threshold`,
//!   [`super::thresholds`]); max pools after the activation (`{layer}.pool{i}`) run on the binary
//!   or k-bit values.
//! - The score layer has no requantizer: its i32 accumulators plus the bias
//!   `round(b / (alpha s_w s_in))` are the logits, in units of `alpha s_w s_in`.

use qbench_engine::{DType, GraphBuilder, NodeId, WeightKind};

use super::net::Net;
use super::quant::{ActQuant, WeightQuant};
use super::thresholds::{BnFold, acc_ranges};
use super::train::{Precision, Trainable};
use crate::error::{MethodError, Result};
use crate::method::LayerReport;
use crate::method::fold::PoolSpec;
use crate::method::intnet::{IntNet, Mac, push_mac};
use crate::model::params::Params;

/// What a layer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Input {
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

fn max_pools(b: &mut GraphBuilder, x: NodeId, name: &str, pools: &[PoolSpec]) -> Result<NodeId> {
    pools.iter().enumerate().try_fold(x, |x, (i, p)| {
        Ok(b.max_pool(&format!("{name}{i}"), x, (*p).into())?)
    })
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
    let mut g = GraphBuilder::new(&net.input);
    let mut x = g.input();
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
        let mut mac = Mac {
            geometry: block.geometry,
            weights,
            weight_kind: match prec.weights {
                WeightQuant::Binary => WeightKind::Binary,
                WeightQuant::Linear { bits } => WeightKind::Int { bits },
            },
            bias: None,
            input_zero_point: 0,
        };
        let mut report = LayerReport {
            name: block.name.clone(),
            path: if input == Input::Act(ActQuant::Sign) && prec.weights == WeightQuant::Binary {
                "binary"
            } else {
                "int8"
            }
            .into(),
            weight_bits: prec.weights.bits(),
            output_bits: 32,
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
            mac.bias = block.bias.then_some(b);
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
            let ranges = acc_ranges(&mac.weights, rows, amin, amax);
            let requant = fold.requant(prec.activations, &ranges)?;
            x = push_mac(&mut g, &block.name, x, mac)?;
            x = max_pools(
                &mut g,
                x,
                &format!("{}.acc_pool", block.name),
                &block.pre_pools,
            )?;
            let (out, bits) = match prec.activations {
                ActQuant::Sign => (DType::Binary, 1),
                ActQuant::Levels { bits } => (DType::Unsigned { bits }, bits),
            };
            x = g.requant(&format!("{}.threshold", block.name), x, out, requant)?;
            x = max_pools(
                &mut g,
                x,
                &format!("{}.pool", block.name),
                &block.post_pools,
            )?;
            report.output_bits = bits;
            layers.push(report);
            input = Input::Act(prec.activations);
            continue;
        }
        x = push_mac(&mut g, &block.name, x, mac)?;
        if net.flatten_after {
            x = g.flatten(&format!("{}.flatten", block.name), x)?;
        }
        layers.push(report);
    }
    IntNet::finish(g, x, logit_scale, layers)
}
