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
use qbench_hw::energy::{self, Category, GraphActivity, per_inference};
use qbench_hw::error::HwError;
use qbench_hw::flow::{self, FlowConfig, Step, StreamEnergy};
use qbench_hw::memory::MemoryModel;
use qbench_hw::sta::{self, Power, Timing};
use qbench_hw::table::{CosimSummary, HwTable, OpenRoad, Provenance, UnitResult};
use qbench_hw::units::{Unit, by_name, catalog};
use qbench_hw::{activity, units};
use qbench_io::tree_hash;

use energy::ActivitySource;

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
            sta::ActivitySource::Simulated {
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
            sta::ActivitySource::Vectorless { .. }
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
        role: unit.role,
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
            sta::ActivitySource::Simulated {
                vector_set_sha256: "0".repeat(64),
                cycles: 1,
                pins_annotated: 1,
            },
        ),
        vectorless: power(
            vectorless_pj,
            sta::ActivitySource::Vectorless {
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

/// An activity for `graph_sha256` in which unit i of the catalog costs 3^i pJ per operation
/// (unlike the table's random-operand 1.5^i), so using the table's figure would change the total.
fn activity(graph_sha256: &str) -> GraphActivity {
    let by_unit = catalog()
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let mut power = row(u, 3f64.powi(i as i32), 0.0).simulated;
            power.energy_per_op_pj = 3f64.powi(i as i32);
            let measured = StreamEnergy {
                unit: u.name.clone(),
                stream_sha256: "s".repeat(64),
                ops: 100 + i as u64,
                simulated: power,
                unit_cache_key: "test".into(),
            };
            (u.name.clone(), measured)
        })
        .collect();
    GraphActivity {
        graph_sha256: graph_sha256.into(),
        images: 8,
        by_unit,
    }
}

#[test]
fn energy_per_inference_is_counts_times_the_graphs_own_unit_energies_plus_memory() {
    let g = graph(3);
    let t = table();
    let a = activity("g3");
    let memory = MemoryModel::default();
    let report = per_inference(&g, "g3", &t, &a, &memory).unwrap();
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
    let mut units_pj = (0.0, 0.0);
    for n in &counts.nodes {
        let Some(&(unit, per_op)) = expected.get(n.name.as_str()) else {
            continue;
        };
        let ops = (n.macs + n.requant_ops) as f64 / per_op;
        assert!(ops > 0.0, "{}", n.name);
        units_pj.0 += ops * a.by_unit[unit].simulated.energy_per_op_pj;
        units_pj.1 += ops * t.row(unit).unwrap().vectorless.energy_per_op_pj;
        let got = &report.by_node[n.index];
        assert_eq!(got.unit.as_deref(), Some(unit), "node {}", n.name);
        assert!((got.unit_ops - ops).abs() < 1e-9, "node {}", n.name);
    }
    let (stores, _) = memory.traffic(&g).unwrap();
    let memory_pj: f64 = stores.iter().map(|s| s.pj).sum();
    assert!(memory_pj > 0.0);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs();
    let total = units_pj.0 + memory_pj;
    assert!(
        close(report.total_simulated_pj, total),
        "{} vs {total}",
        report.total_simulated_pj
    );
    assert!(close(report.total_vectorless_pj, units_pj.1 + memory_pj));
    assert!(close(report.category_pj(Category::Memory), memory_pj));
    // Every kind names its activity source: this graph's streams, or the memory model.
    for k in &report.by_kind {
        match (&k.activity, k.category) {
            (
                ActivitySource::Graph {
                    graph_sha256,
                    images,
                    ops,
                },
                c,
            ) => {
                assert_ne!(c, Category::Memory);
                assert_eq!((graph_sha256.as_str(), *images), ("g3", 8));
                assert_eq!(*ops, a.by_unit[&k.unit].ops);
            }
            (ActivitySource::MemoryModel { level, .. }, Category::Memory) => {
                assert_eq!(level, &k.unit);
            }
            other => panic!("{}: {other:?}", k.kind),
        }
    }
    let kinds: Vec<&str> = report.by_kind.iter().map(|k| k.kind.as_str()).collect();
    for store in [
        "memory:weights",
        "memory:activations_read",
        "memory:activations_write",
    ] {
        assert!(kinds.contains(&store), "{kinds:?}");
    }
    // The breakdowns add up to the total, and uncosted ops are listed, not dropped.
    let by_kind: f64 = report.by_kind.iter().map(|k| k.simulated_pj).sum();
    let by_node: f64 = report
        .by_node
        .iter()
        .map(|n| n.simulated_pj + n.memory_pj)
        .sum();
    let by_category: f64 = report.by_category.values().sum();
    assert!(close(by_kind, total) && close(by_node, total) && close(by_category, total));
    assert_eq!(report.not_costed.get("relu_max"), Some(&12));
    assert!(report.scope.contains("memory access energy"));
    assert!(report.to_markdown().contains("own operand streams"));
}

