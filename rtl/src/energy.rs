//! Energy per inference of a [`QGraph`]: the engine's operation counts ([`count_ops`]) times the
//! measured energy per operation of the unit that performs each operation ([`HwTable`]).
//!
//! Which unit performs each operation is decided by [`crate::mapping::node_unit`], the one mapping
//! from engine operations to units.
//!
//! Each unit's energy per operation comes from its switching activity on **this graph's own
//! operand streams** ([`GraphActivity`], measured by [`crate::activity::measure`]): no graph's
//! energy uses an activity measured on another graph, and every [`KindEnergy`] names its source.
//! Memory access energy (weights read, activations read and written) comes from
//! [`crate::memory::MemoryModel`] and is part of every total.
//!
//! An operation kind without a unit, or a unit missing from the table or the activity, is an
//! error naming it: never a silent zero. Pooling, ReLU and residual additions have no unit in the
//! catalog: they are listed with their counts under [`EnergyReport::not_costed`].

use std::collections::BTreeMap;

use qbench_engine::{QGraph, count_ops};
use serde::{Deserialize, Serialize};

use crate::error::{HwError, Result};
use crate::flow::StreamEnergy;
use crate::mapping::node_unit;
use crate::memory::{MemoryModel, StoreTraffic};
use crate::table::HwTable;
use crate::units;

/// What the energy per inference covers (printed with every report).
pub const SCOPE: &str = "Processing elements and requantizers, with switching activity simulated \
on this graph's own operand streams, plus memory access energy (weights and parameters read, \
activations read and written, at their packed bit widths); pooling, ReLU and residual additions \
have no unit and are listed as not costed.";

/// What part of the silicon an energy belongs to (the stacked breakdown of the figures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Processing elements (MACs, xnor-popcount, ternary accumulate).
    Compute,
    /// Requantizers.
    Requantization,
    /// Memory accesses.
    Memory,
}

impl Category {
    /// Every category, in stacking order.
    pub const ALL: [Category; 3] = [
        Category::Compute,
        Category::Requantization,
        Category::Memory,
    ];

    /// The name used in records and figures.
    pub fn name(self) -> &'static str {
        match self {
            Category::Compute => "compute",
            Category::Requantization => "requantization",
            Category::Memory => "memory",
        }
    }
}

/// Where the energy per operation of a [`KindEnergy`] came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ActivitySource {
    /// Gate-level simulation of the unit on the operand streams of this graph.
    Graph {
        /// sha256 of the graph file whose streams were simulated.
        graph_sha256: String,
        /// Test images the engine ran to capture them.
        images: usize,
        /// Unit operations simulated (each checked against the engine).
        ops: u64,
    },
    /// A per-bit memory energy ([`crate::memory`]): no switching activity is involved.
    MemoryModel {
        /// The memory (`sram_<kib>kib` or `dram`).
        level: String,
        /// Bits the store holds.
        capacity_bits: u64,
    },
}

/// Energy of every operation of one kind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KindEnergy {
    /// Operation kind: `mac:<count key>`, `requant:<kind>` or `memory:<store>` (e.g.
    /// `mac:wint8_au8`, `memory:weights`).
    pub kind: String,
    /// The unit that performs it (for memory: the level, `sram_32kib` or `dram`).
    pub unit: String,
    /// Compute, requantization or memory.
    pub category: Category,
    /// Where its energy per operation came from.
    pub activity: ActivitySource,
    /// Operations counted by the engine (MACs, requantizations, or bits moved) per inference.
    pub ops: u64,
    /// Unit operations (clock cycles of the unit): `ops`, or `ops / 64` for xnor-popcount; bits
    /// for memory.
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
    /// Memory access energy of the node's weights and activations, pJ.
    pub memory_pj: f64,
}

