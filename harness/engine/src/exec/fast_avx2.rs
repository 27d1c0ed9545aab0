//! AVX2 builds of the fast executor's element-wise integer loops, eight i32 lanes at a time: the
//! TFLite fixed-point requantizer ([`Requant::FixedPoint`]) to a narrow type, and a residual
//! [`Add`] whose single consumer is such a requantizer (fused: the i32 sum is never stored).
//!
//! # Exactness
//! Every lane computes what [`crate::requant`]'s scalar functions compute; runs shorter than a
//! vector go through those functions themselves.
//!
//! * `saturating_rounding_doubling_high_mul(a, m)` is `trunc((a m + nudge) / 2^31)` with
//!   `nudge = 2^30` for `a m >= 0` and `1 - 2^30` otherwise. For `a m < 0` the truncation is a
//!   ceiling, `floor((a m + 1 - 2^30 + 2^31 - 1) / 2^31)`, so both cases equal
//!   `floor((a m + 2^30) / 2^31)`: one 64-bit add and bits 31..62 of the sum (`vpmuldq` on the
//!   even and the odd lanes). The quotient fits in i32 unless `a == m == i32::MIN`, the one
//!   saturating case, so `m == i32::MIN` takes the scalar path.
//! * `rounding_divide_by_pot(x, e)`: `(x >> e) + (x & mask > (mask >> 1) + (x < 0))` lane-wise.
//! * The left shift of `multiply_by_quantized_multiplier` and of the add's alignment is a
//!   wrapping `vpslld`, like `wrapping_mul(1 << s)` / `wrapping_shl`.
//! * `offset_clamp(q, zp, min, max)` is `clamp(q, min - zp, max - zp) + zp` when both shifted
//!   bounds fit in i32 (checked when the parameters are built); the result lies in `[min, max]`,
//!   which must lie in the output type's range, so the saturating packs to bytes never clip.

use std::arch::x86_64::*;

use crate::node::{Add, AddAlign};
use crate::requant::{Requant, multiply_by_quantized_multiplier, offset_clamp, residual_add};

/// `multiply_by_quantized_multiplier(x, m, shift)` with its parameters in vector form.
#[derive(Clone, Copy)]
struct VecMbqm {
    m: __m256i,
    left: __m128i,
    right: __m128i,
    mask: __m256i,
    half: __m256i,
}

impl VecMbqm {
    /// `None` where the vector form does not apply (`m == i32::MIN`, or a shift out of range,
    /// which the scalar function rejects with a panic).
    #[target_feature(enable = "avx2")]
    fn new(m: i32, shift: i32) -> Option<Self> {
        if m == i32::MIN || !(-31..=30).contains(&shift) {
            return None;
        }
        let (left, right) = (shift.max(0), (-shift).max(0));
        let mask = ((1i64 << right) - 1) as i32;
        Some(VecMbqm {
            m: _mm256_set1_epi32(m),
            left: _mm_cvtsi32_si128(left),
            right: _mm_cvtsi32_si128(right),
            mask: _mm256_set1_epi32(mask),
            half: _mm256_set1_epi32(mask >> 1),
        })
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn apply(&self, x: __m256i) -> __m256i {
        let x = _mm256_sll_epi32(x, self.left);
        let bias = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_add_epi64(_mm256_mul_epi32(x, self.m), bias);
        let odd = _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64::<32>(x), self.m), bias);
        // Bits 31..62 of each 64-bit sum: into the low half (even lanes), the high half (odd).
        let h = _mm256_blend_epi32::<0b1010_1010>(
            _mm256_srli_epi64::<31>(even),
            _mm256_slli_epi64::<1>(odd),
        );
        let rem = _mm256_and_si256(h, self.mask);
        let threshold = _mm256_add_epi32(self.half, _mm256_srli_epi32::<31>(h));
        let up = _mm256_cmpgt_epi32(rem, threshold);
        _mm256_sub_epi32(_mm256_sra_epi32(h, self.right), up)
    }
}

/// One channel's fixed-point requantizer to a narrow type, vector and scalar parameters.
#[derive(Clone, Copy)]
struct FixedPointChannel {
    mbqm: VecMbqm,
    lo: __m256i,
    hi: __m256i,
    zp: __m256i,
    /// `(multiplier, shift, zero point, min, max)` for the scalar tail.
    scalar: (i32, i32, i32, i32, i32),
}

