//! Trained float models as cached artefacts: a model is identified by the hash of everything that
//! determines its weights (architecture, training settings, dataset files, qbench version), kept
//! under `results/models/`, trained only when absent, and resumed if a run was interrupted.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use qbench_datasets::{Format, ImageSet, Registry, Split, train_val_split, verify};
use qbench_io::{sha256_file, sha256_hex};
use qbench_methods::model::arch::Architecture;
use qbench_methods::model::params::Params;
use qbench_methods::model::zoo;
use qbench_methods::train::{self, TrainConfig, TrainObserver};
use serde::{Deserialize, Serialize};

use crate::{detection, results};

/// Everything that determines a float model's weights.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
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
    /// Imported (not trained) weights: the sha256 of the safetensors file they came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
    /// For a dataset used without its training split (an ImageNet validation folder): the
    /// fraction of the evaluation split held out for calibration and fine-tuning (see
    /// [`load_data`]); the rest is evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration_from_test: Option<f64>,
    /// A registry file merged over the built-in one (a dataset the built-in registry lacks).
    /// Not part of the model's identity: the dataset's name and file hashes are.
    #[serde(skip)]
    pub registry: Option<PathBuf>,
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
    /// Images evaluated (the test split, or its evaluated part).
    #[serde(default)]
    pub test_images: usize,
    /// Where the float weights came from when imported instead of trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<PathBuf>,
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
    /// The float model's top-1 class for each test image, in order (cached beside the weights):
    /// what the integer graphs' predictions are compared with.
    pub test_predictions: Vec<usize>,
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
    /// A detection dataset's truth for the test images (`None` for classification).
    pub truth: Option<detection::Truth>,
}

/// The built-in dataset registry, with the entries of `extra` (a user registry file) merged over
/// it.
pub fn registry(extra: Option<&Path>) -> Result<Registry> {
    let mut registry = Registry::embedded().clone();
    if let Some(path) = extra {
        registry.merge(
            Registry::from_path(path)
                .with_context(|| format!("reading the dataset registry {}", path.display()))?,
        );
    }
    Ok(registry)
}

/// The seed of the calibration/evaluation split of [`load_data`]: fixed, so that every seed and
/// every method is evaluated on the same images.
pub const CALIBRATION_SPLIT_SEED: u64 = 0;

/// Loads the dataset, verifies its files, and splits it as `spec` says.
///
/// With `calibration_from_test: f`, the training split is not read: a seeded (fixed,
/// [`CALIBRATION_SPLIT_SEED`]) fraction `f` of the test split becomes the calibration part (the
/// `train` set the methods calibrate and fine-tune on, of which `val_fraction` is held out for
/// validation) and the remaining images are the `test` set every accuracy is measured on. The two
/// parts are disjoint, so no evaluated image is seen during calibration or fine-tuning; but
/// tuning choices made on the calibration part are made on the validation distribution, which a
/// real training split would avoid.
pub fn load_data(spec: &FloatSpec) -> Result<Data> {
    let registry = registry(spec.registry.as_deref())?;
    let entry = registry.get(&spec.dataset)?;
    if entry.format == Format::Kitti {
        if spec.calibration_from_test.is_some() {
            bail!(
                "calibration_from_test does not apply to the detection dataset {}: its images are \
                 split into a training and an evaluation part already",
                spec.dataset
            );
        }
        let loaded = detection::load(entry)?;
        return Ok(with_split(
            spec,
            loaded.train,
            loaded.test,
            loaded.sha256,
            Some(loaded.truth),
        ));
    }
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
    let (train, test) = match spec.calibration_from_test {
        Some(fraction) => {
            let all = qbench_datasets::load(entry, Split::Test)?;
            let (eval, calib) = train_val_split(all.len(), fraction, CALIBRATION_SPLIT_SEED);
            if eval.is_empty() || calib.is_empty() {
                bail!(
                    "calibration_from_test: {fraction} of the {} test images of {} leaves no \
                     calibration or no evaluation image",
                    all.len(),
                    spec.dataset
                );
            }
            (all.subset(&calib), all.subset(&eval))
        }
        None => (
            qbench_datasets::load(entry, Split::Train)?,
            qbench_datasets::load(entry, Split::Test)?,
        ),
    };
    let sha256 = sha256_hex(hashes.join("\n").as_bytes());
    Ok(with_split(spec, train, test, sha256, None))
}

/// The data of `spec` from images already loaded (and verified) for a spec that reads the same
/// files: only the seeded training/validation split differs between seeds.
pub fn load_data_like(spec: &FloatSpec, loaded: &Data) -> Data {
    with_split(
        spec,
        loaded.train.clone(),
        loaded.test.clone(),
        loaded.sha256.clone(),
        loaded.truth.clone(),
    )
}