/// Energy per inference of a graph with its breakdown by operation kind and by node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// Total (units with the graph's simulated activity, plus memory), pJ per inference.
    pub total_simulated_pj: f64,
    /// Total with the units' vectorless activity (plus memory), pJ per inference.
    pub total_vectorless_pj: f64,
    /// Simulated total split into compute, requantization and memory, pJ.
    pub by_category: BTreeMap<Category, f64>,
    /// By operation kind, in first-seen node order, then the three memory stores.
    pub by_kind: Vec<KindEnergy>,
    /// By node, in node order (every node, costed or not).
    pub by_node: Vec<NodeEnergy>,
    /// Operations with no unit (pooling, ReLU, residual add) and their counts per inference.
    pub not_costed: BTreeMap<String, u64>,
    /// Clock of the unit energies, MHz.
    pub clock_mhz: f64,
    /// Library of the unit energies.
    pub library: String,
    /// sha256 of the graph costed (whose own streams gave every unit's activity).
    pub graph_sha256: String,
    /// Test images run to capture those streams.
    pub activity_images: usize,
    /// The memory stores' traffic.
    pub memory: Vec<StoreTraffic>,
    /// Where the memory energies come from.
    pub memory_source: String,
    /// What the figure covers ([`SCOPE`]).
    pub scope: String,
}

/// Every unit's energy per operation on one graph's own operand streams.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphActivity {
    /// sha256 of the graph file.
    pub graph_sha256: String,
    /// Test images the engine ran to capture the streams.
    pub images: usize,
    /// By unit name: the measurement on the operations that reach that unit.
    pub by_unit: BTreeMap<String, StreamEnergy>,
}