impl FixedPointChannel {
    /// `None` where the vector form does not apply (see the module doc); `signed` selects the
    /// output range (i8 or u8).
    #[target_feature(enable = "avx2")]
    fn new(m: i32, shift: i32, zp: i32, min: i32, max: i32, signed: bool) -> Option<Self> {
        let range = if signed { -128..=127 } else { 0..=255 };
        let lo = i64::from(min) - i64::from(zp);
        let hi = i64::from(max) - i64::from(zp);
        if min > max || !range.contains(&min) || !range.contains(&max) {
            return None;
        }
        let (lo, hi) = (i32::try_from(lo).ok()?, i32::try_from(hi).ok()?);
        Some(FixedPointChannel {
            mbqm: VecMbqm::new(m, shift)?,
            lo: _mm256_set1_epi32(lo),
            hi: _mm256_set1_epi32(hi),
            zp: _mm256_set1_epi32(zp),
            scalar: (m, shift, zp, min, max),
        })
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn apply(&self, x: __m256i) -> __m256i {
        let q = self.mbqm.apply(x);
        _mm256_add_epi32(
            _mm256_min_epi32(_mm256_max_epi32(q, self.lo), self.hi),
            self.zp,
        )
    }

    fn apply_scalar(&self, x: i32) -> i32 {
        let (m, s, zp, min, max) = self.scalar;
        offset_clamp(multiply_by_quantized_multiplier(x, m, s), zp, min, max)
    }
}

/// Bytes of 32 values in `[-128, 255]` that fit the output type (in order).
#[target_feature(enable = "avx2")]
#[inline]
fn pack32<const SIGNED: bool>(v: [__m256i; 4]) -> __m256i {
    let p01 = _mm256_packs_epi32(v[0], v[1]);
    let p23 = _mm256_packs_epi32(v[2], v[3]);
    let b = if SIGNED {
        _mm256_packs_epi16(p01, p23)
    } else {
        _mm256_packus_epi16(p01, p23)
    };
    // Per 128-bit lane the dwords are v0 v1 v2 v3 (low half, then high half): restore order.
    _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// Bytes of 8 values that fit the output type, in the low 8 bytes.
#[target_feature(enable = "avx2")]
#[inline]
fn pack8<const SIGNED: bool>(v: __m256i) -> __m128i {
    let p = _mm256_packs_epi32(v, v);
    let b = if SIGNED {
        _mm256_packs_epi16(p, p)
    } else {
        _mm256_packus_epi16(p, p)
    };
    _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
        b,
        _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4),
    ))
}

/// A source of requantized values: eight lanes at a time, or one.
trait Source {
    /// Values `i .. i + 8`.
    ///
    /// # Safety
    /// The CPU must have AVX2; `i + 8` is at most the run's length.
    unsafe fn lanes(&self, i: usize) -> __m256i;
    /// Value `i`.
    fn one(&self, i: usize) -> i32;
}

/// Writes `src`'s values to all of `dst` in blocks of 32 and 8 and a scalar tail.
#[target_feature(enable = "avx2")]
#[inline]
fn write_bytes<const SIGNED: bool>(dst: &mut [u8], src: &impl Source) {
    let n = dst.len();
    let out = dst.as_mut_ptr();
    let mut i = 0;
    // SAFETY (loads and stores): values and bytes i .. i + 32 (or + 8) exist.
    unsafe {
        while i + 32 <= n {
            let v = [
                src.lanes(i),
                src.lanes(i + 8),
                src.lanes(i + 16),
                src.lanes(i + 24),
            ];
            _mm256_storeu_si256(out.add(i) as *mut __m256i, pack32::<SIGNED>(v));
            i += 32;
        }
        while i + 8 <= n {
            _mm_storel_epi64(out.add(i) as *mut __m128i, pack8::<SIGNED>(src.lanes(i)));
            i += 8;
        }
    }
    for (j, d) in dst.iter_mut().enumerate().skip(i) {
        *d = src.one(j) as u8;
    }
}

/// One plane of accumulators plus a per-channel add, through a channel's requantizer.
struct AccPlane<'a> {
    src: &'a [i32],
    add: i32,
    ch: &'a FixedPointChannel,
}

