//! An ONNX model as a spec row (`{method: onnx, path: FILE}`) and the onnxruntime cross-check
//! column of the run's tables, end to end through the `qbench` binary.

mod common;

use common::{fashion_mnist_present, ok, qbench};
use qbench_engine::{Dense, GraphBuilder, WeightKind};

/// Writes `dir/models/linear.onnx`: a fixed linear classifier over 28x28 images (flatten, one
/// 784 -> 10 dense layer).
fn write_model(dir: &std::path::Path) {
    let mut b = GraphBuilder::new(&[1, 28, 28]);
    let f = b.flatten("flatten", 0).unwrap();
    let d = b
        .dense(
            "dense",
            f,
            Dense {
                in_features: 784,
                out_features: 10,
                weight_kind: WeightKind::Int { bits: 8 },
                input_zero_point: 0,
                weights: (0..7840)
                    .map(|i| ((i * 7 + i / 784) % 9) as i8 - 4)
                    .collect(),
                bias: Some((0..10).map(|k| k * 100).collect()),
            },
        )
        .unwrap();
    std::fs::create_dir_all(dir.join("models")).unwrap();
    let provenance = qbench_onnx::Provenance { source: None };
    qbench_onnx::export_file(
        &b.finish(d).unwrap(),
        "0",
        &provenance,
        &dir.join("models/linear.onnx"),
    )
    .unwrap();
}

#[test]
fn an_onnx_row_runs_beside_a_built_in_method_and_both_are_cross_checked() {
    if !fashion_mnist_present() {
        return;
    }
    qbench_onnx::python::interpreter().expect("the project's Python environment (.ci/python-env)");
    let work = tempfile::tempdir().unwrap();
    write_model(work.path());
    let spec = work.path().join("imported.yaml");
    std::fs::write(
        &spec,
        "name: imported\nmodels:\n  - {model: mlp, epochs: 1, train_limit: 1000}\nmethods:\n  \
         - {method: int8}\n  - {method: onnx, path: models/linear.onnx, label: Fixed linear}\n\
         hardware: {enabled: false}\n",
    )
    .unwrap();
    let results = work.path().join("results");
    // Run from elsewhere: the path is taken from the spec's folder.
    ok(qbench()
        .current_dir(std::env::temp_dir())
        .arg("run")
        .arg(&spec)
        .arg("--results")
        .arg(&results)
        .output()
        .unwrap());
    let run = std::fs::read_dir(results.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let md = std::fs::read_to_string(run.join("tables/summary.md")).unwrap();
    for label in ["| linear.onnx | Fixed linear |", "| mlp | int8"] {
        let line = md
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no row {label} in:\n{md}"));
        // Exported, run by onnxruntime, compared: every prediction and every logit the same.
        assert!(line.contains("| 100.00% (Δ 0) |"), "{line}");
    }
    assert!(md.contains("onnxruntime agreement:"), "{md}");
    // The imported model's record names the file's hash.
    let sha = qbench_io::sha256_file(work.path().join("models/linear.onnx")).unwrap();
    let summary = std::fs::read_to_string(run.join("tables/summary.json")).unwrap();
    assert!(summary.contains(&sha), "{summary}");
}
