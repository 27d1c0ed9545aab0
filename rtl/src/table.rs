//! The flow's result table ([`HwTable`]): one row per unit with its provenance, rendered as CSV
//! and Markdown, with the ratios of every requantizer to the two `Shift` requantizers.
//!
//! [`HwTable`] is serialisable and stable: the experiment runner reads it back (see
//! [`crate::energy::per_inference`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{HwError, Result};
use crate::sta::{Power, Timing};
use crate::units::UnitRole;

/// Unit the ratios are taken against: the deployed power-of-two requantizer (constant shift).
pub const SHIFT_CONST: &str = "shift_const";
/// Unit the ratios are taken against: the power-of-two requantizer with a run-time shift.
pub const SHIFT_VAR: &str = "shift_var";

/// What the absolute energies mean (printed beside every table of energies).
pub const ENERGY_CAVEAT: &str = "Absolute energies are high: this OpenSTA (2019 snapshot) sums \
rise and fall internal energies and counts clock-pin energy twice, and OSU 0.18 um has large pin \
capacitances. Ratios between units are robust.";

/// Where every figure of a row came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Liberty library file name (e.g. `osu018_stdcells.lib`).
    pub library: String,
    /// sha256 of the Liberty file.
    pub library_sha256: String,
    /// Tool name -> version string (`yosys`, `iverilog`, `sta`).
    pub tools: BTreeMap<String, String>,
    /// Clock frequency of the power figures, MHz.
    pub clock_mhz: f64,
    /// sha256 of the vector set the unit was co-simulated on and its activity measured with.
    pub vector_set_sha256: String,
    /// What the vector set holds (edge cases, random vectors, real operand streams and their source).
    pub vector_set: String,
    /// Version of the flow code (scripts and their parsers); part of the cache key.
    pub flow_version: String,
    /// The cache key of the row (sha256 of everything above, the unit's Verilog and parameters).
    pub cache_key: String,
}

/// Result of the optional OpenROAD step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum OpenRoad {
    /// Not run; the reason (e.g. "openroad not installed").
    NotRun {
        /// Why.
        reason: String,
    },
    /// Ran: post-route figures.
    Ran {
        /// OpenROAD's version.
        version: String,
        /// Post-route design area, um^2.
        area_um2: f64,
        /// Post-route total power at the configured clock, W (OpenROAD's default activity).
        power_w: f64,
    },
}

impl OpenRoad {
    /// Short text for tables.
    pub fn label(&self) -> String {
        match self {
            OpenRoad::NotRun { reason } => format!("not run: {reason}"),
            OpenRoad::Ran {
                area_um2, power_w, ..
            } => format!("post-route {area_um2:.0} um^2, {:.4} mW", power_w * 1e3),
        }
    }
}

/// Co-simulation that the row's figures passed (a divergence stops the flow before STA).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CosimSummary {
    /// Vectors matched bit for bit against the engine by the RTL.
    pub rtl_vectors: u64,
    /// Vectors matched bit for bit against the engine by the gate-level netlist.
    pub netlist_vectors: u64,
}

/// Everything measured for one unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    /// Unit name (e.g. `fixed_point`, `mac_int8`).
    pub unit: String,
    /// Requantizer or processing element (stored as `requantizer` or `processing_element`).
    pub role: UnitRole,
    /// Verilog parameters the unit was built with.
    pub params: BTreeMap<String, i64>,
    /// Standard cells after synthesis.
    pub cells: u64,
    /// Cell area, um^2 (Yosys `stat -liberty`).
    pub area_um2: f64,
    /// Cell type -> count.
    pub cell_counts: BTreeMap<String, u64>,
    /// Worst setup path and fastest clock met.
    pub timing: Timing,
    /// Power with activity from gate-level simulation of the vector set.
    pub simulated: Power,
    /// Power with OpenSTA's vectorless activity propagation (labelled as such).
    pub vectorless: Power,
    /// Co-simulation the unit passed.
    pub cosim: CosimSummary,
    /// OpenROAD step.
    pub openroad: OpenRoad,
    /// Where every figure came from.
    pub provenance: Provenance,
    /// True when this row was read from the cache (no tool ran for it); not stored.
    #[serde(skip)]
    pub from_cache: bool,
}

