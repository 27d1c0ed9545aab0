//! Operand vectors for co-simulation and switching activity: (a) edge cases, (b) seeded random
//! operands, (c) real operand streams captured from the engine running a graph.
//!
//! A [`VectorSet`] holds engine-level operations ([`Operands`]): one requantization, or one row of a
//! dot product (a run of multiply-accumulate steps sharing a bias, which the processing elements
//! execute one step per clock). Each unit takes the operations it can execute
//! ([`crate::sim::stimulus`]); the reference results come from the engine's own code.

use std::collections::BTreeMap;

use qbench_engine::exec::reference;
use qbench_engine::{DType, Op, QGraph, Requant, WeightKind};
use qbench_io::sha256_hex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::activity;
use crate::error::{HwError, Result};
use crate::units::{self, UnitKind};

/// One engine operation a unit executes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operands {
    /// `Requant::Shift` of one accumulator (the shift in 0..=31).
    Shift {
        /// Accumulator.
        acc: i32,
        /// Right shift.
        shift: u8,
        /// Output zero point.
        zero_point: i32,
        /// Lower clamp bound.
        min: i32,
        /// Upper clamp bound.
        max: i32,
    },
    /// `Requant::FixedPoint` of one accumulator.
    FixedPoint {
        /// Accumulator.
        acc: i32,
        /// Q31 multiplier M0.
        multiplier: i32,
        /// TFLite exponent, -31..=30.
        shift: i32,
        /// Output zero point.
        zero_point: i32,
        /// Lower clamp bound.
        min: i32,
        /// Upper clamp bound.
        max: i32,
    },
    /// `Requant::Threshold` of one accumulator.
    Threshold {
        /// Accumulator.
        acc: i32,
        /// The channel's threshold.
        threshold: i32,
        /// The channel's direction.
        flip: bool,
    },
    /// `Requant::MultiThreshold` of one accumulator (`2^k - 1` thresholds).
    MultiThreshold {
        /// Accumulator.
        acc: i32,
        /// The channel's thresholds.
        thresholds: Vec<i32>,
        /// The channel's direction.
        flip: bool,
    },
    /// A dot-product row `bias + sum (act[i] - zero_point) * weights[i]`, one MAC per step.
    /// Activations are unsigned (signed ones are stored with the engine's +2^(bits-1) offset on both
    /// activation and zero point, which leaves every difference unchanged).
    Dot {
        /// Accumulator start value.
        bias: i32,
        /// Input zero point (unsigned, like the activations).
        zero_point: i32,
        /// What the weights are.
        weight_kind: WeightKind,
        /// Unsigned activations.
        act: Vec<u8>,
        /// Weights.
        weights: Vec<i8>,
    },
    /// A binary dot-product row over packed 64-bit words (bit 1 = +1): `bias + sum (64 - 2 *
    /// popcount(a ^ w))`, one word per step.
    BinaryDot {
        /// Accumulator start value.
        bias: i32,
        /// Packed activations.
        act: Vec<u64>,
        /// Packed weights.
        weights: Vec<u64>,
    },
}

/// Where a vector came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Hand-picked edge case.
    Edge,
    /// Seeded random.
    Random,
    /// Captured from the engine running a graph.
    Graph,
}

/// One operation and its origin.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Vector {
    /// Origin.
    pub source: Source,
    /// The operation.
    pub op: Operands,
}

/// A set of operand vectors for all units.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VectorSet {
    /// The operations, in simulation order.
    pub vectors: Vec<Vector>,
}

/// Longest dot-product row taken from a graph (rows are prefixes of the real dot products).
pub const MAX_ROW: usize = 16;

/// Widths (activation bits, weight bits) of the catalog's integer MAC units, in catalog order: the
/// widths of the edge-case and random MAC rows.
fn mac_widths() -> Vec<(u32, u32)> {
    units::catalog()
        .iter()
        .filter_map(|u| match u.kind {
            UnitKind::Mac {
                act_bits,
                weight_bits,
            } => Some((act_bits, weight_bits)),
            _ => None,
        })
        .collect()
}

