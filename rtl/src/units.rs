//! The catalogue of hardware units: every method's requantizer and processing element as a Verilog
//! module plus the parameters it is instantiated with.
//!
//! Each unit is registered (inputs and output), does one operation per clock, and computes exactly the
//! engine's arithmetic for that operation (see `rtl/verilog/*.v`). [`UnitKind`] tells the co-simulation
//! which ports the unit has and which engine function is its reference.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use qbench_io::{IoError, Sha256};

use crate::error::Result;

/// What a unit does in a network (the role column of the hardware table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitRole {
    /// Maps an i32 accumulator to the next layer's narrow integer (one op per output element).
    Requantizer,
    /// Multiply-accumulates operands into an accumulator (one op per MAC).
    ProcessingElement,
}

impl UnitRole {
    /// The name in tables and records (`requantizer`, `processing_element`; as serialised).
    pub fn name(self) -> &'static str {
        match self {
            UnitRole::Requantizer => "requantizer",
            UnitRole::ProcessingElement => "processing_element",
        }
    }
}

/// The arithmetic a unit implements, with its shape parameters; decides ports and reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnitKind {
    /// `Requant::Shift` with the shift a run-time input.
    ShiftVar,
    /// `Requant::Shift` with the shift the constant `shift`.
    ShiftConst {
        /// The constant right shift, 0..=31.
        shift: u32,
    },
    /// `Requant::FixedPoint` on accumulators of `acc_bits` bits (32 = full TFLite; fewer = the
    /// ternary x 8-bit TNT path, whose accumulators are narrow).
    FixedPoint {
        /// Accumulator width in bits, 2..=32.
        acc_bits: u32,
        /// Whether positive exponents (left shifts, multipliers >= 1) are supported; the TNT path
        /// has multipliers below 1 only.
        left_shift: bool,
    },
    /// `Requant::Threshold` with threshold and flip as run-time inputs.
    Threshold,
    /// `Requant::MultiThreshold` with `2^k - 1` thresholds and flip as run-time inputs.
    MultiThreshold {
        /// Output bits; `2^k - 1` thresholds.
        k: u32,
    },
    /// Integer MAC `acc += (a - za) * w`, `a` unsigned of `act_bits`, `w` signed of `weight_bits`.
    Mac {
        /// Activation bits (unsigned, zero point subtracted in the unit).
        act_bits: u32,
        /// Weight bits (two's complement).
        weight_bits: u32,
    },
    /// `acc += n - 2 * popcount(a ^ w)` on `n`-bit packed +-1 words.
    XnorPopcount {
        /// Word width.
        n: u32,
    },
    /// `acc += (a - za) * w` with `w` in {-1, 0, +1} as add/subtract/skip.
    TernaryAcc {
        /// Activation bits (unsigned, zero point subtracted in the unit).
        act_bits: u32,
    },
}

/// One hardware unit: a Verilog top module, its parameters and what it computes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// Stable name used in tables and file names, e.g. `shift_const`, `fixed_point`, `mac_int8`.
    pub name: String,
    /// Verilog top module.
    pub top: String,
    /// Requantizer or processing element.
    pub role: UnitRole,
    /// The Verilog source file (in `rtl/verilog`).
    pub verilog: PathBuf,
    /// Top-module parameters the unit is instantiated with (passed to Yosys and the testbench).
    pub params: BTreeMap<String, i64>,
    /// The arithmetic (ports and engine reference).
    pub kind: UnitKind,
    /// One-line description for reports.
    pub description: String,
    /// The Verilog text that is simulated and synthesized: the file embedded at build time for the
    /// catalogue's units, or the text read by [`Unit::with_verilog`].
    pub text: Cow<'static, str>,
}

/// The Verilog sources, embedded so the flow's hashes cover exactly what is simulated and built.
const SOURCES: &[(&str, &str)] = &[
    (
        "shift_requant.v",
        include_str!("../verilog/shift_requant.v"),
    ),
    (
        "fixed_point_requant.v",
        include_str!("../verilog/fixed_point_requant.v"),
    ),
    (
        "threshold_unit.v",
        include_str!("../verilog/threshold_unit.v"),
    ),
    (
        "multi_threshold_unit.v",
        include_str!("../verilog/multi_threshold_unit.v"),
    ),
    ("mac.v", include_str!("../verilog/mac.v")),
    (
        "xnor_popcount.v",
        include_str!("../verilog/xnor_popcount.v"),
    ),
    ("ternary_acc.v", include_str!("../verilog/ternary_acc.v")),
];

