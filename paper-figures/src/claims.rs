//! Published claims (`claims.yaml`) and their reproduction from a run's [`FigureInput`].
//!
//! Each claim names the published number, its source and dataset, and a [`MatchRule`] saying
//! which quantity of a run corresponds to it. [`reproduce`] fills the reproduced value (or leaves
//! it `None` when the run lacks it) and marks where the datasets differ.

use std::collections::BTreeSet;
use std::path::Path;

use qbench_io::IoError;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::input::{Claim, FigureInput, HwUnitRow, MethodRow};

/// The claims file shipped with this crate (`paper-figures/claims.yaml`).
pub const SHIPPED_CLAIMS: &str = include_str!("../claims.yaml");

/// Top level of a claims file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsFile {
    /// The claims, in report order.
    pub claims: Vec<ClaimSpec>,
}

/// One published claim and the rule matching it to a run's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    /// Short stable identifier, unique in the file.
    pub id: String,
    /// Citation: authors, venue or arXiv id, table or section.
    pub source: String,
    /// What is measured.
    pub quantity: String,
    /// The published value as printed.
    pub published: String,
    /// Dataset (or setting) of the published value.
    pub published_dataset: String,
    /// Which reproduced quantity corresponds; written as a one-key map (`hw_ratio: {...}`).
    #[serde(rename = "match", with = "serde_yaml_ng::with::singleton_map")]
    pub rule: MatchRule,
    /// Caveats shown beside the comparison.
    #[serde(default)]
    pub note: String,
}

/// How a claim maps onto a run's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum MatchRule {
    /// Ratio of one hardware unit's quantity to another's, e.g. baseline area / DJQ area.
    HwRatio {
        /// The quantity compared.
        field: HwField,
        /// Unit in the numerator (the baseline).
        numerator: String,
        /// Unit in the denominator (the claimed improvement).
        denominator: String,
    },
    /// Integer-engine accuracy (or error) of the best matching row of a method family.
    Accuracy {
        /// Method family.
        method: String,
        /// Model filter.
        #[serde(default)]
        model: Option<String>,
        /// Weight bit-width filter.
        #[serde(default)]
        weight_bits: Option<u32>,
        /// Activation bit-width filter.
        #[serde(default)]
        activation_bits: Option<u32>,
        /// Report accuracy or error (100 - accuracy).
        #[serde(default)]
        report: Report,
    },
    /// Float accuracy and integer-engine accuracy of the best matching row of a method family.
    FloatToQuantized {
        /// Method family.
        method: String,
        /// Model filter.
        #[serde(default)]
        model: Option<String>,
    },
}

/// Hardware quantities a ratio can compare.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HwField {
    /// Cell area.
    AreaUm2,
    /// Energy per operation from simulated activity.
    EnergyPerOpPjSim,
    /// Energy per operation, vectorless.
    EnergyPerOpPjVectorless,
    /// Energy per operation, simulated on the same graph's operands for both units.
    EnergyPerOpPjSameStream,
}

/// Whether an accuracy claim is stated as accuracy or as error rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Top-1 accuracy, %.
    #[default]
    Accuracy,
    /// Top-1 error, % (100 - accuracy).
    Error,
}

/// Parses a claims file; errors name the file, the field path, line and column.
pub fn parse(text: &str, path: &Path) -> Result<Vec<ClaimSpec>> {
    let file: ClaimsFile = serde_yaml_ng::from_str(text).map_err(|e| Error::Claims {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut ids = BTreeSet::new();
    for (i, c) in file.claims.iter().enumerate() {
        let bad = |field: &str, reason: &str| Error::Claims {
            path: path.to_path_buf(),
            reason: format!(
                "claims[{i}].{field} (id `{}`{}): {reason}",
                c.id,
                line_of_id(text, &c.id).map_or(String::new(), |l| format!(", line {l}"))
            ),
        };
        if c.id.trim().is_empty() {
            return Err(bad("id", "must not be empty"));
        }
        if !ids.insert(c.id.as_str()) {
            return Err(bad("id", "duplicate id"));
        }
        for (field, v) in [
            ("source", &c.source),
            ("quantity", &c.quantity),
            ("published", &c.published),
            ("published_dataset", &c.published_dataset),
        ] {
            if v.trim().is_empty() {
                return Err(bad(field, "must not be empty"));
            }
        }
        match &c.rule {
            MatchRule::HwRatio {
                numerator,
                denominator,
                ..
            } if numerator.trim().is_empty() || denominator.trim().is_empty() => {
                return Err(bad(
                    "match.hw_ratio",
                    "numerator and denominator must name units",
                ));
            }
            MatchRule::Accuracy { method, .. } | MatchRule::FloatToQuantized { method, .. }
                if method.trim().is_empty() =>
            {
                return Err(bad("match.method", "must name a method family"));
            }
            _ => {}
        }
    }
    Ok(file.claims)
}

/// Reads and parses a claims file.
pub fn load(path: &Path) -> Result<Vec<ClaimSpec>> {
    let text = std::fs::read_to_string(path).map_err(|e| IoError::new("read", path, e))?;
    parse(&text, path)
}

/// The claims shipped with this crate.
pub fn shipped() -> Result<Vec<ClaimSpec>> {
    parse(SHIPPED_CLAIMS, Path::new("paper-figures/claims.yaml"))
}

/// 1-based line of `id: <id>` in the YAML text, to point at a claim that fails validation.
fn line_of_id(text: &str, id: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start().trim_start_matches("- ").trim();
            l.strip_prefix("id:")
                .is_some_and(|v| v.trim().trim_matches(['"', '\'']) == id)
        })
        .map(|i| i + 1)
}

