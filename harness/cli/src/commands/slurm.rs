//! The Slurm backend's commands: `qbench run --backend slurm` options, `qbench runs status`, and
//! the hidden `qbench run-task` an array task executes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::experiment::slurm::{self, CellState, Stage, script::Resources};
use crate::experiment::spec::ExperimentSpec;
use crate::experiment::store::RunDir;
use crate::results;

/// Where `qbench run` runs the cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// On this machine's cores.
    #[default]
    Local,
    /// As Slurm job arrays (the results folder must be on a filesystem every node shares).
    Slurm,
}

/// Resources of every Slurm task (`--backend slurm` only).
#[derive(Args, Clone, Debug, Default)]
#[command(next_help_heading = "Slurm backend")]
pub struct SlurmArgs {
    /// Partition to submit to [default: the cluster's].
    #[arg(long)]
    pub partition: Option<String>,
    /// Wall-time limit per task, in Slurm's format (e.g. `2:00:00`).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task.
    #[arg(long)]
    pub cpus_per_task: Option<u32>,
    /// Memory per task (e.g. `4G`).
    #[arg(long)]
    pub mem: Option<String>,
    /// Further sbatch option, verbatim (repeatable), e.g. `--sbatch-arg=--account=lab`.
    #[arg(long = "sbatch-arg", allow_hyphen_values = true)]
    pub sbatch_args: Vec<String>,
}

/// Options of the hidden `qbench run-task`.
#[derive(Args)]
pub struct RunTaskArgs {
    /// Run id or run folder.
    pub run: String,
    /// Which array the task belongs to.
    #[arg(long, value_enum)]
    pub stage: TaskStage,
    /// Array index [default: $SLURM_ARRAY_TASK_ID].
    #[arg(long)]
    pub index: Option<usize>,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// The arrays of a Slurm run.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TaskStage {
    /// Float-model training.
    Float,
    /// Cells.
    Cells,
}

/// Options of `qbench runs status`.
#[derive(Args)]
pub struct StatusArgs {
    /// Run id (see `qbench runs list`) or run folder.
    pub run: String,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// Submits a spec's unfinished cells to Slurm.
pub fn submit(
    spec: &ExperimentSpec,
    results: Option<&std::path::Path>,
    args: &SlurmArgs,
) -> Result<()> {
    let resources = Resources {
        partition: args.partition.clone(),
        time: args.time.clone(),
        cpus_per_task: args.cpus_per_task,
        mem: args.mem.clone(),
        extra: args.sbatch_args.clone(),
    };
    slurm::submit(spec, &results::root(results), &resources)?;
    Ok(())
}

/// Runs one array task.
pub fn run_task(args: RunTaskArgs) -> Result<()> {
    let stage = match args.stage {
        TaskStage::Float => Stage::Float,
        TaskStage::Cells => Stage::Cell,
    };
    let index = match args.index {
        Some(i) => i,
        None => {
            let var = std::env::var("SLURM_ARRAY_TASK_ID").context(
                "no --index and no $SLURM_ARRAY_TASK_ID (not inside a Slurm array task)",
            )?;
            var.parse()
                .with_context(|| format!("$SLURM_ARRAY_TASK_ID is `{var}`, not an index"))?
        }
    };
    slurm::run_task(
        &args.run,
        &results::root(args.results.as_deref()),
        stage,
        index,
    )
    .with_context(|| format!("{:?} task {index} of {}", args.stage, args.run))
}

/// Prints every cell of a Slurm run with its state, then the counts.
pub fn status(args: &StatusArgs) -> Result<()> {
    let root = results::root(args.results.as_deref());
    let run = RunDir::open(&root, &args.run)?;
    if !slurm::is_slurm_run(&run) {
        anyhow::bail!(
            "run {} was not submitted to Slurm (`qbench run SPEC --backend slurm`); \
             `qbench runs show {}` shows its cells",
            run.id,
            run.id
        );
    }
    let id = run.id.clone();
    let cells = slurm::status(run, &root)?;
    let mut counts = [0usize; 5];
    for c in &cells {
        let (slot, state) = match &c.state {
            CellState::Done => (0, "done".to_string()),
            CellState::Running => (1, "running".to_string()),
            CellState::Pending => (2, "pending".to_string()),
            CellState::Failed(why) => (3, format!("failed ({why})")),
            CellState::NotSubmitted => (4, "not submitted".to_string()),
        };
        counts[slot] += 1;
        println!(
            "{:>4}  {:<16}  {:<12}  {:<28}  {} seed {}  {}",
            c.index,
            c.cell_id.as_deref().unwrap_or("-"),
            c.task.as_deref().unwrap_or("-"),
            state,
            c.model,
            c.seed,
            c.method
        );
    }
    println!(
        "run {id}: {} cells: {} done, {} running, {} pending, {} failed, {} not submitted",
        cells.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4]
    );
    if counts[3] + counts[4] > 0 {
        println!("submit the same spec again with --backend slurm to rerun the unfinished cells");
    } else if counts[0] == cells.len() {
        println!("all done: `qbench aggregate {id}` writes the tables");
    }
    Ok(())
}
