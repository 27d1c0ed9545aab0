//! The runner: trains (or reuses) the spec's float models, then quantizes and evaluates every
//! pending cell in parallel within the machine's cores and memory, writing each cell's record
//! atomically as it finishes. A run killed at any moment resumes where it stopped: finished cells
//! are never recomputed, and an unfinished one simply runs again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Result, anyhow};
use indicatif::MultiProgress;
use qbench_io::sha256_hex;
use serde::Serialize;

use super::manifest::{self, DatasetRef, Manifest, ModelRef};
use super::spec::{ExperimentSpec, MethodCell, ModelEntry};
use super::store::{CellRecord, FloatSummary, RunDir};
use crate::float_model::{self, Data, FloatModel, FloatRecord, FloatSpec};
use crate::method_run::{Origin, run_method};
use crate::progress::{self, TrainBars};

/// Memory one cell may need at its peak (fine-tuning included), used to bound parallel cells.
const MEMORY_PER_CELL_GIB: f64 = 1.5;

/// How to run a spec.
pub struct RunOptions {
    /// Results folder.
    pub results_root: PathBuf,
    /// Cells run at once; `None` picks from cores and available memory.
    pub jobs: Option<usize>,
}

/// What one finished `run` did.
pub struct RunOutcome {
    /// The run folder.
    pub run: RunDir,
    /// Every cell record, in spec order.
    pub cells: Vec<CellRecord>,
    /// Cells this invocation quantized and evaluated.
    pub computed: usize,
    /// Cells this invocation took from the method cache (`results/methods`, e.g. from another
    /// run with the same float model and method); the rest were already finished in this run.
    pub cached: usize,
}

/// A cell waiting to run.
struct PendingCell<'a> {
    id: String,
    model: usize,
    method: &'a MethodCell,
    seed: u64,
}

/// The number of cells to run at once: the cores, limited by available memory.
pub fn default_jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_memory = manifest::meminfo_kib("MemAvailable")
        .map(|k| (k as f64 / (1024.0 * 1024.0) / MEMORY_PER_CELL_GIB).floor() as usize)
        .unwrap_or(1);
    cores.min(by_memory).max(1)
}

/// The content address of a cell: everything that determines its result. The method enters as
/// its parsed config's canonical options (defaults filled in), so a default written out and the
/// same default left implicit give the same id, and a changed default changes it.
pub fn cell_id(float: &FloatRecord, method: &MethodCell, seed: u64) -> Result<String> {
    #[derive(Serialize)]
    struct Key<'a> {
        float: &'a float_model::FloatSpec,
        dataset_sha256: &'a str,
        weights_sha256: &'a str,
        method: &'a str,
        options: &'a serde_json::Value,
        seed: u64,
        qbench_version: &'a str,
        numerics_source: &'a str,
    }
    let key = Key {
        float: &float.spec,
        dataset_sha256: &float.dataset_sha256,
        weights_sha256: &float.weights_sha256,
        method: method.config.name(),
        options: method.config.options(),
        seed,
        qbench_version: env!("CARGO_PKG_VERSION"),
        numerics_source: env!("QBENCH_NUMERICS_SOURCE"),
    };
    Ok(sha256_hex(serde_json::to_string(&key)?.as_bytes())[..16].to_string())
}

/// The float models of `spec` in grid order (seeds outer, models inner).
pub fn float_specs(spec: &ExperimentSpec) -> Vec<FloatSpec> {
    spec.seeds
        .iter()
        .flat_map(|&seed| spec.models.iter().map(move |m| spec.float_spec(m, seed)))
        .collect()
}

/// The grid positions of `spec` in order: `(k, m)` is method `spec.methods[m]` applied to float
/// model `k` (in [`float_specs`] order), for the methods that model's entry runs.
pub fn grid(spec: &ExperimentSpec) -> Vec<(usize, usize)> {
    (0..spec.seeds.len() * spec.models.len())
        .flat_map(|k| {
            let entry = model_entry(spec, k);
            (0..spec.methods.len())
                .filter(move |&m| entry.runs(spec.methods[m].entry))
                .map(move |m| (k, m))
        })
        .collect()
}

