//! Optional fine-tuning for `tnt` (not in the paper, whose point is that none is needed): the
//! folded float weights are trained through the ternarizer with a straight-through estimator,
//! `w + (T(w) - w).detach()`, where `T` is the same cosine-similarity ternarization (granularity
//! and scales) the final lowering uses, recomputed from the current weights at every step. The
//! loop, u8 activation fake quantization and optimiser are `int8`'s
//! ([`crate::method::qat::finetune`]).
//!
//! Experimental: on the default `cnn` (Fashion-MNIST, 90.37% float) one epoch at lr 1e-4 gave
//! 73.35% at `per_kernel`, below the 86.09% without fine-tuning; the cause is not yet understood,
//! so no suite row uses it.

use candle_core::Tensor;

use super::options::{Granularity, Scales};
use super::weights::ternarize_layer;
use crate::error::Result;
use crate::method::fold::MacGeometry;

/// Straight-through ternarization of one layer's weight tensor (any shape, rows of `kind`).
pub fn straight_through(
    w: &Tensor,
    kind: MacGeometry,
    granularity: Granularity,
    scales: Scales,
) -> Result<Tensor> {
    let values = w.detach().flatten_all()?.to_vec1::<f32>()?;
    let t = ternarize_layer(&values, kind, granularity, scales);
    let q: Vec<f32> = t.values.iter().map(|&v| v as f32).collect();
    let q = Tensor::from_vec(q, w.shape(), w.device())?;
    Ok((w + (q - w)?.detach())?)
}
