//! The fast executor: multiply-accumulate layers run on the kernels crate with weights pre-packed once
//! per graph (`conv2d_u8i8_packed`, `depthwise_conv2d_u8i8_packed` for depthwise convolutions
//! (`groups == in_channels == out_channels > 1`, whose one channel per group would waste most of
//! the implicit GEMM's register tile), `gemm_u8i8_packed`, `binary_conv2d_packed`, `binary_gemm`;
//! binary convolutions with more than 64 kernel taps, which the packed kernel does not take, fall
//! back to the kernels crate's reference), zero-point corrections are precomputed, and batches are split into
//! chunks that rayon runs in parallel, each chunk through the whole graph so its activations stay in
//! cache (the kernels may split their own work further on the same pool).
//!
//! Zero points: the kernels compute `sum x * w` with padded taps reading `pad_value`; the engine passes
//! `pad_value = z` (plus 128 for signed inputs, which are offset by +128 into u8) and adds the
//! per-channel correction `bias - pad_value * sum(w)`, which equals `sum (x - z) * w + bias` exactly in
//! wrapping i32 arithmetic.
//!
//! Untraced runs take four shortcuts that do not change any result: a MAC node whose only consumer
//! is a requantizer leaves its per-channel add to that requantizer (one pass less over the i32
//! accumulators); freed i32 and byte buffers are reused on the same thread for later outputs that
//! are overwritten completely (kernel accumulators, vectorized requantizers); a residual add whose
//! single consumer is a requantizer is computed and requantized in one pass (a 64 KiB byte table
//! per add for per-tensor requantizers, else an AVX2 fixed-point loop in `fast_avx2`), and so is a
//! convolution whose single consumer is a fixed-point requantizer (the kernels hand over i32
//! blocks through a `ConvSink`); and the requantizer and max-pool loops run in an AVX2 build
//! where the CPU has it. Traced runs materialize every node's output exactly as the reference does.

use qbench_kernels::{
    ConvGeometry, PackedBinaryConvWeights, PackedConvWeights, PackedDepthwiseWeights,
    PackedWeightsI8, binary_conv2d_packed, binary_gemm, conv2d_u8i8_packed,
    depthwise_conv2d_u8i8_packed, gemm_u8i8_packed, is_depthwise,
};
use rayon::prelude::*;
use std::time::{Duration, Instant};

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
    /// Integer convolution: packed weights, u8 pad value (zero point + signed offset) and the
    /// per-channel correction `bias - pad * sum(w)`.
    Conv {
        packed: ConvWeights,
        pad_value: u8,
        correction: Vec<i32>,
    },
    /// Integer dense layer: packed weights and the correction.
    Dense {
        packed: PackedWeightsI8,
        correction: Vec<i32>,
    },
    /// Binary convolution on the packed kernel.
    BinaryConv {
        packed: PackedBinaryConvWeights,
    },
    /// Binary convolution with too many taps for the packed kernel: `[O][kh][kw][words]` bits.
    BinaryConvRef {
        bits: Vec<u64>,
    },
    /// Binary dense layer: `[O][words]` bits.
    BinaryDense {
        bits: Vec<u64>,
    },
}

/// An integer convolution's weights, packed for the kernel that runs it.
#[derive(Debug)]
enum ConvWeights {
    /// The implicit-GEMM convolution (any groups).
    Gemm(PackedConvWeights),
    /// The depthwise kernel (`groups == in_channels == out_channels > 1`).
    Depthwise(PackedDepthwiseWeights),
}

/// Most kernel taps the packed binary convolution takes.
const PACKED_BINARY_MAX_TAPS: usize = 64;

/// A graph prepared for fast execution. Build it once and run it on many batches.
#[derive(Debug)]
pub struct FastExecutor<'g> {
    graph: &'g QGraph,
    prep: Vec<Prep>,
    last_use: Vec<usize>,
    /// MAC nodes whose per-channel add (zero-point correction and bias) is left to their single
    /// consumer, a requantizer, in untraced runs: saves a pass over the i32 accumulators.
    fused: Vec<bool>,
    /// Residual adds and convolutions whose single consumer is a requantizer, with that
    /// consumer's id: in untraced runs they may produce the requantized bytes directly (AVX2
    /// fixed point), which the requantizer then passes on.
    requant_of: Vec<Option<usize>>,
    /// For residual adds of two narrow inputs whose single consumer is a per-tensor requantizer:
    /// that requantizer's output for every pair of input bytes, `table[a << 8 | b]`, computed
    /// with the scalar functions once per graph (one load per element in untraced runs).
    add_tables: Vec<Option<Vec<u8>>>,
}