impl Source for AccPlane<'_> {
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn lanes(&self, i: usize) -> __m256i {
        debug_assert!(i + 8 <= self.src.len());
        // SAFETY: by the caller, values i .. i + 8 exist.
        let x = unsafe { load_i32(self.src.as_ptr().add(i)) };
        self.ch
            .apply(_mm256_add_epi32(x, _mm256_set1_epi32(self.add)))
    }

    fn one(&self, i: usize) -> i32 {
        self.ch.apply_scalar(self.src[i].wrapping_add(self.add))
    }
}

/// One plane of two narrow inputs through a residual add and a channel's requantizer.
struct AddPlane<'a, const SIGNED_IN: bool> {
    a: &'a [u8],
    b: &'a [u8],
    add: &'a Add,
    align: &'a VecAlign,
    ch: &'a FixedPointChannel,
}

impl<const SIGNED_IN: bool> Source for AddPlane<'_, SIGNED_IN> {
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn lanes(&self, i: usize) -> __m256i {
        debug_assert!(i + 8 <= self.a.len() && i + 8 <= self.b.len());
        // SAFETY: by the caller, values i .. i + 8 exist.
        let (x, y) = unsafe {
            (
                load_bytes::<SIGNED_IN>(self.a.as_ptr().add(i)),
                load_bytes::<SIGNED_IN>(self.b.as_ptr().add(i)),
            )
        };
        self.ch.apply(self.align.sum(x, y))
    }

    fn one(&self, i: usize) -> i32 {
        let value = |x: u8| {
            if SIGNED_IN {
                i32::from(x as i8)
            } else {
                i32::from(x)
            }
        };
        let sum = residual_add(value(self.a[i]), value(self.b[i]), self.add);
        self.ch.apply_scalar(sum)
    }
}

/// A residual add's alignment of its two inputs, in vector form.
struct VecAlign {
    za: __m256i,
    zb: __m256i,
    sa: __m128i,
    sb: __m128i,
    /// The multipliers of the fixed-point alignment (none for powers of two).
    mbqm: Option<(VecMbqm, VecMbqm)>,
}

impl VecAlign {
    /// `None` where the vector form does not apply.
    #[target_feature(enable = "avx2")]
    fn new(add: &Add) -> Option<Self> {
        let (shift_a, shift_b, mbqm) = match add.align {
            AddAlign::PowerOfTwo { shift_a, shift_b } => (shift_a, shift_b, None),
            AddAlign::FixedPoint {
                left_shift,
                multiplier_a,
                shift_a,
                multiplier_b,
                shift_b,
            } => (
                left_shift,
                left_shift,
                Some((
                    VecMbqm::new(multiplier_a, shift_a)?,
                    VecMbqm::new(multiplier_b, shift_b)?,
                )),
            ),
        };
        if shift_a > 31 || shift_b > 31 {
            return None;
        }
        Some(VecAlign {
            za: _mm256_set1_epi32(add.zero_point_a),
            zb: _mm256_set1_epi32(add.zero_point_b),
            sa: _mm_cvtsi32_si128(i32::from(shift_a)),
            sb: _mm_cvtsi32_si128(i32::from(shift_b)),
            mbqm,
        })
    }

    /// The aligned sum of eight lanes of the widened inputs.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn sum(&self, x: __m256i, y: __m256i) -> __m256i {
        let da = _mm256_sll_epi32(_mm256_sub_epi32(x, self.za), self.sa);
        let db = _mm256_sll_epi32(_mm256_sub_epi32(y, self.zb), self.sb);
        match &self.mbqm {
            Some((ma, mb)) => _mm256_add_epi32(ma.apply(da), mb.apply(db)),
            None => _mm256_add_epi32(da, db),
        }
    }
}

/// Eight i32 at `p` (unaligned).
///
/// # Safety
/// `p .. p + 8` must be readable.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load_i32(p: *const i32) -> __m256i {
    // SAFETY: by the caller.
    unsafe { _mm256_loadu_si256(p as *const __m256i) }
}

/// Eight bytes at `p` widened to i32 (sign-extended when `SIGNED`).
///
/// # Safety
/// `p .. p + 8` must be readable.
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn load_bytes<const SIGNED: bool>(p: *const u8) -> __m256i {
    // SAFETY: by the caller.
    let v = unsafe { _mm_loadl_epi64(p as *const __m128i) };
    if SIGNED {
        _mm256_cvtepi8_epi32(v)
    } else {
        _mm256_cvtepu8_epi32(v)
    }
}

