//! Energy per inference of a [`QGraph`]: the engine's operation counts ([`count_ops`]) times the
//! measured energy per operation of the unit that performs each operation ([`HwTable`]).
//!
//! Mapping to the units of [`crate::units::catalog`] (one unit operation per count unless stated):
//! - MACs `wint<b>_a<u|i><c>` -> the narrowest `Mac` unit with at least `b` weight and `c`
//!   activation bits (`mac_int8`, `mac_int4`, `mac_int2`);
//! - `wter_a<act>` and `wbin_a<act>` (ternary or +-1 weights over integer activations) ->
//!   `ternary_acc` (add, subtract or skip: no multiplier);
//! - `wbin_abin` (xnor-popcount MACs) -> `xnor_popcount64`, one operation per 64 binary MACs;
//! - requantizers: `Shift` per tensor -> `shift_const` (a deployed layer's shift is a constant),
//!   `Shift` per channel -> `shift_var` (the shift comes from a parameter memory at run time),
//!   `FixedPoint` -> `fixed_point` (`tnt_requant`, its 21-bit-accumulator variant, after a
//!   ternary-weight layer), `Threshold` -> `threshold`, `MultiThreshold` with `2^k - 1`
//!   thresholds -> `multi_threshold_k<k>`.
//!
//! An operation kind without a unit, or a unit missing from the table, is an error naming it:
//! never a silent zero. Pooling, ReLU and residual additions have no unit in the catalog: they are
//! listed with their counts under [`EnergyReport::not_costed`], and memory access energy is out of
//! scope ([`SCOPE`]).

use std::collections::BTreeMap;

use qbench_engine::node::Op;
use qbench_engine::{QGraph, Requant, WeightKind, count_ops};
use serde::{Deserialize, Serialize};

use crate::error::{HwError, Result};
use crate::table::HwTable;
use crate::units::{self, Unit, UnitKind};

/// What the energy per inference covers (printed with every report).
pub const SCOPE: &str = "Compute units only: memory access energy (weights, activations, \
parameters) is out of scope, as are pooling, ReLU and residual additions (listed as not costed).";

/// Binary MACs one `xnor_popcount` operation performs.
pub const XNOR_WIDTH: u64 = 64;

/// Energy of every operation of one kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindEnergy {
    /// Operation kind: `mac:<count key>` or `requant:<kind>` (e.g. `mac:wint8_au8`).
    pub kind: String,
    /// The unit that performs it.
    pub unit: String,
    /// Operations counted by the engine (MACs or requantizations) per inference.
    pub ops: u64,
    /// Unit operations (clock cycles of the unit): `ops`, or `ops / 64` for xnor-popcount.
    pub unit_ops: f64,
    /// Energy per unit operation, simulated activity, pJ.
    pub pj_per_unit_op_simulated: f64,
    /// Energy per unit operation, vectorless activity, pJ.
    pub pj_per_unit_op_vectorless: f64,
    /// Energy per inference, simulated activity, pJ.
    pub simulated_pj: f64,
    /// Energy per inference, vectorless activity, pJ.
    pub vectorless_pj: f64,
}

/// Energy of one node (layer).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeEnergy {
    /// Node id.
    pub index: usize,
    /// Node name.
    pub name: String,
    /// Operation name.
    pub op: String,
    /// Operation kind (as in [`KindEnergy::kind`]), if the node is costed.
    pub kind: Option<String>,
    /// The unit, if the node is costed.
    pub unit: Option<String>,
    /// Unit operations per inference.
    pub unit_ops: f64,
    /// Energy per inference, simulated activity, pJ.
    pub simulated_pj: f64,
    /// Energy per inference, vectorless activity, pJ.
    pub vectorless_pj: f64,
}

/// Energy per inference of a graph with its breakdown by operation kind and by node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// Total, simulated activity, pJ per inference.
    pub total_simulated_pj: f64,
    /// Total, vectorless activity, pJ per inference.
    pub total_vectorless_pj: f64,
    /// By operation kind, in first-seen node order.
    pub by_kind: Vec<KindEnergy>,
    /// By node, in node order (every node, costed or not).
    pub by_node: Vec<NodeEnergy>,
    /// Operations with no unit (pooling, ReLU, residual add) and their counts per inference.
    pub not_costed: BTreeMap<String, u64>,
    /// Clock of the unit energies, MHz.
    pub clock_mhz: f64,
    /// Library of the unit energies.
    pub library: String,
    /// What the figure covers ([`SCOPE`]).
    pub scope: String,
}

