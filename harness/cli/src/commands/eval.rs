//! `qbench eval`: accuracy, throughput and operation counts of a saved integer graph.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use qbench_datasets::{DEFAULT_DATASET, ImageSet, Split, load_verified, train_val_split};
use qbench_engine::{QGraph, evaluate};

use crate::commands::train::DEFAULT_VAL_FRACTION;
use crate::progress;

/// The images `qbench eval` classifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EvalSplit {
    /// The whole training split.
    Train,
    /// The validation images: the part of the training split that `qbench train` holds out
    /// with the same `--seed` and `--val-fraction`.
    Val,
    /// The test split (for ImageNet, the ILSVRC-2012 validation folder).
    Test,
}

impl fmt::Display for EvalSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EvalSplit::Train => "train",
            EvalSplit::Val => "val",
            EvalSplit::Test => "test",
        })
    }
}

/// Options of `qbench eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// The graph file (written by `qbench quantize` or a method's lowering).
    pub graph: PathBuf,
    /// Dataset whose images the graph classifies (see `qbench data list`).
    #[arg(long, default_value = DEFAULT_DATASET)]
    pub dataset: String,
    /// Which images to evaluate.
    #[arg(long, value_enum, default_value_t = EvalSplit::Test)]
    pub split: EvalSplit,
    /// With `--split val`: the seed of the validation split (as given to `qbench train`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// With `--split val`: the fraction of the training split held out (as given to `qbench train`).
    #[arg(long, default_value_t = DEFAULT_VAL_FRACTION)]
    pub val_fraction: f64,
    /// Images per engine call.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Also print the per-layer operation counts.
    #[arg(long)]
    pub counts: bool,
}

/// Loads the images of `args.split`, after verifying every file of the dataset against the
/// registry's sha256 (as `train` and `run` do).
fn load_images(args: &EvalArgs) -> Result<ImageSet> {
    let split = match args.split {
        EvalSplit::Test => Split::Test,
        EvalSplit::Train | EvalSplit::Val => Split::Train,
    };
    if args.split == EvalSplit::Val && !(args.val_fraction > 0.0 && args.val_fraction < 1.0) {
        bail!(
            "--split val needs --val-fraction in (0, 1), got {}",
            args.val_fraction
        );
    }
    let (set, _checks) = load_verified(args.dataset.as_str(), split)
        .with_context(|| format!("loading the {} split of {}", args.split, args.dataset))?;
    if args.split != EvalSplit::Val {
        return Ok(set);
    }
    let (_, val_idx) = train_val_split(set.len(), args.val_fraction, args.seed);
    Ok(set.subset(&val_idx))
}

/// Evaluates the graph and prints accuracy, images per second and counts.
pub fn run(args: EvalArgs) -> Result<()> {
    let (graph, sha) =
        QGraph::load(&args.graph).with_context(|| format!("loading {}", args.graph.display()))?;
    let set = load_images(&args)?;
    if set.image_len() != graph.input_len() {
        bail!(
            "{} takes {}-byte images but {} has {}x{}x{} = {} bytes per image",
            args.graph.display(),
            graph.input_len(),
            args.dataset,
            set.channels,
            set.height,
            set.width,
            set.image_len()
        );
    }
    let bar = progress::count_bar("evaluating", set.len() as u64);
    let report = evaluate(&graph, &set.images, &set.labels, args.batch_size, |done| {
        bar.set_position(done as u64)
    })?;
    bar.finish_and_clear();
    println!("graph        {} (sha256 {sha})", args.graph.display());
    let which = match args.split {
        EvalSplit::Val => format!(
            "val (held out: {} of train, seed {})",
            args.val_fraction, args.seed
        ),
        s => s.to_string(),
    };
    println!(
        "dataset      {} {which} ({} images)",
        args.dataset, report.images
    );
    println!("top-1        {:.2}%", 100.0 * report.top1);
    if let Some(top5) = report.top5 {
        println!("top-5        {:.2}%", 100.0 * top5);
    }
    println!(
        "throughput   {:.0} images/s ({:.3} s)",
        report.images_per_second, report.seconds
    );
    print_counts(&report.counts, args.counts);
    Ok(())
}

/// Prints the per-image totals, and with `per_node` one line per graph node.
fn print_counts(c: &qbench_engine::OpCounts, per_node: bool) {
    fn join<K: std::fmt::Display>(m: &std::collections::BTreeMap<K, u64>) -> String {
        m.iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
    println!("MACs         {} ({})", c.total_macs, join(&c.macs_by_kind));
    println!("binary MACs  {}", c.binary_macs);
    println!(
        "requant ops  {} ({})",
        c.total_requant_ops,
        join(&c.requant_by_kind)
    );
    println!(
        "weights      {} bits ({:.1} KiB)",
        c.weight_bits,
        c.weight_bits as f64 / 8192.0
    );
    println!(
        "activations  {} bits peak, {} bits in all",
        c.peak_activation_bits, c.activation_bits_total
    );
    if per_node {
        println!(
            "\n{:>4} {:<16} {:<14} {:>12} {:<10} {:>10} {:<12}",
            "#", "name", "op", "MACs", "kind", "requant", "requant kind"
        );
        for n in &c.nodes {
            println!(
                "{:>4} {:<16} {:<14} {:>12} {:<10} {:>10} {:<12}",
                n.index,
                n.name,
                n.op,
                n.macs,
                n.mac_kind.as_ref().map_or("-", |k| k.key()),
                n.requant_ops,
                n.requant_kind.as_deref().unwrap_or("-")
            );
        }
    }
}
