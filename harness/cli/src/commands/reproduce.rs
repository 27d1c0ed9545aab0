//! `qbench reproduce`: the paper suite on the default data, end to end. It runs the built-in specs
//! exactly as `qbench run` runs a user's: `harness/cli/suites/paper.yaml` (classification: train
//! or reuse the float models on Fashion-MNIST, quantize them with every method, evaluate every
//! integer graph with the engine) and then `harness/cli/suites/detection.yaml` (the detector on
//! the generated KITTI-format set, scored by the KITTI evaluation), each writing its run's tables
//! into the result store.

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
    /// Which half of the paper to run.
    #[arg(long, value_enum, default_value_t = Section::All)]
    pub section: Section,
}

/// The halves of the paper suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Classification, then detection.
    All,
    /// Fashion-MNIST classification (`paper.yaml`).
    Classification,
    /// Detection on the generated KITTI-format set (`detection.yaml`).
    Detection,
}

/// The suite shipped with qbench.
pub const PAPER_SUITE: &str = include_str!("../../suites/paper.yaml");

/// Where the built-in suite lives in the source tree (for messages and manifests).
pub const PAPER_SUITE_SOURCE: &str = "harness/cli/suites/paper.yaml";

/// The detection suite shipped with qbench.
pub const DETECTION_SUITE: &str = include_str!("../../suites/detection.yaml");

/// Where the detection suite lives in the source tree.
pub const DETECTION_SUITE_SOURCE: &str = "harness/cli/suites/detection.yaml";

/// Runs the suite: every section asked for, the next one even when one could not finish its
/// hardware step (the first such error is returned at the end, so the exit code still says so).
pub fn run(args: ReproduceArgs) -> Result<()> {
    let root = results::root(args.results.as_deref());
    let mut sections = Vec::new();
    if args.section != Section::Detection {
        sections.push((PAPER_SUITE, PAPER_SUITE_SOURCE));
    }
    if args.section != Section::Classification {
        sections.push((DETECTION_SUITE, DETECTION_SUITE_SOURCE));
    }
    let mut incomplete = None;
    for (text, source) in sections {
        let spec = ExperimentSpec::from_text(text, source, args.quick)?;
        match super::run::run_spec(&spec, &root, args.jobs) {
            Ok(()) => {}
            Err(e) if e.downcast_ref::<crate::Incomplete>().is_some() => {
                incomplete.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    incomplete.map_or(Ok(()), Err)
}
