//! The fast executor: multiply-accumulate layers run on the kernels crate (`conv2d_u8i8`,
//! `gemm_u8i8`, `binary_conv2d`, `binary_gemm`) over packed storage, weights are prepared once
//! (binary weights bit-packed, zero-point corrections precomputed), and batches are split into chunks
//! that rayon runs in parallel, each chunk through the whole graph so its activations stay in cache.
//!
//! Zero points: the kernels compute `sum x * w` with padded taps reading `pad_value`; the engine passes
//! `pad_value = z` (plus 128 for signed inputs, which are offset by +128 into u8) and adds the
//! per-channel correction `bias - pad_value * sum(w)`, which equals `sum (x - z) * w + bias` exactly in
//! wrapping i32 arithmetic.

use qbench_kernels::{ConvGeometry, binary_conv2d, binary_gemm, conv2d_u8i8, gemm_u8i8};
use rayon::prelude::*;

use crate::error::Result;
use crate::exec::{Logits, check_input};
use crate::graph::QGraph;
use crate::node::{Node, Op, Pool};
use crate::requant::{Requant, avg_round, residual_add};
use crate::tensor::{Tensor, TensorData, binary_words};
use crate::types::{DType, TensorType};

/// Per-node data prepared once per graph.
#[derive(Debug)]
enum Prep {
    None,
    /// Integer conv/dense: u8 pad value (zero point + signed offset) and `bias - pad * sum(w)`.
    Mac { pad_value: u8, correction: Vec<i32> },
    /// Binary conv/dense: weights packed as the kernels expect.
    Binary { packed: Vec<u64> },
}

/// A graph prepared for fast execution. Build it once and run it on many batches.
#[derive(Debug)]
pub struct FastExecutor<'g> {
    graph: &'g QGraph,
    prep: Vec<Prep>,
    last_use: Vec<usize>,
}

/// Largest chunk of images one task runs through the whole graph.
const MAX_CHUNK: usize = 32;

impl<'g> FastExecutor<'g> {
    /// Validates the graph and prepares its weights.
    pub fn new(graph: &'g QGraph) -> Result<Self> {
        graph.validate()?;
        let prep = graph.nodes.iter().map(|n| prepare(graph, n)).collect();
        Ok(FastExecutor {
            graph,
            prep,
            last_use: graph.last_use(),
        })
    }

    /// Runs `batch` images, in parallel chunks, and returns the logits.
    pub fn run(&self, input: &[u8], batch: usize) -> Result<Logits> {
        check_input(self.graph, input, batch)?;
        let per = self.graph.input_len();
        let classes = self.graph.classes();
        let threads = rayon::current_num_threads().max(1);
        let chunk = batch.div_ceil(threads).clamp(1, MAX_CHUNK);
        let parts: Vec<Vec<i32>> = input
            .par_chunks(chunk * per)
            .map(|images| {
                let mut outs = self.run_chunk(images, images.len() / per, false);
                match outs.pop().flatten().map(|t| t.data) {
                    Some(TensorData::I32(v)) => v,
                    _ => unreachable!("the output node produces i32"),
                }
            })
            .collect();
        Ok(Logits {
            batch,
            classes,
            values: parts.concat(),
        })
    }

    /// Runs the whole batch in one chunk and returns every node's output (index = node id).
    pub fn run_traced(&self, input: &[u8], batch: usize) -> Result<Vec<Tensor>> {
        check_input(self.graph, input, batch)?;
        Ok(self
            .run_chunk(input, batch, true)
            .into_iter()
            .map(|t| t.expect("traced runs keep every tensor"))
            .collect())
    }

