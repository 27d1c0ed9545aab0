//! `qbench export`: an integer graph as an ONNX model (see `qbench_onnx::export`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use qbench_engine::QGraph;
use qbench_onnx::Provenance;

/// Options of `qbench export`.
#[derive(Args)]
#[command(after_help = "\
The model computes exactly the engine's integers: convolutions and dense layers as ConvInteger \
and MatMulInteger, requantizers (shift and fixed point) as int64 integer ops that round as the \
engine does, pools as exact integer sums. onnxruntime runs it and gives the engine's logits bit \
for bit. BNN/QNN graphs (threshold and multi-threshold requantizers) are QONNX: their thresholds \
are qonnx MultiThreshold nodes, which qonnx's executor (qonnx.core.onnx_exec) runs.

Input `input`: uint8 [N, C, H, W] (or [N, F]), the raw pixels. Output `logits`: int32 \
[N, classes], the engine's i32 scores. The metadata holds qbench.graph_sha256, qbench.version \
and qbench.source (the graph file's name); `qbench import` of the file gives the same graph \
file back, byte for byte.

Example:
  qbench export results/graphs/cnn-int8.qgraph --onnx cnn-int8.onnx")]
pub struct ExportArgs {
    /// The graph file (written by `qbench quantize`, `qbench import` or a method's lowering).
    pub graph: PathBuf,
    /// Where to write the ONNX model.
    #[arg(long, value_name = "OUT.onnx")]
    pub onnx: PathBuf,
    /// Then run the exported model in onnxruntime (qonnx's executor for BNN/QNN graphs) through
    /// the project's Python (`.ci/python-env`) on the test images of `--dataset` and print the
    /// agreement of predictions and the largest logit difference against the engine.
    #[arg(long)]
    pub crosscheck: bool,
    /// Dataset of the cross-check (see `qbench data list`).
    #[arg(long, default_value = qbench_datasets::DEFAULT_DATASET)]
    pub dataset: String,
    /// Test images of the cross-check, the first ones of the split (0 = all).
    #[arg(long, default_value_t = 0)]
    pub images: usize,
}

/// Runs `qbench export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let (graph, sha256) =
        QGraph::load(&args.graph).with_context(|| format!("loading {}", args.graph.display()))?;
    let provenance = Provenance {
        source: args
            .graph
            .file_name()
            .map(|n| n.to_string_lossy().into_owned()),
    };
    qbench_onnx::export_file(&graph, &sha256, &provenance, &args.onnx)?;
    println!(
        "wrote {} ({} nodes; graph sha256 {sha256})",
        args.onnx.display(),
        graph.nodes.len()
    );
    if args.crosscheck {
        let (set, _) =
            qbench_datasets::load_verified(args.dataset.as_str(), qbench_datasets::Split::Test)
                .with_context(|| format!("loading the test split of {}", args.dataset))?;
        let n = if args.images == 0 {
            set.len()
        } else {
            args.images.min(set.len())
        };
        let c = qbench_onnx::crosscheck(&graph, &set.images[..n * set.image_len()])?;
        println!(
            "{} images: {} agreement {:.4} ({:.2} %), largest logit difference {}",
            c.images,
            c.runtime,
            c.agreement,
            100.0 * c.agreement,
            c.max_logit_diff
        );
    }
    Ok(())
}
