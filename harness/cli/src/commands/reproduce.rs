//! `qbench reproduce`: the paper suite on the default data, end to end: train (or reuse) the
//! default float model on Fashion-MNIST, quantize it with every method of the suite
//! (`harness/cli/suites/paper.yaml`), evaluate every integer graph with the engine, and write the
//! summary table under `results/reproduce/`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use qbench_datasets::DEFAULT_DATASET;
use qbench_methods::method::config::RawMethodConfig;
use qbench_methods::train::TrainConfig;
use serde::Serialize;

use crate::float_model::{self, FloatSpec};
use crate::method_run::run_method;
use crate::progress::TrainBars;
use crate::results;

/// Options of `qbench reproduce`.
#[derive(Args)]
pub struct ReproduceArgs {
    /// A smaller budget (one epoch on 12,000 images) for smoke tests; numbers are lower.
    #[arg(long)]
    pub quick: bool,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// The suite shipped with qbench.
const PAPER_SUITE: &str = include_str!("../../suites/paper.yaml");

/// One row of the summary table.
#[derive(Serialize)]
struct Row {
    /// Method label (`float` for the float model).
    method: String,
    model: String,
    dataset: String,
    /// Integer-engine test accuracy (the float model's own for `float`).
    test_accuracy: f64,
    /// Fake-quant test accuracy (float: same as test accuracy).
    fake_accuracy: f64,
    /// Integer/fake-quant agreement on the predicted class.
    agreement: f64,
    /// Quantization operations per inference.
    quant_ops: u64,
    /// Weight memory in bits.
    weight_bits: u64,
    /// sha256 of the weights (float) or of the integer graph file.
    sha256: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    methods: Vec<serde_yaml_ng::Value>,
    quick: Vec<usize>,
}

/// The method configs of the shipped suite (only the `quick` entries with `quick`).
fn suite_configs(quick: bool) -> Result<Vec<RawMethodConfig>> {
    let suite: Suite =
        serde_yaml_ng::from_str(PAPER_SUITE).context("harness/cli/suites/paper.yaml")?;
    if let Some(bad) = suite.quick.iter().find(|&&i| i >= suite.methods.len()) {
        anyhow::bail!(
            "harness/cli/suites/paper.yaml: quick entry {bad} is not an index of `methods`"
        );
    }
    suite
        .methods
        .iter()
        .enumerate()
        .filter(|(i, _)| !quick || suite.quick.contains(i))
        .map(|(i, v)| {
            let text = serde_yaml_ng::to_string(v)?;
            Ok(RawMethodConfig::from_yaml(
                &text,
                &format!("suites/paper.yaml methods[{i}]"),
            )?)
        })
        .collect()
}

/// The suite's specification of the default float model.
pub fn default_float_spec(quick: bool) -> FloatSpec {
    let mut train = TrainConfig::default();
    let mut train_limit = None;
    if quick {
        train.epochs = 1;
        train_limit = Some(12_000);
    }
    FloatSpec {
        model: "cnn".into(),
        dataset: DEFAULT_DATASET.into(),
        train,
        val_fraction: 0.1,
        train_limit,
    }
}

/// Runs the suite and writes `summary.json` and `summary.md`.
pub fn run(args: ReproduceArgs) -> Result<()> {
    let root = results::root(args.results.as_deref());
    let spec = default_float_spec(args.quick);
    let data = float_model::load_data(&spec)?;
    eprintln!(
        "float {} on {} ({} training images)",
        spec.model,
        spec.dataset,
        data.train_idx.len()
    );
    let mut bars = TrainBars::new(spec.train.epochs);
    let model = float_model::ensure_trained(&root, &spec, &data, &mut bars)?;
    let r = &model.record;
    let float_weight_bits = model
        .params
        .vars
        .values()
        .map(|v| v.as_tensor().elem_count() as u64 * 32)
        .sum();
    let mut rows = vec![Row {
        method: "float".into(),
        model: spec.model.clone(),
        dataset: spec.dataset.clone(),
        test_accuracy: r.test_accuracy,
        fake_accuracy: r.test_accuracy,
        agreement: 1.0,
        quant_ops: 0,
        weight_bits: float_weight_bits,
        sha256: r.weights_sha256.clone(),
    }];
    let configs = suite_configs(args.quick)?;
    for (i, config) in configs.iter().enumerate() {
        eprintln!("[{}/{}] {}", i + 1, configs.len(), config.method);
        let m = run_method(&root, &model, &data, config, spec.train.seed)?;
        rows.push(Row {
            method: m.report.label.clone(),
            model: spec.model.clone(),
            dataset: spec.dataset.clone(),
            test_accuracy: m.int_accuracy,
            fake_accuracy: m.fake_accuracy,
            agreement: m.agreement,
            quant_ops: m.quant_ops,
            weight_bits: m.weight_bits,
            sha256: m.graph_sha256,
        });
    }
    let out = root.join(if args.quick {
        "reproduce-quick"
    } else {
        "reproduce"
    });
    results::write_json(&out.join("summary.json"), &rows)?;
    let mut md = format!(
        "Float model `{}` on {}: validation {:.2}%. Accuracy is top-1 on the test split, from the integer engine.\n\n",
        spec.model,
        spec.dataset,
        100.0 * r.val_accuracy
    );
    md.push_str("| method | accuracy | fake-quant | agreement | quant ops / image | weight bits |\n|---|---:|---:|---:|---:|---:|\n");
    for row in &rows {
        md.push_str(&format!(
            "| {} | {:.2}% | {:.2}% | {:.2}% | {} | {} |\n",
            row.method,
            100.0 * row.test_accuracy,
            100.0 * row.fake_accuracy,
            100.0 * row.agreement,
            row.quant_ops,
            row.weight_bits
        ));
    }
    results::write_text(&out.join("summary.md"), &md)?;
    print!("{md}");
    println!("\nwritten to {}", out.display());
    Ok(())
}
