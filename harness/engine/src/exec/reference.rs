//! The reference executor: every node as straightforward loops over logical i32 values (NCHW, binary
//! as -1/+1), written to be read and trusted rather than fast. It is the oracle the fast executor is
//! tested against bit for bit.

use crate::error::Result;
use crate::exec::{Logits, check_input};
use crate::graph::QGraph;
use crate::node::{BinaryConv2d, Conv2d, Op, Pool};
use crate::requant::{avg_round, residual_add};
use crate::tensor::Tensor;
use crate::types::TensorType;

/// Runs `batch` images (`input` is `batch` concatenated u8 images) and returns the logits.
pub fn run(graph: &QGraph, input: &[u8], batch: usize) -> Result<Logits> {
    let trace = run_values(graph, input, batch)?;
    let values = trace.last().cloned().unwrap_or_default();
    Ok(Logits {
        batch,
        classes: graph.classes(),
        values,
    })
}

/// Runs the graph and returns every node's output (index = node id).
pub fn run_traced(graph: &QGraph, input: &[u8], batch: usize) -> Result<Vec<Tensor>> {
    let trace = run_values(graph, input, batch)?;
    Ok(graph
        .nodes
        .iter()
        .zip(trace)
        .map(|(node, v)| Tensor::from_values(&node.output, batch, &v))
        .collect())
}

fn run_values(graph: &QGraph, input: &[u8], batch: usize) -> Result<Vec<Vec<i32>>> {
    graph.validate()?;
    check_input(graph, input, batch)?;
    let mut out: Vec<Vec<i32>> = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let x = |i: usize| (&out[node.inputs[i]], &graph.nodes[node.inputs[i]].output);
        let v = match &node.op {
            Op::Input => input.iter().map(|&b| i32::from(b)).collect(),
            Op::Conv2d(c) => {
                let (v, t) = x(0);
                conv(c, v, t, batch)
            }
            Op::BinaryConv2d(c) => {
                let (v, t) = x(0);
                binary_conv(c, v, t, batch)
            }
            Op::Dense(d) => {
                let (v, _) = x(0);
                dense(
                    v,
                    &d.weights,
                    &d.bias,
                    d.input_zero_point,
                    d.in_features,
                    d.out_features,
                    batch,
                )
            }
            Op::BinaryDense(d) => {
                let (v, _) = x(0);
                dense(
                    v,
                    &d.weights,
                    &d.bias,
                    0,
                    d.in_features,
                    d.out_features,
                    batch,
                )
            }
            Op::Requant(r) => {
                let (v, t) = x(0);
                let (c, s) = (t.channels(), t.spatial());
                v.iter()
                    .enumerate()
                    .map(|(i, &a)| r.requant.apply(a, (i / s) % c))
                    .collect()
            }
            Op::MaxPool(p) => {
                let (v, t) = x(0);
                pool(p, v, t, batch, |vals| {
                    vals.iter().copied().max().unwrap_or(0)
                })
            }
            Op::AvgPool(p) => {
                let (v, t) = x(0);
                let count = (p.kernel_h * p.kernel_w) as i64;
                pool(p, v, t, batch, |vals| {
                    avg_round(vals.iter().map(|&a| i64::from(a)).sum(), count)
                })
            }
            Op::GlobalAvgPool => {
                let (v, t) = x(0);
                let s = t.spatial();
                v.chunks(s)
                    .map(|ch| avg_round(ch.iter().map(|&a| i64::from(a)).sum(), s as i64))
                    .collect()
            }
            Op::Relu { zero_point } => x(0).0.iter().map(|&a| a.max(*zero_point)).collect(),
            Op::Add(a) => {
                let (va, vb) = (x(0).0, x(1).0);
                va.iter()
                    .zip(vb)
                    .map(|(&p, &q)| residual_add(p, q, a))
                    .collect()
            }
            Op::Flatten | Op::Output => x(0).0.clone(),
        };
        out.push(v);
    }
    Ok(out)
}

