//! The cached flow on real tool runs (two small units through Yosys, Icarus and OpenSTA), and the
//! energy-per-inference mapping of a graph's operation counts to unit energies.
//!
//! The flow test runs the tools for real. Without them it fails with the `MissingTools` message
//! (CI installs them); `QBENCH_HW_ALLOW_MISSING_TOOLS=1` turns that into a printed skip.

use std::collections::BTreeMap;
use std::sync::Mutex;

use qbench_engine::{
    BinaryDense, DType, Dense, GraphBuilder, QGraph, Requant, WeightKind, count_ops,
};
use qbench_hw::energy::per_inference;
use qbench_hw::error::HwError;
use qbench_hw::flow::{self, FlowConfig, Step};
use qbench_hw::sta::{ActivitySource, Power, Timing};
use qbench_hw::table::{CosimSummary, HwTable, OpenRoad, Provenance, UnitResult};
use qbench_hw::units::{Unit, by_name, catalog};

fn tools_present() -> bool {
    for t in flow::REQUIRED_TOOLS {
        if let Err(e) = qbench_hw::tools::require(t) {
            if std::env::var_os("QBENCH_HW_ALLOW_MISSING_TOOLS").is_some() {
                eprintln!("skipping: {e}");
                return false;
            }
            panic!("{e}");
        }
    }
    true
}

fn units(names: &[&str]) -> Vec<Unit> {
    names
        .iter()
        .map(|n| by_name(n).expect("catalog unit"))
        .collect()
}

/// Checks one power figure against its own definition.
fn check_power(p: &Power, period_ns: f64) {
    let parts = p.internal_w + p.switching_w + p.leakage_w;
    assert!(p.total_w > 0.0 && (parts - p.total_w).abs() <= 1e-9 * p.total_w.max(1.0));
    assert!((p.energy_per_op_pj - p.total_w * period_ns * 1e3).abs() < 1e-9);
    assert_eq!(p.clock_period_ns, period_ns);
}

#[test]
fn flow_measures_units_with_opensta_and_a_rerun_comes_from_the_cache() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = FlowConfig::new(dir.path().join("cache"), 24);
    let period = config.clock_period_ns();
    let selected = units(&["shift_const", "threshold"]);
    let events: Mutex<Vec<(String, Step)>> = Mutex::new(Vec::new());
    let record = |e: flow::Event<'_>| events.lock().unwrap().push((e.unit.to_string(), e.step));

    let first = flow::run(&config, &selected, &record).unwrap();
    assert_eq!(
        first
            .rows
            .iter()
            .map(|r| r.unit.as_str())
            .collect::<Vec<_>>(),
        ["shift_const", "threshold"]
    );
    for r in &first.rows {
        assert!(!r.from_cache, "{}", r.unit);
        assert!(r.cells > 0 && r.area_um2 > 0.0);
        assert_eq!(r.cells, r.cell_counts.values().sum::<u64>());
        // OpenSTA's worst path: clock-to-Q plus logic, shorter than the period it meets.
        let t = &r.timing;
        assert!(
            t.critical_path_ns > 0.0 && t.critical_path_ns < t.min_period_ns,
            "{t:?}"
        );
        assert!((t.min_period_ns - (period - t.worst_slack_ns)).abs() < 1e-9);
        assert!((t.fmax_mhz * t.min_period_ns - 1e3).abs() < 1e-6);
        assert!(t.meets_clock(), "{} misses {period} ns: {t:?}", r.unit);
        assert!(
            t.startpoint.contains('/') && t.endpoint.contains('/'),
            "{t:?}"
        );
        check_power(&r.simulated, period);
        check_power(&r.vectorless, period);
        match &r.simulated.activity {
            ActivitySource::Simulated {
                vector_set_sha256,
                cycles,
                pins_annotated,
            } => {
                assert_eq!(vector_set_sha256, &config.random_vectors.sha256());
                assert!(*cycles > 0 && *pins_annotated > 0);
            }
            other => panic!("simulated power labelled {other:?}"),
        }
        assert!(matches!(
            r.vectorless.activity,
            ActivitySource::Vectorless { .. }
        ));
        assert!(r.cosim.rtl_vectors > 0 && r.cosim.rtl_vectors == r.cosim.netlist_vectors);
        let p = &r.provenance;
        assert_eq!(p.library, "osu018_stdcells.lib");
        assert_eq!(p.library_sha256.len(), 64);
        assert!(p.tools.contains_key("sta") && p.tools.contains_key("yosys"));
        assert_eq!(p.clock_mhz, flow::DEFAULT_CLOCK_MHZ);
    }
    let ran: Vec<Step> = events.lock().unwrap().iter().map(|e| e.1).collect();
    for step in [
        Step::Synthesis,
        Step::CosimRtl,
        Step::CosimNetlist,
        Step::Activity,
        Step::Sta,
    ] {
        assert_eq!(ran.iter().filter(|&&s| s == step).count(), 2, "{step:?}");
    }
    assert!(!ran.contains(&Step::Cached));

    events.lock().unwrap().clear();
    let second = flow::run(&config, &selected, &record).unwrap();
    assert!(second.rows.iter().all(|r| r.from_cache));
    let ran: Vec<Step> = events.lock().unwrap().iter().map(|e| e.1).collect();
    assert!(
        ran.iter().all(|s| matches!(s, Step::Cached | Step::Done)),
        "a cached rerun ran {ran:?}"
    );
    let mut again = second.clone();
    again.rows.iter_mut().for_each(|r| r.from_cache = false);
    assert_eq!(again, first, "cached rows differ from the measured ones");
    // The table renders with the ratio to shift_const and the provenance footer.
    let md = first.to_markdown();
    assert!(md.contains("| threshold | shift_const |"), "{md}");
    assert!(
        md.contains("Provenance: library osu018_stdcells.lib"),
        "{md}"
    );
    let csv = first.to_csv().unwrap();
    assert_eq!(csv.lines().count(), 3);
}

