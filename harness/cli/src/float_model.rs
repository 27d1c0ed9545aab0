//! Trained float models as cached artefacts: a model is identified by the hash of everything that
//! determines its weights (architecture, training settings, dataset files, qbench version), kept
//! under `results/models/`, trained only when absent, and resumed if a run was interrupted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use qbench_datasets::{ImageSet, Registry, Split, train_val_split, verify};
use qbench_methods::checkpoint::sha256_hex;
use qbench_methods::model::arch::Architecture;
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{self, TrainConfig, TrainObserver};
use serde::{Deserialize, Serialize};

use crate::results;

/// Everything that determines a float model's weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FloatSpec {
    /// Architecture name (see `qbench models`).
    pub model: String,
    /// Dataset name (see `qbench data list`).
    pub dataset: String,
    /// Training settings.
    pub train: TrainConfig,
    /// Fraction of the training split held out for validation (every tuning choice uses it).
    pub val_fraction: f64,
    /// Use only the first N shuffled training images (a smaller budget), or all of them.
    pub train_limit: Option<usize>,
}

/// What is known about a trained float model; written as `record.json` beside its weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FloatRecord {
    /// The spec it was trained from.
    pub spec: FloatSpec,
    /// sha256 over the dataset files' sha256 (as verified on disk).
    pub dataset_sha256: String,
    /// sha256 of `model.safetensors`.
    pub weights_sha256: String,
    /// Images used for training and validation.
    pub train_images: usize,
    /// Images held out for validation.
    pub val_images: usize,
    /// Float accuracy on the validation images.
    pub val_accuracy: f64,
    /// Float accuracy on the test split.
    pub test_accuracy: f64,
    /// Wall-clock seconds of the training that produced it (0 when loaded from the cache).
    pub train_seconds: f64,
    /// Seconds per epoch, measured over the epochs this process ran.
    pub seconds_per_epoch: f64,
    /// qbench version that trained it.
    pub qbench_version: String,
}

/// A trained model ready for quantization.
pub struct FloatModel {
    /// Its architecture.
    pub arch: Architecture,
    /// Its parameters.
    pub params: Params,
    /// Its record.
    pub record: FloatRecord,
    /// Its folder.
    pub dir: PathBuf,
    /// True when it came from the cache rather than being trained now.
    pub cached: bool,
}

/// The data a float model was trained and is evaluated on.
pub struct Data {
    /// The training split (train and validation images).
    pub train: ImageSet,
    /// The test split.
    pub test: ImageSet,
    /// Indices into `train` used for training.
    pub train_idx: Vec<usize>,
    /// Indices into `train` held out for validation.
    pub val_idx: Vec<usize>,
    /// sha256 over the dataset files' sha256.
    pub sha256: String,
}

/// Loads the dataset, verifies its files, and splits it as `spec` says.
pub fn load_data(spec: &FloatSpec) -> Result<Data> {
    let entry = Registry::embedded().get(&spec.dataset)?;
    let checks = verify(entry)?;
    let mut hashes = Vec::new();
    for check in &checks {
        if !check.is_ok()
            && !matches!(
                check.status,
                qbench_datasets::FileStatus::NoPublishedChecksum { .. }
            )
        {
            bail!("dataset {} does not verify: {check}", spec.dataset);
        }
        hashes.push(format!("{}:{}", check.role, check_sha(check)));
    }
    let train = qbench_datasets::load(entry, Split::Train)?;
    let test = qbench_datasets::load(entry, Split::Test)?;
    let (mut train_idx, val_idx) = train_val_split(train.len(), spec.val_fraction, spec.train.seed);
    if let Some(limit) = spec.train_limit {
        train_idx.truncate(limit);
    }
    Ok(Data {
        train,
        test,
        train_idx,
        val_idx,
        sha256: sha256_hex(hashes.join("\n").as_bytes()),
    })
}

fn check_sha(check: &qbench_datasets::FileCheck) -> &str {
    use qbench_datasets::FileStatus::*;
    match &check.status {
        Ok { sha256, .. } | NoPublishedChecksum { sha256 } | Mismatch { found: sha256, .. } => {
            sha256
        }
        Missing => "missing",
    }
}

