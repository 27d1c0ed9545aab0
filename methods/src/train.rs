//! Float training: seeded, checkpointed every epoch (parameters, batch-norm statistics and AdamW
//! state), resumable, and observable through [`TrainObserver`] so the CLI can draw progress bars.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Tensor;
use qbench_datasets::{ImageSet, shuffled_indices};
use qbench_io::{IoError, sha256_hex, write_atomic};
use serde::{Deserialize, Serialize};

use crate::data;
use crate::error::{MethodError, Result};
use crate::model::arch::Architecture;
use crate::model::forward::{Mode, forward};
use crate::model::params::Params;
use crate::objective::Objective;
use crate::optim::{AdamW, AdamWConfig};

/// What a training run does. Everything that changes the resulting weights is in here, so its
/// hash identifies a checkpoint together with the architecture and the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Images per optimiser step.
    pub batch_size: usize,
    /// Seed of the initial weights and of every epoch's shuffle.
    pub seed: u64,
    /// Optimiser settings; the learning rate follows a cosine decay to zero over all steps.
    pub optimizer: AdamWConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 3,
            batch_size: 128,
            seed: 0,
            optimizer: AdamWConfig::default(),
        }
    }
}

impl TrainConfig {
    /// Rejects settings that cannot train.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(MethodError::Config(m.to_string()));
        if self.epochs == 0 {
            return bad("epochs must be at least 1");
        }
        if self.batch_size < 2 {
            return bad("batch_size must be at least 2 (batch norm needs two samples)");
        }
        if !(self.optimizer.lr > 0.0 && self.optimizer.lr.is_finite()) {
            return bad("optimizer.lr must be a positive number");
        }
        Ok(())
    }

    /// Learning rate at optimiser step `step` (0-based) of `total`: cosine decay from the peak.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        cosine_lr(self.optimizer.lr, step as f64 / total.max(1) as f64)
    }
}

