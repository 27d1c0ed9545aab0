//! `qbench run SPEC` and `qbench aggregate RUN`: run an experiment spec into the result store,
//! and turn a run's cell records into its tables and figures.

use qbench_figures::Metric;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::Args;

use super::slurm::{self, Backend, SlurmArgs};
use crate::experiment::manifest::LibertyRef;
use crate::experiment::runner::{self, RunOptions};
use crate::experiment::spec::ExperimentSpec;
use crate::experiment::store::RunDir;
use crate::experiment::{self, aggregate, figures, hardware};
use crate::results;

/// Options of `qbench run`.
#[derive(Args)]
#[command(after_help = "\
A spec is YAML: `name`, `dataset`, `seeds`, `models` (architecture and training budget), `methods`
(method configs; a `grid:` mapping expands to the cartesian product of its lists), `hardware`
(`clock_mhz`, `liberty`, `units`, and `memory`: placement of weights and activations, SRAM arrays
and DRAM energy per access, node and supply; defaults from Horowitz, ISSCC 2014, see
qbench_hw::memory) and `quick` (the smaller budget of --quick). Start from the paper suite,
harness/cli/suites/paper.yaml.

Every cell (model x method config x seed) is stored by the hash of everything that determines it;
a finished cell is never recomputed, and a run stopped at any moment (Ctrl-C, kill -9, power loss)
resumes where it stopped when the same command is run again.")]
pub struct RunArgs {
    /// The experiment spec (YAML).
    pub spec: PathBuf,
    /// Apply the spec's `quick` budget.
    #[arg(long)]
    pub quick: bool,
    /// Float models and cells to run at once, each on one thread when more than one (set
    /// `RAYON_NUM_THREADS` to override) [default: the cores, limited by available memory].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Where the cells run.
    #[arg(long, value_enum, default_value_t)]
    pub backend: Backend,
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

/// Options of `qbench aggregate`.
#[derive(Args)]
pub struct AggregateArgs {
    /// Run id (folder name under results/runs, see `qbench runs list`) or the run folder's path.
    pub run: String,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// Runs a spec file.
pub fn run(args: RunArgs) -> Result<()> {
    let spec = ExperimentSpec::from_path(&args.spec, args.quick)?;
    if args.backend == Backend::Slurm {
        return slurm::submit(&spec, args.results.as_deref(), &args.slurm);
    }
    run_spec(&spec, &results::root(args.results.as_deref()), args.jobs)
}

/// Runs a parsed spec, then aggregates it, holding the run's lock throughout (a second `qbench
/// run` of the same spec and results folder waits, then finds the cells done).
pub fn run_spec(spec: &ExperimentSpec, results_root: &Path, jobs: Option<usize>) -> Result<()> {
    let _lock = RunDir::for_spec(results_root, spec)?.lock()?;
    let outcome = runner::run(
        spec,
        &RunOptions {
            results_root: results_root.to_path_buf(),
            jobs,
        },
    )?;
    eprintln!(
        "{} cells ({} computed now, {} from the method cache, {} already finished in this run)",
        outcome.cells.len(),
        outcome.computed,
        outcome.cached,
        outcome.cells.len() - outcome.computed - outcome.cached
    );
    write_tables(&outcome.run, results_root, spec)
}

/// Rebuilds a run's tables and figures (the hardware flow comes from its cache).
pub fn aggregate(args: AggregateArgs) -> Result<()> {
    let root = results::root(args.results.as_deref());
    let run = RunDir::open(&root, &args.run)?;
    let _lock = run.lock()?;
    if experiment::slurm::is_slurm_run(&run) {
        let unfinished = experiment::slurm::finalize(&run, &root)?;
        if unfinished > 0 {
            eprintln!("warning: {unfinished} cells of {} are not done yet", run.id);
        }
    }
    let spec = run.spec()?;
    write_tables(&run, &root, &spec)
}

/// Runs the hardware step, then writes the run's tables, figures and `tables/summary.{json,md}`
/// from its records, and prints the summary.
fn write_tables(run: &RunDir, results_root: &Path, spec: &ExperimentSpec) -> Result<()> {
    let cells = run.cells()?;
    let mut manifest = run.manifest()?;
    // Why the hardware flow did not run, when only a Debian package is missing.
    let mut skipped_hw = None;
    let hw = if spec.hardware.enabled {
        match hardware::run(run, results_root, &spec.hardware, &cells, &spec.dataset) {
            Ok(hw) => {
                if let Some(first) = hw.table.rows.first() {
                    let p = &first.provenance;
                    manifest.tools.extend(p.tools.clone());
                    manifest.liberty = Some(LibertyRef {
                        path: spec
                            .hardware
                            .liberty
                            .clone()
                            .unwrap_or_else(qbench_hw::tools::default_liberty)
                            .display()
                            .to_string(),
                        sha256: p.library_sha256.clone(),
                    });
                    run.write_manifest(&manifest)?;
                }
                Some(hw)
            }
            Err(err) if is_missing_tool(&err) => {
                skipped_hw = Some(format!("{err:#}"));
                None
            }
            Err(err) => return Err(err.context("hardware flow")),
        }
    } else {
        None
    };
    let rows = aggregate::rows(&cells);
    let input = figures::input(
        &format!("{} ({})", spec.name, spec.dataset),
        &manifest,
        &rows,
        &cells,
        hw.as_ref(),
    )?;
    let figures_dir = run.dir.join("figures");
    results::write_json(&figures_dir.join("input.json"), &input)?;
    let rendered = qbench_figures::render(&input, &figures_dir)?;
    let tables = run.dir.join("tables");
    results::write_json(&tables.join("summary.json"), &rows)?;
    let mut md = String::new();
    let metric = crate::experiment::figures::metric(&cells);
    // A detector's validation figure is its training signal (objects whose centre cell fires
    // for their class), not an AP.
    let validation = match metric {
        Metric::Top1Accuracy => "validation",
        Metric::MeanApModerate => "validation centre hits",
    };
    for m in &manifest.models {
        md.push_str(&format!(
            "Float `{}` (seed {}) on {}: test {} {:.2}%, {validation} {:.2}%.\n",
            m.model,
            m.seed,
            manifest.dataset.name,
            metric.short(),
            100.0 * m.test_accuracy,
            100.0 * m.val_accuracy
        ));
    }
    md.push_str(&format!(
        "{} is the {} on the test split, from the integer engine.",
        metric.short(),
        metric.described()
    ));
    let checked: Vec<usize> = cells
        .iter()
        .filter_map(|c| c.result.fake_quant_images)
        .collect();
    let tested = manifest.models.iter().map(|m| m.test_images).max();
    if let (Some(&fewest), Some(all)) = (checked.iter().min(), tested)
        && fewest < all
    {
        md.push_str(&format!(
            " Fake-quant accuracy and agreement are over evenly spaced samples of the test split \
             (at least {fewest} of {all} images; each record's `fake_quant_images`)."
        ));
    }
    md.push_str("\n\n");
    md.push_str(&aggregate::markdown(&rows, metric));
    let ap = aggregate::detection_markdown(&rows, &cells);
    if !ap.is_empty() {
        md.push_str(
            "\nKITTI AP per class and difficulty (%, 40 recall points, mean over seeds; boxes \
             decoded from the integer engine's maps):\n\n",
        );
        md.push_str(&ap);
    }
    if let Some(hw) = &hw {
        md.push_str(&format!(
            "\nHardware units ({} MHz; energy per operation on seeded random operands. Each \
             method's energy per inference instead simulates its units on the operand streams of \
             its own graph: hw/energy-<cell>.json, figures/methods.md):\n\n",
            spec.hardware.clock_mhz
        ));
        md.push_str(&hw.table.to_markdown());
    }
    if let Some(why) = &skipped_hw {
        md.push_str(&format!(
            "\n**Hardware flow not run**: {why}. Energy and area are left out of these tables; \
             install the package, then `qbench aggregate {}` completes them.\n",
            run.id
        ));
    }
    results::write_text(&tables.join("summary.md"), &md)?;
    print!("{md}");
    println!(
        "\nrun {} written to {}\ntables and figures: {}",
        run.id,
        run.dir.display(),
        rendered.index.display()
    );
    match skipped_hw {
        Some(why) => Err(crate::Incomplete(format!("hardware flow not run: {why}")).into()),
        None => Ok(()),
    }
}

/// True when the hardware flow failed only because a Debian package is not installed: a tool, or
/// the default Liberty library (a library the user named must exist; the spec checks it).
fn is_missing_tool(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        matches!(
            e.downcast_ref::<qbench_hw::error::HwError>(),
            Some(
                qbench_hw::error::HwError::MissingTools { .. }
                    | qbench_hw::error::HwError::MissingTool { .. }
                    | qbench_hw::error::HwError::MissingLibrary { .. }
            )
        )
    })
}
