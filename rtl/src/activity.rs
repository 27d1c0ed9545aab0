//! Switching activity from a graph's own operand streams: which operations reach which unit when
//! the engine runs a graph ([`graph_streams`]), and every unit's energy per operation measured on
//! them, for many graphs at once ([`measure`]).
//!
//! Every graph is run on the same images (the caller's fixed sample), each unit a graph uses is
//! simulated on the operations that really reach it in that graph, and a unit the graph does not
//! use is not simulated for it. Measurements are cached per (unit, stream), so two graphs whose
//! streams are equal share one simulation.

use std::collections::BTreeMap;

use qbench_engine::{QGraph, count_ops};

use crate::energy::GraphActivity;
use crate::error::{HwError, Result};
use crate::flow::{self, FlowConfig, StreamEnergy, StreamJob};
use crate::mapping::node_unit;
use crate::table::HwTable;
use crate::units::{self, SHIFT_CONST_S, Unit};
use crate::vectors::{self, Operands, VectorSet};

/// The operations that reach each unit `graph` uses when the engine runs it on `images`, by unit
/// name: the operands of every node the energy mapping ([`node_unit`]) assigns to that unit, at
/// most `max_ops` unit operations (rows count their steps) spread evenly over them.
///
/// # Errors
/// [`HwError::UnmappedOp`] for an operation without a unit; errors of
/// [`vectors::node_streams`]; [`HwError::Unit`] when a unit the graph uses receives no operation
/// the capture can represent (naming its nodes).
pub fn graph_streams(
    graph: &QGraph,
    images: &[u8],
    max_ops: usize,
) -> Result<BTreeMap<String, VectorSet>> {
    let catalog = units::catalog();
    let counts = count_ops(graph);
    let mut streams = vectors::node_streams(graph, images)?;
    let mut by_unit: BTreeMap<String, (Vec<String>, Vec<Operands>)> = BTreeMap::new();
    for row in &counts.nodes {
        let Some(costed) = node_unit(graph, row, &catalog)? else {
            continue;
        };
        let entry = by_unit.entry(costed.unit).or_default();
        entry.0.push(row.name.clone());
        entry
            .1
            .extend(streams.remove(&row.index).unwrap_or_default());
    }
    by_unit
        .into_iter()
        .map(|(unit, (nodes, ops))| {
            if ops.is_empty() {
                return Err(HwError::Unit {
                    unit,
                    detail: format!(
                        "the graph uses it (nodes {}) but no operand stream was captured for it",
                        nodes.join(", ")
                    ),
                });
            }
            Ok((unit, VectorSet::graph(vectors::spread(ops, max_ops))))
        })
        .collect()
}

/// A graph to measure: the graph and the sha256 of its file.
#[derive(Clone, Copy, Debug)]
pub struct GraphRef<'a> {
    /// The graph.
    pub graph: &'a QGraph,
    /// sha256 of its file (what the energy report names).
    pub sha256: &'a str,
}

/// Every unit's energy per operation on each graph's own streams (`images`: `image_count`
/// concatenated test images, the same for every graph), as one batch of cached flow jobs on
/// `config.jobs` threads. One entry per graph, in order: a graph whose streams cannot be captured
/// (a unit not in `table`, an unmapped operation) gets its error as text, the others still count.
/// `progress(done, total)` follows the jobs.
///
/// # Errors
/// Failures of the simulations themselves (tools, a netlist diverging from the engine).
pub fn measure(
    config: &FlowConfig,
    table: &HwTable,
    graphs: &[GraphRef<'_>],
    images: &[u8],
    image_count: usize,
    max_ops: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Vec<std::result::Result<GraphActivity, String>>> {
    let mut jobs: Vec<StreamJob> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut plans = Vec::with_capacity(graphs.len());
    let captured = parallel_map(graphs, config.jobs, |g| {
        graph_streams(g.graph, images, max_ops)
    });
    for captured in captured {
        let plan = captured.and_then(|streams| {
            streams
                .into_iter()
                .map(|(name, stream)| {
                    table.row(&name)?;
                    let unit = catalog_unit(&name)?;
                    let key = (name.clone(), stream.sha256());
                    let job = *index.entry(key).or_insert_with(|| {
                        jobs.push(StreamJob { unit, stream });
                        jobs.len() - 1
                    });
                    Ok((name, job))
                })
                .collect::<Result<Vec<_>>>()
        });
        plans.push(plan.map_err(|e| e.to_string()));
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let measured = flow::stream_energies(config, table, &jobs, &|| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        progress(n, jobs.len());
    })?;
    Ok(graphs
        .iter()
        .zip(plans)
        .map(|(g, plan)| {
            plan.map(|units| GraphActivity {
                graph_sha256: g.sha256.to_string(),
                images: image_count,
                by_unit: units
                    .into_iter()
                    .map(|(unit, job)| (unit, measured[job].clone()))
                    .collect(),
            })
        })
        .collect())
}

/// `f` over `items` on `threads` scoped threads (the reference executor that captures the streams
/// is single-threaded, and a paper-suite run has about a hundred graphs), results in order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: std::sync::Mutex<Vec<Option<R>>> =
        std::sync::Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    out.lock().expect("no thread panics holding it")[i] = Some(r);
                }
            });
        }
    });
    out.into_inner()
        .expect("no thread panics holding it")
        .into_iter()
        .map(|r| r.expect("every index was taken once"))
        .collect()
}

