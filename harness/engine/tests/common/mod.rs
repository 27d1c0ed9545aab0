//! Random graph generator shared by the integration tests: random layer stacks with random shapes,
//! strides, paddings, groups, bit widths, weight kinds, every requantizer kind, pools and residual adds.
#![allow(dead_code)]

use qbench_engine::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random valid graph, a batch size and random input bytes for it.
pub struct Case {
    pub graph: QGraph,
    pub batch: usize,
    pub input: Vec<u8>,
}

pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

pub fn random_narrow(r: &mut ChaCha8Rng) -> DType {
    if r.random_bool(0.5) {
        DType::Unsigned {
            bits: r.random_range(1..=8),
        }
    } else {
        DType::Signed {
            bits: r.random_range(2..=8),
        }
    }
}

fn in_range(r: &mut ChaCha8Rng, t: DType) -> i32 {
    r.random_range(t.min_value()..=t.max_value()) as i32
}

pub fn random_weight_kind(r: &mut ChaCha8Rng) -> WeightKind {
    match r.random_range(0..4) {
        0 => WeightKind::Binary,
        1 => WeightKind::Ternary,
        _ => WeightKind::Int {
            bits: r.random_range(2..=8),
        },
    }
}

pub fn random_weights(r: &mut ChaCha8Rng, kind: WeightKind, n: usize) -> Vec<i8> {
    (0..n)
        .map(|_| match kind {
            WeightKind::Binary => {
                if r.random_bool(0.5) {
                    1
                } else {
                    -1
                }
            }
            WeightKind::Ternary => r.random_range(-1..=1),
            WeightKind::Int { bits } => {
                r.random_range(-(1i16 << (bits - 1))..(1i16 << (bits - 1))) as i8
            }
        })
        .collect()
}

fn random_bias(r: &mut ChaCha8Rng, n: usize) -> Option<Vec<i32>> {
    match r.random_range(0..4) {
        0 => None,
        // Occasionally huge, to exercise wrapping accumulation.
        1 => Some((0..n).map(|_| r.random()).collect()),
        _ => Some((0..n).map(|_| r.random_range(-2000..2000)).collect()),
    }
}

/// A random requantizer for `channels` channels; returns it with its output dtype.
pub fn random_requant(r: &mut ChaCha8Rng, channels: usize) -> (DType, Requant) {
    let sets = if r.random_bool(0.5) { 1 } else { channels };
    match r.random_range(0..4) {
        0 => {
            let out = random_narrow(r);
            let (a, b) = (in_range(r, out), in_range(r, out));
            let shift = (0..sets)
                .map(|_| {
                    if r.random_bool(0.8) {
                        r.random_range(0..12)
                    } else {
                        r.random_range(0..=31)
                    }
                })
                .collect();
            let zero_point = in_range(r, out);
            let req = Requant::Shift {
                shift,
                zero_point,
                min: a.min(b),
                max: a.max(b),
            };
            (out, req)
        }
        1 => {
            let out = random_narrow(r);
            let (a, b) = (in_range(r, out), in_range(r, out));
            let multiplier = (0..sets)
                .map(|_| {
                    // Q31 multipliers: 0 or 2^30..=2^31-1, edges included.
                    match r.random_range(0..10) {
                        0 => 0,
                        1 => 1 << 30,
                        2 => i32::MAX,
                        _ => r.random_range(1 << 30..i32::MAX),
                    }
                })
                .collect();
            let shift = (0..sets)
                .map(|_| {
                    if r.random_bool(0.8) {
                        r.random_range(-14..=1)
                    } else {
                        r.random_range(-31..=30)
                    }
                })
                .collect();
            let zero_point = in_range(r, out);
            let req = Requant::FixedPoint {
                multiplier,
                shift,
                zero_point,
                min: a.min(b),
                max: a.max(b),
            };
            (out, req)
        }
        2 => {
            let thresholds = (0..sets).map(|_| r.random_range(-60..60)).collect();
            let flip = (0..sets).map(|_| r.random_bool(0.3)).collect();
            (DType::Binary, Requant::Threshold { thresholds, flip })
        }
        _ => {
            let bits = r.random_range(1..=3u8);
            let levels = (1usize << bits) - 1;
            let mut thresholds = Vec::new();
            for _ in 0..sets {
                let mut ts: Vec<i32> = (0..levels).map(|_| r.random_range(-80..80)).collect();
                ts.sort();
                thresholds.extend(ts);
            }
            let flip = (0..sets).map(|_| r.random_bool(0.3)).collect();
            (
                DType::Unsigned { bits },
                Requant::MultiThreshold { thresholds, flip },
            )
        }
    }
}

