//! AVX2 microkernel on the i16 pair layout: `vpbroadcastd` A pairs, `vpmaddwd` with B, `vpaddd`.
//!
//! Exactness: both operands are 8-bit values widened to i16, so `vpmaddwd`'s pair sum
//! (`a0*b0 + a1*b1`, at most `2 * 255 * 128` in magnitude) is exact and `vpaddd` wraps mod 2^32
//! like the reference's `wrapping_add`.

use super::scalar::{MR, NR};
use std::arch::x86_64::*;

const _: () = assert!(MR == 4 && NR == 16);

/// `C[4][16] (+)= A x B` over `groups` pairs; see [`super::Kernel`]. B bytes are sign-extended
/// (`vpmovsxbw`) when `B_SIGNED`, else zero-extended (`vpmovzxbw`), straight from memory.
///
/// # Safety
/// The CPU must have AVX2; `a` holds `groups * 8` i16 and `b` `groups * 32` bytes; `c` is a
/// `4 x 16` tile with row stride `ldc`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn kernel<const B_SIGNED: bool>(
    groups: usize,
    a: *const i16,
    b: *const u8,
    c: *mut i32,
    ldc: usize,
    accumulate: bool,
) {
    unsafe {
        let (c00, c01, c10, c11, c20, c21, c30, c31): (
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
        );
        // One k-pair: 2 widening B loads, 4 broadcasts, 8 x (vpmaddwd, vpaddd). Unrolled 4x.
        macro_rules! step {
            ($o:literal, $ext:literal) => {
                concat!(
                    $ext,
                    " ymm8, [{b} + ",
                    $o,
                    " * 32]\n",
                    $ext,
                    " ymm9, [{b} + ",
                    $o,
                    " * 32 + 16]\n",
                    "vpbroadcastd ymm10, [{a} + ",
                    $o,
                    " * 16]\n",
                    "vpmaddwd ymm12, ymm10, ymm8\n",
                    "vpaddd ymm0, ymm0, ymm12\n",
                    "vpmaddwd ymm13, ymm10, ymm9\n",
                    "vpaddd ymm1, ymm1, ymm13\n",
                    "vpbroadcastd ymm11, [{a} + ",
                    $o,
                    " * 16 + 4]\n",
                    "vpmaddwd ymm14, ymm11, ymm8\n",
                    "vpaddd ymm2, ymm2, ymm14\n",
                    "vpmaddwd ymm15, ymm11, ymm9\n",
                    "vpaddd ymm3, ymm3, ymm15\n",
                    "vpbroadcastd ymm10, [{a} + ",
                    $o,
                    " * 16 + 8]\n",
                    "vpmaddwd ymm12, ymm10, ymm8\n",
                    "vpaddd ymm4, ymm4, ymm12\n",
                    "vpmaddwd ymm13, ymm10, ymm9\n",
                    "vpaddd ymm5, ymm5, ymm13\n",
                    "vpbroadcastd ymm11, [{a} + ",
                    $o,
                    " * 16 + 12]\n",
                    "vpmaddwd ymm14, ymm11, ymm8\n",
                    "vpaddd ymm6, ymm6, ymm14\n",
                    "vpmaddwd ymm15, ymm11, ymm9\n",
                    "vpaddd ymm7, ymm7, ymm15\n",
                )
            };
        }
        // Pull the C tile towards L1 while the loop runs (it is read back when accumulating).
        for r in 0..MR {
            let p = c.add(r * ldc) as *const i8;
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.add(63));
        }
        macro_rules! run {
            ($ext:literal) => {
            std::arch::asm!(
            "vpxor xmm0, xmm0, xmm0",
            "vpxor xmm1, xmm1, xmm1",
            "vpxor xmm2, xmm2, xmm2",
            "vpxor xmm3, xmm3, xmm3",
            "vpxor xmm4, xmm4, xmm4",
            "vpxor xmm5, xmm5, xmm5",
            "vpxor xmm6, xmm6, xmm6",
            "vpxor xmm7, xmm7, xmm7",
            "cmp {g}, 4",
            "jb 3f",
            "2:",
            step!(0, $ext),
            step!(1, $ext),
            step!(2, $ext),
            step!(3, $ext),
            "add {a}, 64",
            "add {b}, 128",
            "sub {g}, 4",
            "cmp {g}, 4",
            "jae 2b",
            "3:",
            "test {g}, {g}",
            "jz 5f",
            "4:",
            step!(0, $ext),
            "add {a}, 16",
            "add {b}, 32",
            "dec {g}",
            "jnz 4b",
            "5:",
            g = inout(reg) groups => _,
            a = inout(reg) a => _,
            b = inout(reg) b => _,
            out("ymm0") c00, out("ymm1") c01, out("ymm2") c10, out("ymm3") c11,
            out("ymm4") c20, out("ymm5") c21, out("ymm6") c30, out("ymm7") c31,
            out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack, readonly),
        );
            };
        }
        if B_SIGNED {
            run!("vpmovsxbw");
        } else {
            run!("vpmovzxbw");
        }
        let rows = [[c00, c01], [c10, c11], [c20, c21], [c30, c31]];
        for (r, [v0, v1]) in rows.into_iter().enumerate() {
            let p = c.add(r * ldc) as *mut __m256i;
            let (mut v0, mut v1) = (v0, v1);
            if accumulate {
                v0 = _mm256_add_epi32(v0, _mm256_loadu_si256(p));
                v1 = _mm256_add_epi32(v1, _mm256_loadu_si256(p.add(1)));
            }
            _mm256_storeu_si256(p, v0);
            _mm256_storeu_si256(p.add(1), v1);
        }
    }
}

