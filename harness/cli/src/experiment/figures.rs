//! From a run's records to the figures crate's plain input: the one place that knows both the
//! store's records and `qbench-figures`' rows, so the figures crate never sees how a number was
//! produced.

use std::collections::BTreeMap;

use anyhow::Result;
use qbench_figures::{FigureInput, HwRole, HwUnitRow, LayerEnergy, MethodRow, Metric};
use qbench_hw::energy::{self, EnergyReport};
use qbench_hw::units::UnitRole;

use super::aggregate::AggregateRow;
use super::hardware::HardwareResults;
use super::manifest::Manifest;
use super::store::CellRecord;

/// Builds the figures' input from the aggregated rows, the cells behind them and the hardware
/// step (absent when it did not run: energy and area then render as `n/a`).
pub fn input(
    title: &str,
    manifest: &Manifest,
    rows: &[AggregateRow],
    cells: &[CellRecord],
    hw: Option<&HardwareResults>,
) -> Result<FigureInput> {
    let by_id: BTreeMap<&str, &CellRecord> =
        cells.iter().map(|c| (c.cell_id.as_str(), c)).collect();
    let energy_of = |id: &str| -> Option<&EnergyReport> {
        hw.and_then(|h| h.energy.get(id))
            .and_then(|e| e.as_ref().ok())
    };
    // A run over several float models has each method once per model: the model names the row.
    let several_models = rows.iter().any(|r| r.float_model != rows[0].float_model);
    let input_metric = metric(cells);
    let mut methods = Vec::new();
    for row in rows {
        let first = by_id[row.cell_ids[0].as_str()];
        let report = &first.result.report;
        let energies: Vec<&EnergyReport> =
            row.cell_ids.iter().filter_map(|id| energy_of(id)).collect();
        // A row is costed only when every seed is.
        let mean = (energies.len() == row.cell_ids.len())
            .then(|| energy::mean_nj(&energies))
            .flatten();
        // The silicon a method needs: one of each unit its graph uses.
        let area = mean
            .as_ref()
            .and(hw)
            .map(|h| energies[0].units_area_um2(&h.table));
        let hidden: Vec<u8> = report
            .layers
            .iter()
            .map(|l| l.output_bits)
            .filter(|&b| b < 32)
            .collect();
        methods.push(MethodRow {
            label: if several_models {
                format!("{} ({})", row.label, row.float_model)
            } else {
                row.label.clone()
            },
            method: row.method.clone(),
            model: row.model.clone(),
            weight_bits: report
                .layers
                .iter()
                .map(|l| l.weight_bits)
                .max()
                .unwrap_or(0) as u32,
            activation_bits: hidden.iter().copied().max().unwrap_or(32) as u32,
            variant: report.variant.clone(),
            finetuned: report.finetune_epochs > 0,
            seeds: row.seeds.len() as u32,
            // A model trained from scratch was never the float model: no baseline for it.
            float_accuracy: row.from_float.then_some(100.0 * row.float_accuracy),
            accuracy_mean: 100.0 * row.accuracy_mean,
            accuracy_std: 100.0 * row.accuracy_std,
            fake_accuracy: 100.0 * row.fake_accuracy,
            agreement: row.agreement,
            quant_ops: row.quant_ops,
            weight_bits_total: row.weight_bits,
            energy_per_inference_nj: mean.as_ref().map(|m| m.total_nj),
            energy_breakdown_nj: mean.map(|m| m.by_category_nj).unwrap_or_default(),
            area_um2: area,
            runtime_agreement: row.runtime_check.as_ref().map(|c| match input_metric {
                Metric::Top1Accuracy => c.agreement,
                Metric::MeanApModerate => c.identical,
            }),
            runtime_max_logit_diff: row.runtime_check.as_ref().map(|c| c.max_logit_diff),
        });
    }

    // Per-layer energy of the most accurate costed row (the first in spec order on a tie).
    let layer_energy = rows
        .iter()
        .filter(|r| energy_of(&r.cell_ids[0]).is_some())
        .reduce(|best, r| {
            if r.accuracy_mean > best.accuracy_mean {
                r
            } else {
                best
            }
        })
        .and_then(|r| {
            let layers = energy_of(&r.cell_ids[0])?
                .layers_nj()
                .into_iter()
                .map(|(name, unit, nj)| (name, BTreeMap::from([(unit, nj)])))
                .collect();
            Some(LayerEnergy {
                label: format!("{} ({})", r.label, r.model),
                layers,
            })
        });

    let hw_units = hw.map_or_else(Vec::new, |h| {
        h.table
            .rows
            .iter()
            .map(|u| HwUnitRow {
                unit: u.unit.clone(),
                role: match u.role {
                    UnitRole::Requantizer => HwRole::Requantizer,
                    UnitRole::ProcessingElement => HwRole::ProcessingElement,
                },
                cells: u.cells,
                area_um2: u.area_um2,
                critical_path_ns: u.timing.critical_path_ns,
                energy_per_op_pj_sim: Some(u.simulated.energy_per_op_pj),
                energy_per_op_pj_vectorless: Some(u.vectorless.energy_per_op_pj),
                energy_per_op_pj_same_stream: h.requant.as_ref().and_then(|(_, c)| {
                    [&c.fixed_point, &c.shift_const]
                        .into_iter()
                        .find(|m| m.unit == u.unit)
                        .map(|m| m.simulated.energy_per_op_pj)
                }),
            })
            .collect()
    });

    let mut provenance = BTreeMap::new();
    provenance.insert(
        "git".into(),
        format!(
            "{}{}",
            manifest.git.revision,
            if manifest.git.dirty { " (dirty)" } else { "" }
        ),
    );
    provenance.insert(
        "dataset".into(),
        format!(
            "{} sha256 {}",
            manifest.dataset.name, manifest.dataset.sha256
        ),
    );
    for m in &manifest.models {
        provenance.insert(
            format!("float {} seed {}", m.model, m.seed),
            format!("weights sha256 {}", m.weights_sha256),
        );
    }
    for (tool, version) in &manifest.tools {
        provenance.insert(format!("tool {tool}"), version.clone());
    }
    if let Some(lib) = &manifest.liberty {
        provenance.insert(
            "liberty".into(),
            format!("{} sha256 {}", lib.path, lib.sha256),
        );
    }
    if let Some(h) = hw.and_then(|h| h.table.rows.first()) {
        provenance.insert("hw clock".into(), format!("{} MHz", h.provenance.clock_mhz));
        provenance.insert("hw unit rows".into(), h.provenance.vector_set.clone());
    }
    if let Some((cell, c)) = hw.and_then(|h| h.requant.as_ref()) {
        let label = by_id
            .get(cell.as_str())
            .map_or(cell.as_str(), |c| &c.result.report.label);
        provenance.insert(
            "hw same stream".into(),
            format!(
                "fixed_point and shift_const simulated on the accumulators of {label}'s graph \
                 (sha256 {}, {} test images, {} operations)",
                &c.graph_sha256[..12],
                c.images,
                c.fixed_point.ops
            ),
        );
    }
    let reports: Vec<&EnergyReport> = cells.iter().filter_map(|c| energy_of(&c.cell_id)).collect();
    let energy_note = reports.first().map(|e| {
        format!(
            "Energy per inference: every method's units simulated on the operand streams of its \
             own graph ({} test images, the same for every cell; at most {} operations per unit); \
             memory: {}.",
            e.activity_images,
            super::hardware::ACTIVITY_OPS,
            e.memory_source
        )
    });
    provenance.insert("energy scope".into(), qbench_hw::energy::SCOPE.to_string());

    let mut input = FigureInput {
        run_id: manifest.run_id.clone(),
        title: title.to_string(),
        dataset: manifest.dataset.name.clone(),
        metric: input_metric,
        methods,
        hw_units,
        layer_energy,
        claims: Vec::new(),
        provenance,
        energy_note,
    };
    input.claims = qbench_figures::claims::reproduce(&qbench_figures::claims::shipped()?, &input);
    Ok(input)
}