/// The channel parameters of a fixed-point requantizer, or `None` if it is of another kind or
/// some channel does not take the vector path.
#[target_feature(enable = "avx2")]
fn channels(r: &Requant, c: usize, signed: bool) -> Option<Vec<FixedPointChannel>> {
    let Requant::FixedPoint {
        multiplier,
        shift,
        zero_point,
        min,
        max,
    } = r
    else {
        return None;
    };
    let per = |v: &[i32], k: usize| {
        if v.len() == 1 {
            v.first().copied()
        } else {
            v.get(k).copied()
        }
    };
    (0..c)
        .map(|k| {
            let (m, s) = (per(multiplier, k)?, per(shift, k)?);
            FixedPointChannel::new(m, s, *zero_point, *min, *max, signed)
        })
        .collect()
}

/// Requantizes `acc` (planes of `s` values, channel `plane % c`) with the fixed-point `r` into
/// `out` (as long as `acc`; bytes, i8 storage when `signed`), adding `pending[channel]`
/// (wrapping) first if given. `None` (nothing written) if `r` is not a fixed-point requantizer
/// the vector path takes.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn requant_fixed_point(
    r: &Requant,
    acc: &[i32],
    (c, s): (usize, usize),
    pending: Option<&[i32]>,
    signed: bool,
    out: &mut [u8],
) -> Option<()> {
    let ch = channels(r, c, signed)?;
    if c == 0 || s == 0 || !acc.len().is_multiple_of(c * s) || out.len() != acc.len() {
        return None;
    }
    for (k, (src, dst)) in acc.chunks_exact(s).zip(out.chunks_exact_mut(s)).enumerate() {
        let add = pending.map_or(0, |a| a[k % c]);
        let plane = AccPlane {
            src,
            add,
            ch: &ch[k % c],
        };
        if signed {
            write_bytes::<true>(dst, &plane);
        } else {
            write_bytes::<false>(dst, &plane);
        }
    }
    Some(())
}

/// A convolution sink that adds each channel's correction to the i32 results and requantizes
/// them with a fixed-point requantizer into a byte tensor `[N][C][plane]` (i8 storage when
/// `signed`).
pub(crate) struct RequantSink<'a> {
    channels: Vec<FixedPointChannel>,
    correction: &'a [i32],
    out: *mut u8,
    len: usize,
    plane: usize,
    signed: bool,
    _out: std::marker::PhantomData<&'a mut [u8]>,
}

// SAFETY: `put` writes only the output elements of the block it is given, and the convolution
// delivers every element exactly once, so concurrent calls never write the same byte; `out`
// is borrowed mutably for the sink's lifetime, so nothing else reads or writes it meanwhile.
unsafe impl Sync for RequantSink<'_> {}

impl<'a> RequantSink<'a> {
    /// A sink for `r` with `correction.len()` channels of `plane` pixels into `out`; `None` if
    /// the vector path does not take `r` (nothing written).
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn new(
        r: &Requant,
        correction: &'a [i32],
        out: &'a mut [u8],
        plane: usize,
        signed: bool,
    ) -> Option<Self> {
        let c = correction.len();
        if c == 0 || plane == 0 || !out.len().is_multiple_of(c * plane) {
            return None;
        }
        Some(RequantSink {
            channels: channels(r, c, signed)?,
            correction,
            out: out.as_mut_ptr(),
            len: out.len(),
            plane,
            signed,
            _out: std::marker::PhantomData,
        })
    }

    #[target_feature(enable = "avx2")]
    #[allow(clippy::too_many_arguments)]
    fn put_avx2(
        &self,
        n: usize,
        o0: usize,
        rows: usize,
        px0: usize,
        cols: usize,
        block: &[i32],
        ld: usize,
    ) {
        let c = self.channels.len();
        assert!(o0 + rows <= c && px0 + cols <= self.plane && block.len() + ld > rows * ld);
        for r in 0..rows {
            let o = o0 + r;
            let at = (n * c + o) * self.plane + px0;
            assert!(at + cols <= self.len, "sink block outside the output");
            // SAFETY: in bounds (checked); the convolution delivers each element once, so no
            // other call writes these bytes (see the `Sync` impl).
            let dst = unsafe { std::slice::from_raw_parts_mut(self.out.add(at), cols) };
            let plane = AccPlane {
                src: &block[r * ld..r * ld + cols],
                add: self.correction[o],
                ch: &self.channels[o],
            };
            if self.signed {
                write_bytes::<true>(dst, &plane);
            } else {
                write_bytes::<false>(dst, &plane);
            }
        }
    }
}

