//! Experiment specs: the YAML a user writes to describe a grid of runs, and its expansion into
//! cells.
//!
//! A spec names a dataset, the float models to train, the methods with their option grids, the
//! seeds, and the hardware flow's settings. Every error names the spec file, the line and the
//! field. The paper suite (`harness/cli/specs/paper.yaml`) is a spec like any other; users copy it.
//!
//! ```yaml
//! name: my-sweep
//! dataset: fashion-mnist
//! seeds: [0, 1]
//! models:
//!   - {model: cnn, epochs: 3}
//! methods:
//!   - {method: int8}
//!   - method: djq
//!     grid: {weight_bits: [8, 4], activation_bits: [8, 4]}   # cartesian product
//! hardware: {clock_mhz: 25}
//! quick: {epochs: 1, train_limit: 12000, methods: [0]}
//! ```

use std::path::{Path, PathBuf};

use qbench_methods::method::config::MethodConfig;
use qbench_methods::train::TrainConfig;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::float_model::FloatSpec;

/// A spec error, already worded for the user (file, line, field).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(String);

/// One float model the spec trains.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// Architecture name (`qbench models` lists them).
    pub model: String,
    /// Training epochs [default: 3].
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Images per step [default: 128].
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Peak learning rate of AdamW's cosine schedule [default: the trainer's].
    #[serde(default)]
    pub lr: Option<f64>,
    /// Train on only the first N shuffled training images [default: all].
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Fraction of the training split held out for validation [default: 0.1].
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Import the float weights from this safetensors file (torchvision parameter names; relative
    /// to the spec's folder) instead of training [default: train].
    #[serde(default)]
    pub weights: Option<PathBuf>,
    /// Do not read the training split: hold out this fraction of the test split for calibration
    /// and fine-tuning and evaluate on the rest (an ImageNet validation folder alone)
    /// [default: use the training split].
    #[serde(default)]
    pub calibration_from_test: Option<f64>,
    /// Indices of the `methods` entries run on this model [default: all]. A costly model can
    /// run a subset (the paper suite's deeper `vgg7` skips the rows that train for minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<usize>>,
}

impl ModelEntry {
    /// Whether the `methods` entry `entry` runs on this model.
    pub fn runs(&self, entry: usize) -> bool {
        self.methods.as_ref().is_none_or(|m| m.contains(&entry))
    }
}

fn default_epochs() -> usize {
    3
}
fn default_batch_size() -> usize {
    128
}
fn default_val_fraction() -> f64 {
    0.1
}

/// The hardware flow's settings for a spec.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HardwareEntry {
    /// Run the hardware flow at all [default: true].
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Liberty file [default: OSU 0.18 um from `qflow-tech-osu018`].
    #[serde(default)]
    pub liberty: Option<PathBuf>,
    /// Clock for power and energy, MHz [default: the flow's, which every unit meets on OSU 0.18 um].
    #[serde(default = "default_clock")]
    pub clock_mhz: f64,
    /// Units to run [default: all].
    #[serde(default)]
    pub units: Option<Vec<String>>,
    /// The memory model of the energy per inference [default: Horowitz ISSCC 2014 figures, SRAM
    /// scaled to 0.18 um; see `qbench_hw::memory`].
    #[serde(default)]
    pub memory: qbench_hw::memory::MemoryModel,
}

