//! The Slurm backend: a spec's grid as Slurm job arrays, on a cluster whose nodes share the
//! results folder.
//!
//! - **Float models are their own array.** A cell's id hashes its float model's weights, so the
//!   float models must exist before any cell can even be named. `qbench run --backend slurm`
//!   submits one array with a task per float model missing from the cache (one task per model
//!   folder, so no two tasks ever write the same folder), then the cell array with
//!   `--dependency=afterok:<float job>`. Training runs on compute nodes, never on the login node
//!   that submits, and costs nothing when the models are already cached.
//! - **Array index = grid position.** Task `j` runs position `j` of [`runner::grid`] (a float
//!   model in [`runner::float_specs`] order and a method it runs) through [`runner::run_one`], the
//!   code path of a local worker thread. A cell task only loads its float model from the cache,
//!   never trains.
//! - **Records are the truth.** A cell is done when its record exists and its graph's hash
//!   matches; Slurm (`squeue` for queued and running tasks, `scontrol`, or `sacct` once the
//!   controller has forgotten the job) only explains why a cell is not done. Submitting again
//!   submits exactly the positions without a record (`--array=3,7`), and is refused while an
//!   earlier job of the run is still queued, so no cell ever runs twice at once.
//! - **Shared filesystem.** The results folder must be visible at the same absolute path on every
//!   node (it is made absolute before submitting). The run folder keeps the sbatch scripts
//!   (`slurm/submit-<n>-{float,cells}.sh`), the task logs (`slurm/logs/<job>_<task>.{out,err}`)
//!   and `slurm/jobs.json`: every submission's job ids and array indices, written atomically.
//! - **One writer per file.** Tasks write only their model folder or their cell record (both
//!   atomically); the manifest is written by the user's commands (submit, `runs status`,
//!   `aggregate`).

pub mod query;
pub mod script;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::manifest::{self, DatasetRef};
use super::runner;
use super::spec::ExperimentSpec;
use super::store::RunDir;
use crate::float_model::{self, FloatModel};
use crate::progress::TrainBars;
use crate::results;
use script::{ArrayScript, Resources};

/// Every submission of a run (`slurm/jobs.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Jobs {
    /// In submission order.
    pub submissions: Vec<Submission>,
}

/// One `qbench run --backend slurm`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submission {
    /// 1, 2, ...: names its scripts.
    pub number: usize,
    /// Unix seconds.
    pub submitted_unix: u64,
    /// The float-model array, if any model was missing.
    pub float: Option<ArrayJob>,
    /// The cell array.
    pub cells: Option<ArrayJob>,
}

/// One submitted array job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArrayJob {
    /// Slurm's job id.
    pub job_id: String,
    /// Its sbatch script.
    pub script: PathBuf,
    /// Array indices: float-model positions, or grid positions of cells.
    pub indices: Vec<usize>,
}

/// Which array a task belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Trains float model `index`.
    Float,
    /// Runs the cell at grid position `index`.
    Cell,
}

/// Where a cell stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CellState {
    /// Its record exists and is valid.
    Done,
    /// Queued (possibly waiting for its float model).
    Pending,
    /// A task is running it.
    Running,
    /// Its last task ended without a record; the Slurm state or the reason.
    Failed(String),
    /// Never submitted.
    NotSubmitted,
}

/// One grid position of a run.
#[derive(Clone, Debug)]
pub struct CellStatus {
    /// Grid position (the cell array's index).
    pub index: usize,
    /// Float model architecture.
    pub model: String,
    /// Seed.
    pub seed: u64,
    /// Method and options.
    pub method: String,
    /// Cell id, once its float model exists.
    pub cell_id: Option<String>,
    /// Its state.
    pub state: CellState,
    /// The Slurm task that ran it last (`<job>_<index>`).
    pub task: Option<String>,
}

/// The run's grid as the cache knows it: spec, float models (if trained) and cell ids.
struct Grid {
    run: RunDir,
    spec: ExperimentSpec,
    models: Vec<Option<FloatModel>>,
    dataset: Option<DatasetRef>,
    /// Per grid position: the cell id (when its float model exists) and whether it is done.
    cells: Vec<(Option<String>, bool)>,
}

