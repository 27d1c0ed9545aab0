//! Memory access energy of one inference: the bits of weights read and of activations read and
//! written (from the graph, at each tensor's real bit width, packed), times an energy per bit of
//! the memory each lives in.
//!
//! **Traffic model** (batch 1, the least traffic a dataflow accelerator can have):
//! - every weight and parameter (bias, shifts, multipliers, thresholds) is read once per inference;
//! - every stored activation tensor is written once by its producer and read once by each consumer;
//! - an i32 accumulator tensor whose only consumer is a requantizer never reaches memory (the
//!   requantizer sits at the processing element's output), nor do views (`flatten`, `output`);
//!   the input image is read by the first layer but not written by the accelerator.
//!
//! **Energies** default to Horowitz, "Computing's energy problem", ISSCC 2014 (45 nm, 0.9 V): SRAM
//! 10 / 20 / 100 pJ per 64-bit access for 8 KiB / 32 KiB / 1 MiB arrays, DRAM 1.3-2.6 nJ per 64-bit
//! access (midpoint 1.95 nJ). On-chip SRAM is scaled to the library's node by `E ~ C V^2` with `C`
//! proportional to feature size: `(node / 45 nm) * (vdd / 0.9 V)^2`, 16x for OSU 0.18 um at 1.8 V.
//! Off-chip DRAM is not scaled: its energy is the DRAM die and I/O, not this library. Each store
//! takes the smallest SRAM array that holds it (weights: all of them; activations: the peak of
//! stored tensors live at once), or DRAM when placed there or when no array is large enough. Every figure can be set
//! in a spec (`hardware: {memory: ...}`).

use qbench_engine::node::Op;
use qbench_engine::{DType, QGraph, count_ops};
use serde::{Deserialize, Serialize};

use crate::error::{HwError, Result};

/// Where a store lives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// The smallest SRAM array that holds it, else DRAM.
    #[default]
    Auto,
    /// On-chip SRAM (an error when no array is large enough).
    Sram,
    /// Off-chip DRAM.
    Dram,
}

/// One on-chip SRAM array size and its access energy at the reference node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SramArray {
    /// Capacity, KiB.
    pub kib: f64,
    /// Energy of one access of `access_bits` bits at the reference node, pJ.
    pub pj_per_access: f64,
}

/// The memory hierarchy and its energies (see the module doc for sources and the scaling rule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryModel {
    /// Where weights and other parameters are read from.
    pub weights: Placement,
    /// Where activations are read from and written to.
    pub activations: Placement,
    /// Bits per access of the figures below.
    pub access_bits: u32,
    /// SRAM arrays, at the reference node.
    pub sram: Vec<SramArray>,
    /// Off-chip DRAM energy per access, pJ (not scaled).
    pub dram_pj_per_access: f64,
    /// Node of the SRAM figures, nm.
    pub reference_node_nm: f64,
    /// Supply of the SRAM figures, V.
    pub reference_vdd: f64,
    /// Node of the library the units are synthesized to, nm.
    pub node_nm: f64,
    /// Supply of that library, V.
    pub vdd: f64,
    /// Where the figures come from (printed with every report).
    pub source: String,
}

impl Default for MemoryModel {
    fn default() -> Self {
        let sram = |kib, pj_per_access| SramArray { kib, pj_per_access };
        MemoryModel {
            weights: Placement::Auto,
            activations: Placement::Auto,
            access_bits: 64,
            sram: vec![sram(8.0, 10.0), sram(32.0, 20.0), sram(1024.0, 100.0)],
            dram_pj_per_access: 1950.0,
            reference_node_nm: 45.0,
            reference_vdd: 0.9,
            node_nm: 180.0,
            vdd: 1.8,
            source: "Horowitz, ISSCC 2014 (45 nm, 0.9 V): SRAM 10/20/100 pJ per 64-bit access \
                     (8 KiB/32 KiB/1 MiB), DRAM 1.3-2.6 nJ (1.95 nJ used); SRAM scaled by \
                     (node/45 nm)(vdd/0.9 V)^2, DRAM not scaled"
                .into(),
        }
    }
}

