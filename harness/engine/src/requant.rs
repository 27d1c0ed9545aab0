//! Requantizers and the scalar integer arithmetic they are made of.
//!
//! This module is the single definition of qbench's requantization arithmetic: both executors, the
//! RTL co-simulation and the methods' fake-quant forwards call these functions, so there is exactly
//! one place where, for example, a rounding tie is decided.
//!
//! The gemmlowp/TFLite functions follow their definitions exactly (see `shared/reference/methods.md`):
//! [`saturating_rounding_doubling_high_mul`], [`rounding_divide_by_pot`],
//! [`multiply_by_quantized_multiplier`] (the classic two-rounding TFLite form, including its left
//! shift for multipliers >= 1) and [`quantize_multiplier`]. Where TFLite's C++ would overflow a signed
//! `int32` (undefined behaviour), these functions wrap in two's complement as the hardware does, or
//! compute in 64 bits before clamping; both are documented on the function concerned.

use serde::{Deserialize, Serialize};

use crate::node::{Add, AddAlign};
use crate::types::DType;

/// Power-of-two requantization with round-half-up: `(acc + 2^(s-1)) >> s` using an arithmetic
/// (flooring) shift, evaluated exactly as if in unbounded integers, so accumulators near `i32::MAX`
/// do not overflow. `s == 0` returns `acc` unchanged (no rounding term). Ties round toward
/// +infinity: `shift_round(3, 1) == 2`, `shift_round(-3, 1) == -1`.
///
/// # Panics
/// If `s > 31`.
#[inline]
pub fn shift_round(acc: i32, s: u32) -> i32 {
    assert!(s <= 31, "shift {s} out of 0..=31");
    shift_round_unchecked(acc, s)
}

/// [`shift_round`] for `s` already known to be in 0..=31. With `acc = q * 2^s + r`, the result is
/// `q` plus bit `s - 1` of `acc` (that bit is set exactly when `r >= 2^(s-1)`); reading that bit as
/// bit `s` of `acc << 1` makes `s == 0` add nothing. Pure i32 arithmetic, so loops vectorize.
#[inline(always)]
fn shift_round_unchecked(acc: i32, s: u32) -> i32 {
    (acc >> s) + ((acc.wrapping_shl(1) >> s) & 1)
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: `a * b / 2^31` rounded to nearest (the high 32
/// bits of `2 * a * b`). Because the C++ adds a nudge of `2^30` or `1 - 2^30` and then truncates
/// toward zero, ties round toward +infinity (`+0.5 -> 1`, `-0.5 -> 0`, `-1.5 -> -1`). The single
/// overflowing case `a == b == i32::MIN` saturates to `i32::MAX`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = i64::from(a) * i64::from(b);
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Rust's `/` truncates toward zero, as the C++ does.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away from zero.
///
/// # Panics
/// If `exponent` is outside `0..=31`.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    assert!(
        (0..=31).contains(&exponent),
        "exponent {exponent} out of 0..=31"
    );
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// TFLite's `MultiplyByQuantizedMultiplier(x, M0, shift)`: multiplies `x` by `M0 * 2^(shift - 31)`.
/// A positive `shift` is a left shift applied to `x` before the high multiply (multipliers >= 1),
/// a negative one a rounding right shift after it. The left shift wraps on overflow (TFLite's
/// `x * (1 << left_shift)` is undefined behaviour there; two's-complement hardware wraps).
///
/// # Panics
/// If `shift` is outside `-31..=30`.
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    assert!((-31..=30).contains(&shift), "shift {shift} out of -31..=30");
    let left = shift.max(0);
    let right = (-shift).max(0);
    rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(x.wrapping_mul(1i32 << left), multiplier),
        right,
    )
}

/// Splits `x` into mantissa in `[0.5, 1)` (sign kept) and exponent, like C's `frexp`.
fn frexp(x: f64) -> (f64, i32) {
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale into the normal range first.
        let (m, e) = frexp(x * 2f64.powi(64));
        return (m, e - 64);
    }
    let mantissa = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (mantissa, exp - 1022)
}