impl Grid {
    /// Reads the cache; never trains.
    fn load(run: RunDir, spec: ExperimentSpec, results_root: &Path) -> Result<Self> {
        let mut models = Vec::new();
        let mut dataset = None;
        for (k, float_spec) in runner::float_specs(&spec).iter().enumerate() {
            let data = float_model::load_data(float_spec)?;
            dataset = Some(DatasetRef {
                name: spec.dataset.clone(),
                sha256: data.sha256.clone(),
            });
            let weights = runner::model_entry(&spec, k).weights.as_deref();
            models.push(float_model::cached(
                results_root,
                float_spec,
                &data,
                weights,
            )?);
        }
        let mut cells = Vec::new();
        for (k, m) in runner::grid(&spec) {
            cells.push(match &models[k] {
                Some(model) => {
                    let (record, method) = (&model.record, &spec.methods[m]);
                    let id = runner::cell_id(record, method, record.spec.train.seed)?;
                    let done = run.finished_cell(&id)?.is_some();
                    (Some(id), done)
                }
                None => (None, false),
            });
        }
        Ok(Grid {
            run,
            spec,
            models,
            dataset,
            cells,
        })
    }

    /// Records the float models and cell ids in the manifest once all float models exist, and the
    /// finishing time once every cell is done.
    fn sync_manifest(&self) -> Result<()> {
        let mut manifest = self.run.manifest()?;
        let before = manifest.clone();
        if self.models.iter().all(Option::is_some) {
            manifest.models = runner::model_refs(self.models.iter().flatten());
            manifest.cells = self.cells.iter().filter_map(|c| c.0.clone()).collect();
            manifest.dataset = self.dataset.clone().unwrap_or_default();
        }
        if self.cells.iter().all(|c| c.1) {
            manifest
                .finished_unix
                .get_or_insert_with(manifest::now_unix);
        }
        if manifest != before {
            self.run.write_manifest(&manifest)?;
        }
        Ok(())
    }
}

fn jobs_path(run: &RunDir) -> PathBuf {
    run.dir.join("slurm").join("jobs.json")
}

/// Whether the run was submitted to Slurm.
pub fn is_slurm_run(run: &RunDir) -> bool {
    jobs_path(run).exists()
}

