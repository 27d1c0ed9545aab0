//! Straight-through activation fake quantizers as single fused operations.
//!
//! Written with candle's elementwise operations, a fake quantizer `c + (q(c) - c).detach()` with
//! `c = clamp(x, lo, hi)` is about ten passes over the activations forward and as many backward;
//! it made a fine-tuning or low-bit training step take two to three times as long as a float
//! step. Here the forward pass is one pass computing `q` with the same f32 arithmetic the composed
//! form used, and the backward pass one pass passing the gradient where `lo <= x <= hi` (the
//! straight-through estimator of the clamped identity). DJQ's power-of-two quantizer, QNN's
//! k-bit levels and BNN's sign all use it.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// Elements per parallel chunk (large enough that a chunk outweighs its scheduling).
const CHUNK: usize = 1 << 14;

/// The forward value of a fake quantizer, from the clamped `c` (or, for sign, `x`).
#[derive(Clone, Copy, Debug)]
enum Rounding {
    /// `floor(c * scale + 0.5) * inv`: integers at a power-of-two scale, rounding half up.
    HalfUp { scale: f32, inv: f32 },
    /// `round(c * n) * inv`: `n + 1` levels on `[0, 1]`, rounding half away from zero.
    Nearest { n: f32, inv: f32 },
    /// `+1` where `x >= 0`, else `-1`.
    Sign,
}

/// A fake quantizer: its rounding and the clamp range `[lo, hi]` (real units) that also bounds
/// where the gradient passes.
#[derive(Clone, Copy, Debug)]
struct FakeQuant {
    rounding: Rounding,
    lo: f32,
    hi: f32,
}

impl FakeQuant {
    #[inline]
    fn value(&self, x: f32) -> f32 {
        let c = x.max(self.lo).min(self.hi);
        match self.rounding {
            Rounding::HalfUp { scale, inv } => (c * scale + 0.5).floor() * inv,
            Rounding::Nearest { n, inv } => (c * n).round() * inv,
            Rounding::Sign => {
                if x >= 0.0 {
                    1.0
                } else {
                    -1.0
                }
            }
        }
    }
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("fake quantization needs a contiguous f32 tensor"),
    }
}

impl CustomOp1 for FakeQuant {
    fn name(&self) -> &'static str {
        "qbench-fake-quant"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = self.value(x);
                }
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let dx = grad
            .contiguous()?
            .apply_op2_no_bwd(&x.contiguous()?, &PassInside(*self))?;
        Ok(Some(dx))
    }
}

/// `(dy, x) -> dy` where `lo <= x <= hi`, else 0.
struct PassInside(FakeQuant);

impl CustomOp2 for PassInside {
    fn name(&self) -> &'static str {
        "qbench-fake-quant-bwd"
    }

    fn cpu_fwd(
        &self,
        grad: &CpuStorage,
        lg: &Layout,
        x: &CpuStorage,
        lx: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (g, x) = (contiguous(grad, lg)?, contiguous(x, lx)?);
        let FakeQuant { lo, hi, .. } = self.0;
        let mut dx = vec![0f32; g.len()];
        dx.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK).zip(x.par_chunks(CHUNK)))
            .for_each(|(dx, (g, x))| {
                for ((dx, &g), &x) in dx.iter_mut().zip(g).zip(x) {
                    *dx = if (lo..=hi).contains(&x) { g } else { 0.0 };
                }
            });
        Ok((CpuStorage::F32(dx), lg.shape().clone()))
    }
}

fn apply(x: &Tensor, op: FakeQuant) -> Result<Tensor> {
    Ok(x.contiguous()?.apply_op1(op)?)
}

/// Fake-quantizes `x` to the integers `lo..=hi` at exponent `f` (value `q 2^-f`, rounding half
/// up), with the straight-through gradient inside the clamp range.
pub fn pow2(x: &Tensor, f: i32, lo: i32, hi: i32) -> Result<Tensor> {
    let s = 2f64.powi(f);
    let rounding = Rounding::HalfUp {
        scale: s as f32,
        inv: (1.0 / s) as f32,
    };
    let (lo, hi) = ((f64::from(lo) / s) as f32, (f64::from(hi) / s) as f32);
    apply(x, FakeQuant { rounding, lo, hi })
}