/// The unit of `catalog` for a MAC count key (`w<weights>_a<activations>`) and how many MACs one
/// unit operation performs.
///
/// # Errors
/// [`HwError::UnmappedOp`] naming the key when no unit performs it.
pub fn mac_unit(key: &str, catalog: &[Unit]) -> Result<(String, u64)> {
    let unmapped = |why: &str| HwError::UnmappedOp {
        kind: format!("mac:{key}"),
        detail: why.to_string(),
    };
    let (w, a) = key
        .strip_prefix('w')
        .and_then(|k| k.split_once("_a"))
        .ok_or_else(|| unmapped("not a `w<weights>_a<activations>` key"))?;
    if w == "bin" && a == "bin" {
        return catalog
            .iter()
            .find_map(|u| match u.kind {
                UnitKind::XnorPopcount { n } => Some((u.name.clone(), u64::from(n))),
                _ => None,
            })
            .ok_or_else(|| unmapped("no xnor-popcount unit in the catalog"));
    }
    let act_bits: u32 = a
        .strip_prefix(['u', 'i'])
        .and_then(|b| b.parse().ok())
        .ok_or_else(|| unmapped("activations are not a narrow integer"))?;
    let found = match w {
        // +-1 or {-1, 0, +1} weights over integer activations: add, subtract or skip.
        "ter" | "bin" => catalog
            .iter()
            .filter(|u| u.kind == UnitKind::TernaryAcc && act_bits <= unit_act_bits(u))
            .map(|u| (u.name.clone(), 1))
            .next(),
        _ => {
            let bits: u32 = w
                .strip_prefix("int")
                .and_then(|b| b.parse().ok())
                .ok_or_else(|| unmapped("unknown weight kind"))?;
            catalog
                .iter()
                .filter_map(|u| match u.kind {
                    UnitKind::Mac {
                        act_bits: ua,
                        weight_bits: uw,
                    } if bits <= uw && act_bits <= ua => Some((uw, ua, &u.name)),
                    _ => None,
                })
                .min()
                .map(|(_, _, name)| (name.clone(), 1))
        }
    };
    found.ok_or_else(|| unmapped("no unit in the catalog is wide enough"))
}

/// Activation width of a unit (its `AW` parameter; 8 when it has none).
fn unit_act_bits(u: &Unit) -> u32 {
    u.params
        .get("AW")
        .and_then(|&b| u32::try_from(b).ok())
        .unwrap_or(8)
}