/// Energy per inference of `graph`: every costed node's unit operations times that unit's energy
/// per operation on this graph's own streams (`activity`; vectorless figures from `table`), plus
/// the memory traffic of `memory`.
///
/// # Errors
/// [`HwError::UnmappedOp`] when an operation kind has no unit; [`HwError::Unit`] when its unit is
/// not in `table` or has no measurement in `activity`, or when `activity` is for another graph
/// (`graph_sha256` is the costed graph's file hash); [`HwError::Config`] for a bad memory model.
pub fn per_inference(
    graph: &QGraph,
    graph_sha256: &str,
    table: &HwTable,
    activity: &GraphActivity,
    memory: &MemoryModel,
) -> Result<EnergyReport> {
    if activity.graph_sha256 != graph_sha256 {
        return Err(HwError::Unit {
            unit: "activity".into(),
            detail: format!(
                "measured on graph {} but costing graph {graph_sha256}: a graph's energy uses \
                 only its own operand streams",
                activity.graph_sha256
            ),
        });
    }
    let counts = count_ops(graph);
    let catalog = units::catalog();
    let (stores, traffic) = memory.traffic(graph)?;
    let per_bit = |store: &str| {
        stores
            .iter()
            .find(|s| s.store == store)
            .map_or(0.0, |s| s.pj_per_bit)
    };
    let mut by_kind: Vec<KindEnergy> = Vec::new();
    let mut by_node = Vec::with_capacity(counts.nodes.len());
    let mut not_costed = BTreeMap::new();
    for (row, moved) in counts.nodes.iter().zip(&traffic) {
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
            memory_pj: moved.weights as f64 * per_bit("weights")
                + moved.activations_read as f64 * per_bit("activations_read")
                + moved.activations_write as f64 * per_bit("activations_write"),
        };
        if let Some(c) = node_unit(graph, row, &catalog)? {
            let u = table.row(&c.unit)?;
            let measured = activity.by_unit.get(&c.unit).ok_or_else(|| HwError::Unit {
                unit: c.unit.clone(),
                detail: format!(
                    "no switching activity measured on graph {graph_sha256}'s streams (node `{}`)",
                    row.name
                ),
            })?;
            let unit_ops = c.ops as f64 / c.per_op as f64;
            let (es, ev) = (
                measured.simulated.energy_per_op_pj,
                u.vectorless.energy_per_op_pj,
            );
            ne.unit_ops = unit_ops;
            ne.simulated_pj = unit_ops * es;
            ne.vectorless_pj = unit_ops * ev;
            match by_kind
                .iter_mut()
                .find(|k| k.kind == c.kind && k.unit == c.unit)
            {
                Some(k) => {
                    k.ops += c.ops;
                    k.unit_ops += unit_ops;
                    k.simulated_pj += ne.simulated_pj;
                    k.vectorless_pj += ne.vectorless_pj;
                }
                None => by_kind.push(KindEnergy {
                    kind: c.kind.clone(),
                    unit: c.unit.clone(),
                    category: c.category,
                    activity: ActivitySource::Graph {
                        graph_sha256: graph_sha256.to_string(),
                        images: activity.images,
                        ops: measured.ops,
                    },
                    ops: c.ops,
                    unit_ops,
                    pj_per_unit_op_simulated: es,
                    pj_per_unit_op_vectorless: ev,
                    simulated_pj: ne.simulated_pj,
                    vectorless_pj: ne.vectorless_pj,
                }),
            }
            ne.kind = Some(c.kind);
            ne.unit = Some(c.unit);
        }
        by_node.push(ne);
    }
    for s in &stores {
        by_kind.push(KindEnergy {
            kind: format!("memory:{}", s.store),
            unit: s.level.clone(),
            category: Category::Memory,
            activity: ActivitySource::MemoryModel {
                level: s.level.clone(),
                capacity_bits: s.capacity_bits,
            },
            ops: s.bits,
            unit_ops: s.bits as f64,
            pj_per_unit_op_simulated: s.pj_per_bit,
            pj_per_unit_op_vectorless: s.pj_per_bit,
            simulated_pj: s.pj,
            vectorless_pj: s.pj,
        });
    }
    let mut by_category: BTreeMap<Category, f64> =
        Category::ALL.iter().map(|&c| (c, 0.0)).collect();
    for k in &by_kind {
        *by_category.entry(k.category).or_default() += k.simulated_pj;
    }
    let first = table.rows.first();
    Ok(EnergyReport {
        total_simulated_pj: by_kind.iter().map(|k| k.simulated_pj).sum(),
        total_vectorless_pj: by_kind.iter().map(|k| k.vectorless_pj).sum(),
        by_category,
        by_kind,
        by_node,
        not_costed,
        clock_mhz: first.map_or(0.0, |r| r.provenance.clock_mhz),
        library: first.map_or_else(String::new, |r| r.provenance.library.clone()),
        graph_sha256: graph_sha256.to_string(),
        activity_images: activity.images,
        memory: stores,
        memory_source: memory.source.clone(),
        scope: SCOPE.to_string(),
    })
}

/// Energy per inference averaged over several reports of one configuration (a table row's
/// seeds), in nJ: what tables and figures show.
#[derive(Clone, Debug, PartialEq)]
pub struct MeanEnergy {
    /// Mean total (simulated activity, memory included), nJ.
    pub total_nj: f64,
    /// Mean by category name ([`Category::name`]), nJ.
    pub by_category_nj: BTreeMap<String, f64>,
}

/// The mean of `reports` in nJ (`None` for no report).
pub fn mean_nj(reports: &[&EnergyReport]) -> Option<MeanEnergy> {
    if reports.is_empty() {
        return None;
    }
    let n = reports.len() as f64;
    let mut by_category_nj = BTreeMap::new();
    for e in reports {
        for c in Category::ALL {
            *by_category_nj.entry(c.name().to_string()).or_insert(0.0) +=
                e.category_pj(c) / 1000.0 / n;
        }
    }
    Some(MeanEnergy {
        total_nj: reports.iter().map(|e| e.total_simulated_pj).sum::<f64>() / 1000.0 / n,
        by_category_nj,
    })
}