/// Fake-quantizes `x` to the `n + 1` levels `k / n` of `[0, 1]` (rounding to nearest), with the
/// straight-through gradient inside `[0, 1]`.
pub fn levels(x: &Tensor, n: i32) -> Result<Tensor> {
    let n = n as f32;
    let rounding = Rounding::Nearest {
        n,
        inv: (1.0 / f64::from(n)) as f32,
    };
    apply(
        x,
        FakeQuant {
            rounding,
            lo: 0.0,
            hi: 1.0,
        },
    )
}

/// `sign(x)` (`sign(0) = +1`) forward, the hardtanh gradient (`1` where `|x| <= 1`) backward.
pub fn sign(x: &Tensor) -> Result<Tensor> {
    apply(
        x,
        FakeQuant {
            rounding: Rounding::Sign,
            lo: -1.0,
            hi: 1.0,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::{max_diff, probe_gradients, uniform};

    /// `c + (q - c).detach()` with `c = clamp(x, lo, hi)`: the composed form each fused quantizer
    /// replaces.
    fn composed(x: &Tensor, lo: f64, hi: f64, q: impl Fn(&Tensor) -> Tensor) -> Tensor {
        let c = x.clamp(lo, hi).unwrap();
        let q = q(&c);
        (&c + (q - &c).unwrap().detach()).unwrap()
    }

    /// Asserts that `fused` and `composed` agree exactly, forward and backward, on values
    /// spanning 1.5 times `[lo, hi]` (so some clip at both ends).
    fn check(lo: f64, hi: f64, fused: impl Fn(&Tensor) -> Tensor, q: impl Fn(&Tensor) -> Tensor) {
        let r = (1.5 * lo.abs().max(hi)) as f32;
        let x = candle_core::Var::from_tensor(&uniform(&[4, 3, 5, 5], 11, -r, r)).unwrap();
        let x = x.as_tensor();
        let (ours, theirs) = (fused(x), composed(x, lo, hi, q));
        assert_eq!(max_diff(&ours, &theirs), 0.0, "forward on [{lo}, {hi}]");
        let values = ours.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (min, max) = values
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        assert!(min < max, "not constant");
        let probe = uniform(&[4, 3, 5, 5], 12, -1.0, 1.0);
        let (g_ours, g_theirs) = probe_gradients(&ours, &theirs, &probe);
        let (g_ours, g_theirs) = (g_ours.get(x).unwrap(), g_theirs.get(x).unwrap());
        assert_eq!(max_diff(g_ours, g_theirs), 0.0, "gradient on [{lo}, {hi}]");
    }

    #[test]
    fn pow2_matches_the_composed_quantizer_and_its_gradient() {
        for (f, lo, hi) in [(1i32, 0i32, 3i32), (3, -2, 1), (-2, 0, 255), (0, -128, 127)] {
            let s = 2f64.powi(f);
            check(
                f64::from(lo) / s,
                f64::from(hi) / s,
                |x| pow2(x, f, lo, hi).unwrap(),
                |c| {
                    ((c * s).unwrap() + 0.5)
                        .unwrap()
                        .floor()
                        .unwrap()
                        .affine(1.0 / s, 0.0)
                        .unwrap()
                },
            );
        }
    }

    #[test]
    fn levels_match_the_composed_quantizer_and_its_gradient() {
        for n in [1, 3, 15] {
            let nf = f64::from(n);
            check(
                0.0,
                1.0,
                |x| levels(x, n).unwrap(),
                |c| ((c.detach() * nf).unwrap().round().unwrap() / nf).unwrap(),
            );
        }
    }

    #[test]
    fn sign_matches_the_composed_quantizer_and_its_gradient() {
        check(
            -1.0,
            1.0,
            |x| sign(x).unwrap(),
            |c| {
                // sign(clamp(x)) = sign(x) on [-1, 1].
                ((c.ge(0f32).unwrap().to_dtype(c.dtype()).unwrap() * 2.0).unwrap() - 1.0).unwrap()
            },
        );
    }
}