    fn run_chunk(&self, input: &[u8], batch: usize, keep: bool) -> Vec<Option<Tensor>> {
        let nodes = &self.graph.nodes;
        let mut out: Vec<Option<Tensor>> = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let t = {
                let arg = |k: usize| {
                    out[node.inputs[k]]
                        .as_ref()
                        .expect("inputs are alive until their last use")
                };
                let data = match &node.op {
                    Op::Input => TensorData::U8(input.to_vec()),
                    Op::Conv2d(_) | Op::Dense(_) => self.mac(i, node, arg(0), batch),
                    Op::BinaryConv2d(_) | Op::BinaryDense(_) => {
                        self.binary_mac(i, node, arg(0), batch)
                    }
                    Op::Requant(r) => requant(&r.requant, arg(0), &node.output),
                    Op::MaxPool(p) => max_pool(p, arg(0), &node.output),
                    Op::AvgPool(p) => avg_pool(p, arg(0), &node.output),
                    Op::GlobalAvgPool => global_avg_pool(arg(0), &node.output),
                    Op::Relu { zero_point } => relu(arg(0), *zero_point),
                    Op::Add(a) => {
                        let (x, y) = (to_i32(arg(0)), to_i32(arg(1)));
                        TensorData::I32(
                            x.iter()
                                .zip(y.iter())
                                .map(|(&p, &q)| residual_add(p, q, a))
                                .collect(),
                        )
                    }
                    Op::Flatten => flatten(arg(0)),
                    Op::Output => TensorData::I32(to_i32(arg(0)).into_owned()),
                };
                Tensor {
                    ty: node.output.clone(),
                    batch,
                    data,
                }
            };
            out.push(Some(t));
            if !keep {
                for &p in &node.inputs {
                    if self.last_use[p] == i {
                        out[p] = None;
                    }
                }
            }
        }
        out
    }

    /// Integer conv or dense through the u8 x i8 kernels.
    fn mac(&self, i: usize, node: &Node, x: &Tensor, batch: usize) -> TensorData {
        let Prep::Mac {
            pad_value,
            correction,
        } = &self.prep[i]
        else {
            unreachable!("prepared as MAC")
        };
        let offset_input;
        let a: &[u8] = match &x.data {
            TensorData::U8(v) => v,
            TensorData::I8(v) => {
                offset_input = v.iter().map(|&s| (s as u8) ^ 0x80).collect::<Vec<u8>>();
                &offset_input
            }
            _ => unreachable!("validated: narrow input"),
        };
        let o = node.output.channels();
        let s = node.output.spatial();
        let mut acc = vec![0i32; batch * o * s];
        match &node.op {
            Op::Conv2d(c) => {
                let g = ConvGeometry {
                    batch,
                    in_channels: c.in_channels,
                    in_h: x.ty.shape[1],
                    in_w: x.ty.shape[2],
                    out_channels: c.out_channels,
                    kernel_h: c.kernel_h,
                    kernel_w: c.kernel_w,
                    stride: c.stride,
                    pad: c.pad,
                    groups: c.groups,
                };
                conv2d_u8i8(a, &c.weights, &mut acc, &g, *pad_value);
            }
            Op::Dense(d) => gemm_u8i8(a, &d.weights, &mut acc, batch, o, d.in_features),
            _ => unreachable!(),
        }
        add_per_channel(&mut acc, correction, s);
        TensorData::I32(acc)
    }

    /// Binary conv or dense through the xnor-popcount kernels.
    fn binary_mac(&self, i: usize, node: &Node, x: &Tensor, batch: usize) -> TensorData {
        let Prep::Binary { packed } = &self.prep[i] else {
            unreachable!("prepared as binary")
        };
        let TensorData::Bits(a) = &x.data else {
            unreachable!("validated: binary input")
        };
        let o = node.output.channels();
        let s = node.output.spatial();
        let mut acc = vec![0i32; batch * o * s];
        let bias = match &node.op {
            Op::BinaryConv2d(c) => {
                let g = ConvGeometry {
                    batch,
                    in_channels: c.in_channels,
                    in_h: x.ty.shape[1],
                    in_w: x.ty.shape[2],
                    out_channels: c.out_channels,
                    kernel_h: c.kernel_h,
                    kernel_w: c.kernel_w,
                    stride: c.stride,
                    pad: c.pad,
                    groups: 1,
                };
                binary_conv2d(a, packed, &mut acc, &g);
                &c.bias
            }
            Op::BinaryDense(d) => {
                binary_gemm(a, packed, &mut acc, batch, o, d.in_features);
                &d.bias
            }
            _ => unreachable!(),
        };
        if let Some(b) = bias {
            add_per_channel(&mut acc, b, s);
        }
        TensorData::I32(acc)
    }
}

