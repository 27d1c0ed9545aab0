//! AVX2 depthwise plane (strides 1 and 2).
//!
//! Every `vpmaddwd` multiplies 8 output pixels' input pairs `(x[c], x[c + 1])` (two i16 halves of
//! a 32-bit lane) by the broadcast weight pair `(w[kx], w[kx + 1])` of one kernel row: two taps of
//! 8 consecutive outputs per instruction (a missing last partner of an odd kernel width has weight
//! 0). The input rows are widened into a ring of row slots a little ahead of the output rows that
//! read them, laid out so that one plain 256-bit load gives those 8 lanes:
//! * stride 1: the pair row `H[c] = (x[c], x[c + 1])`, one 32-bit element per padded column, so
//!   output `x0 + q` finds its tap pair `kx` at `H[x0 + kx + q]`;
//! * stride 2: the plain i16 row `P[c] = x[c]`, so the 32-bit lane `q` of a load at `P[2 x0 + kx]`
//!   is `(x[2 (x0 + q) + kx], x[2 (x0 + q) + kx + 1])`.
//!
//! Borders hold `pad_value` (as the GEMM path and the reference read it). Two output rows are
//! computed together: they read the same columns, so each load of an input row serves both
//! rows' taps on it. A row is covered by blocks of 8 outputs, the last one moved back to end at
//! the row's end (rows narrower than 8 go through a scratch block).
//!
//! Products of u8 and i8 values and their pair sums are exact in 32 bits and the i32 adds wrap,
//! like the reference's `wrapping_add`.

use super::Plane;
use crate::ConvGeometry;
use std::arch::x86_64::*;

/// Outputs per block (one 256-bit vector of i32).
const BLOCK: usize = 8;

/// Weight pairs held in a fixed-size local array (larger kernels use a heap vector).
const LOCAL_PAIRS: usize = 16;

/// Input rows of one iteration held in a fixed-size pointer array (taller kernels use a heap
/// vector).
const LOCAL_ROWS: usize = 16;

/// Compute one (image, channel) plane; `buf` is the thread's reusable row buffer.
///
/// # Safety
/// The CPU must have AVX2, and `g.stride` must be 1 or 2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn plane(p: Plane<'_>, g: &ConvGeometry, pad_value: u8, buf: &mut Vec<i16>) {
    let (kh, kw, s) = (g.kernel_h, g.kernel_w, g.stride);
    debug_assert!(s == 1 || s == 2);
    let kwp = kw.div_ceil(2);
    let (wp, ow) = (g.in_w + 2 * g.pad, g.out_w());
    // A block at x0 reads columns below `s * x0 + 8 s + 2 kwp` (see `block`); x0 <= ow - 8 or 0.
    let x0_max = ow.saturating_sub(BLOCK);
    let cols = (s * x0_max + BLOCK * s + 2 * kwp).max(wp + 1);
    // i16 per column: a pair at stride 1, one value at stride 2. Slots start on 64-byte
    // boundaries.
    let per_col = if s == 1 { 2 } else { 1 };
    let pitch = (cols * per_col).next_multiple_of(32);
    // An iteration reads `kh + s` rows and widens the next iteration's `2 s` ahead.
    let slots = (kh + 3 * s).next_power_of_two();
    let len = slots * pitch + 32;
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let start = buf.as_ptr().align_offset(64).min(31);
    let ring = &mut buf[start..start + slots * pitch];
    // Columns that widening never writes: all but pad..pad + w - 1 (stride 1: the pairs with
    // both halves in the input, and the pairs at pad - 1 and pad + w - 1 are rewritten per row)
    // or pad..pad + w (stride 2).
    let pv = i16::from(pad_value);
    for row in ring.chunks_mut(pitch) {
        row[..g.pad * per_col].fill(pv);
        row[(g.pad + g.in_w) * per_col..].fill(pv);
    }

    let mut local = [_mm256_setzero_si256(); LOCAL_PAIRS];
    let heap: Vec<__m256i>;
    let wv: &[__m256i] = if p.pairs.len() <= LOCAL_PAIRS {
        for (v, &w) in local.iter_mut().zip(p.pairs) {
            *v = _mm256_set1_epi32(w as i32);
        }
        &local[..p.pairs.len()]
    } else {
        heap = p
            .pairs
            .iter()
            .map(|&w| _mm256_set1_epi32(w as i32))
            .collect();
        &heap
    };

    let ctx = Ctx {
        p,
        g,
        pad_value,
        ring,
        pitch,
        slots,
        wv,
    };
    // SAFETY: AVX2 (caller); `pitch` and the ring follow the bounds `rows` relies on.
    unsafe {
        match (s, kh, kwp) {
            (1, 3, 2) => rows::<1, 3, 2>(ctx),
            (2, 3, 2) => rows::<2, 3, 2>(ctx),
            (1, 5, 3) => rows::<1, 5, 3>(ctx),
            (2, 5, 3) => rows::<2, 5, 3>(ctx),
            (1, _, _) => rows::<1, 0, 0>(ctx),
            _ => rows::<2, 0, 0>(ctx),
        }
    }
}

