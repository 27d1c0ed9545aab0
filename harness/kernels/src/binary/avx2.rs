//! AVX2 xor + popcount microkernel: nibble lookup with `vpshufb`, byte counts accumulated with
//! `vpaddb` for at most 31 words (31 * 8 < 256), then folded into u64 lanes with `vpsadbw`.

use super::{MR, NR};
use std::arch::x86_64::*;

const _: () = assert!(MR == 4 && NR == 8);

/// 4 x 8 popcount tile over `q` words; see [`super::Kernel`].
///
/// # Safety
/// The CPU must have AVX2; `a` holds `q * 4` and `b` `q * 8` words; `out` is a `4 x 8` tile
/// with row stride `ldo`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn kernel(
    q: usize,
    a: *const u64,
    b: *const u64,
    out: *mut i32,
    ldo: usize,
    base: &[i32; NR],
) {
    unsafe {
        let lut = _mm256_setr_epi8(
            0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2,
            3, 3, 4,
        );
        let low = _mm256_set1_epi8(0x0f);
        let zero = _mm256_setzero_si256();
        let mut tot = [[zero; 2]; MR];
        let mut w = 0;
        while w < q {
            let end = (w + 31).min(q);
            let mut acc = [[zero; 2]; MR];
            while w < end {
                let b0 = _mm256_loadu_si256(b.add(w * NR) as *const __m256i);
                let b1 = _mm256_loadu_si256(b.add(w * NR + 4) as *const __m256i);
                for (r, acc_r) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_epi64x(*a.add(w * MR + r) as i64);
                    let v0 = _mm256_xor_si256(x, b0);
                    let v1 = _mm256_xor_si256(x, b1);
                    let p0 = _mm256_add_epi8(
                        _mm256_shuffle_epi8(lut, _mm256_and_si256(v0, low)),
                        _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v0, 4), low)),
                    );
                    let p1 = _mm256_add_epi8(
                        _mm256_shuffle_epi8(lut, _mm256_and_si256(v1, low)),
                        _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v1, 4), low)),
                    );
                    acc_r[0] = _mm256_add_epi8(acc_r[0], p0);
                    acc_r[1] = _mm256_add_epi8(acc_r[1], p1);
                }
                w += 1;
            }
            for (t, a) in tot.iter_mut().zip(&acc) {
                t[0] = _mm256_add_epi64(t[0], _mm256_sad_epu8(a[0], zero));
                t[1] = _mm256_add_epi64(t[1], _mm256_sad_epu8(a[1], zero));
            }
        }
        // Each u64 lane holds a count < 2^32: gather the low halves into 8 i32.
        let pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
        let basev = _mm256_loadu_si256(base.as_ptr() as *const __m256i);
        for (r, t) in tot.iter().enumerate() {
            let lo = _mm256_permutevar8x32_epi32(t[0], pick);
            let hi = _mm256_permutevar8x32_epi32(t[1], pick);
            let v = _mm256_permute2x128_si256::<0x20>(lo, hi);
            let v = _mm256_sub_epi32(basev, _mm256_add_epi32(v, v));
            _mm256_storeu_si256(out.add(r * ldo) as *mut __m256i, v);
        }
    }
}