thread_local! {
    /// i32 buffers of freed tensors, reused for the next kernel outputs on this thread so that their
    /// memory is neither zeroed nor faulted in again (the kernels overwrite every output element).
    static SPARE_I32: Spares<i32> = const { std::cell::RefCell::new(Vec::new()) };
    /// Byte buffers of freed u8/i8 tensors, reused likewise by loops that write every byte.
    static SPARE_U8: Spares<u8> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A thread's spare buffers of one element type.
type Spares<T> = std::cell::RefCell<Vec<Vec<T>>>;

/// Most spare buffers kept per thread.
const MAX_SPARE: usize = 8;

/// Most spare bytes kept per thread (larger models simply allocate afresh beyond this).
const MAX_SPARE_BYTES: usize = 64 << 20;

/// A buffer of `n` i32 for a kernel to overwrite completely: a spare one (contents stale) if one is
/// large enough, else a new zeroed one.
fn kernel_output(n: usize) -> Vec<i32> {
    take_spare(&SPARE_I32, n)
}

/// The smallest spare buffer of at least `n` elements resized to `n` (contents stale), else a new
/// zeroed one.
fn take_spare<T: Copy + Default + 'static>(
    spares: &'static std::thread::LocalKey<Spares<T>>,
    n: usize,
) -> Vec<T> {
    let spare = spares.with(|s| {
        let mut s = s.borrow_mut();
        let best = s
            .iter()
            .enumerate()
            .filter(|(_, v)| v.capacity() >= n)
            .min_by_key(|(_, v)| v.capacity())
            .map(|(i, _)| i);
        best.map(|i| s.swap_remove(i))
    });
    match spare {
        Some(mut v) => {
            if v.len() >= n {
                v.truncate(n);
            } else {
                v.resize(n, T::default());
            }
            v
        }
        None => vec![T::default(); n],
    }
}

/// Returns a freed tensor's i32 or byte buffer to this thread's spares.
fn recycle(t: Tensor) {
    match t.data {
        TensorData::I32(v) => keep_spare(&SPARE_I32, v),
        TensorData::U8(v) => recycle_bytes(v),
        TensorData::I8(v) => {
            let mut v = std::mem::ManuallyDrop::new(v);
            // SAFETY: the allocation is handed over whole; i8 and u8 have the same size and
            // alignment and every bit pattern is valid in both.
            recycle_bytes(unsafe {
                Vec::from_raw_parts(v.as_mut_ptr() as *mut u8, v.len(), v.capacity())
            });
        }
        TensorData::Bits(_) => {}
    }
}

/// Returns a byte buffer to this thread's spares.
fn recycle_bytes(v: Vec<u8>) {
    keep_spare(&SPARE_U8, v);
}

/// Keeps `v` in `spares` unless they are full.
fn keep_spare<T: 'static>(spares: &'static std::thread::LocalKey<Spares<T>>, v: Vec<T>) {
    spares.with(|s| {
        let mut s = s.borrow_mut();
        let size = std::mem::size_of::<T>();
        let held: usize = s.iter().map(|b| b.capacity() * size).sum();
        if s.len() < MAX_SPARE && held + v.capacity() * size <= MAX_SPARE_BYTES {
            s.push(v);
        }
    });
}

/// A buffer of `n` bytes for a loop to overwrite completely: a spare one (contents stale) if
/// one is large enough, else a new zeroed one.
fn byte_output(n: usize) -> Vec<u8> {
    take_spare(&SPARE_U8, n)
}

/// Largest chunk of images one task runs through the whole graph.
const MAX_CHUNK: usize = 16;

