//! Export: every built-in method's graph, exported, runs in onnxruntime (QONNX graphs in qonnx's
//! executor) with exactly the engine's logits.

mod common;

use qbench_onnx::crosscheck;

#[test]
fn every_method_exports_and_the_reference_runtime_gives_the_engine_logits() {
    let mut failures = Vec::new();
    for (label, graph, images) in common::graphs() {
        let _ = common::python();
        let c = crosscheck(graph, images).unwrap_or_else(|e| panic!("{label}: {e}"));
        eprintln!(
            "{label}: {} images in {}, agreement {:.4}, max logit difference {}",
            c.images, c.runtime, c.agreement, c.max_logit_diff
        );
        if c.max_logit_diff != 0 || c.agreement != 1.0 {
            failures.push(format!("{label}: {c:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
