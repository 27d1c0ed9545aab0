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
}

/// Runs `qbench export`.
pub fn run(args: ExportArgs) -> Result<()> {
    let (graph, sha256) = QGraph::load(&args.graph)
        .with_context(|| format!("loading {}", args.graph.display()))?;
    let provenance = Provenance {
        source: args.graph.file_name().map(|n| n.to_string_lossy().into_owned()),
    };
    qbench_onnx::export_file(&graph, &sha256, &provenance, &args.onnx)?;
    println!(
        "wrote {} ({} nodes; graph sha256 {sha256})",
        args.onnx.display(),
        graph.nodes.len()
    );
    Ok(())
}
