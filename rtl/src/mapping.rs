//! The one mapping from the engine's operations to the hardware units that perform them
//! ([`node_unit`]): energy per inference ([`crate::energy`]), the operand streams a unit's
//! activity is measured on ([`crate::activity`]) and the graph vectors of the co-simulation
//! ([`crate::vectors::VectorSet::from_graph`]) all call it, so they cannot disagree.
//!
//! Mapping to the units of [`crate::units::catalog`] (one unit operation per engine operation
//! unless stated), by the typed [`MacKind`] of the engine's counts and the node's [`Requant`]:
//! - integer weights over narrow integer activations -> the narrowest `Mac` unit with at least
//!   the weight and activation bits (`mac_int8`, `mac_int4`, `mac_int2`);
//! - ternary or +-1 weights over narrow integer activations -> `ternary_acc` (add, subtract or
//!   skip: no multiplier);
//! - +-1 weights over +-1 activations (xnor-popcount MACs) -> `xnor_popcount64`, one operation
//!   per 64 binary MACs (the unit's width);
//! - requantizers: `Shift` per tensor -> `shift_const` (a deployed layer's shift is a constant),
//!   `Shift` per channel -> `shift_var` (the shift comes from a parameter memory at run time),
//!   `FixedPoint` -> `fixed_point` (`tnt_requant`, its [`TNT_ACC_BITS`](crate::units::TNT_ACC_BITS)-bit-accumulator variant,
//!   after a ternary-weight layer of at most [`TNT_MAX_TAPS`] taps), `Threshold` -> `threshold`,
//!   `MultiThreshold` with `2^k - 1` thresholds -> `multi_threshold_k<k>`.
//!
//! An operation kind without a unit is an error naming it ([`HwError::UnmappedOp`]), never a
//! silent zero. Pooling, ReLU, residual additions and views have no unit.

use qbench_engine::counts::NodeCounts;
use qbench_engine::node::Op;
use qbench_engine::{DType, MacKind, QGraph, Requant, WeightKind};

use crate::energy::Category;
use crate::error::{HwError, Result};
use crate::units::{TNT_MAX_TAPS, Unit, UnitKind};

/// How one node is costed: its operation kind, the unit and how many of its operations one unit
/// operation performs.
#[derive(Clone, Debug, PartialEq)]
pub struct Costed {
    /// `mac:<mac kind>` or `requant:<kind>` (e.g. `mac:wint8_au8`, `requant:shift`).
    pub kind: String,
    /// The catalog unit.
    pub unit: String,
    /// Compute or requantization.
    pub category: Category,
    /// Engine operations of the node per inference.
    pub ops: u64,
    /// Engine operations per unit operation (64 for xnor-popcount, else 1).
    pub per_op: u64,
}

/// The unit that performs node `row.index` of `graph` (`row` its counts), if any (pooling, ReLU,
/// residual adds, views have none).
///
/// # Errors
/// [`HwError::UnmappedOp`] when the node's operation has no unit in `catalog`.
pub fn node_unit(graph: &QGraph, row: &NodeCounts, catalog: &[Unit]) -> Result<Option<Costed>> {
    let node = &graph.nodes[row.index];
    Ok(match (&node.op, &row.mac_kind) {
        (Op::Requant(r), _) => Some(Costed {
            kind: format!("requant:{}", r.requant.kind_name()),
            unit: requant_unit(graph, row.index, &r.requant, catalog)?,
            category: Category::Requantization,
            ops: row.requant_ops,
            per_op: 1,
        }),
        (_, Some(mac)) => {
            let (unit, per_op) = mac_unit(mac, catalog)?;
            Some(Costed {
                kind: format!("mac:{mac}"),
                unit,
                category: Category::Compute,
                ops: row.macs,
                per_op,
            })
        }
        _ => None,
    })
}

