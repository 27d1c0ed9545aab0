//! From cell records to table rows: cells that differ only in their seed aggregate to a mean and
//! a standard deviation.

use std::collections::BTreeMap;

use qbench_datasets::kitti::EVAL_CLASSES;
use qbench_datasets::kitti::eval::{Difficulty, Evaluation};
use qbench_figures::Metric;
use serde::Serialize;

use super::store::CellRecord;

/// One row of a run's main table: a method configuration on one model, over its seeds.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AggregateRow {
    /// Method label (e.g. `DJQ W4A4 unified`).
    pub label: String,
    /// Method name.
    pub method: String,
    /// Architecture the method ran: its own `model:` option where it trains one from scratch
    /// (BNN, QNN), else the float model's.
    pub model: String,
    /// Architecture of the float model the cells were made from.
    pub float_model: String,
    /// Whether the method started from the float model's parameters (false: it trained its own
    /// `model:` from scratch, so the float accuracy is no baseline for it).
    pub from_float: bool,
    /// The method's options as configured.
    pub options: serde_json::Value,
    /// Index of the spec entry.
    pub spec_entry: usize,
    /// Seeds aggregated.
    pub seeds: Vec<u64>,
    /// Integer-engine test accuracy of each seed, in the order of `seeds`: what the mean and the
    /// standard deviation are computed from.
    pub accuracies: Vec<f64>,
    /// Integer-engine test accuracy: mean over seeds.
    pub accuracy_mean: f64,
    /// Sample standard deviation over seeds (0 for one seed).
    pub accuracy_std: f64,
    /// Fake-quant accuracy, mean.
    pub fake_accuracy: f64,
    /// Integer/fake agreement, mean.
    pub agreement: f64,
    /// Float accuracy of the models it was quantized from, mean.
    pub float_accuracy: f64,
    /// Quantization operations per inference (equal across seeds).
    pub quant_ops: u64,
    /// Weight memory in bits.
    pub weight_bits: u64,
    /// The ONNX runtime cross-check over the row's cells (`None` when a cell has none).
    pub runtime_check: Option<RuntimeAgreement>,
    /// The cells behind the row.
    pub cell_ids: Vec<String>,
}

/// The cells' ONNX runtime cross-checks, aggregated.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RuntimeAgreement {
    /// `onnxruntime` or `qonnx` (the first cell's).
    pub runtime: String,
    /// Top-1 agreement with the engine, mean over cells.
    pub agreement: f64,
    /// Fraction of images with every output equal, mean over cells.
    pub identical: f64,
    /// Largest output difference over cells, in integer units.
    pub max_logit_diff: i64,
}

impl RuntimeAgreement {
    /// Aggregates the cells' checks; `None` if any cell has none.
    fn of(group: &[&CellRecord]) -> Option<Self> {
        let checks: Vec<_> = group
            .iter()
            .map(|c| c.result.runtime_check.as_ref())
            .collect::<Option<_>>()?;
        let n = checks.len() as f64;
        Some(RuntimeAgreement {
            runtime: checks.first()?.runtime.clone(),
            agreement: checks.iter().map(|c| c.agreement).sum::<f64>() / n,
            identical: checks.iter().map(|c| c.identical).sum::<f64>() / n,
            max_logit_diff: checks.iter().map(|c| c.max_logit_diff).max()?,
        })
    }

    /// The table cell: the agreement the metric calls for (top-1 for a classifier, whole
    /// outputs for a detector's maps) and the largest difference, naming qonnx where it ran.
    fn cell(&self, metric: Metric) -> String {
        let share = match metric {
            Metric::Top1Accuracy => self.agreement,
            Metric::MeanApModerate => self.identical,
        };
        let by = if self.runtime == "onnxruntime" {
            String::new()
        } else {
            format!(", {}", self.runtime)
        };
        format!("{:.2}% (Δ {}{by})", 100.0 * share, self.max_logit_diff)
    }
}

/// The architecture a cell's method ran and whether it started from the float model (the
/// method's report names its own architecture when it trained one).
pub fn ran_model(cell: &CellRecord) -> (String, bool) {
    match &cell.result.report.own_model {
        Some(own) => (own.clone(), false),
        None => (cell.model.clone(), true),
    }
}