impl qbench_kernels::ConvSink for RequantSink<'_> {
    fn put(&self, n: usize, o0: usize, rows: usize, px0: usize, cols: usize, b: &[i32], ld: usize) {
        // SAFETY: sinks are built only by `new`, whose caller guarantees AVX2.
        unsafe { self.put_avx2(n, o0, rows, px0, cols, b, ld) }
    }
}

/// `r(a + b)` for the residual add `add` of two narrow tensors (bytes; i8 storage when
/// `signed_in`) and its consuming fixed-point requantizer `r`, planes of `s` values of channel
/// `plane % c`, into `out` (bytes, i8 storage when `signed_out`). `None` (nothing written) if
/// the vector path does not take `r` or `add`.
///
/// # Safety
/// The CPU must have AVX2.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn add_requant(
    add: &Add,
    r: &Requant,
    a: &[u8],
    b: &[u8],
    (c, s): (usize, usize),
    signed_in: bool,
    signed_out: bool,
    out: &mut [u8],
) -> Option<()> {
    let ch = channels(r, c, signed_out)?;
    let n = a.len();
    if c == 0 || s == 0 || b.len() != n || out.len() != n || !n.is_multiple_of(c * s) {
        return None;
    }
    let align = VecAlign::new(add)?;
    let planes = a.chunks_exact(s).zip(b.chunks_exact(s));
    for (k, ((a, b), dst)) in planes.zip(out.chunks_exact_mut(s)).enumerate() {
        let ch = &ch[k % c];
        match (signed_in, signed_out) {
            (false, false) => write_bytes::<false>(dst, &plane::<false>(a, b, add, &align, ch)),
            (false, true) => write_bytes::<true>(dst, &plane::<false>(a, b, add, &align, ch)),
            (true, false) => write_bytes::<false>(dst, &plane::<true>(a, b, add, &align, ch)),
            (true, true) => write_bytes::<true>(dst, &plane::<true>(a, b, add, &align, ch)),
        }
    }
    Some(())
}