/// Whether two specs read the same images (so [`load_data_like`] may share them).
pub fn same_images(a: &FloatSpec, b: &FloatSpec) -> bool {
    (&a.dataset, &a.registry, a.calibration_from_test)
        == (&b.dataset, &b.registry, b.calibration_from_test)
}

fn with_split(
    spec: &FloatSpec,
    train: ImageSet,
    test: ImageSet,
    sha256: String,
    truth: Option<detection::Truth>,
) -> Data {
    let (mut train_idx, val_idx) = train_val_split(train.len(), spec.val_fraction, spec.train.seed);
    if let Some(limit) = spec.train_limit {
        train_idx.truncate(limit);
    }
    Data {
        train,
        test,
        train_idx,
        val_idx,
        sha256,
        truth,
    }
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

/// The folder that holds the model trained from `spec` on data with hash `dataset_sha256`, named
/// by a hash over the spec, the dataset, qbench's version and the float training source
/// (`QBENCH_FLOAT_SOURCE`, see build.rs): a change to the training code trains again rather than
/// reusing a stale model.
pub fn model_dir(results_root: &Path, spec: &FloatSpec, dataset_sha256: &str) -> PathBuf {
    let key = serde_json::to_string(&(
        spec,
        dataset_sha256,
        env!("CARGO_PKG_VERSION"),
        env!("QBENCH_FLOAT_SOURCE"),
    ))
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
    let test_accuracy = test_score(&arch, &mut params, data)?;
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
        test_images: data.test.len(),
        imported_from: None,
    };
    results::write_sealed(&record_path, &record)?;
    let test_predictions = float_predictions(&dir, &arch, &mut params, data)?;
    Ok(FloatModel {
        arch,
        params,
        record,
        dir,
        cached: false,
        test_predictions,
    })
}

/// Reads a model's weights in torchvision's names from a safetensors file (for example
/// torchvision's ResNet-18 `state_dict` saved with `safetensors.torch.save_file`), checking that
/// every tensor the architecture needs is present with its shape; `*.num_batches_tracked`
/// counters are ignored. Errors name the file and the tensor.
pub fn import_weights(arch: &Architecture, path: &Path) -> Result<(Params, String)> {
    let (mut tensors, sha) = qbench_methods::checkpoint::load_tensors(path)
        .with_context(|| format!("reading weights {}", path.display()))?;
    tensors.retain(|name, _| !name.ends_with(".num_batches_tracked"));
    let mut params = Params::init(arch, 0)?;
    params
        .assign(&tensors, &path.display().to_string())
        .with_context(|| {
            format!(
                "{} does not hold the weights of `{}` (torchvision parameter names)",
                path.display(),
                arch.name
            )
        })?;
    Ok((params, sha))
}

/// The float model of a spec's model entry: imported from `weights` when the entry names a file,
/// else trained; cached either way.
pub fn ensure(
    results_root: &Path,
    spec: &FloatSpec,
    data: &Data,
    weights: Option<&Path>,
    observer: &mut dyn TrainObserver,
) -> Result<FloatModel> {
    match weights {
        Some(weights) => ensure_imported(results_root, spec, data, weights),
        None => ensure_trained(results_root, spec, data, observer),
    }
}

/// The float model of a spec's model entry if it is already in the cache; never trains or
/// imports. A Slurm cell task uses this so that only the float task ever writes a model's folder.
pub fn cached(
    results_root: &Path,
    spec: &FloatSpec,
    data: &Data,
    weights: Option<&Path>,
) -> Result<Option<FloatModel>> {
    match weights {
        Some(weights) => load_trained(results_root, &imported_spec(spec, weights)?, data),
        None => load_trained(results_root, spec, data),
    }
}

/// `spec` keyed by the sha256 of the imported weights file, which addresses its cache folder.
fn imported_spec(spec: &FloatSpec, weights: &Path) -> Result<FloatSpec> {
    let sha = sha256_file(weights).context("hashing the imported weights")?;
    Ok(FloatSpec {
        weights_sha256: Some(sha),
        ..spec.clone()
    })
}