#[test]
fn an_energy_never_uses_another_graphs_activity() {
    let err = per_inference(
        &graph(3),
        "g3",
        &table(),
        &activity("other"),
        &MemoryModel::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("own operand streams"), "{err}");
    // A unit the graph uses without a measurement on its streams is an error, never a fallback.
    let mut partial = activity("g3");
    partial.by_unit.remove("mac_int4");
    let err =
        per_inference(&graph(3), "g3", &table(), &partial, &MemoryModel::default()).unwrap_err();
    assert!(err.to_string().contains("mac_int4"), "{err}");
}

#[test]
fn an_operation_without_a_unit_is_an_error_naming_it() {
    let memory = MemoryModel::default();
    // A 3-bit multi-threshold (7 thresholds): the catalog has k = 2 and k = 4 only.
    let err = per_inference(&graph(7), "g7", &table(), &activity("g7"), &memory).unwrap_err();
    assert!(matches!(err, HwError::UnmappedOp { .. }), "{err}");
    assert!(err.to_string().contains("multi_threshold_k3"), "{err}");
    // A unit the table lacks (the flow was run for a subset) is named too, never costed as zero.
    let mut partial = table();
    partial.rows.retain(|r| r.unit != "xnor_popcount64");
    let err = per_inference(&graph(3), "g3", &partial, &activity("g3"), &memory).unwrap_err();
    assert!(err.to_string().contains("xnor_popcount64"), "{err}");
}

#[test]
fn the_cache_key_follows_every_source_of_a_unit() {
    let config = FlowConfig::new("unused", 4);
    let tools = BTreeMap::from([("yosys".to_string(), "0.23".to_string())]);
    let key =
        |u: &Unit, source: &str| flow::unit_cache_key(u, &config, "lib", &tools, None, source);
    let mac = by_name("mac_int8").unwrap();
    let here = flow::flow_version();
    assert_eq!(key(&mac, &here), key(&mac, &here));
    // An edited copy of the unit's Verilog: a new key.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("mac.v");
    std::fs::write(&copy, format!("{}\n// an edit\n", mac.source())).unwrap();
    let edited = mac.clone().with_verilog(&copy).unwrap();
    assert_ne!(key(&edited, &here), key(&mac, &here));
    // The build-time hash of the flow's sources covers the Verilog, the scripts and the code: an
    // edit to any file of a copied tree changes it, and so the key.
    let tree = dir.path().join("rtl");
    for sub in ["verilog", "scripts", "src"] {
        copy_dir(&units::verilog_dir().join("..").join(sub), &tree.join(sub));
    }
    let sources = ["rtl/verilog", "rtl/scripts", "rtl/src"];
    let before = tree_hash(dir.path(), &sources, |_| {});
    assert_eq!(before, tree_hash(dir.path(), &sources, |_| {}));
    for file in ["verilog/mac.v", "scripts/sta_power_sim.tcl", "src/sta.rs"] {
        let path = tree.join(file);
        let original = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{original}\n")).unwrap();
        let after = tree_hash(dir.path(), &sources, |_| {});
        assert_ne!(after, before, "editing {file}");
        assert_ne!(key(&mac, &after), key(&mac, &before));
        std::fs::write(&path, original).unwrap();
    }
    assert_eq!(tree_hash(dir.path(), &sources, |_| {}), before);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A deterministic pseudo-random sequence in `lo..=hi`.
fn lcg(seed: u64, n: usize, lo: i32, hi: i32) -> Vec<i32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            lo + ((x >> 33) % (hi - lo + 1) as u64) as i32
        })
        .collect()
}

