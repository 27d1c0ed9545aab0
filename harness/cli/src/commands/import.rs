//! `qbench import`: an ONNX model lowered to an integer graph (see `qbench_onnx::import`).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

/// Options of `qbench import`.
#[derive(Args)]
#[command(after_help = "\
Reads:
  - models `qbench export` wrote (read back exactly: the same graph file, byte for byte);
  - QDQ models: QuantizeLinear/DequantizeLinear around Conv, Gemm, MatMul, Add, pooling and \
Relu, as onnxruntime.quantization.quantize_static writes (uint8 activations, int8 weights with \
zero point 0, per tensor or per output channel);
  - QOperator models: QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger;
  - QONNX models, as Brevitas' export_qonnx writes them: Quant (weights and activations up to 8 \
bits, a 32-bit bias at the accumulator's scale), BipolarQuant (+-1 weights and activations: \
binary layers, threshold requantizers), MultiThreshold (FINN-style thresholds: multi-threshold \
requantizers).
The float input must be quantized to the pixel bytes themselves (scale 1/255 of p / 255, or 1 of \
p, zero point 0). Each QuantizeLinear of an accumulator becomes a requantizer: Shift where every \
combined scale is a power of two, else FixedPoint (gemmlowp's Q31 multiplier); logits may differ \
from onnxruntime's float rounding by a unit on ties. An operator qbench cannot lower is an error \
naming the node, its op type and its position.

Example:
  qbench import model.qdq.onnx --out model.qgraph && qbench eval model.qgraph")]
pub struct ImportArgs {
    /// The ONNX model.
    pub model: PathBuf,
    /// Where to write the graph (default: the model's path with extension .qgraph).
    #[arg(long, value_name = "GRAPH.qgraph")]
    pub out: Option<PathBuf>,
}

/// Runs `qbench import`.
pub fn run(args: ImportArgs) -> Result<()> {
    let model = qbench_onnx::read_model(&args.model)?;
    let graph = qbench_onnx::import(&model)
        .with_context(|| format!("importing {}", args.model.display()))?;
    let out = args
        .out
        .unwrap_or_else(|| args.model.with_extension("qgraph"));
    let sha256 = graph
        .save(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} ({} nodes, {} classes; sha256 {sha256})",
        out.display(),
        graph.nodes.len(),
        graph.classes()
    );
    Ok(())
}
