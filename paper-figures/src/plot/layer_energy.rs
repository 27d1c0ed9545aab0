//! Per-layer energy of one model, stacked by operation kind.

use std::collections::BTreeSet;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::stacked::{self, Stacked};
use super::{DrawResult, Figure};
use crate::input::{FigureInput, LayerEnergy};

/// The stacked per-layer energy figure.
#[derive(Debug, Clone)]
pub struct LayerEnergyBars {
    energy: LayerEnergy,
    kinds: Vec<String>,
}

impl LayerEnergyBars {
    /// Builds the figure; `None` when the run carries no per-layer energy.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        let Some(energy) = input.layer_energy.clone().filter(|e| !e.layers.is_empty()) else {
            return (None, vec!["no per-layer energy in this run".to_string()]);
        };
        let kinds: BTreeSet<String> = energy
            .layers
            .iter()
            .flat_map(|(_, k)| k.keys().cloned())
            .collect();
        let fig = Self {
            energy,
            kinds: kinds.into_iter().collect(),
        };
        (Some(fig), Vec::new())
    }
}

impl Figure for LayerEnergyBars {
    fn stem(&self) -> &'static str {
        "layer_energy"
    }

    fn title(&self) -> String {
        format!(
            "Energy per inference by layer and operation kind: {}",
            self.energy.label
        )
    }

    fn skipped(&self) -> &[String] {
        &[]
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        stacked::draw(
            &Stacked {
                caption: format!("Energy per layer: {}", self.energy.label),
                names_desc: "Layer",
                value_desc: "Energy per inference (nJ)",
                bars: &self.energy.layers,
                kinds: &self.kinds,
                horizontal: false,
            },
            root,
        )
    }
}