/// One store's traffic and energy per inference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoreTraffic {
    /// `weights`, `activations_read` or `activations_write`.
    pub store: String,
    /// The memory: `sram_<kib>kib` or `dram`.
    pub level: String,
    /// Bits the store must hold (weights: all; activations: the peak of stored tensors live at once).
    pub capacity_bits: u64,
    /// Bits moved per inference.
    pub bits: u64,
    /// Energy per bit at this node, pJ.
    pub pj_per_bit: f64,
    /// Energy per inference, pJ.
    pub pj: f64,
}

/// Per-node memory traffic in bits: weights read, activations read, activations written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeTraffic {
    /// Weight and parameter bits read.
    pub weights: u64,
    /// Activation bits read.
    pub activations_read: u64,
    /// Activation bits written.
    pub activations_write: u64,
}

/// Whether node `p`'s output is kept in memory (see the module doc's traffic model).
fn stored(graph: &QGraph, p: usize, readers: &[Vec<usize>]) -> bool {
    let node = &graph.nodes[p];
    let fused = node.output.dtype == DType::I32
        && readers[p].len() == 1
        && matches!(graph.nodes[readers[p][0]].op, Op::Requant(_));
    !fused && !matches!(node.op, Op::Flatten | Op::Output)
}

/// The node a view (`flatten`, `output`) shows, followed to a stored tensor.
fn through_views(graph: &QGraph, mut p: usize) -> usize {
    while matches!(graph.nodes[p].op, Op::Flatten | Op::Output) {
        match graph.nodes[p].inputs.first() {
            Some(&q) => p = q,
            None => break,
        }
    }
    p
}

/// Every node's direct readers.
fn readers(graph: &QGraph) -> Vec<Vec<usize>> {
    let mut readers = vec![Vec::new(); graph.nodes.len()];
    for (i, node) in graph.nodes.iter().enumerate() {
        for &p in &node.inputs {
            readers[p].push(i);
        }
    }
    readers
}

/// The most activation bits held in memory at once: the stored tensors (see [`stored`]) live
/// from the node that writes them to the last node that reads them through any views. Fused
/// accumulators stream into their requantizer and take no memory, unlike the engine's
/// `peak_activation_bits`, which counts every live tensor.
pub fn peak_stored_bits(graph: &QGraph) -> u64 {
    let readers = readers(graph);
    let mut last: Vec<usize> = (0..graph.nodes.len()).collect();
    for (i, node) in graph.nodes.iter().enumerate() {
        if matches!(node.op, Op::Flatten | Op::Output) {
            continue;
        }
        for &q in &node.inputs {
            let p = through_views(graph, q);
            last[p] = last[p].max(i);
        }
    }
    let stored: Vec<bool> = (0..graph.nodes.len())
        .map(|p| stored(graph, p, &readers))
        .collect();
    (0..graph.nodes.len())
        .map(|i| {
            (0..=i)
                .filter(|&p| stored[p] && last[p] >= i)
                .map(|p| graph.nodes[p].output.bits())
                .sum()
        })
        .max()
        .unwrap_or(0)
}

/// The traffic of every node of `graph` per inference, in node order.
pub fn node_traffic(graph: &QGraph) -> Vec<NodeTraffic> {
    let counts = count_ops(graph);
    let readers = readers(graph);
    graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let view = matches!(node.op, Op::Flatten | Op::Output);
            let activations_read = if view {
                0
            } else {
                node.inputs
                    .iter()
                    .map(|&p| through_views(graph, p))
                    .filter(|&p| stored(graph, p, &readers))
                    .map(|p| graph.nodes[p].output.bits())
                    .sum()
            };
            let writes = !matches!(node.op, Op::Input) && stored(graph, i, &readers);
            NodeTraffic {
                weights: counts.nodes[i].weight_bits + counts.nodes[i].param_bits,
                activations_read,
                activations_write: if writes { node.output.bits() } else { 0 },
            }
        })
        .collect()
}