/// The representative constant shift of `shift_const`: DJQ's shifts are `fw + fa_in - fa_out`; with
/// 8-bit weights and activations a typical hidden layer has a shift around 8. The area of the constant
/// shifter is wiring whatever the value; only the rounding bit's position moves.
pub const SHIFT_CONST_S: u32 = 8;

/// Accumulator bits of the TNT requantizer (`tnt_requant`): wide enough for the ternary x u8 dot
/// products of up to [`TNT_MAX_TAPS`] taps.
pub const TNT_ACC_BITS: u32 = 21;

/// Activation bits of the TNT path: ternary weights over u8 activations.
pub const TNT_ACT_BITS: u32 = u8::BITS;

/// Most taps of a ternary-weight layer whose accumulators `tnt_requant` takes, derived from
/// [`TNT_ACC_BITS`] by bit growth: a term `(a - za) * w` with `|a - za| <= 2^8 - 1` and `w` in
/// {-1, 0, +1} has 8 magnitude bits, a sum of `n` terms `log2(n)` more, plus the sign bit, so
/// `n = 2^(TNT_ACC_BITS - 1 - 8)` = 4096 taps keep `|dot| <= 255 * n < 2^(TNT_ACC_BITS - 1)`,
/// the 21-bit two's-complement range; the bias has the remaining `2^20 - 255 * 4096` of headroom
/// (an accumulator outside the range is not simulated on the unit, see [`crate::sim`]).
pub const TNT_MAX_TAPS: usize = 1 << (TNT_ACC_BITS - 1 - TNT_ACT_BITS);

/// Directory of the Verilog sources.
pub fn verilog_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("verilog")
}

impl Unit {
    fn new(
        name: &str,
        file: &str,
        top: &str,
        kind: UnitKind,
        params: &[(&str, i64)],
        desc: &str,
    ) -> Self {
        let role = match kind {
            UnitKind::Mac { .. } | UnitKind::XnorPopcount { .. } | UnitKind::TernaryAcc { .. } => {
                UnitRole::ProcessingElement
            }
            _ => UnitRole::Requantizer,
        };
        let text = SOURCES
            .iter()
            .find(|(f, _)| *f == file)
            .map_or(Cow::Borrowed(""), |(_, s)| Cow::Borrowed(*s));
        Unit {
            text,
            name: name.to_string(),
            top: top.to_string(),
            role,
            verilog: verilog_dir().join(file),
            params: params.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            kind,
            description: desc.to_string(),
        }
    }

    /// The Verilog source text of the unit.
    pub fn source(&self) -> &str {
        &self.text
    }

    /// The same unit built from another Verilog file (a variant of the design, or a deliberately
    /// wrong copy in a test): same top, parameters and reference arithmetic.
    ///
    /// # Errors
    /// [`HwError::Io`] when the file cannot be read.
    pub fn with_verilog(mut self, path: &Path) -> Result<Unit> {
        let text = std::fs::read_to_string(path).map_err(|e| IoError::new("read", path, e))?;
        self.text = Cow::Owned(text);
        self.verilog = path.to_path_buf();
        Ok(self)
    }

    /// sha256 of everything that determines the unit's hardware: source, top and parameters.
    pub fn sha256(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.source().as_bytes());
        h.update(self.top.as_bytes());
        for (k, v) in &self.params {
            h.update(format!("\n{k}={v}").as_bytes());
        }
        h.finish()
    }
}

