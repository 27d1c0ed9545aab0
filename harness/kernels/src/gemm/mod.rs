//! u8 x i8 -> i32 matrix multiply: packed layouts, the blocked multi-threaded driver and
//! pre-packed weights.
//!
//! # Layout
//! Every ISA computes an `MR x NR` tile of `C[i][j] = sum_k A[i][k] * B[j][k]` from two packed
//! panels. `k` is cut into groups of `KG` consecutive values (zero-padded at the end); a panel of
//! `R` rows stores, for each group `g`, the `R` rows' `KG` values one after another:
//! `panel[(g * R + r) * KG + j] = X[r][g * KG + j]`. The A panel's rows are broadcast, the B
//! panel's rows are the vector lanes.
//!
//! * Scalar and AVX2 ([`Int8Isa::Scalar`], [`Int8Isa::Avx2`]): `KG = 2` (`MR = 4`, `NR = 16`).
//!   The A panel is widened to `i16` when packed; the B panel stays in bytes and the kernel
//!   widens it while loading (`vpmovsxbw`/`vpmovzxbw` from memory, which costs no extra
//!   vector-ALU slot on Zen 3 and halves the B panel). AVX2 multiplies with `vpmaddwd` (i16 x i16
//!   pair sums into i32) and accumulates with `vpaddd`. Both operands are 8-bit values widened to
//!   i16, so each pair sum is at most `2 * 255 * 128` and exact; accumulation wraps mod 2^32 like
//!   the reference. `vpmaddubsw` is deliberately not used: its i16 pair sums saturate
//!   (`2 * 255 * 127 > 32767`).
//! * AVX-512 VNNI ([`Int8Isa::Avx512Vnni`]): `KG = 4`, raw bytes (`MR = 8`, `NR = 32`),
//!   `vpdpbusd` (u8 x i8 quads summed into i32 with no intermediate saturation, then a wrapping
//!   add), so it is exact too.
//!
//! Wrapping i32 addition is associative and commutative, so any summation order gives the
//! reference's result bit for bit.

pub(crate) mod scalar;

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod vnni;

use crate::dispatch::Int8Isa;
use crate::threads::{SendPtr, max_threads, run_tasks};

/// An element of a packed panel: `i16` for the pair layout, the raw byte for the quad layout.
pub(crate) trait Elem: Copy + Default + Send + Sync + 'static {
    fn from_u8(v: u8) -> Self;
    fn from_i8(v: i8) -> Self;
}

impl Elem for i16 {
    #[inline(always)]
    fn from_u8(v: u8) -> Self {
        i16::from(v)
    }
    #[inline(always)]
    fn from_i8(v: i8) -> Self {
        i16::from(v)
    }
}

impl Elem for u8 {
    #[inline(always)]
    fn from_u8(v: u8) -> Self {
        v
    }
    #[inline(always)]
    fn from_i8(v: i8) -> Self {
        v as u8
    }
}

/// A microkernel: `C[MR][NR] (+)= A-panel x B-panel` over `groups` k-groups. The A panel holds
/// `E` (i16 or bytes), the B panel bytes (u8 or i8 by kernel variant). `c` has row stride `ldc`;
/// with `accumulate` false the tile is overwritten.
pub(crate) type Kernel<E> =
    unsafe fn(groups: usize, a: *const E, b: *const u8, c: *mut i32, ldc: usize, accumulate: bool);

/// Tile shape and k-group size of an ISA's kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    pub mr: usize,
    pub nr: usize,
    pub kg: usize,
}

pub(crate) fn shape(isa: Int8Isa) -> Shape {
    match isa {
        Int8Isa::Scalar | Int8Isa::Avx2 => Shape {
            mr: scalar::MR,
            nr: scalar::NR,
            kg: 2,
        },
        Int8Isa::Avx512Vnni => Shape {
            mr: 8,
            nr: 32,
            kg: 4,
        },
    }
}

/// Packed A-side (broadcast) panel storage in the layout of one ISA.
#[derive(Clone, Debug)]
pub(crate) enum PanelData {
    /// Scalar/AVX2: i16 pairs.
    Pairs(Vec<i16>),
    /// VNNI: byte quads.
    Quads(Vec<u8>),
}

/// Pack `rows` rows of a `rows x k` matrix into panels of `r` rows over k-groups
/// `[g0, g1)` of size `kg`; `get(row, col)` reads an element. `dst` must hold
/// `rows.div_ceil(r) * (g1 - g0) * r * kg` elements; padding rows/columns are zero.
pub(crate) fn pack_panels<E: Elem>(
    dst: &mut [E],
    rows: usize,
    k: usize,
    r: usize,
    kg: usize,
    (g0, g1): (usize, usize),
    get: impl Fn(usize, usize) -> E,
) {
    let groups = g1 - g0;
    let panel_len = groups * r * kg;
    for p in 0..rows.div_ceil(r) {
        let panel = &mut dst[p * panel_len..(p + 1) * panel_len];
        for rr in 0..r {
            let row = p * r + rr;
            for g in 0..groups {
                for j in 0..kg {
                    let col = (g0 + g) * kg + j;
                    panel[(g * r + rr) * kg + j] = if row < rows && col < k {
                        get(row, col)
                    } else {
                        E::default()
                    };
                }
            }
        }
    }
}

