//! Batch norm + activation quantization folded into integer thresholds on the accumulators.
//!
//! A hidden layer's accumulator `acc` (an integer) has the real value `v = acc s_c + b_c` (`s_c`
//! the product of input and weight scales, `b_c` the layer's own bias); its batch norm gives
//! `y = v g_c + h_c` with `g_c = gamma / sqrt(var + eps)` and `h_c = beta - mean g_c`; the
//! activation is [`ActQuant::of_real`]`(y)`. [`BnFold::real`] evaluates exactly this in f64, and
//! that evaluation is the definition: the fake-quant forward calls it, and the thresholds below are
//! found by searching it.
//!
//! Because every f64 operation rounds correctly and hence monotonically, `real(acc)` is a
//! monotone function of `acc` (non-decreasing where `g_c >= 0`, non-increasing where `g_c < 0`,
//! with `s_c > 0`). "Activation at least `j`" is therefore a prefix or suffix of the accumulator
//! range, and a binary search over the integers finds its boundary exactly. Over the channel's
//! possible accumulators `[lo, hi]`:
//!
//! - `g_c >= 0`: threshold `t` = the least `acc` reaching level `j` (`hi + 1` if none), compared
//!   as `acc >= t`;
//! - `g_c < 0`: `flip`, threshold = the largest `acc` reaching level `j` (`lo - 1` if none),
//!   compared as `acc <= t`; the `2^k - 1` thresholds are then stored in ascending order (the
//!   engine counts thresholds passed, so the order does not change the level).
//!
//! BNN's sign is the one-threshold case ([`Requant::Threshold`]: +1 iff level 1 is reached); QNN
//! levels use [`Requant::MultiThreshold`]. `gamma = 0` is a constant activation: every threshold
//! is `lo` (always reached) or `hi + 1` (never).

use qbench_engine::Requant;

use super::quant::ActQuant;
use crate::error::{MethodError, Result};
use crate::model::params::BN_EPS;

/// A batch norm that follows a layer, in terms of the layer's integer accumulators.
#[derive(Clone, Debug, PartialEq)]
pub struct BnFold {
    /// Real value of one accumulator unit per channel (`s_c > 0`).
    pub acc_scale: Vec<f64>,
    /// The layer's own bias per channel (0 without one).
    pub bias: Vec<f64>,
    /// `gamma / sqrt(var + eps)` per channel.
    pub scale: Vec<f64>,
    /// `beta - mean * scale` per channel.
    pub shift: Vec<f64>,
}

impl BnFold {
    /// From the batch norm's parameters (`gamma`, `beta`, running `mean` and `var`), the
    /// accumulator scales and the layer bias.
    pub fn new(
        acc_scale: Vec<f64>,
        bias: Vec<f64>,
        gamma: &[f64],
        beta: &[f64],
        mean: &[f64],
        var: &[f64],
    ) -> Result<Self> {
        let c = acc_scale.len();
        if [bias.len(), gamma.len(), beta.len(), mean.len(), var.len()]
            .iter()
            .any(|&l| l != c)
        {
            return Err(MethodError::Config(format!(
                "batch norm folding needs {c} values per parameter"
            )));
        }
        if let Some(s) = acc_scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(MethodError::Config(format!(
                "accumulator scale {s} is not a positive number"
            )));
        }
        let scale: Vec<f64> = gamma
            .iter()
            .zip(var)
            .map(|(g, v)| g / (v + BN_EPS).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(mean)
            .zip(&scale)
            .map(|((b, m), s)| b - m * s)
            .collect();
        Ok(BnFold {
            acc_scale,
            bias,
            scale,
            shift,
        })
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.acc_scale.len()
    }

    /// The batch-normalised real value of accumulator `acc` of channel `c`.
    #[inline]
    pub fn real(&self, acc: i64, c: usize) -> f64 {
        let v = acc as f64 * self.acc_scale[c] + self.bias[c];
        v * self.scale[c] + self.shift[c]
    }

    /// The engine requantizer that maps channel `c`'s accumulators in `ranges[c] = (lo, hi)` to
    /// `act.of_real(self.real(acc, c))` exactly (see the module docs).
    pub fn requant(&self, act: ActQuant, ranges: &[(i64, i64)]) -> Result<Requant> {
        if ranges.len() != self.channels() {
            return Err(MethodError::Config(format!(
                "{} accumulator ranges for {} channels",
                ranges.len(),
                self.channels()
            )));
        }
        let levels = act.levels();
        let mut thresholds = Vec::with_capacity(self.channels() * levels as usize);
        let mut flip = Vec::with_capacity(self.channels());
        for (c, &(lo, hi)) in ranges.iter().enumerate() {
            let decreasing = self.scale[c] < 0.0;
            let mut set = Vec::with_capacity(levels as usize);
            for j in 1..=levels {
                // Level index relative to the activation's lowest value (sign: -1 -> 0, +1 -> 1).
                let reaches = |acc: i64| act.of_real(self.real(acc, c)) - act.int_range().0 >= j;
                let t = boundary(reaches, decreasing, lo, hi);
                set.push(i32::try_from(t).map_err(|_| {
                    MethodError::Config(format!("threshold {t} of channel {c} exceeds i32"))
                })?);
            }
            if decreasing {
                set.reverse();
            }
            thresholds.extend(set);
            flip.push(decreasing);
        }
        Ok(match act {
            ActQuant::Sign => Requant::Threshold { thresholds, flip },
            ActQuant::Levels { .. } => Requant::MultiThreshold { thresholds, flip },
        })
    }
}

/// The boundary of a monotone predicate over `lo..=hi`: with `decreasing == false` (false...true)
/// the least value where it holds (`hi + 1` if none); with `decreasing == true` (true...false) the
/// largest value where it holds (`lo - 1` if none).
pub fn boundary(holds: impl Fn(i64) -> bool, decreasing: bool, lo: i64, hi: i64) -> i64 {
    if decreasing {
        // Largest x with holds(x): search on the negated, non-decreasing order.
        let (mut a, mut b) = (lo, hi + 1); // answer + 1 lies in [a, b]
        while a < b {
            let mid = a + (b - a) / 2;
            if holds(mid) { a = mid + 1 } else { b = mid }
        }
        a - 1
    } else {
        let (mut a, mut b) = (lo, hi + 1); // answer lies in [a, b]
        while a < b {
            let mid = a + (b - a) / 2;
            if holds(mid) { b = mid } else { a = mid + 1 }
        }
        a
    }
}

/// Possible accumulator range `(lo, hi)` of each output channel of integer weights `[rows,
/// fan_in]` over inputs in `[amin, amax]`; every tap may also contribute 0 (padding).
pub fn acc_ranges(weights: &[i8], rows: usize, amin: i64, amax: i64) -> Vec<(i64, i64)> {
    let fan_in = weights.len() / rows.max(1);
    weights
        .chunks(fan_in.max(1))
        .map(|row| {
            row.iter().fold((0i64, 0i64), |(lo, hi), &w| {
                let (a, b) = (i64::from(w) * amin, i64::from(w) * amax);
                (lo + a.min(b).min(0), hi + a.max(b).max(0))
            })
        })
        .collect()
}
