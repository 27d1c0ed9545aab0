//! Evaluation in one place: a graph's predictions, accuracy against labels, agreement between two
//! prediction lists, and accuracy with throughput ([`evaluate`]). The CLI, the result store and
//! the methods' conformance suite all call these, so every accuracy qbench reports is ranked by
//! one arg-max rule and counted one way.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::counts::{OpCounts, count_ops};
use crate::error::{EngineError, Result};
use crate::exec::argmax;
use crate::exec::fast::FastExecutor;
use crate::graph::QGraph;

/// Arg-max of each row of a row-major `n x classes` matrix, the lowest index on ties (the rule of
/// [`crate::Logits::argmax`]), for integer and f64 logits alike.
pub fn argmax_rows<T: PartialOrd>(values: &[T], classes: usize) -> Vec<usize> {
    values.chunks(classes.max(1)).map(argmax).collect()
}

/// The top-1 class of each of the `images.len() / graph.input_len()` images, run by the fast
/// executor in batches of `batch_size`.
///
/// # Errors
/// [`EngineError::Input`] for a zero batch size or a partial image; the executor's errors.
pub fn predict(graph: &QGraph, images: &[u8], batch_size: usize) -> Result<Vec<usize>> {
    let per = graph.input_len();
    if batch_size == 0 {
        return Err(EngineError::Input("batch size must be positive".into()));
    }
    if per == 0 || !images.len().is_multiple_of(per) {
        return Err(EngineError::Input(format!(
            "{} image bytes are not a whole number of {per}-byte images",
            images.len()
        )));
    }
    let exec = FastExecutor::new(graph)?;
    let mut out = Vec::with_capacity(images.len() / per);
    for chunk in images.chunks(batch_size * per) {
        out.extend(exec.run(chunk, chunk.len() / per)?.argmax());
    }
    Ok(out)
}

/// Fraction of `predictions` equal to their label (0 for none).
pub fn accuracy(predictions: &[usize], labels: &[u16]) -> f64 {
    let correct = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == usize::from(**l))
        .count();
    correct as f64 / predictions.len().max(1) as f64
}

/// Fraction of positions where two prediction lists name the same class (0 for none).
pub fn agreement(a: &[usize], b: &[usize]) -> f64 {
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    same as f64 / a.len().max(1) as f64
}

/// What [`evaluate`] measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Images evaluated.
    pub images: usize,
    /// Number of classes (logits per image).
    pub classes: usize,
    /// Fraction whose arg-max (lowest index on ties) equals the label.
    pub top1: f64,
    /// Fraction whose label is among the 5 best scores; only when there are more than 10 classes.
    pub top5: Option<f64>,
    /// Wall-clock seconds of inference (graph preparation excluded).
    pub seconds: f64,
    /// Images per second.
    pub images_per_second: f64,
    /// Per-image operation and memory counts.
    pub counts: OpCounts,
}

/// Runs `graph` on `images` (concatenated u8 images of the graph's input size) with the fast executor
/// in batches of `batch_size`, compares with `labels`, and calls `progress(done)` after each batch with
/// the number of images done so far.
pub fn evaluate(
    graph: &QGraph,
    images: &[u8],
    labels: &[u16],
    batch_size: usize,
    progress: impl Fn(usize),
) -> Result<EvalReport> {
    let exec = FastExecutor::new(graph)?;
    let per = graph.input_len();
    let classes = graph.classes();
    if batch_size == 0 {
        return Err(EngineError::Input("batch size must be positive".into()));
    }
    if images.len() != labels.len() * per {
        return Err(EngineError::Input(format!(
            "{} image bytes for {} labels of {per}-byte images",
            images.len(),
            labels.len()
        )));
    }
    if let Some((i, &l)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes)
    {
        return Err(EngineError::Input(format!(
            "label {l} at index {i} is not below the graph's {classes} classes"
        )));
    }
    let with_top5 = classes > 10;
    let mut predictions = Vec::with_capacity(labels.len());
    let (mut top5, mut done) = (0usize, 0usize);
    let start = Instant::now();
    for (chunk, lab) in images
        .chunks(batch_size * per)
        .zip(labels.chunks(batch_size))
    {
        let logits = exec.run(chunk, lab.len())?;
        predictions.extend(logits.argmax());
        if with_top5 {
            for (i, &label) in lab.iter().enumerate() {
                top5 += usize::from(logits.top_k(i, 5).contains(&usize::from(label)));
            }
        }
        done += lab.len();
        progress(done);
    }
    let seconds = start.elapsed().as_secs_f64();
    let n = labels.len();
    let frac = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    Ok(EvalReport {
        images: n,
        classes,
        top1: accuracy(&predictions, labels),
        top5: with_top5.then(|| frac(top5)),
        seconds,
        images_per_second: if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        },
        counts: count_ops(graph),
    })
}
