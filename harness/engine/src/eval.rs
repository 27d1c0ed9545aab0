//! Accuracy and throughput of a graph on a labelled image set.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::counts::{OpCounts, count_ops};
use crate::error::{EngineError, Result};
use crate::exec::fast::FastExecutor;
use crate::graph::QGraph;

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
    let (mut top1, mut top5, mut done) = (0usize, 0usize, 0usize);
    let start = Instant::now();
    for (chunk, lab) in images
        .chunks(batch_size * per)
        .zip(labels.chunks(batch_size))
    {
        let logits = exec.run(chunk, lab.len())?;
        for (i, (&label, pred)) in lab.iter().zip(logits.argmax()).enumerate() {
            let label = usize::from(label);
            top1 += usize::from(pred == label);
            if with_top5 {
                top5 += usize::from(logits.top_k(i, 5).contains(&label));
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
        top1: frac(top1),
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