/// The catalog unit `name`.
fn catalog_unit(name: &str) -> Result<Unit> {
    units::by_name(name).ok_or_else(|| HwError::Unit {
        unit: name.to_string(),
        detail: "not in the catalog".into(),
    })
}

/// The fixed-point requantizer and the constant-shift requantizer measured on the same
/// accumulators: the paper's quantization-operation comparison, like for like.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RequantComparison {
    /// sha256 of the graph whose `FixedPoint` accumulators both units were simulated on.
    pub graph_sha256: String,
    /// Test images run.
    pub images: usize,
    /// `fixed_point` on the accumulators with the graph's multipliers and exponents.
    pub fixed_point: StreamEnergy,
    /// `shift_const` on the same accumulators, zero points and clamps (its wired shift).
    pub shift_const: StreamEnergy,
    /// Area ratio `fixed_point / shift_const`.
    pub area_ratio: f64,
    /// Energy-per-operation ratio `fixed_point / shift_const`, both on these accumulators.
    pub energy_ratio: f64,
}

/// The same operations as `Shift` requantizations: each `FixedPoint` operand's accumulator, zero
/// point and clamps with the catalog's constant shift ([`SHIFT_CONST_S`]).
pub fn as_shift(stream: &VectorSet) -> VectorSet {
    VectorSet::graph(stream.ops().filter_map(|op| match *op {
        Operands::FixedPoint {
            acc,
            zero_point,
            min,
            max,
            ..
        } => Some(Operands::Shift {
            acc,
            shift: SHIFT_CONST_S as u8,
            zero_point,
            min,
            max,
        }),
        _ => None,
    }))
}

/// [`RequantComparison`] on the `fixed_point` stream of `graph` (`None` when the graph has no
/// 32-bit fixed-point requantizer, or the table lacks either unit).
///
/// # Errors
/// As [`graph_streams`] and [`flow::stream_energies`].
pub fn requant_comparison(
    config: &FlowConfig,
    table: &HwTable,
    graph: GraphRef<'_>,
    images: &[u8],
    image_count: usize,
    max_ops: usize,
) -> Result<Option<RequantComparison>> {
    let (Ok(fp_row), Ok(sc_row)) = (table.row("fixed_point"), table.row("shift_const")) else {
        return Ok(None);
    };
    let Some(stream) = graph_streams(graph.graph, images, max_ops)?.remove("fixed_point") else {
        return Ok(None);
    };
    let jobs = [
        StreamJob {
            unit: catalog_unit("fixed_point")?,
            stream: stream.clone(),
        },
        StreamJob {
            unit: catalog_unit("shift_const")?,
            stream: as_shift(&stream),
        },
    ];
    let mut measured = flow::stream_energies(config, table, &jobs, &|| {})?.into_iter();
    let (Some(fixed_point), Some(shift_const)) = (measured.next(), measured.next()) else {
        return Ok(None);
    };
    Ok(Some(RequantComparison {
        graph_sha256: graph.sha256.to_string(),
        images: image_count,
        area_ratio: fp_row.area_um2 / sc_row.area_um2,
        energy_ratio: fixed_point.simulated.energy_per_op_pj
            / shift_const.simulated.energy_per_op_pj,
        fixed_point,
        shift_const,
    }))
}