/// The spec's model entry of float model `k` in [`float_specs`] order (its `weights:` file, if
/// any, is where the model is imported from).
pub fn model_entry(spec: &ExperimentSpec, k: usize) -> &ModelEntry {
    &spec.models[k % spec.models.len()]
}

/// Opens (or creates) `spec`'s run folder and writes its manifest's provenance: spec, version,
/// git state, machine and tools. The run is marked unfinished.
pub fn start_manifest(spec: &ExperimentSpec, results_root: &Path) -> Result<(RunDir, Manifest)> {
    let run = RunDir::for_spec(results_root, spec)?;
    let mut manifest = if run.dir.join("manifest.json").exists() {
        run.manifest()?
    } else {
        Manifest {
            started_unix: manifest::now_unix(),
            ..Manifest::default()
        }
    };
    manifest.run_id = run.id.clone();
    manifest.spec_source = spec.source.clone();
    manifest.spec_dir = spec.base.clone();
    manifest.spec_sha256 = sha256_hex(spec.text.as_bytes());
    manifest.quick = spec.quick;
    manifest.qbench_version = env!("CARGO_PKG_VERSION").into();
    manifest.git = manifest::git_state();
    manifest.machine = manifest::machine();
    manifest
        .tools
        .insert("rustc".into(), manifest::rustc_version().into());
    manifest.tools.insert(
        "qbench numerics source".into(),
        env!("QBENCH_NUMERICS_SOURCE").into(),
    );
    manifest.finished_unix = None;
    run.write_manifest(&manifest)?;
    Ok((run, manifest))
}

/// The manifest's entry for each float model.
pub fn model_refs<'a>(models: impl IntoIterator<Item = &'a FloatModel>) -> Vec<ModelRef> {
    models
        .into_iter()
        .map(|m| ModelRef {
            model: m.record.spec.model.clone(),
            seed: m.record.spec.train.seed,
            weights_sha256: m.record.weights_sha256.clone(),
            test_accuracy: m.record.test_accuracy,
            val_accuracy: m.record.val_accuracy,
            test_images: m.record.test_images,
            dir: m.dir.display().to_string(),
        })
        .collect()
}

/// Makes each job single-threaded when `jobs > 1` run at once, unless the user set
/// `CANDLE_NUM_THREADS` or `RAYON_NUM_THREADS`. Two jobs on two cores, each with candle's
/// spinning thread pool and rayon's, spend much of their time waiting at barriers: one thread
/// trains the `cnn` as fast as two did (34.8 s against 42.7 s per epoch on a busy 2-core machine,
/// `qbench bench train`), and results do not depend on the thread count.
///
/// # Safety
///
/// It sets environment variables: call it before any other thread exists.
pub unsafe fn one_thread_per_job(jobs: usize) {
    let user_set = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if jobs > 1 && !user_set {
        for v in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
            // SAFETY: the caller guarantees no other thread exists.
            unsafe { std::env::set_var(v, "1") };
        }
    }
}