impl<'g> FastExecutor<'g> {
    /// Validates the graph and prepares its weights.
    pub fn new(graph: &'g QGraph) -> Result<Self> {
        graph.validate()?;
        let prep = graph.nodes.iter().map(|n| prepare(graph, n)).collect();
        let mut consumers = vec![Vec::new(); graph.nodes.len()];
        for (i, n) in graph.nodes.iter().enumerate() {
            for &p in &n.inputs {
                consumers[p].push(i);
            }
        }
        let fused = graph
            .nodes
            .iter()
            .zip(&consumers)
            .map(|(n, c)| {
                let mac = matches!(
                    n.op,
                    Op::Conv2d(_) | Op::Dense(_) | Op::BinaryConv2d(_) | Op::BinaryDense(_)
                );
                mac && c.len() == 1 && matches!(graph.nodes[c[0]].op, Op::Requant(_))
            })
            .collect();
        let requant_of = graph
            .nodes
            .iter()
            .zip(&consumers)
            .map(|(n, c)| match (&n.op, c.as_slice()) {
                (Op::Add(_) | Op::Conv2d(_), &[r])
                    if matches!(graph.nodes[r].op, Op::Requant(_)) =>
                {
                    Some(r)
                }
                _ => None,
            })
            .collect();
        let add_tables = graph
            .nodes
            .iter()
            .zip(&requant_of)
            .map(|(n, r): (&Node, &Option<usize>)| add_table(graph, n, (*r)?))
            .collect();
        Ok(FastExecutor {
            graph,
            prep,
            last_use: graph.last_use(),
            fused,
            requant_of,
            add_tables,
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
                let mut outs = self.run_chunk(images, images.len() / per, false, None);
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
            .run_chunk(input, batch, true, None)
            .into_iter()
            .map(|t| t.expect("traced runs keep every tensor"))
            .collect())
    }

    /// Runs the whole batch as one untraced chunk on the calling thread's pool `runs` times and
    /// returns the wall time each node took, summed over the runs (index = node id). For
    /// per-layer profiles; the results are those of [`FastExecutor::run`].
    pub fn profile(&self, input: &[u8], batch: usize, runs: usize) -> Result<Vec<Duration>> {
        check_input(self.graph, input, batch)?;
        let mut times = vec![Duration::ZERO; self.graph.nodes.len()];
        for _ in 0..runs {
            self.run_chunk(input, batch, false, Some(&mut times));
        }
        Ok(times)
    }

    /// Runs every node on `batch` images; with `keep` every output is kept (traced), else freed
    /// after its last use. `times`, if given, gets each node's wall time added.
    fn run_chunk(
        &self,
        input: &[u8],
        batch: usize,
        keep: bool,
        mut times: Option<&mut Vec<Duration>>,
    ) -> Vec<Option<Tensor>> {
        let nodes = &self.graph.nodes;
        let mut out: Vec<Option<Tensor>> = Vec::with_capacity(nodes.len());
        for (i, node) in nodes.iter().enumerate() {
            let start = times.is_some().then(Instant::now);
            // A requantizer whose fused add already produced its bytes passes them on.
            let done = match node.op {
                Op::Requant(_) if !keep && self.requant_of[node.inputs[0]].is_some() => out
                    [node.inputs[0]]
                    .take_if(|t| !matches!(t.data, TensorData::I32(_)))
                    .map(|t| t.data),
                _ => None,
            };
            let t = if let Some(data) = done {
                Tensor {
                    ty: node.output.clone(),
                    batch,
                    data,
                }
            } else {
                let arg = |k: usize| {
                    out[node.inputs[k]]
                        .as_ref()
                        .expect("inputs are alive until their last use")
                };
                let data = match &node.op {
                    Op::Input => TensorData::U8(input.to_vec()),
                    Op::Conv2d(_) | Op::Dense(_) => {
                        self.mac(i, node, arg(0), batch, keep || !self.fused[i])
                    }
                    Op::BinaryConv2d(_) | Op::BinaryDense(_) => {
                        self.binary_mac(i, node, arg(0), batch, keep || !self.fused[i])
                    }
                    Op::Requant(r) => {
                        let p = node.inputs[0];
                        let pending = if !keep && self.fused[p] {
                            self.channel_add(p)
                        } else {
                            None
                        };
                        requant(&r.requant, arg(0), &node.output, pending)
                    }
                    Op::MaxPool(p) => max_pool(p, arg(0), &node.output),
                    Op::AvgPool(p) => avg_pool(p, arg(0), &node.output),
                    Op::GlobalAvgPool => global_avg_pool(arg(0), &node.output),
                    Op::Relu { zero_point } => relu(arg(0), *zero_point),
                    Op::Add(_) if !keep && self.add_tables[i].is_some() => {
                        let table = self.add_tables[i].as_deref().unwrap_or_default();
                        let r = self.requant_of[i].map(|r| &nodes[r].output);
                        let signed_out = r.is_some_and(|t| matches!(t.dtype, DType::Signed { .. }));
                        add_lookup(table, arg(0), arg(1), signed_out)
                    }
                    Op::Add(a) if !keep && self.requant_of[i].is_some() => {
                        let r = self.requant_of[i].map(|r| &nodes[r]);
                        match r.and_then(|r| add_requant(a, r, arg(0), arg(1))) {
                            Some(d) => d,
                            None => add(a, arg(0), arg(1)),
                        }
                    }
                    Op::Add(a) => add(a, arg(0), arg(1)),
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
            if let (Some(times), Some(start)) = (times.as_deref_mut(), start) {
                times[i] += start.elapsed();
            }
            if !keep {
                for &p in &node.inputs {
                    if self.last_use[p] == i
                        && let Some(t) = out[p].take()
                    {
                        recycle(t);
                    }
                }
            }
        }
        out
    }

    /// Integer conv or dense through the packed u8 x i8 kernels.
    /// The per-channel add of MAC node `i` (correction or bias), if it has one.
    fn channel_add(&self, i: usize) -> Option<&[i32]> {
        match (&self.prep[i], &self.graph.nodes[i].op) {
            (Prep::Conv { correction, .. } | Prep::Dense { correction, .. }, _) => Some(correction),
            (_, Op::BinaryConv2d(c)) => c.bias.as_deref(),
            (_, Op::BinaryDense(d)) => d.bias.as_deref(),
            _ => None,
        }
    }

    /// Integer conv or dense; the per-channel correction is added unless `finish` is false (then the
    /// consuming requantizer adds it).
    fn mac(&self, i: usize, node: &Node, x: &Tensor, batch: usize, finish: bool) -> TensorData {
        let offset_input;
        let a: &[u8] = match &x.data {
            TensorData::U8(v) => v,
            TensorData::I8(v) => {
                offset_input = v.iter().map(|&s| (s as u8) ^ 0x80).collect::<Vec<u8>>();
                &offset_input
            }
            _ => unreachable!("validated: narrow input"),
        };
        let s = node.output.spatial();
        let mut acc = kernel_output(batch * node.output.numel());
        let correction = match (&node.op, &self.prep[i]) {
            (
                Op::Conv2d(c),
                Prep::Conv {
                    packed,
                    pad_value,
                    correction,
                },
            ) => {
                let g = geometry(
                    batch,
                    &x.ty,
                    c.out_channels,
                    c.kernel_h,
                    c.kernel_w,
                    c.stride,
                    c.pad,
                    c.groups,
                );
                if let (false, ConvWeights::Gemm(w), Some(r)) = (finish, packed, self.requant_of[i])
                    && let Some(bytes) =
                        conv_requant(a, w, &g, *pad_value, correction, &self.graph.nodes[r])
                {
                    recycle(Tensor {
                        ty: node.output.clone(),
                        batch,
                        data: TensorData::I32(acc),
                    });
                    return bytes;
                }
                match packed {
                    ConvWeights::Gemm(w) => conv2d_u8i8_packed(a, w, &mut acc, &g, *pad_value),
                    ConvWeights::Depthwise(w) => {
                        depthwise_conv2d_u8i8_packed(a, w, &mut acc, &g, *pad_value)
                    }
                }
                correction
            }
            (Op::Dense(_), Prep::Dense { packed, correction }) => {
                gemm_u8i8_packed(a, packed, &mut acc, batch);
                correction
            }
            _ => unreachable!("prepared as MAC"),
        };
        if finish {
            add_per_channel(&mut acc, correction, s);
        }
        TensorData::I32(acc)
    }

    /// Binary conv or dense through the xnor-popcount kernels.
    fn binary_mac(
        &self,
        i: usize,
        node: &Node,
        x: &Tensor,
        batch: usize,
        finish: bool,
    ) -> TensorData {
        let TensorData::Bits(a) = &x.data else {
            unreachable!("validated: binary input")
        };
        let o = node.output.channels();
        let s = node.output.spatial();
        let mut acc = kernel_output(batch * o * s);
        let bias = match (&node.op, &self.prep[i]) {
            (Op::BinaryConv2d(c), prep) => {
                let g = geometry(
                    batch,
                    &x.ty,
                    c.out_channels,
                    c.kernel_h,
                    c.kernel_w,
                    c.stride,
                    c.pad,
                    c.groups,
                );
                match prep {
                    Prep::BinaryConv { packed } => binary_conv2d_packed(a, packed, &mut acc, &g),
                    Prep::BinaryConvRef { bits } => {
                        qbench_kernels::reference::binary_conv2d(a, bits, &mut acc, &g)
                    }
                    _ => unreachable!("prepared as binary conv"),
                }
                &c.bias
            }
            (Op::BinaryDense(d), Prep::BinaryDense { bits }) => {
                binary_gemm(a, bits, &mut acc, batch, o, d.in_features);
                &d.bias
            }
            _ => unreachable!("prepared as binary"),
        };
        if let (Some(b), true) = (bias, finish) {
            add_per_channel(&mut acc, b, s);
        }
        TensorData::I32(acc)
    }
}

/// Kernel geometry for a batch of `input`-typed maps.
#[allow(clippy::too_many_arguments)]
fn geometry(
    batch: usize,
    input: &TensorType,
    out_channels: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> ConvGeometry {
    ConvGeometry {
        batch,
        in_channels: input.shape[0],
        in_h: input.shape[1],
        in_w: input.shape[2],
        out_channels,
        kernel_h,
        kernel_w,
        stride,
        pad,
        groups,
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
    let input = node.inputs.first().map(|&p| &graph.nodes[p].output);
    // `(pad value, bias - pad * sum(w))` for an integer layer over `input`.
    let correction = |weights: &[i8], bias: &Option<Vec<i32>>, z: i32, outs: usize| {
        let offset = match input.map(|t| t.dtype) {
            Some(DType::Signed { .. }) => 128,
            _ => 0,
        };
        let pad = z + offset;
        let per = weights.len() / outs;
        let corr = weights
            .chunks(per)
            .enumerate()
            .map(|(o, w)| {
                let sum: i32 = w.iter().map(|&v| i32::from(v)).sum();
                let b = bias.as_ref().map_or(0, |b| b[o]);
                b.wrapping_sub(pad.wrapping_mul(sum))
            })
            .collect();
        (pad as u8, corr)
    };
    match (&node.op, input) {
        (Op::Conv2d(c), Some(t)) => {
            let (pad_value, correction) =
                correction(&c.weights, &c.bias, c.input_zero_point, c.out_channels);
            let g = geometry(
                1,
                t,
                c.out_channels,
                c.kernel_h,
                c.kernel_w,
                c.stride,
                c.pad,
                c.groups,
            );
            let packed = if is_depthwise(&g) {
                ConvWeights::Depthwise(PackedDepthwiseWeights::new(&c.weights, &g))
            } else {
                ConvWeights::Gemm(PackedConvWeights::new(&c.weights, &g))
            };
            Prep::Conv {
                packed,
                pad_value,
                correction,
            }
        }
        (Op::Dense(d), Some(_)) => {
            let (_, correction) =
                correction(&d.weights, &d.bias, d.input_zero_point, d.out_features);
            Prep::Dense {
                packed: PackedWeightsI8::new(&d.weights, d.out_features, d.in_features),
                correction,
            }
        }
        (Op::BinaryConv2d(c), Some(t)) => {
            // O[C/groups]HW +-1 -> [O][kh][kw][words(C/groups)] bits.
            let (kh, kw, ci) = (c.kernel_h, c.kernel_w, c.in_channels / c.groups);
            let words = binary_words(ci);
            let mut bits = vec![0u64; c.out_channels * kh * kw * words];
            for o in 0..c.out_channels {
                for ch in 0..ci {
                    for y in 0..kh {
                        for x in 0..kw {
                            if c.weights[((o * ci + ch) * kh + y) * kw + x] > 0 {
                                bits[((o * kh + y) * kw + x) * words + ch / 64] |=
                                    1u64 << (ch % 64);
                            }
                        }
                    }
                }
            }
            if kh * kw <= PACKED_BINARY_MAX_TAPS && c.groups == 1 {
                let g = geometry(1, t, c.out_channels, kh, kw, c.stride, c.pad, 1);
                Prep::BinaryConv {
                    packed: PackedBinaryConvWeights::new(&bits, &g),
                }
            } else {
                Prep::BinaryConvRef { bits }
            }
        }
        (Op::BinaryDense(d), Some(_)) => {
            let words = binary_words(d.in_features);
            let mut bits = vec![0u64; d.out_features * words];
            for (o, row) in d.weights.chunks(d.in_features).enumerate() {
                for (f, &w) in row.iter().enumerate() {
                    if w > 0 {
                        bits[o * words + f / 64] |= 1u64 << (f % 64);
                    }
                }
            }
            Prep::BinaryDense { bits }
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

/// The byte table of an add node `n` of two narrow inputs whose single consumer `r` is a
/// per-tensor requantizer to a narrow type (see `FastExecutor::add_tables`), else `None`.
fn add_table(graph: &QGraph, n: &Node, r: usize) -> Option<Vec<u8>> {
    let (Op::Add(add), Op::Requant(rq)) = (&n.op, &graph.nodes[r].op) else {
        return None;
    };
    let per_tensor = match &rq.requant {
        Requant::FixedPoint {
            multiplier, shift, ..
        } => multiplier.len() == 1 && shift.len() == 1,
        Requant::Shift { shift, .. } => shift.len() == 1,
        _ => false,
    };
    let dtypes: Vec<DType> = n
        .inputs
        .iter()
        .map(|&p| graph.nodes[p].output.dtype)
        .collect();
    let signed = match dtypes.as_slice() {
        [DType::Unsigned { .. }, DType::Unsigned { .. }] => false,
        [DType::Signed { .. }, DType::Signed { .. }] => true,
        _ => return None,
    };
    if !per_tensor || !graph.nodes[r].output.dtype.is_narrow_int() {
        return None;
    }
    let value = |b: usize| {
        if signed {
            i32::from(b as u8 as i8)
        } else {
            b as i32
        }
    };
    Some(
        (0..1usize << 16)
            .map(|i| {
                rq.requant
                    .apply(residual_add(value(i >> 8), value(i & 255), add), 0)
                    as u8
            })
            .collect(),
    )
}

/// The requantized residual add of `x` and `y` through its byte table, stored as i8 when the
/// requantizer's output is `signed_out`.
fn add_lookup(table: &[u8], x: &Tensor, y: &Tensor, signed_out: bool) -> TensorData {
    fn bytes(t: &Tensor) -> Option<&[u8]> {
        match &t.data {
            TensorData::U8(v) => Some(v),
            TensorData::I8(v) => Some(bytes_of(v)),
            _ => None,
        }
    }
    let (Some(a), Some(b)) = (bytes(x), bytes(y)) else {
        unreachable!("add tables exist only for narrow inputs")
    };
    let mut out = byte_output(a.len());
    for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
        *o = table[usize::from(p) << 8 | usize::from(q)];
    }
    narrow(out, signed_out)
}

/// The residual add `a` of `x` and `y`, as i32.
fn add(a: &crate::node::Add, x: &Tensor, y: &Tensor) -> TensorData {
    let (x, y) = (to_i32(x), to_i32(y));
    TensorData::I32(
        x.iter()
            .zip(y.iter())
            .map(|(&p, &q)| residual_add(p, q, a))
            .collect(),
    )
}

/// The residual add `a` of `x` and `y` requantized by `r`, its single consumer (a requantizer
/// node), in one AVX2 pass; `None` where that path does not apply (then the add runs alone).
fn add_requant(a: &crate::node::Add, r: &Node, x: &Tensor, y: &Tensor) -> Option<TensorData> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let Op::Requant(rq) = &r.op else {
            return None;
        };
        let (xs, ys, signed_in) = match (&x.data, &y.data) {
            (TensorData::U8(p), TensorData::U8(q)) => (p.as_slice(), q.as_slice(), false),
            (TensorData::I8(p), TensorData::I8(q)) => (bytes_of(p), bytes_of(q), true),
            _ => return None,
        };
        let signed_out = match r.output.dtype {
            DType::Unsigned { .. } => false,
            DType::Signed { .. } => true,
            _ => return None,
        };
        let cs = (r.output.channels(), r.output.spatial());
        let mut v = byte_output(xs.len());
        // SAFETY: the CPU supports AVX2, checked just above.
        let done = unsafe {
            super::fast_avx2::add_requant(a, &rq.requant, xs, ys, cs, signed_in, signed_out, &mut v)
        };
        if done.is_none() {
            recycle_bytes(v);
            return None;
        }
        return Some(narrow(v, signed_out));
    }
    let _ = (a, r, x, y);
    None
}

/// The convolution `w` of `a` requantized by `r`, its single consumer (a requantizer node), with
/// the per-channel `correction` added first: the kernels deliver i32 blocks while they are in
/// cache and an AVX2 loop requantizes them, so no i32 tensor is stored. `None` where that path
/// does not apply (then the convolution runs alone).
fn conv_requant(
    a: &[u8],
    w: &PackedConvWeights,
    g: &ConvGeometry,
    pad_value: u8,
    correction: &[i32],
    r: &Node,
) -> Option<TensorData> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        let Op::Requant(rq) = &r.op else {
            return None;
        };
        let signed = match r.output.dtype {
            DType::Unsigned { .. } => false,
            DType::Signed { .. } => true,
            _ => return None,
        };
        let plane = g.out_h() * g.out_w();
        let mut v = byte_output(g.batch * g.out_channels * plane);
        // SAFETY: the CPU supports AVX2, checked just above.
        let sink = unsafe {
            super::fast_avx2::RequantSink::new(&rq.requant, correction, &mut v, plane, signed)
        };
        let Some(sink) = sink else {
            recycle_bytes(v);
            return None;
        };
        qbench_kernels::conv2d_u8i8_packed_sink(a, w, g, pad_value, &sink);
        drop(sink);
        return Some(narrow(v, signed));
    }
    let _ = (a, w, g, pad_value, correction, r);
    None
}

/// The bytes of an i8 slice.
fn bytes_of(v: &[i8]) -> &[u8] {
    // SAFETY: i8 and u8 have the same size and alignment, and every bit pattern is valid.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len()) }
}

/// Bytes as the storage of a narrow dtype (`signed`: i8, else u8).
fn narrow(v: Vec<u8>, signed: bool) -> TensorData {
    if signed {
        let mut v = std::mem::ManuallyDrop::new(v);
        // SAFETY: the allocation is handed over whole; i8 and u8 have the same size and
        // alignment and every bit pattern is valid in both.
        TensorData::I8(unsafe {
            Vec::from_raw_parts(v.as_mut_ptr() as *mut i8, v.len(), v.capacity())
        })
    } else {
        TensorData::U8(v)
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

/// Requantizes `x`; `pending` is a per-channel add (wrapping) still to be applied to `x` first, left
/// there by a fused MAC node. Runs an AVX2 build of the same code where the CPU has it.
fn requant(r: &Requant, x: &Tensor, out: &TensorType, pending: Option<&[i32]>) -> TensorData {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        if let (TensorData::I32(acc), DType::Unsigned { .. } | DType::Signed { .. }) =
            (&x.data, out.dtype)
        {
            let signed = matches!(out.dtype, DType::Signed { .. });
            let cs = (out.channels(), out.spatial());
            let mut v = byte_output(acc.len());
            // SAFETY: the CPU supports AVX2, checked just above.
            let done = unsafe {
                super::fast_avx2::requant_fixed_point(r, acc, cs, pending, signed, &mut v)
            };
            if done.is_some() {
                return narrow(v, signed);
            }
            recycle_bytes(v);
        }
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { requant_avx2(r, x, out, pending) };
    }
    requant_body(r, x, out, pending)
}

/// [`requant_body`] compiled for AVX2 (wider vectors for the element-wise loops).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn requant_avx2(r: &Requant, x: &Tensor, out: &TensorType, pending: Option<&[i32]>) -> TensorData {
    requant_body(r, x, out, pending)
}

/// The `k`-th plane of `v` (`s` values), with the pending add of its channel applied in `scratch`.
#[inline(always)]
fn plane<'a>(
    v: &'a [i32],
    k: usize,
    (c, s): (usize, usize),
    pending: Option<&[i32]>,
    scratch: &'a mut [i32],
) -> &'a [i32] {
    let src = &v[k * s..(k + 1) * s];
    match pending {
        Some(add) => {
            let a = add[k % c];
            for (d, &x) in scratch.iter_mut().zip(src) {
                *d = x.wrapping_add(a);
            }
            scratch
        }
        None => src,
    }
}

#[inline(always)]
fn requant_body(r: &Requant, x: &Tensor, out: &TensorType, pending: Option<&[i32]>) -> TensorData {
    let v = to_i32(x);
    let (c, s) = (out.channels(), out.spatial());
    let mut scratch = vec![0i32; if pending.is_some() { s } else { 0 }];
    let batch = x.batch;
    match out.dtype {
        DType::Binary => {
            let words = binary_words(c);
            let mut bits = vec![0u64; batch * s * words];
            for k in 0..batch * c {
                let (n, ch) = (k / c, k % c);
                let (word, mask) = (ch / 64, 1u64 << (ch % 64));
                let src = plane(&v, k, (c, s), pending, &mut scratch);
                r.apply_run(ch, src, |p, o| {
                    if o > 0 {
                        bits[(n * s + p) * words + word] |= mask;
                    }
                });
            }
            TensorData::Bits(bits)
        }
        DType::Unsigned { .. } => {
            // Grown plane by plane, so each plane is zeroed while it is in cache anyway.
            let mut o: Vec<u8> = Vec::with_capacity(v.len());
            for k in 0..batch * c {
                let src = plane(&v, k, (c, s), pending, &mut scratch);
                o.resize(o.len() + s, 0);
                let dst = &mut o[k * s..(k + 1) * s];
                r.apply_run(k % c, src, |i, q| dst[i] = q as u8);
            }
            TensorData::U8(o)
        }
        DType::Signed { .. } => {
            let mut o: Vec<i8> = Vec::with_capacity(v.len());
            for k in 0..batch * c {
                let src = plane(&v, k, (c, s), pending, &mut scratch);
                o.resize(o.len() + s, 0);
                let dst = &mut o[k * s..(k + 1) * s];
                r.apply_run(k % c, src, |i, q| dst[i] = q as i8);
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

/// Generic pooling over planes of any element type: `reduce(acc, value)` folds the in-bounds window
/// starting from `init(first value)`, and `finish` maps the folded value to the output.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pool_planes<T: Copy, A: Copy, U>(
    p: &Pool,
    x: &[T],
    planes: usize,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    init: impl Fn(T) -> A,
    reduce: impl Fn(A, T) -> A,
    finish: impl Fn(A) -> U,
) -> Vec<U> {
    let mut out = Vec::with_capacity(planes * oh * ow);
    for plane in x.chunks(h * w).take(planes) {
        for y in 0..oh {
            let (y0, y1) = window(y, p.stride, p.pad, p.kernel_h, h);
            for xo in 0..ow {
                let (x0, x1) = window(xo, p.stride, p.pad, p.kernel_w, w);
                let mut acc = init(plane[y0 * w + x0]);
                for iy in y0..y1 {
                    for &v in &plane[iy * w + x0..iy * w + x1] {
                        acc = reduce(acc, v);
                    }
                }
                out.push(finish(acc));
            }
        }
    }
    out
}

/// Max pooling; an AVX2 build of the same code runs where the CPU has it.
fn max_pool(p: &Pool, x: &Tensor, out: &TensorType) -> TensorData {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU supports AVX2, checked just above.
        return unsafe { max_pool_avx2(p, x, out) };
    }
    max_pool_body(p, x, out)
}

/// [`max_pool_body`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn max_pool_avx2(p: &Pool, x: &Tensor, out: &TensorType) -> TensorData {
    max_pool_body(p, x, out)
}

/// Max of every 2x2 block (stride 2, no padding), the common BNN/CNN pooling: the two rows are
/// folded element-wise (vectorizes), then adjacent pairs.
#[inline(always)]
fn max_pool_2x2<T: Copy + Ord>(
    x: &[T],
    planes: usize,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(planes * oh * ow);
    let Some(&first) = x.first() else {
        return out;
    };
    let mut row = vec![first; 2 * ow];
    for plane in x.chunks_exact(h * w).take(planes) {
        for y in 0..oh {
            let r0 = &plane[2 * y * w..2 * y * w + 2 * ow];
            let r1 = &plane[(2 * y + 1) * w..(2 * y + 1) * w + 2 * ow];
            for ((m, &a), &b) in row.iter_mut().zip(r0).zip(r1) {
                *m = a.max(b);
            }
            let start = out.len();
            out.resize(start + ow, first);
            for (o, pair) in out[start..].iter_mut().zip(row.chunks_exact(2)) {
                *o = pair[0].max(pair[1]);
            }
        }
    }
    out
}

/// Max pooling of any window, stride and padding, separably: per output row the window's input
/// rows are folded element-wise into one row (a vectorizable loop over the whole width). That
/// row, with `lowest` in the left and right padding (it never wins a max, and every window holds
/// an input since `pad < kernel_w`), is split into `stride` phases (`phase[r][i] = row[i stride
/// + r]`), so each output is the max of `kernel_w` contiguous phase slices, one vectorizable loop
/// per tap. Out-of-bounds rows are skipped, as in [`pool_planes`]. Requires `pad < kernel_w`.
#[inline(always)]
fn max_pool_rows<T: Copy + Ord + Default>(
    p: &Pool,
    x: &[T],
    planes: usize,
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    lowest: T,
) -> Vec<T> {
    let (s, kw) = (p.stride, p.kernel_w);
    // Phase length: output i reads phase (j % s) at i + j / s for taps j < kw.
    let plen = ow + (kw - 1) / s;
    let mut row = vec![lowest; plen * s];
    let mut phases = vec![lowest; plen * s];
    let mut out = vec![T::default(); planes * oh * ow];
    let wc = w.min(plen * s - p.pad);
    for (plane, o) in x.chunks(h * w).zip(out.chunks_mut(oh * ow)).take(planes) {
        for (y, o) in o.chunks_mut(ow).enumerate() {
            let (y0, y1) = window(y, p.stride, p.pad, p.kernel_h, h);
            let r = &mut row[p.pad..p.pad + wc];
            r.copy_from_slice(&plane[y0 * w..y0 * w + wc]);
            for iy in y0 + 1..y1 {
                for (m, &v) in r.iter_mut().zip(&plane[iy * w..iy * w + wc]) {
                    *m = (*m).max(v);
                }
            }
            if s == 2 {
                // The common stride, without per-element index arithmetic.
                let (even, odd) = phases.split_at_mut(plen);
                for ((pair, e), o) in row.chunks_exact(2).zip(even).zip(odd) {
                    (*e, *o) = (pair[0], pair[1]);
                }
            } else {
                for (r, phase) in phases.chunks_exact_mut(plen).enumerate() {
                    for (d, chunk) in phase.iter_mut().zip(row.chunks_exact(s)) {
                        *d = chunk[r];
                    }
                }
            }
            o.copy_from_slice(&phases[..ow]);
            for j in 1..kw {
                let src = &phases[(j % s) * plen + j / s..][..ow];
                for (d, &v) in o.iter_mut().zip(src) {
                    *d = (*d).max(v);
                }
            }
        }
    }
    out
}

#[inline(always)]
fn max_pool_body(p: &Pool, x: &Tensor, out: &TensorType) -> TensorData {
    let (c, h, w) = (x.ty.shape[0], x.ty.shape[1], x.ty.shape[2]);
    let (oh, ow) = (out.shape[1], out.shape[2]);
    let planes = x.batch * c;
    let separable = p.stride > 0 && p.pad < p.kernel_w && p.pad < p.kernel_h && oh > 0 && ow > 0;
    if p.pad == 0 && p.stride == 2 && p.kernel_h == 2 && p.kernel_w == 2 {
        match &x.data {
            TensorData::U8(v) => return TensorData::U8(max_pool_2x2(v, planes, (h, w), (oh, ow))),
            TensorData::I8(v) => return TensorData::I8(max_pool_2x2(v, planes, (h, w), (oh, ow))),
            TensorData::I32(v) => {
                return TensorData::I32(max_pool_2x2(v, planes, (h, w), (oh, ow)));
            }
            TensorData::Bits(_) => {}
        }
    }
    match &x.data {
        TensorData::U8(v) if separable => {
            TensorData::U8(max_pool_rows(p, v, planes, (h, w), (oh, ow), u8::MIN))
        }
        TensorData::I8(v) if separable => {
            TensorData::I8(max_pool_rows(p, v, planes, (h, w), (oh, ow), i8::MIN))
        }
        TensorData::I32(v) if separable => {
            TensorData::I32(max_pool_rows(p, v, planes, (h, w), (oh, ow), i32::MIN))
        }
        TensorData::U8(v) => TensorData::U8(pool_planes(
            p,
            v,
            planes,
            (h, w),
            (oh, ow),
            |a| a,
            Ord::max,
            |a| a,
        )),
        TensorData::I8(v) => TensorData::I8(pool_planes(
            p,
            v,
            planes,
            (h, w),
            (oh, ow),
            |a| a,
            Ord::max,
            |a| a,
        )),
        TensorData::I32(v) => TensorData::I32(pool_planes(
            p,
            v,
            planes,
            (h, w),
            (oh, ow),
            |a| a,
            Ord::max,
            |a| a,
        )),
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
    // The first value seeds the sum, so it starts at 0 and adds every in-bounds value once.
    let avg = pool_planes(
        p,
        &v,
        x.batch * c,
        (h, w),
        (oh, ow),
        |_| 0i64,
        |acc, a| acc + i64::from(a),
        |sum| avg_round(sum, count),
    );
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
