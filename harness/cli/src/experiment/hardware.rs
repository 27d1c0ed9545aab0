//! A run's hardware step: the unit flow of `qbench-hw` (synthesis, co-simulation, timing, energy)
//! with real operand streams from the run's first cell graph, then energy per inference for every
//! cell from its graph's operation counts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use qbench_datasets::Split;
use qbench_engine::QGraph;
use qbench_hw::energy::{self, EnergyReport};
use qbench_hw::flow::{self, FlowConfig};
use qbench_hw::table::HwTable;
use qbench_hw::units::{self, Unit};

use super::spec::HardwareEntry;
use super::store::{CellRecord, RunDir};
use crate::progress;
use crate::results;

/// Images whose operand streams feed the co-simulation and the switching activity.
const STREAM_IMAGES: usize = 8;
/// Operations per kind sampled from those streams.
const STREAM_OPS: usize = 2000;
/// Seeded random operations per unit beside the edge cases.
const RANDOM_OPS: usize = 1000;

/// The hardware step's results.
pub struct HardwareResults {
    /// The unit table.
    pub table: HwTable,
    /// Energy per inference per cell id, or why it could not be computed.
    pub energy: BTreeMap<String, std::result::Result<EnergyReport, String>>,
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
    if let Some(first) = cells.first() {
        let (graph, sha) = QGraph::load(&first.result.graph_path)
            .with_context(|| format!("loading {}", first.result.graph_path.display()))?;
        let test = qbench_datasets::load(dataset, Split::Test)?;
        let n = STREAM_IMAGES.min(test.len());
        let label = format!(
            "{} (graph sha256 {})",
            first.result.report.label,
            &sha[..12]
        );
        config = config
            .with_graph(
                &graph,
                &test.images[..n * test.image_len()],
                STREAM_OPS,
                &label,
            )
            .context("capturing operand streams")?;
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

    let mut energies = BTreeMap::new();
    for cell in cells {
        let (graph, _) = QGraph::load(&cell.result.graph_path)
            .with_context(|| format!("loading {}", cell.result.graph_path.display()))?;
        let report = energy::per_inference(&graph, &table).map_err(|e| e.to_string());
        if let Ok(r) = &report {
            results::write_json(&dir.join(format!("energy-{}.json", cell.cell_id)), r)?;
        }
        energies.insert(cell.cell_id.clone(), report);
    }
    Ok(HardwareResults {
        table,
        energy: energies,
    })
}