fn pick_pool(r: &mut ChaCha8Rng, h: usize, w: usize, allow_pad: bool) -> Pool {
    let kernel_h = r.random_range(1..=h.min(3));
    let kernel_w = r.random_range(1..=w.min(3));
    let pad = if allow_pad && kernel_h >= 2 && kernel_w >= 2 && r.random_bool(0.4) {
        1
    } else {
        0
    };
    Pool {
        kernel_h,
        kernel_w,
        stride: r.random_range(1..=2),
        pad,
    }
}

/// A convolution window on an `h x w` map: kernel sizes up to 3 and padding 0 or 1, below both
/// kernel sizes (every window reads an input tap), the window fitting the padded input.
fn pick_window(r: &mut ChaCha8Rng, h: usize, w: usize) -> (usize, usize, usize) {
    if r.random_bool(0.5) {
        (r.random_range(2..=3), r.random_range(2..=3), 1)
    } else {
        (
            r.random_range(1..=h.min(3)),
            r.random_range(1..=w.min(3)),
            0,
        )
    }
}

struct Gen {
    r: ChaCha8Rng,
    b: GraphBuilder,
    n: usize,
}

impl Gen {
    fn name(&mut self, kind: &str) -> String {
        self.n += 1;
        format!("{kind}{}", self.n)
    }

    /// i32 node -> optional i32 pool -> requant.
    fn requant(&mut self, mut x: NodeId) -> NodeId {
        let t = self.b.ty(x).clone();
        if t.is_map() && self.r.random_bool(0.3) {
            let p = pick_pool(&mut self.r, t.shape[1], t.shape[2], true);
            let name = self.name("pool");
            x = if self.r.random_bool(0.6) {
                self.b.max_pool(&name, x, p).unwrap()
            } else {
                let p = Pool { pad: 0, ..p };
                self.b.avg_pool(&name, x, p).unwrap()
            };
        }
        let c = self.b.ty(x).channels();
        let (out, req) = random_requant(&mut self.r, c);
        let name = self.name("rq");
        self.b.requant(&name, x, out, req).unwrap()
    }

    fn conv(&mut self, x: NodeId, same: bool) -> NodeId {
        let t = self.b.ty(x).clone();
        let (c, h, w) = (t.shape[0], t.shape[1], t.shape[2]);
        let r = &mut self.r;
        let (kernel_h, kernel_w, pad, stride, groups, out_channels) = if same {
            (3, 3, 1, 1, 1, c)
        } else {
            let (kh, kw, pad) = pick_window(r, h, w);
            let divisors: Vec<usize> = (1..=c).filter(|g| c % g == 0).collect();
            let groups = divisors[r.random_range(0..divisors.len())];
            let oc = groups * r.random_range(1..=3);
            (kh, kw, pad, r.random_range(1..=2), groups, oc)
        };
        let kind = random_weight_kind(r);
        let n = out_channels * (c / groups) * kernel_h * kernel_w;
        let conv = Conv2d {
            in_channels: c,
            out_channels,
            kernel_h,
            kernel_w,
            stride,
            pad,
            groups,
            weight_kind: kind,
            input_zero_point: in_range(r, t.dtype),
            weights: random_weights(r, kind, n),
            bias: random_bias(r, out_channels),
        };
        let name = self.name("conv");
        self.b.conv2d(&name, x, conv).unwrap()
    }