/// The unit of `catalog` for MACs of `kind` and how many MACs one unit operation performs.
fn mac_unit(kind: &MacKind, catalog: &[Unit]) -> Result<(String, u64)> {
    let unmapped = |why: &str| HwError::UnmappedOp {
        kind: format!("mac:{kind}"),
        detail: why.to_string(),
    };
    let act_bits = match (kind.weights(), kind.acts()) {
        (WeightKind::Binary, DType::Binary) => {
            return catalog
                .iter()
                .find_map(|u| match u.kind {
                    UnitKind::XnorPopcount { n } => Some((u.name.clone(), u64::from(n))),
                    _ => None,
                })
                .ok_or_else(|| unmapped("no xnor-popcount unit in the catalog"));
        }
        (_, DType::Unsigned { bits } | DType::Signed { bits }) => u32::from(bits),
        _ => return Err(unmapped("activations are not a narrow integer")),
    };
    let found = match kind.weights() {
        // +-1 or {-1, 0, +1} weights over integer activations: add, subtract or skip.
        WeightKind::Ternary | WeightKind::Binary => catalog.iter().find_map(|u| match u.kind {
            UnitKind::TernaryAcc { act_bits: ua } if act_bits <= ua => Some((u.name.clone(), 1)),
            _ => None,
        }),
        WeightKind::Int { bits } => catalog
            .iter()
            .filter_map(|u| match u.kind {
                UnitKind::Mac {
                    act_bits: ua,
                    weight_bits: uw,
                } if u32::from(bits) <= uw && act_bits <= ua => Some((uw, ua, &u.name)),
                _ => None,
            })
            .min()
            .map(|(_, _, name)| (name.clone(), 1)),
    };
    found.ok_or_else(|| unmapped("no unit in the catalog is wide enough"))
}

/// The unit of `catalog` for the requantizer `r` of node `index` of `graph`.
fn requant_unit(graph: &QGraph, index: usize, r: &Requant, catalog: &[Unit]) -> Result<String> {
    let name = match r {
        Requant::Shift { shift, .. } if shift.len() == 1 => "shift_const".to_string(),
        Requant::Shift { .. } => "shift_var".to_string(),
        Requant::FixedPoint { .. } if after_ternary(graph, index) => "tnt_requant".to_string(),
        Requant::FixedPoint { .. } => "fixed_point".to_string(),
        Requant::Threshold { .. } => "threshold".to_string(),
        Requant::MultiThreshold { thresholds, flip } => {
            let levels = thresholds.len() / flip.len().max(1);
            if levels == 0 || !(levels + 1).is_power_of_two() {
                return Err(HwError::UnmappedOp {
                    kind: "requant:multi_threshold".into(),
                    detail: format!("{levels} thresholds per channel is not 2^k - 1"),
                });
            }
            format!("multi_threshold_k{}", (levels + 1).trailing_zeros())
        }
    };
    if catalog.iter().any(|u| u.name == name) {
        Ok(name)
    } else {
        Err(HwError::UnmappedOp {
            kind: format!("requant:{}", r.kind_name()),
            detail: format!("its unit `{name}` is not in the catalog"),
        })
    }
}

/// Whether node `index` requantizes the accumulators of a ternary-weight layer narrow enough for
/// `tnt_requant` (TNT's path: at most [`TNT_MAX_TAPS`] taps, derived from the unit's accumulator
/// width).
fn after_ternary(graph: &QGraph, index: usize) -> bool {
    let Some(&p) = graph.nodes[index].inputs.first() else {
        return false;
    };
    match &graph.nodes[p].op {
        Op::Conv2d(c) => {
            c.weight_kind == WeightKind::Ternary
                && c.in_channels / c.groups * c.kernel_h * c.kernel_w <= TNT_MAX_TAPS
        }
        Op::Dense(d) => d.weight_kind == WeightKind::Ternary && d.in_features <= TNT_MAX_TAPS,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units;

    fn kind(key: &str) -> MacKind {
        key.parse().unwrap()
    }

    #[test]
    fn mac_kinds_map_to_the_narrowest_fitting_unit() {
        let c = units::catalog();
        let m = |k| mac_unit(&kind(k), &c).unwrap();
        assert_eq!(m("wint8_au8"), ("mac_int8".into(), 1));
        assert_eq!(m("wint4_au4"), ("mac_int4".into(), 1));
        assert_eq!(m("wint3_au4"), ("mac_int4".into(), 1));
        assert_eq!(m("wint4_au8"), ("mac_int8".into(), 1));
        assert_eq!(m("wint2_au2"), ("mac_int2".into(), 1));
        assert_eq!(m("wter_au8"), ("ternary_acc".into(), 1));
        assert_eq!(m("wbin_au8"), ("ternary_acc".into(), 1));
        assert_eq!(m("wbin_abin"), ("xnor_popcount64".into(), 64));
    }

    #[test]
    fn unmapped_mac_kinds_are_errors_naming_them() {
        let c = units::catalog();
        for key in ["wint16_au8", "wint8_ai32", "wter_abin"] {
            let err = mac_unit(&kind(key), &c).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