/// TFLite's `QuantizeMultiplier` (double-rounding build): returns `(M0, shift)` with
/// `x ~= M0 * 2^(shift - 31)` and `M0 = round(q * 2^31)` for `frexp(x) = (q, shift)`.
/// Edge cases exactly as TFLite: `0.0 -> (0, 0)`; a mantissa that rounds up to `2^31` is halved
/// and the shift incremented; a shift below -31 flushes to `(0, 0)`; negative `x` gives a negative
/// `M0`. Shifts above 30 are returned as computed (TFLite leaves them too); the engine's validation
/// rejects them in a graph.
///
/// # Panics
/// If `x` is NaN or infinite.
pub fn quantize_multiplier(x: f64) -> (i32, i32) {
    assert!(x.is_finite(), "quantize_multiplier of non-finite {x}");
    if x == 0.0 {
        return (0, 0);
    }
    let (q, mut shift) = frexp(x);
    // f64::round rounds half away from zero, as std::round (TfLiteRound) does.
    let mut q_fixed = (q * (1u64 << 31) as f64).round() as i64;
    if q_fixed == 1i64 << 31 {
        q_fixed /= 2;
        shift += 1;
    }
    if shift < -31 {
        shift = 0;
        q_fixed = 0;
    }
    (q_fixed as i32, shift)
}

/// BNN sign after folded batch norm: `+1` if `acc >= t` (or, with `flip`, if `acc <= t`), else `-1`.
#[inline]
pub fn threshold(acc: i32, t: i32, flip: bool) -> i32 {
    let pass = if flip { acc <= t } else { acc >= t };
    if pass { 1 } else { -1 }
}

/// Multi-threshold activation (QNN/FINN): the number of thresholds passed, `acc >= t_i` (or, with
/// `flip`, `acc <= t_i`). With `2^k - 1` thresholds this is a k-bit unsigned value.
#[inline]
pub fn multi_threshold(acc: i32, thresholds: &[i32], flip: bool) -> i32 {
    thresholds
        .iter()
        .filter(|&&t| if flip { acc <= t } else { acc >= t })
        .count() as i32
}

/// Adds an output zero point and clamps to `[min, max]` (the clamp folds ReLU/ReLU6), exactly as if
/// computed in unbounded integers: `clamp(v + zero_point, min, max)`. `min <= max` is required.
#[inline]
pub fn offset_clamp(v: i32, zero_point: i32, min: i32, max: i32) -> i32 {
    (i64::from(v) + i64::from(zero_point)).clamp(i64::from(min), i64::from(max)) as i32
}

/// [`offset_clamp`] restated on the value before the zero point is added:
/// `clamp(v, min - zp, max - zp) + zp`, pure i32 so loops vectorize. Only built when both shifted
/// bounds fit in i32 (always so in a valid graph, whose zero point and bounds lie in a <= 8-bit
/// range); the sum then lies in `[min, max]` and cannot overflow.
#[derive(Clone, Copy)]
struct ShiftedClamp {
    zero_point: i32,
    lo: i32,
    hi: i32,
}

impl ShiftedClamp {
    #[inline(always)]
    fn new(zero_point: i32, min: i32, max: i32) -> Option<Self> {
        let lo = i32::try_from(i64::from(min) - i64::from(zero_point)).ok()?;
        let hi = i32::try_from(i64::from(max) - i64::from(zero_point)).ok()?;
        Some(ShiftedClamp { zero_point, lo, hi })
    }

    #[inline(always)]
    fn apply(self, v: i32) -> i32 {
        // max/min rather than clamp: no `lo <= hi` assertion in the loop (`new` guarantees it).
        v.max(self.lo).min(self.hi) + self.zero_point
    }
}

/// Rounded average of a pooling window: `floor((sum + count / 2) / count)`, i.e. round half up
/// (toward +infinity) with floor division; for odd `count` plain round to nearest.
/// `count` must be positive.
#[inline]
pub fn avg_round(sum: i64, count: i64) -> i32 {
    (sum + count / 2).div_euclid(count) as i32
}

