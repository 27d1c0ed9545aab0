//! A run's hardware step: the unit flow of `qbench-hw` (synthesis, co-simulation, timing; unit
//! rows with random-operand activity), then every cell's energy per inference with each unit's
//! switching activity simulated on that cell's own graph over one fixed sample of test images, plus
//! memory energy; and the fixed-point vs constant-shift requantizer comparison on one graph's
//! accumulators.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use qbench_datasets::Split;
use qbench_engine::QGraph;
use qbench_hw::activity::{self, GraphRef, RequantComparison};
use qbench_hw::energy::{self, EnergyReport};
use qbench_hw::flow::{self, FlowConfig};
use qbench_hw::table::HwTable;
use qbench_hw::units::{self, Unit};

use super::spec::HardwareEntry;
use super::store::{CellRecord, RunDir};
use crate::progress;
use crate::results;

/// Test images every cell's graph runs to capture its operand streams (the same for all cells).
pub const ACTIVITY_IMAGES: usize = 8;
/// Seed of the choice of those images among the test split.
pub const ACTIVITY_SEED: u64 = 2014;
/// Unit operations simulated per (cell graph, unit), spread over the layers that use the unit.
pub const ACTIVITY_OPS: usize = 2000;
/// Seeded random operations per unit beside the edge cases (co-simulation, and the unit rows).
const RANDOM_OPS: usize = 1000;

/// The hardware step's results.
pub struct HardwareResults {
    /// The unit table (activity from random operands).
    pub table: HwTable,
    /// Energy per inference per cell id, or why it could not be computed.
    pub energy: BTreeMap<String, std::result::Result<EnergyReport, String>>,
    /// `fixed_point` and `shift_const` on the same graph's accumulators, with that graph's cell.
    pub requant: Option<(String, RequantComparison)>,
}

/// The units a spec selects.
fn selected_units(settings: &HardwareEntry) -> Result<Vec<Unit>> {
    let catalog = units::catalog();
    match &settings.units {
        None => Ok(catalog),
        Some(names) => names
            .iter()
            .map(|name| {
                catalog
                    .iter()
                    .find(|u| &u.name == name)
                    .cloned()
                    .with_context(|| {
                        let known: Vec<&str> = catalog.iter().map(|u| u.name.as_str()).collect();
                        format!(
                            "hardware.units: no unit `{name}`; units: {}",
                            known.join(", ")
                        )
                    })
            })
            .collect(),
    }
}

/// The fixed, seeded sample of test images whose operand streams every cell's graph is
/// simulated on: `count` images of `test` chosen with `ACTIVITY_SEED`, in index order, and how
/// many there are.
pub fn activity_sample(test: &qbench_datasets::ImageSet, count: usize) -> (Vec<u8>, usize) {
    let mut picked: Vec<usize> = qbench_datasets::shuffled_indices(test.len(), ACTIVITY_SEED)
        .into_iter()
        .take(count)
        .collect();
    picked.sort_unstable();
    let images = picked
        .iter()
        .flat_map(|&i| test.image(i))
        .copied()
        .collect();
    (images, picked.len())
}

/// Runs the flow (cached under `results/hw/cache`, shared by every run) and costs every cell.
pub fn run(
    run: &RunDir,
    results_root: &Path,
    settings: &HardwareEntry,
    cells: &[CellRecord],
    dataset: &str,
) -> Result<HardwareResults> {
    let selected = selected_units(settings)?;
    let mut config = FlowConfig::new(results_root.join("hw").join("cache"), RANDOM_OPS);
    config.clock_mhz = settings.clock_mhz;
    if let Some(lib) = &settings.liberty {
        config.liberty = lib.clone();
    }
    let bar = progress::count_bar("hardware units", selected.len() as u64);
    let on_event = |e: flow::Event<'_>| {
        if matches!(e.step, flow::Step::Done) {
            bar.inc(1);
        } else {
            bar.set_message(format!("{}: {}", e.unit, e.step.label()));
        }
    };
    let table = flow::run(&config, &selected, &on_event)?;
    bar.finish_and_clear();
    let dir = run.dir.join("hw");
    results::write_json(&dir.join("table.json"), &table)?;
    results::write_text(&dir.join("table.csv"), &table.to_csv()?)?;
    results::write_text(&dir.join("table.md"), &table.to_markdown())?;

    let graphs = cells
        .iter()
        .map(|cell| {
            QGraph::load(&cell.result.graph_path)
                .with_context(|| format!("loading {}", cell.result.graph_path.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<GraphRef<'_>> = graphs
        .iter()
        .map(|(graph, sha256)| GraphRef { graph, sha256 })
        .collect();
    let entry = qbench_datasets::Registry::embedded().get(dataset)?;
    let test = if entry.format == qbench_datasets::Format::Kitti {
        crate::detection::load_test(entry)?
    } else {
        qbench_datasets::load(entry, Split::Test)?
    };
    let (images, image_count) = activity_sample(&test, ACTIVITY_IMAGES);
    let bar = progress::count_bar("switching activity (unit x cell graph)", 0);
    let activities = activity::measure(
        &config,
        &table,
        &refs,
        &images,
        image_count,
        ACTIVITY_OPS,
        &|done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .context("simulating every cell's operand streams")?;
    bar.finish_and_clear();

    let mut energies = BTreeMap::new();
    for ((cell, graph), measured) in cells.iter().zip(&refs).zip(activities) {
        let report = measured.and_then(|a| {
            energy::per_inference(graph.graph, graph.sha256, &table, &a, &settings.memory)
                .map_err(|e| e.to_string())
        });
        if let Ok(r) = &report {
            results::write_json(&dir.join(format!("energy-{}.json", cell.cell_id)), r)?;
        }
        energies.insert(cell.cell_id.clone(), report);
    }

    // The quantization-operation claim, like for like: the first graph with a 32-bit fixed-point
    // requantizer (int8's) gives the accumulators both requantizers are simulated on.
    let mut requant = None;
    for (cell, graph) in cells.iter().zip(&refs) {
        let uses_fixed_point = energies
            .get(&cell.cell_id)
            .and_then(|e| e.as_ref().ok())
            .is_some_and(|e| e.by_kind.iter().any(|k| k.unit == "fixed_point"));
        if !uses_fixed_point {
            continue;
        }
        if let Some(c) = activity::requant_comparison(
            &config,
            &table,
            *graph,
            &images,
            image_count,
            ACTIVITY_OPS,
        )
        .context("fixed-point vs shift requantizer on one graph's accumulators")?
        {
            results::write_json(&dir.join("requant_same_stream.json"), &c)?;
            requant = Some((cell.cell_id.clone(), c));
        }
        break;
    }
    Ok(HardwareResults {
        table,
        energy: energies,
        requant,
    })
}
