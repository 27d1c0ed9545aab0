//! Scalar reference kernels: the oracle the fast kernels are tested against.

use crate::ConvGeometry;

/// `c[i][j] = sum_k a[i][k] * b[j][k]` with i32 accumulation (wrapping, as the hardware does).
/// `a` is `m x k` row-major, `b` is `n x k` row-major (weights, one row per output), `c` is `m x n`.
pub fn gemm_u8i8(a: &[u8], b: &[i8], c: &mut [i32], m: usize, n: usize, k: usize) {
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0i32;
            for p in 0..k {
                acc = acc.wrapping_add(i32::from(a[i * k + p]) * i32::from(b[j * k + p]));
            }
            c[i * n + j] = acc;
        }
    }
}

/// Convolution of u8 NCHW input with i8 OIHW weights (`[O][C/groups][kh][kw]`) into i32 NCHW output.
/// Positions outside the input read `pad_value` (the integer that represents real zero).
pub fn conv2d_u8i8(input: &[u8], weights: &[i8], out: &mut [i32], g: &ConvGeometry, pad_value: u8) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let cin_g = g.in_channels / g.groups;
    let cout_g = g.out_channels / g.groups;
    for n in 0..g.batch {
        for o in 0..g.out_channels {
            let grp = o / cout_g;
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = 0i32;
                    for ci in 0..cin_g {
                        let c = grp * cin_g + ci;
                        for ky in 0..g.kernel_h {
                            for kx in 0..g.kernel_w {
                                let iy = (y * g.stride + ky) as isize - g.pad as isize;
                                let ix = (x * g.stride + kx) as isize - g.pad as isize;
                                let v = if iy < 0
                                    || ix < 0
                                    || iy >= g.in_h as isize
                                    || ix >= g.in_w as isize
                                {
                                    pad_value
                                } else {
                                    input[((n * g.in_channels + c) * g.in_h + iy as usize) * g.in_w
                                        + ix as usize]
                                };
                                let w =
                                    weights[((o * cin_g + ci) * g.kernel_h + ky) * g.kernel_w + kx];
                                acc = acc.wrapping_add(i32::from(v) * i32::from(w));
                            }
                        }
                    }
                    out[((n * g.out_channels + o) * oh + y) * ow + x] = acc;
                }
            }
        }
    }
}

/// Number of u64 words that hold `bits` packed bits.
pub fn words_for_bits(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Binary (+-1) matrix product over bit-packed rows: bit 1 encodes +1, bit 0 encodes -1, and
/// the bits past `bits` in each row's last word are 0 in both operands.
/// `c[i][j] = bits - 2 * popcount(a_i XOR b_j)`, the dot product of the two +-1 vectors.
/// `a` is `m x words`, `b` is `n x words`, with `words = words_for_bits(bits)`.
pub fn binary_gemm(a: &[u64], b: &[u64], c: &mut [i32], m: usize, n: usize, bits: usize) {
    let words = words_for_bits(bits);
    for i in 0..m {
        for j in 0..n {
            let mut pop = 0u32;
            for w in 0..words {
                pop += (a[i * words + w] ^ b[j * words + w]).count_ones();
            }
            c[i * n + j] = bits as i32 - 2 * pop as i32;
        }
    }
}

/// Binary (+-1) convolution. Input is bit-packed along channels per pixel, `[N][H][W][words]`
/// with `words = words_for_bits(in_channels)`; weights are `[O][kh][kw][wwords]` with
/// `wwords = words_for_bits(in_channels / groups)`, bit `i` of an output channel's taps standing
/// for input channel `i` of its group. With `groups > 1` each tap's bits are taken one by one.
///
/// Padding rule: a kernel tap that falls outside the input contributes 0 (it is neither +1 nor -1),
/// so a border output is the dot product over the taps inside the input only. This is what a float
/// convolution with zero padding computes on a +-1 tensor, so training and the integer engine agree.
pub fn binary_conv2d(input: &[u64], weights: &[u64], out: &mut [i32], g: &ConvGeometry) {
    let words = words_for_bits(g.in_channels);
    let cin_g = g.in_channels / g.groups;
    let cout_g = g.out_channels / g.groups;
    let wwords = words_for_bits(cin_g);
    let bit = |v: &[u64], i: usize| (v[i / 64] >> (i % 64)) & 1;
    let (oh, ow) = (g.out_h(), g.out_w());
    for n in 0..g.batch {
        for o in 0..g.out_channels {
            let first = o / cout_g * cin_g;
            for y in 0..oh {
                for x in 0..ow {
                    let mut acc = 0i32;
                    for ky in 0..g.kernel_h {
                        for kx in 0..g.kernel_w {
                            let iy = (y * g.stride + ky) as isize - g.pad as isize;
                            let ix = (x * g.stride + kx) as isize - g.pad as isize;
                            if iy < 0 || ix < 0 || iy >= g.in_h as isize || ix >= g.in_w as isize {
                                continue;
                            }
                            let a0 = ((n * g.in_h + iy as usize) * g.in_w + ix as usize) * words;
                            let w0 = ((o * g.kernel_h + ky) * g.kernel_w + kx) * wwords;
                            let (a, w) = (&input[a0..a0 + words], &weights[w0..w0 + wwords]);
                            let pop = if g.groups == 1 {
                                a.iter().zip(w).map(|(a, w)| (a ^ w).count_ones()).sum()
                            } else {
                                (0..cin_g)
                                    .map(|i| (bit(a, first + i) ^ bit(w, i)) as u32)
                                    .sum::<u32>()
                            };
                            acc += cin_g as i32 - 2 * pop as i32;
                        }
                    }
                    out[((n * g.out_channels + o) * oh + y) * ow + x] = acc;
                }
            }
        }
    }
}