impl MemoryModel {
    /// The SRAM scaling factor from the reference node to this node.
    pub fn sram_scale(&self) -> f64 {
        (self.node_nm / self.reference_node_nm) * (self.vdd / self.reference_vdd).powi(2)
    }

    /// Checks every figure is finite and positive, naming the field.
    ///
    /// # Errors
    /// [`HwError::Config`] naming the first bad field.
    pub fn check(&self) -> Result<()> {
        let bad = |field: &str, v: f64| HwError::Config {
            field: format!("memory.{field}"),
            detail: format!("{v} is not a finite positive number"),
        };
        let positive = |field: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(bad(field, v))
            }
        };
        positive("access_bits", f64::from(self.access_bits))?;
        positive("dram_pj_per_access", self.dram_pj_per_access)?;
        positive("reference_node_nm", self.reference_node_nm)?;
        positive("reference_vdd", self.reference_vdd)?;
        positive("node_nm", self.node_nm)?;
        positive("vdd", self.vdd)?;
        for (i, a) in self.sram.iter().enumerate() {
            positive(&format!("sram[{i}].kib"), a.kib)?;
            positive(&format!("sram[{i}].pj_per_access"), a.pj_per_access)?;
        }
        Ok(())
    }

    /// The memory a store of `capacity_bits` lives in under `placement`: its name and energy per
    /// bit at this node.
    ///
    /// # Errors
    /// [`HwError::Config`] when `placement` is `sram` and no array holds the store.
    pub fn level(
        &self,
        store: &str,
        placement: Placement,
        capacity_bits: u64,
    ) -> Result<(String, f64)> {
        let dram = || {
            (
                "dram".to_string(),
                self.dram_pj_per_access / f64::from(self.access_bits),
            )
        };
        if placement == Placement::Dram {
            return Ok(dram());
        }
        let fitting = self
            .sram
            .iter()
            .filter(|a| a.kib * 8192.0 >= capacity_bits as f64)
            .min_by(|a, b| a.kib.total_cmp(&b.kib));
        match (fitting, placement) {
            (Some(a), _) => Ok((
                format!("sram_{}kib", a.kib),
                a.pj_per_access * self.sram_scale() / f64::from(self.access_bits),
            )),
            (None, Placement::Sram) => Err(HwError::Config {
                field: format!("memory.{store}"),
                detail: format!(
                    "sram, but {:.1} KiB do not fit the largest SRAM array ({} KiB)",
                    capacity_bits as f64 / 8192.0,
                    self.sram.iter().map(|a| a.kib).fold(0.0, f64::max)
                ),
            }),
            (None, _) => Ok(dram()),
        }
    }

    /// The three stores' traffic and energy for `graph` per inference (weights, activations read,
    /// activations written), and the per-node traffic behind them.
    ///
    /// # Errors
    /// As [`MemoryModel::check`] and [`MemoryModel::level`].
    pub fn traffic(&self, graph: &QGraph) -> Result<(Vec<StoreTraffic>, Vec<NodeTraffic>)> {
        self.check()?;
        let nodes = node_traffic(graph);
        let counts = count_ops(graph);
        let weights_capacity = counts.weight_bits + counts.param_bits;
        let (w_level, w_pj) = self.level("weights", self.weights, weights_capacity)?;
        let peak = peak_stored_bits(graph);
        let (a_level, a_pj) = self.level("activations", self.activations, peak)?;
        let sum = |f: fn(&NodeTraffic) -> u64| nodes.iter().map(f).sum::<u64>();
        let store =
            |store: &str, level: &str, capacity_bits, bits: u64, pj_per_bit: f64| StoreTraffic {
                store: store.into(),
                level: level.into(),
                capacity_bits,
                bits,
                pj_per_bit,
                pj: bits as f64 * pj_per_bit,
            };
        let stores = vec![
            store(
                "weights",
                &w_level,
                weights_capacity,
                sum(|n| n.weights),
                w_pj,
            ),
            store(
                "activations_read",
                &a_level,
                peak,
                sum(|n| n.activations_read),
                a_pj,
            ),
            store(
                "activations_write",
                &a_level,
                peak,
                sum(|n| n.activations_write),
                a_pj,
            ),
        ];
        Ok((stores, nodes))
    }
}

