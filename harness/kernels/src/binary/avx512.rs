//! AVX-512 `vpopcntq` microkernel. **Untested on the development machine** (AMD Zen 3 has no
//! AVX-512); guarded by run-time detection of AVX512F + AVX512_VPOPCNTDQ and covered by the same
//! property tests, which run where the CPU has them.

use super::{MR, NR};
use std::arch::x86_64::*;

const _: () = assert!(MR == 4 && NR == 8);

/// 4 x 8 popcount tile over `q` words; see [`super::Kernel`].
///
/// # Safety
/// The CPU must have AVX512F and AVX512_VPOPCNTDQ; `a` holds `q * 4` and `b` `q * 8` words.
#[target_feature(enable = "avx512f,avx512vpopcntdq")]
pub(crate) unsafe fn kernel(q: usize, a: *const u64, b: *const u64, tile: &mut [i32; MR * NR]) {
    unsafe {
        let mut acc = [_mm512_setzero_si512(); MR];
        for w in 0..q {
            let bv = _mm512_loadu_si512(b.add(w * NR) as *const __m512i);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_epi64(*a.add(w * MR + r) as i64);
                *acc_r = _mm512_add_epi64(*acc_r, _mm512_popcnt_epi64(_mm512_xor_si512(x, bv)));
            }
        }
        for (r, v) in acc.iter().enumerate() {
            let lo = _mm512_cvtepi64_epi32(*v);
            _mm256_storeu_si256(tile.as_mut_ptr().add(r * NR) as *mut __m256i, lo);
        }
    }
}
