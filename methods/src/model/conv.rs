//! 2-D convolution for training as im2col followed by a matrix product.
//!
//! candle's CPU convolution backward goes through a direct `conv_transpose2d` loop that dominates
//! training time. Here the convolution is `W (O x CKK) · cols (N x CKK x P)`, so candle's autograd
//! differentiates the matrix product with its fast GEMM, and the only hand-written derivative is
//! that of im2col itself: a gather, whose adjoint is the scatter-add col2im.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::arch::ConvShape;
use crate::error::Result;

/// Geometry of one im2col: input `C x H x W`, square kernel, stride, zero padding.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    pad: usize,
}

impl Geometry {
    fn out_hw(&self) -> (usize, usize) {
        (
            (self.h + 2 * self.pad - self.k) / self.stride + 1,
            (self.w + 2 * self.pad - self.k) / self.stride + 1,
        )
    }
    fn rows(&self) -> usize {
        self.c * self.k * self.k
    }
    /// Calls `f(col, input, len)` for every run of `len` consecutive column entries of one
    /// (row, output row) that read the input: entry `col + j` reads input `input + j * stride`.
    /// Entries that fall on padding are skipped (they are zero).
    #[inline]
    fn for_each_run(&self, mut f: impl FnMut(usize, usize, usize)) {
        let (oh, ow) = self.out_hw();
        let cols = oh * ow;
        let s = self.stride;
        for c in 0..self.c {
            for ky in 0..self.k {
                for kx in 0..self.k {
                    let row = (c * self.k + ky) * self.k + kx;
                    // Output columns x whose tap x * s + kx - pad lies in 0..w.
                    let x_lo = self.pad.saturating_sub(kx).div_ceil(s);
                    let x_hi = if self.w + self.pad > kx {
                        ow.min((self.w - 1 + self.pad - kx) / s + 1)
                    } else {
                        0
                    };
                    if x_lo >= x_hi {
                        continue;
                    }
                    let ix = x_lo * s + kx - self.pad;
                    for y in 0..oh {
                        let iy = (y * s + ky) as isize - self.pad as isize;
                        if iy < 0 || iy >= self.h as isize {
                            continue;
                        }
                        f(
                            row * cols + y * ow + x_lo,
                            (c * self.h + iy as usize) * self.w + ix,
                            x_hi - x_lo,
                        );
                    }
                }
            }
        }
    }
}

fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("im2col/col2im need a contiguous f32 tensor"),
    }
}

/// `[N, C, H, W] -> [N, C*k*k, OH*OW]`.
struct Im2Col(Geometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "qbench-im2col"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        let input = contiguous(storage, layout)?;
        let n = layout.dims()[0];
        let (oh, ow) = g.out_hw();
        let per_out = g.rows() * oh * ow;
        let per_in = g.c * g.h * g.w;
        let mut out = vec![0f32; n * per_out];
        out.par_chunks_mut(per_out)
            .zip(input.par_chunks(per_in))
            .for_each(|(dst, src)| {
                g.for_each_run(|o, i, len| {
                    if g.stride == 1 {
                        dst[o..o + len].copy_from_slice(&src[i..i + len]);
                    } else {
                        for (d, &v) in dst[o..o + len]
                            .iter_mut()
                            .zip(src[i..].iter().step_by(g.stride))
                        {
                            *d = v;
                        }
                    }
                });
            });
        Ok((CpuStorage::F32(out), Shape::from((n, g.rows(), oh * ow))))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(
            grad_res.contiguous()?.apply_op1_no_bwd(&Col2Im(self.0))?,
        ))
    }
}

/// The adjoint of [`Im2Col`]: `[N, C*k*k, OH*OW] -> [N, C, H, W]`, summing overlapping taps.
struct Col2Im(Geometry);

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "qbench-col2im"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = self.0;
        let cols = contiguous(storage, layout)?;
        let n = layout.dims()[0];
        let (oh, ow) = g.out_hw();
        let per_col = g.rows() * oh * ow;
        let per_in = g.c * g.h * g.w;
        let mut out = vec![0f32; n * per_in];
        out.par_chunks_mut(per_in)
            .zip(cols.par_chunks(per_col))
            .for_each(|(dst, src)| {
                g.for_each_run(|o, i, len| {
                    for (d, &v) in dst[i..].iter_mut().step_by(g.stride).zip(&src[o..o + len]) {
                        *d += v;
                    }
                });
            });
        Ok((CpuStorage::F32(out), Shape::from((n, g.c, g.h, g.w))))
    }
}

/// Convolution of `x` (N, C, H, W) with `w` (O, C/groups, k, k) of the given geometry, unit
/// dilation. Groups need no second kernel: im2col's rows are channel-major, so group `g`'s rows
/// are one contiguous block and the product is a batch of `groups` matrix products.
pub fn conv2d(x: &Tensor, w: &Tensor, shape: &ConvShape) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let o = shape.out_channels;
    let g = Geometry {
        c,
        h,
        w: wd,
        k: shape.kernel,
        stride: shape.stride,
        pad: shape.pad,
    };
    let (oh, ow) = g.out_hw();
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    if shape.groups == 1 {
        let wm = w.reshape((o, g.rows()))?;
        return Ok(wm.broadcast_matmul(&cols)?.reshape((n, o, oh, ow))?);
    }
    let groups = shape.groups;
    let rows = g.rows() / groups;
    let cols = cols.reshape((n, groups, rows, oh * ow))?;
    let wm = w.reshape((groups, o / groups, rows))?;
    Ok(wm.broadcast_matmul(&cols)?.reshape((n, o, oh, ow))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_util::{max_diff, probe_gradients, uniform};
    use candle_core::Var;

    fn rand(shape: &[usize], seed: u64) -> Tensor {
        uniform(shape, seed, -1.0, 1.0)
    }

    #[test]
    fn matches_candle_convolution_and_its_gradients() {
        // (stride, pad, kernel, input channels, output channels, groups)
        for (stride, pad, k, c, o, groups) in [
            (1, 1, 3, 3, 4, 1),
            (2, 1, 3, 3, 4, 1),
            (1, 0, 5, 3, 4, 1),
            (2, 3, 7, 3, 4, 1),
            (2, 0, 1, 3, 4, 1),
            (1, 1, 3, 4, 4, 4),
            (2, 1, 3, 6, 12, 3),
        ] {
            let x = Var::from_tensor(&rand(&[2, c, 11, 9], 1)).unwrap();
            let w = Var::from_tensor(&rand(&[o, c / groups, k, k], 2)).unwrap();
            let shape = ConvShape {
                in_channels: c,
                out_channels: o,
                kernel: k,
                stride,
                pad,
                groups,
            };
            let ours = conv2d(x.as_tensor(), w.as_tensor(), &shape).unwrap();
            let theirs = x
                .as_tensor()
                .conv2d(w.as_tensor(), pad, stride, 1, groups)
                .unwrap();
            assert_eq!(ours.dims(), theirs.dims());
            assert!(
                max_diff(&ours, &theirs) < 1e-4,
                "forward s{stride} p{pad} k{k} g{groups}"
            );
            let probe = rand(ours.dims(), 3);
            let (g1, g2) = probe_gradients(&ours, &theirs, &probe);
            for v in [&x, &w] {
                let (a, b) = (
                    g1.get(v.as_tensor()).unwrap(),
                    g2.get(v.as_tensor()).unwrap(),
                );
                assert!(
                    max_diff(a, b) < 1e-3,
                    "gradient s{stride} p{pad} k{k} g{groups}"
                );
            }
        }
    }
}