/// Every unit, in a stable order: requantizers first, then processing elements.
pub fn catalog() -> Vec<Unit> {
    use UnitKind::*;
    let s = i64::from(SHIFT_CONST_S);
    let tnt = i64::from(TNT_ACC_BITS);
    vec![
        Unit::new(
            "shift_var",
            "shift_requant.v",
            "shift_requant_var",
            ShiftVar,
            &[("ACCW", 32), ("OW", 9)],
            "DJQ power-of-two requantizer, shift a run-time input",
        ),
        Unit::new(
            "shift_const",
            "shift_requant.v",
            "shift_requant_const",
            ShiftConst {
                shift: SHIFT_CONST_S,
            },
            &[("ACCW", 32), ("OW", 9), ("S", s)],
            "DJQ power-of-two requantizer, constant shift S (a deployed layer)",
        ),
        Unit::new(
            "fixed_point",
            "fixed_point_requant.v",
            "fixed_point_requant",
            FixedPoint {
                acc_bits: 32,
                left_shift: true,
            },
            &[("ACCW", 32), ("OW", 9), ("LSHIFT", 1)],
            "TFLite/gemmlowp fixed-point requantizer (32x32 high multiply, rounding shift, zero point, clamp)",
        ),
        Unit::new(
            "tnt_requant",
            "fixed_point_requant.v",
            "fixed_point_requant",
            FixedPoint {
                acc_bits: TNT_ACC_BITS,
                left_shift: false,
            },
            &[("ACCW", tnt), ("OW", 9), ("LSHIFT", 0)],
            "TNT ternary x 8-bit path: fixed-point requantizer (alpha folded into M0) on 21-bit accumulators, right shifts only",
        ),
        Unit::new(
            "threshold",
            "threshold_unit.v",
            "threshold_unit",
            Threshold,
            &[("ACCW", 32)],
            "BNN sign threshold with per-channel threshold and flip",
        ),
        Unit::new(
            "multi_threshold_k2",
            "multi_threshold_unit.v",
            "multi_threshold_unit",
            MultiThreshold { k: 2 },
            &[("K", 2), ("ACCW", 32)],
            "QNN 2-bit multi-threshold (3 parallel comparators)",
        ),
        Unit::new(
            "multi_threshold_k4",
            "multi_threshold_unit.v",
            "multi_threshold_unit",
            MultiThreshold { k: 4 },
            &[("K", 4), ("ACCW", 32)],
            "QNN 4-bit multi-threshold (15 parallel comparators)",
        ),
        Unit::new(
            "mac_int8",
            "mac.v",
            "mac",
            Mac {
                act_bits: 8,
                weight_bits: 8,
            },
            &[("AW", 8), ("WW", 8), ("ACCW", 32)],
            "int8 x u8 MAC with input zero point, 32-bit accumulator",
        ),
        Unit::new(
            "mac_int4",
            "mac.v",
            "mac",
            Mac {
                act_bits: 4,
                weight_bits: 4,
            },
            &[("AW", 4), ("WW", 4), ("ACCW", 32)],
            "int4 x u4 MAC with input zero point, 32-bit accumulator",
        ),
        Unit::new(
            "mac_int2",
            "mac.v",
            "mac",
            Mac {
                act_bits: 2,
                weight_bits: 2,
            },
            &[("AW", 2), ("WW", 2), ("ACCW", 32)],
            "int2 x u2 MAC with input zero point, 32-bit accumulator",
        ),
        Unit::new(
            "xnor_popcount64",
            "xnor_popcount.v",
            "xnor_popcount",
            XnorPopcount { n: 64 },
            &[("N", 64), ("ACCW", 32)],
            "BNN 64-wide xnor-popcount accumulate",
        ),
        Unit::new(
            "ternary_acc",
            "ternary_acc.v",
            "ternary_acc",
            TernaryAcc {
                act_bits: TNT_ACT_BITS,
            },
            &[("AW", i64::from(TNT_ACT_BITS)), ("ACCW", 32)],
            "TNT ternary-weight add/subtract/skip accumulate over u8 activations",
        ),
    ]
}

/// The unit called `name`, if any.
pub fn by_name(name: &str) -> Option<Unit> {
    catalog().into_iter().find(|u| u.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_are_unique_and_sources_exist() {
        let units = catalog();
        let mut names: Vec<_> = units.iter().map(|u| u.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), units.len());
        for u in &units {
            assert!(u.verilog.is_file(), "{}", u.verilog.display());
            assert!(
                u.source().contains(&format!("module {}", u.top)),
                "{}",
                u.name
            );
        }
    }

    #[test]
    fn tnt_tap_limit_is_the_largest_power_of_two_whose_dot_fits() {
        let range = 1i64 << (TNT_ACC_BITS - 1);
        let max_term = (1i64 << TNT_ACT_BITS) - 1;
        let taps = TNT_MAX_TAPS as i64;
        assert!(max_term * taps < range);
        assert!(max_term * 2 * taps >= range);
        assert_eq!(TNT_MAX_TAPS, 4096);
    }

    #[test]
    fn hash_depends_on_parameters() {
        let a = by_name("mac_int8").unwrap();
        let b = by_name("mac_int4").unwrap();
        assert_eq!(a.source(), b.source());
        assert_ne!(a.sha256(), b.sha256());
    }
}
