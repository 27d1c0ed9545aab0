//! Portable depthwise plane: interior outputs read the input directly, border outputs check
//! every tap against the input's bounds and read `pad_value` outside it.

use super::Plane;
use crate::ConvGeometry;

/// Compute one (image, channel) plane.
pub(super) fn plane(p: Plane<'_>, g: &ConvGeometry, pad_value: u8) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (h, w, s, pad) = (g.in_h, g.in_w, g.stride, g.pad);
    let (kh, kw) = (g.kernel_h, g.kernel_w);
    // Output rows/columns whose taps all lie inside the input.
    let inside = |o: usize, n: usize, k: usize| o * s >= pad && o * s + k <= n + pad;
    for y in 0..oh {
        let row_in = inside(y, h, kh);
        for x in 0..ow {
            let mut acc = 0i32;
            if row_in && inside(x, w, kw) {
                let (iy, ix) = (y * s - pad, x * s - pad);
                for ky in 0..kh {
                    let src = &p.input[(iy + ky) * w + ix..][..kw];
                    for (&v, &wt) in src.iter().zip(&p.raw[ky * kw..(ky + 1) * kw]) {
                        acc = acc.wrapping_add(i32::from(v) * i32::from(wt));
                    }
                }
            } else {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let iy = (y * s + ky).wrapping_sub(pad);
                        let ix = (x * s + kx).wrapping_sub(pad);
                        let v = if iy < h && ix < w {
                            p.input[iy * w + ix]
                        } else {
                            pad_value
                        };
                        acc = acc.wrapping_add(i32::from(v) * i32::from(p.raw[ky * kw + kx]));
                    }
                }
            }
            p.out[y * ow + x] = acc;
        }
    }
}