/// i8 weights `n x k` (one row per output), packed once for the GEMM kernels.
///
/// Build it at load time with [`PackedWeightsI8::new`] and multiply with [`gemm_u8i8_packed`];
/// the layout is the one of the ISA chosen at packing time (the best this CPU has).
#[derive(Clone, Debug)]
pub struct PackedWeightsI8 {
    n: usize,
    k: usize,
    isa: Int8Isa,
    /// B-side panels: the i8 weights as bytes, in the layout of `isa`.
    data: Vec<u8>,
}

impl PackedWeightsI8 {
    /// Pack `b` (`n x k`, row-major) for the best ISA of this CPU.
    pub fn new(b: &[i8], n: usize, k: usize) -> Self {
        Self::new_for(crate::dispatch::int8_isa(), b, n, k)
    }

    /// Pack for a given ISA (for tests and benchmarks). Panics if the CPU lacks it.
    pub fn new_for(isa: Int8Isa, b: &[i8], n: usize, k: usize) -> Self {
        assert!(isa.available(), "{isa:?} is not available on this CPU");
        assert!(b.len() >= n * k, "weights slice too short");
        let s = shape(isa);
        let groups = k.div_ceil(s.kg);
        let len = n.div_ceil(s.nr) * groups * s.nr * s.kg;
        let mut data = vec![0u8; len];
        pack_panels(&mut data, n, k, s.nr, s.kg, (0, groups), |r, c| {
            b[r * k + c] as u8
        });
        PackedWeightsI8 { n, k, isa, data }
    }

    /// Number of weight rows (GEMM outputs per activation row).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Reduction length.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The ISA whose layout this packing uses.
    pub fn isa(&self) -> Int8Isa {
        self.isa
    }
}

/// `c = a * b^T` with pre-packed weights (`a` is `m x k` u8, `c` is `m x n` i32); equal bit for bit
/// to [`crate::reference::gemm_u8i8`] on the unpacked weights.
pub fn gemm_u8i8_packed(a: &[u8], b: &PackedWeightsI8, c: &mut [i32], m: usize) {
    let (n, k) = (b.n, b.k);
    assert!(a.len() >= m * k, "activation slice too short");
    assert!(c.len() >= m * n, "output slice too short");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c[..m * n].fill(0);
        return;
    }
    let d = &b.data;
    // The B side holds the i8 weights: sign-extended by the pair kernels; VNNI's A side (the
    // activations) is its u8 operand.
    match b.isa {
        Int8Isa::Scalar => drive::<i16>(scalar::kernel::<true>, None, b.isa, a, d, c, m, n, k),
        #[cfg(target_arch = "x86_64")]
        Int8Isa::Avx2 => drive::<i16>(
            avx2::kernel::<true>,
            Some(avx2::kernel_rows_multi::<true>),
            b.isa,
            a,
            d,
            c,
            m,
            n,
            k,
        ),
        #[cfg(target_arch = "x86_64")]
        Int8Isa::Avx512Vnni => drive::<u8>(vnni::kernel::<true>, None, b.isa, a, d, c, m, n, k),
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("SIMD ISAs exist only on x86_64"),
    }
}

/// [`crate::gemm_u8i8`] on an explicit ISA (packs the weights on every call). Panics if the CPU
/// lacks the ISA. For tests and benchmarks of each SIMD path.
pub fn gemm_u8i8_with(
    isa: Int8Isa,
    a: &[u8],
    b: &[i8],
    c: &mut [i32],
    m: usize,
    n: usize,
    k: usize,
) {
    let p = PackedWeightsI8::new_for(isa, b, n, k);
    gemm_u8i8_packed(a, &p, c, m);
}

/// Pack `rows` rows of the u8 activations (`m x k`, starting at `a`) over groups `[g0, g1)`.
fn pack_a<E: Elem>(
    isa: Int8Isa,
    dst: &mut [E],
    a: &[u8],
    k: usize,
    rows: usize,
    (g0, g1): (usize, usize),
) {
    #[cfg(target_arch = "x86_64")]
    if isa == Int8Isa::Avx2 {
        // SAFETY: E is i16 for the AVX2 layout (checked by size), the CPU has AVX2.
        let dst: &mut [i16] = unsafe {
            assert_eq!(std::mem::size_of::<E>(), 2);
            std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut i16, dst.len())
        };
        let s = shape(isa);
        let plen = (g1 - g0) * s.mr * s.kg;
        for (p, chunk) in dst.chunks_mut(plen).take(rows.div_ceil(s.mr)).enumerate() {
            let r = s.mr.min(rows - p * s.mr);
            // SAFETY: AVX2 present (the ISA was checked when packing the weights).
            unsafe { avx2::pack_a_u8(chunk, &a[p * s.mr * k..], k, r, k, (g0, g1)) };
        }
        return;
    }
    let s = shape(isa);
    pack_panels(dst, rows, k, s.mr, s.kg, (g0, g1), |r, col| {
        E::from_u8(a[r * k + col])
    });
}

