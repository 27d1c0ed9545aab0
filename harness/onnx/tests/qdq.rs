//! QDQ import: the float `cnn`, quantized by onnxruntime's `quantize_static`, lowered to the
//! engine's graph; the engine's predictions agree with onnxruntime's own on the test images.

mod common;

use std::path::Path;

use qbench_engine::FastExecutor;
use qbench_engine::exec::argmax;
use qbench_onnx::python::{run_model_float, write_npy_u8};
use qbench_onnx::{import, read_model};

const IMAGES: usize = 2000;

fn qdq_model(dir: &Path) -> (std::path::PathBuf, qbench_datasets::ImageSet) {
    let data = common::fashion(IMAGES);
    let npy = dir.join("images.npy");
    write_npy_u8(&npy, &data.images, data.len(), &[1, 28, 28]).expect("writes");
    common::run_py("qdq_cnn.py", &[&npy, dir]);
    (dir.join("qdq.onnx"), data)
}

/// Imports `file` of `qdq_cnn.py`'s output (`qdq.onnx` or `qop.onnx`), runs it in the engine and
/// in onnxruntime on the test images; returns the agreement, the largest logit difference in
/// uint8 units (onnxruntime's dequantized logits mapped back), and the requantizer kinds.
fn engine_vs_onnxruntime(file: &str) -> (f64, i32, Vec<&'static str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, data) = qdq_model(dir.path());
    let path = dir.path().join(file);
    let graph = import(&read_model(&path).expect("reads")).expect("imports");
    let n = data.len();
    let engine = FastExecutor::new(&graph)
        .expect("prepares")
        .run(&data.images, n)
        .expect("runs");
    let ort = run_model_float(&path, &data.images, n, &[1, 28, 28]).expect("onnxruntime runs");
    let classes = graph.classes();
    assert_eq!(ort.len(), n * classes);
    // onnxruntime's logits are DequantizeLinear(q, s, z) of the last layer's uint8 q: recover q.
    let model = read_model(&path).expect("reads");
    let g = model.graph.as_ref().expect("graph");
    let last = g.node.last().expect("nodes");
    assert_eq!(last.op_type, "DequantizeLinear");
    let init = |name: &str| {
        let t = g
            .initializer
            .iter()
            .find(|t| t.name == name)
            .expect("constant");
        qbench_onnx::tensor::to_f64(t).expect("reads")[0]
    };
    let (s, z) = (init(&last.input[1]), init(&last.input[2]));
    let ort_q: Vec<i32> = ort
        .iter()
        .map(|&y| (f64::from(y) / s).round() as i32 + z as i32)
        .collect();
    let mut same = 0;
    let mut max_diff = 0;
    for i in 0..n {
        let (a, b) = (engine.row(i), &ort_q[i * classes..(i + 1) * classes]);
        same += usize::from(argmax(a) == argmax(b));
        for (x, y) in a.iter().zip(b) {
            max_diff = max_diff.max((x - y).abs());
        }
    }
    let kinds = graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            qbench_engine::Op::Requant(r) => Some(r.requant.kind_name()),
            _ => None,
        })
        .collect();
    (same as f64 / n as f64, max_diff, kinds)
}

#[test]
fn an_ort_quantized_qdq_cnn_runs_in_the_engine_with_onnxruntime_predictions() {
    let (agreement, max_diff, kinds) = engine_vs_onnxruntime("qdq.onnx");
    eprintln!(
        "QDQ cnn: {IMAGES} images, engine vs onnxruntime agreement {agreement:.4}, max logit \
         difference {max_diff} (uint8 units); requantizers {kinds:?}"
    );
    // Rounding only: onnxruntime requantizes with a float multiplier rounding half to even, the
    // engine with gemmlowp's fixed point; an untrained network's logits are often a unit apart.
    assert!(
        max_diff <= 1,
        "a logit differs by {max_diff} units: not a rounding difference"
    );
    assert!(agreement >= 0.99, "agreement {agreement}");
}

#[test]
fn an_ort_quantized_qoperator_cnn_runs_in_the_engine_with_onnxruntime_predictions() {
    // The same quantization as QLinearConv (ReLU fused), uint8 MaxPool and com.microsoft QGemm.
    let (agreement, max_diff, kinds) = engine_vs_onnxruntime("qop.onnx");
    eprintln!(
        "QOperator cnn: {IMAGES} images, engine vs onnxruntime agreement {agreement:.4}, max \
         logit difference {max_diff} (uint8 units); requantizers {kinds:?}"
    );
    assert!(
        max_diff <= 1,
        "a logit differs by {max_diff} units: not a rounding difference"
    );
    assert!(agreement >= 0.99, "agreement {agreement}");
}

#[test]
fn an_ort_quantized_qdq_residual_block_runs_in_the_engine_with_onnxruntime_predictions() {
    // The residual Add between Q/DQ pairs becomes TFLite's ADD (left shift 20, two fixed-point
    // multipliers) and a fixed-point requantizer with the ReLU as its clamp.
    let (agreement, max_diff, kinds) = engine_vs_onnxruntime("residual_qdq.onnx");
    eprintln!(
        "QDQ residual: {IMAGES} images, engine vs onnxruntime agreement {agreement:.4}, max \
         logit difference {max_diff} (uint8 units); requantizers {kinds:?}"
    );
    assert!(
        max_diff <= 2,
        "a logit differs by {max_diff} units: not a rounding difference"
    );
    assert!(agreement >= 0.99, "agreement {agreement}");
}

#[test]
fn an_unsupported_operator_is_an_error_naming_the_node_its_op_and_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (path, _) = qdq_model(dir.path());
    let mut model = read_model(&path).expect("reads");
    let g = model.graph.as_mut().expect("graph");
    let k = g
        .node
        .iter()
        .position(|n| n.op_type == "MaxPool")
        .expect("a MaxPool");
    g.node[k].op_type = "LpPool".into();
    let name = g.node[k].name.clone();
    let err = import(&model).expect_err("rejected").to_string();
    assert!(
        err.contains(&format!("node {k} `{name}` (op LpPool): unsupported")),
        "{err}"
    );
}