impl EnergyReport {
    /// The silicon the graph needs: the area of one of each compute and requantization unit it
    /// uses, from `table`, um^2.
    pub fn units_area_um2(&self, table: &HwTable) -> f64 {
        let used: std::collections::BTreeSet<&str> = self
            .by_kind
            .iter()
            .filter(|k| k.category != Category::Memory)
            .map(|k| k.unit.as_str())
            .collect();
        table
            .rows
            .iter()
            .filter(|u| used.contains(u.unit.as_str()))
            .map(|u| u.area_um2)
            .sum()
    }

    /// Every node with unit energy as (node name, its unit or else its operation, nJ), in node
    /// order: the per-layer figure's bars.
    pub fn layers_nj(&self) -> Vec<(String, String, f64)> {
        self.by_node
            .iter()
            .filter(|n| n.simulated_pj > 0.0)
            .map(|n| {
                let unit = n.unit.clone().unwrap_or_else(|| n.op.clone());
                (n.name.clone(), unit, n.simulated_pj / 1000.0)
            })
            .collect()
    }

    /// Simulated energy of one category, pJ.
    pub fn category_pj(&self, c: Category) -> f64 {
        self.by_category.get(&c).copied().unwrap_or(0.0)
    }

    /// One sentence naming the activity and memory sources (for table footers).
    pub fn source_sentence(&self) -> String {
        format!(
            "units' switching activity simulated on this graph's own operand streams (graph \
             sha256 {}, {} test images); memory: {}",
            &self.graph_sha256[..self.graph_sha256.len().min(12)],
            self.activity_images,
            self.memory_source
        )
    }

    /// The report as Markdown: total and its split, breakdown by kind and by costed node, the
    /// sources and the scope note.
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write as _;
        let nj = |pj: f64| pj / 1e3;
        let mut s = String::new();
        writeln!(
            s,
            "Energy per inference: {:.1} nJ (compute {:.1}, requantization {:.1}, memory {:.1}); \
             {:.1} nJ with vectorless unit activity; {} at {} MHz.\n",
            nj(self.total_simulated_pj),
            nj(self.category_pj(Category::Compute)),
            nj(self.category_pj(Category::Requantization)),
            nj(self.category_pj(Category::Memory)),
            nj(self.total_vectorless_pj),
            self.library,
            self.clock_mhz
        )
        .ok();
        s.push_str(
            "| operation | unit | ops | unit ops | pJ/op simulated | activity ops | simulated nJ | share | vectorless nJ |\n\
             |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for k in &self.by_kind {
            let activity_ops = match &k.activity {
                ActivitySource::Graph { ops, .. } => ops.to_string(),
                ActivitySource::MemoryModel { .. } => "per-bit model".into(),
            };
            writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.3} | {} | {:.2} | {:.1}% | {:.2} |",
                k.kind,
                k.unit,
                k.ops,
                k.unit_ops,
                k.pj_per_unit_op_simulated,
                activity_ops,
                nj(k.simulated_pj),
                100.0 * k.simulated_pj / self.total_simulated_pj.max(f64::MIN_POSITIVE),
                nj(k.vectorless_pj)
            )
            .ok();
        }
        s.push_str(
            "\n| node | op | unit | unit ops | simulated nJ | vectorless nJ | memory nJ |\n\
             |---|---|---|---:|---:|---:|---:|\n",
        );
        for n in self
            .by_node
            .iter()
            .filter(|n| n.unit.is_some() || n.memory_pj > 0.0)
        {
            writeln!(
                s,
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
                n.name,
                n.op,
                n.unit.as_deref().unwrap_or(""),
                n.unit_ops,
                nj(n.simulated_pj),
                nj(n.vectorless_pj),
                nj(n.memory_pj)
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
        writeln!(
            s,
            "\nSources: {}.\n\n{}",
            self.source_sentence(),
            self.scope
        )
        .ok();
        s
    }
}
