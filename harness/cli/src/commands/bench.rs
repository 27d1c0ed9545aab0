//! `qbench bench ...`: speed measured side by side with the machine's own peak in one run.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

/// Benchmark subcommands.
#[derive(Subcommand)]
pub enum BenchCommand {
    /// Integer kernels (int8 GEMM and convolutions, depthwise convolution, binary convolution) at
    /// 1 and 2 threads, as GMAC/s and as a fraction of the peak that short SIMD loops measure on
    /// this core.
    Kernels {
        /// Also write the report as JSON (read by harness/engine/benches/onnxruntime_compare.py).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Seconds spent per case and thread count.
        #[arg(long, default_value_t = 1.5)]
        seconds_per_case: f64,
    },
    /// The integer engine on a whole ImageNet model: images per second of ResNet-18 at 224x224
    /// lowered at 8 bits, at 1 and 2 threads, and the estimated time for the 50,000 ImageNet
    /// validation images. Weights are random (speed does not depend on their values).
    Resnet18 {
        /// Images per engine call (rayon splits a batch across threads).
        #[arg(long, default_value_t = 8)]
        batch: usize,
        /// Seconds of measurement per thread count (at least one batch is run).
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Method config of the lowering (YAML), e.g. `{method: djq, weight_bits: 8,
        /// activation_bits: 8}`.
        #[arg(long, default_value = qbench_methods::method::registry::BASELINE_CONFIG)]
        method: String,
        /// Also run the same graph, exported to ONNX (`qbench export`), in onnxruntime at 1 and
        /// 2 intra-op threads through the project's Python (`.ci/python-env`), and print the
        /// ratio engine / onnxruntime.
        #[arg(long)]
        onnxruntime: bool,
        /// Also print a per-layer profile of the engine at one thread (wall time per node and
        /// the MAC rate of each convolution and dense layer).
        #[arg(long)]
        layers: bool,
    },
    /// Float training speed: one epoch of a zoo model over the whole training pool of a dataset
    /// (no validation pass, nothing cached), in seconds per epoch and against the 60 s target.
    /// Run it on a quiet machine; the load average is printed beside the figure.
    Train {
        /// Architecture (see `qbench models`).
        #[arg(long, default_value = "cnn")]
        model: String,
        /// Dataset (see `qbench data list`).
        #[arg(long, default_value = qbench_datasets::DEFAULT_DATASET)]
        dataset: String,
        /// Epochs to average over.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
    },
}

/// Runs a benchmark and prints its report.
pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Kernels {
            json,
            seconds_per_case,
        } => {
            let config = qbench_kernels::bench::BenchConfig {
                budget_per_case: std::time::Duration::from_secs_f64(seconds_per_case.max(0.05)),
                ..Default::default()
            };
            eprintln!(
                "measuring peaks and kernels (about {:.0} s)...",
                15.0 * seconds_per_case + 2.0
            );
            let report = qbench_kernels::bench::run(&config);
            println!("{report}");
            if let Some(path) = json {
                crate::results::write_text(&path, &report.to_json())?;
                println!("JSON written to {}", path.display());
            }
            Ok(())
        }
        BenchCommand::Resnet18 {
            batch,
            seconds,
            method,
            onnxruntime,
            layers,
        } => super::bench_model::resnet18(batch.max(1), seconds, &method, onnxruntime, layers),
        BenchCommand::Train {
            model,
            dataset,
            epochs,
        } => super::bench_train::train_speed(&model, &dataset, epochs),
    }
}