/// Pack `rows` (at most [`MR`]) rows of u8 `a` (row stride `lda`) over pairs `[g0, g1)` into one
/// A panel of the pair layout; `k` bounds the valid columns (zero beyond).
///
/// # Safety
/// The CPU must have AVX2; `a` holds the rows; `dst` holds `(g1 - g0) * MR * 2` elements.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn pack_a_u8(
    dst: &mut [i16],
    a: &[u8],
    lda: usize,
    rows: usize,
    k: usize,
    (g0, g1): (usize, usize),
) {
    let full = if rows == MR { (k / 2).min(g1) } else { g0 };
    let mut g = g0;
    unsafe {
        if full > g0 {
            let r0 = a.as_ptr().add(2 * g0);
            let out = dst.as_mut_ptr() as *mut __m256i;
            // Eight pairs of four rows per step: widen, then transpose 4 x 8 u32.
            while g + 8 <= full {
                let off = 2 * (g - g0);
                let ld = |r: usize| {
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(r0.add(r * lda + off) as *const __m128i))
                };
                let (x0, x1, x2, x3) = (ld(0), ld(1), ld(2), ld(3));
                let lo01 = _mm256_unpacklo_epi32(x0, x1);
                let hi01 = _mm256_unpackhi_epi32(x0, x1);
                let lo23 = _mm256_unpacklo_epi32(x2, x3);
                let hi23 = _mm256_unpackhi_epi32(x2, x3);
                let g04 = _mm256_unpacklo_epi64(lo01, lo23);
                let g15 = _mm256_unpackhi_epi64(lo01, lo23);
                let g26 = _mm256_unpacklo_epi64(hi01, hi23);
                let g37 = _mm256_unpackhi_epi64(hi01, hi23);
                let o = out.add((g - g0) / 2);
                _mm256_storeu_si256(o, _mm256_permute2x128_si256::<0x20>(g04, g15));
                _mm256_storeu_si256(o.add(1), _mm256_permute2x128_si256::<0x20>(g26, g37));
                _mm256_storeu_si256(o.add(2), _mm256_permute2x128_si256::<0x31>(g04, g15));
                _mm256_storeu_si256(o.add(3), _mm256_permute2x128_si256::<0x31>(g26, g37));
                g += 8;
            }
        }
    }
    for gg in g..g1 {
        for r in 0..MR {
            for j in 0..2 {
                let col = 2 * gg + j;
                dst[((gg - g0) * MR + r) * 2 + j] = if r < rows && col < k {
                    i16::from(a[r * lda + col])
                } else {
                    0
                };
            }
        }
    }
}