/// Rows of A per cache block (a multiple of every MR). With `KC` = 1024 the packed A block
/// (64 x 1024 i16 = 128 KiB) stays in L2 while 16-column B panels (16 KiB) sit in L1, and C is
/// written once for K <= 1024 (measured best for the 1024^3 benchmark on Zen 3).
const MC: usize = 64;
/// k values per cache block (a multiple of every KG).
const KC: usize = 1024;

#[allow(clippy::too_many_arguments)]
/// Several A panels against one B panel in one call: `(panels, groups, a, b, per-group B offsets,
/// c, ldc, accumulate)`; see `avx2::kernel_rows_multi`.
type MultiKernel<E> = unsafe fn(usize, usize, *const E, *const u8, &[isize], *mut i32, usize, bool);

#[allow(clippy::too_many_arguments)]
fn drive<E: Elem>(
    kernel: Kernel<E>,
    multi: Option<MultiKernel<E>>,
    isa: Int8Isa,
    a: &[u8],
    bp: &[u8],
    c: &mut [i32],
    m: usize,
    n: usize,
    k: usize,
) {
    let s = shape(isa);
    let groups = k.div_ceil(s.kg);
    let kcg = KC / s.kg;
    let n_panels = n.div_ceil(s.nr);
    let m_blocks = m.div_ceil(MC);
    let threads = max_threads();
    let n_chunks = if threads <= 1 || m_blocks >= 2 * threads {
        1
    } else {
        (2 * threads).div_ceil(m_blocks).min(n_panels)
    };
    let cptr = SendPtr::new(c.as_mut_ptr());
    // B offsets of consecutive groups of a packed panel (for `multi`).
    let lin_off: Vec<isize> = (0..kcg.min(groups))
        .map(|t| (t * s.nr * s.kg) as isize)
        .collect();
    run_tasks(m_blocks * n_chunks, threads, |t| {
        let (mb, nc) = (t / n_chunks, t % n_chunks);
        let (p0, p1) = (nc * n_panels / n_chunks, (nc + 1) * n_panels / n_chunks);
        let i_lo = mb * MC;
        let rows = MC.min(m - i_lo);
        let a_panels = rows.div_ceil(s.mr);
        let mut abuf = vec![E::default(); a_panels * kcg.min(groups) * s.mr * s.kg];
        let mut tile = vec![0i32; s.mr * s.nr];
        let mut g0 = 0;
        while g0 < groups {
            let g1 = (g0 + kcg).min(groups);
            let gl = g1 - g0;
            pack_a(isa, &mut abuf, &a[i_lo * k..], k, rows, (g0, g1));
            for p in p0..p1 {
                let bptr = bp[(p * groups + g0) * s.nr * s.kg..].as_ptr();
                let j0 = p * s.nr;
                let cols = s.nr.min(n - j0);
                // Full-width tiles of all full A panels in one call where the ISA has one.
                let full = if cols == s.nr { rows / s.mr } else { 0 };
                let mut first = 0;
                if let (Some(multi), true) = (multi, full > 0) {
                    // SAFETY: `full` panels of `gl` groups; rows i_lo.. and columns j0.. of c
                    // belong to this task.
                    unsafe {
                        let dst = cptr.get().add(i_lo * n + j0);
                        multi(full, gl, abuf.as_ptr(), bptr, &lin_off, dst, n, g0 > 0);
                    }
                    first = full;
                }
                for ap in first..a_panels {
                    let aptr = abuf[ap * gl * s.mr * s.kg..].as_ptr();
                    let i0 = i_lo + ap * s.mr;
                    let rws = s.mr.min(m - i0);
                    // SAFETY: panels hold `gl` groups; tasks write disjoint row/col ranges of c.
                    unsafe {
                        let dst = cptr.get().add(i0 * n + j0);
                        if rws == s.mr && cols == s.nr {
                            kernel(gl, aptr, bptr, dst, n, g0 > 0);
                        } else {
                            for r in 0..rws {
                                for cc in 0..cols {
                                    tile[r * s.nr + cc] = *dst.add(r * n + cc);
                                }
                            }
                            kernel(gl, aptr, bptr, tile.as_mut_ptr(), s.nr, g0 > 0);
                            for r in 0..rws {
                                for cc in 0..cols {
                                    *dst.add(r * n + cc) = tile[r * s.nr + cc];
                                }
                            }
                        }
                    }
                }
            }
            g0 = g1;
        }
    });
}