/// Everything one plane's rows need.
struct Ctx<'a, 'p> {
    p: Plane<'p>,
    g: &'a ConvGeometry,
    pad_value: u8,
    /// `slots` row slots of `pitch` i16, 64-byte aligned, borders filled.
    ring: &'a mut [i16],
    pitch: usize,
    /// Ring slots, a power of two `>= kh + 3 stride`.
    slots: usize,
    /// `kh * kwp` broadcast weight pairs.
    wv: &'a [__m256i],
}

/// All output rows of the plane, two at a time, widening input rows into the ring one iteration
/// ahead of the first iteration that reads them (a load that overlaps the pending stores of a row
/// just widened would wait for them). `KH`, `KWP` (when not 0) fix the kernel size at compile
/// time so that the tap loops unroll and the weights stay in registers; else the run-time kernel
/// size of `ctx.g` applies.
///
/// # Safety
/// AVX2; `ctx.pitch` covers `S * max(ow - 8, 0) + 8 S + 2 kwp` columns and `wp + 1`;
/// `ctx.ring` holds `slots * pitch` i16 with the borders filled.
#[target_feature(enable = "avx2")]
unsafe fn rows<const S: usize, const KH: usize, const KWP: usize>(ctx: Ctx<'_, '_>) {
    let Ctx {
        p,
        g,
        pad_value,
        ring,
        pitch,
        slots,
        wv,
    } = ctx;
    let (kh, kwp) = if KH > 0 {
        (KH, KWP)
    } else {
        (g.kernel_h, g.kernel_w.div_ceil(2))
    };
    // A local copy of the weights lets the compiler keep them in registers.
    let mut local = [_mm256_setzero_si256(); LOCAL_PAIRS];
    let wv: &[__m256i] = if KH > 0 && KH * KWP <= LOCAL_PAIRS {
        local[..KH * KWP].copy_from_slice(&wv[..KH * KWP]);
        &local[..KH * KWP]
    } else {
        wv
    };
    let (oh, ow) = (g.out_h(), g.out_w());
    let hp = g.in_h + 2 * g.pad;
    let mask = slots - 1;
    let base = ring.as_mut_ptr();
    let mut next_row = 0; // first padded input row not yet widened
    let mut local_ptrs = [std::ptr::null::<i16>(); LOCAL_ROWS];
    let mut heap_ptrs = Vec::new();
    let ptrs: &mut [*const i16] = if kh + S <= LOCAL_ROWS {
        &mut local_ptrs[..kh + S]
    } else {
        heap_ptrs.resize(kh + S, std::ptr::null());
        &mut heap_ptrs
    };
    let out = p.out.as_mut_ptr();
    let mut y = 0;
    while y < oh {
        let pair = y + 1 < oh;
        let lim = ((y + 3) * S + kh).min(hp);
        while next_row < lim {
            let dst = base.wrapping_add((next_row & mask) * pitch);
            // SAFETY: slot `next_row & mask` lies in the ring.
            unsafe {
                if S == 1 {
                    widen_pairs(&p, g, pad_value, next_row, dst)
                } else {
                    widen_plain(&p, g, pad_value, next_row, dst)
                }
            };
            next_row += 1;
        }
        for (i, r) in ptrs.iter_mut().enumerate() {
            *r = base.wrapping_add(((y * S + i) & mask) * pitch);
        }
        // SAFETY: the ring bounds above (rows beyond the plane are only read for a second
        // output row that exists); the outputs lie in rows y and y + 1 of the plane.
        unsafe {
            let row0 = out.add(y * ow);
            if ow >= BLOCK {
                let mut x0 = 0;
                loop {
                    if pair {
                        let [a, b] = block::<S, KH, KWP, 2>(ptrs, x0, kh, kwp, wv);
                        _mm256_storeu_si256(row0.add(x0) as *mut __m256i, a);
                        _mm256_storeu_si256(row0.add(ow + x0) as *mut __m256i, b);
                    } else {
                        let [a] = block::<S, KH, KWP, 1>(ptrs, x0, kh, kwp, wv);
                        _mm256_storeu_si256(row0.add(x0) as *mut __m256i, a);
                    }
                    if x0 + BLOCK == ow {
                        break;
                    }
                    x0 = (x0 + BLOCK).min(ow - BLOCK);
                }
            } else {
                let mut tmp = [0i32; BLOCK];
                let [a] = block::<S, KH, KWP, 1>(ptrs, 0, kh, kwp, wv);
                _mm256_storeu_si256(tmp.as_mut_ptr() as *mut __m256i, a);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), row0, ow);
                if pair {
                    let [b] = block::<S, KH, KWP, 1>(&ptrs[S..], 0, kh, kwp, wv);
                    _mm256_storeu_si256(tmp.as_mut_ptr() as *mut __m256i, b);
                    std::ptr::copy_nonoverlapping(tmp.as_ptr(), row0.add(ow), ow);
                }
            }
        }
        y += if pair { 2 } else { 1 };
    }
}