/// Cosine decay of the learning rate from `peak` at `progress` 0 to 0 at `progress` 1: the one
/// schedule of every training loop (float training, fine-tuning, low-bit training).
pub fn cosine_lr(peak: f64, progress: f64) -> f64 {
    peak * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// Receives progress while training runs. Every method has a default that does nothing.
pub trait TrainObserver {
    /// An epoch starts with this many batches (the first call after a resume says which epoch).
    fn epoch_start(&mut self, _epoch: usize, _batches: usize) {}
    /// A batch finished: its loss and the running accuracy of the epoch so far.
    fn batch_end(&mut self, _epoch: usize, _batch: usize, _loss: f32, _running_accuracy: f64) {}
    /// An epoch finished and was checkpointed; validation accuracy if a validation set was given.
    fn epoch_end(&mut self, _epoch: usize, _val_accuracy: Option<f64>) {}
    /// Polled between batches: returning true stops training (the last checkpoint stays intact).
    fn should_stop(&self) -> bool {
        false
    }
}

/// An observer that ignores everything.
pub struct Quiet;
impl TrainObserver for Quiet {}

/// The result of a finished training run.
pub struct Trained {
    /// Final parameters.
    pub params: Params,
    /// Validation accuracy after the last epoch, if a validation set was given.
    pub val_accuracy: Option<f64>,
    /// Epochs that this call ran (fewer than configured after a resume).
    pub epochs_run: usize,
}

const CHECKPOINT_FILE: &str = "last.safetensors";

/// Trains `arch` on `train` (the images at `train_idx`), validating on `val_idx` after every
/// epoch. With `checkpoint_dir`, the state after each epoch is written there atomically, and a
/// matching checkpoint found there is resumed from; the result is bit for bit the same as an
/// uninterrupted run.
pub fn train(
    arch: &Architecture,
    set: &ImageSet,
    train_idx: &[usize],
    val_idx: &[usize],
    config: &TrainConfig,
    checkpoint_dir: Option<&Path>,
    observer: &mut dyn TrainObserver,
) -> Result<Trained> {
    config.validate()?;
    arch.validate()?;
    let mut params = Params::init(arch, config.seed)?;
    let mut opt = AdamW::new(config.optimizer, &params.vars)?;
    let fingerprint = fingerprint(arch, config);
    let mut first_epoch = 0;
    if let Some(dir) = checkpoint_dir
        && let Some(epoch) = resume(
            &dir.join(CHECKPOINT_FILE),
            &fingerprint,
            &mut params,
            &mut opt,
        )?
    {
        first_epoch = epoch;
    }
    let batches = train_idx.len() / config.batch_size;
    if batches == 0 {
        return Err(MethodError::Config(format!(
            "batch_size {} is larger than the {} training images",
            config.batch_size,
            train_idx.len()
        )));
    }
    let total_steps = (batches * config.epochs) as u64;
    let objective = Objective::of(arch);
    let mut val_accuracy = None;
    for epoch in first_epoch..config.epochs {
        let seed = config.seed.wrapping_add(epoch as u64 + 1);
        train_epoch(observer, epoch, train_idx, config.batch_size, seed, |idx| {
            let (x, _) = data::batch(set, idx)?;
            let y = objective.targets(set, idx)?;
            let out = forward(arch, &mut params, &x, Mode::Train)?;
            let loss = objective.loss(&out, &y)?;
            let grads = loss.backward()?;
            let lr = config.lr_at(opt.step, total_steps);
            opt.step(&params.vars, &grads, lr)?;
            Ok((loss.to_scalar::<f32>()?, objective.hits(&out, &y)?))
        })?;
        val_accuracy = if val_idx.is_empty() {
            None
        } else {
            Some(accuracy(arch, &mut params, set, val_idx, 500)?)
        };
        if let Some(dir) = checkpoint_dir {
            save_state(
                &dir.join(CHECKPOINT_FILE),
                &fingerprint,
                epoch + 1,
                &params,
                &opt,
            )?;
        }
        observer.epoch_end(epoch, val_accuracy);
    }
    if val_accuracy.is_none() && !val_idx.is_empty() {
        val_accuracy = Some(accuracy(arch, &mut params, set, val_idx, 500)?);
    }
    Ok(Trained {
        params,
        val_accuracy,
        epochs_run: config.epochs - first_epoch,
    })
}

/// One epoch of mini-batch training, the loop every trainer shares: `pool` shuffled by `seed`,
/// cut into full batches of `batch_size` (the remainder waits for another epoch's order), each
/// handed to `step`, which trains on it and returns the batch's loss and its
/// [`Objective::hits`] (right answers out of how many).
/// Progress goes to `observer`, which may stop the epoch between batches.
pub fn train_epoch(
    observer: &mut dyn TrainObserver,
    epoch: usize,
    pool: &[usize],
    batch_size: usize,
    seed: u64,
    mut step: impl FnMut(&[usize]) -> Result<(f32, (usize, usize))>,
) -> Result<()> {
    let batches = pool.len() / batch_size.max(1);
    observer.epoch_start(epoch, batches);
    let order = shuffled_indices(pool.len(), seed);
    let (mut correct, mut seen) = (0usize, 0usize);
    for (b, chunk) in order.chunks_exact(batch_size.max(1)).enumerate() {
        if observer.should_stop() {
            return Err(MethodError::Interrupted);
        }
        let idx: Vec<usize> = chunk.iter().map(|&i| pool[i]).collect();
        let (loss, (right, of)) = step(&idx)?;
        correct += right;
        seen += of;
        observer.batch_end(epoch, b, loss, correct as f64 / seen.max(1) as f64);
    }
    Ok(())
}

/// The float model's (evaluation mode) share of right answers on the images at `indices`: top-1
/// accuracy for a classifier, for a detector the share of objects whose centre cell's heatmap
/// is positive for their class (a quick validation signal; its AP comes from the KITTI
/// evaluation of its decoded boxes).
pub fn accuracy(
    arch: &Architecture,
    params: &mut Params,
    set: &ImageSet,
    indices: &[usize],
    batch: usize,
) -> Result<f64> {
    let objective = Objective::of(arch);
    let (mut correct, mut seen) = (0, 0);
    for chunk in indices.chunks(batch.max(1)) {
        let (x, _) = data::batch(set, chunk)?;
        let y = objective.targets(set, chunk)?;
        let out = forward(arch, params, &x, Mode::Eval)?;
        let (right, of) = objective.hits(&out, &y)?;
        correct += right;
        seen += of;
    }
    Ok(correct as f64 / seen.max(1) as f64)
}

/// The float model's top-1 class (evaluation mode) for each image at `indices`, in order: the
/// reference an integer graph's predictions are compared with.
pub fn predictions(
    arch: &Architecture,
    params: &mut Params,
    set: &ImageSet,
    indices: &[usize],
    batch: usize,
) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(batch.max(1)) {
        let (x, _) = data::batch(set, chunk)?;
        let logits = forward(arch, params, &x, Mode::Eval)?;
        let pred = logits.argmax(1)?.to_vec1::<u32>()?;
        out.extend(pred.into_iter().map(|p| p as usize));
    }
    Ok(out)
}

