//! Per-tensor activation ranges of a [`FoldedModel`]'s hidden modules from calibration images
//! (the fixed-point methods' own calibration, written while the shared `calibrate.rs` did not
//! exist yet).

use qbench_datasets::ImageSet;

use super::affine::FoldedModel;
use crate::error::{MethodError, Result};

/// How a range is estimated from the observed activations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeRule {
    /// Smallest and largest value over all calibration images.
    MinMax,
    /// Exponential moving average of each batch's min and max (Jacob et al.):
    /// `r = decay * r + (1 - decay) * batch`, starting from the first batch.
    Ema {
        /// Weight of the running value, in (0, 1).
        decay: f64,
    },
    /// The `p`-th and `(100 - p)`-th percentiles of all values.
    Percentile {
        /// Percentile in [50, 100].
        p: f64,
    },
}

/// The u8 images at `indices`, concatenated.
pub fn gather(set: &ImageSet, indices: &[usize]) -> Vec<u8> {
    let per = set.image_len();
    let mut out = Vec::with_capacity(indices.len() * per);
    for &i in indices {
        out.extend_from_slice(&set.images[i * per..(i + 1) * per]);
    }
    out
}

/// `(min, max)` of every hidden module's output (after ReLU, before pooling) over the images at
/// `indices`, in batches of `batch`.
pub fn activation_ranges(
    model: &FoldedModel,
    set: &ImageSet,
    indices: &[usize],
    batch: usize,
    rule: RangeRule,
) -> Result<Vec<(f64, f64)>> {
    if indices.is_empty() {
        return Err(MethodError::Config(
            "no calibration images (calib_idx is empty)".into(),
        ));
    }
    let hidden = model.modules.len() - 1;
    let mut ranges: Vec<Option<(f64, f64)>> = vec![None; hidden];
    let mut samples: Vec<Vec<f32>> = vec![Vec::new(); hidden];
    for chunk in indices.chunks(batch.max(1)) {
        let images = gather(set, chunk);
        model.forward(&images, chunk.len(), |i, t| {
            let v = t.flatten_all()?.to_vec1::<f32>()?;
            if let RangeRule::Percentile { .. } = rule {
                samples[i].extend_from_slice(&v);
                return Ok(());
            }
            let lo = v.iter().copied().fold(f32::INFINITY, f32::min) as f64;
            let hi = v.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            ranges[i] = Some(match (ranges[i], rule) {
                (None, _) => (lo, hi),
                (Some((a, b)), RangeRule::Ema { decay }) => (
                    decay * a + (1.0 - decay) * lo,
                    decay * b + (1.0 - decay) * hi,
                ),
                (Some((a, b)), _) => (a.min(lo), b.max(hi)),
            });
            Ok(())
        })?;
    }
    if let RangeRule::Percentile { p } = rule {
        for (i, s) in samples.iter_mut().enumerate() {
            let last = s.len() - 1;
            let rank = |q: f64| ((q / 100.0) * last as f64).round() as usize;
            let (lo_at, hi_at) = (rank(100.0 - p), rank(p));
            let hi = *s.select_nth_unstable_by(hi_at, f32::total_cmp).1;
            let lo = *s.select_nth_unstable_by(lo_at, f32::total_cmp).1;
            ranges[i] = Some((f64::from(lo), f64::from(hi)));
        }
    }
    Ok(ranges
        .into_iter()
        .map(|r| r.unwrap_or((0.0, 0.0)))
        .collect())
}