/// Residual add of two values into a common i32 scale (see [`AddAlign`]); wrapping i32 arithmetic.
#[inline]
pub fn residual_add(a: i32, b: i32, add: &Add) -> i32 {
    let da = a.wrapping_sub(add.zero_point_a);
    let db = b.wrapping_sub(add.zero_point_b);
    match add.align {
        AddAlign::PowerOfTwo { shift_a, shift_b } => da
            .wrapping_shl(u32::from(shift_a))
            .wrapping_add(db.wrapping_shl(u32::from(shift_b))),
        AddAlign::FixedPoint {
            left_shift,
            multiplier_a,
            shift_a,
            multiplier_b,
            shift_b,
        } => {
            let sa = da.wrapping_mul(1i32 << left_shift);
            let sb = db.wrapping_mul(1i32 << left_shift);
            multiply_by_quantized_multiplier(sa, multiplier_a, shift_a)
                .wrapping_add(multiply_by_quantized_multiplier(sb, multiplier_b, shift_b))
        }
    }
}

/// A requantizer: maps an integer (normally an i32 accumulator) of channel `c` to the next layer's
/// integer. Parameter vectors have length 1 (per tensor) or C (per output channel).
///
/// Array fields are stored as tensors in the graph file, not in the JSON header, hence `serde(skip)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Requant {
    /// DJQ power-of-two: `clamp(shift_round(acc, s_c) + zero_point, min, max)`, `s_c` in 0..=31.
    Shift {
        /// Right shifts, per tensor or per channel.
        #[serde(skip)]
        shift: Vec<u8>,
        /// Output zero point added after the shift.
        zero_point: i32,
        /// Lower clamp bound (ReLU folds here).
        min: i32,
        /// Upper clamp bound.
        max: i32,
    },
    /// TFLite fixed point: `clamp(multiply_by_quantized_multiplier(acc, M0_c, shift_c) + zero_point,
    /// min, max)` with `shift_c` in -31..=30 (positive = left shift).
    FixedPoint {
        /// Q31 multipliers `M0`, per tensor or per channel: 0 or `2^30..=2^31-1`.
        #[serde(skip)]
        multiplier: Vec<i32>,
        /// TFLite exponents, per tensor or per channel.
        #[serde(skip)]
        shift: Vec<i32>,
        /// Output zero point.
        zero_point: i32,
        /// Lower clamp bound.
        min: i32,
        /// Upper clamp bound.
        max: i32,
    },
    /// BNN sign: `+1` if `acc >= t_c` (flipped channels: `acc <= t_c`), else `-1`. Binary output.
    Threshold {
        /// One threshold per tensor or per channel.
        #[serde(skip)]
        thresholds: Vec<i32>,
        /// Per tensor or per channel direction (true where the folded BN scale is negative).
        #[serde(skip)]
        flip: Vec<bool>,
    },
    /// k-bit multi-threshold: number of the channel's `2^k - 1` non-decreasing thresholds passed.
    /// `thresholds` is `[sets][2^k - 1]` with `sets == flip.len()` (1 or C).
    MultiThreshold {
        /// Thresholds, row-major `[sets][2^k - 1]`.
        #[serde(skip)]
        thresholds: Vec<i32>,
        /// Direction per set.
        #[serde(skip)]
        flip: Vec<bool>,
    },
}

/// Picks the per-tensor or per-channel entry.
#[inline]
fn at<T: Copy>(v: &[T], c: usize) -> T {
    if v.len() == 1 { v[0] } else { v[c] }
}

