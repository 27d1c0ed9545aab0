//! The straight-through fake quantizer of a unified module's output as one fused operation.
//!
//! Written with candle's elementwise operations, `c + (q(c) - c).detach()` with
//! `c = clamp(x, lo 2^-f, hi 2^-f)` is about ten passes over the activations forward and as many
//! backward; it made a fine-tuning step take three times as long as a float training step. Here
//! the forward pass is one pass computing `floor(c 2^f + 0.5) 2^-f` with the same f32 arithmetic
//! (scaling by a power of two is exact), and the backward pass one pass passing the gradient where
//! `x` lies inside the clamp range (the straight-through estimator of the clamped identity).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// Elements per parallel chunk (large enough that a chunk outweighs its scheduling).
const CHUNK: usize = 1 << 14;

/// `floor(clamp(x, lo, hi) * scale + 0.5) / scale`, with `lo`/`hi` in real units.
#[derive(Clone, Copy, Debug)]
struct FakeQuant {
    scale: f32,
    lo: f32,
    hi: f32,
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
        "qbench-djq-fake-quant"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = contiguous(storage, layout)?;
        let inv = 1.0 / self.scale;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(CHUNK)
            .zip(x.par_chunks(CHUNK))
            .for_each(|(y, x)| {
                for (y, &x) in y.iter_mut().zip(x) {
                    let c = x.max(self.lo).min(self.hi);
                    *y = (c * self.scale + 0.5).floor() * inv;
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
        "qbench-djq-fake-quant-bwd"
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

/// Fake-quantizes `x` to the integers `lo..=hi` at exponent `f` (value `q 2^-f`, rounding half
/// up), with the straight-through gradient inside the clamp range.
pub fn fake_quant_pow2(x: &Tensor, f: i32, lo: i32, hi: i32) -> Result<Tensor> {
    let s = 2f64.powi(f);
    let op = FakeQuant {
        scale: s as f32,
        lo: (f64::from(lo) / s) as f32,
        hi: (f64::from(hi) / s) as f32,
    };
    Ok(x.contiguous()?.apply_op1(op)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::{max_diff, probe_gradients, uniform};

    /// The composed form the fused operation replaces.
    fn composed(x: &Tensor, f: i32, lo: i32, hi: i32) -> Tensor {
        let s = 2f64.powi(f);
        let c = x.clamp(f64::from(lo) / s, f64::from(hi) / s).unwrap();
        let q = ((&c * s).unwrap() + 0.5)
            .unwrap()
            .floor()
            .unwrap()
            .affine(1.0 / s, 0.0)
            .unwrap();
        (&c + (q - &c).unwrap().detach()).unwrap()
    }

    #[test]
    fn matches_the_composed_fake_quantizer_and_its_gradient() {
        for (f, lo, hi) in [(1i32, 0i32, 3i32), (3, -2, 1), (-2, 0, 255), (0, -128, 127)] {
            // 1.5 times the clamp range, so values clip at both ends and round inside.
            let r = 1.5 * lo.abs().max(hi) as f32 / 2f32.powi(f);
            let x = candle_core::Var::from_tensor(&uniform(&[4, 3, 5, 5], 11, -r, r)).unwrap();
            let x = x.as_tensor();
            let fused = fake_quant_pow2(x, f, lo, hi).unwrap();
            let reference = composed(x, f, lo, hi);
            assert_eq!(max_diff(&fused, &reference), 0.0, "forward f={f}");
            let values = fused.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let s = 2f32.powi(f);
            assert!(values.iter().all(|v| (v * s).fract() == 0.0));
            assert!(
                values.iter().any(|v| *v * s == lo as f32),
                "some clip at lo"
            );
            assert!(
                values.iter().any(|v| *v * s == hi as f32),
                "some clip at hi"
            );
            let probe = uniform(&[4, 3, 5, 5], 12, -1.0, 1.0);
            let (ours, theirs) = probe_gradients(&fused, &reference, &probe);
            let (ours, theirs) = (ours.get(x).unwrap(), theirs.get(x).unwrap());
            assert_eq!(max_diff(ours, theirs), 0.0, "gradient f={f}");
        }
    }
}
