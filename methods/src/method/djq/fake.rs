//! DJQ's fake-quant forward: the quantized model evaluated in f64 on the plan's integer-valued
//! quantities.
//!
//! Every tensor is held as f64 values that are integers (activation `a` stands for the real value
//! `a * 2^-f` of its exponent `f`; since scaling by powers of two is exact in f64, working in
//! integer units loses nothing). Products and sums of integers below `2^53` are exact in f64, so
//! accumulators are exact; the requantizer calls the engine's own
//! [`qbench_engine::requant::shift_round`] and [`qbench_engine::requant::offset_clamp`] on them,
//! and average pools the engine's [`qbench_engine::requant::avg_round`]. The logits are
//! `acc * 2^-logit_exponent`.
//!
//! **Bound.** The integer graph computes in wrapping i32; as long as no accumulator leaves the i32
//! range the two agree exactly, so the documented bound on `|fake - int * logit_scale|` is 0.
//! (With DJQ's exponent choice accumulators stay far below 2^31 for the zoo's models; an overflow
//! would show up as a conformance failure, never silently.)

use qbench_engine::requant;
use rayon::prelude::*;

use super::plan::{Plan, StepOp};
use crate::error::{MethodError, Result};
use crate::method::FakeQuant;
use crate::method::fold::PoolSpec;

/// A per-image tensor: integer values as f64, shape `[C, H, W]` or `[F]`.
#[derive(Clone, Debug)]
struct T {
    v: Vec<f64>,
    shape: Vec<usize>,
}

impl T {
    fn chw(&self) -> (usize, usize, usize) {
        (self.shape[0], self.shape[1], self.shape[2])
    }
}

/// The fake-quant forward of a DJQ plan.
pub struct DjqFakeQuant {
    plan: Plan,
}

impl DjqFakeQuant {
    /// Wraps a plan.
    pub fn new(plan: Plan) -> Self {
        DjqFakeQuant { plan }
    }
}

/// The engine's shift requantizer ([`requant::shift_round`], then [`requant::offset_clamp`]) on
/// an accumulator held in f64: the fake-quant forward rounds exactly as the graph does, by the
/// same code. An accumulator beyond i32 saturates here while the engine wraps: the two then
/// disagree and conformance fails, as the module doc says.
fn shift_requant(acc: f64, s: u8, min: i32, max: i32) -> f64 {
    let rounded = requant::shift_round(acc as i32, u32::from(s));
    f64::from(requant::offset_clamp(rounded, 0, min, max))
}

#[allow(clippy::too_many_arguments)]
fn conv(
    x: &T,
    out_channels: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
    w: &[i8],
    bias: &[i32],
    z: i32,
) -> T {
    let (c, h, wd) = x.chw();
    let oh = (h + 2 * pad - k) / stride + 1;
    let ow = (wd + 2 * pad - k) / stride + 1;
    let cg = c / groups;
    let og = out_channels / groups;
    let z = f64::from(z);
    // The input with its zero point removed; padded taps are skipped (they contribute 0).
    let xs: Vec<f64> = x.v.iter().map(|v| v - z).collect();
    let mut out = vec![0f64; out_channels * oh * ow];
    for (o, plane) in out.chunks_mut(oh * ow).enumerate() {
        plane.fill(f64::from(bias[o]));
        let g = o / og;
        for ci in 0..cg {
            let ch = g * cg + ci;
            let src = &xs[ch * h * wd..(ch + 1) * h * wd];
            for ky in 0..k {
                for kx in 0..k {
                    let wv = f64::from(w[((o * cg + ci) * k + ky) * k + kx]);
                    if wv == 0.0 {
                        continue;
                    }
                    // Output columns whose tap lies inside the input: ix = ox*stride + kx - pad.
                    let ox_lo = pad.saturating_sub(kx).div_ceil(stride);
                    let ox_hi = ((wd + pad).saturating_sub(kx)).div_ceil(stride).min(ow);
                    if ox_lo >= ox_hi {
                        continue;
                    }
                    for oy in 0..oh {
                        let iy = (oy * stride + ky) as isize - pad as isize;
                        if iy < 0 || iy >= h as isize {
                            continue;
                        }
                        let row = &src[iy as usize * wd..(iy as usize + 1) * wd];
                        let dst = &mut plane[oy * ow..(oy + 1) * ow];
                        for ox in ox_lo..ox_hi {
                            dst[ox] += row[ox * stride + kx - pad] * wv;
                        }
                    }
                }
            }
        }
    }
    T {
        v: out,
        shape: vec![out_channels, oh, ow],
    }
}

