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

/// The QLinear form (onnxruntime's fused operators, for speed) computes the same network up to
/// onnxruntime's float rounding: its predictions agree on nearly every image.
#[test]
fn the_qlinear_form_agrees_up_to_rounding() {
    for (label, graph, images) in common::graphs() {
        if !(label.ends_with("/int8") || label.ends_with("/djq")) {
            continue;
        }
        let c = qbench_onnx::crosscheck_form(graph, images, qbench_onnx::Form::QLinear)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        eprintln!(
            "{label} (QLinear form): agreement {:.4}, max logit difference {}",
            c.agreement, c.max_logit_diff
        );
        assert!(c.agreement >= 0.9, "{label}: {c:?}");
    }
}
