//! A fixed-point network (the common lowering of `linear`, `int8` and `tnt`): the folded model's
//! module tree with, per conv/dense layer, integer weights, an i32 bias, the input zero point and a
//! `FixedPoint` requantizer, and per residual block a TFLite ADD (`AddAlign::FixedPoint`) with its
//! output requantizer. [`build`] quantizes a [`FoldedModel`](super::fold::FoldedModel) with a
//! method's [`Scheme`]; [`IntNet::lower`] emits the engine graph and [`IntMirror`] is its exact
//! f64 mirror, the methods' fake-quant forward (logit bound 0).

mod build;
mod mirror;

pub use build::{
    ADD_LEFT_SHIFT, OutQuant, QuantWeights, Scheme, activation_params, build, quantize_weights,
};
pub use mirror::IntMirror;

use std::collections::BTreeMap;

use qbench_engine::{
    Add, Conv2d, DType, Dense, GraphBuilder, NodeId, Pool, QGraph, Requant, WeightKind,
};

use super::fold::MacGeometry;
use super::{LayerReport, MethodReport, Quantized};
use crate::error::Result;

/// One integer conv or dense layer: `pool(requant(sum (x - z) * w + bias))`, or raw i32 logits.
#[derive(Clone, Debug)]
pub struct IntLayer {
    /// Node name prefix (the float layer's name).
    pub name: String,
    /// Convolution or dense geometry.
    pub geometry: MacGeometry,
    /// Integer weights, same layout as the float ones.
    pub weights: Vec<i8>,
    /// Their kind (`Int { bits }` or `Ternary`).
    pub weight_kind: WeightKind,
    /// How the layer was lowered, as reported (`int8`, `ternary`).
    pub path: String,
    /// Bias at scale `S_in * S_w[o]`.
    pub bias: Vec<i32>,
    /// Zero point of the input activations.
    pub input_zero_point: i32,
    /// Requantizer and output dtype; `None` for the logits layer.
    pub requant: Option<(Requant, DType)>,
    /// Max pool after the requantizer.
    pub pool: Option<Pool>,
    /// Per-image accumulator shape (`[O, H, W]` or `[O]`).
    pub acc_shape: Vec<usize>,
}

/// A residual block: `requant(add(body(x), shortcut(x)))`, the shortcut empty for the identity.
#[derive(Clone, Debug)]
pub struct IntResidual {
    /// Node name prefix.
    pub name: String,
    /// Main branch.
    pub body: Vec<IntModule>,
    /// Projection branch, or empty.
    pub shortcut: Vec<IntModule>,
    /// The TFLite ADD of the two branches (body is input a).
    pub add: Add,
    /// Output multiplier, zero point and clamp of the sum (the ReLU is the clamp).
    pub requant: Requant,
    /// Output dtype.
    pub out: DType,
    /// Per-image shape of the sum.
    pub shape: Vec<usize>,
}

/// One step of an [`IntNet`].
#[derive(Clone, Debug)]
pub enum IntModule {
    /// Conv or dense layer.
    Layer(IntLayer),
    /// Max pool not preceded by a layer.
    MaxPool(Pool),
    /// Average pool (no padding), rounding as the engine's `AvgPool`.
    AvgPool(Pool),
    /// Global average pool, `[C, H, W] -> [C]`.
    GlobalAvgPool,
    /// `[C, H, W] -> [C H W]` (nothing on a vector).
    Flatten,
    /// Residual block.
    Residual(IntResidual),
}

/// A lowering-ready fixed-point network over raw u8 pixels.
#[derive(Clone, Debug)]
pub struct IntNet {
    /// Input `[C, H, W]` (raw u8 pixels).
    pub input: [usize; 3],
    /// Modules in order; the last one is the logits layer.
    pub modules: Vec<IntModule>,
    /// Real value of one unit of the integer logits.
    pub logit_scale: f64,
}

fn walk_layers<'a>(ms: &'a [IntModule], out: &mut Vec<&'a IntLayer>) {
    for m in ms {
        match m {
            IntModule::Layer(l) => out.push(l),
            IntModule::Residual(r) => {
                walk_layers(&r.body, out);
                walk_layers(&r.shortcut, out);
            }
            _ => {}
        }
    }
}

fn lower_modules(
    b: &mut GraphBuilder,
    modules: &[IntModule],
    mut x: NodeId,
    prefix: &str,
) -> Result<NodeId> {
    for (i, m) in modules.iter().enumerate() {
        x = match m {
            IntModule::Layer(l) => lower_layer(b, l, x)?,
            IntModule::MaxPool(p) => b.max_pool(&format!("{prefix}pool{i}"), x, *p)?,
            IntModule::AvgPool(p) => b.avg_pool(&format!("{prefix}pool{i}"), x, *p)?,
            IntModule::GlobalAvgPool => b.global_avg_pool(&format!("{prefix}pool{i}"), x)?,
            IntModule::Flatten if b.ty(x).shape.len() == 1 => x,
            IntModule::Flatten => b.flatten(&format!("{prefix}flatten{i}"), x)?,
            IntModule::Residual(r) => {
                let main = lower_modules(b, &r.body, x, &format!("{}.", r.name))?;
                let short = lower_modules(b, &r.shortcut, x, &format!("{}.short.", r.name))?;
                let sum = b.add(&format!("{}.add", r.name), main, short, r.add)?;
                b.requant(
                    &format!("{}.requant", r.name),
                    sum,
                    r.out,
                    r.requant.clone(),
                )?
            }
        };
    }
    Ok(x)
}