fn pool(x: &T, p: PoolSpec, max: bool) -> T {
    let (c, h, w) = x.chw();
    let oh = (h + 2 * p.pad - p.kernel) / p.stride + 1;
    let ow = (w + 2 * p.pad - p.kernel) / p.stride + 1;
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut best = f64::NEG_INFINITY;
                let mut sum = 0f64;
                for ky in 0..p.kernel {
                    let iy = (oy * p.stride + ky) as isize - p.pad as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..p.kernel {
                        let ix = (ox * p.stride + kx) as isize - p.pad as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        let v = x.v[(ch * h + iy as usize) * w + ix as usize];
                        best = best.max(v);
                        sum += v;
                    }
                }
                out.push(if max {
                    best
                } else {
                    let count = (p.kernel * p.kernel) as i64;
                    f64::from(qbench_engine::requant::avg_round(sum as i64, count))
                });
            }
        }
    }
    T {
        v: out,
        shape: vec![c, oh, ow],
    }
}

impl DjqFakeQuant {
    fn run_one(&self, image: &[u8]) -> Vec<f64> {
        let plan = &self.plan;
        let mut vals: Vec<T> = Vec::with_capacity(plan.steps.len() + 1);
        vals.push(T {
            v: image.iter().map(|&p| f64::from(p)).collect(),
            shape: plan.input.to_vec(),
        });
        for step in &plan.steps {
            let x = &vals[step.inputs[0]];
            let y = match &step.op {
                StepOp::Conv {
                    out_channels,
                    kernel,
                    stride,
                    pad,
                    groups,
                    weights,
                    bias,
                    zero_point,
                    ..
                } => conv(
                    x,
                    *out_channels,
                    *kernel,
                    *stride,
                    *pad,
                    *groups,
                    weights,
                    bias,
                    *zero_point,
                ),
                StepOp::Dense {
                    in_features,
                    out_features,
                    weights,
                    bias,
                    zero_point,
                    ..
                } => {
                    let z = f64::from(*zero_point);
                    let v = (0..*out_features)
                        .map(|o| {
                            let row = &weights[o * in_features..(o + 1) * in_features];
                            row.iter()
                                .zip(&x.v)
                                .fold(f64::from(bias[o]), |acc, (w, a)| {
                                    acc + (a - z) * f64::from(*w)
                                })
                        })
                        .collect();
                    T {
                        v,
                        shape: vec![*out_features],
                    }
                }
                StepOp::Shift {
                    shift, min, max, ..
                } => {
                    let channels = x.shape[0];
                    let per = x.v.len() / channels.max(1);
                    let v =
                        x.v.iter()
                            .enumerate()
                            .map(|(i, &a)| {
                                let s = if shift.len() == 1 {
                                    shift[0]
                                } else {
                                    shift[i / per]
                                };
                                shift_requant(a, s, *min, *max)
                            })
                            .collect();
                    T {
                        v,
                        shape: x.shape.clone(),
                    }
                }
                StepOp::Relu => T {
                    v: x.v.iter().map(|a| a.max(0.0)).collect(),
                    shape: x.shape.clone(),
                },
                StepOp::MaxPool(p) => pool(x, *p, true),
                StepOp::AvgPool(p) => pool(x, *p, false),
                StepOp::GlobalAvgPool => {
                    let (c, h, w) = x.chw();
                    let v =
                        x.v.chunks(h * w)
                            .map(|ch| {
                                let sum: f64 = ch.iter().sum();
                                f64::from(qbench_engine::requant::avg_round(
                                    sum as i64,
                                    (h * w) as i64,
                                ))
                            })
                            .collect();
                    T { v, shape: vec![c] }
                }
                StepOp::Flatten => T {
                    v: x.v.clone(),
                    shape: vec![x.v.len()],
                },
                StepOp::Add { shift_a, shift_b } => {
                    let b = &vals[step.inputs[1]];
                    let (fa, fb) = (
                        2f64.powi(i32::from(*shift_a)),
                        2f64.powi(i32::from(*shift_b)),
                    );
                    T {
                        v: x.v.iter().zip(&b.v).map(|(a, b)| a * fa + b * fb).collect(),
                        shape: x.shape.clone(),
                    }
                }
            };
            vals.push(y);
        }
        let scale = self.logit_scale();
        vals.pop()
            .map(|t| t.v.iter().map(|v| v * scale).collect())
            .unwrap_or_default()
    }
}

impl FakeQuant for DjqFakeQuant {
    fn logits(&self, images: &[u8], n: usize) -> Result<Vec<f64>> {
        let per: usize = self.plan.input.iter().product();
        if images.len() != n * per {
            return Err(MethodError::Config(format!(
                "fake-quant got {} bytes for {n} images of {per}",
                images.len()
            )));
        }
        let rows: Vec<Vec<f64>> = images
            .par_chunks(per.max(1))
            .map(|img| self.run_one(img))
            .collect();
        Ok(rows.concat())
    }

    fn logit_scale(&self) -> f64 {
        2f64.powi(-self.plan.logit_exponent)
    }

    fn logit_bound(&self) -> f64 {
        0.0
    }
}
