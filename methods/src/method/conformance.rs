//! The conformance suite every method passes, including one a user adds:
//!
//! 1. the integer graph and the fake-quant forward agree on the predicted class for at least
//!    [`MIN_AGREEMENT`] of the test images, and their logits differ by no more than the method's
//!    documented bound;
//! 2. the same seed gives the same graph bytes;
//! 3. the graph round-trips through its file format;
//! 4. the report's quantization-operation counts equal the engine's count of the graph.
//!
//! Call [`check`] in the method's tests and assert [`ConformanceReport::failures`] is empty.

use qbench_datasets::ImageSet;
use qbench_engine::{
    QGraph, accuracy, agreement, argmax_rows, count_ops, exec::fast::FastExecutor,
};
use serde::Serialize;

use super::{QuantInput, QuantMethod, Quantized};
use crate::error::{MethodError, Result};
use crate::train::Quiet;

/// The least fraction of test images on which integer graph and fake-quant must agree.
pub const MIN_AGREEMENT: f64 = 0.995;

/// What the suite measured.
#[derive(Clone, Debug, Serialize)]
pub struct ConformanceReport {
    /// Method label.
    pub label: String,
    /// Test images compared.
    pub images: usize,
    /// Integer-engine top-1 accuracy on them.
    pub int_accuracy: f64,
    /// Fake-quant top-1 accuracy on them.
    pub fake_accuracy: f64,
    /// Fraction of images where both predict the same class.
    pub agreement: f64,
    /// Largest `|fake - int * scale|` over all logits.
    pub max_logit_error: f64,
    /// The method's documented bound for it.
    pub logit_bound: f64,
    /// Every contract clause that failed, in words (empty when the method conforms).
    pub failures: Vec<String>,
    /// The integer graph's top-1 class per test image, in order (compared with the float
    /// model's by the CLI).
    #[serde(skip)]
    pub int_predictions: Vec<usize>,
    /// The fake-quant forward's outputs, row-major per test image (decoded into boxes by the
    /// CLI when the model is a detector).
    #[serde(skip)]
    pub fake_logits: Vec<f64>,
}

/// Integer and fake-quant comparison of one quantized model on test images.
pub fn compare(q: &Quantized, test: &ImageSet, label: &str) -> Result<ConformanceReport> {
    let n = test.len();
    let exec = FastExecutor::new(&q.graph)?;
    let classes = q.graph.classes();
    let mut int_logits = Vec::with_capacity(n * classes);
    let mut fake_logits = Vec::with_capacity(n * classes);
    let per = test.image_len();
    for start in (0..n).step_by(256) {
        let m = (n - start).min(256);
        let images = &test.images[start * per..(start + m) * per];
        int_logits.extend(exec.run(images, m)?.values.iter().copied());
        fake_logits.extend(q.fake_quant.logits(images, m)?);
    }
    if fake_logits.len() != int_logits.len() {
        return Err(MethodError::Config(format!(
            "fake-quant forward returned {} logits, the graph {}",
            fake_logits.len(),
            int_logits.len()
        )));
    }
    let scale = q.fake_quant.logit_scale();
    let max_logit_error = int_logits
        .iter()
        .zip(&fake_logits)
        .map(|(&i, &f)| (f - f64::from(i) * scale).abs())
        .fold(0.0, f64::max);
    let pi = argmax_rows(&int_logits, classes);
    let pf = argmax_rows(&fake_logits, classes);
    let mut report = ConformanceReport {
        label: label.to_string(),
        images: n,
        int_accuracy: accuracy(&pi, &test.labels),
        fake_accuracy: accuracy(&pf, &test.labels),
        agreement: agreement(&pi, &pf),
        max_logit_error,
        logit_bound: q.fake_quant.logit_bound(),
        failures: Vec::new(),
        int_predictions: pi,
        fake_logits: Vec::new(),
    };
    if report.agreement < MIN_AGREEMENT {
        report.failures.push(format!(
            "integer graph and fake-quant agree on {:.2}% of images, below {:.1}%",
            100.0 * report.agreement,
            100.0 * MIN_AGREEMENT
        ));
    }
    // Written so that a NaN error also fails.
    if report.max_logit_error.is_nan() || report.max_logit_error > report.logit_bound {
        report.failures.push(format!(
            "logits differ by up to {}, above the documented bound {}",
            report.max_logit_error, report.logit_bound
        ));
    }
    report.fake_logits = fake_logits;
    Ok(report)
}

/// Runs the whole suite: quantizes twice with the same seed and checks every clause.
pub fn check(
    method: &dyn QuantMethod,
    input: &QuantInput,
    test: &ImageSet,
) -> Result<ConformanceReport> {
    let label = method.label();
    let first = method.quantize(input, &mut Quiet)?;
    let second = method.quantize(input, &mut Quiet)?;
    let mut report = compare(&first, test, &label)?;
    let bytes = first.graph.to_bytes()?;
    if second.graph.to_bytes()? != bytes {
        report
            .failures
            .push("the same seed gave different graph bytes".into());
    }
    match QGraph::from_bytes(&bytes).and_then(|g| g.to_bytes()) {
        Ok(again) if again == bytes => {}
        Ok(_) => report
            .failures
            .push("the graph changed on a round trip through its file format".into()),
        Err(e) => report.failures.push(format!(
            "the graph does not load back from its own bytes: {e}"
        )),
    }
    let counts = count_ops(&first.graph);
    let engine_ops: std::collections::BTreeMap<String, u64> = counts.requant_by_kind.clone();
    if first.report.quant_ops != engine_ops {
        report.failures.push(format!(
            "the report counts quantization operations {:?}, the engine counts {:?}",
            first.report.quant_ops, engine_ops
        ));
    }
    Ok(report)
}
