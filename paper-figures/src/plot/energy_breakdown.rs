//! Energy per inference of every method, stacked into compute, requantization and memory: the
//! breakdown behind each point of the accuracy-vs-energy figure.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::stacked::{self, Bar, Stacked};
use super::{DrawResult, Figure};
use crate::input::{ENERGY_CATEGORIES, FigureInput};

/// The per-method stacked energy figure.
#[derive(Debug, Clone)]
pub struct EnergyBreakdown {
    bars: Vec<Bar>,
    kinds: Vec<String>,
    skipped: Vec<String>,
}

impl EnergyBreakdown {
    /// Builds the figure from every method row with an energy breakdown; `None` when no row has
    /// one. Rows without a breakdown are named in the notes.
    pub fn new(input: &FigureInput) -> (Option<Self>, Vec<String>) {
        let mut skipped = Vec::new();
        let mut bars = Vec::new();
        for m in &input.methods {
            if m.energy_breakdown_nj.is_empty() {
                skipped.push(format!("{}: no energy breakdown", m.label));
            } else {
                bars.push((m.label.clone(), m.energy_breakdown_nj.clone()));
            }
        }
        if bars.is_empty() {
            return (None, skipped);
        }
        let kinds = ENERGY_CATEGORIES.iter().map(|c| c.to_string()).collect();
        let fig = Self {
            bars,
            kinds,
            skipped: skipped.clone(),
        };
        (Some(fig), skipped)
    }
}

impl Figure for EnergyBreakdown {
    fn stem(&self) -> &'static str {
        "energy_breakdown"
    }

    fn title(&self) -> String {
        "Energy per inference by method: compute, requantization and memory".to_string()
    }

    fn skipped(&self) -> &[String] {
        &self.skipped
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        stacked::draw(
            &Stacked {
                caption: "Energy per inference: compute, requantization, memory".to_string(),
                names_desc: "",
                value_desc: "Energy per inference (nJ)",
                bars: &self.bars,
                kinds: &self.kinds,
                horizontal: true,
            },
            root,
        )
    }
}