/// An [`AddPlane`] (for type inference of `SIGNED_IN`).
fn plane<'a, const SIGNED_IN: bool>(
    a: &'a [u8],
    b: &'a [u8],
    add: &'a Add,
    align: &'a VecAlign,
    ch: &'a FixedPointChannel,
) -> AddPlane<'a, SIGNED_IN> {
    AddPlane {
        a,
        b,
        add,
        align,
        ch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Accumulators with the edge values mixed in.
    fn values(rng: &mut ChaCha8Rng, n: usize) -> Vec<i32> {
        let edges = [
            i32::MIN,
            i32::MIN + 1,
            i32::MAX,
            i32::MAX - 1,
            0,
            1,
            -1,
            1 << 30,
            -(1 << 30),
            (1 << 30) - 1,
        ];
        (0..n)
            .map(|_| match rng.random_range(0..4) {
                0 => edges[rng.random_range(0..edges.len())],
                1 => rng.random_range(-70_000..70_000),
                _ => rng.random(),
            })
            .collect()
    }

    fn multiplier(rng: &mut ChaCha8Rng) -> i32 {
        match rng.random_range(0..6) {
            0 => 0,
            1 => i32::MAX,
            2 => 1 << 30,
            3 => rng.random_range(i32::MIN + 1..0),
            _ => rng.random_range(1 << 30..=i32::MAX),
        }
    }

    fn requant(rng: &mut ChaCha8Rng, c: usize, signed: bool) -> Requant {
        let per = rng.random_bool(0.5);
        let n = if per { c } else { 1 };
        let (lo, hi) = if signed { (-128, 127) } else { (0, 255) };
        let zero_point = rng.random_range(lo..=hi);
        let a = rng.random_range(lo..=hi);
        let b = rng.random_range(lo..=hi);
        Requant::FixedPoint {
            multiplier: (0..n).map(|_| multiplier(rng)).collect(),
            shift: (0..n).map(|_| rng.random_range(-31..=30)).collect(),
            zero_point,
            min: a.min(b),
            max: a.max(b),
        }
    }

    fn have_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2")
    }

    #[test]
    fn requant_matches_the_scalar_requantizer() {
        if !have_avx2() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for case in 0..400 {
            let (c, s) = (rng.random_range(1..5), rng.random_range(1..80));
            let batch = rng.random_range(1..3);
            let signed = case % 2 == 1;
            let r = requant(&mut rng, c, signed);
            let acc = values(&mut rng, batch * c * s);
            let pending: Option<Vec<i32>> = rng.random_bool(0.5).then(|| values(&mut rng, c));
            let mut got = vec![0u8; acc.len()];
            // SAFETY: AVX2 checked above.
            unsafe { requant_fixed_point(&r, &acc, (c, s), pending.as_deref(), signed, &mut got) }
                .expect("vector path takes valid fixed-point parameters");
            for (i, (&x, &g)) in acc.iter().zip(&got).enumerate() {
                let ch = (i / s) % c;
                let x = x.wrapping_add(pending.as_ref().map_or(0, |p| p[ch]));
                let want = r.apply(x, ch);
                assert_eq!(g, want as u8, "case {case} element {i}: {r:?} on {x}");
            }
        }
    }

    #[test]
    fn requant_declines_what_it_cannot_vectorize() {
        if !have_avx2() {
            return;
        }
        let r = |multiplier, min, max| Requant::FixedPoint {
            multiplier: vec![multiplier],
            shift: vec![0],
            zero_point: 0,
            min,
            max,
        };
        let acc = vec![5; 16];
        for (rq, signed) in [
            (r(i32::MIN, 0, 255), false),
            (r(1 << 30, 0, 300), false),
            (r(1 << 30, -1, 127), false),
            (r(1 << 30, -129, 127), true),
            (r(1 << 30, 10, 5), false),
        ] {
            // SAFETY: AVX2 checked above.
            let mut out = vec![0u8; 16];
            let done = unsafe { requant_fixed_point(&rq, &acc, (1, 16), None, signed, &mut out) };
            assert!(done.is_none());
        }
    }

    #[test]
    fn add_requant_matches_the_scalar_add_and_requantizer() {
        if !have_avx2() {
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for case in 0..400 {
            let (c, s) = (rng.random_range(1..4), rng.random_range(1..80));
            let (signed_in, signed_out) = (rng.random_bool(0.5), rng.random_bool(0.5));
            let r = requant(&mut rng, c, signed_out);
            let zp = |rng: &mut ChaCha8Rng| {
                if signed_in {
                    rng.random_range(-128..=127)
                } else {
                    rng.random_range(0..=255)
                }
            };
            let align = if rng.random_bool(0.7) {
                AddAlign::FixedPoint {
                    left_shift: rng.random_range(0..=30),
                    multiplier_a: multiplier(&mut rng),
                    shift_a: rng.random_range(-31..=30),
                    multiplier_b: multiplier(&mut rng),
                    shift_b: rng.random_range(-31..=30),
                }
            } else {
                AddAlign::PowerOfTwo {
                    shift_a: rng.random_range(0..=31),
                    shift_b: rng.random_range(0..=31),
                }
            };
            let add = Add {
                zero_point_a: zp(&mut rng),
                zero_point_b: zp(&mut rng),
                align,
            };
            let n = c * s;
            let a: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let b: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            // SAFETY: AVX2 checked above.
            let mut got = vec![0u8; n];
            unsafe { add_requant(&add, &r, &a, &b, (c, s), signed_in, signed_out, &mut got) }
                .expect("vector path takes valid parameters");
            let value = |x: u8| {
                if signed_in {
                    i32::from(x as i8)
                } else {
                    i32::from(x)
                }
            };
            for i in 0..n {
                let sum = residual_add(value(a[i]), value(b[i]), &add);
                let want = r.apply(sum, (i / s) % c);
                assert_eq!(got[i], want as u8, "case {case} element {i}: {add:?} {r:?}");
            }
        }
    }
}
