//! Quantizing a trained float model with a configured method, evaluating the integer graph with
//! the engine, and caching the result by the hash of everything that determines it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use qbench_datasets::ImageSet;
use qbench_datasets::kitti::eval::Evaluation;
use qbench_engine::count_ops;
use qbench_io::{sha256_file, sha256_hex};
use qbench_methods::method::config::MethodConfig;
use qbench_methods::method::conformance;
use qbench_methods::method::{MethodReport, QuantInput};
use qbench_methods::train::TrainObserver;
use serde::{Deserialize, Serialize};

use crate::float_model::{Data, FloatModel};
use crate::{detection, results};

/// Calibration images handed to every method (the first of the shuffled training indices).
pub const CALIBRATION_IMAGES: usize = 2048;

/// One method's measured result on one float model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MethodResult {
    /// The method's own report.
    pub report: MethodReport,
    /// The graph file and its sha256.
    pub graph_path: PathBuf,
    /// sha256 of the graph file.
    pub graph_sha256: String,
    /// sha256 of the float weights it was quantized from.
    pub float_weights_sha256: String,
    /// Integer-engine top-1 accuracy on the test split; for a detector, the mean over classes of
    /// the KITTI AP (40 recall points) at Moderate.
    pub int_accuracy: f64,
    /// Fake-quant top-1 accuracy (a detector: mean AP at Moderate) on the checked test images.
    pub fake_accuracy: f64,
    /// Fraction of the checked test images where both predict the same class (a detector: the
    /// same list of boxes, classes and scores).
    pub agreement: f64,
    /// A detector's whole KITTI evaluation on the test split (`None` for a classifier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<Evaluation>,
    /// How many test images (evenly spaced) the fake-quant forward was checked on; the fake-quant
    /// accuracy, agreement and logit error are over these (absent in results written before
    /// it was recorded, which checked every test image).
    #[serde(default)]
    pub fake_quant_images: Option<usize>,
    /// Fraction of test images where the integer graph and the FLOAT model predict the same
    /// class (absent in results written before it was recorded).
    #[serde(default)]
    pub float_agreement: Option<f64>,
    /// Largest logit difference and the method's documented bound for it.
    pub max_logit_error: f64,
    /// The documented bound on the logit difference.
    pub logit_bound: f64,
    /// Quantization operations per inference (engine count).
    pub quant_ops: u64,
    /// Weight memory in bits (engine count).
    pub weight_bits: u64,
    /// MACs per inference by kind (engine count).
    pub macs_by_kind: std::collections::BTreeMap<qbench_engine::MacKind, u64>,
    /// Seconds spent quantizing (0 when cached).
    pub quantize_seconds: f64,
    /// The graph exported to ONNX and run by onnxruntime (qonnx's executor for BNN/QNN graphs)
    /// on the fake-quant sample, against the engine; `None` where the project's Python
    /// environment was missing when the cell ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_check: Option<RuntimeCheck>,
}

/// The integer graph against an ONNX runtime on the same images ([`qbench_onnx::crosscheck`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeCheck {
    /// `onnxruntime` or `qonnx`.
    pub runtime: String,
    /// Images compared.
    pub images: usize,
    /// Fraction of images with the same top-1 class.
    pub agreement: f64,
    /// Fraction of images with every output equal (a detector's maps).
    pub identical: f64,
    /// Largest difference of any output, in the graph's integer units.
    pub max_logit_diff: i64,
}

/// Runs the ONNX cross-check of `graph` on `images` when the project's Python environment exists
/// (`None` otherwise: the tables say n/a). A failing export or runtime is an error: it would be
/// a lowering or export bug.
fn runtime_check(graph: &qbench_engine::QGraph, images: &[u8]) -> Result<Option<RuntimeCheck>> {
    if qbench_onnx::python::interpreter().is_err() {
        return Ok(None);
    }
    let c = qbench_onnx::crosscheck(graph, images).context("the onnxruntime cross-check")?;
    Ok(Some(RuntimeCheck {
        runtime: c.runtime.to_string(),
        images: c.images,
        agreement: c.agreement,
        identical: c.identical,
        max_logit_diff: c.max_logit_diff,
    }))
}

/// Where a method result came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Quantized and evaluated by this call.
    Computed,
    /// Read from the method cache (`results/methods`), written by an earlier call.
    Cached,
}

