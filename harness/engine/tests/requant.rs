//! The requantization arithmetic against straightforward i128 formulations of its definitions, and
//! its edge cases: accumulators near the i32 limits, INT32_MIN, every shift, rounding ties,
//! saturation, and TFLite's QuantizeMultiplier corner cases.

use proptest::prelude::*;
use qbench_engine::requant::*;

/// `floor(a * b / 2^31 + 1/2)`, saturated: the definition of SaturatingRoundingDoublingHighMul.
fn srdhm_def(a: i32, b: i32) -> i32 {
    let ab = i128::from(a) * i128::from(b);
    let r = (ab + (1i128 << 30)).div_euclid(1i128 << 31);
    r.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32
}

/// `x / 2^e` rounded to nearest, ties away from zero: the definition of RoundingDivideByPOT.
fn rdbpot_def(x: i32, e: i32) -> i32 {
    if e == 0 {
        return x;
    }
    let m = i128::from(x).abs();
    let q = (m + (1i128 << (e - 1))) >> e;
    (if x < 0 { -q } else { q }) as i32
}

/// `floor(acc / 2^s + 1/2)`: round half up.
fn shift_def(acc: i32, s: u32) -> i32 {
    if s == 0 {
        return acc;
    }
    (i128::from(acc) + (1i128 << (s - 1))).div_euclid(1i128 << s) as i32
}

