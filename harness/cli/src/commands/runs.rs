//! `qbench runs list|show|diff` and `qbench verify`: look into the result store, compare runs,
//! and recompute a sample of a run's cells to check that they reproduce.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::experiment::aggregate;
use crate::experiment::store::{self, CellRecord, RunDir};
use crate::float_model;
use crate::method_run::run_method;
use crate::progress::TrainBars;
use crate::results;

/// `qbench runs ...`.
#[derive(Subcommand)]
pub enum RunsCommand {
    /// List the runs in the store.
    List(StoreArgs),
    /// Show a run's manifest and table.
    Show(ShowArgs),
    /// Compare two runs cell by cell (same model, method options and seed).
    Diff(DiffArgs),
    /// Show each cell of a Slurm run: done, running, pending or failed (from squeue/sacct).
    Status(super::slurm::StatusArgs),
}

/// Where the store is.
#[derive(Args)]
pub struct StoreArgs {
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// Options of `qbench runs show`.
#[derive(Args)]
pub struct ShowArgs {
    /// Run id (see `qbench runs list`) or run folder.
    pub run: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Options of `qbench runs diff`.
#[derive(Args)]
pub struct DiffArgs {
    /// The first run.
    pub a: String,
    /// The second run.
    pub b: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Options of `qbench verify`.
#[derive(Args)]
pub struct VerifyArgs {
    /// Run id (see `qbench runs list`) or run folder.
    pub run: String,
    /// Cells to recompute, chosen at random (seeded by --seed); the sample always holds at least
    /// one cell of every method in the run, so it may be larger.
    #[arg(long, default_value_t = 2)]
    pub sample: usize,
    /// Recompute every cell.
    #[arg(long, conflicts_with = "sample")]
    pub all: bool,
    /// Seed of the sample's choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    store: StoreArgs,
}

/// Runs a `runs` subcommand.
pub fn run(cmd: RunsCommand) -> Result<()> {
    match cmd {
        RunsCommand::List(a) => list(&a),
        RunsCommand::Show(a) => show(&a),
        RunsCommand::Diff(a) => diff(&a),
        RunsCommand::Status(a) => super::slurm::status(&a),
    }
}

fn list(args: &StoreArgs) -> Result<()> {
    let root = results::root(args.results.as_deref());
    let runs = store::list(&root)?;
    if runs.is_empty() {
        println!(
            "no runs under {} yet; `qbench run SPEC` or `qbench reproduce` makes one",
            store::runs_dir(&root).display()
        );
    }
    for run in runs {
        let m = run.manifest()?;
        let done = run.cells()?.len();
        println!(
            "{:<32} {:>3}/{:<3} cells  {}{}  git {}{}",
            run.id,
            done,
            m.cells.len(),
            m.dataset.name,
            if m.quick { " (quick)" } else { "" },
            &m.git.revision[..m.git.revision.len().min(10)],
            if m.git.dirty { " (dirty)" } else { "" }
        );
    }
    Ok(())
}

fn show(args: &ShowArgs) -> Result<()> {
    let run = RunDir::open(&results::root(args.store.results.as_deref()), &args.run)?;
    let m = run.manifest()?;
    println!("run      {}  ({})", run.id, run.dir.display());
    println!("spec     {} (sha256 {})", m.spec_source, m.spec_sha256);
    println!(
        "git      {}{}",
        m.git.revision,
        if m.git.dirty { " (dirty)" } else { "" }
    );
    println!(
        "machine  {} ({}, {} cores, {:.1} GiB, {})",
        m.machine.hostname, m.machine.cpu, m.machine.cores, m.machine.memory_gib, m.machine.os
    );
    println!("dataset  {} (sha256 {})", m.dataset.name, m.dataset.sha256);
    for model in &m.models {
        println!(
            "model    {} seed {}: weights sha256 {}, test {:.2}%",
            model.model,
            model.seed,
            model.weights_sha256,
            100.0 * model.test_accuracy
        );
    }
    for (tool, version) in &m.tools {
        println!("tool     {tool}: {version}");
    }
    if let Some(lib) = &m.liberty {
        println!("liberty  {} (sha256 {})", lib.path, lib.sha256);
    }
    let cells = run.cells()?;
    println!("cells    {}/{} finished\n", cells.len(), m.cells.len());
    let metric = crate::experiment::figures::metric(&cells);
    print!("{}", aggregate::markdown(&aggregate::rows(&cells), metric));
    Ok(())
}

/// The identity of a cell across runs: what was computed, not where.
fn cell_key(c: &CellRecord) -> String {
    format!("{} {} {} seed {}", c.model, c.method, c.options, c.seed)
}

fn diff(args: &DiffArgs) -> Result<()> {
    let root = results::root(args.store.results.as_deref());
    let (a, b) = (RunDir::open(&root, &args.a)?, RunDir::open(&root, &args.b)?);
    let index = |run: &RunDir| -> Result<BTreeMap<String, CellRecord>> {
        Ok(run
            .cells()?
            .into_iter()
            .map(|c| (cell_key(&c), c))
            .collect())
    };
    let (ca, cb) = (index(&a)?, index(&b)?);
    let (ma, mb) = (a.manifest()?, b.manifest()?);
    if ma.git != mb.git {
        println!("git: {} -> {}", ma.git.revision, mb.git.revision);
    }
    if ma.dataset != mb.dataset {
        println!("dataset: {} -> {}", ma.dataset.sha256, mb.dataset.sha256);
    }
    let mut same = 0;
    for (key, x) in &ca {
        match cb.get(key) {
            None => println!("only in {}: {}", a.id, x.result.report.label),
            Some(y)
                if x.result.graph_sha256 == y.result.graph_sha256
                    && x.result.int_accuracy == y.result.int_accuracy =>
            {
                same += 1
            }
            Some(y) => println!(
                "{} ({}): accuracy {:.2}% -> {:.2}% ({:+.2}), graph {}",
                x.result.report.label,
                x.model,
                100.0 * x.result.int_accuracy,
                100.0 * y.result.int_accuracy,
                100.0 * (y.result.int_accuracy - x.result.int_accuracy),
                if x.result.graph_sha256 == y.result.graph_sha256 {
                    "identical"
                } else {
                    "differs"
                }
            ),
        }
    }
    for (key, y) in &cb {
        if !ca.contains_key(key) {
            println!("only in {}: {}", b.id, y.result.report.label);
        }
    }
    println!("{same} cells identical (same graph bytes and accuracy)");
    Ok(())
}

/// Recomputes a sample of a run's cells from their float models, without any method cache, and
/// checks that graph bytes and every measured number match the stored records.
pub fn verify(args: VerifyArgs) -> Result<()> {
    let root = results::root(args.store.results.as_deref());
    let run = RunDir::open(&root, &args.run)?;
    let spec = run.spec()?;
    let mut cells = run.cells()?;
    if cells.is_empty() {
        bail!("run {} has no finished cells to verify", run.id);
    }
    cells.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(args.seed));
    if !args.all {
        cells = sample_every_method(cells, args.sample);
    }
    let scratch = tempfile::tempdir().context("creating a scratch results folder")?;
    let mut mismatches = 0;
    let manifest = run.manifest()?;
    // Float models whose test accuracy was derived again, by (model, seed).
    let mut floats_checked = std::collections::BTreeSet::new();
    for cell in &cells {
        let entry = spec
            .models
            .iter()
            .find(|m| m.model == cell.model)
            .with_context(|| format!("the spec has no model `{}`", cell.model))?;
        let float_spec = spec.float_spec(entry, cell.seed);
        let data = float_model::load_data(&float_spec)?;
        // The float model comes from the store (its weights hash is checked on load); the method
        // runs again from scratch in an empty folder.
        let model = float_model::ensure(
            &root,
            &float_spec,
            &data,
            entry.weights.as_deref(),
            &mut TrainBars::new(0),
        )?;
        if floats_checked.insert((cell.model.clone(), cell.seed)) {
            mismatches += usize::from(!verify_float(&model, &data, cell, &manifest)?);
        }
        let method = spec
            .methods
            .iter()
            .find(|m| {
                m.entry == cell.spec_entry
                    && m.config.name() == cell.method
                    && m.config.options() == &cell.options
            })
            .with_context(|| {
                format!(
                    "cell {} ({} {}) is not in the run's spec (records store the options with \
                     every default filled in; one written before qbench did so matches no \
                     config: run the spec again)",
                    cell.cell_id, cell.method, cell.options
                )
            })?;
        // A scratch results folder: always computed again, never read from a cache.
        let (again, _) = run_method(
            scratch.path(),
            &model,
            &data,
            &method.config,
            cell.seed,
            &mut TrainBars::new(0),
        )?;
        let stored = &cell.result;
        let ok = again.graph_sha256 == stored.graph_sha256
            && again.int_accuracy == stored.int_accuracy
            && again.fake_accuracy == stored.fake_accuracy
            && again.agreement == stored.agreement
            && again.quant_ops == stored.quant_ops
            && again.weight_bits == stored.weight_bits;
        println!(
            "{} {} ({}, seed {}): accuracy {:.2}% vs stored {:.2}%, graph {}",
            if ok { "ok      " } else { "MISMATCH" },
            stored.report.label,
            cell.cell_id,
            cell.seed,
            100.0 * again.int_accuracy,
            100.0 * stored.int_accuracy,
            if again.graph_sha256 == stored.graph_sha256 {
                "identical"
            } else {
                "differs"
            }
        );
        mismatches += usize::from(!ok);
    }
    if mismatches > 0 {
        bail!(
            "{mismatches} of {} recomputed cells and {} float models differ from the store",
            cells.len(),
            floats_checked.len()
        );
    }
    println!(
        "{} cells and {} float models recomputed; all match",
        cells.len(),
        floats_checked.len()
    );
    Ok(())
}

/// The first `n` of the shuffled `cells`, plus the first cell of every method the run has that
/// those miss: a sample that checks every method family, whatever `n`.
fn sample_every_method(cells: Vec<CellRecord>, n: usize) -> Vec<CellRecord> {
    let mut methods = std::collections::BTreeSet::new();
    let mut sample = Vec::new();
    for (i, cell) in cells.into_iter().enumerate() {
        if methods.insert(cell.method.clone()) || i < n {
            sample.push(cell);
        }
    }
    sample
}

/// Derives the float model's test accuracy again (the stored weights evaluated on the test split,
/// as when it was recorded) and checks it against the model's record, the run manifest and the
/// cell; prints the outcome and returns whether all agree.
fn verify_float(
    model: &float_model::FloatModel,
    data: &float_model::Data,
    cell: &CellRecord,
    manifest: &crate::experiment::manifest::Manifest,
) -> Result<bool> {
    let again = float_model::test_accuracy_again(model, data)?;
    let in_manifest = manifest
        .models
        .iter()
        .find(|m| m.model == cell.model && m.seed == cell.seed)
        .map(|m| m.test_accuracy);
    let ok = again == model.record.test_accuracy
        && again == cell.float.test_accuracy
        && in_manifest == Some(again);
    println!(
        "{} float {} (seed {}): test accuracy {:.2}% vs model record {:.2}%, manifest {}, cell \
         record {:.2}%",
        if ok { "ok      " } else { "MISMATCH" },
        cell.model,
        cell.seed,
        100.0 * again,
        100.0 * model.record.test_accuracy,
        in_manifest.map_or("missing".to_string(), |a| format!("{:.2}%", 100.0 * a)),
        100.0 * cell.float.test_accuracy,
    );
    Ok(ok)
}
