//! `qbench train`: train (or resume, or reuse) a float model.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use qbench_datasets::DEFAULT_DATASET;
use qbench_methods::optim::AdamWConfig;
use qbench_methods::train::TrainConfig;

use crate::float_model::{self, FloatSpec};
use crate::progress::TrainBars;
use crate::results;

/// The fraction of the training split `qbench train` holds out for validation by default.
pub const DEFAULT_VAL_FRACTION: f64 = 0.1;

/// Options of `qbench train`.
#[derive(Args)]
pub struct TrainArgs {
    /// Architecture (see `qbench models`).
    #[arg(long, default_value = "cnn")]
    pub model: String,
    /// Dataset (see `qbench data list`).
    #[arg(long, default_value = DEFAULT_DATASET)]
    pub dataset: String,
    /// Passes over the training images.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak learning rate of AdamW (cosine decay to zero).
    #[arg(long, default_value_t = AdamWConfig::default().lr)]
    pub lr: f64,
    /// Decoupled weight decay of AdamW.
    #[arg(long, default_value_t = AdamWConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// Seed of the initial weights, the shuffles and the validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of the training split held out for validation.
    #[arg(long, default_value_t = DEFAULT_VAL_FRACTION)]
    pub val_fraction: f64,
    /// Train on only this many images (a smaller budget).
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
}

impl TrainArgs {
    /// The float-model spec these options describe.
    pub fn spec(&self) -> Result<FloatSpec> {
        if !(0.0..1.0).contains(&self.val_fraction) {
            anyhow::bail!(
                "--val-fraction must be in [0, 1), got {}",
                self.val_fraction
            );
        }
        let optimizer = AdamWConfig {
            lr: self.lr,
            weight_decay: self.weight_decay,
            ..AdamWConfig::default()
        };
        let train = TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            optimizer,
        };
        train.validate()?;
        Ok(FloatSpec {
            model: self.model.clone(),
            dataset: self.dataset.clone(),
            train,
            val_fraction: self.val_fraction,
            train_limit: self.train_limit,
            ..FloatSpec::default()
        })
    }
}

/// Trains the model the options describe, or reports the cached one.
pub fn run(args: TrainArgs) -> Result<()> {
    let spec = args.spec()?;
    let root = results::root(args.results.as_deref());
    let data = float_model::load_data(&spec)?;
    let mut bars = TrainBars::new(spec.train.epochs);
    let model = float_model::ensure_trained(&root, &spec, &data, &mut bars)?;
    let r = &model.record;
    let how = if model.cached {
        "already trained (cached)"
    } else {
        "trained"
    };
    println!("{} on {}: {how}", spec.model, spec.dataset);
    println!(
        "  weights      {}/model.safetensors (sha256 {})",
        model.dir.display(),
        r.weights_sha256
    );
    println!("  validation   {:.2}%", 100.0 * r.val_accuracy);
    println!("  test         {:.2}%", 100.0 * r.test_accuracy);
    if !model.cached {
        println!(
            "  time         {:.1} s ({:.1} s per epoch)",
            r.train_seconds, r.seconds_per_epoch
        );
    }
    Ok(())
}