fn edgy() -> impl Strategy<Value = i32> {
    prop_oneof![
        any::<i32>(),
        Just(i32::MIN),
        Just(i32::MIN + 1),
        Just(i32::MAX),
        Just(i32::MAX - 1),
        -4..4i32,
        Just(1 << 30),
        Just(-(1 << 30)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn srdhm_matches_definition(a in edgy(), b in edgy()) {
        prop_assert_eq!(saturating_rounding_doubling_high_mul(a, b), srdhm_def(a, b));
    }

    #[test]
    fn rdbpot_matches_definition(x in edgy(), e in 0..=31i32) {
        prop_assert_eq!(rounding_divide_by_pot(x, e), rdbpot_def(x, e));
    }

    #[test]
    fn shift_round_matches_definition(x in edgy(), s in 0..=31u32) {
        prop_assert_eq!(shift_round(x, s), shift_def(x, s));
    }

    #[test]
    fn offset_clamp_matches_definition(v in edgy(), zp in edgy(), a in edgy(), b in edgy()) {
        let (min, max) = (a.min(b), a.max(b));
        let want = (i64::from(v) + i64::from(zp)).clamp(i64::from(min), i64::from(max)) as i32;
        prop_assert_eq!(offset_clamp(v, zp, min, max), want);
    }

    #[test]
    fn apply_run_equals_apply(vals in proptest::collection::vec(edgy(), 1..40), s in 0..=31u8,
                              zp in -128..=127i32, m in edgy(), sh in -31..=30i32,
                              wild in edgy()) {
        let shift = Requant::Shift { shift: vec![s], zero_point: zp, min: -128, max: 127 };
        // Bounds whose shifted form leaves i32 (impossible in a valid graph): the exact fallback.
        let extreme = Requant::Shift {
            shift: vec![s], zero_point: wild, min: i32::MIN, max: i32::MIN.wrapping_add(wild.max(0)),
        };
        let fp = Requant::FixedPoint {
            multiplier: vec![m], shift: vec![sh], zero_point: zp, min: -100, max: 100,
        };
        for r in [shift, fp, extreme] {
            let mut got = vec![0; vals.len()];
            r.apply_run(0, &vals, |i, q| got[i] = q);
            let want: Vec<i32> = vals.iter().map(|&a| r.apply(a, 0)).collect();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn mbqm_is_srdhm_then_rdbpot(x in edgy(), m in edgy(), shift in -31..=30i32) {
        let left = shift.max(0);
        let want = rdbpot_def(srdhm_def(x.wrapping_mul(1 << left), m), (-shift).max(0));
        prop_assert_eq!(multiply_by_quantized_multiplier(x, m, shift), want);
    }

    #[test]
    fn quantized_multiplier_approximates_the_real_one(x in 1e-9f64..1e6, acc in -100_000..100_000i32) {
        let (m, shift) = quantize_multiplier(x);
        prop_assert!((1 << 30..=i32::MAX).contains(&m), "m {} for {}", m, x);
        let approx = f64::from(m) * 2f64.powi(shift - 31);
        prop_assert!((approx / x - 1.0).abs() <= 2f64.powi(-30));
        // Only where TFLite's left shift of the accumulator does not overflow.
        if (-31..=30).contains(&shift) && (i64::from(acc) << shift.max(0)).abs() < 1 << 31 {
            let got = multiply_by_quantized_multiplier(acc, m, shift);
            let exact = f64::from(acc) * x;
            // Two roundings, each at most half a unit, plus the multiplier's own error.
            prop_assert!((f64::from(got) - exact).abs() <= 1.0 + exact.abs() * 2f64.powi(-29));
        }
    }
}

#[test]
fn srdhm_edge_cases() {
    assert_eq!(
        saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
        i32::MAX
    );
    assert_eq!(
        saturating_rounding_doubling_high_mul(i32::MIN, i32::MAX),
        -i32::MAX
    );
    assert_eq!(
        saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX),
        i32::MAX - 1
    );
    // Ties: +0.5 -> 1, -0.5 -> 0, -1.5 -> -1 (toward +infinity).
    assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 1), 1);
    assert_eq!(saturating_rounding_doubling_high_mul(-(1 << 30), 1), 0);
    assert_eq!(saturating_rounding_doubling_high_mul(-3 * (1 << 29), 2), -1);
    assert_eq!(saturating_rounding_doubling_high_mul(0, i32::MIN), 0);
}

#[test]
fn rdbpot_ties_round_away_from_zero() {
    assert_eq!(rounding_divide_by_pot(3, 1), 2);
    assert_eq!(rounding_divide_by_pot(-3, 1), -2);
    assert_eq!(rounding_divide_by_pot(5, 1), 3);
    assert_eq!(rounding_divide_by_pot(-5, 1), -3);
    assert_eq!(rounding_divide_by_pot(-4, 2), -1);
    assert_eq!(rounding_divide_by_pot(-6, 2), -2);
    assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
    assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
    assert_eq!(rounding_divide_by_pot(i32::MIN, 0), i32::MIN);
}

#[test]
fn every_shift_on_extreme_accumulators() {
    for s in 0..=31u32 {
        for acc in [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX] {
            assert_eq!(shift_round(acc, s), shift_def(acc, s), "acc {acc} s {s}");
        }
        if s > 0 {
            // Exact ties round up: (2k+1) * 2^(s-1) -> k + 1, negative too.
            let half = 1i64 << (s - 1);
            for k in [-3i64, -1, 0, 2] {
                let acc = (2 * k + 1) * half;
                if let Ok(acc) = i32::try_from(acc) {
                    assert_eq!(i64::from(shift_round(acc, s)), k + 1, "acc {acc} s {s}");
                }
            }
        }
    }
    assert_eq!(shift_round(i32::MAX, 1), 1 << 30);
    assert_eq!(shift_round(i32::MIN, 31), -1);
    assert_eq!(shift_round(i32::MAX, 31), 1);
}

#[test]
fn requantizers_saturate_and_clamp() {
    let shift = Requant::Shift {
        shift: vec![0],
        zero_point: 100,
        min: 0,
        max: 255,
    };
    assert_eq!(shift.apply(i32::MAX, 0), 255);
    assert_eq!(shift.apply(i32::MIN, 0), 0);
    assert_eq!(shift.apply(-100, 0), 0);
    assert_eq!(shift.apply(-99, 0), 1);
    let fp = Requant::FixedPoint {
        multiplier: vec![i32::MIN, 1 << 30],
        shift: vec![0, 30],
        zero_point: -5,
        min: -128,
        max: 127,
    };
    // INT32_MIN * INT32_MIN saturates to INT32_MAX; adding the zero point must not overflow.
    assert_eq!(fp.apply(i32::MIN, 0), 127);
    assert_eq!(fp.apply(i32::MAX, 0), -128);
    // Left shift of 30 wraps x * 2^30 before the high multiply, as two's-complement C++ does.
    assert_eq!(
        fp.apply(3, 1),
        offset_clamp(
            saturating_rounding_doubling_high_mul(3i32.wrapping_mul(1 << 30), 1 << 30),
            -5,
            -128,
            127
        )
    );
    assert_eq!(
        offset_clamp(i32::MAX, i32::MAX, i32::MIN, i32::MAX),
        i32::MAX
    );
    assert_eq!(
        offset_clamp(i32::MIN, i32::MIN, i32::MIN, i32::MAX),
        i32::MIN
    );
}

#[test]
fn quantize_multiplier_edge_cases() {
    assert_eq!(quantize_multiplier(0.0), (0, 0));
    assert_eq!(quantize_multiplier(-0.0), (0, 0));
    assert_eq!(quantize_multiplier(0.5), (1 << 30, 0));
    assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
    assert_eq!(quantize_multiplier(0.75), (1_610_612_736, 0));
    assert_eq!(quantize_multiplier(3.0), (1_610_612_736, 2));
    assert_eq!(quantize_multiplier(-0.75), (-1_610_612_736, 0));
    // The mantissa rounds up to 2^31: halved, shift incremented.
    assert_eq!(quantize_multiplier(1.0 - 2f64.powi(-40)), (1 << 30, 1));
    assert_eq!(quantize_multiplier(0.5 - 2f64.powi(-40)), (1 << 30, 0));
    // Smallest multiplier kept: 2^-32 has shift -31; below that everything flushes to (0, 0).
    assert_eq!(quantize_multiplier(2f64.powi(-32)), (1 << 30, -31));
    assert_eq!(quantize_multiplier(2f64.powi(-33)), (0, 0));
    assert_eq!(quantize_multiplier(f64::from_bits(1)), (0, 0));
    // One ulp below 0.5 times 2^31 rounds half away from zero.
    let (m, s) = quantize_multiplier(0.3);
    assert_eq!((m, s), ((0.6f64 * 2f64.powi(31)).round() as i32, -1));
}

#[test]
fn thresholds() {
    assert_eq!(threshold(5, 5, false), 1);
    assert_eq!(threshold(4, 5, false), -1);
    assert_eq!(threshold(5, 5, true), 1);
    assert_eq!(threshold(6, 5, true), -1);
    assert_eq!(multi_threshold(0, &[-1, 0, 1], false), 2);
    assert_eq!(multi_threshold(0, &[-1, 0, 1], true), 2);
    assert_eq!(multi_threshold(i32::MIN, &[-1, 0, 1], false), 0);
    assert_eq!(multi_threshold(i32::MAX, &[-1, 0, 1], false), 3);
}

#[test]
fn avg_round_is_round_half_up() {
    assert_eq!(avg_round(3, 2), 2);
    assert_eq!(avg_round(-3, 2), -1);
    assert_eq!(avg_round(-5, 2), -2);
    assert_eq!(avg_round(7, 4), 2);
    assert_eq!(avg_round(-7, 4), -2);
    assert_eq!(avg_round(10, 4), 3);
    assert_eq!(avg_round(-10, 4), -2);
    assert_eq!(avg_round(i64::from(i32::MIN) * 9, 9), i32::MIN);
}
