//! A network written with Brevitas and exported with `export_qonnx`, imported by qbench and run
//! by the engine against qonnx's executor. Runs where torch and brevitas are installed in the
//! project's Python; prints SKIPPED otherwise (CI builds the same QONNX shapes with onnx.helper
//! in `tests/qonnx.rs`).

mod common;

use qbench_engine::FastExecutor;
use qbench_engine::exec::argmax;
use qbench_onnx::python::run_model_float;
use qbench_onnx::{import, read_model};

#[test]
fn a_brevitas_export_qonnx_model_imports_and_agrees_with_qonnx() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("brevitas.onnx");
    let out = common::run_py("brevitas_qonnx.py", &[&path]);
    if out.starts_with("SKIPPED") {
        eprintln!("{}", out.trim());
        return;
    }
    // Brevitas may leave its export in the onnx.brevitas domain with static shapes; the
    // importer reads both domains.
    let graph = import(&read_model(&path).expect("reads")).expect("imports");
    let data = common::fashion(256);
    let n = data.len();
    let engine = FastExecutor::new(&graph)
        .expect("prepares")
        .run(&data.images, n)
        .expect("runs");
    let reference = run_model_float(&path, &data.images, n, &[1, 28, 28]).expect("qonnx runs");
    let classes = graph.classes();
    let same = (0..n)
        .filter(|&i| argmax(engine.row(i)) == argmax(&reference[i * classes..(i + 1) * classes]))
        .count();
    let agreement = same as f64 / n as f64;
    eprintln!("Brevitas QONNX: agreement {agreement:.4} with qonnx's executor");
    assert!(agreement >= 0.95, "agreement {agreement}");
}