/// `sum (x - z) * w + bias` over the window; padded taps read `z`.
fn conv(c: &Conv2d, x: &[i32], t: &TensorType, batch: usize) -> Vec<i32> {
    let (h, w) = (t.shape[1], t.shape[2]);
    let oh = (h + 2 * c.pad - c.kernel_h) / c.stride + 1;
    let ow = (w + 2 * c.pad - c.kernel_w) / c.stride + 1;
    let cin_g = c.in_channels / c.groups;
    let cout_g = c.out_channels / c.groups;
    let z = c.input_zero_point;
    let mut out = vec![0i32; batch * c.out_channels * oh * ow];
    for n in 0..batch {
        for o in 0..c.out_channels {
            let g = o / cout_g;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = c.bias.as_ref().map_or(0, |b| b[o]);
                    for ci in 0..cin_g {
                        let ch = g * cin_g + ci;
                        for ky in 0..c.kernel_h {
                            for kx in 0..c.kernel_w {
                                let iy = (y * c.stride + ky) as isize - c.pad as isize;
                                let ix = (xo * c.stride + kx) as isize - c.pad as isize;
                                let inside =
                                    iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize;
                                let v = if inside {
                                    x[((n * c.in_channels + ch) * h + iy as usize) * w
                                        + ix as usize]
                                } else {
                                    z
                                };
                                let wt = c.weights
                                    [((o * cin_g + ci) * c.kernel_h + ky) * c.kernel_w + kx];
                                acc =
                                    acc.wrapping_add(v.wrapping_sub(z).wrapping_mul(i32::from(wt)));
                            }
                        }
                    }
                    out[((n * c.out_channels + o) * oh + y) * ow + xo] = acc;
                }
            }
        }
    }
    out
}

/// `sum a * w + bias` over the in-bounds taps; padded taps contribute 0.
fn binary_conv(c: &BinaryConv2d, x: &[i32], t: &TensorType, batch: usize) -> Vec<i32> {
    let (h, w) = (t.shape[1], t.shape[2]);
    let oh = (h + 2 * c.pad - c.kernel_h) / c.stride + 1;
    let ow = (w + 2 * c.pad - c.kernel_w) / c.stride + 1;
    let mut out = vec![0i32; batch * c.out_channels * oh * ow];
    let cin_g = c.in_channels / c.groups;
    let cout_g = c.out_channels / c.groups;
    for n in 0..batch {
        for o in 0..c.out_channels {
            let first = o / cout_g * cin_g;
            for y in 0..oh {
                for xo in 0..ow {
                    let mut acc = c.bias.as_ref().map_or(0, |b| b[o]);
                    for ci in 0..cin_g {
                        let ch = first + ci;
                        for ky in 0..c.kernel_h {
                            for kx in 0..c.kernel_w {
                                let iy = (y * c.stride + ky) as isize - c.pad as isize;
                                let ix = (xo * c.stride + kx) as isize - c.pad as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let v = x[((n * c.in_channels + ch) * h + iy as usize) * w
                                    + ix as usize];
                                let wt = c.weights
                                    [((o * cin_g + ci) * c.kernel_h + ky) * c.kernel_w + kx];
                                acc = acc.wrapping_add(v * i32::from(wt));
                            }
                        }
                    }
                    out[((n * c.out_channels + o) * oh + y) * ow + xo] = acc;
                }
            }
        }
    }
    out
}

/// `sum_i (x[i] - z) * w[o][i] + bias[o]`.
fn dense(
    x: &[i32],
    weights: &[i8],
    bias: &Option<Vec<i32>>,
    z: i32,
    fin: usize,
    fout: usize,
    batch: usize,
) -> Vec<i32> {
    let mut out = vec![0i32; batch * fout];
    for n in 0..batch {
        for o in 0..fout {
            let mut acc = bias.as_ref().map_or(0, |b| b[o]);
            for i in 0..fin {
                let d = x[n * fin + i].wrapping_sub(z);
                acc = acc.wrapping_add(d.wrapping_mul(i32::from(weights[o * fin + i])));
            }
            out[n * fout + o] = acc;
        }
    }
    out
}

/// Applies `reduce` to the in-bounds values of every pooling window.
fn pool(
    p: &Pool,
    x: &[i32],
    t: &TensorType,
    batch: usize,
    reduce: impl Fn(&[i32]) -> i32,
) -> Vec<i32> {
    let (c, h, w) = (t.shape[0], t.shape[1], t.shape[2]);
    let oh = (h + 2 * p.pad - p.kernel_h) / p.stride + 1;
    let ow = (w + 2 * p.pad - p.kernel_w) / p.stride + 1;
    let mut out = Vec::with_capacity(batch * c * oh * ow);
    let mut window = Vec::with_capacity(p.kernel_h * p.kernel_w);
    for plane in x.chunks(h * w).take(batch * c) {
        for y in 0..oh {
            for xo in 0..ow {
                window.clear();
                for ky in 0..p.kernel_h {
                    for kx in 0..p.kernel_w {
                        let iy = (y * p.stride + ky) as isize - p.pad as isize;
                        let ix = (xo * p.stride + kx) as isize - p.pad as isize;
                        if iy >= 0 && ix >= 0 && iy < h as isize && ix < w as isize {
                            window.push(plane[iy as usize * w + ix as usize]);
                        }
                    }
                }
                out.push(reduce(&window));
            }
        }
    }
    out
}
