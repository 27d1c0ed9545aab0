//! AVX2 depthwise plane (strides 1 and 2).
//!
//! Every `vpmaddwd` multiplies 8 output pixels' input pairs `(x[c], x[c + 1])` (two i16 halves of
//! a 32-bit lane) by the broadcast weight pair `(w[kx], w[kx + 1])` of one kernel row: two taps of
//! 8 consecutive outputs per instruction (a missing last partner of an odd kernel width has weight
//! 0). The pairs are built in registers from the u8 input row, padded with `pad_value` (as the
//! GEMM path and the reference read the borders):
//! * stride 1: output `x0 + q` reads `(x[x0 + kx + q], x[x0 + kx + q + 1])`; the 16 bytes from
//!   `x0` on, loaded once into both 128-bit lanes, give the pairs of 4 tap pairs through one byte
//!   shuffle (`vpshufb`) each, which also zero-extends them to i16;
//! * stride 2: output `x0 + q` reads `(x[2 (x0 + q) + kx], x[2 (x0 + q) + kx + 1])`, which is the
//!   16 bytes from `2 x0 + kx` zero-extended in order (`vpmovzxbw`).
//!
//! Padded rows live in a small ring of row slots (u8, borders filled once per geometry and pad
//! value); pad rows read a row of `pad_value` instead. A pass computes `ROWS` output rows: they
//! read the same columns, so each built vector of an input row serves every row's taps on it.
//! A row is covered by blocks of 8 outputs, the last one moved back to end at the row's end
//! (rows narrower than 8 go through a scratch block). Input rows are copied into the ring one
//! pass before the pass that first reads them, so that no load waits for their stores.
//!
//! Products of u8 and i8 values and their pair sums are exact in 32 bits and the i32 adds wrap,
//! like the reference's `wrapping_add`.

use super::Plane;
use crate::ConvGeometry;
use std::arch::x86_64::*;

/// Outputs per block (one 256-bit vector of i32).
const BLOCK: usize = 8;

/// Output rows computed per pass.
const ROWS: usize = 4;

/// Weight pairs held in a fixed-size local array (larger kernels use a heap vector).
const LOCAL_PAIRS: usize = 16;

/// Input rows of one pass held in a fixed-size pointer array (taller kernels use a heap vector).
const LOCAL_ROWS: usize = 24;

/// A thread's row buffer, reused across planes and calls.
#[derive(Default)]
pub(super) struct RowBuf {
    /// The ring of padded u8 row slots.
    ring: Vec<u8>,
    /// A padded row of `pad_value`: the source of pad rows.
    pad_row: Vec<u8>,
    /// (slot length, slots, pad, input width, pad value) whose borders the ring holds.
    key: Option<[usize; 5]>,
}

/// Compute one (image, channel) plane; `rb` is the thread's reusable row buffer.
///
/// # Safety
/// The CPU must have AVX2, and `g.stride` must be 1 or 2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn plane(p: Plane<'_>, g: &ConvGeometry, pad_value: u8, rb: &mut RowBuf) {
    let (kh, kw, s) = (g.kernel_h, g.kernel_w, g.stride);
    debug_assert!(s == 1 || s == 2);
    let kwp = kw.div_ceil(2);
    let (wp, ow) = (g.in_w + 2 * g.pad, g.out_w());
    // A block at x0 reads bytes below `s * x0 + 2 kwp + 16` (see `block`); x0 <= ow - 8 or 0.
    let x0_max = ow.saturating_sub(BLOCK);
    // Padded column c of a row sits at byte `lead + c` of its slot, with `lead` chosen so that
    // input column 0 (padded column `pad`) starts a 64-byte line: misaligned copies cost about
    // twice as much.
    let lead = (64 - g.pad % 64) % 64;
    let row_len = (lead + (s * x0_max + 2 * kwp + 16).max(wp)).next_multiple_of(64);
    // A pass reads `kh + (ROWS - 1) s` rows and copies the next pass's `ROWS s` meanwhile.
    let slots = (kh + (2 * ROWS - 1) * s).next_power_of_two();
    let key = [row_len, slots, g.pad, g.in_w, usize::from(pad_value)];
    if rb.key != Some(key) {
        // Borders: copies only ever write the input columns of a slot.
        rb.ring = vec![pad_value; slots * row_len + 64];
        rb.pad_row = vec![pad_value; row_len];
        rb.key = Some(key);
    }
    let start = rb.ring.as_ptr().align_offset(64).min(63);

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
        ring: &mut rb.ring[start..start + slots * row_len],
        pad_row: &rb.pad_row[lead..],
        lead,
        row_len,
        slots,
        wv,
    };
    // SAFETY: AVX2 (caller); the ring follows the bounds `rows` relies on.
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
    /// `slots` padded row slots of `row_len` bytes, 64-byte aligned, borders holding
    /// `pad_value`.
    ring: &'a mut [u8],
    /// `row_len - lead` bytes of `pad_value`.
    pad_row: &'a [u8],
    /// Offset of padded column 0 in a slot.
    lead: usize,
    row_len: usize,
    /// Ring slots, a power of two `>= kh + (2 ROWS - 1) stride`.
    slots: usize,
    /// `kh * kwp` broadcast weight pairs.
    wv: &'a [__m256i],
}