impl Default for HardwareEntry {
    fn default() -> Self {
        HardwareEntry {
            enabled: true,
            liberty: None,
            clock_mhz: default_clock(),
            units: None,
            memory: qbench_hw::memory::MemoryModel::default(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_clock() -> f64 {
    qbench_hw::flow::DEFAULT_CLOCK_MHZ
}

/// The smaller budget `--quick` applies.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QuickEntry {
    /// Epochs of every float model.
    #[serde(default)]
    pub epochs: Option<usize>,
    /// Training images of every float model.
    #[serde(default)]
    pub train_limit: Option<usize>,
    /// Indices of the `methods` entries to run (all when absent).
    #[serde(default)]
    pub methods: Option<Vec<usize>>,
    /// Indices of the `models` entries to run (all when absent).
    #[serde(default)]
    pub models: Option<Vec<usize>>,
    /// Seeds to run (the spec's when absent).
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// Units of the hardware flow (the spec's when absent).
    #[serde(default)]
    pub units: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Spanned<String>,
    #[serde(default = "default_dataset")]
    dataset: Spanned<String>,
    #[serde(default)]
    registry: Option<PathBuf>,
    #[serde(default = "default_seeds")]
    seeds: Vec<u64>,
    models: Vec<Spanned<ModelEntry>>,
    methods: Vec<Spanned<serde_yaml_ng::Value>>,
    #[serde(default)]
    hardware: Option<Spanned<HardwareEntry>>,
    #[serde(default)]
    quick: Option<Spanned<QuickEntry>>,
}

fn default_dataset() -> Spanned<String> {
    Spanned::new(
        qbench_datasets::DEFAULT_DATASET.to_string(),
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}

/// One method configuration of the expanded grid.
#[derive(Clone, Debug)]
pub struct MethodCell {
    /// The config, parsed once when the spec is read: typed, validated and built. Its canonical
    /// options (defaults filled in) are what the cell id hashes and the cell record stores, and
    /// its method is what the cell runs.
    pub config: MethodConfig,
    /// Index of the `methods` entry it came from.
    pub entry: usize,
    /// Line of that entry in the spec.
    pub line: u64,
}

/// A parsed, validated and expanded spec.
#[derive(Clone, Debug)]
pub struct ExperimentSpec {
    /// The spec's name (names the run folder).
    pub name: String,
    /// Dataset name.
    pub dataset: String,
    /// A dataset registry file merged over the built-in one (`registry:`), relative paths taken
    /// from the spec's folder.
    pub registry: Option<PathBuf>,
    /// Seeds: each trains its own float models and quantizes them with its own seed.
    pub seeds: Vec<u64>,
    /// Float models.
    pub models: Vec<ModelEntry>,
    /// The methods grid, expanded.
    pub methods: Vec<MethodCell>,
    /// Hardware flow settings.
    pub hardware: HardwareEntry,
    /// The spec's text as read (stored in the run folder).
    pub text: String,
    /// Where it was read from.
    pub source: String,
    /// Whether the `--quick` budget was applied.
    pub quick: bool,
    /// The folder relative `registry`, `weights` and method paths were taken from (absolute when read
    /// from a file), recorded in the run manifest so a stored spec resolves them the same way.
    pub base: PathBuf,
}

impl ExperimentSpec {
    /// Reads and validates a spec file; relative `registry`, `weights` and method paths (an
    /// `onnx` row's `path`) are taken from the spec's folder.
    pub fn from_path(path: &Path, quick: bool) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SpecError(format!("{}: {e}", path.display())))?;
        let parent = path.parent().unwrap_or(Path::new("."));
        let base = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        Self::parse(&text, &path.display().to_string(), quick, &base)
    }

    /// Parses spec text stored with a run, resolving relative paths against `base`, the folder
    /// the original spec was read from (the run manifest's `spec_dir`).
    pub fn from_stored(
        text: &str,
        source: &str,
        quick: bool,
        base: &Path,
    ) -> Result<Self, SpecError> {
        Self::parse(text, source, quick, base)
    }

    /// Parses and validates spec text; `source` names it in errors; relative paths are taken
    /// from the current folder.
    pub fn from_text(text: &str, source: &str, quick: bool) -> Result<Self, SpecError> {
        Self::parse(text, source, quick, Path::new(""))
    }

    fn parse(text: &str, source: &str, quick: bool, base: &Path) -> Result<Self, SpecError> {
        let raw: RawSpec =
            serde_saphyr::from_str(text).map_err(|e| SpecError(format!("{source}: {e}")))?;
        let at = |loc: &serde_saphyr::Location, field: &str, msg: String| {
            SpecError(format!("{source}: line {}: `{field}`: {msg}", loc.line()))
        };
        let name = raw.name.value.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            return Err(at(
                &raw.name.referenced,
                "name",
                "use letters, digits, `-`, `_` or `.` (it names the run folder)".into(),
            ));
        }
        let registry_path = raw.registry.as_ref().map(|p| base.join(p));
        crate::float_model::registry(registry_path.as_deref())
            .map_err(|e| SpecError(format!("{source}: `registry`: {e:#}")))?
            .get(&raw.dataset.value)
            .map_err(|e| at(&raw.dataset.referenced, "dataset", e.to_string()))?;
        if raw.seeds.is_empty() {
            return Err(SpecError(format!(
                "{source}: `seeds` must list at least one seed"
            )));
        }
        if raw.models.is_empty() || raw.methods.is_empty() {
            return Err(SpecError(format!(
                "{source}: `models` and `methods` must each list at least one entry"
            )));
        }
        let mut models = Vec::new();
        for (i, m) in raw.models.iter().enumerate() {
            let field = format!("models[{i}]");
            if qbench_methods::model::zoo::ARCHITECTURES
                .iter()
                .all(|(n, _)| *n != m.value.model)
            {
                return Err(at(
                    &m.referenced,
                    &format!("{field}.model"),
                    format!("unknown model `{}` (see `qbench models`)", m.value.model),
                ));
            }
            if !(0.0..1.0).contains(&m.value.val_fraction) {
                return Err(at(
                    &m.referenced,
                    &format!("{field}.val_fraction"),
                    "must be in [0, 1)".into(),
                ));
            }
            if let Some(f) = m.value.calibration_from_test
                && !(f > 0.0 && f < 1.0)
            {
                return Err(at(
                    &m.referenced,
                    &format!("{field}.calibration_from_test"),
                    "must be in (0, 1)".into(),
                ));
            }
            if let Some(bad) = m
                .value
                .methods
                .iter()
                .flatten()
                .find(|&&k| k >= raw.methods.len())
            {
                return Err(at(
                    &m.referenced,
                    &format!("{field}.methods"),
                    format!("{bad} is not an index of `methods`"),
                ));
            }
            let mut model = m.value.clone();
            if let Some(w) = &model.weights {
                let w = base.join(w);
                if !w.is_file() {
                    return Err(at(
                        &m.referenced,
                        &format!("{field}.weights"),
                        format!("{} is not a file", w.display()),
                    ));
                }
                model.weights = Some(w);
            }
            models.push(model);
        }
        let mut seeds = raw.seeds.clone();
        let (mut hardware, hardware_at) = match &raw.hardware {
            Some(h) => (h.value.clone(), h.referenced),
            None => (HardwareEntry::default(), serde_saphyr::Location::UNKNOWN),
        };
        check_hardware(&mut hardware, base)
            .map_err(|(field, msg)| at(&hardware_at, &format!("hardware.{field}"), msg))?;
        let mut keep: Option<Vec<usize>> = None;
        if quick && let Some(q) = &raw.quick {
            for m in &mut models {
                m.epochs = q.value.epochs.unwrap_or(m.epochs);
                m.train_limit = q.value.train_limit.or(m.train_limit);
            }
            if let Some(s) = &q.value.seeds {
                seeds = s.clone();
            }
            if let Some(idx) = &q.value.models {
                if let Some(bad) = idx.iter().find(|&&i| i >= models.len()) {
                    return Err(at(
                        &q.referenced,
                        "quick.models",
                        format!("{bad} is not an index of `models`"),
                    ));
                }
                models = models
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| idx.contains(i))
                    .map(|(_, m)| m)
                    .collect();
            }
            if let Some(u) = &q.value.units {
                check_units(u).map_err(|m| at(&q.referenced, "quick.units", m))?;
                hardware.units = Some(u.clone());
            }
            if let Some(idx) = &q.value.methods {
                if let Some(bad) = idx.iter().find(|&&i| i >= raw.methods.len()) {
                    return Err(at(
                        &q.referenced,
                        "quick.methods",
                        format!("{bad} is not an index of `methods`"),
                    ));
                }
                keep = Some(idx.clone());
            }
        }
        for m in &models {
            let train = train_config(m, 0);
            train
                .validate()
                .map_err(|e| SpecError(format!("{source}: model `{}`: {e}", m.model)))?;
        }
        let mut methods = Vec::new();
        for (i, entry) in raw.methods.iter().enumerate() {
            if keep.as_ref().is_some_and(|k| !k.contains(&i)) {
                continue;
            }
            let line = entry.referenced.line();
            let where_ = format!("{source}: line {line} (methods[{i}])");
            for options in
                expand_grid(&entry.value).map_err(|m| SpecError(format!("{where_}: {m}")))?
            {
                // The one parse of this config: every option is typed and validated and the
                // method built now, before any work; the cell keeps the result.
                let config = MethodConfig::from_value_in(options, &where_, base)
                    .map_err(|e| SpecError(e.to_string()))?;
                // Two cells of one config would share a cell id (and a record), so a config
                // written twice, even once with its defaults spelled out, is an error.
                if let Some(same) = methods.iter().find(|m: &&MethodCell| m.config == config) {
                    return Err(SpecError(format!(
                        "{where_}: the same `{}` config as methods[{}] (line {}) once defaults \
                         are filled in: {}",
                        config.name(),
                        same.entry,
                        same.line,
                        config.options()
                    )));
                }
                // Each config is one row of the tables and one point of the figures, named by
                // its label: two configs with one label could not be told apart there.
                let label = config.method().label();
                if let Some(same) = methods
                    .iter()
                    .find(|m: &&MethodCell| m.config.method().label() == label)
                {
                    return Err(SpecError(format!(
                        "{where_}: the label `{label}` is also that of methods[{}] (line {}): the \
                         tables and figures could not tell the two apart; options {} and {}",
                        same.entry,
                        same.line,
                        same.config.options(),
                        config.options()
                    )));
                }
                methods.push(MethodCell {
                    config,
                    entry: i,
                    line,
                });
            }
        }
        Ok(ExperimentSpec {
            name,
            dataset: raw.dataset.value.clone(),
            registry: registry_path,
            seeds,
            models,
            methods,
            hardware,
            text: text.to_string(),
            source: source.to_string(),
            quick,
            base: base.to_path_buf(),
        })
    }

