//! Co-simulation of every unit, RTL and gate-level netlist, against the engine on edge cases,
//! random vectors and a real operand stream from a small graph.
//!
//! These tests run Yosys and Icarus for real. Without them they fail with the tool's
//! `MissingTool` message (CI installs them); set `QBENCH_HW_ALLOW_MISSING_TOOLS=1` to turn a missing
//! tool into a printed skip instead.

use std::path::Path;
use std::sync::OnceLock;

use qbench_engine::{BinaryDense, Conv2d, DType, Dense, GraphBuilder, QGraph, Requant, WeightKind};
use qbench_hw::sim::cosim;
use qbench_hw::synth::{Netlist, synthesize};
use qbench_hw::tools;
use qbench_hw::units::{Unit, catalog};
use qbench_hw::vectors::{Source, VectorSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// True when the tools are present; panics with the MissingTool message otherwise, unless the
/// environment allows skipping.
fn tools_present() -> bool {
    for t in ["yosys", "iverilog", "vvp"] {
        if let Err(e) = tools::require(t) {
            if std::env::var_os("QBENCH_HW_ALLOW_MISSING_TOOLS").is_some() {
                eprintln!("skipping: {e}");
                return false;
            }
            panic!("{e}");
        }
    }
    true
}

/// A small graph exercising every unit's operation: int8 conv over u8 pixels, shift and fixed-point
/// requantizers, int4 and int2 dense layers over 4-/2-bit activations, a ternary dense layer,
/// multi-thresholds (k = 2 and 4), a threshold to binary and a 64-wide binary dense layer.
fn small_graph() -> QGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut w = |n: usize, lo: i8, hi: i8| -> Vec<i8> {
        (0..n).map(|_| rng.random_range(lo..=hi)).collect()
    };
    let mut b = GraphBuilder::new(&[1, 8, 8]);
    let x = b.input();
    let c = b
        .conv2d(
            "conv",
            x,
            Conv2d {
                in_channels: 1,
                out_channels: 4,
                kernel_h: 3,
                kernel_w: 3,
                stride: 1,
                pad: 1,
                groups: 1,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: 3,
                weights: w(36, -128, 127),
                bias: Some(vec![100, -2000, 0, 77]),
            },
        )
        .unwrap();
    let r = b
        .requant(
            "q_shift",
            c,
            DType::Unsigned { bits: 4 },
            Requant::Shift {
                shift: vec![9, 10, 11, 12],
                zero_point: 1,
                min: 0,
                max: 15,
            },
        )
        .unwrap();
    let f = b.flatten("flat", r).unwrap();
    let d4 = b
        .dense(
            "d4",
            f,
            Dense {
                in_features: 256,
                out_features: 16,
                weight_kind: WeightKind::Int { bits: 4 },
                input_zero_point: 1,
                weights: w(256 * 16, -8, 7),
                bias: Some((0..16).map(|i| i * 37 - 300).collect()),
            },
        )
        .unwrap();
    let r2 = b
        .requant(
            "q_fp",
            d4,
            DType::Unsigned { bits: 2 },
            Requant::FixedPoint {
                multiplier: vec![1_518_500_250],
                shift: vec![-6],
                zero_point: 1,
                min: 0,
                max: 3,
            },
        )
        .unwrap();
    let d2 = b
        .dense(
            "d2",
            r2,
            Dense {
                in_features: 16,
                out_features: 16,
                weight_kind: WeightKind::Int { bits: 2 },
                input_zero_point: 1,
                weights: w(256, -2, 1),
                bias: None,
            },
        )
        .unwrap();
    let r3 = b
        .requant(
            "q_mt4",
            d2,
            DType::Unsigned { bits: 4 },
            Requant::MultiThreshold {
                thresholds: (-7..8).map(|t| t * 2).collect(),
                flip: vec![false],
            },
        )
        .unwrap();
    let dt = b
        .dense(
            "dt",
            r3,
            Dense {
                in_features: 16,
                out_features: 64,
                weight_kind: WeightKind::Ternary,
                input_zero_point: 0,
                weights: w(16 * 64, -1, 1),
                bias: Some(vec![5; 64]),
            },
        )
        .unwrap();
    let rt = b
        .requant(
            "q_fp_tnt",
            dt,
            DType::Signed { bits: 8 },
            Requant::FixedPoint {
                multiplier: vec![1_431_655_765],
                shift: vec![-2],
                zero_point: -3,
                min: -128,
                max: 127,
            },
        )
        .unwrap();
    let d8 = b
        .dense(
            "d8",
            rt,
            Dense {
                in_features: 64,
                out_features: 64,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: -3,
                weights: w(64 * 64, -128, 127),
                bias: None,
            },
        )
        .unwrap();
    let th = b
        .requant(
            "q_sign",
            d8,
            DType::Binary,
            Requant::Threshold {
                thresholds: (0..64).map(|i| i * 50 - 1600).collect(),
                flip: (0..64).map(|i| i % 3 == 0).collect(),
            },
        )
        .unwrap();
    let bd = b
        .binary_dense(
            "bin",
            th,
            BinaryDense {
                in_features: 64,
                out_features: 8,
                weights: w(64 * 8, -1, 0)
                    .into_iter()
                    .map(|v| if v == 0 { 1 } else { -1 })
                    .collect(),
                bias: Some(vec![1, -1, 0, 3, 0, 0, 2, 9]),
            },
        )
        .unwrap();
    let mt = b
        .requant(
            "q_mt2",
            bd,
            DType::Unsigned { bits: 2 },
            Requant::MultiThreshold {
                thresholds: vec![-8, 0, 8],
                flip: vec![true],
            },
        )
        .unwrap();
    let out = b
        .dense(
            "logits",
            mt,
            Dense {
                in_features: 8,
                out_features: 4,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: 0,
                weights: w(32, -5, 5),
                bias: None,
            },
        )
        .unwrap();
    b.finish(out).unwrap()
}

/// Edge cases + random + the small graph's real streams (computed once).
fn vectors() -> &'static VectorSet {
    static SET: OnceLock<VectorSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let images: Vec<u8> = (0..4 * 64).map(|_| rng.random()).collect();
        let mut set = VectorSet::edge_cases();
        set.extend(VectorSet::random(1, 150));
        set.extend(VectorSet::from_graph(&small_graph(), &images, 120).unwrap());
        set
    })
}

fn check(unit: &Unit, netlist: Option<&Netlist>, dir: &Path) {
    let report = cosim(unit, netlist, vectors(), dir).unwrap();
    eprintln!("{report}");
    assert!(report.passed(), "{report}");
    for src in ["edge", "random", "graph"] {
        assert!(
            report.vectors.get(src).copied().unwrap_or(0) > 0,
            "{}: no {src} vectors: {report}",
            unit.name
        );
    }
}

#[test]
fn graph_streams_cover_every_unit() {
    let v = vectors();
    assert!(v.count(Source::Graph) > 0 && v.count(Source::Edge) > 0 && v.count(Source::Random) > 0);
}

#[test]
fn every_unit_rtl_matches_the_engine() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for unit in catalog() {
        check(&unit, None, dir.path());
    }
}