/// Runs `batch` images with a freshly prepared [`FastExecutor`] (prefer building one executor for
/// many batches).
pub fn run(graph: &QGraph, input: &[u8], batch: usize) -> Result<Logits> {
    FastExecutor::new(graph)?.run(input, batch)
}

/// Traced run with a freshly prepared [`FastExecutor`]: every node's output.
pub fn run_traced(graph: &QGraph, input: &[u8], batch: usize) -> Result<Vec<Tensor>> {
    FastExecutor::new(graph)?.run_traced(input, batch)
}

fn prepare(graph: &QGraph, node: &Node) -> Prep {
    let input_dtype = |k: usize| graph.nodes[node.inputs[k]].output.dtype;
    let mac = |weights: &[i8], bias: &Option<Vec<i32>>, z: i32, outs: usize| {
        let offset = if matches!(input_dtype(0), DType::Signed { .. }) {
            128
        } else {
            0
        };
        let pad = z + offset;
        let per = weights.len() / outs;
        let correction = weights
            .chunks(per)
            .enumerate()
            .map(|(o, w)| {
                let sum: i32 = w.iter().map(|&v| i32::from(v)).sum();
                let b = bias.as_ref().map_or(0, |b| b[o]);
                b.wrapping_sub(pad.wrapping_mul(sum))
            })
            .collect();
        Prep::Mac {
            pad_value: pad as u8,
            correction,
        }
    };
    match &node.op {
        Op::Conv2d(c) => mac(&c.weights, &c.bias, c.input_zero_point, c.out_channels),
        Op::Dense(d) => mac(&d.weights, &d.bias, d.input_zero_point, d.out_features),
        Op::BinaryConv2d(c) => {
            // OIHW +-1 -> [O][kh][kw][words(C)] bits.
            let words = binary_words(c.in_channels);
            let (kh, kw, ci) = (c.kernel_h, c.kernel_w, c.in_channels);
            let mut packed = vec![0u64; c.out_channels * kh * kw * words];
            for o in 0..c.out_channels {
                for ch in 0..ci {
                    for y in 0..kh {
                        for x in 0..kw {
                            if c.weights[((o * ci + ch) * kh + y) * kw + x] > 0 {
                                packed[((o * kh + y) * kw + x) * words + ch / 64] |=
                                    1u64 << (ch % 64);
                            }
                        }
                    }
                }
            }
            Prep::Binary { packed }
        }
        Op::BinaryDense(d) => {
            let words = binary_words(d.in_features);
            let mut packed = vec![0u64; d.out_features * words];
            for (o, row) in d.weights.chunks(d.in_features).enumerate() {
                for (f, &w) in row.iter().enumerate() {
                    if w > 0 {
                        packed[o * words + f / 64] |= 1u64 << (f % 64);
                    }
                }
            }
            Prep::Binary { packed }
        }
        _ => Prep::None,
    }
}

/// `acc[n][c][..] += add[c]` (wrapping) for NCHW data with `s` elements per channel.
fn add_per_channel(acc: &mut [i32], add: &[i32], s: usize) {
    let c = add.len();
    for (k, block) in acc.chunks_mut(s).enumerate() {
        let a = add[k % c];
        for v in block {
            *v = v.wrapping_add(a);
        }
    }
}