    /// The float model spec of `model` trained with `seed`.
    pub fn float_spec(&self, model: &ModelEntry, seed: u64) -> FloatSpec {
        FloatSpec {
            model: model.model.clone(),
            dataset: self.dataset.clone(),
            train: train_config(model, seed),
            val_fraction: model.val_fraction,
            train_limit: model.train_limit,
            weights_sha256: None,
            calibration_from_test: model.calibration_from_test,
            registry: self.registry.clone(),
        }
    }
}

fn train_config(m: &ModelEntry, seed: u64) -> TrainConfig {
    let mut train = TrainConfig {
        epochs: m.epochs,
        batch_size: m.batch_size,
        seed,
        ..TrainConfig::default()
    };
    if let Some(lr) = m.lr {
        train.optimizer.lr = lr;
    }
    train
}

/// Checks the hardware settings before any work, resolving a relative `liberty` path against the
/// spec's folder; an error names the field and says what is wrong.
fn check_hardware(h: &mut HardwareEntry, base: &Path) -> Result<(), (&'static str, String)> {
    if !(h.clock_mhz.is_finite() && h.clock_mhz > 0.0) {
        return Err((
            "clock_mhz",
            format!("{} is not a clock frequency in MHz (> 0)", h.clock_mhz),
        ));
    }
    if let Some(units) = &h.units {
        check_units(units).map_err(|m| ("units", m))?;
    }
    if let Some(lib) = &h.liberty {
        let lib = base.join(lib);
        if !lib.is_file() {
            return Err((
                "liberty",
                format!(
                    "{} is not a file (a Liberty library given by path)",
                    lib.display()
                ),
            ));
        }
        h.liberty = Some(lib);
    }
    h.memory.check().map_err(|e| ("memory", e.to_string()))
}

