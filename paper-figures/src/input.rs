//! The crate's input: plain serde data describing one run's results.
//!
//! Deliberately independent of the methods, engine and hardware crates: the caller converts its
//! records into these rows, so this crate only formats numbers it is given and never derives one.
//! `None` always means "not measured in this run"; it renders as `n/a` with a footnote.

use std::collections::BTreeMap;
use std::path::Path;

use qbench_io::IoError;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The parts an energy per inference is split into ([`MethodRow::energy_breakdown_nj`]), in
/// stacking order.
pub const ENERGY_CATEGORIES: [&str; 3] = ["compute", "requantization", "memory"];

/// Everything one run contributes to its tables, figures, claims report and index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureInput {
    /// Identifier of the run (its folder name in `results/`).
    pub run_id: String,
    /// Human title used in captions and the index.
    pub title: String,
    /// Dataset every accuracy was measured on (e.g. `fashion-mnist`).
    pub dataset: String,
    /// What every row's headline figure (`accuracy_*`) measures: top-1 accuracy, or a
    /// detector's mean AP.
    #[serde(default)]
    pub metric: Metric,
    /// One row per method configuration (seeds already aggregated).
    pub methods: Vec<MethodRow>,
    /// Synthesised hardware units (requantizers and processing elements).
    #[serde(default)]
    pub hw_units: Vec<HwUnitRow>,
    /// Per-layer energy of one model, for the stacked-bar figure.
    #[serde(default)]
    pub layer_energy: Option<LayerEnergy>,
    /// Published claims with the reproduced value beside each (see [`crate::claims`]).
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Where the numbers came from: git revision, dataset sha256, liberty sha256, tool versions.
    #[serde(default)]
    pub provenance: BTreeMap<String, String>,
    /// What the energies rest on, in words (activity and memory sources); printed under the
    /// methods table.
    #[serde(default)]
    pub energy_note: Option<String>,
}

/// What the headline figure of a run's rows measures; tables and plots name it, so
/// classification and detection runs share every table and figure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Top-1 classification accuracy.
    #[default]
    Top1Accuracy,
    /// KITTI detection: mean over Car, Pedestrian and Cyclist of the AP with 40 recall points at
    /// the Moderate difficulty.
    MeanApModerate,
}

impl Metric {
    /// Short name for titles and column heads (`Accuracy`, `mAP`).
    pub fn short(self) -> &'static str {
        match self {
            Metric::Top1Accuracy => "Accuracy",
            Metric::MeanApModerate => "mAP",
        }
    }

    /// Axis label, in percent.
    pub fn axis(self) -> &'static str {
        match self {
            Metric::Top1Accuracy => "Top-1 accuracy (%)",
            Metric::MeanApModerate => "Mean AP, Moderate (%)",
        }
    }

    /// What it is, in words, for captions.
    pub fn described(self) -> &'static str {
        match self {
            Metric::Top1Accuracy => "top-1 accuracy",
            Metric::MeanApModerate => {
                "mean AP over Car, Pedestrian and Cyclist at Moderate (KITTI protocol, 40 recall \
                 points)"
            }
        }
    }
}

/// One quantized-model configuration, aggregated over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodRow {
    /// Display label, unique within a run, e.g. `DJQ W4A4 unified`.
    pub label: String,
    /// Method family, as the method names itself (colours and legends group by it).
    pub method: String,
    /// Model architecture name.
    pub model: String,
    /// Weight bit width.
    pub weight_bits: u32,
    /// Activation bit width.
    pub activation_bits: u32,
    /// The method's structural variant as its report names it (e.g. `unified` or `per-op`);
    /// `None` where the method has no such choice. Rows of one method that differ only in it are
    /// drawn as a pair.
    #[serde(default)]
    pub variant: Option<String>,
    /// Whether the quantized model was fine-tuned.
    pub finetuned: bool,
    /// Number of seeds aggregated.
    pub seeds: u32,
    /// Accuracy of the float model this row was quantized from, % (for float -> quantized claims).
    #[serde(default)]
    pub float_accuracy: Option<f64>,
    /// Top-1 accuracy from the integer engine, %, mean over seeds.
    pub accuracy_mean: f64,
    /// Standard deviation of the integer-engine accuracy over seeds, percentage points.
    pub accuracy_std: f64,
    /// Accuracy of the method's fake-quant (float simulation) forward, %.
    pub fake_accuracy: f64,
    /// Fraction of test images where integer and fake-quant predictions agree, in [0, 1].
    pub agreement: f64,
    /// Requantization operations per inference.
    pub quant_ops: u64,
    /// Total bits of all stored weights.
    pub weight_bits_total: u64,
    /// Estimated energy of one inference, nJ.
    #[serde(default)]
    pub energy_per_inference_nj: Option<f64>,
    /// Energy per inference split into [`ENERGY_CATEGORIES`] (compute, requantization, memory),
    /// nJ; empty when the run has no energy for the row.
    #[serde(default)]
    pub energy_breakdown_nj: BTreeMap<String, f64>,
    /// Area of the method's requantizer plus processing-element units, µm².
    #[serde(default)]
    pub area_um2: Option<f64>,
    /// Fraction of checked images where onnxruntime (or qonnx), running the exported graph,
    /// agrees with the engine, in [0, 1]; `None` when not cross-checked.
    #[serde(default)]
    pub runtime_agreement: Option<f64>,
    /// Largest output difference between that runtime and the engine, integer units.
    #[serde(default)]
    pub runtime_max_logit_diff: Option<i64>,
}