/// Like [`kernel`] (u8 B, no accumulate), but k-pair `t`'s 32 B bytes are read at
/// `b + offs[t]`: straight from the padded input, with no packed panel.
///
/// # Safety
/// The CPU must have AVX2; `a` holds `groups * 8` i16; `offs` holds `groups` offsets and every
/// `b + offs[t] .. + 32` is readable; `c` is a `4 x 16` tile with row stride `ldc`.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn kernel_rows(
    groups: usize,
    a: *const i16,
    b: *const u8,
    offs: &[isize],
    c: *mut i32,
    ldc: usize,
) {
    unsafe {
        debug_assert!(offs.len() >= groups);
        let (c00, c01, c10, c11, c20, c21, c30, c31): (
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
            __m256i,
        );
        macro_rules! step {
            ($o:literal) => {
                concat!(
                    "mov {r}, [{t} + ",
                    $o,
                    " * 8]\n",
                    "vpmovzxbw ymm8, [{b} + {r}]\n",
                    "vpmovzxbw ymm9, [{b} + {r} + 16]\n",
                    "vpbroadcastd ymm10, [{a} + ",
                    $o,
                    " * 16]\n",
                    "vpmaddwd ymm12, ymm10, ymm8\n",
                    "vpaddd ymm0, ymm0, ymm12\n",
                    "vpmaddwd ymm13, ymm10, ymm9\n",
                    "vpaddd ymm1, ymm1, ymm13\n",
                    "vpbroadcastd ymm11, [{a} + ",
                    $o,
                    " * 16 + 4]\n",
                    "vpmaddwd ymm14, ymm11, ymm8\n",
                    "vpaddd ymm2, ymm2, ymm14\n",
                    "vpmaddwd ymm15, ymm11, ymm9\n",
                    "vpaddd ymm3, ymm3, ymm15\n",
                    "vpbroadcastd ymm10, [{a} + ",
                    $o,
                    " * 16 + 8]\n",
                    "vpmaddwd ymm12, ymm10, ymm8\n",
                    "vpaddd ymm4, ymm4, ymm12\n",
                    "vpmaddwd ymm13, ymm10, ymm9\n",
                    "vpaddd ymm5, ymm5, ymm13\n",
                    "vpbroadcastd ymm11, [{a} + ",
                    $o,
                    " * 16 + 12]\n",
                    "vpmaddwd ymm14, ymm11, ymm8\n",
                    "vpaddd ymm6, ymm6, ymm14\n",
                    "vpmaddwd ymm15, ymm11, ymm9\n",
                    "vpaddd ymm7, ymm7, ymm15\n",
                )
            };
        }
        for r in 0..MR {
            _mm_prefetch::<_MM_HINT_T0>(c.add(r * ldc) as *const i8);
        }
        std::arch::asm!(
            "vpxor xmm0, xmm0, xmm0",
            "vpxor xmm1, xmm1, xmm1",
            "vpxor xmm2, xmm2, xmm2",
            "vpxor xmm3, xmm3, xmm3",
            "vpxor xmm4, xmm4, xmm4",
            "vpxor xmm5, xmm5, xmm5",
            "vpxor xmm6, xmm6, xmm6",
            "vpxor xmm7, xmm7, xmm7",
            "cmp {g}, 4",
            "jb 3f",
            "2:",
            step!(0),
            step!(1),
            step!(2),
            step!(3),
            "add {a}, 64",
            "add {t}, 32",
            "sub {g}, 4",
            "cmp {g}, 4",
            "jae 2b",
            "3:",
            "test {g}, {g}",
            "jz 5f",
            "4:",
            step!(0),
            "add {a}, 16",
            "add {t}, 8",
            "dec {g}",
            "jnz 4b",
            "5:",
            g = inout(reg) groups => _,
            a = inout(reg) a => _,
            t = inout(reg) offs.as_ptr() => _,
            b = in(reg) b,
            r = out(reg) _,
            out("ymm0") c00, out("ymm1") c01, out("ymm2") c10, out("ymm3") c11,
            out("ymm4") c20, out("ymm5") c21, out("ymm6") c30, out("ymm7") c31,
            out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack, readonly),
        );
        let rows = [[c00, c01], [c10, c11], [c20, c21], [c30, c31]];
        for (r, [v0, v1]) in rows.into_iter().enumerate() {
            let p = c.add(r * ldc) as *mut __m256i;
            _mm256_storeu_si256(p, v0);
            _mm256_storeu_si256(p.add(1), v1);
        }
    }
}