    fn binary_conv(&mut self, x: NodeId) -> NodeId {
        let t = self.b.ty(x).clone();
        let (c, h, w) = (t.shape[0], t.shape[1], t.shape[2]);
        let r = &mut self.r;
        let (kernel_h, kernel_w, pad) = pick_window(r, h, w);
        // One in four is depthwise (one +-1 filter per channel), the rest dense over channels.
        let groups = if r.random_range(0..4) == 0 { c } else { 1 };
        // Up to 130 channels, so a following binary conv often spans several 64-bit words.
        let out_channels = if groups == 1 {
            r.random_range(1..=130)
        } else {
            c
        };
        let conv = BinaryConv2d {
            in_channels: c,
            out_channels,
            kernel_h,
            kernel_w,
            stride: r.random_range(1..=2),
            pad,
            groups,
            weights: random_weights(
                r,
                WeightKind::Binary,
                out_channels * c / groups * kernel_h * kernel_w,
            ),
            bias: random_bias(r, out_channels),
        };
        let name = self.name("bconv");
        self.b.binary_conv2d(&name, x, conv).unwrap()
    }

    fn dense(&mut self, x: NodeId, out: usize) -> NodeId {
        let t = self.b.ty(x).clone();
        let f = t.shape[0];
        let r = &mut self.r;
        if t.dtype == DType::Binary {
            let d = BinaryDense {
                in_features: f,
                out_features: out,
                weights: random_weights(r, WeightKind::Binary, f * out),
                bias: random_bias(r, out),
            };
            let name = self.name("bdense");
            self.b.binary_dense(&name, x, d).unwrap()
        } else {
            let kind = random_weight_kind(r);
            let d = Dense {
                in_features: f,
                out_features: out,
                weight_kind: kind,
                input_zero_point: in_range(r, t.dtype),
                weights: random_weights(r, kind, f * out),
                bias: random_bias(r, out),
            };
            let name = self.name("dense");
            self.b.dense(&name, x, d).unwrap()
        }
    }

    fn add(&mut self, a: NodeId, b: NodeId) -> NodeId {
        let (ta, tb) = (self.b.ty(a).dtype, self.b.ty(b).dtype);
        let r = &mut self.r;
        let align = if r.random_bool(0.5) {
            AddAlign::PowerOfTwo {
                shift_a: r.random_range(0..=8),
                shift_b: r.random_range(0..=8),
            }
        } else {
            AddAlign::FixedPoint {
                left_shift: r.random_range(0..=20),
                multiplier_a: r.random_range(1 << 30..i32::MAX),
                shift_a: r.random_range(-8..=0),
                multiplier_b: r.random_range(1 << 30..i32::MAX),
                shift_b: r.random_range(-8..=0),
            }
        };
        let add = Add {
            zero_point_a: in_range(r, ta),
            zero_point_b: in_range(r, tb),
            align,
        };
        let name = self.name("add");
        self.b.add(&name, a, b, add).unwrap()
    }

    /// One random step from a narrow or binary node; returns a narrow or binary node.
    fn step(&mut self, x: NodeId) -> NodeId {
        let t = self.b.ty(x).clone();
        let choice = self.r.random_range(0..10);
        match (t.dtype, t.is_map()) {
            (DType::Binary, true) => match choice {
                0..=5 => {
                    let y = self.binary_conv(x);
                    self.requant(y)
                }
                6 | 7 => {
                    let p = pick_pool(&mut self.r, t.shape[1], t.shape[2], true);
                    let name = self.name("bpool");
                    self.b.max_pool(&name, x, p).unwrap()
                }
                _ => {
                    let name = self.name("flat");
                    self.b.flatten(&name, x).unwrap()
                }
            },
            (DType::Binary, false) => {
                let out = self.r.random_range(1..=70);
                let y = self.dense(x, out);
                self.requant(y)
            }
            (_, true) => match choice {
                0..=3 => {
                    let y = self.conv(x, false);
                    self.requant(y)
                }
                4 => {
                    let p = pick_pool(&mut self.r, t.shape[1], t.shape[2], true);
                    let name = self.name("pool");
                    if self.r.random_bool(0.5) {
                        self.b.max_pool(&name, x, p).unwrap()
                    } else {
                        let p = Pool { pad: 0, ..p };
                        self.b.avg_pool(&name, x, p).unwrap()
                    }
                }
                5 => {
                    let zp = in_range(&mut self.r, t.dtype);
                    let name = self.name("relu");
                    self.b.relu(&name, x, zp).unwrap()
                }
                6 | 7 => {
                    // Residual block: x + requant(conv3x3(x)).
                    let y = self.conv(x, true);
                    let y = self.requant_narrow(y);
                    let s = self.add(x, y);
                    self.requant(s)
                }
                8 => {
                    let name = self.name("gap");
                    self.b.global_avg_pool(&name, x).unwrap()
                }
                _ => {
                    let name = self.name("flat");
                    self.b.flatten(&name, x).unwrap()
                }
            },
            (_, false) => {
                let out = self.r.random_range(1..=40);
                let y = self.dense(x, out);
                self.requant(y)
            }
        }
    }

