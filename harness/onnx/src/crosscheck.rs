//! The cross-check: the exported model run by onnxruntime (or qonnx's executor for QONNX
//! models) against the engine, on the same images.

use qbench_engine::exec::argmax;
use qbench_engine::{FastExecutor, QGraph};

use crate::error::{OnnxError, Result};
use crate::export::{Form, Provenance, export_form};
use crate::python::run_model;

/// Agreement of the engine and the ONNX reference runtime on a set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossCheck {
    /// Images compared.
    pub images: usize,
    /// Fraction of images whose top-1 class is the same (ties to the lowest index in both).
    pub agreement: f64,
    /// Fraction of images whose every logit is the same (what a detector's maps are compared by).
    pub identical: f64,
    /// Largest absolute difference of any logit.
    pub max_logit_diff: i64,
    /// `onnxruntime` or `qonnx`.
    pub runtime: &'static str,
}

/// Exports `graph`, runs it on `images` (whole images of the graph's input) in the project's
/// Python environment, runs the engine on them too, and compares.
pub fn crosscheck(graph: &QGraph, images: &[u8]) -> Result<CrossCheck> {
    crosscheck_form(graph, images, Form::Exact)
}

/// [`crosscheck`] of the export in `form`.
pub fn crosscheck_form(graph: &QGraph, images: &[u8], form: Form) -> Result<CrossCheck> {
    let per = graph.input_len();
    if per == 0 || !images.len().is_multiple_of(per) || images.is_empty() {
        return Err(OnnxError::Model(format!(
            "{} image bytes are not a whole number of {per}-byte images",
            images.len()
        )));
    }
    let n = images.len() / per;
    let model = export_form(graph, "", &Provenance::default(), form)?;
    let runtime = if model.graph.as_ref().is_some_and(|g| {
        g.node
            .iter()
            .any(|n| n.domain == crate::export::QONNX_DOMAIN)
    }) {
        "qonnx"
    } else {
        "onnxruntime"
    };
    let dir = tempfile::tempdir().map_err(|e| {
        qbench_io::IoError::new("create a temporary folder in", std::env::temp_dir(), e)
    })?;
    let path = dir.path().join("model.onnx");
    qbench_io::write_atomic(&path, crate::to_bytes(&model))?;
    let reference = run_model(&path, images, n, &graph.input_type().shape, 1, 256, false)?.logits;
    let exec = FastExecutor::new(graph)?;
    let classes = graph.classes();
    let mut engine = Vec::with_capacity(n * classes);
    for chunk in images.chunks(256 * per) {
        engine.extend(exec.run(chunk, chunk.len() / per)?.values);
    }
    Ok(compare(&engine, &reference, classes, runtime))
}

/// Compares two `[images, classes]` logit tables.
pub fn compare(a: &[i32], b: &[i32], classes: usize, runtime: &'static str) -> CrossCheck {
    let n = a.len().min(b.len()).checked_div(classes).unwrap_or(0);
    let (mut same, mut equal) = (0usize, 0usize);
    let mut max_diff = if a.len() == b.len() { 0i64 } else { i64::MAX };
    for i in 0..n {
        let (ra, rb) = (
            &a[i * classes..(i + 1) * classes],
            &b[i * classes..(i + 1) * classes],
        );
        same += usize::from(argmax(ra) == argmax(rb));
        equal += usize::from(ra == rb);
        for (x, y) in ra.iter().zip(rb) {
            max_diff = max_diff.max((i64::from(*x) - i64::from(*y)).abs());
        }
    }
    CrossCheck {
        images: n,
        agreement: if n == 0 { 0.0 } else { same as f64 / n as f64 },
        identical: if n == 0 { 0.0 } else { equal as f64 / n as f64 },
        max_logit_diff: max_diff,
        runtime,
    }
}