impl VectorSet {
    /// sha256 over the canonical JSON of the vectors (cache key and provenance).
    pub fn sha256(&self) -> String {
        let json = serde_json::to_vec(&self.vectors).unwrap_or_default();
        sha256_hex(&json)
    }

    /// Appends another set's vectors.
    pub fn extend(&mut self, other: VectorSet) {
        self.vectors.extend(other.vectors);
    }

    /// Number of vectors from `source`.
    pub fn count(&self, source: Source) -> usize {
        self.vectors.iter().filter(|v| v.source == source).count()
    }

    fn push(&mut self, source: Source, op: Operands) {
        self.vectors.push(Vector { source, op });
    }

    /// Edge cases for every unit: INT32_MIN/MAX and neighbours, every shift with its rounding ties
    /// (both signs), saturating clamps, the `MIN * MIN` high multiply, left and right fixed-point
    /// shifts, thresholds at, just below and just above the accumulator in both directions, and MAC
    /// rows at the extremes of every operand width (wrapping accumulators included).
    pub fn edge_cases() -> VectorSet {
        let mut set = VectorSet::default();
        let bounds: &[(i32, i32, i32)] = &[
            (0, 0, 255),
            (0, -128, 127),
            (-128, -128, 127),
            (10, 10, 255),
            (3, 0, 6),
        ];
        let accs = [
            i32::MIN,
            i32::MIN + 1,
            -2,
            -1,
            0,
            1,
            2,
            i32::MAX - 1,
            i32::MAX,
        ];
        for s in 0u8..=31 {
            let half = if s == 0 { 0 } else { 1i64 << (s - 1) };
            let mut values: Vec<i64> = accs.iter().map(|&a| i64::from(a)).collect();
            for k in [0i64, 1, 2, 3, -1, -2, -3] {
                let base = k << s;
                values.extend([base + half, base + half - 1, base - half, base - half + 1]);
            }
            for (i, v) in values.into_iter().enumerate() {
                let Ok(acc) = i32::try_from(v) else { continue };
                let (zero_point, min, max) = bounds[i % bounds.len()];
                set.push(
                    Source::Edge,
                    Operands::Shift {
                        acc,
                        shift: s,
                        zero_point,
                        min,
                        max,
                    },
                );
            }
        }
        // Fixed point: every exponent with extreme and tie-prone accumulators and multipliers.
        let mults = [
            i32::MIN,
            i32::MIN + 1,
            -1,
            0,
            1,
            1 << 30,
            (1 << 30) + 1,
            i32::MAX,
        ];
        let fp_accs = [
            i32::MIN,
            i32::MIN + 1,
            -1_048_576,
            -3,
            -1,
            0,
            1,
            3,
            1_048_575,
            i32::MAX,
        ];
        let mut i = 0usize;
        for shift in -31..=30 {
            for &acc in &fp_accs {
                for &multiplier in &mults {
                    i += 1;
                    // Thin the grid: all (acc, multiplier) pairs for a few exponents, a stride elsewhere.
                    if !(matches!(shift, -31 | -1 | 0 | 1 | 30) || i.is_multiple_of(7)) {
                        continue;
                    }
                    let (zero_point, min, max) = bounds[i % bounds.len()];
                    set.push(
                        Source::Edge,
                        Operands::FixedPoint {
                            acc,
                            multiplier,
                            shift,
                            zero_point,
                            min,
                            max,
                        },
                    );
                }
            }
        }
        // Rounding ties of the high multiply and of the rounding divide.
        for (acc, multiplier, shift) in [
            (1, 1 << 30, 0),
            (-1, 1 << 30, 0),
            (3, 1 << 30, 0),
            (-3, 1 << 30, 0),
            (2, 1 << 30, -1),
            (-2, 1 << 30, -1),
            (6, 1 << 30, -2),
            (-6, 1 << 30, -2),
            (i32::MIN, i32::MIN, 0),
            (i32::MIN, i32::MIN, -5),
        ] {
            set.push(
                Source::Edge,
                Operands::FixedPoint {
                    acc,
                    multiplier,
                    shift,
                    zero_point: 0,
                    min: -128,
                    max: 127,
                },
            );
        }
        // Thresholds.
        for &acc in &accs {
            for t in [
                acc.wrapping_sub(1),
                acc,
                acc.wrapping_add(1),
                i32::MIN,
                i32::MAX,
                0,
            ] {
                for flip in [false, true] {
                    set.push(
                        Source::Edge,
                        Operands::Threshold {
                            acc,
                            threshold: t,
                            flip,
                        },
                    );
                }
            }
        }
        for k in [2u32, 4] {
            let n = (1usize << k) - 1;
            for &acc in &accs {
                for flip in [false, true] {
                    let around: Vec<i32> = (0..n)
                        .map(|i| acc.saturating_add(i as i32 - (n as i32) / 2))
                        .collect();
                    let extremes: Vec<i32> = (0..n)
                        .map(|i| if i % 2 == 0 { i32::MIN } else { i32::MAX })
                        .collect();
                    set.push(
                        Source::Edge,
                        Operands::MultiThreshold {
                            acc,
                            thresholds: around,
                            flip,
                        },
                    );
                    set.push(
                        Source::Edge,
                        Operands::MultiThreshold {
                            acc,
                            thresholds: extremes,
                            flip,
                        },
                    );
                }
            }
        }
        // MAC rows at operand extremes, including accumulator wrap-around from the bias.
        for (aw, ww) in mac_widths() {
            let amax = ((1u32 << aw) - 1) as u8;
            let wmin = (-(1i32 << (ww - 1))) as i8;
            let wmax = ((1i32 << (ww - 1)) - 1) as i8;
            let kind = WeightKind::Int { bits: ww as u8 };
            for (bias, zero_point) in [(0, 0), (i32::MAX, 0), (i32::MIN, i32::from(amax)), (-1, 1)]
            {
                set.push(
                    Source::Edge,
                    Operands::Dot {
                        bias,
                        zero_point,
                        weight_kind: kind,
                        act: vec![amax, 0, amax, 1],
                        weights: vec![wmin, wmin, wmax, 0],
                    },
                );
            }
        }
        for (bias, zero_point) in [(0, 0), (i32::MAX, 0), (i32::MIN, 255)] {
            set.push(
                Source::Edge,
                Operands::Dot {
                    bias,
                    zero_point,
                    weight_kind: WeightKind::Ternary,
                    act: vec![255, 0, 255, 7],
                    weights: vec![1, -1, 0, -1],
                },
            );
        }
        for bias in [0, i32::MAX, i32::MIN, -64] {
            set.push(
                Source::Edge,
                Operands::BinaryDot {
                    bias,
                    act: vec![0, u64::MAX, 0, 0x5555_5555_5555_5555],
                    weights: vec![0, 0, u64::MAX, 0xAAAA_AAAA_AAAA_AAAA],
                },
            );
        }
        set
    }