/// The flow's table: one row per unit, in catalog order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HwTable {
    /// The rows.
    pub rows: Vec<UnitResult>,
}

/// A requantizer's cost relative to a `Shift` requantizer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    /// The requantizer.
    pub unit: String,
    /// The reference (`shift_const` or `shift_var`).
    pub reference: String,
    /// Area ratio.
    pub area: f64,
    /// Energy-per-op ratio, simulated activity.
    pub energy_simulated: f64,
    /// Energy-per-op ratio, vectorless activity.
    pub energy_vectorless: f64,
}

impl HwTable {
    /// The row of `unit`.
    ///
    /// # Errors
    /// [`HwError::Unit`] when the table has no such row.
    pub fn row(&self, unit: &str) -> Result<&UnitResult> {
        self.rows
            .iter()
            .find(|r| r.unit == unit)
            .ok_or_else(|| HwError::Unit {
                unit: unit.to_string(),
                detail: format!(
                    "not in the hardware table (it has: {})",
                    self.rows
                        .iter()
                        .map(|r| r.unit.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
    }

    /// Ratios of every requantizer to `shift_const` and `shift_var` (those present in the table).
    pub fn ratios(&self) -> Vec<Ratio> {
        let refs: Vec<&UnitResult> = [SHIFT_CONST, SHIFT_VAR]
            .iter()
            .filter_map(|n| self.rows.iter().find(|r| r.unit == *n))
            .collect();
        let mut out = Vec::new();
        for r in self.rows.iter().filter(|r| r.role == UnitRole::Requantizer) {
            for base in refs.iter().filter(|b| b.unit != r.unit) {
                out.push(Ratio {
                    unit: r.unit.clone(),
                    reference: base.unit.clone(),
                    area: r.area_um2 / base.area_um2,
                    energy_simulated: r.simulated.energy_per_op_pj
                        / base.simulated.energy_per_op_pj,
                    energy_vectorless: r.vectorless.energy_per_op_pj
                        / base.vectorless.energy_per_op_pj,
                });
            }
        }
        out
    }

    /// The table as CSV: one row per unit, the ratio columns filled for requantizers.
    ///
    /// # Errors
    /// [`HwError::Parse`] if the CSV writer fails (it writes to memory, so only on a bug).
    pub fn to_csv(&self) -> Result<String> {
        let csv_err = |e: csv::Error| HwError::Parse {
            what: "CSV table".into(),
            path: "hw.csv".into(),
            detail: e.to_string(),
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<String> = [
            "unit",
            "role",
            "cells",
            "area_um2",
            "critical_path_ns",
            "fmax_mhz",
            "clock_mhz",
            "energy_per_op_simulated_pj",
            "energy_per_op_vectorless_pj",
        ]
        .map(String::from)
        .to_vec();
        for base in [SHIFT_CONST, SHIFT_VAR] {
            for what in ["area", "energy_simulated", "energy_vectorless"] {
                header.push(format!("{what}_vs_{base}"));
            }
        }
        header.extend(
            [
                "library",
                "library_sha256",
                "tools",
                "vector_set_sha256",
                "openroad",
            ]
            .map(String::from),
        );
        w.write_record(&header).map_err(csv_err)?;
        let ratios = self.ratios();
        for r in &self.rows {
            let mut rec = vec![
                r.unit.clone(),
                r.role.name().to_string(),
                r.cells.to_string(),
                format!("{:.1}", r.area_um2),
                format!("{:.4}", r.timing.critical_path_ns),
                format!("{:.2}", r.timing.fmax_mhz),
                format!("{}", r.provenance.clock_mhz),
                format!("{:.4}", r.simulated.energy_per_op_pj),
                format!("{:.4}", r.vectorless.energy_per_op_pj),
            ];
            for base in [SHIFT_CONST, SHIFT_VAR] {
                match ratios
                    .iter()
                    .find(|x| x.unit == r.unit && x.reference == base)
                {
                    Some(x) => rec.extend([
                        format!("{:.3}", x.area),
                        format!("{:.3}", x.energy_simulated),
                        format!("{:.3}", x.energy_vectorless),
                    ]),
                    None => rec.extend([String::new(), String::new(), String::new()]),
                }
            }
            rec.extend([
                r.provenance.library.clone(),
                r.provenance.library_sha256.clone(),
                tools_label(&r.provenance.tools),
                r.provenance.vector_set_sha256.clone(),
                r.openroad.label(),
            ]);
            w.write_record(&rec).map_err(csv_err)?;
        }
        let bytes = w.into_inner().map_err(|e| csv_err(e.into_error().into()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The table as Markdown: units, requantizer ratios, and a provenance footer.
    pub fn to_markdown(&self) -> String {
        let mut s = String::new();
        s.push_str(
            "| unit | role | cells | area um^2 | critical path ns | fmax MHz | energy/op simulated pJ | energy/op vectorless pJ |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let met = if r.timing.meets_clock() {
                ""
            } else {
                " (clock not met)"
            };
            writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.3} | {:.1}{met} | {:.3} | {:.3} |",
                r.unit,
                r.role.name().replace('_', " "),
                r.cells,
                r.area_um2,
                r.timing.critical_path_ns,
                r.timing.fmax_mhz,
                r.simulated.energy_per_op_pj,
                r.vectorless.energy_per_op_pj
            )
            .ok();
        }
        let ratios = self.ratios();
        if !ratios.is_empty() {
            s.push_str(
                "\nRequantizers relative to the power-of-two (`Shift`) requantizers:\n\n\
                 | requantizer | vs | area | energy/op simulated | energy/op vectorless |\n\
                 |---|---|---:|---:|---:|\n",
            );
            for x in &ratios {
                writeln!(
                    s,
                    "| {} | {} | {:.2}x | {:.2}x | {:.2}x |",
                    x.unit, x.reference, x.area, x.energy_simulated, x.energy_vectorless
                )
                .ok();
            }
        }
        s.push('\n');
        s.push_str(&self.provenance_footer());
        s
    }

    /// Provenance shared by the rows (library, tools, clock, activity, vectors), and what differs.
    pub fn provenance_footer(&self) -> String {
        let mut s = String::new();
        let Some(first) = self.rows.first() else {
            return "No units.\n".into();
        };
        let p = &first.provenance;
        writeln!(
            s,
            "Provenance: library {} (sha256 {}); tools {}; power at {} MHz; flow {}.",
            p.library,
            p.library_sha256,
            tools_label(&p.tools),
            p.clock_mhz,
            p.flow_version
        )
        .ok();
        writeln!(
            s,
            "Activity: simulated = per-net toggle counts of the synthesized netlist simulated \
             (Icarus, library cell models) on each unit's vector set; vectorless = {}.",
            first.vectorless.activity.label()
        )
        .ok();
        writeln!(s, "Energy/op = total power x clock period. {ENERGY_CAVEAT}").ok();
        s.push_str("Vector sets (sha256):");
        for r in &self.rows {
            write!(
                s,
                " {} {};",
                r.unit,
                &r.provenance.vector_set_sha256[..r.provenance.vector_set_sha256.len().min(12)]
            )
            .ok();
        }
        s.push('\n');
        let sets: std::collections::BTreeSet<&str> = self
            .rows
            .iter()
            .map(|r| r.provenance.vector_set.as_str())
            .collect();
        for v in sets {
            writeln!(s, "Vectors: {v}.").ok();
        }
        let differing = self
            .rows
            .iter()
            .filter(|r| {
                r.provenance.library_sha256 != p.library_sha256
                    || r.provenance.tools != p.tools
                    || r.provenance.clock_mhz != p.clock_mhz
            })
            .map(|r| r.unit.as_str())
            .collect::<Vec<_>>();
        if !differing.is_empty() {
            writeln!(
                s,
                "Rows with other library/tools/clock (see the JSON): {}.",
                differing.join(", ")
            )
            .ok();
        }
        let openroad: std::collections::BTreeSet<String> =
            self.rows.iter().map(|r| r.openroad.label()).collect();
        writeln!(
            s,
            "OpenROAD: {}.",
            openroad.into_iter().collect::<Vec<_>>().join("; ")
        )
        .ok();
        s
    }
}

/// `name version, ...`.
fn tools_label(tools: &BTreeMap<String, String>) -> String {
    tools
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}