/// Mean and sample standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Groups cells by (model, method, options) and aggregates their seeds, in spec order.
pub fn rows(cells: &[CellRecord]) -> Vec<AggregateRow> {
    let mut groups: BTreeMap<(usize, String, String, String), Vec<&CellRecord>> = BTreeMap::new();
    for c in cells {
        groups
            .entry((
                c.spec_entry,
                c.model.clone(),
                c.method.clone(),
                c.options.to_string(),
            ))
            .or_default()
            .push(c);
    }
    groups
        .into_values()
        .map(|group| {
            let first = group[0];
            let acc: Vec<f64> = group.iter().map(|c| c.result.int_accuracy).collect();
            let mean = |f: &dyn Fn(&CellRecord) -> f64| {
                group.iter().map(|c| f(c)).sum::<f64>() / group.len() as f64
            };
            let (accuracy_mean, accuracy_std) = mean_std(&acc);
            let (model, from_float) = ran_model(first);
            AggregateRow {
                label: first.result.report.label.clone(),
                method: first.method.clone(),
                model,
                float_model: first.model.clone(),
                from_float,
                options: first.options.clone(),
                spec_entry: first.spec_entry,
                seeds: group.iter().map(|c| c.seed).collect(),
                accuracies: acc.clone(),
                accuracy_mean,
                accuracy_std,
                fake_accuracy: mean(&|c| c.result.fake_accuracy),
                agreement: mean(&|c| c.result.agreement),
                float_accuracy: mean(&|c| c.float.test_accuracy),
                quant_ops: first.result.quant_ops,
                weight_bits: first.result.weight_bits,
                runtime_check: RuntimeAgreement::of(&group),
                cell_ids: group.iter().map(|c| c.cell_id.clone()).collect(),
            }
        })
        .collect()
}

/// The rows as a Markdown table (accuracies, or a detector's mean AP, in percent), with a
/// footnote on the onnxruntime column.
pub fn markdown(rows: &[AggregateRow], metric: Metric) -> String {
    let name = metric.short();
    let mut md = format!(
        "| model | method | {name} (int) | ± std | fake-quant | agreement | onnxruntime agreement | quant ops / image | weight bits | seeds |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let runtime = r
            .runtime_check
            .as_ref()
            .map_or_else(|| "n/a".to_string(), |c| c.cell(metric));
        md.push_str(&format!(
            "| {} | {} | {:.2}% | {:.2} | {:.2}% | {:.2}% | {runtime} | {} | {} | {} |\n",
            r.model,
            r.label,
            100.0 * r.accuracy_mean,
            100.0 * r.accuracy_std,
            100.0 * r.fake_accuracy,
            100.0 * r.agreement,
            r.quant_ops,
            r.weight_bits,
            r.seeds.len()
        ));
    }
    let compared = match metric {
        Metric::Top1Accuracy => "images with the same top-1 class",
        Metric::MeanApModerate => "images with identical maps",
    };
    md.push_str(&format!(
        "\nonnxruntime agreement: the integer graph exported to ONNX (`qbench export`) and run by \
         onnxruntime (qonnx's executor for threshold graphs) on the fake-quant sample: {compared}, \
         and Δ the largest output difference in integer units (0: bit-exact)."
    ));
    if rows.iter().any(|r| r.runtime_check.is_none()) {
        md.push_str(
            " n/a: not cross-checked, for the project's Python environment was missing when the \
             cell ran (`.ci/python-env` makes it).",
        );
    }
    md.push('\n');
    md
}

/// A detection run's AP table: for each row, the KITTI AP (40 recall points, in percent, mean
/// over seeds) of every class at Easy, Moderate and Hard, and the mean over classes at Moderate
/// with 40 and with 11 recall points. Empty when no cell is a detector's.
pub fn detection_markdown(rows: &[AggregateRow], cells: &[CellRecord]) -> String {
    let by_id: BTreeMap<&str, &CellRecord> =
        cells.iter().map(|c| (c.cell_id.as_str(), c)).collect();
    let mut md = String::new();
    for row in rows {
        let evals: Vec<&Evaluation> = row
            .cell_ids
            .iter()
            .filter_map(|id| by_id.get(id.as_str())?.result.detection.as_ref())
            .collect();
        if evals.is_empty() {
            continue;
        }
        if md.is_empty() {
            md.push_str("| model | method |");
            for class in EVAL_CLASSES {
                for d in Difficulty::ALL {
                    md.push_str(&format!(" {} {} |", class.name(), d.name()));
                }
            }
            md.push_str(" mAP Moderate | mAP Moderate (11 pt) |\n|---|---|");
            md.push_str(&"---:|".repeat(3 * EVAL_CLASSES.len() + 2));
            md.push('\n');
        }
        let cell = |f: &dyn Fn(&Evaluation) -> Option<f64>| -> String {
            let v: Vec<f64> = evals.iter().filter_map(|e| f(e)).collect();
            if v.is_empty() {
                "n/a".into()
            } else {
                format!("{:.2}", 100.0 * v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        md.push_str(&format!("| {} | {} |", row.model, row.label));
        for class in 0..EVAL_CLASSES.len() {
            for d in Difficulty::ALL {
                md.push_str(&format!(" {} |", cell(&|e| e.cell(class, d).ap_r40)));
            }
        }
        md.push_str(&format!(
            " {} | {} |\n",
            cell(&|e| e.mean_ap_r40(Difficulty::Moderate)),
            cell(&|e| e.mean_ap_r11(Difficulty::Moderate))
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_matches_the_textbook_definition() {
        let (m, s) = mean_std(&[0.9, 0.8, 0.7]);
        assert!((m - 0.8).abs() < 1e-12);
        assert!((s - 0.1).abs() < 1e-12);
        assert_eq!(mean_std(&[0.5]), (0.5, 0.0));
        assert!(mean_std(&[]).0.is_nan());
    }
}
