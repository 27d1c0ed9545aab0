//! Co-simulation of every unit, RTL and gate-level netlist, against the engine on edge cases,
//! random vectors and a real operand stream from a small graph.
//!
//! These tests run Yosys and Icarus for real. Without them they fail with the tool's
//! `MissingTool` message (CI installs them); set `QBENCH_HW_ALLOW_MISSING_TOOLS=1` to turn a missing
//! tool into a printed skip instead.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use qbench_engine::{BinaryDense, Conv2d, DType, Dense, GraphBuilder, QGraph, Requant, WeightKind};
use qbench_hw::sim::{cosim, gate_activity};
use qbench_hw::synth::{Netlist, load, script, synthesize};
use qbench_hw::tools;
use qbench_hw::units::{Unit, by_name, catalog};
use qbench_hw::vectors::{Source, VectorSet};
use qbench_io::Sha256;
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

/// The graph capture takes every requantizer kind and every MAC kind of the small graph, and refuses
/// image bytes that are not whole images.
#[test]
fn graph_streams_cover_every_operation_kind() {
    let images = vec![7u8; 3 * 64];
    let set = VectorSet::from_graph(&small_graph(), &images, 40).unwrap();
    let mut kinds: Vec<String> = set
        .vectors
        .iter()
        .map(|v| {
            assert_eq!(v.source, Source::Graph);
            let json = serde_json::to_value(&v.op).unwrap();
            let mut k = json["op"].as_str().unwrap().to_string();
            if let Some(w) = json.get("weight_kind") {
                k += &format!("_{}", w["kind"].as_str().unwrap());
            }
            if let Some(t) = json.get("thresholds") {
                k += &format!("_{}", t.as_array().unwrap().len());
            }
            k
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "binary_dot",
            "dot_int",
            "dot_ternary",
            "fixed_point",
            "multi_threshold_15",
            "multi_threshold_3",
            "shift",
            "threshold"
        ]
    );
    let err = VectorSet::from_graph(&small_graph(), &images[1..], 40).unwrap_err();
    assert!(err.to_string().contains("whole number"), "{err}");
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

/// Directory of the synthesized netlist of `unit`: under cargo's per-target temporary directory,
/// keyed by sha256 of the unit (source, top, parameters), the Yosys script, the Liberty file and the
/// Yosys version, so a rerun with nothing changed reuses it and any change resynthesizes.
fn netlist_dir(unit: &Unit, lib: &Path) -> PathBuf {
    let yosys = tools::require("yosys").unwrap();
    let mut h = Sha256::new();
    h.update(unit.sha256());
    h.update(script(unit, Path::new("src.v"), lib, Path::new("net.v")));
    h.update(std::fs::read(lib).unwrap());
    h.update(yosys.version);
    let key = h.finish();
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("qbench-hw-netlists")
        .join(format!("{}-{}", unit.name, &key[..16]))
}

/// `unit` synthesized to the default library (cached, see [`netlist_dir`]); the synthesis runs in
/// a fresh directory that is renamed into place when complete.
fn cached_netlist(unit: &Unit) -> Netlist {
    let lib = tools::default_liberty();
    let dir = netlist_dir(unit, &lib);
    if let Ok(n) = load(unit, &dir) {
        return n;
    }
    let parent = dir.parent().unwrap();
    std::fs::create_dir_all(parent).unwrap();
    let tmp = tempfile::tempdir_in(parent).unwrap();
    synthesize(unit, &lib, tmp.path()).unwrap();
    let tmp = tmp.keep();
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test process finished the same synthesis first.
        std::fs::remove_dir_all(&tmp).ok();
    }
    load(unit, &dir).unwrap()
}

/// Every unit synthesized once (two Yosys processes at a time) and a scratch directory.
fn netlists() -> &'static (tempfile::TempDir, Vec<(Unit, Netlist)>) {
    static NETS: OnceLock<(tempfile::TempDir, Vec<(Unit, Netlist)>)> = OnceLock::new();
    NETS.get_or_init(|| {
        let units = catalog();
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    while let Some(u) = units.get(next.fetch_add(1, Ordering::SeqCst)) {
                        let n = cached_netlist(u);
                        results.lock().unwrap().push((u.clone(), n));
                    }
                });
            }
        });
        let mut r = results.into_inner().unwrap();
        r.sort_by_key(|(u, _)| units.iter().position(|v| v.name == u.name));
        (tempfile::tempdir().unwrap(), r)
    })
}

#[test]
fn every_unit_netlist_matches_the_engine() {
    if !tools_present() {
        return;
    }
    let (dir, nets) = netlists();
    for (unit, net) in nets {
        eprintln!(
            "{}: {} cells, {:.0} um^2",
            unit.name, net.cell_count, net.area_um2
        );
        assert!(net.cell_count > 0 && net.area_um2 > 0.0);
        check(unit, Some(net), dir.path());
    }
}

/// A copy of the shift requantizer that truncates instead of rounding half up must be caught, and
/// the report must name the operands of the first vector that differs.
#[test]
fn a_wrong_rounding_is_caught_with_its_inputs() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = by_name("shift_var").unwrap();
    let wrong_text = good.source().replace(
        "wire                   half = dsh[0];",
        "wire                   half = 1'b0;",
    );
    assert_ne!(wrong_text, good.source(), "the bug was not injected");
    let path = dir.path().join("shift_requant_truncating.v");
    std::fs::write(&path, wrong_text).unwrap();
    let wrong = good.with_verilog(&path).unwrap();
    let report = cosim(&wrong, None, vectors(), dir.path()).unwrap();
    eprintln!("{report}");
    assert!(!report.passed());
    let d = report.first_divergence.clone().unwrap();
    // The first vector that rounds up: shift 1 on an odd accumulator.
    assert!(
        d.operands.contains("Shift") && d.operands.contains("acc"),
        "{d:?}"
    );
    assert_ne!(d.expected, d.got);
    assert!(report.to_string().contains("FIRST DIVERGENCE"));
}

/// Activity from the gate-level simulation: every netlist net has a toggle rate, the clock toggles
/// twice per cycle, and a MAC's accumulator bits switch while its unused inputs stay quiet.
#[test]
fn gate_activity_counts_every_net() {
    if !tools_present() {
        return;
    }
    let (dir, nets) = netlists();
    let (unit, net) = nets.iter().find(|(u, _)| u.name == "mac_int8").unwrap();
    let act = gate_activity(unit, net, vectors(), dir.path()).unwrap();
    assert!(act.cycles > 100);
    let clk = act.pins["clk"];
    assert!((clk.toggles_per_cycle - 2.0).abs() < 0.01, "{clk:?}");
    assert!((clk.duty - 0.5).abs() < 0.05, "{clk:?}");
    // Low accumulator bits flip often on random operands.
    assert!(act.pins["y[0]"].toggles_per_cycle > 0.1);
    // Every net the netlist declares is annotated.
    let text = std::fs::read_to_string(&net.path).unwrap();
    for line in text.lines().filter(|l| l.trim_start().starts_with("wire ")) {
        let decl = line
            .trim()
            .trim_start_matches("wire ")
            .trim_end_matches(';');
        let name = decl.rsplit(' ').next().unwrap();
        let probe = if decl.starts_with('[') {
            format!("{name}[0]")
        } else {
            name.to_string()
        };
        assert!(act.pins.contains_key(&probe), "no activity for {probe}");
    }
}