    /// `n` seeded random operations of every kind (uniform 32-bit accumulators, multipliers, shifts,
    /// thresholds; MAC rows of 1..=8 steps with uniform operands of each width).
    pub fn random(seed: u64, n: usize) -> VectorSet {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut set = VectorSet::default();
        for _ in 0..n {
            let (zero_point, min, max) = random_bounds(&mut rng);
            // Half the accumulators are small so the clamps do not always saturate.
            let acc = if rng.random_bool(0.5) {
                rng.random::<i32>()
            } else {
                rng.random_range(-(1 << 20)..(1 << 20))
            };
            let shift = rng.random_range(0..=31u8);
            set.push(
                Source::Random,
                Operands::Shift {
                    acc,
                    shift,
                    zero_point,
                    min,
                    max,
                },
            );
            let fshift = rng.random_range(-31..=30);
            let multiplier = rng.random::<i32>();
            set.push(
                Source::Random,
                Operands::FixedPoint {
                    acc,
                    multiplier,
                    shift: fshift,
                    zero_point,
                    min,
                    max,
                },
            );
            let threshold = if rng.random_bool(0.5) {
                rng.random()
            } else {
                acc.wrapping_add(rng.random_range(-4..=4))
            };
            set.push(
                Source::Random,
                Operands::Threshold {
                    acc,
                    threshold,
                    flip: rng.random(),
                },
            );
            for k in [2u32, 4] {
                let mut thresholds: Vec<i32> = (0..(1 << k) - 1)
                    .map(|_| acc.wrapping_add(rng.random_range(-1000..=1000)))
                    .collect();
                thresholds.sort_unstable();
                set.push(
                    Source::Random,
                    Operands::MultiThreshold {
                        acc,
                        thresholds,
                        flip: rng.random(),
                    },
                );
            }
        }
        // MAC rows: about n steps per width.
        for (aw, ww) in mac_widths() {
            let mut steps = 0;
            while steps < n {
                let len = rng.random_range(1..=8usize);
                steps += len;
                let amax = (1u16 << aw) - 1;
                let act = (0..len).map(|_| rng.random_range(0..=amax) as u8).collect();
                let lim = 1i16 << (ww - 1);
                let weights = (0..len)
                    .map(|_| rng.random_range(-lim..lim) as i8)
                    .collect();
                let zero_point = i32::from(rng.random_range(0..=amax));
                set.push(
                    Source::Random,
                    Operands::Dot {
                        bias: rng.random(),
                        zero_point,
                        weight_kind: WeightKind::Int { bits: ww as u8 },
                        act,
                        weights,
                    },
                );
            }
        }
        let mut steps = 0;
        while steps < n {
            let len = rng.random_range(1..=8usize);
            steps += len;
            let act = (0..len).map(|_| rng.random()).collect();
            let weights = (0..len).map(|_| rng.random_range(-1..=1i8)).collect();
            set.push(
                Source::Random,
                Operands::Dot {
                    bias: rng.random_range(-(1 << 20)..(1 << 20)),
                    zero_point: rng.random_range(0..=255),
                    weight_kind: WeightKind::Ternary,
                    act,
                    weights,
                },
            );
            let act = (0..len).map(|_| rng.random()).collect();
            let weights = (0..len).map(|_| rng.random()).collect();
            set.push(
                Source::Random,
                Operands::BinaryDot {
                    bias: rng.random(),
                    act,
                    weights,
                },
            );
        }
        set
    }