/// A row with the given energies (the mapping test needs no tool output).
fn row(unit: &Unit, simulated_pj: f64, vectorless_pj: f64) -> UnitResult {
    let power = |pj: f64, activity| Power {
        clock_period_ns: 40.0,
        internal_w: 0.0,
        switching_w: 0.0,
        leakage_w: 0.0,
        total_w: pj / 40.0 * 1e-3,
        energy_per_op_pj: pj,
        activity,
    };
    UnitResult {
        unit: unit.name.clone(),
        role: "requantizer".into(),
        params: unit.params.clone(),
        cells: 1,
        area_um2: 1.0,
        cell_counts: BTreeMap::new(),
        timing: Timing {
            clock_period_ns: 40.0,
            critical_path_ns: 1.0,
            setup_ns: 0.1,
            worst_slack_ns: 38.9,
            min_period_ns: 1.1,
            fmax_mhz: 1e3 / 1.1,
            startpoint: "a/Q".into(),
            endpoint: "b/D".into(),
        },
        simulated: power(
            simulated_pj,
            ActivitySource::Simulated {
                vector_set_sha256: "0".repeat(64),
                cycles: 1,
                pins_annotated: 1,
            },
        ),
        vectorless: power(
            vectorless_pj,
            ActivitySource::Vectorless {
                input_toggles_per_cycle: 0.5,
                input_duty: 0.5,
            },
        ),
        cosim: CosimSummary {
            rtl_vectors: 1,
            netlist_vectors: 1,
        },
        openroad: OpenRoad::NotRun {
            reason: "test".into(),
        },
        provenance: Provenance {
            library: "lib".into(),
            library_sha256: "0".repeat(64),
            tools: BTreeMap::new(),
            clock_mhz: 25.0,
            vector_set_sha256: "0".repeat(64),
            vector_set: "test".into(),
            flow_version: "test".into(),
            cache_key: "test".into(),
        },
        from_cache: false,
    }
}

/// Every catalog unit with a distinct energy (unit i: simulated 1.5^i pJ, vectorless 2.5 x that),
/// so a wrong mapping changes the total.
fn table() -> HwTable {
    HwTable {
        rows: catalog()
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let e = 1.5f64.powi(i as i32);
                row(u, e, 2.5 * e)
            })
            .collect(),
    }
}

fn dense(kind: WeightKind, f: usize, o: usize) -> Dense {
    Dense {
        in_features: f,
        out_features: o,
        weight_kind: kind,
        input_zero_point: 0,
        weights: vec![1; f * o],
        bias: None,
    }
}

