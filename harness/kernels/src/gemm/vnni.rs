//! AVX-512 VNNI microkernel on the byte-quad layout: `vpdpbusd` (8 x 32 tile).
//!
//! `vpdpbusd` multiplies four u8 x i8 pairs, sums them in 32 bits without saturation and adds the
//! sum to the accumulator mod 2^32, so it is exact. **Untested on the development machine**
//! (AMD Zen 3, no AVX-512): it is guarded by run-time detection and covered by the same property
//! tests as the other paths, which run only where the CPU has AVX512F+BW+VNNI.

use std::arch::x86_64::*;

/// Rows of A per tile.
pub(crate) const MR: usize = 8;
/// Columns (B rows) per tile.
pub(crate) const NR: usize = 32;

/// `C[8][32] (+)= A x B` over `groups` quads. `A_U8` says which operand holds the u8 values
/// (true: A, the broadcast side; false: B, the vector side); the other holds i8.
///
/// # Safety
/// The CPU must have AVX512F, AVX512BW and AVX512VNNI; `a` holds `groups * 32` and `b`
/// `groups * 128` bytes; `c` is an `8 x 32` tile with row stride `ldc`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub(crate) unsafe fn kernel<const A_U8: bool>(
    groups: usize,
    a: *const u8,
    b: *const u8,
    c: *mut i32,
    ldc: usize,
    accumulate: bool,
) {
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); 2]; MR];
        let a = a as *const i32;
        for g in 0..groups {
            let bp = b.add(g * NR * 4) as *const __m512i;
            let b0 = _mm512_loadu_si512(bp);
            let b1 = _mm512_loadu_si512(bp.add(1));
            for (r, row) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32(a.add(g * MR + r).read_unaligned());
                if A_U8 {
                    row[0] = _mm512_dpbusd_epi32(row[0], av, b0);
                    row[1] = _mm512_dpbusd_epi32(row[1], av, b1);
                } else {
                    row[0] = _mm512_dpbusd_epi32(row[0], b0, av);
                    row[1] = _mm512_dpbusd_epi32(row[1], b1, av);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let p = c.add(r * ldc) as *mut __m512i;
            let (mut v0, mut v1) = (row[0], row[1]);
            if accumulate {
                v0 = _mm512_add_epi32(v0, _mm512_loadu_si512(p));
                v1 = _mm512_add_epi32(v1, _mm512_loadu_si512(p.add(1)));
            }
            _mm512_storeu_si512(p, v0);
            _mm512_storeu_si512(p.add(1), v1);
        }
    }
}