/// The float models of `spec` in [`float_specs`] order with their data, trained (or loaded from
/// the cache) `jobs` at a time. Specs that share a model folder are trained once: the first is
/// trained in parallel with the others, the repeats are then read from the cache.
fn float_models(
    spec: &ExperimentSpec,
    results_root: &Path,
    jobs: usize,
) -> Result<Vec<(Data, FloatModel)>> {
    let specs = float_specs(spec);
    // Each dataset is read and verified once; seeds differ only in their split.
    let mut data: Vec<Data> = Vec::with_capacity(specs.len());
    for (k, float_spec) in specs.iter().enumerate() {
        let same = (0..k).find(|&j| float_model::same_images(&specs[j], float_spec));
        data.push(match same {
            Some(j) => float_model::load_data_like(float_spec, &data[j]),
            None => float_model::load_data(float_spec)?,
        });
    }
    let mut dirs = Vec::new();
    let mut first = Vec::new();
    for (float_spec, data) in specs.iter().zip(&data) {
        let dir = float_model::model_dir(results_root, float_spec, &data.sha256);
        if !dirs.contains(&dir) {
            first.push(dirs.len());
        }
        dirs.push(dir);
    }
    let multi = MultiProgress::new();
    let next = AtomicUsize::new(0);
    let done: Mutex<BTreeMap<usize, Result<FloatModel>>> = Mutex::new(BTreeMap::new());
    let ensure = |k: usize, bars: &mut TrainBars| -> Result<FloatModel> {
        let (float_spec, data) = (&specs[k], &data[k]);
        progress::say(
            &multi,
            &format!(
                "float {} (seed {}) on {}: {} training images",
                float_spec.model,
                float_spec.train.seed,
                spec.dataset,
                data.train_idx.len()
            ),
        );
        let weights = model_entry(spec, k).weights.as_deref();
        float_model::ensure(results_root, float_spec, data, weights, bars)
    };
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(first.len()) {
            scope.spawn(|| {
                while let Some(&k) = first.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let label = format!("{} seed {}", specs[k].model, specs[k].train.seed);
                    let mut bars = TrainBars::in_multi(&multi, &label, specs[k].train.epochs);
                    let outcome = ensure(k, &mut bars);
                    let failed = outcome.is_err();
                    if let Ok(mut d) = done.lock() {
                        d.insert(k, outcome);
                    }
                    if failed {
                        break;
                    }
                }
            });
        }
    });
    let mut done = done
        .into_inner()
        .map_err(|_| anyhow!("a float training thread panicked"))?;
    let mut models = Vec::with_capacity(specs.len());
    for (k, float_spec) in specs.iter().enumerate() {
        models.push(match done.remove(&k) {
            Some(outcome) => outcome?,
            None => ensure(k, &mut TrainBars::new(float_spec.train.epochs))?,
        });
    }
    Ok(data.into_iter().zip(models).collect())
}

/// Runs `spec`: every float model, then every pending cell, then writes the manifest.
pub fn run(spec: &ExperimentSpec, options: &RunOptions) -> Result<RunOutcome> {
    let (run, mut manifest) = start_manifest(spec, &options.results_root)?;

    // Float models first: every cell depends on one.
    let jobs = options.jobs.unwrap_or_else(default_jobs).max(1);
    let mut datasets: Vec<Data> = Vec::new();
    let mut models: Vec<FloatModel> = Vec::new();
    let mut model_data: Vec<usize> = Vec::new();
    for (data, model) in float_models(spec, &options.results_root, jobs)? {
        manifest.dataset = DatasetRef {
            name: spec.dataset.clone(),
            sha256: data.sha256.clone(),
        };
        datasets.push(data);
        model_data.push(datasets.len() - 1);
        models.push(model);
    }
    manifest.models = model_refs(&models);

    // Expand the grid into cells, in spec order.
    let mut all_ids = Vec::new();
    let mut pending = Vec::new();
    for (mi, m) in grid(spec) {
        let (model, method) = (&models[mi], &spec.methods[m]);
        let seed = model.record.spec.train.seed;
        let id = cell_id(&model.record, method, seed)?;
        if run.finished_cell(&id)?.is_none() {
            pending.push(PendingCell {
                id: id.clone(),
                model: mi,
                method,
                seed,
            });
        }
        all_ids.push(id);
    }
    manifest.cells = all_ids.clone();
    run.write_manifest(&manifest)?;

    eprintln!(
        "run {}: {} cells, {} finished, {} to run ({} at a time)",
        run.id,
        all_ids.len(),
        all_ids.len() - pending.len(),
        pending.len(),
        jobs.min(pending.len().max(1))
    );
    if !pending.is_empty()
        && let Err(e) = qbench_onnx::python::interpreter()
    {
        eprintln!("note: the onnxruntime cross-check is skipped (the tables will say n/a): {e}");
    }
    let counts = run_pending(
        &run,
        &pending,
        &models,
        &datasets,
        &model_data,
        &options.results_root,
        jobs,
    )?;

    let mut cells = Vec::new();
    for id in &all_ids {
        cells.push(
            run.finished_cell(id)?
                .ok_or_else(|| anyhow!("cell {id} has no valid record after the run"))?,
        );
    }
    manifest.finished_unix = Some(manifest::now_unix());
    run.write_manifest(&manifest)?;
    Ok(RunOutcome {
        run,
        cells,
        computed: counts.computed,
        cached: counts.cached,
    })
}

