//! AVX2 helpers of the convolution: B-panel gathers from the padded input and split tile stores.

use crate::gemm::scalar::{MR, NR};
use std::arch::x86_64::*;

/// Build one B panel (16 pixels) from the pair-interleaved padded input: for k-pair `t`, pixel
/// column `c` of run `i` is the byte pair at `base + segs[i].1 + pair_off[t] + 2 * stride * c`;
/// runs cover columns `segs[i].0 ..` up to the next run (at most 4 runs). `stride` is 1 or 2 (for
/// 2, 64 bytes are loaded and every other byte pair kept).
///
/// # Safety
/// The CPU must have AVX2; every load described above (32 bytes, 64 for stride 2) lies inside
/// `padded`; `dst` holds `pair_off.len() * 32` bytes.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn pack_b_conv(
    dst: &mut [u8],
    padded: &[u8],
    base: isize,
    segs: &[(usize, isize)],
    pair_off: &[isize],
    stride: usize,
) {
    unsafe {
        match (segs.len(), stride) {
            (1, 1) => pack_b_conv_n::<1, 1>(dst, padded, base, segs, pair_off),
            (2, 1) => pack_b_conv_n::<2, 1>(dst, padded, base, segs, pair_off),
            (3, 1) => pack_b_conv_n::<3, 1>(dst, padded, base, segs, pair_off),
            (_, 1) => pack_b_conv_n::<4, 1>(dst, padded, base, segs, pair_off),
            (1, _) => pack_b_conv_n::<1, 2>(dst, padded, base, segs, pair_off),
            (2, _) => pack_b_conv_n::<2, 2>(dst, padded, base, segs, pair_off),
            (3, _) => pack_b_conv_n::<3, 2>(dst, padded, base, segs, pair_off),
            (_, _) => pack_b_conv_n::<4, 2>(dst, padded, base, segs, pair_off),
        }
    }
}

#[target_feature(enable = "avx2")]
#[inline]
unsafe fn pack_b_conv_n<const NSEG: usize, const STRIDE: usize>(
    dst: &mut [u8],
    padded: &[u8],
    base: isize,
    segs: &[(usize, isize)],
    pair_off: &[isize],
) {
    unsafe {
        debug_assert!(dst.len() >= pair_off.len() * 32 && segs.len() == NSEG);
        let p = padded.as_ptr().offset(base);
        let idx = _mm256_setr_epi8(
            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
            24, 25, 26, 27, 28, 29, 30, 31,
        );
        let mut masks = [_mm256_setzero_si256(); NSEG];
        let mut srcs = [0isize; NSEG];
        for i in 0..NSEG {
            let (start, src) = segs[i];
            // Bytes of columns >= start (two bytes per column).
            masks[i] = _mm256_cmpgt_epi8(idx, _mm256_set1_epi8(2 * start as i8 - 1));
            srcs[i] = src;
        }
        let low16 = _mm256_set1_epi32(0xffff);
        // 16 byte pairs of one run: 32 bytes, or every other pair of 64 bytes.
        let load = |at: *const u8| -> __m256i {
            if STRIDE == 1 {
                _mm256_loadu_si256(at as *const __m256i)
            } else {
                let lo = _mm256_and_si256(_mm256_loadu_si256(at as *const __m256i), low16);
                let hi = _mm256_and_si256(_mm256_loadu_si256(at.add(32) as *const __m256i), low16);
                // packus: [lo 0-3, hi 0-3 | lo 4-7, hi 4-7] as 16-bit; restore column order.
                _mm256_permute4x64_epi64::<0xD8>(_mm256_packus_epi32(lo, hi))
            }
        };
        let out = dst.as_mut_ptr() as *mut __m256i;
        for (t, &ro) in pair_off.iter().enumerate() {
            let mut v = load(p.offset(ro + srcs[0]));
            for i in 1..NSEG {
                v = _mm256_blendv_epi8(v, load(p.offset(ro + srcs[i])), masks[i]);
            }
            _mm256_storeu_si256(out.add(t), v);
        }
    }
}

/// Store a `4 x 16` tile whose columns `[0, split)` go to `d0` and `[split, 16)` to `d1`
/// (column `c` at `d1 + c`), rows `ldc` apart.
///
/// # Safety
/// The CPU must have AVX2; every element address written is valid (the addresses of `d1`
/// below `split`, which may precede its allocation, are never formed into writes).
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn store_split(
    tile: &[i32],
    d0: *mut i32,
    d1: *mut i32,
    ldc: usize,
    split: usize,
) {
    unsafe {
        debug_assert!(tile.len() >= MR * NR && (1..NR).contains(&split));
        // Element stores (AMD's masked stores are slow); no memcpy calls for the short runs.
        for r in 0..MR {
            let t = &tile[r * NR..(r + 1) * NR];
            let (p0, p1) = (d0.add(r * ldc), d1.wrapping_add(r * ldc));
            for (c, &v) in t.iter().enumerate().take(split) {
                p0.add(c).write(v);
            }
            for (c, &v) in t.iter().enumerate().skip(split) {
                p1.wrapping_add(c).write(v);
            }
        }
    }
}