/// int8 dense -> per-tensor shift -> int4 dense -> relu -> fixed point -> ternary dense -> fixed
/// point (TNT) -> int8 dense -> threshold -> binary dense -> multi-threshold with
/// `multi_threshold_levels` thresholds -> int2 dense -> per-channel shift.
fn graph(multi_threshold_levels: usize) -> QGraph {
    let mut b = GraphBuilder::new(&[32]);
    let x = b.input();
    let d = b
        .dense("d8", x, dense(WeightKind::Int { bits: 8 }, 32, 16))
        .unwrap();
    let shift = |s: Vec<u8>| Requant::Shift {
        shift: s,
        zero_point: 0,
        min: 0,
        max: 15,
    };
    let q = b
        .requant("q_shift", d, DType::Unsigned { bits: 4 }, shift(vec![6]))
        .unwrap();
    let d = b
        .dense("d4", q, dense(WeightKind::Int { bits: 4 }, 16, 12))
        .unwrap();
    let r = b.relu("relu", d, 0).unwrap();
    let fp = Requant::FixedPoint {
        multiplier: vec![1 << 30],
        shift: vec![-4],
        zero_point: 0,
        min: 0,
        max: 255,
    };
    let q = b
        .requant("q_fp", r, DType::Unsigned { bits: 8 }, fp.clone())
        .unwrap();
    let d = b
        .dense("dt", q, dense(WeightKind::Ternary, 12, 10))
        .unwrap();
    let q = b
        .requant("q_tnt", d, DType::Unsigned { bits: 8 }, fp)
        .unwrap();
    let d = b
        .dense("d8b", q, dense(WeightKind::Int { bits: 8 }, 10, 10))
        .unwrap();
    let q = b
        .requant(
            "q_sign",
            d,
            DType::Binary,
            Requant::Threshold {
                thresholds: vec![3],
                flip: vec![false],
            },
        )
        .unwrap();
    let d = b
        .binary_dense(
            "bin",
            q,
            BinaryDense {
                in_features: 10,
                out_features: 8,
                weights: vec![1; 80],
                bias: None,
            },
        )
        .unwrap();
    let k = (multi_threshold_levels + 1).trailing_zeros() as u8;
    let q = b
        .requant(
            "q_mt",
            d,
            DType::Unsigned { bits: k },
            Requant::MultiThreshold {
                thresholds: (0..multi_threshold_levels as i32).collect(),
                flip: vec![false],
            },
        )
        .unwrap();
    let d = b
        .dense("d2", q, dense(WeightKind::Int { bits: 2 }, 8, 4))
        .unwrap();
    let q = b
        .requant(
            "q_shift_pc",
            d,
            DType::Unsigned { bits: 4 },
            shift(vec![1; 4]),
        )
        .unwrap();
    b.finish(q).unwrap()
}

#[test]
fn energy_per_inference_is_counts_times_unit_energies() {
    let g = graph(3);
    let t = table();
    let report = per_inference(&g, &t).unwrap();
    let counts = count_ops(&g);
    // The unit each node must map to, and MACs per unit operation.
    let expected: BTreeMap<&str, (&str, f64)> = [
        ("d8", ("mac_int8", 1.0)),
        ("q_shift", ("shift_const", 1.0)),
        ("d4", ("mac_int4", 1.0)),
        ("q_fp", ("fixed_point", 1.0)),
        ("dt", ("ternary_acc", 1.0)),
        ("q_tnt", ("tnt_requant", 1.0)),
        ("d8b", ("mac_int8", 1.0)),
        ("q_sign", ("threshold", 1.0)),
        ("bin", ("xnor_popcount64", 64.0)),
        ("q_shift_pc", ("shift_var", 1.0)),
        ("q_mt", ("multi_threshold_k2", 1.0)),
        ("d2", ("mac_int2", 1.0)),
    ]
    .into_iter()
    .collect();
    let mut total = (0.0, 0.0);
    for n in &counts.nodes {
        let Some(&(unit, per_op)) = expected.get(n.name.as_str()) else {
            continue;
        };
        let row = t.row(unit).unwrap();
        let ops = (n.macs + n.requant_ops) as f64 / per_op;
        assert!(ops > 0.0, "{}", n.name);
        total.0 += ops * row.simulated.energy_per_op_pj;
        total.1 += ops * row.vectorless.energy_per_op_pj;
        let got = &report.by_node[n.index];
        assert_eq!(got.unit.as_deref(), Some(unit), "node {}", n.name);
        assert!((got.unit_ops - ops).abs() < 1e-9, "node {}", n.name);
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    assert!(
        close(report.total_simulated_pj, total.0),
        "{} vs {}",
        report.total_simulated_pj,
        total.0
    );
    assert!(close(report.total_vectorless_pj, total.1));
    // The breakdowns add up to the total, and uncosted ops are listed, not dropped.
    let by_kind: f64 = report.by_kind.iter().map(|k| k.simulated_pj).sum();
    let by_node: f64 = report.by_node.iter().map(|n| n.simulated_pj).sum();
    assert!(close(by_kind, total.0) && close(by_node, total.0));
    assert_eq!(report.not_costed.get("relu_max"), Some(&12));
    assert!(report.scope.contains("memory access energy"));
    assert!(report.to_markdown().contains("out of scope"));
}

#[test]
fn an_operation_without_a_unit_is_an_error_naming_it() {
    // A 3-bit multi-threshold (7 thresholds): the catalog has k = 2 and k = 4 only.
    let err = per_inference(&graph(7), &table()).unwrap_err();
    assert!(matches!(err, HwError::UnmappedOp { .. }), "{err}");
    assert!(err.to_string().contains("multi_threshold_k3"), "{err}");
    // A unit the table lacks (the flow was run for a subset) is named too, never costed as zero.
    let mut partial = table();
    partial.rows.retain(|r| r.unit != "xnor_popcount64");
    let err = per_inference(&graph(3), &partial).unwrap_err();
    assert!(err.to_string().contains("xnor_popcount64"), "{err}");
}
