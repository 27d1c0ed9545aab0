//! Batch normalisation in training mode as one fused operation.
//!
//! Written with candle's elementwise operations, a batch-norm layer is about ten operations
//! forward, each with its own pass over the activations and its own broadcast reduction in the
//! backward pass; on a small CNN they took more time than the convolutions. Here the forward pass
//! is one statistics pass and one normalisation pass, and the backward pass one reduction and one
//! elementwise pass, with the textbook gradient (Ioffe & Szegedy 2015):
//! `dx = gamma * inv_std / M * (M * dy - sum(dy) - x_hat * sum(dy * x_hat))`, `M` the values per
//! channel. Sums are taken in f64 in a fixed order, so a step is deterministic.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::error::Result;

/// An `[N, C, S]` view of a contiguous NCHW (`S = H * W`) or NF (`S = 1`) tensor.
#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    s: usize,
}

impl Dims {
    fn of(layout: &Layout) -> candle_core::Result<Dims> {
        match *layout.dims() {
            [n, c] => Ok(Dims { n, c, s: 1 }),
            [n, c, h, w] => Ok(Dims { n, c, s: h * w }),
            ref d => candle_core::bail!("batch norm takes NF or NCHW tensors, not {d:?}"),
        }
    }

    /// Values per channel.
    fn m(&self) -> usize {
        self.n * self.s
    }

    /// Calls `f(index)` for every value of channel `c`, in a fixed order.
    #[inline]
    fn for_channel(&self, c: usize, mut f: impl FnMut(usize)) {
        for n in 0..self.n {
            let base = (n * self.c + c) * self.s;
            for i in base..base + self.s {
                f(i);
            }
        }
    }
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("batch norm needs a contiguous f32 tensor"),
    }
}

/// Per-channel batch mean and biased variance, as a `[2, C]` tensor (no gradient).
struct Stats;

impl CustomOp1 for Stats {
    fn name(&self) -> &'static str {
        "qbench-bn-stats"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = Dims::of(layout)?;
        let x = contiguous(storage, layout)?;
        let m = d.m().max(1) as f64;
        let stats: Vec<(f32, f32)> = (0..d.c)
            .into_par_iter()
            .map(|c| {
                let mut sum = 0f64;
                d.for_channel(c, |i| sum += f64::from(x[i]));
                let mean = sum / m;
                let mut sq = 0f64;
                d.for_channel(c, |i| sq += (f64::from(x[i]) - mean).powi(2));
                (mean as f32, (sq / m) as f32)
            })
            .collect();
        let mut out: Vec<f32> = stats.iter().map(|s| s.0).collect();
        out.extend(stats.iter().map(|s| s.1));
        Ok((CpuStorage::F32(out), Shape::from((2, d.c))))
    }
}