/// The architecture a spec names, sized for the dataset.
pub fn architecture(spec: &FloatSpec, data: &Data) -> Result<Architecture> {
    let input = [data.train.channels, data.train.height, data.train.width];
    let arch = zoo::build(&spec.model, input, data.train.num_classes).with_context(|| {
        let known: Vec<&str> = zoo::ARCHITECTURES.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown model `{}`; known models: {}",
            spec.model,
            known.join(", ")
        )
    })?;
    arch.validate().with_context(|| {
        format!(
            "model `{}` does not fit dataset `{}`",
            spec.model, spec.dataset
        )
    })?;
    Ok(arch)
}

/// The folder that holds the model trained from `spec` on data with hash `dataset_sha256`.
pub fn model_dir(results_root: &Path, spec: &FloatSpec, dataset_sha256: &str) -> PathBuf {
    let key = serde_json::to_string(&(spec, dataset_sha256, env!("CARGO_PKG_VERSION")))
        .expect("spec serialises");
    let hash = sha256_hex(key.as_bytes());
    results_root
        .join("models")
        .join(format!("{}-{}-{}", spec.model, spec.dataset, &hash[..12]))
}

/// Returns the model trained from `spec`, training (or resuming) it only if it is not cached.
pub fn ensure_trained(
    results_root: &Path,
    spec: &FloatSpec,
    data: &Data,
    observer: &mut dyn TrainObserver,
) -> Result<FloatModel> {
    if let Some(model) = load_trained(results_root, spec, data)? {
        return Ok(model);
    }
    let arch = architecture(spec, data)?;
    let dir = model_dir(results_root, spec, &data.sha256);
    let weights = dir.join("model.safetensors");
    let record_path = dir.join("record.json");
    let start = Instant::now();
    let trained = train::train(
        &arch,
        &data.train,
        &data.train_idx,
        &data.val_idx,
        &spec.train,
        Some(&dir),
        observer,
    )
    .with_context(|| {
        format!(
            "training {} on {} (checkpoints in {})",
            spec.model,
            spec.dataset,
            dir.display()
        )
    })?;
    let train_seconds = start.elapsed().as_secs_f64();
    let mut params = trained.params;
    let weights_sha256 = params.save(&weights)?;
    let all_test: Vec<usize> = (0..data.test.len()).collect();
    let test_accuracy = train::accuracy(&arch, &mut params, &data.test, &all_test, 500)?;
    let record = FloatRecord {
        spec: spec.clone(),
        dataset_sha256: data.sha256.clone(),
        weights_sha256,
        train_images: data.train_idx.len(),
        val_images: data.val_idx.len(),
        val_accuracy: trained.val_accuracy.unwrap_or(f64::NAN),
        test_accuracy,
        train_seconds,
        seconds_per_epoch: train_seconds / trained.epochs_run.max(1) as f64,
        qbench_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    results::write_json(&record_path, &record)?;
    Ok(FloatModel {
        arch,
        params,
        record,
        dir,
        cached: false,
    })
}

/// The model trained from `spec`, if it is already in the cache; never trains. A Slurm cell task
/// uses this so that only the float task ever writes a model's folder.
pub fn load_trained(
    results_root: &Path,
    spec: &FloatSpec,
    data: &Data,
) -> Result<Option<FloatModel>> {
    let arch = architecture(spec, data)?;
    let dir = model_dir(results_root, spec, &data.sha256);
    let weights = dir.join("model.safetensors");
    let Some(record) = cached_record(&dir.join("record.json"), &weights)? else {
        return Ok(None);
    };
    let mut params = Params::init(&arch, spec.train.seed)?;
    params.load(&weights)?;
    Ok(Some(FloatModel {
        arch,
        params,
        record,
        dir,
        cached: true,
    }))
}

/// A finished model's record, if its weights are present and match the recorded hash.
fn cached_record(record_path: &Path, weights: &Path) -> Result<Option<FloatRecord>> {
    if !record_path.exists() || !weights.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(record_path)
        .with_context(|| format!("reading {}", record_path.display()))?;
    let record: FloatRecord = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid model record", record_path.display()))?;
    let actual = qbench_datasets::sha256_file(weights)?;
    if actual != record.weights_sha256 {
        bail!(
            "{} has sha256 {actual}, but its record says {}; delete the folder {} to retrain",
            weights.display(),
            record.weights_sha256,
            record_path.parent().unwrap_or(Path::new(".")).display()
        );
    }
    Ok(Some(record))
}