    /// Real operand streams: every unit's stream of [`crate::activity::graph_streams`] (the
    /// operations of [`node_streams`] on `images`, grouped by the unit the one mapping
    /// [`crate::mapping::node_unit`] assigns each node to), at most `n` unit operations per unit
    /// (rows count their steps) spread evenly over the layers and positions that have them.
    ///
    /// # Errors
    /// As [`crate::activity::graph_streams`].
    pub fn from_graph(graph: &QGraph, images: &[u8], n: usize) -> Result<VectorSet> {
        let mut set = VectorSet::default();
        for stream in activity::graph_streams(graph, images, n)?.into_values() {
            set.extend(stream);
        }
        Ok(set)
    }

    /// A set of operations captured from a graph ([`Source::Graph`]).
    pub fn graph(ops: impl IntoIterator<Item = Operands>) -> VectorSet {
        VectorSet {
            vectors: ops
                .into_iter()
                .map(|op| Vector {
                    source: Source::Graph,
                    op,
                })
                .collect(),
        }
    }

    /// Operations of all vectors, in order.
    pub fn ops(&self) -> impl Iterator<Item = &Operands> {
        self.vectors.iter().map(|v| &v.op)
    }
}

/// The real operands of every node of `graph` when the engine's reference executor runs it on
/// `images` (concatenated u8 images of the graph's input shape), by node index: for every
/// requantizer, the accumulators that reach it with their channel's parameters; for every integer
/// convolution and dense layer, dot-product rows (prefixes of at most [`MAX_ROW`] steps of real
/// output dot products, with the real bias); for binary dense layers of at least 64 inputs and
/// binary convolutions of at least 64 taps, rows of at most [`MAX_ROW`] whole 64-bit words (binary
/// convolutions at output positions whose window lies inside the map, since padded taps count 0,
/// which a +-1 bit cannot hold). Nodes of other kinds have no entry.
///
/// # Errors
/// [`HwError::Unit`] when `images` is not a whole number of the graph's images, [`HwError::Engine`]
/// when the graph or images are invalid.
pub fn node_streams(graph: &QGraph, images: &[u8]) -> Result<BTreeMap<usize, Vec<Operands>>> {
    let per_image = graph.input_len();
    if per_image == 0 || !images.len().is_multiple_of(per_image) || images.is_empty() {
        return Err(HwError::Unit {
            unit: "vectors".into(),
            detail: format!(
                "{} image bytes are not a whole number of {per_image}-byte images",
                images.len()
            ),
        });
    }
    let batch = images.len() / per_image;
    let trace = reference::run_traced(graph, images, batch)?;
    let values: Vec<Vec<i32>> = trace.iter().map(|t| t.values()).collect();
    let mut streams: BTreeMap<usize, Vec<Operands>> = BTreeMap::new();
    for (index, node) in graph.nodes.iter().enumerate() {
        let Some(&src) = node.inputs.first() else {
            continue;
        };
        let ty = &graph.nodes[src].output;
        let x = &values[src];
        let (c, s) = (ty.channels().max(1), ty.spatial().max(1));
        let numel = ty.numel();
        let mut ops = Vec::new();
        match &node.op {
            Op::Requant(r) => {
                for (i, &acc) in x.iter().enumerate() {
                    let ch = (i % numel) / s % c;
                    ops.push(requant_operands(&r.requant, acc, ch));
                }
            }
            Op::Dense(d) => {
                let (off, zp) = act_offset(ty.dtype, d.input_zero_point);
                for b in 0..batch {
                    for o in 0..d.out_features {
                        let take = d.in_features.min(MAX_ROW);
                        let act = (0..take).map(|i| (x[b * numel + i] + off) as u8).collect();
                        ops.push(Operands::Dot {
                            bias: d.bias.as_ref().map_or(0, |v| v[o]),
                            zero_point: zp,
                            weight_kind: d.weight_kind,
                            act,
                            weights: d.weights[o * d.in_features..][..take].to_vec(),
                        });
                    }
                }
            }
            Op::Conv2d(cv) if ty.is_map() => {
                let (off, zp) = act_offset(ty.dtype, cv.input_zero_point);
                let window = Window::new(ty, cv.kernel_h, cv.kernel_w, cv.stride, cv.pad);
                let cin_g = cv.in_channels / cv.groups;
                let cout_g = cv.out_channels / cv.groups;
                let taps = cin_g * cv.kernel_h * cv.kernel_w;
                for b in 0..batch {
                    let image = &x[b * numel..][..numel];
                    for o in 0..cv.out_channels {
                        let first_channel = o / cout_g * cin_g;
                        for (y, xo) in window.positions() {
                            let act = (0..taps.min(MAX_ROW))
                                .map(|t| {
                                    let v = window
                                        .tap(image, first_channel, y, xo, t)
                                        .unwrap_or(cv.input_zero_point);
                                    (v + off) as u8
                                })
                                .collect();
                            ops.push(Operands::Dot {
                                bias: cv.bias.as_ref().map_or(0, |v| v[o]),
                                zero_point: zp,
                                weight_kind: cv.weight_kind,
                                act,
                                weights: cv.weights[o * taps..][..taps.min(MAX_ROW)].to_vec(),
                            });
                        }
                    }
                }
            }
            Op::BinaryConv2d(cv) if ty.is_map() => {
                // A row of whole 64-tap words per output; a group of fewer taps (a depthwise
                // layer's 9) fills no word and reaches no xnor unit.
                let cin_g = cv.in_channels / cv.groups;
                let cout_g = cv.out_channels / cv.groups;
                let taps = cin_g * cv.kernel_h * cv.kernel_w;
                let words = (taps / 64).min(MAX_ROW);
                let window = Window::new(ty, cv.kernel_h, cv.kernel_w, cv.stride, cv.pad);
                for b in (0..batch).filter(|_| words > 0) {
                    let image = &x[b * numel..][..numel];
                    for (y, xo) in window.positions() {
                        for group in 0..cv.groups {
                            // Every tap in bounds: padded taps count 0, which no bit holds.
                            let Some(act) = (0..words * 64)
                                .map(|t| window.tap(image, group * cin_g, y, xo, t))
                                .collect::<Option<Vec<i32>>>()
                            else {
                                continue;
                            };
                            let act = pack(&act);
                            for o in group * cout_g..(group + 1) * cout_g {
                                let wts: Vec<i32> = cv.weights[o * taps..][..words * 64]
                                    .iter()
                                    .map(|&v| i32::from(v))
                                    .collect();
                                ops.push(Operands::BinaryDot {
                                    bias: cv.bias.as_ref().map_or(0, |v| v[o]),
                                    act: act.clone(),
                                    weights: pack(&wts),
                                });
                            }
                        }
                    }
                }
            }
            Op::BinaryDense(d) if d.in_features >= 64 => {
                let words = (d.in_features / 64).min(MAX_ROW);
                for b in 0..batch {
                    let act = pack(&x[b * numel..][..words * 64]);
                    for o in 0..d.out_features {
                        let wts: Vec<i32> = d.weights[o * d.in_features..][..words * 64]
                            .iter()
                            .map(|&v| i32::from(v))
                            .collect();
                        ops.push(Operands::BinaryDot {
                            bias: d.bias.as_ref().map_or(0, |v| v[o]),
                            act: act.clone(),
                            weights: pack(&wts),
                        });
                    }
                }
            }
            _ => {}
        }
        if !ops.is_empty() {
            streams.insert(index, ops);
        }
    }
    Ok(streams)
}

