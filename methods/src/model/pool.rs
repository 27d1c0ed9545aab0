//! Differentiable 2-D max pooling for any kernel, stride and padding.
//!
//! candle 0.11's `max_pool2d` has no backward pass when the kernel differs from the stride
//! ("backward not supported for maxpool2d if ksize != stride"), which ResNet's 3x3 stride-2 stem
//! pool needs for fine-tuning. There the pool is the elementwise maximum of its `kernel^2` strided
//! views, each built from `narrow` and `reshape`, so candle's autograd differentiates it (the
//! gradient goes to the window's maximum; ties share it).

use candle_core::Tensor;

use crate::error::Result;

/// Max pool of an NCHW tensor with a square window. Padding replicates the edge, so a padded
/// position never changes a window's maximum while `pad < kernel` (the integer engine ignores
/// padded positions the same way).
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, pad: usize) -> Result<Tensor> {
    let x = if pad > 0 {
        x.pad_with_same(2, pad, pad)?.pad_with_same(3, pad, pad)?
    } else {
        x.clone()
    };
    if kernel == stride {
        return Ok(x.max_pool2d_with_stride(kernel, stride)?);
    }
    let (_, _, h, w) = x.dims4()?;
    let out_h = (h - kernel) / stride + 1;
    let out_w = (w - kernel) / stride + 1;
    // Room for `stride * out` rows and columns after every offset; the extra ones are never picked.
    let x = x
        .pad_with_zeros(2, 0, stride)?
        .pad_with_zeros(3, 0, stride)?;
    let mut out: Option<Tensor> = None;
    for dy in 0..kernel {
        let rows = strided(&x, 2, dy, stride, out_h)?;
        for dx in 0..kernel {
            let view = strided(&rows, 3, dx, stride, out_w)?;
            out = Some(match out {
                None => view,
                Some(acc) => acc.maximum(&view)?,
            });
        }
    }
    Ok(out.expect("kernel >= 1"))
}

/// Elements `start, start + stride, ..` (`count` of them) along `dim` (2 or 3) of an NCHW tensor.
fn strided(x: &Tensor, dim: usize, start: usize, stride: usize, count: usize) -> Result<Tensor> {
    let span = x.narrow(dim, start, stride * count)?;
    let mut shape = span.dims().to_vec();
    shape[dim] = count;
    shape.insert(dim + 1, stride);
    Ok(span
        .reshape(shape)?
        .narrow(dim + 1, 0, 1)?
        .squeeze(dim + 1)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Brute-force max pool over replicate-padded input, for comparison.
    fn reference(x: &[f32], h: usize, w: usize, k: usize, s: usize, p: usize) -> Vec<f32> {
        let at = |y: isize, xx: isize| {
            let y = y.clamp(0, h as isize - 1) as usize;
            let xx = xx.clamp(0, w as isize - 1) as usize;
            x[y * w + xx]
        };
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        let mut out = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                let mut m = f32::NEG_INFINITY;
                for dy in 0..k {
                    for dx in 0..k {
                        let y = (oy * s + dy) as isize - p as isize;
                        let xx = (ox * s + dx) as isize - p as isize;
                        m = m.max(at(y, xx));
                    }
                }
                out.push(m);
            }
        }
        out
    }

    #[test]
    fn matches_brute_force_for_overlapping_and_tiling_windows() {
        let (h, w) = (9, 7);
        let data: Vec<f32> = (0..h * w).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
        let x = Tensor::from_vec(data.clone(), (1, 1, h, w), &Device::Cpu).unwrap();
        for (k, s, p) in [
            (3, 2, 1),
            (3, 2, 0),
            (2, 2, 0),
            (3, 1, 1),
            (2, 1, 0),
            (3, 3, 0),
        ] {
            let got: Vec<f32> = max_pool2d(&x, k, s, p)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            assert_eq!(got, reference(&data, h, w, k, s, p), "k {k} s {s} p {p}");
        }
    }

    #[test]
    fn gradient_reaches_each_window_maximum() {
        // Distinct values: each window has one maximum, which receives the window's gradient.
        let (h, w) = (5, 5);
        let data: Vec<f32> = (0..h * w).map(|i| ((i * 7) % 25) as f32).collect();
        let x = Var::from_vec(data.clone(), (1, 1, h, w), &Device::Cpu).unwrap();
        let y = max_pool2d(x.as_tensor(), 3, 2, 1).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = grads
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let mut expected = vec![0f32; h * w];
        for m in reference(&data, h, w, 3, 2, 1) {
            let i = data.iter().position(|&v| v == m).unwrap();
            expected[i] += 1.0;
        }
        assert_eq!(g, expected);
    }
}