    /// Requantizes to a narrow (non-binary) dtype, for residual branches.
    fn requant_narrow(&mut self, x: NodeId) -> NodeId {
        let c = self.b.ty(x).channels();
        loop {
            let (out, req) = random_requant(&mut self.r, c);
            if out != DType::Binary {
                let name = self.name("rq");
                return self.b.requant(&name, x, out, req).unwrap();
            }
        }
    }
}

/// A random valid graph with a random batch and input.
pub fn random_case(seed: u64) -> Case {
    let mut r = rng(seed);
    let shape = if r.random_bool(0.2) {
        vec![r.random_range(1..=40)]
    } else {
        vec![
            r.random_range(1..=4),
            r.random_range(3..=9),
            r.random_range(3..=9),
        ]
    };
    let mut g = Gen {
        b: GraphBuilder::new(&shape),
        r,
        n: 0,
    };
    let mut x = 0;
    for _ in 0..g.r.random_range(1..=5) {
        x = g.step(x);
    }
    if g.b.ty(x).is_map() {
        let name = g.name("flat");
        x = g.b.flatten(&name, x).unwrap();
    }
    let classes = g.r.random_range(1..=12);
    let logits = g.dense(x, classes);
    let graph = g.b.finish(logits).unwrap();
    let batch = g.r.random_range(1..=5);
    let input = (0..batch * graph.input_len())
        .map(|_| g.r.random())
        .collect();
    Case {
        graph,
        batch,
        input,
    }
}

/// A fixed small CNN: conv 1->`c1` 3x3 pad 1, shift requant (ReLU folded), max pool 2, conv
/// `c1`->`c2` 3x3 pad 1, requant, max pool 2, dense -> 10. Random int8 weights.
pub fn small_cnn(seed: u64, c1: usize, c2: usize) -> QGraph {
    let mut r = rng(seed);
    let mut b = GraphBuilder::new(&[1, 28, 28]);
    let int8 = WeightKind::Int { bits: 8 };
    let conv = |r: &mut ChaCha8Rng, cin: usize, cout: usize| Conv2d {
        in_channels: cin,
        out_channels: cout,
        kernel_h: 3,
        kernel_w: 3,
        stride: 1,
        pad: 1,
        groups: 1,
        weight_kind: int8,
        input_zero_point: 0,
        weights: random_weights(r, int8, cout * cin * 9),
        bias: Some((0..cout).map(|_| r.random_range(-500..500)).collect()),
    };
    let shift = |s: u8| Requant::Shift {
        shift: vec![s],
        zero_point: 0,
        min: 0,
        max: 255,
    };
    let pool = Pool {
        kernel_h: 2,
        kernel_w: 2,
        stride: 2,
        pad: 0,
    };
    let x = b.conv2d("conv1", 0, conv(&mut r, 1, c1)).unwrap();
    let x = b.requant("rq1", x, DType::U8, shift(8)).unwrap();
    let x = b.max_pool("pool1", x, pool).unwrap();
    let x = b.conv2d("conv2", x, conv(&mut r, c1, c2)).unwrap();
    let x = b.requant("rq2", x, DType::U8, shift(12)).unwrap();
    let x = b.max_pool("pool2", x, pool).unwrap();
    let x = b.flatten("flat", x).unwrap();
    let f = c2 * 7 * 7;
    let d = Dense {
        in_features: f,
        out_features: 10,
        weight_kind: int8,
        input_zero_point: 0,
        weights: random_weights(&mut r, int8, 10 * f),
        bias: None,
    };
    let x = b.dense("fc", x, d).unwrap();
    b.finish(x).unwrap()
}
