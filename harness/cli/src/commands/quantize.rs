//! `qbench quantize`: quantize a trained float model with a configured method, write the integer
//! graph, and report its accuracy from the integer engine beside the method's fake-quant forward.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use qbench_methods::method::config::MethodConfig;

use crate::commands::train::TrainArgs;
use crate::float_model;
use crate::method_run::{Origin, run_method};
use crate::progress::TrainBars;
use crate::results;

/// Options of `qbench quantize`.
#[derive(Args)]
pub struct QuantizeArgs {
    /// Method config (YAML with a `method:` key; see methods/configs/ and methods/ADDING_A_METHOD.md).
    #[arg(long)]
    pub config: PathBuf,
    /// Also copy the graph here (it is always kept in the results store).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The float model to quantize (trained first if it is not cached).
    #[command(flatten)]
    pub float: TrainArgs,
}

/// Quantizes and prints the result.
pub fn run(args: QuantizeArgs) -> Result<()> {
    // Parsed once, before any training: the value that is hashed, run and reported.
    let config = MethodConfig::from_path(&args.config)?;
    let spec = args.float.spec()?;
    let root = results::root(args.float.results.as_deref());
    let data = float_model::load_data(&spec)?;
    let mut bars = TrainBars::new(spec.train.epochs);
    let model = float_model::ensure_trained(&root, &spec, &data, &mut bars)?;
    let (r, origin) = run_method(
        &root,
        &model,
        &data,
        &config,
        spec.train.seed,
        &mut TrainBars::new(0),
    )?;
    if let Some(out) = &args.out {
        std::fs::copy(&r.graph_path, out)
            .with_context(|| format!("copying the graph to {}", out.display()))?;
    }
    let cached = match origin {
        Origin::Cached => " (from the method cache)",
        Origin::Computed => "",
    };
    println!(
        "{} ({} on {}){cached}",
        r.report.label, spec.model, spec.dataset
    );
    println!(
        "  graph            {} (sha256 {})",
        args.out.as_ref().unwrap_or(&r.graph_path).display(),
        r.graph_sha256
    );
    println!(
        "  float accuracy   {:.2}%",
        100.0 * model.record.test_accuracy
    );
    println!("  integer engine   {:.2}%", 100.0 * r.int_accuracy);
    println!(
        "  fake-quant       {:.2}% (agreement {:.2}%)",
        100.0 * r.fake_accuracy,
        100.0 * r.agreement
    );
    println!("  quant ops/image  {}", r.quant_ops);
    println!("  weight memory    {} bits", r.weight_bits);
    Ok(())
}
