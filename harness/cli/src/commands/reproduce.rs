//! `qbench reproduce`: the paper suite on the default data, end to end. It runs the built-in spec
//! `harness/cli/suites/paper.yaml` exactly as `qbench run` runs a user's: train (or reuse) the
//! float model on Fashion-MNIST, quantize it with every method, evaluate every integer graph with
//! the engine, and write the run's tables into the result store.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::experiment::spec::ExperimentSpec;
use crate::results;

/// Options of `qbench reproduce`.
#[derive(Args)]
pub struct ReproduceArgs {
    /// The spec's smaller budget (one epoch on 12,000 images, a subset of methods); numbers are lower.
    #[arg(long)]
    pub quick: bool,
    /// Float models and cells to run at once, each on one thread when more than one (set
    /// `RAYON_NUM_THREADS` to override) [default: the cores, limited by available memory].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Results folder [default: $QBENCH_RESULTS or ./results].
    #[arg(long)]
    pub results: Option<PathBuf>,
}

/// The suite shipped with qbench.
pub const PAPER_SUITE: &str = include_str!("../../suites/paper.yaml");

/// Where the built-in suite lives in the source tree (for messages and manifests).
pub const PAPER_SUITE_SOURCE: &str = "harness/cli/suites/paper.yaml";

/// Runs the suite.
pub fn run(args: ReproduceArgs) -> Result<()> {
    let spec = ExperimentSpec::from_text(PAPER_SUITE, PAPER_SUITE_SOURCE, args.quick)?;
    super::run::run_spec(&spec, &results::root(args.results.as_deref()), args.jobs)
}