/// One synthesised hardware unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HwUnitRow {
    /// Unit name, e.g. `shift_const`, `fixed_point`.
    pub unit: String,
    /// Requantizer or processing element.
    pub role: HwRole,
    /// Standard cells after synthesis.
    pub cells: u64,
    /// Cell area, µm².
    pub area_um2: f64,
    /// Critical path delay, ns.
    pub critical_path_ns: f64,
    /// Energy per operation from switching activity simulated on seeded random operands (the
    /// unit table's; a method's energy uses its own graph's), pJ.
    #[serde(default)]
    pub energy_per_op_pj_sim: Option<f64>,
    /// Energy per operation from vectorless (default-activity) analysis, pJ.
    #[serde(default)]
    pub energy_per_op_pj_vectorless: Option<f64>,
    /// Energy per operation simulated on one graph's operands shared by the units compared
    /// (the requantizers on the same accumulators), pJ; which graph: provenance `hw same stream`.
    #[serde(default)]
    pub energy_per_op_pj_same_stream: Option<f64>,
}

/// What a synthesised unit does: the quantization-operation figure shows the requantizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HwRole {
    /// Maps an accumulator to the next layer's narrow integer (`requantizer`).
    #[serde(rename = "requantizer")]
    Requantizer,
    /// Multiply-accumulates (`pe`).
    #[serde(rename = "pe")]
    ProcessingElement,
}

impl HwRole {
    /// The name in tables and in the input file (`requantizer`, `pe`).
    pub fn name(self) -> &'static str {
        match self {
            HwRole::Requantizer => "requantizer",
            HwRole::ProcessingElement => "pe",
        }
    }
}

/// Per-layer energy of one model and method, split by operation kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerEnergy {
    /// Which method row (or model) this breakdown belongs to.
    pub label: String,
    /// Layers in network order: name and energy per operation kind, nJ.
    pub layers: Vec<(String, BTreeMap<String, f64>)>,
}

/// A published number beside its reproduction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// Short stable identifier, e.g. `djq-area`.
    pub id: String,
    /// Citation of the published number.
    pub source: String,
    /// What is measured.
    pub quantity: String,
    /// The published value as printed in the source.
    pub published: String,
    /// Dataset (or setting) of the published value.
    pub published_dataset: String,
    /// This run's value, `None` when the run did not measure it.
    #[serde(default)]
    pub reproduced: Option<String>,
    /// Dataset (or setting) of the reproduced value.
    pub reproduced_dataset: String,
    /// True where the published and reproduced values come from different datasets.
    #[serde(default)]
    pub dataset_differs: bool,
    /// Caveats: what differs besides the dataset, how the value was matched.
    #[serde(default)]
    pub note: String,
}

impl FigureInput {
    /// Reads a `FigureInput` from a JSON file; errors name the file, line and column.
    pub fn from_json_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| IoError::new("read", path, e))?;
        let input: Self = serde_json::from_str(&text).map_err(|source| Error::Json {
            path: path.to_path_buf(),
            source,
        })?;
        input.validate()?;
        Ok(input)
    }

    /// Checks what the renderers rely on: unique method labels and finite, non-negative numbers.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: String, reason: &str| Error::Input {
            field,
            reason: reason.to_string(),
        };
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in self.methods.iter().enumerate() {
            let at = |f: &str| format!("methods[{i}] ({}).{f}", m.label);
            if !seen.insert(m.label.as_str()) {
                return Err(bad(at("label"), "duplicate label"));
            }
            let numbers = [
                ("accuracy_mean", Some(m.accuracy_mean)),
                ("accuracy_std", Some(m.accuracy_std)),
                ("fake_accuracy", Some(m.fake_accuracy)),
                ("agreement", Some(m.agreement)),
                ("runtime_agreement", m.runtime_agreement),
                ("float_accuracy", m.float_accuracy),
                ("energy_per_inference_nj", m.energy_per_inference_nj),
                ("area_um2", m.area_um2),
            ];
            for (name, v) in numbers {
                if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    return Err(bad(at(name), "must be finite and non-negative"));
                }
            }
            for (kind, v) in &m.energy_breakdown_nj {
                if !ENERGY_CATEGORIES.contains(&kind.as_str()) {
                    return Err(bad(
                        at(&format!("energy_breakdown_nj.{kind}")),
                        "must be one of compute, requantization, memory",
                    ));
                }
                if !v.is_finite() || *v < 0.0 {
                    return Err(bad(
                        at(&format!("energy_breakdown_nj.{kind}")),
                        "must be finite and non-negative",
                    ));
                }
            }
        }
        for (i, u) in self.hw_units.iter().enumerate() {
            let at = |f: &str| format!("hw_units[{i}] ({}).{f}", u.unit);
            let numbers = [
                ("area_um2", Some(u.area_um2)),
                ("critical_path_ns", Some(u.critical_path_ns)),
                ("energy_per_op_pj_sim", u.energy_per_op_pj_sim),
                ("energy_per_op_pj_vectorless", u.energy_per_op_pj_vectorless),
                (
                    "energy_per_op_pj_same_stream",
                    u.energy_per_op_pj_same_stream,
                ),
            ];
            for (name, v) in numbers {
                if v.is_some_and(|v| !v.is_finite() || v < 0.0) {
                    return Err(bad(at(name), "must be finite and non-negative"));
                }
            }
        }
        if let Some(le) = &self.layer_energy {
            for (layer, kinds) in &le.layers {
                if kinds.values().any(|v| !v.is_finite() || *v < 0.0) {
                    return Err(bad(
                        format!("layer_energy.layers[{layer}]"),
                        "energies must be finite and non-negative",
                    ));
                }
            }
        }
        Ok(())
    }
}
