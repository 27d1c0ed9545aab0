//! Binary (+-1, bit-packed) GEMM and convolution with xor + popcount.
//!
//! Both are a popcount GEMM `S[r][l] = sum_q popcount(A[r][q] ^ B[l][q])` over u64 words: the
//! microkernel broadcasts `MR` A rows and keeps `NR` B rows in vector lanes (panels laid out
//! `[q][row]`). The caller turns `S` into the result:
//! * GEMM: `bits - 2 S` (A = activation rows, B = weight rows, so output rows are contiguous).
//! * Convolution: A = weights (`O` rows of `kh * kw * words` words), B = im2col of `NR` output
//!   pixels, built per task. A tap outside the input reads a zero word, which adds
//!   `popcount(w)` to `S`; that is subtracted again (per output channel and tap, precomputed), and
//!   the result is `valid_taps * C - 2 S`, which is the reference's padding rule.
//!
//! Kernels: scalar `popcnt` ([`BinaryIsa::Scalar`]); AVX2 nibble-LUT `vpshufb` popcount with
//! byte accumulators folded by `vpsadbw` ([`BinaryIsa::Avx2`]); AVX-512 `vpopcntq`
//! ([`BinaryIsa::Avx512Vpopcnt`], untested here: the development CPU lacks it).

pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512;

use crate::dispatch::BinaryIsa;
use crate::threads::{SendPtr, max_threads, run_tasks};
use crate::{ConvGeometry, words_for_bits};

/// Rows of A (broadcast) per tile.
pub(crate) const MR: usize = 4;
/// Rows of B (vector lanes) per tile.
pub(crate) const NR: usize = 8;

/// `out[r * ldo + l] = base[l] - 2 * sum_q popcount(A[q][r] ^ B[q][l])` over `q` words, for the
/// whole `MR x NR` tile (wrapping i32 arithmetic).
pub(crate) type Kernel =
    unsafe fn(q: usize, a: *const u64, b: *const u64, out: *mut i32, ldo: usize, base: &[i32; NR]);

fn kernel_for(isa: BinaryIsa) -> Kernel {
    assert!(isa.available(), "{isa:?} is not available on this CPU");
    match isa {
        #[cfg(target_arch = "x86_64")]
        BinaryIsa::Avx2 => avx2::kernel,
        #[cfg(target_arch = "x86_64")]
        BinaryIsa::Avx512Vpopcnt => avx512::kernel,
        _ => scalar::kernel_dispatch(),
    }
}

/// Pack `rows` rows of `q` words each (row `r` at `src[r * stride..]`) into panels of `r_per`
/// rows, layout `[panel][q][r_per]`, zero rows past the end.
fn pack_rows(dst: &mut Vec<u64>, src: &[u64], rows: usize, q: usize, stride: usize, r_per: usize) {
    dst.clear();
    dst.resize(rows.div_ceil(r_per) * q * r_per, 0);
    for r in 0..rows {
        let (p, rr) = (r / r_per, r % r_per);
        let panel = &mut dst[p * q * r_per..(p + 1) * q * r_per];
        for (w, &v) in src[r * stride..r * stride + q].iter().enumerate() {
            panel[w * r_per + rr] = v;
        }
    }
}

/// Binary weight rows (`n x words_for_bits(bits)`, bit-packed) packed once for
/// [`binary_gemm_packed`].
#[derive(Clone, Debug)]
pub struct PackedBinaryWeights {
    n: usize,
    bits: usize,
    isa: BinaryIsa,
    /// B panels `[n / NR][words][NR]`.
    data: Vec<u64>,
}

impl PackedBinaryWeights {
    /// Pack `b` (`n` rows of `words_for_bits(bits)` words) for the best binary ISA of this CPU.
    pub fn new(b: &[u64], n: usize, bits: usize) -> Self {
        Self::new_for(crate::dispatch::binary_isa(), b, n, bits)
    }

    /// Pack for a given ISA (for tests and benchmarks). Panics if the CPU lacks it.
    pub fn new_for(isa: BinaryIsa, b: &[u64], n: usize, bits: usize) -> Self {
        assert!(isa.available(), "{isa:?} is not available on this CPU");
        let words = words_for_bits(bits);
        assert!(b.len() >= n * words, "weights slice too short");
        let mut data = Vec::new();
        pack_rows(&mut data, b, n, words, words, NR);
        PackedBinaryWeights { n, bits, isa, data }
    }