/// The sliding window of a convolution over one `[C, H, W]` map.
struct Window {
    h: usize,
    w: usize,
    kernel_h: usize,
    kernel_w: usize,
    stride: usize,
    pad: usize,
}

impl Window {
    fn new(
        map: &qbench_engine::TensorType,
        kh: usize,
        kw: usize,
        stride: usize,
        pad: usize,
    ) -> Self {
        Window {
            h: map.shape[1],
            w: map.shape[2],
            kernel_h: kh,
            kernel_w: kw,
            stride,
            pad,
        }
    }

    /// Output positions `(y, x)`, row by row.
    fn positions(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let oh = (self.h + 2 * self.pad - self.kernel_h) / self.stride + 1;
        let ow = (self.w + 2 * self.pad - self.kernel_w) / self.stride + 1;
        (0..oh).flat_map(move |y| (0..ow).map(move |x| (y, x)))
    }

    /// Input value of tap `t` (in `[channel][ky][kx]` order from `first_channel`) at output `(y,
    /// x)`, or `None` for a padded tap.
    fn tap(
        &self,
        image: &[i32],
        first_channel: usize,
        y: usize,
        x: usize,
        t: usize,
    ) -> Option<i32> {
        let k = self.kernel_h * self.kernel_w;
        let (ci, ky, kx) = (
            first_channel + t / k,
            t / self.kernel_w % self.kernel_h,
            t % self.kernel_w,
        );
        let iy = (y * self.stride + ky).checked_sub(self.pad)?;
        let ix = (x * self.stride + kx).checked_sub(self.pad)?;
        (iy < self.h && ix < self.w).then(|| image[(ci * self.h + iy) * self.w + ix])
    }
}