fn lower_layer(b: &mut GraphBuilder, l: &IntLayer, mut x: NodeId) -> Result<NodeId> {
    if matches!(l.geometry, MacGeometry::Dense { .. }) && b.ty(x).shape.len() == 3 {
        x = b.flatten(&format!("{}.flatten", l.name), x)?;
    }
    x = match l.geometry {
        MacGeometry::Conv {
            in_channels,
            out_channels,
            kernel,
            stride,
            pad,
        } => b.conv2d(
            &l.name,
            x,
            Conv2d {
                in_channels,
                out_channels,
                kernel_h: kernel,
                kernel_w: kernel,
                stride,
                pad,
                groups: 1,
                weight_kind: l.weight_kind,
                input_zero_point: l.input_zero_point,
                weights: l.weights.clone(),
                bias: Some(l.bias.clone()),
            },
        )?,
        MacGeometry::Dense {
            in_features,
            out_features,
        } => b.dense(
            &l.name,
            x,
            Dense {
                in_features,
                out_features,
                weight_kind: l.weight_kind,
                input_zero_point: l.input_zero_point,
                weights: l.weights.clone(),
                bias: Some(l.bias.clone()),
            },
        )?,
    };
    if let Some((rq, dtype)) = &l.requant {
        x = b.requant(&format!("{}.requant", l.name), x, *dtype, rq.clone())?;
    }
    if let Some(p) = l.pool {
        x = b.max_pool(&format!("{}.pool", l.name), x, p)?;
    }
    Ok(x)
}

/// What a fixed-point method says about its result beyond what the [`IntNet`] knows.
pub struct ReportHead {
    /// The method's registry name.
    pub method: &'static str,
    /// Its label in tables.
    pub label: String,
    /// Its validated options as JSON.
    pub config: serde_json::Value,
    /// How activations were calibrated.
    pub calibration: String,
    /// Fine-tuning epochs run (0 for post-training quantization).
    pub finetune_epochs: usize,
    /// Notes for the report.
    pub notes: Vec<String>,
}

impl IntNet {
    /// Every conv/dense layer, depth first (body before shortcut).
    pub fn layers(&self) -> Vec<&IntLayer> {
        let mut out = Vec::new();
        walk_layers(&self.modules, &mut out);
        out
    }

    /// The engine graph: per layer an optional flatten, the conv or dense node (named like the
    /// float layer), a `{name}.requant` node and a `{name}.pool` max pool; per residual block the
    /// branches, `{block}.add` and `{block}.requant`.
    pub fn lower(&self) -> Result<QGraph> {
        let mut b = GraphBuilder::new(&self.input);
        let x = b.input();
        let x = lower_modules(&mut b, &self.modules, x, "")?;
        Ok(b.finish(x)?)
    }

    /// The method result of this network: its engine graph, its exact mirror as the fake-quant
    /// forward, and a report whose layers and quantization counts come from the network; the
    /// method supplies the rest of the report.
    pub fn into_quantized(self, head: ReportHead) -> Result<Quantized> {
        let report = MethodReport {
            method: head.method.into(),
            label: head.label,
            config: head.config,
            layers: self.layer_reports(),
            quant_ops: self.requant_ops(),
            calibration: head.calibration,
            finetune_epochs: head.finetune_epochs,
            variant: None,
            notes: head.notes,
        };
        Ok(Quantized {
            graph: self.lower()?,
            fake_quant: Box::new(IntMirror::new(self)?),
            report,
        })
    }

    /// Requantization operations per inference by kind (one per requantized value: every layer's
    /// accumulator and every residual sum).
    pub fn requant_ops(&self) -> BTreeMap<String, u64> {
        fn walk(ms: &[IntModule], ops: &mut BTreeMap<String, u64>) {
            for m in ms {
                let (rq, shape) = match m {
                    IntModule::Layer(IntLayer {
                        requant: Some((rq, _)),
                        acc_shape,
                        ..
                    }) => (rq, acc_shape),
                    IntModule::Residual(r) => {
                        walk(&r.body, ops);
                        walk(&r.shortcut, ops);
                        (&r.requant, &r.shape)
                    }
                    _ => continue,
                };
                let n: usize = shape.iter().product();
                *ops.entry(rq.kind_name().to_string()).or_insert(0) += n as u64;
            }
        }
        let mut ops = BTreeMap::new();
        walk(&self.modules, &mut ops);
        ops
    }

    /// How each layer was lowered.
    pub fn layer_reports(&self) -> Vec<LayerReport> {
        self.layers()
            .into_iter()
            .map(|l| LayerReport {
                name: l.name.clone(),
                path: l.path.clone(),
                weight_bits: l.weight_kind.storage_bits() as u8,
                output_bits: l
                    .requant
                    .as_ref()
                    .map_or(32, |(_, d)| d.storage_bits() as u8),
            })
            .collect()
    }
}