impl Requant {
    /// Short kind name (`shift`, `fixed_point`, `threshold`, `multi_threshold`), used in counts.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Requant::Shift { .. } => "shift",
            Requant::FixedPoint { .. } => "fixed_point",
            Requant::Threshold { .. } => "threshold",
            Requant::MultiThreshold { .. } => "multi_threshold",
        }
    }

    /// Number of parameter sets (1 = per tensor, else per channel).
    pub fn sets(&self) -> usize {
        match self {
            Requant::Shift { shift, .. } => shift.len(),
            Requant::FixedPoint { multiplier, .. } => multiplier.len(),
            Requant::Threshold { flip, .. } | Requant::MultiThreshold { flip, .. } => flip.len(),
        }
    }

    /// Requantizes one value of channel `c`. The graph must be valid (parameters in range).
    #[inline]
    pub fn apply(&self, acc: i32, c: usize) -> i32 {
        match self {
            Requant::Shift {
                shift,
                zero_point,
                min,
                max,
            } => offset_clamp(
                shift_round(acc, u32::from(at(shift, c))),
                *zero_point,
                *min,
                *max,
            ),
            Requant::FixedPoint {
                multiplier,
                shift,
                zero_point,
                min,
                max,
            } => offset_clamp(
                multiply_by_quantized_multiplier(acc, at(multiplier, c), at(shift, c)),
                *zero_point,
                *min,
                *max,
            ),
            Requant::Threshold { thresholds, flip } => {
                threshold(acc, at(thresholds, c), at(flip, c))
            }
            Requant::MultiThreshold { thresholds, flip } => {
                let levels = thresholds.len() / flip.len();
                let set = if flip.len() == 1 { 0 } else { c };
                multi_threshold(
                    acc,
                    &thresholds[set * levels..(set + 1) * levels],
                    flip[set],
                )
            }
        }
    }

    /// Requantizes a run of values that all belong to channel `c`, calling `put(i, out)` for each
    /// `src[i]`: the same arithmetic as [`Requant::apply`], with the kind and the channel's
    /// parameters resolved once per run instead of once per value (the executors' hot loop).
    #[inline(always)]
    pub fn apply_run(&self, c: usize, src: &[i32], mut put: impl FnMut(usize, i32)) {
        match self {
            Requant::Shift {
                shift,
                zero_point,
                min,
                max,
            } => {
                let s = u32::from(at(shift, c));
                assert!(s <= 31, "shift {s} out of 0..=31");
                let (zp, lo, hi) = (*zero_point, *min, *max);
                if let Some(cl) = ShiftedClamp::new(zp, lo, hi) {
                    for (i, &a) in src.iter().enumerate() {
                        put(i, cl.apply(shift_round_unchecked(a, s)));
                    }
                } else {
                    for (i, &a) in src.iter().enumerate() {
                        put(i, offset_clamp(shift_round_unchecked(a, s), zp, lo, hi));
                    }
                }
            }
            Requant::FixedPoint {
                multiplier,
                shift,
                zero_point,
                min,
                max,
            } => {
                let (m, s) = (at(multiplier, c), at(shift, c));
                let (zp, lo, hi) = (*zero_point, *min, *max);
                for (i, &a) in src.iter().enumerate() {
                    let q = multiply_by_quantized_multiplier(a, m, s);
                    put(i, offset_clamp(q, zp, lo, hi));
                }
            }
            Requant::Threshold { thresholds, flip } => {
                let (t, f) = (at(thresholds, c), at(flip, c));
                for (i, &a) in src.iter().enumerate() {
                    put(i, threshold(a, t, f));
                }
            }
            Requant::MultiThreshold { thresholds, flip } => {
                let levels = thresholds.len() / flip.len();
                let set = if flip.len() == 1 { 0 } else { c };
                let ts = &thresholds[set * levels..(set + 1) * levels];
                for (i, &a) in src.iter().enumerate() {
                    put(i, multi_threshold(a, ts, flip[set]));
                }
            }
        }
    }

    /// The output dtype a requantizer of this kind may produce, given the declared one: checks the
    /// combination (threshold -> binary, multi-threshold -> unsigned, shift/fixed point -> narrow).
    pub fn output_allowed(&self, out: DType) -> bool {
        match self {
            Requant::Shift { .. } | Requant::FixedPoint { .. } => out.is_narrow_int(),
            Requant::Threshold { .. } => out == DType::Binary,
            Requant::MultiThreshold { .. } => matches!(out, DType::Unsigned { .. }),
        }
    }
}
