//! QONNX import: models in the shapes Brevitas' export_qonnx writes (Quant, BipolarQuant) and
//! FINN-style thresholds (MultiThreshold), lowered to the engine and compared with qonnx's own
//! executor on the same images.

mod common;

use qbench_engine::FastExecutor;
use qbench_engine::exec::argmax;
use qbench_onnx::python::run_model_float;
use qbench_onnx::{import, read_model};

const IMAGES: usize = 512;

/// `(agreement, largest difference in logit units, requantizer kinds)` of the engine against
/// qonnx's executor on the model `name` of `qonnx_models.py`; `unit` is the real value of one
/// engine logit unit.
fn compare(name: &str, unit: f64) -> (f64, f64, Vec<String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    common::run_py("qonnx_models.py", &[dir.path()]);
    let path = dir.path().join(format!("{name}.onnx"));
    let graph =
        import(&read_model(&path).expect("reads")).unwrap_or_else(|e| panic!("{name}: {e}"));
    let data = common::fashion(IMAGES);
    let n = data.len();
    let engine = FastExecutor::new(&graph)
        .expect("prepares")
        .run(&data.images, n)
        .expect("runs");
    let reference = run_model_float(&path, &data.images, n, &[1, 28, 28]).expect("qonnx runs");
    let classes = graph.classes();
    let mut same = 0;
    let mut max_diff = 0f64;
    for i in 0..n {
        let (a, b) = (engine.row(i), &reference[i * classes..(i + 1) * classes]);
        same += usize::from(argmax(a) == argmax(b));
        for (x, y) in a.iter().zip(b) {
            max_diff = max_diff.max((f64::from(*x) * unit - f64::from(*y)).abs() / unit);
        }
    }
    let kinds = graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            qbench_engine::Op::Requant(r) => Some(r.requant.kind_name().to_string()),
            _ => None,
        })
        .collect();
    (same as f64 / n as f64, max_diff, kinds)
}

#[test]
fn a_bnn_with_bipolar_weights_and_multithresholds_matches_qonnx_exactly() {
    // Bipolar weights of scale 1 over +-1 and 2-bit activations: the logits are the integers.
    let (agreement, diff, kinds) = compare("bnn", 1.0);
    eprintln!(
        "QONNX bnn: agreement {agreement:.4}, max logit difference {diff}, requantizers {kinds:?}"
    );
    assert_eq!(kinds, ["threshold", "multi_threshold"]);
    assert_eq!(diff, 0.0);
    assert_eq!(agreement, 1.0);
}

#[test]
fn a_qnn_with_4_bit_quant_nodes_agrees_with_qonnx() {
    // Logit unit: input scale 1/255 is requantized away; the last layer's accumulator is in
    // units of the 4-bit activation scale (2^-2) times the weight scale, read from the model.
    let dir = tempfile::tempdir().expect("temp dir");
    common::run_py("qonnx_models.py", &[dir.path()]);
    let model = read_model(&dir.path().join("qnn.onnx")).expect("reads");
    let g = model.graph.as_ref().expect("graph");
    let gemm = g.node.iter().find(|n| n.op_type == "Gemm").expect("gemm");
    let wq = g
        .node
        .iter()
        .find(|n| n.output[0] == gemm.input[1])
        .expect("weight quant");
    let ws = g
        .initializer
        .iter()
        .find(|t| t.name == wq.input[1])
        .expect("scale");
    let unit = 0.25 * qbench_onnx::tensor::to_f64(ws).expect("reads")[0];
    let (agreement, diff, kinds) = compare("qnn", unit);
    eprintln!(
        "QONNX qnn: agreement {agreement:.4}, max logit difference {diff:.3} units, requantizers {kinds:?}"
    );
    // Power-of-two ratios become shifts; the rest fixed point.
    assert!(
        kinds.iter().all(|k| k == "shift" || k == "fixed_point"),
        "{kinds:?}"
    );
    // The engine requantizes with gemmlowp's fixed point, which rounds twice (the Q31 high
    // multiply, then the rounding right shift by 7 or 8 here), so about one activation in 2^8
    // lands one step from qonnx's single half-to-even rounding of the float value; on this
    // untrained network that moves a few logits by tens of units. The layers' first values
    // are identical (checked by hand); the BNN test above is exact.
    assert!(diff < 64.0, "logits differ by {diff} units");
    assert!(agreement >= 0.95, "agreement {agreement}");
}

#[test]
fn a_power_of_two_qnn_with_matched_rounding_matches_qonnx_exactly() {
    // Power-of-two scales make every requantizer a shift; HALF_UP after ReLU rounds as the
    // engine's shift does; qonnx's float32 arithmetic is exact on these values. So the
    // difference is zero: rounding rules are the only source of the qnn test's differences.
    let (agreement, diff, kinds) = compare("qnn_pot", 2f64.powi(-2) * 2f64.powi(-5));
    eprintln!(
        "QONNX qnn_pot: agreement {agreement:.4}, max logit difference {diff}, requantizers {kinds:?}"
    );
    assert_eq!(kinds, ["shift", "shift"]);
    assert_eq!(diff, 0.0);
    assert_eq!(agreement, 1.0);
}

#[test]
fn truncated_average_pools_match_qonnx_exactly() {
    // Brevitas' TruncAvgPool2d (AveragePool, Mul by the window, Trunc) becomes a depthwise sum
    // and a shift whose bias turns the engine's rounding into Trunc's FLOOR or CEIL: exact.
    // v1 keeps the input scale (2^-2 before the classifier of weight scale 2^-5); v2 multiplies
    // it by 2^2 in the second block and by 2^6 in the global pool before the classifier.
    for (name, unit) in [("qnn_trunc", 2f64.powi(-7)), ("qnn_trunc_v2", 2.0)] {
        let (agreement, diff, kinds) = compare(name, unit);
        eprintln!(
            "QONNX {name}: agreement {agreement:.4}, max logit difference {diff}, requantizers {kinds:?}"
        );
        assert_eq!(kinds, ["shift"; 4], "{name}");
        assert_eq!(diff, 0.0, "{name}");
        assert_eq!(agreement, 1.0, "{name}");
    }
}

#[test]
fn a_trunc_without_its_average_pool_names_the_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::run_py("qonnx_models.py", &[dir.path()]);
    let mut model = read_model(&dir.path().join("qnn_trunc.onnx")).expect("reads");
    let g = model.graph.as_mut().expect("graph");
    // Drop the first Mul: its Trunc then reads the average itself.
    let mul = g.node.iter().position(|n| n.op_type == "Mul").expect("mul");
    let (average, product) = (g.node[mul].input[0].clone(), g.node[mul].output[0].clone());
    g.node.remove(mul);
    let trunc = g
        .node
        .iter_mut()
        .find(|n| n.input[0] == product)
        .expect("trunc");
    trunc.input[0] = average;
    let err = import(&model)
        .expect_err("a Trunc without its Mul")
        .to_string();
    assert!(
        err.contains(&format!("node {mul} "))
            && err.contains("Trunc")
            && err.contains("Mul by its window size"),
        "{err}"
    );
}