/// Offset that makes activations of `dtype` unsigned, and the zero point with it applied.
fn act_offset(dtype: DType, zero_point: i32) -> (i32, i32) {
    match dtype {
        DType::Signed { bits } => {
            let off = 1 << (bits - 1);
            (off, zero_point + off)
        }
        _ => (0, zero_point),
    }
}

/// Packs +-1 values into 64-bit words, bit i of word j = value 64j+i is +1.
fn pack(values: &[i32]) -> Vec<u64> {
    values
        .chunks(64)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u64, |w, (i, &v)| if v > 0 { w | (1 << i) } else { w })
        })
        .collect()
}

/// The operands of one requantization of `acc` in channel `c`.
fn requant_operands(r: &Requant, acc: i32, c: usize) -> Operands {
    let at = |len: usize| if len == 1 { 0 } else { c };
    match r {
        Requant::Shift {
            shift,
            zero_point,
            min,
            max,
        } => Operands::Shift {
            acc,
            shift: shift[at(shift.len())],
            zero_point: *zero_point,
            min: *min,
            max: *max,
        },
        Requant::FixedPoint {
            multiplier,
            shift,
            zero_point,
            min,
            max,
        } => Operands::FixedPoint {
            acc,
            multiplier: multiplier[at(multiplier.len())],
            shift: shift[at(shift.len())],
            zero_point: *zero_point,
            min: *min,
            max: *max,
        },
        Requant::Threshold { thresholds, flip } => Operands::Threshold {
            acc,
            threshold: thresholds[at(thresholds.len())],
            flip: flip[at(flip.len())],
        },
        Requant::MultiThreshold { thresholds, flip } => {
            let levels = thresholds.len() / flip.len();
            let set = at(flip.len());
            Operands::MultiThreshold {
                acc,
                thresholds: thresholds[set * levels..(set + 1) * levels].to_vec(),
                flip: flip[set],
            }
        }
    }
}