/// Copy input row `src` (`w` bytes) to `dst`.
///
/// # Safety
/// AVX2; `src` readable and `dst` writable for `w` bytes.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn copy_row(src: *const u8, dst: *mut u8, w: usize) {
    // SAFETY: every load and store below stays within the `w` bytes.
    unsafe {
        if w >= 32 {
            // 32-byte pieces, the last one overlapping its predecessor.
            let mut x = 0;
            loop {
                let v = _mm256_loadu_si256(src.add(x) as *const __m256i);
                _mm256_storeu_si256(dst.add(x) as *mut __m256i, v);
                if x + 32 == w {
                    break;
                }
                x = (x + 32).min(w - 32);
            }
        } else if w >= 16 {
            let a = _mm_loadu_si128(src as *const __m128i);
            let b = _mm_loadu_si128(src.add(w - 16) as *const __m128i);
            _mm_storeu_si128(dst as *mut __m128i, a);
            _mm_storeu_si128(dst.add(w - 16) as *mut __m128i, b);
        } else {
            std::ptr::copy_nonoverlapping(src, dst, w);
        }
    }
}

/// All output rows of the plane, `ROWS` per pass. `KH`, `KWP` (when not 0) fix the kernel size
/// at compile time so that the tap loops unroll and the weights stay in registers; else the
/// run-time kernel size of `ctx.g` applies.
///
/// # Safety
/// AVX2; `ctx.row_len >= lead + max(wp, S * max(ow - 8, 0) + 2 kwp + 16)`; `ctx.ring` holds
/// `slots * row_len` bytes whose borders hold `pad_value`, `ctx.pad_row` `row_len - lead` bytes
/// of it.
#[target_feature(enable = "avx2")]
unsafe fn rows<const S: usize, const KH: usize, const KWP: usize>(ctx: Ctx<'_, '_>) {
    let Ctx {
        p,
        g,
        ring,
        pad_row,
        lead,
        row_len,
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
    let (h, w, pad) = (g.in_h, g.in_w, g.pad);
    let hp = h + 2 * pad;
    let mask = slots - 1;
    let base = ring.as_mut_ptr();
    let input = p.input.as_ptr();
    let is_pad = |r: usize| r < pad || r >= pad + h;
    // Padded column 0 of row r.
    let slot = |r: usize| base.wrapping_add((r & mask) * row_len + lead);
    let source = |r: usize| -> *const u8 { if is_pad(r) { pad_row.as_ptr() } else { slot(r) } };
    let copy = |r: usize| {
        if !is_pad(r) {
            // SAFETY: input row r - pad holds w bytes; the slot holds row_len >= lead + pad + w.
            unsafe { copy_row(input.add((r - pad) * w), slot(r).add(pad), w) };
        }
    };
    // The first pass's rows.
    let mut next_row = ((oh.min(ROWS) - 1) * S + kh).min(hp);
    (0..next_row).for_each(copy);
    let mut local_ptrs = [std::ptr::null::<u8>(); LOCAL_ROWS];
    let mut heap_ptrs = Vec::new();
    let nptrs = kh + (ROWS - 1) * S;
    let ptrs: &mut [*const u8] = if nptrs <= LOCAL_ROWS {
        &mut local_ptrs[..nptrs]
    } else {
        heap_ptrs.resize(nptrs, std::ptr::null());
        &mut heap_ptrs
    };
    // Stride 1: the byte shuffles giving tap pair j % 4 from 16 bytes loaded at x0 + 8 (j / 4).
    let pair_ctl = |j: i8| {
        _mm256_setr_epi8(
            j,
            -1,
            j + 1,
            -1,
            j + 1,
            -1,
            j + 2,
            -1,
            j + 2,
            -1,
            j + 3,
            -1,
            j + 3,
            -1,
            j + 4,
            -1,
            j + 4,
            -1,
            j + 5,
            -1,
            j + 5,
            -1,
            j + 6,
            -1,
            j + 6,
            -1,
            j + 7,
            -1,
            j + 7,
            -1,
            j + 8,
            -1,
        )
    };
    let ctl = [pair_ctl(0), pair_ctl(2), pair_ctl(4), pair_ctl(6)];
    let out = p.out.as_mut_ptr();
    let mut y = 0;
    while y < oh {
        let r = (oh - y).min(ROWS);
        // Copy the rows the next pass adds (their slots are not read by this pass: the ring
        // spans two passes).
        let r_next = (oh - y - r).min(ROWS);
        if r_next > 0 {
            let lim = ((y + r + r_next - 1) * S + kh).min(hp);
            (next_row..lim).for_each(copy);
            next_row = lim;
        }
        for (i, r) in ptrs.iter_mut().enumerate() {
            let row = y * S + i;
            *r = if row < hp {
                source(row)
            } else {
                pad_row.as_ptr()
            };
        }
        // SAFETY: output row y + q reads rows[S q..S q + kh], all copied (or pad rows), each
        // `row_len` bytes; its outputs lie in the plane.
        unsafe {
            let row0 = out.add(y * ow);
            match r {
                4 => out_rows::<S, KH, KWP, 4>(ptrs, row0, ow, kh, kwp, wv, &ctl),
                3 => {
                    out_rows::<S, KH, KWP, 2>(ptrs, row0, ow, kh, kwp, wv, &ctl);
                    let rest = &ptrs[2 * S..];
                    out_rows::<S, KH, KWP, 1>(rest, row0.add(2 * ow), ow, kh, kwp, wv, &ctl);
                }
                2 => out_rows::<S, KH, KWP, 2>(ptrs, row0, ow, kh, kwp, wv, &ctl),
                _ => out_rows::<S, KH, KWP, 1>(ptrs, row0, ow, kh, kwp, wv, &ctl),
            }
        }
        y += r;
    }
}

/// `R` output rows starting at `row0`: blocks of 8, the last one moved back to end at the row's
/// end; rows narrower than 8 through a scratch block.
///
/// # Safety
/// AVX2; `rows[i]` for `i < kh + S (R - 1)` as for [`block`]; `row0` writable for `R * ow` i32.
#[target_feature(enable = "avx2")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn out_rows<const S: usize, const KH: usize, const KWP: usize, const R: usize>(
    rows: &[*const u8],
    row0: *mut i32,
    ow: usize,
    kh: usize,
    kwp: usize,
    wv: &[__m256i],
    ctl: &[__m256i; 4],
) {
    // SAFETY: the caller's bounds.
    unsafe {
        if ow >= BLOCK {
            let mut x0 = 0;
            loop {
                let acc = block::<S, KH, KWP, R>(rows, x0, kh, kwp, wv, ctl);
                for (q, a) in acc.into_iter().enumerate() {
                    _mm256_storeu_si256(row0.add(q * ow + x0) as *mut __m256i, a);
                }
                if x0 + BLOCK == ow {
                    return;
                }
                x0 = (x0 + BLOCK).min(ow - BLOCK);
            }
        } else {
            let mut tmp = [0i32; BLOCK];
            for q in 0..R {
                let [a] = block::<S, KH, KWP, 1>(&rows[S * q..], 0, kh, kwp, wv, ctl);
                _mm256_storeu_si256(tmp.as_mut_ptr() as *mut __m256i, a);
                std::ptr::copy_nonoverlapping(tmp.as_ptr(), row0.add(q * ow), ow);
            }
        }
    }
}