/// [`kernel_rows`] for `panels` consecutive A panels (rows `4 p .. 4 p + 4` of C at
/// `c + 4 p ldc`) against the same B, in one call: the drivers' inner loop without a call and
/// prologue per 4 x 16 tile. B bytes are sign-extended when `B_SIGNED`, else zero-extended; with
/// `accumulate` the tiles are added to C.
///
/// # Safety
/// As [`kernel_rows`], for `a` holding `panels * groups * 8` i16 and `c` a `4 panels x 16` block
/// with row stride `ldc`; `panels >= 1`.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn kernel_rows_multi<const B_SIGNED: bool>(
    panels: usize,
    groups: usize,
    a: *const i16,
    b: *const u8,
    offs: &[isize],
    c: *mut i32,
    ldc: usize,
    accumulate: bool,
) {
    unsafe {
        debug_assert!(offs.len() >= groups && panels >= 1);
        macro_rules! step {
            ($o:literal, $ext:literal) => {
                concat!(
                    "mov {r}, [{t} + ",
                    $o,
                    " * 8]\n",
                    $ext,
                    " ymm8, [{b} + {r}]\n",
                    $ext,
                    " ymm9, [{b} + {r} + 16]\n",
                    "vpbroadcastd ymm10, [{a} + ",
                    $o,
                    " * 16]\n",
                    "vpmaddwd ymm12, ymm10, ymm8\n",
                    "vpaddd ymm0, ymm0, ymm12\n",
                    "vpmaddwd ymm13, ymm10, ymm9\n",
                    "vpaddd ymm1, ymm1, ymm13\n",
                    "vpbroadcastd ymm11, [{a} + ",
                    $o,
                    " * 16 + 4]\n",
                    "vpmaddwd ymm14, ymm11, ymm8\n",
                    "vpaddd ymm2, ymm2, ymm14\n",
                    "vpmaddwd ymm15, ymm11, ymm9\n",
                    "vpaddd ymm3, ymm3, ymm15\n",
                    "vpbroadcastd ymm10, [{a} + ",
                    $o,
                    " * 16 + 8]\n",
                    "vpmaddwd ymm12, ymm10, ymm8\n",
                    "vpaddd ymm4, ymm4, ymm12\n",
                    "vpmaddwd ymm13, ymm10, ymm9\n",
                    "vpaddd ymm5, ymm5, ymm13\n",
                    "vpbroadcastd ymm11, [{a} + ",
                    $o,
                    " * 16 + 12]\n",
                    "vpmaddwd ymm14, ymm11, ymm8\n",
                    "vpaddd ymm6, ymm6, ymm14\n",
                    "vpmaddwd ymm15, ymm11, ymm9\n",
                    "vpaddd ymm7, ymm7, ymm15\n",
                )
            };
        }
        let l = ldc * 4;
        macro_rules! run {
            ($ext:literal) => {
                std::arch::asm!(
                    "2:",
                    "vpxor xmm0, xmm0, xmm0",
                    "vpxor xmm1, xmm1, xmm1",
                    "vpxor xmm2, xmm2, xmm2",
                    "vpxor xmm3, xmm3, xmm3",
                    "vpxor xmm4, xmm4, xmm4",
                    "vpxor xmm5, xmm5, xmm5",
                    "vpxor xmm6, xmm6, xmm6",
                    "vpxor xmm7, xmm7, xmm7",
                    "mov {g}, {g0}",
                    "mov {t}, {t0}",
                    "cmp {g}, 4",
                    "jb 4f",
                    "3:",
                    step!(0, $ext),
                    step!(1, $ext),
                    step!(2, $ext),
                    step!(3, $ext),
                    "add {a}, 64",
                    "add {t}, 32",
                    "sub {g}, 4",
                    "cmp {g}, 4",
                    "jae 3b",
                    "4:",
                    "test {g}, {g}",
                    "jz 6f",
                    "5:",
                    step!(0, $ext),
                    "add {a}, 16",
                    "add {t}, 8",
                    "dec {g}",
                    "jnz 5b",
                    "6:",
                    "test {acc}, {acc}",
                    "jz 7f",
                    "vpaddd ymm0, ymm0, [{c}]",
                    "vpaddd ymm1, ymm1, [{c} + 32]",
                    "vpaddd ymm2, ymm2, [{c} + {l}]",
                    "vpaddd ymm3, ymm3, [{c} + {l} + 32]",
                    "vpaddd ymm4, ymm4, [{c} + {l} * 2]",
                    "vpaddd ymm5, ymm5, [{c} + {l} * 2 + 32]",
                    "vpaddd ymm6, ymm6, [{c} + {l3}]",
                    "vpaddd ymm7, ymm7, [{c} + {l3} + 32]",
                    "7:",
                    "vmovdqu [{c}], ymm0",
                    "vmovdqu [{c} + 32], ymm1",
                    "vmovdqu [{c} + {l}], ymm2",
                    "vmovdqu [{c} + {l} + 32], ymm3",
                    "vmovdqu [{c} + {l} * 2], ymm4",
                    "vmovdqu [{c} + {l} * 2 + 32], ymm5",
                    "vmovdqu [{c} + {l3}], ymm6",
                    "vmovdqu [{c} + {l3} + 32], ymm7",
                    "lea {c}, [{c} + {l} * 4]",
                    "dec {np}",
                    "jnz 2b",
                    np = inout(reg) panels => _,
                    g0 = in(reg) groups,
                    g = out(reg) _,
                    a = inout(reg) a => _,
                    t0 = in(reg) offs.as_ptr(),
                    t = out(reg) _,
                    b = in(reg) b,
                    r = out(reg) _,
                    c = inout(reg) c => _,
                    l = in(reg) l,
                    l3 = in(reg) 3 * l,
                    acc = in(reg) usize::from(accumulate),
                    out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
                    out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
                    out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
                    out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
                    options(nostack),
                )
            };
        }
        if B_SIGNED {
            run!("vpmovsxbw");
        } else {
            run!("vpmovzxbw");
        }
    }
}
