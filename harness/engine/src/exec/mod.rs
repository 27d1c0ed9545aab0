//! Executors: [`reference`](mod@reference) (plain loops over logical values, the oracle) and [`fast`] (kernels
//! crate, packed storage, rayon over the batch). Both compute exactly the same integers.

pub mod fast;
#[cfg(target_arch = "x86_64")]
mod fast_avx2;
pub mod reference;

use crate::error::{EngineError, Result};
use crate::graph::QGraph;

/// Final integer scores of a batch, `batch x classes`, row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logits {
    /// Number of images.
    pub batch: usize,
    /// Scores per image.
    pub classes: usize,
    /// The scores.
    pub values: Vec<i32>,
}

impl Logits {
    /// Scores of image `i`.
    pub fn row(&self, i: usize) -> &[i32] {
        &self.values[i * self.classes..(i + 1) * self.classes]
    }

    /// Predicted class per image; ties go to the lowest index.
    pub fn argmax(&self) -> Vec<usize> {
        (0..self.batch).map(|i| argmax(self.row(i))).collect()
    }

    /// The `k` best classes of image `i`, best first; ties ordered by lowest index.
    pub fn top_k(&self, i: usize, k: usize) -> Vec<usize> {
        let row = self.row(i);
        let mut idx: Vec<usize> = (0..self.classes).collect();
        // Stable sort: equal scores keep ascending index order.
        idx.sort_by(|&a, &b| row[b].cmp(&row[a]));
        idx.truncate(k);
        idx
    }
}

/// Index of the largest value, the lowest such index on ties (0 for an empty slice). Integer
/// logits and a fake-quant forward's f64 logits are ranked by this one rule.
pub fn argmax<T: PartialOrd>(row: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// Checks that `input` holds `batch` images of the graph's input size.
pub(crate) fn check_input(graph: &QGraph, input: &[u8], batch: usize) -> Result<()> {
    let per = graph.input_len();
    if input.len() != per * batch {
        return Err(EngineError::Input(format!(
            "{} bytes for {batch} images of {per} bytes each (expected {})",
            input.len(),
            per * batch
        )));
    }
    Ok(())
}