/// Up to `n` operations (dot rows weigh their step count) taken evenly across `list`.
pub fn spread(list: Vec<Operands>, n: usize) -> Vec<Operands> {
    let weight = |op: &Operands| match op {
        Operands::Dot { act, .. } => act.len().max(1),
        Operands::BinaryDot { act, .. } => act.len().max(1),
        _ => 1,
    };
    let total: usize = list.iter().map(weight).sum();
    if total <= n {
        return list;
    }
    let avg = total.div_ceil(list.len().max(1));
    let keep = (n / avg.max(1)).max(1);
    let stride = list.len() as f64 / keep as f64;
    (0..keep)
        .map(|i| list[((i as f64 * stride) as usize).min(list.len() - 1)].clone())
        .collect()
}

/// Random output zero point and clamp bounds of an 8-bit output (u8, i8, ReLU6-like).
fn random_bounds(rng: &mut ChaCha8Rng) -> (i32, i32, i32) {
    match rng.random_range(0..3) {
        0 => (rng.random_range(0..=255), 0, 255),
        1 => (rng.random_range(-128..=127), -128, 127),
        _ => {
            let zp = rng.random_range(0..=64);
            (zp, zp, rng.random_range(zp..=255))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_seeded_and_hash_tracks_content() {
        let a = VectorSet::random(7, 50);
        assert_eq!(a, VectorSet::random(7, 50));
        assert_ne!(a.sha256(), VectorSet::random(8, 50).sha256());
        assert_eq!(a.count(Source::Random), a.vectors.len());
    }

    #[test]
    fn edge_cases_cover_every_shift_and_exponent() {
        let e = VectorSet::edge_cases();
        for s in 0..=31u8 {
            assert!(
                e.vectors
                    .iter()
                    .any(|v| matches!(v.op, Operands::Shift { shift, .. } if shift == s))
            );
        }
        for s in -31..=30 {
            assert!(
                e.vectors
                    .iter()
                    .any(|v| matches!(v.op, Operands::FixedPoint { shift, .. } if shift == s))
            );
        }
    }

    #[test]
    fn pack_sets_plus_one_bits() {
        let mut v = vec![-1; 64];
        v[0] = 1;
        v[63] = 1;
        assert_eq!(pack(&v), vec![1 | (1 << 63)]);
    }
}