/// Dataset names compared without case and punctuation: `CIFAR-10` equals `cifar10`.
fn same_dataset(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    norm(a) == norm(b)
}

/// Fills each claim's reproduced value from `input`; `None` where the run lacks the quantity.
pub fn reproduce(specs: &[ClaimSpec], input: &FigureInput) -> Vec<Claim> {
    specs.iter().map(|s| reproduce_one(s, input)).collect()
}

fn reproduce_one(spec: &ClaimSpec, input: &FigureInput) -> Claim {
    let (reproduced, reproduced_dataset, how, is_dataset) = match &spec.rule {
        MatchRule::HwRatio {
            field,
            numerator,
            denominator,
        } => {
            let unit = |name: &str| input.hw_units.iter().find(|u| u.unit == name);
            let value = |u: &HwUnitRow| match field {
                HwField::AreaUm2 => Some(u.area_um2),
                HwField::EnergyPerOpPjSim => u.energy_per_op_pj_sim,
                HwField::EnergyPerOpPjVectorless => u.energy_per_op_pj_vectorless,
                HwField::EnergyPerOpPjSameStream => u.energy_per_op_pj_same_stream,
            };
            let ratio = match (
                unit(numerator).and_then(value),
                unit(denominator).and_then(value),
            ) {
                (Some(n), Some(d)) if d > 0.0 => Some(format!("{:.1}x", n / d)),
                _ => None,
            };
            let setting = input
                .provenance
                .get("liberty")
                .map_or("this run's synthesised units".to_string(), |l| {
                    format!("this run's synthesised units (liberty {l})")
                });
            let how = format!("{numerator} / {denominator}, {}", field_name(*field));
            (ratio, setting, how, false)
        }
        MatchRule::Accuracy {
            method,
            model,
            weight_bits,
            activation_bits,
            report,
        } => {
            let best = best_row(input, method, model.as_deref(), |m| {
                weight_bits.is_none_or(|b| m.weight_bits == b)
                    && activation_bits.is_none_or(|b| m.activation_bits == b)
            });
            let value = best.map(|m| {
                let v = match report {
                    Report::Accuracy => m.accuracy_mean,
                    Report::Error => 100.0 - m.accuracy_mean,
                };
                let what = match report {
                    Report::Accuracy => "",
                    Report::Error => " error",
                };
                format!("{v:.2} ± {:.2} %{what} ({})", m.accuracy_std, m.label)
            });
            let how = format!("best {method} row{}", filter_text(model.as_deref()));
            (value, input.dataset.clone(), how, true)
        }
        MatchRule::FloatToQuantized { method, model } => {
            let best = best_row(input, method, model.as_deref(), |m| {
                m.float_accuracy.is_some()
            });
            let value = best.and_then(|m| {
                Some(format!(
                    "{:.2} -> {:.2} % ({})",
                    m.float_accuracy?, m.accuracy_mean, m.label
                ))
            });
            let how = format!(
                "float -> integer engine, best {method} row{}",
                filter_text(model.as_deref())
            );
            (value, input.dataset.clone(), how, true)
        }
    };
    let note = match (spec.note.is_empty(), reproduced.is_some()) {
        (true, true) => format!("matched: {how}"),
        (false, true) => format!("{} Matched: {how}.", spec.note),
        (true, false) => format!("not in this run ({how})"),
        (false, false) => format!("{} Not in this run ({how}).", spec.note),
    };
    Claim {
        id: spec.id.clone(),
        source: spec.source.clone(),
        quantity: spec.quantity.clone(),
        published: spec.published.clone(),
        published_dataset: spec.published_dataset.clone(),
        reproduced,
        dataset_differs: is_dataset && !same_dataset(&spec.published_dataset, &reproduced_dataset),
        reproduced_dataset,
        note,
    }
}

fn field_name(f: HwField) -> &'static str {
    match f {
        HwField::AreaUm2 => "area",
        HwField::EnergyPerOpPjSim => "energy per op (simulated)",
        HwField::EnergyPerOpPjVectorless => "energy per op (vectorless)",
        HwField::EnergyPerOpPjSameStream => "energy per op (simulated, same graph's operands)",
    }
}

fn filter_text(model: Option<&str>) -> String {
    model.map_or(String::new(), |m| format!(" of model {m}"))
}

/// The row of `method` (and `model`, if given) passing `keep` with the highest accuracy: papers
/// report their best configuration, so the comparison does too.
fn best_row<'a>(
    input: &'a FigureInput,
    method: &str,
    model: Option<&str>,
    keep: impl Fn(&MethodRow) -> bool,
) -> Option<&'a MethodRow> {
    input
        .methods
        .iter()
        .filter(|m| m.method == method && model.is_none_or(|x| m.model == x) && keep(m))
        .max_by(|a, b| a.accuracy_mean.total_cmp(&b.accuracy_mean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_claims_parse() {
        let claims = shipped().expect("shipped claims.yaml parses");
        let ids: Vec<&str> = claims.iter().map(|c| c.id.as_str()).collect();
        for id in [
            "djq-area",
            "djq-energy",
            "bnn-mnist",
            "bnn-cifar10",
            "tnt-lenet-mnist",
        ] {
            assert!(ids.contains(&id), "missing {id}");
        }
    }

    #[test]
    fn datasets_compare_without_punctuation() {
        assert!(same_dataset("CIFAR-10", "cifar10"));
        assert!(!same_dataset("MNIST", "fashion-mnist"));
    }
}
