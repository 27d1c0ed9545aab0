//! `qbench bench train`: float training speed of a zoo model on the default dataset, one epoch
//! over the whole training pool, against the 60 s per epoch target of the paper suite's `cnn`.

use std::time::Instant;

use anyhow::Result;
use qbench_methods::train::{self, Quiet, TrainConfig};

use crate::float_model::{self, FloatSpec};

/// Seconds per epoch the default `cnn` must stay within on a quiet 2-core machine.
pub const TARGET_SECONDS_PER_EPOCH: f64 = 60.0;

/// Trains `model` from its seed-0 initialisation for `epochs` epochs on `dataset`'s training pool
/// (the validation part held out as in a run; no validation pass, no checkpoints, nothing
/// cached) and prints seconds per epoch, images per second and the ratio to the target.
pub fn train_speed(model: &str, dataset: &str, epochs: usize) -> Result<()> {
    let spec = FloatSpec {
        model: model.to_string(),
        dataset: dataset.to_string(),
        train: TrainConfig {
            epochs: epochs.max(1),
            ..TrainConfig::default()
        },
        val_fraction: 0.1,
        train_limit: None,
        weights_sha256: None,
        calibration_from_test: None,
        registry: None,
    };
    let data = float_model::load_data(&spec)?;
    let arch = float_model::architecture(&spec, &data)?;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "training {model} on {} images of {dataset} for {} epoch(s) (load average {})...",
        data.train_idx.len(),
        spec.train.epochs,
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let start = Instant::now();
    train::train(
        &arch,
        &data.train,
        &data.train_idx,
        &[],
        &spec.train,
        None,
        &mut Quiet,
    )?;
    let per_epoch = start.elapsed().as_secs_f64() / spec.train.epochs as f64;
    let images = (data.train_idx.len() / spec.train.batch_size * spec.train.batch_size) as f64;
    println!(
        "{model}: {per_epoch:.1} s per epoch, {:.0} images/s (batch {}); {:.2} x the \
         {TARGET_SECONDS_PER_EPOCH:.0} s target",
        images / per_epoch,
        spec.train.batch_size,
        per_epoch / TARGET_SECONDS_PER_EPOCH
    );
    Ok(())
}