/// `y = gamma * (x - mean) * inv_std + beta` with the batch's own statistics (inputs x, gamma,
/// beta); its backward pass is [`Backward`].
struct Normalize {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl CustomOp3 for Normalize {
    fn name(&self) -> &'static str {
        "qbench-bn-train"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        gamma: &CpuStorage,
        lg: &Layout,
        beta: &CpuStorage,
        lb: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = Dims::of(lx)?;
        let (x, gamma, beta) = (
            contiguous(x, lx)?,
            contiguous(gamma, lg)?,
            contiguous(beta, lb)?,
        );
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(d.c * d.s)
            .zip(x.par_chunks(d.c * d.s))
            .for_each(|(y, x)| {
                for c in 0..d.c {
                    let scale = gamma[c] * self.inv_std[c];
                    let shift = beta[c] - self.mean[c] * scale;
                    let range = c * d.s..(c + 1) * d.s;
                    for (y, &x) in y[range.clone()].iter_mut().zip(&x[range]) {
                        *y = x * scale + shift;
                    }
                }
            });
        Ok((CpuStorage::F32(y), lx.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let c = gamma.elem_count();
        let packed = x.contiguous()?.apply_op2_no_bwd(
            &grad.contiguous()?,
            &Backward {
                mean: self.mean.clone(),
                inv_std: self.inv_std.clone(),
                gamma: gamma.flatten_all()?.to_vec1::<f32>()?,
            },
        )?;
        let n = x.elem_count();
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let dgamma = packed.narrow(0, n, c)?.reshape(gamma.shape())?;
        let dbeta = packed.narrow(0, n + c, c)?.reshape(gamma.shape())?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// The gradients of [`Normalize`] from `(x, dy)`, packed as `[dx (flat), dgamma, dbeta]`.
struct Backward {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
}

impl CustomOp2 for Backward {
    fn name(&self) -> &'static str {
        "qbench-bn-train-backward"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        lx: &Layout,
        dy: &CpuStorage,
        ldy: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = Dims::of(lx)?;
        let (x, dy) = (contiguous(x, lx)?, contiguous(dy, ldy)?);
        let m = d.m().max(1) as f64;
        // Per channel: sum(dy) and sum(dy * x_hat).
        let sums: Vec<(f64, f64)> = (0..d.c)
            .into_par_iter()
            .map(|c| {
                let (mean, inv) = (f64::from(self.mean[c]), f64::from(self.inv_std[c]));
                let (mut s, mut sx) = (0f64, 0f64);
                d.for_channel(c, |i| {
                    let g = f64::from(dy[i]);
                    s += g;
                    sx += g * (f64::from(x[i]) - mean) * inv;
                });
                (s, sx)
            })
            .collect();
        let mut out = vec![0f32; x.len() + 2 * d.c];
        let (dx, tail) = out.split_at_mut(x.len());
        dx.par_chunks_mut(d.c * d.s)
            .zip(x.par_chunks(d.c * d.s).zip(dy.par_chunks(d.c * d.s)))
            .for_each(|(dx, (x, dy))| {
                for (c, &(s, sx)) in sums.iter().enumerate() {
                    let (mean, inv) = (self.mean[c], self.inv_std[c]);
                    let k = self.gamma[c] * inv / m as f32;
                    let (s, sx) = (s as f32, sx as f32);
                    let range = c * d.s..(c + 1) * d.s;
                    for ((dx, &x), &g) in dx[range.clone()]
                        .iter_mut()
                        .zip(&x[range.clone()])
                        .zip(&dy[range])
                    {
                        let x_hat = (x - mean) * inv;
                        *dx = k * (m as f32 * g - s - x_hat * sx);
                    }
                }
            });
        for (c, &(s, sx)) in sums.iter().enumerate() {
            tail[c] = sx as f32;
            tail[d.c + c] = s as f32;
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + 2 * d.c)))
    }
}

/// Training-mode batch norm of `x` (NCHW or NF) over its batch (and spatial) positions: the
/// output, and the batch's per-channel mean and biased variance (detached, for the running
/// statistics).
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let x = x.contiguous()?;
    let stats = x.apply_op1_no_bwd(&Stats)?;
    let mean = stats.get(0)?;
    let var = stats.get(1)?;
    let inv_std: Vec<f32> = var
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| (1.0 / (f64::from(v) + eps).sqrt()) as f32)
        .collect();
    let y = x.apply_op3(
        &gamma.contiguous()?,
        &beta.contiguous()?,
        Normalize {
            mean: mean.to_vec1::<f32>()?,
            inv_std,
        },
    )?;
    Ok((y, mean, var))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::{max_diff, probe_gradients, uniform as rand};
    use candle_core::Var;

    /// Batch norm from candle's elementwise operations, differentiated by its autograd.
    fn composed(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Tensor {
        let spatial = x.rank() == 4;
        let xc = if spatial {
            x.transpose(0, 1).unwrap().flatten_from(1).unwrap()
        } else {
            x.t().unwrap()
        };
        let mean = xc.mean(1).unwrap();
        let var = xc
            .broadcast_sub(&mean.unsqueeze(1).unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .mean(1)
            .unwrap();
        let shape = |t: &Tensor| {
            if spatial {
                t.reshape((1, (), 1, 1)).unwrap()
            } else {
                t.reshape((1, ())).unwrap()
            }
        };
        let inv = (var + eps).unwrap().sqrt().unwrap().recip().unwrap();
        let scale = (gamma * &inv).unwrap();
        let shift = (beta - (&mean * &scale).unwrap()).unwrap();
        x.broadcast_mul(&shape(&scale))
            .unwrap()
            .broadcast_add(&shape(&shift))
            .unwrap()
    }

    #[test]
    fn matches_the_composed_batch_norm_and_its_gradients() {
        for shape in [&[4usize, 3, 5, 6][..], &[8, 7]] {
            let c = shape[1];
            let x = Var::from_tensor(&rand(shape, 1, -2.0, 3.0)).unwrap();
            let gamma = Var::from_tensor(&rand(&[c], 2, 0.5, 1.5)).unwrap();
            let beta = Var::from_tensor(&rand(&[c], 3, -1.0, 1.0)).unwrap();
            let (ours, mean, var) =
                batch_norm_train(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5).unwrap();
            let theirs = composed(x.as_tensor(), gamma.as_tensor(), beta.as_tensor(), 1e-5);
            assert!(max_diff(&ours, &theirs) < 1e-5, "forward {shape:?}");
            assert_eq!(mean.dims(), &[c]);
            assert_eq!(var.dims(), &[c]);
            let probe = rand(shape, 4, -1.0, 1.0);
            let (g1, g2) = probe_gradients(&ours, &theirs, &probe);
            for v in [&x, &gamma, &beta] {
                let (a, b) = (
                    g1.get(v.as_tensor()).unwrap(),
                    g2.get(v.as_tensor()).unwrap(),
                );
                assert!(max_diff(a, b) < 1e-4, "gradient {shape:?}: {a} vs {b}");
            }
        }
    }
}