/// The unit of `catalog` for the requantizer of node `index` of `graph`.
///
/// # Errors
/// [`HwError::UnmappedOp`] when no catalog unit implements it (e.g. a multi-threshold whose `k`
/// has no unit).
pub fn requant_unit(graph: &QGraph, index: usize, r: &Requant, catalog: &[Unit]) -> Result<String> {
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

/// Whether node `index` requantizes the accumulators of a ternary-weight layer (TNT's path, whose
/// accumulators are narrow enough for the 21-bit `tnt_requant`: at most 4096 taps).
fn after_ternary(graph: &QGraph, index: usize) -> bool {
    let Some(&p) = graph.nodes[index].inputs.first() else {
        return false;
    };
    match &graph.nodes[p].op {
        Op::Conv2d(c) => {
            c.weight_kind == WeightKind::Ternary
                && c.in_channels / c.groups * c.kernel_h * c.kernel_w <= 4096
        }
        Op::Dense(d) => d.weight_kind == WeightKind::Ternary && d.in_features <= 4096,
        _ => false,
    }
}

/// Energy per inference of `graph` with the unit energies of `table`.
///
/// # Errors
/// [`HwError::UnmappedOp`] when an operation kind has no unit; [`HwError::Unit`] when its unit is
/// not in `table` (run the flow for it).
pub fn per_inference(graph: &QGraph, table: &HwTable) -> Result<EnergyReport> {
    let counts = count_ops(graph);
    let catalog = units::catalog();
    let mut by_kind: Vec<KindEnergy> = Vec::new();
    let mut by_node = Vec::with_capacity(counts.nodes.len());
    let mut not_costed = BTreeMap::new();
    for (node, row) in graph.nodes.iter().zip(&counts.nodes) {
        let costed = match (&node.op, &row.mac_kind) {
            (Op::Requant(r), _) => Some((
                format!("requant:{}", r.requant.kind_name()),
                requant_unit(graph, row.index, &r.requant, &catalog)?,
                row.requant_ops,
                1,
            )),
            (_, Some(key)) => {
                let (unit, per_op) = mac_unit(key, &catalog)?;
                Some((format!("mac:{key}"), unit, row.macs, per_op))
            }
            _ => None,
        };
        for (k, v) in &row.other_ops {
            *not_costed.entry(k.clone()).or_insert(0) += v;
        }
        let mut ne = NodeEnergy {
            index: row.index,
            name: row.name.clone(),
            op: row.op.clone(),
            kind: None,
            unit: None,
            unit_ops: 0.0,
            simulated_pj: 0.0,
            vectorless_pj: 0.0,
        };
        if let Some((kind, unit, ops, per_op)) = costed {
            let u = table.row(&unit)?;
            let unit_ops = ops as f64 / per_op as f64;
            let (es, ev) = (u.simulated.energy_per_op_pj, u.vectorless.energy_per_op_pj);
            ne.unit_ops = unit_ops;
            ne.simulated_pj = unit_ops * es;
            ne.vectorless_pj = unit_ops * ev;
            match by_kind
                .iter_mut()
                .find(|k| k.kind == kind && k.unit == unit)
            {
                Some(k) => {
                    k.ops += ops;
                    k.unit_ops += unit_ops;
                    k.simulated_pj += ne.simulated_pj;
                    k.vectorless_pj += ne.vectorless_pj;
                }
                None => by_kind.push(KindEnergy {
                    kind: kind.clone(),
                    unit: unit.clone(),
                    ops,
                    unit_ops,
                    pj_per_unit_op_simulated: es,
                    pj_per_unit_op_vectorless: ev,
                    simulated_pj: ne.simulated_pj,
                    vectorless_pj: ne.vectorless_pj,
                }),
            }
            ne.kind = Some(kind);
            ne.unit = Some(unit);
        }
        by_node.push(ne);
    }
    let first = table.rows.first();
    Ok(EnergyReport {
        total_simulated_pj: by_kind.iter().map(|k| k.simulated_pj).sum(),
        total_vectorless_pj: by_kind.iter().map(|k| k.vectorless_pj).sum(),
        by_kind,
        by_node,
        not_costed,
        clock_mhz: first.map_or(0.0, |r| r.provenance.clock_mhz),
        library: first.map_or_else(String::new, |r| r.provenance.library.clone()),
        scope: SCOPE.to_string(),
    })
}

impl EnergyReport {
    /// The report as Markdown: total, breakdown by kind and by costed node, and the scope note.
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        writeln!(
            s,
            "Energy per inference: {:.1} nJ (simulated activity), {:.1} nJ (vectorless), \
             {} at {} MHz.\n",
            self.total_simulated_pj / 1e3,
            self.total_vectorless_pj / 1e3,
            self.library,
            self.clock_mhz
        )
        .ok();
        s.push_str(
            "| operation | unit | ops | unit ops | pJ/op simulated | simulated nJ | share | vectorless nJ |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for k in &self.by_kind {
            writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.3} | {:.2} | {:.1}% | {:.2} |",
                k.kind,
                k.unit,
                k.ops,
                k.unit_ops,
                k.pj_per_unit_op_simulated,
                k.simulated_pj / 1e3,
                100.0 * k.simulated_pj / self.total_simulated_pj.max(f64::MIN_POSITIVE),
                k.vectorless_pj / 1e3
            )
            .ok();
        }
        s.push_str("\n| node | op | unit | unit ops | simulated nJ | vectorless nJ |\n|---|---|---|---:|---:|---:|\n");
        for n in self.by_node.iter().filter(|n| n.unit.is_some()) {
            writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} |",
                n.name,
                n.op,
                n.unit.as_deref().unwrap_or(""),
                n.unit_ops,
                n.simulated_pj / 1e3,
                n.vectorless_pj / 1e3
            )
            .ok();
        }
        if !self.not_costed.is_empty() {
            let list: Vec<String> = self
                .not_costed
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            writeln!(s, "\nNot costed (no unit): {}.", list.join(", ")).ok();
        }
        writeln!(s, "\n{}", self.scope).ok();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_keys_map_to_the_narrowest_fitting_unit() {
        let c = units::catalog();
        let m = |k| mac_unit(k, &c).unwrap();
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
    fn unmapped_mac_keys_are_errors_naming_them() {
        let c = units::catalog();
        for key in ["wint16_au8", "wint8_ai32", "wfoo_au8", "garbage"] {
            let err = mac_unit(key, &c).unwrap_err().to_string();
            assert!(err.contains(key), "{err}");
        }
    }
}