/// Quantizes `model` with the method `config` built, or loads the cached result; says which.
/// The cache is keyed by the config's canonical options (defaults filled in), the float weights,
/// the seed and the code.
pub fn run_method(
    results_root: &Path,
    model: &FloatModel,
    data: &Data,
    config: &MethodConfig,
    seed: u64,
    observer: &mut dyn TrainObserver,
) -> Result<(MethodResult, Origin)> {
    let options = serde_json::to_string(config.options())?;
    let key = format!(
        "{}\n{}\n{}\n{seed}\n{}\n{}",
        config.name(),
        options,
        model.record.weights_sha256,
        env!("CARGO_PKG_VERSION"),
        env!("QBENCH_NUMERICS_SOURCE")
    );
    let hash = sha256_hex(key.as_bytes());
    let dir = results_root
        .join("methods")
        .join(format!("{}-{}", config.name(), &hash[..12]));
    let record_path = dir.join("result.json");
    // A finished result whose graph file still matches its hash is reused; a missing graph
    // reruns; an edited or damaged result is an error naming it (never reused).
    if record_path.exists() {
        let result: MethodResult = results::read_sealed(&record_path)?;
        if sha256_file(&result.graph_path).ok().as_deref() == Some(&result.graph_sha256) {
            return Ok((result, Origin::Cached));
        }
    }
    let method = config.method();
    let calib: Vec<usize> = data
        .train_idx
        .iter()
        .copied()
        .take(CALIBRATION_IMAGES)
        .collect();
    let input = QuantInput {
        arch: &model.arch,
        params: &model.params,
        data: &data.train,
        train_idx: &data.train_idx,
        calib_idx: &calib,
        val_idx: &data.val_idx,
        seed,
    };
    let start = std::time::Instant::now();
    let quantized = method
        .quantize(&input, observer)
        .with_context(|| format!("quantizing with {}", method.label()))?;
    let quantize_seconds = start.elapsed().as_secs_f64();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let graph_path = dir.join("graph.qgraph");
    let graph_sha256 = quantized
        .graph
        .save(&graph_path)
        .context("saving the integer graph")?;
    let counts = count_ops(&quantized.graph);
    // The integer graph runs on every test image; the fake-quant cross-check on a sample when
    // the f64 reference forward would take long (see `fake_quant_sample`).
    let macs: u64 = counts.macs_by_kind.values().sum();
    let (sample, picks) = fake_quant_sample(&data.test, macs);
    let cmp = conformance::compare(&quantized, &sample, &method.label())?;
    let scores = match &data.truth {
        Some(truth) => detection_scores(&quantized, &model.arch, data, truth, &cmp, &picks)?,
        None => {
            let int = qbench_engine::predict(&quantized.graph, &data.test.images, 256)?;
            Scores {
                int: qbench_engine::accuracy(&int, &data.test.labels),
                fake: cmp.fake_accuracy,
                agreement: cmp.agreement,
                float_agreement: (model.test_predictions.len() == int.len())
                    .then(|| qbench_engine::agreement(&model.test_predictions, &int)),
                detection: None,
            }
        }
    };
    let runtime_check = runtime_check(&quantized.graph, &sample.images)?;
    let result = MethodResult {
        report: quantized.report,
        graph_path,
        graph_sha256,
        float_weights_sha256: model.record.weights_sha256.clone(),
        int_accuracy: scores.int,
        fake_accuracy: scores.fake,
        agreement: scores.agreement,
        detection: scores.detection,
        fake_quant_images: Some(sample.len()),
        float_agreement: scores.float_agreement,
        max_logit_error: cmp.max_logit_error,
        logit_bound: cmp.logit_bound,
        quant_ops: counts.total_requant_ops,
        weight_bits: counts.weight_bits,
        macs_by_kind: counts.macs_by_kind,
        quantize_seconds,
        runtime_check,
    };
    results::write_sealed(&record_path, &result)?;
    Ok((result, Origin::Computed))
}

/// A cell's figures beside its counts.
struct Scores {
    int: f64,
    fake: f64,
    agreement: f64,
    float_agreement: Option<f64>,
    detection: Option<Evaluation>,
}

/// A detector's figures: the integer graph's boxes on every test image scored by the KITTI
/// evaluation, and the fake-quant forward's boxes on the checked sample scored the same way,
/// with the share of sampled images where both decode to the same boxes.
fn detection_scores(
    quantized: &qbench_methods::method::Quantized,
    arch: &qbench_methods::model::arch::Architecture,
    data: &Data,
    truth: &detection::Truth,
    cmp: &conformance::ConformanceReport,
    picks: &[usize],
) -> Result<Scores> {
    let grid = detection::grid(arch)?;
    let scale = quantized.fake_quant.logit_scale();
    let int = detection::graph_detections(&quantized.graph, &grid, scale, &data.test)?;
    let evaluation = detection::evaluate(&int, truth);
    let fake = detection::map_detections(&grid, &cmp.fake_logits);
    let same = picks
        .iter()
        .zip(&fake)
        .filter(|(i, f)| int[**i] == **f)
        .count();
    let fake_ap = detection::evaluate(&fake, &detection::truth_subset(truth, picks));
    Ok(Scores {
        int: evaluation.mean_ap_moderate(),
        fake: fake_ap.mean_ap_moderate(),
        agreement: same as f64 / picks.len().max(1) as f64,
        float_agreement: None,
        detection: Some(evaluation),
    })
}

/// Multiply-accumulates of the f64 fake-quant forward a cell may spend on its cross-check of the
/// integer graph: about 3 s on one core of the reference machine, 2,907 of the Fashion-MNIST
/// `cnn`'s 10,000 test images, 1,895 of `vgg7`'s and all of `mlp`'s. (It was four times this,
/// the largest cost of a paper-suite cell after training; the check is of bit-exactness, which
/// a few thousand images exercise as well as ten thousand.)
pub const FAKE_QUANT_CHECK_MACS: u64 = 3_000_000_000;
/// Fewest images the fake-quant cross-check uses (all of them when the test split is smaller).
pub const FAKE_QUANT_CHECK_MIN_IMAGES: usize = 64;

/// The test images the fake-quant forward is compared on: all of them when that costs at most
/// [`FAKE_QUANT_CHECK_MACS`], else evenly spaced ones within that budget, at least
/// [`FAKE_QUANT_CHECK_MIN_IMAGES`] (ResNet-18 on ImageNet: 64 of 45,000, where all of them would
/// take the f64 reference days). The check is of bit-exactness, which any image exercises;
/// accuracy always comes from every image.
fn fake_quant_sample(test: &ImageSet, macs_per_image: u64) -> (ImageSet, Vec<usize>) {
    let n = test.len();
    let affordable = (FAKE_QUANT_CHECK_MACS / macs_per_image.max(1)) as usize;
    let k = affordable.max(FAKE_QUANT_CHECK_MIN_IMAGES).min(n);
    let picks: Vec<usize> = (0..k).map(|i| i * n / k.max(1)).collect();
    (test.subset(&picks), picks)
}
