//! `qbench reproduce`: the paper suite on the default data, end to end. At this stage of the
//! project the suite is the float baseline: train the default model on Fashion-MNIST, measure its
//! test accuracy, and write a summary under `results/reproduce/`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use qbench_datasets::DEFAULT_DATASET;
use qbench_methods::train::TrainConfig;
use serde::Serialize;

use crate::float_model::{self, FloatSpec};
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

/// One row of the summary table.
#[derive(Serialize)]
struct Row {
    method: String,
    model: String,
    dataset: String,
    test_accuracy: f64,
    val_accuracy: f64,
    weights_sha256: String,
    train_seconds: f64,
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
    let rows = vec![Row {
        method: "float".into(),
        model: spec.model.clone(),
        dataset: spec.dataset.clone(),
        test_accuracy: r.test_accuracy,
        val_accuracy: r.val_accuracy,
        weights_sha256: r.weights_sha256.clone(),
        train_seconds: r.train_seconds,
    }];
    let out = root.join(if args.quick {
        "reproduce-quick"
    } else {
        "reproduce"
    });
    results::write_json(&out.join("summary.json"), &rows)?;
    let mut md = String::from(
        "| method | model | dataset | test accuracy | validation accuracy |\n|---|---|---|---:|---:|\n",
    );
    for row in &rows {
        md.push_str(&format!(
            "| {} | {} | {} | {:.2}% | {:.2}% |\n",
            row.method,
            row.model,
            row.dataset,
            100.0 * row.test_accuracy,
            100.0 * row.val_accuracy
        ));
    }
    results::write_text(&out.join("summary.md"), &md)?;
    print!("{md}");
    println!("\nwritten to {}", out.display());
    Ok(())
}