/// Logical values of a non-binary tensor as i32 (borrowed when already i32).
fn to_i32(t: &Tensor) -> std::borrow::Cow<'_, [i32]> {
    match &t.data {
        TensorData::I32(v) => std::borrow::Cow::Borrowed(v),
        TensorData::U8(v) => v.iter().map(|&x| i32::from(x)).collect(),
        TensorData::I8(v) => v.iter().map(|&x| i32::from(x)).collect(),
        TensorData::Bits(_) => std::borrow::Cow::Owned(t.values()),
    }
}

/// Stores logical values in the storage of a non-binary dtype.
fn store(dtype: DType, values: Vec<i32>) -> TensorData {
    match dtype {
        DType::Unsigned { .. } => TensorData::U8(values.into_iter().map(|v| v as u8).collect()),
        DType::Signed { .. } => TensorData::I8(values.into_iter().map(|v| v as i8).collect()),
        DType::I32 => TensorData::I32(values),
        DType::Binary => unreachable!("binary outputs are packed by their producers"),
    }
}

fn requant(r: &Requant, x: &Tensor, out: &TensorType) -> TensorData {
    let v = to_i32(x);
    let (c, s) = (out.channels(), out.spatial());
    let batch = x.batch;
    match out.dtype {
        DType::Binary => {
            let words = binary_words(c);
            let mut bits = vec![0u64; batch * s * words];
            for n in 0..batch {
                for ch in 0..c {
                    let plane = &v[(n * c + ch) * s..(n * c + ch + 1) * s];
                    let mask = 1u64 << (ch % 64);
                    for (p, &a) in plane.iter().enumerate() {
                        if r.apply(a, ch) > 0 {
                            bits[(n * s + p) * words + ch / 64] |= mask;
                        }
                    }
                }
            }
            TensorData::Bits(bits)
        }
        DType::Unsigned { .. } => {
            let mut o = vec![0u8; v.len()];
            for (k, (dst, src)) in o.chunks_mut(s).zip(v.chunks(s)).enumerate() {
                let ch = k % c;
                for (d, &a) in dst.iter_mut().zip(src) {
                    *d = r.apply(a, ch) as u8;
                }
            }
            TensorData::U8(o)
        }
        DType::Signed { .. } => {
            let mut o = vec![0i8; v.len()];
            for (k, (dst, src)) in o.chunks_mut(s).zip(v.chunks(s)).enumerate() {
                let ch = k % c;
                for (d, &a) in dst.iter_mut().zip(src) {
                    *d = r.apply(a, ch) as i8;
                }
            }
            TensorData::I8(o)
        }
        DType::I32 => unreachable!("validated: requantizers produce narrow or binary"),
    }
}

/// Window bounds `[start, end)` of output position `o` clipped to `0..len`.
#[inline]
fn window(o: usize, stride: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
    let start = (o * stride) as isize - pad as isize;
    let end = (start + k as isize).min(len as isize);
    (start.max(0) as usize, end as usize)
}

/// Generic pooling over planes of any element type: `reduce` folds the in-bounds window.
fn pool_planes<T: Copy, U>(
    p: &Pool,
    x: &[T],
    planes: usize,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    reduce: impl Fn(&mut dyn Iterator<Item = T>) -> U,
) -> Vec<U> {
    let mut out = Vec::with_capacity(planes * oh * ow);
    for plane in x.chunks(h * w).take(planes) {
        for y in 0..oh {
            let (y0, y1) = window(y, p.stride, p.pad, p.kernel_h, h);
            for xo in 0..ow {
                let (x0, x1) = window(xo, p.stride, p.pad, p.kernel_w, w);
                let mut it = (y0..y1).flat_map(|iy| plane[iy * w + x0..iy * w + x1].iter().copied());
                out.push(reduce(&mut it));
            }
        }
    }
    out
}