#[cfg(test)]
mod tests {
    use qbench_engine::{Dense, GraphBuilder, Requant, WeightKind};

    use super::*;

    /// `[16] u8 -> dense 16x4 (int4) -> shift requant to u8 -> dense 4x2 (int8) -> logits`.
    fn mlp() -> QGraph {
        let mut b = GraphBuilder::new(&[16]);
        let x = b.input();
        let dense = |i, o, bits| Dense {
            in_features: i,
            out_features: o,
            weight_kind: WeightKind::Int { bits },
            input_zero_point: 0,
            weights: vec![1; i * o],
            bias: Some(vec![0; o]),
        };
        let d1 = b.dense("d1", x, dense(16, 4, 4)).unwrap();
        let r = b
            .requant(
                "r",
                d1,
                DType::U8,
                Requant::Shift {
                    shift: vec![2],
                    zero_point: 0,
                    min: 0,
                    max: 255,
                },
            )
            .unwrap();
        let d2 = b.dense("d2", r, dense(4, 2, 8)).unwrap();
        b.finish(d2).unwrap()
    }

    #[test]
    fn traffic_counts_packed_bits_and_fuses_requantized_accumulators() {
        let g = mlp();
        let nodes = node_traffic(&g);
        let total = |f: fn(&NodeTraffic) -> u64| nodes.iter().map(f).sum::<u64>();
        // Weights 16*4*4 + 4*2*8 bits, biases 32 bits each, one 8-bit shift.
        assert_eq!(total(|n| n.weights), 256 + 64 + 32 * 6 + 8);
        // Reads: the 16 input bytes, the 4 requantized bytes; the d1 accumulators are fused.
        assert_eq!(total(|n| n.activations_read), 16 * 8 + 4 * 8);
        // Writes: the 4 requantized bytes and the 2 i32 logits (not the input, not d1's sums).
        assert_eq!(total(|n| n.activations_write), 4 * 8 + 2 * 32);
        // The input at its peak; d1's 4 i32 sums (live beside it in the engine's count) never
        // reach memory, and the requantized bytes with the logits are 4 * 8 + 2 * 32 bits.
        assert_eq!(peak_stored_bits(&g), 16 * 8);
        assert!(count_ops(&g).peak_activation_bits > peak_stored_bits(&g));
    }

    #[test]
    fn stores_take_the_smallest_array_that_holds_them_and_scale_by_node() {
        let m = MemoryModel::default();
        assert_eq!(m.sram_scale(), 16.0);
        let (level, pj) = m.level("weights", Placement::Auto, 20 * 8192).unwrap();
        assert_eq!(level, "sram_32kib");
        assert_eq!(pj, 20.0 * 16.0 / 64.0);
        let (level, pj) = m
            .level("weights", Placement::Auto, 2 * 8192 * 1024)
            .unwrap();
        assert_eq!((level.as_str(), pj), ("dram", 1950.0 / 64.0));
        let err = m
            .level("weights", Placement::Sram, 2 * 8192 * 1024)
            .unwrap_err()
            .to_string();
        assert!(err.contains("memory.weights"), "{err}");
        let (stores, _) = m.traffic(&mlp()).unwrap();
        assert!(stores.iter().all(|s| s.level == "sram_8kib"));
        assert_eq!(stores[0].pj, stores[0].bits as f64 * 10.0 * 16.0 / 64.0);
    }

    #[test]
    fn bad_figures_name_their_field() {
        let m = MemoryModel {
            vdd: -1.0,
            ..MemoryModel::default()
        };
        assert!(m.check().unwrap_err().to_string().contains("memory.vdd"));
    }
}