/// `[64] u8 -> dense 64x32 (int2 weights, on mac_int8: its inputs are 8-bit) -> shift to u2 ->
/// dense 32x16 (int2, mac_int2) -> shift to u2 -> dense 16x10 (int2, mac_int2)`.
fn two_bit_graph() -> QGraph {
    let mut b = GraphBuilder::new(&[64]);
    let x = b.input();
    let layer = |f: usize, o: usize, seed: u64| Dense {
        in_features: f,
        out_features: o,
        weight_kind: WeightKind::Int { bits: 2 },
        input_zero_point: 0,
        weights: lcg(seed, f * o, -2, 1)
            .into_iter()
            .map(|w| w as i8)
            .collect(),
        bias: Some(lcg(seed + 1, o, -8, 8)),
    };
    let shift = |s| Requant::Shift {
        shift: vec![s],
        zero_point: 0,
        min: 0,
        max: 3,
    };
    let two_bits = DType::Unsigned { bits: 2 };
    let d = b.dense("d1", x, layer(64, 32, 1)).unwrap();
    let q = b.requant("q1", d, two_bits, shift(7)).unwrap();
    let d = b.dense("d2", q, layer(32, 16, 3)).unwrap();
    let q = b.requant("q2", d, two_bits, shift(1)).unwrap();
    let d = b.dense("d3", q, layer(16, 10, 5)).unwrap();
    b.finish(d).unwrap()
}

#[test]
fn each_graph_drives_only_its_units_and_narrower_macs_cost_less_on_the_same_stream() {
    if !tools_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = FlowConfig::new(dir.path().join("cache"), 64);
    let table = flow::run(
        &config,
        &units(&[
            "mac_int8",
            "mac_int4",
            "mac_int2",
            "shift_const",
            "threshold",
        ]),
        &|_| {},
    )
    .unwrap();
    let g = two_bit_graph();
    let images: Vec<u8> = lcg(9, 4 * 64, 0, 255)
        .into_iter()
        .map(|v| v as u8)
        .collect();
    let graphs = [activity::GraphRef {
        graph: &g,
        sha256: "g2",
    }];
    let measured = activity::measure(&config, &table, &graphs, &images, 4, 400, &|_, _| {})
        .unwrap()
        .remove(0)
        .unwrap();
    // Only the units the graph uses were simulated for it, each on its own stream.
    let used: Vec<&str> = measured.by_unit.keys().map(String::as_str).collect();
    assert_eq!(used, ["mac_int2", "mac_int8", "shift_const"]);
    for (unit, m) in &measured.by_unit {
        assert!(m.ops > 0 && m.ops <= 400, "{unit}: {m:?}");
        assert_ne!(m.stream_sha256, config.random_vectors.sha256());
        check_power(&m.simulated, config.clock_period_ns());
    }
    let report = per_inference(&g, "g2", &table, &measured, &MemoryModel::default()).unwrap();
    assert!(report.by_kind.iter().all(|k| match &k.activity {
        ActivitySource::Graph { graph_sha256, .. } => graph_sha256 == "g2",
        ActivitySource::MemoryModel { .. } => k.category == Category::Memory,
    }));
    // The 2-bit stream fits every MAC: on the same operands, narrower units cost less per op.
    let stream = activity::graph_streams(&g, &images, 400)
        .unwrap()
        .remove("mac_int2")
        .unwrap();
    let jobs: Vec<flow::StreamJob> = ["mac_int2", "mac_int4", "mac_int8"]
        .iter()
        .map(|u| flow::StreamJob {
            unit: by_name(u).unwrap(),
            stream: stream.clone(),
        })
        .collect();
    let e: Vec<f64> = flow::stream_energies(&config, &table, &jobs, &|| {})
        .unwrap()
        .iter()
        .map(|m| m.simulated.energy_per_op_pj)
        .collect();
    assert!(
        e[0] < e[1] && e[1] < e[2],
        "mac_int2/4/8 pJ/op on one stream: {e:?}"
    );
    assert_eq!(
        e[0],
        measured.by_unit["mac_int2"].simulated.energy_per_op_pj
    );
    // A second measurement of the same stream comes from the cache (the same figure).
    let again = flow::stream_energies(&config, &table, &jobs[..1], &|| {}).unwrap();
    assert_eq!(again[0].simulated.energy_per_op_pj, e[0]);
}