fn max_pool(p: &Pool, x: &Tensor, out: &TensorType) -> TensorData {
    let (c, h, w) = (x.ty.shape[0], x.ty.shape[1], x.ty.shape[2]);
    let (oh, ow) = (out.shape[1], out.shape[2]);
    let planes = x.batch * c;
    match &x.data {
        TensorData::U8(v) => TensorData::U8(pool_planes(p, v, planes, (h, w), (oh, ow), |it| {
            it.max().unwrap_or(0)
        })),
        TensorData::I8(v) => TensorData::I8(pool_planes(p, v, planes, (h, w), (oh, ow), |it| {
            it.max().unwrap_or(0)
        })),
        TensorData::I32(v) => TensorData::I32(pool_planes(p, v, planes, (h, w), (oh, ow), |it| {
            it.max().unwrap_or(0)
        })),
        TensorData::Bits(bits) => {
            // max of +-1 values is +1 if any is +1: OR the packed pixels of the window.
            let words = binary_words(c);
            let mut o = vec![0u64; x.batch * oh * ow * words];
            for n in 0..x.batch {
                for y in 0..oh {
                    let (y0, y1) = window(y, p.stride, p.pad, p.kernel_h, h);
                    for xo in 0..ow {
                        let (x0, x1) = window(xo, p.stride, p.pad, p.kernel_w, w);
                        let dst = ((n * oh + y) * ow + xo) * words;
                        for iy in y0..y1 {
                            for ix in x0..x1 {
                                let src = ((n * h + iy) * w + ix) * words;
                                for k in 0..words {
                                    o[dst + k] |= bits[src + k];
                                }
                            }
                        }
                    }
                }
            }
            TensorData::Bits(o)
        }
    }
}

fn avg_pool(p: &Pool, x: &Tensor, out: &TensorType) -> TensorData {
    let (c, h, w) = (x.ty.shape[0], x.ty.shape[1], x.ty.shape[2]);
    let (oh, ow) = (out.shape[1], out.shape[2]);
    let count = (p.kernel_h * p.kernel_w) as i64;
    let v = to_i32(x);
    let avg = pool_planes(p, &v, x.batch * c, (h, w), (oh, ow), |it| {
        avg_round(it.map(i64::from).sum(), count)
    });
    store(out.dtype, avg)
}

fn global_avg_pool(x: &Tensor, out: &TensorType) -> TensorData {
    let s = x.ty.spatial();
    let v = to_i32(x);
    let avg = v
        .chunks(s)
        .map(|plane| avg_round(plane.iter().map(|&a| i64::from(a)).sum(), s as i64))
        .collect();
    store(out.dtype, avg)
}

fn relu(x: &Tensor, zp: i32) -> TensorData {
    match &x.data {
        TensorData::U8(v) => TensorData::U8(v.iter().map(|&a| a.max(zp as u8)).collect()),
        TensorData::I8(v) => TensorData::I8(v.iter().map(|&a| a.max(zp as i8)).collect()),
        TensorData::I32(v) => TensorData::I32(v.iter().map(|&a| a.max(zp)).collect()),
        TensorData::Bits(_) => unreachable!("validated: relu takes no binary input"),
    }
}

fn flatten(x: &Tensor) -> TensorData {
    match &x.data {
        TensorData::Bits(bits) => {
            // [N][S][words(C)] -> [N][words(C*S)], logical order c * S + s.
            let (c, s) = (x.ty.channels(), x.ty.spatial());
            let (wi, wo) = (binary_words(c), binary_words(c * s));
            let mut o = vec![0u64; x.batch * wo];
            for n in 0..x.batch {
                for p in 0..s {
                    let px = &bits[(n * s + p) * wi..(n * s + p + 1) * wi];
                    for ch in 0..c {
                        if px[ch / 64] >> (ch % 64) & 1 == 1 {
                            let f = ch * s + p;
                            o[n * wo + f / 64] |= 1u64 << (f % 64);
                        }
                    }
                }
            }
            TensorData::Bits(o)
        }
        other => other.clone(),
    }
}