    /// The ISA this packing runs on.
    pub fn isa(&self) -> BinaryIsa {
        self.isa
    }
}

/// Binary GEMM with pre-packed weights (`a` is `m` rows of packed bits, `c` is `m x n`); equal
/// bit for bit to [`crate::reference::binary_gemm`].
pub fn binary_gemm_packed(a: &[u64], b: &PackedBinaryWeights, c: &mut [i32], m: usize) {
    let kernel = kernel_for(b.isa);
    let (n, bits) = (b.n, b.bits);
    let words = words_for_bits(bits);
    assert!(a.len() >= m * words && c.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    let threads = max_threads();
    let m_panels = m.div_ceil(MR);
    let n_panels = n.div_ceil(NR);
    // Split rows of A; with few rows, split the weight panels as well.
    let m_chunks = if threads <= 1 {
        1
    } else {
        (4 * threads).min(m_panels)
    };
    let n_chunks = if threads <= 1 || m_chunks >= 2 * threads {
        1
    } else {
        (4 * threads).div_ceil(m_chunks).min(n_panels)
    };
    let cptr = SendPtr::new(c.as_mut_ptr());
    let base = [bits as i32; NR];
    run_tasks(m_chunks * n_chunks, threads, |t| {
        let (mc, nc) = (t / n_chunks, t % n_chunks);
        let (p0, p1) = (mc * m_panels / m_chunks, (mc + 1) * m_panels / m_chunks);
        let (q0, q1) = (nc * n_panels / n_chunks, (nc + 1) * n_panels / n_chunks);
        let mut ap = Vec::new();
        let mut tile = [0i32; MR * NR];
        for p in p0..p1 {
            let i0 = p * MR;
            let rows = MR.min(m - i0);
            pack_rows(&mut ap, &a[i0 * words..], rows, words, words, MR);
            for jp in q0..q1 {
                let j0 = jp * NR;
                let cols = NR.min(n - j0);
                let bptr = b.data[jp * words * NR..].as_ptr();
                // SAFETY: panels hold `words` words; tasks own disjoint tiles of c.
                unsafe {
                    if rows == MR && cols == NR {
                        let dst = cptr.get().add(i0 * n + j0);
                        kernel(words, ap.as_ptr(), bptr, dst, n, &base);
                    } else {
                        kernel(words, ap.as_ptr(), bptr, tile.as_mut_ptr(), NR, &base);
                        for r in 0..rows {
                            for l in 0..cols {
                                *cptr.get().add((i0 + r) * n + j0 + l) = tile[r * NR + l];
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Binary GEMM on an explicit ISA (packs the weights on every call); for tests and benchmarks.
/// See [`crate::reference::binary_gemm`].
pub fn binary_gemm_with(
    isa: BinaryIsa,
    a: &[u64],
    b: &[u64],
    c: &mut [i32],
    m: usize,
    n: usize,
    bits: usize,
) {
    binary_gemm_packed(a, &PackedBinaryWeights::new_for(isa, b, n, bits), c, m);
}

/// Binary convolution weights (`[O][kh][kw][words]`) packed once for [`binary_conv2d_packed`].
#[derive(Clone, Debug)]
pub struct PackedBinaryConvWeights {
    out_channels: usize,
    in_channels: usize,
    kernel_h: usize,
    kernel_w: usize,
    isa: BinaryIsa,
    /// A panels `[O / MR][q][MR]`, `q = kh * kw * words`.
    data: Vec<u64>,
    /// `popcount` of each output channel's weights per tap, `[kh * kw][O]`.
    tap_pop: Vec<i32>,
}

impl PackedBinaryConvWeights {
    /// Pack for the best binary ISA of this CPU (only `g`'s channels and kernel size are used).
    pub fn new(weights: &[u64], g: &ConvGeometry) -> Self {
        Self::new_for(crate::dispatch::binary_isa(), weights, g)
    }

    /// Pack for a given ISA (for tests and benchmarks). Panics if the CPU lacks it.
    pub fn new_for(isa: BinaryIsa, weights: &[u64], g: &ConvGeometry) -> Self {
        assert!(isa.available(), "{isa:?} is not available on this CPU");
        assert_eq!(g.groups, 1, "binary convolution supports groups == 1");
        let words = words_for_bits(g.in_channels);
        let taps = g.kernel_h * g.kernel_w;
        let q = taps * words;
        assert!(
            weights.len() >= g.out_channels * q,
            "weights slice too short"
        );
        let mut data = Vec::new();
        pack_rows(&mut data, weights, g.out_channels, q, q, MR);
        let tap_pop = (0..taps * g.out_channels)
            .map(|i| {
                let (tap, o) = (i / g.out_channels, i % g.out_channels);
                weights[(o * taps + tap) * words..(o * taps + tap + 1) * words]
                    .iter()
                    .map(|w| w.count_ones() as i32)
                    .sum()
            })
            .collect();
        PackedBinaryConvWeights {
            out_channels: g.out_channels,
            in_channels: g.in_channels,
            kernel_h: g.kernel_h,
            kernel_w: g.kernel_w,
            isa,
            data,
            tap_pop,
        }
    }

    /// The ISA this packing runs on.
    pub fn isa(&self) -> BinaryIsa {
        self.isa
    }
}

/// Binary convolution with pre-packed weights; equal bit for bit to
/// [`crate::reference::binary_conv2d`].
pub fn binary_conv2d_packed(
    input: &[u64],
    w: &PackedBinaryConvWeights,
    out: &mut [i32],
    g: &ConvGeometry,
) {
    assert_eq!(g.groups, 1, "binary convolution supports groups == 1");
    assert!(
        g.out_channels == w.out_channels
            && g.in_channels == w.in_channels
            && g.kernel_h == w.kernel_h
            && g.kernel_w == w.kernel_w,
        "geometry does not match the packed weights"
    );
    assert!(g.stride > 0 && g.in_h + 2 * g.pad >= g.kernel_h && g.in_w + 2 * g.pad >= g.kernel_w);
    let kernel = kernel_for(w.isa);
    let words = words_for_bits(g.in_channels);
    let (oh, ow) = (g.out_h(), g.out_w());
    let plane = oh * ow;
    let total = g.batch * plane;
    assert!(
        input.len() >= g.batch * g.in_h * g.in_w * words
            && out.len() >= g.batch * g.out_channels * plane
    );
    if total == 0 || g.out_channels == 0 {
        return;
    }
    let (kh, kw) = (g.kernel_h, g.kernel_w);
    let taps = kh * kw;
    let q = taps * words;
    let o_panels = g.out_channels.div_ceil(MR);
    let n_panels = total.div_ceil(NR);
    let threads = max_threads();
    let tasks = if threads <= 1 {
        1
    } else {
        (4 * threads).min(n_panels)
    };
    let optr = SendPtr::new(out.as_mut_ptr());
    let c = g.in_channels as i32;
    // Whether tap (ky, kx) of the pixel whose top-left tap is (iy0, ix0) reads the input.
    let inside = |iy0: isize, ix0: isize, ky: usize, kx: usize| {
        let (iy, ix) = (iy0 + ky as isize, ix0 + kx as isize);
        iy >= 0 && ix >= 0 && (iy as usize) < g.in_h && (ix as usize) < g.in_w
    };
    run_tasks(tasks, threads, |t| {
        let (p0, p1) = (t * n_panels / tasks, (t + 1) * n_panels / tasks);
        let mut bp = vec![0u64; q * NR];
        let mut tile = [0i32; MR * NR];
        let mut corr = vec![0i32; g.out_channels * NR];
        // Per lane: image, pixel, top-left tap position, and whether every tap is inside.
        let mut lanes = [(0usize, 0usize, 0isize, 0isize, true); NR];
        for p in p0..p1 {
            let j0 = p * NR;
            let cols = NR.min(total - j0);
            for (l, lane) in lanes.iter_mut().enumerate() {
                if l >= cols {
                    for tq in 0..q {
                        bp[tq * NR + l] = 0;
                    }
                    continue;
                }
                let (n, px) = ((j0 + l) / plane, (j0 + l) % plane);
                let (y, x) = (px / ow, px % ow);
                let (iy0, ix0) = (
                    (y * g.stride) as isize - g.pad as isize,
                    (x * g.stride) as isize - g.pad as isize,
                );
                let interior = iy0 >= 0
                    && ix0 >= 0
                    && iy0 as usize + kh <= g.in_h
                    && ix0 as usize + kw <= g.in_w;
                if interior {
                    // Each kernel row is `kw * words` consecutive input words.
                    let row_len = kw * words;
                    for ky in 0..kh {
                        let src =
                            ((n * g.in_h + iy0 as usize + ky) * g.in_w + ix0 as usize) * words;
                        let dst = &mut bp[ky * row_len * NR..(ky + 1) * row_len * NR];
                        for (t, &v) in input[src..src + row_len].iter().enumerate() {
                            dst[t * NR + l] = v;
                        }
                    }
                } else {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let tap = ky * kw + kx;
                            if inside(iy0, ix0, ky, kx) {
                                let (iy, ix) =
                                    ((iy0 + ky as isize) as usize, (ix0 + kx as isize) as usize);
                                let src = ((n * g.in_h + iy) * g.in_w + ix) * words;
                                for wd in 0..words {
                                    bp[(tap * words + wd) * NR + l] = input[src + wd];
                                }
                            } else {
                                for wd in 0..words {
                                    bp[(tap * words + wd) * NR + l] = 0;
                                }
                            }
                        }
                    }
                }
                *lane = (n, px, iy0, ix0, interior);
            }
            // Lanes with taps outside the input, and each lane's `valid_taps * C`.
            // Each lane's `valid_taps * C`; for lanes with taps outside the input, the popcount
            // of the weights those (zero-word) taps added, per output channel: corr[o][lane].
            let mut base = [0i32; NR];
            let mut border = [0usize; NR];
            let mut n_border = 0;
            for (l, &(_, _, iy0, ix0, interior)) in lanes.iter().enumerate().take(cols) {
                if interior {
                    base[l] = taps as i32 * c;
                    continue;
                }
                let cl = &mut corr[n_border * g.out_channels..(n_border + 1) * g.out_channels];
                cl.fill(0);
                let mut valid = 0;
                for ky in 0..kh {
                    for kx in 0..kw {
                        if inside(iy0, ix0, ky, kx) {
                            valid += 1;
                            continue;
                        }
                        let tap = ky * kw + kx;
                        let tp = &w.tap_pop[tap * g.out_channels..(tap + 1) * g.out_channels];
                        for (d, &pc) in cl.iter_mut().zip(tp) {
                            *d += pc;
                        }
                    }
                }
                base[l] = valid * c;
                border[n_border] = l;
                n_border += 1;
            }
            let (n0, px0) = (j0 / plane, j0 % plane);
            let contiguous = cols == NR && px0 + NR <= plane;
            for op in 0..o_panels {
                let o0 = op * MR;
                let rows = MR.min(g.out_channels - o0);
                let aptr = w.data[op * q * MR..].as_ptr();
                // SAFETY: panels hold `q` words; tasks own disjoint output pixels.
                unsafe {
                    if contiguous && rows == MR {
                        let dst = optr.get().add((n0 * g.out_channels + o0) * plane + px0);
                        kernel(q, aptr, bp.as_ptr(), dst, plane, &base);
                        for r in 0..MR {
                            for (i, &l) in border[..n_border].iter().enumerate() {
                                *dst.add(r * plane + l) += 2 * corr[i * g.out_channels + o0 + r];
                            }
                        }
                    } else {
                        kernel(q, aptr, bp.as_ptr(), tile.as_mut_ptr(), NR, &base);
                        for (i, &l) in border[..n_border].iter().enumerate() {
                            for r in 0..rows {
                                tile[r * NR + l] += 2 * corr[i * g.out_channels + o0 + r];
                            }
                        }
                        for (l, &(n, px, ..)) in lanes.iter().enumerate().take(cols) {
                            for r in 0..rows {
                                *optr.get().add((n * g.out_channels + o0 + r) * plane + px) =
                                    tile[r * NR + l];
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Binary convolution on an explicit ISA (packs the weights on every call); for tests and
/// benchmarks. See [`crate::reference::binary_conv2d`].
pub fn binary_conv2d_with(
    isa: BinaryIsa,
    input: &[u64],
    weights: &[u64],
    out: &mut [i32],
    g: &ConvGeometry,
) {
    let w = PackedBinaryConvWeights::new_for(isa, weights, g);
    binary_conv2d_packed(input, &w, out, g);
}