/// Identifies what a checkpoint was made for, so a resume never mixes two different runs.
fn fingerprint(arch: &Architecture, config: &TrainConfig) -> String {
    let text = serde_json::to_string(&(arch, config)).expect("architecture and config serialise");
    sha256_hex(text.as_bytes())
}

fn save_state(
    path: &Path,
    fingerprint: &str,
    epochs_done: usize,
    params: &Params,
    opt: &AdamW,
) -> Result<()> {
    let mut tensors: BTreeMap<String, Tensor> = params
        .tensors()
        .into_iter()
        .map(|(k, v)| (format!("model.{k}"), v))
        .collect();
    for (k, v) in &opt.m {
        tensors.insert(format!("adam_m.{k}"), v.clone());
    }
    for (k, v) in &opt.v {
        tensors.insert(format!("adam_v.{k}"), v.clone());
    }
    let meta = std::collections::HashMap::from([
        ("fingerprint".to_string(), fingerprint.to_string()),
        ("epochs_done".to_string(), epochs_done.to_string()),
        ("adam_step".to_string(), opt.step.to_string()),
    ]);
    let bytes =
        safetensors::serialize(&tensors, Some(meta)).map_err(|e| MethodError::Checkpoint {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    Ok(write_atomic(path, &bytes)?)
}

/// Loads a training checkpoint if one exists for this run; returns the number of epochs done.
fn resume(
    path: &Path,
    fingerprint: &str,
    params: &mut Params,
    opt: &mut AdamW,
) -> Result<Option<usize>> {
    if !path.exists() {
        return Ok(None);
    }
    let bad = |reason: String| MethodError::Checkpoint {
        path: path.display().to_string(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| IoError::new("read", path, e))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    if meta.get("fingerprint").map(String::as_str) != Some(fingerprint) {
        return Err(bad(
            "it was written by a training run with another model or configuration; delete it or choose another output folder"
                .into(),
        ));
    }
    let number = |key: &str| -> Result<u64> {
        meta.get(key)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("metadata `{key}` is missing or not a number")))
    };
    let epochs_done = number("epochs_done")? as usize;
    opt.step = number("adam_step")?;
    let all = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu)
        .map_err(|e| bad(e.to_string()))?;
    let mut model = BTreeMap::new();
    for (k, v) in all {
        if let Some(name) = k.strip_prefix("model.") {
            model.insert(name.to_string(), v);
        } else if let Some(name) = k.strip_prefix("adam_m.") {
            opt.m.insert(name.to_string(), v);
        } else if let Some(name) = k.strip_prefix("adam_v.") {
            opt.v.insert(name.to_string(), v);
        } else {
            return Err(bad(format!("unexpected tensor `{k}`")));
        }
    }
    params.assign(&model, &path.display().to_string())?;
    Ok(Some(epochs_done))
}

/// Where a training run keeps its checkpoint inside `dir`.
pub fn checkpoint_path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}