fn read_jobs(run: &RunDir) -> Result<Jobs> {
    let path = jobs_path(run);
    if !path.exists() {
        return Ok(Jobs::default());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a Slurm job list", path.display()))
}

fn job_ids(jobs: &Jobs) -> Vec<String> {
    jobs.submissions
        .iter()
        .flat_map(|s| [&s.float, &s.cells])
        .flatten()
        .map(|j| j.job_id.clone())
        .collect()
}

/// The spec a run was made from, parsed with the run's budget.
/// Submits `spec`'s unfinished work as Slurm arrays; returns the submission, or `None` when every
/// cell is already done.
pub fn submit(
    spec: &ExperimentSpec,
    results_root: &Path,
    resources: &Resources,
) -> Result<Option<Submission>> {
    query::require("sbatch")?;
    let results_root = std::path::absolute(results_root)
        .with_context(|| format!("making {} absolute", results_root.display()))?;
    let (run, _) = runner::start_manifest(spec, &results_root)?;
    let mut jobs = read_jobs(&run)?;
    let queued = query::live_tasks(&job_ids(&jobs))?;
    if let Some(((job, index), state)) = queued.iter().next() {
        bail!(
            "task {job}_{index} of run {} is still {state} ({} queued or running): wait for it \
             (`qbench runs status {}`) or cancel it (`scancel {job}`) before submitting again",
            run.id,
            queued.len(),
            run.id
        );
    }
    let grid = Grid::load(run.clone(), spec.clone(), &results_root)?;
    grid.sync_manifest()?;

    // One float task per missing model folder.
    let mut float_dirs = Vec::new();
    let mut float_indices = Vec::new();
    for (k, float_spec) in runner::float_specs(spec).iter().enumerate() {
        if grid.models[k].is_none() {
            let data = float_model::load_data(float_spec)?;
            let dir = float_model::model_dir(&results_root, float_spec, &data.sha256);
            if !float_dirs.contains(&dir) {
                float_dirs.push(dir);
                float_indices.push(k);
            }
        }
    }
    let cell_indices: Vec<usize> = (0..grid.cells.len())
        .filter(|&j| !grid.cells[j].1)
        .collect();
    if cell_indices.is_empty() {
        eprintln!(
            "run {}: all {} cells are done; `qbench aggregate {}` writes its tables",
            run.id,
            grid.cells.len(),
            run.id
        );
        return Ok(None);
    }

    let slurm_dir = run.dir.join("slurm");
    let logs = slurm_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let exe = std::env::current_exe().context("locating the qbench binary")?;
    let number = jobs.submissions.len() + 1;
    let mut submission = Submission {
        number,
        submitted_unix: manifest::now_unix(),
        float: None,
        cells: None,
    };
    let command = |stage: &str| {
        vec![
            exe.display().to_string(),
            "run-task".into(),
            run.dir.display().to_string(),
            "--stage".into(),
            stage.into(),
            "--results".into(),
            results_root.display().to_string(),
        ]
    };
    let submit_array = |stage: &str, indices: &[usize], after_ok: Option<&str>| {
        let script_path = slurm_dir.join(format!("submit-{number}-{stage}.sh"));
        let text = script::render(
            &ArrayScript {
                name: &format!("qbench-{stage}-{}", run.id),
                indices,
                logs: &logs,
                after_ok,
                command: command(stage),
            },
            resources,
        )?;
        results::write_text(&script_path, &text)?;
        let job_id = query::sbatch(&script_path)?;
        anyhow::Ok(ArrayJob {
            job_id,
            script: script_path,
            indices: indices.to_vec(),
        })
    };
    if !float_indices.is_empty() {
        submission.float = Some(submit_array("float", &float_indices, None)?);
        jobs.submissions.push(submission.clone());
        results::write_json(&jobs_path(&run), &jobs)?;
        jobs.submissions.pop();
    }
    let after = submission.float.as_ref().map(|f| f.job_id.clone());
    submission.cells = Some(submit_array("cells", &cell_indices, after.as_deref())?);
    jobs.submissions.push(submission.clone());
    results::write_json(&jobs_path(&run), &jobs)?;

    if let Some(f) = &submission.float {
        eprintln!(
            "run {}: float models {} as job {} (array {})",
            run.id,
            f.indices.len(),
            f.job_id,
            query::format_indices(&f.indices)
        );
    }
    let c = submission.cells.as_ref().expect("just submitted");
    eprintln!(
        "run {}: {} of {} cells as job {} (array {}){}\n\
         the results folder {} must be shared by every node; `qbench runs status {}` follows them",
        run.id,
        c.indices.len(),
        grid.cells.len(),
        c.job_id,
        query::format_indices(&c.indices),
        after
            .map(|a| format!(", after job {a}"))
            .unwrap_or_default(),
        results_root.display(),
        run.id
    );
    Ok(Some(submission))
}

/// Runs one array task of `run`: trains float model `index`, or runs the cell at grid position
/// `index` (skipping it if its record already exists).
pub fn run_task(run: &str, results_root: &Path, stage: Stage, index: usize) -> Result<()> {
    let run = RunDir::open(results_root, run)?;
    let spec = run.spec()?;
    if RunDir::for_spec(results_root, &spec)?.dir != run.dir {
        bail!(
            "{} does not match its spec.yaml (was the results folder moved?)",
            run.dir.display()
        );
    }
    let float_specs = runner::float_specs(&spec);
    let grid = runner::grid(&spec);
    let position = match stage {
        Stage::Float => (index < float_specs.len()).then_some((index, 0)),
        Stage::Cell => grid.get(index).copied(),
    };
    let (k, m) = position.ok_or_else(|| {
        anyhow!(
            "task index {index} is outside run {} ({} float models, {} cells)",
            run.id,
            float_specs.len(),
            grid.len()
        )
    })?;
    let float_spec = &float_specs[k];
    let weights = runner::model_entry(&spec, k).weights.as_deref();
    let data = float_model::load_data(float_spec)?;
    if stage == Stage::Float {
        let mut bars = TrainBars::new(float_spec.train.epochs);
        let model = float_model::ensure(results_root, float_spec, &data, weights, &mut bars)?;
        eprintln!(
            "float {} seed {}: test {:.2}% ({})",
            float_spec.model,
            float_spec.train.seed,
            100.0 * model.record.test_accuracy,
            model.dir.display()
        );
        return Ok(());
    }
    let model =
        float_model::cached(results_root, float_spec, &data, weights)?.ok_or_else(|| {
            anyhow!(
                "float model {} seed {} is not in {}: its float task must finish first",
                float_spec.model,
                float_spec.train.seed,
                results_root.join("models").display()
            )
        })?;
    let method = &spec.methods[m];
    let id = runner::cell_id(&model.record, method, float_spec.train.seed)?;
    if run.finished_cell(&id)?.is_some() {
        eprintln!("cell {id} is already done");
        return Ok(());
    }
    eprintln!(
        "start cell {id}: {} seed {}, {} (spec line {})",
        float_spec.model,
        float_spec.train.seed,
        method.config.name(),
        method.line
    );
    let record = runner::run_one(
        &run,
        &model,
        &data,
        method,
        results_root,
        &mut TrainBars::new(0),
    )?;
    eprintln!(
        "done  cell {id}: {} accuracy {:.2}%",
        record.result.report.label,
        100.0 * record.result.int_accuracy
    );
    Ok(())
}

/// Every grid position of a Slurm run with its state; also records the float models and the
/// finishing time in the manifest once known.
pub fn status(run: RunDir, results_root: &Path) -> Result<Vec<CellStatus>> {
    let jobs = read_jobs(&run)?;
    let spec = run.spec()?;
    let grid = Grid::load(run, spec, results_root)?;
    grid.sync_manifest()?;
    let ids = job_ids(&jobs);
    let (live, states) = if ids.is_empty() {
        Default::default()
    } else {
        (query::live_tasks(&ids)?, query::task_states(&ids)?)
    };
    let float_specs = runner::float_specs(&grid.spec);
    let positions = runner::grid(&grid.spec);
    let mut out = Vec::new();
    for (j, (cell_id, done)) in grid.cells.iter().enumerate() {
        let (k, m) = positions[j];
        let float_spec = &float_specs[k];
        let method = &grid.spec.methods[m];
        let last = jobs
            .submissions
            .iter()
            .rev()
            .filter_map(|s| s.cells.as_ref())
            .find(|c| c.indices.contains(&j));
        let key = last.map(|c| (c.job_id.clone(), j));
        let state = if *done {
            CellState::Done
        } else if let Some(key) = &key {
            match live
                .get(key)
                .or_else(|| states.get(key))
                .map(String::as_str)
            {
                Some("PENDING") => CellState::Pending,
                Some(
                    "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED" | "REQUEUED"
                    | "RESIZING" | "STAGE_OUT",
                ) => CellState::Running,
                Some("COMPLETED") => CellState::Failed("COMPLETED without a valid record".into()),
                Some(other) => CellState::Failed(other.to_string()),
                None => CellState::Failed("left the queue without a record".into()),
            }
        } else {
            CellState::NotSubmitted
        };
        out.push(CellStatus {
            index: j,
            model: float_spec.model.clone(),
            seed: float_spec.train.seed,
            method: format!("{} {}", method.config.name(), method.config.options()),
            cell_id: cell_id.clone(),
            state,
            task: key.map(|(job, j)| format!("{job}_{j}")),
        });
    }
    Ok(out)
}

/// Brings a Slurm run's manifest up to date before its tables are written; returns how many cells
/// are not done yet.
pub fn finalize(run: &RunDir, results_root: &Path) -> Result<usize> {
    let spec = run.spec()?;
    let grid = Grid::load(run.clone(), spec, results_root)?;
    grid.sync_manifest()?;
    Ok(grid.cells.iter().filter(|c| !c.1).count())
}