/// How the pending cells of an invocation got their results.
#[derive(Default)]
struct Counts {
    /// Quantized and evaluated now.
    computed: usize,
    /// Read from the method cache.
    cached: usize,
}

/// Runs the pending cells on `jobs` worker threads; the first error stops further cells.
fn run_pending(
    run: &RunDir,
    pending: &[PendingCell],
    models: &[FloatModel],
    datasets: &[Data],
    model_data: &[usize],
    results_root: &Path,
    jobs: usize,
) -> Result<Counts> {
    if pending.is_empty() {
        return Ok(Counts::default());
    }
    let multi = MultiProgress::new();
    let overall = multi.add(progress::count_bar("cells", pending.len() as u64));
    let next = AtomicUsize::new(0);
    let (computed, cached) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let errors: Mutex<BTreeMap<usize, anyhow::Error>> = Mutex::new(BTreeMap::new());
    let stop = progress::interrupt_flag();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(pending.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= pending.len()
                        || stop.load(Ordering::SeqCst)
                        || !errors.lock().map(|e| e.is_empty()).unwrap_or(false)
                    {
                        break;
                    }
                    let cell = &pending[i];
                    let label = format!("{} {}", cell.method.config.name(), &cell.id[..8]);
                    progress::say(
                        &multi,
                        &format!(
                            "start {label} ({} seed {}, spec line {})",
                            models[cell.model].record.spec.model, cell.seed, cell.method.line
                        ),
                    );
                    let outcome = run_one_traced(
                        run,
                        &models[cell.model],
                        &datasets[model_data[cell.model]],
                        cell.method,
                        results_root,
                        &mut TrainBars::in_multi(&multi, &label, 0),
                    );
                    match outcome {
                        Ok((record, origin)) => {
                            let how = match origin {
                                Origin::Computed => &computed,
                                Origin::Cached => &cached,
                            };
                            how.fetch_add(1, Ordering::SeqCst);
                            progress::say(
                                &multi,
                                &format!(
                                    "done  {label}: {} {} {:.2}%{}",
                                    record.result.report.label,
                                    if record.result.detection.is_some() {
                                        "mAP"
                                    } else {
                                        "accuracy"
                                    },
                                    100.0 * record.result.int_accuracy,
                                    if origin == Origin::Cached {
                                        " (from the method cache)"
                                    } else {
                                        ""
                                    }
                                ),
                            );
                            overall.inc(1);
                        }
                        Err(err) => {
                            if let Ok(mut e) = errors.lock() {
                                e.insert(i, err);
                            }
                        }
                    }
                }
            });
        }
    });
    overall.finish_and_clear();
    let mut errors = errors
        .into_inner()
        .map_err(|_| anyhow!("a worker panicked"))?;
    if let Some((i, err)) = errors.pop_first() {
        return Err(err.context(format!(
            "cell {} ({} from spec line {})",
            pending[i].id,
            pending[i].method.config.name(),
            pending[i].method.line
        )));
    }
    if stop.load(Ordering::SeqCst) {
        anyhow::bail!(
            "interrupted; finished cells are saved, rerun the same command to resume run {}",
            run.id
        );
    }
    Ok(Counts {
        computed: computed.into_inner(),
        cached: cached.into_inner(),
    })
}

/// Quantizes `model` with `method` (seeded by the model's seed), evaluates it and writes the
/// cell's record atomically. The one code path of a cell, whether a local worker thread or a
/// Slurm array task runs it.
pub fn run_one(
    run: &RunDir,
    model: &FloatModel,
    data: &Data,
    method: &MethodCell,
    results_root: &Path,
    observer: &mut TrainBars,
) -> Result<CellRecord> {
    run_one_traced(run, model, data, method, results_root, observer).map(|(r, _)| r)
}