/// Returns the float model whose weights are imported from `weights` (not trained), evaluated on
/// the test split and cached like a trained model under the hash of the weights' sha256.
fn ensure_imported(
    results_root: &Path,
    spec: &FloatSpec,
    data: &Data,
    weights: &Path,
) -> Result<FloatModel> {
    let arch = architecture(spec, data)?;
    let spec = imported_spec(spec, weights)?;
    let sha = spec.weights_sha256.clone().unwrap_or_default();
    let dir = model_dir(results_root, &spec, &data.sha256);
    let stored = dir.join("model.safetensors");
    let record_path = dir.join("record.json");
    if let Some(record) = cached_record(&record_path, &stored)? {
        let mut params = Params::init(&arch, 0)?;
        params.load(&stored)?;
        let test_predictions = float_predictions(&dir, &arch, &mut params, data)?;
        return Ok(FloatModel {
            arch,
            params,
            record,
            dir,
            cached: true,
            test_predictions,
        });
    }
    let (mut params, imported_sha) = import_weights(&arch, weights)?;
    if imported_sha != sha {
        bail!("{} changed while it was being read", weights.display());
    }
    let weights_sha256 = params.save(&stored)?;
    let test_predictions = float_predictions(&dir, &arch, &mut params, data)?;
    let val_accuracy = train::accuracy(&arch, &mut params, &data.train, &data.val_idx, 64)?;
    let record = FloatRecord {
        spec,
        dataset_sha256: data.sha256.clone(),
        weights_sha256,
        train_images: data.train_idx.len(),
        val_images: data.val_idx.len(),
        val_accuracy,
        test_accuracy: if data.truth.is_some() {
            test_score(&arch, &mut params, data)?
        } else {
            qbench_engine::accuracy(&test_predictions, &data.test.labels)
        },
        train_seconds: 0.0,
        seconds_per_epoch: 0.0,
        qbench_version: env!("CARGO_PKG_VERSION").to_string(),
        test_images: data.test.len(),
        imported_from: Some(weights.to_path_buf()),
    };
    results::write_sealed(&record_path, &record)?;
    Ok(FloatModel {
        arch,
        params,
        record,
        dir,
        cached: false,
        test_predictions,
    })
}

/// The model cached under `spec`, if it is there; never trains.
fn load_trained(results_root: &Path, spec: &FloatSpec, data: &Data) -> Result<Option<FloatModel>> {
    let arch = architecture(spec, data)?;
    let dir = model_dir(results_root, spec, &data.sha256);
    let weights = dir.join("model.safetensors");
    let Some(record) = cached_record(&dir.join("record.json"), &weights)? else {
        return Ok(None);
    };
    let mut params = Params::init(&arch, spec.train.seed)?;
    params.load(&weights)?;
    let test_predictions = float_predictions(&dir, &arch, &mut params, data)?;
    Ok(Some(FloatModel {
        arch,
        params,
        record,
        dir,
        cached: true,
        test_predictions,
    }))
}

/// The float model's headline test figure: top-1 accuracy, or for a detector the mean over
/// classes of the KITTI AP (40 recall points) at Moderate.
fn test_score(arch: &Architecture, params: &mut Params, data: &Data) -> Result<f64> {
    match &data.truth {
        Some(truth) => {
            let dets = detection::float_detections(arch, params, &data.test)?;
            Ok(detection::evaluate(&dets, truth).mean_ap_moderate())
        }
        None => {
            let all: Vec<usize> = (0..data.test.len()).collect();
            Ok(train::accuracy(arch, params, &data.test, &all, 500)?)
        }
    }
}

/// The float model's test predictions, read from `test_predictions.json` in its folder or
/// computed (and written there) when absent or of the wrong length. A detector has none (its
/// outputs are boxes, compared through their AP).
fn float_predictions(
    dir: &Path,
    arch: &Architecture,
    params: &mut Params,
    data: &Data,
) -> Result<Vec<usize>> {
    if data.truth.is_some() {
        return Ok(Vec::new());
    }
    let path = dir.join("test_predictions.json");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(p) = serde_json::from_str::<Vec<usize>>(&text)
        && p.len() == data.test.len()
    {
        return Ok(p);
    }
    let all: Vec<usize> = (0..data.test.len()).collect();
    let p = train::predictions(arch, params, &data.test, &all, 64)?;
    results::write_json(&path, &p)?;
    Ok(p)
}

/// The model's test accuracy derived again from its weights, the way its record's figure was
/// derived: the training evaluation for a trained model, the engine's arg-max over fresh float
/// predictions for an imported one. Reads no cached predictions.
pub fn test_accuracy_again(model: &FloatModel, data: &Data) -> Result<f64> {
    let mut params = model.params.clone();
    let all: Vec<usize> = (0..data.test.len()).collect();
    if data.truth.is_some() {
        test_score(&model.arch, &mut params, data)
    } else if model.record.imported_from.is_some() {
        let p = train::predictions(&model.arch, &mut params, &data.test, &all, 64)?;
        Ok(qbench_engine::accuracy(&p, &data.test.labels))
    } else {
        Ok(train::accuracy(
            &model.arch,
            &mut params,
            &data.test,
            &all,
            500,
        )?)
    }
}

/// A finished model's record, if its weights are present and match the recorded hash.
fn cached_record(record_path: &Path, weights: &Path) -> Result<Option<FloatRecord>> {
    if !record_path.exists() || !weights.exists() {
        return Ok(None);
    }
    let record: FloatRecord = results::read_sealed(record_path)
        .with_context(|| format!("{} is not a valid model record", record_path.display()))?;
    let actual = sha256_file(weights)?;
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
