//! AVX-512 `vpopcntq` microkernel. **Untested on the development machine** (AMD Zen 3 has no
//! AVX-512); guarded by run-time detection of AVX512F + AVX512_VPOPCNTDQ and covered by the same
//! property tests, which run where the CPU has them.

use super::{MR, NR};
use std::arch::x86_64::*;

const _: () = assert!(MR == 4 && NR == 8);

/// 4 x 8 popcount tile over `q` words; see [`super::Kernel`].
///
/// # Safety
/// The CPU must have AVX512F and AVX512_VPOPCNTDQ; `a` holds `q * 4` and `b` `q * 8` words;
/// `out` is a `4 x 8` tile with row stride `ldo`.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
pub(crate) unsafe fn kernel(
    q: usize,
    a: *const u64,
    b: *const u64,
    out: *mut i32,
    ldo: usize,
    base: &[i32; NR],
) {
    unsafe {
        let mut acc = [_mm512_setzero_si512(); MR];
        for w in 0..q {
            let bv = _mm512_loadu_si512(b.add(w * NR) as *const __m512i);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi64(*a.add(w * MR + r) as i64);
                *acc_r = _mm512_add_epi64(*acc_r, _mm512_popcnt_epi64(_mm512_xor_si512(x, bv)));
            }
        }
        let basev = _mm256_loadu_si256(base.as_ptr() as *const __m256i);
        for (r, v) in acc.iter().enumerate() {
            let pop = _mm512_cvtepi64_epi32(*v);
            let res = _mm256_sub_epi32(basev, _mm256_add_epi32(pop, pop));
            _mm256_storeu_si256(out.add(r * ldo) as *mut __m256i, res);
        }
    }
}