/// [`run_one`], also saying whether the method's result was computed now or came from the
/// method cache.
fn run_one_traced(
    run: &RunDir,
    model: &FloatModel,
    data: &Data,
    method: &MethodCell,
    results_root: &Path,
    observer: &mut TrainBars,
) -> Result<(CellRecord, Origin)> {
    let seed = model.record.spec.train.seed;
    let (result, origin) = run_method(results_root, model, data, &method.config, seed, observer)?;
    let record = CellRecord {
        cell_id: cell_id(&model.record, method, seed)?,
        model: model.record.spec.model.clone(),
        dataset: model.record.spec.dataset.clone(),
        seed,
        method: method.config.name().to_string(),
        options: method.config.options().clone(),
        spec_entry: method.entry,
        float: FloatSummary {
            weights_sha256: model.record.weights_sha256.clone(),
            dataset_sha256: model.record.dataset_sha256.clone(),
            test_accuracy: model.record.test_accuracy,
            val_accuracy: model.record.val_accuracy,
        },
        result,
    };
    run.write_cell(&record)?;
    Ok((record, origin))
}

#[cfg(test)]
mod tests {
    use qbench_methods::method::linear::LinearOptions;

    use super::*;

    /// A spec with one float model and the given `methods:` entries.
    fn spec(methods: &str) -> ExperimentSpec {
        let text = format!("name: t\nmodels:\n  - {{model: cnn, epochs: 1}}\nmethods:\n{methods}");
        ExperimentSpec::from_text(&text, "t.yaml", false).unwrap()
    }

    /// The ids of `spec`'s cells on one fixed float model, seed 0.
    fn ids(spec: &ExperimentSpec) -> Vec<String> {
        let float = FloatRecord {
            spec: spec.float_spec(&spec.models[0], 0),
            dataset_sha256: "d".repeat(64),
            weights_sha256: "w".repeat(64),
            train_images: 0,
            val_images: 0,
            val_accuracy: 0.0,
            test_accuracy: 0.0,
            train_seconds: 0.0,
            seconds_per_epoch: 0.0,
            qbench_version: env!("CARGO_PKG_VERSION").into(),
            test_images: 0,
            imported_from: None,
        };
        spec.methods
            .iter()
            .map(|m| cell_id(&float, m, 0).unwrap())
            .collect()
    }

    #[test]
    fn a_default_written_out_gives_the_same_cell_id() {
        let bits = LinearOptions::default().bits;
        let implicit = spec("  - {method: linear}\n");
        let explicit = spec(&format!("  - {{method: linear, bits: {bits}}}\n"));
        assert_eq!(ids(&implicit), ids(&explicit));
        // Through a grid too, and the record stores the default either way.
        let grid = spec(&format!(
            "  - {{method: linear, grid: {{bits: [{bits}]}}}}\n"
        ));
        assert_eq!(ids(&grid), ids(&implicit));
        assert_eq!(implicit.methods[0].config.options()["bits"], bits);
    }

    #[test]
    fn a_changed_option_gives_a_different_cell_id() {
        let bits = LinearOptions::default().bits;
        let other = if bits == 4 { 8 } else { 4 };
        let implicit = spec("  - {method: linear}\n");
        let changed = spec(&format!("  - {{method: linear, bits: {other}}}\n"));
        assert_ne!(ids(&implicit), ids(&changed));
        let images = spec("  - {method: linear, calibration_images: 7}\n");
        assert_ne!(ids(&implicit), ids(&images));
        // A grid's cells are all different.
        let grid = spec("  - {method: linear, grid: {bits: [2, 3, 4]}}\n");
        let grid_ids = ids(&grid);
        assert_eq!(grid_ids.len(), 3);
        assert!(grid_ids[0] != grid_ids[1] && grid_ids[1] != grid_ids[2]);
    }
}