/// Checks that every name is a unit of the hardware flow's catalog, listing the known ones.
fn check_units(names: &[String]) -> Result<(), String> {
    let catalog = qbench_hw::units::catalog();
    if names.is_empty() {
        return Err("lists no unit (leave it out to run every unit)".into());
    }
    match names.iter().find(|n| catalog.iter().all(|u| &u.name != *n)) {
        Some(bad) => Err(format!(
            "no unit `{bad}`; units: {}",
            catalog
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(()),
    }
}

/// Expands a method entry's `grid:` mapping (key -> list of values) into the cartesian product of
/// configs, in the order the keys and values are written.
fn expand_grid(entry: &serde_yaml_ng::Value) -> Result<Vec<serde_yaml_ng::Value>, String> {
    let serde_yaml_ng::Value::Mapping(map) = entry else {
        return Err("a method entry must be a mapping with a `method:` key".into());
    };
    let mut base = map.clone();
    let Some(grid) = base.remove("grid") else {
        return Ok(vec![entry.clone()]);
    };
    let serde_yaml_ng::Value::Mapping(grid) = grid else {
        return Err("`grid` must map option names to lists of values".into());
    };
    let mut configs = vec![base];
    for (key, values) in grid {
        let serde_yaml_ng::Value::Sequence(values) = values else {
            return Err(format!(
                "`grid.{}` must be a list of values",
                serde_yaml_ng::to_string(&key).unwrap_or_default().trim()
            ));
        };
        if values.is_empty() {
            return Err("a `grid` list must not be empty".into());
        }
        if configs[0].contains_key(&key) {
            return Err(format!(
                "`{}` is given both as an option and in `grid`",
                serde_yaml_ng::to_string(&key).unwrap_or_default().trim()
            ));
        }
        let mut next = Vec::with_capacity(configs.len() * values.len());
        for c in &configs {
            for v in &values {
                let mut c = c.clone();
                c.insert(key.clone(), v.clone());
                next.push(c);
            }
        }
        configs = next;
    }
    Ok(configs
        .into_iter()
        .map(serde_yaml_ng::Value::Mapping)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = "name: t\nmodels:\n  - {model: cnn, epochs: 1}\nmethods:\n  - {method: int8}\n  - method: djq\n    grid: {weight_bits: [8, 4], activation_bits: [8, 4]}\nquick: {epochs: 1, methods: [1]}\n";

    #[test]
    fn grid_expands_to_the_cartesian_product_in_order() {
        let spec = ExperimentSpec::from_text(SPEC, "t.yaml", false).unwrap();
        let bits: Vec<(String, String)> = spec
            .methods
            .iter()
            .map(|m| {
                let get = |k: &str| {
                    m.config
                        .options()
                        .get(k)
                        .map(|v| v.to_string())
                        .unwrap_or_default()
                };
                (get("weight_bits"), get("activation_bits"))
            })
            .collect();
        assert_eq!(bits.len(), 5);
        assert_eq!(bits[1], ("8".into(), "8".into()));
        assert_eq!(bits[2], ("8".into(), "4".into()));
        assert_eq!(bits[4], ("4".into(), "4".into()));
        assert_eq!(spec.methods[3].line, 6);
    }

    #[test]
    fn quick_keeps_only_the_listed_entries() {
        let spec = ExperimentSpec::from_text(SPEC, "t.yaml", true).unwrap();
        assert_eq!(spec.methods.len(), 4);
        assert!(spec.methods.iter().all(|m| m.config.name() == "djq"));
    }

    #[test]
    fn a_model_runs_only_its_listed_entries_and_quick_can_drop_models() {
        let text = SPEC
            .replace(
                "  - {model: cnn, epochs: 1}\n",
                "  - {model: cnn, epochs: 1}\n  - {model: vgg7, epochs: 1, methods: [0]}\n",
            )
            .replace("seeds: [0]", "")
            .replace("name: t\n", "name: t\nseeds: [0, 1]\n");
        let spec = ExperimentSpec::from_text(&text, "t.yaml", false).unwrap();
        let grid = crate::experiment::runner::grid(&spec);
        // Per seed: cnn runs all 5 configs, vgg7 only entry 0 (int8).
        assert_eq!(grid.len(), 2 * (5 + 1));
        assert_eq!(
            &grid[..6],
            &[(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (1, 0)]
        );
        assert_eq!(grid[6], (2, 0));

        let quick = text.replace("quick: {", "quick: {models: [1], ");
        let spec = ExperimentSpec::from_text(&quick, "t.yaml", true).unwrap();
        assert_eq!(spec.models.len(), 1);
        assert_eq!(spec.models[0].model, "vgg7");

        let bad = text.replace("methods: [0]}", "methods: [2]}");
        let err = ExperimentSpec::from_text(&bad, "t.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 5") && err.contains("models[1].methods"),
            "{err}"
        );
        let bad = quick.replace("models: [1]", "models: [2]");
        let err = ExperimentSpec::from_text(&bad, "t.yaml", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("quick.models"), "{err}");
    }

    #[test]
    fn errors_name_the_line_and_the_field() {
        let bad_option = SPEC.replace("grid: {weight_bits: [8, 4]", "grid: {weight_bits: [8, 9]");
        let err = ExperimentSpec::from_text(&bad_option, "t.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 6") && err.contains("weight_bits"),
            "{err}"
        );

        let unknown_key = SPEC.replace("epochs: 1}", "epochz: 1}");
        let err = ExperimentSpec::from_text(&unknown_key, "t.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("epochz") && err.contains('3'), "{err}");

        let unknown_model = SPEC.replace("model: cnn", "model: vgg99");
        let err = ExperimentSpec::from_text(&unknown_model, "t.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("vgg99"), "{err}");

        let bad_quick = SPEC.replace("methods: [1]", "methods: [7]");
        let err = ExperimentSpec::from_text(&bad_quick, "t.yaml", true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 8") && err.contains("quick.methods"),
            "{err}"
        );
    }

    #[test]
    fn hardware_settings_are_checked_with_their_line_before_any_work() {
        let with_hw = |hw: &str| format!("{SPEC}hardware: {hw}\n");
        let line = SPEC.lines().count() + 1;
        for (hw, field, says) in [
            (
                "{units: [no_such_unit]}",
                "hardware.units",
                "no unit `no_such_unit`",
            ),
            ("{units: []}", "hardware.units", "lists no unit"),
            ("{clock_mhz: -5}", "hardware.clock_mhz", "-5"),
            ("{clock_mhz: .nan}", "hardware.clock_mhz", "NaN"),
            (
                "{liberty: /no/such/osu.lib}",
                "hardware.liberty",
                "/no/such/osu.lib",
            ),
        ] {
            let err = ExperimentSpec::from_text(&with_hw(hw), "t.yaml", false)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("t.yaml: line {line}: `{field}`")) && err.contains(says),
                "{hw}: {err}"
            );
        }
        let quick_units = SPEC.replace("methods: [1]}", "methods: [1], units: [mac_int9]}");
        let err = ExperimentSpec::from_text(&quick_units, "t.yaml", true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 8: `quick.units`") && err.contains("mac_int9"),
            "{err}"
        );
        // A real library file is accepted, relative to the spec's folder.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("my.lib"), "library (x) {}").unwrap();
        let spec_path = dir.path().join("s.yaml");
        std::fs::write(&spec_path, with_hw("{liberty: my.lib, clock_mhz: 50}")).unwrap();
        let spec = ExperimentSpec::from_path(&spec_path, false).unwrap();
        assert_eq!(spec.hardware.liberty, Some(dir.path().join("my.lib")));
        assert_eq!(spec.hardware.clock_mhz, 50.0);
    }

    #[test]
    fn two_configs_with_one_label_are_an_error_naming_both_lines() {
        // Different configs (the calibration differs) that the tables would show as one row.
        let text = "name: t\nmodels:\n  - {model: cnn}\nmethods:\n  - {method: int8}\n  \
                    - {method: int8, calibration_images: 100}\n";
        // (int8's label names per-channel and fine-tuning, not the calibration budget.)
        let err = ExperimentSpec::from_text(text, "t.yaml", false).unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("line 6 (methods[1])") && err.contains("methods[0] (line 5)"),
            "{err}"
        );
    }

    #[test]
    fn an_invalid_option_names_its_spec_line_and_key() {
        let text = "name: t\nmodels:\n  - {model: cnn}\nmethods:\n  - {method: int8}\n  \
                    - {method: linear, bits: 9}\n";
        let err = ExperimentSpec::from_text(text, "t.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("t.yaml: line 6 (methods[1])") && err.contains("key `bits`"),
            "{err}"
        );
        let text = text.replace("bits: 9", "bitz: 4");
        let err = ExperimentSpec::from_text(&text, "t.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 6") && err.contains("bitz"), "{err}");
    }

    #[test]
    fn a_config_written_twice_is_an_error_even_with_its_defaults_spelled_out() {
        let bits = qbench_methods::method::linear::LinearOptions::default().bits;
        let text = format!(
            "name: t\nmodels:\n  - {{model: cnn}}\nmethods:\n  - {{method: linear}}\n  \
             - {{method: linear, bits: {bits}}}\n"
        );
        let err = ExperimentSpec::from_text(&text, "t.yaml", false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 6 (methods[1])") && err.contains("methods[0] (line 5)"),
            "{err}"
        );
        // Different values are different configs.
        let other = text.replace(&format!("bits: {bits}"), "bits: 3");
        assert_eq!(
            ExperimentSpec::from_text(&other, "t.yaml", false)
                .unwrap()
                .methods
                .len(),
            2
        );
    }

    #[test]
    fn the_detection_suites_run_every_method_family_on_the_detector() {
        for (text, dataset) in [
            (include_str!("../../suites/detection.yaml"), "kitti-synth"),
            (include_str!("../../suites/kitti.yaml"), "kitti"),
        ] {
            let spec = ExperimentSpec::from_text(text, "d", false).unwrap();
            assert_eq!(spec.dataset, dataset);
            assert_eq!(spec.models[0].model, "detnet");
            let mut families: Vec<String> = spec
                .methods
                .iter()
                .map(|m| m.config.name().to_string())
                .collect();
            families.dedup();
            assert_eq!(families, ["int8", "djq", "tnt", "qnn", "bnn"]);
            let labels: Vec<String> = spec
                .methods
                .iter()
                .map(|m| m.config.method().label())
                .collect();
            for want in [
                "DJQ W8A8 unified",
                "DJQ W8A8 per-op",
                "DJQ W4A4 unified",
                "DJQ W4A4 per-op",
            ] {
                assert!(
                    labels.iter().any(|l| l == want),
                    "{want} missing from {labels:?}"
                );
            }
        }
    }

    #[test]
    fn the_paper_suite_runs_three_seeds_and_the_deeper_model_with_djq_both_ways() {
        let text = include_str!("../../suites/paper.yaml");
        let spec = ExperimentSpec::from_text(text, "p", false).unwrap();
        assert_eq!(spec.seeds, [0, 1, 2]);
        let names: Vec<&str> = spec.models.iter().map(|m| m.model.as_str()).collect();
        assert_eq!(names, ["cnn", "vgg7"]);
        let deep: Vec<String> = crate::experiment::runner::grid(&spec)
            .into_iter()
            .filter(|&(k, _)| k == 1)
            .map(|(_, m)| spec.methods[m].config.method().label())
            .collect();
        for label in [
            "int8 W8A8",
            "DJQ W8A8 unified",
            "DJQ W8A8 per-op",
            "QNN W2A2",
        ] {
            assert!(deep.iter().any(|l| l == label), "{label} not in {deep:?}");
        }
        assert!(deep.iter().any(|l| l.starts_with("TNT")), "{deep:?}");
        let quick = ExperimentSpec::from_text(text, "p", true).unwrap();
        assert_eq!((quick.seeds.len(), quick.models.len()), (1, 1));
    }

    #[test]
    fn the_mobilenet_suite_runs_every_method_on_mobilenet_small() {
        let text = include_str!("../../suites/mobilenet.yaml");
        let spec = ExperimentSpec::from_text(text, "mobilenet.yaml", false).unwrap();
        assert_eq!(spec.models.len(), 1);
        assert_eq!(spec.models[0].model, "mobilenet_small");
        let methods: std::collections::BTreeSet<&str> =
            spec.methods.iter().map(|m| m.config.name()).collect();
        // `onnx` imports a model quantized elsewhere: nothing to run on the zoo's model.
        let registered: std::collections::BTreeSet<&str> =
            qbench_methods::method::registry::METHODS
                .iter()
                .map(|(name, _)| *name)
                .filter(|&name| name != "onnx")
                .collect();
        assert_eq!(methods, registered, "one row or more per registered method");
        let quick = ExperimentSpec::from_text(text, "mobilenet.yaml", true).unwrap();
        assert!(quick.methods.len() < spec.methods.len());
    }

    #[test]
    fn the_imagenet_suite_parses_and_resolves_weights_beside_it() {
        let text = include_str!("../../suites/imagenet-resnet18.yaml");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("imagenet-resnet18.yaml");
        std::fs::write(&path, text).unwrap();
        let err = ExperimentSpec::from_path(&path, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("models[0].weights") && err.contains("resnet18.safetensors"),
            "{err}"
        );
        std::fs::write(dir.path().join("resnet18.safetensors"), b"").unwrap();
        let spec = ExperimentSpec::from_path(&path, false).unwrap();
        assert_eq!(spec.methods.len(), 7);
        let model = &spec.models[0];
        assert_eq!(model.calibration_from_test, Some(0.1));
        assert_eq!(
            model.weights.as_deref(),
            Some(dir.path().join("resnet18.safetensors").as_path())
        );
        // A stored copy of the text (a run folder's spec.yaml) resolves the same file through the
        // recorded base folder, whatever the current folder is; without it, the file is missing.
        let stored = ExperimentSpec::from_stored(text, "stored", false, &spec.base).unwrap();
        assert_eq!(stored.models[0].weights, model.weights);
        assert!(ExperimentSpec::from_text(text, "stored", false).is_err());
        assert_eq!(
            ExperimentSpec::from_path(&path, true)
                .unwrap()
                .methods
                .len(),
            2
        );
    }

    /// Mutated specs (bit flips, truncation, deleted and duplicated lines, huge or negative
    /// numbers) give a spec or an error naming the file, never a panic.
    /// `QBENCH_FUZZ_CASES` sets the number of cases (default 256).
    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        const SUITES: [&str; 4] = [
            include_str!("../../suites/paper.yaml"),
            include_str!("../../suites/mobilenet.yaml"),
            include_str!("../../suites/detection.yaml"),
            include_str!("../../suites/kitti.yaml"),
        ];

        fn cases() -> u32 {
            std::env::var("QBENCH_FUZZ_CASES")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(256)
        }

        /// One mutation of `text`, chosen by `kind`, at a position chosen by `at`.
        fn mutate(text: &str, kind: u8, at: usize, bit: u8) -> String {
            let lines: Vec<&str> = text.lines().collect();
            let line = at % lines.len();
            match kind % 5 {
                0 => {
                    let mut bytes = text.as_bytes().to_vec();
                    let i = at % bytes.len();
                    bytes[i] ^= 1 << (bit % 8);
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                1 => text[..text.floor_char_boundary(at % text.len())].to_string(),
                2 => {
                    let mut l = lines.clone();
                    l.remove(line);
                    l.join("\n")
                }
                3 => {
                    let mut l = lines.clone();
                    l.insert(line, lines[line]);
                    l.join("\n")
                }
                _ => {
                    // Every number on the line becomes a huge, negative or odd one.
                    let odd = [
                        "18446744073709551616",
                        "-1",
                        "1e308",
                        ".nan",
                        "0",
                        "99999999999",
                    ];
                    let with = odd[usize::from(bit) % odd.len()];
                    let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
                    let mut out = String::new();
                    let mut digits = false;
                    for c in l[line].chars() {
                        if c.is_ascii_digit() {
                            if !digits {
                                out.push_str(with);
                            }
                            digits = true;
                        } else {
                            digits = false;
                            out.push(c);
                        }
                    }
                    l[line] = out;
                    l.join("\n")
                }
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(cases()))]
            #[test]
            fn a_mutated_spec_parses_or_names_the_file(
                suite in 0..SUITES.len(), kind in 0u8..5, at in 0usize..1 << 20, bit in 0u8..8,
                quick in any::<bool>(),
            ) {
                let text = mutate(SUITES[suite], kind, at, bit);
                match ExperimentSpec::from_text(&text, "fuzz.yaml", quick) {
                    Ok(spec) => prop_assert!(!spec.methods.is_empty() && !spec.models.is_empty()),
                    Err(e) => prop_assert!(e.to_string().contains("fuzz.yaml"), "{e}"),
                }
            }
        }
    }
}