/// The 8 outputs at columns `x0..x0 + 8` of `R` consecutive output rows, the first of which reads
/// padded input rows `rows[0..kh]`, the second `rows[S..S + kh]`, and so on.
///
/// # Safety
/// AVX2; `rows[i]` (for `i < kh + S (R - 1)`) readable for `S x0 + 2 kwp + 16` bytes; `wv` holds
/// `kh * kwp` pairs.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn block<const S: usize, const KH: usize, const KWP: usize, const R: usize>(
    rows: &[*const u8],
    x0: usize,
    kh: usize,
    kwp: usize,
    wv: &[__m256i],
    ctl: &[__m256i; 4],
) -> [__m256i; R] {
    let (kh, kwp) = if KH > 0 { (KH, KWP) } else { (kh, kwp) };
    let mut acc = [_mm256_setzero_si256(); R];
    // SAFETY: the caller's bounds: loads of 16 bytes at S x0 + 2 j (stride 2) or x0 + 8 (j / 4)
    // (stride 1), j < kwp.
    unsafe {
        for (i, &r) in rows.iter().enumerate().take(kh + S * (R - 1)) {
            let r = r.add(S * x0);
            let mut bytes = _mm256_setzero_si256();
            for j in 0..kwp {
                let v = if S == 1 {
                    if j % 4 == 0 {
                        bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128(
                            r.add(2 * j) as *const __m128i
                        ));
                    }
                    _mm256_shuffle_epi8(bytes, ctl[j % 4])
                } else {
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(r.add(2 * j) as *const __m128i))
                };
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