/// Stride 1: widen padded input row `y` into the pair row at `dst` (`H[c] = (x[c], x[c + 1])`,
/// two i16 per column). Writes columns `pad - 1..pad + w` of an input row (the others keep the
/// border pairs `(pad_value, pad_value)`), columns `0..wp` of a pad row.
///
/// # Safety
/// AVX2; `dst` writable for `2 (wp + 1)` i16.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn widen_pairs(p: &Plane<'_>, g: &ConvGeometry, pad_value: u8, y: usize, dst: *mut i16) {
    let (h, w, pad) = (g.in_h, g.in_w, g.pad);
    let pv = i16::from(pad_value);
    // SAFETY: every store below stays within columns 0..wp of the row.
    unsafe {
        if y < pad || y >= pad + h {
            fill(dst, 2 * (w + 2 * pad), pv);
            return;
        }
        let src = p.input.as_ptr().add((y - pad) * w);
        let d = dst.add(2 * pad);
        // Pairs with both halves inside the input: columns pad..pad + w - 1.
        let n = w - 1;
        if n >= 16 {
            // Chunks of 16 pairs, the last one overlapping its predecessor: loads of 16 bytes at
            // x and x + 1 (x + 17 <= w), bytes interleaved, zero-extended to i16.
            let mut x = 0;
            loop {
                let a = _mm_loadu_si128(src.add(x) as *const __m128i);
                let b = _mm_loadu_si128(src.add(x + 1) as *const __m128i);
                let lo = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
                let hi = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b));
                _mm256_storeu_si256(d.add(2 * x) as *mut __m256i, lo);
                _mm256_storeu_si256(d.add(2 * x + 16) as *mut __m256i, hi);
                if x + 16 == n {
                    break;
                }
                x = (x + 16).min(n - 16);
            }
        } else {
            for x in 0..n {
                *d.add(2 * x) = i16::from(*src.add(x));
                *d.add(2 * x + 1) = i16::from(*src.add(x + 1));
            }
        }
        // The pairs that straddle the borders.
        if pad > 0 {
            *d.sub(2) = pv;
            *d.sub(1) = i16::from(*src);
        }
        *d.add(2 * n) = i16::from(*src.add(n));
        *d.add(2 * n + 1) = pv;
    }
}