/// What the cells' headline figure measures: a detector's mean AP when any cell carries a KITTI
/// evaluation, else top-1 accuracy.
pub fn metric(cells: &[CellRecord]) -> Metric {
    if cells.iter().any(|c| c.result.detection.is_some()) {
        Metric::MeanApModerate
    } else {
        Metric::Top1Accuracy
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::experiment::aggregate;

    /// A finished cell of `method` with `config` (its report's validated options) on the float
    /// `cnn`, or on its own architecture `own_model`.
    fn cell(
        id: &str,
        method: &str,
        label: &str,
        config: serde_json::Value,
        own_model: Option<&str>,
    ) -> CellRecord {
        serde_json::from_value(json!({
            "cell_id": id,
            "model": "cnn",
            "dataset": "fashion-mnist",
            "seed": 0,
            "method": method,
            "options": config.clone(),
            "spec_entry": 0,
            "float": {
                "weights_sha256": "w",
                "dataset_sha256": "d",
                "test_accuracy": 0.9,
                "val_accuracy": 0.9
            },
            "result": {
                "report": {
                    "method": method,
                    "label": label,
                    "config": config,
                    "layers": [],
                    "quant_ops": {},
                    "calibration": "",
                    "finetune_epochs": 0,
                    "own_model": own_model,
                    "notes": []
                },
                "graph_path": "g",
                "graph_sha256": "g",
                "float_weights_sha256": "w",
                "int_accuracy": 0.8,
                "fake_accuracy": 0.8,
                "agreement": 1.0,
                "max_logit_error": 0.0,
                "logit_bound": 0.0,
                "quant_ops": 10,
                "weight_bits": 100,
                "macs_by_kind": {},
                "quantize_seconds": 0.0
            }
        }))
        .expect("a valid cell record")
    }

    #[test]
    fn rows_name_the_model_the_method_ran() {
        let cells = [
            cell("a", "bnn", "BNN mlp", json!({"model": "mlp"}), Some("mlp")),
            cell("b", "bnn", "BNN", json!({"model": "float"}), None),
            cell("c", "int8", "int8 W8A8", json!({"per_channel": true}), None),
        ];
        let rows = aggregate::rows(&cells);
        let input = input("t", &Manifest::default(), &rows, &cells, None).expect("input");
        let by_label = |l: &str| {
            input
                .methods
                .iter()
                .find(|m| m.label == l)
                .unwrap_or_else(|| panic!("no row {l}"))
        };
        // Its own architecture, trained from scratch: the float cnn is no baseline for it.
        assert_eq!(by_label("BNN mlp").model, "mlp");
        assert_eq!(by_label("BNN mlp").float_accuracy, None);
        // Started from the float model: named after it, with its accuracy as the baseline.
        assert_eq!(by_label("BNN").model, "cnn");
        assert_eq!(by_label("int8 W8A8").model, "cnn");
        assert_eq!(by_label("int8 W8A8").float_accuracy, Some(90.0));
        assert!(aggregate::markdown(&rows, Metric::Top1Accuracy).contains("| mlp | BNN mlp |"));
    }
}