/// Stride 2: widen padded input row `y` into the plain row at `dst` (`P[c] = x[c]`). Writes
/// columns `pad..pad + w` of an input row (the borders keep `pad_value`), `0..wp` of a pad row.
///
/// # Safety
/// AVX2; `dst` writable for `wp` i16.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn widen_plain(p: &Plane<'_>, g: &ConvGeometry, pad_value: u8, y: usize, dst: *mut i16) {
    let (h, w, pad) = (g.in_h, g.in_w, g.pad);
    // SAFETY: every store below stays within columns 0..wp of the row.
    unsafe {
        if y < pad || y >= pad + h {
            fill(dst, w + 2 * pad, i16::from(pad_value));
            return;
        }
        let src = p.input.as_ptr().add((y - pad) * w);
        let d = dst.add(pad);
        if w >= 16 {
            // Chunks of 16, the last one overlapping its predecessor.
            let mut x = 0;
            loop {
                let v = _mm256_cvtepu8_epi16(_mm_loadu_si128(src.add(x) as *const __m128i));
                _mm256_storeu_si256(d.add(x) as *mut __m256i, v);
                if x + 16 == w {
                    break;
                }
                x = (x + 16).min(w - 16);
            }
        } else {
            for x in 0..w {
                *d.add(x) = i16::from(*src.add(x));
            }
        }
    }
}

/// Write `v` to `n` i16 at `dst`.
///
/// # Safety
/// AVX2; `dst` writable for `n` i16.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn fill(dst: *mut i16, n: usize, v: i16) {
    let vv = _mm256_set1_epi16(v);
    let mut x = 0;
    // SAFETY: the caller's bound.
    unsafe {
        while x + 16 <= n {
            _mm256_storeu_si256(dst.add(x) as *mut __m256i, vv);
            x += 16;
        }
        while x < n {
            *dst.add(x) = v;
            x += 1;
        }
    }
}

/// The 8 outputs at columns `x0..x0 + 8` of `R` consecutive output rows, the first of which reads
/// input rows `rows[0..kh]`, the second `rows[S..S + kh]`.
///
/// # Safety
/// AVX2; `rows[i]` (for `i < kh + S (R - 1)`) points at a ring slot with the pitch bound of
/// [`rows`]; `wv` holds `kh * kwp` pairs.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block<const S: usize, const KH: usize, const KWP: usize, const R: usize>(
    rows: &[*const i16],
    x0: usize,
    kh: usize,
    kwp: usize,
    wv: &[__m256i],
) -> [__m256i; R] {
    let (kh, kwp) = if KH > 0 { (KH, KWP) } else { (kh, kwp) };
    // i16 index of the block's first pair: column x0 of the pair row (stride 1) or column 2 x0
    // of the plain row (stride 2), both 2 x0; tap pair j sits 2 j columns further on.
    let step = if S == 1 { 4 } else { 2 };
    let mut acc = [_mm256_setzero_si256(); R];
    // SAFETY: the caller's bounds: reads end below column S x0 + 8 S + 2 kwp.
    unsafe {
        for (i, &r) in rows.iter().enumerate().take(kh + S * (R - 1)) {
            let r = r.add(2 * x0);
            for j in 0..kwp {
                let v = _mm256_loadu_si256(r.add(step * j) as *const __m256i);
                for (q, a) in acc.iter_mut().enumerate() {
                    // Input row i is kernel row i - S q of output row q.
                    if i >= S * q && i - S * q < kh {
                        let m = _mm256_madd_epi16(v, wv[(i - S * q) * kwp + j]);
                        *a = _mm256_add_epi32(*a, m);
                    }
                }
            }
        }
    }
    acc
}
